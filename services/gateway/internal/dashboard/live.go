package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/dsync-dev/dsync/pkg/event"
	"github.com/dsync-dev/dsync/pkg/workos"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
)

const (
	// liveBuffer is how many events a slow browser may fall behind before
	// the stream drops events (and says so) rather than hold NATS back.
	liveBuffer = 256
	// heartbeat keeps proxies from closing an idle stream.
	heartbeat = 25 * time.Second
)

// LiveEvent is one event as the live view shows it: what happened, to
// what, when, and through which request. It never carries attributes,
// which may hold personal data beyond what the page needs.
type LiveEvent struct {
	ID string `json:"id"`
	// Event is the webhook name (dsync.user.created) or, for events that
	// are not sent as webhooks, the internal type (directory.updated).
	Event      string `json:"event"`
	OccurredAt string `json:"occurred_at"`
	// Kind is user, group, membership or directory.
	Kind string `json:"kind"`
	// ResourceID and Label name the resource; URL links to its page when
	// the dashboard has one.
	ResourceID string   `json:"resource_id"`
	Label      string   `json:"label"`
	URL        string   `json:"url,omitempty"`
	State      string   `json:"state,omitempty"`
	Source     string   `json:"source,omitempty"`
	Provider   string   `json:"provider,omitempty"`
	RequestID  string   `json:"request_id,omitempty"`
	Reason     string   `json:"reason,omitempty"`
	Changed    []string `json:"changed,omitempty"`
}

// NewLiveEvent summarizes ev for the live view.
func NewLiveEvent(ev *dsyncv1.Event) LiveEvent {
	name, ok := workos.EventName(ev.GetType())
	if !ok {
		name = strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(ev.GetType().String(), "EVENT_TYPE_"), "_", "."))
	}
	le := LiveEvent{
		ID: ev.GetId(), Event: name, Source: ev.GetSource().GetApi(), Provider: ev.GetSource().GetProvider(),
		RequestID: ev.GetSource().GetRequestId(), Changed: ev.GetChangedAttributes(),
	}
	if t := ev.GetOccurredAt(); t != nil {
		le.OccurredAt = workos.FormatTime(t.AsTime())
	}
	if ev.GetReason() != dsyncv1.Reason_REASON_UNSPECIFIED {
		le.Reason = strings.ToLower(strings.TrimPrefix(ev.GetReason().String(), "REASON_"))
	}
	switch p := ev.GetPayload().(type) {
	case *dsyncv1.Event_User:
		u := p.User
		le.Kind, le.ResourceID, le.State = "user", u.GetId(), workos.UserState(u.GetState())
		le.Label = firstNonEmpty(u.GetEmail(), u.GetUserName(), strings.TrimSpace(u.GetFirstName()+" "+u.GetLastName()), u.GetId())
		if ev.GetType() != dsyncv1.EventType_EVENT_TYPE_USER_DELETED {
			le.URL = "/dashboard/users/" + u.GetId()
		}
	case *dsyncv1.Event_Group:
		le.Kind, le.ResourceID, le.Label = "group", p.Group.GetId(), firstNonEmpty(p.Group.GetName(), p.Group.GetId())
	case *dsyncv1.Event_Membership:
		m := p.Membership
		user := firstNonEmpty(m.GetUser().GetEmail(), m.GetUser().GetUserName(), m.GetUserId())
		group := firstNonEmpty(m.GetGroup().GetName(), m.GetGroupId())
		le.Kind, le.ResourceID, le.Label = "membership", m.GetGroupId()+"/"+m.GetUserId(), user+" → "+group
	case *dsyncv1.Event_Directory:
		le.Kind, le.ResourceID, le.Label = "directory", p.Directory.GetId(), p.Directory.GetName()
		le.State = workos.DirectoryState(p.Directory.GetState())
	}
	return le
}

