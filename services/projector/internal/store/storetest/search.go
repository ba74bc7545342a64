package storetest

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/dsync-dev/dsync/pkg/scim/filter"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
	"github.com/dsync-dev/dsync/services/projector/internal/readmodel"
)

func userIDs(us []readmodel.VersionedUser) []string {
	out := make([]string, 0, len(us))
	for _, u := range us {
		out = append(out, u.User.GetId())
	}
	return out
}

// testVersions checks that a row's version is the sequence of the last
// event applied to it, and that membership changes leave a group's alone.
func testVersions(t *testing.T, s readmodel.Store) {
	w := newWorld(t, s)
	ada := w.f.User(w.dir, "ada@acme.com")
	eng := w.f.Group(w.dir, "Engineering")
	apply(t, s, 3, w.f.UserEvent(userCreated, ada), w.f.GroupEvent(groupCreated, eng))
	ada2 := proto.CloneOf(ada)
	ada2.FirstName = "Augusta"
	apply(t, s, 7, w.f.UserEvent(userUpdated, ada2), w.f.MembershipEvent(memberAdded, eng, ada))

	us, err := s.QueryUsers(t.Context(), readmodel.Query{DirectoryID: w.dir.GetId(), Limit: 10})
	require.NoError(t, err)
	require.Len(t, us, 1)
	require.Equal(t, uint64(7), us[0].Version)
	requireProtoEqual(t, ada2, us[0].User)
	gs, err := s.QueryGroups(t.Context(), readmodel.Query{DirectoryID: w.dir.GetId(), Limit: 10})
	require.NoError(t, err)
	require.Len(t, gs, 1)
	require.Equal(t, uint64(4), gs[0].GetVersion(), "a membership change is not a change of the group")
	require.Equal(t, int64(1), gs[0].GetMemberCount())
	g, err := s.GetGroup(t.Context(), eng.GetId())
	require.NoError(t, err)
	require.Equal(t, uint64(4), g.GetVersion())

	// A replayed event does not move the version.
	_, err = readmodel.Apply(t.Context(), s, Records(3, w.f.UserEvent(userCreated, ada)))
	require.NoError(t, err)
	us, err = s.QueryUsers(t.Context(), readmodel.Query{DirectoryID: w.dir.GetId(), Limit: 10})
	require.NoError(t, err)
	require.Equal(t, uint64(7), us[0].Version)
}

