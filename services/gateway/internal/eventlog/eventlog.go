// Package eventlog is the gateway's adapter to the DSYNC_EVENTS JetStream
// stream: optimistic-concurrency appends, atomic claim+event batches, and
// linearizable reads of one aggregate.
package eventlog

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/dsync-dev/dsync/pkg/event"
	"github.com/dsync-dev/dsync/pkg/natsx"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
	"github.com/dsync-dev/dsync/services/gateway/internal/domain"
)

// JetStream is the event log on a JetStream stream. It looks the stream up
// on first use and caches the handle, so the gateway can start before the
// stream is declared. It is safe for concurrent use.
type JetStream struct {
	js     jetstream.JetStream
	name   string
	mu     sync.Mutex
	stream jetstream.Stream
	// MaxBatch is the most messages AppendBatch publishes in one atomic
	// batch. It must not exceed the server's max_batch_size (JetStream
	// limits; 1000 by default).
	MaxBatch int
}

// DefaultMaxBatch is nats-server's default limit on the messages of one
// atomic batch (jetstream { limits { max_batch_size } }).
const DefaultMaxBatch = 1000

var _ domain.EventLog = (*JetStream)(nil)

// New returns the event log on the stream event.Stream.
func New(js jetstream.JetStream) *JetStream {
	return &JetStream{js: js, name: event.Stream, MaxBatch: DefaultMaxBatch}
}

// Stream returns the stream handle, looking it up when not cached yet.
func (l *JetStream) Stream(ctx context.Context) (jetstream.Stream, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stream != nil {
		return l.stream, nil
	}
	s, err := l.js.Stream(ctx, l.name)
	if err != nil {
		return nil, fmt.Errorf("look up stream %s: %w", l.name, err)
	}
	l.stream = s
	return s, nil
}

// Last returns the last event on subject and its stream sequence, or
// (nil, 0, nil) when there is none. It uses a direct get, so it sees every
// acknowledged append.
func (l *JetStream) Last(ctx context.Context, subject string) (*dsyncv1.Event, uint64, error) {
	msg, err := l.lastMsg(ctx, subject)
	if err != nil || msg == nil {
		return nil, 0, err
	}
	ev, err := event.Decode(msg.Data)
	if err != nil {
		return nil, 0, fmt.Errorf("decode last event of %s (seq %d): %w", subject, msg.Sequence, err)
	}
	return ev, msg.Sequence, nil
}

// LastSequence returns the stream sequence of the last message on filter,
// which may hold wildcards (e.g. event.DirectoryEventsSubject), or 0 when
// nothing matches. It is the consistency token for reads from the projector:
// every write acknowledged before the call has a sequence at most this.
func (l *JetStream) LastSequence(ctx context.Context, filter string) (uint64, error) {
	msg, err := l.lastMsg(ctx, filter)
	if err != nil || msg == nil {
		return 0, err
	}
	return msg.Sequence, nil
}

func (l *JetStream) lastMsg(ctx context.Context, subject string) (*jetstream.RawStreamMsg, error) {
	s, err := l.Stream(ctx)
	if err != nil {
		return nil, err
	}
	return natsx.LastForSubject(ctx, s, subject)
}

// Append publishes ev on subject with Nats-Msg-Id = ev.id (a retried publish
// is deduplicated) and the expected last subject sequence, so two writers
// that read the same state cannot both append: the second gets ErrConflict.
func (l *JetStream) Append(ctx context.Context, subject string, ev *dsyncv1.Event, expectedSeq uint64) (uint64, error) {
	msg, err := l.newMsg(ctx, subject, ev)
	if err != nil {
		return 0, err
	}
	ack, err := l.js.PublishMsg(ctx, msg, jetstream.WithExpectLastSequencePerSubject(expectedSeq))
	if err != nil {
		if isWrongLastSequence(err) {
			return 0, fmt.Errorf("append %s after seq %d: %w", subject, expectedSeq, domain.ErrConflict)
		}
		return 0, fmt.Errorf("append %s: %w", subject, err)
	}
	return ack.Sequence, nil
}

// HeaderClaim marks a claim message: "held" or "released". A released
// value is free; the next claim appends after the release's sequence.
const HeaderClaim = "Dsync-Claim"

