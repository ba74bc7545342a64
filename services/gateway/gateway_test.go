package gateway_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/dsync-dev/dsync/pkg/event"
	"github.com/dsync-dev/dsync/pkg/natsx/natstest"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
	"github.com/dsync-dev/dsync/services/gateway"
)

const apiKey = "sk_test_0123456789abcdef0123456789abcdef"

// syncBuffer is a log sink the server goroutines and the test share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type env struct {
	t          *testing.T
	base       string
	js         jetstream.JetStream
	stream     jetstream.Stream
	projector  *fakeProjector
	dispatcher *fakeDispatcher
	projHealth *health.Server
	dispHealth *health.Server
	logs       *syncBuffer
}

type envOption func(*gateway.Config)

// newEnv runs the gateway with gateway.Run on a loopback port against a
// real NATS server and in-process gRPC fakes of the projector and the
// dispatcher; the test ends with a graceful shutdown that must return nil.
func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	ns := natstest.Run(t)
	js, stream := ns.JetStream(t)
	e := &env{t: t, js: js, stream: stream, logs: &syncBuffer{},
		projector: &fakeProjector{users: map[string]*dsyncv1.User{}}, dispatcher: &fakeDispatcher{}}
	projConn, projHealth := serveGRPC(t, func(s *grpc.Server) { dsyncv1.RegisterDirectoryServiceServer(s, e.projector) })
	dispConn, dispHealth := serveGRPC(t, func(s *grpc.Server) { dsyncv1.RegisterWebhookServiceServer(s, e.dispatcher) })
	e.projHealth, e.dispHealth = projHealth, dispHealth

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	e.base = "http://" + lis.Addr().String()
	cfg := gateway.Config{
		Logger:       slog.New(slog.NewJSONHandler(e.logs, nil)),
		NATS:         ns.Connect(t),
		HTTPListener: lis,
		APIKey:       apiKey,
		Directories:  projConn,
		Webhooks:     dispConn,
	}
	for _, o := range opts {
		o(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gateway.Run(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return e
}

type response struct {
	*http.Response
	body []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.body, &m), string(r.body))
	return m
}

func (e *env) do(method, path, auth, body string, header ...string) response {
	e.t.Helper()
	req, err := http.NewRequestWithContext(e.t.Context(), method, e.base+path, strings.NewReader(body))
	require.NoError(e.t, err)
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	return response{Response: resp, body: data}
}

func (e *env) rest(method, path, body string) response {
	e.t.Helper()
	return e.do(method, path, apiKey, body)
}

type directory struct {
	id, orgID, endpoint, token string
}

func (e *env) createDirectory(typ string) directory {
	e.t.Helper()
	org := e.rest("POST", "/organizations", `{"name":"Acme","domains":["Acme.com","acme.io"]}`)
	require.Equal(e.t, 201, org.StatusCode, string(org.body))
	orgID := org.json(e.t)["id"].(string)
	r := e.rest("POST", "/directories", `{"organization_id":"`+orgID+`","name":"Acme Okta","type":"`+typ+`"}`)
	require.Equal(e.t, 201, r.StatusCode, string(r.body))
	m := r.json(e.t)
	sc := m["scim"].(map[string]any)
	return directory{id: m["id"].(string), orgID: orgID, endpoint: sc["endpoint"].(string), token: sc["bearer_token"].(string)}
}

// scimPath turns the directory's absolute SCIM endpoint into a request path.
func (d directory) path(rest string) string {
	i := strings.Index(d.endpoint, "/scim/v2/")
	return d.endpoint[i:] + rest
}

func (e *env) msgCount() uint64 {
	e.t.Helper()
	info, err := e.stream.Info(e.t.Context())
	require.NoError(e.t, err)
	return info.State.Msgs
}

func (e *env) lastEvent(subject string) (*dsyncv1.Event, uint64) {
	e.t.Helper()
	msg, err := e.stream.GetLastMsgForSubject(e.t.Context(), subject)
	require.NoError(e.t, err)
	ev, err := event.Decode(msg.Data)
	require.NoError(e.t, err)
	return ev, msg.Sequence
}

