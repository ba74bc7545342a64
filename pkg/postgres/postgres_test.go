package postgres_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/dsync-dev/dsync/pkg/pgtest"
	"github.com/dsync-dev/dsync/pkg/postgres"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// openPool opens a pool on a fresh test database.
func openPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, err := postgres.Open(t.Context(), pgtest.NewDatabase(t))
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name, url, want string
	}{
		{name: "unparsable", url: "postgres://%zz", want: "parse postgres config"},
		{name: "unreachable", url: "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=2", want: "ping postgres"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pool, err := postgres.Open(t.Context(), tc.url)
			require.ErrorContains(t, err, tc.want)
			require.Nil(t, pool)
		})
	}
}

func TestOpenTracesQueries(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(tp)
	t.Cleanup(func() { otel.SetTracerProvider(prev) })

	pool := openPool(t)
	long := "SELECT 1 AS " + strings.Repeat("x", 300)
	var one int
	require.NoError(t, pool.QueryRow(t.Context(), long).Scan(&one))
	_, err := pool.Exec(t.Context(), "SELECT $1::int / 0", 5)
	require.Error(t, err)

	var stmts []string
	var failed int
	for _, s := range rec.Ended() {
		require.Equal(t, "db.query", s.Name())
		for _, kv := range s.Attributes() {
			if kv.Key == attribute.Key("db.statement") {
				stmts = append(stmts, kv.Value.AsString())
			}
		}
		if s.Status().Code.String() == "Error" {
			failed++
		}
	}
	require.Contains(t, stmts, long[:200], "statement truncated to 200 bytes")
	require.Contains(t, stmts, "SELECT $1::int / 0")
	require.Equal(t, 1, failed)
}

func TestIsUniqueViolation(t *testing.T) {
	pool := openPool(t)
	ctx := t.Context()
	_, err := pool.Exec(ctx, `CREATE TABLE u (name text PRIMARY KEY)`)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO u VALUES ('a')`)
	require.NoError(t, err)
	_, dupErr := pool.Exec(ctx, `INSERT INTO u VALUES ('a')`)
	_, nullErr := pool.Exec(ctx, `INSERT INTO u VALUES (NULL)`)

	tests := []struct {
		name string
		err  error
		want bool
	}{
		{name: "duplicate key", err: dupErr, want: true},
		{name: "wrapped duplicate key", err: fmt.Errorf("create user: %w", dupErr), want: true},
		{name: "not null violation", err: nullErr, want: false},
		{name: "plain error", err: errors.New("duplicate key value violates unique constraint"), want: false},
		{name: "nil", err: nil, want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, postgres.IsUniqueViolation(tc.err))
		})
	}
}

// Services sharing one database keep their tables apart in their own
// schemas, even when the table names are the same.
func TestWithSchemaSeparatesServices(t *testing.T) {
	base := pgtest.NewDatabase(t)
	for _, schema := range []string{"projector", "dispatcher"} {
		url, err := postgres.WithSchema(base, schema)
		require.NoError(t, err)
		pool, err := postgres.Open(t.Context(), url)
		require.NoError(t, err)
		t.Cleanup(pool.Close)
		_, err = pool.Exec(t.Context(), `CREATE TABLE events (id text)`)
		require.NoError(t, err, "each schema has its own events table")
		var got string
		require.NoError(t, pool.QueryRow(t.Context(), `SELECT current_schema()`).Scan(&got))
		require.Equal(t, schema, got)
	}
	_, err := postgres.WithSchema(base, "Robert'); DROP TABLE x;--")
	require.Error(t, err)
	dsn, err := postgres.WithSchema("host=/tmp dbname=x", "projector")
	require.NoError(t, err)
	require.Equal(t, "host=/tmp dbname=x search_path=projector", dsn)
}
