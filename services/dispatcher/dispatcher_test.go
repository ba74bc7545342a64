package dispatcher_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/dsync-dev/dsync/pkg/event"
	"github.com/dsync-dev/dsync/pkg/grpcx"
	"github.com/dsync-dev/dsync/pkg/natsx/natstest"
	"github.com/dsync-dev/dsync/pkg/pgtest"
	"github.com/dsync-dev/dsync/pkg/webhooksig"
	"github.com/dsync-dev/dsync/pkg/workos"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
	"github.com/dsync-dev/dsync/services/dispatcher"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const (
	wait = 10 * time.Second
	tick = 20 * time.Millisecond
)

// env is a running dispatcher with its NATS server.
type env struct {
	t      testing.TB
	nats   *natstest.Server
	js     jetstream.JetStream
	nc     *nats.Conn
	client dsyncv1.WebhookServiceClient
	cfg    dispatcher.Config
	stop   func()
	ids    *event.IDs
	dirID  string
	orgID  string
}

type option func(*dispatcher.Config)

func sqliteStore(t testing.TB) option {
	path := filepath.Join(t.TempDir(), "dispatcher.db")
	return func(c *dispatcher.Config) { c.SQLitePath = path }
}

func newEnv(t testing.TB, opts ...option) *env {
	t.Helper()
	srv := natstest.Run(t)
	js, _ := srv.JetStream(t)
	ids := event.NewIDs()
	e := &env{
		t: t, nats: srv, js: js, nc: srv.Connect(t), ids: ids,
		dirID: ids.New(event.PrefixDirectory), orgID: ids.New(event.PrefixOrganization),
		cfg: dispatcher.Config{
			Logger:              slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})),
			AllowPrivateTargets: true,
			RequestTimeout:      2 * time.Second,
			RetrySchedule:       []time.Duration{50 * time.Millisecond, 50 * time.Millisecond, 50 * time.Millisecond},
		},
	}
	for _, o := range opts {
		o(&e.cfg)
	}
	e.start()
	return e
}

// start runs the dispatcher on a fresh listener and waits until it is healthy.
func (e *env) start() {
	t := e.t
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	cfg := e.cfg
	cfg.NATS = e.nc
	cfg.GRPCListener = lis
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- dispatcher.Run(ctx, cfg) }()
	var once sync.Once
	e.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				require.NoError(t, err)
			case <-time.After(30 * time.Second):
				t.Error("dispatcher did not stop")
			}
		})
	}
	t.Cleanup(e.stop)

	conn, err := grpcx.Dial(lis.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	e.client = dsyncv1.NewWebhookServiceClient(conn)
	waitServing(t, conn)
}

func waitServing(t testing.TB, conn *grpc.ClientConn) {
	t.Helper()
	hc := healthpb.NewHealthClient(conn)
	require.Eventually(t, func() bool {
		for _, svc := range []string{"", "dsync.v1.WebhookService"} {
			resp, err := hc.Check(t.Context(), &healthpb.HealthCheckRequest{Service: svc})
			if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
				return false
			}
		}
		return true
	}, wait, tick)
}

func (e *env) createEndpoint(url string, events ...string) *dsyncv1.Endpoint {
	e.t.Helper()
	resp, err := e.client.CreateEndpoint(e.t.Context(), &dsyncv1.CreateEndpointRequest{Url: url, Events: events})
	require.NoError(e.t, err)
	return resp.GetEndpoint()
}

// userCreated publishes a USER_CREATED event for a new user and returns it.
func (e *env) userCreated() *dsyncv1.Event {
	e.t.Helper()
	userID := e.ids.New(event.PrefixUser)
	now := timestamppb.Now()
	ev := &dsyncv1.Event{
		Id:             e.ids.New(event.PrefixEvent),
		DirectoryId:    e.dirID,
		OrganizationId: e.orgID,
		OccurredAt:     now,
		Type:           dsyncv1.EventType_EVENT_TYPE_USER_CREATED,
		Source:         &dsyncv1.Source{Api: "scim", Provider: "okta"},
		Payload: &dsyncv1.Event_User{User: &dsyncv1.User{
			Id: userID, DirectoryId: e.dirID, OrganizationId: e.orgID, IdpId: "00u1",
			UserName: "ada@example.com", Email: "ada@example.com", FirstName: "Ada", LastName: "Lovelace",
			State:     dsyncv1.UserState_USER_STATE_ACTIVE,
			Emails:    []*dsyncv1.Email{{Value: "ada@example.com", Type: "work", Primary: true}},
			CreatedAt: now, UpdatedAt: now,
		}},
	}
	e.publish(event.UserSubject(e.dirID, userID), ev)
	return ev
}

