package scim_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dsync-dev/dsync/services/gateway/internal/scim"
	"github.com/dsync-dev/dsync/services/gateway/internal/scim/patch"
)

const mappedUser = `{
  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:scim:schemas:extension:enterprise:1.0", "urn:example:scim:acme:2.0:User"],
  "userName": "ann@acme.test",
  "Name": {"givenName": "Ann", "familyName": "Lee"},
  "emails": [{"value": "home@acme.test", "type": "home"}, {"value": "ann@acme.test", "type": "work", "primary": "True"}],
  "urn:scim:schemas:extension:enterprise:1.0": {"department": "R&D", "manager": {"value": "m1"}},
  "urn:example:scim:acme:2.0:User": {"costCode": "CC-7", "badge": 42},
  "urn:example:scim:acme:2.0:User:floor": "3"
}`

func TestResolve(t *testing.T) {
	var body map[string]any
	require.NoError(t, json.Unmarshal([]byte(mappedUser), &body))
	tests := []struct {
		path string
		want any // nil: absent
	}{
		{"userName", "ann@acme.test"},
		{"name.givenName", "Ann"},
		{"urn:ietf:params:scim:schemas:core:2.0:User:name.familyName", "Lee"},
		{`emails[type eq "home"].value`, "home@acme.test"},
		{"emails.value", "ann@acme.test"},
		{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "R&D"},
		{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value", "m1"},
		{"urn:example:scim:acme:2.0:User:costCode", "CC-7"},
		{"urn:example:scim:acme:2.0:User:badge", float64(42)},
		{"urn:example:scim:acme:2.0:User:floor", "3"},
		{"urn:example:scim:acme:2.0:User:missing", nil},
		{`emails[type eq "other"].value`, nil},
		{"title", nil},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			p, err := patch.ParsePath(tt.path)
			require.NoError(t, err)
			got, ok := scim.Resolve(body, p)
			require.Equal(t, tt.want != nil, ok, "%v", got)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestNormalizeAppliesAttributeMapping(t *testing.T) {
	u, err := scim.ParseUser([]byte(mappedUser))
	require.NoError(t, err)
	now := time.Unix(1700000000, 0)
	got, err := u.Normalize(scim.Identity{ID: "directory_user_x", CreatedAt: now, UpdatedAt: now, AttributeMapping: map[string]string{
		"cost_code":       "urn:example:scim:acme:2.0:User:costCode",
		"department_name": "urn:example:scim:acme:2.0:User:floor", // overrides the predefined default
		"home_email":      `emails[type eq "home"].value`,
		"job_title":       "title", // absent in the body: the key is left out
	}})
	require.NoError(t, err)
	custom := got.GetCustomAttributes().AsMap()
	require.Equal(t, "CC-7", custom["cost_code"])
	require.Equal(t, "3", custom["department_name"])
	require.Equal(t, "home@acme.test", custom["home_email"])
	require.NotContains(t, custom, "job_title")
	require.Equal(t, "m1", custom["manager_id"], "predefined keys stay mapped by default")
}

func TestValidateAttributeMapping(t *testing.T) {
	tests := []struct {
		name    string
		m       map[string]string
		wantErr bool
	}{
		{"valid", map[string]string{"dept": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "work": `emails[type eq "work"].value`}, false},
		{"empty key", map[string]string{"": "title"}, true},
		{"bad path", map[string]string{"x": "emails[type eq"}, true},
		{"empty path", map[string]string{"x": ""}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := scim.ValidateAttributeMapping(tt.m)
			require.Equal(t, tt.wantErr, err != nil, "%v", err)
		})
	}
}
