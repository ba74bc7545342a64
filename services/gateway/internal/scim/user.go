package scim

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/mail"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
)

// User is a SCIM User resource as a client sent it, after the liberal
// reading of RFC 7643 that real IdPs need: attribute names and schema URNs
// in any case, booleans as strings, the enterprise extension under its SCIM
// 1.x names, unknown attributes ignored.
type User struct {
	UserName          string
	ExternalID        string
	Name              Name
	DisplayName       string
	NickName          string
	ProfileURL        string
	Title             string
	UserType          string
	PreferredLanguage string
	Locale            string
	Timezone          string
	Active            bool
	Emails            []Email
	// Enterprise is the enterprise extension; nil when not sent.
	Enterprise *Enterprise
	// Groups are the ids in the body's groups attribute (Okta sends them).
	// They are parsed so a later version can honour them; today they are
	// ignored.
	Groups []string
	// Raw is the body as sent, minus password and the read-only attributes
	// id, meta and groups. It becomes raw_attributes.
	Raw map[string]any
}

// Name is the SCIM name complex attribute.
type Name struct {
	Formatted       string `json:"formatted,omitempty"`
	FamilyName      string `json:"familyName,omitempty"`
	GivenName       string `json:"givenName,omitempty"`
	MiddleName      string `json:"middleName,omitempty"`
	HonorificPrefix string `json:"honorificPrefix,omitempty"`
	HonorificSuffix string `json:"honorificSuffix,omitempty"`
}

func (n Name) empty() bool { return n == Name{} }

// Email is one value of the emails attribute.
type Email struct {
	Value   string `json:"value"`
	Type    string `json:"type,omitempty"`
	Primary bool   `json:"primary"`
}

// Enterprise is the enterprise User extension (RFC 7643 §4.3).
type Enterprise struct {
	EmployeeNumber string   `json:"employeeNumber,omitempty"`
	CostCenter     string   `json:"costCenter,omitempty"`
	Organization   string   `json:"organization,omitempty"`
	Division       string   `json:"division,omitempty"`
	Department     string   `json:"department,omitempty"`
	Manager        *Manager `json:"manager,omitempty"`
}

// Manager is the enterprise extension's manager reference.
type Manager struct {
	Value       string `json:"value,omitempty"`
	Ref         string `json:"$ref,omitempty"`
	DisplayName string `json:"displayName,omitempty"`
}

// readOnlyOrSecret are attributes never kept in raw_attributes: the
// password must never be stored, the others are the server's to set.
var readOnlyOrSecret = []string{"password", "id", "meta", "groups"}

// ParseUser reads a User resource from a request body. A body that is not
// one JSON object yields InvalidSyntax; a missing userName or an attribute
// of the wrong shape yields invalidValue.
func ParseUser(body []byte) (*User, error) {
	m, err := decodeObject(body)
	if err != nil {
		return nil, err
	}
	return UserFromMap(m)
}

// decodeObject decodes exactly one JSON object.
func decodeObject(body []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, InvalidSyntax("Request body is empty")
		}
		return nil, InvalidSyntax("Request body is not a valid JSON object: " + err.Error())
	}
	if m == nil {
		return nil, InvalidSyntax("Request body must be a JSON object")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, InvalidSyntax("Request body has data after the JSON object")
	}
	return m, nil
}