// AppendClaimed publishes the claim and the event as one atomic batch; see
// AppendWithClaims.
func (l *JetStream) AppendClaimed(ctx context.Context, claim domain.Claim, subject string, ev *dsyncv1.Event, expectedSeq uint64) (uint64, error) {
	return l.AppendWithClaims(ctx, []domain.ClaimChange{{Claim: claim}}, subject, ev, expectedSeq)
}

// maxClaimAttempts bounds the re-reads of claims that moved (were released
// or taken) between the read and the batch.
const maxClaimAttempts = 4

// AppendWithClaims publishes the claim changes and the event as one atomic
// batch: the server checks every expected sequence and stores all messages
// or none. A claim's body is its owner's id; a release has an empty body and
// HeaderClaim "released". Taking a value is first tried as if the value had
// never been claimed (no read, the common case); when the batch fails a
// sequence check the claims are read to tell a taken value (ErrUniqueness)
// from a released one (retry after the release) and from a moved aggregate
// (ErrConflict).
func (l *JetStream) AppendWithClaims(ctx context.Context, changes []domain.ClaimChange, subject string, ev *dsyncv1.Event, expectedSeq uint64) (uint64, error) {
	if len(changes) == 0 {
		return l.Append(ctx, subject, ev, expectedSeq)
	}
	s, err := l.Stream(ctx)
	if err != nil {
		return 0, err
	}
	// expect holds the expected last sequence of each claim subject; a
	// subject missing from it is dropped from the batch (already ours, or
	// a release of a value we do not hold).
	expect := make(map[string]uint64, len(changes))
	for _, c := range changes {
		if !c.Release {
			expect[c.Subject] = 0
			continue
		}
		held, err := natsx.LastForSubject(ctx, s, c.Subject)
		if err != nil {
			return 0, fmt.Errorf("read claim %s: %w", c.Subject, err)
		}
		if held != nil && !released(held) && string(held.Data) == c.Owner {
			expect[c.Subject] = held.Sequence
		}
	}
	for attempt := 0; ; attempt++ {
		msgs := make([]*nats.Msg, 0, len(changes)+1)
		for _, c := range changes {
			seq, ok := expect[c.Subject]
			if !ok {
				continue
			}
			m := nats.NewMsg(c.Subject)
			if c.Release {
				m.Header.Set(HeaderClaim, "released")
			} else {
				m.Data = []byte(c.Owner)
				m.Header.Set(HeaderClaim, "held")
			}
			m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(seq, 10))
			msgs = append(msgs, m)
		}
		evMsg, err := l.newMsg(ctx, subject, ev)
		if err != nil {
			return 0, err
		}
		if len(msgs) == 0 {
			return l.Append(ctx, subject, ev, expectedSeq)
		}
		evMsg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(expectedSeq, 10))
		ack, err := l.publishBatch(ctx, append(msgs, evMsg))
		if err == nil {
			return ack.Sequence, nil
		}
		if !isWrongLastSequence(err) {
			return 0, fmt.Errorf("append %s with claims: %w", subject, err)
		}
		moved := false
		for _, c := range changes {
			if c.Release {
				continue
			}
			held, gerr := natsx.LastForSubject(ctx, s, c.Subject)
			if gerr != nil {
				return 0, fmt.Errorf("read claim %s after conflict: %w", c.Subject, gerr)
			}
			switch {
			case held == nil:
			case released(held):
				if expect[c.Subject] != held.Sequence {
					expect[c.Subject], moved = held.Sequence, true
				}
			case string(held.Data) == c.Owner:
				if _, ok := expect[c.Subject]; ok {
					delete(expect, c.Subject)
					moved = true
				}
			default:
				return 0, fmt.Errorf("claim %s: %w", c.Subject, domain.ErrUniqueness)
			}
		}
		if !moved || attempt+1 >= maxClaimAttempts {
			return 0, fmt.Errorf("append %s after seq %d: %w", subject, expectedSeq, domain.ErrConflict)
		}
	}
}

