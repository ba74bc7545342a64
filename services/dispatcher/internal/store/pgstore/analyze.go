package pgstore

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// minAnalyzeRows is how many deliveries must be inserted before the first
// ANALYZE, and the least between two.
const minAnalyzeRows = 500

// statsKeeper runs ANALYZE on the delivery tables once enough rows were
// inserted since the last one (a fifth of the table, at least
// minAnalyzeRows).
//
// Autovacuum alone is too late for a young table. The claim is a prepared
// statement: its generic plan is made once and kept until the table's
// statistics change. Made while the table was empty, that plan believed it
// tiny and scanned all of it on every claim, so a failing or dead
// endpoint's growing backlog slowed claims for every endpoint until
// autovacuum first analyzed the table (a minute or more on a busy
// cluster). An ANALYZE here invalidates that plan as soon as the table has
// grown.
type statsKeeper struct {
	pool    *pgxpool.Pool
	log     *slog.Logger
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	since   atomic.Int64 // rows inserted since the last ANALYZE began
	next    atomic.Int64 // rows to insert before the next one
	running atomic.Bool
}

func newStatsKeeper(pool *pgxpool.Pool, log *slog.Logger) *statsKeeper {
	ctx, cancel := context.WithCancel(context.Background())
	k := &statsKeeper{pool: pool, log: log, ctx: ctx, cancel: cancel}
	k.next.Store(minAnalyzeRows)
	return k
}

// inserted notes n inserted deliveries and starts an ANALYZE in the
// background when due. It never blocks the caller.
func (k *statsKeeper) inserted(n int) {
	if n <= 0 || k.since.Add(int64(n)) < k.next.Load() || !k.running.CompareAndSwap(false, true) {
		return
	}
	k.since.Store(0)
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		defer k.running.Store(false)
		ctx, cancel := context.WithTimeout(k.ctx, time.Minute)
		defer cancel()
		var rows float64
		_, err := k.pool.Exec(ctx, `ANALYZE deliveries, events`)
		if err == nil {
			err = k.pool.QueryRow(ctx, `SELECT reltuples FROM pg_class WHERE oid = 'deliveries'::regclass`).Scan(&rows)
		}
		if err != nil {
			if k.ctx.Err() == nil {
				k.log.WarnContext(ctx, "analyze delivery tables; autovacuum will", "error", err)
			}
			return
		}
		k.next.Store(max(minAnalyzeRows, int64(rows/5)))
	}()
}

// close stops a running ANALYZE and waits for it.
func (k *statsKeeper) close() {
	k.cancel()
	k.wg.Wait()
}
