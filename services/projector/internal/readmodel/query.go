package readmodel

import (
	"slices"
	"strings"

	"google.golang.org/protobuf/types/known/structpb"

	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
)

// SortKey is what a Query orders by; ties are broken by id, so every order
// is total and pages are stable.
type SortKey int

// Sort keys. Text keys compare case-folded, byte by byte.
const (
	// SortID is id order: creation order.
	SortID SortKey = iota
	// SortUserName is a user's userName.
	SortUserName
	// SortDisplayName is a user's displayName or a group's name.
	SortDisplayName
	// SortExternalID is the IdP's id (case exact).
	SortExternalID
	// SortEmail is a user's primary email.
	SortEmail
	// SortFamilyName is a user's last name. Stores do not index it: it is
	// sorted in memory (see SearchUsers).
	SortFamilyName
	// SortCreated and SortUpdated are meta.created and meta.lastModified.
	SortCreated
	SortUpdated
)

// Query is one scan of a directory's users or groups.
type Query struct {
	DirectoryID string
	// Key, when set, keeps the rows whose indexed key equals it.
	Key *Key
	// Sort is the order; the store supports every key but SortFamilyName.
	Sort SortKey
	Desc bool
	// GreaterThan is an exclusive id bound, for scanning in id order; it is
	// only used with SortID ascending.
	GreaterThan string
	// Offset skips that many rows; Limit (positive) bounds the answer.
	Offset int
	Limit  int
}

// VersionedUser is a user and its version: the stream sequence of the last
// event applied to it.
type VersionedUser struct {
	User    *dsyncv1.User
	Version uint64
}

// UserEmails returns the case-folded emails KeyEmail finds u by: its
// primary email, its emails and the emails[].value of its raw SCIM
// attributes (what a SCIM filter on emails.value sees), sorted, without
// duplicates or empty values.
func UserEmails(u *dsyncv1.User) []string {
	out := make([]string, 0, 1+len(u.GetEmails()))
	add := func(v string) {
		if v = strings.ToLower(strings.TrimSpace(v)); v != "" {
			out = append(out, v)
		}
	}
	add(u.GetEmail())
	for _, e := range u.GetEmails() {
		add(e.GetValue())
	}
	if raw := u.GetRawAttributes().GetFields(); raw != nil {
		for _, v := range rawField(raw, "emails").GetListValue().GetValues() {
			if obj := v.GetStructValue().GetFields(); obj != nil {
				add(rawField(obj, "value").GetStringValue())
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// rawField finds a SCIM attribute without regard to case, as SCIM
// attribute names are case-insensitive.
func rawField(m map[string]*structpb.Value, name string) *structpb.Value {
	if v, ok := m[name]; ok {
		return v
	}
	for k, v := range m {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return nil
}

// EventResources returns the user and group ev is about: a user event's
// user, a group event's group, and both for a membership change. The Events
// API filters by them.
func EventResources(ev *dsyncv1.Event) (userID, groupID string) {
	switch p := ev.GetPayload().(type) {
	case *dsyncv1.Event_User:
		return p.User.GetId(), ""
	case *dsyncv1.Event_Group:
		return "", p.Group.GetId()
	case *dsyncv1.Event_Membership:
		m := p.Membership
		userID, groupID = m.GetUserId(), m.GetGroupId()
		if userID == "" {
			userID = m.GetUser().GetId()
		}
		if groupID == "" {
			groupID = m.GetGroup().GetId()
		}
		return userID, groupID
	}
	return "", ""
}
