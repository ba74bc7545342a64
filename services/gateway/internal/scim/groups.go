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
	"github.com/dsync-dev/dsync/services/gateway/internal/domain"
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

// CreateGroup creates a group from a POST /Groups body with the members
// it lists, in one atomic append: GROUP_CREATED, then one
// GROUP_USER_ADDED per member on its own member subject. Member ids that
// match no user are ignored.
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
	writes := []domain.Write{{Subject: event.GroupSubject(dir.GetId(), id), Event: ev}}
	// The group is new, so none of its member subjects exists: the plan
	// needs no membership reads, only the users'.
	plan, err := s.planMembers(ctx, call, g, []patch.MemberChange{{Kind: "add", IDs: in.Members}}, true)
	if err != nil {
		return GroupResult{}, err
	}
	seqs, err := s.appendMembership(ctx, append(writes, plan.writes...))
	if err != nil {
		return GroupResult{}, fmt.Errorf("create group: %w", err)
	}
	members := slices.DeleteFunc(slices.Clone(in.Members), func(m string) bool { return slices.Contains(plan.ignored, m) })
	res := RenderGroup(g, seqs[0], s.GroupLocation(dir.GetId(), id)).WithMembers(dedupe(members), s.userLocator(dir.GetId()))
	return GroupResult{Group: res, Ignored: plan.ignored}, nil
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
// the real additions and removals, appended atomically with the attribute
// change. A body without members leaves the membership as it is (clients
// that PUT only a rename mean no removal).
func (s *Service) ReplaceGroup(ctx context.Context, call Call, id string, pre Precondition, body []byte) (GroupResult, error) {
	in, err := ParseGroup(body)
	if err != nil {
		return GroupResult{}, err
	}
	var members []patch.MemberChange
	if in.Members != nil {
		members = []patch.MemberChange{{Kind: "replace", IDs: in.Members}}
	}
	return s.writeGroup(ctx, call, id, pre, func(*dsyncv1.Group) (*Group, error) { return in, nil }, members)
}

