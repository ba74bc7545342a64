package delivery_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dsync-dev/dsync/pkg/event"
	"github.com/dsync-dev/dsync/services/dispatcher/internal/delivery"
	"github.com/dsync-dev/dsync/services/dispatcher/internal/store/sqlitestore"
)

// logFixture is a real SQLite store with helpers to fill it.
type logFixture struct {
	t   *testing.T
	s   *sqlitestore.Store
	ids *event.IDs
	seq uint64
}

func newLogFixture(t *testing.T) *logFixture {
	s, err := sqlitestore.Open(t.Context(), filepath.Join(t.TempDir(), "dispatcher.db"))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return &logFixture{t: t, s: s, ids: event.NewIDs()}
}

func (f *logFixture) endpoint(at time.Time) delivery.Endpoint {
	f.t.Helper()
	e := delivery.Endpoint{ID: f.ids.New(event.PrefixEndpoint), URL: "https://example.com/hook", State: delivery.EndpointEnabled,
		Secret: "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", Ordering: delivery.OrderResource, CreatedAt: at, UpdatedAt: at}
	require.NoError(f.t, f.s.CreateEndpoint(f.t.Context(), e))
	return e
}

// event stores an event created at at with a pending delivery to each of
// endpoints.
func (f *logFixture) event(at time.Time, endpoints ...delivery.Endpoint) (delivery.Event, []delivery.Delivery) {
	f.t.Helper()
	f.seq++
	subject := fmt.Sprintf("dsync.ev.d.user.u%d", f.seq)
	ev := delivery.Event{ID: f.ids.New(event.PrefixEvent), Name: "dsync.user.created", Subject: subject, Seq: f.seq,
		Body: []byte(`{}`), CreatedAt: at}
	var ds []delivery.Delivery
	for _, e := range endpoints {
		ds = append(ds, delivery.Delivery{ID: f.ids.New(event.PrefixDelivery), EndpointID: e.ID, EventID: ev.ID,
			EventName: ev.Name, Subject: subject, Seq: f.seq, State: delivery.DeliveryPending,
			NextAttemptAt: at, CreatedAt: at, UpdatedAt: at})
	}
	_, err := f.s.AddEvent(f.t.Context(), ev, ds)
	require.NoError(f.t, err)
	return ev, ds
}

// finish records an attempt of d at at that leaves it in state.
func (f *logFixture) finish(d delivery.Delivery, at time.Time, state delivery.DeliveryState) {
	f.t.Helper()
	o := delivery.Outcome{State: state}
	if state == delivery.DeliveryPending {
		o.NextAttemptAt = at.Add(time.Hour)
	}
	require.NoError(f.t, f.s.FinishAttempt(f.t.Context(), delivery.Attempt{DeliveryID: d.ID, Number: 1, StartedAt: at, StatusCode: 500}, o))
}

func (f *logFixture) stored(ev delivery.Event) bool {
	f.t.Helper()
	_, err := f.s.EventSeq(f.t.Context(), ev.ID)
	if errors.Is(err, delivery.ErrNotFound) {
		return false
	}
	require.NoError(f.t, err)
	return true
}

func (f *logFixture) exists(d delivery.Delivery) bool {
	f.t.Helper()
	_, err := f.s.GetDelivery(f.t.Context(), d.ID)
	if errors.Is(err, delivery.ErrNotFound) {
		return false
	}
	require.NoError(f.t, err)
	return true
}