// testQuerySorts checks every store sort key, both ways, with offsets, and
// the keyed narrowing (including any email of a user).
func testQuerySorts(t *testing.T, s readmodel.Store) {
	w := newWorld(t, s)
	other := w.f.Directory(w.org.GetId(), "Other")
	// Created in id order; names sort in another order.
	names := []string{"delta", "Alpha", "charlie", "bravo"}
	var users []*dsyncv1.User
	evs := []*dsyncv1.Event{w.f.DirectoryEvent(dirActivated, other)}
	for i, n := range names {
		u := w.f.User(w.dir, n+"@acme.com")
		u.DisplayName = names[(i+1)%len(names)]
		u.IdpId = fmt.Sprintf("x%d", len(names)-i)
		u.Emails = append(u.Emails, &dsyncv1.Email{Value: "Alias." + n + "@Example.org", Type: "other"})
		users = append(users, u)
		evs = append(evs, w.f.UserEvent(userCreated, u))
	}
	evs = append(evs, w.f.UserEvent(userCreated, w.f.User(other, "alpha@acme.com")))
	// updated_at order: the first user is updated last.
	first := proto.CloneOf(users[0])
	first.UpdatedAt = w.f.tick()
	evs = append(evs, w.f.UserEvent(userUpdated, first))
	apply(t, s, 3, evs...)
	id := func(i int) string { return users[i].GetId() }

	for _, tt := range []struct {
		sort readmodel.SortKey
		want []string // ascending
	}{
		{readmodel.SortID, []string{id(0), id(1), id(2), id(3)}},
		{readmodel.SortUserName, []string{id(1), id(3), id(2), id(0)}},
		{readmodel.SortDisplayName, []string{id(0), id(2), id(1), id(3)}}, // Alpha, bravo, charlie, delta
		{readmodel.SortExternalID, []string{id(3), id(2), id(1), id(0)}},
		{readmodel.SortEmail, []string{id(1), id(3), id(2), id(0)}},
		{readmodel.SortCreated, []string{id(0), id(1), id(2), id(3)}},
		{readmodel.SortUpdated, []string{id(1), id(2), id(3), id(0)}},
	} {
		t.Run(fmt.Sprint(tt.sort), func(t *testing.T) {
			q := readmodel.Query{DirectoryID: w.dir.GetId(), Sort: tt.sort, Limit: 10}
			got, err := s.QueryUsers(t.Context(), q)
			require.NoError(t, err)
			require.Equal(t, tt.want, userIDs(got))
			q.Desc, q.Offset, q.Limit = true, 1, 2
			got, err = s.QueryUsers(t.Context(), q)
			require.NoError(t, err)
			require.Equal(t, []string{tt.want[2], tt.want[1]}, userIDs(got))
		})
	}
	_, err := s.QueryUsers(t.Context(), readmodel.Query{DirectoryID: w.dir.GetId(), Sort: readmodel.SortFamilyName, Limit: 1})
	require.Error(t, err, "family name is sorted in memory, not by the store")

	for _, tt := range []struct {
		name string
		key  readmodel.Key
		want []string
	}{
		{"primary email", readmodel.Key{Field: readmodel.KeyEmail, Value: "BRAVO@acme.com"}, []string{id(3)}},
		{"other email", readmodel.Key{Field: readmodel.KeyEmail, Value: "alias.charlie@example.ORG"}, []string{id(2)}},
		{"user name", readmodel.Key{Field: readmodel.KeyUserName, Value: "ALPHA@acme.com"}, []string{id(1)}},
		{"idp id", readmodel.Key{Field: readmodel.KeyIdpID, Value: "x1"}, []string{id(3)}},
		{"id", readmodel.Key{Field: readmodel.KeyID, Value: id(2)}, []string{id(2)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.QueryUsers(t.Context(), readmodel.Query{DirectoryID: w.dir.GetId(), Key: &tt.key, Limit: 10})
			require.NoError(t, err)
			require.Equal(t, tt.want, userIDs(got))
		})
	}
	byEmail := func(email string) []string {
		us, err := s.FindUsers(t.Context(), w.dir.GetId(), readmodel.Key{Field: readmodel.KeyEmail, Value: email}, readmodel.Range{Limit: 10})
		require.NoError(t, err)
		return nilIfEmpty(ids(us))
	}
	require.Equal(t, []string{id(2)}, byEmail("Alias.Charlie@example.org"))

	// An update drops the emails the user no longer has; a delete drops all.
	charlie := proto.CloneOf(users[2])
	charlie.Emails = charlie.Emails[:1]
	charlie.RawAttributes, _ = structpb.NewStruct(map[string]any{"emails": []any{map[string]any{"value": "raw@acme.com"}}})
	apply(t, s, 20, w.f.UserEvent(userUpdated, charlie), w.f.UserEvent(userDeleted, users[3]))
	require.Nil(t, byEmail("alias.charlie@example.org"))
	require.Equal(t, []string{id(2)}, byEmail("charlie@acme.com"))
	require.Equal(t, []string{id(2)}, byEmail("RAW@acme.com"), "emails[].value of the raw SCIM attributes count")
	require.Nil(t, byEmail("bravo@acme.com"))

	// Groups.
	g1, g2 := w.f.Group(w.dir, "ops"), w.f.Group(w.dir, "Admins")
	apply(t, s, 30, w.f.GroupEvent(groupCreated, g1), w.f.GroupEvent(groupCreated, g2),
		w.f.MembershipEvent(memberAdded, g1, users[0]))
	gs, err := s.QueryGroups(t.Context(), readmodel.Query{DirectoryID: w.dir.GetId(), Sort: readmodel.SortDisplayName, Limit: 10})
	require.NoError(t, err)
	require.Equal(t, []string{g2.GetId(), g1.GetId()}, groupIDs(gs))
	gs, err = s.QueryGroups(t.Context(), readmodel.Query{DirectoryID: w.dir.GetId(), Sort: readmodel.SortCreated, Desc: true, Limit: 10})
	require.NoError(t, err)
	require.Equal(t, []string{g2.GetId(), g1.GetId()}, groupIDs(gs))
	for _, k := range []readmodel.Key{
		{Field: readmodel.KeyMember, Value: id(0)},
		{Field: readmodel.KeyGroupName, Value: "OPS"},
		{Field: readmodel.KeyIdpID, Value: "idp-ops"},
	} {
		gs, err = s.QueryGroups(t.Context(), readmodel.Query{DirectoryID: w.dir.GetId(), Key: &k, Limit: 10})
		require.NoError(t, err)
		require.Equal(t, []string{g1.GetId()}, groupIDs(gs), "key %v", k)
	}
	gs, err = s.QueryGroups(t.Context(), readmodel.Query{DirectoryID: w.dir.GetId(), GreaterThan: g1.GetId(), Limit: 10})
	require.NoError(t, err)
	require.Equal(t, []string{g2.GetId()}, groupIDs(gs))
}

