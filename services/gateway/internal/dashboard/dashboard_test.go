package dashboard_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/dsync-dev/dsync/pkg/event"
	"github.com/dsync-dev/dsync/pkg/natsx/natstest"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
	"github.com/dsync-dev/dsync/services/gateway/internal/dashboard"
)

const (
	apiKey    = "sk_test_dashboard_key"
	password  = "correct horse battery staple"
	dirID     = "directory_01JZ0000000000000000000000"
	orgID     = "org_01JZ0000000000000000000000"
	userID    = "directory_user_01JZ0000000000000000000000"
	epID      = "we_01JZ0000000000000000000000"
	scimToken = "scim_token_shown_once_0123456789"
	whSecret  = "whsec_dGhlIHNlY3JldCBpcyBuZXZlciByZW5kZXJlZA"
	groupID   = "directory_group_01JZ0000000000000000000000"
	eventID   = "event_01JZ0000000000000000000000"
	reqID     = "req_01JZ0000000000000000000000"
	dlvID     = "whd_01JZ0000000000000000000000"
	newToken  = "scim_token_rotated_0123456789"
	newSecret = "whsec_cm90YXRlZCBzZWNyZXQgc2hvd24gb25jZQ"
)

// fakeDirectories is the part of DirectoryService the dashboard reads.
type fakeDirectories struct {
	dsyncv1.UnimplementedDirectoryServiceServer
}

func (fakeDirectories) ListOrganizations(context.Context, *dsyncv1.ListOrganizationsRequest) (*dsyncv1.ListOrganizationsResponse, error) {
	return &dsyncv1.ListOrganizationsResponse{Organizations: []*dsyncv1.Organization{
		{Id: orgID, Name: "Acme", Domains: []string{"acme.test"}, CreatedAt: timestamppb.Now()},
	}}, nil
}

func (fakeDirectories) GetOrganization(_ context.Context, req *dsyncv1.GetOrganizationRequest) (*dsyncv1.GetOrganizationResponse, error) {
	if req.GetId() != orgID {
		return nil, status.Error(codes.NotFound, "no such organization")
	}
	return &dsyncv1.GetOrganizationResponse{Organization: &dsyncv1.Organization{Id: orgID, Name: "Acme"}}, nil
}

func (fakeDirectories) GetDirectory(_ context.Context, req *dsyncv1.GetDirectoryRequest) (*dsyncv1.GetDirectoryResponse, error) {
	if req.GetId() != dirID {
		return nil, status.Error(codes.NotFound, "no such directory")
	}
	return &dsyncv1.GetDirectoryResponse{Directory: &dsyncv1.Directory{
		Id: dirID, OrganizationId: orgID, Name: "Acme Okta", Type: "okta scim v2.0",
		State: dsyncv1.DirectoryState_DIRECTORY_STATE_ACTIVE, RateLimitPerSecond: 25,
		RoleMapping: map[string]string{"Engineering": "developer"}, CreatedAt: timestamppb.Now(),
	}}, nil
}

// userEvent is the user's creation, caused by SCIM request reqID.
func userEvent() *dsyncv1.Event {
	return &dsyncv1.Event{
		Id: eventID, Type: dsyncv1.EventType_EVENT_TYPE_USER_CREATED, DirectoryId: dirID, OccurredAt: timestamppb.Now(),
		Source:  &dsyncv1.Source{Api: "scim", Provider: "okta", RequestId: reqID},
		Payload: &dsyncv1.Event_User{User: &dsyncv1.User{Id: userID, DirectoryId: dirID, Email: "ada@example.com"}},
	}
}

func (fakeDirectories) ListEvents(context.Context, *dsyncv1.ListEventsRequest) (*dsyncv1.ListEventsResponse, error) {
	other := &dsyncv1.Event{
		Id: "event_01JZ0000000000000000000001", Type: dsyncv1.EventType_EVENT_TYPE_USER_CREATED, DirectoryId: dirID,
		OccurredAt: timestamppb.Now(), Source: &dsyncv1.Source{Api: "scim"},
		Payload: &dsyncv1.Event_User{User: &dsyncv1.User{Id: "directory_user_01JZ0000000000000000000001", Email: "someone.else@example.com"}},
	}
	return &dsyncv1.ListEventsResponse{Events: []*dsyncv1.SequencedEvent{{Sequence: 2, Event: other}, {Sequence: 1, Event: userEvent()}},
		PageInfo: &dsyncv1.PageInfo{}}, nil
}

func (fakeDirectories) GetProjectionStatus(context.Context, *dsyncv1.GetProjectionStatusRequest) (*dsyncv1.GetProjectionStatusResponse, error) {
	return &dsyncv1.GetProjectionStatusResponse{AppliedSequence: 40, StreamSequence: 42}, nil
}

