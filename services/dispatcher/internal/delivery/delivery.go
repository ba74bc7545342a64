// Package delivery is the dispatcher's domain: webhook endpoints, the events
// they receive, deliveries (one event to one endpoint) and their attempts,
// and the rules that decide what happens after each attempt.
//
// Stream messages are never held while a delivery is retried: an event is
// turned into durable delivery rows (Ingester) and acknowledged, and a
// separate Worker sends due deliveries and schedules retries. A dead
// endpoint therefore cannot exhaust the consumer's MaxAckPending and stall
// deliveries to every other endpoint (DESIGN.md §4).
//
// The package imports no transport or storage: the Store and Sender it uses
// are implemented by adapters.
package delivery

import (
	"context"
	"errors"
	"slices"
	"time"
)

// Errors of the domain. Adapters map them to gRPC codes in one place.
var (
	ErrNotFound = errors.New("not found")
	ErrInvalid  = errors.New("invalid argument")
)

// EndpointState says whether an endpoint receives deliveries.
type EndpointState string

// Endpoint states.
const (
	EndpointEnabled  EndpointState = "enabled"
	EndpointDisabled EndpointState = "disabled"
)

// Ordering is the delivery order an endpoint is promised.
type Ordering string

// Orderings.
const (
	// OrderResource delivers the events of one resource (user, group,
	// membership) in stream order; unrelated resources go in parallel.
	OrderResource Ordering = "resource"
	// OrderDirectory delivers every event of one directory in stream order.
	OrderDirectory Ordering = "directory"
)