func (e *env) publish(subject string, ev *dsyncv1.Event) {
	e.t.Helper()
	msg, err := event.NewMsg(subject, ev)
	require.NoError(e.t, err)
	_, err = e.js.PublishMsg(e.t.Context(), msg)
	require.NoError(e.t, err)
}

func (e *env) deliveries(endpointID string) []*dsyncv1.Delivery {
	e.t.Helper()
	resp, err := e.client.ListDeliveries(e.t.Context(), &dsyncv1.ListDeliveriesRequest{
		EndpointId: endpointID, Page: &dsyncv1.Page{Limit: 100}})
	require.NoError(e.t, err)
	return resp.GetDeliveries()
}

// receiver is a real HTTP server that records requests and answers with
// the status its respond function picks for the n-th request (0-based).
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	requests []request
}

type request struct {
	header http.Header
	body   []byte
}

func newReceiver(t testing.TB, respond func(n int) int) *receiver {
	r := &receiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		n := len(r.requests)
		r.requests = append(r.requests, request{req.Header.Clone(), body})
		r.mu.Unlock()
		w.WriteHeader(respond(n))
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) got() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]request(nil), r.requests...)
}

func always(code int) func(int) int { return func(int) int { return code } }

// requireSigned checks both signature schemes of req with secret.
func requireSigned(t *testing.T, secret string, req request) {
	t.Helper()
	now := time.Now()
	require.NoError(t, webhooksig.VerifyWorkOS(secret, req.header.Get("WorkOS-Signature"), req.body, now, time.Minute))
	require.NoError(t, webhooksig.VerifyStandard(secret, req.header.Get("webhook-id"), req.header.Get("webhook-timestamp"),
		req.header.Get("webhook-signature"), req.body, now, time.Minute))
	require.Equal(t, "application/json", req.header.Get("Content-Type"))
	require.Equal(t, "dsync-webhooks/1", req.header.Get("User-Agent"))
}

func TestDeliverSQLite(t *testing.T) {
	t.Parallel()
	testDeliver(t, newEnv(t, sqliteStore(t)))
}

func TestDeliverPostgres(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	testDeliver(t, newEnv(t, func(c *dispatcher.Config) { c.PostgresURL = url }))
}

