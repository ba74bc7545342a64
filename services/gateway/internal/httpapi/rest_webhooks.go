package httpapi

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/dsync-dev/dsync/pkg/workos"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
)

// webhookRoutes registers the webhook endpoint API: the endpoints, their
// secrets, their delivery log with each attempt, and resend, recover and
// replay.
func (s *server) webhookRoutes(rest func(string, func(http.ResponseWriter, *http.Request))) {
	rest("POST /webhook_endpoints", s.createEndpoint)
	rest("GET /webhook_endpoints", s.listEndpoints)
	rest("GET /webhook_endpoints/{id}", s.getEndpoint)
	rest("PATCH /webhook_endpoints/{id}", s.updateEndpoint)
	rest("DELETE /webhook_endpoints/{id}", s.deleteEndpoint)
	rest("POST /webhook_endpoints/{id}/secret", s.rotateEndpointSecret)
	rest("GET /webhook_endpoints/{id}/deliveries", s.listEndpointDeliveries)
	rest("GET /webhook_endpoints/{id}/deliveries/{delivery_id}", s.getEndpointDelivery)
	rest("POST /webhook_endpoints/{id}/deliveries/{delivery_id}/resend", s.resendDelivery)
	rest("POST /webhook_endpoints/{id}/recover", s.recoverDeliveries)
	rest("POST /webhook_endpoints/{id}/replay", s.replayEvents)
}

// CreateEndpointRequest is the body of POST /webhook_endpoints.
type CreateEndpointRequest struct {
	URL         string   `json:"url"`
	Events      []string `json:"events"`
	Description string   `json:"description"`
	// RetrySchedule is the delays in seconds before attempts 2, 3, …;
	// empty means the default (about three days).
	RetrySchedule []uint32 `json:"retry_schedule"`
	// Ordering is "resource" (default) or "directory".
	Ordering string `json:"ordering"`
}

func validURL(raw string) error {
	u, err := url.Parse(raw)
	if raw == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return unprocessable("url must be an absolute http or https URL")
	}
	return nil
}

func validEvents(events []string) error {
	for _, e := range events {
		if !workos.IsEventName(e) {
			return unprocessable("unknown event %q; events are: %s", e, strings.Join(workos.EventNames, ", "))
		}
	}
	return nil
}

func parseOrdering(o string) (dsyncv1.OrderingMode, error) {
	switch o {
	case "", "resource":
		return dsyncv1.OrderingMode_ORDERING_MODE_RESOURCE, nil
	case "directory":
		return dsyncv1.OrderingMode_ORDERING_MODE_DIRECTORY, nil
	}
	return 0, unprocessable("ordering must be resource or directory")
}

// validate checks what the gateway can check; the dispatcher decides which
// hosts it may deliver to (a refused target is a 422 from there too).
func (req CreateEndpointRequest) validate() error {
	if err := validURL(req.URL); err != nil {
		return err
	}
	if err := validEvents(req.Events); err != nil {
		return err
	}
	_, err := parseOrdering(req.Ordering)
	return err
}

// webhookEndpoint is the REST form of an endpoint. Secret is only set in
// the responses that create it or rotate it.
type webhookEndpoint struct {
	Object         string   `json:"object"`
	ID             string   `json:"id"`
	URL            string   `json:"url"`
	Events         []string `json:"events"`
	State          string   `json:"state"`
	Description    string   `json:"description"`
	RetrySchedule  []uint32 `json:"retry_schedule"`
	Ordering       string   `json:"ordering"`
	DisabledReason *string  `json:"disabled_reason"`
	FailingSince   *string  `json:"failing_since"`
	// PreviousSecretExpiresAt is set while a rotated-out secret still signs.
	PreviousSecretExpiresAt *string `json:"previous_secret_expires_at"`
	Secret                  string  `json:"secret,omitempty"`
	CreatedAt               string  `json:"created_at"`
	UpdatedAt               string  `json:"updated_at"`
}

