// Package storetest is the conformance suite every delivery.Store
// implementation must pass. Both stores run it, so dsync dev (SQLite) and
// production (PostgreSQL) behave the same.
package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dsync-dev/dsync/pkg/event"
	"github.com/dsync-dev/dsync/services/dispatcher/internal/delivery"
)

// Run runs the suite. open returns an empty, migrated store for one test.
func Run(t *testing.T, open func(t *testing.T) delivery.Store) {
	t.Run("Endpoints", func(t *testing.T) { testEndpoints(t, open(t)) })
	t.Run("AddEventIdempotent", func(t *testing.T) { testAddEvent(t, open(t)) })
	t.Run("AddEventsBatch", func(t *testing.T) { testAddEvents(t, open(t)) })
	t.Run("ReleaseClaims", func(t *testing.T) { testReleaseClaims(t, open(t)) })
	t.Run("ClaimDue", func(t *testing.T) { testClaimDue(t, open(t)) })
	t.Run("ClaimLease", func(t *testing.T) { testClaimLease(t, open(t)) })
	t.Run("FinishUnderLostLease", func(t *testing.T) { testFinishUnderLostLease(t, open(t)) })
	t.Run("ClaimPerEndpointCap", func(t *testing.T) { testClaimCap(t, open(t)) })
	t.Run("ClaimSubjectOrder", func(t *testing.T) { testClaimOrder(t, open(t)) })
	t.Run("FinishAttempt", func(t *testing.T) { testFinishAttempt(t, open(t)) })
	t.Run("FinishAttemptsBatch", func(t *testing.T) { testFinishAttempts(t, open(t)) })
	t.Run("ListDeliveries", func(t *testing.T) { testListDeliveries(t, open(t)) })
	t.Run("UpdateEndpoint", func(t *testing.T) { testUpdateEndpoint(t, open(t)) })
	t.Run("EndpointStateAndHealth", func(t *testing.T) { testEndpointState(t, open(t)) })
	t.Run("ClaimDirectoryOrder", func(t *testing.T) { testClaimDirectoryOrder(t, open(t)) })
	t.Run("ScheduleAndRecover", func(t *testing.T) { testScheduleAndRecover(t, open(t)) })
	t.Run("ListDeliveriesFilter", func(t *testing.T) { testListDeliveriesFilter(t, open(t)) })
	t.Run("DeliveriesOfEvents", func(t *testing.T) { testDeliveriesOfEvents(t, open(t)) })
	t.Run("Prune", func(t *testing.T) { testPrune(t, open(t)) })
}

// base is a fixed instant at microsecond precision (what both stores keep).
var base = time.Date(2030, 1, 2, 3, 4, 5, 123456000, time.UTC)

type fixture struct {
	t   *testing.T
	s   delivery.Store
	ids *event.IDs
}

func newFixture(t *testing.T, s delivery.Store) *fixture {
	return &fixture{t: t, s: s, ids: event.NewIDs()}
}

func (f *fixture) endpoint(events ...string) delivery.Endpoint {
	f.t.Helper()
	e := delivery.Endpoint{
		ID:        f.ids.New(event.PrefixEndpoint),
		URL:       "https://example.com/hook",
		Events:    events,
		State:     delivery.EndpointEnabled,
		Secret:    "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
		Ordering:  delivery.OrderResource,
		CreatedAt: base,
		UpdatedAt: base,
	}
	require.NoError(f.t, f.s.CreateEndpoint(f.t.Context(), e))
	return e
}

// event adds an event on subject with sequence seq and a due delivery to
// each endpoint, and returns the deliveries.
func (f *fixture) event(subject string, seq uint64, due time.Time, endpoints ...delivery.Endpoint) []delivery.Delivery {
	f.t.Helper()
	ev := delivery.Event{
		ID:        f.ids.New(event.PrefixEvent),
		Name:      "dsync.user.created",
		Subject:   subject,
		Seq:       seq,
		Body:      fmt.Appendf(nil, `{"seq":%d}`, seq),
		CreatedAt: base,
	}
	var ds []delivery.Delivery
	for _, e := range endpoints {
		ds = append(ds, delivery.Delivery{
			ID: f.ids.New(event.PrefixDelivery), EndpointID: e.ID, EventID: ev.ID, EventName: ev.Name,
			Subject: subject, DirectoryID: event.DirectoryIDFromSubject(subject), Seq: seq, State: delivery.DeliveryPending,
			NextAttemptAt: due, CreatedAt: base, UpdatedAt: base,
		})
	}
	n, err := f.s.AddEvent(f.t.Context(), ev, ds)
	require.NoError(f.t, err)
	require.Equal(f.t, len(ds), n)
	return ds
}

