package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dsync-dev/dsync/services/dsync/internal/admin"
	"github.com/dsync-dev/dsync/services/dsync/internal/app"
)

// cli runs `dsync admin …` the way the binary does, against url with key.
type cli struct {
	t        *testing.T
	url, key string
}

type cliResult struct {
	out, errOut string
	code        int
	err         error
}

func (c cli) run(args ...string) cliResult {
	c.t.Helper()
	var out, errOut bytes.Buffer
	env := map[string]string{"DSYNC_URL": c.url, "DSYNC_API_KEY": c.key, "DSYNC_DATA_DIR": c.t.TempDir()}
	ctx, cancel := context.WithTimeout(c.t.Context(), 30*time.Second)
	defer cancel()
	err := app.Run(ctx, append([]string{"admin"}, args...), func(k string) string { return env[k] }, &out, &errOut)
	return cliResult{out: out.String(), errOut: errOut.String(), code: admin.ExitCode(err), err: err}
}

// ok runs a command that must succeed and returns its stdout.
func (c cli) ok(args ...string) string {
	c.t.Helper()
	r := c.run(args...)
	require.NoError(c.t, r.err, "dsync admin %s\nstderr: %s", strings.Join(args, " "), r.errOut)
	return r.out
}

func (c cli) json(args ...string) map[string]any {
	c.t.Helper()
	var m map[string]any
	out := c.ok(append(args, "--json")...)
	require.NoError(c.t, json.Unmarshal([]byte(out), &m), out)
	return m
}

