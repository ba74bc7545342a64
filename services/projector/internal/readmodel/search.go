package readmodel

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/dsync-dev/dsync/pkg/scim/filter"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
)

// MaxSearchCount caps the page size of a SCIM search.
const MaxSearchCount = 1000

// MaxSortInMemory bounds how many resources a search sorts in memory: the
// matches of a filtered sorted search, or a directory sorted by a key the
// stores do not index. Larger sets are refused with ErrInvalidQuery rather
// than held in memory.
const MaxSortInMemory = 10_000

// ErrInvalidQuery marks a search the read model refuses (an unknown sort
// attribute, too much to sort); the message says why.
var ErrInvalidQuery = errors.New("invalid query")

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
	// Sort and Desc order the results (ParseSort); SortID ascending is the
	// default.
	Sort SortKey
	Desc bool
}

func (q Search) bounds() (skip, count int) {
	skip = max(q.StartIndex, 1) - 1
	count = min(max(q.Count, 0), MaxSearchCount)
	return skip, count
}

// Resource types of ParseSort.
const (
	ResourceUser  = "User"
	ResourceGroup = "Group"
)

var (
	userSorts = map[string]SortKey{
		"id": SortID, "username": SortUserName, "displayname": SortDisplayName,
		"name.familyname": SortFamilyName, "emails": SortEmail, "emails.value": SortEmail,
		"externalid": SortExternalID, "meta.created": SortCreated, "meta.lastmodified": SortUpdated,
	}
	groupSorts = map[string]SortKey{
		"id": SortID, "displayname": SortDisplayName, "externalid": SortExternalID,
		"meta.created": SortCreated, "meta.lastmodified": SortUpdated,
	}
)

// ParseSort maps a SCIM sortBy attribute path of resource (ResourceUser or
// ResourceGroup) to a SortKey. Attribute names are case-insensitive and may
// carry the core schema's URN; "" is SortID.
func ParseSort(resource, path string) (SortKey, error) {
	p := strings.ToLower(strings.TrimSpace(path))
	if p == "" {
		return SortID, nil
	}
	p = strings.TrimPrefix(p, "urn:ietf:params:scim:schemas:core:2.0:"+strings.ToLower(resource)+":")
	sorts := userSorts
	if resource == ResourceGroup {
		sorts = groupSorts
	}
	if k, ok := sorts[p]; ok {
		return k, nil
	}
	names := make([]string, 0, len(sorts))
	for _, n := range []string{"id", "userName", "displayName", "name.familyName", "emails.value", "externalId", "meta.created", "meta.lastModified"} {
		if _, ok := sorts[strings.ToLower(n)]; ok {
			names = append(names, n)
		}
	}
	return SortID, fmt.Errorf("%w: %s cannot be sorted by %q; sortBy is one of %s", ErrInvalidQuery, resource, path, strings.Join(names, ", "))
}

// errTooManyToSort is the refusal of an in-memory sort over n resources.
func errTooManyToSort(n int64, what string) error {
	return fmt.Errorf("%w: sorting more than %d %s in memory is not supported (this query has %d or more); narrow the filter (e.g. by userName, externalId or emails.value), or sort by userName, displayName, meta.created or meta.lastModified without a filter",
		ErrInvalidQuery, MaxSortInMemory, what, n)
}

// SearchUsers answers q over users with their versions. Without a filter
// it counts and pages with the store's indexes, in any sort order but
// name.familyName (sorted in memory when the directory is small). With a
// filter, the filter's required equalities on indexed attributes (id,
// externalId, userName, emails.value) narrow the candidates, filter.Match on
// each candidate's SCIM form decides the rest, and a sort other than by id
// is done in memory over the matches when there are few enough.
func SearchUsers(ctx context.Context, s Store, q Search) ([]VersionedUser, int64, error) {
	skip, count := q.bounds()
	if q.Filter == nil {
		total, err := s.CountUsers(ctx, q.DirectoryID)
		if err != nil || count == 0 {
			return nil, total, err
		}
		if q.Sort != SortFamilyName {
			users, err := s.QueryUsers(ctx, Query{DirectoryID: q.DirectoryID, Sort: q.Sort, Desc: q.Desc, Offset: skip, Limit: count})
			return users, total, err
		}
		if total > MaxSortInMemory {
			return nil, 0, errTooManyToSort(total, "users")
		}
	}
	base := Query{DirectoryID: q.DirectoryID, Limit: scanBatch}
	if q.Filter != nil {
		if k, ok := narrowKey(q.Filter, userKeys); ok {
			base.Key = &k
		}
	}
	scan := func(ctx context.Context, after string) ([]VersionedUser, error) {
		r := base
		r.GreaterThan = after
		return s.QueryUsers(ctx, r)
	}
	sc := scanner[VersionedUser]{
		filter: q.Filter, skip: skip, count: count, what: "users",
		id:       func(u VersionedUser) string { return u.User.GetId() },
		resource: func(u VersionedUser) map[string]any { return UserResource(u.User) },
	}
	if q.Sort != SortID || q.Desc {
		sc.sortKey = func(u VersionedUser) string { return userSortValue(u.User, q.Sort) }
		sc.desc = q.Desc
	}
	return sc.run(ctx, scan)
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
		groups, err := s.QueryGroups(ctx, Query{DirectoryID: q.DirectoryID, Sort: q.Sort, Desc: q.Desc, Offset: skip, Limit: count})
		return groups, total, err
	}
	base := Query{DirectoryID: q.DirectoryID, Limit: scanBatch}
	k, narrowed := narrowKey(q.Filter, groupKeys)
	if narrowed {
		base.Key = &k
	}
	scan := func(ctx context.Context, after string) ([]*dsyncv1.GroupWithCount, error) {
		r := base
		r.GreaterThan = after
		return s.QueryGroups(ctx, r)
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
	sc := scanner[*dsyncv1.GroupWithCount]{
		filter: q.Filter, skip: skip, count: count, what: "groups",
		id:       func(g *dsyncv1.GroupWithCount) string { return g.GetGroup().GetId() },
		resource: resource,
	}
	if q.Sort != SortID || q.Desc {
		sc.sortKey = func(g *dsyncv1.GroupWithCount) string { return groupSortValue(g.GetGroup(), q.Sort) }
		sc.desc = q.Desc
	}
	return sc.run(ctx, scan)
}