func claimIDs(cs []delivery.Claim) []string {
	out := []string{}
	for _, c := range cs {
		out = append(out, c.Delivery.ID)
	}
	return out
}

func testEndpoints(t *testing.T, s delivery.Store) {
	f := newFixture(t, s)
	ctx := t.Context()
	a := f.endpoint()
	b := f.endpoint("dsync.user.created", "dsync.group.created")
	c := f.endpoint()

	got, err := s.GetEndpoint(ctx, b.ID)
	require.NoError(t, err)
	require.Equal(t, b, got)
	got, err = s.GetEndpoint(ctx, a.ID)
	require.NoError(t, err)
	require.Equal(t, a, got)
	require.Nil(t, got.Events)

	_, err = s.GetEndpoint(ctx, f.ids.New(event.PrefixEndpoint))
	require.ErrorIs(t, err, delivery.ErrNotFound)

	list, err := s.ListEndpoints(ctx, delivery.ListQuery{Limit: 10})
	require.NoError(t, err)
	require.Equal(t, []delivery.Endpoint{a, b, c}, list)
	list, err = s.ListEndpoints(ctx, delivery.ListQuery{Cursor: a.ID, Limit: 1})
	require.NoError(t, err)
	require.Equal(t, []delivery.Endpoint{b}, list)
	list, err = s.ListEndpoints(ctx, delivery.ListQuery{Desc: true, Limit: 2})
	require.NoError(t, err)
	require.Equal(t, []delivery.Endpoint{c, b}, list)
	list, err = s.ListEndpoints(ctx, delivery.ListQuery{Cursor: b.ID, Desc: true, Limit: 10})
	require.NoError(t, err)
	require.Equal(t, []delivery.Endpoint{a}, list)

	later := base.Add(time.Hour)
	require.NoError(t, s.SetEndpointState(ctx, b.ID, delivery.EndpointDisabled, "test", later))
	require.ErrorIs(t, s.SetEndpointState(ctx, f.ids.New(event.PrefixEndpoint), delivery.EndpointDisabled, "test", later), delivery.ErrNotFound)
	got, err = s.GetEndpoint(ctx, b.ID)
	require.NoError(t, err)
	require.Equal(t, delivery.EndpointDisabled, got.State)
	require.Equal(t, later, got.UpdatedAt)

	enabled, err := s.EnabledEndpoints(ctx)
	require.NoError(t, err)
	require.Equal(t, []delivery.Endpoint{a, c}, enabled)
}

func testAddEvent(t *testing.T, s delivery.Store) {
	f := newFixture(t, s)
	ctx := t.Context()
	e1, e2 := f.endpoint(), f.endpoint()
	ds := f.event("dsync.ev.d.user.u", 7, base, e1, e2)

	// The same event again (a redelivered stream message) with fresh
	// delivery ids inserts nothing and keeps the stored body.
	ev := delivery.Event{ID: ds[0].EventID, Name: "dsync.user.created", Subject: "dsync.ev.d.user.u", Seq: 7, Body: []byte(`{"other":1}`), CreatedAt: base}
	again := []delivery.Delivery{ds[0], ds[1]}
	for i := range again {
		again[i].ID = f.ids.New(event.PrefixDelivery)
	}
	n, err := s.AddEvent(ctx, ev, again)
	require.NoError(t, err)
	require.Zero(t, n)

	// A new endpoint gets its delivery of the existing event.
	e3 := f.endpoint()
	d3 := again[0]
	d3.EndpointID = e3.ID
	n, err = s.AddEvent(ctx, ev, []delivery.Delivery{again[0], d3})
	require.NoError(t, err)
	require.Equal(t, 1, n)

	for _, e := range []delivery.Endpoint{e1, e2, e3} {
		list, err := s.ListDeliveries(ctx, e.ID, delivery.DeliveryFilter{}, delivery.ListQuery{Limit: 10})
		require.NoError(t, err)
		require.Len(t, list, 1)
	}
	got, err := s.GetDelivery(ctx, ds[0].ID)
	require.NoError(t, err)
	require.Equal(t, ds[0], got)
	_, err = s.GetDelivery(ctx, f.ids.New(event.PrefixDelivery))
	require.ErrorIs(t, err, delivery.ErrNotFound)

	claims, err := s.ClaimDue(ctx, base, base.Add(time.Minute), 10, 10, nil)
	require.NoError(t, err)
	require.Len(t, claims, 3)
	for _, c := range claims {
		require.JSONEq(t, `{"seq":7}`, string(c.Body), "the first stored body is kept")
	}
}

