package scim

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dsync-dev/dsync/pkg/scim/filter"

	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
)

// UserResource is the SCIM User representation the server returns. Field
// order is the order clients see.
type UserResource struct {
	Schemas           []string `json:"schemas"`
	ID                string   `json:"id"`
	ExternalID        string   `json:"externalId,omitempty"`
	UserName          string   `json:"userName"`
	Name              *Name    `json:"name,omitempty"`
	DisplayName       string   `json:"displayName,omitempty"`
	NickName          string   `json:"nickName,omitempty"`
	ProfileURL        string   `json:"profileUrl,omitempty"`
	Title             string   `json:"title,omitempty"`
	UserType          string   `json:"userType,omitempty"`
	PreferredLanguage string   `json:"preferredLanguage,omitempty"`
	Locale            string   `json:"locale,omitempty"`
	Timezone          string   `json:"timezone,omitempty"`
	Active            bool     `json:"active"`
	Emails            []Email  `json:"emails,omitempty"`
	// Groups is nil when not rendered (writes, excludedAttributes=groups)
	// or empty.
	Groups     *[]GroupRef `json:"groups,omitempty"`
	Enterprise *Enterprise `json:"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User,omitempty"`
	Meta       Meta        `json:"meta"`
	// Extensions are the attributes of custom extension schemas (any URN
	// other than the core and enterprise ones) as the client last sent
	// them, by URN; they are rendered after meta and listed in schemas.
	Extensions map[string]map[string]any `json:"-"`
}

