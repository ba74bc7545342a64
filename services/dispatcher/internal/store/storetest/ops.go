package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dsync-dev/dsync/pkg/event"
	"github.com/dsync-dev/dsync/services/dispatcher/internal/delivery"
)

func testUpdateEndpoint(t *testing.T, s delivery.Store) {
	f := newFixture(t, s)
	ctx := t.Context()
	e := f.endpoint()
	other := f.endpoint()
	ds := f.event("dsync.ev.d.user.a", 1, base, e, other)

	upd := e
	upd.URL = "https://example.org/v2"
	upd.Events = []string{"dsync.user.updated"}
	upd.Description = "billing"
	upd.RetrySchedule = []time.Duration{time.Second, 90 * time.Second}
	upd.Ordering = delivery.OrderDirectory
	upd.PreviousSecret, upd.Secret = e.Secret, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	upd.PreviousSecretExpiresAt = base.Add(24 * time.Hour)
	upd.UpdatedAt = base.Add(time.Minute)
	upd.State = delivery.EndpointDisabled // not written by UpdateEndpoint
	require.NoError(t, s.UpdateEndpoint(ctx, upd))
	got, err := s.GetEndpoint(ctx, e.ID)
	require.NoError(t, err)
	upd.State = delivery.EndpointEnabled
	require.Equal(t, upd, got)

	missing := upd
	missing.ID = f.ids.New(event.PrefixEndpoint)
	require.ErrorIs(t, s.UpdateEndpoint(ctx, missing), delivery.ErrNotFound)

	// The previous secret is claimed only within its grace period.
	claims, err := s.ClaimDue(ctx, base.Add(time.Hour), base.Add(2*time.Hour), 10, 10, nil)
	require.NoError(t, err)
	require.Len(t, claims, 2)
	for _, c := range claims {
		if c.Delivery.EndpointID == e.ID {
			require.Equal(t, upd.Secret, c.Secret)
			require.Equal(t, e.Secret, c.PreviousSecret)
			require.Equal(t, upd.RetrySchedule, c.Schedule)
		} else {
			require.Empty(t, c.PreviousSecret)
			require.Nil(t, c.Schedule)
		}
	}
	require.NoError(t, s.FinishAttempt(ctx, delivery.Attempt{DeliveryID: ds[0].ID, Number: 1, StartedAt: base.Add(time.Hour), StatusCode: 500},
		delivery.Outcome{State: delivery.DeliveryPending, NextAttemptAt: base.Add(25 * time.Hour)}))
	require.NoError(t, s.FinishAttempt(ctx, delivery.Attempt{DeliveryID: ds[1].ID, Number: 1, StartedAt: base.Add(time.Hour), StatusCode: 200},
		delivery.Outcome{State: delivery.DeliverySucceeded}))
	claims, err = s.ClaimDue(ctx, base.Add(25*time.Hour), base.Add(26*time.Hour), 10, 10, nil)
	require.NoError(t, err)
	require.Len(t, claims, 1)
	require.Empty(t, claims[0].PreviousSecret, "grace period over")

	// Deleting removes the endpoint with its deliveries and attempts.
	require.NoError(t, s.DeleteEndpoint(ctx, e.ID))
	_, err = s.GetEndpoint(ctx, e.ID)
	require.ErrorIs(t, err, delivery.ErrNotFound)
	_, err = s.GetDelivery(ctx, ds[0].ID)
	require.ErrorIs(t, err, delivery.ErrNotFound)
	attempts, err := s.ListAttempts(ctx, ds[0].ID)
	require.NoError(t, err)
	require.Empty(t, attempts)
	_, err = s.GetDelivery(ctx, ds[1].ID)
	require.NoError(t, err, "other endpoints keep theirs")
	require.ErrorIs(t, s.DeleteEndpoint(ctx, e.ID), delivery.ErrNotFound)
}

