package pgstore

import (
	"context"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dsync-dev/dsync/services/dispatcher/internal/delivery"
)

// pruneDeliveriesSQL deletes a batch of finished deliveries past the
// horizon (index deliveries_finished) and returns their events; attempts go
// by ON DELETE CASCADE. The outer WHERE repeats the subquery's conditions:
// a delivery made pending again (a resend) after the subquery read it is
// then re-checked at its new version and kept.
const pruneDeliveriesSQL = `DELETE FROM deliveries
WHERE id IN (
    SELECT id FROM deliveries WHERE state <> 'pending' AND updated_at < $1
    ORDER BY updated_at LIMIT $2)
  AND state <> 'pending' AND updated_at < $1
RETURNING event_id`

// pruneFreedEventsSQL deletes, of the events $1, those past the horizon no
// delivery references (index deliveries_by_event).
const pruneFreedEventsSQL = `WITH gone AS (
    DELETE FROM events e
    WHERE e.id = ANY($1) AND e.created_at < $2
      AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id)
    RETURNING e.seq
), mark AS (` + markPrunedSQL + `)
SELECT count(*) FROM gone`

// markPrunedSQL raises the pruned watermark to the highest sequence in
// gone: AddEvents ingests no event at or below it again (see
// migrations/0004_retention.up.sql).
const markPrunedSQL = `
    UPDATE prune_state SET pruned_through_seq = (SELECT max(seq) FROM gone)
    WHERE (SELECT max(seq) FROM gone) > pruned_through_seq`

// sweepEventsSQL examines the events past the horizon after ($2, $3) in
// (created_at, id) order, at most $4, deletes those no delivery references
// and returns how many it examined and deleted and the last one examined.
const sweepEventsSQL = `WITH seen AS (
    SELECT id, created_at FROM events
    WHERE created_at < $1 AND created_at >= $2 AND (created_at > $2 OR id > $3)
    ORDER BY created_at, id LIMIT $4
), gone AS (
    DELETE FROM events e USING seen
    WHERE e.id = seen.id AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id)
    RETURNING e.seq
), mark AS (` + markPrunedSQL + `
), last AS (
    SELECT created_at, id FROM seen ORDER BY created_at DESC, id DESC LIMIT 1
)
SELECT (SELECT count(*) FROM seen), (SELECT count(*) FROM gone),
    (SELECT created_at FROM last), (SELECT id FROM last)`

// pruneLockKey is the advisory lock a batch takes, so that of several
// dispatchers sharing the database one prunes at a time: run together,
// they would wait on each other's rows, and two that delete different
// deliveries of one event would each see the other's and leave the event.
var pruneLockKey = func() int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte("dsync.dispatcher.prune")) // hash writes never fail
	return int64(h.Sum64())
}()

// Prune implements delivery.Store. A batch is one transaction: at most
// Limit deliveries (with their attempts) and 2×Limit events. When another
// dispatcher holds the batch lock, it does nothing and reports no more to
// do: that one is pruning.
func (s *Store) Prune(ctx context.Context, q delivery.PruneQuery) (delivery.PruneResult, error) {
	r := delivery.PruneResult{Next: q.After}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var locked bool
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, pruneLockKey).Scan(&locked); err != nil {
			return fmt.Errorf("take prune lock: %w", err)
		}
		if !locked {
			return nil
		}
		rows, err := tx.Query(ctx, pruneDeliveriesSQL, q.Before, q.Limit)
		if err != nil {
			return fmt.Errorf("delete deliveries: %w", err)
		}
		events, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("delete deliveries: %w", err)
		}
		r.Deliveries = len(events)
		if len(events) > 0 {
			var n int64
			if err := tx.QueryRow(ctx, pruneFreedEventsSQL, events, q.Before).Scan(&n); err != nil {
				return fmt.Errorf("delete their events: %w", err)
			}
			r.Events = int(n)
		}

		var seen, gone int64
		var lastAt *time.Time
		var lastID *string
		if err := tx.QueryRow(ctx, sweepEventsSQL, q.Before, q.After.CreatedAt, q.After.ID, q.Limit).
			Scan(&seen, &gone, &lastAt, &lastID); err != nil {
			return fmt.Errorf("sweep events: %w", err)
		}
		r.Events += int(gone)
		if lastAt != nil && lastID != nil {
			r.Next = delivery.EventPosition{CreatedAt: lastAt.UTC(), ID: *lastID}
		}
		r.More = r.Deliveries >= q.Limit || int(seen) >= q.Limit
		return nil
	})
	if err != nil {
		return delivery.PruneResult{}, fmt.Errorf("prune before %s: %w", q.Before.Format(time.RFC3339), err)
	}
	return r, nil
}
