// Package storetest is the conformance suite of readmodel.Store: every
// implementation runs it (see the postgres and sqlite store tests).
package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/dsync-dev/dsync/pkg/event"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
	"github.com/dsync-dev/dsync/services/projector/internal/readmodel"
)

const (
	orgCreated   = dsyncv1.EventType_EVENT_TYPE_ORGANIZATION_CREATED
	orgUpdated   = dsyncv1.EventType_EVENT_TYPE_ORGANIZATION_UPDATED
	dirActivated = dsyncv1.EventType_EVENT_TYPE_DIRECTORY_ACTIVATED
	dirUpdated   = dsyncv1.EventType_EVENT_TYPE_DIRECTORY_UPDATED
	dirDeleted   = dsyncv1.EventType_EVENT_TYPE_DIRECTORY_DELETED
	userCreated  = dsyncv1.EventType_EVENT_TYPE_USER_CREATED
	userUpdated  = dsyncv1.EventType_EVENT_TYPE_USER_UPDATED
	userDeleted  = dsyncv1.EventType_EVENT_TYPE_USER_DELETED
	groupCreated = dsyncv1.EventType_EVENT_TYPE_GROUP_CREATED
	groupDeleted = dsyncv1.EventType_EVENT_TYPE_GROUP_DELETED
	memberAdded  = dsyncv1.EventType_EVENT_TYPE_GROUP_USER_ADDED
	memberRemove = dsyncv1.EventType_EVENT_TYPE_GROUP_USER_REMOVED
)

// Run runs the suite. open returns a new, empty, migrated store for one
// test; the suite closes it.
func Run(t *testing.T, open func(t *testing.T) readmodel.Store) {
	tests := []struct {
		name string
		run  func(t *testing.T, s readmodel.Store)
	}{
		{"EmptyCheckpoint", testEmptyCheckpoint},
		{"ApplyWithCheckpoint", testApplyWithCheckpoint},
		{"RedeliverySkipped", testRedeliverySkipped},
		{"ClaimsPassedOver", testClaimsPassedOver},
		{"RollbackLeavesNothing", testRollback},
		{"MalformedSkipped", testMalformedSkipped},
		{"NotFound", testNotFound},
		{"UserUpdateAndDelete", testUserUpdateAndDelete},
		{"UserPagination", testUserPagination},
		{"GroupsAndMemberships", testGroupsAndMemberships},
		{"GroupsOfUsers", testGroupsOfUsers},
		{"DirectoryCounts", testDirectoryCounts},
		{"DirectoryDeleteCascades", testDirectoryDeleteCascades},
		{"ListDirectories", testListDirectories},
		{"Organizations", testOrganizations},
		{"ExoticText", testExoticText},
		{"MemberCounts", testMemberCounts},
		{"FindAndCount", testFindAndCount},
		{"Events", testEvents},
		{"Versions", testVersions},
		{"QuerySorts", testQuerySorts},
		{"SearchSorted", testSearchSorted},
		{"EventResources", testEventResources},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() { require.NoError(t, s.Close()) })
			tt.run(t, s)
		})
	}
}

// apply applies evs as the stream sequences first, first+1, … and requires
// that all were applied.
func apply(t *testing.T, s readmodel.Store, first uint64, evs ...*dsyncv1.Event) readmodel.Result {
	t.Helper()
	res, err := readmodel.Apply(t.Context(), s, Records(first, evs...))
	require.NoError(t, err)
	require.Len(t, res.Applied, len(evs), "skipped: %v", res.Skipped)
	return res
}

func requireProtoEqual(t *testing.T, want, got proto.Message) {
	t.Helper()
	require.True(t, proto.Equal(want, got), "want %v\ngot  %v", want, got)
}

func ids[T interface{ GetId() string }](items []T) []string {
	out := make([]string, 0, len(items))
	for _, it := range items {
		out = append(out, it.GetId())
	}
	return out
}

// world is an organization with one directory.
type world struct {
	f   *Fixtures
	org *dsyncv1.Organization
	dir *dsyncv1.Directory
}

func newWorld(t *testing.T, s readmodel.Store) world {
	t.Helper()
	f := NewFixtures()
	org := f.Organization("Acme", "acme.com")
	dir := f.Directory(org.GetId(), "Acme Okta")
	apply(t, s, 1, f.OrganizationEvent(orgCreated, org), f.DirectoryEvent(dirActivated, dir))
	return world{f: f, org: org, dir: dir}
}

