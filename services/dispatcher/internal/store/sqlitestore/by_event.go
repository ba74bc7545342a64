package sqlitestore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/dsync-dev/dsync/services/dispatcher/internal/delivery"
)

// deliveriesOfEventsSQL reads the deliveries of the events in the JSON
// array ?1 (index deliveries_by_event) joined to their attempts: one row
// per attempt, one with a zero number for a delivery without any. A
// delivery's rows are adjacent, since (event_id, endpoint_id) is unique.
const deliveriesOfEventsSQL = `SELECT ` + deliveryCols + `,
    coalesce(a.number, 0), coalesce(a.started_at, 0), coalesce(a.status_code, 0),
    coalesce(a.error, ''), coalesce(a.latency_us, 0), coalesce(a.response_body, '')
FROM deliveries d LEFT JOIN attempts a ON a.delivery_id = d.id
WHERE d.event_id IN (SELECT value FROM json_each(?1))
ORDER BY d.event_id, d.endpoint_id, a.number`

// DeliveriesOfEvents implements delivery.Store.
func (s *Store) DeliveriesOfEvents(ctx context.Context, eventIDs []string) ([]delivery.Delivery, error) {
	if len(eventIDs) == 0 {
		return nil, nil
	}
	ids, err := json.Marshal(eventIDs)
	if err != nil {
		return nil, fmt.Errorf("deliveries of events: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, deliveriesOfEventsSQL, string(ids))
	if err != nil {
		return nil, fmt.Errorf("select deliveries of events: %w", err)
	}
	defer rows.Close()
	var out []delivery.Delivery
	for rows.Next() {
		var a delivery.Attempt
		var started, us int64
		d, err := scanDelivery(rows, &a.Number, &started, &a.StatusCode, &a.Error, &us, &a.ResponseBody)
		if err != nil {
			return nil, fmt.Errorf("select deliveries of events: %w", err)
		}
		if n := len(out); n == 0 || out[n-1].ID != d.ID {
			out = append(out, d)
		}
		if a.Number == 0 {
			continue // a delivery not attempted yet
		}
		a.DeliveryID, a.StartedAt, a.Latency = d.ID, fromMicros(started), time.Duration(us)*time.Microsecond
		last := &out[len(out)-1]
		last.AttemptLog = append(last.AttemptLog, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("select deliveries of events: %w", err)
	}
	return out, nil
}
