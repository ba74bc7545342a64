package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/dsync-dev/dsync/services/dispatcher/internal/delivery"
)

// Prune implements delivery.Store. Each part is one immediate transaction,
// so the worker's writes wait for one batch at most.
func (s *Store) Prune(ctx context.Context, q delivery.PruneQuery) (delivery.PruneResult, error) {
	r := delivery.PruneResult{Next: q.After}
	before := micros(q.Before)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		r.Deliveries, r.Events, err = pruneDeliveries(ctx, tx, before, q.Limit)
		return err
	})
	if err != nil {
		return delivery.PruneResult{}, fmt.Errorf("prune before %s: %w", q.Before.Format(time.RFC3339), err)
	}
	var seen, gone int
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		seen, gone, r.Next, err = sweepEvents(ctx, tx, before, q.After, q.Limit)
		return err
	})
	if err != nil {
		return delivery.PruneResult{}, fmt.Errorf("prune before %s: sweep events: %w", q.Before.Format(time.RFC3339), err)
	}
	r.Events += gone
	r.More = r.Deliveries >= q.Limit || seen >= q.Limit
	return r, nil
}

// pruneDeliveries deletes up to limit finished deliveries updated before
// before (index deliveries_finished) with their attempts, then those of
// their events created before before that no delivery references any more.
func pruneDeliveries(ctx context.Context, tx *sql.Tx, before int64, limit int) (deliveries, events int, err error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, event_id FROM deliveries
		WHERE state <> 'pending' AND updated_at < ? ORDER BY updated_at LIMIT ?`, before, limit)
	if err != nil {
		return 0, 0, fmt.Errorf("select deliveries: %w", err)
	}
	var ids, eventIDs []string
	for rows.Next() {
		var id, ev string
		if err := rows.Scan(&id, &ev); err != nil {
			_ = rows.Close()
			return 0, 0, fmt.Errorf("select deliveries: %w", err)
		}
		ids, eventIDs = append(ids, id), append(eventIDs, ev)
	}
	if err := rows.Close(); err != nil {
		return 0, 0, fmt.Errorf("select deliveries: %w", err)
	}
	if err := rows.Err(); err != nil {
		return 0, 0, fmt.Errorf("select deliveries: %w", err)
	}
	if len(ids) == 0 {
		return 0, 0, nil
	}
	idList, err := json.Marshal(ids)
	if err != nil {
		return 0, 0, fmt.Errorf("encode ids: %w", err)
	}
	// Foreign keys may be off in SQLite; delete the children explicitly.
	if _, err := tx.ExecContext(ctx, `DELETE FROM attempts WHERE delivery_id IN (SELECT value FROM json_each(?))`,
		string(idList)); err != nil {
		return 0, 0, fmt.Errorf("delete attempts: %w", err)
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM deliveries WHERE id IN (SELECT value FROM json_each(?))`, string(idList))
	if err != nil {
		return 0, 0, fmt.Errorf("delete deliveries: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, 0, fmt.Errorf("delete deliveries: %w", err)
	}
	evList, err := json.Marshal(eventIDs)
	if err != nil {
		return 0, 0, fmt.Errorf("encode event ids: %w", err)
	}
	m, err := deleteUnreferenced(ctx, tx, string(evList), before)
	if err != nil {
		return 0, 0, fmt.Errorf("delete their events: %w", err)
	}
	return int(n), m, nil
}

// deleteUnreferenced deletes, of the events whose ids are in the JSON array
// list, those created before before that no delivery references (index
// deliveries_by_event).
// It raises the pruned watermark to the highest sequence deleted.
func deleteUnreferenced(ctx context.Context, tx *sql.Tx, list string, before int64) (int, error) {
	rows, err := tx.QueryContext(ctx, `DELETE FROM events
		WHERE id IN (SELECT value FROM json_each(?1)) AND created_at < ?2
		  AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = events.id)
		RETURNING seq`, list, before)
	if err != nil {
		return 0, err
	}
	n, top := 0, int64(0)
	for rows.Next() {
		var seq int64
		if err := rows.Scan(&seq); err != nil {
			_ = rows.Close()
			return 0, err
		}
		n, top = n+1, max(top, seq)
	}
	if err := rows.Close(); err != nil {
		return 0, err
	}
	if err := rows.Err(); err != nil {
		return 0, err
	}
	if n > 0 {
		if _, err := tx.ExecContext(ctx, `UPDATE prune_state SET pruned_through_seq = max(pruned_through_seq, ?1)`, top); err != nil {
			return 0, fmt.Errorf("raise pruned watermark: %w", err)
		}
	}
	return n, nil
}

// sweepEvents examines up to limit events created before before that
// follow after in (created_at, id) order and deletes those no delivery
// references. It returns how many it examined and deleted, and the last
// one examined (after when none).
func sweepEvents(ctx context.Context, tx *sql.Tx, before int64, after delivery.EventPosition, limit int) (seen, gone int, last delivery.EventPosition, err error) {
	last = after
	rows, err := tx.QueryContext(ctx, `SELECT id, created_at FROM events
		WHERE created_at < ?1 AND created_at >= ?2 AND (created_at > ?2 OR id > ?3)
		ORDER BY created_at, id LIMIT ?4`, before, micros(after.CreatedAt), after.ID, limit)
	if err != nil {
		return 0, 0, after, fmt.Errorf("select events: %w", err)
	}
	var ids []string
	var lastAt int64
	for rows.Next() {
		if err := rows.Scan(&last.ID, &lastAt); err != nil {
			_ = rows.Close()
			return 0, 0, after, fmt.Errorf("select events: %w", err)
		}
		ids = append(ids, last.ID)
	}
	if err := rows.Close(); err != nil {
		return 0, 0, after, fmt.Errorf("select events: %w", err)
	}
	if err := rows.Err(); err != nil {
		return 0, 0, after, fmt.Errorf("select events: %w", err)
	}
	if len(ids) == 0 {
		return 0, 0, after, nil
	}
	last.CreatedAt = fromMicros(lastAt)
	list, err := json.Marshal(ids)
	if err != nil {
		return 0, 0, after, fmt.Errorf("encode event ids: %w", err)
	}
	if gone, err = deleteUnreferenced(ctx, tx, string(list), before); err != nil {
		return 0, 0, after, fmt.Errorf("delete events: %w", err)
	}
	return len(ids), gone, last, nil
}
