package delivery

import (
	"context"
	"fmt"
	"time"

	"github.com/dsync-dev/dsync/pkg/event"
)

// Ingester turns public events into durable deliveries.
type Ingester struct {
	Store Store
	IDs   *event.IDs
	// Notify is called after deliveries were inserted so the worker sends
	// them now rather than at its next poll.
	Notify func()
	Now    func() time.Time
}

// Ingest stores ev and a pending, immediately due delivery for every
// enabled endpoint subscribed to ev.Name. It is idempotent: ingesting the
// same event again inserts nothing new for endpoints that already have it.
// It returns the number of deliveries inserted.
func (in *Ingester) Ingest(ctx context.Context, ev Event) (int, error) {
	endpoints, err := in.Store.EnabledEndpoints(ctx)
	if err != nil {
		return 0, fmt.Errorf("ingest %s: %w", ev.ID, err)
	}
	now := in.Now().UTC()
	if ev.CreatedAt.IsZero() {
		ev.CreatedAt = now
	}
	var ds []Delivery
	for _, e := range endpoints {
		if !e.Subscribes(ev.Name) {
			continue
		}
		ds = append(ds, Delivery{
			ID:            in.IDs.New(event.PrefixDelivery),
			EndpointID:    e.ID,
			EventID:       ev.ID,
			EventName:     ev.Name,
			Subject:       ev.Subject,
			Seq:           ev.Seq,
			State:         DeliveryPending,
			NextAttemptAt: now,
			CreatedAt:     now,
			UpdatedAt:     now,
		})
	}
	n, err := in.Store.AddEvent(ctx, ev, ds)
	if err != nil {
		return 0, fmt.Errorf("ingest %s: %w", ev.ID, err)
	}
	if n > 0 && in.Notify != nil {
		in.Notify()
	}
	return n, nil
}