func requireSCIMError(t *testing.T, r response, status int, scimType string) map[string]any {
	t.Helper()
	require.Equal(t, status, r.StatusCode, string(r.body))
	require.Equal(t, "application/scim+json", r.Header.Get("Content-Type"))
	m := r.json(t)
	require.Equal(t, []any{"urn:ietf:params:scim:api:messages:2.0:Error"}, m["schemas"])
	require.Equal(t, strconv.Itoa(status), m["status"], "status is a string")
	require.NotEmpty(t, m["detail"])
	if scimType != "" {
		require.Equal(t, scimType, m["scimType"])
	} else {
		require.NotContains(t, m, "scimType")
	}
	return m
}

func TestSCIMCreateAndGetUser(t *testing.T) {
	e := newEnv(t)
	dir := e.createDirectory("okta scim v2.0")
	require.Equal(t, e.base+"/scim/v2/"+dir.id, dir.endpoint)

	body, err := os.ReadFile("internal/scim/testdata/okta_create_user.request.json")
	require.NoError(t, err)
	r := e.do("POST", dir.path("/Users"), dir.token, string(body),
		"Content-Type", "application/scim+json; charset=utf-8", "User-Agent", "Okta SCIM Client 1.0.0")
	require.Equal(t, 201, r.StatusCode, string(r.body))
	require.Equal(t, "application/scim+json", r.Header.Get("Content-Type"))
	require.NotContains(t, string(r.body), "1mz050nq", "the password is never returned")
	u := r.json(t)
	id := u["id"].(string)
	require.True(t, event.ValidID(id, event.PrefixUser), id)
	meta := u["meta"].(map[string]any)
	require.Equal(t, dir.endpoint+"/Users/"+id, meta["location"])
	require.Equal(t, meta["location"], r.Header.Get("Location"))
	require.Equal(t, meta["version"], r.Header.Get("ETag"))
	require.Equal(t, "User", meta["resourceType"])
	_, err = time.Parse("2006-01-02T15:04:05.000Z07:00", meta["created"].(string))
	require.NoError(t, err)
	require.Equal(t, true, u["active"])
	require.Equal(t, "test.user@okta.local", u["userName"])
	require.Equal(t, "00ujl29u0le5T6Aj10h7", u["externalId"])
	require.Equal(t, map[string]any{"givenName": "Test", "familyName": "User"}, u["name"])
	require.Equal(t, []any{"urn:ietf:params:scim:schemas:core:2.0:User"}, u["schemas"])
	requestID := r.Header.Get("X-Request-Id")
	require.True(t, strings.HasPrefix(requestID, "req_"))

	ev, seq := e.lastEvent(event.UserSubject(dir.id, id))
	require.Equal(t, `W/"`+strconv.FormatUint(seq, 10)+`"`, r.Header.Get("ETag"))
	require.Equal(t, dsyncv1.EventType_EVENT_TYPE_USER_CREATED, ev.GetType())
	require.Equal(t, &dsyncv1.Source{Api: "scim", Provider: "okta", RequestId: requestID, UserAgent: "Okta SCIM Client 1.0.0"}, stripSource(ev.GetSource()))
	require.Equal(t, dir.orgID, ev.GetOrganizationId())
	user := ev.GetUser()
	require.Equal(t, "test.user@okta.local", user.GetEmail())
	require.Equal(t, "00ujl29u0le5T6Aj10h7", user.GetIdpId())
	require.NotContains(t, user.GetRawAttributes().AsMap(), "password")
	raw, err := e.stream.GetMsg(t.Context(), seq)
	require.NoError(t, err)
	require.NotContains(t, string(raw.Data), "1mz050nq", "the password is never stored")

	g := e.do("GET", dir.path("/Users/"+id), dir.token, "")
	require.Equal(t, 200, g.StatusCode, string(g.body))
	require.Equal(t, r.Header.Get("ETag"), g.Header.Get("ETag"))
	require.JSONEq(t, string(r.body), string(g.body))

	// Resource names are matched without regard to case, as IdPs vary.
	require.Equal(t, 200, e.do("GET", dir.path("/users/"+id), dir.token, "").StatusCode)

	unknown := event.NewIDs().New(event.PrefixUser)
	m := requireSCIMError(t, e.do("GET", dir.path("/Users/"+unknown), dir.token, ""), 404, "")
	require.Equal(t, "Resource "+unknown+" not found", m["detail"])
	requireSCIMError(t, e.do("GET", dir.path("/Users/not-an-id"), dir.token, ""), 404, "")

	// A user of directory A is not found through directory B.
	other := e.createDirectory("okta scim v2.0")
	requireSCIMError(t, e.do("GET", other.path("/Users/"+id), other.token, ""), 404, "")
}

