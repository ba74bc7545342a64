// Package projector is the projector service: it applies the DSYNC_EVENTS
// stream to the directory read model (PostgreSQL in production, SQLite for
// dsync dev) and serves dsync.v1.DirectoryService over gRPC.
package projector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/dsync-dev/dsync/pkg/grpcx"
	"github.com/dsync-dev/dsync/pkg/lifecycle"
	"github.com/dsync-dev/dsync/pkg/natsx"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
	"github.com/dsync-dev/dsync/services/projector/internal/grpcapi"
	"github.com/dsync-dev/dsync/services/projector/internal/progress"
	"github.com/dsync-dev/dsync/services/projector/internal/projection"
	"github.com/dsync-dev/dsync/services/projector/internal/readmodel"
	"github.com/dsync-dev/dsync/services/projector/internal/store/postgres"
	"github.com/dsync-dev/dsync/services/projector/internal/store/sqlite"
)

// Defaults of Config.
const (
	DefaultConsumerName    = "projector"
	DefaultConsistencyWait = 5 * time.Second
	// DefaultEventRetention is how long the Events API keeps events.
	DefaultEventRetention = 30 * 24 * time.Hour
	// pruneEvery is how often events past the retention are deleted.
	pruneEvery = time.Hour
)

// Config wires the projector. NATS, GRPCListener and one of PostgresURL and
// SQLitePath are required.
type Config struct {
	// Logger receives the service's logs; slog.Default() when nil.
	Logger *slog.Logger
	// NATS is connected by the caller, who also closes it after Run returns.
	NATS *nats.Conn
	// PostgresURL selects the PostgreSQL read model; when empty, SQLitePath
	// is used.
	PostgresURL string
	// SQLitePath is the file of the embedded read model (dsync dev).
	SQLitePath string
	// GRPCListener is opened by the caller; Run serves DirectoryService,
	// health and reflection on it and closes it.
	GRPCListener net.Listener
	// GRPCToken, when set, is the bearer token every RPC but health must
	// carry (grpcx.WithToken).
	GRPCToken string
	// ConsumerName prefixes the names of the stream consumers;
	// DefaultConsumerName when empty.
	ConsumerName string
	// ConsistencyWait bounds how long a request carrying min_sequence waits
	// for the projection; DefaultConsistencyWait when zero.
	ConsistencyWait time.Duration
	// StreamReplicas is the replica count EnsureStream declares the event
	// stream with: 1 (the default) for one server, 3 for a cluster. It must
	// agree with the other services, or each start would re-scale the stream.
	StreamReplicas int
	// BatchSize is the most events applied in one transaction;
	// projection.DefaultBatchSize when zero.
	BatchSize int
	// EventRetention is how long the Events API keeps an event after it
	// occurred: DefaultEventRetention when zero, forever when negative.
	EventRetention time.Duration
}

