package dispatcher_test

import (
	"context"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/dsync-dev/dsync/pkg/event"
	"github.com/dsync-dev/dsync/pkg/webhooksig"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
	"github.com/dsync-dev/dsync/services/dispatcher"
)

// userEvent publishes an event about userID (created the first time,
// updated after) and returns it.
func (e *env) userEvent(userID string, typ dsyncv1.EventType) *dsyncv1.Event {
	e.t.Helper()
	return e.userEventWithID(userID, typ, func(string) {})
}

// userEventWithID is userEvent that tells its id before publishing.
func (e *env) userEventWithID(userID string, typ dsyncv1.EventType, before func(id string)) *dsyncv1.Event {
	e.t.Helper()
	now := timestamppb.Now()
	ev := &dsyncv1.Event{
		Id: e.ids.New(event.PrefixEvent), DirectoryId: e.dirID, OrganizationId: e.orgID, OccurredAt: now, Type: typ,
		Source: &dsyncv1.Source{Api: "scim", Provider: "okta"},
		Payload: &dsyncv1.Event_User{User: &dsyncv1.User{
			Id: userID, DirectoryId: e.dirID, OrganizationId: e.orgID, IdpId: "00u-" + userID,
			UserName: userID + "@example.com", Email: userID + "@example.com",
			State: dsyncv1.UserState_USER_STATE_ACTIVE, CreatedAt: now, UpdatedAt: now,
		}},
	}
	before(ev.GetId())
	e.publish(event.UserSubject(e.dirID, userID), ev)
	return ev
}

func (e *env) endpoint(id string) *dsyncv1.Endpoint {
	e.t.Helper()
	resp, err := e.client.GetEndpoint(e.t.Context(), &dsyncv1.GetEndpointRequest{Id: id})
	require.NoError(e.t, err)
	return resp.GetEndpoint()
}

func (e *env) waitStates(endpointID string, want ...dsyncv1.DeliveryState) []*dsyncv1.Delivery {
	e.t.Helper()
	var ds []*dsyncv1.Delivery
	require.Eventually(e.t, func() bool {
		ds = e.deliveries(endpointID)
		if len(ds) != len(want) {
			return false
		}
		for _, d := range ds {
			if !slices.Contains(want, d.GetState()) {
				return false
			}
		}
		got := map[dsyncv1.DeliveryState]int{}
		exp := map[dsyncv1.DeliveryState]int{}
		for i := range ds {
			got[ds[i].GetState()]++
			exp[want[i]]++
		}
		return len(got) == len(exp) && func() bool {
			for k, v := range exp {
				if got[k] != v {
					return false
				}
			}
			return true
		}()
	}, wait, tick)
	return ds
}

// switchable answers with failing until ok is set, then 200.
type switchable struct{ ok atomic.Bool }

func (s *switchable) respond(failing int) func(int) int {
	return func(int) int {
		if s.ok.Load() {
			return http.StatusOK
		}
		return failing
	}
}