func testClaimDue(t *testing.T, s delivery.Store) {
	f := newFixture(t, s)
	ctx := t.Context()
	e1, e2 := f.endpoint(), f.endpoint()
	now := base.Add(time.Minute)
	due := f.event("dsync.ev.d.user.a", 1, now.Add(-time.Second), e1)
	dueNow := f.event("dsync.ev.d.user.b", 2, now, e2)
	f.event("dsync.ev.d.user.c", 3, now.Add(time.Second), e1) // not yet due

	// An endpoint that was disabled keeps its deliveries pending but idle.
	e3 := f.endpoint()
	f.event("dsync.ev.d.user.d", 4, now.Add(-time.Hour), e3)
	require.NoError(t, s.SetEndpointState(ctx, e3.ID, delivery.EndpointDisabled, "test", now))

	claims, err := s.ClaimDue(ctx, now, now.Add(time.Minute), 1, 10, nil)
	require.NoError(t, err)
	require.Equal(t, []string{due[0].ID}, claimIDs(claims), "limit and due order")
	c := claims[0]
	require.Equal(t, e1.URL, c.URL)
	require.Equal(t, e1.Secret, c.Secret)
	require.JSONEq(t, `{"seq":1}`, string(c.Body))
	require.Equal(t, due[0], c.Delivery)

	claims, err = s.ClaimDue(ctx, now, now.Add(time.Minute), 10, 10, nil)
	require.NoError(t, err)
	require.Equal(t, []string{dueNow[0].ID}, claimIDs(claims))

	claims, err = s.ClaimDue(ctx, now, now.Add(time.Minute), 10, 10, nil)
	require.NoError(t, err)
	require.Empty(t, claims)
}

func testClaimLease(t *testing.T, s delivery.Store) {
	f := newFixture(t, s)
	ctx := t.Context()
	e := f.endpoint()
	ds := f.event("dsync.ev.d.user.a", 1, base, e)

	claims, err := s.ClaimDue(ctx, base, base.Add(time.Minute), 10, 10, nil)
	require.NoError(t, err)
	require.Equal(t, []string{ds[0].ID}, claimIDs(claims))

	// Leased: nobody else gets it until the lease ends.
	claims, err = s.ClaimDue(ctx, base.Add(59*time.Second), base.Add(2*time.Minute), 10, 10, nil)
	require.NoError(t, err)
	require.Empty(t, claims)

	// The worker died: after the lease the delivery is due again.
	claims, err = s.ClaimDue(ctx, base.Add(time.Minute), base.Add(2*time.Minute), 10, 10, nil)
	require.NoError(t, err)
	require.Equal(t, []string{ds[0].ID}, claimIDs(claims))
	require.Zero(t, claims[0].Delivery.Attempts)
}

func testClaimCap(t *testing.T, s delivery.Store) {
	f := newFixture(t, s)
	ctx := t.Context()
	slow, other := f.endpoint(), f.endpoint()
	for i := range 5 {
		f.event(fmt.Sprintf("dsync.ev.d.user.s%d", i), uint64(i+1), base, slow)
	}
	o := f.event("dsync.ev.d.user.o", 100, base.Add(time.Millisecond), other)

	claims, err := s.ClaimDue(ctx, base.Add(time.Second), base.Add(time.Minute), 10, 2, nil)
	require.NoError(t, err)
	require.Len(t, claims, 3, "two of slow, one of other")
	require.Contains(t, claimIDs(claims), o[0].ID)

	// The claimer holds slow's two: slow gets nothing more until it holds
	// fewer.
	claims, err = s.ClaimDue(ctx, base.Add(2*time.Second), base.Add(time.Minute), 10, 2,
		map[string]int{slow.ID: 2, other.ID: 1})
	require.NoError(t, err)
	require.Empty(t, claims)

	// Holding one of slow's (say, the other was recorded), the claimer
	// gets one more; what it holds of other does not count against slow.
	claims, err = s.ClaimDue(ctx, base.Add(2*time.Second), base.Add(time.Minute), 10, 2,
		map[string]int{slow.ID: 1, other.ID: 1})
	require.NoError(t, err)
	require.Len(t, claims, 1)
	require.Equal(t, slow.ID, claims[0].Delivery.EndpointID)
}

