package httpapi

import (
	"context"
	"net/http"
	"strings"

	"github.com/dsync-dev/dsync/pkg/event"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
	"github.com/dsync-dev/dsync/services/gateway/internal/scim"
)

func (s *server) logIgnored(r *http.Request, what string, ids []string) {
	if len(ids) > 0 {
		s.Logger.WarnContext(r.Context(), "scim request named unknown "+what+"; ignored",
			"request_id", info(r.Context()).id, "directory_id", info(r.Context()).directoryID, "ids", ids)
	}
}

func (s *server) scimCreateUser(w http.ResponseWriter, r *http.Request, call scim.Call, _ string) {
	body, ok := s.readSCIMBody(w, r)
	if !ok {
		return
	}
	res, err := s.SCIM.CreateUser(r.Context(), call, body)
	if err != nil {
		s.scimFail(w, r, err)
		return
	}
	s.logIgnored(r, "groups", res.IgnoredGroups)
	w.Header().Set("Location", res.User.Meta.Location)
	s.writeProjected(w, r, http.StatusCreated, res.User.Meta.Version, res.User)
}

// scimGetUser reads the user from its subject; its groups, unless
// excluded, come from the read model at least as new as the directory's
// last event.
func (s *server) scimGetUser(w http.ResponseWriter, r *http.Request, call scim.Call, id string) {
	u, err := s.SCIM.GetUser(r.Context(), call, id)
	if err != nil {
		s.scimFail(w, r, err)
		return
	}
	lq, err := scim.ParseListQuery(withoutFilter(r))
	if err != nil {
		s.scimFail(w, r, err)
		return
	}
	if !lq.Excludes("groups") {
		token, err := s.Log.LastSequence(r.Context(), event.DirectoryEventsSubject(call.Directory.GetId()))
		if err != nil {
			s.scimFail(w, r, err)
			return
		}
		byUser, err := s.groupsOfUsers(r.Context(), []string{id}, token)
		if err != nil {
			s.scimFail(w, r, err)
			return
		}
		u = u.WithGroups(byUser[id], s.groupLocator(call))
	}
	s.writeProjected(w, r, http.StatusOK, u.Meta.Version, u)
}

func (s *server) groupLocator(call scim.Call) func(string) string {
	return func(id string) string { return s.SCIM.GroupLocation(call.Directory.GetId(), id) }
}

func (s *server) scimReplaceUser(w http.ResponseWriter, r *http.Request, call scim.Call, id string) {
	body, ok := s.readSCIMBody(w, r)
	if !ok {
		return
	}
	res, err := s.SCIM.ReplaceUser(r.Context(), call, id, precondition(r), body)
	if err != nil {
		s.scimFail(w, r, err)
		return
	}
	s.logIgnored(r, "groups", res.IgnoredGroups)
	s.writeProjected(w, r, http.StatusOK, res.User.Meta.Version, res.User)
}

func (s *server) scimPatchUser(w http.ResponseWriter, r *http.Request, call scim.Call, id string) {
	body, ok := s.readSCIMBody(w, r)
	if !ok {
		return
	}
	res, err := s.SCIM.PatchUser(r.Context(), call, id, precondition(r), body)
	if err != nil {
		s.scimFail(w, r, err)
		return
	}
	s.writeProjected(w, r, http.StatusOK, res.User.Meta.Version, res.User)
}

