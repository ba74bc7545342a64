// Package grpcapi serves dsync.v1.WebhookService over the delivery domain.
package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
	"github.com/dsync-dev/dsync/services/dispatcher/internal/delivery"
)

// Server implements dsyncv1.WebhookServiceServer.
type Server struct {
	dsyncv1.UnimplementedWebhookServiceServer
	Service *delivery.Service
	Log     *slog.Logger
}

var _ dsyncv1.WebhookServiceServer = (*Server)(nil)

// CreateEndpoint registers an endpoint and returns it with its secret.
func (s *Server) CreateEndpoint(ctx context.Context, req *dsyncv1.CreateEndpointRequest) (*dsyncv1.CreateEndpointResponse, error) {
	ordering, err := orderingFromProto(req.GetOrdering())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	e, err := s.Service.CreateEndpoint(ctx, delivery.EndpointInput{
		URL: req.GetUrl(), Events: req.GetEvents(), Description: req.GetDescription(),
		RetrySchedule: scheduleFromProto(req.GetRetryScheduleSeconds()), Ordering: ordering,
	})
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &dsyncv1.CreateEndpointResponse{Endpoint: endpointProto(e, true)}, nil
}

// UpdateEndpoint changes the fields named in the update mask.
func (s *Server) UpdateEndpoint(ctx context.Context, req *dsyncv1.UpdateEndpointRequest) (*dsyncv1.UpdateEndpointResponse, error) {
	in := req.GetEndpoint()
	var p delivery.EndpointPatch
	for _, path := range req.GetUpdateMask().GetPaths() {
		switch path {
		case "url":
			p.URL = new(in.GetUrl())
		case "events":
			p.Events = new(in.GetEvents())
		case "description":
			p.Description = new(in.GetDescription())
		case "state":
			st := delivery.EndpointEnabled
			switch in.GetState() {
			case dsyncv1.EndpointState_ENDPOINT_STATE_ENABLED:
			case dsyncv1.EndpointState_ENDPOINT_STATE_DISABLED:
				st = delivery.EndpointDisabled
			default:
				return nil, status.Error(codes.InvalidArgument, "state must be enabled or disabled")
			}
			p.State = &st
		case "retry_schedule_seconds":
			p.RetrySchedule = new(scheduleFromProto(in.GetRetryScheduleSeconds()))
		case "ordering":
			o, err := orderingFromProto(in.GetOrdering())
			if err != nil {
				return nil, s.status(ctx, err)
			}
			p.Ordering = &o
		default:
			return nil, status.Errorf(codes.InvalidArgument, "update_mask: field %q cannot be updated", path)
		}
	}
	e, err := s.Service.UpdateEndpoint(ctx, in.GetId(), p)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &dsyncv1.UpdateEndpointResponse{Endpoint: endpointProto(e, false)}, nil
}

// DeleteEndpoint removes an endpoint with its deliveries.
func (s *Server) DeleteEndpoint(ctx context.Context, req *dsyncv1.DeleteEndpointRequest) (*dsyncv1.DeleteEndpointResponse, error) {
	if err := s.Service.DeleteEndpoint(ctx, req.GetId()); err != nil {
		return nil, s.status(ctx, err)
	}
	return &dsyncv1.DeleteEndpointResponse{}, nil
}

// RotateSecret gives an endpoint a new secret and returns it.
func (s *Server) RotateSecret(ctx context.Context, req *dsyncv1.RotateSecretRequest) (*dsyncv1.RotateSecretResponse, error) {
	grace := delivery.DefaultGracePeriod
	if req.GetGracePeriod() != nil {
		if err := req.GetGracePeriod().CheckValid(); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "grace_period: %v", err)
		}
		grace = req.GetGracePeriod().AsDuration()
	}
	e, err := s.Service.RotateSecret(ctx, req.GetEndpointId(), grace)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &dsyncv1.RotateSecretResponse{Endpoint: endpointProto(e, true)}, nil
}

// GetDelivery returns one delivery with its attempts.
func (s *Server) GetDelivery(ctx context.Context, req *dsyncv1.GetDeliveryRequest) (*dsyncv1.GetDeliveryResponse, error) {
	d, err := s.Service.GetDelivery(ctx, req.GetEndpointId(), req.GetId())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &dsyncv1.GetDeliveryResponse{Delivery: deliveryProto(d)}, nil
}

// ResendDelivery sends one delivery again.
func (s *Server) ResendDelivery(ctx context.Context, req *dsyncv1.ResendDeliveryRequest) (*dsyncv1.ResendDeliveryResponse, error) {
	d, err := s.Service.ResendDelivery(ctx, req.GetEndpointId(), req.GetDeliveryId())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &dsyncv1.ResendDeliveryResponse{Delivery: deliveryProto(d)}, nil
}

