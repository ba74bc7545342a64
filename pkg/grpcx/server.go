// Package grpcx builds gRPC servers and clients with the project's standard
// seams: OpenTelemetry stats handlers, panic recovery, request logging,
// health checking, reflection and, optionally, a shared bearer token.
package grpcx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
)

// GracePeriod caps how long Serve waits for in-flight RPCs after ctx is done
// before it closes every connection.
const GracePeriod = 10 * time.Second

// NewServer returns a gRPC server with, in order: an OpenTelemetry stats
// handler; a unary interceptor that logs each call (method, code, duration
// at Debug, Warn for codes.Internal and codes.Unknown); unary and stream
// interceptors that turn a handler panic into codes.Internal and log it with
// its stack. opts are applied after these, so interceptors they add run
// inside them. With WithToken among opts, a token check runs inside the
// recoverers (refusals are logged like any call). The standard health service
// (returned, initially SERVING for "") and server reflection are registered;
// register your services, then set their health status.
func NewServer(log *slog.Logger, opts ...grpc.ServerOption) (*grpc.Server, *health.Server) {
	unary := []grpc.UnaryServerInterceptor{unaryLogger(log), unaryRecoverer(log)}
	stream := []grpc.StreamServerInterceptor{streamRecoverer(log)}
	if token := tokenFrom(opts); token != "" {
		auth := newTokenAuth(log, token)
		unary = append(unary, auth.unary())
		stream = append(stream, auth.stream())
	}
	base := []grpc.ServerOption{
		grpc.StatsHandler(otelgrpc.NewServerHandler()),
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
	}
	srv := grpc.NewServer(append(base, opts...)...)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	reflection.Register(srv)
	return srv, hs
}

// Serve serves srv on lis until ctx is done, then stops gracefully, waiting
// at most GracePeriod for in-flight RPCs before forcing connections closed.
// It returns nil after such a shutdown and an error if serving failed. Serve
// closes lis. To fail health checks before draining, call the health server's
// Shutdown before cancelling ctx.
func Serve(ctx context.Context, srv *grpc.Server, lis net.Listener) error {
	return serve(ctx, srv, lis, GracePeriod)
}

func serve(ctx context.Context, srv *grpc.Server, lis net.Listener, grace time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()

	select {
	case err := <-errc:
		if err != nil {
			return fmt.Errorf("grpc serve %s: %w", lis.Addr(), err)
		}
		return nil // stopped by someone else
	case <-ctx.Done():
	}

	stopped := make(chan struct{})
	go func() {
		srv.GracefulStop()
		close(stopped)
	}()
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-stopped:
	case <-timer.C:
		srv.Stop() // GracefulStop then returns too
		<-stopped
	}
	if err := <-errc; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("grpc serve %s: %w", lis.Addr(), err)
	}
	return nil
}
