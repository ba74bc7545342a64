package filter

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func loadJSON(t testing.TB, name string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	return m
}

func TestMatch(t *testing.T) {
	okta := loadJSON(t, "okta_user.json")
	entra := loadJSON(t, "entra_user.json")
	group := loadJSON(t, "group.json")
	tests := []struct {
		name     string
		resource map[string]any
		filter   string
		want     bool
	}{
		// Okta user.
		{"userName eq", okta, `userName eq "test.user@okta.local"`, true},
		{"userName is caseExact false", okta, `userName eq "TEST.USER@OKTA.LOCAL"`, true},
		{"attribute name any case", okta, `USERNAME eq "test.user@okta.local"`, true},
		{"userName eq other", okta, `userName eq "other@okta.local"`, false},
		{"id is caseExact", okta, `id eq "23A35C27-23D3-4C03-B4C5-6443C09E7173"`, false},
		{"id eq", okta, `id eq "23a35c27-23d3-4c03-b4c5-6443c09e7173"`, true},
		{"externalId is caseExact", okta, `externalId eq "00UJL29U0LE5T6AJ10H7"`, false},
		{"externalId eq", okta, `externalId eq "00ujl29u0le5T6Aj10h7"`, true},
		{"externalId unquoted", okta, `externalId eq 00ujl29u0le5T6Aj10h7`, true},
		{"ne", okta, `userName ne "other"`, true},
		{"ne on same", okta, `userName ne "test.user@okta.local"`, false},
		{"ne on missing is true", okta, `nickName ne "x"`, true},
		{"eq on missing is false", okta, `nickName eq "x"`, false},
		{"co", okta, `userName co "USER@"`, true},
		{"sw", okta, `userName sw "test."`, true},
		{"sw miss", okta, `userName sw "user"`, false},
		{"ew", okta, `userName ew ".LOCAL"`, true},
		{"pr", okta, `displayName pr`, true},
		{"pr empty string", okta, `title pr`, false},
		{"pr empty array", okta, `groups pr`, false},
		{"pr null", okta, `name.middleName pr`, false},
		{"pr missing", okta, `nickName pr`, false},
		{"eq null on null", okta, `name.middleName eq null`, true},
		{"ne null", okta, `name.givenName ne null`, true},
		{"sub-attribute", okta, `name.familyName eq "user"`, true},
		{"bool", okta, `active eq true`, true},
		{"bool false", okta, `active eq false`, false},
		{"bool ne", okta, `active ne false`, true},
		{"bool gt is false", okta, `active gt false`, false},
		{"number eq", okta, `loginCount eq 42`, true},
		{"number gt", okta, `loginCount gt 41.5`, true},
		{"number le", okta, `loginCount le 41`, false},
		{"number as string", okta, `loginCount eq "42"`, true},
		{"string gt lexicographic", okta, `displayName gt "test a"`, true},
		{"string lt lexicographic", okta, `displayName lt "Test A"`, false},
		{"datetime gt", okta, `meta.created gt "2011-05-13T04:42:34Z"`, true},
		{"datetime lt", okta, `meta.created lt "2011-05-13T04:42:34Z"`, false},
		{"datetime eq other precision", okta, `meta.created eq "2011-08-01T18:29:49.793000Z"`, true},
		{"datetime eq other zone", okta, `meta.lastModified eq "2011-08-01T23:32:44.882+02:00"`, true},
		{"datetime ge", okta, `meta.lastModified ge "2011-08-01T21:32:44.882Z"`, true},
		{"meta.location caseExact", okta, `meta.location eq "HTTPS://EXAMPLE.COM/scim/v2/Users/23a35c27-23d3-4c03-b4c5-6443c09e7173"`, false},
		{"multi-valued any", okta, `emails.value eq "test.home+tag@example.com"`, true},
		{"multi-valued shorthand", okta, `emails eq "test.user@okta.local"`, true},
		{"multi-valued type", okta, `emails.type eq "home"`, true},
		{"multi-valued ne any", okta, `emails.type ne "work"`, true},
		{"value path", okta, `emails[type eq "work" and primary eq true]`, true},
		{"value path same element", okta, `emails[type eq "home" and primary eq true]`, false},
		{"value path then sub", okta, `emails[type eq "work"].value eq "test.user@okta.local"`, true},
		{"value path then sub other element", okta, `emails[type eq "work"].value eq "test.home+tag@example.com"`, false},
		{"value path co", okta, `emails[value co "+tag"]`, true},
		{"value path missing attr", okta, `ims[type eq "xmpp"]`, false},
		{"not", okta, `not (userName eq "test.user@okta.local")`, false},
		{"not missing", okta, `not (nickName pr)`, true},
		{"and", okta, `userName eq "test.user@okta.local" and active eq true`, true},
		{"and false", okta, `userName eq "test.user@okta.local" and active eq false`, false},
		{"or", okta, `userName eq "x" or displayName eq "test user"`, true},
		{"precedence", okta, `userName eq "x" or displayName eq "Test User" and active eq false`, false},
		{"parens", okta, `(userName eq "x" or displayName eq "Test User") and active eq true`, true},
		{"core urn", okta, `urn:ietf:params:scim:schemas:core:2.0:User:userName eq "test.user@okta.local"`, true},
		{"co on bool is false", okta, `active co "tr"`, false},

		// Entra user with the enterprise extension.
		{"entra userName", entra, `userName eq "test_user_00aa00aa-bb11-cc22-dd33-44ee44ee44ee"`, true},
		{"string bool", entra, `active eq true`, true},
		{"string bool ne", entra, `active ne true`, false},
		{"capitalised key in element", entra, `emails[type eq "work" and primary eq true]`, true},
		{"urn attribute", entra, `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984"`, true},
		{"urn attribute as number", entra, `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq 701984`, true},
		{"urn any case", entra, `URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER:department eq "tour operations"`, true},
		{"urn sub-attribute", entra, `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "45619541-95de-4d5e-9872-571b5d2c5577"`, true},
		{"manager shorthand", entra, `manager eq "45619541-95de-4d5e-9872-571b5d2c5577"`, true},
		{"manager shorthand other", entra, `manager eq "someone-else"`, false},
		{"entra alternate filter", entra, `id eq "48af03ac28ad4fb88478" and manager eq "45619541-95de-4d5e-9872-571b5d2c5577"`, true},
		{"unknown urn", entra, `urn:example:ext:1.0:User:employeeNumber eq "701984"`, false},
		{"datetime with offset", entra, `meta.lastModified eq "2024-01-02T03:04:05Z"`, true},
		{"roles pr empty", entra, `roles pr`, false},

		// Group.
		{"displayName", group, `displayName eq "test scimv2"`, true},
		{"members shorthand", group, `members eq "89bb1940-b905-4575-9e7f-6f887cfb368e"`, true},
		{"members.value", group, `members.value eq "23a35c27-23d3-4c03-b4c5-6443c09e7173"`, true},
		{"members value path", group, `members[value eq "23a35c27-23d3-4c03-b4c5-6443c09e7173"]`, true},
		{"members missing", group, `members eq "nobody"`, false},
		{"members $ref caseExact", group, `members.$ref ew "/USERS/89bb1940-b905-4575-9e7f-6f887cfb368e"`, false},
		{"members $ref", group, `members.$ref ew "/Users/89bb1940-b905-4575-9e7f-6f887cfb368e"`, true},
		{"members display pr", group, `members[display pr]`, true},
		{"group not user attr", group, `userName pr`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := Parse(tt.filter)
			require.NoError(t, err)
			require.Equal(t, tt.want, Match(e, tt.resource), "filter %s", e)
		})
	}
}

func TestMatchHandBuilt(t *testing.T) {
	// Hand-built resources may hold Go numeric types and nested lists.
	r := map[string]any{"n": 3, "m": int64(4), "tags": []any{[]any{"a", "b"}}}
	for f, want := range map[string]bool{
		`n eq 3`:       true,
		`m gt 3`:       true,
		`tags eq "b"`:  false, // lists of lists are not flattened twice
		`n sw "3"`:     false,
		`n eq "three"`: false,
	} {
		e, err := Parse(f)
		require.NoError(t, err)
		require.Equal(t, want, Match(e, r), f)
	}
}
