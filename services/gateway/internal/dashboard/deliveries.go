package dashboard

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/dsync-dev/dsync/pkg/event"
	"github.com/dsync-dev/dsync/pkg/workos"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
	"github.com/dsync-dev/dsync/services/gateway/internal/backenderr"
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

// newLiveDelivery summarizes x; an endpoint whose URL is not known (past
// the endpoints listed) shows its id instead.
func newLiveDelivery(x *dsyncv1.Delivery, endpointURL string) LiveDelivery {
	if endpointURL == "" {
		endpointURL = x.GetEndpointId()
	}
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
	// trackedEvents is as many events as one ListEventDeliveries call
	// names: one call per poll follows them all.
	trackedEvents   = maxEventIDs
	trackFor        = 10 * time.Minute
	trackEndpoints  = 100
	trackDeliveries = 100
)

// deliveryTracker follows the deliveries of the events a live view shows.
// The dispatcher publishes nothing live, so the tracker asks it, once per
// poll, for the deliveries of the tracked events and keeps those whose
// state or attempts changed since last told.
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

// poll returns the deliveries that are new or changed, oldest event first
// (the page puts each new item on top). Errors are not the viewer's
// business: the next poll tries again.
func (t *deliveryTracker) poll(ctx context.Context, d *Dashboard) []LiveDelivery {
	if !t.active() {
		return nil
	}
	since := t.now()
	ids := make([]string, 0, len(t.events))
	for id, at := range t.events {
		ids = append(ids, id)
		if at.Before(since) {
			since = at
		}
	}
	slices.Sort(ids)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ds, err := d.eventDeliveries(ctx, ids, since, 1)
	if err != nil {
		return nil
	}
	var changed []*dsyncv1.Delivery
	for _, x := range ds {
		fp := fmt.Sprintf("%d/%d/%d", x.GetState(), x.GetAttempts(), len(x.GetAttemptsLog()))
		if t.told[x.GetId()] == fp {
			continue
		}
		if len(t.told) >= 10*trackedEvents {
			clear(t.told) // at worst a delivery is sent again
		}
		t.told[x.GetId()] = fp
		changed = append(changed, x)
	}
	if len(changed) == 0 {
		return nil // nothing to show: the endpoints' URLs are not needed
	}
	urls := d.endpointURLs(ctx)
	out := make([]LiveDelivery, 0, len(changed))
	for _, x := range changed {
		out = append(out, newLiveDelivery(x, urls[x.GetEndpointId()]))
	}
	return out
}

// maxEventIDs is how many events one ListEventDeliveries call may name.
const maxEventIDs = 100

// eventDeliveries returns the deliveries of eventIDs (at most maxEventIDs)
// to every endpoint, in event id then endpoint id order, each with its
// attempts: one ListEventDeliveries call.
//
// A dispatcher older than the gateway (during an upgrade that started with
// the gateway) answers Unimplemented; then the deliveries are found as
// before that call existed: each of the first trackEndpoints endpoints is
// asked for up to pages pages of its deliveries created since since, and
// those of eventIDs are kept. The first fallback is logged, and the new
// call is tried again each time, so an upgraded dispatcher is used at once.
// maxEventDeliveriesReply bounds a ListEventDeliveries reply the dashboard
// accepts.
const maxEventDeliveriesReply = 64 << 20

func (d *Dashboard) eventDeliveries(ctx context.Context, eventIDs []string, since time.Time, pages int) ([]*dsyncv1.Delivery, error) {
	// One id the dispatcher refuses would hide every event's deliveries.
	eventIDs = slices.DeleteFunc(slices.Clone(eventIDs), func(id string) bool { return !event.ValidID(id, event.PrefixEvent) })
	if len(eventIDs) == 0 {
		return nil, nil
	}
	// The reply carries every endpoint's deliveries of up to 100 events with
	// their attempts (each with up to 4 KiB of response body): more than
	// gRPC's default 4 MiB limit once many endpoints fail.
	resp, err := d.cfg.Webhooks.ListEventDeliveries(ctx, &dsyncv1.ListEventDeliveriesRequest{EventIds: eventIDs},
		grpc.MaxCallRecvMsgSize(maxEventDeliveriesReply))
	if err == nil {
		d.scanningDeliveries.Store(false)
		return resp.GetDeliveries(), nil
	}
	if kind, _ := backenderr.Classify(err); kind != backenderr.Misconfigured {
		return nil, err
	}
	if !d.scanningDeliveries.Swap(true) {
		d.log.WarnContext(ctx, "dashboard: the dispatcher does not implement ListEventDeliveries (older than the gateway); "+
			"asking each endpoint for its deliveries until it is upgraded", "error", err)
	}
	return d.scanDeliveries(ctx, eventIDs, since, pages)
}

// scanDeliveries is eventDeliveries endpoint by endpoint, for a dispatcher
// without ListEventDeliveries. It misses the deliveries of endpoints past
// the first trackEndpoints and those older than the pages it reads.
func (d *Dashboard) scanDeliveries(ctx context.Context, eventIDs []string, since time.Time, pages int) ([]*dsyncv1.Delivery, error) {
	want := make(map[string]bool, len(eventIDs))
	for _, id := range eventIDs {
		want[id] = true
	}
	eps, err := d.cfg.Webhooks.ListEndpoints(ctx, &dsyncv1.ListEndpointsRequest{Page: &dsyncv1.Page{Limit: trackEndpoints}})
	if err != nil {
		return nil, err
	}
	var out []*dsyncv1.Delivery
	for _, ep := range eps.GetEndpoints() {
		after := ""
		for range pages {
			resp, err := d.cfg.Webhooks.ListDeliveries(ctx, &dsyncv1.ListDeliveriesRequest{
				EndpointId: ep.GetId(), CreatedAfter: timestamppb.New(since.Add(-time.Minute)),
				Page: &dsyncv1.Page{Limit: trackDeliveries, Order: dsyncv1.Order_ORDER_DESC, After: after},
			})
			if err != nil {
				break
			}
			for _, x := range resp.GetDeliveries() {
				if want[x.GetEventId()] {
					out = append(out, x)
				}
			}
			if after = resp.GetPageInfo().GetAfter(); after == "" {
				break
			}
		}
	}
	// The order ListEventDeliveries answers in.
	slices.SortFunc(out, func(a, b *dsyncv1.Delivery) int {
		return cmp.Or(strings.Compare(a.GetEventId(), b.GetEventId()), strings.Compare(a.GetEndpointId(), b.GetEndpointId()))
	})
	return out, nil
}

// endpointURLs maps the first trackEndpoints endpoints' ids to their URLs,
// for display; empty when the dispatcher does not answer. A delivery of
// any other endpoint shows the endpoint's id (newLiveDelivery).
func (d *Dashboard) endpointURLs(ctx context.Context) map[string]string {
	urls := map[string]string{}
	eps, err := d.cfg.Webhooks.ListEndpoints(ctx, &dsyncv1.ListEndpointsRequest{Page: &dsyncv1.Page{Limit: trackEndpoints}})
	if err != nil {
		return urls
	}
	for _, ep := range eps.GetEndpoints() {
		urls[ep.GetId()] = ep.GetUrl()
	}
	return urls
}
