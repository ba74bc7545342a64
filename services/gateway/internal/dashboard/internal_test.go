package dashboard

import (
	"strings"
	"testing"
)

func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/dashboard/", "/dashboard/health?x=1", "//evil.test", "/\\evil", "https://evil.test", "", "/dashboard"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, next string) {
		got := safeNext(next)
		if !strings.HasPrefix(got, Prefix) {
			t.Fatalf("safeNext(%q) = %q leaves the dashboard", next, got)
		}
	})
}

func FuzzValidCursor(f *testing.F) {
	for _, s := range []string{"directory_01JZ0000000000000000000000", "", "a&b=c", "x y", strings.Repeat("a", 101)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if validCursor(s) && strings.ContainsAny(s, "&=?#/ .%+") {
			t.Fatalf("validCursor(%q) admits a query metacharacter", s)
		}
	})
}

func TestProviderSetupSteps(t *testing.T) {
	okta := providerFor("okta scim v2.0")
	steps := strings.Join(okta.Steps, "\n")
	order := []string{`"Provisioning" tab`, `"Configure API Integration"`, "Paste", `"Test API Credentials"`,
		`"Create Users", "Update User Attributes" and "Deactivate Users"`, "push groups"}
	at := 0
	for _, s := range order {
		i := strings.Index(steps[at:], s)
		if i < 0 {
			t.Fatalf("Okta steps lack %q after position %d:\n%s", s, at, steps)
		}
		at += i
	}
	if got := providerFor("unknown"); got.Type != "generic scim v2.0" {
		t.Fatalf("unknown type gets %q", got.Type)
	}
	if len(providers) != 8 {
		t.Fatalf("want the 8 providers of the issue, have %d", len(providers))
	}
}
