package filter

import (
	"encoding/json"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestIdPFilters replays the filters identity providers are documented or
// observed to send (testdata/idp_filters.json). Each query string is decoded
// the way the gateway decodes it (url.ParseQuery) before parsing; each filter
// is also parsed undecoded, as a caller that skipped decoding would pass it.
func TestIdPFilters(t *testing.T) {
	b, err := os.ReadFile("testdata/idp_filters.json")
	require.NoError(t, err)
	var cases []struct {
		Name      string
		Query     string
		Canonical string
		Terms     []Term
		Matches   map[string]bool
	}
	require.NoError(t, json.Unmarshal(b, &cases))
	require.NotEmpty(t, cases)
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			q, err := url.ParseQuery(c.Query)
			require.NoError(t, err)
			e, err := Parse(q.Get("filter"))
			require.NoError(t, err)
			require.Equal(t, c.Canonical, e.String())
			require.Equal(t, c.Terms, EqualityTerms(e))
			for file, want := range c.Matches {
				require.Equal(t, want, Match(e, loadJSON(t, file)), file)
			}

			if raw, ok := rawFilter(c.Query); ok {
				undecoded, err := Parse(raw)
				require.NoError(t, err, "undecoded %q", raw)
				require.Equal(t, c.Canonical, undecoded.String())
			}
		})
	}
}

// rawFilter returns the undecoded value of the filter parameter of a raw
// query, keeping a trailing '&' (OneLogin's) so that Parse must cope with it.
func rawFilter(q string) (string, bool) {
	for part := range strings.SplitSeq(q, "&") {
		if v, ok := strings.CutPrefix(part, "filter="); ok {
			if strings.HasSuffix(q, part+"&") {
				v += "&"
			}
			return v, true
		}
	}
	return "", false
}
