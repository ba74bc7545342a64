package patch

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSplitMembers(t *testing.T) {
	tests := []struct {
		name    string
		ops     string
		members []MemberChange
		rest    []Operation
	}{
		{"okta delta keeps order",
			`[{"op":"remove","path":"members[value eq \"89bb\"]"},{"op":"add","path":"members","value":[{"value":"23a3","display":"test.user@okta.local"}]}]`,
			[]MemberChange{{"remove", []string{"89bb"}}, {"add", []string{"23a3"}}}, nil},
		{"okta full push",
			`[{"op":"replace","path":"members","value":[{"value":"a","display":"x"},{"value":"b","display":"y"}]}]`,
			[]MemberChange{{"replace", []string{"a", "b"}}}, nil},
		{"replace with empty list",
			`[{"op":"replace","path":"members","value":[]}]`,
			[]MemberChange{{"replace", []string{}}}, nil},
		{"entra remove with value array removes only those",
			`[{"op":"Remove","path":"members","value":[{"$ref":null,"value":"f648"}]}]`,
			[]MemberChange{{"remove", []string{"f648"}}}, nil},
		{"remove without value removes all",
			`[{"op":"remove","path":"members"}]`,
			[]MemberChange{{"remove_all", nil}}, nil},
		{"remove with null value removes all",
			`[{"op":"remove","path":"members","value":null}]`,
			[]MemberChange{{"remove_all", nil}}, nil},
		{"remove with empty array removes nothing",
			`[{"op":"remove","path":"members","value":[]}]`,
			nil, nil},
		{"entra add with null ref",
			`[{"op":"Add","path":"members","value":[{"$ref":null,"value":"f648"}]}]`,
			[]MemberChange{{"add", []string{"f648"}}}, nil},
		{"ms postman bare string",
			`[{"op":"add","path":"members","value":"string id 1"}]`,
			[]MemberChange{{"add", []string{"string id 1"}}}, nil},
		{"bare strings in array, dedup",
			`[{"op":"add","path":"members","value":["a","b","a"]}]`,
			[]MemberChange{{"add", []string{"a", "b"}}}, nil},
		{"keys in any case, displayName",
			`[{"op":"add","path":"Members","value":[{"Value":"a","displayName":"A","Type":"User"}]}]`,
			[]MemberChange{{"add", []string{"a"}}}, nil},
		{"single object",
			`[{"op":"add","path":"members","value":{"value":"a"}}]`,
			[]MemberChange{{"add", []string{"a"}}}, nil},
		{"filter with or",
			`[{"op":"remove","path":"members[value eq \"a\" or value eq \"b\"]"}]`,
			[]MemberChange{{"remove", []string{"a", "b"}}}, nil},
		{"filter with and type",
			`[{"op":"remove","path":"members[value eq \"a\" and type eq \"User\"]"}]`,
			[]MemberChange{{"remove", []string{"a"}}}, nil},
		{"urn-qualified members",
			`[{"op":"add","path":"urn:ietf:params:scim:schemas:core:2.0:Group:members","value":[{"value":"a"}]}]`,
			[]MemberChange{{"add", []string{"a"}}}, nil},
		{"members.value",
			`[{"op":"remove","path":"members.value","value":["a"]}]`,
			[]MemberChange{{"remove", []string{"a"}}}, nil},
		{"members display dropped",
			`[{"op":"replace","path":"members[value eq \"a\"].display","value":"A"}]`,
			nil, nil},
		{"pathless with members and displayName",
			`[{"op":"replace","value":{"id":"g1","displayName":"Eng","members":[{"value":"a"}]}}]`,
			[]MemberChange{{"replace", []string{"a"}}},
			[]Operation{{Op: "replace", Value: map[string]any{"id": "g1", "displayName": "Eng"}}}},
		{"pathless add with only members",
			`[{"op":"add","value":{"Members":[{"value":"a"}]}}]`,
			[]MemberChange{{"add", []string{"a"}}}, nil},
		{"other operations pass through in order",
			`[{"op":"replace","path":"displayName","value":"x"},{"op":"add","path":"members","value":[{"value":"a"}]},{"op":"replace","value":{"externalId":"e"}}]`,
			[]MemberChange{{"add", []string{"a"}}},
			[]Operation{{Op: "replace", Path: "displayName", Value: "x"}, {Op: "replace", Value: map[string]any{"externalId": "e"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			members, rest, err := SplitMembers(ops(t, tt.ops))
			require.NoError(t, err)
			require.Equal(t, tt.members, members)
			require.Equal(t, tt.rest, rest)
		})
	}
}

func TestSplitMembersErrors(t *testing.T) {
	tests := []struct{ name, ops, scimType, detail string }{
		{"member without value", `[{"op":"add","path":"members","value":[{"display":"x"}]}]`, ScimInvalidValue, "operation 1: each member"},
		{"member value not string", `[{"op":"add","path":"members","value":[{"value":true}]}]`, ScimInvalidValue, "each member"},
		{"empty id", `[{"op":"remove","path":"members","value":[""]}]`, ScimInvalidValue, "each member"},
		{"filter not by value", `[{"op":"replace","path":"displayName","value":"x"},{"op":"remove","path":"members[display eq \"x\"]"}]`, ScimInvalidPath, "operation 2: a members filter must select members by value"},
		{"pathless bad members", `[{"op":"add","value":{"members":[1.5,{}]}}]`, ScimInvalidValue, "each member"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := SplitMembers(ops(t, tt.ops))
			var pe *Error
			require.True(t, errors.As(err, &pe), "%v", err)
			require.Equal(t, tt.scimType, pe.ScimType)
			require.Contains(t, pe.Detail, tt.detail)
		})
	}
}
