package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dsync-dev/dsync/services/dsync/internal/app"
)

// BenchmarkSCIMCreateUser measures POST /Users on `dsync dev` end to end:
// HTTP, authentication, normalization, and the durable atomic append of the
// userName claim with the event. It reports latency percentiles; run with
// -cpu to vary client concurrency (each CPU value runs that many clients).
func BenchmarkSCIMCreateUser(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := app.Config{
		Target: app.TargetAll, Dev: true, HTTPAddr: "127.0.0.1:0", DataDir: b.TempDir(),
		ProjectorGRPCAddr: "127.0.0.1:0", DispatcherGRPCAddr: "127.0.0.1:0",
		Demo: true, LogLevel: "error", LogFormat: "text",
	}
	sys, err := app.Start(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	defer func() { cancel(); _ = sys.Wait() }()
	endpoint, token := sys.Demo.SCIMEndpoint+"/Users", sys.Demo.BearerToken
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	liftRateLimit(b, client, sys)

	var (
		n         atomic.Int64
		mu        sync.Mutex
		latencies []time.Duration
	)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var local []time.Duration
		for pb.Next() {
			i := n.Add(1)
			body, _ := json.Marshal(map[string]any{
				"schemas":  []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
				"userName": fmt.Sprintf("bench.user.%d@example.com", i),
				"name":     map[string]string{"givenName": "Bench", "familyName": fmt.Sprint(i)},
				"emails":   []map[string]any{{"primary": true, "type": "work", "value": fmt.Sprintf("bench.user.%d@example.com", i)}},
				"active":   true,
			})
			req, _ := http.NewRequest(http.MethodPost, endpoint, bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", "application/scim+json")
			start := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
			local = append(local, time.Since(start))
		}
		mu.Lock()
		latencies = append(latencies, local...)
		mu.Unlock()
	})
	b.StopTimer()
	if len(latencies) == 0 {
		return
	}
	slices.Sort(latencies)
	pct := func(p float64) float64 {
		return float64(latencies[int(float64(len(latencies)-1)*p)].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(len(latencies))/b.Elapsed().Seconds(), "creates/s")
}

// liftRateLimit raises the demo directory's SCIM rate limit (default 100/s)
// so the benchmark measures the write path, not the limiter's 429s.
func liftRateLimit(b *testing.B, client *http.Client, sys *app.System) {
	b.Helper()
	req, _ := http.NewRequest(http.MethodPatch, sys.HTTPURL+"/directories/"+sys.Demo.DirectoryID,
		bytes.NewReader([]byte(`{"rate_limit_per_second": 100000}`)))
	req.Header.Set("Authorization", "Bearer "+sys.APIKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		b.Fatalf("lift rate limit: %d %s", resp.StatusCode, body)
	}
}
