package delivery

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/dsync-dev/dsync/pkg/event"
	"github.com/dsync-dev/dsync/pkg/workos"
)

// Limits on what a client may configure.
const (
	// DefaultGracePeriod is how long a rotated-out secret keeps signing.
	DefaultGracePeriod = 24 * time.Hour
	// MaxGracePeriod bounds a rotation's grace period.
	MaxGracePeriod = 30 * 24 * time.Hour
	// MaxScheduleEntries and MaxScheduleDelay bound a custom retry schedule.
	MaxScheduleEntries = 30
	MaxScheduleDelay   = 7 * 24 * time.Hour
	// replayBatch is how many events a replay reads and schedules at once.
	replayBatch = 500
	// MaxEventIDs bounds the events one DeliveriesOfEvents call names, and
	// with them the size of its answer.
	MaxEventIDs = 100
)

// Service manages endpoints and the delivery log. It is what the
// WebhookService adapter calls.
type Service struct {
	Store Store
	IDs   *event.IDs
	// ValidateURL rejects a target URL with an error; the adapter supplies
	// it because the rules depend on the deployment (private targets).
	ValidateURL func(string) error
	// NewSecret makes an endpoint secret.
	NewSecret func() (string, error)
	Now       func() time.Time
	// Notify wakes the worker after deliveries became due; may be nil.
	Notify func()
}

// EndpointInput holds an endpoint's client-settable fields.
type EndpointInput struct {
	URL         string
	Events      []string
	Description string
	// RetrySchedule empty means the dispatcher's default.
	RetrySchedule []time.Duration
	// Ordering empty means OrderResource.
	Ordering Ordering
}

// EndpointPatch names the fields UpdateEndpoint changes; nil leaves one as
// it is.
type EndpointPatch struct {
	URL           *string
	Events        *[]string
	Description   *string
	State         *EndpointState
	RetrySchedule *[]time.Duration
	Ordering      *Ordering
}

func (s *Service) validURL(u string) error {
	if err := s.ValidateURL(u); err != nil {
		return fmt.Errorf("%w: url: %w", ErrInvalid, err)
	}
	return nil
}

