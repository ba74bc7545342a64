package dashboard_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func (a *restAPI) sent(call string) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	b, ok := a.bodies[call]
	return b, ok
}

// Each directory and webhook action posts to its REST API route, with the
// CSRF token, and lands where the operator sees the result.
func TestActions(t *testing.T) {
	tests := []struct {
		name     string
		path     string
		form     url.Values
		call     string
		status   int
		location string
		body     []string
	}{
		{name: "pause", path: "/dashboard/directories/" + dirID + "/pause", call: "POST /directories/" + dirID + "/pause",
			status: http.StatusSeeOther, location: "/dashboard/directories/" + dirID + "?done=paused"},
		{name: "resume", path: "/dashboard/directories/" + dirID + "/resume", call: "POST /directories/" + dirID + "/resume",
			status: http.StatusSeeOther, location: "/dashboard/directories/" + dirID + "?done=resumed"},
		{name: "rotate token", path: "/dashboard/directories/" + dirID + "/rotate-token", call: "POST /directories/" + dirID + "/token",
			status: http.StatusOK, body: []string{newToken, "previous token no longer works"}},
		{name: "delete", path: "/dashboard/directories/" + dirID + "/delete", form: url.Values{"confirm": {"Acme Okta"}},
			call: "DELETE /directories/" + dirID, status: http.StatusSeeOther, location: "/dashboard/directories?done=deleted"},
		{name: "rotate secret", path: "/dashboard/webhooks/" + epID + "/secret", form: url.Values{"grace_hours": {"2"}},
			call: "POST /webhook_endpoints/" + epID + "/secret", status: http.StatusOK, body: []string{newSecret, "2 hours"}},
		{name: "resend", path: "/dashboard/webhooks/" + epID + "/deliveries/" + dlvID + "/resend",
			call: "POST /webhook_endpoints/" + epID + "/deliveries/" + dlvID + "/resend", status: http.StatusSeeOther,
			location: "/dashboard/webhooks/" + epID + "?done=resent"},
		{name: "recover", path: "/dashboard/webhooks/" + epID + "/recover", form: url.Values{"since": {"2026-01-02T03:04"}},
			call: "POST /webhook_endpoints/" + epID + "/recover", status: http.StatusSeeOther,
			location: "/dashboard/webhooks/" + epID + "?done=recovered&n=2"},
		{name: "replay since", path: "/dashboard/webhooks/" + epID + "/replay", form: url.Values{"since": {"2026-01-02T03:04"}},
			call: "POST /webhook_endpoints/" + epID + "/replay", status: http.StatusSeeOther,
			location: "/dashboard/webhooks/" + epID + "?done=replayed&n=3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			b := f.browser(t)
			csrf := b.signIn(apiKey)
			form := url.Values{"csrf": {csrf}}
			for k, v := range tt.form {
				form[k] = v
			}
			resp, body := b.do("POST", tt.path, form)
			require.Equal(t, tt.status, resp.StatusCode, body)
			if tt.location != "" {
				require.Equal(t, tt.location, resp.Header.Get("Location"))
				_, page := b.do("GET", tt.location, nil)
				require.Contains(t, page, `class="flash"`, "the action's result is said")
			}
			for _, w := range tt.body {
				require.Contains(t, body, w)
			}
			_, ok := f.api.sent(tt.call)
			require.True(t, ok, "%s was not called", tt.call)
		})
	}
}

// Without the page's CSRF token, no action reaches the API.
func TestNewActionsRequireCSRF(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	b.signIn(apiKey)
	for _, p := range []string{"/directories/" + dirID + "/pause", "/directories/" + dirID + "/rotate-token",
		"/directories/" + dirID + "/delete", "/directories/" + dirID + "/settings", "/webhooks/" + epID + "/secret",
		"/webhooks/" + epID + "/replay"} {
		resp, _ := b.do("POST", "/dashboard"+p, url.Values{"csrf": {"forged"}, "confirm": {"Acme Okta"}})
		require.Equal(t, http.StatusForbidden, resp.StatusCode, p)
	}
	f.api.mu.Lock()
	defer f.api.mu.Unlock()
	for _, c := range f.api.calls {
		require.False(t, strings.HasPrefix(c, "POST /directories/") || strings.HasPrefix(c, "DELETE") ||
			strings.HasPrefix(c, "PATCH") || strings.HasPrefix(c, "POST /webhook_endpoints/"), c)
	}
}

