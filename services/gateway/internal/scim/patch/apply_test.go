package patch

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func obj(t testing.TB, s string) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(s), &m))
	return m
}

func ops(t testing.TB, s string) []Operation {
	t.Helper()
	o, err := ParseRequest([]byte(`{"Operations":` + s + `}`))
	require.NoError(t, err)
	return o
}

const user = `{"id":"u1","userName":"bjensen","externalId":"e1",
 "name":{"givenName":"Barbara","familyName":"Jensen"},
 "emails":[{"value":"bjensen@example.com","type":"work","primary":true},{"value":"babs@jensen.org","type":"home"}],
 "active":true,
 "meta":{"resourceType":"User","created":"2011-08-01T18:29:49.793Z"}}`

func TestApply(t *testing.T) {
	tests := []struct {
		name   string
		res    string
		ops    string
		schema Schema
		want   string
	}{
		{"replace scalar", user, `[{"op":"replace","path":"userName","value":"bj"}]`, nil,
			`{"id":"u1","userName":"bj","externalId":"e1","name":{"givenName":"Barbara","familyName":"Jensen"},"emails":[{"value":"bjensen@example.com","type":"work","primary":true},{"value":"babs@jensen.org","type":"home"}],"active":true,"meta":{"resourceType":"User","created":"2011-08-01T18:29:49.793Z"}}`},
		{"attribute name any case keeps existing key", `{"userName":"a"}`, `[{"op":"replace","path":"USERNAME","value":"b"}]`, nil, `{"userName":"b"}`},
		{"add new attribute takes given name", `{"userName":"a"}`, `[{"op":"add","path":"nickName","value":"b"}]`, nil, `{"userName":"a","nickName":"b"}`},
		{"replace missing adds", `{}`, `[{"op":"replace","path":"title","value":"x"}]`, nil, `{"title":"x"}`},
		{"string boolean kept", `{"active":true}`, `[{"op":"Replace","path":"active","value":"False"}]`, nil, `{"active":"False"}`},
		{"sub-attribute", `{"name":{"givenName":"a","familyName":"b"}}`, `[{"op":"replace","path":"name.FAMILYNAME","value":"c"}]`, nil, `{"name":{"givenName":"a","familyName":"c"}}`},
		{"sub-attribute creates complex", `{}`, `[{"op":"add","path":"name.givenName","value":"a"}]`, nil, `{"name":{"givenName":"a"}}`},
		{"remove sub-attribute", `{"name":{"givenName":"a","familyName":"b"}}`, `[{"op":"remove","path":"name.givenName"}]`, nil, `{"name":{"familyName":"b"}}`},
		{"remove last sub-attribute unassigns", `{"name":{"givenName":"a"}}`, `[{"op":"remove","path":"name.givenName"}]`, nil, `{}`},
		{"replace complex merges", `{"name":{"givenName":"a","familyName":"b"}}`, `[{"op":"replace","path":"name","value":{"givenName":"c"}}]`, nil, `{"name":{"givenName":"c","familyName":"b"}}`},
		{"pathless complex merges", `{"name":{"givenName":"a","familyName":"b"}}`, `[{"op":"replace","value":{"name":{"familyName":"c"}}}]`, nil, `{"name":{"givenName":"a","familyName":"c"}}`},
		{"add appends", `{"emails":[{"value":"a@x"}]}`, `[{"op":"add","path":"emails","value":[{"value":"b@x"}]}]`, nil, `{"emails":[{"value":"a@x"},{"value":"b@x"}]}`},
		{"add single value to multi-valued", `{"emails":[{"value":"a@x"}]}`, `[{"op":"add","path":"emails","value":{"value":"b@x"}}]`, nil, `{"emails":[{"value":"a@x"},{"value":"b@x"}]}`},
		{"add dedups", `{"emails":[{"value":"a@x","type":"work"}]}`, `[{"op":"add","path":"emails","value":[{"value":"a@x","type":"work"},{"value":"a@x"}]}]`, nil, `{"emails":[{"value":"a@x","type":"work"}]}`},
		{"add same value other type appends", `{"emails":[{"value":"a@x","type":"work"}]}`, `[{"op":"add","path":"emails","value":[{"value":"a@x","type":"home"}]}]`, nil, `{"emails":[{"value":"a@x","type":"work"},{"value":"a@x","type":"home"}]}`},
		{"add merges same value", `{"emails":[{"value":"a@x","type":"work"}]}`, `[{"op":"add","path":"emails","value":[{"Value":"a@x","display":"A"}]}]`, nil, `{"emails":[{"value":"a@x","type":"work","display":"A"}]}`},
		{"add to missing multi-valued", `{}`, `[{"op":"add","path":"emails","value":[{"value":"a@x"}]}]`, UserSchema(), `{"emails":[{"value":"a@x"}]}`},
		{"replace multi-valued", `{"emails":[{"value":"a@x"},{"value":"b@x"}]}`, `[{"op":"replace","path":"emails","value":[{"value":"c@x"}]}]`, nil, `{"emails":[{"value":"c@x"}]}`},
		{"add primary clears others", `{"emails":[{"value":"a@x","primary":true}]}`, `[{"op":"add","path":"emails","value":[{"value":"b@x","primary":true}]}]`, nil, `{"emails":[{"value":"a@x","primary":false},{"value":"b@x","primary":true}]}`},
		{"primary as string clears others", `{"emails":[{"value":"a@x","Primary":"True"}]}`, `[{"op":"add","path":"emails","value":[{"value":"b@x","Primary":"True"}]}]`, nil, `{"emails":[{"value":"a@x","Primary":false},{"value":"b@x","Primary":"True"}]}`},
		{"filtered replace primary clears others", `{"emails":[{"value":"a@x","type":"work","primary":true},{"value":"b@x","type":"home"}]}`, `[{"op":"replace","path":"emails[type eq \"home\"].primary","value":true}]`, nil, `{"emails":[{"value":"a@x","type":"work","primary":false},{"value":"b@x","type":"home","primary":true}]}`},
		{"filtered sub replace", `{"emails":[{"value":"a@x","type":"work"},{"value":"b@x","type":"home"}]}`, `[{"op":"replace","path":"emails[type eq \"work\"].value","value":"c@x"}]`, nil, `{"emails":[{"value":"c@x","type":"work"},{"value":"b@x","type":"home"}]}`},
		{"filtered replace no match adds", `{"emails":[{"value":"b@x","type":"home"}]}`, `[{"op":"replace","path":"emails[type eq \"work\"].value","value":"c@x"}]`, nil, `{"emails":[{"value":"b@x","type":"home"},{"type":"work","value":"c@x"}]}`},
		{"filtered add on missing attribute adds", `{}`, `[{"op":"add","path":"emails[type eq \"work\" and primary eq true].value","value":"c@x"}]`, nil, `{"emails":[{"type":"work","primary":true,"value":"c@x"}]}`},
		{"filtered replace element merges", `{"addresses":[{"type":"work","streetAddress":"1 A St","locality":"X"}]}`, `[{"op":"replace","path":"addresses[type eq \"work\"]","value":{"streetAddress":"2 B St"}}]`, nil, `{"addresses":[{"type":"work","streetAddress":"2 B St","locality":"X"}]}`},
		{"filtered address sub", `{"addresses":[{"type":"work","streetAddress":"1 A St"}]}`, `[{"op":"replace","path":"addresses[type eq \"work\"].streetAddress","value":"2 B St"}]`, nil, `{"addresses":[{"type":"work","streetAddress":"2 B St"}]}`},
		{"filter matches case-insensitively", `{"emails":[{"Value":"a@x","Type":"Work"}]}`, `[{"op":"replace","path":"emails[type eq \"work\"].value","value":"c@x"}]`, nil, `{"emails":[{"Value":"c@x","Type":"Work"}]}`},
		{"filtered remove", `{"emails":[{"value":"a@x","type":"work"},{"value":"b@x","type":"home"}]}`, `[{"op":"remove","path":"emails[type eq \"work\"]"}]`, nil, `{"emails":[{"value":"b@x","type":"home"}]}`},
		{"filtered remove last unassigns", `{"emails":[{"value":"a@x","type":"work"}]}`, `[{"op":"remove","path":"emails[type eq \"work\"]"}]`, nil, `{}`},
		{"filtered remove sub", `{"emails":[{"value":"a@x","type":"work","display":"A"}]}`, `[{"op":"remove","path":"emails[type eq \"work\"].display"}]`, nil, `{"emails":[{"value":"a@x","type":"work"}]}`},
		{"remove attribute", `{"title":"x","nickName":"y"}`, `[{"op":"remove","path":"title"}]`, nil, `{"nickName":"y"}`},
		{"remove missing is no-op", `{"nickName":"y"}`, `[{"op":"remove","path":"title"}]`, nil, `{"nickName":"y"}`},
		{"remove multi-valued", `{"emails":[{"value":"a@x"}]}`, `[{"op":"remove","path":"emails"}]`, nil, `{}`},
		{"replace with null unassigns", `{"title":"x"}`, `[{"op":"replace","path":"title","value":null}]`, nil, `{}`},
		{"replace with empty array unassigns", `{"emails":[{"value":"a@x"}]}`, `[{"op":"replace","path":"emails","value":[]}]`, nil, `{}`},
		{"pathless dotted and urn keys", `{"userName":"u","name":{"givenName":"a"}}`,
			`[{"op":"replace","value":{"displayName":"Bjfe","name.givenName":"Kkom","name.familyName":"Unua","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber":"Aklq"}}]`, UserSchema(),
			`{"userName":"u","displayName":"Bjfe","name":{"givenName":"Kkom","familyName":"Unua"},"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"employeeNumber":"Aklq"}}`},
		{"pathless extension object merges", `{"userName":"u","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"a","costCenter":"c"}}`,
			`[{"op":"add","value":{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"Department":"b","division":"d"}}}]`, UserSchema(),
			`{"userName":"u","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"b","costCenter":"c","division":"d"}}`},
		{"urn path keeps existing extension key spelling", `{"userName":"u","URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER":{"department":"a"}}`,
			`[{"op":"replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department","value":"b"}]`, UserSchema(),
			`{"userName":"u","URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER":{"department":"b"}}`},
		{"remove whole extension", `{"userName":"u","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"a"}}`,
			`[{"op":"remove","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"}]`, UserSchema(), `{"userName":"u"}`},
		{"remove from absent extension is no-op", `{"userName":"u"}`,
			`[{"op":"remove","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"}]`, UserSchema(), `{"userName":"u"}`},
		{"core urn path is top level", `{"userName":"u"}`,
			`[{"op":"replace","path":"urn:ietf:params:scim:schemas:core:2.0:User:userName","value":"v"}]`, UserSchema(), `{"userName":"v"}`},
		{"custom extension", `{"userName":"u"}`,
			`[{"op":"add","path":"urn:example:ext:1.0:User:badge","value":"b"}]`, UserSchema(), `{"userName":"u","urn:example:ext:1.0:User":{"badge":"b"}}`},
		{"unqualified enterprise attr on user", `{"userName":"u"}`, `[{"op":"replace","path":"department","value":"d"}]`, UserSchema(),
			`{"userName":"u","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"d"}}`},
		{"unqualified enterprise attr at top level stays", `{"userName":"u","department":"a"}`, `[{"op":"replace","path":"department","value":"d"}]`, UserSchema(),
			`{"userName":"u","department":"d"}`},
		{"manager array unwrapped", `{"userName":"u"}`, `[{"op":"Add","path":"manager","value":[{"$ref":"http://x/Users/m1","value":"m1"}]}]`, UserSchema(),
			`{"userName":"u","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":{"$ref":"http://x/Users/m1","value":"m1"}}}`},
		{"manager string", `{"userName":"u","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":{"value":"m0","displayName":"Old"}}}`,
			`[{"op":"Add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager","value":"m1"}]`, UserSchema(),
			`{"userName":"u","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":{"value":"m1"}}}`},
		{"manager empty string unassigns", `{"userName":"u","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":{"value":"m0"}}}`,
			`[{"op":"replace","path":"manager","value":""}]`, UserSchema(),
			`{"userName":"u","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{}}`},
		{"manager remove by filter", `{"userName":"u","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":{"value":"m0"},"department":"d"}}`,
			`[{"op":"remove","path":"manager[value eq \"m0\"]"}]`, UserSchema(),
			`{"userName":"u","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"d"}}`},
		{"manager.value", `{"userName":"u"}`, `[{"op":"add","path":"manager.value","value":"m2"}]`, UserSchema(),
			`{"userName":"u","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":{"value":"m2"}}}`},
		{"okta echoed id ignored", `{"id":"g1","displayName":"a"}`, `[{"op":"replace","value":{"id":"g1","displayName":"b"}}]`, GroupSchema(), `{"id":"g1","displayName":"b"}`},
		{"echoed meta, groups and schemas ignored", `{"id":"u1","userName":"a","meta":{"resourceType":"User"}}`,
			`[{"op":"replace","value":{"schemas":["x"],"meta":{"resourceType":"Other"},"groups":[{"value":"g"}],"userName":"b"}}]`, UserSchema(),
			`{"id":"u1","userName":"b","meta":{"resourceType":"User"}}`},
		{"ops apply in order", `{"title":"a"}`, `[{"op":"replace","path":"title","value":"b"},{"op":"remove","path":"title"},{"op":"add","path":"title","value":"c"}]`, nil, `{"title":"c"}`},
		{"bare string values", `{"members":["a"]}`, `[{"op":"add","path":"members","value":["a","b"]}]`, GroupSchema(), `{"members":["a","b"]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := obj(t, tt.res)
			orig := obj(t, tt.res)
			got, err := Apply(in, ops(t, tt.ops), tt.schema)
			require.NoError(t, err)
			require.Equal(t, obj(t, tt.want), got)
			require.Equal(t, orig, in, "Apply modified its input")
		})
	}
}

func TestApplyErrors(t *testing.T) {
	tests := []struct {
		name, res, ops   string
		schema           Schema
		scimType, detail string
	}{
		{"different id", `{"id":"g1"}`, `[{"op":"replace","value":{"id":"g2","displayName":"b"}}]`, GroupSchema(), ScimMutability, "operation 1 (replace): id is read-only"},
		{"path id", `{"id":"u1"}`, `[{"op":"replace","path":"id","value":"u2"}]`, UserSchema(), ScimMutability, `operation 1 (replace id): attribute "id" is read-only`},
		{"path meta sub", `{"id":"u1"}`, `[{"op":"replace","path":"meta.created","value":"x"}]`, UserSchema(), ScimMutability, "read-only"},
		{"remove meta", `{"id":"u1","meta":{}}`, `[{"op":"remove","path":"meta"}]`, UserSchema(), ScimMutability, "read-only"},
		{"groups on user", `{"id":"u1"}`, `[{"op":"add","path":"groups","value":[{"value":"g"}]}]`, UserSchema(), ScimMutability, "read-only"},
		{"immutable changed", `{"id":"u1","employeeId":"a"}`, `[{"op":"replace","path":"employeeId","value":"b"}]`, StaticSchema{Immutable: set("employeeid")}, ScimMutability, "immutable"},
		{"filtered remove on missing attribute", `{"userName":"u"}`, `[{"op":"remove","path":"emails[type eq \"work\"]"}]`, UserSchema(), ScimNoTarget, "no value of"},
		{"filtered remove no match", `{"emails":[{"type":"home"}]}`, `[{"op":"remove","path":"emails[type eq \"work\"].value"}]`, UserSchema(), ScimNoTarget, `matches type eq "work"`},
		{"pathless value not object", `{}`, `[{"op":"replace","value":"x"}]`, nil, ScimInvalidValue, "needs an object value"},
		{"pathless bad key", `{}`, `[{"op":"replace","value":{"a b":1}}]`, nil, ScimInvalidPath, `attribute "a b"`},
		{"single-valued with array", `{}`, `[{"op":"replace","path":"title","value":["a","b"]}]`, nil, ScimInvalidValue, "single-valued"},
		{"filter on scalar", `{"title":"x"}`, `[{"op":"replace","path":"title[value eq \"x\"]","value":{}}]`, nil, ScimInvalidPath, "cannot be filtered"},
		{"filtered element value not object", `{"emails":[{"type":"work"}]}`, `[{"op":"replace","path":"emails[type eq \"work\"]","value":"x"}]`, nil, ScimInvalidValue, "must be an object"},
		{"sub of scalar", `{"title":"x"}`, `[{"op":"replace","path":"title.x","value":"y"}]`, nil, ScimInvalidPath, "no sub-attribute"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Apply(obj(t, tt.res), ops(t, tt.ops), tt.schema)
			require.Nil(t, got)
			var pe *Error
			require.True(t, errors.As(err, &pe), "%v", err)
			require.Equal(t, tt.scimType, pe.ScimType)
			require.Contains(t, pe.Detail, tt.detail)
		})
	}
	// Operations that only Apply (not ParseRequest) sees.
	_, err := Apply(map[string]any{}, []Operation{{Op: "move", Path: "a"}}, nil)
	require.Equal(t, &Error{ScimType: ScimInvalidSyntax, Detail: `operation 1 (move a): unknown op "move": must be add, replace or remove`}, err)
	_, err = Apply(map[string]any{}, []Operation{{Op: "remove"}}, nil)
	require.Equal(t, ScimNoTarget, err.(*Error).ScimType)
	_, err = Apply(map[string]any{}, []Operation{{Op: "add", Path: "a[", Value: 1}}, nil)
	require.Equal(t, ScimInvalidPath, err.(*Error).ScimType)
}

func TestApplyAtomic(t *testing.T) {
	in := obj(t, user)
	orig := obj(t, user)
	got, err := Apply(in, ops(t, `[
		{"op":"replace","path":"userName","value":"changed"},
		{"op":"add","path":"emails","value":[{"value":"new@x","primary":true}]},
		{"op":"replace","path":"id","value":"other"},
		{"op":"remove","path":"name"}]`), UserSchema())
	require.Nil(t, got)
	var pe *Error
	require.True(t, errors.As(err, &pe))
	require.Equal(t, ScimMutability, pe.ScimType)
	require.Contains(t, pe.Detail, "operation 3 (replace id)")
	require.Equal(t, orig, in)
}

func TestApplyNilResource(t *testing.T) {
	got, err := Apply(nil, []Operation{{Op: "add", Path: "title", Value: "x"}}, nil)
	require.NoError(t, err)
	require.Equal(t, map[string]any{"title": "x"}, got)
}
