package sqlitex_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"

	"github.com/dsync-dev/dsync/pkg/sqlitex"
)

func openDB(t *testing.T) (*sql.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "nested", "dir", "dsync.db")
	db, err := sqlitex.Open(t.Context(), path)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	return db, path
}

func TestOpenPragmas(t *testing.T) {
	db, path := openDB(t)
	require.FileExists(t, path)
	tests := []struct {
		pragma string
		want   string
	}{
		{pragma: "journal_mode", want: "wal"},
		{pragma: "busy_timeout", want: "10000"},
		{pragma: "foreign_keys", want: "1"},
		{pragma: "synchronous", want: "1"}, // NORMAL
	}
	for _, tc := range tests {
		t.Run(tc.pragma, func(t *testing.T) {
			var got string
			require.NoError(t, db.QueryRowContext(t.Context(), "PRAGMA "+tc.pragma).Scan(&got))
			require.Equal(t, tc.want, got)
		})
	}
}

func TestOpenEnforcesForeignKeys(t *testing.T) {
	db, _ := openDB(t)
	ctx := t.Context()
	_, err := db.ExecContext(ctx, `CREATE TABLE p (id INTEGER PRIMARY KEY); CREATE TABLE c (p INTEGER REFERENCES p(id));`)
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, `INSERT INTO c VALUES (42)`)
	require.ErrorContains(t, err, "FOREIGN KEY")
}

func TestOpenFailsOnUnusablePath(t *testing.T) {
	dir := t.TempDir()
	// A directory cannot be opened as a database file.
	_, err := sqlitex.Open(t.Context(), dir)
	require.Error(t, err)
}

func TestConcurrentWritersDoNotGetBusy(t *testing.T) {
	db, _ := openDB(t)
	ctx := t.Context()
	_, err := db.ExecContext(ctx, `CREATE TABLE n (v INTEGER)`)
	require.NoError(t, err)

	var wg sync.WaitGroup
	errs := make(chan error, 400)
	for w := range 8 {
		wg.Go(func() {
			for i := range 50 {
				tx, err := db.BeginTx(ctx, nil)
				if err != nil {
					errs <- err
					return
				}
				if _, err := tx.ExecContext(ctx, `INSERT INTO n VALUES (?)`, w*1000+i); err != nil {
					_ = tx.Rollback()
					errs <- err
					return
				}
				if err := tx.Commit(); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	var n int
	require.NoError(t, db.QueryRowContext(ctx, `SELECT count(*) FROM n`).Scan(&n))
	require.Equal(t, 400, n)
}

func TestReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.db")
	db, err := sqlitex.Open(t.Context(), path)
	require.NoError(t, err)
	require.NoError(t, sqlitex.Migrate(t.Context(), db, "c",
		fstest.MapFS{"0001_t.up.sql": {Data: []byte(`CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('kept');`)}}))
	require.NoError(t, db.Close())

	db, err = sqlitex.Open(context.WithoutCancel(t.Context()), path)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	var v string
	require.NoError(t, db.QueryRowContext(t.Context(), `SELECT v FROM t`).Scan(&v))
	require.Equal(t, "kept", v)
}