// fakeWebhooks answers GetEndpoint with the secret, as the real dispatcher
// does, so that the test can check the page leaves it out. It holds one
// delivery of eventID to epID and, known only to ListEventDeliveries,
// one to otherEPID, an endpoint past those ListEndpoints lists. old makes
// it a dispatcher from before ListEventDeliveries (Unimplemented).
type fakeWebhooks struct {
	dsyncv1.UnimplementedWebhookServiceServer
	old   bool
	mu    sync.Mutex
	calls []string // the methods called, in order
}

// otherEPID is an endpoint ListEndpoints does not list.
const otherEPID = "we_01JZ0000000000000000000009"

func (f *fakeWebhooks) called(method string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, method)
}

// count returns how many times method was called.
func (f *fakeWebhooks) count(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c == method {
			n++
		}
	}
	return n
}

func (f *fakeWebhooks) GetEndpoint(_ context.Context, req *dsyncv1.GetEndpointRequest) (*dsyncv1.GetEndpointResponse, error) {
	f.called("GetEndpoint")
	if req.GetId() != epID {
		return nil, status.Error(codes.NotFound, "endpoint not found")
	}
	return &dsyncv1.GetEndpointResponse{Endpoint: &dsyncv1.Endpoint{
		Id: epID, Url: "https://app.test/hook", Secret: whSecret, State: dsyncv1.EndpointState_ENDPOINT_STATE_ENABLED,
		CreatedAt: timestamppb.Now(),
	}}, nil
}

func (f *fakeWebhooks) ListEndpoints(context.Context, *dsyncv1.ListEndpointsRequest) (*dsyncv1.ListEndpointsResponse, error) {
	f.called("ListEndpoints")
	return &dsyncv1.ListEndpointsResponse{Endpoints: []*dsyncv1.Endpoint{{
		Id: epID, Url: "https://app.test/hook", Secret: whSecret, State: dsyncv1.EndpointState_ENDPOINT_STATE_ENABLED,
	}}, PageInfo: &dsyncv1.PageInfo{}}, nil
}

// failedDelivery is the delivery of eventID to endpoint, failed after
// three attempts.
func failedDelivery(id, endpoint string) *dsyncv1.Delivery {
	return &dsyncv1.Delivery{
		Id: id, EndpointId: endpoint, EventId: eventID,
		Event: "dsync.user.created", State: dsyncv1.DeliveryState_DELIVERY_STATE_FAILED, Attempts: 3,
		LastStatusCode: 500, LastError: "status 500", CreatedAt: timestamppb.Now(),
		AttemptsLog: []*dsyncv1.DeliveryAttempt{{Number: 1, StartedAt: timestamppb.Now(), StatusCode: 500, Error: "status 500"}},
	}
}

func (f *fakeWebhooks) ListDeliveries(context.Context, *dsyncv1.ListDeliveriesRequest) (*dsyncv1.ListDeliveriesResponse, error) {
	f.called("ListDeliveries")
	return &dsyncv1.ListDeliveriesResponse{Deliveries: []*dsyncv1.Delivery{failedDelivery(dlvID, epID)},
		PageInfo: &dsyncv1.PageInfo{}}, nil
}

func (f *fakeWebhooks) ListEventDeliveries(ctx context.Context, req *dsyncv1.ListEventDeliveriesRequest) (*dsyncv1.ListEventDeliveriesResponse, error) {
	f.called("ListEventDeliveries")
	if f.old {
		return f.UnimplementedWebhookServiceServer.ListEventDeliveries(ctx, req)
	}
	if n := len(req.GetEventIds()); n == 0 || n > 100 {
		return nil, status.Errorf(codes.InvalidArgument, "give 1 to 100 event ids, not %d", n)
	}
	resp := &dsyncv1.ListEventDeliveriesResponse{}
	if slices.Contains(req.GetEventIds(), eventID) {
		resp.Deliveries = []*dsyncv1.Delivery{failedDelivery(dlvID, epID), failedDelivery("whd_01JZ0000000000000000000009", otherEPID)}
	}
	return resp, nil
}

// restAPI is a small stand-in for the gateway's REST API, with the same
// authentication and wire format, that records what the dashboard sent.
type restAPI struct {
	mu    sync.Mutex
	calls []string
	// bodies are the JSON bodies sent, by "METHOD path".
	bodies map[string]string
}