func optionalTime(ts *timestamppb.Timestamp) *string {
	if ts == nil {
		return nil
	}
	return nullable(workos.FormatTime(ts.AsTime()))
}

func newWebhookEndpoint(e *dsyncv1.Endpoint, withSecret bool) webhookEndpoint {
	events := e.GetEvents()
	if events == nil {
		events = []string{}
	}
	state := "enabled"
	if e.GetState() == dsyncv1.EndpointState_ENDPOINT_STATE_DISABLED {
		state = "disabled"
	}
	ordering := "resource"
	if e.GetOrdering() == dsyncv1.OrderingMode_ORDERING_MODE_DIRECTORY {
		ordering = "directory"
	}
	schedule := e.GetRetryScheduleSeconds()
	if schedule == nil {
		schedule = []uint32{}
	}
	out := webhookEndpoint{
		Object: "webhook_endpoint", ID: e.GetId(), URL: e.GetUrl(), Events: events, State: state,
		Description: e.GetDescription(), RetrySchedule: schedule, Ordering: ordering,
		DisabledReason:          nullable(e.GetDisabledReason()),
		FailingSince:            optionalTime(e.GetFailingSince()),
		PreviousSecretExpiresAt: optionalTime(e.GetPreviousSecretExpiresAt()),
		CreatedAt:               workos.FormatTime(e.GetCreatedAt().AsTime()),
		UpdatedAt:               workos.FormatTime(e.GetUpdatedAt().AsTime()),
	}
	if withSecret {
		out.Secret = e.GetSecret()
	}
	return out
}

func (s *server) createEndpoint(w http.ResponseWriter, r *http.Request) {
	var req CreateEndpointRequest
	if err := s.decodeBody(w, r, &req); err != nil {
		s.restFail(w, r, err)
		return
	}
	if err := req.validate(); err != nil {
		s.restFail(w, r, err)
		return
	}
	ordering, _ := parseOrdering(req.Ordering)
	resp, err := s.Webhooks.CreateEndpoint(r.Context(), &dsyncv1.CreateEndpointRequest{
		Url: req.URL, Events: req.Events, Description: req.Description,
		RetryScheduleSeconds: req.RetrySchedule, Ordering: ordering,
	})
	if err != nil {
		s.restFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, newWebhookEndpoint(resp.GetEndpoint(), true))
}

func (s *server) listEndpoints(w http.ResponseWriter, r *http.Request) {
	page, err := parsePage(r.URL.Query())
	if err != nil {
		s.restFail(w, r, err)
		return
	}
	resp, err := s.Webhooks.ListEndpoints(r.Context(), &dsyncv1.ListEndpointsRequest{Page: page})
	if err != nil {
		s.restFail(w, r, err)
		return
	}
	data := make([]webhookEndpoint, 0, len(resp.GetEndpoints()))
	for _, e := range resp.GetEndpoints() {
		data = append(data, newWebhookEndpoint(e, false))
	}
	writeJSON(w, http.StatusOK, newList(data, resp.GetPageInfo()))
}

func (s *server) getEndpoint(w http.ResponseWriter, r *http.Request) {
	resp, err := s.Webhooks.GetEndpoint(r.Context(), &dsyncv1.GetEndpointRequest{Id: r.PathValue("id")})
	if err != nil {
		s.restFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, newWebhookEndpoint(resp.GetEndpoint(), false))
}

// UpdateEndpointRequest is the body of PATCH /webhook_endpoints/{id}: the
// fields present are changed. State "enabled" re-enables a disabled
// endpoint, which resumes where it stopped.
type UpdateEndpointRequest struct {
	URL           *string   `json:"url"`
	Events        *[]string `json:"events"`
	Description   *string   `json:"description"`
	State         *string   `json:"state"`
	RetrySchedule *[]uint32 `json:"retry_schedule"`
	Ordering      *string   `json:"ordering"`
}