func stripSource(s *dsyncv1.Source) *dsyncv1.Source {
	return &dsyncv1.Source{Api: s.GetApi(), Provider: s.GetProvider(), RequestId: s.GetRequestId(), UserAgent: s.GetUserAgent()}
}

func TestSCIMEntraCreate(t *testing.T) {
	e := newEnv(t)
	dir := e.createDirectory("azure scim v2.0")
	body, err := os.ReadFile("internal/scim/testdata/entra_create_user.request.json")
	require.NoError(t, err)
	// Entra may send no User-Agent; the directory type names the dialect.
	r := e.do("POST", dir.path("/Users"), dir.token, string(body), "User-Agent", "")
	require.Equal(t, 201, r.StatusCode, string(r.body))
	u := r.json(t)
	require.Equal(t, "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef", u["externalId"])

	ev, _ := e.lastEvent(event.UserSubject(dir.id, u["id"].(string)))
	require.Equal(t, "entra", ev.GetSource().GetProvider())
	user := ev.GetUser()
	require.Equal(t, "Test_User_11bb11bb-cc22-dd33-ee44-55ff55ff55ff@testuser.com", user.GetEmail())
	require.Equal(t, "givenName", user.GetFirstName())
	require.Equal(t, "familyName", user.GetLastName())
	require.Equal(t, dsyncv1.UserState_USER_STATE_ACTIVE, user.GetState())
	require.NotContains(t, user.GetRawAttributes().AsMap(), "meta", "read-only attributes are not kept")
}

func TestSCIMDuplicateUserName(t *testing.T) {
	e := newEnv(t)
	dir := e.createDirectory("generic scim v2.0")
	r := e.do("POST", dir.path("/Users"), dir.token, `{"userName":"Alice@Example.com"}`)
	require.Equal(t, 201, r.StatusCode, string(r.body))
	before := e.msgCount()

	dup := e.do("POST", dir.path("/Users"), dir.token, `{"userName":"alice@example.COM","externalId":"other"}`)
	requireSCIMError(t, dup, 409, "uniqueness")
	require.Equal(t, before, e.msgCount(), "nothing may be appended for the duplicate")

	// Another directory has its own namespace.
	other := e.createDirectory("generic scim v2.0")
	require.Equal(t, 201, e.do("POST", other.path("/Users"), other.token, `{"userName":"alice@example.com"}`).StatusCode)
}

func TestSCIMAuthentication(t *testing.T) {
	e := newEnv(t)
	a := e.createDirectory("okta scim v2.0")
	b := e.createDirectory("okta scim v2.0")
	unknownDir := event.NewIDs().New(event.PrefixDirectory)
	tests := []struct {
		name, path, auth string
		header           []string
	}{
		{name: "no token", path: a.path("/Users")},
		{name: "wrong token", path: a.path("/Users"), auth: "wrong"},
		{name: "token of A on B", path: b.path("/Users"), auth: a.token},
		{name: "unknown directory", path: "/scim/v2/" + unknownDir + "/Users", auth: a.token},
		{name: "malformed directory id", path: "/scim/v2/x.y/Users", auth: a.token},
		{name: "basic scheme", path: a.path("/Users"), header: []string{"Authorization", "Basic " + a.token}},
		{name: "unknown path unauthenticated", path: a.path("/Nope"), auth: "wrong"},
	}
	var bodies []string
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do("POST", tt.path, tt.auth, `{"userName":"x"}`, tt.header...)
			requireSCIMError(t, r, 401, "")
			require.Contains(t, r.Header.Get("WWW-Authenticate"), "Bearer")
			bodies = append(bodies, string(r.body))
		})
	}
	for _, b := range bodies {
		require.Equal(t, bodies[0], b, "every authentication failure looks the same")
	}
	require.Equal(t, uint64(4), e.msgCount(), "two orgs and two directories, no users")
	require.NotContains(t, e.logs.String(), a.token, "tokens never reach the log")
}

