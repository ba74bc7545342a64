package postgres_test

import (
	"context"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/dsync-dev/dsync/pkg/postgres"
)

func file(sql string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(sql)} }

// baseFS has versions 1, 2 and 10, to check numeric (not lexical) order: 10
// depends on 2.
var baseFS = fstest.MapFS{
	"0001_users.up.sql":   file(`CREATE TABLE users (id int PRIMARY KEY); CREATE TABLE log (v int);`),
	"0001_users.down.sql": file(`DROP TABLE users;`),
	"2_groups.up.sql":     file(`CREATE TABLE groups (id int PRIMARY KEY); INSERT INTO log VALUES (2);`),
	"10_members.up.sql":   file(`CREATE TABLE members (g int REFERENCES groups, u int REFERENCES users); INSERT INTO log VALUES (10);`),
	"README.md":           file(`ignored`),
}

func appliedVersions(t *testing.T, pool *pgxpool.Pool, component string) []int {
	t.Helper()
	rows, err := pool.Query(t.Context(),
		`SELECT version FROM schema_migrations WHERE component = $1 ORDER BY version`, component)
	require.NoError(t, err)
	vs, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	require.NoError(t, err)
	out := make([]int, len(vs))
	for i, v := range vs {
		out[i] = int(v)
	}
	return out
}

func TestMigrateAppliesInOrderAndIsIdempotent(t *testing.T) {
	pool := openPool(t)
	ctx := t.Context()

	for range 2 {
		require.NoError(t, postgres.Migrate(ctx, pool, "projector", baseFS))
	}
	require.Equal(t, []int{1, 2, 10}, appliedVersions(t, pool, "projector"))
	rows, err := pool.Query(ctx, `SELECT v FROM log ORDER BY v`)
	require.NoError(t, err)
	logged, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	require.NoError(t, err)
	require.Equal(t, []int32{2, 10}, logged, "each migration ran once")

	// A later release adds a file; only it is applied.
	next := fstest.MapFS{"0011_more.up.sql": file(`INSERT INTO log VALUES (11);`)}
	for k, v := range baseFS {
		next[k] = v
	}
	require.NoError(t, postgres.Migrate(ctx, pool, "projector", next))
	require.Equal(t, []int{1, 2, 10, 11}, appliedVersions(t, pool, "projector"))

	// Components are independent: another one starts from scratch.
	require.NoError(t, postgres.Migrate(ctx, pool, "dispatcher",
		fstest.MapFS{"0001_d.up.sql": file(`CREATE TABLE deliveries (id int);`)}))
	require.Equal(t, []int{1}, appliedVersions(t, pool, "dispatcher"))
}

func TestMigrateRefusesDowngrade(t *testing.T) {
	pool := openPool(t)
	ctx := t.Context()
	require.NoError(t, postgres.Migrate(ctx, pool, "c", baseFS))

	older := fstest.MapFS{"0001_users.up.sql": baseFS["0001_users.up.sql"]}
	err := postgres.Migrate(ctx, pool, "c", older)
	require.ErrorIs(t, err, postgres.ErrDowngrade)
	require.ErrorContains(t, err, "version 10")
}

func TestMigrateFailureRollsBack(t *testing.T) {
	pool := openPool(t)
	ctx := t.Context()
	broken := fstest.MapFS{
		"0001_ok.up.sql":     file(`CREATE TABLE ok (id int);`),
		"0002_broken.up.sql": file(`CREATE TABLE half (id int); SELECT * FROM no_such_table;`),
	}
	err := postgres.Migrate(ctx, pool, "c", broken)
	require.ErrorContains(t, err, "apply 0002_broken.up.sql")
	require.Equal(t, []int{1}, appliedVersions(t, pool, "c"))

	var exists bool
	require.NoError(t, pool.QueryRow(ctx, `SELECT to_regclass('half') IS NOT NULL`).Scan(&exists))
	require.False(t, exists, "the failed migration left nothing behind")
}

func TestMigrateRejectsBadFiles(t *testing.T) {
	tests := []struct {
		name string
		fs   fstest.MapFS
		want string
	}{
		{name: "no version", fs: fstest.MapFS{"users.up.sql": file(``)}, want: "NNNN_description.up.sql"},
		{name: "zero version", fs: fstest.MapFS{"0000_x.up.sql": file(``)}, want: "positive"},
		{
			name: "duplicate version",
			fs:   fstest.MapFS{"0001_a.up.sql": file(``), "1_b.up.sql": file(``)},
			want: "share version 1",
		},
	}
	pool := openPool(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.ErrorContains(t, postgres.Migrate(t.Context(), pool, "c", tc.fs), tc.want)
		})
	}
}

func TestMigrateEmptyFS(t *testing.T) {
	pool := openPool(t)
	require.NoError(t, postgres.Migrate(t.Context(), pool, "c", fstest.MapFS{}))
	require.Empty(t, appliedVersions(t, pool, "c"))
}

func TestMigrateConcurrentStarters(t *testing.T) {
	pool := openPool(t)
	const starters = 8
	var wg sync.WaitGroup
	errs := make([]error, starters)
	for i := range starters {
		wg.Go(func() { errs[i] = postgres.Migrate(context.WithoutCancel(t.Context()), pool, "race", baseFS) })
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	require.Equal(t, []int{1, 2, 10}, appliedVersions(t, pool, "race"))
	var n int
	require.NoError(t, pool.QueryRow(t.Context(), `SELECT count(*) FROM log`).Scan(&n))
	require.Equal(t, 2, n)
}

// Services that share a database (projector, dispatcher) migrate their own
// components at the same moment on a fresh database.
func TestMigrateConcurrentComponentsOnFreshDatabase(t *testing.T) {
	pool := openPool(t)
	components := []string{"projector", "dispatcher", "gateway", "other"}
	var wg sync.WaitGroup
	errs := make([]error, len(components))
	for i, c := range components {
		fsys := fstest.MapFS{"0001_init.up.sql": file(`CREATE TABLE t_` + c + ` (id int)`)}
		wg.Go(func() { errs[i] = postgres.Migrate(context.WithoutCancel(t.Context()), pool, c, fsys) })
	}
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err, components[i])
		require.Equal(t, []int{1}, appliedVersions(t, pool, components[i]))
	}
}