func testEmptyCheckpoint(t *testing.T, s readmodel.Store) {
	cp, err := s.Checkpoint(t.Context())
	require.NoError(t, err)
	require.Zero(t, cp)
}

func testApplyWithCheckpoint(t *testing.T, s readmodel.Store) {
	w := newWorld(t, s)
	u := w.f.User(w.dir, "ada@acme.com")
	res := apply(t, s, 3, w.f.UserEvent(userCreated, u))
	require.Equal(t, uint64(3), res.Checkpoint)
	require.Equal(t, uint64(3), res.Applied[0].Seq)
	require.Equal(t, userCreated, res.Applied[0].Type)

	cp, err := s.Checkpoint(t.Context())
	require.NoError(t, err)
	require.Equal(t, uint64(3), cp)

	got, err := s.GetUser(t.Context(), u.GetId())
	require.NoError(t, err)
	requireProtoEqual(t, u, got)
	gotDir, err := s.GetDirectory(t.Context(), w.dir.GetId())
	require.NoError(t, err)
	requireProtoEqual(t, w.dir, gotDir)
	gotOrg, err := s.GetOrganization(t.Context(), w.org.GetId())
	require.NoError(t, err)
	requireProtoEqual(t, w.org, gotOrg)

	// Stream sequences have gaps (claims are filtered out); the checkpoint
	// is the last applied sequence, not a count.
	apply(t, s, 10, w.f.UserEvent(userCreated, w.f.User(w.dir, "bob@acme.com")))
	cp, err = s.Checkpoint(t.Context())
	require.NoError(t, err)
	require.Equal(t, uint64(10), cp)
}

// testClaimsPassedOver checks that uniqueness claims, which an unfiltered
// reader of the stream sees, move the checkpoint on and change nothing else.
func testClaimsPassedOver(t *testing.T, s readmodel.Store) {
	w := newWorld(t, s)
	claim := readmodel.Record{Seq: 3, Subject: event.UserNameClaimSubject(w.dir.GetId(), "ada@acme.com"), Data: []byte("not an event")}
	u := w.f.User(w.dir, "ada@acme.com")
	recs := append([]readmodel.Record{claim}, Records(4, w.f.UserEvent(userCreated, u))...)
	res, err := readmodel.Apply(t.Context(), s, recs)
	require.NoError(t, err)
	require.Equal(t, 1, res.Claims)
	require.Len(t, res.Applied, 1)
	require.Equal(t, uint64(4), res.Checkpoint)

	// A batch of claims alone still moves the checkpoint, so a consistency
	// token naming a claim's sequence is answered.
	claim.Seq = 5
	res, err = readmodel.Apply(t.Context(), s, []readmodel.Record{claim})
	require.NoError(t, err)
	require.Equal(t, 1, res.Claims)
	require.Empty(t, res.Skipped)
	cp, err := s.Checkpoint(t.Context())
	require.NoError(t, err)
	require.Equal(t, uint64(5), cp)
	skips, err := s.Skips(t.Context())
	require.NoError(t, err)
	require.Empty(t, skips, "a claim is not a malformed event")
	n, err := s.CountUsers(t.Context(), w.dir.GetId())
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
}

func testRedeliverySkipped(t *testing.T, s readmodel.Store) {
	w := newWorld(t, s)
	u := w.f.User(w.dir, "ada@acme.com")
	created := w.f.UserEvent(userCreated, u)
	updatedUser := proto.CloneOf(u)
	updatedUser.FirstName = "Augusta"
	updated := w.f.UserEvent(userUpdated, updatedUser)
	apply(t, s, 3, created, updated)

	// The whole batch again, and a batch straddling the checkpoint.
	res, err := readmodel.Apply(t.Context(), s, Records(3, created, updated))
	require.NoError(t, err)
	require.Empty(t, res.Applied)
	require.Equal(t, 2, res.Duplicates)
	require.Equal(t, uint64(4), res.Checkpoint)

	bob := w.f.User(w.dir, "bob@acme.com")
	res, err = readmodel.Apply(t.Context(), s, Records(4, updated, w.f.UserEvent(userCreated, bob)))
	require.NoError(t, err)
	require.Equal(t, 1, res.Duplicates)
	require.Len(t, res.Applied, 1)
	require.Equal(t, uint64(5), res.Applied[0].Seq)

	// Had the redelivered "created" been applied, Ada would be back to her
	// first state.
	got, err := s.GetUser(t.Context(), u.GetId())
	require.NoError(t, err)
	requireProtoEqual(t, updatedUser, got)
	cp, err := s.Checkpoint(t.Context())
	require.NoError(t, err)
	require.Equal(t, uint64(5), cp)
}