func (s *server) scimDeleteUser(w http.ResponseWriter, r *http.Request, call scim.Call, id string) {
	if err := s.SCIM.DeleteUser(r.Context(), call, id, precondition(r)); err != nil {
		s.scimFail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) scimCreateGroup(w http.ResponseWriter, r *http.Request, call scim.Call, _ string) {
	body, ok := s.readSCIMBody(w, r)
	if !ok {
		return
	}
	res, err := s.SCIM.CreateGroup(r.Context(), call, body)
	if err != nil {
		s.scimFail(w, r, err)
		return
	}
	s.logIgnored(r, "members", res.Ignored)
	w.Header().Set("Location", res.Group.Meta.Location)
	s.writeProjected(w, r, http.StatusCreated, res.Group.Meta.Version, res.Group)
}

// scimGetGroup reads the group from its subject; its members, unless
// excluded, come from the read model at least as new as the directory's
// last event, so the client reads its own membership writes.
func (s *server) scimGetGroup(w http.ResponseWriter, r *http.Request, call scim.Call, id string) {
	g, err := s.SCIM.GetGroup(r.Context(), call, id)
	if err != nil {
		s.scimFail(w, r, err)
		return
	}
	lq, err := scim.ParseListQuery(withoutFilter(r))
	if err != nil {
		s.scimFail(w, r, err)
		return
	}
	if !lq.Excludes("members") {
		ids, err := s.groupMembers(r.Context(), call, id)
		if err != nil {
			s.scimFail(w, r, err)
			return
		}
		g = g.WithMembers(ids, s.userLocator(call))
	}
	s.writeProjected(w, r, http.StatusOK, g.Meta.Version, g)
}

// groupMembers returns a group's member ids from the read model at least
// as new as the directory's last event.
func (s *server) groupMembers(ctx context.Context, call scim.Call, groupID string) ([]string, error) {
	dirID := call.Directory.GetId()
	token, err := s.Log.LastSequence(ctx, event.DirectoryEventsSubject(dirID))
	if err != nil {
		return nil, err
	}
	resp, err := s.Directories.SearchGroups(ctx, &dsyncv1.SearchGroupsRequest{
		DirectoryId: dirID, IncludeMemberIds: true, MinSequence: token,
		Query: &dsyncv1.ScimQuery{Filter: `id eq "` + groupID + `"`, StartIndex: 1, Count: 1},
	})
	if err != nil {
		return nil, err
	}
	for _, g := range resp.GetGroups() {
		if g.GetGroup().GetId() == groupID {
			return g.GetMemberIds(), nil
		}
	}
	return nil, nil
}

func (s *server) userLocator(call scim.Call) func(string) string {
	return func(id string) string { return s.SCIM.UserLocation(call.Directory.GetId(), id) }
}

func (s *server) scimReplaceGroup(w http.ResponseWriter, r *http.Request, call scim.Call, id string) {
	body, ok := s.readSCIMBody(w, r)
	if !ok {
		return
	}
	res, err := s.SCIM.ReplaceGroup(r.Context(), call, id, precondition(r), body)
	if err != nil {
		s.scimFail(w, r, err)
		return
	}
	s.logIgnored(r, "members", res.Ignored)
	s.writeProjected(w, r, http.StatusOK, res.Group.Meta.Version, res.Group)
}

// scimPatchGroup answers 204 to Entra (azure) directories, which Microsoft
// says never to send the member list, and 200 with the group (without its
// members: they may be many) to everyone else.
func (s *server) scimPatchGroup(w http.ResponseWriter, r *http.Request, call scim.Call, id string) {
	body, ok := s.readSCIMBody(w, r)
	if !ok {
		return
	}
	res, err := s.SCIM.PatchGroup(r.Context(), call, id, precondition(r), body)
	if err != nil {
		s.scimFail(w, r, err)
		return
	}
	s.logIgnored(r, "members", res.Ignored)
	if strings.HasPrefix(strings.ToLower(call.Directory.GetType()), "azure") {
		w.Header().Set("ETag", res.Group.Meta.Version)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	s.writeProjected(w, r, http.StatusOK, res.Group.Meta.Version, res.Group)
}

func (s *server) scimDeleteGroup(w http.ResponseWriter, r *http.Request, call scim.Call, id string) {
	if err := s.SCIM.DeleteGroup(r.Context(), call, id, precondition(r)); err != nil {
		s.scimFail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// writeProjected answers one resource shaped by the request's
// attributes/excludedAttributes, with its ETag.
func (s *server) writeProjected(w http.ResponseWriter, r *http.Request, status int, version string, v any) {
	out, err := projected(r, v)
	if err != nil {
		s.scimFail(w, r, err)
		return
	}
	writeResource(w, r, status, version, out)
}

func (s *server) scimListUsers(w http.ResponseWriter, r *http.Request, call scim.Call, _ string) {
	lq, err := scim.ParseListQuery(r.URL.Query())
	if err != nil {
		s.scimFail(w, r, err)
		return
	}
	s.answerUserList(w, r, call, lq)
}

func (s *server) scimSearchUsers(w http.ResponseWriter, r *http.Request, call scim.Call, _ string) {
	lq, ok := s.readSearch(w, r)
	if ok {
		s.answerUserList(w, r, call, lq)
	}
}

func (s *server) readSearch(w http.ResponseWriter, r *http.Request) (scim.ListQuery, bool) {
	body, ok := s.readSCIMBody(w, r)
	if !ok {
		return scim.ListQuery{}, false
	}
	lq, err := scim.ParseSearchRequest(body)
	if err != nil {
		s.scimFail(w, r, err)
		return scim.ListQuery{}, false
	}
	return lq, true
}

func scimQuery(lq scim.ListQuery) *dsyncv1.ScimQuery {
	return &dsyncv1.ScimQuery{
		Filter: lq.Filter, StartIndex: int32(lq.StartIndex), Count: int32(lq.Count),
		SortBy: lq.SortBy, SortDescending: lq.SortDescending,
	}
}

// answerUserList asks the read model at least as new as the directory's
// last event (read-your-writes) and renders one ListResponse page.
func (s *server) answerUserList(w http.ResponseWriter, r *http.Request, call scim.Call, lq scim.ListQuery) {
	dirID := call.Directory.GetId()
	token, err := s.Log.LastSequence(r.Context(), event.DirectoryEventsSubject(dirID))
	if err != nil {
		s.scimFail(w, r, err)
		return
	}
	resp, err := s.Directories.SearchUsers(r.Context(), &dsyncv1.SearchUsersRequest{
		DirectoryId: dirID, Query: scimQuery(lq), MinSequence: token,
	})
	if err != nil {
		s.scimFail(w, r, err)
		return
	}
	users := resp.GetUsers()[:min(len(resp.GetUsers()), lq.Count)]
	// The page's groups come in one read-model call, not one per user.
	var groups map[string][]*dsyncv1.Group
	if withGroups := !lq.Excludes("groups"); withGroups && len(users) > 0 {
		ids := make([]string, 0, len(users))
		for _, u := range users {
			ids = append(ids, u.GetId())
		}
		if groups, err = s.groupsOfUsers(r.Context(), ids, token); err != nil {
			s.scimFail(w, r, err)
			return
		}
	}
	versions := resp.GetVersions()
	resources := make([]any, 0, len(users))
	for i, u := range users {
		// A read model that does not report versions (0) leaves
		// meta.version out rather than guess it.
		var version uint64
		if i < len(versions) {
			version = versions[i]
		}
		res := scim.RenderUser(u, version, s.SCIM.UserLocation(dirID, u.GetId()))
		if groups != nil {
			res = res.WithGroups(groups[u.GetId()], s.groupLocator(call))
		}
		v, err := scim.Project(res, lq.Attributes, lq.Excluded)
		if err != nil {
			s.scimFail(w, r, err)
			return
		}
		resources = append(resources, v)
	}
	writeSCIM(w, http.StatusOK, scim.NewListResponse(resp.GetTotalResults(), lq.StartIndex, resources))
}

func (s *server) scimListGroups(w http.ResponseWriter, r *http.Request, call scim.Call, _ string) {
	lq, err := scim.ParseListQuery(r.URL.Query())
	if err != nil {
		s.scimFail(w, r, err)
		return
	}
	s.answerGroupList(w, r, call, lq)
}

func (s *server) scimSearchGroups(w http.ResponseWriter, r *http.Request, call scim.Call, _ string) {
	lq, ok := s.readSearch(w, r)
	if ok {
		s.answerGroupList(w, r, call, lq)
	}
}

// answerGroupList renders groups; members are asked of the read model only
// when the response includes them (excludedAttributes=members never reads
// the membership table).
func (s *server) answerGroupList(w http.ResponseWriter, r *http.Request, call scim.Call, lq scim.ListQuery) {
	dirID := call.Directory.GetId()
	token, err := s.Log.LastSequence(r.Context(), event.DirectoryEventsSubject(dirID))
	if err != nil {
		s.scimFail(w, r, err)
		return
	}
	withMembers := !lq.Excludes("members")
	resp, err := s.Directories.SearchGroups(r.Context(), &dsyncv1.SearchGroupsRequest{
		DirectoryId: dirID, Query: scimQuery(lq), IncludeMemberIds: withMembers, MinSequence: token,
	})
	if err != nil {
		s.scimFail(w, r, err)
		return
	}
	resources := make([]any, 0, len(resp.GetGroups()))
	for _, g := range resp.GetGroups() {
		if len(resources) >= lq.Count {
			break
		}
		res := scim.RenderGroup(g.GetGroup(), g.GetVersion(), s.SCIM.GroupLocation(dirID, g.GetGroup().GetId()))
		if withMembers {
			res = res.WithMembers(g.GetMemberIds(), s.userLocator(call))
		}
		v, err := scim.Project(res, lq.Attributes, lq.Excluded)
		if err != nil {
			s.scimFail(w, r, err)
			return
		}
		resources = append(resources, v)
	}
	writeSCIM(w, http.StatusOK, scim.NewListResponse(resp.GetTotalResults(), lq.StartIndex, resources))
}

func (s *server) scimServiceProviderConfig(w http.ResponseWriter, _ *http.Request, call scim.Call, _ string) {
	writeSCIM(w, http.StatusOK, scim.ServiceProviderConfig(s.scimBase(call)))
}

func (s *server) scimResourceTypes(w http.ResponseWriter, _ *http.Request, call scim.Call, _ string) {
	rts := scim.ResourceTypes(s.scimBase(call))
	writeSCIM(w, http.StatusOK, scim.NewListResponse(int64(len(rts)), 1, rts))
}

func (s *server) scimResourceType(w http.ResponseWriter, _ *http.Request, call scim.Call, id string) {
	rt := scim.ResourceType(s.scimBase(call), id)
	if rt == nil {
		writeSCIMError(w, scim.NotFound(id))
		return
	}
	writeSCIM(w, http.StatusOK, rt)
}

func (s *server) scimSchemas(w http.ResponseWriter, _ *http.Request, call scim.Call, _ string) {
	sc := scim.Schemas(s.scimBase(call))
	writeSCIM(w, http.StatusOK, scim.NewListResponse(int64(len(sc)), 1, sc))
}

func (s *server) scimSchema(w http.ResponseWriter, _ *http.Request, call scim.Call, id string) {
	sc := scim.Schema(s.scimBase(call), id)
	if sc == nil {
		writeSCIMError(w, scim.NotFound(id))
		return
	}
	writeSCIM(w, http.StatusOK, sc)
}
