package scim

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/dsync-dev/dsync/pkg/event"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
	"github.com/dsync-dev/dsync/services/gateway/internal/scim/patch"
)

// Group is a SCIM Group resource as a client sent it.
type Group struct {
	DisplayName string
	ExternalID  string
	// Members are the member ids of the body's members attribute; nil when
	// the attribute was absent, empty when it was an empty list. Items may
	// be objects ({value, $ref, display, type}) or bare id strings.
	Members []string
	// Raw is the body minus id, meta and members: raw_attributes.
	Raw map[string]any
}

// groupReadOnly are attributes never kept in a group's raw attributes:
// membership is its own aggregate.
var groupReadOnly = []string{"id", "meta", "members"}

// ParseGroup reads a Group resource from a request body.
func ParseGroup(body []byte) (*Group, error) {
	m, err := decodeObject(body)
	if err != nil {
		return nil, err
	}
	return GroupFromMap(m)
}

// GroupFromMap reads a Group from a decoded JSON object; a missing
// displayName is invalidValue.
func GroupFromMap(body map[string]any) (*Group, error) {
	core, _ := splitExtensions(body)
	g := &Group{Raw: make(map[string]any, len(body))}
	for k, v := range body {
		if !isOneOf(k, groupReadOnly) {
			g.Raw[k] = v
		}
	}
	var err error
	if g.DisplayName, err = core.stringAttr("displayName"); err != nil {
		return nil, err
	}
	g.DisplayName = strings.TrimSpace(g.DisplayName)
	if g.DisplayName == "" {
		return nil, invalidValue("displayName is required")
	}
	if g.ExternalID, err = core.stringAttr("externalId"); err != nil {
		return nil, err
	}
	if v, ok := core.get("members"); ok {
		g.Members = []string{}
		if v != nil {
			for _, item := range core.listAttr("members") {
				if id := strings.TrimSpace(refValue(item)); id != "" {
					g.Members = append(g.Members, id)
				}
			}
		}
	}
	return g, nil
}

func (g *Group) normalize(id, dirID, orgID string, created, updated time.Time) (*dsyncv1.Group, error) {
	raw, err := structpb.NewStruct(g.Raw)
	if err != nil {
		return nil, invalidValue("attributes cannot be stored: %v", err)
	}
	return &dsyncv1.Group{
		Id: id, DirectoryId: dirID, OrganizationId: orgID, IdpId: g.ExternalID, Name: g.DisplayName,
		RawAttributes: raw, CreatedAt: timestamppb.New(created), UpdatedAt: timestamppb.New(updated),
	}, nil
}

// GroupResource is the SCIM Group representation the server returns.
type GroupResource struct {
	Schemas     []string `json:"schemas"`
	ID          string   `json:"id"`
	ExternalID  string   `json:"externalId,omitempty"`
	DisplayName string   `json:"displayName"`
	// Members is nil when not rendered (excludedAttributes=members, or not
	// read), and an empty list for a group without members.
	Members *[]MemberRef `json:"members,omitempty"`
	Meta    Meta         `json:"meta"`
}

// MemberRef is one value of a group's members.
type MemberRef struct {
	Value string `json:"value"`
	Ref   string `json:"$ref,omitempty"`
	Type  string `json:"type,omitempty"`
}

// RenderGroup renders a group's state; members are set by WithMembers.
func RenderGroup(g *dsyncv1.Group, seq uint64, location string) GroupResource {
	r := GroupResource{
		Schemas:     []string{SchemaGroup},
		ID:          g.GetId(),
		ExternalID:  g.GetIdpId(),
		DisplayName: g.GetName(),
		Meta: Meta{
			ResourceType: "Group",
			Created:      FormatTime(g.GetCreatedAt().AsTime()),
			LastModified: FormatTime(g.GetUpdatedAt().AsTime()),
			Location:     location,
		},
	}
	if seq > 0 {
		r.Meta.Version = Version(seq)
	}
	return r
}

// WithMembers returns r with the given member user ids; userLocation
// makes each member's $ref.
func (r GroupResource) WithMembers(ids []string, userLocation func(id string) string) GroupResource {
	refs := make([]MemberRef, 0, len(ids))
	for _, id := range ids {
		refs = append(refs, MemberRef{Value: id, Ref: userLocation(id), Type: "User"})
	}
	r.Members = &refs
	return r
}

// GroupLocation is the absolute URL of a group resource.
func (s *Service) GroupLocation(directoryID, groupID string) string {
	return s.baseURL + "/scim/v2/" + directoryID + "/Groups/" + groupID
}

// GroupResult is the outcome of a group write: the group (with members
// when the write knows them) and the member ids that matched no user.
type GroupResult struct {
	Group   GroupResource
	Ignored []string
}

