package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/dsync-dev/dsync/pkg/event"
	"github.com/dsync-dev/dsync/pkg/workos"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
	"github.com/dsync-dev/dsync/services/projector/internal/readmodel"
)

// eventFilter validates f.
func eventFilter(f *dsyncv1.EventFilter) (readmodel.EventFilter, error) {
	out := readmodel.EventFilter{DirectoryID: f.GetDirectoryId(), OrganizationID: f.GetOrganizationId(),
		UserID: f.GetUserId(), GroupID: f.GetGroupId()}
	for _, name := range f.GetEvents() {
		if !workos.IsEventName(name) {
			return out, status.Errorf(codes.InvalidArgument, "unknown event %q; events are: %s", name, strings.Join(workos.EventNames, ", "))
		}
		out.Types = append(out.Types, name)
	}
	if out.DirectoryID != "" {
		if err := validID("directory_id", out.DirectoryID, event.PrefixDirectory); err != nil {
			return out, err
		}
	}
	if out.OrganizationID != "" {
		if err := validID("organization_id", out.OrganizationID, event.PrefixOrganization); err != nil {
			return out, err
		}
	}
	if out.UserID != "" {
		if err := validID("user_id", out.UserID, event.PrefixUser); err != nil {
			return out, err
		}
	}
	if out.GroupID != "" {
		if err := validID("group_id", out.GroupID, event.PrefixGroup); err != nil {
			return out, err
		}
	}
	if f.GetRangeStart() != nil {
		if !f.GetRangeStart().IsValid() {
			return out, status.Error(codes.InvalidArgument, "range_start is not a valid time")
		}
		out.OccurredFrom = f.GetRangeStart().AsTime()
	}
	if f.GetRangeEnd() != nil {
		if !f.GetRangeEnd().IsValid() {
			return out, status.Error(codes.InvalidArgument, "range_end is not a valid time")
		}
		out.OccurredTo = f.GetRangeEnd().AsTime()
	}
	return out, nil
}

// eventCursor maps an event id cursor to its stream sequence.
func (s *Server) eventCursor(ctx context.Context, name, id string) (uint64, error) {
	if id == "" {
		return 0, nil
	}
	if !event.ValidID(id, event.PrefixEvent) {
		return 0, status.Errorf(codes.InvalidArgument, "%s must be an event id starting with %q", name, event.PrefixEvent)
	}
	seq, err := s.store.EventSeq(ctx, id)
	if errors.Is(err, readmodel.ErrNotFound) {
		return 0, status.Errorf(codes.InvalidArgument, "%s %s is not a retained event", name, id)
	}
	if err != nil {
		return 0, s.fail(ctx, "list events", err)
	}
	return seq, nil
}

// ListEvents implements DirectoryService.
func (s *Server) ListEvents(ctx context.Context, req *dsyncv1.ListEventsRequest) (*dsyncv1.ListEventsResponse, error) {
	f, err := eventFilter(req.GetFilter())
	if err != nil {
		return nil, err
	}
	p := req.GetPage()
	page := readmodel.EventPage{Limit: int(p.GetLimit()), Order: readmodel.OrderAsc}
	if page.Limit == 0 {
		page.Limit = readmodel.DefaultLimit
	}
	switch p.GetOrder() {
	case dsyncv1.Order_ORDER_UNSPECIFIED, dsyncv1.Order_ORDER_ASC:
	case dsyncv1.Order_ORDER_DESC:
		page.Order = readmodel.OrderDesc
	default:
		return nil, status.Error(codes.InvalidArgument, "unknown order")
	}
	if p.GetBefore() != "" && p.GetAfter() != "" {
		return nil, status.Error(codes.InvalidArgument, "before and after are mutually exclusive")
	}
	if err := (readmodel.Page{Limit: page.Limit}).Validate(); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if err := s.consistent(ctx, req.GetMinSequence()); err != nil {
		return nil, err
	}
	if page.After, err = s.eventCursor(ctx, "after", p.GetAfter()); err != nil {
		return nil, err
	}
	if page.Before, err = s.eventCursor(ctx, "before", p.GetBefore()); err != nil {
		return nil, err
	}
	recs, info, err := readmodel.PaginateEvents(ctx, s.store, f, page)
	if err != nil {
		return nil, s.fail(ctx, "list events", err)
	}
	out := &dsyncv1.ListEventsResponse{Events: sequenced(recs), PageInfo: &dsyncv1.PageInfo{}}
	// Cursors are the ids of the page's edge events.
	for _, r := range recs {
		if r.Seq == info.Before {
			out.PageInfo.Before = r.Event.GetId()
		}
		if r.Seq == info.After {
			out.PageInfo.After = r.Event.GetId()
		}
	}
	return out, nil
}

func sequenced(recs []readmodel.EventRecord) []*dsyncv1.SequencedEvent {
	out := make([]*dsyncv1.SequencedEvent, 0, len(recs))
	for _, r := range recs {
		out = append(out, &dsyncv1.SequencedEvent{Sequence: r.Seq, Event: r.Event})
	}
	return out
}

// watchBatch is how many events WatchEvents reads per query.
const watchBatch = 100

// WatchEvents implements DirectoryService. It reads the events table from
// after_sequence on and, once it has sent everything, sleeps until the
// projection applies more, woken by the apply loop rather than polling.
func (s *Server) WatchEvents(req *dsyncv1.WatchEventsRequest, stream grpc.ServerStreamingServer[dsyncv1.WatchEventsResponse]) error {
	ctx := stream.Context()
	f, err := eventFilter(req.GetFilter())
	if err != nil {
		return err
	}
	after := req.GetAfterSequence()
	for {
		// Read the applied sequence before the table: whatever is applied
		// by then is in the table, so waiting past it never misses one.
		applied := s.progress.Seq()
		recs, err := s.store.ListEvents(ctx, f, readmodel.SeqRange{After: after, Limit: watchBatch})
		if err != nil {
			return s.fail(ctx, "watch events", err)
		}
		for _, r := range recs {
			if err := stream.Send(&dsyncv1.WatchEventsResponse{Event: &dsyncv1.SequencedEvent{Sequence: r.Seq, Event: r.Event}}); err != nil {
				return fmt.Errorf("watch events: send: %w", err)
			}
			after = r.Seq
		}
		if len(recs) == watchBatch {
			continue
		}
		if _, err := s.progress.Wait(ctx, max(applied, after)+1); err != nil {
			return status.FromContextError(ctx.Err()).Err()
		}
	}
}
