// Package registry creates organizations and directories: the REST API's
// write use cases. It is plain Go over the event log.
package registry

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/dsync-dev/dsync/pkg/event"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
	"github.com/dsync-dev/dsync/services/gateway/internal/domain"
	"github.com/dsync-dev/dsync/services/gateway/internal/scim"
)

// DirectoryTypes are the WorkOS SCIM directory types a directory may have.
var DirectoryTypes = []string{
	"okta scim v2.0", "azure scim v2.0", "onelogin scim v2.0", "jumpcloud scim v2.0",
	"pingfederate scim v2.0", "rippling scim v2.0", "cyberark scim v2.0", "generic scim v2.0",
}

// ValidationError is a request the caller must change: 422.
type ValidationError struct{ Message string }

func (e *ValidationError) Error() string { return e.Message }

func invalid(format string, args ...any) error {
	return &ValidationError{Message: fmt.Sprintf(format, args...)}
}

// Registry creates organizations and directories. It is safe for concurrent use.
type Registry struct {
	log domain.EventLog
	ids *event.IDs
	now func() time.Time
}

// New returns a Registry appending to log; now may be nil for time.Now.
func New(log domain.EventLog, ids *event.IDs, now func() time.Time) *Registry {
	if now == nil {
		now = time.Now
	}
	return &Registry{log: log, ids: ids, now: now}
}

// Source is who asks for a change.
type Source struct {
	RequestID    string
	UserAgent    string
	TraceContext map[string]string
}

const maxNameLen = 256

func checkName(name string) (string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return "", invalid("name is required")
	case utf8.RuneCountInString(name) > maxNameLen:
		return "", invalid("name must be at most %d characters", maxNameLen)
	}
	return name, nil
}

// CreateOrganization records a new organization. Domains are lower-cased
// and must look like DNS names.
func (r *Registry) CreateOrganization(ctx context.Context, src Source, name string, domains []string) (*dsyncv1.Organization, error) {
	name, err := checkName(name)
	if err != nil {
		return nil, err
	}
	clean := make([]string, 0, len(domains))
	for _, d := range domains {
		d = strings.ToLower(strings.TrimSpace(d))
		if !validDomain(d) {
			return nil, invalid("domain %q is not a valid domain name", d)
		}
		if !slices.Contains(clean, d) {
			clean = append(clean, d)
		}
	}
	now := r.now()
	org := &dsyncv1.Organization{
		Id: r.ids.New(event.PrefixOrganization), Name: name, Domains: clean,
		CreatedAt: timestamppb.New(now), UpdatedAt: timestamppb.New(now),
	}
	ev := r.newEvent(src, now, dsyncv1.EventType_EVENT_TYPE_ORGANIZATION_CREATED, "", org.GetId())
	ev.Payload = &dsyncv1.Event_Organization{Organization: org}
	if _, err := r.log.Append(ctx, event.OrganizationSubject(org.GetId()), ev, 0); err != nil {
		return nil, fmt.Errorf("create organization: %w", err)
	}
	return org, nil
}