func (s *Service) currentGroup(ctx context.Context, dirID, id string) (*dsyncv1.Group, uint64, error) {
	if !event.ValidID(id, event.PrefixGroup) {
		return nil, 0, NotFound(id)
	}
	ev, seq, err := s.log.Last(ctx, event.GroupSubject(dirID, id))
	if err != nil {
		return nil, 0, fmt.Errorf("read group %s: %w", id, err)
	}
	g := ev.GetGroup()
	if g == nil || ev.GetType() == dsyncv1.EventType_EVENT_TYPE_GROUP_DELETED {
		return nil, 0, NotFound(id)
	}
	return g, seq, nil
}

// GetGroup returns a group read from its subject, without members.
func (s *Service) GetGroup(ctx context.Context, call Call, id string) (GroupResource, error) {
	dirID := call.Directory.GetId()
	g, seq, err := s.currentGroup(ctx, dirID, id)
	if err != nil {
		return GroupResource{}, err
	}
	return RenderGroup(g, seq, s.GroupLocation(dirID, id)), nil
}

// CreateGroup creates a group from a POST /Groups body, then adds the
// members the body lists: one GROUP_USER_ADDED event per member, each on
// its own member subject. Member ids that match no user are ignored.
func (s *Service) CreateGroup(ctx context.Context, call Call, body []byte) (GroupResult, error) {
	in, err := ParseGroup(body)
	if err != nil {
		return GroupResult{}, err
	}
	dir := call.Directory
	now := s.now()
	id := s.ids.New(event.PrefixGroup)
	g, err := in.normalize(id, dir.GetId(), dir.GetOrganizationId(), now, now)
	if err != nil {
		return GroupResult{}, err
	}
	ev := s.newEvent(call, now, dsyncv1.EventType_EVENT_TYPE_GROUP_CREATED)
	ev.Payload = &dsyncv1.Event_Group{Group: g}
	seq, err := s.log.Append(ctx, event.GroupSubject(dir.GetId(), id), ev, 0)
	if err != nil {
		return GroupResult{}, fmt.Errorf("create group: %w", err)
	}
	ignored, err := s.applyMembers(ctx, call, g, []patch.MemberChange{{Kind: "add", IDs: in.Members}})
	if err != nil {
		return GroupResult{}, err
	}
	members := slices.DeleteFunc(slices.Clone(in.Members), func(m string) bool { return slices.Contains(ignored, m) })
	res := RenderGroup(g, seq, s.GroupLocation(dir.GetId(), id)).WithMembers(dedupe(members), s.userLocator(dir.GetId()))
	return GroupResult{Group: res, Ignored: ignored}, nil
}

func (s *Service) userLocator(dirID string) func(string) string {
	return func(id string) string { return s.UserLocation(dirID, id) }
}

func dedupe(ids []string) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// ReplaceGroup replaces a group with a PUT body. The group's attributes
// change with one GROUP_UPDATED event (none if identical); a members
// attribute in the body is diffed against the current membership into only
// the real additions and removals. A body without members leaves the
// membership as it is (clients that PUT only a rename mean no removal).
func (s *Service) ReplaceGroup(ctx context.Context, call Call, id string, pre Precondition, body []byte) (GroupResult, error) {
	in, err := ParseGroup(body)
	if err != nil {
		return GroupResult{}, err
	}
	g, seq, err := s.updateGroup(ctx, call, id, pre, func(*dsyncv1.Group) (*Group, error) { return in, nil })
	if err != nil {
		return GroupResult{}, err
	}
	res := GroupResult{Group: RenderGroup(g, seq, s.GroupLocation(call.Directory.GetId(), id))}
	if in.Members != nil {
		res.Ignored, err = s.applyMembers(ctx, call, g, []patch.MemberChange{{Kind: "replace", IDs: in.Members}})
		if err != nil {
			return GroupResult{}, err
		}
	}
	return res, nil
}

// PatchGroup applies a PatchOp body to a group: member operations become
// membership events diffed against the current membership (only real
// changes emit events; adding k members costs O(k)); the other operations
// apply in order to the group's attributes, and a change is one
// GROUP_UPDATED event with the previous group. Every operation is checked
// before anything is written.
func (s *Service) PatchGroup(ctx context.Context, call Call, id string, pre Precondition, body []byte) (GroupResult, error) {
	ops, err := parsePatch(body)
	if err != nil {
		return GroupResult{}, err
	}
	members, rest, err := patch.SplitMembers(ops)
	if err != nil {
		return GroupResult{}, fromPatchError(err)
	}
	g, seq, err := s.updateGroup(ctx, call, id, pre, func(cur *dsyncv1.Group) (*Group, error) {
		if len(rest) == 0 {
			return nil, nil
		}
		return patchGroupState(cur, rest)
	})
	if err != nil {
		return GroupResult{}, err
	}
	res := GroupResult{Group: RenderGroup(g, seq, s.GroupLocation(call.Directory.GetId(), id))}
	if len(members) > 0 {
		res.Ignored, err = s.applyMembers(ctx, call, g, members)
	}
	return res, err
}

