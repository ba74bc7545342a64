package projector_test

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/dsync-dev/dsync/pkg/event"
	"github.com/dsync-dev/dsync/pkg/grpcx"
	"github.com/dsync-dev/dsync/pkg/natsx/natstest"
	"github.com/dsync-dev/dsync/pkg/pgtest"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
	"github.com/dsync-dev/dsync/services/projector"
	"github.com/dsync-dev/dsync/services/projector/internal/store/storetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestProjectorSQLite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "readmodel.db")
	testProjector(t, func(cfg *projector.Config) { cfg.SQLitePath = path })
}

func TestProjectorPostgres(t *testing.T) {
	url := pgtest.NewDatabase(t)
	testProjector(t, func(cfg *projector.Config) { cfg.PostgresURL = url })
}

// appliedLog counts "event applied" log records per stream sequence, to
// prove that no event is applied twice across restarts.
type appliedLog struct {
	mu      sync.Mutex
	applied map[uint64]int
	skipped map[uint64]int
}

func (l *appliedLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *appliedLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *appliedLog) WithGroup(string) slog.Handler            { return l }
func (l *appliedLog) Handle(_ context.Context, r slog.Record) error {
	var counts map[uint64]int
	switch r.Message {
	case "event applied":
		counts = l.applied
	case "event skipped":
		counts = l.skipped
	default:
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "stream_seq" {
			l.mu.Lock()
			counts[a.Value.Uint64()]++
			l.mu.Unlock()
		}
		return true
	})
	return nil
}

func (l *appliedLog) counts() (applied, skipped map[uint64]int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return clone(l.applied), clone(l.skipped)
}

func clone(m map[uint64]int) map[uint64]int {
	out := make(map[uint64]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// running is one projector.Run in the background.
type running struct {
	client dsyncv1.DirectoryServiceClient
	health healthpb.HealthClient
	stop   func() error
}

func start(t *testing.T, cfg projector.Config) *running {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	cfg.GRPCListener = lis
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- projector.Run(ctx, cfg) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(30 * time.Second):
				t.Error("projector.Run did not return after cancel")
			}
		})
		return runErr
	}
	t.Cleanup(func() { require.NoError(t, stop()) })

	conn, err := grpcx.Dial(lis.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	r := &running{client: dsyncv1.NewDirectoryServiceClient(conn), health: healthpb.NewHealthClient(conn), stop: stop}
	require.Eventually(t, func() bool {
		for _, svc := range []string{"", "dsync.v1.DirectoryService"} {
			res, err := r.health.Check(t.Context(), &healthpb.HealthCheckRequest{Service: svc})
			if err != nil || res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
				return false
			}
		}
		return true
	}, 10*time.Second, 20*time.Millisecond, "projector never became healthy")
	return r
}

func publish(t *testing.T, js jetstream.JetStream, ev *dsyncv1.Event) uint64 {
	t.Helper()
	msg, err := event.NewMsg(storetest.Subject(ev), ev)
	require.NoError(t, err)
	ack, err := js.PublishMsg(t.Context(), msg)
	require.NoError(t, err)
	return ack.Sequence
}

func requireCode(t *testing.T, want codes.Code, err error) {
	t.Helper()
	require.Error(t, err)
	require.Equal(t, want, status.Code(err), "error: %v", err)
}

func requireProtoEqual(t *testing.T, want, got proto.Message) {
	t.Helper()
	require.True(t, proto.Equal(want, got), "want %v\ngot  %v", want, got)
}