func TestDeleteNeedsTheNameTyped(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	csrf := b.signIn(apiKey)
	resp, body := b.do("POST", "/dashboard/directories/"+dirID+"/delete", url.Values{"csrf": {csrf}, "confirm": {"acme"}})
	require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode)
	require.Contains(t, body, "Type the directory")
	_, called := f.api.sent("DELETE /directories/" + dirID)
	require.False(t, called)
}

func TestSettings(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	csrf := b.signIn(apiKey)
	_, page := b.do("GET", "/dashboard/directories/"+dirID+"/settings", nil)
	require.Contains(t, page, "Engineering = developer", "the current role mapping is in the form")
	require.Contains(t, page, `value="25"`)

	tests := []struct {
		name  string
		form  url.Values
		code  int
		want  map[string]any
		error string
	}{
		{"settings", url.Values{"on_deactivate": {"delete"}, "rate_limit": {"5"}, "role_mapping": {"Engineering = developer"},
			"attribute_mapping": {"department = urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"}},
			http.StatusSeeOther, map[string]any{"on_deactivate": "delete", "rate_limit_per_second": 5.0,
				"attribute_mapping": map[string]any{"department": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"}}, ""},
		{"bad rate", url.Values{"on_deactivate": {"delete"}, "rate_limit": {"fast"}}, http.StatusUnprocessableEntity, nil, "rate limit must be a number"},
		{"bad mapping", url.Values{"on_deactivate": {"delete"}, "role_mapping": {"Engineering"}}, http.StatusUnprocessableEntity, nil, "Role mapping, line 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form := url.Values{"csrf": {csrf}}
			for k, v := range tt.form {
				form[k] = v
			}
			resp, body := b.do("POST", "/dashboard/directories/"+dirID+"/settings", form)
			require.Equal(t, tt.code, resp.StatusCode, body)
			if tt.error != "" {
				require.Contains(t, body, tt.error)
				return
			}
			sent, ok := f.api.sent("PATCH /directories/" + dirID)
			require.True(t, ok)
			var got map[string]any
			require.NoError(t, json.Unmarshal([]byte(sent), &got))
			require.Equal(t, tt.want, got, "an unchanged role mapping is not sent")
		})
	}
}

func TestGroupHistoryAndRequestPages(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	b.signIn(apiKey)
	tests := []struct {
		path string
		want []string
		not  []string
	}{
		{"/dashboard/directories/" + dirID + "/groups", []string{"Engineering", "00g1", ">7<"}, nil},
		{"/dashboard/directories/" + dirID + "/groups?q=ENGIN", []string{"Engineering"}, nil},
		{"/dashboard/directories/" + dirID + "/groups?q=sales", []string{"No group matches"}, nil},
		{"/dashboard/groups/" + groupID, []string{"Engineering", "7 members", "ada@example.com", "displayName"}, nil},
		// The user's history: its event, the request that caused it and the
		// delivery that carried it, and nothing about another user.
		{"/dashboard/users/" + userID, []string{"History", eventID, "/dashboard/directories/" + dirID + "/requests/" + reqID,
			"https://app.test/hook", "HTTP 500"}, []string{"someone.else@example.com"}},
		{"/dashboard/directories/" + dirID + "/requests/" + reqID, []string{"no longer in the request log", eventID}, nil},
		{"/dashboard/webhooks/" + epID + "?state=failed&event=dsync.user.created&since=2026-01-01T00:00", []string{"upstream exploded", "Resend"}, nil},
		{"/dashboard/health", []string{"SCIM requests", "Events", "Webhook delivery attempts", "<svg", "Delivery backlog", "Round trip"}, nil},
	}
	for _, tt := range tests {
		resp, body := b.do("GET", tt.path, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode, tt.path+": "+body)
		for _, w := range tt.want {
			require.Contains(t, body, w, tt.path)
		}
		for _, w := range tt.not {
			require.NotContains(t, body, w, tt.path)
		}
	}
	for _, p := range []string{"/dashboard/groups/directory_group_bad..", "/dashboard/directories/" + dirID + "/requests/nope"} {
		resp, _ := b.do("GET", p, nil)
		require.Equal(t, http.StatusNotFound, resp.StatusCode, p)
	}
	sent := func(call string) bool { _, ok := f.api.sent(call); return ok }
	require.True(t, sent("GET /webhook_endpoints/"+epID+"/deliveries"))
}