func TestSCIMBadRequests(t *testing.T) {
	e := newEnv(t, func(c *gateway.Config) { c.MaxBodyBytes = 4096 })
	dir := e.createDirectory("okta scim v2.0")
	before := e.msgCount()

	requireSCIMError(t, e.do("POST", dir.path("/Users"), dir.token, `{"userName":`), 400, "invalidSyntax")
	requireSCIMError(t, e.do("POST", dir.path("/Users"), dir.token, `["userName"]`), 400, "invalidSyntax")
	requireSCIMError(t, e.do("POST", dir.path("/Users"), dir.token, `{"name":{"givenName":"x"}}`), 400, "invalidValue")
	requireSCIMError(t, e.do("POST", dir.path("/Users"), dir.token, `{"userName":"x","active":"maybe"}`), 400, "invalidValue")
	big := `{"userName":"x","displayName":"` + strings.Repeat("a", 5000) + `"}`
	requireSCIMError(t, e.do("POST", dir.path("/Users"), dir.token, big), 413, "")
	requireSCIMError(t, e.do("POST", dir.path("/Users"), dir.token, `{"userName":"x"}`, "Content-Type", "text/xml"), 415, "")
	requireSCIMError(t, e.do("GET", dir.path("/Widgets"), dir.token, ""), 404, "")
	requireSCIMError(t, e.do("GET", dir.path("/Users/a/b"), dir.token, ""), 404, "")
	requireSCIMError(t, e.do("GET", "/scim/v1/whatever", dir.token, ""), 404, "")
	r := e.do("DELETE", dir.path("/Users"), dir.token, "")
	requireSCIMError(t, r, 405, "")
	require.Equal(t, "GET, POST", r.Header.Get("Allow"))
	// GET /Groups is served by the read model's SearchGroups, which this
	// fake projector does not implement: a read model answering
	// Unimplemented is a misconfigured deployment, a logged, retryable 503.
	r = e.do("GET", dir.path("/Groups"), dir.token, "")
	requireSCIMError(t, r, 503, "")
	require.NotEmpty(t, r.Header.Get("Retry-After"))
	require.Contains(t, e.logs.String(), "read model does not implement")
	require.Equal(t, before, e.msgCount())

	// application/json with parameters and no Content-Type are accepted.
	require.Equal(t, 201, e.do("POST", dir.path("/Users"), dir.token, `{"userName":"j"}`, "Content-Type", "application/json; charset=utf-8").StatusCode)
}

func TestSCIMPausedDirectory(t *testing.T) {
	e := newEnv(t)
	dir := e.createDirectory("okta scim v2.0")
	ev, seq := e.lastEvent(event.DirectorySubject(dir.id))
	d := ev.GetDirectory()
	d.State = dsyncv1.DirectoryState_DIRECTORY_STATE_INACTIVE
	paused := &dsyncv1.Event{
		Id: event.NewIDs().New(event.PrefixEvent), DirectoryId: dir.id, OrganizationId: dir.orgID,
		OccurredAt: timestamppb.Now(), Type: dsyncv1.EventType_EVENT_TYPE_DIRECTORY_UPDATED,
		Payload: &dsyncv1.Event_Directory{Directory: d},
	}
	msg, err := event.NewMsg(event.DirectorySubject(dir.id), paused)
	require.NoError(t, err)
	_, err = e.js.PublishMsg(t.Context(), msg, jetstream.WithExpectLastSequencePerSubject(seq))
	require.NoError(t, err)

	requireSCIMError(t, e.do("POST", dir.path("/Users"), dir.token, `{"userName":"x"}`), 503, "")
	// Without the token, a paused directory looks like any other.
	requireSCIMError(t, e.do("POST", dir.path("/Users"), "wrong", `{"userName":"x"}`), 401, "")
}