func testClaimOrder(t *testing.T, s delivery.Store) {
	f := newFixture(t, s)
	ctx := t.Context()
	e1, e2 := f.endpoint(), f.endpoint()
	first := f.event("dsync.ev.d.user.a", 1, base, e1, e2)
	second := f.event("dsync.ev.d.user.a", 2, base, e1, e2)
	otherSubject := f.event("dsync.ev.d.user.b", 3, base, e1)

	claims, err := s.ClaimDue(ctx, base, base.Add(time.Minute), 10, 10, nil)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{first[0].ID, first[1].ID, otherSubject[0].ID}, claimIDs(claims),
		"the second event of a subject waits for the first")

	// e1's first delivery fails and is rescheduled: the second still waits,
	// even though it is due.
	require.NoError(t, s.FinishAttempt(ctx,
		delivery.Attempt{DeliveryID: first[0].ID, Number: 1, StartedAt: base, StatusCode: 500, Error: "unexpected status 500"},
		delivery.Outcome{State: delivery.DeliveryPending, NextAttemptAt: base.Add(time.Hour)}))
	// e2's first succeeds: its second may go.
	require.NoError(t, s.FinishAttempt(ctx,
		delivery.Attempt{DeliveryID: first[1].ID, Number: 1, StartedAt: base, StatusCode: 200},
		delivery.Outcome{State: delivery.DeliverySucceeded}))

	claims, err = s.ClaimDue(ctx, base.Add(time.Second), base.Add(time.Minute), 10, 10, nil)
	require.NoError(t, err)
	require.Equal(t, []string{second[1].ID}, claimIDs(claims))
}

func testFinishAttempt(t *testing.T, s delivery.Store) {
	f := newFixture(t, s)
	ctx := t.Context()
	e := f.endpoint()
	ds := f.event("dsync.ev.d.user.a", 1, base, e)
	id := ds[0].ID
	claim := func(at time.Time) {
		t.Helper()
		claims, err := s.ClaimDue(ctx, at, at.Add(time.Minute), 10, 10, nil)
		require.NoError(t, err)
		require.Equal(t, []string{id}, claimIDs(claims))
	}

	// Attempt 1: 500, retry in 5s.
	claim(base)
	a1 := delivery.Attempt{DeliveryID: id, Number: 1, StartedAt: base, StatusCode: 500, Error: "unexpected status 500",
		Latency: 1500 * time.Microsecond, ResponseBody: "oops"}
	next := base.Add(5 * time.Second)
	require.NoError(t, s.FinishAttempt(ctx, a1, delivery.Outcome{State: delivery.DeliveryPending, NextAttemptAt: next}))
	d, err := s.GetDelivery(ctx, id)
	require.NoError(t, err)
	require.Equal(t, delivery.DeliveryPending, d.State)
	require.Equal(t, 1, d.Attempts)
	require.Equal(t, 500, d.LastStatusCode)
	require.Equal(t, "unexpected status 500", d.LastError)
	require.Equal(t, next, d.NextAttemptAt)

	// Not due before next; the lease was released so it is due at next.
	claims, err := s.ClaimDue(ctx, next.Add(-time.Millisecond), next.Add(time.Minute), 10, 10, nil)
	require.NoError(t, err)
	require.Empty(t, claims)
	claim(next)

	// Attempt 2: transport error, dead-lettered.
	a2 := delivery.Attempt{DeliveryID: id, Number: 2, StartedAt: next, Error: "dial tcp: refused", Latency: time.Millisecond}
	require.NoError(t, s.FinishAttempt(ctx, a2, delivery.Outcome{State: delivery.DeliveryFailed}))
	d, err = s.GetDelivery(ctx, id)
	require.NoError(t, err)
	require.Equal(t, delivery.DeliveryFailed, d.State)
	require.Equal(t, 2, d.Attempts)
	require.Zero(t, d.LastStatusCode)
	require.Equal(t, next, d.NextAttemptAt, "kept from the last schedule")
	claims, err = s.ClaimDue(ctx, next.Add(time.Hour), next.Add(2*time.Hour), 10, 10, nil)
	require.NoError(t, err)
	require.Empty(t, claims, "failed deliveries are not claimed")

	attempts, err := s.ListAttempts(ctx, id)
	require.NoError(t, err)
	require.Equal(t, []delivery.Attempt{a1, a2}, attempts)

	// Recording the same attempt twice keeps the first record.
	require.NoError(t, s.FinishAttempt(ctx, delivery.Attempt{DeliveryID: id, Number: 2, StartedAt: next, StatusCode: 200},
		delivery.Outcome{State: delivery.DeliveryFailed}))
	attempts, err = s.ListAttempts(ctx, id)
	require.NoError(t, err)
	require.Equal(t, []delivery.Attempt{a1, a2}, attempts)

	require.ErrorIs(t, s.FinishAttempt(ctx, delivery.Attempt{DeliveryID: f.ids.New(event.PrefixDelivery), Number: 1, StartedAt: base},
		delivery.Outcome{State: delivery.DeliverySucceeded}), delivery.ErrNotFound)

	// Success, and 410 disabling the endpoint.
	ok := f.event("dsync.ev.d.user.b", 2, base, e)
	gone := f.event("dsync.ev.d.user.c", 3, base, e)
	require.NoError(t, s.FinishAttempt(ctx, delivery.Attempt{DeliveryID: ok[0].ID, Number: 1, StartedAt: base, StatusCode: 204},
		delivery.Outcome{State: delivery.DeliverySucceeded}))
	d, err = s.GetDelivery(ctx, ok[0].ID)
	require.NoError(t, err)
	require.Equal(t, delivery.DeliverySucceeded, d.State)
	require.Equal(t, 204, d.LastStatusCode)
	require.Empty(t, d.LastError)

	require.NoError(t, s.FinishAttempt(ctx, delivery.Attempt{DeliveryID: gone[0].ID, Number: 1, StartedAt: base, StatusCode: 410},
		delivery.Outcome{State: delivery.DeliveryFailed, DisableEndpoint: true}))
	got, err := s.GetEndpoint(ctx, e.ID)
	require.NoError(t, err)
	require.Equal(t, delivery.EndpointDisabled, got.State)
}

