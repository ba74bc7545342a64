package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/dsync-dev/dsync/pkg/event"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
	"github.com/dsync-dev/dsync/services/projector/internal/readmodel"
)

func groupCount(t *testing.T, s readmodel.Store, g *dsyncv1.Group) int64 {
	t.Helper()
	got, err := s.GetGroup(t.Context(), g.GetId())
	require.NoError(t, err)
	return got.GetMemberCount()
}

// testMemberCounts checks that the stored count follows every way an edge
// comes and goes, including edges that arrive before their group.
func testMemberCounts(t *testing.T, s readmodel.Store) {
	w := newWorld(t, s)
	ada := w.f.User(w.dir, "ada@acme.com")
	bob := w.f.User(w.dir, "bob@acme.com")
	eng := w.f.Group(w.dir, "Engineering")
	late := w.f.Group(w.dir, "Late")
	apply(t, s, 3,
		w.f.UserEvent(userCreated, ada), w.f.UserEvent(userCreated, bob),
		// Edges before the group exists: its row counts them on insert.
		w.f.MembershipEvent(memberAdded, late, ada), w.f.MembershipEvent(memberAdded, late, bob),
		w.f.GroupEvent(groupCreated, late),
		w.f.GroupEvent(groupCreated, eng),
		w.f.MembershipEvent(memberAdded, eng, ada), w.f.MembershipEvent(memberAdded, eng, ada), // repeat: no-op
		w.f.MembershipEvent(memberAdded, eng, bob))
	require.Equal(t, int64(2), groupCount(t, s, late))
	require.Equal(t, int64(2), groupCount(t, s, eng))

	renamed := proto.CloneOf(eng)
	renamed.Name = "Eng"
	apply(t, s, 20, w.f.GroupEvent(dsyncv1.EventType_EVENT_TYPE_GROUP_UPDATED, renamed))
	require.Equal(t, int64(2), groupCount(t, s, eng), "an update keeps the count")

	apply(t, s, 21, w.f.MembershipEvent(memberRemove, eng, ada), w.f.MembershipEvent(memberRemove, eng, ada))
	require.Equal(t, int64(1), groupCount(t, s, eng), "a repeated remove is a no-op")

	apply(t, s, 23, w.f.UserEvent(userDeleted, bob))
	require.Equal(t, int64(0), groupCount(t, s, eng))
	require.Equal(t, int64(1), groupCount(t, s, late))
}

