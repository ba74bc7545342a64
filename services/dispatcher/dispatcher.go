// Package dispatcher runs the webhook dispatcher: it consumes the
// DSYNC_EVENTS stream, turns each public event into a WorkOS webhook event,
// delivers it, signed and with retries, to every enabled endpoint subscribed
// to it, and serves dsync.v1.WebhookService over gRPC.
//
// Stream messages are acknowledged as soon as their deliveries are durable
// in the store; retries are scheduled in the store, never by holding or
// NAKing stream messages, so a dead endpoint cannot stall ingestion or the
// deliveries to other endpoints.
package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/dsync-dev/dsync/pkg/event"
	"github.com/dsync-dev/dsync/pkg/grpcx"
	"github.com/dsync-dev/dsync/pkg/lifecycle"
	"github.com/dsync-dev/dsync/pkg/webhooksig"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
	"github.com/dsync-dev/dsync/services/dispatcher/internal/consumer"
	"github.com/dsync-dev/dsync/services/dispatcher/internal/delivery"
	"github.com/dsync-dev/dsync/services/dispatcher/internal/dialguard"
	"github.com/dsync-dev/dsync/services/dispatcher/internal/grpcapi"
	"github.com/dsync-dev/dsync/services/dispatcher/internal/sender"
	"github.com/dsync-dev/dsync/services/dispatcher/internal/store/pgstore"
	"github.com/dsync-dev/dsync/services/dispatcher/internal/store/sqlitestore"
	"github.com/dsync-dev/dsync/services/dispatcher/internal/telemetry"
)

// Defaults applied by Run to zero Config fields.
const (
	DefaultConsumerName   = "dispatcher"
	DefaultRequestTimeout = 15 * time.Second
	// DefaultRetention is how long the delivery log is kept (Retention).
	DefaultRetention = delivery.DefaultRetention
)

// LoopbackNets are the loopback networks: the webhook targets dsync dev
// allows (AllowNets).
var LoopbackNets = dialguard.Loopback

// ParseNets parses a comma-separated list of CIDR networks or IP addresses
// for AllowNets.
func ParseNets(s string) ([]netip.Prefix, error) { return dialguard.ParseNets(s) }

// DefaultRetrySchedule is the delay before attempts 2, 3, …: about three
// days in all, after which a delivery is dead-lettered.
var DefaultRetrySchedule = delivery.DefaultSchedule

// Config configures Run.
type Config struct {
	Logger *slog.Logger
	// NATS is connected by the caller, who also closes it.
	NATS *nats.Conn
	// PostgresURL selects the production store; when empty SQLitePath is used.
	PostgresURL string
	// SQLitePath is the embedded store's file (dsync dev).
	SQLitePath string
	// GRPCListener is opened by the caller; Run serves WebhookService,
	// health and reflection on it, and closes it.
	GRPCListener net.Listener
	// GRPCToken, when set, is the bearer token every RPC but health must
	// carry (grpcx.WithToken).
	GRPCToken string
	// ConsumerName is the durable consumer's name; default "dispatcher".
	ConsumerName string
	// AllowPrivateTargets allows every webhook target, loopback, private,
	// link-local and reserved addresses included (tests set it).
	AllowPrivateTargets bool
	// AllowNets are networks allowed as webhook targets although they are
	// in a refused range: dsync dev allows loopback (dialguard.Loopback), an
	// operator a private network of their own receivers.
	AllowNets []netip.Prefix
	// RequestTimeout bounds each attempt; default 15s. A 2xx within it is
	// a success.
	RequestTimeout time.Duration
	// RetrySchedule holds the delays before attempts 2, 3, …, each jittered
	// by ±10%; default DefaultRetrySchedule.
	RetrySchedule []time.Duration
	// HTTPClient sends the webhooks; default one whose dialer refuses the
	// targets AllowPrivateTargets and AllowNets do not allow. A client given here is
	// used as is, guard or not.
	HTTPClient *http.Client
	// DisableAfter disables an endpoint whose attempts have all failed for
	// this long (it says why; re-enabling it resumes where it stopped);
	// default 5 days, negative never.
	DisableAfter time.Duration
	// Poll is how often the worker looks for scheduled retries; default 1s.
	Poll time.Duration
	// Retention is how long finished deliveries, their attempts and events
	// are kept (from a delivery's last update, an event's creation); replay
	// reaches back as far. Pending deliveries and the events they reference
	// are kept whatever their age. Default DefaultRetention, negative
	// forever.
	Retention time.Duration
	// PruneEvery is how often retention runs; default 5 minutes.
	PruneEvery time.Duration
	// TracerProvider and MeterProvider default to the global ones that
	// otelx.Setup installs.
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
}

