package scim

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/dsync-dev/dsync/pkg/event"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
	"github.com/dsync-dev/dsync/services/gateway/internal/domain"
	"github.com/dsync-dev/dsync/services/gateway/internal/scim/patch"
)

// UserResult is the outcome of a user write: the resource to answer with,
// and the group ids of the body's groups attribute that matched no group
// (ignored; the transport logs them).
type UserResult struct {
	User          UserResource
	IgnoredGroups []string
	// Deleted is set when the write removed the user (active:false under
	// the directory's delete policy).
	Deleted bool
}

// currentUser reads a live user and its subject sequence; unknown and
// deleted users are NotFound.
func (s *Service) currentUser(ctx context.Context, dirID, id string) (*dsyncv1.User, uint64, error) {
	if !event.ValidID(id, event.PrefixUser) {
		return nil, 0, NotFound(id)
	}
	ev, seq, err := s.log.Last(ctx, event.UserSubject(dirID, id))
	if err != nil {
		return nil, 0, fmt.Errorf("read user %s: %w", id, err)
	}
	u := ev.GetUser()
	if u == nil || ev.GetType() == dsyncv1.EventType_EVENT_TYPE_USER_DELETED {
		return nil, 0, NotFound(id)
	}
	return u, seq, nil
}

// ReplaceUser replaces a user with a PUT body (RFC 7644 §3.5.1): read-only
// and unknown attributes are ignored, a missing userName is 400. The body's
// groups are honoured as membership additions (Okta). An identical PUT
// appends nothing.
func (s *Service) ReplaceUser(ctx context.Context, call Call, id string, pre Precondition, body []byte) (UserResult, error) {
	in, err := ParseUser(body)
	if err != nil {
		return UserResult{}, err
	}
	res, err := withRetry(ctx, pre, func() (UserResult, error) {
		cur, seq, err := s.currentUser(ctx, call.Directory.GetId(), id)
		if err != nil {
			return UserResult{}, err
		}
		if err := pre.check(seq); err != nil {
			return UserResult{}, err
		}
		return s.writeUser(ctx, call, cur, seq, in)
	})
	if err != nil || res.Deleted {
		return res, err
	}
	res.IgnoredGroups, err = s.addUserToGroups(ctx, call, id, in.Groups)
	return res, err
}

// PatchUser applies a PatchOp body to a user (RFC 7644 §3.5.2): all
// operations apply in order to a copy, and the result is one event with
// every changed attribute and the previous state, or nothing when the
// result equals the current state.
func (s *Service) PatchUser(ctx context.Context, call Call, id string, pre Precondition, body []byte) (UserResult, error) {
	ops, err := parsePatch(body)
	if err != nil {
		return UserResult{}, err
	}
	return withRetry(ctx, pre, func() (UserResult, error) {
		cur, seq, err := s.currentUser(ctx, call.Directory.GetId(), id)
		if err != nil {
			return UserResult{}, err
		}
		if err := pre.check(seq); err != nil {
			return UserResult{}, err
		}
		next, err := PatchUserState(cur, ops)
		if err != nil {
			return UserResult{}, err
		}
		return s.writeUser(ctx, call, cur, seq, next)
	})
}

// parsePatch reads a PatchOp body, mapping the engine's errors to SCIM errors.
func parsePatch(body []byte) ([]patch.Operation, error) {
	if _, err := decodeObject(body); err != nil {
		return nil, err
	}
	ops, err := patch.ParseRequest(body)
	if err != nil {
		return nil, fromPatchError(err)
	}
	return ops, nil
}

// fromPatchError turns a PATCH engine error into a 400 with its scimType.
func fromPatchError(err error) error {
	var pe *patch.Error
	if errors.As(err, &pe) {
		st := pe.ScimType
		if st == "" {
			st = TypeInvalidValue
		}
		return errorf(StatusBadRequest, st, "%s", pe.Detail)
	}
	var se *Error
	if errors.As(err, &se) {
		return se
	}
	return errorf(StatusBadRequest, TypeInvalidValue, "%s", err.Error())
}