func (a *restAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(strings.NewReader(string(body)))
	a.mu.Lock()
	a.calls = append(a.calls, r.Method+" "+r.URL.Path)
	if a.bodies == nil {
		a.bodies = map[string]string{}
	}
	a.bodies[r.Method+" "+r.URL.Path] = string(body)
	a.mu.Unlock()
	write := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	if r.URL.Path == "/healthz" {
		write(http.StatusOK, map[string]any{"status": "ok"})
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+apiKey {
		write(http.StatusUnauthorized, map[string]string{"code": "unauthorized", "message": "Missing or invalid API key"})
		return
	}
	dir := map[string]any{"object": "directory", "id": dirID, "organization_id": orgID, "name": "Acme Okta",
		"type": "okta scim v2.0", "state": "linked", "created_at": "2026-01-02T03:04:05.000Z"}
	user := map[string]any{"object": "directory_user", "id": userID, "directory_id": dirID, "organization_id": orgID,
		"idp_id": "00u1", "email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace", "state": "active",
		"custom_attributes": map[string]any{}, "raw_attributes": map[string]any{"userName": "ada@example.com"},
		"emails": []any{}, "groups": []any{}, "created_at": "2026-01-02T03:04:05.000Z", "updated_at": "2026-01-02T03:04:05.000Z"}
	list := func(items ...any) map[string]any {
		return map[string]any{"object": "list", "data": items, "list_metadata": map[string]any{"before": nil, "after": nil}}
	}
	group := map[string]any{"object": "directory_group", "id": groupID, "directory_id": dirID, "organization_id": orgID,
		"idp_id": "00g1", "name": "Engineering", "member_count": 7, "raw_attributes": map[string]any{"displayName": "Engineering"},
		"created_at": "2026-01-02T03:04:05.000Z", "updated_at": "2026-01-02T03:04:05.000Z"}
	ep := map[string]any{"id": epID, "url": "https://app.test/hook", "events": []string{}, "state": "enabled"}
	switch r.Method + " " + r.URL.Path {
	case "POST /directories/" + dirID + "/token":
		out := map[string]any{"scim": map[string]string{"endpoint": "http://gw.test/scim/v2/" + dirID, "bearer_token": newToken}}
		for k, v := range dir {
			out[k] = v
		}
		write(http.StatusOK, out)
	case "POST /directories/" + dirID + "/pause", "POST /directories/" + dirID + "/resume", "PATCH /directories/" + dirID:
		write(http.StatusOK, dir)
	case "DELETE /directories/" + dirID:
		w.WriteHeader(http.StatusAccepted)
	case "GET /directory_groups":
		write(http.StatusOK, list(group))
	case "GET /directory_groups/" + groupID:
		write(http.StatusOK, group)
	case "GET /webhook_endpoints/" + epID:
		ep["secret"] = whSecret // never rendered
		write(http.StatusOK, ep)
	case "GET /webhook_endpoints/" + epID + "/deliveries":
		write(http.StatusOK, list(map[string]any{"id": dlvID, "event_id": eventID, "event": "dsync.user.created", "state": "failed",
			"attempt_count": 1, "last_status_code": 500, "last_error": "status 500", "created_at": "2026-01-02T03:04:05.000Z",
			"attempts": []any{map[string]any{"number": 1, "started_at": "2026-01-02T03:04:05.000Z", "status_code": 500,
				"latency_ms": 12.5, "error": "status 500", "response_body": "upstream exploded"}}}))
	case "POST /webhook_endpoints/" + epID + "/secret":
		ep["secret"] = newSecret
		write(http.StatusOK, ep)
	case "POST /webhook_endpoints/" + epID + "/deliveries/" + dlvID + "/resend":
		write(http.StatusAccepted, map[string]any{"id": dlvID})
	case "POST /webhook_endpoints/" + epID + "/recover":
		write(http.StatusAccepted, map[string]any{"recovered": 2})
	case "POST /webhook_endpoints/" + epID + "/replay":
		write(http.StatusAccepted, map[string]any{"scheduled": 3})
	case "POST /organizations":
		var body struct{ Name string }
		_ = json.NewDecoder(r.Body).Decode(&body)
		if body.Name == "" {
			write(http.StatusUnprocessableEntity, map[string]string{"code": "invalid_request_parameters", "message": "name is required"})
			return
		}
		write(http.StatusCreated, map[string]any{"object": "organization", "id": orgID, "name": body.Name})
	case "POST /directories":
		out := map[string]any{"scim": map[string]string{"endpoint": "http://gw.test/scim/v2/" + dirID, "bearer_token": scimToken}}
		for k, v := range dir {
			out[k] = v
		}
		write(http.StatusCreated, out)
	case "GET /directories":
		write(http.StatusOK, list(dir))
	case "GET /directories/" + dirID:
		write(http.StatusOK, dir)
	case "GET /directory_users":
		write(http.StatusOK, list(user))
	case "GET /directory_users/" + userID:
		write(http.StatusOK, user)
	case "GET /webhook_endpoints":
		write(http.StatusOK, list(ep))
	case "POST /webhook_endpoints":
		write(http.StatusCreated, map[string]any{"id": epID, "url": "https://app.test/hook", "state": "enabled", "secret": whSecret})
	default:
		write(http.StatusNotFound, map[string]string{"code": "entity_not_found", "message": "not found"})
	}
}

type fixture struct {
	srv  *httptest.Server
	nats *natstest.Server
	api  *restAPI
	now  *clock
	wh   *fakeWebhooks
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func serveGRPC(t *testing.T, register func(*grpc.Server)) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	register(srv)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureWith(t, &fakeWebhooks{})
}

// newFixtureWith is newFixture with wh as the dispatcher.
func newFixtureWith(t *testing.T, wh *fakeWebhooks) *fixture {
	t.Helper()
	ns := natstest.Run(t)
	conn := serveGRPC(t, func(s *grpc.Server) {
		dsyncv1.RegisterDirectoryServiceServer(s, fakeDirectories{})
		dsyncv1.RegisterWebhookServiceServer(s, wh)
	})
	f := &fixture{nats: ns, api: &restAPI{}, now: &clock{t: time.Now()}, wh: wh}
	ctx, cancel := context.WithCancel(context.Background())
	d, err := dashboard.New(ctx, dashboard.Config{
		APIKey: apiKey, Password: password, API: f.api,
		Directories: dsyncv1.NewDirectoryServiceClient(conn), Webhooks: dsyncv1.NewWebhookServiceClient(conn),
		NATS: ns.Connect(t), PublicURL: "http://gw.test", Now: f.now.Now,
	})
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/dashboard/", d)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(func() { cancel(); f.srv.Close() })
	return f
}

// browser is an HTTP client with cookies that does not follow redirects.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
}