func testListDeliveries(t *testing.T, s delivery.Store) {
	f := newFixture(t, s)
	ctx := t.Context()
	e, other := f.endpoint(), f.endpoint()
	var ids []string
	for i := range 5 {
		ds := f.event(fmt.Sprintf("dsync.ev.d.user.u%d", i), uint64(i+1), base, e, other)
		ids = append(ids, ds[0].ID)
	}
	list := func(q delivery.ListQuery) []string {
		t.Helper()
		ds, err := s.ListDeliveries(ctx, e.ID, delivery.DeliveryFilter{}, q)
		require.NoError(t, err)
		out := []string{}
		for _, d := range ds {
			require.Equal(t, e.ID, d.EndpointID)
			out = append(out, d.ID)
		}
		return out
	}
	require.Equal(t, ids[:2], list(delivery.ListQuery{Limit: 2}))
	require.Equal(t, ids[2:4], list(delivery.ListQuery{Cursor: ids[1], Limit: 2}))
	require.Equal(t, []string{ids[4], ids[3]}, list(delivery.ListQuery{Desc: true, Limit: 2}))
	require.Equal(t, []string{ids[2], ids[1], ids[0]}, list(delivery.ListQuery{Cursor: ids[3], Desc: true, Limit: 10}))
	require.Empty(t, list(delivery.ListQuery{Cursor: ids[4], Limit: 10}))

	// Through the domain's paginator: newest first, walk forward then back.
	fetch := func(ctx context.Context, q delivery.ListQuery) ([]delivery.Delivery, error) {
		return s.ListDeliveries(ctx, e.ID, delivery.DeliveryFilter{}, q)
	}
	id := func(d delivery.Delivery) string { return d.ID }
	pageIDs := func(ds []delivery.Delivery) []string {
		out := []string{}
		for _, d := range ds {
			out = append(out, d.ID)
		}
		return out
	}
	page, info, err := delivery.Paginate(ctx, delivery.Page{Limit: 2, Desc: true}, id, fetch)
	require.NoError(t, err)
	require.Equal(t, []string{ids[4], ids[3]}, pageIDs(page))
	require.Equal(t, delivery.PageInfo{After: ids[3]}, info)

	page, info, err = delivery.Paginate(ctx, delivery.Page{Limit: 2, Desc: true, After: info.After}, id, fetch)
	require.NoError(t, err)
	require.Equal(t, []string{ids[2], ids[1]}, pageIDs(page))
	require.Equal(t, delivery.PageInfo{Before: ids[2], After: ids[1]}, info)

	page, info, err = delivery.Paginate(ctx, delivery.Page{Limit: 2, Desc: true, After: info.After}, id, fetch)
	require.NoError(t, err)
	require.Equal(t, []string{ids[0]}, pageIDs(page))
	require.Equal(t, delivery.PageInfo{Before: ids[0]}, info)

	page, info, err = delivery.Paginate(ctx, delivery.Page{Limit: 2, Desc: true, Before: info.Before}, id, fetch)
	require.NoError(t, err)
	require.Equal(t, []string{ids[2], ids[1]}, pageIDs(page))
	require.Equal(t, delivery.PageInfo{Before: ids[2], After: ids[1]}, info)

	page, info, err = delivery.Paginate(ctx, delivery.Page{Limit: 2, Desc: true, Before: info.Before}, id, fetch)
	require.NoError(t, err)
	require.Equal(t, []string{ids[4], ids[3]}, pageIDs(page))
	require.Equal(t, delivery.PageInfo{After: ids[3]}, info)

	page, _, err = delivery.Paginate(ctx, delivery.Page{}, id, fetch)
	require.NoError(t, err)
	require.Equal(t, ids, pageIDs(page), "default limit, oldest first")

	_, _, err = delivery.Paginate(ctx, delivery.Page{Limit: 101}, id, fetch)
	require.ErrorIs(t, err, delivery.ErrInvalid)
	_, _, err = delivery.Paginate(ctx, delivery.Page{Before: ids[0], After: ids[1]}, id, fetch)
	require.ErrorIs(t, err, delivery.ErrInvalid)
}

