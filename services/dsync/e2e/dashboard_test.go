package e2e_test

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// chromiumPath finds Debian's chromium; `make test` installs it when
// missing. DSYNC_CHROMIUM overrides.
func chromiumPath(t *testing.T) string {
	if p := os.Getenv("DSYNC_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium is missing: install it (Debian: apt-get install chromium) or run make test as root, or set DSYNC_CHROMIUM")
	return ""
}

// browserContext starts a fresh headless Chromium for the test.
func browserContext(t *testing.T) context.Context {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 860),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	return ctx
}

// page drives one browser tab; every step fails the test on error.
type page struct {
	t   *testing.T
	ctx context.Context
	// shots is where screenshots go: docs/screenshots when
	// DSYNC_UPDATE_SCREENSHOTS=1 (so that `make test` leaves the committed
	// ones alone), a temp dir otherwise; either way they must be real PNGs.
	shots string
}

func newPage(t *testing.T) *page {
	dir := t.TempDir()
	if os.Getenv("DSYNC_UPDATE_SCREENSHOTS") == "1" {
		dir = filepath.Join("..", "..", "..", "docs", "screenshots")
		require.NoError(t, os.MkdirAll(dir, 0o755))
	}
	return &page{t: t, ctx: browserContext(t), shots: dir}
}

func (p *page) do(steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	require.NoError(p.t, chromedp.Do(p.ctx, steps...))
}

func (p *page) value(sel string) string {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Value(chromedp.CSS(sel)))
	require.NoError(p.t, err)
	return v
}

func (p *page) text(sel string) string {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Text(chromedp.CSS(sel)))
	require.NoError(p.t, err)
	return v
}

func (p *page) location() string {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Location())
	require.NoError(p.t, err)
	return v
}

func (p *page) screenshot(name string) {
	p.t.Helper()
	png, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100))
	require.NoError(p.t, err)
	require.True(p.t, len(png) > 1000 && string(png[1:4]) == "PNG", "screenshot %s is not a PNG", name)
	require.NoError(p.t, os.WriteFile(filepath.Join(p.shots, name+".png"), png, 0o644))
}

func css(sel string) chromedp.CSS { return chromedp.CSS(sel) }

