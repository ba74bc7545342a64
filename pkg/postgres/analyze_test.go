package postgres_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dsync-dev/dsync/pkg/pgtest"
	"github.com/dsync-dev/dsync/pkg/postgres"
)

func TestStatsKeeperAnalyzesAsTablesGrow(t *testing.T) {
	ctx := t.Context()
	pool, err := postgres.Open(ctx, pgtest.NewDatabase(t))
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	_, err = pool.Exec(ctx, `CREATE TABLE things (id int PRIMARY KEY)`)
	require.NoError(t, err)
	k := postgres.NewStatsKeeper(pool, nil, "things")
	t.Cleanup(k.Close)

	analyzed := func() int64 {
		var n int64
		require.NoError(t, pool.QueryRow(ctx, `SELECT analyze_count FROM pg_stat_user_tables WHERE relname = 'things'`).Scan(&n))
		return n
	}
	insert := func(from, to int) {
		_, err := pool.Exec(ctx, `INSERT INTO things SELECT generate_series($1::int, $2::int)`, from, to-1)
		require.NoError(t, err)
		k.Wrote(to - from)
	}

	insert(0, postgres.MinAnalyzeRows-1)
	time.Sleep(100 * time.Millisecond)
	require.Zero(t, analyzed(), "below the threshold nothing is analyzed")

	insert(postgres.MinAnalyzeRows-1, 10_000)
	require.Eventually(t, func() bool { return analyzed() == 1 }, 10*time.Second, 20*time.Millisecond)
	var tuples float64
	require.NoError(t, pool.QueryRow(ctx, `SELECT reltuples FROM pg_class WHERE relname = 'things'`).Scan(&tuples))
	require.InDelta(t, 10_000, tuples, 1, "the planner now knows the table's size")

	// The next ANALYZE waits for a fifth of the table: 2,000 rows.
	insert(10_000, 11_000)
	time.Sleep(100 * time.Millisecond)
	require.Equal(t, int64(1), analyzed())
	insert(11_000, 12_100)
	require.Eventually(t, func() bool { return analyzed() == 2 }, 10*time.Second, 20*time.Millisecond)
}