// testDeliver: one event reaches a subscribed endpoint exactly once, signed,
// as the WorkOS event JSON; an endpoint subscribed to other events, internal
// events and malformed messages produce nothing.
func testDeliver(t *testing.T, e *env) {
	rcv := newReceiver(t, always(http.StatusOK))
	other := newReceiver(t, always(http.StatusOK))
	ep := e.createEndpoint(rcv.URL+"/hooks", workos.EventUserCreated)
	otherEP := e.createEndpoint(other.URL, workos.EventGroupCreated, workos.EventUserDeleted)
	require.True(t, event.ValidID(ep.GetId(), event.PrefixEndpoint))
	require.Regexp(t, `^whsec_[A-Za-z0-9+/]{43}=$`, ep.GetSecret())
	require.Equal(t, dsyncv1.EndpointState_ENDPOINT_STATE_ENABLED, ep.GetState())

	// Poison first: it must be terminated, not block what follows.
	_, err := e.js.Publish(t.Context(), "dsync.ev."+e.dirID+".user.garbage", []byte("not an event"))
	require.NoError(t, err)
	// An internal event type is acknowledged without deliveries.
	e.publish(event.DirectorySubject(e.dirID), &dsyncv1.Event{
		Id: e.ids.New(event.PrefixEvent), DirectoryId: e.dirID, OccurredAt: timestamppb.Now(),
		Type:    dsyncv1.EventType_EVENT_TYPE_DIRECTORY_UPDATED,
		Payload: &dsyncv1.Event_Directory{Directory: &dsyncv1.Directory{Id: e.dirID, Name: "x"}},
	})
	ev := e.userCreated()

	require.Eventually(t, func() bool { return len(rcv.got()) == 1 }, wait, tick)
	req := rcv.got()[0]
	requireSigned(t, ep.GetSecret(), req)
	require.Equal(t, ev.GetId(), req.header.Get("webhook-id"))

	// The envelope is the Events API's, context included: the event was
	// the stream's last message, and its sequence is in the context.
	stream, err := e.js.Stream(t.Context(), event.Stream)
	require.NoError(t, err)
	sinfo, err := stream.Info(t.Context())
	require.NoError(t, err)
	we, err := workos.NewEvent(sinfo.State.LastSeq, ev)
	require.NoError(t, err)
	require.Equal(t, sinfo.State.LastSeq, we.Context["sequence"])
	want, err := json.Marshal(we)
	require.NoError(t, err)
	require.JSONEq(t, string(want), string(req.body))
	var body struct {
		Object, ID, Event string
	}
	require.NoError(t, json.Unmarshal(req.body, &body))
	require.Equal(t, "event", body.Object)
	require.Equal(t, ev.GetId(), body.ID)
	require.Equal(t, "dsync.user.created", body.Event)

	require.Eventually(t, func() bool {
		ds := e.deliveries(ep.GetId())
		return len(ds) == 1 && ds[0].GetState() == dsyncv1.DeliveryState_DELIVERY_STATE_SUCCEEDED
	}, wait, tick)
	d := e.deliveries(ep.GetId())[0]
	require.Equal(t, int32(1), d.GetAttempts())
	require.Equal(t, int32(200), d.GetLastStatusCode())
	require.Equal(t, ev.GetId(), d.GetEventId())
	require.Equal(t, "dsync.user.created", d.GetEvent())

	// Every message, the poison one included, got its final fate: the ack
	// floor reached the end of the stream.
	cons, err := e.js.Consumer(t.Context(), event.Stream, dispatcher.DefaultConsumerName)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		info, err := cons.Info(t.Context())
		if err != nil {
			return false
		}
		sinfo, err := stream.Info(t.Context())
		return err == nil && info.AckFloor.Stream == sinfo.State.LastSeq && info.NumAckPending == 0
	}, wait, tick)

	require.Empty(t, e.deliveries(otherEP.GetId()))
	require.Empty(t, other.got())
	require.Len(t, rcv.got(), 1, "exactly one POST")
}

func TestRetryThenSucceed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sqliteStore(t))
	rcv := newReceiver(t, func(n int) int {
		if n < 2 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	ep := e.createEndpoint(rcv.URL)
	ev := e.userCreated()

	require.Eventually(t, func() bool {
		ds := e.deliveries(ep.GetId())
		return len(ds) == 1 && ds[0].GetState() == dsyncv1.DeliveryState_DELIVERY_STATE_SUCCEEDED
	}, wait, tick)
	d := e.deliveries(ep.GetId())[0]
	require.Equal(t, int32(3), d.GetAttempts())
	require.Equal(t, int32(200), d.GetLastStatusCode())
	reqs := rcv.got()
	require.Len(t, reqs, 3)
	for _, r := range reqs {
		// Same event id and bytes at every attempt, each freshly signed.
		require.Equal(t, ev.GetId(), r.header.Get("webhook-id"))
		require.Equal(t, reqs[0].body, r.body)
		requireSigned(t, ep.GetSecret(), r)
	}
}

func TestDeadLetter(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sqliteStore(t))
	rcv := newReceiver(t, always(http.StatusInternalServerError))
	ep := e.createEndpoint(rcv.URL)
	e.userCreated()

	require.Eventually(t, func() bool {
		ds := e.deliveries(ep.GetId())
		return len(ds) == 1 && ds[0].GetState() == dsyncv1.DeliveryState_DELIVERY_STATE_FAILED
	}, wait, tick)
	d := e.deliveries(ep.GetId())[0]
	require.Equal(t, int32(4), d.GetAttempts(), "one attempt plus one per schedule entry")
	require.Equal(t, int32(500), d.GetLastStatusCode())
	require.Len(t, rcv.got(), 4)
}