func TestSecretRotation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sqliteStore(t))
	rcv := newReceiver(t, always(http.StatusOK))
	ep := e.createEndpoint(rcv.URL)
	old := ep.GetSecret()

	rot, err := e.client.RotateSecret(t.Context(), &dsyncv1.RotateSecretRequest{EndpointId: ep.GetId()})
	require.NoError(t, err)
	fresh := rot.GetEndpoint().GetSecret()
	require.NotEqual(t, old, fresh)
	require.WithinDuration(t, time.Now().Add(24*time.Hour), rot.GetEndpoint().GetPreviousSecretExpiresAt().AsTime(), time.Minute)

	e.userCreated()
	require.Eventually(t, func() bool { return len(rcv.got()) == 1 }, wait, tick)
	req := rcv.got()[0]
	now := time.Now()
	// Standard Webhooks: both secrets verify during the grace period.
	for _, secret := range []string{fresh, old} {
		require.NoError(t, webhooksig.VerifyStandard(secret, req.header.Get("webhook-id"), req.header.Get("webhook-timestamp"),
			req.header.Get("webhook-signature"), req.body, now, time.Minute))
	}
	// WorkOS-Signature: the new secret only.
	require.NoError(t, webhooksig.VerifyWorkOS(fresh, req.header.Get("WorkOS-Signature"), req.body, now, time.Minute))
	require.ErrorIs(t, webhooksig.VerifyWorkOS(old, req.header.Get("WorkOS-Signature"), req.body, now, time.Minute), webhooksig.ErrMismatch)

	// A rotation without grace retires the previous secret at once.
	rot, err = e.client.RotateSecret(t.Context(), &dsyncv1.RotateSecretRequest{EndpointId: ep.GetId(), GracePeriod: durationpb.New(0)})
	require.NoError(t, err)
	newest := rot.GetEndpoint().GetSecret()
	require.Nil(t, rot.GetEndpoint().GetPreviousSecretExpiresAt())
	e.userCreated()
	require.Eventually(t, func() bool { return len(rcv.got()) == 2 }, wait, tick)
	req = rcv.got()[1]
	requireSigned(t, newest, req)
	require.ErrorIs(t, webhooksig.VerifyStandard(fresh, req.header.Get("webhook-id"), req.header.Get("webhook-timestamp"),
		req.header.Get("webhook-signature"), req.body, time.Now(), time.Minute), webhooksig.ErrMismatch)

	_, err = e.client.RotateSecret(t.Context(), &dsyncv1.RotateSecretRequest{EndpointId: ep.GetId(), GracePeriod: durationpb.New(-time.Second)})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
}

