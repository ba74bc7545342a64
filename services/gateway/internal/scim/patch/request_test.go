package patch

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseRequest(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []Operation
	}{
		{"okta deactivate",
			`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}`,
			[]Operation{{Op: "replace", Value: map[string]any{"active": false}}}},
		{"entra capitalised ops and string boolean",
			`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":"False"}]}`,
			[]Operation{{Op: "replace", Path: "active", Value: "False"}}},
		{"keys in any case, no schemas",
			`{"operations":[{"OP":"ADD","PATH":"emails","VALUE":[{"value":"a@b.c"}]},{"Op":"Remove","Path":"title"}]}`,
			[]Operation{{Op: "add", Path: "emails", Value: []any{map[string]any{"value": "a@b.c"}}}, {Op: "remove", Path: "title"}}},
		{"remove with value",
			`{"Operations":[{"op":"Remove","path":"members","value":[{"$ref":null,"value":"f648f8d5ea4e4cd38e9c"}]}]}`,
			[]Operation{{Op: "remove", Path: "members", Value: []any{map[string]any{"$ref": nil, "value": "f648f8d5ea4e4cd38e9c"}}}}},
		{"null path is pathless",
			`{"Operations":[{"op":"replace","path":null,"value":{"displayName":"x"}}]}`,
			[]Operation{{Op: "replace", Value: map[string]any{"displayName": "x"}}}},
		{"null value for replace",
			`{"Operations":[{"op":"replace","path":"title","value":null}]}`,
			[]Operation{{Op: "replace", Path: "title", Value: nil}}},
		{"vendor schema urn ignored",
			`{"schemas":["urn:scim:schemas:core:1.0"],"Operations":[{"op":"add","path":"title","value":"x"}]}`,
			[]Operation{{Op: "add", Path: "title", Value: "x"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ops, err := ParseRequest([]byte(tt.body))
			require.NoError(t, err)
			require.Equal(t, tt.want, ops)
		})
	}
}

func TestParseRequestErrors(t *testing.T) {
	tests := []struct {
		name, body, scimType, detail string
	}{
		{"not json", `{`, ScimInvalidSyntax, "not valid JSON"},
		{"trailing data", `{"Operations":[{"op":"add","path":"a","value":1}]} x`, ScimInvalidSyntax, "data after"},
		{"array body", `[]`, ScimInvalidSyntax, "must be a JSON object"},
		{"no operations", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"]}`, ScimInvalidSyntax, `no "Operations"`},
		{"operations not array", `{"Operations":{"op":"add"}}`, ScimInvalidSyntax, "must be an array"},
		{"empty operations", `{"Operations":[]}`, ScimInvalidSyntax, "at least one"},
		{"operation not object", `{"Operations":["add"]}`, ScimInvalidSyntax, "operation 1: an operation must be a JSON object"},
		{"unknown op", `{"Operations":[{"op":"add","path":"a","value":1},{"op":"move","path":"a"}]}`, ScimInvalidSyntax, `operation 2: unknown op "move"`},
		{"missing op", `{"Operations":[{"path":"a","value":1}]}`, ScimInvalidSyntax, `"op" must be one of`},
		{"op not string", `{"Operations":[{"op":1,"path":"a","value":1}]}`, ScimInvalidSyntax, `"op" must be one of`},
		{"add without value", `{"Operations":[{"op":"add","path":"title"}]}`, ScimInvalidSyntax, "add requires a value"},
		{"replace without value", `{"Operations":[{"op":"replace"}]}`, ScimInvalidSyntax, "replace requires a value"},
		{"remove without path", `{"Operations":[{"op":"remove"}]}`, ScimNoTarget, "remove requires a path"},
		{"bad path", `{"Operations":[{"op":"remove","path":"emails[type eq"}]}`, ScimInvalidPath, "operation 1:"},
		{"path not string", `{"Operations":[{"op":"remove","path":3}]}`, ScimInvalidPath, `"path" must be a string`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ops, err := ParseRequest([]byte(tt.body))
			require.Nil(t, ops)
			var pe *Error
			require.True(t, errors.As(err, &pe), "%v", err)
			require.Equal(t, tt.scimType, pe.ScimType)
			require.Contains(t, pe.Detail, tt.detail)
		})
	}
}