// toProto validates req and returns the endpoint fields with their mask.
func (req UpdateEndpointRequest) toProto(id string) (*dsyncv1.UpdateEndpointRequest, error) {
	e := &dsyncv1.Endpoint{Id: id}
	mask := &fieldmaskpb.FieldMask{}
	if req.URL != nil {
		if err := validURL(*req.URL); err != nil {
			return nil, err
		}
		e.Url = *req.URL
		mask.Paths = append(mask.Paths, "url")
	}
	if req.Events != nil {
		if err := validEvents(*req.Events); err != nil {
			return nil, err
		}
		e.Events = *req.Events
		mask.Paths = append(mask.Paths, "events")
	}
	if req.Description != nil {
		e.Description = *req.Description
		mask.Paths = append(mask.Paths, "description")
	}
	if req.State != nil {
		switch *req.State {
		case "enabled":
			e.State = dsyncv1.EndpointState_ENDPOINT_STATE_ENABLED
		case "disabled":
			e.State = dsyncv1.EndpointState_ENDPOINT_STATE_DISABLED
		default:
			return nil, unprocessable("state must be enabled or disabled")
		}
		mask.Paths = append(mask.Paths, "state")
	}
	if req.RetrySchedule != nil {
		e.RetryScheduleSeconds = *req.RetrySchedule
		mask.Paths = append(mask.Paths, "retry_schedule_seconds")
	}
	if req.Ordering != nil {
		o, err := parseOrdering(*req.Ordering)
		if err != nil {
			return nil, err
		}
		e.Ordering = o
		mask.Paths = append(mask.Paths, "ordering")
	}
	return &dsyncv1.UpdateEndpointRequest{Endpoint: e, UpdateMask: mask}, nil
}

func (s *server) updateEndpoint(w http.ResponseWriter, r *http.Request) {
	var req UpdateEndpointRequest
	if err := s.decodeBody(w, r, &req); err != nil {
		s.restFail(w, r, err)
		return
	}
	in, err := req.toProto(r.PathValue("id"))
	if err != nil {
		s.restFail(w, r, err)
		return
	}
	resp, err := s.Webhooks.UpdateEndpoint(r.Context(), in)
	if err != nil {
		s.restFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, newWebhookEndpoint(resp.GetEndpoint(), false))
}

