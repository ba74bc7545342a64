package eventlog_test

import (
	"errors"
	"sync"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/dsync-dev/dsync/pkg/event"
	"github.com/dsync-dev/dsync/pkg/natsx/natstest"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
	"github.com/dsync-dev/dsync/services/gateway/internal/domain"
	"github.com/dsync-dev/dsync/services/gateway/internal/eventlog"
)

var ids = event.NewIDs()

func userEvent(dir, user, userName string) *dsyncv1.Event {
	return &dsyncv1.Event{
		Id:          ids.New(event.PrefixEvent),
		DirectoryId: dir,
		Type:        dsyncv1.EventType_EVENT_TYPE_USER_CREATED,
		Payload:     &dsyncv1.Event_User{User: &dsyncv1.User{Id: user, DirectoryId: dir, UserName: userName}},
	}
}

func setup(t *testing.T) (*eventlog.JetStream, jetstream.Stream) {
	return setupB(t)
}

func setupB(t testing.TB) (*eventlog.JetStream, jetstream.Stream) {
	t.Helper()
	js, stream := natstest.Run(t).JetStream(t)
	return eventlog.New(js), stream
}

func msgCount(t *testing.T, s jetstream.Stream) uint64 {
	t.Helper()
	info, err := s.Info(t.Context())
	require.NoError(t, err)
	return info.State.Msgs
}

func TestAppendAndLast(t *testing.T) {
	log, _ := setup(t)
	ctx := t.Context()
	dir, user := ids.New(event.PrefixDirectory), ids.New(event.PrefixUser)
	subj := event.UserSubject(dir, user)

	ev, seq, err := log.Last(ctx, subj)
	require.NoError(t, err)
	require.Nil(t, ev)
	require.Zero(t, seq)

	first := userEvent(dir, user, "a")
	seq1, err := log.Append(ctx, subj, first, 0)
	require.NoError(t, err)
	got, gotSeq, err := log.Last(ctx, subj)
	require.NoError(t, err)
	require.Equal(t, seq1, gotSeq)
	require.True(t, proto.Equal(first, got))

	// A writer that read nothing (expected 0) is now stale.
	_, err = log.Append(ctx, subj, userEvent(dir, user, "b"), 0)
	require.ErrorIs(t, err, domain.ErrConflict)

	seq2, err := log.Append(ctx, subj, userEvent(dir, user, "c"), seq1)
	require.NoError(t, err)
	require.Greater(t, seq2, seq1)
}

