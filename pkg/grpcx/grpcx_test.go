package grpcx_test

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/dsync-dev/dsync/pkg/grpcx"
)

const testService = "dsync.test.Probe"

// unary adapts fn into a grpc.MethodDesc handler taking and returning Empty.
func unary(name string, fn func(ctx context.Context)) grpc.MethodDesc {
	return grpc.MethodDesc{
		MethodName: name,
		Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
			in := new(emptypb.Empty)
			if err := dec(in); err != nil {
				return nil, err
			}
			h := func(ctx context.Context, _ any) (any, error) {
				fn(ctx)
				return &emptypb.Empty{}, nil
			}
			if interceptor == nil {
				return h(ctx, in)
			}
			return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: "/" + testService + "/" + name}, h)
		},
	}
}

// probeDesc is a handwritten service: OK returns, Panic panics,
// PanicStream panics in a stream.
var probeDesc = grpc.ServiceDesc{
	ServiceName: testService,
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{
		unary("OK", func(context.Context) {}),
		unary("Panic", func(context.Context) { panic("boom") }),
	},
	Streams: []grpc.StreamDesc{{
		StreamName:    "PanicStream",
		ServerStreams: true,
		Handler:       func(any, grpc.ServerStream) error { panic("stream boom") },
	}, {
		StreamName:    "OKStream",
		ServerStreams: true,
		Handler:       func(_ any, ss grpc.ServerStream) error { return ss.SendMsg(&emptypb.Empty{}) },
	}},
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type fixture struct {
	addr   string
	conn   *grpc.ClientConn // sends no token
	srv    *grpc.Server
	health *health.Server
	logs   *syncBuffer
	stop   func() error // cancels Serve and returns its result
}

func start(t *testing.T, opts ...grpc.ServerOption) *fixture {
	t.Helper()
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, hs := grpcx.NewServer(log, opts...)
	srv.RegisterService(&probeDesc, struct{}{})

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan error, 1)
	go func() { done <- grpcx.Serve(ctx, srv, lis) }()

	conn, err := grpcx.Dial(lis.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })

	var once sync.Once
	var serveErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case serveErr = <-done:
			case <-time.After(15 * time.Second):
				t.Fatal("Serve did not return after cancel")
			}
		})
		return serveErr
	}
	t.Cleanup(func() { require.NoError(t, stop()) })
	return &fixture{addr: lis.Addr().String(), conn: conn, srv: srv, health: hs, logs: logs, stop: stop}
}

func (f *fixture) invoke(ctx context.Context, method string) error {
	return f.conn.Invoke(ctx, "/"+testService+"/"+method, &emptypb.Empty{}, &emptypb.Empty{})
}

func TestHealth(t *testing.T) {
	f := start(t)
	client := healthpb.NewHealthClient(f.conn)
	tests := []struct {
		service string
		set     healthpb.HealthCheckResponse_ServingStatus
	}{
		{service: "", set: healthpb.HealthCheckResponse_NOT_SERVING},
		{service: "", set: healthpb.HealthCheckResponse_SERVING},
		{service: testService, set: healthpb.HealthCheckResponse_SERVING},
	}
	for _, tc := range tests {
		t.Run(tc.service+"/"+tc.set.String(), func(t *testing.T) {
			f.health.SetServingStatus(tc.service, tc.set)
			resp, err := client.Check(t.Context(), &healthpb.HealthCheckRequest{Service: tc.service})
			require.NoError(t, err)
			require.Equal(t, tc.set, resp.GetStatus())
		})
	}
	_, err := client.Check(t.Context(), &healthpb.HealthCheckRequest{Service: "unknown"})
	require.Equal(t, codes.NotFound, status.Code(err))
}

func TestServicesRegistered(t *testing.T) {
	f := start(t)
	info := f.srv.GetServiceInfo()
	for _, name := range []string{"grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", testService} {
		require.Contains(t, info, name)
	}
}

func TestInterceptors(t *testing.T) {
	tests := []struct {
		method   string
		wantCode codes.Code
		wantLogs []string
	}{
		{method: "OK", wantCode: codes.OK, wantLogs: []string{`"level":"DEBUG","msg":"rpc handled","method":"/dsync.test.Probe/OK","code":"OK"`}},
		{method: "Panic", wantCode: codes.Internal, wantLogs: []string{
			`"level":"ERROR","msg":"rpc handler panicked","method":"/dsync.test.Probe/Panic","panic":"boom","stack":"goroutine`,
			`"level":"WARN","msg":"rpc handled","method":"/dsync.test.Probe/Panic","code":"Internal"`,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.method, func(t *testing.T) {
			f := start(t)
			err := f.invoke(t.Context(), tc.method)
			require.Equal(t, tc.wantCode, status.Code(err), "err: %v", err)
			if err != nil {
				require.NotContains(t, status.Convert(err).Message(), "boom", "panic value is not sent to clients")
			}
			for _, want := range tc.wantLogs {
				require.Contains(t, f.logs.String(), want)
			}
		})
	}
}

func TestStreamPanicBecomesInternal(t *testing.T) {
	f := start(t)
	stream, err := f.conn.NewStream(t.Context(), &probeDesc.Streams[0], "/"+testService+"/PanicStream")
	require.NoError(t, err)
	require.NoError(t, stream.SendMsg(&emptypb.Empty{}))
	require.NoError(t, stream.CloseSend())
	err = stream.RecvMsg(&emptypb.Empty{})
	require.Equal(t, codes.Internal, status.Code(err), "err: %v", err)
	require.Contains(t, f.logs.String(), `"panic":"stream boom"`)
}

func TestServeReturnsNilAfterCancel(t *testing.T) {
	f := start(t)
	require.NoError(t, f.invoke(t.Context(), "OK"))
	require.NoError(t, f.stop())
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	require.Error(t, f.invoke(ctx, "OK"), "server is gone")
}

func TestServeFailsOnClosedListener(t *testing.T) {
	srv, _ := grpcx.NewServer(slog.New(slog.DiscardHandler))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	require.NoError(t, lis.Close())
	require.ErrorContains(t, grpcx.Serve(t.Context(), srv, lis), "grpc serve")
}
