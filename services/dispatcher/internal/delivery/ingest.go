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
	return in.IngestBatch(ctx, []Event{ev})
}

// IngestBatch is Ingest for several events in one store transaction: all
// of them are stored, or none. Batching stream messages is what lets the
// store keep up with bursts (one commit per batch instead of per event).
func (in *Ingester) IngestBatch(ctx context.Context, evs []Event) (int, error) {
	if len(evs) == 0 {
		return 0, nil
	}
	endpoints, err := in.Store.AllEndpoints(ctx)
	if err != nil {
		return 0, fmt.Errorf("ingest %d events: %w", len(evs), err)
	}
	now := in.Now().UTC()
	var ds []Delivery
	for i := range evs {
		if evs[i].CreatedAt.IsZero() {
			evs[i].CreatedAt = now
		}
		for _, e := range endpoints {
			if e.Subscribes(evs[i].Name) {
				ds = append(ds, newDelivery(in.IDs, e.ID, evs[i], now))
			}
		}
	}
	n, err := in.Store.AddEvents(ctx, evs, ds)
	if err != nil {
		return 0, fmt.Errorf("ingest %d events from %s: %w", len(evs), evs[0].ID, err)
	}
	if n > 0 && in.Notify != nil {
		in.Notify()
	}
	return n, nil
}