// TestConcurrentAppendsOneWins checks that of many writers that read the
// same state, exactly one appends and the others get ErrConflict.
func TestConcurrentAppendsOneWins(t *testing.T) {
	log, _ := setup(t)
	ctx := t.Context()
	dir, user := ids.New(event.PrefixDirectory), ids.New(event.PrefixUser)
	subj := event.UserSubject(dir, user)
	seq, err := log.Append(ctx, subj, userEvent(dir, user, "base"), 0)
	require.NoError(t, err)

	const writers = 8
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i := range writers {
		wg.Go(func() {
			_, errs[i] = log.Append(ctx, subj, userEvent(dir, user, "w"), seq)
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
			continue
		}
		require.ErrorIs(t, err, domain.ErrConflict)
	}
	require.Equal(t, 1, ok)
}

func TestAppendClaimedRejectsWholeBatch(t *testing.T) {
	log, stream := setup(t)
	ctx := t.Context()
	dir := ids.New(event.PrefixDirectory)
	alice, other := ids.New(event.PrefixUser), ids.New(event.PrefixUser)

	claim := domain.Claim{Subject: event.UserNameClaimSubject(dir, "Alice@Example.com"), Owner: alice}
	seq, err := log.AppendClaimed(ctx, claim, event.UserSubject(dir, alice), userEvent(dir, alice, "Alice@Example.com"), 0)
	require.NoError(t, err)
	require.Equal(t, uint64(2), seq, "the event is the second message of the batch")
	require.Equal(t, uint64(2), msgCount(t, stream))

	// The same name in another case is the same claim.
	claim2 := domain.Claim{Subject: event.UserNameClaimSubject(dir, "alice@example.COM"), Owner: other}
	_, err = log.AppendClaimed(ctx, claim2, event.UserSubject(dir, other), userEvent(dir, other, "alice@example.COM"), 0)
	require.ErrorIs(t, err, domain.ErrUniqueness)
	require.Equal(t, uint64(2), msgCount(t, stream), "the server must reject the whole batch")
	ev, _, err := log.Last(ctx, event.UserSubject(dir, other))
	require.NoError(t, err)
	require.Nil(t, ev)

	// The same name in another directory is free.
	dir2 := ids.New(event.PrefixDirectory)
	claim3 := domain.Claim{Subject: event.UserNameClaimSubject(dir2, "alice@example.com"), Owner: other}
	_, err = log.AppendClaimed(ctx, claim3, event.UserSubject(dir2, other), userEvent(dir2, other, "alice@example.com"), 0)
	require.NoError(t, err)
}

func TestAppendClaimedConflictOnEvent(t *testing.T) {
	log, stream := setup(t)
	ctx := t.Context()
	dir, user := ids.New(event.PrefixDirectory), ids.New(event.PrefixUser)
	subj := event.UserSubject(dir, user)
	_, err := log.Append(ctx, subj, userEvent(dir, user, "x"), 0)
	require.NoError(t, err)
	before := msgCount(t, stream)

	claim := domain.Claim{Subject: event.UserNameClaimSubject(dir, "fresh"), Owner: user}
	_, err = log.AppendClaimed(ctx, claim, subj, userEvent(dir, user, "fresh"), 0)
	require.ErrorIs(t, err, domain.ErrConflict)
	require.Equal(t, before, msgCount(t, stream), "the claim must not be stored without its event")
}

func TestLastSequenceWildcard(t *testing.T) {
	log, _ := setup(t)
	ctx := t.Context()
	dirA, dirB := ids.New(event.PrefixDirectory), ids.New(event.PrefixDirectory)

	seq, err := log.LastSequence(ctx, event.DirectoryEventsSubject(dirA))
	require.NoError(t, err)
	require.Zero(t, seq)

	u1 := ids.New(event.PrefixUser)
	seqA, err := log.Append(ctx, event.UserSubject(dirA, u1), userEvent(dirA, u1, "1"), 0)
	require.NoError(t, err)
	u2 := ids.New(event.PrefixUser)
	seqB, err := log.Append(ctx, event.UserSubject(dirB, u2), userEvent(dirB, u2, "2"), 0)
	require.NoError(t, err)

	got, err := log.LastSequence(ctx, event.DirectoryEventsSubject(dirA))
	require.NoError(t, err)
	require.Equal(t, seqA, got)
	got, err = log.LastSequence(ctx, event.SubjectAllDirectoryEvents)
	require.NoError(t, err)
	require.Equal(t, seqB, got)
}

func TestStreamMissing(t *testing.T) {
	nc := natstest.Run(t).Connect(t)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	log := eventlog.New(js)
	_, _, err = log.Last(t.Context(), "dsync.ev.x.directory")
	require.Error(t, err)
	require.True(t, errors.Is(err, jetstream.ErrStreamNotFound))
}

// TestAppendBatch checks the atomic multi-subject append: every message is
// checked against its own subject's expected sequence, a stale one rejects
// the whole batch, the returned sequences are the stored ones, and a batch
// longer than MaxBatch is split into consecutive atomic batches.
func TestAppendBatch(t *testing.T) {
	ctx := t.Context()
	dir := ids.New(event.PrefixDirectory)
	users := make([]string, 5)
	for i := range users {
		users[i] = ids.New(event.PrefixUser)
	}
	writes := func(expected ...uint64) []domain.Write {
		var out []domain.Write
		for i, seq := range expected {
			out = append(out, domain.Write{Subject: event.UserSubject(dir, users[i]), Event: userEvent(dir, users[i], "u"), ExpectedSeq: seq})
		}
		return out
	}
	tests := []struct {
		name     string
		maxBatch int
	}{{"one batch", 0}, {"split into batches of 2", 2}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log, stream := setup(t)
			if tt.maxBatch > 0 {
				log.MaxBatch = tt.maxBatch
			}
			seqs, err := log.AppendBatch(ctx, writes(0, 0, 0, 0, 0))
			require.NoError(t, err)
			require.Len(t, seqs, 5)
			for i, seq := range seqs {
				ev, got, err := log.Last(ctx, event.UserSubject(dir, users[i]))
				require.NoError(t, err)
				require.NotNil(t, ev)
				require.Equal(t, got, seq, "write %d", i)
			}
			before := msgCount(t, stream)
			// The second subject is stale: nothing of its batch is stored.
			_, err = log.AppendBatch(ctx, writes(seqs[0], seqs[1]-1))
			require.ErrorIs(t, err, domain.ErrConflict)
			require.Equal(t, before, msgCount(t, stream))
			next, err := log.AppendBatch(ctx, writes(seqs[0], seqs[1]))
			require.NoError(t, err)
			require.Equal(t, []uint64{before + 1, before + 2}, next)
		})
	}
}

