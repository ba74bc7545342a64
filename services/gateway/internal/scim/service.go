// Package scim is the SCIM 2.0 domain: reading resources as IdPs send them,
// normalizing them into directory state, rendering them back, and the use
// cases (authenticate, create, get) over the event log. It knows nothing of
// HTTP or NATS; the transport turns its *Error values into responses.
package scim

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/dsync-dev/dsync/pkg/event"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
	"github.com/dsync-dev/dsync/services/gateway/internal/domain"
)

// Service runs SCIM use cases for one gateway. It is safe for concurrent use.
type Service struct {
	log     domain.EventLog
	ids     *event.IDs
	now     func() time.Time
	baseURL string
}

// NewService returns a Service appending to log. baseURL is the absolute
// URL clients reach the gateway at (no trailing slash); resource locations
// are built from it. now may be nil for time.Now.
func NewService(log domain.EventLog, ids *event.IDs, baseURL string, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{log: log, ids: ids, now: now, baseURL: strings.TrimRight(baseURL, "/")}
}

// Call describes the request a use case runs for; it goes into the
// event's source and trace context.
type Call struct {
	Directory    *dsyncv1.Directory
	RequestID    string
	UserAgent    string
	TraceContext map[string]string
}

// Authenticate returns the directory that token opens. An invalid or
// unknown directory id, a deleted directory, and a missing or wrong token
// all yield ErrUnauthorized, so that directory ids cannot be probed; only
// a caller holding the right token learns that the directory is paused
// (503, which IdPs retry).
func (s *Service) Authenticate(ctx context.Context, directoryID, token string) (*dsyncv1.Directory, error) {
	if !event.ValidID(directoryID, event.PrefixDirectory) || token == "" {
		return nil, ErrUnauthorized
	}
	ev, _, err := s.log.Last(ctx, event.DirectorySubject(directoryID))
	if err != nil {
		return nil, fmt.Errorf("read directory %s: %w", directoryID, err)
	}
	dir := ev.GetDirectory()
	if dir == nil || ev.GetType() == dsyncv1.EventType_EVENT_TYPE_DIRECTORY_DELETED {
		return nil, ErrUnauthorized
	}
	sum := sha256.Sum256([]byte(token))
	// Constant time: the comparison must not tell an attacker how many
	// leading bytes of the hash they got right.
	if len(dir.GetScimTokenSha256()) != sha256.Size || subtle.ConstantTimeCompare(sum[:], dir.GetScimTokenSha256()) != 1 {
		return nil, ErrUnauthorized
	}
	switch dir.GetState() {
	case dsyncv1.DirectoryState_DIRECTORY_STATE_ACTIVE:
		return dir, nil
	case dsyncv1.DirectoryState_DIRECTORY_STATE_INACTIVE:
		return nil, errorf(StatusServiceUnavailable, "", "Directory %s is paused; retry later", directoryID)
	default:
		return nil, ErrUnauthorized
	}
}

// UserLocation is the absolute URL of a user resource.
func (s *Service) UserLocation(directoryID, userID string) string {
	return s.baseURL + "/scim/v2/" + directoryID + "/Users/" + userID
}

// CreateUser creates a user from a POST /Users body. The userName is
// claimed in the same atomic append as the USER_CREATED event, so two
// concurrent creates of one name (in any case) cannot both succeed; the
// loser gets 409 uniqueness and nothing of it is stored.
func (s *Service) CreateUser(ctx context.Context, call Call, body []byte) (UserResult, error) {
	in, err := ParseUser(body)
	if err != nil {
		return UserResult{}, err
	}
	dir := call.Directory
	now := s.now()
	id := s.ids.New(event.PrefixUser)
	user, err := in.Normalize(Identity{
		ID: id, DirectoryID: dir.GetId(), OrganizationID: dir.GetOrganizationId(),
		CreatedAt: now, UpdatedAt: now,
		AttributeMapping: dir.GetAttributeMapping(),
	})
	if err != nil {
		return UserResult{}, err
	}
	ev := s.newEvent(call, now, dsyncv1.EventType_EVENT_TYPE_USER_CREATED)
	ev.Payload = &dsyncv1.Event_User{User: user}
	claim := domain.Claim{Subject: event.UserNameClaimSubject(dir.GetId(), in.UserName), Owner: id}
	seq, err := s.log.AppendClaimed(ctx, claim, event.UserSubject(dir.GetId(), id), ev, 0)
	if errors.Is(err, domain.ErrUniqueness) {
		return UserResult{}, errorf(StatusConflict, TypeUniqueness, "User with userName %q already exists in this directory", in.UserName)
	}
	if err != nil {
		return UserResult{}, fmt.Errorf("create user: %w", err)
	}
	res := UserResult{User: RenderUser(user, seq, s.UserLocation(dir.GetId(), id))}
	// Okta may carry memberships in the body's groups; they follow the
	// user's creation (a group must exist before it is joined).
	res.IgnoredGroups, err = s.addUserToGroups(ctx, call, id, in.Groups)
	return res, err
}

// GetUser returns a user read straight from its subject in the event log,
// so a client sees its own writes at once. Unknown and deleted users are
// NotFound.
func (s *Service) GetUser(ctx context.Context, call Call, id string) (UserResource, error) {
	dirID := call.Directory.GetId()
	user, seq, err := s.currentUser(ctx, dirID, id)
	if err != nil {
		return UserResource{}, err
	}
	return RenderUser(user, seq, s.UserLocation(dirID, id)), nil
}

func (s *Service) newEvent(call Call, now time.Time, typ dsyncv1.EventType) *dsyncv1.Event {
	dir := call.Directory
	return &dsyncv1.Event{
		Id:             s.ids.New(event.PrefixEvent),
		DirectoryId:    dir.GetId(),
		OrganizationId: dir.GetOrganizationId(),
		OccurredAt:     timestamppb.New(now),
		Type:           typ,
		Source: &dsyncv1.Source{
			Api:       "scim",
			Provider:  DetectProvider(call.UserAgent, dir.GetType()),
			RequestId: call.RequestID,
			UserAgent: call.UserAgent,
		},
		TraceContext: call.TraceContext,
	}
}
