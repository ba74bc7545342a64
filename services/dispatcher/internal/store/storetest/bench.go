package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dsync-dev/dsync/pkg/event"
	"github.com/dsync-dev/dsync/services/dispatcher/internal/delivery"
)

// Bench measures the store's side of the dispatcher's steady state: per
// iteration one event with a delivery to each of two endpoints is added,
// due deliveries are claimed and their attempts recorded. The second
// endpoint is healthy (the baseline), failing (each attempt fails and is
// retried an hour later, so its pending backlog grows), or dead (its
// attempts hang: the claimer holds a full queue of it and its backlog
// grows untouched). A store whose claims slow down as a failing or dead
// endpoint's backlog grows shows it here: claim_us should not move.
func Bench(b *testing.B, open func(testing.TB) delivery.Store) {
	for _, other := range []string{"healthy", "failing", "dead"} {
		b.Run(other, func(b *testing.B) { benchCycle(b, open(b), other) })
	}
}

func benchCycle(b *testing.B, s delivery.Store, other string) {
	ctx := b.Context()
	ids := event.NewIDs()
	now := time.Now().UTC().Truncate(time.Microsecond)
	endpoint := func() delivery.Endpoint {
		e := delivery.Endpoint{ID: ids.New(event.PrefixEndpoint), URL: "https://example.com/hook",
			State: delivery.EndpointEnabled, Secret: "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
			Ordering: delivery.OrderResource, CreatedAt: now, UpdatedAt: now}
		require.NoError(b, s.CreateEndpoint(ctx, e))
		return e
	}
	healthy, second := endpoint(), endpoint()
	const queueDepth = 16
	held := map[string]int{}
	if other == "dead" {
		held[second.ID] = queueDepth
	}
	var claimTime time.Duration
	b.ResetTimer()
	for i := range b.N {
		seq := uint64(i + 1) //nolint:gosec // i ≥ 0
		subject := fmt.Sprintf("dsync.ev.directory_1.user.u%d", i)
		ev := delivery.Event{ID: ids.New(event.PrefixEvent), Name: "dsync.user.created", Subject: subject, Seq: seq,
			Body: []byte(`{"object":"event"}`), CreatedAt: now}
		var ds []delivery.Delivery
		for _, e := range []delivery.Endpoint{healthy, second} {
			ds = append(ds, delivery.Delivery{ID: ids.New(event.PrefixDelivery), EndpointID: e.ID, EventID: ev.ID,
				EventName: ev.Name, Subject: subject, DirectoryID: "directory_1", Seq: seq,
				State: delivery.DeliveryPending, NextAttemptAt: now, CreatedAt: now, UpdatedAt: now})
		}
		_, err := s.AddEvent(ctx, ev, ds)
		require.NoError(b, err)

		t0 := time.Now()
		claims, err := s.ClaimDue(ctx, now, now.Add(time.Minute), 1024, queueDepth, held)
		claimTime += time.Since(t0)
		require.NoError(b, err)
		var fs []delivery.Finished
		for _, c := range claims {
			a := delivery.Attempt{DeliveryID: c.Delivery.ID, Number: c.Delivery.Attempts + 1, StartedAt: now,
				StatusCode: 204, Latency: time.Millisecond}
			o := delivery.Outcome{State: delivery.DeliverySucceeded}
			if c.Delivery.EndpointID == second.ID && other == "failing" {
				a.StatusCode, a.Error, a.ResponseBody = 500, "unexpected status 500", "internal error"
				o = delivery.Outcome{State: delivery.DeliveryPending, NextAttemptAt: now.Add(time.Hour)}
			}
			fs = append(fs, delivery.Finished{Attempt: a, Outcome: o})
		}
		_, err = s.FinishAttempts(ctx, fs)
		require.NoError(b, err)
	}
	b.ReportMetric(float64(claimTime.Microseconds())/float64(b.N), "claim_us")
}