// patchGroupState applies non-member operations to a group's SCIM
// representation and reads the result back.
func patchGroupState(cur *dsyncv1.Group, ops []patch.Operation) (*Group, error) {
	base := map[string]any{}
	if raw := cur.GetRawAttributes(); raw != nil {
		base = raw.AsMap()
	}
	for k := range base {
		if strings.EqualFold(k, "displayName") || strings.EqualFold(k, "externalId") {
			delete(base, k)
		}
	}
	base["id"] = cur.GetId()
	base["displayName"] = cur.GetName()
	if cur.GetIdpId() != "" {
		base["externalId"] = cur.GetIdpId()
	}
	out, err := patch.Apply(base, sanitizeOps(ops, cur.GetId()), groupPatchSchema)
	if err != nil {
		return nil, fromPatchError(err)
	}
	return GroupFromMap(out)
}

// updateGroup reads the group, computes its next state with next (nil: no
// change to its attributes) and appends GROUP_UPDATED when it differs,
// retrying on a concurrent change. It returns the group's resulting state.
func (s *Service) updateGroup(ctx context.Context, call Call, id string, pre Precondition, next func(*dsyncv1.Group) (*Group, error)) (*dsyncv1.Group, uint64, error) {
	type out struct {
		g   *dsyncv1.Group
		seq uint64
	}
	o, err := withRetry(ctx, pre, func() (out, error) {
		dir := call.Directory
		cur, seq, err := s.currentGroup(ctx, dir.GetId(), id)
		if err != nil {
			return out{}, err
		}
		if err := pre.check(seq); err != nil {
			return out{}, err
		}
		in, err := next(cur)
		if err != nil || in == nil {
			return out{cur, seq}, err
		}
		now := s.now()
		g, err := in.normalize(id, dir.GetId(), dir.GetOrganizationId(), cur.GetCreatedAt().AsTime(), now)
		if err != nil {
			return out{}, err
		}
		var changed []string
		if g.GetName() != cur.GetName() {
			changed = append(changed, "name")
		}
		if g.GetIdpId() != cur.GetIdpId() {
			changed = append(changed, "idp_id")
		}
		if !proto.Equal(g.GetRawAttributes(), cur.GetRawAttributes()) {
			changed = append(changed, "raw_attributes")
		}
		if len(changed) == 0 {
			return out{cur, seq}, nil
		}
		ev := s.newEvent(call, now, dsyncv1.EventType_EVENT_TYPE_GROUP_UPDATED)
		ev.ChangedAttributes = changed
		ev.Previous = &dsyncv1.Event_PreviousGroup{PreviousGroup: cur}
		ev.Payload = &dsyncv1.Event_Group{Group: g}
		newSeq, err := s.log.Append(ctx, event.GroupSubject(dir.GetId(), id), ev, seq)
		if err != nil {
			return out{}, fmt.Errorf("update group %s: %w", id, err)
		}
		return out{g, newSeq}, nil
	})
	return o.g, o.seq, err
}

// DeleteGroup deletes a group (GROUP_DELETED). Later reads are NotFound.
func (s *Service) DeleteGroup(ctx context.Context, call Call, id string, pre Precondition) error {
	_, err := withRetry(ctx, pre, func() (struct{}, error) {
		dir := call.Directory
		cur, seq, err := s.currentGroup(ctx, dir.GetId(), id)
		if err != nil {
			return struct{}{}, err
		}
		if err := pre.check(seq); err != nil {
			return struct{}{}, err
		}
		now := s.now()
		ev := s.newEvent(call, now, dsyncv1.EventType_EVENT_TYPE_GROUP_DELETED)
		ev.Reason = dsyncv1.Reason_REASON_IDP_DELETED
		ev.Payload = &dsyncv1.Event_Group{Group: cur}
		if _, err := s.log.Append(ctx, event.GroupSubject(dir.GetId(), id), ev, seq); err != nil {
			return struct{}{}, fmt.Errorf("delete group %s: %w", id, err)
		}
		return struct{}{}, nil
	})
	return err
}

