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

// newDelivery is a pending delivery of ev to endpointID, due at now.
func newDelivery(ids *event.IDs, endpointID string, ev Event, now time.Time) Delivery {
	return Delivery{
		ID:            ids.New(event.PrefixDelivery),
		EndpointID:    endpointID,
		EventID:       ev.ID,
		EventName:     ev.Name,
		Subject:       ev.Subject,
		DirectoryID:   event.DirectoryIDFromSubject(ev.Subject),
		Seq:           ev.Seq,
		State:         DeliveryPending,
		NextAttemptAt: now,
		CreatedAt:     now,
		UpdatedAt:     now,
	}
}

// Ingest stores ev and a pending, immediately due delivery for every
// endpoint subscribed to ev.Name. It is idempotent: ingesting the same event
// again inserts nothing new for endpoints that already have it. It returns
// the number of deliveries inserted.
//
// Disabled endpoints get their delivery too: it is not claimed while the
// endpoint is disabled and becomes due when it is enabled again. Deciding
// by the endpoint's state here instead would race with disabling it: an
// event stored just after (or, redelivered, out of stream order) would be
// neither delivered nor seen by the resume, which goes by stream sequence.
func (in *Ingester) Ingest(ctx context.Context, ev Event) (int, error) {
	endpoints, err := in.Store.AllEndpoints(ctx)
	if err != nil {
		return 0, fmt.Errorf("ingest %s: %w", ev.ID, err)
	}
	now := in.Now().UTC()
	if ev.CreatedAt.IsZero() {
		ev.CreatedAt = now
	}
	var ds []Delivery
	for _, e := range endpoints {
		if e.Subscribes(ev.Name) {
			ds = append(ds, newDelivery(in.IDs, e.ID, ev, now))
		}
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
