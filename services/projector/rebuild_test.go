package projector_test

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", to dump tables
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/dsync-dev/dsync/pkg/event"
	"github.com/dsync-dev/dsync/pkg/natsx/natstest"
	"github.com/dsync-dev/dsync/pkg/pgtest"
	"github.com/dsync-dev/dsync/pkg/sqlitex"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
	"github.com/dsync-dev/dsync/services/projector"
	"github.com/dsync-dev/dsync/services/projector/internal/store/storetest"
)

var readModelTables = []string{
	"organizations", "directories", "users", "user_emails", "groups", "memberships",
	"projector_checkpoint", "projector_skips", "projector_events", "directory_counts",
}

// dump renders every row of the read model's tables as text, sorted, so
// two read models compare row for row. projector_skips.skipped_at is when
// the skip was recorded, not a fact of the stream, and is left out.
func dump(t *testing.T, db *sql.DB) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, table := range readModelTables {
		rows, err := db.QueryContext(t.Context(), `SELECT * FROM `+table)
		require.NoError(t, err)
		cols, err := rows.Columns()
		require.NoError(t, err)
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			require.NoError(t, rows.Scan(ptrs...))
			var b strings.Builder
			for i, c := range cols {
				if c == "skipped_at" {
					continue
				}
				fmt.Fprintf(&b, "%s=%v;", c, vals[i])
			}
			out[table] = append(out[table], b.String())
		}
		require.NoError(t, rows.Err())
		require.NoError(t, rows.Close())
		slices.Sort(out[table])
	}
	return out
}

// requireSameRows compares two dumps table by table, reporting counts and
// the first differing row rather than everything.
func requireSameRows(t *testing.T, want, got map[string][]string) {
	t.Helper()
	for _, table := range readModelTables {
		require.Len(t, got[table], len(want[table]), "rows of %s", table)
		for i := range want[table] {
			require.Equal(t, want[table][i], got[table][i], "row %d of %s", i, table)
		}
	}
}

