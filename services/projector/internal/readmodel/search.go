package readmodel

import (
	"context"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/dsync-dev/dsync/pkg/scim/filter"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
)

// MaxSearchCount caps the page size of a SCIM search.
const MaxSearchCount = 1000

// scanBatch is how many candidates a filtered search reads per query.
const scanBatch = 500

// Search is one SCIM list query (RFC 7644 §3.4.2) over a directory.
type Search struct {
	DirectoryID string
	// Filter is nil to match everything.
	Filter filter.Expr
	// StartIndex is 1-based; values below 1 mean 1.
	StartIndex int
	// Count is the page size, at most MaxSearchCount; 0 asks for the total only.
	Count int
}

func (q Search) bounds() (skip, count int) {
	skip = max(q.StartIndex, 1) - 1
	count = min(max(q.Count, 0), MaxSearchCount)
	return skip, count
}

// SearchUsers answers q over users in id order (creation order, stable
// across pages). Without a filter it counts and pages with the store's
// indexes. With one, the filter's required equalities on indexed attributes
// (id, externalId, userName) narrow the candidates, and filter.Match on each
// candidate's SCIM form decides the rest.
func SearchUsers(ctx context.Context, s Store, q Search) ([]*dsyncv1.User, int64, error) {
	skip, count := q.bounds()
	if q.Filter == nil {
		total, err := s.CountUsers(ctx, q.DirectoryID)
		if err != nil || count == 0 {
			return nil, total, err
		}
		users, err := s.ListUsers(ctx, q.DirectoryID, Range{Limit: count, Offset: skip})
		return users, total, err
	}
	scan := func(ctx context.Context, r Range) ([]*dsyncv1.User, error) {
		return s.ListUsers(ctx, q.DirectoryID, r)
	}
	if k, ok := narrowKey(q.Filter, userKeys); ok {
		scan = func(ctx context.Context, r Range) ([]*dsyncv1.User, error) {
			return s.FindUsers(ctx, q.DirectoryID, k, r)
		}
	}
	return searchScan(ctx, q.Filter, skip, count, scan, (*dsyncv1.User).GetId, UserResource)
}

// SearchGroups answers q over groups like SearchUsers does over users,
// narrowing by id, externalId, displayName or members.value. The membership
// table is read only when the filter names members.
func SearchGroups(ctx context.Context, s Store, q Search) ([]*dsyncv1.GroupWithCount, int64, error) {
	skip, count := q.bounds()
	if q.Filter == nil {
		total, err := s.CountGroups(ctx, q.DirectoryID)
		if err != nil || count == 0 {
			return nil, total, err
		}
		groups, err := s.ListGroups(ctx, q.DirectoryID, Range{Limit: count, Offset: skip})
		return groups, total, err
	}
	scan := func(ctx context.Context, r Range) ([]*dsyncv1.GroupWithCount, error) {
		return s.ListGroups(ctx, q.DirectoryID, r)
	}
	k, narrowed := narrowKey(q.Filter, groupKeys)
	if narrowed {
		scan = func(ctx context.Context, r Range) ([]*dsyncv1.GroupWithCount, error) {
			return s.FindGroups(ctx, q.DirectoryID, k, r)
		}
	}
	resource := func(g *dsyncv1.GroupWithCount) map[string]any { return GroupResource(g.GetGroup(), nil) }
	if mentions(q.Filter, "members") {
		resource = func(g *dsyncv1.GroupWithCount) map[string]any {
			if narrowed && k.Field == KeyMember {
				// The candidate came from the member's edges: it has that
				// member, which is what the filter asks about.
				return GroupResource(g.GetGroup(), []string{k.Value})
			}
			ids, err := s.GroupMemberIDs(ctx, g.GetGroup().GetId())
			if err != nil {
				return nil // matches nothing; the scan's own reads report store trouble
			}
			return GroupResource(g.GetGroup(), ids)
		}
	}
	return searchScan(ctx, q.Filter, skip, count, scan, func(g *dsyncv1.GroupWithCount) string { return g.GetGroup().GetId() }, resource)
}

// searchScan reads every candidate in id order, keeps those matching f,
// counts them and returns the page [skip, skip+count).
func searchScan[T any](ctx context.Context, f filter.Expr, skip, count int,
	scan func(context.Context, Range) ([]T, error), id func(T) string, resource func(T) map[string]any,
) ([]T, int64, error) {
	var (
		page  []T
		total int64
		after string
	)
	for {
		batch, err := scan(ctx, Range{GreaterThan: after, Limit: scanBatch})
		if err != nil {
			return nil, 0, err
		}
		for _, it := range batch {
			if !filter.Match(f, resource(it)) {
				continue
			}
			if total >= int64(skip) && len(page) < count {
				page = append(page, it)
			}
			total++
		}
		if len(batch) < scanBatch {
			return page, total, nil
		}
		after = id(batch[len(batch)-1])
	}
}