// testFinishAttempts records a batch in one call: each as FinishAttempt
// would, a vanished delivery skipped, the endpoint's health following the
// batch's order, a second disable of a disabled endpoint keeping its reason.
func testFinishAttempts(t *testing.T, s delivery.Store) {
	ctx := t.Context()
	f := newFixture(t, s)
	e := f.endpoint()
	a := f.event("dsync.ev.d.user.a", 1, base, e)
	b := f.event("dsync.ev.d.user.b", 2, base, e)
	c := f.event("dsync.ev.d.user.c", 3, base, e)
	claims, err := s.ClaimDue(ctx, base, base.Add(time.Minute), 10, 10, nil)
	require.NoError(t, err)
	require.Len(t, claims, 3)
	next := base.Add(time.Hour)
	recorded, err := s.FinishAttempts(ctx, []delivery.Finished{
		{Attempt: delivery.Attempt{DeliveryID: a[0].ID, Number: 1, StartedAt: base, StatusCode: 500, Error: "unexpected status 500"},
			Outcome: delivery.Outcome{State: delivery.DeliveryPending, NextAttemptAt: next}},
		{Attempt: delivery.Attempt{DeliveryID: f.ids.New(event.PrefixDelivery), Number: 1, StartedAt: base},
			Outcome: delivery.Outcome{State: delivery.DeliverySucceeded}},
		{Attempt: delivery.Attempt{DeliveryID: b[0].ID, Number: 1, StartedAt: base.Add(time.Second), StatusCode: 410},
			Outcome: delivery.Outcome{State: delivery.DeliveryFailed, DisableEndpoint: true, DisableReason: "gone"}},
		{Attempt: delivery.Attempt{DeliveryID: c[0].ID, Number: 1, StartedAt: base.Add(2 * time.Second), StatusCode: 410},
			Outcome: delivery.Outcome{State: delivery.DeliveryFailed, DisableEndpoint: true, DisableReason: "second"}},
	})
	require.NoError(t, err)
	require.Equal(t, []bool{true, false, true, true}, recorded)

	d, err := s.GetDelivery(ctx, a[0].ID)
	require.NoError(t, err)
	require.Equal(t, delivery.DeliveryPending, d.State)
	require.Equal(t, next, d.NextAttemptAt)
	require.Equal(t, 1, d.Attempts)
	for _, id := range []string{b[0].ID, c[0].ID} {
		d, err := s.GetDelivery(ctx, id)
		require.NoError(t, err)
		require.Equal(t, delivery.DeliveryFailed, d.State)
		attempts, err := s.ListAttempts(ctx, id)
		require.NoError(t, err)
		require.Len(t, attempts, 1)
	}
	got, err := s.GetEndpoint(ctx, e.ID)
	require.NoError(t, err)
	require.Equal(t, delivery.EndpointDisabled, got.State)
	require.Equal(t, "gone", got.DisabledReason)
	require.Equal(t, base, got.FailingSince)

	// Leases are released: only the retry remains, due at next.
	claims, err = s.ClaimDue(ctx, next, next.Add(time.Minute), 10, 10, nil)
	require.NoError(t, err)
	require.Empty(t, claims, "the endpoint is disabled")
}

