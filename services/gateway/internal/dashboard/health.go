package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/dsync-dev/dsync/pkg/event"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
)

type check struct {
	Name, State, Detail string
}

// consumerLag is a stream consumer's progress: events not yet delivered to
// it (Pending) and delivered but not yet acknowledged (AckPending).
type consumerLag struct {
	Name                string
	Pending, AckPending uint64
	Waiting             int
}

// backlog is an endpoint's deliveries still to be made.
type backlog struct {
	ID, URL, State string
	Pending        int
	More           bool
}

type healthData struct {
	Status    string
	Checks    []check
	Applied   uint64
	Stream    uint64
	Lag       uint64
	StatusErr string

	NATS        natsStatus
	Consumers   []consumerLag
	ConsumerErr string
	Backlogs    []backlog
	BacklogErr  string
	Charts      []chart
	// DeliveriesPartial is set when the deliveries chart counts only part
	// of a busy hour.
	DeliveriesPartial bool
}

type natsStatus struct {
	Status, Server, Version, RTT string
	Messages, Bytes              uint64
	FirstSeq, LastSeq            uint64
	StreamErr                    string
}

// health shows /healthz's checks, the consumers' lag, the delivery
// backlog and the last hour's throughput.
func (d *Dashboard) health(w http.ResponseWriter, r *http.Request) {
	var hz struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}
	err := d.call(r.Context(), http.MethodGet, "/healthz", nil, nil, &hz)
	if ae, ok := asAPIError(err); ok && ae.Status == http.StatusServiceUnavailable {
		// /healthz answers 503 with the failed checks in its body.
		_ = json.Unmarshal(ae.Body, &hz)
		hz.Status = "unavailable"
	} else if err != nil {
		d.fail(w, r, err)
		return
	}
	data := healthData{Status: hz.Status}
	for _, name := range []string{"nats", "stream", "projector", "dispatcher"} {
		c := check{Name: name, State: "ok"}
		if msg, bad := hz.Checks[name]; bad {
			c.State, c.Detail = "down", msg
		}
		data.Checks = append(data.Checks, c)
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var deliveryTimes []time.Time
	wg.Go(func() {
		ps, err := d.cfg.Directories.GetProjectionStatus(ctx, &dsyncv1.GetProjectionStatusRequest{})
		if err != nil {
			data.StatusErr = "The projector did not report its progress."
			return
		}
		data.Applied, data.Stream = ps.GetAppliedSequence(), ps.GetStreamSequence()
		if data.Stream > data.Applied {
			data.Lag = data.Stream - data.Applied
		}
	})
	wg.Go(func() { data.NATS, data.Consumers, data.ConsumerErr = d.natsHealth(ctx) })
	wg.Go(func() {
		data.Backlogs, deliveryTimes, data.DeliveriesPartial, data.BacklogErr = d.deliveryHealth(ctx)
	})
	wg.Wait()
	reqs, evs := d.stats.series()
	data.Charts = []chart{
		{Title: "SCIM requests", Unit: "requests", Counts: reqs},
		{Title: "Events", Unit: "events", Counts: evs},
		{Title: "Webhook delivery attempts", Unit: "attempts", Counts: bucketTimes(d.cfg.Now(), deliveryTimes)},
	}
	d.render(w, r, http.StatusOK, "health", page{Title: "Health", Nav: "health", Data: data})
}

// natsHealth reads the connection, the event stream and its consumers
// (the projector's and the dispatcher's) from JetStream.
func (d *Dashboard) natsHealth(ctx context.Context) (natsStatus, []consumerLag, string) {
	nc := d.cfg.NATS
	ns := natsStatus{Status: nc.Status().String(), Server: nc.ConnectedUrlRedacted(), Version: nc.ConnectedServerVersion()}
	if rtt, err := nc.RTT(); err == nil {
		ns.RTT = rtt.Round(10 * time.Microsecond).String()
	}
	js, err := jetstream.New(nc)
	if err != nil {
		ns.StreamErr = err.Error()
		return ns, nil, "JetStream is not available."
	}
	st, err := js.Stream(ctx, event.Stream)
	if err != nil {
		ns.StreamErr = "stream " + event.Stream + ": " + err.Error()
		return ns, nil, "The event stream is not available."
	}
	si := st.CachedInfo()
	ns.Messages, ns.Bytes, ns.FirstSeq, ns.LastSeq = si.State.Msgs, si.State.Bytes, si.State.FirstSeq, si.State.LastSeq
	var out []consumerLag
	lister := st.ListConsumers(ctx)
	for ci := range lister.Info() {
		out = append(out, consumerLag{Name: ci.Name, Pending: ci.NumPending, AckPending: uint64(ci.NumAckPending), Waiting: ci.NumWaiting})
	}
	if err := lister.Err(); err != nil {
		return ns, out, "Listing the stream's consumers failed: " + err.Error()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return ns, out, ""
}

// Limits of the delivery health: pending deliveries are counted up to one
// page per endpoint, the hour's attempts up to hourPages pages.
const hourPages = 5

// deliveryHealth counts each endpoint's pending deliveries and collects
// the start times of the last hour's delivery attempts.
func (d *Dashboard) deliveryHealth(ctx context.Context) ([]backlog, []time.Time, bool, string) {
	eps, err := d.cfg.Webhooks.ListEndpoints(ctx, &dsyncv1.ListEndpointsRequest{Page: &dsyncv1.Page{Limit: trackEndpoints}})
	if err != nil {
		return nil, nil, false, "The dispatcher did not list its endpoints."
	}
	var (
		out     []backlog
		times   []time.Time
		partial bool
	)
	hourAgo := d.cfg.Now().Add(-time.Hour)
	for _, ep := range eps.GetEndpoints() {
		b := backlog{ID: ep.GetId(), URL: ep.GetUrl(), State: "enabled"}
		if ep.GetState() == dsyncv1.EndpointState_ENDPOINT_STATE_DISABLED {
			b.State = "disabled"
		}
		pend, err := d.cfg.Webhooks.ListDeliveries(ctx, &dsyncv1.ListDeliveriesRequest{
			EndpointId: ep.GetId(), State: dsyncv1.DeliveryState_DELIVERY_STATE_PENDING, Page: &dsyncv1.Page{Limit: 100},
		})
		if err != nil {
			return out, times, partial, fmt.Sprintf("The dispatcher did not list the deliveries of %s.", ep.GetId())
		}
		b.Pending, b.More = len(pend.GetDeliveries()), pend.GetPageInfo().GetAfter() != ""
		out = append(out, b)
		after := ""
		for i := range hourPages {
			resp, err := d.cfg.Webhooks.ListDeliveries(ctx, &dsyncv1.ListDeliveriesRequest{
				EndpointId: ep.GetId(), CreatedAfter: timestamppb.New(hourAgo.Add(-24 * time.Hour)),
				Page: &dsyncv1.Page{Limit: 100, Order: dsyncv1.Order_ORDER_DESC, After: after},
			})
			if err != nil {
				break
			}
			for _, x := range resp.GetDeliveries() {
				for _, a := range x.GetAttemptsLog() {
					if t := a.GetStartedAt().AsTime(); t.After(hourAgo) {
						times = append(times, t)
					}
				}
			}
			if after = resp.GetPageInfo().GetAfter(); after == "" {
				break
			}
			if i == hourPages-1 {
				partial = true
			}
		}
	}
	return out, times, partial, ""
}
