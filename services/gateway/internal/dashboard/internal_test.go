package dashboard

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
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

func TestMinuteCounter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 30, 0, time.UTC)
	var c minuteCounter
	c.add(now.Add(-time.Hour), 5) // a stale minute in the same ring slot is replaced, not summed
	c.add(now, 2)
	c.add(now.Add(-time.Minute), 1)
	c.add(now.Add(-59*time.Minute), 3)
	got := c.series(now)
	require.Len(t, got, minutes)
	require.Equal(t, 2, got[59])
	require.Equal(t, 1, got[58])
	require.Equal(t, 3, got[0])
	// An hour later, everything has aged out.
	require.Equal(t, make([]int, minutes), c.series(now.Add(time.Hour)))
	require.Equal(t, 2, bucketTimes(now, []time.Time{now, now.Add(-time.Second), now.Add(-time.Hour), now.Add(time.Minute)})[59])
}

func TestParseMapping(t *testing.T) {
	m, line := parseMapping("# roles\nEngineering = developer\n\n  Sales=seller  \n")
	require.Zero(t, line)
	require.Equal(t, map[string]string{"Engineering": "developer", "Sales": "seller"}, m)
	require.Equal(t, "Engineering = developer\nSales = seller\n", formatMapping(m))
	for in, want := range map[string]int{"a = b\nbroken": 2, "= x": 1, "x =": 1} {
		_, line := parseMapping(in)
		require.Equal(t, want, line, in)
	}
}

func TestChartSVG(t *testing.T) {
	counts := make([]int, minutes)
	counts[59], counts[10] = 4, 2
	c := chart{Title: "Events", Unit: `events<script>`, Counts: counts}
	svg := string(c.SVG())
	require.Equal(t, 2, strings.Count(svg, "<rect"))
	require.NotContains(t, svg, "<script>")
	require.NotContains(t, svg, "style=")
	require.Equal(t, 6, c.Total())
	require.Equal(t, "0.01/s", c.PerSecond())
}
