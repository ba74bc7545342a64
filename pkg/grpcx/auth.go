package grpcx

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// healthPrefix is the method prefix of the standard health service, which
// answers without a token so that probes and load balancers need no secret.
const healthPrefix = "/grpc.health.v1.Health/"

// tokenOption carries WithToken's token to NewServer. Embedding
// EmptyServerOption makes it a grpc.ServerOption that grpc itself ignores.
type tokenOption struct {
	grpc.EmptyServerOption
	token string
}

// WithToken makes NewServer require, on every RPC except the health
// service's, the metadata "authorization: Bearer <token>" (as WithBearer
// sends it); others get codes.Unauthenticated. An empty token leaves the
// server open. The token travels as is: TLS or a private network between the
// services is the operator's job.
func WithToken(token string) grpc.ServerOption {
	return tokenOption{token: token}
}

// tokenFrom returns the token of the last WithToken among opts.
func tokenFrom(opts []grpc.ServerOption) string {
	token := ""
	for _, o := range opts {
		if t, ok := o.(tokenOption); ok {
			token = t.token
		}
	}
	return token
}

// tokenAuth checks bearer tokens against one shared token.
type tokenAuth struct {
	log *slog.Logger
	// want is the token's digest: comparing fixed-size digests in constant
	// time does not reveal the token's length either.
	want [sha256.Size]byte
}

func newTokenAuth(log *slog.Logger, token string) *tokenAuth {
	return &tokenAuth{log: log, want: sha256.Sum256([]byte(token))}
}

func (a *tokenAuth) unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if err := a.check(ctx, info.FullMethod); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

func (a *tokenAuth) stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if err := a.check(ss.Context(), info.FullMethod); err != nil {
			return err
		}
		return handler(srv, ss)
	}
}

// check returns nil when method is exempt or ctx carries the token, and a
// codes.Unauthenticated error, logged with the caller's address, otherwise.
func (a *tokenAuth) check(ctx context.Context, method string) error {
	if strings.HasPrefix(method, healthPrefix) {
		return nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	values := md.Get("authorization")
	reason := "missing bearer token"
	for _, v := range values {
		token, ok := bearerToken(v)
		if !ok {
			reason = "authorization is not a bearer token"
			continue
		}
		got := sha256.Sum256([]byte(token))
		if subtle.ConstantTimeCompare(got[:], a.want[:]) == 1 {
			return nil
		}
		reason = "invalid bearer token"
	}
	addr := "unknown"
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		addr = p.Addr.String()
	}
	a.log.WarnContext(ctx, "rpc refused", "method", method, "peer", addr, "reason", reason)
	return status.Errorf(codes.Unauthenticated,
		"%s: this server requires metadata \"authorization: Bearer <token>\" with its shared token", reason)
}

// bearerToken returns the token of an "Authorization: Bearer <token>" value;
// the scheme is case-insensitive (RFC 6750).
func bearerToken(v string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// bearer is per-RPC credentials sending a fixed bearer token.
type bearer struct{ token string }

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

// RequireTransportSecurity is false: the services talk in plaintext inside a
// private network unless the operator adds TLS, and the token must still be
// sent there.
func (bearer) RequireTransportSecurity() bool { return false }

// WithBearer makes a client send "authorization: Bearer <token>" on every
// RPC, for a server built with WithToken. An empty token sends nothing. The
// token is not encrypted by itself: over a plaintext connection anyone on
// the path can read it, so keep the connection on a private network or use
// TLS.
func WithBearer(token string) grpc.DialOption {
	if token == "" {
		return grpc.EmptyDialOption{}
	}
	return grpc.WithPerRPCCredentials(bearer{token: token})
}
