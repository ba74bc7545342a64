package dashboard

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/dsync-dev/dsync/pkg/workos"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
)

// LiveDelivery is a webhook delivery of an event, with its attempts, as the
// live view shows it. It carries no payload or response body.
type LiveDelivery struct {
	ID            string        `json:"id"`
	EndpointID    string        `json:"endpoint_id"`
	EndpointURL   string        `json:"endpoint_url"`
	EventID       string        `json:"event_id"`
	Event         string        `json:"event"`
	State         string        `json:"state"`
	NextAttemptAt string        `json:"next_attempt_at,omitempty"`
	Attempts      []LiveAttempt `json:"attempts"`
}

// LiveAttempt is one attempt of a delivery.
type LiveAttempt struct {
	Number     int32   `json:"number"`
	StartedAt  string  `json:"started_at"`
	StatusCode int32   `json:"status_code,omitempty"`
	LatencyMS  float64 `json:"latency_ms"`
	Error      string  `json:"error,omitempty"`
}

func newLiveDelivery(x *dsyncv1.Delivery, endpointURL string) LiveDelivery {
	out := LiveDelivery{
		ID: x.GetId(), EndpointID: x.GetEndpointId(), EndpointURL: endpointURL, EventID: x.GetEventId(),
		Event: x.GetEvent(), State: deliveryState(x.GetState()), Attempts: []LiveAttempt{},
	}
	if x.GetNextAttemptAt() != nil && x.GetState() == dsyncv1.DeliveryState_DELIVERY_STATE_PENDING {
		out.NextAttemptAt = workos.FormatTime(x.GetNextAttemptAt().AsTime())
	}
	for _, a := range x.GetAttemptsLog() {
		out.Attempts = append(out.Attempts, LiveAttempt{
			Number: a.GetNumber(), StartedAt: workos.FormatTime(a.GetStartedAt().AsTime()), StatusCode: a.GetStatusCode(),
			LatencyMS: float64(a.GetLatency().AsDuration().Microseconds()) / 1000, Error: a.GetError(),
		})
	}
	return out
}

// Limits of a live view's delivery tracking.
const (
	trackedEvents   = 500
	trackFor        = 10 * time.Minute
	trackEndpoints  = 100
	trackDeliveries = 100
)

// deliveryTracker follows the deliveries of the events a live view shows.
// The dispatcher publishes nothing live, so the tracker asks it: for each
// endpoint, the deliveries created since the oldest tracked event, keeping
// those of tracked events whose state or attempts changed since last told.
type deliveryTracker struct {
	now    func() time.Time
	events map[string]time.Time
	told   map[string]string // delivery id → state and attempt count last sent
}

func newDeliveryTracker(now func() time.Time) *deliveryTracker {
	return &deliveryTracker{now: now, events: map[string]time.Time{}, told: map[string]string{}}
}

func (t *deliveryTracker) track(eventID string, at time.Time) {
	if len(t.events) >= trackedEvents {
		var oldest string
		for id, seen := range t.events {
			if oldest == "" || seen.Before(t.events[oldest]) {
				oldest = id
			}
		}
		delete(t.events, oldest)
	}
	t.events[eventID] = at
}

// active drops events older than trackFor and reports whether any remain.
func (t *deliveryTracker) active() bool {
	cut := t.now().Add(-trackFor)
	for id, at := range t.events {
		if at.Before(cut) {
			delete(t.events, id)
		}
	}
	return len(t.events) > 0
}

// poll returns the deliveries that are new or changed. Errors are not the
// viewer's business: the next poll tries again.
func (t *deliveryTracker) poll(ctx context.Context, wh dsyncv1.WebhookServiceClient) []LiveDelivery {
	if !t.active() {
		return nil
	}
	since := t.now()
	for _, at := range t.events {
		if at.Before(since) {
			since = at
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	eps, err := wh.ListEndpoints(ctx, &dsyncv1.ListEndpointsRequest{Page: &dsyncv1.Page{Limit: trackEndpoints}})
	if err != nil {
		return nil
	}
	var out []LiveDelivery
	for _, ep := range eps.GetEndpoints() {
		resp, err := wh.ListDeliveries(ctx, &dsyncv1.ListDeliveriesRequest{
			EndpointId:   ep.GetId(),
			Page:         &dsyncv1.Page{Limit: trackDeliveries, Order: dsyncv1.Order_ORDER_DESC},
			CreatedAfter: timestamppb.New(since.Add(-time.Minute)),
		})
		if err != nil {
			continue
		}
		for _, x := range resp.GetDeliveries() {
			if _, ok := t.events[x.GetEventId()]; !ok {
				continue
			}
			fp := fmt.Sprintf("%d/%d/%d", x.GetState(), x.GetAttempts(), len(x.GetAttemptsLog()))
			if t.told[x.GetId()] == fp {
				continue
			}
			if len(t.told) >= 10*trackedEvents {
				clear(t.told) // at worst a delivery is sent again
			}
			t.told[x.GetId()] = fp
			out = append(out, newLiveDelivery(x, ep.GetUrl()))
		}
	}
	// Oldest first, as the page inserts on top.
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}
