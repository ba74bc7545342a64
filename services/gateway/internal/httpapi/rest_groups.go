package httpapi

import (
	"context"
	"maps"
	"net/http"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/dsync-dev/dsync/pkg/event"
	"github.com/dsync-dev/dsync/pkg/workos"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
)

// maxUserGroups bounds the groups embedded in one directory_user. WorkOS
// deprecates the field (GET /directory_groups?user= is the way to page
// through a user's groups); the cap keeps one user in 10,000 groups from
// making every user page huge.
const maxUserGroups = 1000

func newGroup(g *dsyncv1.Group, count int64) workos.DirectoryGroup {
	out := workos.NewDirectoryGroup(g)
	out.MemberCount = &count
	return out
}

// maxUsersPerGroupsCall is the most user ids one ListGroupsForUsers call
// takes (the projector's limit).
const maxUsersPerGroupsCall = 200

// groupsOfUsers returns the groups each of ids is a member of, at most
// maxUserGroups per user in group id order, from the read model at least
// at token: one ListGroupsForUsers call per 200 users, so rendering a page
// of users costs one read-model round trip, not one per user.
func (s *server) groupsOfUsers(ctx context.Context, ids []string, token uint64) (map[string][]*dsyncv1.Group, error) {
	out := make(map[string][]*dsyncv1.Group, len(ids))
	for chunk := range slices.Chunk(ids, maxUsersPerGroupsCall) {
		resp, err := s.Directories.ListGroupsForUsers(ctx, &dsyncv1.ListGroupsForUsersRequest{UserIds: chunk, MinSequence: token})
		if err != nil {
			return nil, err
		}
		token = 0 // the first call waited already
		for id, ug := range resp.GetGroupsByUser() {
			gs := ug.GetGroups()
			groups := make([]*dsyncv1.Group, 0, min(len(gs), maxUserGroups))
			for _, g := range gs[:min(len(gs), maxUserGroups)] {
				groups = append(groups, g.GetGroup())
			}
			out[id] = groups
		}
	}
	return out, nil
}

// withGroups renders users with their groups and the roles the directory's
// role mapping gives those groups.
func (s *server) withGroups(ctx context.Context, users []*dsyncv1.User, token uint64) ([]workos.DirectoryUser, error) {
	out := make([]workos.DirectoryUser, 0, len(users))
	if len(users) == 0 {
		return out, nil
	}
	ids := make([]string, 0, len(users))
	for _, u := range users {
		ids = append(ids, u.GetId())
	}
	byUser, err := s.groupsOfUsers(ctx, ids, token)
	if err != nil {
		return nil, err
	}
	mappings := map[string]map[string]string{} // directory id → role mapping
	for _, u := range users {
		groups := byUser[u.GetId()]
		dirID := u.GetDirectoryId()
		mapping, ok := mappings[dirID]
		if !ok {
			if mapping, err = s.roleMapping(ctx, dirID); err != nil {
				return nil, err
			}
			mappings[dirID] = mapping
		}
		if slugs := roleSlugs(mapping, groups); len(slugs) > 0 {
			u = proto.CloneOf(u)
			u.RoleSlugs = slugs
		}
		rendered := make([]workos.DirectoryGroup, 0, len(groups))
		for _, g := range groups {
			rendered = append(rendered, workos.NewDirectoryGroup(g))
		}
		out = append(out, workos.NewDirectoryUser(u).WithGroups(rendered))
	}
	return out, nil
}

// roleMapping reads a directory's group → role mapping from its subject
// (the source of truth: a mapping change shows on the next read).
func (s *server) roleMapping(ctx context.Context, dirID string) (map[string]string, error) {
	if dirID == "" {
		return nil, nil
	}
	ev, _, err := s.Log.Last(ctx, event.DirectorySubject(dirID))
	if err != nil {
		return nil, err
	}
	return ev.GetDirectory().GetRoleMapping(), nil
}

