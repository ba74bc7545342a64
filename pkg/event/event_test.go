package event_test

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/dsync-dev/dsync/pkg/event"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
)

func TestIDsAreSortableAndUnique(t *testing.T) {
	ids := event.NewIDs()
	const n = 2000
	var mu sync.Mutex
	seen := make(map[string]bool, n)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n / 4 {
				id := ids.New(event.PrefixUser)
				mu.Lock()
				seen[id] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	require.Len(t, seen, n)

	prev := ""
	for range 100 {
		id := ids.New(event.PrefixEvent)
		require.Greater(t, id, prev, "ids from one source must increase")
		prev = id
	}
}

func TestValidID(t *testing.T) {
	ids := event.NewIDs()
	tests := []struct {
		name   string
		id     string
		prefix string
		want   bool
	}{
		{"fresh user id", ids.New(event.PrefixUser), event.PrefixUser, true},
		{"wrong prefix", ids.New(event.PrefixGroup), event.PrefixUser, false},
		{"empty", "", event.PrefixUser, false},
		{"subject injection", "directory_user_01HZZZZZZZZZZZZZZZZZZZZZ.>", event.PrefixUser, false},
		{"too short", "directory_user_01HZZ", event.PrefixUser, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, event.ValidID(tt.id, tt.prefix))
		})
	}
}

func TestSubjects(t *testing.T) {
	dir := "directory_01HZZZZZZZZZZZZZZZZZZZZZZZ"
	require.Equal(t, "dsync.ev."+dir+".user.u1", event.UserSubject(dir, "u1"))
	require.Equal(t, "dsync.ev."+dir+".group.g1.member.u1", event.MemberSubject(dir, "g1", "u1"))
	require.Equal(t, dir, event.DirectoryIDFromSubject(event.GroupSubject(dir, "g1")))
	require.Empty(t, event.DirectoryIDFromSubject(event.OrganizationSubject("org_1")))
	require.Equal(t,
		event.UserNameClaimSubject(dir, "Alice@Example.com"),
		event.UserNameClaimSubject(dir, "alice@example.COM"),
		"userName claims are case-insensitive")
	require.NotEqual(t, event.UserNameClaimSubject(dir, "a"), event.UserNameClaimSubject("directory_other", "a"))
	require.NotContains(t, event.UserNameClaimSubject(dir, "a b.c>*"), " ")
}

func TestMsgRoundTrip(t *testing.T) {
	ev := &dsyncv1.Event{
		Id:         "event_01HZZZZZZZZZZZZZZZZZZZZZZZ",
		Type:       dsyncv1.EventType_EVENT_TYPE_USER_CREATED,
		OccurredAt: timestamppb.Now(),
		Payload:    &dsyncv1.Event_User{User: &dsyncv1.User{Id: "directory_user_1", UserName: "a"}},
	}
	msg, err := event.NewMsg("dsync.ev.d.user.u", ev)
	require.NoError(t, err)
	require.Equal(t, ev.GetId(), msg.Header.Get("Nats-Msg-Id"))
	got, err := event.Decode(msg.Data)
	require.NoError(t, err)
	require.Equal(t, "a", got.GetUser().GetUserName())

	_, err = event.Decode([]byte("not a protobuf \xff\xff"))
	require.ErrorIs(t, err, event.ErrMalformed)
	_, err = event.Decode(nil)
	require.ErrorIs(t, err, event.ErrMalformed)
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\x0a\x05event"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := event.Decode(data)
		if err == nil && (ev.GetId() == "" || ev.GetType() == dsyncv1.EventType_EVENT_TYPE_UNSPECIFIED) {
			t.Fatalf("decoded an event without id or type")
		}
	})
}
