package projection_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dsync-dev/dsync/pkg/event"
	"github.com/dsync-dev/dsync/pkg/natsx/natstest"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
	"github.com/dsync-dev/dsync/services/projector/internal/progress"
	"github.com/dsync-dev/dsync/services/projector/internal/projection"
	"github.com/dsync-dev/dsync/services/projector/internal/readmodel"
	"github.com/dsync-dev/dsync/services/projector/internal/store/sqlite"
	"github.com/dsync-dev/dsync/services/projector/internal/store/storetest"
)

var errInjected = errors.New("injected failure")

// failingStore is a real store whose transactions fail after doing their
// writes, for the first failures calls: the rollback is the store's own.
type failingStore struct {
	readmodel.Store
	failures atomic.Int32
}

func (s *failingStore) Update(ctx context.Context, fn func(context.Context, readmodel.Tx) error) error {
	return s.Store.Update(ctx, func(ctx context.Context, tx readmodel.Tx) error {
		if err := fn(ctx, tx); err != nil {
			return err
		}
		if s.failures.Add(-1) >= 0 {
			return errInjected
		}
		return nil
	})
}

func TestFailedBatchesAreRetriedFromCheckpoint(t *testing.T) {
	ns := natstest.Run(t)
	js, _ := ns.JetStream(t)
	inner, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "rm.db"))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, inner.Close()) })
	store := &failingStore{Store: inner}
	store.failures.Store(3)

	f := storetest.NewFixtures()
	org := f.Organization("Acme")
	dir := f.Directory(org.GetId(), "Acme")
	evs := []*dsyncv1.Event{
		f.OrganizationEvent(dsyncv1.EventType_EVENT_TYPE_ORGANIZATION_CREATED, org),
		f.DirectoryEvent(dsyncv1.EventType_EVENT_TYPE_DIRECTORY_ACTIVATED, dir),
	}
	var users []*dsyncv1.User
	for range 20 {
		u := f.User(dir, f.IDs.New("u")+"@acme.com")
		users = append(users, u)
		evs = append(evs, f.UserEvent(dsyncv1.EventType_EVENT_TYPE_USER_CREATED, u))
	}
	var last uint64
	for _, ev := range evs {
		msg, err := event.NewMsg(storetest.Subject(ev), ev)
		require.NoError(t, err)
		ack, err := js.PublishMsg(t.Context(), msg)
		require.NoError(t, err)
		last = ack.Sequence
	}

	prog := progress.New(0)
	var running atomic.Bool
	p := &projection.Projection{
		Log:       slog.New(slog.DiscardHandler),
		JS:        js,
		Store:     store,
		Progress:  prog,
		Name:      "test",
		BatchSize: 4,
		OnRunning: func() { running.Store(true) },
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()

	waitCtx, waitCancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer waitCancel()
	seq, err := prog.Wait(waitCtx, last)
	require.NoError(t, err)
	require.Equal(t, last, seq)
	require.True(t, running.Load())
	cancel()
	require.NoError(t, <-done)

	require.Negative(t, store.failures.Load(), "the injected failures happened")
	cp, err := inner.Checkpoint(t.Context())
	require.NoError(t, err)
	require.Equal(t, last, cp)
	got, err := inner.ListUsers(t.Context(), dir.GetId(), readmodel.Range{Limit: 100})
	require.NoError(t, err)
	require.Len(t, got, len(users))
	for i, u := range got {
		require.Equal(t, users[i].GetId(), u.GetId())
	}
}

func TestRunRequiresDependencies(t *testing.T) {
	require.Error(t, (&projection.Projection{}).Run(t.Context()))
}