// liveStream streams a directory's activity as server-sent events: each
// SCIM request as it is served ("request", from the request log on core
// NATS), each event as it is appended ("event", a core NATS subscription
// to the directory's event subjects) and each webhook delivery of those
// events with its attempts ("delivery", polled from the dispatcher while
// deliveries are under way). The stream starts with the directory's last
// requests and events, so the page is not empty when it opens.
func (d *Dashboard) liveStream(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	// The id becomes part of a subject: only a well-formed directory id may,
	// never a wildcard or a dotted path that would widen the subscription.
	if !event.ValidID(id, event.PrefixDirectory) {
		http.Error(w, "unknown directory", http.StatusNotFound)
		return
	}
	rc := http.NewResponseController(w)

	msgs := make(chan *nats.Msg, liveBuffer)
	var dropped atomic.Int64
	enqueue := func(m *nats.Msg) {
		select {
		case msgs <- m:
		default:
			dropped.Add(1)
		}
	}
	var subs []*nats.Subscription
	defer func() {
		for _, s := range subs {
			_ = s.Unsubscribe()
		}
	}()
	for _, subject := range []string{event.DirectoryEventsSubject(id), RequestSubject(id)} {
		sub, err := d.cfg.NATS.Subscribe(subject, enqueue)
		if err != nil {
			d.logError(r, "live subscribe", err)
			http.Error(w, "live view unavailable", http.StatusServiceUnavailable)
			return
		}
		subs = append(subs, sub)
	}
	// Flush makes the subscriptions known to the server before the browser
	// is told it is live: an event appended after "ready" is never missed.
	fctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	err := d.cfg.NATS.FlushWithContext(fctx)
	cancel()
	if err != nil {
		d.logError(r, "live subscribe flush", err)
		http.Error(w, "live view unavailable", http.StatusServiceUnavailable)
		return
	}

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	send := func(name string, data any) error {
		b, err := json.Marshal(data)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", name, b); err != nil {
			return err
		}
		return rc.Flush()
	}
	if _, err := fmt.Fprint(w, "retry: 3000\n\n"); err != nil {
		return
	}
	if send("ready", map[string]string{"directory_id": id}) != nil {
		return
	}

	tracker := newDeliveryTracker(d.cfg.Now)
	// The recent past, oldest first (the page puts each new item on top).
	recent := d.stats.recent(id, livePrefill)
	for i := len(recent) - 1; i >= 0; i-- {
		if send("request", recent[i]) != nil {
			return
		}
	}
	for _, ev := range d.recentEvents(r.Context(), id) {
		tracker.track(ev.GetId(), ev.GetOccurredAt().AsTime())
		if send("event", NewLiveEvent(ev)) != nil {
			return
		}
	}

	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	poll := time.NewTicker(deliveryPoll)
	defer poll.Stop()
	pollNow := true
	for {
		if pollNow {
			pollNow = false
			for _, dv := range tracker.poll(r.Context(), d) {
				if send("delivery", dv) != nil {
					return
				}
			}
		}
		select {
		case <-r.Context().Done():
			return
		case <-d.done:
			return
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		case <-poll.C:
			pollNow = tracker.active()
		case m := <-msgs:
			if n := dropped.Swap(0); n > 0 {
				if send("dropped", map[string]int64{"count": n}) != nil {
					return
				}
			}
			if m.Subject == RequestSubject(id) {
				var req SCIMRequest
				if json.Unmarshal(m.Data, &req) == nil && send("request", req) != nil {
					return
				}
				continue
			}
			ev, err := event.Decode(m.Data)
			if err != nil {
				continue // not an event; the consumers terminate it
			}
			tracker.track(ev.GetId(), d.cfg.Now())
			if send("event", NewLiveEvent(ev)) != nil {
				return
			}
		}
	}
}

const (
	// livePrefill is how many recent requests and events a live view
	// starts with.
	livePrefill = 20
	// deliveryPoll is how often a live view asks the dispatcher about the
	// deliveries of the events it shows, while any may still change.
	deliveryPoll = 2 * time.Second
)

// recentEvents returns the directory's last events, oldest first; none
// when the read model cannot say (the live part still works).
func (d *Dashboard) recentEvents(ctx context.Context, dirID string) []*dsyncv1.Event {
	resp, err := d.cfg.Directories.ListEvents(ctx, &dsyncv1.ListEventsRequest{
		Filter: &dsyncv1.EventFilter{DirectoryId: dirID},
		Page:   &dsyncv1.Page{Limit: livePrefill, Order: dsyncv1.Order_ORDER_DESC},
	})
	if err != nil {
		return nil
	}
	evs := resp.GetEvents()
	out := make([]*dsyncv1.Event, 0, len(evs))
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].GetEvent().GetDirectoryId() == dirID || evs[i].GetEvent().GetDirectoryId() == "" {
			out = append(out, evs[i].GetEvent())
		}
	}
	return out
}
