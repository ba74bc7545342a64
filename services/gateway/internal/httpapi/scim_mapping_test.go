package httpapi

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
)

// TestSCIMUserGroupsAttribute: a user's read-only groups attribute is
// rendered on GET and in lists from the read model, and
// excludedAttributes=groups (or attributes without it) never asks for it.
// List items carry the read model's meta.version.
func TestSCIMUserGroupsAttribute(t *testing.T) {
	e := newSCIMEnv(t)
	d := e.directory("okta scim v2.0")
	uid := e.createUser(d, "ann@example.com")
	g := e.scim(d, "POST", "/Groups", `{"displayName":"Admins","members":[{"value":"`+uid+`"}]}`)
	require.Equal(t, 201, g.status, string(g.body))
	gid := g.obj(t)["id"].(string)
	want := []any{map[string]any{"value": gid, "display": "Admins", "type": "direct", "$ref": e.srv.URL + "/scim/v2/" + d.id + "/Groups/" + gid}}

	one := e.scim(d, "GET", "/Users/"+uid, "").obj(t)
	require.Equal(t, want, one["groups"])

	for i := range 3 {
		require.Equal(t, 201, e.scim(d, "POST", "/Users", fmt.Sprintf(`{"userName":"other%d@acme.test"}`, i)).status)
	}
	reads := e.model.userGroupReads.Load()
	list := e.scim(d, "GET", "/Users?sortBy=userName", "").obj(t)
	require.Len(t, list["Resources"], 4)
	require.Equal(t, reads+1, e.model.userGroupReads.Load(), "a page's groups are one read-model call, not one per user")
	item := list["Resources"].([]any)[0].(map[string]any)
	require.Equal(t, uid, item["id"])
	require.Equal(t, want, item["groups"])
	require.Equal(t, one["meta"].(map[string]any)["version"], item["meta"].(map[string]any)["version"], "list items carry meta.version")

	groups := e.scim(d, "GET", "/Groups?excludedAttributes=members", "").obj(t)
	require.Equal(t, g.obj(t)["meta"].(map[string]any)["version"], groups["Resources"].([]any)[0].(map[string]any)["meta"].(map[string]any)["version"])

	before := e.model.userGroupReads.Load()
	for _, path := range []string{
		"/Users/" + uid + "?excludedAttributes=groups",
		"/Users?excludedAttributes=groups",
		"/Users?attributes=userName",
	} {
		r := e.scim(d, "GET", path, "")
		require.Equal(t, 200, r.status, string(r.body))
		require.NotContains(t, string(r.body), `"groups"`, path)
	}
	require.Equal(t, before, e.model.userGroupReads.Load(), "excluded groups must not be read")
}

