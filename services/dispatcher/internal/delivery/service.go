package delivery

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/dsync-dev/dsync/pkg/event"
	"github.com/dsync-dev/dsync/pkg/workos"
)

// Service manages endpoints and reads the delivery log. It is what the
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
}

// CreateEndpoint registers an enabled endpoint for url and the given event
// names (none means all; duplicates are dropped) and returns it with its
// secret. It returns ErrInvalid for a bad URL or an unknown event name.
func (s *Service) CreateEndpoint(ctx context.Context, url string, events []string) (Endpoint, error) {
	if err := s.ValidateURL(url); err != nil {
		return Endpoint{}, fmt.Errorf("%w: url: %w", ErrInvalid, err)
	}
	names := make([]string, 0, len(events))
	for _, n := range events {
		if !workos.IsEventName(n) {
			return Endpoint{}, fmt.Errorf("%w: unknown event %q", ErrInvalid, n)
		}
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	secret, err := s.NewSecret()
	if err != nil {
		return Endpoint{}, fmt.Errorf("create endpoint: %w", err)
	}
	now := s.Now().UTC()
	e := Endpoint{
		ID:        s.IDs.New(event.PrefixEndpoint),
		URL:       url,
		Events:    names,
		State:     EndpointEnabled,
		Secret:    secret,
		CreatedAt: now,
		UpdatedAt: now,
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

// ListEndpoints pages through endpoints in id order.
func (s *Service) ListEndpoints(ctx context.Context, p Page) ([]Endpoint, PageInfo, error) {
	if err := validCursors(p, event.PrefixEndpoint); err != nil {
		return nil, PageInfo{}, err
	}
	return Paginate(ctx, p, func(e Endpoint) string { return e.ID }, s.Store.ListEndpoints)
}

// ListDeliveries pages through an endpoint's deliveries in id order
// (creation order). It returns ErrNotFound for an unknown endpoint.
func (s *Service) ListDeliveries(ctx context.Context, endpointID string, p Page) ([]Delivery, PageInfo, error) {
	if _, err := s.GetEndpoint(ctx, endpointID); err != nil {
		return nil, PageInfo{}, err
	}
	if err := validCursors(p, event.PrefixDelivery); err != nil {
		return nil, PageInfo{}, err
	}
	return Paginate(ctx, p, func(d Delivery) string { return d.ID },
		func(ctx context.Context, q ListQuery) ([]Delivery, error) {
			return s.Store.ListDeliveries(ctx, endpointID, q)
		})
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