func (f *fixture) browser(t *testing.T) *browser {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &browser{t: t, base: f.srv.URL, c: &http.Client{
		Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (b *browser) do(method, path string, form url.Values, header ...string) (*http.Response, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(b.t.Context(), method, b.base+path, body)
	require.NoError(b.t, err)
	req.Header.Set("Accept", "text/html,application/xhtml+xml")
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := b.c.Do(req)
	require.NoError(b.t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(b.t, err)
	return resp, string(data)
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, html string) string {
	t.Helper()
	m := csrfRe.FindStringSubmatch(html)
	require.NotNil(t, m, "page has no CSRF token")
	return m[1]
}

// signIn signs b in with secret and returns the session's CSRF token.
func (b *browser) signIn(secret string) string {
	b.t.Helper()
	_, page := b.do("GET", "/dashboard/login", nil)
	resp, _ := b.do("POST", "/dashboard/login", url.Values{"csrf": {csrfOf(b.t, page)}, "secret": {secret}, "next": {"/dashboard/"}})
	require.Equal(b.t, http.StatusSeeOther, resp.StatusCode)
	_, page = b.do("GET", "/dashboard/", nil)
	return csrfOf(b.t, page)
}

// Every page and action is behind a session: a browser is sent to sign in,
// anything else gets 401, and a forged cookie is no session.
func TestEveryPageRequiresSession(t *testing.T) {
	f := newFixture(t)
	routes := []struct{ method, path string }{
		{"GET", "/dashboard/"},
		{"GET", "/dashboard/directories"},
		{"GET", "/dashboard/directories/new"},
		{"GET", "/dashboard/directories/" + dirID},
		{"GET", "/dashboard/directories/" + dirID + "/live"},
		{"GET", "/dashboard/users/" + userID},
		{"GET", "/dashboard/webhooks"},
		{"GET", "/dashboard/webhooks/" + epID},
		{"GET", "/dashboard/health"},
		{"GET", "/dashboard/no-such-page"},
		{"GET", "/dashboard/directories/" + dirID + "/settings"},
		{"GET", "/dashboard/directories/" + dirID + "/groups"},
		{"GET", "/dashboard/directories/" + dirID + "/requests/" + reqID},
		{"GET", "/dashboard/groups/" + groupID},
		{"POST", "/dashboard/directories/" + dirID + "/rotate-token"},
		{"POST", "/dashboard/directories/" + dirID + "/pause"},
		{"POST", "/dashboard/directories/" + dirID + "/resume"},
		{"POST", "/dashboard/directories/" + dirID + "/delete"},
		{"POST", "/dashboard/directories/" + dirID + "/settings"},
		{"POST", "/dashboard/webhooks/" + epID + "/secret"},
		{"POST", "/dashboard/webhooks/" + epID + "/deliveries/" + dlvID + "/resend"},
		{"POST", "/dashboard/webhooks/" + epID + "/recover"},
		{"POST", "/dashboard/webhooks/" + epID + "/replay"},
		{"POST", "/dashboard/organizations"},
		{"POST", "/dashboard/directories"},
		{"POST", "/dashboard/webhooks"},
		{"POST", "/dashboard/logout"},
	}
	for _, rt := range routes {
		t.Run(rt.method+" "+rt.path, func(t *testing.T) {
			b := f.browser(t)
			form := url.Values{"csrf": {"x"}, "name": {"Evil"}}
			if rt.method == "GET" {
				form = nil
			}
			resp, _ := b.do(rt.method, rt.path, form)
			if rt.method == "GET" {
				require.Equal(t, http.StatusSeeOther, resp.StatusCode)
				require.True(t, strings.HasPrefix(resp.Header.Get("Location"), "/dashboard/login?next="))
			} else {
				require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
			}
			resp, _ = b.do(rt.method, rt.path, form, "Cookie", "dsync_session=forged", "Accept", "application/json")
			require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		})
	}
	f.api.mu.Lock()
	defer f.api.mu.Unlock()
	require.Empty(t, f.api.calls, "no API call is made for an unauthenticated request")
}

func TestSecurityHeadersOnEveryResponse(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	b.signIn(apiKey)
	for _, path := range []string{"/dashboard/login", "/dashboard/", "/dashboard/health", "/dashboard/static/app.css", "/dashboard/nope", "/dashboard/users/bad"} {
		resp, _ := b.do("GET", path, nil)
		csp := resp.Header.Get("Content-Security-Policy")
		require.Contains(t, csp, "script-src 'self'", path)
		require.Contains(t, csp, "frame-ancestors 'none'", path)
		require.NotContains(t, csp, "unsafe-inline", path)
		require.Equal(t, "DENY", resp.Header.Get("X-Frame-Options"), path)
		require.Equal(t, "same-origin", resp.Header.Get("Referrer-Policy"), path)
		require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"), path)
	}
}

// No page carries inline script or style, which the CSP would block.
func TestPagesHaveNoInlineScriptOrStyle(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	csrf := b.signIn(apiKey)
	pages := map[string]string{}
	for _, p := range []string{"/dashboard/", "/dashboard/directories", "/dashboard/directories/new", "/dashboard/directories/" + dirID,
		"/dashboard/users/" + userID, "/dashboard/webhooks", "/dashboard/webhooks/" + epID, "/dashboard/health",
		"/dashboard/directories/" + dirID + "/settings", "/dashboard/directories/" + dirID + "/groups",
		"/dashboard/groups/" + groupID, "/dashboard/directories/" + dirID + "/requests/" + reqID} {
		resp, body := b.do("GET", p, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode, p+": "+body)
		pages[p] = body
	}
	_, pages["created"] = b.do("POST", "/dashboard/directories", url.Values{"csrf": {csrf}, "organization_id": {orgID}, "name": {"X"}, "type": {"okta scim v2.0"}})
	inline := regexp.MustCompile(`<script>|<script [^>]*>[^<]|\sstyle=|<style|\son[a-z]+=`)
	for p, body := range pages {
		require.False(t, inline.MatchString(body), "%s has inline script or style: %s", p, inline.FindString(body))
	}
}

func TestSignIn(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name   string
		secret string
		want   int
	}{
		{"api key", apiKey, http.StatusSeeOther},
		{"operator password", password, http.StatusSeeOther},
		{"wrong", "sk_wrong", http.StatusUnauthorized},
		{"prefix of the key", apiKey[:5], http.StatusUnauthorized},
		{"empty", "", http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := f.browser(t)
			_, page := b.do("GET", "/dashboard/login", nil)
			resp, body := b.do("POST", "/dashboard/login", url.Values{"csrf": {csrfOf(t, page)}, "secret": {tt.secret}})
			require.Equal(t, tt.want, resp.StatusCode)
			if tt.want != http.StatusSeeOther {
				require.Contains(t, body, "not right")
				require.NotContains(t, resp.Header.Values("Set-Cookie"), "dsync_session")
				return
			}
			var session *http.Cookie
			for _, c := range resp.Cookies() {
				if c.Name == "dsync_session" {
					session = c
				}
			}
			require.NotNil(t, session)
			require.True(t, session.HttpOnly)
			require.Equal(t, http.SameSiteStrictMode, session.SameSite)
			require.False(t, session.Secure, "plain HTTP without a proxy")
			require.NotContains(t, session.Value, tt.secret)
		})
	}
}

func TestSessionCookieSecureBehindTLSProxy(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	_, page := b.do("GET", "/dashboard/login", nil, "X-Forwarded-Proto", "https")
	// The jar would not send a Secure cookie over http; send it by hand.
	token := csrfOf(t, page)
	resp, _ := b.do("POST", "/dashboard/login", url.Values{"csrf": {token}, "secret": {apiKey}},
		"X-Forwarded-Proto", "https", "Cookie", "dsync_login_csrf="+token)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	for _, c := range resp.Cookies() {
		if c.Name == "dsync_session" {
			require.True(t, c.Secure)
			return
		}
	}
	t.Fatal("no session cookie")
}

func TestSignInNeedsItsCSRFToken(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	_, page := b.do("GET", "/dashboard/login", nil)
	tests := map[string]url.Values{
		"no token":    {"secret": {apiKey}},
		"wrong token": {"csrf": {"forged"}, "secret": {apiKey}},
	}
	for name, form := range tests {
		resp, _ := b.do("POST", "/dashboard/login", form)
		require.Equal(t, http.StatusForbidden, resp.StatusCode, name)
	}
	// A cross-site form with the right token is still refused.
	resp, _ := b.do("POST", "/dashboard/login", url.Values{"csrf": {csrfOf(t, page)}, "secret": {apiKey}}, "Origin", "https://evil.test")
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
}

func TestSignInIsThrottled(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	for range 20 {
		_, page := b.do("GET", "/dashboard/login", nil)
		resp, _ := b.do("POST", "/dashboard/login", url.Values{"csrf": {csrfOf(t, page)}, "secret": {"guess"}})
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	}
	_, page := b.do("GET", "/dashboard/login", nil)
	resp, _ := b.do("POST", "/dashboard/login", url.Values{"csrf": {csrfOf(t, page)}, "secret": {apiKey}})
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "even the right key waits out the window")
	require.NotEmpty(t, resp.Header.Get("Retry-After"))
	f.now.Add(time.Minute + time.Second)
	require.NotEmpty(t, b.signIn(apiKey))
}

// Every form action refuses a request without the session's CSRF token or
// from another site, and makes no API call for it.
func TestActionsRequireCSRFToken(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	csrf := b.signIn(apiKey)
	actions := []struct {
		path string
		form url.Values
	}{
		{"/dashboard/organizations", url.Values{"name": {"Acme"}}},
		{"/dashboard/directories", url.Values{"organization_id": {orgID}, "name": {"D"}, "type": {"okta scim v2.0"}}},
		{"/dashboard/webhooks", url.Values{"url": {"https://app.test/hook"}}},
		{"/dashboard/logout", url.Values{}},
	}
	for _, a := range actions {
		t.Run(a.path, func(t *testing.T) {
			for name, tok := range map[string][]string{"missing": nil, "wrong": {"forged"}, "other session": {b2csrf(t, f)}} {
				form := url.Values{}
				for k, v := range a.form {
					form[k] = v
				}
				if tok != nil {
					form["csrf"] = tok
				}
				resp, _ := b.do("POST", a.path, form)
				require.Equal(t, http.StatusForbidden, resp.StatusCode, name)
			}
			form := url.Values{"csrf": {csrf}}
			resp, _ := b.do("POST", a.path, form, "Origin", "https://evil.test")
			require.Equal(t, http.StatusForbidden, resp.StatusCode, "cross-origin")
			resp, _ = b.do("POST", a.path, form, "Sec-Fetch-Site", "cross-site")
			require.Equal(t, http.StatusForbidden, resp.StatusCode, "cross-site")
		})
	}
	f.api.mu.Lock()
	for _, c := range f.api.calls {
		require.False(t, strings.HasPrefix(c, "POST "), "refused forms made an API call: %s", c)
	}
	f.api.mu.Unlock()

	resp, _ := b.do("POST", "/dashboard/organizations", url.Values{"csrf": {csrf}, "name": {"Acme"}}, "Origin", f.srv.URL)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, "/dashboard/directories/new?organization_id="+orgID, resp.Header.Get("Location"))
}

