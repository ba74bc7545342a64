// Package domain holds what the gateway's use cases share: the event-log
// port they write through and the errors it reports. It imports no
// transport or storage package, so scim and registry stay plain Go.
package domain

import (
	"context"
	"errors"

	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
)

// Errors reported by an EventLog.
var (
	// ErrConflict means the aggregate changed after it was read: the
	// expected last sequence no longer holds. The caller re-reads and
	// re-applies, or reports the conflict.
	ErrConflict = errors.New("aggregate changed since it was read")
	// ErrUniqueness means a claimed value (a userName) is held by another
	// aggregate. Nothing was appended.
	ErrUniqueness = errors.New("value is already claimed")
)

// Claim reserves a unique value in the same atomic append as an event.
type Claim struct {
	// Subject is the claim's subject, e.g. event.UserNameClaimSubject.
	Subject string
	// Owner is the id of the aggregate taking the claim; it is the claim
	// message's body, so a later writer can tell who holds the value.
	Owner string
}

// ClaimChange takes or releases a claim in the same atomic append as an
// event. A release frees a value its Owner holds (a rename or a delete);
// releasing a value held by someone else is a no-op.
type ClaimChange struct {
	Claim
	Release bool
}

// Entry is one subject's last event and its stream sequence.
type Entry struct {
	Subject string
	Seq     uint64
	Event   *dsyncv1.Event
}

// Write is one event of an atomic batch: it is stored only if its subject's
// last sequence is still ExpectedSeq (0: the subject must be empty).
//
// A Guard write stores no event on Subject: it is a read-only check that
// makes the whole batch conditional on Subject's last sequence still being
// ExpectedSeq, for an aggregate the batch depends on but does not change
// (a members-only PATCH depends on its group being alive). Event is unused.
//
// Requires, when set, is the same read-only check for this write alone
// (a GROUP_USER_ADDED depends on its user being alive): it holds in the
// atomic batch that stores the write.
type Write struct {
	Subject     string
	Event       *dsyncv1.Event
	ExpectedSeq uint64
	Guard       bool
	Requires    *Check
}

// Check is a read-only precondition: Subject's last sequence is Seq.
type Check struct {
	Subject string
	Seq     uint64
}

// EventLog reads and appends events. Implementations are safe for
// concurrent use.
type EventLog interface {
	// Last returns the last event on subject and its stream sequence, or
	// (nil, 0, nil) when the subject has none. It sees every append that
	// was acknowledged before it was called.
	Last(ctx context.Context, subject string) (*dsyncv1.Event, uint64, error)
	// Append appends ev on subject if the subject's last sequence is still
	// expectedSeq (0: the subject must be empty). It returns the event's
	// stream sequence, or ErrConflict.
	Append(ctx context.Context, subject string, ev *dsyncv1.Event, expectedSeq uint64) (uint64, error)
	// AppendClaimed appends the claim (which must not exist yet) and ev
	// atomically: both are stored or neither is. It returns ErrUniqueness
	// when the claim is held by another owner and ErrConflict when subject
	// moved past expectedSeq.
	AppendClaimed(ctx context.Context, claim Claim, subject string, ev *dsyncv1.Event, expectedSeq uint64) (uint64, error)
	// AppendWithClaims appends ev on subject together with claim changes,
	// atomically. A value whose last claim message is a release is free. It
	// returns ErrUniqueness when a value to take is held by another owner
	// and ErrConflict when subject moved past expectedSeq.
	AppendWithClaims(ctx context.Context, changes []ClaimChange, subject string, ev *dsyncv1.Event, expectedSeq uint64) (uint64, error)
	// AppendBatch appends writes in order, all or none, and returns the
	// stream sequence of each. If any subject moved past its expected
	// sequence nothing is stored and it returns ErrConflict. Atomicity is
	// bounded by the log's batch size (MaxBatch): a longer list is stored
	// as consecutive batches, each atomic, in order; a conflict in a later
	// batch leaves the earlier ones stored (callers re-read and re-apply
	// diffs, which then skip what is already there). Guard writes hold
	// in every one of those batches (a batch that writes the guarded
	// subject itself checks it by that write, and later batches expect
	// that write's sequence); their returned sequence is 0.
	AppendBatch(ctx context.Context, writes []Write) ([]uint64, error)
	// LastPerSubject returns the last event of every subject matching
	// filter (which may hold wildcards), in stream order. It sees every
	// append acknowledged before it was called.
	LastPerSubject(ctx context.Context, filter string) ([]Entry, error)
	// LastSequence returns the stream sequence of the last message
	// matching filter, or 0: a consistency token for the read model.
	LastSequence(ctx context.Context, filter string) (uint64, error)
}