func TestRESTAuthentication(t *testing.T) {
	e := newEnv(t)
	for _, auth := range []string{"", "wrong", apiKey + "x"} {
		r := e.do("GET", "/directories", auth, "")
		require.Equal(t, 401, r.StatusCode)
		require.Equal(t, "unauthorized", r.json(t)["code"])
		require.NotEmpty(t, r.json(t)["message"])
	}
	r := e.do("GET", "/nowhere", apiKey, "")
	require.Equal(t, 404, r.StatusCode)
	require.Equal(t, "application/json", r.Header.Get("Content-Type"))
	require.NotContains(t, e.logs.String(), apiKey, "the API key never reaches the log")
}

func TestRESTCreateOrganizationAndDirectory(t *testing.T) {
	e := newEnv(t, func(c *gateway.Config) { c.MaxBodyBytes = 1024 })
	org := e.rest("POST", "/organizations", `{"name":"Acme","domains":["Acme.com"]}`)
	require.Equal(t, 201, org.StatusCode, string(org.body))
	om := org.json(t)
	orgID := om["id"].(string)
	require.True(t, event.ValidID(orgID, event.PrefixOrganization))
	require.Equal(t, "organization", om["object"])
	require.Equal(t, []any{map[string]any{"object": "organization_domain", "domain": "acme.com"}}, om["domains"])
	ev, _ := e.lastEvent(event.OrganizationSubject(orgID))
	require.Equal(t, dsyncv1.EventType_EVENT_TYPE_ORGANIZATION_CREATED, ev.GetType())
	require.Equal(t, "rest", ev.GetSource().GetApi())

	r := e.rest("POST", "/directories", `{"organization_id":"`+orgID+`","name":"Okta","type":"okta scim v2.0"}`)
	require.Equal(t, 201, r.StatusCode, string(r.body))
	dm := r.json(t)
	dirID := dm["id"].(string)
	require.Equal(t, "directory", dm["object"])
	require.Equal(t, "linked", dm["state"])
	require.Equal(t, "acme.com", dm["domain"])
	require.Equal(t, "okta scim v2.0", dm["type"])
	sc := dm["scim"].(map[string]any)
	require.Equal(t, e.base+"/scim/v2/"+dirID, sc["endpoint"])
	token := sc["bearer_token"].(string)
	require.Len(t, token, 43, "32 random bytes, base64url")

	ev, seq := e.lastEvent(event.DirectorySubject(dirID))
	require.Equal(t, dsyncv1.EventType_EVENT_TYPE_DIRECTORY_ACTIVATED, ev.GetType())
	sum := sha256.Sum256([]byte(token))
	require.Equal(t, sum[:], ev.GetDirectory().GetScimTokenSha256())
	require.Equal(t, dsyncv1.DeactivatePolicy_DEACTIVATE_POLICY_KEEP_INACTIVE, ev.GetDirectory().GetOnDeactivate())
	raw, err := e.stream.GetMsg(t.Context(), seq)
	require.NoError(t, err)
	require.NotContains(t, string(raw.Data), token, "the token itself is never stored")

	before := e.msgCount()
	tests := []struct {
		name, path, body string
		status           int
	}{
		{"malformed json", "/organizations", `{"name":`, 400},
		{"not an object", "/organizations", `"x"`, 422},
		{"trailing data", "/organizations", `{"name":"a"}x`, 400},
		{"missing name", "/organizations", `{"domains":["a.com"]}`, 422},
		{"name of wrong type", "/organizations", `{"name":5}`, 422},
		{"bad domain", "/organizations", `{"name":"a","domains":["not a domain"]}`, 422},
		{"oversized", "/organizations", `{"name":"` + strings.Repeat("a", 2000) + `"}`, 413},
		{"bad type", "/directories", `{"organization_id":"` + orgID + `","name":"x","type":"google workspace"}`, 422},
		{"missing org", "/directories", `{"name":"x","type":"okta scim v2.0"}`, 422},
		{"unknown org", "/directories", `{"organization_id":"` + event.NewIDs().New(event.PrefixOrganization) + `","name":"x","type":"okta scim v2.0"}`, 422},
		{"org id of another kind", "/directories", `{"organization_id":"` + dirID + `","name":"x","type":"okta scim v2.0"}`, 422},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.rest("POST", tt.path, tt.body)
			require.Equal(t, tt.status, r.StatusCode, string(r.body))
			m := r.json(t)
			require.NotEmpty(t, m["message"])
			require.NotEmpty(t, m["code"])
		})
	}
	require.Equal(t, before, e.msgCount())
}

