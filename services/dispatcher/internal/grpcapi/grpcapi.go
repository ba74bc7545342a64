// Package grpcapi serves dsync.v1.WebhookService over the delivery domain.
package grpcapi

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
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
	e, err := s.Service.CreateEndpoint(ctx, req.GetUrl(), req.GetEvents())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &dsyncv1.CreateEndpointResponse{Endpoint: endpointProto(e, true)}, nil
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
// unless ORDER_ASC.
func (s *Server) ListDeliveries(ctx context.Context, req *dsyncv1.ListDeliveriesRequest) (*dsyncv1.ListDeliveriesResponse, error) {
	ds, info, err := s.Service.ListDeliveries(ctx, req.GetEndpointId(), page(req.GetPage(), true))
	if err != nil {
		return nil, s.status(ctx, err)
	}
	resp := &dsyncv1.ListDeliveriesResponse{PageInfo: pageInfo(info)}
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
	p := &dsyncv1.Endpoint{
		Id:        e.ID,
		Url:       e.URL,
		Events:    e.Events,
		State:     state,
		CreatedAt: timestamppb.New(e.CreatedAt),
		UpdatedAt: timestamppb.New(e.UpdatedAt),
	}
	if withSecret {
		p.Secret = e.Secret
	}
	return p
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
	return p
}