// MarshalJSON renders the resource with its custom extensions.
func (r UserResource) MarshalJSON() ([]byte, error) {
	type plain UserResource
	data, err := json.Marshal(plain(r))
	if err != nil || len(r.Extensions) == 0 {
		return data, err
	}
	var b bytes.Buffer
	b.Write(data[:len(data)-1]) // without the closing brace
	for _, urn := range slices.Sorted(maps.Keys(r.Extensions)) {
		k, err := json.Marshal(urn)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(r.Extensions[urn])
		if err != nil {
			return nil, err
		}
		b.WriteByte(',')
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// customExtensions collects the custom extension attributes of a raw
// body: objects under a URN key, and flattened "urn:…:attr" keys folded
// into their URN's object. Core and enterprise URNs are not custom.
func customExtensions(raw map[string]any) map[string]map[string]any {
	var out map[string]map[string]any
	put := func(urn, attr string, v any) {
		if out == nil {
			out = map[string]map[string]any{}
		}
		if out[urn] == nil {
			out[urn] = map[string]any{}
		}
		out[urn][attr] = v
	}
	for _, k := range slices.Sorted(maps.Keys(raw)) {
		if len(k) <= 4 || !strings.EqualFold(k[:4], "urn:") {
			continue
		}
		lk := strings.ToLower(k)
		if filter.IsCoreURN(k) || slices.Contains(enterpriseKeys, lk) || hasAnyPrefix(lk, enterpriseKeys, ":") {
			continue
		}
		if m, ok := raw[k].(map[string]any); ok {
			for a, v := range m {
				put(k, a, v)
			}
			continue
		}
		if i := strings.LastIndexByte(k, ':'); i > 4 && i < len(k)-1 {
			put(k[:i], k[i+1:], raw[k])
		}
	}
	return out
}

// GroupRef is one value of a user's read-only groups attribute.
type GroupRef struct {
	Value   string `json:"value"`
	Ref     string `json:"$ref,omitempty"`
	Display string `json:"display,omitempty"`
	Type    string `json:"type,omitempty"`
}

// WithGroups returns r with the groups the user is a direct member of;
// groupLocation makes each group's $ref. A user in no group has no groups
// attribute (RFC 7643 §2.5: unassigned attributes may be omitted), so a
// GET renders a new user exactly as its POST did.
func (r UserResource) WithGroups(groups []*dsyncv1.Group, groupLocation func(id string) string) UserResource {
	if len(groups) == 0 {
		r.Groups = nil
		return r
	}
	refs := make([]GroupRef, 0, len(groups))
	for _, g := range groups {
		refs = append(refs, GroupRef{Value: g.GetId(), Ref: groupLocation(g.GetId()), Display: g.GetName(), Type: "direct"})
	}
	r.Groups = &refs
	return r
}

// Meta is the SCIM meta attribute.
type Meta struct {
	ResourceType string `json:"resourceType"`
	Created      string `json:"created"`
	LastModified string `json:"lastModified"`
	Version      string `json:"version,omitempty"`
	Location     string `json:"location"`
}

// Version renders a stream sequence as a weak ETag, the resource's
// meta.version: the sequence changes exactly when the resource does.
func Version(seq uint64) string {
	return `W/"` + strconv.FormatUint(seq, 10) + `"`
}

// FormatTime renders t as RFC 3339 in UTC with milliseconds.
func FormatTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

// RenderUser renders a user's state as a SCIM User. Attributes that the
// normalized state does not keep (middleName, locale, the enterprise
// extension, …) come from its raw attributes, read as the client sent them.
func RenderUser(u *dsyncv1.User, seq uint64, location string) UserResource {
	var extra User
	if raw := u.GetRawAttributes(); raw != nil {
		// The raw attributes were accepted once, so they parse; should they
		// not (an older parser's output), the normalized fields still render.
		if p, err := UserFromMap(raw.AsMap()); err == nil {
			extra = *p
		}
	}
	name := extra.Name
	name.GivenName, name.FamilyName = u.GetFirstName(), u.GetLastName()
	r := UserResource{
		Schemas:           []string{SchemaUser},
		ID:                u.GetId(),
		ExternalID:        u.GetIdpId(),
		UserName:          u.GetUserName(),
		DisplayName:       u.GetDisplayName(),
		NickName:          extra.NickName,
		ProfileURL:        extra.ProfileURL,
		Title:             u.GetJobTitle(),
		UserType:          extra.UserType,
		PreferredLanguage: extra.PreferredLanguage,
		Locale:            extra.Locale,
		Timezone:          extra.Timezone,
		Active:            u.GetState() != dsyncv1.UserState_USER_STATE_INACTIVE,
		Enterprise:        extra.Enterprise,
		Meta: Meta{
			ResourceType: "User",
			Created:      FormatTime(u.GetCreatedAt().AsTime()),
			LastModified: FormatTime(u.GetUpdatedAt().AsTime()),
			Location:     location,
		},
	}
	// A list rendered from the read model has no subject sequence (0):
	// it then carries no version rather than a wrong one.
	if seq > 0 {
		r.Meta.Version = Version(seq)
	}
	if !name.empty() {
		r.Name = &name
	}
	for _, e := range u.GetEmails() {
		r.Emails = append(r.Emails, Email{Value: e.GetValue(), Type: e.GetType(), Primary: e.GetPrimary()})
	}
	if r.Enterprise != nil {
		r.Schemas = append(r.Schemas, SchemaEnterprise)
	}
	if raw := u.GetRawAttributes(); raw != nil {
		r.Extensions = customExtensions(raw.AsMap())
		for _, urn := range slices.Sorted(maps.Keys(r.Extensions)) {
			r.Schemas = append(r.Schemas, urn)
		}
	}
	return r
}

// ErrorResponse is the SCIM Error message (RFC 7644 §3.12); status is a
// string, as the RFC's examples and Okta's and Entra's validators expect.
type ErrorResponse struct {
	Schemas  []string `json:"schemas"`
	Status   string   `json:"status"`
	ScimType string   `json:"scimType,omitempty"`
	Detail   string   `json:"detail"`
}

// RenderError renders e as the SCIM Error message.
func RenderError(e *Error) ErrorResponse {
	return ErrorResponse{
		Schemas:  []string{SchemaError},
		Status:   strconv.Itoa(e.Status),
		ScimType: e.ScimType,
		Detail:   e.Detail,
	}
}