// Endpoint is a customer URL that receives signed webhook events.
type Endpoint struct {
	ID  string // we_<ULID>
	URL string
	// Events are the subscribed event names; empty means every event.
	Events      []string
	State       EndpointState
	Secret      string // whsec_<base64 of 32 bytes>
	Description string
	// RetrySchedule overrides the dispatcher's retry schedule when not empty.
	RetrySchedule []time.Duration
	Ordering      Ordering
	// DisabledReason says why a disabled endpoint was disabled.
	DisabledReason string
	// DisabledSeq is the last stream sequence stored when the endpoint was
	// disabled: enabling it again delivers the events after it.
	DisabledSeq uint64
	// PreviousSecret still signs Standard Webhooks deliveries until
	// PreviousSecretExpiresAt (secret rotation grace period).
	PreviousSecret          string
	PreviousSecretExpiresAt time.Time
	// FailingSince is when the current run of failed attempts began; zero
	// after a success.
	FailingSince time.Time
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Subscribes reports whether e wants events named name.
func (e Endpoint) Subscribes(name string) bool {
	return len(e.Events) == 0 || slices.Contains(e.Events, name)
}

// Event is a public event as it is sent: its rendered JSON body is stored
// once and is the exact bytes signed and sent at every attempt.
type Event struct {
	ID      string // event_<ULID>, also the webhook-id
	Name    string // dsync.user.created, …
	Subject string // the stream subject, i.e. the resource the event is about
	// Seq is the stream sequence; deliveries of one subject to one endpoint
	// go out in Seq order.
	Seq       uint64
	Body      []byte
	CreatedAt time.Time
	// TraceParent is the W3C traceparent of the request that caused the
	// event, so each attempt's span links to it; empty when untraced.
	TraceParent string
}

// DeliveryState is where a delivery is in its life.
type DeliveryState string

// Delivery states.
const (
	DeliveryPending   DeliveryState = "pending"
	DeliverySucceeded DeliveryState = "succeeded"
	// DeliveryFailed is the dead-letter state: every attempt failed or the
	// endpoint is gone.
	DeliveryFailed DeliveryState = "failed"
)

// Delivery is one event to be delivered to one endpoint. There is at most
// one delivery per (EndpointID, EventID).
type Delivery struct {
	ID         string // whd_<ULID>
	EndpointID string
	EventID    string
	EventName  string
	Subject    string
	// DirectoryID orders deliveries of endpoints with OrderDirectory.
	DirectoryID string
	Seq         uint64
	State       DeliveryState
	// Attempts is the number of attempts made so far.
	Attempts int
	// RoundStart is Attempts when the delivery was last resent: the retry
	// schedule applies to the attempts after it.
	RoundStart     int
	LastStatusCode int // 0 when the last attempt got no response
	LastError      string
	NextAttemptAt  time.Time
	CreatedAt      time.Time
	UpdatedAt      time.Time
	// AttemptLog holds the attempts, oldest first, when the Service read
	// them or the store returned them with the delivery
	// (DeliveriesOfEvents); other store methods leave it nil.
	AttemptLog []Attempt
}

// Attempt is one HTTP request of a delivery.
type Attempt struct {
	DeliveryID string
	Number     int // 1-based
	StartedAt  time.Time
	StatusCode int // 0 when there was no response
	Error      string
	Latency    time.Duration
	// ResponseBody is at most MaxResponseSnippet bytes of the response.
	ResponseBody string
}

// MaxResponseSnippet bounds the response body kept per attempt.
const MaxResponseSnippet = 4096

// Claim is a due delivery leased to one worker, with what it needs to send.
type Claim struct {
	Delivery Delivery
	URL      string
	Secret   string
	// PreviousSecret is set while a rotated-out secret is in its grace period.
	PreviousSecret string
	// Schedule is the endpoint's retry schedule; nil means the default.
	Schedule []time.Duration
	// FailingSince is the endpoint's; zero when its last attempt succeeded.
	FailingSince time.Time
	Body         []byte
	TraceParent  string
	// LeaseUntil is the lease this claim holds (set by the worker that
	// claimed it).
	LeaseUntil time.Time
}

// Outcome is the delivery's state after an attempt.
type Outcome struct {
	State DeliveryState
	// NextAttemptAt is set when State is DeliveryPending.
	NextAttemptAt time.Time
	// DisableEndpoint is set when the endpoint told us it is gone (410) or
	// has failed for too long; DisableReason says which.
	DisableEndpoint bool
	DisableReason   string
}

// Finished is an attempt and the outcome it led to, to be recorded.
type Finished struct {
	Attempt Attempt
	Outcome Outcome
	// Lease is the lease the attempt was made under. When set and the
	// delivery no longer holds it (it was resent or replayed meanwhile, or
	// its lease expired and another claim took it), the attempt is
	// recorded and counted but the delivery's state, next attempt and
	// lease are left to whoever changed them: a resend pressed while an
	// attempt was in flight is not undone by that attempt's result. Zero
	// records unconditionally.
	Lease time.Time
}

// DeliveryFilter narrows a list of deliveries; zero fields match all.
type DeliveryFilter struct {
	State         DeliveryState
	EventName     string
	CreatedAfter  time.Time // inclusive
	CreatedBefore time.Time // exclusive
}

// EventQuery selects stored events in stream order: those with Seq above
// AfterSeq and CreatedAt not before Since. At most Limit.
type EventQuery struct {
	AfterSeq uint64
	Since    time.Time
	Limit    int
}

// ListQuery selects a run of rows in id order: those after Cursor in
// ascending order, or, with Desc, those before Cursor in descending order.
// An empty Cursor starts at the first (or last) row. At most Limit rows.
type ListQuery struct {
	Cursor string
	Desc   bool
	Limit  int
}

// Store keeps endpoints, events, deliveries and attempts. Implementations
// must be safe for concurrent use and pass the storetest conformance suite.
type Store interface {
	// CreateEndpoint inserts e.
	CreateEndpoint(ctx context.Context, e Endpoint) error
	// GetEndpoint returns ErrNotFound when id is unknown.
	GetEndpoint(ctx context.Context, id string) (Endpoint, error)
	// ListEndpoints lists endpoints by id.
	ListEndpoints(ctx context.Context, q ListQuery) ([]Endpoint, error)
	// EnabledEndpoints returns every enabled endpoint.
	EnabledEndpoints(ctx context.Context) ([]Endpoint, error)
	// AllEndpoints returns every endpoint, enabled or disabled, by id.
	AllEndpoints(ctx context.Context) ([]Endpoint, error)
	// UpdateEndpoint writes e's URL, events, description, retry schedule,
	// ordering, secrets and UpdatedAt (not its state); ErrNotFound when
	// unknown.
	UpdateEndpoint(ctx context.Context, e Endpoint) error
	// SetEndpointState changes an endpoint's state; ErrNotFound when unknown.
	// Disabling records reason and the last stored event sequence
	// (DisabledSeq). Enabling clears both and FailingSince, and makes the
	// endpoint's pending deliveries due at at with a fresh retry round.
	SetEndpointState(ctx context.Context, id string, state EndpointState, reason string, at time.Time) error
	// DeleteEndpoint removes an endpoint, its deliveries and their
	// attempts; ErrNotFound when unknown.
	DeleteEndpoint(ctx context.Context, id string) error

	// AddEvent stores ev (once: an existing id is kept as is) and inserts
	// deliveries, in one transaction. A delivery whose (EndpointID,
	// EventID) exists is skipped, so a redelivered stream message never
	// duplicates a delivery. It returns how many deliveries were inserted.
	AddEvent(ctx context.Context, ev Event, deliveries []Delivery) (int, error)
	// AddEvents is AddEvent for several events and their deliveries, all
	// in one transaction.
	AddEvents(ctx context.Context, evs []Event, deliveries []Delivery) (int, error)
	// Events lists stored events (without bodies) in stream order.
	Events(ctx context.Context, q EventQuery) ([]Event, error)
	// EventSeq returns an event's stream sequence; ErrNotFound when unknown.
	EventSeq(ctx context.Context, id string) (uint64, error)
	// ScheduleDeliveries inserts ds as given. With reset, a delivery whose
	// (EndpointID, EventID) exists is instead made pending and due at at
	// with a fresh retry round (RoundStart = Attempts); without, it is
	// skipped. It returns how many deliveries were inserted or reset.
	ScheduleDeliveries(ctx context.Context, ds []Delivery, reset bool, at time.Time) (int, error)
	// RecoverFailed makes an endpoint's failed deliveries created at or
	// after since pending, due at at, with a fresh retry round, and returns
	// how many.
	RecoverFailed(ctx context.Context, endpointID string, since, at time.Time) (int, error)
	// Backlog returns the number of pending deliveries per endpoint.
	Backlog(ctx context.Context) (map[string]int64, error)

	// ClaimDue leases up to limit pending deliveries that are due at now,
	// whose endpoint is enabled and that are not leased (claimed_until
	// unset or not after now), until leaseUntil. It never returns a
	// delivery while an earlier (lower Seq) pending delivery of the same
	// endpoint and subject exists (or, for an endpoint with OrderDirectory,
	// of the same directory), and never more than perEndpoint − held[id]
	// deliveries of endpoint id, held being what the claimer holds of each
	// endpoint (claimed and not yet recorded). The cap is the claimer's
	// own, so counting it costs the store nothing: counting live leases in
	// the table meant reading every lease taken since the last vacuum on
	// each claim. A lease that expires makes the delivery due again: that
	// is how a crashed worker's delivery is retried. A claim carries the
	// previous secret only while it is within its grace period at now.
	ClaimDue(ctx context.Context, now, leaseUntil time.Time, limit, perEndpoint int, held map[string]int) ([]Claim, error)
	// ReleaseClaims ends the leases of the pending deliveries ids, which
	// were claimed and never attempted: they are due again at once.
	ReleaseClaims(ctx context.Context, ids []string) error

	// FinishAttempt records a and applies o to the delivery in one
	// transaction: attempts and last status/error are updated, the lease is
	// released, the endpoint's FailingSince is cleared by a success and set
	// (if unset) by a failure, and the endpoint is disabled when o says so.
	// ErrNotFound when the delivery is unknown.
	FinishAttempt(ctx context.Context, a Attempt, o Outcome) error
	// FinishAttempts records each of fs as FinishAttempt does, in order and
	// all in one transaction (group commit: one write for many attempts).
	// A delivery that no longer exists (its endpoint was deleted) is
	// skipped: recorded[i] is false for it. An error means nothing was
	// recorded.
	FinishAttempts(ctx context.Context, fs []Finished) (recorded []bool, err error)

	// GetDelivery returns ErrNotFound when id is unknown.
	GetDelivery(ctx context.Context, id string) (Delivery, error)
	// ListDeliveries lists an endpoint's deliveries matching f by id.
	ListDeliveries(ctx context.Context, endpointID string, f DeliveryFilter, q ListQuery) ([]Delivery, error)
	// ListAttempts returns a delivery's attempts by number.
	ListAttempts(ctx context.Context, deliveryID string) ([]Attempt, error)
	// DeliveriesOfEvents returns every endpoint's deliveries of the events
	// eventIDs, ordered by event id then endpoint id, each with its
	// AttemptLog, all read in one statement (so a delivery and its
	// attempts agree): a view that starts from events asks once, not once
	// per endpoint and delivery. An id without deliveries adds none; a
	// repeated id counts once.
	DeliveriesOfEvents(ctx context.Context, eventIDs []string) ([]Delivery, error)

	// Prune deletes one batch of what retention no longer keeps, q.Before
	// being the horizon, and returns what it removed:
	//   - up to q.Limit finished (succeeded or failed) deliveries updated
	//     before q.Before, with their attempts, and, of the events they
	//     referenced, those created before q.Before that no delivery
	//     references any more;
	//   - of up to q.Limit events created before q.Before that follow
	//     q.After in (CreatedAt, ID) order (the sweep), those no delivery
	//     references.
	// Pending deliveries are never deleted, whatever their age, nor the
	// events they reference. A call is short whatever the backlog: it
	// reads and deletes in proportion to q.Limit.
	Prune(ctx context.Context, q PruneQuery) (PruneResult, error)
}
