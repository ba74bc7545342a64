package webhooksig_test

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dsync-dev/dsync/pkg/webhooksig"
)

type vector struct {
	Name             string `json:"name"`
	Secret           string `json:"secret"`
	ID               string `json:"id"`
	TimestampMS      int64  `json:"timestamp_ms"`
	Body             string `json:"body"`
	WorkOSSignature  string `json:"workos_signature"`
	WebhookTimestamp string `json:"webhook_timestamp"`
	WebhookSignature string `json:"webhook_signature"`
	// PreviousSecrets are secrets still in their rotation grace period.
	PreviousSecrets []string `json:"previous_secrets"`
}

func loadVectors(t *testing.T) []vector {
	t.Helper()
	b, err := os.ReadFile("testdata/vectors.json")
	require.NoError(t, err)
	var vs []vector
	require.NoError(t, json.Unmarshal(b, &vs))
	require.NotEmpty(t, vs)
	return vs
}

// TestVectors fails when the wire format drifts: every customer verifies
// these bytes.
func TestVectors(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			at := time.UnixMilli(v.TimestampMS)
			body := []byte(v.Body)
			if v.WorkOSSignature != "" {
				require.Equal(t, v.WorkOSSignature, webhooksig.WorkOS(v.Secret, at, body))
				require.NoError(t, webhooksig.VerifyWorkOS(v.Secret, v.WorkOSSignature, body, at, time.Minute))
				require.ErrorIs(t, webhooksig.VerifyWorkOS(v.Secret, v.WorkOSSignature, append(body, ' '), at, time.Minute), webhooksig.ErrMismatch)
			}
			if v.WebhookSignature != "" {
				h, err := webhooksig.Sign(v.Secret, v.ID, at, body, v.PreviousSecrets...)
				require.NoError(t, err)
				require.Equal(t, webhooksig.Headers{
					WorkOS:           webhooksig.WorkOS(v.Secret, at, body),
					WebhookID:        v.ID,
					WebhookTimestamp: v.WebhookTimestamp,
					WebhookSignature: v.WebhookSignature,
				}, h)
				// Every secret of the rotation verifies the header on its own.
				for _, secret := range append([]string{v.Secret}, v.PreviousSecrets...) {
					require.NoError(t, webhooksig.VerifyStandard(secret, v.ID, v.WebhookTimestamp, v.WebhookSignature, body, at, time.Minute))
					require.ErrorIs(t, webhooksig.VerifyStandard(secret, v.ID+"x", v.WebhookTimestamp, v.WebhookSignature, body, at, time.Minute), webhooksig.ErrMismatch)
				}
				if len(v.PreviousSecrets) == 0 {
					got, err := webhooksig.StandardWebhooks(v.Secret, v.ID, at, body)
					require.NoError(t, err)
					require.Equal(t, v.WebhookSignature, got)
				}
			}
			for _, old := range v.PreviousSecrets {
				// WorkOS-Signature switches to the new secret at once.
				require.ErrorIs(t, webhooksig.VerifyWorkOS(old, v.WorkOSSignature, body, at, time.Minute), webhooksig.ErrMismatch)
			}
		})
	}
}

// TestWorkOSReferenceVector pins the vector from the task statement
// independently of the testdata file, so editing the file cannot hide drift.
func TestWorkOSReferenceVector(t *testing.T) {
	body := `{"object":"event","id":"event_01HZZZZZZZZZZZZZZZZZZZZZZZ","event":"dsync.user.created","data":{"id":"directory_user_01HZZZZZZZZZZZZZZZZZZZZZZZ","state":"active"},"created_at":"2023-11-14T22:13:20.000Z","context":{}}`
	got := webhooksig.WorkOS("test_webhook_secret", time.UnixMilli(1700000000000), []byte(body))
	require.Equal(t, "t=1700000000000, v1=f71e0eed81c9a784520499c1a3470a3f30e76206cf36c5cb3e66b926b6206e1b", got)
}

func TestNewSecret(t *testing.T) {
	a, err := webhooksig.NewSecret()
	require.NoError(t, err)
	b, err := webhooksig.NewSecret()
	require.NoError(t, err)
	require.NotEqual(t, a, b)
	require.True(t, strings.HasPrefix(a, "whsec_"))
	require.Len(t, a, len("whsec_")+44)
	// A fresh secret signs and verifies in both schemes.
	now := time.Now()
	h, err := webhooksig.Sign(a, "event_1", now, []byte("{}"))
	require.NoError(t, err)
	require.NoError(t, webhooksig.VerifyWorkOS(a, h.WorkOS, []byte("{}"), now, time.Minute))
	require.NoError(t, webhooksig.VerifyStandard(a, h.WebhookID, h.WebhookTimestamp, h.WebhookSignature, []byte("{}"), now, time.Minute))
	require.ErrorIs(t, webhooksig.VerifyStandard(b, h.WebhookID, h.WebhookTimestamp, h.WebhookSignature, []byte("{}"), now, time.Minute), webhooksig.ErrMismatch)
}

