package scim_test

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"

	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
	"github.com/dsync-dev/dsync/services/gateway/internal/scim"
)

var update = flag.Bool("update", false, "rewrite golden files")

var fixedIdentity = scim.Identity{
	ID:             "directory_user_01JZ0000000000000000000000",
	DirectoryID:    "directory_01JZ0000000000000000000000",
	OrganizationID: "org_01JZ0000000000000000000000",
	CreatedAt:      time.Date(2026, 1, 2, 3, 4, 5, 6_000_000, time.UTC),
	UpdatedAt:      time.Date(2026, 1, 2, 3, 4, 5, 6_000_000, time.UTC),
}

// TestGoldenCreateBodies pins how recorded IdP create bodies (IDP-DIALECTS
// §4.1, §4.2; the Postman and OneLogin ones are derived from the quirks
// listed there) normalize and render. Run with -update to rewrite, then
// review the diff.
func TestGoldenCreateBodies(t *testing.T) {
	files, err := filepath.Glob("testdata/*.request.json")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".request.json")
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(f)
			require.NoError(t, err)
			in, err := scim.ParseUser(body)
			require.NoError(t, err)
			u, err := in.Normalize(fixedIdentity)
			require.NoError(t, err)
			norm, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(u)
			require.NoError(t, err)
			rendered, err := json.MarshalIndent(scim.RenderUser(u, 7, "https://gw.example/scim/v2/x/Users/"+u.GetId()), "", "  ")
			require.NoError(t, err)

			// protojson output is deliberately unstable in whitespace; compare
			// it as JSON.
			checkGolden(t, filepath.Join("testdata", name+".normalized.json"), norm)
			checkGolden(t, filepath.Join("testdata", name+".response.json"), rendered)
			require.NotContains(t, string(norm), "password")
			require.NotContains(t, string(rendered), "password")
		})
	}
}

func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		var v any
		require.NoError(t, json.Unmarshal(got, &v))
		pretty, err := json.MarshalIndent(v, "", "  ")
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(path, append(pretty, '\n'), 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "missing golden file; run go test -update")
	require.JSONEq(t, string(want), string(got))
}

func TestParseUser(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		scimType string // expected error, "" for success
		check    func(t *testing.T, u *scim.User)
	}{
		{name: "minimal, no schemas", body: `{"userName":"a@b.c"}`, check: func(t *testing.T, u *scim.User) {
			require.Equal(t, "a@b.c", u.UserName)
			require.True(t, u.Active)
			require.Equal(t, "a@b.c", u.PrimaryEmail(), "userName that is an address is the email")
		}},
		{name: "userName not an address", body: `{"userName":"bob"}`, check: func(t *testing.T, u *scim.User) {
			require.Empty(t, u.PrimaryEmail())
		}},
		{name: "case-insensitive names", body: `{"USERNAME":"x","ACTIVE":"FALSE","Name":{"GIVENNAME":"G"}}`, check: func(t *testing.T, u *scim.User) {
			require.Equal(t, "x", u.UserName)
			require.False(t, u.Active)
			require.Equal(t, "G", u.Name.GivenName)
		}},
		{name: "exact spelling wins", body: `{"userName":"exact","username":"lower"}`, check: func(t *testing.T, u *scim.User) {
			require.Equal(t, "exact", u.UserName)
		}},
		{name: "work email before others", body: `{"userName":"x","emails":[{"value":"h@x","type":"home"},{"value":"w@x","type":"Work"}]}`, check: func(t *testing.T, u *scim.User) {
			require.Equal(t, "w@x", u.PrimaryEmail())
		}},
		{name: "first email when no primary or work", body: `{"userName":"x","emails":[{"value":"a@x"},{"value":"b@x"}]}`, check: func(t *testing.T, u *scim.User) {
			require.Equal(t, "a@x", u.PrimaryEmail())
		}},
		{name: "primary as string", body: `{"userName":"x","emails":[{"value":"a@x"},{"value":"b@x","primary":"True"}]}`, check: func(t *testing.T, u *scim.User) {
			require.Equal(t, "b@x", u.PrimaryEmail())
		}},
		{name: "password never kept", body: `{"userName":"x","Password":"secret","id":"mine","meta":{},"groups":[{"value":"g1"}]}`, check: func(t *testing.T, u *scim.User) {
			require.NotContains(t, u.Raw, "Password")
			require.NotContains(t, u.Raw, "id")
			require.NotContains(t, u.Raw, "meta")
			require.Equal(t, []string{"g1"}, u.Groups)
		}},
		{name: "urn-prefixed attributes", body: `{"userName":"x","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department":"D","urn:ietf:params:scim:schemas:core:2.0:User:title":"T"}`, check: func(t *testing.T, u *scim.User) {
			require.Equal(t, "D", u.Enterprise.Department)
			require.Equal(t, "T", u.Title)
		}},
		{name: "manager as bare id", body: `{"userName":"x","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":"m1"}}`, check: func(t *testing.T, u *scim.User) {
			require.Equal(t, "m1", u.Enterprise.Manager.Value)
		}},
		{name: "null attributes are absent", body: `{"userName":"x","active":null,"name":null,"emails":null,"title":null}`, check: func(t *testing.T, u *scim.User) {
			require.True(t, u.Active)
		}},
		{name: "missing userName", body: `{"name":{"givenName":"x"}}`, scimType: scim.TypeInvalidValue},
		{name: "blank userName", body: `{"userName":"  "}`, scimType: scim.TypeInvalidValue},
		{name: "userName object", body: `{"userName":{}}`, scimType: scim.TypeInvalidValue},
		{name: "bad active", body: `{"userName":"x","active":"yes"}`, scimType: scim.TypeInvalidValue},
		{name: "emails of numbers", body: `{"userName":"x","emails":[1]}`, scimType: scim.TypeInvalidValue},
		{name: "name not object", body: `{"userName":"x","name":"n"}`, scimType: scim.TypeInvalidValue},
		{name: "malformed", body: `{"userName":`, scimType: scim.TypeInvalidSyntax},
		{name: "array", body: `[]`, scimType: scim.TypeInvalidSyntax},
		{name: "null", body: `null`, scimType: scim.TypeInvalidSyntax},
		{name: "empty", body: ``, scimType: scim.TypeInvalidSyntax},
		{name: "trailing data", body: `{"userName":"x"} {}`, scimType: scim.TypeInvalidSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := scim.ParseUser([]byte(tt.body))
			if tt.scimType != "" {
				var se *scim.Error
				require.ErrorAs(t, err, &se)
				require.Equal(t, 400, se.Status)
				require.Equal(t, tt.scimType, se.ScimType)
				require.NotEmpty(t, se.Detail)
				return
			}
			require.NoError(t, err)
			tt.check(t, u)
		})
	}
}