// PatchGroup applies a PatchOp body to a group: member operations become
// membership events diffed against the current membership (only real
// changes emit events; adding k members costs O(k)); the other operations
// apply in order to the group's attributes, and a change is one
// GROUP_UPDATED event with the previous group. Every operation is checked
// before anything is written, and everything is appended in one atomic
// batch (see writeGroup).
func (s *Service) PatchGroup(ctx context.Context, call Call, id string, pre Precondition, body []byte) (GroupResult, error) {
	ops, err := parsePatch(body)
	if err != nil {
		return GroupResult{}, err
	}
	members, rest, err := patch.SplitMembers(ops)
	if err != nil {
		return GroupResult{}, fromPatchError(err)
	}
	return s.writeGroup(ctx, call, id, pre, func(cur *dsyncv1.Group) (*Group, error) {
		if len(rest) == 0 {
			return nil, nil
		}
		return patchGroupState(cur, rest)
	}, members)
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

// writeGroup reads the group, computes its next attributes with next (nil:
// no change) and the membership edges members change, and appends
// GROUP_UPDATED (when the attributes differ) and every membership event in
// one atomic batch, each message with its subject's expected last
// sequence, and without GROUP_UPDATED a guard on the group subject (see
// domain.Write). When the group or any member edge changed after the read,
// nothing is stored, and the whole request is re-read and re-applied
// (under If-Match: 412). A change of more than the log's batch size
// (1000 messages) is stored as consecutive atomic batches; see
// domain.EventLog.AppendBatch.
func (s *Service) writeGroup(ctx context.Context, call Call, id string, pre Precondition, next func(*dsyncv1.Group) (*Group, error), members []patch.MemberChange) (GroupResult, error) {
	dir := call.Directory
	return withRetry(ctx, pre, func() (GroupResult, error) {
		cur, seq, err := s.currentGroup(ctx, dir.GetId(), id)
		if err != nil {
			return GroupResult{}, err
		}
		if err := pre.check(seq); err != nil {
			return GroupResult{}, err
		}
		g, ev, err := s.nextGroup(call, cur, next)
		if err != nil {
			return GroupResult{}, err
		}
		var writes []domain.Write
		if ev != nil {
			writes = append(writes, domain.Write{Subject: event.GroupSubject(dir.GetId(), id), Event: ev, ExpectedSeq: seq})
		}
		plan, err := s.planMembers(ctx, call, g, members, false)
		if err != nil {
			return GroupResult{}, err
		}
		if ev == nil && len(plan.writes) > 0 {
			// A members-only change does not write the group subject, so
			// nothing in the batch would notice the group being deleted
			// (or renamed: the events carry its state) since it was read:
			// the guard makes the batch conditional on the group subject
			// being where it was read, without writing it, so concurrent
			// member changes of one group still do not conflict.
			writes = append(writes, domain.Write{Subject: event.GroupSubject(dir.GetId(), id), ExpectedSeq: seq, Guard: true})
		}
		seqs, err := s.appendMembership(ctx, append(writes, plan.writes...))
		if err != nil {
			return GroupResult{}, fmt.Errorf("update group %s: %w", id, err)
		}
		if ev != nil {
			seq = seqs[0]
		}
		return GroupResult{Group: RenderGroup(g, seq, s.GroupLocation(dir.GetId(), id)), Ignored: plan.ignored}, nil
	})
}

// nextGroup returns the group's next state and the GROUP_UPDATED event
// that describes the change, or cur and nil when nothing changes.
func (s *Service) nextGroup(call Call, cur *dsyncv1.Group, next func(*dsyncv1.Group) (*Group, error)) (*dsyncv1.Group, *dsyncv1.Event, error) {
	in, err := next(cur)
	if err != nil || in == nil {
		return cur, nil, err
	}
	dir := call.Directory
	now := s.now()
	g, err := in.normalize(cur.GetId(), dir.GetId(), dir.GetOrganizationId(), cur.GetCreatedAt().AsTime(), now)
	if err != nil {
		return nil, nil, err
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
		return cur, nil, nil
	}
	ev := s.newEvent(call, now, dsyncv1.EventType_EVENT_TYPE_GROUP_UPDATED)
	ev.ChangedAttributes = changed
	ev.Previous = &dsyncv1.Event_PreviousGroup{PreviousGroup: cur}
	ev.Payload = &dsyncv1.Event_Group{Group: g}
	return g, ev, nil
}

// DeleteGroup deletes a group (GROUP_DELETED). Later reads are NotFound.
// As in WorkOS, only dsync.group.deleted is emitted: the read model drops
// the group's member edges with it.
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

// GroupMembers returns a group's member user ids straight from the event
// log (the last event of each member subject), in stream order. It reads
// the whole membership, so requests never use it (the read model serves
// members); it is the log's own answer, for tests and diagnostics.
func (s *Service) GroupMembers(ctx context.Context, dirID, groupID string) ([]string, error) {
	edges, err := s.memberEdges(ctx, dirID, groupID)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range edges {
		if e.member {
			ids = append(ids, e.userID)
		}
	}
	return ids, nil
}

// edge is one member subject's state: whether the user is a member, and
// the subject's last sequence (0: never written).
type edge struct {
	userID string
	member bool
	seq    uint64
}

// memberEdges reads every member subject of a group, in stream order.
func (s *Service) memberEdges(ctx context.Context, dirID, groupID string) ([]edge, error) {
	entries, err := s.log.LastPerSubject(ctx, event.MemberSubject(dirID, groupID, "*"))
	if err != nil {
		return nil, fmt.Errorf("read members of %s: %w", groupID, err)
	}
	out := make([]edge, 0, len(entries))
	for _, e := range entries {
		m := e.Event.GetMembership()
		if m == nil {
			continue
		}
		out = append(out, edge{userID: m.GetUserId(), seq: e.Seq,
			member: e.Event.GetType() == dsyncv1.EventType_EVENT_TYPE_GROUP_USER_ADDED})
	}
	return out, nil
}

// memberPlan is the membership events a write appends, with the add ids
// that matched no live user.
type memberPlan struct {
	writes  []domain.Write
	ignored []string
}

// planMembers turns member changes on group g (its state after the write)
// into membership events, in order, each expecting its member subject's
// last sequence as read now. Adds and removes of named members read only
// those members' subjects; replace and remove_all read the whole
// membership once and diff against it. Only real changes become events.
// fresh says the group has no member subjects yet (it is being created).
func (s *Service) planMembers(ctx context.Context, call Call, g *dsyncv1.Group, changes []patch.MemberChange, fresh bool) (memberPlan, error) {
	if len(changes) == 0 {
		return memberPlan{}, nil
	}
	dirID := call.Directory.GetId()
	desired := map[string]bool{}
	var order []string
	want := func(id string, present bool) {
		if _, ok := desired[id]; !ok {
			order = append(order, id)
		}
		desired[id] = present
	}
	var known map[string]edge // nil until the whole membership is read
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
			if known == nil {
				known = map[string]edge{}
				if !fresh {
					edges, err := s.memberEdges(ctx, dirID, g.GetId())
					if err != nil {
						return memberPlan{}, err
					}
					for _, e := range edges {
						known[e.userID] = e
					}
				}
			}
			for id, e := range known {
				if e.member {
					want(id, false)
				}
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
			return memberPlan{}, invalidValue("unknown member operation %q", c.Kind)
		}
	}
	var plan memberPlan
	for _, id := range order {
		present := desired[id]
		e, ok := known[id]
		if !ok && !fresh && known == nil {
			var err error
			if e, err = s.readEdge(ctx, dirID, g.GetId(), id); err != nil {
				return memberPlan{}, err
			}
		}
		if e.member == present {
			continue
		}
		user, userSeq, err := s.memberUser(ctx, dirID, id)
		if err != nil {
			return memberPlan{}, err
		}
		if user == nil {
			if present {
				plan.ignored = append(plan.ignored, id)
			}
			continue
		}
		typ := dsyncv1.EventType_EVENT_TYPE_GROUP_USER_REMOVED
		if present {
			typ = dsyncv1.EventType_EVENT_TYPE_GROUP_USER_ADDED
		}
		ev := s.newEvent(call, s.now(), typ)
		ev.Payload = &dsyncv1.Event_Membership{Membership: &dsyncv1.Membership{
			GroupId: g.GetId(), UserId: id, Group: g, User: user,
		}}
		w := domain.Write{Subject: event.MemberSubject(dirID, g.GetId(), id), Event: ev, ExpectedSeq: e.seq}
		if present {
			// A user deleted after the read must not join: the edge is
			// stored only while the user subject is where it was read
			// (a rename meanwhile re-reads too: the event carries the
			// user's state). A removal needs no check: a deleted user
			// already left every group.
			w.Requires = &domain.Check{Subject: event.UserSubject(dirID, id), Seq: userSeq}
		}
		plan.writes = append(plan.writes, w)
	}
	return plan, nil
}

