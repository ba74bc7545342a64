package sqlitex_test

import (
	"database/sql"
	"path/filepath"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"

	"github.com/dsync-dev/dsync/pkg/sqlitex"
)

func file(sql string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(sql)} }

// baseFS has versions 1, 2 and 10, to check numeric (not lexical) order: 10
// depends on 2.
var baseFS = fstest.MapFS{
	"0001_users.up.sql":   file(`CREATE TABLE users (id INTEGER PRIMARY KEY); CREATE TABLE log (v INTEGER);`),
	"0001_users.down.sql": file(`DROP TABLE users;`),
	"2_groups.up.sql":     file(`CREATE TABLE groups (id INTEGER PRIMARY KEY); INSERT INTO log VALUES (2);`),
	"10_members.up.sql":   file(`CREATE TABLE members (g INTEGER REFERENCES groups(id), u INTEGER REFERENCES users(id)); INSERT INTO log VALUES (10);`),
	"README.md":           file(`ignored`),
}

func appliedVersions(t *testing.T, db *sql.DB, component string) []int {
	t.Helper()
	rows, err := db.QueryContext(t.Context(),
		`SELECT version FROM schema_migrations WHERE component = ? ORDER BY version`, component)
	require.NoError(t, err)
	defer rows.Close()
	out := []int{}
	for rows.Next() {
		var v int
		require.NoError(t, rows.Scan(&v))
		out = append(out, v)
	}
	require.NoError(t, rows.Err())
	return out
}

func countLog(t *testing.T, db *sql.DB) int {
	t.Helper()
	var n int
	require.NoError(t, db.QueryRowContext(t.Context(), `SELECT count(*) FROM log`).Scan(&n))
	return n
}

func TestMigrateAppliesInOrderAndIsIdempotent(t *testing.T) {
	db, _ := openDB(t)
	ctx := t.Context()
	for range 2 {
		require.NoError(t, sqlitex.Migrate(ctx, db, "projector", baseFS))
	}
	require.Equal(t, []int{1, 2, 10}, appliedVersions(t, db, "projector"))
	require.Equal(t, 2, countLog(t, db), "each migration ran once")

	next := fstest.MapFS{"0011_more.up.sql": file(`INSERT INTO log VALUES (11);`)}
	for k, v := range baseFS {
		next[k] = v
	}
	require.NoError(t, sqlitex.Migrate(ctx, db, "projector", next))
	require.Equal(t, []int{1, 2, 10, 11}, appliedVersions(t, db, "projector"))

	require.NoError(t, sqlitex.Migrate(ctx, db, "dispatcher",
		fstest.MapFS{"0001_d.up.sql": file(`CREATE TABLE deliveries (id INTEGER);`)}))
	require.Equal(t, []int{1}, appliedVersions(t, db, "dispatcher"))
}

func TestMigrateRefusesDowngrade(t *testing.T) {
	db, _ := openDB(t)
	require.NoError(t, sqlitex.Migrate(t.Context(), db, "c", baseFS))
	err := sqlitex.Migrate(t.Context(), db, "c", fstest.MapFS{"0001_users.up.sql": baseFS["0001_users.up.sql"]})
	require.ErrorIs(t, err, sqlitex.ErrDowngrade)
	require.ErrorContains(t, err, "version 10")
}

func TestMigrateFailureRollsBack(t *testing.T) {
	db, _ := openDB(t)
	ctx := t.Context()
	broken := fstest.MapFS{
		"0001_ok.up.sql":     file(`CREATE TABLE ok (id INTEGER);`),
		"0002_broken.up.sql": file(`CREATE TABLE half (id INTEGER); SELECT * FROM no_such_table;`),
	}
	err := sqlitex.Migrate(ctx, db, "c", broken)
	require.ErrorContains(t, err, "apply 0002_broken.up.sql")
	require.Equal(t, []int{1}, appliedVersions(t, db, "c"))

	var n int
	require.NoError(t, db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE name = 'half'`).Scan(&n))
	require.Zero(t, n, "the failed migration left nothing behind")

	// The connection is usable afterwards (the transaction was rolled back).
	_, err = db.ExecContext(ctx, `INSERT INTO ok VALUES (1)`)
	require.NoError(t, err)
}

func TestMigrateRejectsBadFiles(t *testing.T) {
	tests := []struct {
		name string
		fs   fstest.MapFS
		want string
	}{
		{name: "no version", fs: fstest.MapFS{"users.up.sql": file(``)}, want: "NNNN_description.up.sql"},
		{name: "zero version", fs: fstest.MapFS{"0000_x.up.sql": file(``)}, want: "positive"},
		{name: "duplicate version", fs: fstest.MapFS{"0001_a.up.sql": file(``), "1_b.up.sql": file(``)}, want: "share version 1"},
	}
	db, _ := openDB(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.ErrorContains(t, sqlitex.Migrate(t.Context(), db, "c", tc.fs), tc.want)
		})
	}
}

// TestMigrateConcurrentProcesses simulates several processes starting at once:
// separate *sql.DB handles on one file, racing for the write lock.
func TestMigrateConcurrentProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shared.db")
	const starters = 4
	dbs := make([]*sql.DB, starters)
	for i := range dbs {
		db, err := sqlitex.Open(t.Context(), path)
		require.NoError(t, err)
		t.Cleanup(func() { _ = db.Close() })
		dbs[i] = db
	}
	var wg sync.WaitGroup
	errs := make([]error, starters)
	for i, db := range dbs {
		wg.Go(func() { errs[i] = sqlitex.Migrate(t.Context(), db, "race", baseFS) })
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	require.Equal(t, []int{1, 2, 10}, appliedVersions(t, dbs[0], "race"))
	require.Equal(t, 2, countLog(t, dbs[0]))
}
