package scim

import (
	"strconv"
	"time"

	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
)

// UserResource is the SCIM User representation the server returns. Field
// order is the order clients see.
type UserResource struct {
	Schemas           []string    `json:"schemas"`
	ID                string      `json:"id"`
	ExternalID        string      `json:"externalId,omitempty"`
	UserName          string      `json:"userName"`
	Name              *Name       `json:"name,omitempty"`
	DisplayName       string      `json:"displayName,omitempty"`
	NickName          string      `json:"nickName,omitempty"`
	ProfileURL        string      `json:"profileUrl,omitempty"`
	Title             string      `json:"title,omitempty"`
	UserType          string      `json:"userType,omitempty"`
	PreferredLanguage string      `json:"preferredLanguage,omitempty"`
	Locale            string      `json:"locale,omitempty"`
	Timezone          string      `json:"timezone,omitempty"`
	Active            bool        `json:"active"`
	Emails            []Email     `json:"emails,omitempty"`
	Enterprise        *Enterprise `json:"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User,omitempty"`
	Meta              Meta        `json:"meta"`
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
