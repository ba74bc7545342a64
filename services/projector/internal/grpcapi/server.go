// Package grpcapi serves the read model as dsync.v1.DirectoryService.
package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/dsync-dev/dsync/pkg/event"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
	"github.com/dsync-dev/dsync/services/projector/internal/progress"
	"github.com/dsync-dev/dsync/services/projector/internal/readmodel"
)

// maxSearchLen bounds ListDirectories' search text.
const maxSearchLen = 256

// Server implements DirectoryService on a read model.
type Server struct {
	dsyncv1.UnimplementedDirectoryServiceServer

	log      *slog.Logger
	store    readmodel.Store
	progress *progress.Progress
	wait     time.Duration
	// streamSeq returns the stream's last sequence.
	streamSeq func(ctx context.Context) (uint64, error)
}

var _ dsyncv1.DirectoryServiceServer = (*Server)(nil)

// New returns a Server. wait bounds how long a request with min_sequence
// waits for the projection; streamSeq reports the stream's last sequence.
func New(log *slog.Logger, store readmodel.Store, p *progress.Progress, wait time.Duration, streamSeq func(context.Context) (uint64, error)) *Server {
	return &Server{log: log, store: store, progress: p, wait: wait, streamSeq: streamSeq}
}

// GetOrganization implements DirectoryService.
func (s *Server) GetOrganization(ctx context.Context, req *dsyncv1.GetOrganizationRequest) (*dsyncv1.GetOrganizationResponse, error) {
	if err := validID("id", req.GetId(), event.PrefixOrganization); err != nil {
		return nil, err
	}
	if err := s.consistent(ctx, req.GetMinSequence()); err != nil {
		return nil, err
	}
	o, err := s.store.GetOrganization(ctx, req.GetId())
	if err != nil {
		return nil, s.fail(ctx, "get organization", err)
	}
	return &dsyncv1.GetOrganizationResponse{Organization: o}, nil
}

// ListOrganizations implements DirectoryService.
func (s *Server) ListOrganizations(ctx context.Context, req *dsyncv1.ListOrganizationsRequest) (*dsyncv1.ListOrganizationsResponse, error) {
	page, err := parsePage(req.GetPage(), event.PrefixOrganization)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if err := s.consistent(ctx, req.GetMinSequence()); err != nil {
		return nil, err
	}
	orgs, info, err := readmodel.Paginate(ctx, page, (*dsyncv1.Organization).GetId, s.store.ListOrganizations)
	if err != nil {
		return nil, s.fail(ctx, "list organizations", err)
	}
	return &dsyncv1.ListOrganizationsResponse{Organizations: orgs, PageInfo: pageInfo(info)}, nil
}

// GetDirectory implements DirectoryService.
func (s *Server) GetDirectory(ctx context.Context, req *dsyncv1.GetDirectoryRequest) (*dsyncv1.GetDirectoryResponse, error) {
	if err := validID("id", req.GetId(), event.PrefixDirectory); err != nil {
		return nil, err
	}
	if err := s.consistent(ctx, req.GetMinSequence()); err != nil {
		return nil, err
	}
	d, err := s.store.GetDirectory(ctx, req.GetId())
	if err != nil {
		return nil, s.fail(ctx, "get directory", err)
	}
	return &dsyncv1.GetDirectoryResponse{Directory: d}, nil
}

// ListDirectories implements DirectoryService.
func (s *Server) ListDirectories(ctx context.Context, req *dsyncv1.ListDirectoriesRequest) (*dsyncv1.ListDirectoriesResponse, error) {
	filter := readmodel.DirectoryFilter{OrganizationID: req.GetOrganizationId(), Search: strings.TrimSpace(req.GetSearch())}
	if filter.OrganizationID != "" {
		if err := validID("organization_id", filter.OrganizationID, event.PrefixOrganization); err != nil {
			return nil, err
		}
	}
	if utf8.RuneCountInString(filter.Search) > maxSearchLen || strings.ContainsRune(filter.Search, 0) {
		return nil, status.Errorf(codes.InvalidArgument, "search must be at most %d characters of text", maxSearchLen)
	}
	page, err := parsePage(req.GetPage(), event.PrefixDirectory)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if err := s.consistent(ctx, req.GetMinSequence()); err != nil {
		return nil, err
	}
	dirs, info, err := readmodel.Paginate(ctx, page, (*dsyncv1.Directory).GetId,
		func(ctx context.Context, r readmodel.Range) ([]*dsyncv1.Directory, error) {
			return s.store.ListDirectories(ctx, filter, r)
		})
	if err != nil {
		return nil, s.fail(ctx, "list directories", err)
	}
	return &dsyncv1.ListDirectoriesResponse{Directories: dirs, PageInfo: pageInfo(info)}, nil
}

