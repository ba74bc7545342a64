package scim_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/dsync-dev/dsync/pkg/event"
	"github.com/dsync-dev/dsync/pkg/natsx/natstest"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
	"github.com/dsync-dev/dsync/services/gateway/internal/domain"
	"github.com/dsync-dev/dsync/services/gateway/internal/eventlog"
	"github.com/dsync-dev/dsync/services/gateway/internal/scim"
)

// racingLog is the real event log with a hook that runs once, just before
// the first multi-message batch is appended: a concurrent writer that
// slips in between a request's reads and its append.
type racingLog struct {
	*eventlog.JetStream
	armed atomic.Bool
	race  func()
}

func (l *racingLog) AppendBatch(ctx context.Context, writes []domain.Write) ([]uint64, error) {
	if len(writes) > 1 && l.armed.CompareAndSwap(true, false) {
		l.race()
	}
	return l.JetStream.AppendBatch(ctx, writes)
}

// eventTypes returns the fact event types stored after seq (claims left out).
func eventTypes(t *testing.T, stream jetstream.Stream, after uint64) []string {
	t.Helper()
	info, err := stream.Info(t.Context())
	require.NoError(t, err)
	out := []string{}
	for seq := after + 1; seq <= info.State.LastSeq; seq++ {
		msg, err := stream.GetMsg(t.Context(), seq)
		require.NoError(t, err)
		if strings.HasPrefix(msg.Subject, "dsync.idx.") {
			continue
		}
		ev, err := event.Decode(msg.Data)
		require.NoError(t, err)
		out = append(out, strings.TrimPrefix(ev.GetType().String(), "EVENT_TYPE_"))
	}
	return out
}

func lastSeq(t *testing.T, stream jetstream.Stream) uint64 {
	t.Helper()
	info, err := stream.Info(t.Context())
	require.NoError(t, err)
	return info.State.LastSeq
}

// TestPatchGroupAtomicAcrossSubjects checks that a group PATCH's attribute
// change and membership changes are one atomic append: when a member edge
// moves between the read and the append, nothing of the PATCH is stored;
// under If-Match the client gets 412, otherwise the request is re-read and
// re-applied (the member added concurrently is not added twice).
func TestPatchGroupAtomicAcrossSubjects(t *testing.T) {
	tests := []struct {
		name       string
		ifMatch    bool
		wantStatus int
		// want are the events after the race's own GROUP_USER_ADDED.
		want    []string
		newName string
	}{
		{name: "if-match conflict writes nothing", ifMatch: true, wantStatus: scim.StatusPreconditionFailed, want: []string{}, newName: "Engineering"},
		{name: "conflict re-reads and re-applies", want: []string{"GROUP_UPDATED", "GROUP_USER_ADDED"}, newName: "Platform"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			js, stream := natstest.Run(t).JetStream(t)
			log := &racingLog{JetStream: eventlog.New(js)}
			ids := event.NewIDs()
			svc := scim.NewService(log, ids, "https://dsync.test", nil)
			call := scim.Call{Directory: &dsyncv1.Directory{
				Id: ids.New(event.PrefixDirectory), OrganizationId: ids.New(event.PrefixOrganization), Type: "okta scim v2.0",
			}}
			var users []string
			for _, name := range []string{"ann@acme.test", "bob@acme.test"} {
				res, err := svc.CreateUser(ctx, call, []byte(`{"userName":"`+name+`"}`))
				require.NoError(t, err)
				users = append(users, res.User.ID)
			}
			created, err := svc.CreateGroup(ctx, call, []byte(`{"displayName":"Engineering"}`))
			require.NoError(t, err)
			gid := created.Group.ID

			// Another replica adds ann between this request's reads and its append.
			log.race = func() {
				_, err := svc.PatchGroup(ctx, call, gid, "", []byte(`{"Operations":[{"op":"add","path":"members","value":[{"value":"`+users[0]+`"}]}]}`))
				require.NoError(t, err)
			}
			log.armed.Store(true)
			before := lastSeq(t, stream)
			pre := scim.Precondition("")
			if tt.ifMatch {
				pre = scim.Precondition(created.Group.Meta.Version)
			}
			_, err = svc.PatchGroup(ctx, call, gid, pre, []byte(`{"Operations":[
				{"op":"replace","value":{"displayName":"Platform"}},
				{"op":"add","path":"members","value":[{"value":"`+users[0]+`"},{"value":"`+users[1]+`"}]}]}`))
			if tt.wantStatus != 0 {
				var se *scim.Error
				require.ErrorAs(t, err, &se)
				require.Equal(t, tt.wantStatus, se.Status)
			} else {
				require.NoError(t, err)
			}
			got := eventTypes(t, stream, before)
			require.Equal(t, "GROUP_USER_ADDED", got[0], "the racing write")
			require.Equal(t, tt.want, got[1:])
			g, err := svc.GetGroup(ctx, call, gid)
			require.NoError(t, err)
			require.Equal(t, tt.newName, g.DisplayName)
			members, err := svc.GroupMembers(ctx, call.Directory.GetId(), gid)
			require.NoError(t, err)
			if tt.ifMatch {
				require.Equal(t, users[:1], members)
			} else {
				require.ElementsMatch(t, users, members)
			}
		})
	}
}