// TestResendRecoverReplay: dead-lettered deliveries come back one at a
// time (resend) or all at once (recover), and replay re-delivers history,
// also to an endpoint created after it.
func TestResendRecoverReplay(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sqliteStore(t))
	var sw switchable
	rcv := newReceiver(t, sw.respond(http.StatusInternalServerError))
	ep := e.createEndpoint(rcv.URL)
	start := time.Now()
	first, second, third := e.userCreated(), e.userCreated(), e.userCreated()
	failed := dsyncv1.DeliveryState_DELIVERY_STATE_FAILED
	ds := e.waitStates(ep.GetId(), failed, failed, failed)
	sw.ok.Store(true)

	// The attempt log is in every listed delivery.
	for _, d := range ds {
		require.Len(t, d.GetAttemptsLog(), 4)
		require.Equal(t, int32(500), d.GetAttemptsLog()[0].GetStatusCode())
		require.Equal(t, "unexpected status 500", d.GetAttemptsLog()[0].GetError())
	}
	// Filters.
	resp, err := e.client.ListDeliveries(t.Context(), &dsyncv1.ListDeliveriesRequest{EndpointId: ep.GetId(),
		State: dsyncv1.DeliveryState_DELIVERY_STATE_SUCCEEDED})
	require.NoError(t, err)
	require.Empty(t, resp.GetDeliveries())

	// Resend one: it succeeds with a fresh round; attempt numbers go on.
	var target *dsyncv1.Delivery
	for _, d := range ds {
		if d.GetEventId() == first.GetId() {
			target = d
		}
	}
	res, err := e.client.ResendDelivery(t.Context(), &dsyncv1.ResendDeliveryRequest{EndpointId: ep.GetId(), DeliveryId: target.GetId()})
	require.NoError(t, err)
	require.NotEqual(t, failed, res.GetDelivery().GetState())
	require.Eventually(t, func() bool {
		got, err := e.client.GetDelivery(t.Context(), &dsyncv1.GetDeliveryRequest{EndpointId: ep.GetId(), Id: target.GetId()})
		require.NoError(t, err)
		return got.GetDelivery().GetState() == dsyncv1.DeliveryState_DELIVERY_STATE_SUCCEEDED &&
			len(got.GetDelivery().GetAttemptsLog()) == 5 && got.GetDelivery().GetAttemptsLog()[4].GetNumber() == 5
	}, wait, tick)

	// Recover the rest.
	rec, err := e.client.RecoverDeliveries(t.Context(), &dsyncv1.RecoverDeliveriesRequest{EndpointId: ep.GetId(), Since: timestamppb.New(start.Add(-time.Minute))})
	require.NoError(t, err)
	require.Equal(t, int64(2), rec.GetRecovered())
	ok := dsyncv1.DeliveryState_DELIVERY_STATE_SUCCEEDED
	e.waitStates(ep.GetId(), ok, ok, ok)
	require.Len(t, rcv.got(), 12+3)

	// Replay after the first event: the two later ones again, in order.
	before := len(rcv.got())
	rep, err := e.client.ReplayEvents(t.Context(), &dsyncv1.ReplayEventsRequest{EndpointId: ep.GetId(),
		From: &dsyncv1.ReplayEventsRequest_AfterEventId{AfterEventId: first.GetId()}})
	require.NoError(t, err)
	require.Equal(t, int64(2), rep.GetScheduled())
	require.Eventually(t, func() bool { return len(rcv.got()) == before+2 }, wait, tick)
	var ids []string
	for _, r := range rcv.got()[before:] {
		ids = append(ids, r.header.Get("webhook-id"))
	}
	require.ElementsMatch(t, []string{second.GetId(), third.GetId()}, ids)

	// An endpoint created later gets the whole history on replay.
	late := newReceiver(t, always(http.StatusOK))
	lateEP := e.createEndpoint(late.URL)
	rep, err = e.client.ReplayEvents(t.Context(), &dsyncv1.ReplayEventsRequest{EndpointId: lateEP.GetId(),
		From: &dsyncv1.ReplayEventsRequest_Since{Since: timestamppb.New(start.Add(-time.Minute))}})
	require.NoError(t, err)
	require.Equal(t, int64(3), rep.GetScheduled())
	require.Eventually(t, func() bool { return len(late.got()) == 3 }, wait, tick)
	for _, r := range late.got() {
		requireSigned(t, lateEP.GetSecret(), r)
	}

	for _, bad := range []*dsyncv1.ReplayEventsRequest{
		{EndpointId: ep.GetId()},
		{EndpointId: ep.GetId(), From: &dsyncv1.ReplayEventsRequest_AfterEventId{AfterEventId: "nope"}},
	} {
		_, err := e.client.ReplayEvents(t.Context(), bad)
		require.Equal(t, codes.InvalidArgument, status.Code(err))
	}
	_, err = e.client.ReplayEvents(t.Context(), &dsyncv1.ReplayEventsRequest{EndpointId: ep.GetId(),
		From: &dsyncv1.ReplayEventsRequest_AfterEventId{AfterEventId: e.ids.New(event.PrefixEvent)}})
	require.Equal(t, codes.NotFound, status.Code(err))
	_, err = e.client.GetDelivery(t.Context(), &dsyncv1.GetDeliveryRequest{EndpointId: lateEP.GetId(), Id: target.GetId()})
	require.Equal(t, codes.NotFound, status.Code(err), "another endpoint's delivery")
}

