package patch

import (
	"slices"
	"strconv"
	"strings"

	"github.com/dsync-dev/dsync/pkg/scim/filter"
)

// Kinds of MemberChange.
const (
	MembersAdd       = "add"
	MembersRemove    = "remove"
	MembersReplace   = "replace"
	MembersRemoveAll = "remove_all"
)

// MemberChange is a change to a group's membership, by member id. For
// "replace", IDs is the complete new member list (possibly empty) and the
// caller diffs it against the current members; for "remove_all" IDs is nil.
type MemberChange struct {
	Kind string
	IDs  []string
}

// SplitMembers separates the operations on a group's "members" from the
// rest, since membership is stored as its own aggregate. It recognises:
//   - path "members" (optionally URN-qualified or "members.value") with a
//     value that is an array — or a single item — of member objects
//     ({"value", "display", "$ref", "type"}, keys in any case) or bare id
//     strings (Microsoft's Postman collection): add → add, replace → replace,
//     remove → remove exactly those ids (Entra's default dialect: never all
//     members);
//   - remove with path "members" and no value (or null) → remove_all;
//   - path `members[value eq "id"]` (or several value eq joined by or):
//     remove → remove those ids; add/replace → add them;
//   - pathless add/replace whose value has a "members" key: that key becomes
//     an add/replace change and the rest of the value stays an operation.
//
// Operations on other sub-attributes of members (display, $ref, type) are
// dropped: the membership aggregate does not store them. Member changes
// keep their relative order, as do the remaining operations. A malformed
// member list fails with *Error invalidValue; a members filter that does not
// select by value fails with invalidPath.
func SplitMembers(ops []Operation) (members []MemberChange, rest []Operation, err error) {
	for i, op := range ops {
		ch, keep, e := splitOne(op)
		if e != nil {
			e.Detail = "operation " + strconv.Itoa(i+1) + ": " + e.Detail
			return nil, nil, e
		}
		members = append(members, ch...)
		if keep != nil {
			rest = append(rest, *keep)
		}
	}
	return members, rest, nil
}

func splitOne(op Operation) ([]MemberChange, *Operation, *Error) {
	name := strings.ToLower(strings.TrimSpace(op.Op))
	if strings.TrimSpace(op.Path) == "" {
		obj, ok := op.Value.(map[string]any)
		if !ok || name == "remove" {
			return nil, &op, nil
		}
		var changes []MemberChange
		restObj := map[string]any{}
		for _, k := range sortedKeys(obj) {
			p, err := ParsePath(k)
			if err != nil || !isMembers(p) || p.Filter != nil || p.Sub != "" {
				restObj[k] = obj[k]
				continue
			}
			ids, e := memberIDs(obj[k])
			if e != nil {
				return nil, nil, e
			}
			if ch, ok := change(name, ids, obj[k] == nil); ok {
				changes = append(changes, ch)
			}
		}
		if len(changes) == 0 {
			return nil, &op, nil
		}
		if len(restObj) == 0 {
			return changes, nil, nil
		}
		return changes, &Operation{Op: op.Op, Value: restObj}, nil
	}
	p, err := ParsePath(op.Path)
	if err != nil || !isMembers(p) {
		return nil, &op, nil // not ours; Apply reports a bad path
	}
	if p.Sub != "" && !strings.EqualFold(p.Sub, "value") {
		return nil, nil, nil
	}
	if p.Filter != nil {
		ids, ok := filterIDs(p.Filter)
		if !ok {
			return nil, nil, errorf(ScimInvalidPath, "a members filter must select members by value, as in members[value eq \"id\"]")
		}
		kind := MembersAdd
		if name == "remove" {
			kind = MembersRemove
		}
		return []MemberChange{{Kind: kind, IDs: ids}}, nil, nil
	}
	ids, e := memberIDs(op.Value)
	if e != nil {
		return nil, nil, e
	}
	if ch, ok := change(name, ids, op.Value == nil); ok {
		return []MemberChange{ch}, nil, nil
	}
	return nil, nil, nil
}

// change builds the change for an op on the whole member list; ok is false
// when it changes nothing (adding or removing an empty list).
func change(op string, ids []string, noValue bool) (MemberChange, bool) {
	switch op {
	case "remove":
		if noValue {
			return MemberChange{Kind: MembersRemoveAll}, true
		}
		return MemberChange{Kind: MembersRemove, IDs: ids}, len(ids) > 0
	case "replace":
		if ids == nil {
			ids = []string{}
		}
		return MemberChange{Kind: MembersReplace, IDs: ids}, true
	default:
		return MemberChange{Kind: MembersAdd, IDs: ids}, len(ids) > 0
	}
}

func isMembers(p Path) bool {
	return strings.EqualFold(p.Attr, "members") && (p.URN == "" || filter.IsCoreURN(p.URN))
}

// memberIDs reads the member ids of a value: an array or single item of
// member objects or bare id strings. Duplicates are dropped, order is kept.
func memberIDs(v any) ([]string, *Error) {
	items, ok := v.([]any)
	if !ok {
		if v == nil {
			return nil, nil
		}
		items = []any{v}
	}
	ids := make([]string, 0, len(items))
	seen := make(map[string]bool, len(items))
	for _, it := range items {
		raw := it
		if m, ok := it.(map[string]any); ok {
			raw, _ = getFold(m, "value")
		}
		var id string
		switch t := raw.(type) {
		case string:
			id = strings.TrimSpace(t)
		case float64:
			id = strconv.FormatFloat(t, 'f', -1, 64)
		}
		if id == "" {
			return nil, errorf(ScimInvalidValue, "each member must be an id or an object with a non-empty \"value\"")
		}
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// filterIDs reads the ids a members filter selects: value eq "id", several
// joined by or, or one such term in an and chain.
func filterIDs(e filter.Expr) ([]string, bool) {
	switch t := e.(type) {
	case *filter.Compare:
		s, ok := t.Value.(string)
		if t.Op != "eq" || !ok || s == "" || t.Path.URN != "" || t.Path.Sub != "" || !strings.EqualFold(t.Path.Attr, "value") {
			return nil, false
		}
		return []string{s}, true
	case *filter.Logical:
		l, lok := filterIDs(t.Left)
		r, rok := filterIDs(t.Right)
		if t.Op == "or" {
			if !lok || !rok {
				return nil, false
			}
			for _, id := range r {
				if !slices.Contains(l, id) {
					l = append(l, id)
				}
			}
			return l, true
		}
		switch {
		case lok && rok:
			var both []string
			for _, id := range l {
				if slices.Contains(r, id) {
					both = append(both, id)
				}
			}
			return both, len(both) > 0
		case lok:
			return l, true
		case rok:
			return r, true
		}
	}
	return nil, false
}
