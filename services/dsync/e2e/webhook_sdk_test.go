package e2e_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dsync-dev/dsync/pkg/webhooksig"
)

// webhookSDKDir holds package.json and verify.mjs; npm installs the pinned
// libraries into its node_modules (git-ignored).
var webhookSDKDir = filepath.Join("testdata", "webhook-sdk")

// installWebhookSDKs installs @workos-inc/node and standardwebhooks with
// npm from the default registry, unless they are already installed.
func installWebhookSDKs(t *testing.T) {
	t.Helper()
	var pkg struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	raw, err := os.ReadFile(filepath.Join(webhookSDKDir, "package.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &pkg))
	installed := true
	for name, version := range pkg.Dependencies {
		var got struct {
			Version string `json:"version"`
		}
		b, err := os.ReadFile(filepath.Join(webhookSDKDir, "node_modules", name, "package.json"))
		if err != nil || json.Unmarshal(b, &got) != nil || got.Version != version {
			installed = false
		}
	}
	if installed {
		return
	}
	npm, err := exec.LookPath("npm")
	require.NoError(t, err, "the webhook SDK test needs Node.js and npm on PATH")
	cmd := exec.CommandContext(t.Context(), npm, "install", "--no-package-lock", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error")
	cmd.Dir = webhookSDKDir
	cmd.Env = append(os.Environ(), "npm_config_cache="+t.TempDir(), "npm_config_update_notifier=false")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "npm install: %s", out)
}

// fileReceiver is the customer's application: it writes every delivery's
// raw body and headers to files, as a webhook handler would see them.
type fileReceiver struct {
	*httptest.Server
	dir  string
	mu   sync.Mutex
	n    int          // names handed out
	done atomic.Int32 // deliveries written in full
	fail atomic.Bool  // answer 500 while set
}

type recorded struct {
	name, body, headers string
	header              http.Header
	raw                 []byte
}

func newFileReceiver(t *testing.T) *fileReceiver {
	r := &fileReceiver{dir: t.TempDir()}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if r.fail.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		// Lower-case names, one value each: what Node's IncomingMessage
		// gives a handler.
		h := map[string]string{}
		for k := range req.Header {
			h[strings.ToLower(k)] = req.Header.Get(k)
		}
		hb, _ := json.Marshal(h)
		r.mu.Lock()
		r.n++
		name := fmt.Sprintf("%03d", r.n)
		r.mu.Unlock()
		if os.WriteFile(filepath.Join(r.dir, name+".body"), body, 0o600) != nil ||
			os.WriteFile(filepath.Join(r.dir, name+".headers.json"), hb, 0o600) != nil {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		r.done.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.Close)
	return r
}

// count is the number of deliveries written; files 001…count exist once
// deliveries arrive one at a time.
func (r *fileReceiver) count() int { return int(r.done.Load()) }

func (r *fileReceiver) get(t *testing.T, n int) recorded {
	t.Helper()
	name := fmt.Sprintf("%03d", n)
	rec := recorded{name: name, body: filepath.Join(r.dir, name+".body"), headers: filepath.Join(r.dir, name+".headers.json")}
	var err error
	rec.raw, err = os.ReadFile(rec.body)
	require.NoError(t, err)
	hb, err := os.ReadFile(rec.headers)
	require.NoError(t, err)
	var h map[string]string
	require.NoError(t, json.Unmarshal(hb, &h))
	rec.header = http.Header{}
	for k, v := range h {
		rec.header.Set(k, v)
	}
	return rec
}

type sdkVerdict struct {
	Name     string `json:"name"`
	Secret   string `json:"secret"`
	WorkOS   string `json:"workos"`
	Standard string `json:"standard"`
	EventID  string `json:"event_id"`
	Event    string `json:"event"`
}

// verifyWithSDKs runs verify.mjs on the deliveries with each secret.
func verifyWithSDKs(t *testing.T, recs []recorded, secrets ...string) map[[2]string]sdkVerdict {
	t.Helper()
	type entry struct {
		Name    string   `json:"name"`
		Body    string   `json:"body"`
		Headers string   `json:"headers"`
		Secrets []string `json:"secrets"`
	}
	var manifest []entry
	for _, r := range recs {
		body, err := filepath.Abs(r.body)
		require.NoError(t, err)
		headers, err := filepath.Abs(r.headers)
		require.NoError(t, err)
		manifest = append(manifest, entry{Name: r.name, Body: body, Headers: headers, Secrets: secrets})
	}
	mf := filepath.Join(t.TempDir(), "manifest.json")
	raw, err := json.Marshal(manifest)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(mf, raw, 0o600))
	node, err := exec.LookPath("node")
	require.NoError(t, err)
	cmd := exec.CommandContext(t.Context(), node, "verify.mjs", mf)
	cmd.Dir = webhookSDKDir
	out, err := cmd.Output()
	var stderr []byte
	if ee := (*exec.ExitError)(nil); err != nil && errorsAs(err, &ee) {
		stderr = ee.Stderr
	}
	require.NoError(t, err, "node verify.mjs: %s", stderr)
	var verdicts []sdkVerdict
	require.NoError(t, json.Unmarshal(out, &verdicts), "%s", out)
	m := map[[2]string]sdkVerdict{}
	for _, v := range verdicts {
		m[[2]string{v.Name, v.Secret}] = v
	}
	return m
}

func errorsAs(err error, target **exec.ExitError) bool {
	ee, ok := err.(*exec.ExitError) //nolint:errorlint // exec returns it unwrapped
	if ok {
		*target = ee
	}
	return ok
}

// webhookAPI is the REST client of one dsync.
type webhookAPI struct {
	c      client
	base   string
	apiKey string
}

func (a webhookAPI) call(method, path string, body any, want int) map[string]any {
	a.c.t.Helper()
	status, _, out := a.c.do(method, a.base+path, a.apiKey, body)
	require.Equal(a.c.t, want, status, "%s %s: %v", method, path, out)
	return out
}

// TestWebhookSDKVerification: real deliveries from `dsync dev`, written to
// files by a real receiver, verify with WorkOS's Node SDK
// (webhooks.constructEvent) and the standardwebhooks library, before and
// across a secret rotation.
func TestWebhookSDKVerification(t *testing.T) {
	installWebhookSDKs(t)
	sys := startDev(t, devConfig(t))
	require.NotNil(t, sys.Demo)
	c := client{t: t, http: defaultHTTPClient()}
	api := webhookAPI{c: c, base: sys.HTTPURL, apiKey: sys.APIKey}
	rcv := newFileReceiver(t)

	// Subscribed to user creations only: the demo directory's own
	// dsync.activated may still be on its way when the endpoint appears.
	ep := api.call("POST", "/webhook_endpoints", map[string]any{"url": rcv.URL + "/webhooks", "events": []string{"dsync.user.created"}}, http.StatusCreated)
	id, oldSecret := ep["id"].(string), ep["secret"].(string)

	scimUser := func(userName string) {
		t.Helper()
		var u map[string]any
		require.NoError(t, json.Unmarshal(oktaCreateUser(t), &u))
		u["userName"] = userName
		u["emails"] = []map[string]any{{"value": userName, "primary": true, "type": "work"}}
		status, _, out := c.do("POST", sys.Demo.SCIMEndpoint+"/Users", sys.Demo.BearerToken, u)
		require.Equal(t, http.StatusCreated, status, out)
	}
	scimUser("ada@example.com")
	require.Eventually(t, func() bool { return rcv.count() == 1 }, 20*time.Second, 50*time.Millisecond)

	rot := api.call("POST", "/webhook_endpoints/"+id+"/secret", nil, http.StatusOK)
	newSecret := rot["secret"].(string)
	require.NotEqual(t, oldSecret, newSecret)
	require.NotNil(t, rot["previous_secret_expires_at"])
	scimUser("grace@example.com")
	require.Eventually(t, func() bool { return rcv.count() == 2 }, 20*time.Second, 50*time.Millisecond)

	before, during := rcv.get(t, 1), rcv.get(t, 2)
	// The Go verifier agrees with the SDKs (and the vectors pin it).
	require.NoError(t, webhooksig.VerifyWorkOS(oldSecret, before.header.Get("workos-signature"), before.raw, time.Now(), time.Minute))
	v := verifyWithSDKs(t, []recorded{before, during}, oldSecret, newSecret)

	require.Equal(t, "ok", v[[2]string{before.name, oldSecret}].WorkOS, "WorkOS SDK before the rotation")
	require.Equal(t, "ok", v[[2]string{before.name, oldSecret}].Standard, "standardwebhooks before the rotation")
	require.Equal(t, "dsync.user.created", v[[2]string{before.name, oldSecret}].Event)
	require.True(t, strings.HasPrefix(v[[2]string{before.name, oldSecret}].EventID, "event_"))
	require.NotEqual(t, "ok", v[[2]string{before.name, newSecret}].Standard)

	// During the grace period: WorkOS-Signature uses the new secret only;
	// webhook-signature carries both, so either secret verifies.
	require.Equal(t, "ok", v[[2]string{during.name, newSecret}].WorkOS)
	require.NotEqual(t, "ok", v[[2]string{during.name, oldSecret}].WorkOS)
	require.Equal(t, "ok", v[[2]string{during.name, newSecret}].Standard)
	require.Equal(t, "ok", v[[2]string{during.name, oldSecret}].Standard)
	require.Len(t, strings.Fields(during.header.Get("webhook-signature")), 2)
}

// TestWebhookEndpointREST walks the webhook API: settings, PATCH, the
// delivery log with attempts and filters, resend, recover, replay, delete.
func TestWebhookEndpointREST(t *testing.T) {
	sys := startDev(t, devConfig(t))
	c := client{t: t, http: defaultHTTPClient()}
	api := webhookAPI{c: c, base: sys.HTTPURL, apiKey: sys.APIKey}
	rcv := newFileReceiver(t)
	rcv.fail.Store(true)

	ep := api.call("POST", "/webhook_endpoints", map[string]any{
		"url": rcv.URL, "description": "billing", "retry_schedule": []int{0}, "ordering": "directory",
		"events": []string{"dsync.user.created"},
	}, http.StatusCreated)
	id := ep["id"].(string)
	require.Equal(t, "billing", ep["description"])
	require.Equal(t, []any{0.0}, ep["retry_schedule"])
	require.Equal(t, "directory", ep["ordering"])
	require.Equal(t, "enabled", ep["state"])

	got := api.call("GET", "/webhook_endpoints/"+id, nil, http.StatusOK)
	require.Nil(t, got["secret"], "the secret is shown on create and rotate only")
	require.Equal(t, "billing", got["description"])

	upd := api.call("PATCH", "/webhook_endpoints/"+id, map[string]any{"description": "billing v2", "ordering": "resource"}, http.StatusOK)
	require.Equal(t, "billing v2", upd["description"])
	require.Equal(t, "resource", upd["ordering"])
	require.Equal(t, []any{"dsync.user.created"}, upd["events"], "fields left out are kept")
	for _, bad := range []map[string]any{{"state": "paused"}, {"ordering": "global"}, {"events": []string{"dsync.nope"}}, {"url": "ftp://x"}} {
		api.call("PATCH", "/webhook_endpoints/"+id, bad, http.StatusUnprocessableEntity)
	}
	api.call("PATCH", "/webhook_endpoints/we_01HZZZZZZZZZZZZZZZZZZZZZZZ", map[string]any{"description": "x"}, http.StatusNotFound)

	// Two users; both deliveries fail twice (retry_schedule [0]) and are
	// dead-lettered with their attempts.
	createUser := func(userName string) {
		t.Helper()
		var u map[string]any
		require.NoError(t, json.Unmarshal(oktaCreateUser(t), &u))
		u["userName"], u["externalId"] = userName, "ext-"+userName
		u["emails"] = []map[string]any{{"value": userName, "primary": true, "type": "work"}}
		status, _, out := c.do("POST", sys.Demo.SCIMEndpoint+"/Users", sys.Demo.BearerToken, u)
		require.Equal(t, http.StatusCreated, status, out)
	}
	start := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	createUser("one@example.com")
	createUser("two@example.com")
	var failed []any
	require.Eventually(t, func() bool {
		failed = api.call("GET", "/webhook_endpoints/"+id+"/deliveries?state=failed", nil, http.StatusOK)["data"].([]any)
		return len(failed) == 2
	}, 20*time.Second, 50*time.Millisecond)
	d := failed[0].(map[string]any)
	require.Equal(t, "webhook_delivery", d["object"])
	require.Equal(t, 2.0, d["attempt_count"])
	attempts := d["attempts"].([]any)
	require.Len(t, attempts, 2)
	require.Equal(t, 500.0, attempts[0].(map[string]any)["status_code"])
	require.Equal(t, "unexpected status 500", attempts[0].(map[string]any)["error"])
	require.Empty(t, api.call("GET", "/webhook_endpoints/"+id+"/deliveries?event=dsync.user.deleted", nil, http.StatusOK)["data"])
	require.Len(t, api.call("GET", "/webhook_endpoints/"+id+"/deliveries?event=dsync.user.created&created_after="+start, nil, http.StatusOK)["data"], 2)
	api.call("GET", "/webhook_endpoints/"+id+"/deliveries?state=bogus", nil, http.StatusUnprocessableEntity)
	api.call("GET", "/webhook_endpoints/"+id+"/deliveries?created_after=yesterday", nil, http.StatusUnprocessableEntity)

	// Resend one, then recover the other.
	rcv.fail.Store(false)
	one := d["id"].(string)
	res := api.call("POST", "/webhook_endpoints/"+id+"/deliveries/"+one+"/resend", nil, http.StatusAccepted)
	require.Equal(t, one, res["id"])
	require.Eventually(t, func() bool {
		return api.call("GET", "/webhook_endpoints/"+id+"/deliveries/"+one, nil, http.StatusOK)["state"] == "succeeded"
	}, 20*time.Second, 50*time.Millisecond)
	require.Equal(t, 1, rcv.count())
	rec := api.call("POST", "/webhook_endpoints/"+id+"/recover", map[string]any{"since": start}, http.StatusAccepted)
	require.Equal(t, 1.0, rec["recovered"])
	require.Eventually(t, func() bool { return rcv.count() == 2 }, 20*time.Second, 50*time.Millisecond)
	api.call("POST", "/webhook_endpoints/"+id+"/recover", map[string]any{"since": "not a time"}, http.StatusUnprocessableEntity)

	// Replay everything since start: both events again, same ids.
	rep := api.call("POST", "/webhook_endpoints/"+id+"/replay", map[string]any{"since": start}, http.StatusAccepted)
	require.Equal(t, 2.0, rep["scheduled"])
	require.Eventually(t, func() bool { return rcv.count() == 4 }, 20*time.Second, 50*time.Millisecond)
	first := rcv.get(t, 1).header.Get("webhook-id")
	rep = api.call("POST", "/webhook_endpoints/"+id+"/replay", map[string]any{"after": first}, http.StatusAccepted)
	require.LessOrEqual(t, rep["scheduled"], 1.0)
	api.call("POST", "/webhook_endpoints/"+id+"/replay", map[string]any{"since": start, "after": first}, http.StatusUnprocessableEntity)
	api.call("POST", "/webhook_endpoints/"+id+"/replay", map[string]any{}, http.StatusUnprocessableEntity)

	// Disable, re-enable, delete.
	dis := api.call("PATCH", "/webhook_endpoints/"+id, map[string]any{"state": "disabled"}, http.StatusOK)
	require.Equal(t, "disabled", dis["state"])
	require.Equal(t, "disabled through the API", dis["disabled_reason"])
	en := api.call("PATCH", "/webhook_endpoints/"+id, map[string]any{"state": "enabled"}, http.StatusOK)
	require.Equal(t, "enabled", en["state"])
	require.Nil(t, en["disabled_reason"])
	api.call("DELETE", "/webhook_endpoints/"+id, nil, http.StatusNoContent)
	api.call("GET", "/webhook_endpoints/"+id, nil, http.StatusNotFound)
	api.call("GET", "/webhook_endpoints/"+id+"/deliveries", nil, http.StatusNotFound)
}

// TestWebhookTargetRefused: without the dev allowance, loopback, private
// and link-local (metadata) targets are refused with a clear 422 on create
// and update.
func TestWebhookTargetRefused(t *testing.T) {
	cfg := devConfig(t)
	cfg.AllowPrivateWebhooks = false
	sys := startDev(t, cfg)
	api := webhookAPI{c: client{t: t, http: defaultHTTPClient()}, base: sys.HTTPURL, apiKey: sys.APIKey}
	for _, target := range []string{"http://127.0.0.1:9/hook", "http://10.1.2.3/hook", "http://169.254.169.254/latest", "http://[::1]/x"} {
		out := api.call("POST", "/webhook_endpoints", map[string]any{"url": target}, http.StatusUnprocessableEntity)
		require.Contains(t, out["message"], "not allowed", target)
	}
	ep := api.call("POST", "/webhook_endpoints", map[string]any{"url": "https://hooks.example.com/dsync"}, http.StatusCreated)
	out := api.call("PATCH", "/webhook_endpoints/"+ep["id"].(string), map[string]any{"url": "http://192.168.0.10/"}, http.StatusUnprocessableEntity)
	require.Contains(t, out["message"], "not allowed")
}