func TestRESTListDirectories(t *testing.T) {
	e := newEnv(t)
	dir := e.createDirectory("okta scim v2.0")
	ev, seq := e.lastEvent(event.DirectorySubject(dir.id))
	e.projector.directories = []*dsyncv1.Directory{ev.GetDirectory()}

	for _, q := range []string{"limit=0", "limit=101", "limit=ten", "order=sideways", "before=a&after=b"} {
		r := e.rest("GET", "/directories?"+q, "")
		require.Equal(t, 422, r.StatusCode, q)
	}

	r := e.rest("GET", "/directories?limit=5&order=asc&organization_id="+dir.orgID, "")
	require.Equal(t, 200, r.StatusCode, string(r.body))
	m := r.json(t)
	require.Equal(t, "list", m["object"])
	require.Equal(t, map[string]any{"before": nil, "after": dir.id}, m["list_metadata"])
	data := m["data"].([]any)
	require.Len(t, data, 1)
	d := data[0].(map[string]any)
	require.Equal(t, dir.id, d["id"])
	require.NotContains(t, d, "scim", "the token is shown only once")
	require.NotContains(t, string(r.body), dir.token)
	require.Equal(t, seq, e.projector.lastMinSeq, "the consistency token is the last directory event")
	require.Equal(t, int32(5), e.projector.lastPage.GetLimit())
	require.Equal(t, dsyncv1.Order_ORDER_ASC, e.projector.lastPage.GetOrder())

	r = e.rest("GET", "/directories", "")
	require.Equal(t, 200, r.StatusCode)
	require.Equal(t, int32(10), e.projector.lastPage.GetLimit())
	require.Equal(t, dsyncv1.Order_ORDER_DESC, e.projector.lastPage.GetOrder())

	require.Equal(t, 200, e.rest("GET", "/directories/"+dir.id, "").StatusCode)
	require.Equal(t, 404, e.rest("GET", "/directories/"+event.NewIDs().New(event.PrefixDirectory), "").StatusCode)
	require.Equal(t, 404, e.rest("GET", "/directories/nope", "").StatusCode)
}

func TestRESTDirectoryUsers(t *testing.T) {
	e := newEnv(t)
	dir := e.createDirectory("okta scim v2.0")
	r := e.do("POST", dir.path("/Users"), dir.token, `{"userName":"u@acme.com","name":{"givenName":"U"}}`)
	require.Equal(t, 201, r.StatusCode)
	id := r.json(t)["id"].(string)
	ev, seq := e.lastEvent(event.UserSubject(dir.id, id))
	e.projector.users[id] = ev.GetUser()

	require.Equal(t, 422, e.rest("GET", "/directory_users", "").StatusCode)
	require.Equal(t, 422, e.rest("GET", "/directory_users?group=directory_group_x", "").StatusCode)
	require.Equal(t, 422, e.rest("GET", "/directory_users?directory=nope", "").StatusCode)
	require.Equal(t, 422, e.rest("GET", "/directory_users?directory="+dir.id+"&after=bad", "").StatusCode)

	l := e.rest("GET", "/directory_users?directory="+dir.id, "")
	require.Equal(t, 200, l.StatusCode, string(l.body))
	require.Equal(t, seq, e.projector.lastMinSeq)
	data := l.json(t)["data"].([]any)
	require.Len(t, data, 1)
	u := data[0].(map[string]any)
	require.Equal(t, id, u["id"])
	require.Equal(t, []any{}, u["groups"], "groups is always an array")
	require.Equal(t, "u@acme.com", u["email"])

	g := e.rest("GET", "/directory_users/"+id, "")
	require.Equal(t, 200, g.StatusCode)
	require.Equal(t, "U", g.json(t)["first_name"])
	require.Equal(t, 404, e.rest("GET", "/directory_users/"+event.NewIDs().New(event.PrefixUser), "").StatusCode)

	e.projector.mu.Lock()
	e.projector.notReady = true
	e.projector.mu.Unlock()
	nr := e.rest("GET", "/directory_users/"+id, "")
	require.Equal(t, 503, nr.StatusCode)
	require.Equal(t, "1", nr.Header.Get("Retry-After"))
}