// AppendBatch appends writes in order as atomic batches of at most
// MaxBatch messages; see domain.EventLog. One write is a plain publish.
//
// A guard is one extra message at the head of each batch, on
// GuardSubject(guarded), with JetStream's
// Nats-Expected-Last-Subject-Sequence-Subject header pointing the
// batch's optimistic check at the guarded subject: JetStream has no
// read-only check, so the guard costs ~100 bytes of storage, but no extra
// round trip or fsync (it is in the same batch), and it does not make two
// batches guarding the same subject conflict with each other on a
// single-server stream (the guarded subject is not written). On a
// clustered stream JetStream rejects a check on a subject another
// in-flight proposal checks, which callers see as ErrConflict and retry.
func (l *JetStream) AppendBatch(ctx context.Context, writes []domain.Write) ([]uint64, error) {
	var guards []domain.Check
	data := make([]int, 0, len(writes)) // indexes of the writes that store an event
	for i, w := range writes {
		if w.Guard {
			guards = append(guards, domain.Check{Subject: w.Subject, Seq: w.ExpectedSeq})
		} else {
			data = append(data, i)
		}
	}
	seqs := make([]uint64, len(writes))
	if len(data) == 0 {
		return seqs, nil // nothing to store: guards alone change nothing
	}
	if w := writes[data[0]]; len(data) == 1 && len(guards) == 0 && w.Requires == nil {
		seq, err := l.Append(ctx, w.Subject, w.Event, w.ExpectedSeq)
		if err != nil {
			return nil, err
		}
		seqs[data[0]] = seq
		return seqs, nil
	}
	size := l.MaxBatch
	if size <= 0 {
		size = DefaultMaxBatch
	}
	if len(guards) >= size {
		return nil, fmt.Errorf("append batch: %d guards leave no room in batches of %d", len(guards), size)
	}
	for len(data) > 0 {
		// The chunk is the longest prefix whose writes, the batch's guards
		// and the chunk's distinct requirements fit in one batch.
		reqs := map[string]bool{}
		n := 0
		for n < len(data) {
			r := writes[data[n]].Requires
			extra := 1
			if r != nil && !reqs[r.Subject] {
				extra++
			}
			if len(guards)+len(reqs)+n+extra > size {
				if n == 0 {
					return seqs, fmt.Errorf("append batch: a write with its checks exceeds batches of %d", size)
				}
				break
			}
			if r != nil {
				reqs[r.Subject] = true
			}
			n++
		}
		chunk := data[:n]
		data = data[n:]
		written := make(map[string]bool, len(chunk))
		for _, i := range chunk {
			written[writes[i].Subject] = true
		}
		checks := slices.Clone(guards)
		for _, i := range chunk {
			if r := writes[i].Requires; r != nil {
				checks = append(checks, *r)
			}
		}
		msgs := make([]*nats.Msg, 0, len(checks)+len(chunk))
		checked := map[string]bool{}
		for _, c := range checks {
			if written[c.Subject] || checked[c.Subject] {
				continue // the chunk's own write on the subject checks it
			}
			checked[c.Subject] = true
			m := nats.NewMsg(GuardSubject(c.Subject))
			m.Header.Set(HeaderGuard, c.Subject)
			m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(c.Seq, 10))
			m.Header.Set(jetstream.ExpectedLastSubjSeqSubjHeader, c.Subject)
			msgs = append(msgs, m)
		}
		nGuards := len(msgs)
		for _, i := range chunk {
			w := writes[i]
			m, err := l.newMsg(ctx, w.Subject, w.Event)
			if err != nil {
				return seqs, err
			}
			m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(w.ExpectedSeq, 10))
			msgs = append(msgs, m)
		}
		at := writes[chunk[0]].Subject
		var first uint64
		if len(msgs) == 1 {
			w := writes[chunk[0]]
			seq, err := l.Append(ctx, w.Subject, w.Event, w.ExpectedSeq)
			if err != nil {
				return seqs, err
			}
			first = seq
		} else {
			ack, err := l.publishBatch(ctx, msgs)
			if err != nil {
				if isWrongLastSequence(err) {
					return seqs, fmt.Errorf("append batch of %d at %s: %w", len(msgs), at, domain.ErrConflict)
				}
				return seqs, fmt.Errorf("append batch of %d at %s: %w", len(msgs), at, err)
			}
			// An atomic batch is stored in consecutive sequences ending at
			// the acknowledged one, guards first.
			first = ack.Sequence + 1 - uint64(len(msgs)) + uint64(nGuards)
		}
		for k, i := range chunk {
			seqs[i] = first + uint64(k)
		}
		// A guarded subject this chunk wrote is now at that write's
		// sequence: later chunks expect it there.
		for gi := range guards {
			for _, i := range chunk {
				if writes[i].Subject == guards[gi].Subject {
					guards[gi].Seq = seqs[i]
				}
			}
		}
	}
	return seqs, nil
}