// roleSlugs returns the role slugs mapping gives a user in groups, in the
// groups' order without repeats: a group matches a key equal to its id or
// idp_id, or to its name without regard to case.
func roleSlugs(mapping map[string]string, groups []*dsyncv1.Group) []string {
	if len(mapping) == 0 {
		return nil
	}
	var slugs []string
	add := func(slug string) {
		if slug != "" && !slices.Contains(slugs, slug) {
			slugs = append(slugs, slug)
		}
	}
	for _, g := range groups {
		if slug, ok := mapping[g.GetId()]; ok {
			add(slug)
			continue
		}
		if slug, ok := mapping[g.GetIdpId()]; ok && g.GetIdpId() != "" {
			add(slug)
			continue
		}
		if slug, ok := mapping[g.GetName()]; ok {
			add(slug)
			continue
		}
		for _, k := range slices.Sorted(maps.Keys(mapping)) {
			if strings.EqualFold(k, g.GetName()) {
				add(mapping[k])
				break
			}
		}
	}
	return slugs
}

// directoryToken is the consistency token of reads about one directory.
func (s *server) directoryToken(r *http.Request, dir string) (uint64, error) {
	return s.Log.LastSequence(r.Context(), event.DirectoryEventsSubject(dir))
}

// allDirectoriesToken is the consistency token of reads whose directory is
// not known up front (a user or group by id).
func (s *server) allDirectoriesToken(r *http.Request) (uint64, error) {
	return s.Log.LastSequence(r.Context(), event.SubjectAllDirectoryEvents)
}

func (s *server) listGroups(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	dir, user := q.Get("directory"), q.Get("user")
	req := &dsyncv1.ListGroupsRequest{}
	var err error
	switch {
	case dir != "" && user != "":
		s.restFail(w, r, unprocessable("directory and user cannot both be set"))
		return
	case user != "":
		if !event.ValidID(user, event.PrefixUser) {
			s.restFail(w, r, unprocessable("user must be a directory user id (directory_user_…)"))
			return
		}
		req.UserId = user
		req.MinSequence, err = s.allDirectoriesToken(r)
	case dir != "":
		if !event.ValidID(dir, event.PrefixDirectory) {
			s.restFail(w, r, unprocessable("directory must be a directory id (directory_…)"))
			return
		}
		info(r.Context()).directoryID = dir
		req.DirectoryId = dir
		req.MinSequence, err = s.directoryToken(r, dir)
	default:
		s.restFail(w, r, unprocessable("directory or user is required"))
		return
	}
	if err != nil {
		s.restFail(w, r, err)
		return
	}
	if req.Page, err = parsePage(q); err != nil {
		s.restFail(w, r, err)
		return
	}
	if err := checkCursors(req.Page, event.PrefixGroup); err != nil {
		s.restFail(w, r, err)
		return
	}
	resp, err := s.Directories.ListGroups(r.Context(), req)
	if err != nil {
		s.restFail(w, r, err)
		return
	}
	data := make([]workos.DirectoryGroup, 0, len(resp.GetGroups()))
	for _, g := range resp.GetGroups() {
		data = append(data, newGroup(g.GetGroup(), g.GetMemberCount()))
	}
	writeJSON(w, http.StatusOK, newList(data, resp.GetPageInfo()))
}

func (s *server) getGroup(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !event.ValidID(id, event.PrefixGroup) {
		s.restFail(w, r, notFound("Directory group %s not found", id))
		return
	}
	token, err := s.allDirectoriesToken(r)
	if err != nil {
		s.restFail(w, r, err)
		return
	}
	resp, err := s.Directories.GetGroup(r.Context(), &dsyncv1.GetGroupRequest{Id: id, MinSequence: token})
	if err != nil {
		s.restFail(w, r, err)
		return
	}
	info(r.Context()).directoryID = resp.GetGroup().GetDirectoryId()
	writeJSON(w, http.StatusOK, newGroup(resp.GetGroup(), resp.GetMemberCount()))
}

// checkCursors rejects before/after values that are not ids of the listed
// kind with a 422 that names the parameter.
func checkCursors(p *dsyncv1.Page, prefix string) error {
	for name, c := range map[string]string{"before": p.GetBefore(), "after": p.GetAfter()} {
		if c != "" && !event.ValidID(c, prefix) {
			return unprocessable("%s must be an id starting with %q", name, prefix)
		}
	}
	return nil
}
