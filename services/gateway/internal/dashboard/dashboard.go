// Package dashboard is dsync's operator web UI, served by the gateway under
// /dashboard/: sign-in, organizations and directories (create one by
// picking the IdP, read its SCIM credentials once, follow the provider's
// setup steps), users, webhook endpoints and their delivery log, health,
// and a live view of each directory's events over server-sent events.
//
// Pages are server-rendered html/template; the little JavaScript there is
// (copy buttons, the live feed) is an embedded static file, so the strict
// Content-Security-Policy allows no inline script or style at all.
//
// The dashboard holds no data of its own. It reads and writes through the
// gateway's public REST API (called in-process, so every change is recorded
// and logged exactly as an API call would be) and, for what the REST API
// does not offer yet, through the DirectoryService and WebhookService gRPC
// clients the gateway already has. The live view is a core NATS
// subscription to the directory's event subjects.
package dashboard

import (
	"context"
	"crypto/sha256"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Prefix is the path the dashboard is mounted at.
const Prefix = "/dashboard/"

// Defaults for Config's zero values.
const (
	DefaultSessionTTL  = 12 * time.Hour
	DefaultIdleTimeout = 2 * time.Hour
)

// Config wires the dashboard. APIKey, API, Directories, Webhooks and NATS
// are required.
type Config struct {
	Logger *slog.Logger
	// APIKey signs operators in (compared by hash, in constant time) and
	// authenticates the dashboard's in-process calls to API. It is never
	// rendered or logged.
	APIKey string
	// Password, when set, is a second way to sign in: an operator password
	// (DSYNC_DASHBOARD_PASSWORD) for people who should not hold the API key.
	Password string
	// API is the gateway's REST API handler; the dashboard calls it
	// in-process with the API key.
	API http.Handler
	// Directories and Webhooks serve what the REST API does not (yet):
	// organization lists, projection status, deliveries.
	Directories dsyncv1.DirectoryServiceClient
	Webhooks    dsyncv1.WebhookServiceClient
	// NATS carries the live view: a core subscription per open stream.
	NATS *nats.Conn
	// PublicURL is the gateway's absolute base URL, for SCIM base URLs.
	PublicURL string
	// SessionTTL caps a session's life; IdleTimeout ends it after this long
	// without a request. Zero means the defaults.
	SessionTTL  time.Duration
	IdleTimeout time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Dashboard is the dashboard's http.Handler. It is safe for concurrent use.
type Dashboard struct {
	cfg       Config
	log       *slog.Logger
	apiKeySum [sha256.Size]byte
	pwSum     [sha256.Size]byte
	pages     map[string]*template.Template
	sessions  *sessionStore
	limiter   *loginLimiter
	mux       *http.ServeMux
	// stats keeps the SCIM request log and the throughput counters.
	stats *stats
	// done ends the live streams: Run's context is cancelled before the
	// HTTP server drains, and a stream never ends by itself.
	done <-chan struct{}
	// scanningDeliveries is set while the dispatcher lacks
	// ListEventDeliveries (see eventDeliveries), so that is logged once.
	scanningDeliveries atomic.Bool
}

// New returns the dashboard. Live streams end when ctx is done, so that a
// graceful HTTP shutdown does not wait on them.
func New(ctx context.Context, cfg Config) (*Dashboard, error) {
	switch {
	case cfg.APIKey == "":
		return nil, errors.New("dashboard: APIKey is required")
	case cfg.API == nil:
		return nil, errors.New("dashboard: API handler is required")
	case cfg.Directories == nil || cfg.Webhooks == nil:
		return nil, errors.New("dashboard: Directories and Webhooks clients are required")
	case cfg.NATS == nil:
		return nil, errors.New("dashboard: NATS connection is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	d := &Dashboard{
		cfg:       cfg,
		log:       cfg.Logger,
		apiKeySum: sha256.Sum256([]byte(cfg.APIKey)),
		pages:     pages,
		sessions:  newSessionStore(cfg.Now, cfg.SessionTTL, cfg.IdleTimeout),
		limiter:   newLoginLimiter(cfg.Now),
		done:      ctx.Done(),
	}
	d.stats = newStats(cfg.Now)
	subs, err := d.stats.subscribe(cfg.NATS)
	if err != nil {
		return nil, err
	}
	go func() {
		<-ctx.Done()
		for _, s := range subs {
			_ = s.Unsubscribe()
		}
	}()
	if cfg.Password != "" {
		d.pwSum = sha256.Sum256([]byte(cfg.Password))
	}
	d.mux = d.routes()
	return d, nil
}

func (d *Dashboard) routes() *http.ServeMux {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /dashboard/static/", cacheStatic(http.StripPrefix("/dashboard/static/", http.FileServerFS(static))))

	mux.HandleFunc("GET /dashboard/login", d.loginPage)
	mux.HandleFunc("POST /dashboard/login", d.login)

	page := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, d.requireSession(h)) }
	page("POST /dashboard/logout", d.logout)
	page("GET /dashboard/{$}", d.overview)
	page("POST /dashboard/organizations", d.createOrganization)
	page("GET /dashboard/directories", d.directories)
	page("GET /dashboard/directories/new", d.newDirectory)
	page("POST /dashboard/directories", d.createDirectory)
	page("GET /dashboard/directories/{id}", d.directory)
	page("GET /dashboard/directories/{id}/live", d.liveStream)
	page("GET /dashboard/users/{id}", d.user)
	page("GET /dashboard/webhooks", d.webhooks)
	page("POST /dashboard/webhooks", d.createWebhook)
	page("GET /dashboard/webhooks/{id}", d.webhook)
	page("GET /dashboard/health", d.health)
	page("POST /dashboard/directories/{id}/rotate-token", d.rotateToken)
	page("POST /dashboard/directories/{id}/pause", d.pauseDirectory)
	page("POST /dashboard/directories/{id}/resume", d.resumeDirectory)
	page("POST /dashboard/directories/{id}/delete", d.deleteDirectory)
	page("GET /dashboard/directories/{id}/settings", d.settings)
	page("POST /dashboard/directories/{id}/settings", d.saveSettings)
	page("GET /dashboard/directories/{id}/groups", d.groups)
	page("GET /dashboard/directories/{id}/requests/{rid}", d.scimRequest)
	page("GET /dashboard/groups/{id}", d.group)
	page("POST /dashboard/webhooks/{id}/secret", d.rotateSecret)
	page("POST /dashboard/webhooks/{id}/deliveries/{did}/resend", d.resendDelivery)
	page("POST /dashboard/webhooks/{id}/recover", d.recoverDeliveries)
	page("POST /dashboard/webhooks/{id}/replay", d.replayEvents)
	mux.Handle("/dashboard/", d.requireSession(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.renderError(w, r, http.StatusNotFound, "Page not found", "There is no page at "+r.URL.Path+".")
	})))
	return mux
}