// Run opens and migrates the read model, declares the event stream, applies
// it from the read model's checkpoint and serves DirectoryService, until ctx
// is done. Health ("" and dsync.v1.DirectoryService) turns SERVING once the
// store is migrated and the consumer runs. Run returns nil after a clean
// shutdown and an error for wiring trouble (bad configuration, store or NATS
// unreachable) or when serving fails.
func Run(ctx context.Context, cfg Config) (err error) {
	if cfg.GRPCListener != nil {
		// Serve closes the listener; close it on the early returns too, so
		// that ownership does not depend on how far Run got.
		defer func() {
			if err != nil {
				_ = cfg.GRPCListener.Close()
			}
		}()
	}
	cfg, err = withDefaults(cfg)
	if err != nil {
		return err
	}
	log := cfg.Logger

	store, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := store.Close(); cerr != nil {
			log.Error("close read model", "error", cerr)
		}
	}()

	js, err := jetstream.New(cfg.NATS)
	if err != nil {
		return fmt.Errorf("projector: jetstream: %w", err)
	}
	stream, err := natsx.EnsureStream(ctx, js, natsx.StreamOptions{Replicas: cfg.StreamReplicas})
	if err != nil {
		return fmt.Errorf("projector: %w", err)
	}
	cp, err := store.Checkpoint(ctx)
	if err != nil {
		return fmt.Errorf("projector: %w", err)
	}
	prog := progress.New(cp)

	srv, health := grpcx.NewServer(log, grpcx.WithToken(cfg.GRPCToken))
	dsyncv1.RegisterDirectoryServiceServer(srv, grpcapi.New(log, store, prog, cfg.ConsistencyWait,
		func(ctx context.Context) (uint64, error) {
			info, err := stream.Info(ctx)
			if err != nil {
				return 0, fmt.Errorf("stream info: %w", err)
			}
			return info.State.LastSeq, nil
		}))
	serviceName := dsyncv1.DirectoryService_ServiceDesc.ServiceName
	for _, name := range []string{"", serviceName} {
		health.SetServingStatus(name, healthpb.HealthCheckResponse_NOT_SERVING)
	}

	proj := &projection.Projection{
		Log:       log,
		JS:        js,
		Store:     store,
		Progress:  prog,
		Name:      cfg.ConsumerName,
		BatchSize: cfg.BatchSize,
		OnRunning: func() {
			for _, name := range []string{"", serviceName} {
				health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
			}
			log.InfoContext(ctx, "projector serving", "addr", cfg.GRPCListener.Addr().String(), "checkpoint", cp)
		},
	}
	serve := func(ctx context.Context) error {
		go func() {
			// Fail health checks first, so balancers stop sending before
			// the server drains.
			<-ctx.Done()
			health.Shutdown()
		}()
		return grpcx.Serve(ctx, srv, cfg.GRPCListener)
	}
	prune := func(ctx context.Context) error {
		pruneEvents(ctx, log, store, cfg.EventRetention)
		return nil
	}
	if err := lifecycle.Run(ctx, serve, proj.Run, prune); err != nil {
		return fmt.Errorf("projector: %w", err)
	}
	return nil
}

func withDefaults(cfg Config) (Config, error) {
	var errs []error
	if cfg.NATS == nil {
		errs = append(errs, errors.New("NATS is required"))
	}
	if cfg.GRPCListener == nil {
		errs = append(errs, errors.New("GRPCListener is required"))
	}
	if cfg.PostgresURL == "" && cfg.SQLitePath == "" {
		errs = append(errs, errors.New("PostgresURL or SQLitePath is required"))
	}
	if cfg.ConsistencyWait < 0 {
		errs = append(errs, errors.New("ConsistencyWait must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return cfg, fmt.Errorf("projector: invalid config: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ConsumerName == "" {
		cfg.ConsumerName = DefaultConsumerName
	}
	if cfg.ConsistencyWait == 0 {
		cfg.ConsistencyWait = DefaultConsistencyWait
	}
	if cfg.EventRetention == 0 {
		cfg.EventRetention = DefaultEventRetention
	}
	return cfg, nil
}

func openStore(ctx context.Context, cfg Config) (readmodel.Store, error) {
	if cfg.PostgresURL != "" {
		s, err := postgres.Open(ctx, cfg.PostgresURL)
		if err != nil {
			return nil, fmt.Errorf("projector: %w", err)
		}
		return s, nil
	}
	s, err := sqlite.Open(ctx, cfg.SQLitePath)
	if err != nil {
		return nil, fmt.Errorf("projector: %w", err)
	}
	return s, nil
}

// pruneEvents deletes events older than retention now and every pruneEvery
// until ctx is done. A failure is logged and retried at the next tick: an
// event kept a little longer harms no one.
func pruneEvents(ctx context.Context, log *slog.Logger, store readmodel.Store, retention time.Duration) {
	if retention < 0 {
		return
	}
	t := time.NewTicker(pruneEvery)
	defer t.Stop()
	for {
		n, err := store.PruneEvents(ctx, time.Now().Add(-retention))
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			log.WarnContext(ctx, "prune events", "error", err)
		case n > 0:
			log.InfoContext(ctx, "events pruned", "count", n, "retention", retention.String())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