// eventNames validates names and drops duplicates.
func eventNames(events []string) ([]string, error) {
	names := make([]string, 0, len(events))
	for _, n := range events {
		if !workos.IsEventName(n) {
			return nil, fmt.Errorf("%w: unknown event %q", ErrInvalid, n)
		}
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	return names, nil
}

func validSchedule(d []time.Duration) error {
	if len(d) > MaxScheduleEntries {
		return fmt.Errorf("%w: retry_schedule has more than %d entries", ErrInvalid, MaxScheduleEntries)
	}
	for _, x := range d {
		if x < 0 || x > MaxScheduleDelay {
			return fmt.Errorf("%w: retry delay %s outside 0..%s", ErrInvalid, x, MaxScheduleDelay)
		}
	}
	return nil
}

func validOrdering(o Ordering) (Ordering, error) {
	switch o {
	case "", OrderResource:
		return OrderResource, nil
	case OrderDirectory:
		return o, nil
	}
	return "", fmt.Errorf("%w: ordering %q", ErrInvalid, o)
}

// CreateEndpoint registers an enabled endpoint and returns it with its
// secret. It returns ErrInvalid for a bad URL (including a target the
// deployment refuses), an unknown event name, a bad retry schedule or
// ordering.
func (s *Service) CreateEndpoint(ctx context.Context, in EndpointInput) (Endpoint, error) {
	if err := s.validURL(in.URL); err != nil {
		return Endpoint{}, err
	}
	names, err := eventNames(in.Events)
	if err != nil {
		return Endpoint{}, err
	}
	if err := validSchedule(in.RetrySchedule); err != nil {
		return Endpoint{}, err
	}
	ordering, err := validOrdering(in.Ordering)
	if err != nil {
		return Endpoint{}, err
	}
	secret, err := s.NewSecret()
	if err != nil {
		return Endpoint{}, fmt.Errorf("create endpoint: %w", err)
	}
	now := s.Now().UTC()
	e := Endpoint{
		ID:            s.IDs.New(event.PrefixEndpoint),
		URL:           in.URL,
		Events:        names,
		State:         EndpointEnabled,
		Secret:        secret,
		Description:   in.Description,
		RetrySchedule: in.RetrySchedule,
		Ordering:      ordering,
		CreatedAt:     now,
		UpdatedAt:     now,
	}
	if err := s.Store.CreateEndpoint(ctx, e); err != nil {
		return Endpoint{}, fmt.Errorf("create endpoint: %w", err)
	}
	return e, nil
}

// GetEndpoint returns one endpoint: ErrInvalid for a malformed id,
// ErrNotFound for an unknown one.
func (s *Service) GetEndpoint(ctx context.Context, id string) (Endpoint, error) {
	if !event.ValidID(id, event.PrefixEndpoint) {
		return Endpoint{}, fmt.Errorf("%w: endpoint id %q", ErrInvalid, id)
	}
	e, err := s.Store.GetEndpoint(ctx, id)
	if err != nil {
		return Endpoint{}, fmt.Errorf("get endpoint %s: %w", id, err)
	}
	return e, nil
}

// UpdateEndpoint applies p to an endpoint and returns it. Disabling records
// "disabled through the API" as the reason. Enabling a disabled endpoint
// resumes it where it stopped: its pending deliveries become due now with a
// fresh retry round, and every event it subscribes to that was stored after
// it was disabled gets a delivery.
func (s *Service) UpdateEndpoint(ctx context.Context, id string, p EndpointPatch) (Endpoint, error) {
	e, err := s.GetEndpoint(ctx, id)
	if err != nil {
		return Endpoint{}, err
	}
	before := e
	if p.URL != nil {
		if err := s.validURL(*p.URL); err != nil {
			return Endpoint{}, err
		}
		e.URL = *p.URL
	}
	if p.Events != nil {
		if e.Events, err = eventNames(*p.Events); err != nil {
			return Endpoint{}, err
		}
	}
	if p.Description != nil {
		e.Description = *p.Description
	}
	if p.RetrySchedule != nil {
		if err := validSchedule(*p.RetrySchedule); err != nil {
			return Endpoint{}, err
		}
		e.RetrySchedule = *p.RetrySchedule
	}
	if p.Ordering != nil {
		if e.Ordering, err = validOrdering(*p.Ordering); err != nil {
			return Endpoint{}, err
		}
	}
	if p.State != nil && *p.State != EndpointEnabled && *p.State != EndpointDisabled {
		return Endpoint{}, fmt.Errorf("%w: state %q", ErrInvalid, *p.State)
	}
	now := s.Now().UTC()
	e.UpdatedAt = now
	if err := s.Store.UpdateEndpoint(ctx, e); err != nil {
		return Endpoint{}, fmt.Errorf("update endpoint %s: %w", id, err)
	}
	if p.State != nil && *p.State != before.State {
		reason := ""
		if *p.State == EndpointDisabled {
			reason = "disabled through the API"
		}
		if err := s.Store.SetEndpointState(ctx, id, *p.State, reason, now); err != nil {
			return Endpoint{}, fmt.Errorf("update endpoint %s: %w", id, err)
		}
		if *p.State == EndpointEnabled {
			// Resume where it stopped: what it missed while disabled.
			if _, err := s.schedule(ctx, e, before.DisabledSeq, time.Time{}, false, now); err != nil {
				return Endpoint{}, fmt.Errorf("resume endpoint %s: %w", id, err)
			}
			s.notify()
		}
	}
	return s.GetEndpoint(ctx, id)
}

// DeleteEndpoint removes an endpoint with its deliveries.
func (s *Service) DeleteEndpoint(ctx context.Context, id string) error {
	if _, err := s.GetEndpoint(ctx, id); err != nil {
		return err
	}
	if err := s.Store.DeleteEndpoint(ctx, id); err != nil {
		return fmt.Errorf("delete endpoint %s: %w", id, err)
	}
	return nil
}

// RotateSecret gives an endpoint a new secret. The current one keeps
// signing Standard Webhooks deliveries (as a second signature) for grace;
// WorkOS-Signature uses the new one at once. A rotation during a grace
// period drops the older previous secret. It returns the endpoint with its
// new secret; ErrInvalid for a grace period outside 0..MaxGracePeriod.
func (s *Service) RotateSecret(ctx context.Context, id string, grace time.Duration) (Endpoint, error) {
	if grace < 0 || grace > MaxGracePeriod {
		return Endpoint{}, fmt.Errorf("%w: grace period %s outside 0..%s", ErrInvalid, grace, MaxGracePeriod)
	}
	e, err := s.GetEndpoint(ctx, id)
	if err != nil {
		return Endpoint{}, err
	}
	secret, err := s.NewSecret()
	if err != nil {
		return Endpoint{}, fmt.Errorf("rotate secret of %s: %w", id, err)
	}
	now := s.Now().UTC()
	e.PreviousSecret, e.PreviousSecretExpiresAt = e.Secret, now.Add(grace)
	if grace == 0 {
		e.PreviousSecret, e.PreviousSecretExpiresAt = "", time.Time{}
	}
	e.Secret, e.UpdatedAt = secret, now
	if err := s.Store.UpdateEndpoint(ctx, e); err != nil {
		return Endpoint{}, fmt.Errorf("rotate secret of %s: %w", id, err)
	}
	return e, nil
}

// ListEndpoints pages through endpoints in id order.
func (s *Service) ListEndpoints(ctx context.Context, p Page) ([]Endpoint, PageInfo, error) {
	if err := validCursors(p, event.PrefixEndpoint); err != nil {
		return nil, PageInfo{}, err
	}
	return Paginate(ctx, p, func(e Endpoint) string { return e.ID }, s.Store.ListEndpoints)
}

// ListDeliveries pages through an endpoint's deliveries matching f in id
// order (creation order), each with its attempt log. It returns ErrNotFound
// for an unknown endpoint.
func (s *Service) ListDeliveries(ctx context.Context, endpointID string, f DeliveryFilter, p Page) ([]Delivery, PageInfo, error) {
	if _, err := s.GetEndpoint(ctx, endpointID); err != nil {
		return nil, PageInfo{}, err
	}
	if err := validCursors(p, event.PrefixDelivery); err != nil {
		return nil, PageInfo{}, err
	}
	switch f.State {
	case "", DeliveryPending, DeliverySucceeded, DeliveryFailed:
	default:
		return nil, PageInfo{}, fmt.Errorf("%w: state %q", ErrInvalid, f.State)
	}
	if f.EventName != "" && !workos.IsEventName(f.EventName) {
		return nil, PageInfo{}, fmt.Errorf("%w: unknown event %q", ErrInvalid, f.EventName)
	}
	ds, info, err := Paginate(ctx, p, func(d Delivery) string { return d.ID },
		func(ctx context.Context, q ListQuery) ([]Delivery, error) {
			return s.Store.ListDeliveries(ctx, endpointID, f, q)
		})
	if err != nil {
		return nil, PageInfo{}, err
	}
	for i := range ds {
		if ds[i].AttemptLog, err = s.Store.ListAttempts(ctx, ds[i].ID); err != nil {
			return nil, PageInfo{}, fmt.Errorf("list deliveries: %w", err)
		}
	}
	return ds, info, nil
}

// DeliveriesOfEvents returns every endpoint's deliveries of the events
// eventIDs, in event id then endpoint id order, each with its attempt log.
// It returns ErrInvalid for no ids, more than MaxEventIDs or one that is
// not an event id. An event without deliveries (no endpoint subscribed to
// it, or retention pruned them) adds none; a repeated id counts once.
func (s *Service) DeliveriesOfEvents(ctx context.Context, eventIDs []string) ([]Delivery, error) {
	if len(eventIDs) == 0 || len(eventIDs) > MaxEventIDs {
		return nil, fmt.Errorf("%w: give 1 to %d event ids, not %d", ErrInvalid, MaxEventIDs, len(eventIDs))
	}
	for _, id := range eventIDs {
		if !event.ValidID(id, event.PrefixEvent) {
			return nil, fmt.Errorf("%w: event id %q", ErrInvalid, id)
		}
	}
	ds, err := s.Store.DeliveriesOfEvents(ctx, eventIDs)
	if err != nil {
		return nil, fmt.Errorf("deliveries of events: %w", err)
	}
	return ds, nil
}

// GetDelivery returns one delivery of an endpoint with its attempt log;
// ErrNotFound when it is unknown or another endpoint's.
func (s *Service) GetDelivery(ctx context.Context, endpointID, id string) (Delivery, error) {
	if _, err := s.GetEndpoint(ctx, endpointID); err != nil {
		return Delivery{}, err
	}
	if !event.ValidID(id, event.PrefixDelivery) {
		return Delivery{}, fmt.Errorf("%w: delivery id %q", ErrInvalid, id)
	}
	d, err := s.Store.GetDelivery(ctx, id)
	if err != nil {
		return Delivery{}, fmt.Errorf("get delivery %s: %w", id, err)
	}
	if d.EndpointID != endpointID {
		return Delivery{}, fmt.Errorf("delivery %s of endpoint %s: %w", id, endpointID, ErrNotFound)
	}
	if d.AttemptLog, err = s.Store.ListAttempts(ctx, id); err != nil {
		return Delivery{}, fmt.Errorf("get delivery %s: %w", id, err)
	}
	return d, nil
}

// ResendDelivery makes one delivery pending and due now with a fresh retry
// round, whatever its state, and returns it. The event id and body are
// unchanged, so receivers deduplicate it like any retry.
func (s *Service) ResendDelivery(ctx context.Context, endpointID, id string) (Delivery, error) {
	d, err := s.GetDelivery(ctx, endpointID, id)
	if err != nil {
		return Delivery{}, err
	}
	if _, err := s.Store.ScheduleDeliveries(ctx, []Delivery{d}, true, s.Now().UTC()); err != nil {
		return Delivery{}, fmt.Errorf("resend delivery %s: %w", id, err)
	}
	s.notify()
	return s.GetDelivery(ctx, endpointID, id)
}

// RecoverDeliveries resends every failed delivery of an endpoint created at
// or after since and returns how many.
func (s *Service) RecoverDeliveries(ctx context.Context, endpointID string, since time.Time) (int, error) {
	if _, err := s.GetEndpoint(ctx, endpointID); err != nil {
		return 0, err
	}
	n, err := s.Store.RecoverFailed(ctx, endpointID, since, s.Now().UTC())
	if err != nil {
		return 0, fmt.Errorf("recover deliveries of %s: %w", endpointID, err)
	}
	if n > 0 {
		s.notify()
	}
	return n, nil
}

// Replay delivers again every event the endpoint subscribes to that
// occurred at or after since, or, when afterEventID is set, that follows
// that event in the stream; exactly one of them must be given. Deliveries
// that exist are made pending with a fresh retry round; missing ones (events
// from before the endpoint existed) are created. Per-resource ordering
// holds, since deliveries keep their stream sequence. It returns how many
// deliveries were scheduled.
//
// Replay reaches back as far as retention (Pruner): it schedules the
// events still stored. An event older than the retention is stored only
// while a delivery references it (a pending one, say), so a since before
// the horizon replays those; an afterEventID already pruned is ErrNotFound.
func (s *Service) Replay(ctx context.Context, endpointID string, since time.Time, afterEventID string) (int, error) {
	if (afterEventID == "") == since.IsZero() {
		return 0, fmt.Errorf("%w: give exactly one of since and after", ErrInvalid)
	}
	e, err := s.GetEndpoint(ctx, endpointID)
	if err != nil {
		return 0, err
	}
	var afterSeq uint64
	if afterEventID != "" {
		if !event.ValidID(afterEventID, event.PrefixEvent) {
			return 0, fmt.Errorf("%w: event id %q", ErrInvalid, afterEventID)
		}
		if afterSeq, err = s.Store.EventSeq(ctx, afterEventID); err != nil {
			if errors.Is(err, ErrNotFound) {
				return 0, fmt.Errorf("replay after %s: unknown or older than the retention: %w", afterEventID, ErrNotFound)
			}
			return 0, fmt.Errorf("replay: %w", err)
		}
	}
	n, err := s.schedule(ctx, e, afterSeq, since, true, s.Now().UTC())
	if err != nil {
		return n, fmt.Errorf("replay to %s: %w", endpointID, err)
	}
	if n > 0 {
		s.notify()
	}
	return n, nil
}

// schedule gives e a delivery of every subscribed event after afterSeq and
// not before since, in batches; with reset, existing deliveries are resent.
func (s *Service) schedule(ctx context.Context, e Endpoint, afterSeq uint64, since time.Time, reset bool, now time.Time) (int, error) {
	total := 0
	for {
		evs, err := s.Store.Events(ctx, EventQuery{AfterSeq: afterSeq, Since: since, Limit: replayBatch})
		if err != nil {
			return total, err
		}
		ds := make([]Delivery, 0, len(evs))
		for _, ev := range evs {
			afterSeq = ev.Seq
			if !e.Subscribes(ev.Name) {
				continue
			}
			ds = append(ds, newDelivery(s.IDs, e.ID, ev, now))
		}
		n, err := s.Store.ScheduleDeliveries(ctx, ds, reset, now)
		total += n
		if err != nil {
			return total, err
		}
		if len(evs) < replayBatch {
			return total, nil
		}
	}
}

func (s *Service) notify() {
	if s.Notify != nil {
		s.Notify()
	}
}

// validCursors keeps client text that is not an id of the listed kind out
// of queries.
func validCursors(p Page, prefix string) error {
	for _, c := range []string{p.Before, p.After} {
		if c != "" && !event.ValidID(c, prefix) {
			return fmt.Errorf("%w: cursor %q", ErrInvalid, c)
		}
	}
	return nil
}
