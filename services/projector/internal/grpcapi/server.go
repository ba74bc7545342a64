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
	o, err := getOne(ctx, s, "get organization", req.GetId(), event.PrefixOrganization, req.GetMinSequence(), s.store.GetOrganization)
	if err != nil {
		return nil, err
	}
	return &dsyncv1.GetOrganizationResponse{Organization: o}, nil
}

// ListOrganizations implements DirectoryService.
func (s *Server) ListOrganizations(ctx context.Context, req *dsyncv1.ListOrganizationsRequest) (*dsyncv1.ListOrganizationsResponse, error) {
	orgs, info, err := listPage(ctx, s, "list organizations", req.GetPage(), event.PrefixOrganization, req.GetMinSequence(),
		(*dsyncv1.Organization).GetId, s.store.ListOrganizations)
	if err != nil {
		return nil, err
	}
	return &dsyncv1.ListOrganizationsResponse{Organizations: orgs, PageInfo: info}, nil
}

// GetDirectory implements DirectoryService.
func (s *Server) GetDirectory(ctx context.Context, req *dsyncv1.GetDirectoryRequest) (*dsyncv1.GetDirectoryResponse, error) {
	d, err := getOne(ctx, s, "get directory", req.GetId(), event.PrefixDirectory, req.GetMinSequence(), s.store.GetDirectory)
	if err != nil {
		return nil, err
	}
	return &dsyncv1.GetDirectoryResponse{Directory: withoutToken(d)}, nil
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
	dirs, info, err := listPage(ctx, s, "list directories", req.GetPage(), event.PrefixDirectory, req.GetMinSequence(),
		(*dsyncv1.Directory).GetId, func(ctx context.Context, r readmodel.Range) ([]*dsyncv1.Directory, error) {
			return s.store.ListDirectories(ctx, filter, r)
		})
	if err != nil {
		return nil, err
	}
	for i, d := range dirs {
		dirs[i] = withoutToken(d)
	}
	return &dsyncv1.ListDirectoriesResponse{Directories: dirs, PageInfo: info}, nil
}

// withoutToken clears the SCIM token hash: readers of the directory never
// need it (the gateway authenticates from the event log), and a hash of a
// bearer token is still a secret worth not spreading to every internal client.
func withoutToken(d *dsyncv1.Directory) *dsyncv1.Directory {
	d.ScimTokenSha256 = nil
	return d
}

// GetUser implements DirectoryService.
func (s *Server) GetUser(ctx context.Context, req *dsyncv1.GetUserRequest) (*dsyncv1.GetUserResponse, error) {
	u, err := getOne(ctx, s, "get user", req.GetId(), event.PrefixUser, req.GetMinSequence(), s.store.GetUser)
	if err != nil {
		return nil, err
	}
	return &dsyncv1.GetUserResponse{User: u}, nil
}

// ListUsers implements DirectoryService.
func (s *Server) ListUsers(ctx context.Context, req *dsyncv1.ListUsersRequest) (*dsyncv1.ListUsersResponse, error) {
	if err := validID("directory_id", req.GetDirectoryId(), event.PrefixDirectory); err != nil {
		return nil, err
	}
	users, info, err := listPage(ctx, s, "list users", req.GetPage(), event.PrefixUser, req.GetMinSequence(),
		(*dsyncv1.User).GetId, func(ctx context.Context, r readmodel.Range) ([]*dsyncv1.User, error) {
			return s.store.ListUsers(ctx, req.GetDirectoryId(), r)
		})
	if err != nil {
		return nil, err
	}
	return &dsyncv1.ListUsersResponse{Users: users, PageInfo: info}, nil
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

// getOne answers a Get RPC: it validates id (an id with prefix), waits for
// minSeq and reads the item with get.
func getOne[T any](ctx context.Context, s *Server, action, id, prefix string, minSeq uint64,
	get func(context.Context, string) (T, error),
) (T, error) {
	var zero T
	if err := validID("id", id, prefix); err != nil {
		return zero, err
	}
	if err := s.consistent(ctx, minSeq); err != nil {
		return zero, err
	}
	v, err := get(ctx, id)
	if err != nil {
		return zero, s.fail(ctx, action, err)
	}
	return v, nil
}

// listPage answers a List RPC whose other parameters are validated: it
// validates the page (cursors are ids with prefix), waits for minSeq and
// reads one page with fetch.
func listPage[T any](ctx context.Context, s *Server, action string, p *dsyncv1.Page, prefix string, minSeq uint64,
	id func(T) string, fetch func(context.Context, readmodel.Range) ([]T, error),
) ([]T, *dsyncv1.PageInfo, error) {
	page, err := parsePage(p, prefix)
	if err != nil {
		return nil, nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if err := s.consistent(ctx, minSeq); err != nil {
		return nil, nil, err
	}
	items, info, err := readmodel.Paginate(ctx, page, id, fetch)
	if err != nil {
		return nil, nil, s.fail(ctx, action, err)
	}
	return items, pageInfo(info), nil
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