func testFindAndCount(t *testing.T, s readmodel.Store) {
	w := newWorld(t, s)
	other := w.f.Directory(w.org.GetId(), "Other")
	ada := w.f.User(w.dir, "Ada@Acme.com")
	ada.Email = "Ada.Lovelace@ACME.com"
	ada.IdpId = "00u1"
	bob := w.f.User(w.dir, "bob@acme.com")
	twin := w.f.User(other, "ada@acme.com") // same name, other directory
	eng := w.f.Group(w.dir, "Engineering")
	ops := w.f.Group(w.dir, "Ops")
	apply(t, s, 3, w.f.DirectoryEvent(dirActivated, other),
		w.f.UserEvent(userCreated, ada), w.f.UserEvent(userCreated, bob), w.f.UserEvent(userCreated, twin),
		w.f.GroupEvent(groupCreated, eng), w.f.GroupEvent(groupCreated, ops),
		w.f.MembershipEvent(memberAdded, eng, ada), w.f.MembershipEvent(memberAdded, ops, ada),
		w.f.MembershipEvent(memberAdded, ops, bob))

	r := readmodel.Range{Limit: 10}
	for _, tt := range []struct {
		name string
		key  readmodel.Key
		want []string
	}{
		{"user name any case", readmodel.Key{Field: readmodel.KeyUserName, Value: "ADA@acme.COM"}, []string{ada.GetId()}},
		{"email any case", readmodel.Key{Field: readmodel.KeyEmail, Value: "ada.lovelace@acme.com"}, []string{ada.GetId()}},
		{"idp id", readmodel.Key{Field: readmodel.KeyIdpID, Value: "00u1"}, []string{ada.GetId()}},
		{"idp id is case exact", readmodel.Key{Field: readmodel.KeyIdpID, Value: "00U1"}, nil},
		{"id", readmodel.Key{Field: readmodel.KeyID, Value: bob.GetId()}, []string{bob.GetId()}},
		{"id of another directory", readmodel.Key{Field: readmodel.KeyID, Value: twin.GetId()}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			us, err := s.FindUsers(t.Context(), w.dir.GetId(), tt.key, r)
			require.NoError(t, err)
			require.Equal(t, tt.want, nilIfEmpty(ids(us)))
		})
	}
	for _, tt := range []struct {
		name string
		key  readmodel.Key
		want []string
	}{
		{"name any case", readmodel.Key{Field: readmodel.KeyGroupName, Value: "ENGINEERING"}, []string{eng.GetId()}},
		{"idp id", readmodel.Key{Field: readmodel.KeyIdpID, Value: "idp-Ops"}, []string{ops.GetId()}},
		{"member", readmodel.Key{Field: readmodel.KeyMember, Value: ada.GetId()}, []string{eng.GetId(), ops.GetId()}},
		{"member of one", readmodel.Key{Field: readmodel.KeyMember, Value: bob.GetId()}, []string{ops.GetId()}},
		{"id", readmodel.Key{Field: readmodel.KeyID, Value: ops.GetId()}, []string{ops.GetId()}},
	} {
		t.Run("group "+tt.name, func(t *testing.T) {
			gs, err := s.FindGroups(t.Context(), w.dir.GetId(), tt.key, r)
			require.NoError(t, err)
			require.Equal(t, tt.want, nilIfEmpty(groupIDs(gs)))
		})
	}
	gs, err := s.FindGroups(t.Context(), w.dir.GetId(), readmodel.Key{Field: readmodel.KeyMember, Value: ada.GetId()}, readmodel.Range{Limit: 1, GreaterThan: eng.GetId()})
	require.NoError(t, err)
	require.Equal(t, []string{ops.GetId()}, groupIDs(gs))

	n, err := s.CountUsers(t.Context(), w.dir.GetId())
	require.NoError(t, err)
	require.Equal(t, int64(2), n)
	n, err = s.CountGroups(t.Context(), w.dir.GetId())
	require.NoError(t, err)
	require.Equal(t, int64(2), n)

	// Offset, for SCIM's index-based pages.
	us, err := s.ListUsers(t.Context(), w.dir.GetId(), readmodel.Range{Limit: 10, Offset: 1})
	require.NoError(t, err)
	require.Equal(t, []string{bob.GetId()}, ids(us))
}

