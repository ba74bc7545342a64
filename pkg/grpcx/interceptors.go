package grpcx

import (
	"context"
	"log/slog"
	"runtime/debug"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// unaryLogger logs every unary call once it returns.
func unaryLogger(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := handler(ctx, req)
		code := status.Code(err)
		level := slog.LevelDebug
		if code == codes.Internal || code == codes.Unknown {
			level = slog.LevelWarn
		}
		attrs := []any{"method", info.FullMethod, "code", code.String(), "duration", time.Since(start)}
		if level >= slog.LevelWarn {
			attrs = append(attrs, "error", err)
		}
		log.Log(ctx, level, "rpc handled", attrs...)
		return resp, err
	}
}

// unaryRecoverer turns a panic in a unary handler into codes.Internal.
func unaryRecoverer(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if r := recover(); r != nil {
				err = recovered(ctx, log, info.FullMethod, r)
			}
		}()
		return handler(ctx, req)
	}
}

// streamRecoverer turns a panic in a stream handler into codes.Internal.
func streamRecoverer(log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = recovered(ss.Context(), log, info.FullMethod, r)
			}
		}()
		return handler(srv, ss)
	}
}

// recovered logs a panic with its stack and returns the error the client
// sees, which does not reveal the panic value.
func recovered(ctx context.Context, log *slog.Logger, method string, r any) error {
	log.ErrorContext(ctx, "rpc handler panicked", "method", method, "panic", r, "stack", string(debug.Stack()))
	return status.Error(codes.Internal, "internal error")
}
