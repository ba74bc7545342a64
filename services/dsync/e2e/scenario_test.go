package e2e_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// delivery is one webhook POST the receiver got.
type delivery struct {
	header http.Header
	body   []byte
}

// receiver is a real HTTP server standing in for the customer's application.
type receiver struct {
	*httptest.Server
	mu         sync.Mutex
	deliveries []delivery
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.deliveries = append(r.deliveries, delivery{header: req.Header.Clone(), body: body})
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) received() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.deliveries...)
}

// client calls the REST and SCIM APIs.
type client struct {
	t    *testing.T
	http *http.Client
}

func (c client) do(method, url, token string, body any) (int, http.Header, map[string]any) {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		require.NoError(c.t, err)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(c.t.Context(), method, url, rd)
	require.NoError(c.t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/scim+json; charset=utf-8")
	}
	resp, err := c.http.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)
	out := map[string]any{}
	if len(raw) > 0 {
		require.NoError(c.t, json.Unmarshal(raw, &out), "body of %s %s: %s", method, url, raw)
	}
	return resp.StatusCode, resp.Header, out
}

// verifyWorkOSSignature checks a WorkOS-Signature header the way WorkOS's
// SDKs do: "t=<ms>, v1=<hex hmac-sha256(secret, t + "." + body)>".
func verifyWorkOSSignature(t *testing.T, header, secret string, body []byte) {
	t.Helper()
	parts := strings.Split(header, ",")
	require.Len(t, parts, 2, "WorkOS SDKs require exactly two parts: %q", header)
	require.True(t, strings.HasPrefix(parts[0], "t="), header)
	require.True(t, strings.HasPrefix(parts[1], " v1="), "the Go SDK strips exactly ', v1=': %q", header)
	ts := strings.TrimPrefix(parts[0], "t=")
	ms, err := strconv.ParseInt(ts, 10, 64)
	require.NoError(t, err)
	require.InDelta(t, time.Now().UnixMilli(), ms, float64(180*time.Second/time.Millisecond), "timestamp within the SDKs' tolerance")
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "." + string(body)))
	require.Equal(t, hex.EncodeToString(mac.Sum(nil)), strings.TrimPrefix(parts[1], " v1="), "signature verifies")
}

// oktaCreateUser is the body Okta sends to create a user (Okta's SCIM 2.0
// reference), with its unsolicited password and empty groups.
func oktaCreateUser(t *testing.T) []byte {
	b, err := os.ReadFile(filepath.Join("testdata", "okta_create_user.json"))
	require.NoError(t, err)
	return b
}

// runScenario is the end-to-end slice every topology must pass: an
// organization, a directory and a webhook endpoint are created through the
// REST API; an Okta-shaped SCIM user is created; the user shows up in the
// REST API; one signed dsync.user.created reaches the receiver.
func runScenario(t *testing.T, baseURL, apiKey string) {
	c := client{t: t, http: &http.Client{Timeout: 10 * time.Second}}
	rcv := newReceiver(t)

	status, _, org := c.do("POST", baseURL+"/organizations", apiKey, map[string]any{"name": "Acme", "domains": []string{"acme.com"}})
	require.Equal(t, http.StatusCreated, status, org)
	require.Equal(t, "organization", org["object"])
	orgID := org["id"].(string)
	require.True(t, strings.HasPrefix(orgID, "org_"), orgID)

	status, _, dir := c.do("POST", baseURL+"/directories", apiKey, map[string]any{
		"organization_id": orgID, "name": "Acme Okta", "type": "okta scim v2.0",
	})
	require.Equal(t, http.StatusCreated, status, dir)
	dirID := dir["id"].(string)
	scim := dir["scim"].(map[string]any)
	endpoint, token := scim["endpoint"].(string), scim["bearer_token"].(string)
	require.Equal(t, baseURL+"/scim/v2/"+dirID, endpoint)
	require.NotEmpty(t, token)

	status, _, wh := c.do("POST", baseURL+"/webhook_endpoints", apiKey, map[string]any{
		"url": rcv.URL + "/webhooks", "events": []string{"dsync.user.created"},
	})
	require.Equal(t, http.StatusCreated, status, wh)
	secret := wh["secret"].(string)
	require.True(t, strings.HasPrefix(secret, "whsec_"), secret)

	// Bad input gets clear errors, not 500s.
	status, _, body := c.do("POST", endpoint+"/Users", "wrong-token", oktaCreateUser(t))
	require.Equal(t, http.StatusUnauthorized, status)
	require.Equal(t, "401", body["status"])
	status, _, body = c.do("POST", endpoint+"/Users", token, `{"userName": "x",`)
	require.Equal(t, http.StatusBadRequest, status, body)
	status, _, _ = c.do("GET", baseURL+"/directory_users?directory="+dirID, "", nil)
	require.Equal(t, http.StatusUnauthorized, status)

	status, hdr, user := c.do("POST", endpoint+"/Users", token, oktaCreateUser(t))
	require.Equal(t, http.StatusCreated, status, user)
	require.Contains(t, hdr.Get("Content-Type"), "application/scim+json")
	userID := user["id"].(string)
	require.True(t, strings.HasPrefix(userID, "directory_user_"), userID)
	require.Equal(t, "test.user@okta.local", user["userName"])
	require.NotContains(t, user, "password")
	require.Equal(t, endpoint+"/Users/"+userID, hdr.Get("Location"))

	status, _, got := c.do("GET", endpoint+"/Users/"+userID, token, nil)
	require.Equal(t, http.StatusOK, status, got)
	require.Equal(t, userID, got["id"])

	status, _, list := c.do("GET", baseURL+"/directory_users?directory="+dirID, apiKey, nil)
	require.Equal(t, http.StatusOK, status, list)
	data := list["data"].([]any)
	require.Len(t, data, 1, "the read model shows the user as soon as the SCIM write returned")
	du := data[0].(map[string]any)
	require.Equal(t, userID, du["id"])
	require.Equal(t, "test.user@okta.local", du["email"])
	require.Equal(t, "Test", du["first_name"])
	require.Equal(t, "User", du["last_name"])
	require.Equal(t, "00ujl29u0le5T6Aj10h7", du["idp_id"])
	require.Equal(t, "active", du["state"])
	require.Equal(t, []any{}, du["groups"])

	status, _, one := c.do("GET", baseURL+"/directory_users/"+userID, apiKey, nil)
	require.Equal(t, http.StatusOK, status, one)
	require.Equal(t, dirID, one["directory_id"])
	require.Equal(t, orgID, one["organization_id"])

	require.Eventually(t, func() bool { return len(rcv.received()) >= 1 }, 20*time.Second, 20*time.Millisecond,
		"one dsync.user.created delivery reaches the receiver")
	d := rcv.received()[0]
	verifyWorkOSSignature(t, d.header.Get("WorkOS-Signature"), secret, d.body)
	var ev map[string]any
	require.NoError(t, json.Unmarshal(d.body, &ev))
	require.Equal(t, "event", ev["object"])
	require.Equal(t, "dsync.user.created", ev["event"])
	require.Equal(t, userID, ev["data"].(map[string]any)["id"])
	require.Equal(t, ev["id"], d.header.Get("webhook-id"))

	// No second delivery of the same event turns up.
	time.Sleep(300 * time.Millisecond) //nolint:forbidigo // absence can only be observed over time
	require.Len(t, rcv.received(), 1)
}