func TestNormalizeCustomAttributes(t *testing.T) {
	body := `{"userName":"u@x.io","title":"CTO","displayName":"U",
	  "emails":[{"value":"u@x.io","type":"work","primary":true}],
	  "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Eng","employeeNumber":"7",
	    "costCenter":"C","division":"D","organization":"O","manager":{"value":"m-1","displayName":"Boss"}}}`
	in, err := scim.ParseUser([]byte(body))
	require.NoError(t, err)
	u, err := in.Normalize(fixedIdentity)
	require.NoError(t, err)
	require.Equal(t, map[string]any{
		"username": "u@x.io", "job_title": "CTO", "display_name": "U",
		"emails":          []any{map[string]any{"value": "u@x.io", "type": "work", "primary": true}},
		"department_name": "Eng", "employee_number": "7", "cost_center_name": "C", "division_name": "D",
		"organization": "O", "manager_id": "m-1", "manager_name": "Boss",
	}, u.GetCustomAttributes().AsMap())
	require.Equal(t, dsyncv1.UserState_USER_STATE_ACTIVE, u.GetState())
	require.Equal(t, "CTO", u.GetJobTitle())
}

func TestParseBool(t *testing.T) {
	for _, v := range []any{true, "true", "True", "TRUE", " true "} {
		b, err := scim.ParseBool(v)
		require.NoError(t, err)
		require.True(t, b)
	}
	for _, v := range []any{false, "false", "False"} {
		b, err := scim.ParseBool(v)
		require.NoError(t, err)
		require.False(t, b)
	}
	for _, v := range []any{"yes", 1.0, nil, map[string]any{}} {
		_, err := scim.ParseBool(v)
		require.Error(t, err)
	}
}

func TestDetectProvider(t *testing.T) {
	tests := []struct{ ua, typ, want string }{
		{"Okta SCIM Client 1.0.0", "generic scim v2.0", scim.ProviderOkta},
		{"", "azure scim v2.0", scim.ProviderEntra},
		{"", "onelogin scim v2.0", scim.ProviderOneLogin},
		{"", "jumpcloud scim v2.0", scim.ProviderJumpCloud},
		{"curl/8", "rippling scim v2.0", scim.ProviderGeneric},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, scim.DetectProvider(tt.ua, tt.typ), tt)
	}
}

// FuzzParseUser checks that no body makes parsing, normalizing or
// rendering panic, and that an accepted body always has a userName and
// never keeps a password.
func FuzzParseUser(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.request.json")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{
		`{}`, `{"userName":"x"}`, `{"userName":"x","emails":"a@b"}`, `{"userName":1}`,
		`{"userName":"x","urn:scim:schemas:extension:enterprise:1.0":{"manager":[1]}}`,
		`{"userName":"x","name":{"givenName":[]}}`, `{"userName":"x","groups":{"value":{}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		in, err := scim.ParseUser(body)
		if err != nil {
			var se *scim.Error
			if !errors.As(err, &se) || se.Status != 400 {
				t.Fatalf("non-SCIM error %v", err)
			}
			return
		}
		if strings.TrimSpace(in.UserName) == "" {
			t.Fatal("accepted a body without userName")
		}
		for k := range in.Raw {
			if strings.EqualFold(k, "password") {
				t.Fatal("raw attributes keep a password")
			}
		}
		u, err := in.Normalize(fixedIdentity)
		if err != nil {
			return
		}
		if _, err := json.Marshal(scim.RenderUser(u, 1, "loc")); err != nil {
			t.Fatalf("render: %v", err)
		}
	})
}