func b2csrf(t *testing.T, f *fixture) string { return f.browser(t).signIn(apiKey) }

func TestSessionExpiresAndSignOutEndsIt(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	b.signIn(apiKey)
	f.now.Add(dashboard.DefaultIdleTimeout + time.Minute)
	resp, _ := b.do("GET", "/dashboard/", nil)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, "idle session expired")

	csrf := b.signIn(apiKey)
	resp, _ = b.do("POST", "/dashboard/logout", url.Values{"csrf": {csrf}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	resp, _ = b.do("GET", "/dashboard/", nil)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, "signed out")
}

// The SCIM token is on the page that answers the creation, marked
// no-store, and on no page after it.
func TestDirectoryTokenShownOnce(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	csrf := b.signIn(apiKey)
	resp, body := b.do("POST", "/dashboard/directories", url.Values{
		"csrf": {csrf}, "organization_id": {orgID}, "name": {"Acme Okta"}, "type": {"okta scim v2.0"},
	})
	require.Equal(t, http.StatusCreated, resp.StatusCode, body)
	require.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	require.Contains(t, body, scimToken)
	require.Contains(t, body, "http://gw.test/scim/v2/"+dirID)
	for _, step := range []string{"Provisioning", "Configure API Integration", "Test API Credentials",
		"Create Users", "Update User Attributes", "Deactivate Users", "Push Groups"} {
		require.Contains(t, body, step)
	}
	for _, p := range []string{"/dashboard/", "/dashboard/directories", "/dashboard/directories/" + dirID} {
		_, page := b.do("GET", p, nil)
		require.NotContains(t, page, scimToken, p)
	}
}

