package dispatcher_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dsync-dev/dsync/services/dispatcher"
)

// latencyReceiver records when each event id first arrived.
type latencyReceiver struct {
	*httptest.Server
	mu      sync.Mutex
	arrived map[string]time.Time
	all     chan struct{}
	want    int
}

func newLatencyReceiver(b *testing.B, want int) *latencyReceiver {
	r := &latencyReceiver{arrived: map[string]time.Time{}, all: make(chan struct{}), want: want}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		now := time.Now()
		r.mu.Lock()
		if _, ok := r.arrived[req.Header.Get("webhook-id")]; !ok {
			r.arrived[req.Header.Get("webhook-id")] = now
			if len(r.arrived) == r.want {
				close(r.all)
			}
		}
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(r.Close)
	return r
}

// BenchmarkHealthyLatency measures event → webhook received latency at a
// healthy endpoint, alone and next to an endpoint that hangs until every
// request times out (isolation: its p99 should move by less than 10%).
// Events are published at a steady pace; the figures are p50_ms, p99_ms.
func BenchmarkHealthyLatency(b *testing.B) {
	for _, withDead := range []bool{false, true} {
		name := "baseline"
		if withDead {
			name = "with_dead_endpoint"
		}
		b.Run(name, func(b *testing.B) {
			e := newEnv(b, sqliteStore(b), func(c *dispatcher.Config) {
				c.Logger = slog.New(slog.DiscardHandler)
				c.RequestTimeout = 2 * time.Second
				c.RetrySchedule = []time.Duration{time.Hour}
			})
			n := max(b.N, 200)
			healthy := newLatencyReceiver(b, n)
			e.createEndpoint(healthy.URL)
			if withDead {
				release := make(chan struct{})
				dead := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					_, _ = io.Copy(io.Discard, r.Body)
					select {
					case <-release:
					case <-r.Context().Done():
					}
				}))
				b.Cleanup(dead.Close)
				b.Cleanup(func() { close(release) })
				e.createEndpoint(dead.URL)
			}
			sent := make(map[string]time.Time, n)
			b.ResetTimer()
			pace := time.NewTicker(2 * time.Millisecond) // 500 events/s
			defer pace.Stop()
			for range n {
				<-pace.C
				ev := e.userCreated()
				sent[ev.GetId()] = time.Now()
			}
			select {
			case <-healthy.all:
			case <-time.After(time.Minute):
				b.Fatal("the healthy endpoint did not get every event")
			}
			b.StopTimer()
			healthy.mu.Lock()
			lat := make([]time.Duration, 0, n)
			for id, at := range healthy.arrived {
				lat = append(lat, at.Sub(sent[id]))
			}
			healthy.mu.Unlock()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50_ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99_ms")
		})
	}
}

// BenchmarkThroughput measures deliveries per second to four healthy
// loopback endpoints.
func BenchmarkThroughput(b *testing.B) {
	e := newEnv(b, sqliteStore(b), func(c *dispatcher.Config) { c.Logger = slog.New(slog.DiscardHandler) })
	n := max(b.N, 250)
	var rcvs []*latencyReceiver
	for range 4 {
		r := newLatencyReceiver(b, n)
		e.createEndpoint(r.URL)
		rcvs = append(rcvs, r)
	}
	b.ResetTimer()
	start := time.Now()
	for range n {
		e.userCreated()
	}
	for _, r := range rcvs {
		select {
		case <-r.all:
		case <-time.After(2 * time.Minute):
			b.Fatal("not every delivery arrived")
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(4*n)/time.Since(start).Seconds(), "deliveries/s")
}