func testProjector(t *testing.T, withStore func(*projector.Config)) {
	ns := natstest.Run(t)
	js, _ := ns.JetStream(t)
	logs := &appliedLog{applied: map[uint64]int{}, skipped: map[uint64]int{}}
	cfg := projector.Config{
		Logger: slog.New(logs),
		NATS:   ns.Connect(t),
		// Roomy enough for a loaded CI machine; the FailedPrecondition case
		// below waits this long once.
		ConsistencyWait: 3 * time.Second,
	}
	withStore(&cfg)
	ctx := t.Context()

	// Events published before the projector starts are applied when it does.
	f := storetest.NewFixtures()
	org := f.Organization("Acme", "acme.com")
	dir := f.Directory(org.GetId(), "Acme Okta")
	publish(t, js, f.OrganizationEvent(dsyncv1.EventType_EVENT_TYPE_ORGANIZATION_CREATED, org))
	publish(t, js, f.DirectoryEvent(dsyncv1.EventType_EVENT_TYPE_DIRECTORY_ACTIVATED, dir))

	p := start(t, cfg)

	// A uniqueness claim is not a fact: the projector never sees it. A
	// malformed fact is stepped over.
	_, err := js.Publish(ctx, event.UserNameClaimSubject(dir.GetId(), "ada@acme.com"), []byte("claim"))
	require.NoError(t, err)
	junkSeq := func() uint64 {
		ack, err := js.Publish(ctx, event.UserSubject(dir.GetId(), f.IDs.New(event.PrefixUser)), []byte("\x0a\xffjunk"))
		require.NoError(t, err)
		return ack.Sequence
	}()

	ada := f.User(dir, "ada@acme.com")
	bob := f.User(dir, "bob@acme.com")
	more := []*dsyncv1.User{f.User(dir, "c@acme.com"), f.User(dir, "d@acme.com"), f.User(dir, "e@acme.com")}

	// A read that needs a sequence not yet applied waits for it, woken by
	// the apply loop.
	type result struct {
		res *dsyncv1.GetUserResponse
		err error
	}
	waited := make(chan result, 1)
	status0, err := p.client.GetProjectionStatus(ctx, &dsyncv1.GetProjectionStatusRequest{})
	require.NoError(t, err)
	nextFact := status0.GetStreamSequence() + 1
	go func() {
		res, err := p.client.GetUser(ctx, &dsyncv1.GetUserRequest{Id: ada.GetId(), MinSequence: nextFact})
		waited <- result{res, err}
	}()
	adaSeq := publish(t, js, f.UserEvent(dsyncv1.EventType_EVENT_TYPE_USER_CREATED, ada))
	require.Equal(t, nextFact, adaSeq)
	r := <-waited
	require.NoError(t, r.err)
	requireProtoEqual(t, ada, r.res.GetUser())

	publish(t, js, f.UserEvent(dsyncv1.EventType_EVENT_TYPE_USER_CREATED, bob))
	for _, u := range more {
		publish(t, js, f.UserEvent(dsyncv1.EventType_EVENT_TYPE_USER_CREATED, u))
	}
	ada2 := proto.CloneOf(ada)
	ada2.FirstName = "Augusta"
	ada2.State = dsyncv1.UserState_USER_STATE_INACTIVE
	publish(t, js, f.UserEvent(dsyncv1.EventType_EVENT_TYPE_USER_UPDATED, ada2))
	lastSeq := publish(t, js, f.UserEvent(dsyncv1.EventType_EVENT_TYPE_USER_DELETED, bob))

	// GetUser at the last write's sequence returns the latest state.
	got, err := p.client.GetUser(ctx, &dsyncv1.GetUserRequest{Id: ada.GetId(), MinSequence: lastSeq})
	require.NoError(t, err)
	requireProtoEqual(t, ada2, got.GetUser())
	_, err = p.client.GetUser(ctx, &dsyncv1.GetUserRequest{Id: bob.GetId(), MinSequence: lastSeq})
	requireCode(t, codes.NotFound, err)

	st, err := p.client.GetProjectionStatus(ctx, &dsyncv1.GetProjectionStatusRequest{})
	require.NoError(t, err)
	require.Equal(t, lastSeq, st.GetAppliedSequence())
	require.Equal(t, lastSeq, st.GetStreamSequence())

	// ListUsers pages through the four remaining users, oldest first.
	want := []string{ada.GetId(), more[0].GetId(), more[1].GetId(), more[2].GetId()}
	page1, err := p.client.ListUsers(ctx, &dsyncv1.ListUsersRequest{
		DirectoryId: dir.GetId(), Page: &dsyncv1.Page{Limit: 3, Order: dsyncv1.Order_ORDER_ASC},
	})
	require.NoError(t, err)
	require.Equal(t, want[:3], userIDs(page1.GetUsers()))
	require.Equal(t, &dsyncv1.PageInfo{After: want[2]}, stripped(page1.GetPageInfo()))
	requireProtoEqual(t, ada2, page1.GetUsers()[0])
	page2, err := p.client.ListUsers(ctx, &dsyncv1.ListUsersRequest{
		DirectoryId: dir.GetId(), Page: &dsyncv1.Page{Limit: 3, After: page1.GetPageInfo().GetAfter(), Order: dsyncv1.Order_ORDER_ASC},
	})
	require.NoError(t, err)
	require.Equal(t, want[3:], userIDs(page2.GetUsers()))
	require.Equal(t, &dsyncv1.PageInfo{Before: want[3]}, stripped(page2.GetPageInfo()))
	// The default order is newest first, the default limit 10.
	all, err := p.client.ListUsers(ctx, &dsyncv1.ListUsersRequest{DirectoryId: dir.GetId()})
	require.NoError(t, err)
	require.Equal(t, []string{want[3], want[2], want[1], want[0]}, userIDs(all.GetUsers()))

	// Organizations and directories.
	gotOrg, err := p.client.GetOrganization(ctx, &dsyncv1.GetOrganizationRequest{Id: org.GetId()})
	require.NoError(t, err)
	requireProtoEqual(t, org, gotOrg.GetOrganization())
	orgs, err := p.client.ListOrganizations(ctx, &dsyncv1.ListOrganizationsRequest{})
	require.NoError(t, err)
	require.Len(t, orgs.GetOrganizations(), 1)
	gotDir, err := p.client.GetDirectory(ctx, &dsyncv1.GetDirectoryRequest{Id: dir.GetId()})
	require.NoError(t, err)
	require.Empty(t, gotDir.GetDirectory().GetScimTokenSha256(), "the token hash never leaves the projector")
	wantDir := proto.Clone(dir).(*dsyncv1.Directory)
	wantDir.ScimTokenSha256 = nil
	requireProtoEqual(t, wantDir, gotDir.GetDirectory())
	dirs, err := p.client.ListDirectories(ctx, &dsyncv1.ListDirectoriesRequest{OrganizationId: org.GetId(), Search: "OKTA"})
	require.NoError(t, err)
	require.Len(t, dirs.GetDirectories(), 1)

	// A sequence the projection cannot reach within the bound.
	_, err = p.client.GetUser(ctx, &dsyncv1.GetUserRequest{Id: ada.GetId(), MinSequence: lastSeq + 100})
	requireCode(t, codes.FailedPrecondition, err)
	require.Contains(t, err.Error(), "read model has applied through sequence")

	// Bad requests.
	otherID := event.NewIDs()
	for _, tt := range []struct {
		name string
		call func() error
		want codes.Code
	}{
		{"malformed user id", func() error {
			_, err := p.client.GetUser(ctx, &dsyncv1.GetUserRequest{Id: "directory_user_nope"})
			return err
		}, codes.InvalidArgument},
		{"user id of another kind", func() error {
			_, err := p.client.GetUser(ctx, &dsyncv1.GetUserRequest{Id: dir.GetId()})
			return err
		}, codes.InvalidArgument},
		{"unknown user", func() error {
			_, err := p.client.GetUser(ctx, &dsyncv1.GetUserRequest{Id: otherID.New(event.PrefixUser)})
			return err
		}, codes.NotFound},
		{"unknown directory", func() error {
			_, err := p.client.GetDirectory(ctx, &dsyncv1.GetDirectoryRequest{Id: otherID.New(event.PrefixDirectory)})
			return err
		}, codes.NotFound},
		{"unknown organization", func() error {
			_, err := p.client.GetOrganization(ctx, &dsyncv1.GetOrganizationRequest{Id: otherID.New(event.PrefixOrganization)})
			return err
		}, codes.NotFound},
		{"limit too big", func() error {
			_, err := p.client.ListUsers(ctx, &dsyncv1.ListUsersRequest{DirectoryId: dir.GetId(), Page: &dsyncv1.Page{Limit: 101}})
			return err
		}, codes.InvalidArgument},
		{"negative limit", func() error {
			_, err := p.client.ListOrganizations(ctx, &dsyncv1.ListOrganizationsRequest{Page: &dsyncv1.Page{Limit: -1}})
			return err
		}, codes.InvalidArgument},
		{"before and after", func() error {
			_, err := p.client.ListUsers(ctx, &dsyncv1.ListUsersRequest{DirectoryId: dir.GetId(), Page: &dsyncv1.Page{Before: ada.GetId(), After: ada.GetId()}})
			return err
		}, codes.InvalidArgument},
		{"cursor of another kind", func() error {
			_, err := p.client.ListDirectories(ctx, &dsyncv1.ListDirectoriesRequest{Page: &dsyncv1.Page{After: ada.GetId()}})
			return err
		}, codes.InvalidArgument},
		{"missing directory id", func() error {
			_, err := p.client.ListUsers(ctx, &dsyncv1.ListUsersRequest{})
			return err
		}, codes.InvalidArgument},
	} {
		t.Run(tt.name, func(t *testing.T) { requireCode(t, tt.want, tt.call()) })
	}

	// Restart on the same store: the projector resumes after its checkpoint.
	require.NoError(t, p.stop())
	lateUser := f.User(dir, "late@acme.com")
	lateSeq := publish(t, js, f.UserEvent(dsyncv1.EventType_EVENT_TYPE_USER_CREATED, lateUser)) // while it is down
	p = start(t, cfg)
	got, err = p.client.GetUser(ctx, &dsyncv1.GetUserRequest{Id: lateUser.GetId(), MinSequence: lateSeq})
	require.NoError(t, err)
	requireProtoEqual(t, lateUser, got.GetUser())
	finalSeq := publish(t, js, f.UserEvent(dsyncv1.EventType_EVENT_TYPE_USER_CREATED, f.User(dir, "after@acme.com")))
	_, err = p.client.GetProjectionStatus(ctx, &dsyncv1.GetProjectionStatusRequest{})
	require.NoError(t, err)
	_, err = p.client.ListUsers(ctx, &dsyncv1.ListUsersRequest{DirectoryId: dir.GetId(), MinSequence: finalSeq})
	require.NoError(t, err)

	applied, skipped := logs.counts()
	// 2 before start, 5 created + 1 updated + 1 deleted, 1 while down, 1 after.
	require.Len(t, applied, 11)
	for seq, n := range applied {
		require.Equal(t, 1, n, "stream sequence %d applied %d times", seq, n)
	}
	require.Equal(t, map[uint64]int{junkSeq: 1}, skipped)
}

