package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dsync-dev/dsync/pkg/event"
	"github.com/dsync-dev/dsync/services/dispatcher/internal/delivery"
)

// testDeliveriesOfEvents: every endpoint's deliveries of the events asked
// for, in event then endpoint order, each with the attempts ListAttempts
// returns; unknown and repeated ids change nothing.
func testDeliveriesOfEvents(t *testing.T, s delivery.Store) {
	f := newFixture(t, s)
	ctx := t.Context()
	a, b, c := f.endpoint(), f.endpoint(), f.endpoint()
	// Deliveries inserted out of endpoint order come back in it.
	ev1 := f.event("dsync.ev.d.user.u1", 1, base, c, a)
	ev2 := f.event("dsync.ev.d.user.u2", 2, base, b)
	f.event("dsync.ev.d.user.u3", 3, base, a, b, c) // not asked for
	toA, toC, toB := ev1[1], ev1[0], ev2[0]

	failed := delivery.Attempt{DeliveryID: toA.ID, Number: 1, StartedAt: base, StatusCode: 500,
		Error: "unexpected status 500", Latency: 1500 * time.Microsecond, ResponseBody: `{"error":"oops"}`}
	require.NoError(t, s.FinishAttempt(ctx, failed,
		delivery.Outcome{State: delivery.DeliveryPending, NextAttemptAt: base.Add(5 * time.Second)}))
	require.NoError(t, s.FinishAttempt(ctx,
		delivery.Attempt{DeliveryID: toA.ID, Number: 2, StartedAt: base.Add(5 * time.Second), StatusCode: 204, Latency: time.Millisecond},
		delivery.Outcome{State: delivery.DeliverySucceeded}))
	require.NoError(t, s.FinishAttempt(ctx,
		delivery.Attempt{DeliveryID: toB.ID, Number: 1, StartedAt: base, Error: "connection refused"},
		delivery.Outcome{State: delivery.DeliveryFailed}))

	// stored is what GetDelivery and ListAttempts say of ids, in order.
	stored := func(ids ...string) []delivery.Delivery {
		t.Helper()
		out := []delivery.Delivery{}
		for _, id := range ids {
			d, err := s.GetDelivery(ctx, id)
			require.NoError(t, err)
			d.AttemptLog, err = s.ListAttempts(ctx, id)
			require.NoError(t, err)
			out = append(out, d)
		}
		return withoutEmptyLogs(out)
	}
	of := func(eventIDs ...string) []delivery.Delivery {
		t.Helper()
		ds, err := s.DeliveriesOfEvents(ctx, eventIDs)
		require.NoError(t, err)
		return withoutEmptyLogs(ds)
	}
	unknown := f.ids.New(event.PrefixEvent)

	got := of(ev2[0].EventID, ev1[0].EventID, ev2[0].EventID, unknown)
	require.Equal(t, stored(toA.ID, toC.ID, toB.ID), got)
	require.Equal(t, []delivery.Attempt{failed}, got[0].AttemptLog[:1], "every column of an attempt")
	require.Len(t, got[0].AttemptLog, 2)
	require.Empty(t, got[1].AttemptLog, "not attempted yet")
	require.Equal(t, delivery.DeliveryFailed, got[2].State)
	require.Equal(t, 1, got[2].Attempts)

	require.Empty(t, of(unknown))
	require.Empty(t, of())

	// An endpoint's deletion takes its deliveries with it.
	require.NoError(t, s.DeleteEndpoint(ctx, a.ID))
	require.Equal(t, stored(toC.ID), of(ev1[0].EventID))
}

// withoutEmptyLogs makes an empty AttemptLog nil, as stores differ there.
func withoutEmptyLogs(ds []delivery.Delivery) []delivery.Delivery {
	out := []delivery.Delivery{}
	for _, d := range ds {
		if len(d.AttemptLog) == 0 {
			d.AttemptLog = nil
		}
		out = append(out, d)
	}
	return out
}