func testEvents(t *testing.T, s readmodel.Store) {
	w := newWorld(t, s) // sequences 1 (organization: not public) and 2 (dsync.activated)
	other := w.f.Directory(w.org.GetId(), "Other")
	ada := w.f.User(w.dir, "ada@acme.com")
	eng := w.f.Group(w.dir, "Engineering")
	settings := proto.CloneOf(w.dir)
	settings.Name = "Renamed"
	evs := []*dsyncv1.Event{
		w.f.DirectoryEvent(dirActivated, other),              // 10
		w.f.UserEvent(userCreated, ada),                      // 11
		w.f.DirectoryEvent(dirUpdated, settings),             // 12: internal, not recorded
		w.f.GroupEvent(groupCreated, eng),                    // 13
		w.f.MembershipEvent(memberAdded, eng, ada),           // 14
		w.f.UserEvent(userCreated, w.f.User(other, "x@o.c")), // 15
	}
	apply(t, s, 10, evs...)
	// A replay changes nothing.
	_, err := readmodel.Apply(t.Context(), s, Records(10, evs...))
	require.NoError(t, err)

	seqs := func(f readmodel.EventFilter, r readmodel.SeqRange) []uint64 {
		t.Helper()
		if r.Limit == 0 {
			r.Limit = 100
		}
		recs, err := s.ListEvents(t.Context(), f, r)
		require.NoError(t, err)
		var out []uint64
		for _, rec := range recs {
			out = append(out, rec.Seq)
		}
		return out
	}
	require.Equal(t, []uint64{2, 10, 11, 13, 14, 15}, seqs(readmodel.EventFilter{}, readmodel.SeqRange{}))
	require.Equal(t, []uint64{15, 14}, seqs(readmodel.EventFilter{}, readmodel.SeqRange{Desc: true, Limit: 2}))
	require.Equal(t, []uint64{11, 13}, seqs(readmodel.EventFilter{}, readmodel.SeqRange{After: 10, Before: 14}))
	require.Equal(t, []uint64{2, 11, 13, 14}, seqs(readmodel.EventFilter{DirectoryID: w.dir.GetId()}, readmodel.SeqRange{}))
	require.Equal(t, []uint64{11, 15}, seqs(readmodel.EventFilter{Types: []string{"dsync.user.created"}}, readmodel.SeqRange{}))
	require.Equal(t, []uint64{2, 10, 11}, seqs(readmodel.EventFilter{Types: []string{"dsync.user.created", "dsync.activated"}, OrganizationID: w.org.GetId()}, readmodel.SeqRange{Before: 13}))
	require.Empty(t, seqs(readmodel.EventFilter{OrganizationID: "org_none"}, readmodel.SeqRange{}))

	recs, err := s.ListEvents(t.Context(), readmodel.EventFilter{}, readmodel.SeqRange{After: 10, Limit: 1})
	require.NoError(t, err)
	requireProtoEqual(t, evs[1], recs[0].Event)
	seq, err := s.EventSeq(t.Context(), evs[3].GetId())
	require.NoError(t, err)
	require.Equal(t, uint64(13), seq)
	_, err = s.EventSeq(t.Context(), evs[2].GetId())
	require.ErrorIs(t, err, readmodel.ErrNotFound, "internal events are not recorded")

	// Time ranges and retention go by when the event occurred.
	at := evs[3].GetOccurredAt().AsTime()
	require.Equal(t, []uint64{13, 14, 15}, seqs(readmodel.EventFilter{OccurredFrom: at}, readmodel.SeqRange{}))
	require.Equal(t, []uint64{2, 10, 11}, seqs(readmodel.EventFilter{OccurredTo: at}, readmodel.SeqRange{}))
	n, err := s.PruneEvents(t.Context(), at)
	require.NoError(t, err)
	require.Equal(t, int64(3), n)
	require.Equal(t, []uint64{13, 14, 15}, seqs(readmodel.EventFilter{}, readmodel.SeqRange{}))
	n, err = s.PruneEvents(t.Context(), at.Add(-time.Hour))
	require.NoError(t, err)
	require.Zero(t, n)
}