// ServeHTTP serves every dashboard path with the security headers.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setSecurityHeaders(w.Header())
	d.mux.ServeHTTP(w, r)
}

// contentSecurityPolicy allows nothing but the dashboard's own files: no
// inline script or style (so an injected tag cannot run), no framing, forms
// and EventSource only to this origin.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func setSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), interest-cohort=()")
}

func cacheStatic(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Short, so that an upgrade's new CSS/JS is picked up quickly;
		// the files are tiny.
		w.Header().Set("Cache-Control", "public, max-age=300")
		next.ServeHTTP(w, r)
	})
}

// WantsHTML reports whether r is a browser asking for a page (its Accept
// header lists text/html), as opposed to an API client, which keeps the
// JSON answers.
func WantsHTML(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, _ := strings.Cut(part, ";")
		if strings.EqualFold(strings.TrimSpace(mt), "text/html") {
			return true
		}
	}
	return false
}

// RedirectRoot sends a browser that opens the gateway's root URL to the
// dashboard and reports whether it did; API clients are left alone.
func RedirectRoot(w http.ResponseWriter, r *http.Request) bool {
	if r.URL.Path != "/" || (r.Method != http.MethodGet && r.Method != http.MethodHead) || !WantsHTML(r) {
		return false
	}
	http.Redirect(w, r, Prefix, http.StatusSeeOther)
	return true
}

// isHTTPS reports whether the browser reached us over TLS, directly or
// through a proxy that says so; the session cookie is Secure then.
func isHTTPS(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

func (d *Dashboard) logError(r *http.Request, msg string, err error) {
	d.log.ErrorContext(r.Context(), "dashboard: "+msg, "path", r.URL.Path, "error", err)
}
