package sqlitex

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ErrDowngrade is returned by Migrate when the database holds a migration
// version newer than any file: an older binary must not run on a newer schema.
var ErrDowngrade = errors.New("database schema is newer than this binary")

// migrationFile matches "NNNN_description.up.sql".
var migrationFile = regexp.MustCompile(`^(\d+)_([^/]+)\.up\.sql$`)

type migration struct {
	version int
	name    string
	sql     string
}

// Migrate applies the migrations in the root of migrations that component has
// not applied yet, in ascending numeric version order. It has the same
// contract as postgres.Migrate: files named NNNN_description.up.sql (others
// ignored), each applied in its own transaction together with its row in
// schema_migrations(component, version, applied_at); idempotent; an error
// wrapping ErrDowngrade, and nothing applied, when the database has a version
// for component newer than the newest file.
//
// Each transaction starts with BEGIN IMMEDIATE, which takes SQLite's write
// lock up front, so concurrent starters (even in other processes) apply each
// migration once. Migrate holds one connection of db while it runs.
func Migrate(ctx context.Context, db *sql.DB, component string, migrations fs.FS) error {
	files, err := readMigrations(migrations)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", component, err)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("migrate %s: get connection: %w", component, err)
	}
	defer conn.Close()
	for {
		done, err := migrateStep(ctx, conn, component, files)
		if err != nil {
			return fmt.Errorf("migrate %s: %w", component, err)
		}
		if done {
			return nil
		}
	}
}

// migrateStep applies the first pending migration, if any, in one
// BEGIN IMMEDIATE transaction. It reports done when nothing was pending.
func migrateStep(ctx context.Context, conn *sql.Conn, component string, files []migration) (done bool, err error) {
	// database/sql cannot issue BEGIN IMMEDIATE on a caller's DSN, so the
	// transaction is driven by hand on one dedicated connection.
	if _, err := conn.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		return false, fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			// Roll back even if ctx is done, so the connection is reusable.
			_, _ = conn.ExecContext(context.WithoutCancel(ctx), `ROLLBACK`)
		}
	}()

	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		component  TEXT    NOT NULL,
		version    INTEGER NOT NULL,
		applied_at TEXT    NOT NULL,
		PRIMARY KEY (component, version))`); err != nil {
		return false, fmt.Errorf("create schema_migrations: %w", err)
	}
	applied, err := appliedVersions(ctx, conn, component)
	if err != nil {
		return false, err
	}
	next, err := pending(files, applied)
	if err != nil {
		return false, err
	}
	if next != nil {
		if _, err := conn.ExecContext(ctx, next.sql); err != nil {
			return false, fmt.Errorf("apply %s: %w", next.name, err)
		}
		if _, err := conn.ExecContext(ctx,
			`INSERT INTO schema_migrations (component, version, applied_at) VALUES (?, ?, ?)`,
			component, next.version, time.Now().UTC().Format(time.RFC3339Nano)); err != nil {
			return false, fmt.Errorf("record %s: %w", next.name, err)
		}
	}
	if _, err := conn.ExecContext(ctx, `COMMIT`); err != nil {
		return false, fmt.Errorf("commit: %w", err)
	}
	return next == nil, nil
}

func appliedVersions(ctx context.Context, conn *sql.Conn, component string) (map[int]bool, error) {
	rows, err := conn.QueryContext(ctx, `SELECT version FROM schema_migrations WHERE component = ?`, component)
	if err != nil {
		return nil, fmt.Errorf("read applied versions: %w", err)
	}
	defer rows.Close()
	applied := map[int]bool{}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("read applied versions: %w", err)
		}
		applied[v] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read applied versions: %w", err)
	}
	return applied, nil
}

// pending returns the first file not in applied, or nil, after refusing a
// downgrade.
func pending(files []migration, applied map[int]bool) (*migration, error) {
	newestFile := 0
	if len(files) > 0 {
		newestFile = files[len(files)-1].version
	}
	newestApplied := 0
	for v := range applied {
		newestApplied = max(newestApplied, v)
	}
	if newestApplied > newestFile {
		return nil, fmt.Errorf("%w: database has version %d, newest file is %d", ErrDowngrade, newestApplied, newestFile)
	}
	for i := range files {
		if !applied[files[i].version] {
			return &files[i], nil
		}
	}
	return nil, nil
}

// readMigrations reads and sorts the *.up.sql files in the root of fsys.
func readMigrations(fsys fs.FS) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var out []migration
	seen := map[int]string{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".up.sql") {
			continue
		}
		m := migrationFile.FindStringSubmatch(e.Name())
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
		out = append(out, migration{version: version, name: e.Name(), sql: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}
