package dashboard

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/dsync-dev/dsync/pkg/event"
	"github.com/dsync-dev/dsync/pkg/workos"
)

// The endpoint page: its delivery log with filters and every attempt, and
// the operations on it (rotate the secret, resend one delivery, recover
// failed ones, replay events), all through the REST API.

// restDelivery is the REST form of a delivery with its attempts.
type restDelivery struct {
	ID             string        `json:"id"`
	EventID        string        `json:"event_id"`
	Event          string        `json:"event"`
	State          string        `json:"state"`
	AttemptCount   int32         `json:"attempt_count"`
	LastStatusCode *int32        `json:"last_status_code"`
	LastError      *string       `json:"last_error"`
	NextAttemptAt  *string       `json:"next_attempt_at"`
	Attempts       []restAttempt `json:"attempts"`
	CreatedAt      string        `json:"created_at"`
}

type restAttempt struct {
	Number       int32   `json:"number"`
	StartedAt    string  `json:"started_at"`
	StatusCode   *int32  `json:"status_code"`
	LatencyMS    float64 `json:"latency_ms"`
	Error        *string `json:"error"`
	ResponseBody string  `json:"response_body"`
}

// deliveryFilter is the delivery log's filter form.
type deliveryFilter struct {
	State, Event, Since string
}

type webhookData struct {
	Endpoint   endpoint
	Deliveries []restDelivery
	Pager      pager
	Filter     deliveryFilter
	EventNames []string
	Error      string
	// Now prefills the recover and replay forms (an hour ago, local form).
	HourAgo string
}

// datetimeLocal is the format of <input type="datetime-local">; the
// dashboard reads it as UTC, and says so.
const datetimeLocal = "2006-01-02T15:04"

func (d *Dashboard) endpointID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("id")
	if !event.ValidID(id, event.PrefixEndpoint) {
		d.renderError(w, r, http.StatusNotFound, "Not found", "There is no webhook endpoint "+id+".")
		return "", false
	}
	return id, true
}

func (d *Dashboard) webhook(w http.ResponseWriter, r *http.Request) {
	d.renderWebhook(w, r, http.StatusOK, "")
}

func (d *Dashboard) renderWebhook(w http.ResponseWriter, r *http.Request, status int, formErr string) {
	id, ok := d.endpointID(w, r)
	if !ok {
		return
	}
	var ep endpoint
	if err := d.call(r.Context(), http.MethodGet, "/webhook_endpoints/"+id, nil, nil, &ep); err != nil {
		d.fail(w, r, err)
		return
	}
	ep.Secret = "" // never rendered after creation
	qs := r.URL.Query()
	f := deliveryFilter{State: qs.Get("state"), Event: qs.Get("event"), Since: qs.Get("since")}
	q := cursorQuery(r, url.Values{"limit": {strconv.Itoa(pageSize)}, "order": {"desc"}})
	base := url.Values{}
	switch f.State {
	case "pending", "succeeded", "failed":
		q.Set("state", f.State)
		base.Set("state", f.State)
	default:
		f.State = ""
	}
	if workos.IsEventName(f.Event) {
		q.Set("event", f.Event)
		base.Set("event", f.Event)
	} else {
		f.Event = ""
	}
	if t, err := time.Parse(datetimeLocal, f.Since); err == nil {
		q.Set("created_after", workos.FormatTime(t))
		base.Set("since", f.Since)
	} else {
		f.Since = ""
	}
	var dl list[restDelivery]
	if err := d.call(r.Context(), http.MethodGet, "/webhook_endpoints/"+id+"/deliveries", q, nil, &dl); err != nil {
		d.fail(w, r, err)
		return
	}
	d.render(w, r, status, "webhook", page{Title: "Endpoint " + ep.ID, Nav: "webhooks", Flash: flashFor(r), Data: webhookData{
		Endpoint: ep, Deliveries: dl.Data, Filter: f, EventNames: workos.EventNames, Error: formErr,
		Pager:   pager{Before: dl.before(), After: dl.after(), Base: base},
		HourAgo: d.cfg.Now().UTC().Add(-time.Hour).Format(datetimeLocal),
	}})
}

