package grpcapi

import (
	"context"
	"errors"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/dsync-dev/dsync/pkg/event"
	"github.com/dsync-dev/dsync/pkg/scim/filter"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
	"github.com/dsync-dev/dsync/services/projector/internal/readmodel"
)

// GetGroup implements DirectoryService.
func (s *Server) GetGroup(ctx context.Context, req *dsyncv1.GetGroupRequest) (*dsyncv1.GetGroupResponse, error) {
	g, err := getOne(ctx, s, "get group", req.GetId(), event.PrefixGroup, req.GetMinSequence(), s.store.GetGroup)
	if err != nil {
		return nil, err
	}
	return &dsyncv1.GetGroupResponse{Group: g.GetGroup(), MemberCount: g.GetMemberCount()}, nil
}

func groupID(g *dsyncv1.GroupWithCount) string { return g.GetGroup().GetId() }

// ListGroups implements DirectoryService.
func (s *Server) ListGroups(ctx context.Context, req *dsyncv1.ListGroupsRequest) (*dsyncv1.ListGroupsResponse, error) {
	var fetch func(context.Context, readmodel.Range) ([]*dsyncv1.GroupWithCount, error)
	switch {
	case req.GetDirectoryId() != "" && req.GetUserId() != "":
		return nil, status.Error(codes.InvalidArgument, "directory_id and user_id are mutually exclusive")
	case req.GetUserId() != "":
		if err := validID("user_id", req.GetUserId(), event.PrefixUser); err != nil {
			return nil, err
		}
		fetch = func(ctx context.Context, r readmodel.Range) ([]*dsyncv1.GroupWithCount, error) {
			return s.store.ListUserGroups(ctx, req.GetUserId(), r)
		}
	default:
		if err := validID("directory_id", req.GetDirectoryId(), event.PrefixDirectory); err != nil {
			return nil, err
		}
		fetch = func(ctx context.Context, r readmodel.Range) ([]*dsyncv1.GroupWithCount, error) {
			return s.store.ListGroups(ctx, req.GetDirectoryId(), r)
		}
	}
	groups, info, err := listPage(ctx, s, "list groups", req.GetPage(), event.PrefixGroup, req.GetMinSequence(), groupID, fetch)
	if err != nil {
		return nil, err
	}
	return &dsyncv1.ListGroupsResponse{Groups: groups, PageInfo: info}, nil
}

// ListGroupMembers implements DirectoryService. A page is one keyset scan
// of the group's edges, so a 50,000-member group is read page by page.
func (s *Server) ListGroupMembers(ctx context.Context, req *dsyncv1.ListGroupMembersRequest) (*dsyncv1.ListGroupMembersResponse, error) {
	if err := validID("group_id", req.GetGroupId(), event.PrefixGroup); err != nil {
		return nil, err
	}
	users, info, err := listPage(ctx, s, "list group members", req.GetPage(), event.PrefixUser, req.GetMinSequence(),
		(*dsyncv1.User).GetId, func(ctx context.Context, r readmodel.Range) ([]*dsyncv1.User, error) {
			return s.store.ListGroupUsers(ctx, req.GetGroupId(), r)
		})
	if err != nil {
		return nil, err
	}
	return &dsyncv1.ListGroupMembersResponse{Users: users, PageInfo: info}, nil
}

// search validates a SCIM query over resource (readmodel.ResourceUser or
// ResourceGroup).
func search(resource, directoryID string, q *dsyncv1.ScimQuery) (readmodel.Search, error) {
	if err := validID("directory_id", directoryID, event.PrefixDirectory); err != nil {
		return readmodel.Search{}, err
	}
	out := readmodel.Search{DirectoryID: directoryID, StartIndex: int(q.GetStartIndex()), Count: int(q.GetCount())}
	sort, err := readmodel.ParseSort(resource, q.GetSortBy())
	if err != nil {
		return readmodel.Search{}, status.Error(codes.InvalidArgument, err.Error())
	}
	// RFC 7644 §3.4.2.3: sortOrder without sortBy has no effect.
	out.Sort, out.Desc = sort, q.GetSortDescending() && strings.TrimSpace(q.GetSortBy()) != ""
	if strings.TrimSpace(q.GetFilter()) != "" {
		f, err := filter.Parse(q.GetFilter())
		if err != nil {
			// The parser's message names the position and what was
			// expected: fit for the SCIM error's detail.
			msg := err.Error()
			if !errors.Is(err, filter.ErrInvalidFilter) {
				msg = "invalid filter: " + msg
			}
			return readmodel.Search{}, status.Error(codes.InvalidArgument, msg)
		}
		out.Filter = f
	}
	return out, nil
}

// SearchUsers implements DirectoryService.
func (s *Server) SearchUsers(ctx context.Context, req *dsyncv1.SearchUsersRequest) (*dsyncv1.SearchUsersResponse, error) {
	q, err := search(readmodel.ResourceUser, req.GetDirectoryId(), req.GetQuery())
	if err != nil {
		return nil, err
	}
	if err := s.consistent(ctx, req.GetMinSequence()); err != nil {
		return nil, err
	}
	users, total, err := readmodel.SearchUsers(ctx, s.store, q)
	if err != nil {
		return nil, s.fail(ctx, "search users", err)
	}
	out := &dsyncv1.SearchUsersResponse{TotalResults: total, Users: make([]*dsyncv1.User, 0, len(users)), Versions: make([]uint64, 0, len(users))}
	for _, u := range users {
		out.Users = append(out.Users, u.User)
		out.Versions = append(out.Versions, u.Version)
	}
	return out, nil
}

