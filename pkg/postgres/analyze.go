package postgres

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// MinAnalyzeRows is how many rows must be written before a StatsKeeper's
// first ANALYZE, and the least between two.
const MinAnalyzeRows = 500

// StatsKeeper runs ANALYZE on a service's tables once enough rows were
// written since the last one: a fifth of the rows the tables held then,
// at least MinAnalyzeRows.
//
// Autovacuum alone is too late for young tables. pgx prepares statements,
// and PostgreSQL keeps a statement's generic plan until the statistics of
// its tables change: made while a table was nearly empty, a plan that
// believes it tiny reads all of it (a sequential scan, or a whole partial
// index) for every call, a cost that grows with the table until autovacuum
// first analyzes it, a minute or more later on a busy cluster. Measured:
// the dispatcher's claims slowed with a failing endpoint's backlog; the
// projector joined each membership batch to every group by a sequential
// scan, so catching up with a stream slowed as it went. An ANALYZE here
// invalidates those plans as soon as the tables have grown.
type StatsKeeper struct {
	pool    *pgxpool.Pool
	log     *slog.Logger
	tables  []string
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	since   atomic.Int64 // rows written since the last ANALYZE began
	next    atomic.Int64 // rows to write before the next one
	running atomic.Bool
}

// NewStatsKeeper returns a keeper for tables (names in the pool's
// search_path); log receives failures (nil discards them). Close it before
// closing the pool.
func NewStatsKeeper(pool *pgxpool.Pool, log *slog.Logger, tables ...string) *StatsKeeper {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	k := &StatsKeeper{pool: pool, log: log, tables: tables, ctx: ctx, cancel: cancel}
	k.next.Store(MinAnalyzeRows)
	return k
}

// Wrote notes n written rows and starts an ANALYZE in the background when
// due. It never blocks the caller. A nil keeper does nothing.
func (k *StatsKeeper) Wrote(n int) {
	if k == nil || n <= 0 || k.since.Add(int64(n)) < k.next.Load() || !k.running.CompareAndSwap(false, true) {
		return
	}
	k.since.Store(0)
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		defer k.running.Store(false)
		if err := k.analyze(); err != nil && k.ctx.Err() == nil {
			k.log.WarnContext(k.ctx, "analyze tables; autovacuum will", "tables", k.tables, "error", err)
		}
	}()
}

func (k *StatsKeeper) analyze() error {
	ctx, cancel := context.WithTimeout(k.ctx, time.Minute)
	defer cancel()
	names := make([]string, 0, len(k.tables))
	for _, t := range k.tables {
		names = append(names, pgx.Identifier{t}.Sanitize())
	}
	if _, err := k.pool.Exec(ctx, `ANALYZE `+strings.Join(names, ", ")); err != nil {
		return err
	}
	var rows float64
	if err := k.pool.QueryRow(ctx, `SELECT coalesce(sum(greatest(reltuples, 0)), 0) FROM pg_class
		WHERE oid = ANY (SELECT to_regclass(t) FROM unnest($1::text[]) AS t)`, k.tables).Scan(&rows); err != nil {
		return err
	}
	k.next.Store(max(MinAnalyzeRows, int64(rows/5)))
	return nil
}

// Close stops a running ANALYZE and waits for it. A nil keeper does
// nothing.
func (k *StatsKeeper) Close() {
	if k == nil {
		return
	}
	k.cancel()
	k.wg.Wait()
}
