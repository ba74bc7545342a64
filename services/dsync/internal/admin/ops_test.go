package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// restServer is a real HTTP server answering the routes the operations
// use, recording each request's method, path, query and body.
type restServer struct {
	mu   sync.Mutex
	reqs []string
	// events is what GET /events serves, in order.
	events []map[string]any
}

func (s *restServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.reqs = append(s.reqs, strings.TrimSpace(r.Method+" "+r.URL.Path+"?"+r.URL.RawQuery+" "+string(body)))
	s.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer sk_test" {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	write := func(v any) { _ = json.NewEncoder(w).Encode(v) }
	list := func(items ...map[string]any) map[string]any {
		if items == nil {
			items = []map[string]any{}
		}
		return map[string]any{"object": "list", "data": items, "list_metadata": map[string]any{}}
	}
	switch {
	case r.URL.Path == "/directories/directory_1/token":
		write(map[string]any{"id": "directory_1", "scim": map[string]any{"endpoint": "http://x/scim/v2/directory_1", "bearer_token": "tok_new"}})
	case strings.HasPrefix(r.URL.Path, "/directories/directory_1/"):
		write(map[string]any{"id": "directory_1", "state": "unlinked"})
	case r.Method == http.MethodDelete:
		w.WriteHeader(http.StatusAccepted)
	case r.URL.Path == "/directory_groups":
		write(list(map[string]any{"id": "g1", "name": "Engineering", "member_count": 3}, map[string]any{"id": "g2", "name": "Sales"}))
	case r.URL.Path == "/directory_users":
		write(list(map[string]any{"id": "u1", "email": "ada@x.test"}))
	case strings.HasSuffix(r.URL.Path, "/resend"):
		write(map[string]any{"id": "whd_1", "state": "pending"})
	case strings.HasSuffix(r.URL.Path, "/recover"):
		write(map[string]any{"recovered": 2})
	case strings.HasSuffix(r.URL.Path, "/replay"):
		write(map[string]any{"scheduled": 5})
	case strings.HasSuffix(r.URL.Path, "/deliveries"):
		write(list(map[string]any{"id": "whd_1", "event": "dsync.user.created", "state": "failed", "attempt_count": 2}))
	case r.URL.Path == "/events":
		s.mu.Lock()
		evs := s.events
		s.mu.Unlock()
		q := r.URL.Query()
		if q.Get("order") == "desc" {
			write(list(evs[len(evs)-1]))
			return
		}
		var out []map[string]any
		seen := q.Get("after") == ""
		for _, e := range evs {
			if seen {
				out = append(out, e)
			}
			if e["id"] == q.Get("after") {
				seen = true
			}
		}
		write(list(out...))
	default:
		w.WriteHeader(http.StatusNotFound)
		write(map[string]string{"code": "not_found", "message": "no route"})
	}
}

func (s *restServer) last() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reqs[len(s.reqs)-1]
}

func run(t *testing.T, url string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	env := map[string]string{"DSYNC_URL": url, "DSYNC_API_KEY": "sk_test", "DSYNC_DATA_DIR": t.TempDir()}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	err := Run(ctx, args, func(k string) string { return env[k] }, &out, &errOut)
	return out.String(), err
}