// testSearchSorted runs readmodel.SearchUsers and SearchGroups (the SCIM
// searches) with sorts, filters and pages on the store.
func testSearchSorted(t *testing.T, s readmodel.Store) {
	w := newWorld(t, s)
	var evs []*dsyncv1.Event
	var users []*dsyncv1.User
	for i, last := range []string{"Young", "adams", "Baker", "Xu", "carter"} {
		u := w.f.User(w.dir, fmt.Sprintf("u%d@acme.com", i))
		u.LastName = last
		emails := []any{map[string]any{"value": u.GetEmail(), "primary": true}}
		if i%2 == 0 {
			u.Emails = append(u.Emails, &dsyncv1.Email{Value: "team@acme.com"})
			emails = append(emails, map[string]any{"value": "team@acme.com"})
		}
		// Filters see the SCIM attributes the IdP sent.
		u.RawAttributes, _ = structpb.NewStruct(map[string]any{
			"userName": u.GetUserName(), "name": map[string]any{"familyName": last}, "emails": emails,
		})
		users = append(users, u)
		evs = append(evs, w.f.UserEvent(userCreated, u))
	}
	apply(t, s, 3, evs...)
	id := func(i int) string { return users[i].GetId() }
	parse := func(f string) filter.Expr {
		if f == "" {
			return nil
		}
		e, err := filter.Parse(f)
		require.NoError(t, err)
		return e
	}
	for _, tt := range []struct {
		name   string
		filter string
		sort   string
		desc   bool
		start  int
		count  int
		want   []string
		total  int64
	}{
		{"family name in memory", "", "name.familyName", false, 1, 10, []string{id(1), id(2), id(4), id(3), id(0)}, 5},
		{"family name page", "", "name.familyName", true, 2, 2, []string{id(3), id(4)}, 5},
		{"indexed sort", "", "userName", true, 1, 2, []string{id(4), id(3)}, 5},
		{"filtered by any email, sorted", `emails.value eq "TEAM@acme.com"`, "name.familyName", false, 1, 10, []string{id(2), id(4), id(0)}, 3},
		{"filtered sorted page", `emails[value eq "team@acme.com"]`, "meta.created", true, 2, 1, []string{id(2)}, 3},
		{"unnarrowed filter, sorted", `name.familyName sw "a" or name.familyName sw "c"`, "userName", true, 1, 10, []string{id(4), id(1)}, 2},
		{"total only", "", "userName", false, 1, 0, nil, 5},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sort, err := readmodel.ParseSort(readmodel.ResourceUser, tt.sort)
			require.NoError(t, err)
			got, total, err := readmodel.SearchUsers(t.Context(), s, readmodel.Search{
				DirectoryID: w.dir.GetId(), Filter: parse(tt.filter), StartIndex: tt.start, Count: tt.count, Sort: sort, Desc: tt.desc,
			})
			require.NoError(t, err)
			require.Equal(t, tt.total, total)
			require.Equal(t, tt.want, nilIfEmpty(userIDs(got)))
			for _, u := range got {
				require.NotZero(t, u.Version)
			}
		})
	}
	_, err := readmodel.ParseSort(readmodel.ResourceUser, "title")
	require.ErrorIs(t, err, readmodel.ErrInvalidQuery)
	_, err = readmodel.ParseSort(readmodel.ResourceGroup, "userName")
	require.ErrorIs(t, err, readmodel.ErrInvalidQuery)
	k, err := readmodel.ParseSort(readmodel.ResourceGroup, "urn:ietf:params:scim:schemas:core:2.0:Group:DISPLAYNAME")
	require.NoError(t, err)
	require.Equal(t, readmodel.SortDisplayName, k)
}