func testRollback(t *testing.T, s readmodel.Store) {
	w := newWorld(t, s)
	u := w.f.User(w.dir, "ada@acme.com")
	errBoom := errors.New("boom")
	err := s.Update(t.Context(), func(ctx context.Context, tx readmodel.Tx) error {
		require.NoError(t, tx.UpsertUser(ctx, u, 99))
		require.NoError(t, tx.SetCheckpoint(ctx, 99))
		return errBoom
	})
	require.ErrorIs(t, err, errBoom)
	_, err = s.GetUser(t.Context(), u.GetId())
	require.ErrorIs(t, err, readmodel.ErrNotFound)
	cp, err := s.Checkpoint(t.Context())
	require.NoError(t, err)
	require.Equal(t, uint64(2), cp)

	// A batch that fails halfway (here: its context ends) leaves nothing,
	// and the same batch applies in full on retry.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	recs := Records(3, w.f.UserEvent(userCreated, u), w.f.UserEvent(userCreated, w.f.User(w.dir, "bob@acme.com")))
	_, err = readmodel.Apply(ctx, s, recs)
	require.Error(t, err)
	_, err = s.GetUser(t.Context(), u.GetId())
	require.ErrorIs(t, err, readmodel.ErrNotFound)
	cp, err = s.Checkpoint(t.Context())
	require.NoError(t, err)
	require.Equal(t, uint64(2), cp)

	res, err := readmodel.Apply(t.Context(), s, recs)
	require.NoError(t, err)
	require.Len(t, res.Applied, 2)
	_, err = s.GetUser(t.Context(), u.GetId())
	require.NoError(t, err)
}

func testMalformedSkipped(t *testing.T, s readmodel.Store) {
	w := newWorld(t, s)
	u := w.f.User(w.dir, "ada@acme.com")
	noPayload := w.f.UserEvent(userCreated, u)
	noPayload.Payload = nil
	badID := w.f.UserEvent(userCreated, &dsyncv1.User{Id: "user_1", DirectoryId: w.dir.GetId()})
	recs := []readmodel.Record{{Seq: 3, Subject: "dsync.ev.x.user.y", Data: []byte("not protobuf \xff\xff")}}
	recs = append(recs, Records(4, noPayload, badID, w.f.UserEvent(userCreated, u))...)
	recs = append(recs, readmodel.Record{Seq: 8, Subject: "dsync.ev.x.user.z", Data: nil})

	res, err := readmodel.Apply(t.Context(), s, recs)
	require.NoError(t, err)
	require.Len(t, res.Applied, 1)
	require.Equal(t, uint64(6), res.Applied[0].Seq)
	require.Len(t, res.Skipped, 4)
	require.Equal(t, uint64(8), res.Checkpoint)

	skips, err := s.Skips(t.Context())
	require.NoError(t, err)
	require.Len(t, skips, 4)
	require.Equal(t, uint64(3), skips[0].Seq)
	require.Equal(t, "dsync.ev.x.user.y", skips[0].Subject)
	require.Contains(t, skips[0].Reason, "malformed")
	for i, seq := range []uint64{3, 4, 5, 8} {
		require.Equal(t, seq, skips[i].Seq)
	}
	cp, err := s.Checkpoint(t.Context())
	require.NoError(t, err)
	require.Equal(t, uint64(8), cp)
}

