package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"google.golang.org/grpc/health/grpc_health_v1"

	"github.com/dsync-dev/dsync/pkg/grpcx"
)

// opsServer serves /healthz and /metrics for a process that runs the
// projector or the dispatcher without the gateway. /healthz is 200 when the
// process's own gRPC service reports SERVING (its store is migrated and its
// consumer runs). token is the internal token, sent although health needs
// none.
func opsServer(grpcAddr, token string, metrics http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		status, err := grpcHealth(ctx, grpcAddr, token)
		w.Header().Set("Content-Type", "application/json")
		if err != nil || status != grpc_health_v1.HealthCheckResponse_SERVING {
			w.WriteHeader(http.StatusServiceUnavailable)
			msg := status.String()
			if err != nil {
				msg = err.Error()
			}
			_ = json.NewEncoder(w).Encode(map[string]string{"status": "unavailable", "reason": msg})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "ok"})
	})
	if metrics != nil {
		mux.Handle("GET /metrics", metrics)
	}
	return mux
}

func grpcHealth(ctx context.Context, addr, token string) (grpc_health_v1.HealthCheckResponse_ServingStatus, error) {
	conn, err := grpcx.Dial(addr, grpcx.WithBearer(token))
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	resp, err := grpc_health_v1.NewHealthClient(conn).Check(ctx, &grpc_health_v1.HealthCheckRequest{})
	if err != nil {
		return 0, fmt.Errorf("health check %s: %w", addr, err)
	}
	return resp.GetStatus(), nil
}

// waitReady polls url until it answers 200 or ctx ends.
func waitReady(ctx context.Context, url string) <-chan error {
	out := make(chan error, 1)
	go func() {
		client := &http.Client{Timeout: 2 * time.Second}
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		last := "no answer yet"
		for {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			resp, err := client.Do(req)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					out <- nil
					return
				}
				last = resp.Status
			} else {
				last = err.Error()
			}
			select {
			case <-ctx.Done():
				out <- fmt.Errorf("%s: last answer: %s: %w", url, last, ctx.Err())
				return
			case <-tick.C:
			}
		}
	}()
	return out
}
