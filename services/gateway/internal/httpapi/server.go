// Package httpapi is the gateway's HTTP transport: the SCIM 2.0 server, the
// WorkOS-compatible REST API and /healthz, with request ids, access logs,
// tracing and panic recovery around them. Errors are turned into responses
// here and nowhere else.
package httpapi

import (
	"crypto/sha256"
	"log/slog"
	"net/http"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"google.golang.org/grpc/health/grpc_health_v1"

	"github.com/dsync-dev/dsync/pkg/event"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
	"github.com/dsync-dev/dsync/services/gateway/internal/dashboard"
	"github.com/dsync-dev/dsync/services/gateway/internal/eventlog"
	"github.com/dsync-dev/dsync/services/gateway/internal/registry"
	"github.com/dsync-dev/dsync/services/gateway/internal/scim"
)

// Deps are what the handlers use. Every field is required except Metrics.
type Deps struct {
	Logger   *slog.Logger
	NATS     *nats.Conn
	JS       jetstream.JetStream
	Log      *eventlog.JetStream
	IDs      *event.IDs
	SCIM     *scim.Service
	Registry *registry.Registry
	// PublicURL is the absolute base URL clients use, without trailing slash.
	PublicURL       string
	APIKey          string
	Directories     dsyncv1.DirectoryServiceClient
	Webhooks        dsyncv1.WebhookServiceClient
	DirectoryHealth grpc_health_v1.HealthClient
	WebhookHealth   grpc_health_v1.HealthClient
	Metrics         http.Handler
	MaxBodyBytes    int64
	// Dashboard, when set, is served under /dashboard/, and browsers that
	// open / are sent there.
	Dashboard http.Handler
}

type server struct {
	Deps
	apiKeySum  [sha256.Size]byte
	scimRouter map[string]scimRoute
	scimLimits *dirLimiters
}

// NewHandler returns the gateway's HTTP handler.
func NewHandler(d Deps) http.Handler {
	s := &server{Deps: d, apiKeySum: sha256.Sum256([]byte(d.APIKey))}
	// The key itself is not kept: only its hash is compared.
	s.APIKey = ""
	s.scimRouter = s.scimRoutes()
	s.scimLimits = newDirLimiters()

	mux := http.NewServeMux()
	// SCIM routes itself, so that unknown paths and methods get SCIM errors.
	// Every SCIM request is recorded in the request log (requestlog.go).
	mux.Handle("/scim/", newRequestLogger(s).wrap(http.HandlerFunc(s.serveSCIM)))

	mux.HandleFunc("GET /healthz", s.healthz)
	if d.Metrics != nil {
		mux.Handle("GET /metrics", d.Metrics)
	}

	rest := func(pattern string, h func(http.ResponseWriter, *http.Request)) {
		mux.Handle(pattern, s.requireAPIKey(http.HandlerFunc(h)))
	}
	rest("POST /organizations", s.createOrganization)
	rest("POST /directories", s.createDirectory)
	rest("GET /directories", s.listDirectories)
	rest("GET /directories/{id}", s.getDirectory)
	rest("DELETE /directories/{id}", s.deleteDirectory)
	rest("POST /directories/{id}/token", s.rotateToken)
	rest("POST /directories/{id}/pause", s.pauseDirectory)
	rest("POST /directories/{id}/resume", s.resumeDirectory)
	rest("PATCH /directories/{id}", s.updateDirectory)
	rest("GET /directory_users", s.listUsers)
	rest("GET /directory_users/{id}", s.getUser)
	rest("GET /directory_groups", s.listGroups)
	rest("GET /directory_groups/{id}", s.getGroup)
	rest("GET /events", s.listEvents)
	s.webhookRoutes(rest)
	if d.Dashboard != nil {
		mux.Handle("/dashboard/", d.Dashboard)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if d.Dashboard != nil && dashboard.RedirectRoot(w, r) {
			return
		}
		writeRESTError(w, http.StatusNotFound, "not_found", "No route for "+r.Method+" "+r.URL.Path)
	})

	var h http.Handler = mux
	h = s.recoverPanics(h)
	h = s.observe(h)
	return otelhttp.NewHandler(h, "gateway",
		otelhttp.WithSpanNameFormatter(spanName),
		// Probes and scrapes would drown the traces that matter.
		otelhttp.WithFilter(func(r *http.Request) bool {
			return r.URL.Path != "/healthz" && r.URL.Path != "/metrics"
		}))
}

// spanName names a span by method and route family, never by the raw path,
// which holds ids (unbounded cardinality).
func spanName(_ string, r *http.Request) string {
	p := r.URL.Path
	if rest, ok := strings.CutPrefix(p, "/scim/v2/"); ok {
		parts := strings.Split(rest, "/")
		if len(parts) > 1 {
			return r.Method + " /scim/v2/{directory}/" + parts[1]
		}
		return r.Method + " /scim/v2"
	}
	first, _, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/")
	return r.Method + " /" + first
}
