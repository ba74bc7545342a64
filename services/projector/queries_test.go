package projector_test

import (
	"context"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/dsync-dev/dsync/pkg/natsx/natstest"
	"github.com/dsync-dev/dsync/pkg/pgtest"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
	"github.com/dsync-dev/dsync/services/projector"
	"github.com/dsync-dev/dsync/services/projector/internal/store/storetest"
)

func TestQueriesSQLite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "readmodel.db")
	testQueries(t, func(cfg *projector.Config) { cfg.SQLitePath = path })
}

func TestQueriesPostgres(t *testing.T) {
	url := pgtest.NewDatabase(t)
	testQueries(t, func(cfg *projector.Config) { cfg.PostgresURL = url })
}

func groupIDs(gs []*dsyncv1.GroupWithCount) []string {
	out := make([]string, 0, len(gs))
	for _, g := range gs {
		out = append(out, g.GetGroup().GetId())
	}
	return out
}

// testQueries covers the group, search, lookup and event RPCs over gRPC.
func testQueries(t *testing.T, withStore func(*projector.Config)) {
	ns := natstest.Run(t)
	js, _ := ns.JetStream(t)
	cfg := projector.Config{NATS: ns.Connect(t), ConsistencyWait: 3 * time.Second}
	withStore(&cfg)
	p := start(t, cfg)
	ctx := t.Context()

	f := storetest.NewFixtures()
	org := f.Organization("Acme", "acme.com")
	dir := f.Directory(org.GetId(), "Acme Okta")
	publish(t, js, f.OrganizationEvent(dsyncv1.EventType_EVENT_TYPE_ORGANIZATION_CREATED, org))
	publish(t, js, f.DirectoryEvent(dsyncv1.EventType_EVENT_TYPE_DIRECTORY_ACTIVATED, dir))
	ada, bob, cy := f.User(dir, "ada@acme.com"), f.User(dir, "Bob@Acme.com"), f.User(dir, "cy@acme.com")
	ada.RawAttributes, _ = structpb.NewStruct(map[string]any{
		"userName": "ada@acme.com", "name": map[string]any{"familyName": "Lovelace"}, "title": "Countess",
		"emails": []any{map[string]any{"value": "ada@acme.com", "type": "work"}},
	})
	for _, u := range []*dsyncv1.User{ada, bob, cy} {
		publish(t, js, f.UserEvent(dsyncv1.EventType_EVENT_TYPE_USER_CREATED, u))
	}
	eng, ops := f.Group(dir, "Engineering"), f.Group(dir, "Ops")
	publish(t, js, f.GroupEvent(dsyncv1.EventType_EVENT_TYPE_GROUP_CREATED, eng))
	publish(t, js, f.GroupEvent(dsyncv1.EventType_EVENT_TYPE_GROUP_CREATED, ops))
	publish(t, js, f.MembershipEvent(dsyncv1.EventType_EVENT_TYPE_GROUP_USER_ADDED, eng, ada))
	publish(t, js, f.MembershipEvent(dsyncv1.EventType_EVENT_TYPE_GROUP_USER_ADDED, eng, bob))
	last := publish(t, js, f.MembershipEvent(dsyncv1.EventType_EVENT_TYPE_GROUP_USER_ADDED, ops, bob))

	g, err := p.client.GetGroup(ctx, &dsyncv1.GetGroupRequest{Id: eng.GetId(), MinSequence: last})
	require.NoError(t, err)
	require.Equal(t, "Engineering", g.GetGroup().GetName())
	require.Equal(t, int64(2), g.GetMemberCount())
	gs, err := p.client.ListGroups(ctx, &dsyncv1.ListGroupsRequest{DirectoryId: dir.GetId()})
	require.NoError(t, err)
	require.Equal(t, []string{ops.GetId(), eng.GetId()}, groupIDs(gs.GetGroups()))
	gs, err = p.client.ListGroups(ctx, &dsyncv1.ListGroupsRequest{UserId: bob.GetId(), Page: &dsyncv1.Page{Order: dsyncv1.Order_ORDER_ASC, Limit: 1}})
	require.NoError(t, err)
	require.Equal(t, []string{eng.GetId()}, groupIDs(gs.GetGroups()))
	require.Equal(t, eng.GetId(), gs.GetPageInfo().GetAfter())
	byUser, err := p.client.ListGroupsForUsers(ctx, &dsyncv1.ListGroupsForUsersRequest{UserIds: []string{bob.GetId(), cy.GetId(), bob.GetId()}, MinSequence: last})
	require.NoError(t, err)
	require.Len(t, byUser.GetGroupsByUser(), 2, "one entry per distinct user, even without groups")
	require.Equal(t, []string{eng.GetId(), ops.GetId()}, groupIDs(byUser.GetGroupsByUser()[bob.GetId()].GetGroups()))
	require.Empty(t, byUser.GetGroupsByUser()[cy.GetId()].GetGroups())
	for _, ids := range [][]string{nil, {"nope"}, {dir.GetId()}, make([]string, 201)} {
		_, err = p.client.ListGroupsForUsers(ctx, &dsyncv1.ListGroupsForUsersRequest{UserIds: ids})
		requireCode(t, codes.InvalidArgument, err)
	}
	members, err := p.client.ListGroupMembers(ctx, &dsyncv1.ListGroupMembersRequest{GroupId: eng.GetId(), Page: &dsyncv1.Page{Order: dsyncv1.Order_ORDER_ASC}})
	require.NoError(t, err)
	require.Equal(t, []string{ada.GetId(), bob.GetId()}, userIDs(members.GetUsers()))

	for _, tt := range []struct {
		name   string
		query  *dsyncv1.ScimQuery
		want   []string
		total  int64
		reason string
	}{
		{"all", &dsyncv1.ScimQuery{Count: 10}, []string{ada.GetId(), bob.GetId(), cy.GetId()}, 3, ""},
		{"total only", &dsyncv1.ScimQuery{}, nil, 3, "count=0 returns the total only"},
		{"page", &dsyncv1.ScimQuery{StartIndex: 2, Count: 1}, []string{bob.GetId()}, 3, ""},
		{"userName any case", &dsyncv1.ScimQuery{Filter: `userName eq "bob@acme.com"`, Count: 10}, []string{bob.GetId()}, 1, ""},
		{"externalId", &dsyncv1.ScimQuery{Filter: `externalId eq "idp-cy@acme.com"`, Count: 10}, []string{cy.GetId()}, 1, ""},
		{"narrowed and more", &dsyncv1.ScimQuery{Filter: `userName eq "ada@acme.com" and title eq "Countess"`, Count: 10}, []string{ada.GetId()}, 1, ""},
		{"narrowed, no match", &dsyncv1.ScimQuery{Filter: `userName eq "ada@acme.com" and title eq "Duchess"`, Count: 10}, nil, 0, ""},
		{"scan", &dsyncv1.ScimQuery{Filter: `title sw "COUNT"`, Count: 10}, []string{ada.GetId()}, 1, ""},
		{"value path", &dsyncv1.ScimQuery{Filter: `emails[type eq "work" and value co "ada"]`, Count: 10}, []string{ada.GetId()}, 1, ""},
		{"or", &dsyncv1.ScimQuery{Filter: `userName eq "ada@acme.com" or userName eq "cy@acme.com"`, Count: 1, StartIndex: 2}, []string{cy.GetId()}, 2, ""},
		{"meta", &dsyncv1.ScimQuery{Filter: `meta.created gt "2000-01-01T00:00:00Z"`}, nil, 3, ""},
		{"any email", &dsyncv1.ScimQuery{Filter: `emails.value eq "ADA@acme.com"`, Count: 10}, []string{ada.GetId()}, 1, ""},
		{"sorted", &dsyncv1.ScimQuery{SortBy: "userName", SortDescending: true, Count: 2}, []string{cy.GetId(), bob.GetId()}, 3, ""},
		{"sorted, filtered", &dsyncv1.ScimQuery{Filter: `userName ne "x"`, SortBy: "meta.created", SortDescending: true, Count: 1, StartIndex: 3}, []string{ada.GetId()}, 3, ""},
		{"sortOrder alone", &dsyncv1.ScimQuery{SortDescending: true, Count: 1}, []string{ada.GetId()}, 3, "sortOrder without sortBy has no effect"},
	} {
		t.Run("search users "+tt.name, func(t *testing.T) {
			res, err := p.client.SearchUsers(ctx, &dsyncv1.SearchUsersRequest{DirectoryId: dir.GetId(), Query: tt.query})
			require.NoError(t, err)
			require.Equal(t, tt.want, nilIfEmpty(userIDs(res.GetUsers())), tt.reason)
			require.Equal(t, tt.total, res.GetTotalResults())
			require.Len(t, res.GetVersions(), len(res.GetUsers()))
			for _, v := range res.GetVersions() {
				require.NotZero(t, v, "every user has a version")
			}
		})
	}
	_, err = p.client.SearchUsers(ctx, &dsyncv1.SearchUsersRequest{DirectoryId: dir.GetId(), Query: &dsyncv1.ScimQuery{Filter: `userName eq`}})
	requireCode(t, codes.InvalidArgument, err)
	_, err = p.client.SearchUsers(ctx, &dsyncv1.SearchUsersRequest{DirectoryId: dir.GetId(), Query: &dsyncv1.ScimQuery{SortBy: "title"}})
	requireCode(t, codes.InvalidArgument, err)

	for _, tt := range []struct {
		name    string
		query   *dsyncv1.ScimQuery
		members bool
		want    []string
		ids     [][]string
	}{
		{"displayName", &dsyncv1.ScimQuery{Filter: `displayName eq "engineering"`, Count: 10}, false, []string{eng.GetId()}, [][]string{nil}},
		{"with members", &dsyncv1.ScimQuery{Filter: `displayName eq "Engineering"`, Count: 10}, true, []string{eng.GetId()}, [][]string{{ada.GetId(), bob.GetId()}}},
		{"by member", &dsyncv1.ScimQuery{Filter: `members[value eq "` + bob.GetId() + `"]`, Count: 10}, false, []string{eng.GetId(), ops.GetId()}, [][]string{nil, nil}},
		{"by member and name", &dsyncv1.ScimQuery{Filter: `members eq "` + bob.GetId() + `" and displayName eq "Ops"`, Count: 10}, false, []string{ops.GetId()}, [][]string{nil}},
		{"members scanned", &dsyncv1.ScimQuery{Filter: `members eq "` + ada.GetId() + `" or displayName eq "Ops"`, Count: 10}, false, []string{eng.GetId(), ops.GetId()}, [][]string{nil, nil}},
	} {
		t.Run("search groups "+tt.name, func(t *testing.T) {
			res, err := p.client.SearchGroups(ctx, &dsyncv1.SearchGroupsRequest{DirectoryId: dir.GetId(), Query: tt.query, IncludeMemberIds: tt.members})
			require.NoError(t, err)
			var got []string
			var gotIDs [][]string
			for _, g := range res.GetGroups() {
				got = append(got, g.GetGroup().GetId())
				gotIDs = append(gotIDs, g.GetMemberIds())
			}
			require.Equal(t, tt.want, got)
			require.Equal(t, tt.ids, gotIDs)
			for _, g := range res.GetGroups() {
				require.NotZero(t, g.GetVersion(), "every group has a version")
			}
			require.Equal(t, int64(len(tt.want)), res.GetTotalResults())
		})
	}

	found, err := p.client.FindUsers(ctx, &dsyncv1.FindUsersRequest{DirectoryId: dir.GetId(), Key: &dsyncv1.FindUsersRequest_Email{Email: "BOB@acme.com"}})
	require.NoError(t, err)
	require.Equal(t, []string{bob.GetId()}, userIDs(found.GetUsers()))
	found, err = p.client.FindUsers(ctx, &dsyncv1.FindUsersRequest{DirectoryId: dir.GetId(), Key: &dsyncv1.FindUsersRequest_IdpId{IdpId: "idp-ada@acme.com"}})
	require.NoError(t, err)
	require.Equal(t, []string{ada.GetId()}, userIDs(found.GetUsers()))
	_, err = p.client.FindUsers(ctx, &dsyncv1.FindUsersRequest{DirectoryId: dir.GetId()})
	requireCode(t, codes.InvalidArgument, err)

	// Events: a page of two in stream order, then the next from its cursor.
	evs, err := p.client.ListEvents(ctx, &dsyncv1.ListEventsRequest{Page: &dsyncv1.Page{Limit: 2}})
	require.NoError(t, err)
	require.Len(t, evs.GetEvents(), 2)
	require.Equal(t, dsyncv1.EventType_EVENT_TYPE_DIRECTORY_ACTIVATED, evs.GetEvents()[0].GetEvent().GetType())
	require.Equal(t, ada.GetId(), evs.GetEvents()[1].GetEvent().GetUser().GetId())
	next, err := p.client.ListEvents(ctx, &dsyncv1.ListEventsRequest{
		Page:   &dsyncv1.Page{Limit: 100, After: evs.GetPageInfo().GetAfter()},
		Filter: &dsyncv1.EventFilter{Events: []string{"dsync.user.created"}, DirectoryId: dir.GetId()},
	})
	require.NoError(t, err)
	require.Len(t, next.GetEvents(), 2, "bob and cy")
	require.Greater(t, next.GetEvents()[0].GetSequence(), evs.GetEvents()[1].GetSequence())
	_, err = p.client.ListEvents(ctx, &dsyncv1.ListEventsRequest{Filter: &dsyncv1.EventFilter{Events: []string{"user.created"}}})
	requireCode(t, codes.InvalidArgument, err)
	// A user's history: its own events and its membership changes.
	hist, err := p.client.ListEvents(ctx, &dsyncv1.ListEventsRequest{Filter: &dsyncv1.EventFilter{UserId: bob.GetId()}})
	require.NoError(t, err)
	var types []dsyncv1.EventType
	for _, e := range hist.GetEvents() {
		types = append(types, e.GetEvent().GetType())
	}
	require.Equal(t, []dsyncv1.EventType{dsyncv1.EventType_EVENT_TYPE_USER_CREATED,
		dsyncv1.EventType_EVENT_TYPE_GROUP_USER_ADDED, dsyncv1.EventType_EVENT_TYPE_GROUP_USER_ADDED}, types)
	hist, err = p.client.ListEvents(ctx, &dsyncv1.ListEventsRequest{Filter: &dsyncv1.EventFilter{GroupId: ops.GetId()}})
	require.NoError(t, err)
	require.Len(t, hist.GetEvents(), 2, "ops created, bob added")
	_, err = p.client.ListEvents(ctx, &dsyncv1.ListEventsRequest{Filter: &dsyncv1.EventFilter{UserId: ops.GetId()}})
	requireCode(t, codes.InvalidArgument, err)
	_, err = p.client.ListEvents(ctx, &dsyncv1.ListEventsRequest{Page: &dsyncv1.Page{After: "event_01ARZ3NDEKTSV4RRFFQ69G5FAV"}})
	requireCode(t, codes.InvalidArgument, err)

	// WatchEvents replays from a sequence and then follows the stream.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := p.client.WatchEvents(wctx, &dsyncv1.WatchEventsRequest{
		AfterSequence: evs.GetEvents()[1].GetSequence(), Filter: &dsyncv1.EventFilter{Events: []string{"dsync.user.created"}},
	})
	require.NoError(t, err)
	for _, want := range []string{bob.GetId(), cy.GetId()} {
		msg, err := stream.Recv()
		require.NoError(t, err)
		require.Equal(t, want, msg.GetEvent().GetEvent().GetUser().GetId())
	}
	dee := f.User(dir, "dee@acme.com")
	seq := publish(t, js, f.UserEvent(dsyncv1.EventType_EVENT_TYPE_USER_CREATED, dee))
	msg, err := stream.Recv()
	require.NoError(t, err)
	require.Equal(t, seq, msg.GetEvent().GetSequence())
	require.Equal(t, dee.GetId(), msg.GetEvent().GetEvent().GetUser().GetId())
	cancel()
	_, err = stream.Recv()
	require.Error(t, err)
	require.NotErrorIs(t, err, io.EOF)
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}