func testNotFound(t *testing.T, s readmodel.Store) {
	ids := event.NewIDs()
	ctx := t.Context()
	_, err := s.GetOrganization(ctx, ids.New(event.PrefixOrganization))
	require.ErrorIs(t, err, readmodel.ErrNotFound)
	_, err = s.GetDirectory(ctx, ids.New(event.PrefixDirectory))
	require.ErrorIs(t, err, readmodel.ErrNotFound)
	_, err = s.GetUser(ctx, ids.New(event.PrefixUser))
	require.ErrorIs(t, err, readmodel.ErrNotFound)
	_, err = s.GetGroup(ctx, ids.New(event.PrefixGroup))
	require.ErrorIs(t, err, readmodel.ErrNotFound)
	users, err := s.ListUsers(ctx, ids.New(event.PrefixDirectory), readmodel.Range{Limit: 10})
	require.NoError(t, err)
	require.Empty(t, users)
}

func testUserUpdateAndDelete(t *testing.T, s readmodel.Store) {
	w := newWorld(t, s)
	ada := w.f.User(w.dir, "ada@acme.com")
	bob := w.f.User(w.dir, "bob@acme.com")
	grp := w.f.Group(w.dir, "Engineering")
	apply(t, s, 3, w.f.UserEvent(userCreated, ada), w.f.UserEvent(userCreated, bob),
		w.f.GroupEvent(groupCreated, grp), w.f.MembershipEvent(memberAdded, grp, ada), w.f.MembershipEvent(memberAdded, grp, bob))

	ada2 := proto.CloneOf(ada)
	ada2.State = dsyncv1.UserState_USER_STATE_INACTIVE
	ada2.UserName = "ADA.L@acme.com"
	ada2.UpdatedAt = w.f.tick()
	apply(t, s, 8, w.f.UserEvent(userUpdated, ada2), w.f.UserEvent(userDeleted, bob))

	got, err := s.GetUser(t.Context(), ada.GetId())
	require.NoError(t, err)
	requireProtoEqual(t, ada2, got)
	_, err = s.GetUser(t.Context(), bob.GetId())
	require.ErrorIs(t, err, readmodel.ErrNotFound)
	members, err := s.ListGroupUsers(t.Context(), grp.GetId(), readmodel.Range{Limit: 10})
	require.NoError(t, err)
	require.Equal(t, []string{ada.GetId()}, ids(members))
	requireProtoEqual(t, ada2, members[0])

	// Deleting what is gone already is a no-op, as replays require.
	apply(t, s, 10, w.f.UserEvent(userDeleted, bob))
}

func testUserPagination(t *testing.T, s readmodel.Store) {
	w := newWorld(t, s)
	other := w.f.Directory(w.org.GetId(), "Other")
	evs := []*dsyncv1.Event{w.f.DirectoryEvent(dirActivated, other)}
	var want []string
	for i := range 23 {
		u := w.f.User(w.dir, fmt.Sprintf("user%02d@acme.com", i))
		want = append(want, u.GetId())
		evs = append(evs, w.f.UserEvent(userCreated, u))
		if i%5 == 0 {
			evs = append(evs, w.f.UserEvent(userCreated, w.f.User(other, fmt.Sprintf("other%02d@acme.com", i))))
		}
	}
	apply(t, s, 3, evs...)
	wantDesc := make([]string, len(want))
	for i, id := range want {
		wantDesc[len(want)-1-i] = id
	}

	list := func(p readmodel.Page) ([]string, readmodel.PageInfo) {
		t.Helper()
		users, info, err := readmodel.Paginate(t.Context(), p, (*dsyncv1.User).GetId,
			func(ctx context.Context, r readmodel.Range) ([]*dsyncv1.User, error) {
				return s.ListUsers(ctx, w.dir.GetId(), r)
			})
		require.NoError(t, err)
		return ids(users), info
	}

	for _, tt := range []struct {
		name  string
		order readmodel.Order
		want  []string
	}{
		{"asc", readmodel.OrderAsc, want},
		{"desc", readmodel.OrderDesc, wantDesc},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// Forward through every page with after.
			var got []string
			var pages []readmodel.PageInfo
			after := ""
			for {
				page, info := list(readmodel.Page{Limit: 10, After: after, Order: tt.order})
				got = append(got, page...)
				pages = append(pages, info)
				if info.After == "" {
					break
				}
				require.Equal(t, page[len(page)-1], info.After)
				after = info.After
			}
			require.Equal(t, tt.want, got)
			require.Len(t, pages, 3)
			require.Empty(t, pages[0].Before, "the first page has nothing before it")
			require.Equal(t, tt.want[10], pages[1].Before)
			require.Equal(t, tt.want[20], pages[2].Before)

			// Backward from the last page with before.
			page, info := list(readmodel.Page{Limit: 10, Before: pages[2].Before, Order: tt.order})
			require.Equal(t, tt.want[10:20], page)
			require.Equal(t, tt.want[10], info.Before)
			require.Equal(t, tt.want[19], info.After)
			page, info = list(readmodel.Page{Limit: 10, Before: info.Before, Order: tt.order})
			require.Equal(t, tt.want[0:10], page)
			require.Empty(t, info.Before, "nothing precedes the first page")
			require.Equal(t, tt.want[9], info.After)
			page, info = list(readmodel.Page{Limit: 10, Before: tt.want[3], Order: tt.order})
			require.Equal(t, tt.want[0:3], page, "a short page going back")
			require.Empty(t, info.Before)

			// Limits at the edges, and a page past the end.
			page, info = list(readmodel.Page{Limit: 1, Order: tt.order})
			require.Equal(t, tt.want[:1], page)
			require.Equal(t, tt.want[0], info.After)
			page, _ = list(readmodel.Page{Limit: readmodel.MaxLimit, Order: tt.order})
			require.Equal(t, tt.want, page)
			page, info = list(readmodel.Page{Limit: 10, After: tt.want[len(tt.want)-1], Order: tt.order})
			require.Empty(t, page)
			require.Equal(t, readmodel.PageInfo{}, info)
		})
	}

	// A cursor that is not a row (deleted) still bounds the scan.
	apply(t, s, 100, w.f.UserEvent(userDeleted, &dsyncv1.User{Id: want[5], DirectoryId: w.dir.GetId()}))
	page, _ := list(readmodel.Page{Limit: 3, After: want[5], Order: readmodel.OrderAsc})
	require.Equal(t, want[6:9], page)

	others, err := s.ListUsers(t.Context(), other.GetId(), readmodel.Range{Limit: 100})
	require.NoError(t, err)
	require.Len(t, others, 5)
}