// Every `dsync admin` command against a running `dsync dev`, in tables and
// JSON, and the exit codes of its failures.
func TestAdminCLI(t *testing.T) {
	cfg := devConfig(t)
	cfg.Demo = false
	sys := startDev(t, cfg)
	c := cli{t: t, url: sys.HTTPURL, key: sys.APIKey}

	out := c.ok("status")
	require.Contains(t, out, ": ok")
	require.Regexp(t, `projector\s+ok`, out)
	require.Equal(t, "ok", c.json("status")["status"])

	org := c.json("org", "create", "--name", "Acme", "--domain", "acme.com")
	orgID := org["id"].(string)
	require.True(t, strings.HasPrefix(orgID, "org_"))
	require.Contains(t, c.ok("org", "create", "--name", "Globex"), "Globex")

	// GET /organizations is not in every server version; when it is
	// missing the command says so with its own exit code.
	if r := c.run("org", "list"); r.err != nil {
		require.Equal(t, admin.ExitNotAvailable, r.code, r.err)
		require.Contains(t, r.err.Error(), "not available in this server version")
	} else {
		require.Contains(t, r.out, "Acme")
	}

	dir := c.json("directory", "create", "--org", orgID, "--name", "Acme Okta", "--type", "okta")
	dirID := dir["id"].(string)
	require.Equal(t, "okta scim v2.0", dir["type"])
	scim := dir["scim"].(map[string]any)
	endpoint, token := scim["endpoint"].(string), scim["bearer_token"].(string)
	require.NotEmpty(t, token)
	out = c.ok("directory", "create", "--org", orgID, "--name", "Acme Entra", "--type", "entra")
	require.Contains(t, out, "azure scim v2.0")
	require.Contains(t, out, "shown once")

	out = c.ok("directory", "list")
	require.Contains(t, out, "Acme Okta")
	require.Contains(t, out, "Acme Entra")
	require.Contains(t, strings.SplitN(out, "\n", 2)[0], "TYPE")
	require.Contains(t, c.ok("directory", "list", "--search", "entra"), "Acme Entra")
	require.NotContains(t, c.ok("directory", "list", "--search", "entra"), "Acme Okta")
	r := c.run("directory", "list", "--limit", "1")
	require.NoError(t, r.err)
	require.Contains(t, r.errOut, "--after", "a partial list says how to go on")
	r = c.run("directory", "list", "--limit", "1", "--all", "--json")
	require.NoError(t, r.err)
	var all map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.out), &all))
	require.Len(t, all["data"], 2)
	require.Contains(t, r.errOut, "fetched 2 in 2 pages")
	out = c.ok("directory", "get", dirID)
	require.Contains(t, out, "okta scim v2.0")
	require.NotContains(t, out, token, "the token is never shown again")

	hc := client{t: t, http: defaultHTTPClient()}
	status, _, user := hc.do("POST", endpoint+"/Users", token, oktaCreateUser(t))
	require.Equal(t, http.StatusCreated, status, user)
	userID := user["id"].(string)
	out = c.ok("user", "list", "--directory", dirID)
	require.Contains(t, out, userID)
	require.Contains(t, out, "EMAIL")
	got := c.json("user", "get", userID)
	require.Equal(t, dirID, got["directory_id"])
	require.Contains(t, c.ok("user", "get", userID), "raw_attributes")

	rcv := newReceiver(t)
	ep := c.json("webhook", "create", rcv.URL+"/hook", "--event", "dsync.user.created,dsync.user.updated")
	require.True(t, strings.HasPrefix(ep["secret"].(string), "whsec_"))
	out = c.ok("webhook", "list")
	require.Contains(t, out, rcv.URL+"/hook")
	require.NotContains(t, out, ep["secret"].(string))
	epID := ep["id"].(string)

	// Groups: one pushed by the IdP, listed with its member count, and its members.
	status, _, grp := hc.do("POST", endpoint+"/Groups", token, map[string]any{
		"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"}, "displayName": "Engineering",
		"members": []map[string]string{{"value": userID}},
	})
	require.Equal(t, http.StatusCreated, status, grp)
	var groups map[string]any
	require.Eventually(t, func() bool {
		groups = c.json("group", "list", "--directory", dirID)
		return len(groups["data"].([]any)) == 1
	}, 10*time.Second, 50*time.Millisecond)
	g := groups["data"].([]any)[0].(map[string]any)
	require.Equal(t, "Engineering", g["name"])
	require.Regexp(t, `Engineering\s+1\s`, c.ok("group", "list", "--directory", dirID, "--search", "engin"))
	require.Contains(t, c.ok("group", "members", g["id"].(string)), userID)

	// Deliveries: the user's update is delivered; resend, recover, replay.
	status, _, _ = hc.do("PATCH", endpoint+"/Users/"+userID, token, map[string]any{
		"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []map[string]any{{"op": "replace", "path": "title", "value": "Engineer"}},
	})
	require.Equal(t, http.StatusOK, status)
	var dl map[string]any
	require.Eventually(t, func() bool {
		dl = c.json("webhook", "deliveries", epID, "--state", "succeeded", "--event", "dsync.user.updated")
		return len(dl["data"].([]any)) == 1
	}, 15*time.Second, 100*time.Millisecond)
	dlvID := dl["data"].([]any)[0].(map[string]any)["id"].(string)
	require.Contains(t, c.ok("webhook", "deliveries", epID), dlvID)
	require.Contains(t, c.ok("webhook", "resend", epID, dlvID), dlvID)
	require.Regexp(t, `recovered\s+0`, c.ok("webhook", "recover", epID, "--since", "1h"))
	replay := c.json("webhook", "replay", epID, "--since", time.Now().Add(-time.Hour).UTC().Format(time.RFC3339))
	require.Positive(t, replay["scheduled"], "the user's created and updated events are scheduled again")

	// events tail: the directory's events from the start, then it stops.
	out = c.ok("events", "tail", "--directory", dirID, "--from-start", "--count", "3")
	require.Contains(t, out, "dsync.user.created")
	require.Contains(t, out, userID)
	tail := c.run("events", "tail", "--directory", dirID, "--event", "dsync.user.created", "--from-start", "--count", "1", "--json")
	require.NoError(t, tail.err)
	var first map[string]any
	require.NoError(t, json.Unmarshal([]byte(tail.out), &first))
	require.Equal(t, "dsync.user.created", first["event"])

	// Token rotation: the new token works, the old one no longer does.
	rot := c.json("directory", "rotate-token", dirID)
	newToken := rot["scim"].(map[string]any)["bearer_token"].(string)
	require.NotEqual(t, token, newToken)
	status, _, _ = hc.do("GET", endpoint+"/Users", token, nil)
	require.Equal(t, http.StatusUnauthorized, status)
	status, _, _ = hc.do("GET", endpoint+"/Users", newToken, nil)
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, c.ok("directory", "rotate-token", dirID), "shown once")
	rot = c.json("directory", "rotate-token", dirID)
	newToken = rot["scim"].(map[string]any)["bearer_token"].(string)

	// Pause: SCIM answers 503 until resumed.
	require.Contains(t, c.ok("directory", "pause", dirID), "unlinked")
	status, _, _ = hc.do("GET", endpoint+"/Users", newToken, nil)
	require.Equal(t, http.StatusServiceUnavailable, status)
	require.Equal(t, "linked", c.json("directory", "resume", dirID)["state"])
	status, _, _ = hc.do("GET", endpoint+"/Users", newToken, nil)
	require.Equal(t, http.StatusOK, status)

	// Delete needs --yes; then the token stops working.
	require.Equal(t, admin.ExitUsage, c.run("directory", "delete", dirID).code)
	require.Contains(t, c.ok("directory", "delete", dirID, "--yes"), "deleted "+dirID)
	status, _, _ = hc.do("GET", endpoint+"/Users", newToken, nil)
	require.Equal(t, http.StatusUnauthorized, status)

	// Failures and their exit codes.
	closed := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := l.Addr().String()
		require.NoError(t, l.Close())
		return "http://" + addr
	}()
	failures := []struct {
		name string
		c    cli
		args []string
		code int
		msg  string
	}{
		{"wrong key", cli{t, sys.HTTPURL, "sk_wrong"}, []string{"directory", "list"}, admin.ExitUnauthorized, "refused the API key"},
		{"no key", cli{t, sys.HTTPURL, ""}, []string{"directory", "list"}, admin.ExitUnauthorized, "no API key"},
		{"unknown directory", c, []string{"directory", "get", "directory_01JZ0000000000000000000000"}, admin.ExitNotFound, "not found"},
		{"unknown user", c, []string{"user", "get", "directory_user_01JZ0000000000000000000000"}, admin.ExitNotFound, "not found"},
		{"bad type", c, []string{"directory", "create", "--org", orgID, "--name", "X", "--type", "nope"}, admin.ExitFailed, "type must be one of"},
		{"bad webhook url", c, []string{"webhook", "create", "ftp://x"}, admin.ExitFailed, "url must be"},
		{"unreachable", cli{t, closed, sys.APIKey}, []string{"directory", "list"}, admin.ExitUnreachable, "cannot reach dsync"},
		{"unreachable status", cli{t, closed, sys.APIKey}, []string{"status"}, admin.ExitUnreachable, "cannot reach dsync"},
		{"missing command", c, nil, admin.ExitUsage, "missing command"},
		{"unknown command", c, []string{"directory", "explode"}, admin.ExitUsage, "unknown command"},
		{"missing flag", c, []string{"user", "list"}, admin.ExitUsage, "--directory"},
		{"missing argument", c, []string{"user", "get"}, admin.ExitUsage, "takes 1 argument"},
		{"bad limit", c, []string{"directory", "list", "--limit", "500"}, admin.ExitUsage, "--limit"},
		{"unknown flag", c, []string{"org", "list", "--frobnicate"}, admin.ExitUsage, "frobnicate"},
		{"unknown delivery", c, []string{"webhook", "resend", epID, "whd_01JZ0000000000000000000000"}, admin.ExitNotFound, "not found"},
		{"replay needs a start", c, []string{"webhook", "replay", epID}, admin.ExitUsage, "exactly one of"},
	}
	for _, f := range failures {
		t.Run(f.name, func(t *testing.T) {
			f.c.t = t
			r := f.c.run(f.args...)
			require.Error(t, r.err)
			require.Equal(t, f.code, r.code, r.err.Error())
			require.Contains(t, r.err.Error(), f.msg)
		})
	}
	require.Contains(t, c.ok("help"), "directory create")
}