func TestVerifyErrors(t *testing.T) {
	secret := "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	at := time.UnixMilli(1700000000000)
	body := []byte(`{}`)
	good := webhooksig.WorkOS(secret, at, body)
	std, err := webhooksig.StandardWebhooks(secret, "event_1", at, body)
	require.NoError(t, err)

	workos := []struct {
		name   string
		header string
		now    time.Time
		want   error
	}{
		{"empty", "", at, webhooksig.ErrMalformedHeader},
		{"no v1", "t=1700000000000", at, webhooksig.ErrMalformedHeader},
		{"no t", "v1=" + strings.Repeat("ab", 32), at, webhooksig.ErrMalformedHeader},
		{"bad hex", "t=1700000000000, v1=zz", at, webhooksig.ErrMalformedHeader},
		{"short sig", "t=1700000000000, v1=abcd", at, webhooksig.ErrMalformedHeader},
		{"bad t", "t=abc, v1=" + strings.Repeat("ab", 32), at, webhooksig.ErrMalformedHeader},
		{"two t", "t=1, t=2, v1=" + strings.Repeat("ab", 32), at, webhooksig.ErrMalformedHeader},
		{"wrong sig", "t=1700000000000, v1=" + strings.Repeat("ab", 32), at, webhooksig.ErrMismatch},
		{"other t", strings.Replace(good, "t=1700000000000", "t=1700000000001", 1), at, webhooksig.ErrMismatch},
		{"too old", good, at.Add(10 * time.Minute), webhooksig.ErrTimestamp},
		{"rotation: second v1 matches", "t=1700000000000, v1=" + strings.Repeat("ab", 32) + ", " + strings.Split(good, ", ")[1], at, nil},
		{"no space", strings.ReplaceAll(good, " ", ""), at, nil},
	}
	for _, tc := range workos {
		t.Run("workos "+tc.name, func(t *testing.T) {
			err := webhooksig.VerifyWorkOS(secret, tc.header, body, tc.now, 5*time.Minute)
			if tc.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tc.want)
		})
	}

	standard := []struct {
		name      string
		secret    string
		timestamp string
		sig       string
		now       time.Time
		want      error
	}{
		{"bad secret", "whsec_!!!", "1700000000", std, at, webhooksig.ErrInvalidSecret},
		{"bad timestamp", secret, "x", std, at, webhooksig.ErrMalformedHeader},
		{"empty sig", secret, "1700000000", "", at, webhooksig.ErrMalformedHeader},
		{"only v2", secret, "1700000000", "v2,abc", at, webhooksig.ErrMalformedHeader},
		{"bad base64", secret, "1700000000", "v1,!!!", at, webhooksig.ErrMalformedHeader},
		{"too new", secret, "1700000000", std, at.Add(-10 * time.Minute), webhooksig.ErrTimestamp},
		{"wrong timestamp", secret, "1700000001", std, at, webhooksig.ErrMismatch},
		{"several, one matches", secret, "1700000000", "v1,AAAA " + std, at, nil},
	}
	for _, tc := range standard {
		t.Run("standard "+tc.name, func(t *testing.T) {
			err := webhooksig.VerifyStandard(tc.secret, "event_1", tc.timestamp, tc.sig, body, tc.now, 5*time.Minute)
			if tc.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tc.want)
		})
	}
}

// FuzzVerifyWorkOS feeds arbitrary headers to the parser and verifier: they
// must never panic, and whatever parses must re-verify consistently.
func FuzzVerifyWorkOS(f *testing.F) {
	secret := "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	at := time.UnixMilli(1700000000000)
	f.Add(webhooksig.WorkOS(secret, at, []byte("{}")), []byte("{}"))
	f.Add("t=1, v1=00", []byte(""))
	f.Add("t=,v1=,", []byte("x"))
	f.Add("t=-1, v1="+strings.Repeat("0", 64), []byte("x"))
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		h, err := webhooksig.ParseWorkOS(header)
		if err != nil {
			require.ErrorIs(t, err, webhooksig.ErrMalformedHeader)
			return
		}
		require.NotEmpty(t, h.Signatures)
		err = webhooksig.VerifyWorkOS(secret, header, body, at, 0)
		if err != nil {
			require.ErrorIs(t, err, webhooksig.ErrMismatch)
		}
	})
}

// FuzzVerifyStandard does the same for the Standard Webhooks headers.
func FuzzVerifyStandard(f *testing.F) {
	secret := "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	at := time.UnixMilli(1700000000000)
	std, err := webhooksig.StandardWebhooks(secret, "event_1", at, []byte("{}"))
	require.NoError(f, err)
	f.Add("event_1", "1700000000", std, []byte("{}"))
	f.Add("", "", "v1,", []byte(""))
	f.Add("a", "-5", "v1,AAAA v2,BBBB", []byte("x"))
	f.Fuzz(func(t *testing.T, id, ts, sig string, body []byte) {
		err := webhooksig.VerifyStandard(secret, id, ts, sig, body, at, 0)
		if err != nil {
			require.True(t, errorsIsAny(err, webhooksig.ErrMalformedHeader, webhooksig.ErrMismatch), "unexpected error %v", err)
		}
	})
}

func errorsIsAny(err error, targets ...error) bool {
	for _, target := range targets {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}
