package pgstore

import (
	"context"
	"fmt"
	"time"

	"github.com/dsync-dev/dsync/services/dispatcher/internal/delivery"
)

// deliveriesOfEventsSQL reads the deliveries of the events $1 (index
// deliveries_by_event) joined to their attempts: one row per attempt, one
// with a zero number for a delivery without any. A delivery's rows are
// adjacent, since (event_id, endpoint_id) is unique. COLLATE "C" orders by
// bytes whatever the database's collation, as the SQLite store does.
const deliveriesOfEventsSQL = `SELECT ` + deliveryCols + `,
    coalesce(a.number, 0), coalesce(a.started_at, d.created_at), coalesce(a.status_code, 0),
    coalesce(a.error, ''), coalesce(a.latency_us, 0), coalesce(a.response_body, '')
FROM deliveries d LEFT JOIN attempts a ON a.delivery_id = d.id
WHERE d.event_id = ANY($1::text[])
ORDER BY d.event_id COLLATE "C", d.endpoint_id COLLATE "C", a.number`

// DeliveriesOfEvents implements delivery.Store.
func (s *Store) DeliveriesOfEvents(ctx context.Context, eventIDs []string) ([]delivery.Delivery, error) {
	if len(eventIDs) == 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, deliveriesOfEventsSQL, eventIDs)
	if err != nil {
		return nil, fmt.Errorf("select deliveries of events: %w", err)
	}
	defer rows.Close()
	var out []delivery.Delivery
	for rows.Next() {
		var a delivery.Attempt
		var us int64
		d, err := scanDelivery(rows, &a.Number, &a.StartedAt, &a.StatusCode, &a.Error, &us, &a.ResponseBody)
		if err != nil {
			return nil, fmt.Errorf("select deliveries of events: %w", err)
		}
		if n := len(out); n == 0 || out[n-1].ID != d.ID {
			out = append(out, d)
		}
		if a.Number == 0 {
			continue // a delivery not attempted yet
		}
		a.DeliveryID, a.StartedAt, a.Latency = d.ID, a.StartedAt.UTC(), time.Duration(us)*time.Microsecond
		last := &out[len(out)-1]
		last.AttemptLog = append(last.AttemptLog, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("select deliveries of events: %w", err)
	}
	return out, nil
}
