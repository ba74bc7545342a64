package grpcx

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// TestServeForcesStopAfterGrace checks that a stuck stream (a health Watch
// never ends by itself) cannot hold shutdown past the grace period.
func TestServeForcesStopAfterGrace(t *testing.T) {
	srv, _ := NewServer(slog.New(slog.DiscardHandler))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	const grace = 200 * time.Millisecond
	done := make(chan error, 1)
	go func() { done <- serve(ctx, srv, lis, grace) }()

	conn, err := Dial(lis.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	watch, err := healthpb.NewHealthClient(conn).Watch(t.Context(), &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	_, err = watch.Recv() // the stream is established and in flight
	require.NoError(t, err)

	start := time.Now()
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
		require.GreaterOrEqual(t, time.Since(start), grace)
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not force a stop")
	}
}
