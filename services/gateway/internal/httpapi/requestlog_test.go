package httpapi

import (
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health/grpc_health_v1"

	"github.com/dsync-dev/dsync/pkg/event"
	"github.com/dsync-dev/dsync/pkg/natsx/natstest"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
	"github.com/dsync-dev/dsync/services/gateway/internal/dashboard"
	"github.com/dsync-dev/dsync/services/gateway/internal/eventlog"
	"github.com/dsync-dev/dsync/services/gateway/internal/registry"
	"github.com/dsync-dev/dsync/services/gateway/internal/scim"
)

func TestRedactBody(t *testing.T) {
	tests := []struct {
		name, in string
		want     map[string]any
		note     string
	}{
		{"user with password", `{"userName":"ada","password":"hunter2","emails":[{"value":"ada@x.test"}]}`,
			map[string]any{"userName": "ada", "password": "[redacted]", "emails": []any{map[string]any{"value": "ada@x.test"}}}, ""},
		{"keys naming a token or secret, any case, nested", `{"a":{"bearer_Token":"t","clientSecret":"s","ok":1}}`,
			map[string]any{"a": map[string]any{"bearer_Token": "[redacted]", "clientSecret": "[redacted]", "ok": json.Number("1")}}, ""},
		{"PATCH setting the password by path", `{"Operations":[{"op":"replace","path":"password","value":"hunter2"},{"op":"replace","path":"active","value":false}]}`,
			map[string]any{"Operations": []any{
				map[string]any{"op": "replace", "path": "password", "value": "[redacted]"},
				map[string]any{"op": "replace", "path": "active", "value": false}}}, ""},
		{"PATCH without path", `{"Operations":[{"op":"replace","value":{"password":"hunter2","active":true}}]}`,
			map[string]any{"Operations": []any{map[string]any{"op": "replace", "value": map[string]any{"password": "[redacted]", "active": true}}}}, ""},
		{"not JSON", `userName=ada&password=hunter2`, nil, "not JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, note := RedactBody([]byte(tt.in))
			require.NotContains(t, body, "hunter2")
			if tt.want == nil {
				require.Empty(t, body)
				require.Contains(t, note, tt.note)
				return
			}
			dec := json.NewDecoder(strings.NewReader(body))
			dec.UseNumber()
			var got map[string]any
			require.NoError(t, dec.Decode(&got))
			require.Equal(t, tt.want, got)
		})
	}
}

func FuzzRedactBody(f *testing.F) {
	for _, s := range []string{`{"password":"p"}`, `{"Operations":[{"op":"add","path":"secret","value":{"x":1}}]}`, `[1,"a",null]`, `"x"`, ``, `{`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		body, _ := RedactBody([]byte(in))
		if body == "" {
			return
		}
		var v any
		if len(body) < requestBodyShown && json.Unmarshal([]byte(body), &v) != nil {
			t.Fatalf("redacted body of %q is not JSON: %s", in, body)
		}
	})
}

// Every SCIM request is published on dsync.requests.<directory>: method,
// path, status, latency, request id, dialect and the redacted body.
func TestSCIMRequestsArePublished(t *testing.T) {
	ns := natstest.Run(t)
	js, _ := ns.JetStream(t)
	conn, err := grpc.NewClient("127.0.0.1:1", grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	ids := event.NewIDs()
	log := eventlog.New(js)
	srv := httptest.NewServer(nil)
	t.Cleanup(srv.Close)
	srv.Config.Handler = NewHandler(Deps{
		Logger: slog.New(slog.DiscardHandler), NATS: ns.Connect(t), JS: js, Log: log, IDs: ids,
		SCIM: scim.NewService(log, ids, srv.URL, nil), Registry: registry.New(log, ids, nil), PublicURL: srv.URL,
		APIKey: scimTestAPIKey, Directories: &streamReadModel{log: log}, Webhooks: dsyncv1.NewWebhookServiceClient(conn),
		DirectoryHealth: grpc_health_v1.NewHealthClient(conn), WebhookHealth: grpc_health_v1.NewHealthClient(conn),
		MaxBodyBytes: 1 << 20,
	})
	e := &scimEnv{t: t, srv: srv}
	dir := e.directory("azure scim v2.0")

	nc := ns.Connect(t)
	got := make(chan dashboard.SCIMRequest, 16)
	sub, err := nc.Subscribe(dashboard.RequestsSubjectPrefix+"*", func(m *nats.Msg) {
		var r dashboard.SCIMRequest
		require.NoError(t, json.Unmarshal(m.Data, &r))
		require.Equal(t, dashboard.RequestSubject(r.DirectoryID), m.Subject)
		got <- r
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	require.NoError(t, nc.Flush())
	next := func() dashboard.SCIMRequest {
		t.Helper()
		select {
		case r := <-got:
			return r
		case <-time.After(5 * time.Second):
			t.Fatal("no request record published")
		}
		return dashboard.SCIMRequest{}
	}

	resp := e.do("POST", dir.path("/Users"), dir.token,
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ada@acme.com","password":"hunter2","active":true}`)
	require.Equal(t, 201, resp.status, string(resp.body))
	r := next()
	require.Equal(t, resp.header.Get("X-Request-Id"), r.ID)
	require.Equal(t, dir.id, r.DirectoryID)
	require.Equal(t, "POST", r.Method)
	require.Equal(t, "/scim/v2/"+dir.id+"/Users", r.Path)
	require.Equal(t, 201, r.Status)
	require.Positive(t, r.LatencyMS)
	require.Equal(t, "entra", r.Provider, "from the directory type: the request named no IdP")
	require.Contains(t, r.Body, "ada@acme.com")
	require.Contains(t, r.Body, "[redacted]")
	require.NotContains(t, r.Body, "hunter2")

	// A wrong token is recorded too (it is what "Test API Credentials"
	// failures look like), with the dialect of its User-Agent.
	resp = e.do("GET", dir.path("/Users?filter=userName%20eq%20%22x%22"), "wrong", "", "User-Agent", "Okta SCIM Client 1.0.0")
	require.Equal(t, 401, resp.status)
	r = next()
	require.Equal(t, 401, r.Status)
	require.Equal(t, "okta", r.Provider)
	require.Equal(t, `filter=userName%20eq%20%22x%22`, r.Query)

	// A malformed directory id is never a subject.
	resp = e.do("GET", "/scim/v2/directory_*/Users", dir.token, "")
	require.Equal(t, 401, resp.status)
	require.Never(t, func() bool { return len(got) > 0 }, 200*time.Millisecond, 10*time.Millisecond,
		"a record was published for a malformed id")
}