// publishHistory writes a history with every kind of change, including
// deletions, a removed membership and a malformed message.
func publishHistory(t *testing.T, js jetstream.JetStream, f *storetest.Fixtures) (last uint64) {
	org := f.Organization("Acme", "acme.com")
	dir := f.Directory(org.GetId(), "Acme Okta")
	gone := f.Directory(org.GetId(), "Gone")
	publish(t, js, f.OrganizationEvent(dsyncv1.EventType_EVENT_TYPE_ORGANIZATION_CREATED, org))
	publish(t, js, f.DirectoryEvent(dsyncv1.EventType_EVENT_TYPE_DIRECTORY_ACTIVATED, dir))
	publish(t, js, f.DirectoryEvent(dsyncv1.EventType_EVENT_TYPE_DIRECTORY_ACTIVATED, gone))
	var users []*dsyncv1.User
	for i := range 30 {
		u := f.User(dir, fmt.Sprintf("u%02d@acme.com", i))
		users = append(users, u)
		publish(t, js, f.UserEvent(dsyncv1.EventType_EVENT_TYPE_USER_CREATED, u))
	}
	eng, ops := f.Group(dir, "Engineering"), f.Group(dir, "Ops")
	publish(t, js, f.GroupEvent(dsyncv1.EventType_EVENT_TYPE_GROUP_CREATED, eng))
	publish(t, js, f.GroupEvent(dsyncv1.EventType_EVENT_TYPE_GROUP_CREATED, ops))
	for i, u := range users {
		publish(t, js, f.MembershipEvent(dsyncv1.EventType_EVENT_TYPE_GROUP_USER_ADDED, eng, u))
		if i%3 == 0 {
			publish(t, js, f.MembershipEvent(dsyncv1.EventType_EVENT_TYPE_GROUP_USER_ADDED, ops, u))
		}
	}
	publish(t, js, f.UserEvent(dsyncv1.EventType_EVENT_TYPE_USER_CREATED, f.User(gone, "x@gone.com")))
	_, err := js.Publish(t.Context(), event.UserSubject(dir.GetId(), f.IDs.New(event.PrefixUser)), []byte("\x0a\xffjunk"))
	require.NoError(t, err)
	u := proto.CloneOf(users[0])
	u.State = dsyncv1.UserState_USER_STATE_INACTIVE
	publish(t, js, f.UserEvent(dsyncv1.EventType_EVENT_TYPE_USER_UPDATED, u))
	publish(t, js, f.UserEvent(dsyncv1.EventType_EVENT_TYPE_USER_DELETED, users[3]))
	publish(t, js, f.MembershipEvent(dsyncv1.EventType_EVENT_TYPE_GROUP_USER_REMOVED, eng, users[4]))
	publish(t, js, f.GroupEvent(dsyncv1.EventType_EVENT_TYPE_GROUP_DELETED, ops))
	// What the PostgreSQL rebuild folds per batch: edges before their
	// group, an edge added twice, removed and added again, a user updated
	// several times running, created and deleted, deleted and created
	// again, and a group and edge of a directory deleted afterwards.
	late := f.Group(dir, "Late")
	publish(t, js, f.MembershipEvent(dsyncv1.EventType_EVENT_TYPE_GROUP_USER_ADDED, late, users[5]))
	dup := f.MembershipEvent(dsyncv1.EventType_EVENT_TYPE_GROUP_USER_ADDED, late, users[6])
	publish(t, js, dup)
	// The same event again, past the dedup window: recorded once.
	msg, err := event.NewMsg(storetest.Subject(dup), dup)
	require.NoError(t, err)
	msg.Header.Del(event.HeaderMsgID)
	_, err = js.PublishMsg(t.Context(), msg)
	require.NoError(t, err)
	publish(t, js, f.GroupEvent(dsyncv1.EventType_EVENT_TYPE_GROUP_CREATED, late))
	publish(t, js, f.MembershipEvent(dsyncv1.EventType_EVENT_TYPE_GROUP_USER_ADDED, late, users[5]))
	publish(t, js, f.MembershipEvent(dsyncv1.EventType_EVENT_TYPE_GROUP_USER_ADDED, late, users[7]))
	late = proto.CloneOf(late)
	late.Name = "Later"
	publish(t, js, f.GroupEvent(dsyncv1.EventType_EVENT_TYPE_GROUP_UPDATED, late))
	publish(t, js, f.MembershipEvent(dsyncv1.EventType_EVENT_TYPE_GROUP_USER_REMOVED, late, users[7]))
	publish(t, js, f.MembershipEvent(dsyncv1.EventType_EVENT_TYPE_GROUP_USER_ADDED, eng, users[4]))
	publish(t, js, f.MembershipEvent(dsyncv1.EventType_EVENT_TYPE_GROUP_USER_ADDED, late, users[7]))
	for i := range 3 {
		u := proto.CloneOf(users[1])
		u.FirstName = fmt.Sprintf("Renamed %d", i)
		publish(t, js, f.UserEvent(dsyncv1.EventType_EVENT_TYPE_USER_UPDATED, u))
	}
	tmp := f.User(dir, "tmp@acme.com")
	publish(t, js, f.UserEvent(dsyncv1.EventType_EVENT_TYPE_USER_CREATED, tmp))
	publish(t, js, f.MembershipEvent(dsyncv1.EventType_EVENT_TYPE_GROUP_USER_ADDED, late, tmp))
	publish(t, js, f.UserEvent(dsyncv1.EventType_EVENT_TYPE_USER_DELETED, tmp))
	publish(t, js, f.UserEvent(dsyncv1.EventType_EVENT_TYPE_USER_CREATED, users[3]))
	publish(t, js, f.MembershipEvent(dsyncv1.EventType_EVENT_TYPE_GROUP_USER_ADDED, late, users[3]))
	// A directory whose only user and group are created and deleted.
	brief := f.Directory(org.GetId(), "Brief")
	publish(t, js, f.DirectoryEvent(dsyncv1.EventType_EVENT_TYPE_DIRECTORY_ACTIVATED, brief))
	briefUser, briefGroup := f.User(brief, "brief@acme.com"), f.Group(brief, "Brief group")
	publish(t, js, f.UserEvent(dsyncv1.EventType_EVENT_TYPE_USER_CREATED, briefUser))
	publish(t, js, f.GroupEvent(dsyncv1.EventType_EVENT_TYPE_GROUP_CREATED, briefGroup))
	publish(t, js, f.UserEvent(dsyncv1.EventType_EVENT_TYPE_USER_DELETED, briefUser))
	publish(t, js, f.GroupEvent(dsyncv1.EventType_EVENT_TYPE_GROUP_DELETED, briefGroup))
	goneGroup := f.Group(gone, "Gone group")
	publish(t, js, f.GroupEvent(dsyncv1.EventType_EVENT_TYPE_GROUP_CREATED, goneGroup))
	publish(t, js, f.MembershipEvent(dsyncv1.EventType_EVENT_TYPE_GROUP_USER_ADDED, goneGroup, users[8]))
	return publish(t, js, f.DirectoryEvent(dsyncv1.EventType_EVENT_TYPE_DIRECTORY_DELETED, gone))
}