func testGroupsAndMemberships(t *testing.T, s readmodel.Store) {
	w := newWorld(t, s)
	ada := w.f.User(w.dir, "ada@acme.com")
	bob := w.f.User(w.dir, "bob@acme.com")
	eng := w.f.Group(w.dir, "Engineering")
	ops := w.f.Group(w.dir, "Ops")
	apply(t, s, 3,
		w.f.UserEvent(userCreated, ada), w.f.UserEvent(userCreated, bob),
		w.f.GroupEvent(groupCreated, eng), w.f.GroupEvent(groupCreated, ops),
		w.f.MembershipEvent(memberAdded, eng, ada), w.f.MembershipEvent(memberAdded, eng, bob),
		w.f.MembershipEvent(memberAdded, eng, bob), // an idempotent repeat
		w.f.MembershipEvent(memberAdded, ops, bob))

	got, err := s.GetGroup(t.Context(), eng.GetId())
	require.NoError(t, err)
	requireProtoEqual(t, eng, got.GetGroup())
	require.Equal(t, int64(2), got.GetMemberCount())
	groups, err := s.ListGroups(t.Context(), w.dir.GetId(), readmodel.Range{Limit: 10})
	require.NoError(t, err)
	require.Equal(t, []string{eng.GetId(), ops.GetId()}, groupIDs(groups))
	require.Equal(t, []int64{2, 1}, counts(groups))
	bobs, err := s.ListUserGroups(t.Context(), bob.GetId(), readmodel.Range{Limit: 10, Desc: true})
	require.NoError(t, err)
	require.Equal(t, []string{ops.GetId(), eng.GetId()}, groupIDs(bobs))
	memberIDs, err := s.GroupMemberIDs(t.Context(), eng.GetId())
	require.NoError(t, err)
	require.Equal(t, []string{ada.GetId(), bob.GetId()}, memberIDs)

	members := func(g *dsyncv1.Group) []string {
		t.Helper()
		us, err := s.ListGroupUsers(t.Context(), g.GetId(), readmodel.Range{Limit: 10})
		require.NoError(t, err)
		return ids(us)
	}
	require.Equal(t, []string{ada.GetId(), bob.GetId()}, members(eng))
	us, err := s.ListGroupUsers(t.Context(), eng.GetId(), readmodel.Range{Limit: 1, GreaterThan: ada.GetId()})
	require.NoError(t, err)
	require.Equal(t, []string{bob.GetId()}, ids(us))

	apply(t, s, 11, w.f.MembershipEvent(memberRemove, eng, ada))
	require.Equal(t, []string{bob.GetId()}, members(eng))

	apply(t, s, 12, w.f.GroupEvent(groupDeleted, eng))
	_, err = s.GetGroup(t.Context(), eng.GetId())
	require.ErrorIs(t, err, readmodel.ErrNotFound)
	require.Empty(t, members(eng))
	require.Equal(t, []string{bob.GetId()}, members(ops))
}