func TestRESTWebhookEndpoints(t *testing.T) {
	e := newEnv(t)
	r := e.rest("POST", "/webhook_endpoints", `{"url":"https://app.example/hooks","events":["dsync.user.created"]}`)
	require.Equal(t, 201, r.StatusCode, string(r.body))
	m := r.json(t)
	require.Equal(t, "webhook_endpoint", m["object"])
	require.Equal(t, "enabled", m["state"])
	require.True(t, strings.HasPrefix(m["secret"].(string), "whsec_"))
	require.Equal(t, []any{"dsync.user.created"}, m["events"])

	for _, body := range []string{
		`{"url":"ftp://x"}`, `{"url":"/relative"}`, `{}`,
		`{"url":"https://a.example","events":["dsync.nope"]}`,
		`{"url":"https://10.0.0.1/hook"}`, // refused by the dispatcher
	} {
		require.Equal(t, 422, e.rest("POST", "/webhook_endpoints", body).StatusCode, body)
	}

	l := e.rest("GET", "/webhook_endpoints", "")
	require.Equal(t, 200, l.StatusCode)
	data := l.json(t)["data"].([]any)
	require.Len(t, data, 1)
	require.NotContains(t, data[0], "secret", "the secret is shown only on create")
}

func TestHealthz(t *testing.T) {
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "up 1\n") })
	e := newEnv(t, func(c *gateway.Config) { c.MetricsHandler = metrics })
	r := e.do("GET", "/healthz", "", "")
	require.Equal(t, 200, r.StatusCode, string(r.body))
	require.JSONEq(t, `{"status":"ok"}`, string(r.body))

	e.projHealth.SetServingStatus("", grpc_health_v1.HealthCheckResponse_NOT_SERVING)
	r = e.do("GET", "/healthz", "", "")
	require.Equal(t, 503, r.StatusCode)
	checks := r.json(t)["checks"].(map[string]any)
	require.Contains(t, checks, "projector")
	require.NotContains(t, checks, "dispatcher")

	require.NoError(t, e.js.DeleteStream(t.Context(), event.Stream))
	r = e.do("GET", "/healthz", "", "")
	require.Equal(t, 503, r.StatusCode)
	require.Contains(t, r.json(t)["checks"], "stream")

	m := e.do("GET", "/metrics", "", "")
	require.Equal(t, 200, m.StatusCode)
	require.Equal(t, "up 1\n", string(m.body))
}

func TestAccessLog(t *testing.T) {
	e := newEnv(t)
	dir := e.createDirectory("okta scim v2.0")
	r := e.do("POST", dir.path("/Users"), dir.token, `{"userName":"log@acme.com","password":"hunter2-secret"}`)
	require.Equal(t, 201, r.StatusCode)
	logs := e.logs.String()
	var found bool
	for line := range strings.Lines(logs) {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m))
		if m["msg"] == "http request" && m["method"] == "POST" && m["directory_id"] == dir.id {
			found = true
			require.EqualValues(t, 201, m["status"])
			require.Equal(t, r.Header.Get("X-Request-Id"), m["request_id"])
			require.Contains(t, m, "latency")
		}
	}
	require.True(t, found, logs)
	require.NotContains(t, logs, "hunter2-secret")
	require.NotContains(t, logs, dir.token)
}