func testEndpointState(t *testing.T, s delivery.Store) {
	f := newFixture(t, s)
	ctx := t.Context()
	e := f.endpoint()
	a := f.event("dsync.ev.d.user.a", 5, base, e)
	f.event("dsync.ev.d.user.b", 9, base, e)

	// A failure starts the failing run; a later failure keeps its start.
	claims, err := s.ClaimDue(ctx, base, base.Add(time.Minute), 10, 10, nil)
	require.NoError(t, err)
	require.Len(t, claims, 2)
	require.True(t, claims[0].FailingSince.IsZero())
	t1 := base.Add(time.Second)
	require.NoError(t, s.FinishAttempt(ctx, delivery.Attempt{DeliveryID: a[0].ID, Number: 1, StartedAt: t1, StatusCode: 500},
		delivery.Outcome{State: delivery.DeliveryPending, NextAttemptAt: base.Add(time.Hour)}))
	require.NoError(t, s.FinishAttempt(ctx, delivery.Attempt{DeliveryID: claims[1].Delivery.ID, Number: 1, StartedAt: t1.Add(time.Second), StatusCode: 500},
		delivery.Outcome{State: delivery.DeliveryPending, NextAttemptAt: base.Add(time.Hour)}))
	got, err := s.GetEndpoint(ctx, e.ID)
	require.NoError(t, err)
	require.Equal(t, t1, got.FailingSince)
	claims, err = s.ClaimDue(ctx, base.Add(time.Hour), base.Add(2*time.Hour), 1, 10, nil)
	require.NoError(t, err)
	require.Equal(t, t1, claims[0].FailingSince)

	// Disabling by the worker records why and where the stream was.
	require.NoError(t, s.FinishAttempt(ctx, delivery.Attempt{DeliveryID: claims[0].Delivery.ID, Number: 2, StartedAt: base.Add(time.Hour), StatusCode: 500},
		delivery.Outcome{State: delivery.DeliveryPending, NextAttemptAt: base.Add(2 * time.Hour), DisableEndpoint: true, DisableReason: "failing"}))
	got, err = s.GetEndpoint(ctx, e.ID)
	require.NoError(t, err)
	require.Equal(t, delivery.EndpointDisabled, got.State)
	require.Equal(t, "failing", got.DisabledReason)
	require.Equal(t, uint64(9), got.DisabledSeq)

	// Enabling clears that and resumes pending deliveries now, in a fresh
	// retry round.
	resume := base.Add(3 * time.Hour)
	require.NoError(t, s.SetEndpointState(ctx, e.ID, delivery.EndpointEnabled, "", resume))
	got, err = s.GetEndpoint(ctx, e.ID)
	require.NoError(t, err)
	require.Equal(t, delivery.EndpointEnabled, got.State)
	require.Empty(t, got.DisabledReason)
	require.Zero(t, got.DisabledSeq)
	require.True(t, got.FailingSince.IsZero())
	d, err := s.GetDelivery(ctx, a[0].ID)
	require.NoError(t, err)
	require.Equal(t, resume, d.NextAttemptAt)
	require.Equal(t, d.Attempts, d.RoundStart)

	// A success ends the failing run.
	claims, err = s.ClaimDue(ctx, resume, resume.Add(time.Minute), 1, 10, nil)
	require.NoError(t, err)
	require.NoError(t, s.FinishAttempt(ctx, delivery.Attempt{DeliveryID: claims[0].Delivery.ID, Number: claims[0].Delivery.Attempts + 1, StartedAt: resume, StatusCode: 500},
		delivery.Outcome{State: delivery.DeliveryPending, NextAttemptAt: resume.Add(time.Hour)}))
	got, err = s.GetEndpoint(ctx, e.ID)
	require.NoError(t, err)
	require.Equal(t, resume, got.FailingSince)
	require.NoError(t, s.FinishAttempt(ctx, delivery.Attempt{DeliveryID: claims[0].Delivery.ID, Number: claims[0].Delivery.Attempts + 2, StartedAt: resume, StatusCode: 200},
		delivery.Outcome{State: delivery.DeliverySucceeded}))
	got, err = s.GetEndpoint(ctx, e.ID)
	require.NoError(t, err)
	require.True(t, got.FailingSince.IsZero())
}

func testClaimDirectoryOrder(t *testing.T, s delivery.Store) {
	f := newFixture(t, s)
	ctx := t.Context()
	strict, loose := f.endpoint(), f.endpoint()
	strict.Ordering = delivery.OrderDirectory
	require.NoError(t, s.UpdateEndpoint(ctx, strict))
	first := f.event("dsync.ev.d1.user.a", 1, base, strict, loose)
	second := f.event("dsync.ev.d1.user.b", 2, base, strict, loose)
	otherDir := f.event("dsync.ev.d2.user.c", 3, base, strict, loose)

	claims, err := s.ClaimDue(ctx, base, base.Add(time.Minute), 10, 10, nil)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{first[0].ID, otherDir[0].ID, first[1].ID, second[1].ID, otherDir[1].ID}, claimIDs(claims),
		"a directory-ordered endpoint holds a directory's later events back; others only per resource")
	require.NoError(t, s.FinishAttempt(ctx, delivery.Attempt{DeliveryID: first[0].ID, Number: 1, StartedAt: base, StatusCode: 200},
		delivery.Outcome{State: delivery.DeliverySucceeded}))
	claims, err = s.ClaimDue(ctx, base, base.Add(time.Minute), 10, 10, nil)
	require.NoError(t, err)
	require.Equal(t, []string{second[0].ID}, claimIDs(claims))
}