func testDirectoryDeleteCascades(t *testing.T, s readmodel.Store) {
	w := newWorld(t, s)
	keep := w.f.Directory(w.org.GetId(), "Keep")
	ada := w.f.User(w.dir, "ada@acme.com")
	eng := w.f.Group(w.dir, "Engineering")
	kept := w.f.User(keep, "kept@acme.com")
	keptGroup := w.f.Group(keep, "Kept")
	apply(t, s, 3, w.f.DirectoryEvent(dirActivated, keep),
		w.f.UserEvent(userCreated, ada), w.f.GroupEvent(groupCreated, eng), w.f.MembershipEvent(memberAdded, eng, ada),
		w.f.UserEvent(userCreated, kept), w.f.GroupEvent(groupCreated, keptGroup), w.f.MembershipEvent(memberAdded, keptGroup, kept))

	deleted := proto.CloneOf(w.dir)
	deleted.State = dsyncv1.DirectoryState_DIRECTORY_STATE_DELETING
	apply(t, s, 10, w.f.DirectoryEvent(dirDeleted, deleted))

	_, err := s.GetDirectory(t.Context(), w.dir.GetId())
	require.ErrorIs(t, err, readmodel.ErrNotFound)
	_, err = s.GetUser(t.Context(), ada.GetId())
	require.ErrorIs(t, err, readmodel.ErrNotFound)
	_, err = s.GetGroup(t.Context(), eng.GetId())
	require.ErrorIs(t, err, readmodel.ErrNotFound)
	users, err := s.ListUsers(t.Context(), w.dir.GetId(), readmodel.Range{Limit: 10})
	require.NoError(t, err)
	require.Empty(t, users)
	members, err := s.ListGroupUsers(t.Context(), eng.GetId(), readmodel.Range{Limit: 10})
	require.NoError(t, err)
	require.Empty(t, members)

	// The other directory is untouched.
	_, err = s.GetUser(t.Context(), kept.GetId())
	require.NoError(t, err)
	members, err = s.ListGroupUsers(t.Context(), keptGroup.GetId(), readmodel.Range{Limit: 10})
	require.NoError(t, err)
	require.Equal(t, []string{kept.GetId()}, ids(members))
	dirs, err := s.ListDirectories(t.Context(), readmodel.DirectoryFilter{}, readmodel.Range{Limit: 10})
	require.NoError(t, err)
	require.Equal(t, []string{keep.GetId()}, ids(dirs))
}

