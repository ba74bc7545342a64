package readmodel_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
	"github.com/dsync-dev/dsync/services/projector/internal/readmodel"
	"github.com/dsync-dev/dsync/services/projector/internal/store/sqlite"
	"github.com/dsync-dev/dsync/services/projector/internal/store/storetest"
)

// FuzzApply feeds arbitrary message bodies through Apply into a real
// (SQLite) store: nothing may panic, and every message is either applied or
// skipped, so that no input can stall the projection.
func FuzzApply(f *testing.F) {
	fx := storetest.NewFixtures()
	org := fx.Organization("Acme", "acme.com")
	dir := fx.Directory(org.GetId(), "Acme")
	user := fx.User(dir, "ada@acme.com")
	group := fx.Group(dir, "Eng")
	for _, ev := range []*dsyncv1.Event{
		fx.OrganizationEvent(dsyncv1.EventType_EVENT_TYPE_ORGANIZATION_CREATED, org),
		fx.DirectoryEvent(dsyncv1.EventType_EVENT_TYPE_DIRECTORY_ACTIVATED, dir),
		fx.DirectoryEvent(dsyncv1.EventType_EVENT_TYPE_DIRECTORY_DELETED, dir),
		fx.UserEvent(dsyncv1.EventType_EVENT_TYPE_USER_CREATED, user),
		fx.UserEvent(dsyncv1.EventType_EVENT_TYPE_USER_DELETED, user),
		fx.GroupEvent(dsyncv1.EventType_EVENT_TYPE_GROUP_UPDATED, group),
		fx.MembershipEvent(dsyncv1.EventType_EVENT_TYPE_GROUP_USER_ADDED, group, user),
		fx.MembershipEvent(dsyncv1.EventType_EVENT_TYPE_GROUP_USER_REMOVED, group, user),
	} {
		data, err := proto.Marshal(ev)
		require.NoError(f, err)
		f.Add(data)
	}
	f.Add([]byte{})
	f.Add([]byte("\x0a\x05event\x28\x04\xa2\x01\x00"))

	s, err := sqlite.Open(f.Context(), filepath.Join(f.TempDir(), "fuzz.db"))
	require.NoError(f, err)
	f.Cleanup(func() { _ = s.Close() })
	var seq uint64
	f.Fuzz(func(t *testing.T, data []byte) {
		seq++
		res, err := readmodel.Apply(t.Context(), s, []readmodel.Record{{Seq: seq, Subject: "dsync.ev.fuzz", Data: data}})
		require.NoError(t, err)
		require.Equal(t, 1, len(res.Applied)+len(res.Skipped))
		require.Equal(t, seq, res.Checkpoint)
	})
}
