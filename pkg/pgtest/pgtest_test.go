package pgtest_test

import (
	"net/url"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/dsync-dev/dsync/pkg/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func connect(t *testing.T, dbURL string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dbURL)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(t.Context()) })
	return conn
}

func TestNewDatabaseRoundTrip(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	u, err := url.Parse(dbURL)
	require.NoError(t, err)
	require.Equal(t, "postgres", u.Scheme)
	require.Equal(t, "disable", u.Query().Get("sslmode"))
	require.NotEmpty(t, u.Host)

	conn := connect(t, dbURL)
	ctx := t.Context()
	_, err = conn.Exec(ctx, `CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)`)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, `INSERT INTO items (id, name) VALUES ($1, $2), ($3, $4)`, 1, "one", 2, "two")
	require.NoError(t, err)

	var names []string
	rows, err := conn.Query(ctx, `SELECT name FROM items ORDER BY id`)
	require.NoError(t, err)
	names, err = pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Equal(t, []string{"one", "two"}, names)
}

func TestNewDatabaseIsolation(t *testing.T) {
	tests := []struct {
		name  string
		table string
	}{
		{name: "first", table: "only_in_first"},
		{name: "second", table: "only_in_second"},
	}
	urls := make([]string, len(tests))
	for i, tc := range tests {
		urls[i] = pgtest.NewDatabase(t)
		_, err := connect(t, urls[i]).Exec(t.Context(), "CREATE TABLE "+tc.table+" (id int)")
		require.NoError(t, err, tc.name)
	}
	require.NotEqual(t, urls[0], urls[1])

	for i, tc := range tests {
		var dbName string
		var n int
		conn := connect(t, urls[i])
		require.NoError(t, conn.QueryRow(t.Context(), `SELECT current_database()`).Scan(&dbName))
		require.NoError(t, conn.QueryRow(t.Context(),
			`SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'`).Scan(&n))
		require.Equal(t, 1, n, "%s sees only its own table", tc.name)
		require.Contains(t, dbName, "testnewdatabaseisolation")
	}
}

func TestNewDatabaseParallel(t *testing.T) {
	for _, name := range []string{"a", "b", "c", "d"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var one int
			require.NoError(t, connect(t, pgtest.NewDatabase(t)).QueryRow(t.Context(), `SELECT 1`).Scan(&one))
			require.Equal(t, 1, one)
		})
	}
}
