// Package gateway is dsync's HTTP edge: the SCIM 2.0 server IdPs provision
// into, the WorkOS-compatible REST API, and /healthz. It is the only writer
// of events to the DSYNC_EVENTS stream; reads of lists go to the projector
// and webhook endpoints are managed by the dispatcher, both over gRPC.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health/grpc_health_v1"

	"github.com/dsync-dev/dsync/pkg/event"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
	"github.com/dsync-dev/dsync/services/gateway/internal/dashboard"
	"github.com/dsync-dev/dsync/services/gateway/internal/eventlog"
	"github.com/dsync-dev/dsync/services/gateway/internal/httpapi"
	"github.com/dsync-dev/dsync/services/gateway/internal/registry"
	"github.com/dsync-dev/dsync/services/gateway/internal/scim"
)

// DefaultMaxBodyBytes is the request body limit when Config.MaxBodyBytes is 0.
const DefaultMaxBodyBytes = 1 << 20

// shutdownTimeout caps the graceful drain of in-flight requests.
const shutdownTimeout = 10 * time.Second

// Config wires the gateway. NATS, HTTPListener (for Run), APIKey,
// Directories and Webhooks are required.
type Config struct {
	Logger *slog.Logger
	// NATS is connected by the caller. The DSYNC_EVENTS stream is declared
	// by the caller too (natsx.EnsureStream); until it exists, writes fail
	// and /healthz reports it.
	NATS *nats.Conn
	// HTTPListener is opened by the caller; Run serves on it.
	HTTPListener net.Listener
	// PublicURL is the absolute base URL clients use, e.g.
	// "http://127.0.0.1:8080"; empty means "http://" + the listener address.
	PublicURL string
	// APIKey authenticates the REST API. Only its SHA-256 is kept, and it
	// is compared in constant time.
	APIKey string
	// Directories reaches the projector (DirectoryService and health).
	Directories grpc.ClientConnInterface
	// Webhooks reaches the dispatcher (WebhookService and health).
	Webhooks grpc.ClientConnInterface
	// MetricsHandler, when set, is served at GET /metrics.
	MetricsHandler http.Handler
	// MaxBodyBytes limits request bodies; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// DashboardPassword, when set, signs operators in to the dashboard as
	// an alternative to the API key (DSYNC_DASHBOARD_PASSWORD).
	DashboardPassword string
}

// NewHandler returns the gateway's HTTP handler for cfg, without serving
// it; Run serves it. HTTPListener is only read to default PublicURL. The
// dashboard's live streams end when ctx is done.
func NewHandler(ctx context.Context, cfg Config) (http.Handler, error) {
	if cfg.NATS == nil {
		return nil, errors.New("gateway: NATS connection is required")
	}
	if cfg.APIKey == "" {
		return nil, errors.New("gateway: APIKey is required")
	}
	if cfg.Directories == nil || cfg.Webhooks == nil {
		return nil, errors.New("gateway: Directories and Webhooks connections are required")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	publicURL := strings.TrimRight(cfg.PublicURL, "/")
	if publicURL == "" {
		if cfg.HTTPListener == nil {
			return nil, errors.New("gateway: PublicURL or HTTPListener is required")
		}
		publicURL = "http://" + cfg.HTTPListener.Addr().String()
	}
	maxBody := cfg.MaxBodyBytes
	if maxBody <= 0 {
		maxBody = DefaultMaxBodyBytes
	}
	js, err := jetstream.New(cfg.NATS)
	if err != nil {
		return nil, fmt.Errorf("gateway: jetstream: %w", err)
	}
	ids := event.NewIDs()
	evlog := eventlog.New(js)
	directories := dsyncv1.NewDirectoryServiceClient(cfg.Directories)
	webhooks := dsyncv1.NewWebhookServiceClient(cfg.Webhooks)
	// The dashboard calls the REST API through the finished handler, which
	// is built after it: bind it late.
	var api http.Handler
	dash, err := dashboard.New(ctx, dashboard.Config{
		Logger:      log.With("component", "dashboard"),
		APIKey:      cfg.APIKey,
		Password:    cfg.DashboardPassword,
		API:         http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { api.ServeHTTP(w, r) }),
		Directories: directories,
		Webhooks:    webhooks,
		NATS:        cfg.NATS,
		PublicURL:   publicURL,
	})
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	api = httpapi.NewHandler(httpapi.Deps{
		Logger:          log,
		NATS:            cfg.NATS,
		JS:              js,
		Log:             evlog,
		IDs:             ids,
		SCIM:            scim.NewService(evlog, ids, publicURL, nil),
		Registry:        registry.New(evlog, ids, nil),
		PublicURL:       publicURL,
		APIKey:          cfg.APIKey,
		Directories:     directories,
		Webhooks:        webhooks,
		DirectoryHealth: grpc_health_v1.NewHealthClient(cfg.Directories),
		WebhookHealth:   grpc_health_v1.NewHealthClient(cfg.Webhooks),
		Metrics:         cfg.MetricsHandler,
		MaxBodyBytes:    maxBody,
		Dashboard:       dash,
	})
	return api, nil
}

// Run serves the gateway on cfg.HTTPListener until ctx is done, then shuts
// the server down gracefully, giving in-flight requests up to 10 seconds.
// It returns nil on a clean shutdown. It closes the listener, not NATS or
// the gRPC connections, which belong to the caller.
func Run(ctx context.Context, cfg Config) error {
	if cfg.HTTPListener == nil {
		return errors.New("gateway: HTTPListener is required")
	}
	h, err := NewHandler(ctx, cfg)
	if err != nil {
		return err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		// Requests outlive ctx's cancellation during the drain; they keep
		// its values.
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(cfg.HTTPListener) }()
	log.InfoContext(ctx, "gateway listening", "addr", cfg.HTTPListener.Addr().String())

	select {
	case err := <-served:
		return fmt.Errorf("gateway: serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("gateway: shutdown: %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("gateway: serve: %w", err)
	}
	log.InfoContext(ctx, "gateway stopped")
	return nil
}