// The dashboard in a real browser: sign in with the API key, create an
// organization and an Okta directory, read its credentials, add a webhook
// endpoint; then a SCIM request sent by the test appears in the live view
// without a reload, and its delivery shows in the endpoint's log.
func TestDashboardInBrowser(t *testing.T) {
	cfg := devConfig(t)
	cfg.Demo = false
	sys := startDev(t, cfg)
	b := newPage(t)
	rcv := newReceiver(t)

	// A browser opening the root URL lands on the sign-in page.
	b.do(chromedp.Navigate(sys.HTTPURL+"/"), chromedp.WaitVisible(css("#secret")))
	require.Contains(t, b.location(), "/dashboard/login")
	b.screenshot("login")
	b.do(
		chromedp.SendKeys(css("#secret"), "sk_wrong"),
		chromedp.Click(css("#signin")),
		chromedp.WaitVisible(css("#login-error")),
		chromedp.SendKeys(css("#secret"), sys.APIKey),
		chromedp.Click(css("#signin")),
		chromedp.WaitVisible(css("#orgs-title")),
	)

	b.do(
		chromedp.SendKeys(css("#org-name"), "Acme Inc."),
		chromedp.SendKeys(css("#org-domains"), "acme.com"),
		chromedp.Submit(css("#org-name")),
		chromedp.WaitVisible(css("#new-directory")),
		chromedp.SendKeys(css("#dir-name"), "Acme Okta"),
	)
	b.screenshot("directory-new")
	b.do(chromedp.Click(css("#create-directory")), chromedp.WaitVisible(css("#scim-token")))
	scimURL, token := b.value("#scim-url"), b.value("#scim-token")
	require.Contains(t, scimURL, "/scim/v2/directory_")
	require.NotEmpty(t, token)
	b.screenshot("directory-created")

	// A webhook endpoint for the test's receiver; its secret is revealed
	// on request.
	b.do(
		chromedp.Navigate(sys.HTTPURL+"/dashboard/webhooks"),
		chromedp.WaitVisible(css("#ep-url")),
		chromedp.SendKeys(css("#ep-url"), rcv.URL+"/hook"),
		chromedp.Click(css(`input[value="dsync.user.created"]`)),
		chromedp.Submit(css("#ep-url")),
		chromedp.WaitVisible(css("#wh-secret")),
		chromedp.Click(css(`button[data-reveal="wh-secret"]`)),
	)
	secret := b.value("#wh-secret")
	require.True(t, strings.HasPrefix(secret, "whsec_"))

	dirID := scimURL[strings.LastIndex(scimURL, "/")+1:]
	b.do(
		chromedp.Navigate(sys.HTTPURL+"/dashboard/directories/"+dirID),
		chromedp.WaitVisible(css(`#live-feed[data-live="connected"]`), chromedp.NodeReady),
	)

	// The IdP (this test) provisions a user; the page shows it live.
	c := client{t: t, http: defaultHTTPClient()}
	status, _, user := c.do("POST", scimURL+"/Users", token, oktaCreateUser(t))
	require.Equal(t, http.StatusCreated, status, user)
	email := user["userName"].(string)
	b.do(chromedp.WaitVisible(css(`#live-feed li[data-event="dsync.user.created"]`)))
	// The SCIM request itself (status, dialect, redacted body) with the
	// event it produced inside it, and then the webhook delivery of that
	// event with its attempt — all without a reload.
	b.do(
		chromedp.WaitVisible(css(`#live-feed li.req[data-status="201"] li[data-event="dsync.user.created"]`)),
		chromedp.WaitVisible(css(`#live-feed li[data-event="dsync.user.created"] li.delivery[data-state="succeeded"]`)),
	)
	attr, err := chromedp.Run(b.ctx, chromedp.AttributeValue(css(`#live-feed li.req[data-status="201"]`), "data-request"))
	require.NoError(t, err)
	reqID := attr.Value
	feed := b.text("#live-feed")
	require.Contains(t, feed, email)
	require.Contains(t, feed, "scim · okta")
	require.Contains(t, feed, "POST")
	require.Contains(t, feed, "/Users")
	require.Contains(t, feed, rcv.URL+"/hook")
	require.Contains(t, feed, "HTTP 204")
	require.True(t, strings.HasPrefix(reqID, "req_"), reqID)
	b.do(chromedp.Click(css(`#live-feed li.req[data-status="201"] details.req-body summary`)))
	b.screenshot("directory-live")

	// The user's page, from the live feed's link.
	b.do(
		chromedp.Click(css(`#live-feed li[data-event="dsync.user.created"] a`)),
		chromedp.WaitVisible(css("#raw-title")),
	)
	attrs := b.text("main")
	require.Contains(t, attrs, email)
	require.Contains(t, attrs, `"userName"`)
	// Its history links the event to the SCIM request that caused it.
	require.Contains(t, attrs, reqID)
	b.screenshot("user")
	b.do(
		chromedp.Click(css(`a[href$="/requests/`+reqID+`"]`)),
		chromedp.WaitVisible(css("#caused-title")),
	)
	reqPage := b.text("main")
	require.Contains(t, reqPage, "okta")
	require.Contains(t, reqPage, "dsync.user.created")
	require.NotContains(t, reqPage, token)
	b.screenshot("scim-request")

	// Settings and groups of the directory.
	b.do(chromedp.Navigate(sys.HTTPURL+"/dashboard/directories/"+dirID+"/settings"), chromedp.WaitVisible(css("#settings-form")))
	b.screenshot("directory-settings")

	// The delivery is logged on the endpoint's page.
	require.Eventually(t, func() bool { return len(rcv.received()) > 0 }, 15*time.Second, 50*time.Millisecond)
	b.do(chromedp.Navigate(sys.HTTPURL+"/dashboard/webhooks"), chromedp.WaitVisible(css("#eps-title")))
	b.screenshot("webhooks")
	b.do(chromedp.Click(css(`table a[href^="/dashboard/webhooks/we_"]`)), chromedp.WaitVisible(css("#del-title")))
	// The delivery log is not live: reload until the attempt is recorded.
	var endpointPage string
	require.Eventually(t, func() bool {
		if chromedp.Do(b.ctx, chromedp.Reload(), chromedp.WaitVisible(css("#del-title"))) != nil {
			return false
		}
		endpointPage, _ = chromedp.Run(b.ctx, chromedp.Text(css("main")))
		return strings.Contains(endpointPage, "succeeded")
	}, 15*time.Second, 200*time.Millisecond)
	require.Contains(t, endpointPage, "dsync.user.created")
	require.NotContains(t, endpointPage, secret, "the secret is never shown again")
	b.screenshot("webhook-deliveries")

	b.do(chromedp.Navigate(sys.HTTPURL+"/dashboard/"), chromedp.WaitVisible(css("#dirs-title")))
	b.screenshot("overview")
	b.do(chromedp.Navigate(sys.HTTPURL+"/dashboard/health"), chromedp.WaitVisible(css("#proj-title")))
	health := b.text("main")
	require.Contains(t, health, "Applied sequence")
	require.Contains(t, health, "Delivery backlog")
	require.Contains(t, health, "SCIM requests")
	require.NotContains(t, health, "down")
	b.screenshot("health")
}