// PatchUserState applies PATCH operations to a user's SCIM representation
// (its raw attributes with its id) and reads the result back as a User. It
// is pure: the caller decides what the change means.
func PatchUserState(cur *dsyncv1.User, ops []patch.Operation) (*User, error) {
	base := map[string]any{}
	if raw := cur.GetRawAttributes(); raw != nil {
		base = raw.AsMap()
	}
	base["id"] = cur.GetId()
	out, err := patch.Apply(base, sanitizeOps(ops, cur.GetId()), userPatchSchema)
	if err != nil {
		return nil, fromPatchError(err)
	}
	return UserFromMap(out)
}

// sanitizeOps drops from pathless values the attributes that IdPs echo but
// never mean to change: the resource's own id (Okta's group rename sends
// it), meta and schemas.
func sanitizeOps(ops []patch.Operation, id string) []patch.Operation {
	out := make([]patch.Operation, 0, len(ops))
	for _, op := range ops {
		if m, ok := op.Value.(map[string]any); ok && op.Path == "" {
			clean := make(map[string]any, len(m))
			for k, v := range m {
				lk := strings.ToLower(k)
				if lk == "meta" || lk == "schemas" || (lk == "id" && v == id) {
					continue
				}
				clean[k] = v
			}
			op.Value = clean
		}
		out = append(out, op)
	}
	return out
}

// writeUser turns a user's next SCIM state into the event that describes
// the change, and appends it (with a userName claim move when the name
// changed, case-insensitively). Identical states append nothing. A
// deactivation under the DELETE policy deletes the user.
func (s *Service) writeUser(ctx context.Context, call Call, cur *dsyncv1.User, seq uint64, in *User) (UserResult, error) {
	dir := call.Directory
	now := s.now()
	next, err := in.Normalize(Identity{
		ID: cur.GetId(), DirectoryID: dir.GetId(), OrganizationID: dir.GetOrganizationId(),
		CreatedAt: cur.GetCreatedAt().AsTime(), UpdatedAt: now,
		AttributeMapping: dir.GetAttributeMapping(),
	})
	if err != nil {
		return UserResult{}, err
	}
	next.RoleSlugs = cur.GetRoleSlugs()
	changed := ChangedUserAttributes(cur, next)
	loc := s.UserLocation(dir.GetId(), cur.GetId())
	if len(changed) == 0 {
		return UserResult{User: RenderUser(cur, seq, loc)}, nil
	}
	deactivated := cur.GetState() != dsyncv1.UserState_USER_STATE_INACTIVE && next.GetState() == dsyncv1.UserState_USER_STATE_INACTIVE
	var claims []domain.ClaimChange
	ev := s.newEvent(call, now, dsyncv1.EventType_EVENT_TYPE_USER_UPDATED)
	if deactivated && dir.GetOnDeactivate() == dsyncv1.DeactivatePolicy_DEACTIVATE_POLICY_DELETE {
		ev.Type = dsyncv1.EventType_EVENT_TYPE_USER_DELETED
		ev.Reason = dsyncv1.Reason_REASON_IDP_DEACTIVATED
		claims = append(claims, domain.ClaimChange{Claim: userNameClaim(dir.GetId(), cur), Release: true})
	} else {
		if deactivated {
			ev.Reason = dsyncv1.Reason_REASON_IDP_DEACTIVATED
		}
		ev.ChangedAttributes = changed
		ev.Previous = &dsyncv1.Event_PreviousUser{PreviousUser: cur}
		if !strings.EqualFold(cur.GetUserName(), next.GetUserName()) {
			claims = append(claims,
				domain.ClaimChange{Claim: userNameClaim(dir.GetId(), next)},
				domain.ClaimChange{Claim: userNameClaim(dir.GetId(), cur), Release: true})
		}
	}
	ev.Payload = &dsyncv1.Event_User{User: next}
	newSeq, err := s.log.AppendWithClaims(ctx, claims, event.UserSubject(dir.GetId(), cur.GetId()), ev, seq)
	if errors.Is(err, domain.ErrUniqueness) {
		return UserResult{}, errorf(StatusConflict, TypeUniqueness, "User with userName %q already exists in this directory", next.GetUserName())
	}
	if err != nil {
		return UserResult{}, fmt.Errorf("update user %s: %w", cur.GetId(), err)
	}
	return UserResult{User: RenderUser(next, newSeq, loc), Deleted: ev.GetType() == dsyncv1.EventType_EVENT_TYPE_USER_DELETED}, nil
}

