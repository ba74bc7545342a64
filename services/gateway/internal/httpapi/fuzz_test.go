package httpapi

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health/grpc_health_v1"

	"github.com/dsync-dev/dsync/pkg/event"
	"github.com/dsync-dev/dsync/pkg/natsx/natstest"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
	"github.com/dsync-dev/dsync/services/gateway/internal/eventlog"
	"github.com/dsync-dev/dsync/services/gateway/internal/registry"
	"github.com/dsync-dev/dsync/services/gateway/internal/scim"
)

const fuzzAPIKey = "fuzz-key"

// FuzzRESTBodies posts arbitrary bodies to the REST write endpoints of a
// handler on a real NATS server: no body may cause a panic or a 500, and
// every error has the REST error shape. The dispatcher is unreachable, so
// a webhook body that passes validation answers 503.
func FuzzRESTBodies(f *testing.F) {
	ns := natstest.Run(f)
	js, _ := ns.JetStream(f)
	// Nothing listens on port 1: calls fail fast with UNAVAILABLE.
	conn, err := grpc.NewClient("127.0.0.1:1", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = conn.Close() })
	h := newTestHandler(ns.Connect(f), js, conn)

	paths := []string{"/organizations", "/directories", "/webhook_endpoints"}
	seeds := []string{
		`{"name":"Acme","domains":["acme.com"]}`, `{"name":"","domains":[""]}`, `{"name":5}`, `{"domains":{}}`,
		`{"organization_id":"org_01JZ0000000000000000000000","name":"x","type":"okta scim v2.0"}`,
		`{"organization_id":"org_x","name":"x","type":"okta"}`, `{"url":"https://a.example","events":["dsync.user.created"]}`,
		`{"url":"%zz"}`, `[]`, `null`, `{`, ``, `{"name":"a"} {}`,
	}
	for i := range paths {
		for _, s := range seeds {
			f.Add(uint8(i), []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		path := paths[int(which)%len(paths)]
		req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+fuzzAPIKey)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 && rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("POST %s %q: status %d: %s", path, body, rec.Code, rec.Body)
		}
		if rec.Code >= 400 {
			var e restError
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Message == "" || e.Code == "" {
				t.Fatalf("POST %s %q: error body %q", path, body, rec.Body)
			}
		}
	})
}

func newTestHandler(nc *nats.Conn, js jetstream.JetStream, conn *grpc.ClientConn) http.Handler {
	ids := event.NewIDs()
	log := eventlog.New(js)
	return NewHandler(Deps{
		Logger:          slog.New(slog.DiscardHandler),
		NATS:            nc,
		JS:              js,
		Log:             log,
		IDs:             ids,
		SCIM:            scim.NewService(log, ids, "http://gw.test", nil),
		Registry:        registry.New(log, ids, nil),
		PublicURL:       "http://gw.test",
		APIKey:          fuzzAPIKey,
		Directories:     dsyncv1.NewDirectoryServiceClient(conn),
		Webhooks:        dsyncv1.NewWebhookServiceClient(conn),
		DirectoryHealth: grpc_health_v1.NewHealthClient(conn),
		WebhookHealth:   grpc_health_v1.NewHealthClient(conn),
		MaxBodyBytes:    64 << 10,
	})
}

// FuzzParsePage checks that no query string makes page parsing panic and
// that an accepted page is within WorkOS's limits.
func FuzzParsePage(f *testing.F) {
	for _, s := range []string{"", "limit=5", "limit=-1", "limit=1000000000000", "order=ASC", "before=a&after=b", "limit=%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		req := httptest.NewRequest(http.MethodGet, "/directories", nil)
		req.URL.RawQuery = raw
		p, err := parsePage(req.URL.Query())
		if err != nil {
			return
		}
		if p.GetLimit() < 1 || p.GetLimit() > 100 {
			t.Fatalf("limit %d accepted", p.GetLimit())
		}
	})
}
