package grpcx_test

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/dsync-dev/dsync/pkg/grpcx"
)

const secret = "s3cret-internal-token"

// dialWith returns a connection to f sending token through WithBearer.
func (f *fixture) dialWith(t *testing.T, token string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpcx.Dial(f.addr, grpcx.WithBearer(token))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// callStream opens OKStream and reads it to the end.
func callStream(ctx context.Context, conn *grpc.ClientConn) error {
	stream, err := conn.NewStream(ctx, &probeDesc.Streams[1], "/"+testService+"/OKStream")
	if err != nil {
		return err
	}
	if err := stream.SendMsg(&emptypb.Empty{}); err != nil {
		return err
	}
	if err := stream.CloseSend(); err != nil {
		return err
	}
	for {
		if err := stream.RecvMsg(&emptypb.Empty{}); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

func TestToken(t *testing.T) {
	tests := []struct {
		name        string
		serverToken string
		bearer      string // sent through WithBearer
		header      string // sent as raw authorization metadata
		wantCode    codes.Code
		wantMsg     string
	}{
		{name: "no token configured, none sent", wantCode: codes.OK},
		{name: "no token configured, one sent", bearer: "anything", wantCode: codes.OK},
		{name: "missing", serverToken: secret, wantCode: codes.Unauthenticated, wantMsg: "missing bearer token"},
		{name: "wrong", serverToken: secret, bearer: "guess", wantCode: codes.Unauthenticated, wantMsg: "invalid bearer token"},
		{name: "prefix of the token", serverToken: secret, bearer: secret[:len(secret)-1], wantCode: codes.Unauthenticated, wantMsg: "invalid bearer token"},
		{name: "other scheme", serverToken: secret, header: "Basic " + secret, wantCode: codes.Unauthenticated, wantMsg: "not a bearer token"},
		{name: "empty bearer", serverToken: secret, header: "Bearer ", wantCode: codes.Unauthenticated, wantMsg: "not a bearer token"},
		{name: "right", serverToken: secret, bearer: secret, wantCode: codes.OK},
		{name: "right, scheme in lower case", serverToken: secret, header: "bearer " + secret, wantCode: codes.OK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := start(t, grpcx.WithToken(tc.serverToken))
			conn := f.dialWith(t, tc.bearer)
			ctx := t.Context()
			if tc.header != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, "authorization", tc.header)
			}
			calls := map[string]error{
				"unary":  conn.Invoke(ctx, "/"+testService+"/OK", &emptypb.Empty{}, &emptypb.Empty{}),
				"stream": callStream(ctx, conn),
			}
			for kind, err := range calls {
				require.Equal(t, tc.wantCode, status.Code(err), "%s: %v", kind, err)
				if tc.wantMsg != "" {
					require.Contains(t, status.Convert(err).Message(), tc.wantMsg, kind)
					require.Contains(t, status.Convert(err).Message(), `"authorization: Bearer <token>"`, "%s: says what is expected", kind)
				}
			}
		})
	}
}

func TestTokenRefusalIsLoggedWithoutTheToken(t *testing.T) {
	f := start(t, grpcx.WithToken(secret))
	err := f.dialWith(t, "guess-"+secret).Invoke(t.Context(), "/"+testService+"/OK", &emptypb.Empty{}, &emptypb.Empty{})
	require.Equal(t, codes.Unauthenticated, status.Code(err))
	logs := f.logs.String()
	require.Contains(t, logs, `"level":"WARN","msg":"rpc refused","method":"/dsync.test.Probe/OK","peer":"127.0.0.1:`)
	require.Contains(t, logs, `"reason":"invalid bearer token"`)
	require.NotContains(t, logs, secret)
}

func TestTokenLeavesHealthOpen(t *testing.T) {
	f := start(t, grpcx.WithToken(secret))
	client := healthpb.NewHealthClient(f.conn) // no token
	resp, err := client.Check(t.Context(), &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, resp.GetStatus())

	watch, err := client.Watch(t.Context(), &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	first, err := watch.Recv()
	require.NoError(t, err, "the Watch stream is open too")
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, first.GetStatus())
}

func TestTokenGuardsReflection(t *testing.T) {
	f := start(t, grpcx.WithToken(secret))
	list := func(conn *grpc.ClientConn) error {
		stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(t.Context())
		if err != nil {
			return err
		}
		req := &reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}
		if err := stream.Send(req); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		_, err = stream.Recv()
		return err
	}
	require.Equal(t, codes.Unauthenticated, status.Code(list(f.conn)))
	require.NoError(t, list(f.dialWith(t, secret)))
}

func TestWithBearerSkipsEmptyToken(t *testing.T) {
	// A client built with an empty token reaches an open server and sends no
	// authorization at all, so a token server reports it as missing.
	f := start(t, grpcx.WithToken(secret))
	err := f.dialWith(t, "").Invoke(t.Context(), "/"+testService+"/OK", &emptypb.Empty{}, &emptypb.Empty{})
	require.Contains(t, status.Convert(err).Message(), "missing bearer token")
}