// testEventResources checks the Events API's user and group filters.
func testEventResources(t *testing.T, s readmodel.Store) {
	w := newWorld(t, s)
	ada, bob := w.f.User(w.dir, "ada@acme.com"), w.f.User(w.dir, "bob@acme.com")
	eng := w.f.Group(w.dir, "Engineering")
	apply(t, s, 3,
		w.f.UserEvent(userCreated, ada),            // 3
		w.f.UserEvent(userCreated, bob),            // 4
		w.f.GroupEvent(groupCreated, eng),          // 5
		w.f.MembershipEvent(memberAdded, eng, ada), // 6
		w.f.MembershipEvent(memberAdded, eng, bob), // 7
		w.f.UserEvent(userDeleted, ada),            // 8
		w.f.GroupEvent(groupDeleted, eng),          // 9
	)
	seqs := func(f readmodel.EventFilter, r readmodel.SeqRange) []uint64 {
		t.Helper()
		r.Limit = max(r.Limit, 100)
		recs, err := s.ListEvents(t.Context(), f, r)
		require.NoError(t, err)
		var out []uint64
		for _, rec := range recs {
			out = append(out, rec.Seq)
		}
		return out
	}
	require.Equal(t, []uint64{3, 6, 8}, seqs(readmodel.EventFilter{UserID: ada.GetId()}, readmodel.SeqRange{}))
	require.Equal(t, []uint64{5, 6, 7, 9}, seqs(readmodel.EventFilter{GroupID: eng.GetId()}, readmodel.SeqRange{}))
	require.Equal(t, []uint64{7}, seqs(readmodel.EventFilter{UserID: bob.GetId(), GroupID: eng.GetId()}, readmodel.SeqRange{}))
	require.Equal(t, []uint64{8, 6}, seqs(readmodel.EventFilter{UserID: ada.GetId(), DirectoryID: w.dir.GetId()}, readmodel.SeqRange{Desc: true, After: 3}))
	require.Empty(t, seqs(readmodel.EventFilter{UserID: ada.GetId(), Types: []string{"dsync.group.created"}}, readmodel.SeqRange{}))
}

// Backfill checks the backfill a store runs on open over rows written
// before migration 0003: open returns the store of one database each time
// it is called, and erase (given the database) makes its rows look like
// such rows (display_name_lower and events' user_id NULL, no user_emails).
func Backfill(t *testing.T, open func() readmodel.Store, erase func(s readmodel.Store)) {
	s := open()
	w := newWorld(t, s)
	ada := w.f.User(w.dir, "ada@acme.com")
	ada.DisplayName = "Ada L"
	eng := w.f.Group(w.dir, "Engineering")
	apply(t, s, 3, w.f.UserEvent(userCreated, ada), w.f.GroupEvent(groupCreated, eng), w.f.MembershipEvent(memberAdded, eng, ada))
	erase(s)
	require.NoError(t, s.Close())

	s = open()
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	us, err := s.FindUsers(t.Context(), w.dir.GetId(), readmodel.Key{Field: readmodel.KeyEmail, Value: "ADA@acme.com"}, readmodel.Range{Limit: 10})
	require.NoError(t, err)
	require.Equal(t, []string{ada.GetId()}, ids(us))
	recs, err := s.ListEvents(t.Context(), readmodel.EventFilter{UserID: ada.GetId()}, readmodel.SeqRange{Limit: 10})
	require.NoError(t, err)
	require.Len(t, recs, 2)
	vus, err := s.QueryUsers(t.Context(), readmodel.Query{DirectoryID: w.dir.GetId(), Sort: readmodel.SortDisplayName, Limit: 10})
	require.NoError(t, err)
	require.Equal(t, []string{ada.GetId()}, userIDs(vus))
}
