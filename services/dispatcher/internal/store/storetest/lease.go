package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dsync-dev/dsync/services/dispatcher/internal/delivery"
)

// testFinishUnderLostLease: an attempt recorded under a lease the delivery
// no longer holds is kept in the log and counted, but leaves the delivery's
// state to whoever took the lease away: a resend made while the attempt
// was in flight, or a later claim after the lease expired.
func testFinishUnderLostLease(t *testing.T, s delivery.Store) {
	f := newFixture(t, s)
	ctx := t.Context()
	e := f.endpoint()
	failedForGood := delivery.Outcome{State: delivery.DeliveryFailed}
	attempt := func(d delivery.Delivery, n int, at time.Time) delivery.Attempt {
		return delivery.Attempt{DeliveryID: d.ID, Number: n, StartedAt: at, StatusCode: 500, Error: "unexpected status 500"}
	}

	// A resend while attempt 1 is in flight: its failure does not undo it.
	d := f.event("dsync.ev.d.user.a", 1, base, e)[0]
	lease := base.Add(time.Minute)
	claims, err := s.ClaimDue(ctx, base, lease, 10, 10, nil)
	require.NoError(t, err)
	require.Equal(t, []string{d.ID}, claimIDs(claims))
	resendAt := base.Add(time.Second)
	n, err := s.ScheduleDeliveries(ctx, []delivery.Delivery{d}, true, resendAt)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	recorded, err := s.FinishAttempts(ctx, []delivery.Finished{{Attempt: attempt(d, 1, base), Outcome: failedForGood, Lease: lease}})
	require.NoError(t, err)
	require.Equal(t, []bool{true}, recorded)
	got, err := s.GetDelivery(ctx, d.ID)
	require.NoError(t, err)
	require.Equal(t, delivery.DeliveryPending, got.State, "the resend stands")
	require.Equal(t, resendAt, got.NextAttemptAt)
	require.Equal(t, 1, got.Attempts, "the attempt counts")
	as, err := s.ListAttempts(ctx, d.ID)
	require.NoError(t, err)
	require.Len(t, as, 1, "and is in the log")
	claims, err = s.ClaimDue(ctx, resendAt, resendAt.Add(time.Minute), 10, 10, nil)
	require.NoError(t, err)
	require.Equal(t, []string{d.ID}, claimIDs(claims), "the resent delivery is due, not leased")

	// A lease that expired under a slow attempt 1 and was taken by a later
	// claim: attempt 1's result leaves the delivery to that claim.
	d2 := f.event("dsync.ev.d.user.b", 2, base, e)[0]
	first, second := base.Add(10*time.Minute), base.Add(20*time.Minute)
	claims, err = s.ClaimDue(ctx, base.Add(9*time.Minute), first, 10, 10, nil)
	require.NoError(t, err)
	require.Contains(t, claimIDs(claims), d2.ID)
	claims, err = s.ClaimDue(ctx, first, second, 10, 10, nil)
	require.NoError(t, err)
	require.Contains(t, claimIDs(claims), d2.ID, "due again once the first lease expired")
	_, err = s.FinishAttempts(ctx, []delivery.Finished{{Attempt: attempt(d2, 1, base), Outcome: failedForGood, Lease: first}})
	require.NoError(t, err)
	got, err = s.GetDelivery(ctx, d2.ID)
	require.NoError(t, err)
	require.Equal(t, delivery.DeliveryPending, got.State)
	claims, err = s.ClaimDue(ctx, first.Add(time.Second), second.Add(time.Minute), 10, 10, nil)
	require.NoError(t, err)
	require.NotContains(t, claimIDs(claims), d2.ID, "the second claim still holds it")
	_, err = s.FinishAttempts(ctx, []delivery.Finished{{
		Attempt: delivery.Attempt{DeliveryID: d2.ID, Number: 2, StartedAt: first, StatusCode: 204},
		Outcome: delivery.Outcome{State: delivery.DeliverySucceeded}, Lease: second}})
	require.NoError(t, err)
	got, err = s.GetDelivery(ctx, d2.ID)
	require.NoError(t, err)
	require.Equal(t, delivery.DeliverySucceeded, got.State)
	require.Equal(t, 2, got.Attempts)
}