// A webhook secret is shown when the endpoint is created and never again,
// though the dispatcher's GetEndpoint returns it.
func TestWebhookSecretShownOnce(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	csrf := b.signIn(apiKey)
	resp, body := b.do("POST", "/dashboard/webhooks", url.Values{"csrf": {csrf}, "url": {"https://app.test/hook"}, "events": {"dsync.user.created"}})
	require.Equal(t, http.StatusCreated, resp.StatusCode, body)
	require.Contains(t, body, whSecret)
	for _, p := range []string{"/dashboard/webhooks", "/dashboard/webhooks/" + epID} {
		resp, page := b.do("GET", p, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.NotContains(t, page, whSecret, p)
	}
	_, page := b.do("GET", "/dashboard/webhooks/"+epID, nil)
	require.Contains(t, page, "dsync.user.created")
	require.Contains(t, page, "status 500")
	require.Contains(t, page, "upstream exploded", "each attempt's response is shown")
}

func TestPagesRender(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	b.signIn(apiKey)
	tests := []struct {
		path string
		want []string
	}{
		{"/dashboard/", []string{"Acme", "Acme Okta"}},
		{"/dashboard/directories?search=acme", []string{"Acme Okta", "Okta"}},
		{"/dashboard/directories/new?organization_id=" + orgID, []string{"Microsoft Entra ID", "OneLogin", "JumpCloud", "PingFederate", "Rippling", "CyberArk", "Generic SCIM 2.0"}},
		{"/dashboard/directories/" + dirID, []string{"ada@example.com", "http://gw.test/scim/v2/" + dirID, "live-feed"}},
		{"/dashboard/directories/" + dirID + "?q=LOVELACE", []string{"ada@example.com"}},
		{"/dashboard/users/" + userID, []string{"Ada Lovelace", "00u1", "userName"}},
		{"/dashboard/health", []string{"projector", "dispatcher", "2 events"}},
	}
	for _, tt := range tests {
		resp, body := b.do("GET", tt.path, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode, tt.path)
		for _, w := range tt.want {
			require.Contains(t, body, w, tt.path)
		}
	}
	_, body := b.do("GET", "/dashboard/directories/"+dirID+"?q=nobody", nil)
	require.Contains(t, body, "No user matches")
	resp, _ := b.do("GET", "/dashboard/directories/directory_bad..id", nil)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
}

// The live view streams the directory's events as they are published, and
// nothing of other directories.
func TestLiveStream(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	b.signIn(apiKey)

	resp, _ := b.do("GET", "/dashboard/directories/directory_*/live", nil)
	require.Equal(t, http.StatusNotFound, resp.StatusCode, "a wildcard never reaches a subject")

	req, err := http.NewRequestWithContext(t.Context(), "GET", f.srv.URL+"/dashboard/directories/"+dirID+"/live", nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "text/event-stream")
	stream, err := (&http.Client{Jar: b.c.Jar}).Do(req)
	require.NoError(t, err)
	defer stream.Body.Close()
	require.Equal(t, http.StatusOK, stream.StatusCode)
	require.Equal(t, "text/event-stream", stream.Header.Get("Content-Type"))
	frames := readFrames(stream.Body)
	require.Equal(t, "ready", (<-frames).name)

	nc := f.nats.Connect(t)
	publish := func(dir, user, email string) {
		ev := &dsyncv1.Event{
			Id: "event_01JZ00000000000000000000" + user[len(user)-2:], DirectoryId: dir, Type: dsyncv1.EventType_EVENT_TYPE_USER_CREATED,
			OccurredAt: timestamppb.Now(), Source: &dsyncv1.Source{Api: "scim", Provider: "okta", RequestId: "req_1"},
			Payload: &dsyncv1.Event_User{User: &dsyncv1.User{Id: user, DirectoryId: dir, Email: email, State: dsyncv1.UserState_USER_STATE_ACTIVE}},
		}
		msg, err := event.NewMsg(event.UserSubject(dir, user), ev)
		require.NoError(t, err)
		require.NoError(t, nc.PublishMsg(msg))
	}
	publish("directory_01JZ9999999999999999999999", "directory_user_01JZ00000000000000000000AA", "other@example.com")
	publish(dirID, userID, "grace@example.com")

	// next returns the next frame of that name whose data contains want.
	next := func(name, want string) frame {
		t.Helper()
		deadline := time.After(5 * time.Second)
		for {
			select {
			case fr, ok := <-frames:
				require.True(t, ok, "stream ended")
				if fr.name == name && strings.Contains(fr.data, want) {
					return fr
				}
			case <-deadline:
				t.Fatalf("no %s frame with %q on the live stream", name, want)
			}
		}
	}
	var le dashboard.LiveEvent
	require.NoError(t, json.Unmarshal([]byte(next("event", "grace@example.com").data), &le))
	require.Equal(t, "dsync.user.created", le.Event)
	require.Equal(t, "grace@example.com", le.Label)
	require.Equal(t, "/dashboard/users/"+userID, le.URL)
	require.Equal(t, "okta", le.Provider)
	require.Equal(t, "active", le.State)

	// A SCIM request recorded by any gateway replica arrives as a request.
	rec, err := json.Marshal(dashboard.SCIMRequest{ID: "req_01JZ0000000000000000000009", DirectoryID: dirID, Method: "POST",
		Path: "/scim/v2/" + dirID + "/Users", Status: 201, LatencyMS: 3.5, Provider: "okta", Body: `{"userName":"grace"}`})
	require.NoError(t, err)
	require.NoError(t, nc.Publish(dashboard.RequestSubject(dirID), rec))
	var got dashboard.SCIMRequest
	require.NoError(t, json.Unmarshal([]byte(next("request", "req_01JZ0000000000000000000009").data), &got))
	require.Equal(t, 201, got.Status)
	require.Equal(t, "okta", got.Provider)
}

// The live view starts with the directory's recent requests and events,
// and follows the deliveries of those events with their attempts.
func TestLiveStreamPrefillAndDeliveries(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	b.signIn(apiKey)
	nc := f.nats.Connect(t)
	rec, err := json.Marshal(dashboard.SCIMRequest{ID: reqID, DirectoryID: dirID, Method: "POST", Path: "/scim/v2/" + dirID + "/Users", Status: 201})
	require.NoError(t, err)
	require.NoError(t, nc.Publish(dashboard.RequestSubject(dirID), rec))
	require.NoError(t, nc.Flush())
	// The request log is fed asynchronously: wait until it holds it.
	require.Eventually(t, func() bool {
		_, page := b.do("GET", "/dashboard/directories/"+dirID+"/requests/"+reqID, nil)
		return strings.Contains(page, "What the identity provider sent") && !strings.Contains(page, "no longer in the request log")
	}, 5*time.Second, 20*time.Millisecond)

	req, err := http.NewRequestWithContext(t.Context(), "GET", f.srv.URL+"/dashboard/directories/"+dirID+"/live", nil)
	require.NoError(t, err)
	stream, err := (&http.Client{Jar: b.c.Jar}).Do(req)
	require.NoError(t, err)
	defer stream.Body.Close()
	var names []string
	seen := map[string]string{}
	for fr := range readFrames(stream.Body) {
		names = append(names, fr.name)
		seen[fr.name] = fr.data
		if fr.name == "delivery" {
			break
		}
	}
	require.Equal(t, []string{"ready", "request", "event", "event", "delivery"}, names)
	require.Contains(t, seen["request"], reqID)
	var dv dashboard.LiveDelivery
	require.NoError(t, json.Unmarshal([]byte(seen["delivery"]), &dv))
	require.Equal(t, eventID, dv.EventID)
	require.Equal(t, "https://app.test/hook", dv.EndpointURL)
	require.Len(t, dv.Attempts, 1)
	require.Equal(t, int32(500), dv.Attempts[0].StatusCode)
}

type frame struct{ name, data string }

func readFrames(r io.Reader) <-chan frame {
	out := make(chan frame, 16)
	go func() {
		defer close(out)
		sc := bufio.NewScanner(r)
		var fr frame
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				fr.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				fr.data = strings.TrimPrefix(line, "data: ")
			case line == "" && fr.name != "":
				out <- fr
				fr = frame{}
			}
		}
	}()
	return out
}