func userNameClaim(dirID string, u *dsyncv1.User) domain.Claim {
	return domain.Claim{Subject: event.UserNameClaimSubject(dirID, u.GetUserName()), Owner: u.GetId()}
}

// ChangedUserAttributes names the WorkOS directory_user attributes that
// differ between two states of a user; updated_at is not compared. Empty
// means the write is a no-op.
func ChangedUserAttributes(a, b *dsyncv1.User) []string {
	var out []string
	add := func(name string, differ bool) {
		if differ {
			out = append(out, name)
		}
	}
	add("idp_id", a.GetIdpId() != b.GetIdpId())
	add("username", a.GetUserName() != b.GetUserName())
	add("email", a.GetEmail() != b.GetEmail())
	add("first_name", a.GetFirstName() != b.GetFirstName())
	add("last_name", a.GetLastName() != b.GetLastName())
	add("state", a.GetState() != b.GetState())
	add("job_title", a.GetJobTitle() != b.GetJobTitle())
	add("emails", !equalEmails(a.GetEmails(), b.GetEmails()))
	add("custom_attributes", !proto.Equal(a.GetCustomAttributes(), b.GetCustomAttributes()))
	add("raw_attributes", !proto.Equal(a.GetRawAttributes(), b.GetRawAttributes()))
	return out
}

func equalEmails(a, b []*dsyncv1.Email) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !proto.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// DeleteUser deletes a user (USER_DELETED, reason IDP_DELETED) and releases
// its userName. Later reads are NotFound.
func (s *Service) DeleteUser(ctx context.Context, call Call, id string, pre Precondition) error {
	_, err := withRetry(ctx, pre, func() (struct{}, error) {
		dir := call.Directory
		cur, seq, err := s.currentUser(ctx, dir.GetId(), id)
		if err != nil {
			return struct{}{}, err
		}
		if err := pre.check(seq); err != nil {
			return struct{}{}, err
		}
		now := s.now()
		gone := proto.CloneOf(cur)
		gone.UpdatedAt = timestamppb.New(now)
		ev := s.newEvent(call, now, dsyncv1.EventType_EVENT_TYPE_USER_DELETED)
		ev.Reason = dsyncv1.Reason_REASON_IDP_DELETED
		ev.Payload = &dsyncv1.Event_User{User: gone}
		claims := []domain.ClaimChange{{Claim: userNameClaim(dir.GetId(), cur), Release: true}}
		if _, err := s.log.AppendWithClaims(ctx, claims, event.UserSubject(dir.GetId(), id), ev, seq); err != nil {
			return struct{}{}, fmt.Errorf("delete user %s: %w", id, err)
		}
		return struct{}{}, nil
	})
	return err
}

// addUserToGroups adds the user to each group named in a User body's
// groups attribute, all in one atomic append guarded by each group's
// subject (re-read and re-applied on a concurrent change, so a group
// deleted meanwhile is ignored); ids that match no live group are
// returned, not failed.
func (s *Service) addUserToGroups(ctx context.Context, call Call, userID string, groupIDs []string) ([]string, error) {
	if len(groupIDs) == 0 {
		return nil, nil
	}
	return withRetry(ctx, "", func() ([]string, error) {
		var ignored []string
		var writes []domain.Write
		for _, gid := range dedupe(groupIDs) {
			g, gseq, err := s.currentGroup(ctx, call.Directory.GetId(), gid)
			if ErrNotFound(err) {
				ignored = append(ignored, gid)
				continue
			}
			if err != nil {
				return nil, err
			}
			plan, err := s.planMembers(ctx, call, g, []patch.MemberChange{{Kind: "add", IDs: []string{userID}}}, false)
			if err != nil {
				return nil, err
			}
			if len(plan.writes) > 0 {
				// The group must still be alive when the edge is stored.
				writes = append(writes, domain.Write{Subject: event.GroupSubject(call.Directory.GetId(), gid), ExpectedSeq: gseq, Guard: true})
			}
			writes = append(writes, plan.writes...)
			ignored = append(ignored, plan.ignored...)
		}
		if _, err := s.appendMembership(ctx, writes); err != nil {
			return nil, fmt.Errorf("add user %s to groups: %w", userID, err)
		}
		return ignored, nil
	})
}