// testGroupsOfUsers checks the batched "groups of a page of users" read.
func testGroupsOfUsers(t *testing.T, s readmodel.Store) {
	w := newWorld(t, s)
	ada := w.f.User(w.dir, "ada@acme.com")
	bob := w.f.User(w.dir, "bob@acme.com")
	cy := w.f.User(w.dir, "cy@acme.com")
	eng := w.f.Group(w.dir, "Engineering")
	ops := w.f.Group(w.dir, "Ops")
	apply(t, s, 3,
		w.f.UserEvent(userCreated, ada), w.f.UserEvent(userCreated, bob), w.f.UserEvent(userCreated, cy),
		w.f.GroupEvent(groupCreated, eng), w.f.GroupEvent(groupCreated, ops),
		w.f.MembershipEvent(memberAdded, ops, bob), w.f.MembershipEvent(memberAdded, eng, bob),
		w.f.MembershipEvent(memberAdded, eng, ada))
	unknown := w.f.IDs.New(event.PrefixUser)

	for _, tt := range []struct {
		name  string
		users []string
		want  map[string][]string
	}{
		{"none", nil, map[string][]string{}},
		{"one", []string{ada.GetId()}, map[string][]string{ada.GetId(): {eng.GetId()}}},
		{"page", []string{cy.GetId(), bob.GetId(), ada.GetId(), unknown},
			map[string][]string{ada.GetId(): {eng.GetId()}, bob.GetId(): {eng.GetId(), ops.GetId()}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.GroupsOfUsers(t.Context(), tt.users)
			require.NoError(t, err)
			gotIDs := make(map[string][]string, len(got))
			for u, gs := range got {
				gotIDs[u] = groupIDs(gs)
			}
			require.Equal(t, tt.want, gotIDs)
		})
	}
	got, err := s.GroupsOfUsers(t.Context(), []string{bob.GetId()})
	require.NoError(t, err)
	requireProtoEqual(t, eng, got[bob.GetId()][0].GetGroup())
	require.Equal(t, []int64{2, 1}, counts(got[bob.GetId()]))
	require.NotZero(t, got[bob.GetId()][0].GetVersion())

	apply(t, s, 11, w.f.MembershipEvent(memberRemove, eng, bob), w.f.GroupEvent(groupDeleted, ops))
	got, err = s.GroupsOfUsers(t.Context(), []string{bob.GetId(), ada.GetId()})
	require.NoError(t, err)
	require.Empty(t, got[bob.GetId()], "removed edges and deleted groups are gone")
	require.Equal(t, []string{eng.GetId()}, groupIDs(got[ada.GetId()]))
}

// testDirectoryCounts checks that the stored user and group counts of a
// directory follow creates, updates (no change), redeliveries, deletes and
// the directory's deletion, per directory.
func testDirectoryCounts(t *testing.T, s readmodel.Store) {
	w := newWorld(t, s)
	other := w.f.Directory(w.org.GetId(), "Other")
	counts := func(dir *dsyncv1.Directory) [2]int64 {
		t.Helper()
		u, err := s.CountUsers(t.Context(), dir.GetId())
		require.NoError(t, err)
		g, err := s.CountGroups(t.Context(), dir.GetId())
		require.NoError(t, err)
		return [2]int64{u, g}
	}
	require.Equal(t, [2]int64{0, 0}, counts(w.dir), "a directory without rows")

	ada, bob := w.f.User(w.dir, "ada@acme.com"), w.f.User(w.dir, "bob@acme.com")
	twin := w.f.User(other, "ada@acme.com")
	eng, ops := w.f.Group(w.dir, "Engineering"), w.f.Group(w.dir, "Ops")
	adaUpdated := proto.CloneOf(ada)
	adaUpdated.FirstName = "Augusta"
	engUpdated := proto.CloneOf(eng)
	engUpdated.Name = "Eng"
	apply(t, s, 3, w.f.DirectoryEvent(dirActivated, other),
		w.f.UserEvent(userCreated, ada), w.f.UserEvent(userCreated, bob), w.f.UserEvent(userCreated, twin),
		w.f.UserEvent(userUpdated, adaUpdated), w.f.UserEvent(userCreated, ada), // updates: no change
		w.f.GroupEvent(groupCreated, eng), w.f.GroupEvent(groupCreated, ops),
		w.f.GroupEvent(dsyncv1.EventType_EVENT_TYPE_GROUP_UPDATED, engUpdated))
	require.Equal(t, [2]int64{2, 2}, counts(w.dir))
	require.Equal(t, [2]int64{1, 0}, counts(other))

	apply(t, s, 20, w.f.UserEvent(userDeleted, bob), w.f.UserEvent(userDeleted, bob), // a repeated delete is a no-op
		w.f.GroupEvent(groupDeleted, ops))
	require.Equal(t, [2]int64{1, 1}, counts(w.dir))

	deleted := proto.CloneOf(w.dir)
	deleted.State = dsyncv1.DirectoryState_DIRECTORY_STATE_DELETING
	apply(t, s, 30, w.f.DirectoryEvent(dirDeleted, deleted))
	require.Equal(t, [2]int64{0, 0}, counts(w.dir))
	require.Equal(t, [2]int64{1, 0}, counts(other))
}