func (s *server) deleteEndpoint(w http.ResponseWriter, r *http.Request) {
	if _, err := s.Webhooks.DeleteEndpoint(r.Context(), &dsyncv1.DeleteEndpointRequest{Id: r.PathValue("id")}); err != nil {
		s.restFail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// RotateSecretRequest is the optional body of POST
// /webhook_endpoints/{id}/secret.
type RotateSecretRequest struct {
	// GracePeriodSeconds is how long the previous secret keeps signing
	// (Standard Webhooks); absent means 24 hours, 0 ends it at once.
	GracePeriodSeconds *int64 `json:"grace_period_seconds"`
}

func (s *server) rotateEndpointSecret(w http.ResponseWriter, r *http.Request) {
	var req RotateSecretRequest
	if err := s.decodeOptionalBody(w, r, &req); err != nil {
		s.restFail(w, r, err)
		return
	}
	in := &dsyncv1.RotateSecretRequest{EndpointId: r.PathValue("id")}
	if req.GracePeriodSeconds != nil {
		if *req.GracePeriodSeconds < 0 || *req.GracePeriodSeconds > 30*24*3600 {
			s.restFail(w, r, unprocessable("grace_period_seconds must be from 0 to 2592000"))
			return
		}
		in.GracePeriod = durationpb.New(time.Duration(*req.GracePeriodSeconds) * time.Second)
	}
	resp, err := s.Webhooks.RotateSecret(r.Context(), in)
	if err != nil {
		s.restFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, newWebhookEndpoint(resp.GetEndpoint(), true))
}

// decodeOptionalBody is decodeBody that accepts an empty body.
func (s *server) decodeOptionalBody(w http.ResponseWriter, r *http.Request, v any) error {
	if r.ContentLength == 0 {
		return nil
	}
	return s.decodeBody(w, r, v)
}

// webhookDelivery is the REST form of a delivery with its attempt log.
type webhookDelivery struct {
	Object         string           `json:"object"`
	ID             string           `json:"id"`
	EndpointID     string           `json:"webhook_endpoint_id"`
	EventID        string           `json:"event_id"`
	Event          string           `json:"event"`
	State          string           `json:"state"`
	AttemptCount   int32            `json:"attempt_count"`
	LastStatusCode *int32           `json:"last_status_code"`
	LastError      *string          `json:"last_error"`
	NextAttemptAt  *string          `json:"next_attempt_at"`
	Attempts       []webhookAttempt `json:"attempts"`
	CreatedAt      string           `json:"created_at"`
	UpdatedAt      string           `json:"updated_at"`
}

type webhookAttempt struct {
	Number       int32   `json:"number"`
	StartedAt    string  `json:"started_at"`
	StatusCode   *int32  `json:"status_code"`
	LatencyMS    float64 `json:"latency_ms"`
	Error        *string `json:"error"`
	ResponseBody string  `json:"response_body"`
}

func deliveryStateName(s dsyncv1.DeliveryState) string {
	switch s {
	case dsyncv1.DeliveryState_DELIVERY_STATE_PENDING:
		return "pending"
	case dsyncv1.DeliveryState_DELIVERY_STATE_SUCCEEDED:
		return "succeeded"
	case dsyncv1.DeliveryState_DELIVERY_STATE_FAILED:
		return "failed"
	}
	return "unknown"
}

func nonZero(n int32) *int32 {
	if n == 0 {
		return nil
	}
	return &n
}

func newWebhookDelivery(d *dsyncv1.Delivery) webhookDelivery {
	out := webhookDelivery{
		Object: "webhook_delivery", ID: d.GetId(), EndpointID: d.GetEndpointId(), EventID: d.GetEventId(),
		Event: d.GetEvent(), State: deliveryStateName(d.GetState()), AttemptCount: d.GetAttempts(),
		LastStatusCode: nonZero(d.GetLastStatusCode()), LastError: nullable(d.GetLastError()),
		NextAttemptAt: optionalTime(d.GetNextAttemptAt()), Attempts: []webhookAttempt{},
		CreatedAt: workos.FormatTime(d.GetCreatedAt().AsTime()), UpdatedAt: workos.FormatTime(d.GetUpdatedAt().AsTime()),
	}
	for _, a := range d.GetAttemptsLog() {
		out.Attempts = append(out.Attempts, webhookAttempt{
			Number: a.GetNumber(), StartedAt: workos.FormatTime(a.GetStartedAt().AsTime()),
			StatusCode: nonZero(a.GetStatusCode()), LatencyMS: float64(a.GetLatency().AsDuration().Microseconds()) / 1000,
			Error: nullable(a.GetError()), ResponseBody: a.GetResponseBody(),
		})
	}
	return out
}

// parseTime reads an RFC 3339 time from a query parameter or body field.
func parseTime(name, v string) (*timestamppb.Timestamp, error) {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return nil, unprocessable("%s must be an RFC 3339 time such as 2024-01-02T03:04:05Z", name)
	}
	return timestamppb.New(t), nil
}

func (s *server) listEndpointDeliveries(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	page, err := parsePage(q)
	if err != nil {
		s.restFail(w, r, err)
		return
	}
	in := &dsyncv1.ListDeliveriesRequest{EndpointId: r.PathValue("id"), Page: page, Event: q.Get("event")}
	switch st := q.Get("state"); st {
	case "":
	case "pending":
		in.State = dsyncv1.DeliveryState_DELIVERY_STATE_PENDING
	case "succeeded":
		in.State = dsyncv1.DeliveryState_DELIVERY_STATE_SUCCEEDED
	case "failed":
		in.State = dsyncv1.DeliveryState_DELIVERY_STATE_FAILED
	default:
		s.restFail(w, r, unprocessable("state must be pending, succeeded or failed"))
		return
	}
	if in.Event != "" && !workos.IsEventName(in.Event) {
		s.restFail(w, r, unprocessable("unknown event %q", in.Event))
		return
	}
	for _, f := range []struct {
		name string
		out  **timestamppb.Timestamp
	}{{"created_after", &in.CreatedAfter}, {"created_before", &in.CreatedBefore}} {
		if v := q.Get(f.name); v != "" {
			if *f.out, err = parseTime(f.name, v); err != nil {
				s.restFail(w, r, err)
				return
			}
		}
	}
	resp, err := s.Webhooks.ListDeliveries(r.Context(), in)
	if err != nil {
		s.restFail(w, r, err)
		return
	}
	data := make([]webhookDelivery, 0, len(resp.GetDeliveries()))
	for _, d := range resp.GetDeliveries() {
		data = append(data, newWebhookDelivery(d))
	}
	writeJSON(w, http.StatusOK, newList(data, resp.GetPageInfo()))
}

func (s *server) getEndpointDelivery(w http.ResponseWriter, r *http.Request) {
	resp, err := s.Webhooks.GetDelivery(r.Context(), &dsyncv1.GetDeliveryRequest{
		EndpointId: r.PathValue("id"), Id: r.PathValue("delivery_id")})
	if err != nil {
		s.restFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, newWebhookDelivery(resp.GetDelivery()))
}

func (s *server) resendDelivery(w http.ResponseWriter, r *http.Request) {
	resp, err := s.Webhooks.ResendDelivery(r.Context(), &dsyncv1.ResendDeliveryRequest{
		EndpointId: r.PathValue("id"), DeliveryId: r.PathValue("delivery_id")})
	if err != nil {
		s.restFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, newWebhookDelivery(resp.GetDelivery()))
}

// RecoverRequest is the body of POST /webhook_endpoints/{id}/recover.
type RecoverRequest struct {
	// Since is an RFC 3339 time: failed deliveries created at or after it
	// are sent again.
	Since string `json:"since"`
}

func (s *server) recoverDeliveries(w http.ResponseWriter, r *http.Request) {
	var req RecoverRequest
	if err := s.decodeBody(w, r, &req); err != nil {
		s.restFail(w, r, err)
		return
	}
	since, err := parseTime("since", req.Since)
	if err != nil {
		s.restFail(w, r, err)
		return
	}
	resp, err := s.Webhooks.RecoverDeliveries(r.Context(), &dsyncv1.RecoverDeliveriesRequest{EndpointId: r.PathValue("id"), Since: since})
	if err != nil {
		s.restFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"object": "webhook_recovery", "recovered": resp.GetRecovered()})
}

// ReplayRequest is the body of POST /webhook_endpoints/{id}/replay: exactly
// one of Since (an RFC 3339 time) and After (an event id).
type ReplayRequest struct {
	Since string `json:"since"`
	After string `json:"after"`
}

func (s *server) replayEvents(w http.ResponseWriter, r *http.Request) {
	var req ReplayRequest
	if err := s.decodeBody(w, r, &req); err != nil {
		s.restFail(w, r, err)
		return
	}
	in := &dsyncv1.ReplayEventsRequest{EndpointId: r.PathValue("id")}
	switch {
	case (req.Since == "") == (req.After == ""):
		s.restFail(w, r, unprocessable("give exactly one of since (an RFC 3339 time) and after (an event id)"))
		return
	case req.Since != "":
		since, err := parseTime("since", req.Since)
		if err != nil {
			s.restFail(w, r, err)
			return
		}
		in.From = &dsyncv1.ReplayEventsRequest_Since{Since: since}
	default:
		in.From = &dsyncv1.ReplayEventsRequest_AfterEventId{AfterEventId: req.After}
	}
	resp, err := s.Webhooks.ReplayEvents(r.Context(), in)
	if err != nil {
		s.restFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"object": "webhook_replay", "scheduled": resp.GetScheduled()})
}
