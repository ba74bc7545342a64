// Package migrate reads versioned SQL migration files and decides which one
// to apply next. The stores (pkg/postgres, pkg/sqlitex) apply them, each in
// its own dialect and locking.
package migrate

import (
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// ErrDowngrade is returned by Migrate when the database holds a migration
// version newer than any file: an older binary must not run on a newer schema.
var ErrDowngrade = errors.New("database schema is newer than this binary")

// migrationFile matches "NNNN_description.up.sql".
var fileName = regexp.MustCompile(`^(\d+)_([^/]+)\.up\.sql$`)

// File is one migration.
type File struct {
	Version int
	Name    string
	SQL     string
}

// Pending returns the first file not in applied, or nil, after refusing a
// downgrade.
func Pending(files []File, applied map[int]bool) (*File, error) {
	newestFile := 0
	if len(files) > 0 {
		newestFile = files[len(files)-1].Version
	}
	newestApplied := 0
	for v := range applied {
		newestApplied = max(newestApplied, v)
	}
	if newestApplied > newestFile {
		return nil, fmt.Errorf("%w: database has version %d, newest file is %d", ErrDowngrade, newestApplied, newestFile)
	}
	for i := range files {
		if !applied[files[i].Version] {
			return &files[i], nil
		}
	}
	return nil, nil
}

// Read reads and sorts the *.up.sql files in the root of fsys.
func Read(fsys fs.FS) ([]File, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var out []File
	seen := map[int]string{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".up.sql") {
			continue
		}
		m := fileName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migration %q: name must be NNNN_description.up.sql", e.Name())
		}
		version, err := strconv.Atoi(m[1])
		if err != nil || version <= 0 {
			return nil, fmt.Errorf("migration %q: version must be a positive integer", e.Name())
		}
		if prev, ok := seen[version]; ok {
			return nil, fmt.Errorf("migrations %q and %q share version %d", prev, e.Name(), version)
		}
		seen[version] = e.Name()
		body, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, fmt.Errorf("read migration %q: %w", e.Name(), err)
		}
		out = append(out, File{Version: version, Name: e.Name(), SQL: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}