// clock is an injected Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// TestPrunerPass: a pass deletes, in batches, the finished deliveries and
// events past the retention, keeps pending deliveries and their events, and
// its sweep resumes where the last pass stopped until SweepRestart.
func TestPrunerPass(t *testing.T) {
	f := newLogFixture(t)
	a, b := f.endpoint(t0), f.endpoint(t0)
	ev1, d1 := f.event(t0, a, b)
	f.finish(d1[0], t0.Add(time.Minute), delivery.DeliverySucceeded)
	f.finish(d1[1], t0.Add(2*time.Minute), delivery.DeliveryFailed)
	ev2, d2 := f.event(t0, a) // pending: kept however old
	f.finish(d2[0], t0.Add(time.Minute), delivery.DeliveryPending)
	ev3, _ := f.event(t0) // no endpoint subscribed
	ev4, d4 := f.event(t0.Add(time.Minute), a, b)
	f.finish(d4[0], t0.Add(3*time.Minute), delivery.DeliverySucceeded)
	f.finish(d4[1], t0.Add(3*time.Minute), delivery.DeliverySucceeded)
	ev5, d5 := f.event(t0.Add(30*time.Hour), a) // recent at the first pass
	f.finish(d5[0], t0.Add(30*time.Hour), delivery.DeliverySucceeded)

	clk := &clock{now: t0.Add(48 * time.Hour)}
	var batches []delivery.PruneResult
	p := delivery.NewPruner(delivery.PrunerConfig{
		Store: f.s, Retention: 24 * time.Hour, Batch: 2, Now: clk.Now,
		Observe: func(_ context.Context, r delivery.PruneResult) { batches = append(batches, r) },
	})

	r, err := p.Pass(t.Context())
	require.NoError(t, err)
	require.Equal(t, 4, r.Deliveries)
	require.Equal(t, 3, r.Events) // ev1, ev3, ev4
	require.Greater(t, len(batches), 1, "two per batch")
	sum := delivery.PruneResult{}
	for _, b := range batches {
		require.LessOrEqual(t, b.Deliveries, 2)
		sum.Deliveries += b.Deliveries
		sum.Events += b.Events
	}
	require.Equal(t, r.Deliveries, sum.Deliveries)
	require.Equal(t, r.Events, sum.Events)
	for _, d := range append(d1, d4...) {
		require.False(t, f.exists(d), d.ID)
	}
	require.True(t, f.exists(d2[0]))
	require.True(t, f.exists(d5[0]))
	require.False(t, f.stored(ev1))
	require.True(t, f.stored(ev2))
	require.False(t, f.stored(ev3))
	require.False(t, f.stored(ev4))
	require.True(t, f.stored(ev5))

	// ev2 loses its delivery with its endpoint: it is behind the sweep, so
	// the next passes leave it until the sweep starts over. ev5 crosses the
	// horizon and goes with its delivery.
	require.NoError(t, f.s.DeleteEndpoint(t.Context(), a.ID))
	clk.set(t0.Add(60 * time.Hour))
	r, err = p.Pass(t.Context())
	require.NoError(t, err)
	require.Equal(t, 0, r.Deliveries) // d5 went with endpoint a
	require.Equal(t, 1, r.Events)     // ev5, found by the sweep
	require.False(t, f.stored(ev5))
	require.True(t, f.stored(ev2), "the sweep resumes, it does not rescan")

	clk.set(t0.Add(72 * time.Hour)) // 24h after the first pass
	r, err = p.Pass(t.Context())
	require.NoError(t, err)
	require.Equal(t, delivery.PruneResult{Events: 1, Next: r.Next}, r)
	require.False(t, f.stored(ev2))
}

// failingStore is a real store whose first prunes fail.
type failingStore struct {
	delivery.Store
	mu    sync.Mutex
	fails int
	calls int
}

var errDown = errors.New("database down")

func (s *failingStore) Prune(ctx context.Context, q delivery.PruneQuery) (delivery.PruneResult, error) {
	s.mu.Lock()
	s.calls++
	fail := s.calls <= s.fails
	s.mu.Unlock()
	if fail {
		return delivery.PruneResult{}, errDown
	}
	return s.Store.Prune(ctx, q)
}

// syncBuffer is a log destination safe for the pruner's goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// TestPrunerRun: Run prunes every tick, logs a failure at Warn and what it
// removed at Info, retries after a failure, and returns nil when ctx ends;
// with a negative retention it returns at once.
func TestPrunerRun(t *testing.T) {
	tests := []struct {
		name      string
		retention time.Duration
		fails     int
		wantLogs  []string
		pruned    bool
	}{
		{name: "prunes", retention: time.Hour, wantLogs: []string{"level=INFO msg=\"delivery log pruned\" deliveries=1 events=1"}, pruned: true},
		{name: "retries after a failure", retention: time.Hour, fails: 2,
			wantLogs: []string{"level=WARN", errDown.Error(), "msg=\"delivery log pruned\""}, pruned: true},
		{name: "forever", retention: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newLogFixture(t)
			ep := f.endpoint(t0)
			ev, ds := f.event(t0, ep)
			f.finish(ds[0], t0, delivery.DeliverySucceeded)
			store := &failingStore{Store: f.s, fails: tt.fails}
			var logs syncBuffer
			p := delivery.NewPruner(delivery.PrunerConfig{
				Store: store, Retention: tt.retention, Every: 10 * time.Millisecond,
				Now: func() time.Time { return t0.Add(2 * time.Hour) },
				Log: slog.New(slog.NewTextHandler(&logs, nil)),
			})
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() { done <- p.Run(ctx) }()
			if tt.pruned {
				// The pass logs after it has pruned: wait for the log.
				require.Eventually(t, func() bool {
					return strings.Contains(logs.String(), "delivery log pruned")
				}, 10*time.Second, 10*time.Millisecond)
				require.False(t, f.stored(ev))
			}
			cancel()
			select {
			case err := <-done:
				require.NoError(t, err)
			case <-time.After(10 * time.Second):
				t.Fatal("pruner did not stop")
			}
			for _, want := range tt.wantLogs {
				require.Contains(t, logs.String(), want)
			}
			if !tt.pruned {
				require.True(t, f.stored(ev))
				require.Zero(t, store.calls)
			}
		})
	}
}