// testAddEvents stores several events in one call, idempotently, and a
// failing batch stores none of its events.
func testAddEvents(t *testing.T, s delivery.Store) {
	f := newFixture(t, s)
	ctx := t.Context()
	e1, e2 := f.endpoint(), f.endpoint()
	var evs []delivery.Event
	var ds []delivery.Delivery
	for i := range 3 {
		ev := delivery.Event{ID: f.ids.New(event.PrefixEvent), Name: "dsync.user.created",
			Subject: "dsync.ev.d.user.u", Seq: uint64(10 + i), Body: []byte(`{}`), CreatedAt: base} //nolint:gosec // small
		evs = append(evs, ev)
		for _, e := range []delivery.Endpoint{e1, e2} {
			ds = append(ds, delivery.Delivery{ID: f.ids.New(event.PrefixDelivery), EndpointID: e.ID, EventID: ev.ID,
				EventName: ev.Name, Subject: ev.Subject, DirectoryID: "d", Seq: ev.Seq, State: delivery.DeliveryPending,
				NextAttemptAt: base, CreatedAt: base, UpdatedAt: base})
		}
	}
	n, err := s.AddEvents(ctx, evs, ds)
	require.NoError(t, err)
	require.Equal(t, 6, n)
	n, err = s.AddEvents(ctx, evs, ds)
	require.NoError(t, err)
	require.Zero(t, n, "a redelivered batch inserts nothing")
	for _, ev := range evs {
		seq, err := s.EventSeq(ctx, ev.ID)
		require.NoError(t, err)
		require.Equal(t, ev.Seq, seq)
	}

	// A delivery to an unknown endpoint fails the batch: its event is not
	// stored either.
	bad := delivery.Event{ID: f.ids.New(event.PrefixEvent), Name: "dsync.user.created", Subject: "dsync.ev.d.user.u", Seq: 20, Body: []byte(`{}`), CreatedAt: base}
	d := ds[0]
	d.ID, d.EventID, d.EndpointID = f.ids.New(event.PrefixDelivery), bad.ID, "we_unknown"
	_, err = s.AddEvents(ctx, []delivery.Event{bad}, []delivery.Delivery{d})
	require.Error(t, err)
	_, err = s.EventSeq(ctx, bad.ID)
	require.ErrorIs(t, err, delivery.ErrNotFound)
}

// testReleaseClaims: a released claim is due again at once.
func testReleaseClaims(t *testing.T, s delivery.Store) {
	f := newFixture(t, s)
	ctx := t.Context()
	e := f.endpoint()
	d1 := f.event("dsync.ev.d.user.a", 1, base, e)[0]
	f.event("dsync.ev.d.user.b", 2, base, e)
	claims, err := s.ClaimDue(ctx, base, base.Add(time.Hour), 10, 1, nil)
	require.NoError(t, err)
	require.Len(t, claims, 1)
	require.Equal(t, d1.ID, claims[0].Delivery.ID)
	claims, err = s.ClaimDue(ctx, base, base.Add(time.Hour), 10, 1, map[string]int{e.ID: 1})
	require.NoError(t, err)
	require.Empty(t, claims, "the endpoint's one slot is held")

	require.NoError(t, s.ReleaseClaims(ctx, []string{d1.ID}))
	claims, err = s.ClaimDue(ctx, base, base.Add(time.Hour), 10, 1, nil)
	require.NoError(t, err)
	require.Len(t, claims, 1)
	require.Equal(t, d1.ID, claims[0].Delivery.ID)
}