func testListDirectories(t *testing.T, s readmodel.Store) {
	f := NewFixtures()
	acme := f.Organization("Acme")
	globex := f.Organization("Globex")
	d1 := f.Directory(acme.GetId(), "Acme Okta")
	d2 := f.Directory(acme.GetId(), "Acme Entra")
	d3 := f.Directory(globex.GetId(), "Globex OKTA")
	d4 := f.Directory(globex.GetId(), "Ärzte Verzeichnis")
	apply(t, s, 1, f.OrganizationEvent(orgCreated, acme), f.OrganizationEvent(orgCreated, globex),
		f.DirectoryEvent(dirActivated, d1), f.DirectoryEvent(dirActivated, d2),
		f.DirectoryEvent(dirActivated, d3), f.DirectoryEvent(dirActivated, d4))

	renamed := proto.CloneOf(d2)
	renamed.Name = "Acme Azure"
	apply(t, s, 7, f.DirectoryEvent(dirUpdated, renamed))

	for _, tt := range []struct {
		name   string
		filter readmodel.DirectoryFilter
		r      readmodel.Range
		want   []string
	}{
		{"all", readmodel.DirectoryFilter{}, readmodel.Range{Limit: 10}, ids([]*dsyncv1.Directory{d1, d2, d3, d4})},
		{"all desc", readmodel.DirectoryFilter{}, readmodel.Range{Limit: 10, Desc: true}, ids([]*dsyncv1.Directory{d4, d3, d2, d1})},
		{"organization", readmodel.DirectoryFilter{OrganizationID: acme.GetId()}, readmodel.Range{Limit: 10}, ids([]*dsyncv1.Directory{d1, d2})},
		{"organization page", readmodel.DirectoryFilter{OrganizationID: globex.GetId()}, readmodel.Range{Limit: 1, GreaterThan: d3.GetId()}, ids([]*dsyncv1.Directory{d4})},
		{"search any case", readmodel.DirectoryFilter{Search: "okta"}, readmodel.Range{Limit: 10}, ids([]*dsyncv1.Directory{d1, d3})},
		{"search renamed", readmodel.DirectoryFilter{Search: "AZURE"}, readmodel.Range{Limit: 10}, ids([]*dsyncv1.Directory{d2})},
		{"search old name", readmodel.DirectoryFilter{Search: "entra"}, readmodel.Range{Limit: 10}, nil},
		{"search non-ascii", readmodel.DirectoryFilter{Search: "ärzte"}, readmodel.Range{Limit: 10}, ids([]*dsyncv1.Directory{d4})},
		{"search wildcards are text", readmodel.DirectoryFilter{Search: "%"}, readmodel.Range{Limit: 10}, nil},
		{"search and organization", readmodel.DirectoryFilter{OrganizationID: acme.GetId(), Search: "okta"}, readmodel.Range{Limit: 10}, ids([]*dsyncv1.Directory{d1})},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dirs, err := s.ListDirectories(t.Context(), tt.filter, tt.r)
			require.NoError(t, err)
			require.Equal(t, tt.want, nilIfEmpty(ids(dirs)))
		})
	}
	got, err := s.GetDirectory(t.Context(), d2.GetId())
	require.NoError(t, err)
	requireProtoEqual(t, renamed, got)
}

func groupIDs(gs []*dsyncv1.GroupWithCount) []string {
	out := make([]string, 0, len(gs))
	for _, g := range gs {
		out = append(out, g.GetGroup().GetId())
	}
	return out
}

func counts(gs []*dsyncv1.GroupWithCount) []int64 {
	out := make([]int64, 0, len(gs))
	for _, g := range gs {
		out = append(out, g.GetMemberCount())
	}
	return out
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

func testOrganizations(t *testing.T, s readmodel.Store) {
	f := NewFixtures()
	a := f.Organization("Acme", "acme.com")
	b := f.Organization("Globex")
	apply(t, s, 1, f.OrganizationEvent(orgCreated, a), f.OrganizationEvent(orgCreated, b))
	a2 := proto.CloneOf(a)
	a2.Domains = []string{"acme.com", "acme.org"}
	a2.UpdatedAt = f.tick()
	apply(t, s, 3, f.OrganizationEvent(orgUpdated, a2))

	got, err := s.GetOrganization(t.Context(), a.GetId())
	require.NoError(t, err)
	requireProtoEqual(t, a2, got)
	orgs, err := s.ListOrganizations(t.Context(), readmodel.Range{Limit: 10, Desc: true})
	require.NoError(t, err)
	require.Equal(t, []string{b.GetId(), a.GetId()}, ids(orgs))
	orgs, err = s.ListOrganizations(t.Context(), readmodel.Range{Limit: 10, LessThan: b.GetId()})
	require.NoError(t, err)
	require.Equal(t, []string{a.GetId()}, ids(orgs))
}

// testExoticText stores values a SQL column may reject (NUL, far-future
// times); they must never stall the projection, and reads return them exactly.
func testExoticText(t *testing.T, s readmodel.Store) {
	w := newWorld(t, s)
	u := w.f.User(w.dir, "nul\x00byte@acme.com")
	u.FirstName = "O'Brien; DROP TABLE users; --"
	u.LastName = "日本語 🎉"
	u.CreatedAt.Seconds = 1 << 40 // far outside any SQL time range
	apply(t, s, 3, w.f.UserEvent(userCreated, u))
	got, err := s.GetUser(t.Context(), u.GetId())
	require.NoError(t, err)
	requireProtoEqual(t, u, got)
}