// Run runs the dispatcher until ctx is done and returns nil after a clean
// shutdown. It opens and migrates the store before serving; health reports
// SERVING for "" and "dsync.v1.WebhookService" once the consumer is running
// (it waits for the DSYNC_EVENTS stream to exist).
func Run(ctx context.Context, cfg Config) error {
	if cfg.GRPCListener == nil {
		return errors.New("dispatcher: GRPCListener is required")
	}
	lis := cfg.GRPCListener
	serving := false
	defer func() {
		if !serving {
			_ = lis.Close() // Serve never took ownership of it
		}
	}()
	if cfg.NATS == nil {
		return errors.New("dispatcher: NATS is required")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.ConsumerName == "" {
		cfg.ConsumerName = DefaultConsumerName
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if len(cfg.RetrySchedule) == 0 {
		cfg.RetrySchedule = DefaultRetrySchedule
	}
	targets := dialguard.Policy{AllowAll: cfg.AllowPrivateTargets, Allow: cfg.AllowNets}
	client := cfg.HTTPClient
	if client == nil {
		client = sender.NewClient(targets)
	}

	store, closeStore, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeStore()

	js, err := jetstream.New(cfg.NATS)
	if err != nil {
		return fmt.Errorf("dispatcher: jetstream: %w", err)
	}
	ids := event.NewIDs()
	cons := &consumer.Consumer{JS: js, Name: cfg.ConsumerName, Log: log}
	tp, mp := cfg.TracerProvider, cfg.MeterProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	obs, err := telemetry.New(tp, mp, telemetry.Sources{Backlog: store.Backlog, Lag: cons.Lag}, log)
	if err != nil {
		return fmt.Errorf("dispatcher: %w", err)
	}
	defer func() { _ = obs.Close() }()
	worker := delivery.NewWorker(delivery.WorkerConfig{
		Store:  store,
		Sender: sender.New(client, cfg.RequestTimeout, nil),
		Policy: delivery.Policy{Schedule: cfg.RetrySchedule},
		Log:    log,
		// The lease outlives the attempt (timeout) with room for recording
		// it, so a live worker never loses its claim.
		Lease:        cfg.RequestTimeout + 30*time.Second,
		DisableAfter: cfg.DisableAfter,
		Poll:         cfg.Poll,
		Observer:     obs,
	})
	pruner := delivery.NewPruner(delivery.PrunerConfig{
		Store:     store,
		Log:       log,
		Retention: cfg.Retention,
		Every:     cfg.PruneEvery,
		Observe:   obs.Pruned,
	})
	svc := &delivery.Service{
		Store: store,
		IDs:   ids,
		ValidateURL: func(u string) error {
			_, err := dialguard.ValidateURL(u, targets)
			return err
		},
		NewSecret: webhooksig.NewSecret,
		Now:       time.Now,
		Notify:    worker.Notify,
	}

	srv, health := grpcx.NewServer(log, grpcx.WithToken(cfg.GRPCToken))
	dsyncv1.RegisterWebhookServiceServer(srv, &grpcapi.Server{Service: svc, Log: log})
	serviceName := dsyncv1.WebhookService_ServiceDesc.ServiceName
	health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	health.SetServingStatus(serviceName, healthpb.HealthCheckResponse_NOT_SERVING)

	cons.Ingester = &delivery.Ingester{Store: store, IDs: ids, Notify: worker.Notify, Now: time.Now}
	cons.Ready = func() {
		health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
		health.SetServingStatus(serviceName, healthpb.HealthCheckResponse_SERVING)
		log.InfoContext(ctx, "dispatcher running", "grpc_addr", cfg.GRPCListener.Addr().String(), "consumer", cfg.ConsumerName)
	}
	serving = true
	err = lifecycle.Run(ctx,
		func(ctx context.Context) error {
			<-ctx.Done()
			health.Shutdown() // report NOT_SERVING while draining
			return nil
		},
		func(ctx context.Context) error { return grpcx.Serve(ctx, srv, lis) },
		cons.Run,
		worker.Run,
		pruner.Run,
	)
	if err != nil {
		return fmt.Errorf("dispatcher: %w", err)
	}
	return nil
}

func openStore(ctx context.Context, cfg Config) (delivery.Store, func(), error) {
	switch {
	case cfg.PostgresURL != "":
		s, err := pgstore.Open(ctx, cfg.PostgresURL, cfg.Logger)
		if err != nil {
			return nil, nil, fmt.Errorf("dispatcher: postgres store: %w", err)
		}
		return s, s.Close, nil
	case cfg.SQLitePath != "":
		s, err := sqlitestore.Open(ctx, cfg.SQLitePath)
		if err != nil {
			return nil, nil, fmt.Errorf("dispatcher: sqlite store: %w", err)
		}
		return s, func() { _ = s.Close() }, nil
	default:
		return nil, nil, errors.New("dispatcher: PostgresURL or SQLitePath is required")
	}
}