func TestOperations(t *testing.T) {
	srv := &restServer{}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	tests := []struct {
		args    []string
		request string // prefix of the request sent
		out     []string
	}{
		{[]string{"directory", "rotate-token", "directory_1"}, "POST /directories/directory_1/token", []string{"tok_new", "shown once"}},
		{[]string{"directory", "pause", "directory_1"}, "POST /directories/directory_1/pause", []string{"unlinked"}},
		{[]string{"directory", "resume", "directory_1"}, "POST /directories/directory_1/resume", nil},
		{[]string{"directory", "delete", "directory_1", "--yes"}, "DELETE /directories/directory_1", []string{"deleted directory_1"}},
		{[]string{"group", "list", "--directory", "directory_1"}, "GET /directory_groups?directory=directory_1", []string{"Engineering", "Sales", "MEMBERS"}},
		{[]string{"group", "members", "g1"}, "GET /directory_users?group=g1", []string{"ada@x.test"}},
		{[]string{"webhook", "deliveries", "we_1", "--state", "failed"}, "GET /webhook_endpoints/we_1/deliveries?state=failed", []string{"whd_1", "failed"}},
		{[]string{"webhook", "resend", "we_1", "whd_1"}, "POST /webhook_endpoints/we_1/deliveries/whd_1/resend", []string{"pending"}},
		{[]string{"webhook", "recover", "we_1", "--since", "2025-01-02T03:04:05Z"}, `POST /webhook_endpoints/we_1/recover? {"since":"2025-01-02T03:04:05Z"}`, []string{"recovered", "2"}},
		{[]string{"webhook", "replay", "we_1", "--after", "event_1"}, `POST /webhook_endpoints/we_1/replay? {"after":"event_1"}`, []string{"scheduled", "5"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out, err := run(t, hs.URL, tt.args...)
			require.NoError(t, err)
			require.True(t, strings.HasPrefix(srv.last(), tt.request), "sent %q", srv.last())
			for _, w := range tt.out {
				require.Contains(t, out, w)
			}
		})
	}
	out, err := run(t, hs.URL, "group", "list", "--directory", "directory_1", "--search", "ENG")
	require.NoError(t, err)
	require.Contains(t, out, "Engineering")
	require.NotContains(t, out, "Sales")
}

func TestOperationUsageErrors(t *testing.T) {
	tests := [][]string{
		{"directory", "delete", "directory_1"},
		{"webhook", "recover", "we_1"},
		{"webhook", "recover", "we_1", "--since", "yesterday"},
		{"webhook", "replay", "we_1"},
		{"webhook", "replay", "we_1", "--since", "1h", "--after", "event_1"},
		{"webhook", "resend", "we_1"},
		{"group", "list"},
	}
	for _, args := range tests {
		_, err := run(t, "http://127.0.0.1:1", args...)
		require.Equal(t, ExitUsage, ExitCode(err), "%v: %v", args, err)
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2025, 1, 2, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]string{
		"2025-01-01T00:00:00Z":      "2025-01-01T00:00:00Z",
		"2025-01-01T01:00:00+01:00": "2025-01-01T00:00:00Z",
		"90m":                       "2025-01-02T10:30:00Z",
		"24h":                       "2025-01-01T12:00:00Z",
	} {
		got, err := parseSince(in, now)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "-1h", "yesterday"} {
		_, err := parseSince(bad, now)
		require.Error(t, err, bad)
	}
}

// events tail prints the events after the newest one, as they come, and
// --count ends it.
func TestEventsTail(t *testing.T) {
	srv := &restServer{events: []map[string]any{{"id": "event_1", "event": "dsync.user.created", "data": map[string]any{"id": "u0"}}}}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	go func() {
		// New events arrive while it follows.
		require.Eventually(t, func() bool {
			srv.mu.Lock()
			defer srv.mu.Unlock()
			return len(srv.reqs) >= 2
		}, 5*time.Second, 10*time.Millisecond)
		srv.mu.Lock()
		srv.events = append(srv.events,
			map[string]any{"id": "event_2", "event": "dsync.user.updated", "data": map[string]any{"id": "u1", "email": "ada@x.test"}, "context": map[string]any{"request_id": "req_9"}},
			map[string]any{"id": "event_3", "event": "dsync.group.created", "data": map[string]any{"id": "g1", "name": "Eng"}})
		srv.mu.Unlock()
	}()
	out, err := run(t, hs.URL, "events", "tail", "--directory", "directory_1", "--count", "2", "--interval", "100ms")
	require.NoError(t, err)
	require.NotContains(t, out, "u0", "events before the tail began are not printed")
	require.Contains(t, out, "ada@x.test")
	require.Contains(t, out, "req_9")
	require.Contains(t, out, "dsync.group.created")
	require.Contains(t, srv.reqs[0], "directory_id=directory_1")

	out, err = run(t, hs.URL, "events", "tail", "--from-start", "--count", "3", "--json")
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 3)
	for _, l := range lines {
		require.True(t, json.Valid([]byte(l)), l)
	}
}