// TestDirectoryMappings: PATCH /directories/{id} validates and stores the
// attribute and role mappings; SCIM writes apply the attribute mapping to
// custom_attributes, and REST reads fill role/roles from the user's groups.
func TestDirectoryMappings(t *testing.T) {
	e := newSCIMEnv(t)
	d := e.directory("okta scim v2.0")
	patchDir := func(body string) scimResp {
		return e.do("PATCH", "/directories/"+d.id, scimTestAPIKey, body)
	}
	for _, bad := range []string{
		`{"attribute_mapping":{"":"title"}}`,
		`{"attribute_mapping":{"x":"emails[type eq"}}`,
		`{"role_mapping":{"Admins":""}}`,
		`{"role_mapping":{"":"admin"}}`,
	} {
		r := patchDir(bad)
		require.Equal(t, 422, r.status, "%s: %s", bad, r.body)
		require.Equal(t, "invalid_request_parameters", r.obj(t)["code"])
	}
	r := patchDir(`{"attribute_mapping":{"cost_code":"urn:example:scim:acme:2.0:User:costCode","department_name":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:division"},
		"role_mapping":{"admins":"admin","grp-ext-7":"billing"}}`)
	require.Equal(t, 200, r.status, string(r.body))
	require.Equal(t, map[string]any{"admins": "admin", "grp-ext-7": "billing"}, r.obj(t)["role_mapping"])

	u := e.scim(d, "POST", "/Users", `{"userName":"ann@example.com",
		"urn:example:scim:acme:2.0:User":{"costCode":"CC-7"},
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"R&D","division":"Labs"}}`)
	require.Equal(t, 201, u.status, string(u.body))
	uid := u.obj(t)["id"].(string)
	require.Equal(t, 201, e.scim(d, "POST", "/Groups", `{"displayName":"Admins","members":["`+uid+`"]}`).status)
	require.Equal(t, 201, e.scim(d, "POST", "/Groups", `{"displayName":"Billing","externalId":"grp-ext-7","members":["`+uid+`"]}`).status)
	require.Equal(t, 201, e.scim(d, "POST", "/Groups", `{"displayName":"Everyone","members":["`+uid+`"]}`).status)

	got := e.do("GET", "/directory_users/"+uid, scimTestAPIKey, "")
	require.Equal(t, 200, got.status, string(got.body))
	m := got.obj(t)
	custom := m["custom_attributes"].(map[string]any)
	require.Equal(t, "CC-7", custom["cost_code"])
	require.Equal(t, "Labs", custom["department_name"], "the mapping overrides the predefined key")
	roles := m["roles"].([]any)
	require.Len(t, roles, 2)
	require.ElementsMatch(t, []any{map[string]any{"slug": "admin"}, map[string]any{"slug": "billing"}}, roles)
	require.Equal(t, roles[0], m["role"])

	// Clearing the role mapping removes role and roles at once.
	require.Equal(t, 200, patchDir(`{"role_mapping":{}}`).status)
	m = e.do("GET", "/directory_users/"+uid, scimTestAPIKey, "").obj(t)
	require.NotContains(t, m, "role")
	require.NotContains(t, m, "roles")
}

func TestRoleSlugs(t *testing.T) {
	groups := []*dsyncv1.Group{
		{Id: "directory_group_1", IdpId: "ext-1", Name: "Admins"},
		{Id: "directory_group_2", IdpId: "ext-2", Name: "Billing"},
		{Id: "directory_group_3", Name: "Staff"},
	}
	tests := []struct {
		name    string
		mapping map[string]string
		want    []string
	}{
		{"none", nil, nil},
		{"by id, idp_id and name", map[string]string{"directory_group_1": "admin", "ext-2": "billing", "staff": "member"}, []string{"admin", "billing", "member"}},
		{"id wins over name", map[string]string{"directory_group_1": "admin", "Admins": "other"}, []string{"admin"}},
		{"repeats dropped", map[string]string{"Admins": "member", "Staff": "member"}, []string{"member"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, roleSlugs(tt.mapping, groups))
		})
	}
}

// TestSCIMCustomExtensionRoundTrip: attributes of a custom extension
// schema are kept, returned under their URN (listed in schemas), patchable
// by URN-qualified path, and selectable with attributes=.
func TestSCIMCustomExtensionRoundTrip(t *testing.T) {
	const ext = "urn:example:scim:acme:2.0:User"
	e := newSCIMEnv(t)
	d := e.directory("generic scim v2.0")
	r := e.scim(d, "POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","`+ext+`"],"userName":"ann@example.com","`+ext+`":{"costCode":"CC-7"},"`+ext+`:floor":"3"}`)
	require.Equal(t, 201, r.status, string(r.body))
	m := r.obj(t)
	require.Contains(t, m["schemas"], ext)
	require.Equal(t, map[string]any{"costCode": "CC-7", "floor": "3"}, m[ext])
	uid := m["id"].(string)

	p := e.scim(d, "PATCH", "/Users/"+uid, `{"Operations":[{"op":"replace","path":"`+ext+`:costCode","value":"CC-9"}]}`)
	require.Equal(t, 200, p.status, string(p.body))
	require.Equal(t, "CC-9", p.obj(t)[ext].(map[string]any)["costCode"])

	sel := e.scim(d, "GET", "/Users/"+uid+"?attributes="+ext+":costCode", "").obj(t)
	require.Equal(t, map[string]any{"costCode": "CC-9"}, sel[ext])
	require.NotContains(t, sel, "userName")
	excl := e.scim(d, "GET", "/Users/"+uid+"?excludedAttributes="+ext, "").obj(t)
	require.NotContains(t, excl, ext)
}