// rotateSecret makes a new signing secret and shows it this once; the
// previous one keeps signing for the grace period chosen (default 24 h).
func (d *Dashboard) rotateSecret(w http.ResponseWriter, r *http.Request) {
	id, ok := d.endpointID(w, r)
	if !ok {
		return
	}
	hours, err := strconv.Atoi(firstNonEmpty(r.PostForm.Get("grace_hours"), "24"))
	if err != nil || hours < 0 || hours > 720 {
		d.renderWebhook(w, r, http.StatusUnprocessableEntity, "The grace period must be from 0 to 720 hours.")
		return
	}
	var ep endpoint
	if err := d.call(r.Context(), http.MethodPost, "/webhook_endpoints/"+id+"/secret", nil,
		map[string]int64{"grace_period_seconds": int64(hours) * 3600}, &ep); err != nil {
		d.fail(w, r, err)
		return
	}
	grace := strconv.Itoa(hours) + " hours"
	if hours == 0 {
		grace = "no time at all: it stopped signing now"
	}
	d.render(w, r, http.StatusOK, "webhook_created", page{Title: "New signing secret", Nav: "webhooks",
		Data: webhookCreatedData{Endpoint: ep, Rotated: true, Grace: grace}})
}

func (d *Dashboard) resendDelivery(w http.ResponseWriter, r *http.Request) {
	id, ok := d.endpointID(w, r)
	if !ok {
		return
	}
	did := r.PathValue("did")
	if !event.ValidID(did, event.PrefixDelivery) {
		d.renderError(w, r, http.StatusNotFound, "Not found", "There is no delivery "+did+".")
		return
	}
	if err := d.call(r.Context(), http.MethodPost, "/webhook_endpoints/"+id+"/deliveries/"+did+"/resend", nil, nil, nil); err != nil {
		d.fail(w, r, err)
		return
	}
	redirectDone(w, r, "/dashboard/webhooks/"+id, "resent")
}

// sinceField reads a datetime-local form field as UTC.
func sinceField(r *http.Request) (string, bool) {
	t, err := time.Parse(datetimeLocal, strings.TrimSpace(r.PostForm.Get("since")))
	if err != nil {
		return "", false
	}
	return workos.FormatTime(t), true
}

func (d *Dashboard) recoverDeliveries(w http.ResponseWriter, r *http.Request) {
	id, ok := d.endpointID(w, r)
	if !ok {
		return
	}
	since, ok := sinceField(r)
	if !ok {
		d.renderWebhook(w, r, http.StatusUnprocessableEntity, "Recover: give the time (UTC) from which failed deliveries are sent again.")
		return
	}
	var out struct {
		Recovered int64 `json:"recovered"`
	}
	if err := d.call(r.Context(), http.MethodPost, "/webhook_endpoints/"+id+"/recover", nil, map[string]string{"since": since}, &out); err != nil {
		d.fail(w, r, err)
		return
	}
	redirectDone(w, r, "/dashboard/webhooks/"+id, "recovered", out.Recovered)
}

func (d *Dashboard) replayEvents(w http.ResponseWriter, r *http.Request) {
	id, ok := d.endpointID(w, r)
	if !ok {
		return
	}
	body := map[string]string{}
	if after := strings.TrimSpace(r.PostForm.Get("after")); after != "" {
		if !event.ValidID(after, event.PrefixEvent) {
			d.renderWebhook(w, r, http.StatusUnprocessableEntity, "Replay: the event id must look like event_01….")
			return
		}
		body["after"] = after
	} else if since, ok := sinceField(r); ok {
		body["since"] = since
	} else {
		d.renderWebhook(w, r, http.StatusUnprocessableEntity, "Replay: give a time (UTC) or an event id to replay from.")
		return
	}
	var out struct {
		Scheduled int64 `json:"scheduled"`
	}
	err := d.call(r.Context(), http.MethodPost, "/webhook_endpoints/"+id+"/replay", nil, body, &out)
	if ae, ok := asAPIError(err); ok && ae.Status == http.StatusUnprocessableEntity {
		d.renderWebhook(w, r, http.StatusUnprocessableEntity, "Replay: "+ae.Message)
		return
	}
	if err != nil {
		d.fail(w, r, err)
		return
	}
	redirectDone(w, r, "/dashboard/webhooks/"+id, "replayed", out.Scheduled)
}
