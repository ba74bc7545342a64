package workos

import (
	"google.golang.org/protobuf/types/known/structpb"

	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
)

// Organization is WorkOS's organization object.
type Organization struct {
	Object    string               `json:"object"`
	ID        string               `json:"id"`
	Name      string               `json:"name"`
	Domains   []OrganizationDomain `json:"domains"`
	CreatedAt string               `json:"created_at"`
	UpdatedAt string               `json:"updated_at"`
}

// OrganizationDomain is one entry of Organization.Domains.
type OrganizationDomain struct {
	Object string `json:"object"`
	Domain string `json:"domain"`
}

// NewOrganization renders o.
func NewOrganization(o *dsyncv1.Organization) Organization {
	domains := make([]OrganizationDomain, 0, len(o.GetDomains()))
	for _, d := range o.GetDomains() {
		domains = append(domains, OrganizationDomain{Object: "organization_domain", Domain: d})
	}
	return Organization{
		Object:    "organization",
		ID:        o.GetId(),
		Name:      o.GetName(),
		Domains:   domains,
		CreatedAt: FormatTime(o.GetCreatedAt().AsTime()),
		UpdatedAt: FormatTime(o.GetUpdatedAt().AsTime()),
	}
}

// Directory is WorkOS's directory object.
type Directory struct {
	Object         string  `json:"object"`
	ID             string  `json:"id"`
	OrganizationID string  `json:"organization_id"`
	ExternalKey    string  `json:"external_key"`
	Name           string  `json:"name"`
	Domain         *string `json:"domain"`
	Type           string  `json:"type"`
	State          string  `json:"state"`
	CreatedAt      string  `json:"created_at"`
	UpdatedAt      string  `json:"updated_at"`
}

// DirectoryState renders a state in WorkOS's wire vocabulary ("linked",
// "unlinked", "deleting"), which its SDKs translate to active/inactive.
func DirectoryState(s dsyncv1.DirectoryState) string {
	switch s {
	case dsyncv1.DirectoryState_DIRECTORY_STATE_ACTIVE:
		return "linked"
	case dsyncv1.DirectoryState_DIRECTORY_STATE_INACTIVE:
		return "unlinked"
	case dsyncv1.DirectoryState_DIRECTORY_STATE_DELETING:
		return "deleting"
	default:
		return "validating"
	}
}

// NewDirectory renders d.
func NewDirectory(d *dsyncv1.Directory) Directory {
	return Directory{
		Object:         "directory",
		ID:             d.GetId(),
		OrganizationID: d.GetOrganizationId(),
		// WorkOS's external_key is an opaque key of the connection; the
		// directory id serves the same purpose here.
		ExternalKey: d.GetId(),
		Name:        d.GetName(),
		Domain:      nullable(d.GetDomain()),
		Type:        d.GetType(),
		State:       DirectoryState(d.GetState()),
		CreatedAt:   FormatTime(d.GetCreatedAt().AsTime()),
		UpdatedAt:   FormatTime(d.GetUpdatedAt().AsTime()),
	}
}

// Email is one of a directory user's legacy emails.
type Email struct {
	Primary bool   `json:"primary"`
	Type    string `json:"type,omitempty"`
	Value   string `json:"value"`
}

// Role is a mapped role slug.
type Role struct {
	Slug string `json:"slug"`
}

// DirectoryUser is WorkOS's directory_user object. Groups is set only by the
// REST API (always as an array there); events leave it out, as WorkOS does.
type DirectoryUser struct {
	Object           string            `json:"object"`
	ID               string            `json:"id"`
	DirectoryID      string            `json:"directory_id"`
	OrganizationID   string            `json:"organization_id"`
	IdpID            string            `json:"idp_id"`
	Email            *string           `json:"email"`
	FirstName        *string           `json:"first_name"`
	LastName         *string           `json:"last_name"`
	Emails           []Email           `json:"emails"`
	Username         *string           `json:"username"`
	JobTitle         *string           `json:"job_title"`
	State            string            `json:"state"`
	CustomAttributes map[string]any    `json:"custom_attributes"`
	RawAttributes    map[string]any    `json:"raw_attributes"`
	Role             *Role             `json:"role,omitempty"`
	Roles            []Role            `json:"roles,omitempty"`
	Groups           *[]DirectoryGroup `json:"groups,omitempty"`
	CreatedAt        string            `json:"created_at"`
	UpdatedAt        string            `json:"updated_at"`
}

