package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dsync-dev/dsync/pkg/event"
	"github.com/dsync-dev/dsync/services/dispatcher/internal/delivery"
)

// eventAt adds an event created at at with a pending delivery, due and
// created at at, to each endpoint, and returns the event and deliveries.
func (f *fixture) eventAt(at time.Time, seq uint64, endpoints ...delivery.Endpoint) (delivery.Event, []delivery.Delivery) {
	f.t.Helper()
	subject := fmt.Sprintf("dsync.ev.d.user.u%d", seq)
	ev := delivery.Event{
		ID: f.ids.New(event.PrefixEvent), Name: "dsync.user.created", Subject: subject, Seq: seq,
		Body: fmt.Appendf(nil, `{"seq":%d}`, seq), CreatedAt: at,
	}
	var ds []delivery.Delivery
	for _, e := range endpoints {
		ds = append(ds, delivery.Delivery{
			ID: f.ids.New(event.PrefixDelivery), EndpointID: e.ID, EventID: ev.ID, EventName: ev.Name,
			Subject: subject, DirectoryID: event.DirectoryIDFromSubject(subject), Seq: seq, State: delivery.DeliveryPending,
			NextAttemptAt: at, CreatedAt: at, UpdatedAt: at,
		})
	}
	_, err := f.s.AddEvent(f.t.Context(), ev, ds)
	require.NoError(f.t, err)
	return ev, ds
}

// finish records attempt 1 of d, started at at, leaving d in state.
func (f *fixture) finish(d delivery.Delivery, at time.Time, state delivery.DeliveryState) {
	f.t.Helper()
	code, next := 200, time.Time{}
	if state != delivery.DeliverySucceeded {
		code = 500
	}
	if state == delivery.DeliveryPending {
		next = at.Add(1000 * time.Hour)
	}
	require.NoError(f.t, f.s.FinishAttempt(f.t.Context(),
		delivery.Attempt{DeliveryID: d.ID, Number: 1, StartedAt: at, StatusCode: code},
		delivery.Outcome{State: state, NextAttemptAt: next}))
}