// GetUser implements DirectoryService.
func (s *Server) GetUser(ctx context.Context, req *dsyncv1.GetUserRequest) (*dsyncv1.GetUserResponse, error) {
	if err := validID("id", req.GetId(), event.PrefixUser); err != nil {
		return nil, err
	}
	if err := s.consistent(ctx, req.GetMinSequence()); err != nil {
		return nil, err
	}
	u, err := s.store.GetUser(ctx, req.GetId())
	if err != nil {
		return nil, s.fail(ctx, "get user", err)
	}
	return &dsyncv1.GetUserResponse{User: u}, nil
}

// ListUsers implements DirectoryService.
func (s *Server) ListUsers(ctx context.Context, req *dsyncv1.ListUsersRequest) (*dsyncv1.ListUsersResponse, error) {
	if err := validID("directory_id", req.GetDirectoryId(), event.PrefixDirectory); err != nil {
		return nil, err
	}
	page, err := parsePage(req.GetPage(), event.PrefixUser)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if err := s.consistent(ctx, req.GetMinSequence()); err != nil {
		return nil, err
	}
	users, info, err := readmodel.Paginate(ctx, page, (*dsyncv1.User).GetId,
		func(ctx context.Context, r readmodel.Range) ([]*dsyncv1.User, error) {
			return s.store.ListUsers(ctx, req.GetDirectoryId(), r)
		})
	if err != nil {
		return nil, s.fail(ctx, "list users", err)
	}
	return &dsyncv1.ListUsersResponse{Users: users, PageInfo: pageInfo(info)}, nil
}

// GetProjectionStatus implements DirectoryService. The applied sequence is
// read before the stream's, so applied <= stream always holds in a reply.
func (s *Server) GetProjectionStatus(ctx context.Context, _ *dsyncv1.GetProjectionStatusRequest) (*dsyncv1.GetProjectionStatusResponse, error) {
	applied := s.progress.Seq()
	last, err := s.streamSeq(ctx)
	if err != nil {
		s.log.WarnContext(ctx, "read stream sequence", "error", err)
		return nil, status.Error(codes.Unavailable, "event stream unavailable")
	}
	return &dsyncv1.GetProjectionStatusResponse{AppliedSequence: applied, StreamSequence: last}, nil
}

// consistent waits, up to the configured bound, until the projection has
// applied the request's min_sequence. The wait is woken by the apply loop, not by polling.
func (s *Server) consistent(ctx context.Context, minSeq uint64) error {
	if minSeq == 0 {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, s.wait)
	defer cancel()
	applied, err := s.progress.Wait(wctx, minSeq)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return status.FromContextError(ctx.Err()).Err()
	}
	return status.Errorf(codes.FailedPrecondition,
		"read model has applied through sequence %d, request needs %d", applied, minSeq)
}

// fail maps a store error to a status; unexpected errors are logged here,
// once, and reach the client without detail.
func (s *Server) fail(ctx context.Context, action string, err error) error {
	switch {
	case errors.Is(err, readmodel.ErrNotFound):
		return status.Error(codes.NotFound, "not found")
	case errors.Is(err, readmodel.ErrInvalidPage), errors.Is(err, readmodel.ErrInvalidQuery):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		if ctx.Err() != nil {
			return status.FromContextError(ctx.Err()).Err()
		}
	}
	s.log.ErrorContext(ctx, action, "error", err)
	return status.Error(codes.Internal, fmt.Sprintf("%s failed", action))
}

func validID(field, id, prefix string) error {
	if !event.ValidID(id, prefix) {
		return status.Errorf(codes.InvalidArgument, "%s must be an id starting with %q", field, prefix)
	}
	return nil
}
