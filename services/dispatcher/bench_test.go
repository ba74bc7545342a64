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

	"github.com/stretchr/testify/require"

	"github.com/dsync-dev/dsync/pkg/event"
	"github.com/dsync-dev/dsync/pkg/pgtest"
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

func newLatencyReceiver(b testing.TB, want int) *latencyReceiver {
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

// The second endpoint of the isolation benchmark.
const (
	otherNone    = "one_endpoint"       // the healthy endpoint alone
	otherHealthy = "baseline"           // a second, healthy endpoint
	otherDead    = "with_dead_endpoint" // one that hangs until every request times out
	otherFailing = "with_failing_endpoint"
)

// latencyRun publishes n events at rate per second to a fresh dispatcher
// with a healthy endpoint and the other one, and returns the healthy
// endpoint's event → webhook received latencies, sorted.
func latencyRun(b *testing.B, store option, other string, n int, every time.Duration) []time.Duration {
	e := newEnv(b, store, func(c *dispatcher.Config) {
		c.Logger = slog.New(slog.DiscardHandler)
		// Short, so that the dead endpoint keeps timing out, freeing its
		// slots and having its backlog claimed during the run.
		c.RequestTimeout = 250 * time.Millisecond
		c.RetrySchedule = []time.Duration{time.Hour}
	})
	healthy := newLatencyReceiver(b, n)
	e.createEndpoint(healthy.URL)
	switch other {
	case otherHealthy:
		e.createEndpoint(newLatencyReceiver(b, n).URL)
	case otherDead:
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
	case otherFailing:
		e.createEndpoint(newReceiver(b, always(http.StatusInternalServerError)).URL)
	}
	sent := make(map[string]time.Time, n)
	pace := time.NewTicker(every)
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
	e.stop()
	healthy.mu.Lock()
	defer healthy.mu.Unlock()
	lat := make([]time.Duration, 0, n)
	for id, at := range healthy.arrived {
		lat = append(lat, at.Sub(sent[id]))
	}
	slices.Sort(lat)
	return lat
}

func quantileMS(sorted []time.Duration, q float64) float64 {
	return float64(sorted[int(float64(len(sorted)-1)*q)].Microseconds()) / 1000
}

func median(xs []float64) float64 {
	xs = slices.Clone(xs)
	slices.Sort(xs)
	return xs[len(xs)/2]
}

// BenchmarkHealthyLatency measures event → webhook received latency at a
// healthy endpoint at 1,000 events/s (b.N events per run, at least 1,000),
// next to a second endpoint that is healthy (the baseline), dead (hangs
// until each request times out) or failing (answers 500), and alone.
// Isolation: with the dead or failing endpoint the healthy endpoint's p99
// should move by less than 10% from the baseline. The variants run in turns,
// three rounds, so that a noisy neighbour on the machine hits them alike;
// the figures are the medians of the rounds and the ratio of each p99 to
// the baseline's.
func BenchmarkHealthyLatency(b *testing.B) {
	stores := map[string]func(testing.TB) option{
		"sqlite": sqliteStore,
		"postgres": func(t testing.TB) option {
			url := pgtest.NewDatabase(t)
			return func(c *dispatcher.Config) { c.PostgresURL = url }
		},
	}
	for _, storeName := range []string{"sqlite", "postgres"} {
		b.Run(storeName, func(b *testing.B) {
			n := max(b.N, 1000)
			others := []string{otherHealthy, otherDead, otherFailing, otherNone}
			p50s, p99s := map[string][]float64{}, map[string][]float64{}
			for range 3 {
				for _, other := range others {
					lat := latencyRun(b, stores[storeName](b), other, n, time.Millisecond)
					p50s[other] = append(p50s[other], quantileMS(lat, 0.5))
					p99s[other] = append(p99s[other], quantileMS(lat, 0.99))
				}
			}
			base := median(p99s[otherHealthy])
			for _, other := range others {
				b.ReportMetric(median(p50s[other]), other+"_p50_ms")
				b.ReportMetric(median(p99s[other]), other+"_p99_ms")
				if other != otherHealthy {
					b.ReportMetric(median(p99s[other])/base, other+"_p99_ratio")
				}
			}
			b.Logf("p99 per round (ms): %v", p99s)
		})
	}
}

// BenchmarkThroughput measures deliveries per second to four healthy
// loopback endpoints, on each store.
func BenchmarkThroughput(b *testing.B) {
	for _, storeName := range []string{"sqlite", "postgres"} {
		b.Run(storeName, func(b *testing.B) {
			store := sqliteStore(b)
			if storeName == "postgres" {
				url := pgtest.NewDatabase(b)
				store = func(c *dispatcher.Config) { c.PostgresURL = url }
			}
			e := newEnv(b, store, func(c *dispatcher.Config) { c.Logger = slog.New(slog.DiscardHandler) })
			n := max(b.N, 1000)
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
		})
	}
}

// BenchmarkPublishWithDeadEndpoint measures what the SCIM gateway waits
// for when it writes: the JetStream publish of the event (the gateway
// acknowledges a SCIM write once its event is in the stream), with no
// endpoint and with one dead endpoint (every request hangs until it times
// out) that already has a backlog of queued deliveries. The dispatcher
// acknowledges stream messages once their deliveries are stored, so the
// publish latency must not move; the figures are p50/p99 over b.N
// publishes (at least 500) after a backlog of 2,000 events, and the time
// for the dispatcher to ingest everything (consumer caught up).
func BenchmarkPublishWithDeadEndpoint(b *testing.B) {
	for _, storeName := range []string{"sqlite", "postgres"} {
		for _, variant := range []string{"no_endpoint", "dead_endpoint"} {
			b.Run(storeName+"/"+variant, func(b *testing.B) {
				store := sqliteStore(b)
				if storeName == "postgres" {
					url := pgtest.NewDatabase(b)
					store = func(c *dispatcher.Config) { c.PostgresURL = url }
				}
				e := newEnv(b, store, func(c *dispatcher.Config) {
					c.Logger = slog.New(slog.DiscardHandler)
					c.RequestTimeout = time.Second
					c.RetrySchedule = []time.Duration{time.Hour}
				})
				if variant == "dead_endpoint" {
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
				for range 2000 { // the dead endpoint's backlog
					e.userCreated()
				}
				n := max(b.N, 500)
				lat := make([]time.Duration, 0, n)
				b.ResetTimer()
				start := time.Now()
				for range n {
					t0 := time.Now()
					e.userCreated()
					lat = append(lat, time.Since(t0))
				}
				cons, err := e.js.Consumer(b.Context(), event.Stream, dispatcher.DefaultConsumerName)
				require.NoError(b, err)
				require.Eventually(b, func() bool {
					info, err := cons.Info(b.Context())
					return err == nil && info.NumPending == 0 && info.NumAckPending == 0
				}, 2*time.Minute, 10*time.Millisecond, "the dispatcher did not ingest every event")
				b.StopTimer()
				slices.Sort(lat)
				b.ReportMetric(quantileMS(lat, 0.5), "publish_p50_ms")
				b.ReportMetric(quantileMS(lat, 0.99), "publish_p99_ms")
				b.ReportMetric(float64(time.Since(start).Milliseconds()), "ingested_all_ms")
			})
		}
	}
}
