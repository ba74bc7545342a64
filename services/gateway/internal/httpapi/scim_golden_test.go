package httpapi

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// sequence is a recorded IdP request sequence (testdata/scim/*.json): the
// requests an IdP documents sending, in order, with the status, response
// fields and events each must produce.
type sequence struct {
	Description   string            `json:"description"`
	DirectoryType string            `json:"directory_type"`
	Headers       map[string]string `json:"headers"`
	Steps         []step            `json:"steps"`
}

type step struct {
	Name   string          `json:"name"`
	Method string          `json:"method"`
	Path   string          `json:"path"`
	Body   json.RawMessage `json:"body"`
	Status int             `json:"status"`
	// Expect is a subset the response body must contain: objects match
	// key by key, lists element by element (same length), "*" matches any
	// present value.
	Expect json.RawMessage `json:"expect"`
	// Absent lists top-level attributes the response must not have.
	Absent []string `json:"absent"`
	// Capture names variables set from response attributes: {"u1": "id"}.
	Capture map[string]string `json:"capture"`
	// Events are the fact events the step must append, in order; null
	// means not checked, [] means none.
	Events *[]string `json:"events"`
}

var update = flag.Bool("update", false, "rewrite the golden response files in testdata/scim/responses")

// goldenResponse is one step's full response, normalized: ids, times and
// versions replaced by placeholders so that the file is stable and any
// other change of the wire format fails the test.
type goldenResponse struct {
	Step    string            `json:"step"`
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    any               `json:"body,omitempty"`
}

var (
	timeRE    = regexp.MustCompile(`\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z`)
	versionRE = regexp.MustCompile(`W/\\?"\d+\\?"`)
	idRE      = regexp.MustCompile(`(directory_user|directory_group|directory|event|org)_[0-9A-HJKMNP-TV-Z]{26}`)
)

// normalize replaces what differs between runs in s: the values of vars
// (longest first) by {{name}}, other ids by <prefix>, times by <time> and
// versions by W/"<version>".
func normalize(s string, vars map[string]string) string {
	names := make([]string, 0, len(vars))
	for k := range vars {
		names = append(names, k)
	}
	slices.SortFunc(names, func(a, b string) int { return len(vars[b]) - len(vars[a]) })
	for _, k := range names {
		s = strings.ReplaceAll(s, vars[k], "{{"+k+"}}")
	}
	s = timeRE.ReplaceAllString(s, "<time>")
	s = versionRE.ReplaceAllStringFunc(s, func(v string) string {
		if strings.Contains(v, `\"`) {
			return `W/\"<version>\"`
		}
		return `W/"<version>"`
	})
	return idRE.ReplaceAllString(s, "<$1>")
}

// TestGoldenIdPSequences replays each IdP's documented request sequence
// against the gateway on a real JetStream server.
func TestGoldenIdPSequences(t *testing.T) {
	files, err := filepath.Glob("testdata/scim/*.json")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".json"), func(t *testing.T) {
			data, err := os.ReadFile(f)
			require.NoError(t, err)
			var seq sequence
			require.NoError(t, json.Unmarshal(data, &seq))
			e := newSCIMEnv(t)
			dir := e.directory(seq.DirectoryType)
			vars := map[string]string{"directory": dir.id, "base": e.srv.URL + "/scim/v2/" + dir.id, "server": e.srv.URL}
			subst := func(s string) string {
				for k, v := range vars {
					s = strings.ReplaceAll(s, "{{"+k+"}}", v)
				}
				return s
			}
			var headers []string
			for k, v := range seq.Headers {
				headers = append(headers, k, v)
			}
			last := e.lastSeq()
			var responses []goldenResponse
			for i, st := range seq.Steps {
				name := fmt.Sprintf("step %d (%s %s: %s)", i+1, st.Method, st.Path, st.Name)
				body := ""
				if len(st.Body) > 0 && string(st.Body) != "null" {
					body = subst(string(st.Body))
				}
				// The files spell queries readably; on the wire they are encoded.
				path := strings.NewReplacer(" ", "%20", `"`, "%22").Replace(subst(st.Path))
				r := e.scim(dir, st.Method, path, body, headers...)
				require.Equal(t, st.Status, r.status, "%s: %s", name, r.body)
				var got any
				if len(r.body) > 0 {
					require.NoError(t, json.Unmarshal(r.body, &got), name)
				}
				if len(st.Expect) > 0 {
					var want any
					require.NoError(t, json.Unmarshal([]byte(subst(string(st.Expect))), &want), name)
					requireSubset(t, name, "", want, got)
				}
				for _, a := range st.Absent {
					require.NotContains(t, got, a, "%s: %s", name, r.body)
				}
				for v, attr := range st.Capture {
					m, _ := got.(map[string]any)
					val, _ := lookup(m, attr).(string)
					require.NotEmpty(t, val, "%s: capture %s", name, attr)
					vars[v] = val
				}
				gr := goldenResponse{Step: st.Name, Status: r.status, Headers: map[string]string{}}
				for _, h := range []string{"Content-Type", "Location", "ETag", "Retry-After"} {
					if v := r.header.Get(h); v != "" {
						gr.Headers[h] = normalize(v, vars)
					}
				}
				if len(r.body) > 0 {
					require.NoError(t, json.Unmarshal([]byte(normalize(string(r.body), vars)), &gr.Body), name)
				}
				responses = append(responses, gr)
				var evs []string
				evs, last = e.events(last)
				if st.Events != nil {
					if evs == nil {
						evs = []string{}
					}
					require.Equal(t, *st.Events, evs, "%s: events", name)
				}
			}
			requireGoldenResponses(t, filepath.Join("testdata", "scim", "responses", filepath.Base(f)), responses)
		})
	}
}

// requireGoldenResponses compares a sequence's full responses with its
// golden file (go test -update rewrites it).
func requireGoldenResponses(t *testing.T, path string, got []goldenResponse) {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	require.NoError(t, enc.Encode(got))
	data := buf.Bytes()
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, data, 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "golden file missing: run go test -run TestGoldenIdPSequences -update")
	require.Equal(t, string(want), string(data), "full responses differ from %s (go test -update rewrites it after a deliberate change)", path)
}

// lookup follows a dotted path of object keys and list indexes.
func lookup(v any, path string) any {
	for p := range strings.SplitSeq(path, ".") {
		switch t := v.(type) {
		case map[string]any:
			v = t[p]
		case []any:
			var i int
			if _, err := fmt.Sscan(p, &i); err != nil || i >= len(t) {
				return nil
			}
			v = t[i]
		default:
			return nil
		}
	}
	return v
}

func requireSubset(t *testing.T, name, at string, want, got any) {
	t.Helper()
	if want == "*" {
		require.NotNil(t, got, "%s: %s must be present", name, at)
		return
	}
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		require.True(t, ok, "%s: %s: want an object, got %v", name, at, got)
		for k, wv := range w {
			gv, ok := g[k]
			require.True(t, ok, "%s: %s.%s missing in %v", name, at, k, got)
			requireSubset(t, name, at+"."+k, wv, gv)
		}
	case []any:
		g, ok := got.([]any)
		require.True(t, ok, "%s: %s: want a list, got %v", name, at, got)
		require.Len(t, g, len(w), "%s: %s: %v", name, at, got)
		for i := range w {
			requireSubset(t, name, fmt.Sprintf("%s[%d]", at, i), w[i], g[i])
		}
	default:
		require.True(t, reflect.DeepEqual(want, got), "%s: %s: want %v, got %v", name, at, want, got)
	}
}