// UserFromMap reads a User from a decoded JSON object; see ParseUser.
func UserFromMap(body map[string]any) (*User, error) {
	core, ent := splitExtensions(body)
	u := &User{Raw: make(map[string]any, len(body))}
	for k, v := range body {
		if !isOneOf(k, readOnlyOrSecret) {
			u.Raw[k] = v
		}
	}

	var err error
	strs := []struct {
		name string
		dst  *string
	}{
		{"userName", &u.UserName}, {"externalId", &u.ExternalID}, {"displayName", &u.DisplayName},
		{"nickName", &u.NickName}, {"profileUrl", &u.ProfileURL}, {"title", &u.Title},
		{"userType", &u.UserType}, {"preferredLanguage", &u.PreferredLanguage},
		{"locale", &u.Locale}, {"timezone", &u.Timezone},
	}
	for _, s := range strs {
		if *s.dst, err = core.stringAttr(s.name); err != nil {
			return nil, err
		}
	}
	u.UserName = strings.TrimSpace(u.UserName)
	if u.UserName == "" {
		return nil, invalidValue("userName is required")
	}
	if u.Active, err = core.boolAttr("active", true); err != nil {
		return nil, err
	}
	if u.Name, err = parseName(core); err != nil {
		return nil, err
	}
	if u.Emails, err = parseEmails(core); err != nil {
		return nil, err
	}
	if u.Enterprise, err = parseEnterprise(ent); err != nil {
		return nil, err
	}
	for _, g := range core.listAttr("groups") {
		if id := refValue(g); id != "" {
			u.Groups = append(u.Groups, id)
		}
	}
	return u, nil
}

func isOneOf(k string, names []string) bool {
	for _, n := range names {
		if strings.EqualFold(k, n) {
			return true
		}
	}
	return false
}

func parseName(core object) (Name, error) {
	o, err := core.objectAttr("name")
	if err != nil || o == nil {
		return Name{}, err
	}
	var n Name
	for _, s := range []struct {
		name string
		dst  *string
	}{
		{"formatted", &n.Formatted}, {"familyName", &n.FamilyName}, {"givenName", &n.GivenName},
		{"middleName", &n.MiddleName}, {"honorificPrefix", &n.HonorificPrefix}, {"honorificSuffix", &n.HonorificSuffix},
	} {
		if *s.dst, err = o.stringAttr(s.name); err != nil {
			return Name{}, invalidValue("name.%s must be a string", s.name)
		}
	}
	return n, nil
}

func parseEmails(core object) ([]Email, error) {
	var out []Email
	for _, item := range core.listAttr("emails") {
		var e Email
		switch t := item.(type) {
		case string: // a bare address, as some templates send
			e.Value = t
		case map[string]any:
			o := object(t)
			var err error
			if e.Value, err = o.stringAttr("value"); err != nil {
				return nil, invalidValue("emails.value must be a string")
			}
			if e.Type, err = o.stringAttr("type"); err != nil {
				return nil, invalidValue("emails.type must be a string")
			}
			if e.Primary, err = o.boolAttr("primary", false); err != nil {
				return nil, invalidValue("emails.primary must be a boolean")
			}
		default:
			return nil, invalidValue("emails must be a list of objects")
		}
		e.Value = strings.TrimSpace(e.Value)
		if e.Value != "" {
			out = append(out, e)
		}
	}
	return out, nil
}

func parseEnterprise(ent object) (*Enterprise, error) {
	if len(ent) == 0 {
		return nil, nil
	}
	e := &Enterprise{}
	var err error
	for _, s := range []struct {
		name string
		dst  *string
	}{
		{"employeeNumber", &e.EmployeeNumber}, {"costCenter", &e.CostCenter}, {"organization", &e.Organization},
		{"division", &e.Division}, {"department", &e.Department},
	} {
		if *s.dst, err = ent.stringAttr(s.name); err != nil {
			return nil, err
		}
	}
	if v, ok := ent.get("manager"); ok && v != nil {
		m := &Manager{}
		switch t := v.(type) {
		case map[string]any:
			o := object(t)
			if m.Value, err = o.stringAttr("value"); err != nil {
				return nil, invalidValue("manager.value must be a string")
			}
			if m.Ref, err = o.stringAttr("$ref"); err != nil {
				return nil, invalidValue("manager.$ref must be a string")
			}
			if m.DisplayName, err = o.stringAttr("displayName"); err != nil {
				return nil, invalidValue("manager.displayName must be a string")
			}
		default:
			// Entra sends the manager's id as a bare string.
			if m.Value, err = scalarString(v); err != nil {
				return nil, invalidValue("manager must be an object")
			}
		}
		if *m != (Manager{}) {
			e.Manager = m
		}
	}
	return e, nil
}