// TestAutoDisableAndResume: an endpoint failing for longer than
// DisableAfter is disabled and says why; enabling it delivers what was
// pending and what it missed while disabled.
func TestAutoDisableAndResume(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sqliteStore(t), func(c *dispatcher.Config) {
		c.DisableAfter = 300 * time.Millisecond
		c.RetrySchedule = slices.Repeat([]time.Duration{50 * time.Millisecond}, 100)
	})
	var sw switchable
	rcv := newReceiver(t, sw.respond(http.StatusServiceUnavailable))
	ep := e.createEndpoint(rcv.URL)
	first := e.userCreated()
	require.Eventually(t, func() bool {
		return e.endpoint(ep.GetId()).GetState() == dsyncv1.EndpointState_ENDPOINT_STATE_DISABLED
	}, wait, tick)
	got := e.endpoint(ep.GetId())
	require.Contains(t, got.GetDisabledReason(), "every attempt failed since")
	require.NotNil(t, got.GetFailingSince())
	e.waitStates(ep.GetId(), dsyncv1.DeliveryState_DELIVERY_STATE_PENDING)

	missed := e.userCreated() // while disabled
	cons, err := e.js.Consumer(t.Context(), "DSYNC_EVENTS", dispatcher.DefaultConsumerName)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		info, err := cons.Info(t.Context())
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	}, wait, tick)
	n := len(rcv.got())
	sw.ok.Store(true)

	upd, err := e.client.UpdateEndpoint(t.Context(), &dsyncv1.UpdateEndpointRequest{
		Endpoint:   &dsyncv1.Endpoint{Id: ep.GetId(), State: dsyncv1.EndpointState_ENDPOINT_STATE_ENABLED},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"state"}},
	})
	require.NoError(t, err)
	require.Equal(t, dsyncv1.EndpointState_ENDPOINT_STATE_ENABLED, upd.GetEndpoint().GetState())
	require.Empty(t, upd.GetEndpoint().GetDisabledReason())
	ok := dsyncv1.DeliveryState_DELIVERY_STATE_SUCCEEDED
	e.waitStates(ep.GetId(), ok, ok)
	var ids []string
	for _, r := range rcv.got()[n:] {
		ids = append(ids, r.header.Get("webhook-id"))
	}
	require.ElementsMatch(t, []string{first.GetId(), missed.GetId()}, ids)
}

// TestOrderingUnderRetries: a later event about a user waits while an
// earlier one is retried; another user's events go meanwhile. With
// directory ordering the other user waits too.
func TestOrderingUnderRetries(t *testing.T) {
	t.Parallel()
	for _, mode := range []dsyncv1.OrderingMode{dsyncv1.OrderingMode_ORDERING_MODE_RESOURCE, dsyncv1.OrderingMode_ORDERING_MODE_DIRECTORY} {
		t.Run(mode.String(), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, sqliteStore(t), func(c *dispatcher.Config) {
				c.RetrySchedule = []time.Duration{200 * time.Millisecond, 200 * time.Millisecond, 200 * time.Millisecond}
			})
			var blockID atomic.Value
			blockID.Store("")
			var failures atomic.Int32
			rcv := newReceiver(t, func(int) int { return http.StatusOK })
			// Answer 500 twice to the first event about user A.
			inner := rcv.Config.Handler
			rcv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("webhook-id") == blockID.Load().(string) && failures.Add(1) <= 2 {
					w.WriteHeader(http.StatusInternalServerError)
					return
				}
				inner.ServeHTTP(w, r)
			})
			resp, err := e.client.CreateEndpoint(t.Context(), &dsyncv1.CreateEndpointRequest{Url: rcv.URL, Ordering: mode})
			require.NoError(t, err)
			require.Equal(t, mode, resp.GetEndpoint().GetOrdering())

			userA, userB := e.ids.New(event.PrefixUser), e.ids.New(event.PrefixUser)
			// Publish A1 first and let it fail once before the rest exist.
			// A1's id is known before it is published: fail it from the start.
			a1 := e.userEventWithID(userA, dsyncv1.EventType_EVENT_TYPE_USER_CREATED, func(id string) { blockID.Store(id) })
			require.Eventually(t, func() bool { return failures.Load() >= 1 }, wait, tick)
			a2 := e.userEvent(userA, dsyncv1.EventType_EVENT_TYPE_USER_UPDATED)
			b1 := e.userEvent(userB, dsyncv1.EventType_EVENT_TYPE_USER_CREATED)

			require.Eventually(t, func() bool { return len(rcv.got()) == 3 }, wait, tick)
			var order []string
			for _, r := range rcv.got() {
				order = append(order, r.header.Get("webhook-id"))
			}
			require.Less(t, slices.Index(order, a1.GetId()), slices.Index(order, a2.GetId()), "a later event about A waits for the earlier one")
			if mode == dsyncv1.OrderingMode_ORDERING_MODE_RESOURCE {
				require.Equal(t, b1.GetId(), order[0], "B is not held back by A's retries")
			} else {
				require.Equal(t, []string{a1.GetId(), a2.GetId(), b1.GetId()}, order, "strict directory order")
			}
		})
	}
}