// SearchGroups implements DirectoryService.
func (s *Server) SearchGroups(ctx context.Context, req *dsyncv1.SearchGroupsRequest) (*dsyncv1.SearchGroupsResponse, error) {
	q, err := search(readmodel.ResourceGroup, req.GetDirectoryId(), req.GetQuery())
	if err != nil {
		return nil, err
	}
	if err := s.consistent(ctx, req.GetMinSequence()); err != nil {
		return nil, err
	}
	groups, total, err := readmodel.SearchGroups(ctx, s.store, q)
	if err != nil {
		return nil, s.fail(ctx, "search groups", err)
	}
	out := &dsyncv1.SearchGroupsResponse{TotalResults: total, Groups: make([]*dsyncv1.GroupWithMembers, 0, len(groups))}
	for _, g := range groups {
		gm := &dsyncv1.GroupWithMembers{Group: g.GetGroup(), MemberCount: g.GetMemberCount(), Version: g.GetVersion()}
		if req.GetIncludeMemberIds() && g.GetMemberCount() > 0 {
			if gm.MemberIds, err = s.store.GroupMemberIDs(ctx, g.GetGroup().GetId()); err != nil {
				return nil, s.fail(ctx, "search groups", err)
			}
		}
		out.Groups = append(out.Groups, gm)
	}
	return out, nil
}

// maxFindUsers bounds FindUsers' answer; a key matching more users than
// that (a shared email) is a data problem to page through with SearchUsers.
const maxFindUsers = 100

// FindUsers implements DirectoryService.
func (s *Server) FindUsers(ctx context.Context, req *dsyncv1.FindUsersRequest) (*dsyncv1.FindUsersResponse, error) {
	if err := validID("directory_id", req.GetDirectoryId(), event.PrefixDirectory); err != nil {
		return nil, err
	}
	var k readmodel.Key
	switch key := req.GetKey().(type) {
	case *dsyncv1.FindUsersRequest_Email:
		k = readmodel.Key{Field: readmodel.KeyEmail, Value: key.Email}
	case *dsyncv1.FindUsersRequest_IdpId:
		k = readmodel.Key{Field: readmodel.KeyIdpID, Value: key.IdpId}
	case *dsyncv1.FindUsersRequest_UserName:
		k = readmodel.Key{Field: readmodel.KeyUserName, Value: key.UserName}
	default:
		return nil, status.Error(codes.InvalidArgument, "one of email, idp_id and user_name is required")
	}
	if k.Value == "" || len(k.Value) > 1024 {
		return nil, status.Error(codes.InvalidArgument, "the key must be 1 to 1024 bytes")
	}
	if err := s.consistent(ctx, req.GetMinSequence()); err != nil {
		return nil, err
	}
	users, err := s.store.FindUsers(ctx, req.GetDirectoryId(), k, readmodel.Range{Limit: maxFindUsers})
	if err != nil {
		return nil, s.fail(ctx, "find users", err)
	}
	return &dsyncv1.FindUsersResponse{Users: users}, nil
}

// maxGroupsForUsers bounds ListGroupsForUsers: a SCIM page is at most 100
// users (the gateway's cap), with room to spare.
const maxGroupsForUsers = 200

// ListGroupsForUsers implements DirectoryService: the groups of a page of
// users in one store query, so a SCIM list page's "groups" is not N+1.
func (s *Server) ListGroupsForUsers(ctx context.Context, req *dsyncv1.ListGroupsForUsersRequest) (*dsyncv1.ListGroupsForUsersResponse, error) {
	ids := req.GetUserIds()
	if len(ids) == 0 || len(ids) > maxGroupsForUsers {
		return nil, status.Errorf(codes.InvalidArgument, "user_ids must hold 1 to %d ids", maxGroupsForUsers)
	}
	seen := make(map[string]struct{}, len(ids))
	unique := make([]string, 0, len(ids))
	for _, id := range ids {
		if err := validID("user_ids", id, event.PrefixUser); err != nil {
			return nil, err
		}
		if _, dup := seen[id]; !dup {
			seen[id] = struct{}{}
			unique = append(unique, id)
		}
	}
	if err := s.consistent(ctx, req.GetMinSequence()); err != nil {
		return nil, err
	}
	byUser, err := s.store.GroupsOfUsers(ctx, unique)
	if err != nil {
		return nil, s.fail(ctx, "list groups for users", err)
	}
	out := &dsyncv1.ListGroupsForUsersResponse{GroupsByUser: make(map[string]*dsyncv1.UserGroups, len(unique))}
	for _, id := range unique {
		out.GroupsByUser[id] = &dsyncv1.UserGroups{Groups: byUser[id]}
	}
	return out, nil
}