// TestRebuildPostgres rebuilds under a running projector: the rebuilt
// tables equal the projected ones row for row, and the projector carries on
// against them.
func TestRebuildPostgres(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ns := natstest.Run(t)
	js, _ := ns.JetStream(t)
	p := start(t, projector.Config{NATS: ns.Connect(t), PostgresURL: url})
	f := storetest.NewFixtures()
	last := publishHistory(t, js, f)
	_, err := p.client.GetProjectionStatus(t.Context(), &dsyncv1.GetProjectionStatusRequest{})
	require.NoError(t, err)
	_, err = p.client.ListUsers(t.Context(), &dsyncv1.ListUsersRequest{DirectoryId: f.IDs.New(event.PrefixDirectory), MinSequence: last})
	require.NoError(t, err)

	db, err := sql.Open("pgx", url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	before := dump(t, db)
	require.Len(t, before["users"], 30, "31 created, 2 deleted, 1 created again; the deleted directory's user is gone")

	// Batches of one (nothing to fold), a few (folding and updates across
	// batches) and all (everything folded).
	for _, size := range []int{1, 7, projector.DefaultRebuildBatch} {
		res, err := projector.Rebuild(t.Context(), projector.RebuildConfig{NATS: ns.Connect(t), PostgresURL: url, BatchSize: size})
		require.NoError(t, err)
		require.Equal(t, last, res.Checkpoint)
		requireSameRows(t, before, dump(t, db))
	}

	// The running projector applies the next event to the new tables.
	org := f.Organization("After")
	seq := publish(t, js, f.OrganizationEvent(dsyncv1.EventType_EVENT_TYPE_ORGANIZATION_CREATED, org))
	got, err := p.client.GetOrganization(t.Context(), &dsyncv1.GetOrganizationRequest{Id: org.GetId(), MinSequence: seq})
	require.NoError(t, err)
	require.Equal(t, "After", got.GetOrganization().GetName())
	var cp int64
	require.NoError(t, db.QueryRowContext(t.Context(), `SELECT seq FROM projector_checkpoint`).Scan(&cp))
	require.Equal(t, int64(seq), cp)
}

// TestRebuildSQLite rebuilds the embedded store with dsync dev stopped.
func TestRebuildSQLite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "readmodel.db")
	ns := natstest.Run(t)
	js, _ := ns.JetStream(t)
	p := start(t, projector.Config{NATS: ns.Connect(t), SQLitePath: path})
	f := storetest.NewFixtures()
	last := publishHistory(t, js, f)
	_, err := p.client.ListUsers(t.Context(), &dsyncv1.ListUsersRequest{DirectoryId: f.IDs.New(event.PrefixDirectory), MinSequence: last})
	require.NoError(t, err)
	require.NoError(t, p.stop())

	dumpFile := func() map[string][]string {
		db, err := sqlitex.Open(t.Context(), path)
		require.NoError(t, err)
		defer db.Close()
		return dump(t, db)
	}
	before := dumpFile()
	res, err := projector.Rebuild(t.Context(), projector.RebuildConfig{NATS: ns.Connect(t), SQLitePath: path, BatchSize: 7})
	require.NoError(t, err)
	require.Equal(t, last, res.Checkpoint)
	requireSameRows(t, before, dumpFile())
}