// keyFields maps a lower-case SCIM attribute path to the indexed key it
// can be narrowed by.
type keyFields map[string]KeyField

var (
	userKeys  = keyFields{"id": KeyID, "externalid": KeyIdpID, "username": KeyUserName}
	groupKeys = keyFields{"id": KeyID, "externalid": KeyIdpID, "displayname": KeyGroupName, "members.value": KeyMember, "members": KeyMember}
)

// keyPriority orders keys by how few rows they select.
var keyPriority = []KeyField{KeyID, KeyIdpID, KeyUserName, KeyMember, KeyGroupName}

// narrowKey returns an equality every match of e must satisfy, on an
// indexed key: a string `eq` comparison (or value path) reached from the
// top through "and" only.
func narrowKey(e filter.Expr, fields keyFields) (Key, bool) {
	found := map[KeyField]string{}
	var walk func(e filter.Expr, prefix string)
	walk = func(e filter.Expr, prefix string) {
		switch t := e.(type) {
		case *filter.Logical:
			if t.Op == "and" {
				walk(t.Left, prefix)
				walk(t.Right, prefix)
			}
		case *filter.ValuePath:
			if prefix == "" && coreURN(t.Attr.URN) && t.Attr.Sub == "" {
				walk(t.Filter, strings.ToLower(t.Attr.Attr)+".")
			}
		case *filter.Compare:
			v, ok := t.Value.(string)
			if t.Op != "eq" || !ok || !coreURN(t.Path.URN) {
				return
			}
			path := prefix + strings.ToLower(t.Path.Attr)
			if t.Path.Sub != "" {
				path += "." + strings.ToLower(t.Path.Sub)
			}
			if f, ok := fields[path]; ok {
				if _, dup := found[f]; !dup {
					found[f] = v
				}
			}
		}
	}
	walk(e, "")
	for _, f := range keyPriority {
		if v, ok := found[f]; ok {
			return Key{Field: f, Value: v}, true
		}
	}
	return Key{}, false
}

func coreURN(urn string) bool { return urn == "" || filter.IsCoreURN(urn) }

// mentions reports whether e refers to the top-level attribute attr.
func mentions(e filter.Expr, attr string) bool {
	switch t := e.(type) {
	case *filter.Logical:
		return mentions(t.Left, attr) || mentions(t.Right, attr)
	case *filter.Not:
		return mentions(t.Expr, attr)
	case *filter.ValuePath:
		return strings.EqualFold(t.Attr.Attr, attr)
	case *filter.Compare:
		return strings.EqualFold(t.Path.Attr, attr)
	}
	return false
}

// UserResource is the SCIM form of u that filters are evaluated on: the
// attributes the IdP sent, with the server's id, externalId and meta.
func UserResource(u *dsyncv1.User) map[string]any {
	r := u.GetRawAttributes().AsMap()
	r["id"] = u.GetId()
	if u.GetIdpId() != "" {
		r["externalId"] = u.GetIdpId()
	}
	if _, ok := r["userName"]; !ok && u.GetUserName() != "" {
		r["userName"] = u.GetUserName()
	}
	r["meta"] = meta("User", u.GetCreatedAt(), u.GetUpdatedAt())
	return r
}

// GroupResource is the SCIM form of g; members are included when given.
func GroupResource(g *dsyncv1.Group, memberIDs []string) map[string]any {
	r := g.GetRawAttributes().AsMap()
	r["id"] = g.GetId()
	if g.GetIdpId() != "" {
		r["externalId"] = g.GetIdpId()
	}
	r["displayName"] = g.GetName()
	if memberIDs != nil {
		members := make([]any, 0, len(memberIDs))
		for _, id := range memberIDs {
			members = append(members, map[string]any{"value": id})
		}
		r["members"] = members
	} else {
		delete(r, "members")
	}
	r["meta"] = meta("Group", g.GetCreatedAt(), g.GetUpdatedAt())
	return r
}

func meta(resourceType string, created, updated *timestamppb.Timestamp) map[string]any {
	return map[string]any{
		"resourceType": resourceType,
		"created":      created.AsTime().UTC().Format(time.RFC3339Nano),
		"lastModified": updated.AsTime().UTC().Format(time.RFC3339Nano),
	}
}