func userIDs(users []*dsyncv1.User) []string {
	out := make([]string, 0, len(users))
	for _, u := range users {
		out = append(out, u.GetId())
	}
	return out
}

// stripped drops the message's internal state so require.Equal compares values.
func stripped(p *dsyncv1.PageInfo) *dsyncv1.PageInfo {
	return &dsyncv1.PageInfo{Before: p.GetBefore(), After: p.GetAfter()}
}

func TestRunWiringErrors(t *testing.T) {
	ns := natstest.Run(t)
	for _, tt := range []struct {
		name string
		cfg  func(t *testing.T) projector.Config
	}{
		{"no store", func(t *testing.T) projector.Config {
			return projector.Config{NATS: ns.Connect(t)}
		}},
		{"no nats", func(t *testing.T) projector.Config {
			return projector.Config{SQLitePath: filepath.Join(t.TempDir(), "db")}
		}},
		{"bad postgres url", func(t *testing.T) projector.Config {
			return projector.Config{NATS: ns.Connect(t), PostgresURL: "postgres://nobody@127.0.0.1:1/none?connect_timeout=1"}
		}},
		{"nats closed", func(t *testing.T) projector.Config {
			nc := ns.Connect(t)
			nc.Close()
			return projector.Config{NATS: nc, SQLitePath: filepath.Join(t.TempDir(), "db")}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			cfg := tt.cfg(t)
			cfg.GRPCListener = lis
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			require.Error(t, projector.Run(ctx, cfg))
			// Run closed the listener it was given.
			_, err = lis.Accept()
			require.Error(t, err)
		})
	}
}