// RecoverDeliveries resends the failed deliveries since a time.
func (s *Server) RecoverDeliveries(ctx context.Context, req *dsyncv1.RecoverDeliveriesRequest) (*dsyncv1.RecoverDeliveriesResponse, error) {
	if err := req.GetSince().CheckValid(); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "since: %v", err)
	}
	n, err := s.Service.RecoverDeliveries(ctx, req.GetEndpointId(), req.GetSince().AsTime())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &dsyncv1.RecoverDeliveriesResponse{Recovered: int64(n)}, nil
}

// ReplayEvents delivers again every event since a time or after an event.
func (s *Server) ReplayEvents(ctx context.Context, req *dsyncv1.ReplayEventsRequest) (*dsyncv1.ReplayEventsResponse, error) {
	var since time.Time
	if req.GetSince() != nil {
		if err := req.GetSince().CheckValid(); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "since: %v", err)
		}
		since = req.GetSince().AsTime()
		if since.IsZero() || since.Before(time.Unix(0, 0)) {
			since = time.Unix(0, 1) // the start of time, but set
		}
	}
	n, err := s.Service.Replay(ctx, req.GetEndpointId(), since, req.GetAfterEventId())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &dsyncv1.ReplayEventsResponse{Scheduled: int64(n)}, nil
}

// GetEndpoint returns one endpoint with its secret.
func (s *Server) GetEndpoint(ctx context.Context, req *dsyncv1.GetEndpointRequest) (*dsyncv1.GetEndpointResponse, error) {
	e, err := s.Service.GetEndpoint(ctx, req.GetId())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &dsyncv1.GetEndpointResponse{Endpoint: endpointProto(e, true)}, nil
}

// ListEndpoints pages through endpoints, oldest first unless ORDER_DESC.
// Secrets are left out of lists.
func (s *Server) ListEndpoints(ctx context.Context, req *dsyncv1.ListEndpointsRequest) (*dsyncv1.ListEndpointsResponse, error) {
	es, info, err := s.Service.ListEndpoints(ctx, page(req.GetPage(), false))
	if err != nil {
		return nil, s.status(ctx, err)
	}
	resp := &dsyncv1.ListEndpointsResponse{PageInfo: pageInfo(info)}
	for _, e := range es {
		resp.Endpoints = append(resp.Endpoints, endpointProto(e, false))
	}
	return resp, nil
}

// ListDeliveries pages through an endpoint's deliveries, newest first
// unless ORDER_ASC, each with its attempts.
func (s *Server) ListDeliveries(ctx context.Context, req *dsyncv1.ListDeliveriesRequest) (*dsyncv1.ListDeliveriesResponse, error) {
	f := delivery.DeliveryFilter{EventName: req.GetEvent()}
	switch req.GetState() {
	case dsyncv1.DeliveryState_DELIVERY_STATE_UNSPECIFIED:
	case dsyncv1.DeliveryState_DELIVERY_STATE_PENDING:
		f.State = delivery.DeliveryPending
	case dsyncv1.DeliveryState_DELIVERY_STATE_SUCCEEDED:
		f.State = delivery.DeliverySucceeded
	case dsyncv1.DeliveryState_DELIVERY_STATE_FAILED:
		f.State = delivery.DeliveryFailed
	default:
		return nil, status.Error(codes.InvalidArgument, "unknown delivery state")
	}
	for _, ts := range []struct {
		name string
		in   *timestamppb.Timestamp
		out  *time.Time
	}{{"created_after", req.GetCreatedAfter(), &f.CreatedAfter}, {"created_before", req.GetCreatedBefore(), &f.CreatedBefore}} {
		if ts.in == nil {
			continue
		}
		if err := ts.in.CheckValid(); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "%s: %v", ts.name, err)
		}
		*ts.out = ts.in.AsTime()
	}
	ds, info, err := s.Service.ListDeliveries(ctx, req.GetEndpointId(), f, page(req.GetPage(), true))
	if err != nil {
		return nil, s.status(ctx, err)
	}
	resp := &dsyncv1.ListDeliveriesResponse{PageInfo: pageInfo(info)}
	for _, d := range ds {
		resp.Deliveries = append(resp.Deliveries, deliveryProto(d))
	}
	return resp, nil
}

// ListEventDeliveries returns every endpoint's deliveries of some events,
// each with its attempts, in event then endpoint order.
func (s *Server) ListEventDeliveries(ctx context.Context, req *dsyncv1.ListEventDeliveriesRequest) (*dsyncv1.ListEventDeliveriesResponse, error) {
	ds, err := s.Service.DeliveriesOfEvents(ctx, req.GetEventIds())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	resp := &dsyncv1.ListEventDeliveriesResponse{Deliveries: make([]*dsyncv1.Delivery, 0, len(ds))}
	for _, d := range ds {
		resp.Deliveries = append(resp.Deliveries, deliveryProto(d))
	}
	return resp, nil
}

// status maps domain errors to gRPC codes, in this one place. Unexpected
// errors are logged here and reach the client without details.
func (s *Server) status(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, delivery.ErrInvalid):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, delivery.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "canceled")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "deadline exceeded")
	}
	s.Log.ErrorContext(ctx, "webhook service", "error", err)
	return status.Error(codes.Internal, "internal error")
}

