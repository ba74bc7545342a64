// Package eventlog is the gateway's adapter to the DSYNC_EVENTS JetStream
// stream: optimistic-concurrency appends, atomic claim+event batches, and
// linearizable reads of one aggregate.
package eventlog

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

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
}

var _ domain.EventLog = (*JetStream)(nil)

// New returns the event log on the stream event.Stream.
func New(js jetstream.JetStream) *JetStream {
	return &JetStream{js: js, name: event.Stream}
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

// AppendClaimed publishes the claim and the event as one atomic batch: the
// server checks both expected sequences and stores both or neither. The
// claim's body is its owner's id. When the batch fails a sequence check it
// reads the claim to tell a taken value (ErrUniqueness) from a moved
// aggregate (ErrConflict).
func (l *JetStream) AppendClaimed(ctx context.Context, claim domain.Claim, subject string, ev *dsyncv1.Event, expectedSeq uint64) (uint64, error) {
	claimMsg := nats.NewMsg(claim.Subject)
	claimMsg.Data = []byte(claim.Owner)
	claimMsg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, "0")
	evMsg, err := l.newMsg(ctx, subject, ev)
	if err != nil {
		return 0, err
	}
	evMsg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(expectedSeq, 10))

	ack, err := jetstreamext.PublishMsgBatch(ctx, l.js, []*nats.Msg{claimMsg, evMsg})
	if err == nil {
		return ack.Sequence, nil
	}
	if !isWrongLastSequence(err) {
		return 0, fmt.Errorf("append %s with claim %s: %w", subject, claim.Subject, err)
	}
	s, serr := l.Stream(ctx)
	if serr != nil {
		return 0, serr
	}
	held, gerr := natsx.LastForSubject(ctx, s, claim.Subject)
	if gerr != nil {
		return 0, fmt.Errorf("read claim %s after conflict: %w", claim.Subject, gerr)
	}
	if held != nil && string(held.Data) != claim.Owner {
		return 0, fmt.Errorf("claim %s: %w", claim.Subject, domain.ErrUniqueness)
	}
	return 0, fmt.Errorf("append %s after seq %d: %w", subject, expectedSeq, domain.ErrConflict)
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
