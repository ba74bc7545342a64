package patch

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{
		"userName", "name.familyName", `emails[type eq "work"].value`, `members[value eq "x"]`,
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
		`members[value eq "a]b"]`, `emails[type eq "work" and primary eq true].display`, "emails[", "a.b.c",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePath(s)
		if err != nil {
			var pe *Error
			require.True(t, errors.As(err, &pe), "%T %v", err, err)
			require.Equal(t, ScimInvalidPath, pe.ScimType)
			return
		}
		again, err := ParsePath(p.String())
		if len(p.String()) > 4096 {
			return
		}
		require.NoError(t, err, "%q renders as %q", s, p.String())
		require.Equal(t, p.String(), again.String())
	})
}

func FuzzParseRequest(f *testing.F) {
	files, _ := filepath.Glob("testdata/golden/*.json")
	for _, file := range files {
		b, err := os.ReadFile(file)
		require.NoError(f, err)
		var c struct{ Request json.RawMessage }
		require.NoError(f, json.Unmarshal(b, &c))
		f.Add(string(c.Request))
	}
	f.Add(`{"Operations":[{"op":"move"}]}`)
	f.Add(`{"operations":[{"OP":"Remove"}]}`)
	f.Fuzz(func(t *testing.T, body string) {
		ops, err := ParseRequest([]byte(body))
		if err != nil {
			var pe *Error
			require.True(t, errors.As(err, &pe), "%T %v", err, err)
			require.Nil(t, ops)
			return
		}
		require.NotEmpty(t, ops)
		members, rest, err := SplitMembers(ops)
		if err != nil {
			var pe *Error
			require.True(t, errors.As(err, &pe), "%T %v", err, err)
			return
		}
		_ = members
		for _, schema := range []Schema{UserSchema(), GroupSchema(), nil} {
			_, err := Apply(fuzzResource(t), rest, schema)
			if err != nil {
				var pe *Error
				require.True(t, errors.As(err, &pe), "%T %v", err, err)
			}
		}
	})
}

func fuzzResource(t testing.TB) map[string]any {
	return obj(t, `{"id":"u1","userName":"bjensen","externalId":"e1",
	 "name":{"givenName":"Barbara","familyName":"Jensen"},
	 "emails":[{"value":"a@x","type":"work","primary":true},{"Value":"b@x","Type":"home"}],
	 "addresses":[{"type":"work","streetAddress":"1 A St"}],
	 "members":[{"value":"m1"},"m2"],
	 "title":"t","active":"True","loginCount":3,
	 "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":{"value":"m0"},"department":"d"},
	 "meta":{"resourceType":"User","created":"2011-08-01T18:29:49.793Z"}}`)
}

// FuzzApply applies random operations to a fixed resource: Apply never
// panics, every error is an *Error, and the input is never modified.
func FuzzApply(f *testing.F) {
	f.Add("replace", `emails[type eq "work"].value`, `"c@x"`)
	f.Add("add", "manager", `[{"value":"m2"}]`)
	f.Add("remove", `members[value eq "m1"]`, `null`)
	f.Add("replace", "", `{"name.givenName":"x","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber":1}`)
	f.Add("add", "emails", `[{"value":"d@x","primary":"True"}]`)
	f.Add("replace", "", `{"id":"u2"}`)
	f.Add("remove", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", `null`)
	f.Add("Replace", "name", `{"givenName":null}`)
	f.Fuzz(func(t *testing.T, op, path, value string) {
		var v any
		if json.Unmarshal([]byte(value), &v) != nil {
			v = value
		}
		in := fuzzResource(t)
		for _, schema := range []Schema{UserSchema(), GroupSchema(), nil} {
			out, err := Apply(in, []Operation{{Op: op, Path: path, Value: v}, {Op: "add", Path: "title", Value: v}}, schema)
			if err != nil {
				var pe *Error
				require.True(t, errors.As(err, &pe), "%T %v", err, err)
				require.Nil(t, out)
			} else {
				_, err := json.Marshal(out)
				require.NoError(t, err)
			}
		}
		require.Equal(t, fuzzResource(t), in, "Apply modified its input")
	})
}
