package delivery_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dsync-dev/dsync/pkg/event"
	"github.com/dsync-dev/dsync/services/dispatcher/internal/delivery"
	"github.com/dsync-dev/dsync/services/dispatcher/internal/sender"
	"github.com/dsync-dev/dsync/services/dispatcher/internal/store/sqlitestore"
)

// stallingStore is a real store whose claims after the first wait until
// released: a database that has become slow to answer the claim.
type stallingStore struct {
	delivery.Store
	mu       sync.Mutex
	claims   int
	released chan struct{}
	stalled  chan struct{} // closed when a claim starts waiting
	once     sync.Once
}

func (s *stallingStore) ClaimDue(ctx context.Context, now, leaseUntil time.Time, limit, perEndpoint int, held map[string]int) ([]delivery.Claim, error) {
	s.mu.Lock()
	s.claims++
	first := s.claims == 1
	s.mu.Unlock()
	if !first {
		s.once.Do(func() { close(s.stalled) })
		select {
		case <-s.released:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return s.Store.ClaimDue(ctx, now, leaseUntil, limit, perEndpoint, held)
}

// TestLanesProgressDuringSlowClaim: deliveries already claimed keep being
// sent while a claim is stuck in the store. The claim runs beside the
// lanes; were it made on the loop that starts queued attempts, a slow claim
// would hold every endpoint's queue for its duration.
func TestLanesProgressDuringSlowClaim(t *testing.T) {
	ctx := t.Context()
	real, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "dispatcher.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = real.Close() })
	store := &stallingStore{Store: real, released: make(chan struct{}), stalled: make(chan struct{})}
	var releaseOnce sync.Once
	release := func() { releaseOnce.Do(func() { close(store.released) }) }
	t.Cleanup(release)

	const n = 8
	arrived := make(chan string, n)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		arrived <- r.Header.Get("webhook-id")
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rcv.Close)

	ids := event.NewIDs()
	now := time.Now().UTC().Truncate(time.Microsecond)
	ep := delivery.Endpoint{ID: ids.New(event.PrefixEndpoint), URL: rcv.URL, State: delivery.EndpointEnabled,
		Secret: "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", Ordering: delivery.OrderResource,
		CreatedAt: now, UpdatedAt: now}
	require.NoError(t, real.CreateEndpoint(ctx, ep))
	for i := range n {
		subject := fmt.Sprintf("dsync.ev.directory_1.user.u%d", i)
		ev := delivery.Event{ID: ids.New(event.PrefixEvent), Name: "dsync.user.created", Subject: subject,
			Seq: uint64(i + 1), Body: []byte(`{}`), CreatedAt: now} //nolint:gosec // i ≥ 0
		_, err := real.AddEvent(ctx, ev, []delivery.Delivery{{ID: ids.New(event.PrefixDelivery), EndpointID: ep.ID,
			EventID: ev.ID, EventName: ev.Name, Subject: subject, DirectoryID: "directory_1", Seq: ev.Seq,
			State: delivery.DeliveryPending, NextAttemptAt: now, CreatedAt: now, UpdatedAt: now}})
		require.NoError(t, err)
	}

	// One attempt at a time: the first claim queues all n in the lane, and
	// every recorded attempt asks for another claim, which stalls.
	w := delivery.NewWorker(delivery.WorkerConfig{
		Store: store, Sender: sender.New(rcv.Client(), 5*time.Second, nil),
		Policy: delivery.Policy{Schedule: []time.Duration{time.Hour}}, PerEndpoint: 1, QueueDepth: n,
		Lease: 10 * time.Second, Poll: time.Hour,
	})
	runCtx, cancel := context.WithCancel(ctx)
	stopped := make(chan error, 1)
	go func() { stopped <- w.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		release()
		require.NoError(t, <-stopped)
	})

	select {
	case <-store.stalled:
	case <-time.After(10 * time.Second):
		t.Fatal("no second claim was made")
	}
	got := map[string]bool{}
	for len(got) < n {
		select {
		case id := <-arrived:
			got[id] = true
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d queued deliveries were sent while a claim was stuck", len(got), n)
		}
	}
	select {
	case <-store.released:
		t.Fatal("the claim was released before the deliveries arrived")
	default:
	}
}