func TestGoneDisablesEndpoint(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sqliteStore(t))
	rcv := newReceiver(t, always(http.StatusGone))
	ep := e.createEndpoint(rcv.URL)
	e.userCreated()

	require.Eventually(t, func() bool {
		resp, err := e.client.GetEndpoint(t.Context(), &dsyncv1.GetEndpointRequest{Id: ep.GetId()})
		require.NoError(t, err)
		return resp.GetEndpoint().GetState() == dsyncv1.EndpointState_ENDPOINT_STATE_DISABLED
	}, wait, tick)
	ds := e.deliveries(ep.GetId())
	require.Len(t, ds, 1)
	require.Equal(t, dsyncv1.DeliveryState_DELIVERY_STATE_FAILED, ds[0].GetState())
	require.Equal(t, int32(410), ds[0].GetLastStatusCode())
	require.Equal(t, "the endpoint answered 410 Gone", e.endpoint(ep.GetId()).GetDisabledReason())

	// A disabled endpoint is sent nothing: its new deliveries wait, pending,
	// for it to be enabled again.
	healthy := newReceiver(t, always(http.StatusOK))
	e.createEndpoint(healthy.URL)
	e.userCreated()
	require.Eventually(t, func() bool { return len(healthy.got()) == 1 }, wait, tick)
	ds = e.deliveries(ep.GetId())
	require.Len(t, ds, 2)
	states := map[dsyncv1.DeliveryState]int{}
	for _, d := range ds {
		states[d.GetState()]++
	}
	require.Equal(t, map[dsyncv1.DeliveryState]int{
		dsyncv1.DeliveryState_DELIVERY_STATE_FAILED:  1, // the 410
		dsyncv1.DeliveryState_DELIVERY_STATE_PENDING: 1, // the one that waits
	}, states)
	require.Len(t, rcv.got(), 1)
}

// TestDeadEndpointDoesNotDelayHealthy: an endpoint that hangs until the
// request times out must not hold up deliveries to another endpoint.
func TestDeadEndpointDoesNotDelayHealthy(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sqliteStore(t), func(c *dispatcher.Config) {
		c.RequestTimeout = 5 * time.Second
		c.RetrySchedule = []time.Duration{time.Hour}
	})
	release := make(chan struct{})
	dead := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(dead.Close)
	t.Cleanup(func() { close(release) }) // runs before dead.Close
	healthy := newReceiver(t, always(http.StatusNoContent))
	e.createEndpoint(dead.URL)
	e.createEndpoint(healthy.URL)

	const n = 20
	start := time.Now()
	for range n {
		e.userCreated()
	}
	require.Eventually(t, func() bool { return len(healthy.got()) == n }, 4*time.Second, tick,
		"the healthy endpoint gets every event while the dead one hangs")
	require.Less(t, time.Since(start), 5*time.Second)

	// Ingestion never waits for the dead endpoint: every stream message
	// is acknowledged while its deliveries to it are still pending.
	cons, err := e.js.Consumer(t.Context(), event.Stream, dispatcher.DefaultConsumerName)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		info, err := cons.Info(t.Context())
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	}, 4*time.Second, tick, "the consumer acknowledged every event")
}

// TestRestartNoDuplicates: a restarted dispatcher resumes its durable
// consumer and store without sending anything twice, and a redelivered
// event (same event id in a second stream message) is delivered once.
func TestRestartNoDuplicates(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sqliteStore(t))
	rcv := newReceiver(t, always(http.StatusOK))
	ep := e.createEndpoint(rcv.URL)
	first := e.userCreated()
	require.Eventually(t, func() bool { return len(rcv.got()) == 1 }, wait, tick)

	e.stop()
	second := e.userCreated() // published while the dispatcher is down
	e.start()

	// The same event again, as a new stream message (a different
	// Nats-Msg-Id defeats the stream's dedup window).
	msg, err := event.NewMsg(event.UserSubject(e.dirID, first.GetUser().GetId()), first)
	require.NoError(t, err)
	msg.Header.Set(nats.MsgIdHdr, "replay-"+first.GetId())
	_, err = e.js.PublishMsg(t.Context(), msg)
	require.NoError(t, err)
	third := e.userCreated()

	require.Eventually(t, func() bool { return len(rcv.got()) == 3 }, wait, tick)
	// Wait until the replayed message has been consumed, then check nothing more came.
	cons, err := e.js.Consumer(t.Context(), event.Stream, dispatcher.DefaultConsumerName)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		info, err := cons.Info(t.Context())
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	}, wait, tick)
	var got []string
	for _, r := range rcv.got() {
		got = append(got, r.header.Get("webhook-id"))
	}
	require.ElementsMatch(t, []string{first.GetId(), second.GetId(), third.GetId()}, got)
	require.Len(t, e.deliveries(ep.GetId()), 3)
}

func TestWebhookServiceErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sqliteStore(t), func(c *dispatcher.Config) { c.AllowPrivateTargets = false })
	ctx := t.Context()
	unknown := e.ids.New(event.PrefixEndpoint)
	tests := []struct {
		name string
		call func() error
		code codes.Code
	}{
		{"relative url", func() error {
			_, err := e.client.CreateEndpoint(ctx, &dsyncv1.CreateEndpointRequest{Url: "/hooks"})
			return err
		}, codes.InvalidArgument},
		{"ftp url", func() error {
			_, err := e.client.CreateEndpoint(ctx, &dsyncv1.CreateEndpointRequest{Url: "ftp://example.com/"})
			return err
		}, codes.InvalidArgument},
		{"private target", func() error {
			_, err := e.client.CreateEndpoint(ctx, &dsyncv1.CreateEndpointRequest{Url: "http://10.0.0.1/"})
			return err
		}, codes.InvalidArgument},
		{"unknown event", func() error {
			_, err := e.client.CreateEndpoint(ctx, &dsyncv1.CreateEndpointRequest{Url: "https://example.com/", Events: []string{"dsync.nope"}})
			return err
		}, codes.InvalidArgument},
		{"get unknown", func() error {
			_, err := e.client.GetEndpoint(ctx, &dsyncv1.GetEndpointRequest{Id: unknown})
			return err
		}, codes.NotFound},
		{"get malformed id", func() error {
			_, err := e.client.GetEndpoint(ctx, &dsyncv1.GetEndpointRequest{Id: "we_'; DROP TABLE"})
			return err
		}, codes.InvalidArgument},
		{"deliveries of unknown endpoint", func() error {
			_, err := e.client.ListDeliveries(ctx, &dsyncv1.ListDeliveriesRequest{EndpointId: unknown})
			return err
		}, codes.NotFound},
		{"limit too large", func() error {
			_, err := e.client.ListEndpoints(ctx, &dsyncv1.ListEndpointsRequest{Page: &dsyncv1.Page{Limit: 1000}})
			return err
		}, codes.InvalidArgument},
		{"bad cursor", func() error {
			_, err := e.client.ListEndpoints(ctx, &dsyncv1.ListEndpointsRequest{Page: &dsyncv1.Page{After: "x"}})
			return err
		}, codes.InvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.code, status.Code(tc.call()))
		})
	}

	// Listing: ids in order, secrets only from Create and Get.
	var created []string
	for range 3 {
		ep, err := e.client.CreateEndpoint(ctx, &dsyncv1.CreateEndpointRequest{Url: "https://example.com/hook",
			Events: []string{workos.EventUserCreated, workos.EventUserCreated}})
		require.NoError(t, err)
		require.Equal(t, []string{workos.EventUserCreated}, ep.GetEndpoint().GetEvents())
		created = append(created, ep.GetEndpoint().GetId())
	}
	got, err := e.client.GetEndpoint(ctx, &dsyncv1.GetEndpointRequest{Id: created[0]})
	require.NoError(t, err)
	require.NotEmpty(t, got.GetEndpoint().GetSecret())
	list, err := e.client.ListEndpoints(ctx, &dsyncv1.ListEndpointsRequest{Page: &dsyncv1.Page{Limit: 2}})
	require.NoError(t, err)
	require.Len(t, list.GetEndpoints(), 2)
	require.Equal(t, created[:2], []string{list.GetEndpoints()[0].GetId(), list.GetEndpoints()[1].GetId()})
	require.Empty(t, list.GetEndpoints()[0].GetSecret())
	require.Equal(t, created[1], list.GetPageInfo().GetAfter())
	list, err = e.client.ListEndpoints(ctx, &dsyncv1.ListEndpointsRequest{Page: &dsyncv1.Page{After: list.GetPageInfo().GetAfter()}})
	require.NoError(t, err)
	require.Len(t, list.GetEndpoints(), 1)
	require.Equal(t, created[2], list.GetEndpoints()[0].GetId())
}

// testWriter sends log lines to t.Log so they show with the failing test.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
