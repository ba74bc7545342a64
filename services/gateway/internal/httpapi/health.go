package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"google.golang.org/grpc/health/grpc_health_v1"

	"github.com/dsync-dev/dsync/pkg/event"
)

const healthTimeout = 2 * time.Second

type healthResponse struct {
	Status string `json:"status"`
	// Checks names each failed check and why; absent when all pass.
	Checks map[string]string `json:"checks,omitempty"`
}

// healthz reports whether the gateway can serve: NATS connected, the event
// stream present, the projector and the dispatcher SERVING. It needs no
// auth and says only which dependency failed, nothing about data.
func (s *server) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
	defer cancel()
	checks := map[string]func(context.Context) error{
		"nats": func(context.Context) error {
			if !s.NATS.IsConnected() {
				return fmt.Errorf("not connected (%s)", s.NATS.Status())
			}
			return nil
		},
		"stream": func(ctx context.Context) error {
			_, err := s.JS.Stream(ctx, event.Stream)
			return err
		},
		"projector":  grpcHealth(s.DirectoryHealth),
		"dispatcher": grpcHealth(s.WebhookHealth),
	}
	var mu sync.Mutex
	failed := map[string]string{}
	var wg sync.WaitGroup
	for name, check := range checks {
		wg.Go(func() {
			if err := check(ctx); err != nil {
				mu.Lock()
				failed[name] = err.Error()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(failed) > 0 {
		writeJSON(w, http.StatusServiceUnavailable, healthResponse{Status: "unavailable", Checks: failed})
		return
	}
	writeJSON(w, http.StatusOK, healthResponse{Status: "ok"})
}

func grpcHealth(c grpc_health_v1.HealthClient) func(context.Context) error {
	return func(ctx context.Context) error {
		resp, err := c.Check(ctx, &grpc_health_v1.HealthCheckRequest{Service: ""})
		if err != nil {
			return err
		}
		if st := resp.GetStatus(); st != grpc_health_v1.HealthCheckResponse_SERVING {
			return fmt.Errorf("status %s", st)
		}
		return nil
	}
}