// UserState renders a user state.
func UserState(s dsyncv1.UserState) string {
	if s == dsyncv1.UserState_USER_STATE_INACTIVE {
		return "inactive"
	}
	return "active"
}

// NewDirectoryUser renders u without groups.
func NewDirectoryUser(u *dsyncv1.User) DirectoryUser {
	emails := make([]Email, 0, len(u.GetEmails()))
	for _, e := range u.GetEmails() {
		emails = append(emails, Email{Primary: e.GetPrimary(), Type: e.GetType(), Value: e.GetValue()})
	}
	// role and roles appear only when roles are mapped, as in WorkOS: the
	// first mapped role is "role", all of them "roles".
	var (
		role  *Role
		roles []Role
	)
	for _, slug := range u.GetRoleSlugs() {
		roles = append(roles, Role{Slug: slug})
	}
	if len(roles) > 0 {
		role = &roles[0]
	}
	return DirectoryUser{
		Role:             role,
		Roles:            roles,
		Object:           "directory_user",
		ID:               u.GetId(),
		DirectoryID:      u.GetDirectoryId(),
		OrganizationID:   u.GetOrganizationId(),
		IdpID:            u.GetIdpId(),
		Email:            nullable(u.GetEmail()),
		FirstName:        nullable(u.GetFirstName()),
		LastName:         nullable(u.GetLastName()),
		Emails:           emails,
		Username:         nullable(u.GetUserName()),
		JobTitle:         nullable(u.GetJobTitle()),
		State:            UserState(u.GetState()),
		CustomAttributes: structMap(u.GetCustomAttributes()),
		RawAttributes:    structMap(u.GetRawAttributes()),
		CreatedAt:        FormatTime(u.GetCreatedAt().AsTime()),
		UpdatedAt:        FormatTime(u.GetUpdatedAt().AsTime()),
	}
}

// WithGroups returns u with its groups set; nil becomes an empty array,
// because WorkOS's SDKs map over the field.
func (u DirectoryUser) WithGroups(groups []DirectoryGroup) DirectoryUser {
	if groups == nil {
		groups = []DirectoryGroup{}
	}
	u.Groups = &groups
	return u
}

// DirectoryGroup is WorkOS's directory_group object, plus member_count when
// the caller knows it.
type DirectoryGroup struct {
	Object         string         `json:"object"`
	ID             string         `json:"id"`
	IdpID          string         `json:"idp_id"`
	DirectoryID    string         `json:"directory_id"`
	OrganizationID string         `json:"organization_id"`
	Name           string         `json:"name"`
	RawAttributes  map[string]any `json:"raw_attributes"`
	MemberCount    *int64         `json:"member_count,omitempty"`
	CreatedAt      string         `json:"created_at"`
	UpdatedAt      string         `json:"updated_at"`
}

// NewDirectoryGroup renders g.
func NewDirectoryGroup(g *dsyncv1.Group) DirectoryGroup {
	return DirectoryGroup{
		Object:         "directory_group",
		ID:             g.GetId(),
		IdpID:          g.GetIdpId(),
		DirectoryID:    g.GetDirectoryId(),
		OrganizationID: g.GetOrganizationId(),
		Name:           g.GetName(),
		RawAttributes:  structMap(g.GetRawAttributes()),
		CreatedAt:      FormatTime(g.GetCreatedAt().AsTime()),
		UpdatedAt:      FormatTime(g.GetUpdatedAt().AsTime()),
	}
}

// structMap returns s as a map, never nil: WorkOS sends {} for no attributes.
func structMap(s *structpb.Struct) map[string]any {
	if s == nil {
		return map[string]any{}
	}
	return s.AsMap()
}