// scanner reads every candidate in id order, keeps those matching filter
// (all when nil), counts them and returns the page [skip, skip+count). With
// a sortKey it keeps the matches, at most MaxSortInMemory, and sorts them
// by (sortKey, id) before paging.
type scanner[T any] struct {
	filter      filter.Expr
	skip, count int
	what        string
	id          func(T) string
	resource    func(T) map[string]any
	sortKey     func(T) string
	desc        bool
}

func (sc scanner[T]) run(ctx context.Context, scan func(ctx context.Context, after string) ([]T, error)) ([]T, int64, error) {
	var (
		page, kept []T
		total      int64
		after      string
	)
	for {
		batch, err := scan(ctx, after)
		if err != nil {
			return nil, 0, err
		}
		for _, it := range batch {
			if sc.filter != nil && !filter.Match(sc.filter, sc.resource(it)) {
				continue
			}
			total++
			switch {
			case sc.sortKey != nil:
				if total > MaxSortInMemory {
					return nil, 0, errTooManyToSort(total, sc.what)
				}
				kept = append(kept, it)
			case total > int64(sc.skip) && len(page) < sc.count:
				page = append(page, it)
			}
		}
		if len(batch) < scanBatch {
			break
		}
		after = sc.id(batch[len(batch)-1])
	}
	if sc.sortKey == nil {
		return page, total, nil
	}
	keys := make(map[string]string, len(kept))
	for _, it := range kept {
		keys[sc.id(it)] = sc.sortKey(it)
	}
	slices.SortFunc(kept, func(a, b T) int {
		ia, ib := sc.id(a), sc.id(b)
		c := cmp.Or(strings.Compare(keys[ia], keys[ib]), strings.Compare(ia, ib))
		if sc.desc {
			return -c
		}
		return c
	})
	lo := min(sc.skip, len(kept))
	return kept[lo:min(lo+sc.count, len(kept))], total, nil
}

// sortTimeLayout makes times sort as text: fixed width, UTC.
const sortTimeLayout = "2006-01-02T15:04:05.000000000Z"

func sortTime(t *timestamppb.Timestamp) string {
	if !t.IsValid() {
		return ""
	}
	return t.AsTime().UTC().Format(sortTimeLayout)
}

// userSortValue is u's value of k as the stores order it.
func userSortValue(u *dsyncv1.User, k SortKey) string {
	switch k {
	case SortUserName:
		return strings.ToLower(u.GetUserName())
	case SortDisplayName:
		return strings.ToLower(u.GetDisplayName())
	case SortExternalID:
		return u.GetIdpId()
	case SortEmail:
		return strings.ToLower(u.GetEmail())
	case SortFamilyName:
		return strings.ToLower(u.GetLastName())
	case SortCreated:
		return sortTime(u.GetCreatedAt())
	case SortUpdated:
		return sortTime(u.GetUpdatedAt())
	}
	return u.GetId()
}

// groupSortValue is g's value of k as the stores order it.
func groupSortValue(g *dsyncv1.Group, k SortKey) string {
	switch k {
	case SortDisplayName:
		return strings.ToLower(g.GetName())
	case SortExternalID:
		return g.GetIdpId()
	case SortCreated:
		return sortTime(g.GetCreatedAt())
	case SortUpdated:
		return sortTime(g.GetUpdatedAt())
	}
	return g.GetId()
}

// keyFields maps a lower-case SCIM attribute path to the indexed key it
// can be narrowed by.
type keyFields map[string]KeyField

var (
	userKeys = keyFields{"id": KeyID, "externalid": KeyIdpID, "username": KeyUserName,
		"emails.value": KeyEmail, "emails": KeyEmail}
	groupKeys = keyFields{"id": KeyID, "externalid": KeyIdpID, "displayname": KeyGroupName, "members.value": KeyMember, "members": KeyMember}
)

// keyPriority orders keys by how few rows they select.
var keyPriority = []KeyField{KeyID, KeyIdpID, KeyUserName, KeyEmail, KeyMember, KeyGroupName}

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