// TestCreateGroupWithMembersIsOneBatch checks that POST /Groups stores the
// group and its members together, group first, unknown members ignored.
func TestCreateGroupWithMembersIsOneBatch(t *testing.T) {
	ctx := t.Context()
	js, stream := natstest.Run(t).JetStream(t)
	ids := event.NewIDs()
	svc := scim.NewService(eventlog.New(js), ids, "https://dsync.test", nil)
	call := scim.Call{Directory: &dsyncv1.Directory{Id: ids.New(event.PrefixDirectory), OrganizationId: ids.New(event.PrefixOrganization)}}
	u, err := svc.CreateUser(ctx, call, []byte(`{"userName":"ann@acme.test"}`))
	require.NoError(t, err)
	before := lastSeq(t, stream)
	unknown := ids.New(event.PrefixUser)
	res, err := svc.CreateGroup(ctx, call, []byte(`{"displayName":"Ops","members":[{"value":"`+u.User.ID+`"},"`+unknown+`",{"value":"`+u.User.ID+`"}]}`))
	require.NoError(t, err)
	require.Equal(t, []string{"GROUP_CREATED", "GROUP_USER_ADDED"}, eventTypes(t, stream, before))
	require.Equal(t, []string{unknown}, res.Ignored)
	_, gseq, err := eventlog.New(js).Last(ctx, event.GroupSubject(call.Directory.GetId(), res.Group.ID))
	require.NoError(t, err)
	require.Equal(t, scim.Version(gseq), res.Group.Meta.Version, "the group's version is its own event's sequence")
	require.Len(t, *res.Group.Members, 1)
}

// TestDeleteUserEmitsOnlyUserDeleted: as in WorkOS, deleting a member
// emits dsync.user.deleted alone, and a later replace of the group's
// members does not emit a user_removed for it either.
func TestDeleteUserEmitsOnlyUserDeleted(t *testing.T) {
	ctx := t.Context()
	js, stream := natstest.Run(t).JetStream(t)
	ids := event.NewIDs()
	svc := scim.NewService(eventlog.New(js), ids, "https://dsync.test", nil)
	call := scim.Call{Directory: &dsyncv1.Directory{Id: ids.New(event.PrefixDirectory), OrganizationId: ids.New(event.PrefixOrganization)}}
	ann, err := svc.CreateUser(ctx, call, []byte(`{"userName":"ann@acme.test"}`))
	require.NoError(t, err)
	bob, err := svc.CreateUser(ctx, call, []byte(`{"userName":"bob@acme.test"}`))
	require.NoError(t, err)
	g, err := svc.CreateGroup(ctx, call, []byte(`{"displayName":"Ops","members":["`+ann.User.ID+`","`+bob.User.ID+`"]}`))
	require.NoError(t, err)

	before := lastSeq(t, stream)
	require.NoError(t, svc.DeleteUser(ctx, call, ann.User.ID, ""))
	require.Equal(t, []string{"USER_DELETED"}, eventTypes(t, stream, before))

	before = lastSeq(t, stream)
	_, err = svc.ReplaceGroup(ctx, call, g.Group.ID, "", []byte(`{"displayName":"Ops","members":[]}`))
	require.NoError(t, err)
	require.Equal(t, []string{"GROUP_USER_REMOVED"}, eventTypes(t, stream, before), "only bob's removal")
}

