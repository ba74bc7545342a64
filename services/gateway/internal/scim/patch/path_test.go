package patch

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParsePath(t *testing.T) {
	const ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	tests := []struct {
		in                  string
		urn, attr, flt, sub string
	}{
		{"userName", "", "userName", "", ""},
		{"  active ", "", "active", "", ""},
		{"name.familyName", "", "name", "", "familyName"},
		{"emails", "", "emails", "", ""},
		{`emails[type eq "work"]`, "", "emails", `type eq "work"`, ""},
		{`emails[type eq "work"].value`, "", "emails", `type eq "work"`, "value"},
		{`emails[type eq "work" and primary eq true].display`, "", "emails", `type eq "work" and primary eq true`, "display"},
		{`addresses[type eq "work"].streetAddress`, "", "addresses", `type eq "work"`, "streetAddress"},
		{`members[value eq "2819c223-7f76-453a-919d-413861904646"]`, "", "members", `value eq "2819c223-7f76-453a-919d-413861904646"`, ""},
		{`members[value eq "a]b"]`, "", "members", `value eq "a]b"`, ""},
		{`members[value eq "a\"]b"]`, "", "members", `value eq "a\"]b"`, ""},
		{`manager[value eq "manager-id"]`, "", "manager", `value eq "manager-id"`, ""},
		{ent + ":manager", ent, "manager", "", ""},
		{ent + ":manager.value", ent, "manager", "", "value"},
		{ent + ":employeeNumber", ent, "employeeNumber", "", ""},
		{ent, ent, "", "", ""},
		{"urn:ietf:params:scim:schemas:core:2.0:User:name.givenName", "urn:ietf:params:scim:schemas:core:2.0:User", "name", "", "givenName"},
		{`urn:ietf:params:scim:schemas:core:2.0:User:emails[type eq "work"].value`, "urn:ietf:params:scim:schemas:core:2.0:User", "emails", `type eq "work"`, "value"},
		{"members.$ref", "", "members", "", "$ref"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			p, err := ParsePath(tt.in)
			require.NoError(t, err)
			require.Equal(t, tt.urn, p.URN)
			require.Equal(t, tt.attr, p.Attr)
			require.Equal(t, tt.sub, p.Sub)
			if tt.flt == "" {
				require.Nil(t, p.Filter)
			} else {
				require.NotNil(t, p.Filter)
				require.Equal(t, tt.flt, p.Filter.String())
			}
			again, err := ParsePath(p.String())
			require.NoError(t, err)
			require.Equal(t, p.String(), again.String())
		})
	}
}

func TestParsePathErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "path is empty"},
		{"   ", "path is empty"},
		{"1abc", "not a valid path"},
		{"name.", "not a valid path"},
		{"name.given.x", "not a valid path"},
		{"a b", "not a valid path"},
		{"emails[", `"[" is not closed`},
		{`emails[type eq "work"`, `"[" is not closed`},
		{`emails[type eq]`, "expected a value"},
		{`emails[]`, "filter is empty"},
		{`emails[type eq "work"]value`, `only ".subAttribute" may follow "]"`},
		{`emails[type eq "work"].`, `only ".subAttribute" may follow "]"`},
		{`name.givenName[type eq "x"]`, "a value filter must follow an attribute name"},
		{`[type eq "x"]`, "a value filter must follow an attribute name"},
		{"foo:bar", "not a valid path"},
		{"urn:", "not a valid path"},
		{strings.Repeat("a", 5000), "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := ParsePath(tt.in)
			var pe *Error
			require.True(t, errors.As(err, &pe), "%v", err)
			require.Equal(t, ScimInvalidPath, pe.ScimType)
			require.Contains(t, pe.Detail, tt.want)
		})
	}
}