// GroupMembers returns a live group's member user ids straight from the
// event log (the last event of each member subject), in stream order. It
// reads the whole membership: the read model serves large groups; this is
// for the writes that must diff against all of it (replace, remove all).
func (s *Service) GroupMembers(ctx context.Context, dirID, groupID string) ([]string, error) {
	entries, err := s.log.LastPerSubject(ctx, event.MemberSubject(dirID, groupID, "*"))
	if err != nil {
		return nil, fmt.Errorf("read members of %s: %w", groupID, err)
	}
	var ids []string
	for _, e := range entries {
		if e.Event.GetType() == dsyncv1.EventType_EVENT_TYPE_GROUP_USER_ADDED {
			ids = append(ids, e.Event.GetMembership().GetUserId())
		}
	}
	return ids, nil
}

// applyMembers carries out member changes on group g in order. Adds and
// removes of named members touch only those members' subjects; replace and
// remove_all read the current membership once and diff against it. Only
// real changes emit events. Add ids that match no live user are returned
// as ignored.
func (s *Service) applyMembers(ctx context.Context, call Call, g *dsyncv1.Group, changes []patch.MemberChange) ([]string, error) {
	dirID := call.Directory.GetId()
	desired := map[string]bool{}
	var order []string
	want := func(id string, present bool) {
		if _, ok := desired[id]; !ok {
			order = append(order, id)
		}
		desired[id] = present
	}
	var current map[string]bool // nil until the whole membership is read
	for _, c := range changes {
		switch strings.ToLower(c.Kind) {
		case "add":
			for _, id := range c.IDs {
				want(id, true)
			}
		case "remove":
			for _, id := range c.IDs {
				want(id, false)
			}
		case "replace", "remove_all":
			if current == nil {
				ids, err := s.GroupMembers(ctx, dirID, g.GetId())
				if err != nil {
					return nil, err
				}
				current = make(map[string]bool, len(ids))
				for _, id := range ids {
					current[id] = true
				}
			}
			for id := range current {
				want(id, false)
			}
			for _, id := range order {
				desired[id] = false
			}
			if strings.EqualFold(c.Kind, "replace") {
				for _, id := range c.IDs {
					want(id, true)
				}
			}
		default:
			return nil, invalidValue("unknown member operation %q", c.Kind)
		}
	}
	var ignored []string
	for _, id := range order {
		present := desired[id]
		if current != nil && current[id] == present {
			continue
		}
		ok, err := s.setMember(ctx, call, g, id, present)
		if err != nil {
			return ignored, err
		}
		if !ok && present {
			ignored = append(ignored, id)
		}
	}
	return ignored, nil
}

// setMember makes user id a member of g (present) or not, appending
// GROUP_USER_ADDED/REMOVED on the member subject when that changes the
// edge. It reports false when id is not a user that can be added (unknown
// or deleted); removing a non-member is a no-op that reports true.
func (s *Service) setMember(ctx context.Context, call Call, g *dsyncv1.Group, userID string, present bool) (bool, error) {
	dirID := call.Directory.GetId()
	if !event.ValidID(userID, event.PrefixUser) {
		return false, nil
	}
	uev, _, err := s.log.Last(ctx, event.UserSubject(dirID, userID))
	if err != nil {
		return false, fmt.Errorf("read user %s: %w", userID, err)
	}
	user := uev.GetUser()
	if user == nil || (present && uev.GetType() == dsyncv1.EventType_EVENT_TYPE_USER_DELETED) {
		return false, nil
	}
	subject := event.MemberSubject(dirID, g.GetId(), userID)
	return withRetry(ctx, "", func() (bool, error) {
		ev, seq, err := s.log.Last(ctx, subject)
		if err != nil {
			return false, fmt.Errorf("read membership %s: %w", subject, err)
		}
		isMember := ev.GetType() == dsyncv1.EventType_EVENT_TYPE_GROUP_USER_ADDED
		if isMember == present {
			return true, nil
		}
		typ := dsyncv1.EventType_EVENT_TYPE_GROUP_USER_REMOVED
		if present {
			typ = dsyncv1.EventType_EVENT_TYPE_GROUP_USER_ADDED
		}
		out := s.newEvent(call, s.now(), typ)
		out.Payload = &dsyncv1.Event_Membership{Membership: &dsyncv1.Membership{
			GroupId: g.GetId(), UserId: userID, Group: g, User: user,
		}}
		if _, err := s.log.Append(ctx, subject, out, seq); err != nil {
			return false, fmt.Errorf("change membership %s: %w", subject, err)
		}
		return true, nil
	})
}

// ErrNotFound reports whether err is a SCIM 404.
func ErrNotFound(err error) bool {
	var se *Error
	return errors.As(err, &se) && se.Status == StatusNotFound
}