// appendMembership appends a write's events with their read-only checks
// (guards on the group, requirements on added users; see domain.Write),
// except when they would turn a single event into a batch.
//
// Why: JetStream allows one expected-sequence check per message, so the
// checks that a group and a user are still alive need messages of their
// own, hence an atomic batch; and on a single-server file stream an atomic
// batch is staged in its own fsynced store: ~3 ms against ~0.05 ms for a
// plain publish (BenchmarkAppendGuarded vs BenchmarkAppend), which would
// make the commonest IdP write, a PATCH that adds or removes one member,
// some 30 times slower. A write of several events is a batch anyway, so
// its checks cost nothing extra and it keeps them; a single membership
// event is a plain publish checked on its own edge only. Its window is
// documented in docs/idp-setup.md: a group (or user) deleted between the
// request's read of it and the publish (well under a millisecond apart)
// can be followed by one membership event naming it.
func (s *Service) appendMembership(ctx context.Context, writes []domain.Write) ([]uint64, error) {
	events := 0
	for _, w := range writes {
		if !w.Guard {
			events++
		}
	}
	if events != 1 {
		return s.log.AppendBatch(ctx, writes)
	}
	seqs := make([]uint64, len(writes))
	for i, w := range writes {
		if !w.Guard {
			seq, err := s.log.Append(ctx, w.Subject, w.Event, w.ExpectedSeq)
			if err != nil {
				return nil, err
			}
			seqs[i] = seq
		}
	}
	return seqs, nil
}

// readEdge reads one member subject.
func (s *Service) readEdge(ctx context.Context, dirID, groupID, userID string) (edge, error) {
	if !event.ValidID(userID, event.PrefixUser) {
		return edge{userID: userID}, nil
	}
	subject := event.MemberSubject(dirID, groupID, userID)
	ev, seq, err := s.log.Last(ctx, subject)
	if err != nil {
		return edge{}, fmt.Errorf("read membership %s: %w", subject, err)
	}
	return edge{userID: userID, seq: seq, member: ev.GetType() == dsyncv1.EventType_EVENT_TYPE_GROUP_USER_ADDED}, nil
}

// memberUser returns the user state a membership event carries and the
// user subject's sequence, or nil when id is not a live user: an unknown
// user cannot join, and a deleted one left all its groups with dsync.user.deleted (as in WorkOS, no
// user_removed follows, not even when a later replace drops it).
func (s *Service) memberUser(ctx context.Context, dirID, id string) (*dsyncv1.User, uint64, error) {
	if !event.ValidID(id, event.PrefixUser) {
		return nil, 0, nil
	}
	uev, seq, err := s.log.Last(ctx, event.UserSubject(dirID, id))
	if err != nil {
		return nil, 0, fmt.Errorf("read user %s: %w", id, err)
	}
	if uev.GetUser() == nil || uev.GetType() == dsyncv1.EventType_EVENT_TYPE_USER_DELETED {
		return nil, 0, nil
	}
	return uev.GetUser(), seq, nil
}

// ErrNotFound reports whether err is a SCIM 404.
func ErrNotFound(err error) bool {
	var se *Error
	return errors.As(err, &se) && se.Status == StatusNotFound
}
