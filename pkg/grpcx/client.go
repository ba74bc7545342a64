package grpcx

import (
	"fmt"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Dial creates a client connection to target (any grpc.NewClient target, e.g.
// "dns:///projector:9090" or "127.0.0.1:9090") with an OpenTelemetry stats
// handler and, unless opts set other transport credentials, no TLS (the
// in-cluster default). It does not connect until the first RPC. The caller
// closes the connection.
func Dial(target string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	base := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler()),
	}
	conn, err := grpc.NewClient(target, append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("grpc client %s: %w", target, err)
	}
	return conn, nil
}