// TestTelemetry: each attempt has a span linked to the event's trace, and
// outcomes, latency, backlog and consumer lag are measured.
func TestTelemetry(t *testing.T) {
	t.Parallel()
	reader := sdkmetric.NewManualReader()
	spans := tracetest.NewSpanRecorder()
	e := newEnv(t, sqliteStore(t), func(c *dispatcher.Config) {
		c.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		c.TracerProvider = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	})
	rcv := newReceiver(t, always(http.StatusOK))
	e.createEndpoint(rcv.URL)

	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	userID := e.ids.New(event.PrefixUser)
	ev := &dsyncv1.Event{Id: e.ids.New(event.PrefixEvent), DirectoryId: e.dirID, OrganizationId: e.orgID, OccurredAt: timestamppb.Now(),
		Type:    dsyncv1.EventType_EVENT_TYPE_USER_CREATED,
		Payload: &dsyncv1.Event_User{User: &dsyncv1.User{Id: userID, DirectoryId: e.dirID, OrganizationId: e.orgID, UserName: "x", State: dsyncv1.UserState_USER_STATE_ACTIVE}}}
	msg, err := event.NewMsg(event.UserSubject(e.dirID, userID), ev)
	require.NoError(t, err)
	if msg.Header == nil {
		msg.Header = nats.Header{}
	}
	msg.Header.Set("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	_, err = e.js.PublishMsg(t.Context(), msg)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(rcv.got()) == 1 }, wait, tick)

	require.Eventually(t, func() bool {
		for _, s := range spans.Ended() {
			if s.Name() == "webhook attempt" && len(s.Links()) == 1 && s.Links()[0].SpanContext.TraceID().String() == traceID {
				return true
			}
		}
		return false
	}, wait, tick)

	var rm metricdata.ResourceMetrics
	require.Eventually(t, func() bool {
		require.NoError(t, reader.Collect(context.Background(), &rm))
		found := map[string]bool{}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				switch data := m.Data.(type) {
				case metricdata.Sum[int64]:
					for _, dp := range data.DataPoints {
						if v, _ := dp.Attributes.Value(attribute.Key("outcome")); v.AsString() == "succeeded" && dp.Value == 1 {
							found[m.Name] = true
						}
					}
				case metricdata.Histogram[float64]:
					found[m.Name] = len(data.DataPoints) > 0
				case metricdata.Gauge[int64]:
					found[m.Name] = true
				}
			}
		}
		return found["dsync.webhook.attempts"] && found["dsync.webhook.attempt.duration"] && found["dsync.webhook.consumer.lag"]
	}, wait, tick)
}

// TestRestartMidRetries: a dispatcher stopped while a delivery waits for
// its next retry picks it up after a restart, with its attempt count, and
// loses nothing published meanwhile.
func TestRestartMidRetries(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sqliteStore(t), func(c *dispatcher.Config) {
		c.RetrySchedule = []time.Duration{500 * time.Millisecond, 500 * time.Millisecond, 500 * time.Millisecond}
	})
	var sw switchable
	rcv := newReceiver(t, sw.respond(http.StatusBadGateway))
	ep := e.createEndpoint(rcv.URL)
	first := e.userCreated()
	require.Eventually(t, func() bool { return len(rcv.got()) >= 1 }, wait, tick)
	e.stop()
	second := e.userCreated()
	sw.ok.Store(true)
	e.start()

	ok := dsyncv1.DeliveryState_DELIVERY_STATE_SUCCEEDED
	ds := e.waitStates(ep.GetId(), ok, ok)
	for _, d := range ds {
		if d.GetEventId() == first.GetId() {
			require.GreaterOrEqual(t, d.GetAttempts(), int32(2), "the attempt before the restart counts")
			require.Equal(t, int32(502), d.GetAttemptsLog()[0].GetStatusCode())
		}
	}
	var ids []string
	for _, r := range rcv.got() {
		if r.header.Get("webhook-id") == second.GetId() {
			ids = append(ids, r.header.Get("webhook-id"))
		}
	}
	require.Len(t, ids, 1)
}