func testScheduleAndRecover(t *testing.T, s delivery.Store) {
	f := newFixture(t, s)
	ctx := t.Context()
	e := f.endpoint()
	var evs [][]delivery.Delivery
	for i := range 4 {
		evs = append(evs, f.event(fmt.Sprintf("dsync.ev.d.user.u%d", i), uint64(10+i), base, e))
	}

	// Events in stream order, after a sequence and not before a time.
	list, err := s.Events(ctx, delivery.EventQuery{AfterSeq: 11, Limit: 10})
	require.NoError(t, err)
	require.Len(t, list, 2)
	require.Equal(t, evs[2][0].EventID, list[0].ID)
	require.Equal(t, uint64(12), list[0].Seq)
	require.Equal(t, "dsync.user.created", list[0].Name)
	require.Equal(t, "dsync.ev.d.user.u2", list[0].Subject)
	list, err = s.Events(ctx, delivery.EventQuery{Since: base.Add(time.Second), Limit: 10})
	require.NoError(t, err)
	require.Empty(t, list)
	list, err = s.Events(ctx, delivery.EventQuery{Since: base, Limit: 3})
	require.NoError(t, err)
	require.Len(t, list, 3)

	seq, err := s.EventSeq(ctx, evs[1][0].EventID)
	require.NoError(t, err)
	require.Equal(t, uint64(11), seq)
	_, err = s.EventSeq(ctx, f.ids.New(event.PrefixEvent))
	require.ErrorIs(t, err, delivery.ErrNotFound)

	// Two fail for good, one succeeds.
	for i, st := range []delivery.DeliveryState{delivery.DeliveryFailed, delivery.DeliveryFailed, delivery.DeliverySucceeded} {
		require.NoError(t, s.FinishAttempt(ctx, delivery.Attempt{DeliveryID: evs[i][0].ID, Number: 3, StartedAt: base, StatusCode: 500},
			delivery.Outcome{State: st}))
	}
	backlog, err := s.Backlog(ctx)
	require.NoError(t, err)
	require.Equal(t, map[string]int64{e.ID: 1}, backlog)

	at := base.Add(time.Hour)
	n, err := s.RecoverFailed(ctx, e.ID, base, at)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	d, err := s.GetDelivery(ctx, evs[0][0].ID)
	require.NoError(t, err)
	require.Equal(t, delivery.DeliveryPending, d.State)
	require.Equal(t, at, d.NextAttemptAt)
	require.Equal(t, 3, d.RoundStart)
	n, err = s.RecoverFailed(ctx, e.ID, base, at)
	require.NoError(t, err)
	require.Zero(t, n)

	// Without reset existing deliveries are kept; with reset the succeeded
	// one is pending again; a missing one is inserted either way.
	other := f.endpoint()
	fresh := evs[3][0]
	fresh.ID, fresh.EndpointID = f.ids.New(event.PrefixDelivery), other.ID
	again := evs[2][0]
	again.ID = f.ids.New(event.PrefixDelivery)
	n, err = s.ScheduleDeliveries(ctx, []delivery.Delivery{again, fresh}, false, at)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	d, err = s.GetDelivery(ctx, evs[2][0].ID)
	require.NoError(t, err)
	require.Equal(t, delivery.DeliverySucceeded, d.State)
	n, err = s.ScheduleDeliveries(ctx, []delivery.Delivery{again}, true, at)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	d, err = s.GetDelivery(ctx, evs[2][0].ID)
	require.NoError(t, err)
	require.Equal(t, delivery.DeliveryPending, d.State)
	require.Equal(t, at, d.NextAttemptAt)
	require.Equal(t, 3, d.RoundStart)
	backlog, err = s.Backlog(ctx)
	require.NoError(t, err)
	require.Equal(t, map[string]int64{e.ID: 4, other.ID: 1}, backlog)
}

func testListDeliveriesFilter(t *testing.T, s delivery.Store) {
	f := newFixture(t, s)
	ctx := t.Context()
	e := f.endpoint()
	a := f.event("dsync.ev.d.user.a", 1, base, e)
	b := f.event("dsync.ev.d.user.b", 2, base, e)
	require.NoError(t, s.FinishAttempt(ctx, delivery.Attempt{DeliveryID: a[0].ID, Number: 1, StartedAt: base, StatusCode: 200},
		delivery.Outcome{State: delivery.DeliverySucceeded}))
	list := func(fl delivery.DeliveryFilter) []string {
		t.Helper()
		ds, err := s.ListDeliveries(ctx, e.ID, fl, delivery.ListQuery{Limit: 10})
		require.NoError(t, err)
		return claimIDs(func() []delivery.Claim {
			var cs []delivery.Claim
			for _, d := range ds {
				cs = append(cs, delivery.Claim{Delivery: d})
			}
			return cs
		}())
	}
	require.Equal(t, []string{a[0].ID}, list(delivery.DeliveryFilter{State: delivery.DeliverySucceeded}))
	require.Equal(t, []string{b[0].ID}, list(delivery.DeliveryFilter{State: delivery.DeliveryPending}))
	require.Equal(t, []string{a[0].ID, b[0].ID}, list(delivery.DeliveryFilter{EventName: "dsync.user.created"}))
	require.Empty(t, list(delivery.DeliveryFilter{EventName: "dsync.user.deleted"}))
	require.Equal(t, []string{a[0].ID, b[0].ID}, list(delivery.DeliveryFilter{CreatedAfter: base, CreatedBefore: base.Add(time.Second)}))
	require.Empty(t, list(delivery.DeliveryFilter{CreatedAfter: base.Add(time.Microsecond)}))
	require.Empty(t, list(delivery.DeliveryFilter{CreatedBefore: base}))
}
