package filter

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // canonical String()
	}{
		{"eq string", `userName eq "bjensen"`, `userName eq "bjensen"`},
		{"operators any case", `USERNAME EQ "x" AND title Pr`, `USERNAME eq "x" and title pr`},
		{"ne", `title ne "Tour Guide"`, `title ne "Tour Guide"`},
		{"co", `name.familyName co "O'Malley"`, `name.familyName co "O'Malley"`},
		{"sw", `userName sw "J"`, `userName sw "J"`},
		{"ew", `emails.value ew "@example.com"`, `emails.value ew "@example.com"`},
		{"pr", `title pr`, `title pr`},
		{"gt datetime", `meta.lastModified gt "2011-05-13T04:42:34Z"`, `meta.lastModified gt "2011-05-13T04:42:34Z"`},
		{"ge", `meta.lastModified ge "2011-05-13T04:42:34Z"`, `meta.lastModified ge "2011-05-13T04:42:34Z"`},
		{"lt", `meta.lastModified lt "2011-05-13T04:42:34Z"`, `meta.lastModified lt "2011-05-13T04:42:34Z"`},
		{"le", `meta.lastModified le "2011-05-13T04:42:34Z"`, `meta.lastModified le "2011-05-13T04:42:34Z"`},
		{"number", `x509Certificates.value eq 12.5e3`, `x509Certificates.value eq 12.5e3`},
		{"negative int", `n gt -3`, `n gt -3`},
		{"true false null", `active eq TRUE or active eq False or title eq NULL`, `active eq true or active eq false or title eq null`},
		{"and binds tighter than or", `a eq 1 or b eq 2 and c eq 3`, `a eq 1 or b eq 2 and c eq 3`},
		{"parens change grouping", `(a eq 1 or b eq 2) and c eq 3`, `(a eq 1 or b eq 2) and c eq 3`},
		{"right nested and keeps parens", `a eq 1 and (b eq 2 and c eq 3)`, `a eq 1 and (b eq 2 and c eq 3)`},
		{"redundant parens dropped", `((a eq 1)) and (b eq 2)`, `a eq 1 and b eq 2`},
		{"not", `not (userName eq "x")`, `not (userName eq "x")`},
		{"not without space", `NOT(userName eq "x")`, `not (userName eq "x")`},
		{"not binds tighter than and", `not (a pr) and b pr`, `not (a pr) and b pr`},
		{"attribute named not", `not eq "x"`, `not eq "x"`},
		{"value path", `emails[type eq "work" and primary eq true]`, `emails[type eq "work" and primary eq true]`},
		{"value path with or", `emails[type eq "work" or value co "@example.com"]`, `emails[type eq "work" or value co "@example.com"]`},
		{"value path then sub", `emails[type eq "work"].value eq "a@b.c"`, `emails[type eq "work" and value eq "a@b.c"]`},
		{"value path in logic", `userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")`, `userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")`},
		{"rfc complex", `userType eq "Employee" and emails[type eq "work" and value co "@example.com"]`, `userType eq "Employee" and emails[type eq "work" and value co "@example.com"]`},
		{"rfc value path or", `emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]`, `emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]`},
		{"urn attribute", `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984"`, `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984"`},
		{"urn sub-attribute", `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "26118915-6090-4610-87e4-49d8ca9f808d"`, `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "26118915-6090-4610-87e4-49d8ca9f808d"`},
		{"core urn", `urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J"`, `urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J"`},
		{"$ref", `members.$ref pr`, `members.$ref pr`},
		{"json escapes", `displayName eq "a \"quoted\" \\ \u00e9 name"`, `displayName eq "a \"quoted\" \\ é name"`},
		{"unquoted value", `externalId eq jyoung`, `externalId eq "jyoung"`},
		{"unquoted in parens", `(externalId eq jyoung)`, `externalId eq "jyoung"`},
		{"unquoted with plus", `userName eq a+b@example.com`, `userName eq "a+b@example.com"`},
		{"quoted with plus kept", `emails.value eq "a+b@example.com"`, `emails.value eq "a+b@example.com"`},
		{"stray whitespace", "  \tuserName   eq \"x\"\n ", `userName eq "x"`},
		{"no space after value", `a eq "x"and b eq "y"`, `a eq "x" and b eq "y"`},
		{"plus spaces", `userName+eq+"bjensen"`, `userName eq "bjensen"`},
		{"plus spaces keep quoted plus", `userName+eq+"a+b@example.com"`, `userName eq "a+b@example.com"`},
		{"trailing ampersand", `userName eq "x"&`, `userName eq "x"`},
		{"percent encoded", `userName%20eq%20%22x%40example.com%22`, `userName eq "x@example.com"`},
		{"percent and plus", `userName+eq+%22test.user%40okta.local%22&`, `userName eq "test.user@okta.local"`},
		{"not in value path", `emails[not (type eq "work")]`, `emails[not (type eq "work")]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := Parse(tt.in)
			require.NoError(t, err)
			require.Equal(t, tt.want, e.String())
			again, err := Parse(e.String())
			require.NoError(t, err)
			require.Equal(t, e.String(), again.String())
		})
	}
}

func TestParseTree(t *testing.T) {
	e, err := Parse(`a eq 1 or b eq "x" and not (c pr)`)
	require.NoError(t, err)
	or, ok := e.(*Logical)
	require.True(t, ok)
	require.Equal(t, "or", or.Op)
	require.Equal(t, &Compare{Path: AttrPath{Attr: "a"}, Op: "eq", Value: 1.0, raw: "1"}, or.Left)
	and, ok := or.Right.(*Logical)
	require.True(t, ok)
	require.Equal(t, "and", and.Op)
	require.Equal(t, &Not{Expr: &Compare{Path: AttrPath{Attr: "c"}, Op: "pr"}}, and.Right)

	e, err = Parse(`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "m"`)
	require.NoError(t, err)
	require.Equal(t, AttrPath{URN: "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", Attr: "manager", Sub: "value"}, e.(*Compare).Path)
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // substring of the error
	}{
		{"empty", ``, "filter is empty"},
		{"blank", `   `, "filter is empty"},
		{"missing operator", `userName`, `at position 9: expected a space and an operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr) after "userName", found the end of the filter`},
		{"unknown operator", `userName equals "x"`, `at position 10: expected an operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr) after "userName", found "equals"`},
		{"missing value", `userName eq`, `at position 12: expected a value after "eq", found the end of the filter`},
		{"missing value before paren", `(userName eq )`, `expected a value after "eq", found ")"`},
		{"unterminated string", `userName eq "abc`, `at position 13: string starting here is not terminated`},
		{"bad escape", `userName eq "a\qb"`, `invalid string literal`},
		{"unclosed paren", `(userName eq "x"`, `expected ")" to close the "(" at position 1, found the end of the filter`},
		{"unclosed bracket", `emails[type eq "work"`, `expected "]" to close the "[" at position 7`},
		{"stray close paren", `userName eq "x")`, `at position 16: expected and, or or the end of the filter, found ")"`},
		{"dangling and", `userName eq "x" and`, `expected an attribute, "(" or "not", found the end of the filter`},
		{"dangling or", `userName eq "x" or `, `found the end of the filter`},
		{"two values", `userName eq "x" "y"`, `expected and, or or the end of the filter, found "\"y\""`},
		{"nested value path", `emails[type[value eq "x"] pr]`, `a value filter cannot contain another value filter`},
		{"value path on sub-attribute", `name.familyName[value eq "x"]`, `applies to an attribute, not to the sub-attribute`},
		{"bad attribute", `1abc eq "x"`, `"1abc" is not a valid attribute path`},
		{"colon without urn", `foo:bar eq "x"`, `"foo:bar" is not a valid attribute path`},
		{"two sub-attributes", `name.a.b eq "x"`, `"name.a.b" is not a valid attribute path`},
		{"number out of range", `n eq 1e999`, `number 1e999 is out of range`},
		{"not without operand", `not ()`, `expected an attribute`},
		{"only operator", `eq "x"`, `expected an operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr) after "eq", found "\"x\""`},
		{"too long", `userName eq "` + strings.Repeat("a", MaxLength) + `"`, `the limit is 4096`},
		{"too deep parens", strings.Repeat("(", MaxDepth+1) + `a pr` + strings.Repeat(")", MaxDepth+1), `nested more than 64 levels deep`},
		{"too deep not", strings.Repeat("not (", MaxDepth+1) + `a pr` + strings.Repeat(")", MaxDepth+1), `nested more than 64 levels deep`},
		{"plus repair does not hide errors", `userName+eq`, `expected a space and an operator`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := Parse(tt.in)
			require.Nil(t, e)
			require.Error(t, err)
			require.True(t, errors.Is(err, ErrInvalidFilter))
			require.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestParseDepthLimitAccepted(t *testing.T) {
	in := strings.Repeat("(", MaxDepth) + `a pr` + strings.Repeat(")", MaxDepth)
	_, err := Parse(in)
	require.NoError(t, err)
}