// refValue returns the id of a reference given as {"value": id} or a bare string.
func refValue(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case map[string]any:
		s, _ := object(t).stringAttr("value")
		return s
	}
	return ""
}

// PrimaryEmail picks the user's email: the primary one, else the first of
// type work, else the first, else userName when it is an email address.
func (u *User) PrimaryEmail() string {
	for _, e := range u.Emails {
		if e.Primary {
			return e.Value
		}
	}
	for _, e := range u.Emails {
		if strings.EqualFold(e.Type, "work") {
			return e.Value
		}
	}
	if len(u.Emails) > 0 {
		return u.Emails[0].Value
	}
	if a, err := mail.ParseAddress(u.UserName); err == nil && a.Address == u.UserName {
		return u.UserName
	}
	return ""
}

// Identity says which directory user a normalized state belongs to.
type Identity struct {
	ID             string
	DirectoryID    string
	OrganizationID string
	CreatedAt      time.Time
	UpdatedAt      time.Time
	// AttributeMapping is the directory's custom_attributes key → SCIM
	// path mapping, applied over WorkOS's predefined keys.
	AttributeMapping map[string]string
}

// Normalize returns the user's normalized state: the WorkOS standard
// attributes, the predefined custom attributes that were sent (with the
// directory's attribute mapping applied over them), and the raw attributes.
func (u *User) Normalize(id Identity) (*dsyncv1.User, error) {
	state := dsyncv1.UserState_USER_STATE_ACTIVE
	if !u.Active {
		state = dsyncv1.UserState_USER_STATE_INACTIVE
	}
	emails := make([]*dsyncv1.Email, 0, len(u.Emails))
	for _, e := range u.Emails {
		emails = append(emails, &dsyncv1.Email{Value: e.Value, Type: e.Type, Primary: e.Primary})
	}
	attrs := u.customAttributes()
	applyMapping(attrs, u.Raw, id.AttributeMapping)
	custom, err := structpb.NewStruct(attrs)
	if err != nil {
		return nil, invalidValue("attributes cannot be stored: %v", err)
	}
	raw, err := structpb.NewStruct(u.Raw)
	if err != nil {
		return nil, invalidValue("attributes cannot be stored: %v", err)
	}
	return &dsyncv1.User{
		Id:               id.ID,
		DirectoryId:      id.DirectoryID,
		OrganizationId:   id.OrganizationID,
		IdpId:            u.ExternalID,
		UserName:         u.UserName,
		Email:            u.PrimaryEmail(),
		FirstName:        u.Name.GivenName,
		LastName:         u.Name.FamilyName,
		DisplayName:      u.DisplayName,
		State:            state,
		Emails:           emails,
		JobTitle:         u.Title,
		CustomAttributes: custom,
		RawAttributes:    raw,
		CreatedAt:        timestamppb.New(id.CreatedAt),
		UpdatedAt:        timestamppb.New(id.UpdatedAt),
	}, nil
}

// customAttributes maps what was sent onto WorkOS's predefined attribute
// names (https://workos.com/docs/directory-sync/attributes). Absent values
// are left out rather than set to null.
func (u *User) customAttributes() map[string]any {
	m := map[string]any{"username": u.UserName}
	if len(u.Emails) > 0 {
		l := make([]any, 0, len(u.Emails))
		for _, e := range u.Emails {
			item := map[string]any{"value": e.Value, "primary": e.Primary}
			if e.Type != "" {
				item["type"] = e.Type
			}
			l = append(l, item)
		}
		m["emails"] = l
	}
	put := func(k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	put("job_title", u.Title)
	put("display_name", u.DisplayName)
	if e := u.Enterprise; e != nil {
		put("employee_number", e.EmployeeNumber)
		put("cost_center_name", e.CostCenter)
		put("division_name", e.Division)
		put("department_name", e.Department)
		put("organization", e.Organization)
		if e.Manager != nil {
			put("manager_id", e.Manager.Value)
			put("manager_name", e.Manager.DisplayName)
		}
	}
	return m
}