func TestRedirectRoot(t *testing.T) {
	tests := []struct {
		method, path, accept string
		want                 bool
	}{
		{"GET", "/", "text/html,application/xhtml+xml,*/*;q=0.8", true},
		{"HEAD", "/", "TEXT/HTML", true},
		{"GET", "/", "application/json", false},
		{"GET", "/", "*/*", false},
		{"GET", "/", "", false},
		{"POST", "/", "text/html", false},
		{"GET", "/other", "text/html", false},
	}
	for _, tt := range tests {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(tt.method, tt.path, nil)
		r.Header.Set("Accept", tt.accept)
		require.Equal(t, tt.want, dashboard.RedirectRoot(w, r), "%+v", tt)
		if tt.want {
			require.Equal(t, "/dashboard/", w.Header().Get("Location"))
		}
	}
}

// The sign-in redirect never leaves the dashboard.
func TestSignInRedirectStaysOnDashboard(t *testing.T) {
	f := newFixture(t)
	for next, want := range map[string]string{
		"/dashboard/health":      "/dashboard/health",
		"https://evil.test/":     "/dashboard/",
		"//evil.test/dashboard/": "/dashboard/",
		"/\\evil.test":           "/dashboard/",
		"/metrics":               "/dashboard/",
	} {
		b := f.browser(t)
		_, page := b.do("GET", "/dashboard/login", nil)
		resp, _ := b.do("POST", "/dashboard/login", url.Values{"csrf": {csrfOf(t, page)}, "secret": {apiKey}, "next": {next}})
		require.Equal(t, want, resp.Header.Get("Location"), next)
	}
}

func FuzzWantsHTML(f *testing.F) {
	for _, s := range []string{"text/html", "text/html;q=0.9, */*", "", ",,;", "application/json"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, accept string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Accept", accept)
		got := dashboard.WantsHTML(r)
		if got && !strings.Contains(strings.ToLower(accept), "text/html") {
			t.Fatalf("WantsHTML(%q) without text/html", accept)
		}
	})
}