// HeaderGuard marks a guard message and names the subject it guards; see
// AppendBatch. Readers of dsync.idx.> skip it, as they skip claims.
const HeaderGuard = "Dsync-Guard"

// GuardSubject is the subject of the guard messages of a subject:
// dsync.idx.guard.<subject without "dsync.">, under the claims' prefix,
// which the projector and dispatcher do not read as facts.
func GuardSubject(subject string) string {
	return "dsync.idx.guard." + strings.TrimPrefix(subject, "dsync.")
}

// errCodeTooManyInflight is JetStream's "atomic publish too many inflight":
// the stream has its limit of open batches (50 by default); the batch was
// not stored and may be retried.
const errCodeTooManyInflight = 10210

// publishBatch publishes msgs as one atomic batch, retrying with a short
// backoff while the stream has too many batches in flight.
func (l *JetStream) publishBatch(ctx context.Context, msgs []*nats.Msg) (*jetstreamext.BatchAck, error) {
	for attempt := 0; ; attempt++ {
		ack, err := jetstreamext.PublishMsgBatch(ctx, l.js, msgs)
		var apiErr *jetstream.APIError
		if err == nil || !errors.As(err, &apiErr) || apiErr.ErrorCode != errCodeTooManyInflight || attempt >= 50 {
			return ack, err
		}
		for _, m := range msgs {
			// The batch headers are set per publish; a retry starts a new batch.
			m.Header.Del(jetstreamext.BatchIDHeader)
			m.Header.Del(jetstreamext.BatchSeqHeader)
			m.Header.Del(jetstreamext.BatchCommitHeader)
			m.Reply = ""
		}
		t := time.NewTimer(time.Duration(1+attempt%10) * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("publish batch: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// released reports whether a claim message frees its value.
func released(m *jetstream.RawStreamMsg) bool {
	return m.Header.Get(HeaderClaim) == "released" || len(m.Data) == 0
}

// LastPerSubject returns the last event of each subject matching filter,
// with an ordered consumer delivering the last message per subject. Claims
// and malformed messages are skipped.
func (l *JetStream) LastPerSubject(ctx context.Context, filter string) ([]domain.Entry, error) {
	s, err := l.Stream(ctx)
	if err != nil {
		return nil, err
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{filter},
		DeliverPolicy:  jetstream.DeliverLastPerSubjectPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("read last per subject of %s: %w", filter, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("read last per subject of %s: %w", filter, err)
	}
	pending := info.NumPending
	out := make([]domain.Entry, 0, pending)
	for pending > 0 {
		batch, err := cons.Fetch(int(min(pending, 1000)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, fmt.Errorf("read last per subject of %s: %w", filter, err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			md, err := m.Metadata()
			if err != nil {
				return nil, fmt.Errorf("read last per subject of %s: %w", filter, err)
			}
			pending = md.NumPending
			if ev, err := event.Decode(m.Data()); err == nil {
				out = append(out, domain.Entry{Subject: m.Subject(), Seq: md.Sequence.Stream, Event: ev})
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return nil, fmt.Errorf("read last per subject of %s: %w", filter, err)
		}
		if got == 0 {
			return nil, fmt.Errorf("read last per subject of %s: no progress with %d pending: %w", filter, pending, context.DeadlineExceeded)
		}
	}
	return out, nil
}

func (l *JetStream) newMsg(ctx context.Context, subject string, ev *dsyncv1.Event) (*nats.Msg, error) {
	msg, err := event.NewMsg(subject, ev)
	if err != nil {
		return nil, err
	}
	natsx.InjectTrace(ctx, msg.Header)
	return msg, nil
}

// isWrongLastSequence reports whether err is JetStream's "wrong last
// sequence" API error: 10071, or 10164 on replicated streams.
func isWrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	return apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant
}
