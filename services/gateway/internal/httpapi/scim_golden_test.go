package httpapi

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
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
			vars := map[string]string{"directory": dir.id, "base": e.srv.URL + "/scim/v2/" + dir.id}
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
				var evs []string
				evs, last = e.events(last)
				if st.Events != nil {
					if evs == nil {
						evs = []string{}
					}
					require.Equal(t, *st.Events, evs, "%s: events", name)
				}
			}
		})
	}
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