// TestAppendBatchGuard checks guards: the batch is stored only while the
// guarded subject is where it was read, the guarded subject is never
// written, guards hold in every batch of a split list, and batches
// guarding the same subject do not conflict with each other.
func TestAppendBatchGuard(t *testing.T) {
	ctx := t.Context()
	dir := ids.New(event.PrefixDirectory)
	group := event.GroupSubject(dir, ids.New(event.PrefixGroup))
	member := func() domain.Write {
		u := ids.New(event.PrefixUser)
		return domain.Write{Subject: event.UserSubject(dir, u), Event: userEvent(dir, u, "u")}
	}
	tests := []struct {
		name     string
		maxBatch int
		writes   int
	}{
		{"one write", 0, 1},
		{"one batch", 0, 4},
		{"split into batches of 3 (a guard and 2 writes)", 3, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log, stream := setup(t)
			if tt.maxBatch > 0 {
				log.MaxBatch = tt.maxBatch
			}
			gseq, err := log.Append(ctx, group, userEvent(dir, "g", "group"), 0)
			require.NoError(t, err)
			batch := func(expected uint64) []domain.Write {
				out := []domain.Write{{Subject: group, ExpectedSeq: expected, Guard: true}}
				for range tt.writes {
					out = append(out, member())
				}
				return out
			}
			before := msgCount(t, stream)
			_, err = log.AppendBatch(ctx, batch(gseq-1))
			require.ErrorIs(t, err, domain.ErrConflict, "a guard on a moved subject rejects the batch")
			require.Equal(t, before, msgCount(t, stream), "nothing of it is stored")

			var wg sync.WaitGroup
			errs := make([]error, 4)
			for i := range errs {
				wg.Go(func() {
					seqs, err := log.AppendBatch(ctx, batch(gseq))
					errs[i] = err
					if err == nil {
						require.Zero(t, seqs[0], "a guard has no sequence")
						for _, seq := range seqs[1:] {
							require.NotZero(t, seq)
						}
					}
				})
			}
			wg.Wait()
			for _, err := range errs {
				require.NoError(t, err, "guards of one subject do not conflict")
			}
			_, last, err := log.Last(ctx, group)
			require.NoError(t, err)
			require.Equal(t, gseq, last, "the guarded subject is not written")
			guards, err := stream.GetLastMsgForSubject(ctx, eventlog.GuardSubject(group))
			require.NoError(t, err)
			require.Equal(t, group, guards.Header.Get(eventlog.HeaderGuard))
		})
	}
}

// TestAppendBatchGuardOnWrittenSubject: a batch that writes the guarded
// subject checks it by that write, and a later batch of the same list
// expects the subject at that write's sequence.
func TestAppendBatchGuardOnWrittenSubject(t *testing.T) {
	ctx := t.Context()
	log, _ := setup(t)
	log.MaxBatch = 2
	dir := ids.New(event.PrefixDirectory)
	group := event.GroupSubject(dir, ids.New(event.PrefixGroup))
	gseq, err := log.Append(ctx, group, userEvent(dir, "g", "group"), 0)
	require.NoError(t, err)
	u1, u2 := ids.New(event.PrefixUser), ids.New(event.PrefixUser)
	seqs, err := log.AppendBatch(ctx, []domain.Write{
		{Subject: group, ExpectedSeq: gseq, Guard: true},
		{Subject: group, Event: userEvent(dir, "g", "renamed"), ExpectedSeq: gseq},
		{Subject: event.UserSubject(dir, u1), Event: userEvent(dir, u1, "a")},
		{Subject: event.UserSubject(dir, u2), Event: userEvent(dir, u2, "b")},
	})
	require.NoError(t, err)
	_, last, err := log.Last(ctx, group)
	require.NoError(t, err)
	require.Equal(t, seqs[1], last)
	_, useq, err := log.Last(ctx, event.UserSubject(dir, u2))
	require.NoError(t, err)
	require.Equal(t, seqs[3], useq)
}