// validDomain accepts DNS names of letters, digits and hyphens with at
// least one dot.
func validDomain(d string) bool {
	if len(d) == 0 || len(d) > 253 || !strings.Contains(d, ".") {
		return false
	}
	for label := range strings.SplitSeq(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// ErrOrganizationNotFound means a directory names an organization that
// does not exist.
var ErrOrganizationNotFound = errors.New("organization not found")

// NewDirectory is a created directory and its SCIM bearer token, which is
// returned this once and stored only as a hash.
type NewDirectory struct {
	Directory *dsyncv1.Directory
	Token     string
}

// CreateDirectory records a new, active directory of the organization.
func (r *Registry) CreateDirectory(ctx context.Context, src Source, orgID, name, typ string) (*NewDirectory, error) {
	name, err := checkName(name)
	if err != nil {
		return nil, err
	}
	typ = strings.ToLower(strings.TrimSpace(typ))
	if !slices.Contains(DirectoryTypes, typ) {
		return nil, invalid("type must be one of: %s", strings.Join(DirectoryTypes, ", "))
	}
	if !event.ValidID(orgID, event.PrefixOrganization) {
		return nil, invalid("organization_id must be an organization id (org_…)")
	}
	orgEv, _, err := r.log.Last(ctx, event.OrganizationSubject(orgID))
	if err != nil {
		return nil, fmt.Errorf("read organization %s: %w", orgID, err)
	}
	org := orgEv.GetOrganization()
	if org == nil {
		return nil, fmt.Errorf("organization %s: %w", orgID, ErrOrganizationNotFound)
	}
	token, sum, err := newToken()
	if err != nil {
		return nil, err
	}
	now := r.now()
	dir := &dsyncv1.Directory{
		Id: r.ids.New(event.PrefixDirectory), OrganizationId: orgID, Name: name, Type: typ,
		State: dsyncv1.DirectoryState_DIRECTORY_STATE_ACTIVE, ScimTokenSha256: sum,
		OnDeactivate: dsyncv1.DeactivatePolicy_DEACTIVATE_POLICY_KEEP_INACTIVE,
		CreatedAt:    timestamppb.New(now), UpdatedAt: timestamppb.New(now),
	}
	if len(org.GetDomains()) > 0 {
		dir.Domain = org.GetDomains()[0]
	}
	ev := r.newEvent(src, now, dsyncv1.EventType_EVENT_TYPE_DIRECTORY_ACTIVATED, dir.GetId(), orgID)
	ev.Payload = &dsyncv1.Event_Directory{Directory: dir}
	if _, err := r.log.Append(ctx, event.DirectorySubject(dir.GetId()), ev, 0); err != nil {
		return nil, fmt.Errorf("create directory: %w", err)
	}
	return &NewDirectory{Directory: dir, Token: token}, nil
}

// newToken returns a bearer token of 256 random bits and its SHA-256.
func newToken() (string, []byte, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", nil, fmt.Errorf("make token: %w", err)
	}
	token := base64.RawURLEncoding.EncodeToString(b[:])
	sum := sha256.Sum256([]byte(token))
	return token, sum[:], nil
}

func (r *Registry) newEvent(src Source, now time.Time, typ dsyncv1.EventType, dirID, orgID string) *dsyncv1.Event {
	return &dsyncv1.Event{
		Id:             r.ids.New(event.PrefixEvent),
		DirectoryId:    dirID,
		OrganizationId: orgID,
		OccurredAt:     timestamppb.New(now),
		Type:           typ,
		Source:         &dsyncv1.Source{Api: "rest", RequestId: src.RequestID, UserAgent: src.UserAgent},
		TraceContext:   src.TraceContext,
	}
}

// ErrDirectoryNotFound means the directory is unknown or deleted.
var ErrDirectoryNotFound = errors.New("directory not found")

// DirectorySettings are the settings PATCH /directories/{id} may change;
// nil fields are left as they are.
type DirectorySettings struct {
	// OnDeactivate is "keep_inactive" or "delete".
	OnDeactivate *string
	// RateLimitPerSecond caps SCIM requests; 0 restores the default.
	RateLimitPerSecond *float64
	Name               *string
	// AttributeMapping replaces the directory's attribute mapping
	// (custom_attributes key → SCIM path); an empty map clears it. It
	// applies to users as they are written from then on.
	AttributeMapping *map[string]string
	// RoleMapping replaces the directory's group → role mapping (group id,
	// idp_id or name → role slug); an empty map clears it. It applies at
	// read time, to every user at once.
	RoleMapping *map[string]string
}

// MaxRoleMappings bounds a directory's role mapping.
const MaxRoleMappings = 1000

// validateRoleMapping checks group keys and role slugs: non-empty, at
// most 256 bytes.
func validateRoleMapping(m map[string]string) error {
	if len(m) > MaxRoleMappings {
		return invalid("role_mapping may have at most %d entries", MaxRoleMappings)
	}
	for k, v := range m {
		if strings.TrimSpace(k) == "" || len(k) > 256 {
			return invalid("role_mapping keys (a group's id, idp_id or name) must be 1 to 256 bytes, not %q", k)
		}
		if strings.TrimSpace(v) == "" || len(v) > 256 {
			return invalid("role_mapping[%q] must be a role slug of 1 to 256 bytes", k)
		}
	}
	return nil
}

// maxDirectoryAttempts bounds re-reads when a directory changes between
// read and append.
const maxDirectoryAttempts = 16

// PauseDirectory makes the directory answer SCIM requests with 503 (IdPs
// retry) until it is resumed: DIRECTORY_UPDATED with state INACTIVE.
// Pausing a paused directory changes nothing.
func (r *Registry) PauseDirectory(ctx context.Context, src Source, id string) (*dsyncv1.Directory, error) {
	return r.updateDirectory(ctx, src, id, func(d *dsyncv1.Directory) error {
		d.State = dsyncv1.DirectoryState_DIRECTORY_STATE_INACTIVE
		return nil
	})
}

// ResumeDirectory makes a paused directory accept SCIM requests again.
func (r *Registry) ResumeDirectory(ctx context.Context, src Source, id string) (*dsyncv1.Directory, error) {
	return r.updateDirectory(ctx, src, id, func(d *dsyncv1.Directory) error {
		d.State = dsyncv1.DirectoryState_DIRECTORY_STATE_ACTIVE
		return nil
	})
}

// UpdateDirectorySettings changes a directory's settings.
func (r *Registry) UpdateDirectorySettings(ctx context.Context, src Source, id string, set DirectorySettings) (*dsyncv1.Directory, error) {
	var policy dsyncv1.DeactivatePolicy
	if set.OnDeactivate != nil {
		switch strings.ToLower(strings.TrimSpace(*set.OnDeactivate)) {
		case "keep_inactive":
			policy = dsyncv1.DeactivatePolicy_DEACTIVATE_POLICY_KEEP_INACTIVE
		case "delete":
			policy = dsyncv1.DeactivatePolicy_DEACTIVATE_POLICY_DELETE
		default:
			return nil, invalid("on_deactivate must be keep_inactive or delete")
		}
	}
	if rl := set.RateLimitPerSecond; rl != nil && (*rl < 0 || *rl > 100000 || *rl != *rl) {
		return nil, invalid("rate_limit_per_second must be from 0 (the default) to 100000")
	}
	if set.AttributeMapping != nil {
		if err := scim.ValidateAttributeMapping(*set.AttributeMapping); err != nil {
			return nil, invalid("%s", err.Error())
		}
	}
	if set.RoleMapping != nil {
		if err := validateRoleMapping(*set.RoleMapping); err != nil {
			return nil, err
		}
	}
	var name string
	if set.Name != nil {
		var err error
		if name, err = checkName(*set.Name); err != nil {
			return nil, err
		}
	}
	return r.updateDirectory(ctx, src, id, func(d *dsyncv1.Directory) error {
		if set.OnDeactivate != nil {
			d.OnDeactivate = policy
		}
		if set.RateLimitPerSecond != nil {
			d.RateLimitPerSecond = *set.RateLimitPerSecond
		}
		if set.Name != nil {
			d.Name = name
		}
		if set.AttributeMapping != nil {
			d.AttributeMapping = maps.Clone(*set.AttributeMapping)
		}
		if set.RoleMapping != nil {
			d.RoleMapping = maps.Clone(*set.RoleMapping)
		}
		return nil
	})
}

// updateDirectory reads the directory, applies change to a copy and appends
// DIRECTORY_UPDATED when anything changed, re-reading on a concurrent change.
func (r *Registry) updateDirectory(ctx context.Context, src Source, id string, change func(*dsyncv1.Directory) error) (*dsyncv1.Directory, error) {
	if !event.ValidID(id, event.PrefixDirectory) {
		return nil, fmt.Errorf("directory %s: %w", id, ErrDirectoryNotFound)
	}
	for range maxDirectoryAttempts {
		ev, seq, err := r.log.Last(ctx, event.DirectorySubject(id))
		if err != nil {
			return nil, fmt.Errorf("read directory %s: %w", id, err)
		}
		cur := ev.GetDirectory()
		if cur == nil || ev.GetType() == dsyncv1.EventType_EVENT_TYPE_DIRECTORY_DELETED ||
			cur.GetState() == dsyncv1.DirectoryState_DIRECTORY_STATE_DELETING {
			return nil, fmt.Errorf("directory %s: %w", id, ErrDirectoryNotFound)
		}
		next := proto.Clone(cur).(*dsyncv1.Directory)
		if err := change(next); err != nil {
			return nil, err
		}
		if proto.Equal(cur, next) {
			return cur, nil
		}
		now := r.now()
		next.UpdatedAt = timestamppb.New(now)
		out := r.newEvent(src, now, dsyncv1.EventType_EVENT_TYPE_DIRECTORY_UPDATED, id, cur.GetOrganizationId())
		out.Reason = dsyncv1.Reason_REASON_ADMIN
		out.Payload = &dsyncv1.Event_Directory{Directory: next}
		_, err = r.log.Append(ctx, event.DirectorySubject(id), out, seq)
		if errors.Is(err, domain.ErrConflict) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("update directory %s: %w", id, err)
		}
		return next, nil
	}
	return nil, fmt.Errorf("update directory %s: %w", id, domain.ErrConflict)
}