// testPrune: finished deliveries past the horizon go with their attempts,
// pending ones stay whatever their age, and an old event goes once no
// delivery references it; each call stays within its limit.
func testPrune(t *testing.T, s delivery.Store) {
	f := newFixture(t, s)
	ctx := t.Context()
	horizon := base.Add(24 * time.Hour)
	recent := horizon.Add(time.Hour)
	a, b, gone := f.endpoint(), f.endpoint(), f.endpoint()

	e1, d1 := f.eventAt(base, 1, a, b) // both finished long ago: all go
	f.finish(d1[0], base.Add(time.Hour), delivery.DeliverySucceeded)
	f.finish(d1[1], base.Add(2*time.Hour), delivery.DeliveryFailed)
	e2, d2 := f.eventAt(base, 2, a) // pending, never attempted
	e3, d3 := f.eventAt(base, 3, a) // pending after a failed attempt
	f.finish(d3[0], base.Add(time.Hour), delivery.DeliveryPending)
	e4, d4 := f.eventAt(base, 4, a, b) // one finished, one pending
	f.finish(d4[0], base.Add(3*time.Hour), delivery.DeliverySucceeded)
	e5, d5 := f.eventAt(base, 5, a) // old event, recently finished (a resend)
	f.finish(d5[0], recent, delivery.DeliverySucceeded)
	e6, _ := f.eventAt(base, 6)       // old, never referenced
	e7, _ := f.eventAt(recent, 7)     // recent, never referenced
	e8, _ := f.eventAt(base, 8, gone) // old, its endpoint deleted
	require.NoError(t, s.DeleteEndpoint(ctx, gone.ID))
	e9, d9 := f.eventAt(recent, 9, a) // recent, finished
	f.finish(d9[0], recent.Add(time.Hour), delivery.DeliverySucceeded)

	// Limit 2: the three finished deliveries take two calls (oldest
	// first); the sweep examines the six old events left, two per call.
	q := delivery.PruneQuery{Before: horizon, Limit: 2}
	var total delivery.PruneResult
	var perCall []int
	for calls := 0; ; calls++ {
		require.Less(t, calls, 10, "prune never finished")
		r, err := s.Prune(ctx, q)
		require.NoError(t, err)
		require.LessOrEqual(t, r.Deliveries, 2)
		perCall = append(perCall, r.Deliveries)
		total.Deliveries += r.Deliveries
		total.Events += r.Events
		q.After = r.Next
		if !r.More {
			break
		}
	}
	require.Equal(t, []int{2, 1, 0, 0}, perCall)
	require.Equal(t, 3, total.Deliveries)
	require.Equal(t, 3, total.Events) // e1 freed, e6 and e8 swept
	require.Equal(t, base, q.After.CreatedAt, "the sweep stops at the last old event")

	for _, d := range []delivery.Delivery{d1[0], d1[1], d4[0]} {
		_, err := s.GetDelivery(ctx, d.ID)
		require.ErrorIs(t, err, delivery.ErrNotFound, d.ID)
		as, err := s.ListAttempts(ctx, d.ID)
		require.NoError(t, err)
		require.Empty(t, as, "attempts of %s", d.ID)
	}
	for _, d := range []delivery.Delivery{d2[0], d3[0], d4[1], d5[0], d9[0]} {
		_, err := s.GetDelivery(ctx, d.ID)
		require.NoError(t, err, d.ID)
	}
	as, err := s.ListAttempts(ctx, d3[0].ID)
	require.NoError(t, err)
	require.Len(t, as, 1, "a pending delivery keeps its attempts")
	for _, ev := range []delivery.Event{e1, e6, e8} {
		_, err := s.EventSeq(ctx, ev.ID)
		require.ErrorIs(t, err, delivery.ErrNotFound, ev.ID)
	}
	for _, ev := range []delivery.Event{e2, e3, e4, e5, e7, e9} {
		_, err := s.EventSeq(ctx, ev.ID)
		require.NoError(t, err, ev.ID)
	}

	// Nothing else is past the horizon, however the sweep starts.
	r, err := s.Prune(ctx, delivery.PruneQuery{Before: horizon, Limit: 100})
	require.NoError(t, err)
	require.Equal(t, delivery.PruneResult{Next: r.Next}, r)

	// Once its last delivery finishes (long ago), e4 goes with it, found
	// through the delivery although the sweep is past it.
	f.finish(d4[1], base.Add(4*time.Hour), delivery.DeliveryFailed)
	r, err = s.Prune(ctx, delivery.PruneQuery{Before: horizon, Limit: 100, After: q.After})
	require.NoError(t, err)
	require.Equal(t, delivery.PruneResult{Deliveries: 1, Events: 1, Next: q.After}, r)
	_, err = s.EventSeq(ctx, e4.ID)
	require.ErrorIs(t, err, delivery.ErrNotFound)

	// A later horizon takes what was recent.
	r, err = s.Prune(ctx, delivery.PruneQuery{Before: recent.Add(2 * time.Hour), Limit: 100})
	require.NoError(t, err)
	require.Equal(t, 2, r.Deliveries) // d5, d9
	require.Equal(t, 3, r.Events)     // e5, e7, e9
	require.False(t, r.More)
	for _, ev := range []delivery.Event{e2, e3} {
		_, err := s.EventSeq(ctx, ev.ID)
		require.NoError(t, err, "an event of a pending delivery is kept")
	}

	// A pruned event that arrives again (its stream message redelivered, or
	// the stream read again from the start) is not ingested again: its
	// webhooks were sent, and retention let them go. Sequences above the
	// highest pruned one (e9's) are ingested as ever.
	for _, again := range []delivery.Event{e1, e9} {
		n, err := s.AddEvent(ctx, again, []delivery.Delivery{{
			ID: f.ids.New(event.PrefixDelivery), EndpointID: a.ID, EventID: again.ID, EventName: again.Name,
			Subject: again.Subject, Seq: again.Seq, State: delivery.DeliveryPending,
			NextAttemptAt: recent, CreatedAt: recent, UpdatedAt: recent,
		}})
		require.NoError(t, err)
		require.Zero(t, n, "event %d", again.Seq)
		_, err = s.EventSeq(ctx, again.ID)
		require.ErrorIs(t, err, delivery.ErrNotFound, "event %d", again.Seq)
	}
	e10, d10 := f.eventAt(recent, 10, a)
	seq, err := s.EventSeq(ctx, e10.ID)
	require.NoError(t, err)
	require.Equal(t, uint64(10), seq)
	_, err = s.GetDelivery(ctx, d10[0].ID)
	require.NoError(t, err)
}