// TestMembershipWritesNeedALiveGroup checks the guard on the group subject
// of writes of several events (a single membership event is a plain
// publish, unguarded; see Service.appendMembership): when the group is
// deleted between the write's reads and its append, no membership event
// follows GROUP_DELETED. The PATCH is re-read and answers 404; a user
// created with the group in its groups attribute is created without it
// (the group is reported as ignored) and joins its other group.
func TestMembershipWritesNeedALiveGroup(t *testing.T) {
	tests := []struct {
		name  string
		write func(svc *scim.Service, call scim.Call, gid, other string, uids []string) error
	}{
		{name: "members-only PATCH", write: func(svc *scim.Service, call scim.Call, gid, _ string, uids []string) error {
			_, err := svc.PatchGroup(t.Context(), call, gid, "", []byte(`{"Operations":[{"op":"add","path":"members","value":[{"value":"`+uids[0]+`"},{"value":"`+uids[1]+`"}]}]}`))
			if !scim.ErrNotFound(err) {
				return fmt.Errorf("want 404, got %v", err)
			}
			return nil
		}},
		{name: "PUT members", write: func(svc *scim.Service, call scim.Call, gid, _ string, uids []string) error {
			_, err := svc.ReplaceGroup(t.Context(), call, gid, "", []byte(`{"displayName":"Engineering","members":[{"value":"`+uids[0]+`"},{"value":"`+uids[1]+`"}]}`))
			if !scim.ErrNotFound(err) {
				return fmt.Errorf("want 404, got %v", err)
			}
			return nil
		}},
		{name: "POST /Users with groups", write: func(svc *scim.Service, call scim.Call, gid, other string, _ []string) error {
			res, err := svc.CreateUser(t.Context(), call, []byte(`{"userName":"cy@acme.test","groups":[{"value":"`+gid+`"},{"value":"`+other+`"}]}`))
			if err != nil {
				return err
			}
			if !slices.Equal([]string{gid}, res.IgnoredGroups) {
				return fmt.Errorf("want the deleted group ignored, got %v", res.IgnoredGroups)
			}
			return nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			js, stream := natstest.Run(t).JetStream(t)
			log := &racingLog{JetStream: eventlog.New(js)}
			ids := event.NewIDs()
			svc := scim.NewService(log, ids, "https://dsync.test", nil)
			call := scim.Call{Directory: &dsyncv1.Directory{
				Id: ids.New(event.PrefixDirectory), OrganizationId: ids.New(event.PrefixOrganization), Type: "okta scim v2.0",
			}}
			var uids []string
			for _, name := range []string{"ann@acme.test", "bob@acme.test"} {
				u, err := svc.CreateUser(ctx, call, []byte(`{"userName":"`+name+`"}`))
				require.NoError(t, err)
				uids = append(uids, u.User.ID)
			}
			created, err := svc.CreateGroup(ctx, call, []byte(`{"displayName":"Engineering"}`))
			require.NoError(t, err)
			other, err := svc.CreateGroup(ctx, call, []byte(`{"displayName":"Other"}`))
			require.NoError(t, err)
			gid := created.Group.ID
			// Another replica deletes the group between the write's reads and its append.
			log.race = func() { require.NoError(t, svc.DeleteGroup(ctx, call, gid, "")) }
			log.armed.Store(true)
			before := lastSeq(t, stream)
			require.NoError(t, tt.write(svc, call, gid, other.Group.ID, uids))
			require.False(t, log.armed.Load(), "the race ran")
			got := eventTypes(t, stream, before)
			deleted := slices.Index(got, "GROUP_DELETED")
			require.GreaterOrEqual(t, deleted, 0, "%v", got)
			for seq := before + 1; seq <= lastSeq(t, stream); seq++ {
				msg, err := stream.GetMsg(ctx, seq)
				require.NoError(t, err)
				if ev, err := event.Decode(msg.Data); err == nil && ev.GetType() == dsyncv1.EventType_EVENT_TYPE_GROUP_USER_ADDED {
					require.NotEqual(t, gid, ev.GetMembership().GetGroupId(), "no member joins a deleted group: %v", got)
				}
			}
		})
	}
}

// TestMembershipWritesNeedALiveUser: when a user is deleted between a
// group write's reads and its append, the user does not join (the write is
// re-read, the user is unknown now and ignored), and the other members do.
func TestMembershipWritesNeedALiveUser(t *testing.T) {
	ctx := t.Context()
	js, stream := natstest.Run(t).JetStream(t)
	log := &racingLog{JetStream: eventlog.New(js)}
	ids := event.NewIDs()
	svc := scim.NewService(log, ids, "https://dsync.test", nil)
	call := scim.Call{Directory: &dsyncv1.Directory{
		Id: ids.New(event.PrefixDirectory), OrganizationId: ids.New(event.PrefixOrganization), Type: "okta scim v2.0",
	}}
	var users []string
	for _, name := range []string{"ann@acme.test", "bob@acme.test"} {
		res, err := svc.CreateUser(ctx, call, []byte(`{"userName":"`+name+`"}`))
		require.NoError(t, err)
		users = append(users, res.User.ID)
	}
	created, err := svc.CreateGroup(ctx, call, []byte(`{"displayName":"Engineering"}`))
	require.NoError(t, err)
	log.race = func() { require.NoError(t, svc.DeleteUser(ctx, call, users[0], "")) }
	log.armed.Store(true)
	before := lastSeq(t, stream)
	res, err := svc.PatchGroup(ctx, call, created.Group.ID, "", []byte(`{"Operations":[{"op":"add","path":"members","value":[{"value":"`+users[0]+`"},{"value":"`+users[1]+`"}]}]}`))
	require.NoError(t, err)
	require.False(t, log.armed.Load(), "the race ran")
	require.Equal(t, []string{users[0]}, res.Ignored)
	require.Equal(t, []string{"USER_DELETED", "GROUP_USER_ADDED"}, eventTypes(t, stream, before))
	members, err := svc.GroupMembers(ctx, call.Directory.GetId(), created.Group.ID)
	require.NoError(t, err)
	require.Equal(t, users[1:], members)
}