func page(p *dsyncv1.Page, descByDefault bool) delivery.Page {
	desc := descByDefault
	switch p.GetOrder() {
	case dsyncv1.Order_ORDER_ASC:
		desc = false
	case dsyncv1.Order_ORDER_DESC:
		desc = true
	}
	return delivery.Page{Limit: int(p.GetLimit()), Before: p.GetBefore(), After: p.GetAfter(), Desc: desc}
}

func pageInfo(i delivery.PageInfo) *dsyncv1.PageInfo {
	return &dsyncv1.PageInfo{Before: i.Before, After: i.After}
}

func endpointProto(e delivery.Endpoint, withSecret bool) *dsyncv1.Endpoint {
	state := dsyncv1.EndpointState_ENDPOINT_STATE_ENABLED
	if e.State == delivery.EndpointDisabled {
		state = dsyncv1.EndpointState_ENDPOINT_STATE_DISABLED
	}
	ordering := dsyncv1.OrderingMode_ORDERING_MODE_RESOURCE
	if e.Ordering == delivery.OrderDirectory {
		ordering = dsyncv1.OrderingMode_ORDERING_MODE_DIRECTORY
	}
	p := &dsyncv1.Endpoint{
		Id:             e.ID,
		Url:            e.URL,
		Events:         e.Events,
		State:          state,
		CreatedAt:      timestamppb.New(e.CreatedAt),
		UpdatedAt:      timestamppb.New(e.UpdatedAt),
		Description:    e.Description,
		Ordering:       ordering,
		DisabledReason: e.DisabledReason,
	}
	for _, d := range e.RetrySchedule {
		p.RetryScheduleSeconds = append(p.RetryScheduleSeconds, uint32(d/time.Second)) //nolint:gosec // bounded by MaxScheduleDelay
	}
	if !e.PreviousSecretExpiresAt.IsZero() && e.PreviousSecret != "" {
		p.PreviousSecretExpiresAt = timestamppb.New(e.PreviousSecretExpiresAt)
	}
	if !e.FailingSince.IsZero() {
		p.FailingSince = timestamppb.New(e.FailingSince)
	}
	if withSecret {
		p.Secret = e.Secret
	}
	return p
}

func scheduleFromProto(secs []uint32) []time.Duration {
	out := make([]time.Duration, 0, len(secs))
	for _, s := range secs {
		out = append(out, time.Duration(s)*time.Second)
	}
	return out
}

func orderingFromProto(o dsyncv1.OrderingMode) (delivery.Ordering, error) {
	switch o {
	case dsyncv1.OrderingMode_ORDERING_MODE_UNSPECIFIED, dsyncv1.OrderingMode_ORDERING_MODE_RESOURCE:
		return delivery.OrderResource, nil
	case dsyncv1.OrderingMode_ORDERING_MODE_DIRECTORY:
		return delivery.OrderDirectory, nil
	}
	return "", fmt.Errorf("%w: unknown ordering mode %d", delivery.ErrInvalid, o)
}

func deliveryProto(d delivery.Delivery) *dsyncv1.Delivery {
	state := dsyncv1.DeliveryState_DELIVERY_STATE_UNSPECIFIED
	switch d.State {
	case delivery.DeliveryPending:
		state = dsyncv1.DeliveryState_DELIVERY_STATE_PENDING
	case delivery.DeliverySucceeded:
		state = dsyncv1.DeliveryState_DELIVERY_STATE_SUCCEEDED
	case delivery.DeliveryFailed:
		state = dsyncv1.DeliveryState_DELIVERY_STATE_FAILED
	}
	p := &dsyncv1.Delivery{
		Id:             d.ID,
		EndpointId:     d.EndpointID,
		EventId:        d.EventID,
		Event:          d.EventName,
		State:          state,
		Attempts:       int32(d.Attempts),       //nolint:gosec // attempts are bounded by the retry schedule
		LastStatusCode: int32(d.LastStatusCode), //nolint:gosec // an HTTP status
		LastError:      d.LastError,
		CreatedAt:      timestamppb.New(d.CreatedAt),
		UpdatedAt:      timestamppb.New(d.UpdatedAt),
	}
	if d.State == delivery.DeliveryPending {
		p.NextAttemptAt = timestamppb.New(d.NextAttemptAt)
	}
	for _, a := range d.AttemptLog {
		p.AttemptsLog = append(p.AttemptsLog, &dsyncv1.DeliveryAttempt{
			Number:       int32(a.Number),     //nolint:gosec // bounded by the retry schedule
			StatusCode:   int32(a.StatusCode), //nolint:gosec // an HTTP status
			StartedAt:    timestamppb.New(a.StartedAt),
			Latency:      durationpb.New(a.Latency),
			Error:        a.Error,
			ResponseBody: a.ResponseBody,
		})
	}
	return p
}
