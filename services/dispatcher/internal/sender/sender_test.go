package sender_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dsync-dev/dsync/pkg/webhooksig"
	"github.com/dsync-dev/dsync/services/dispatcher/internal/delivery"
	"github.com/dsync-dev/dsync/services/dispatcher/internal/dialguard"
	"github.com/dsync-dev/dsync/services/dispatcher/internal/sender"
)

const secret = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

func claim(url string) delivery.Claim {
	return delivery.Claim{
		Delivery: delivery.Delivery{ID: "whd_1", EventID: "event_1"},
		URL:      url,
		Secret:   secret,
		Body:     []byte(`{"object":"event","id":"event_1"}`),
	}
}

func TestSendSignsRequest(t *testing.T) {
	type seen struct {
		header http.Header
		body   []byte
	}
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- seen{r.Header.Clone(), body}
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(strings.Repeat("x", 5000)))
	}))
	t.Cleanup(srv.Close)

	s := sender.New(sender.NewClient(dialguard.AllowPrivate), 5*time.Second, nil)
	r := s.Send(t.Context(), claim(srv.URL))
	require.NoError(t, r.Err)
	require.Equal(t, http.StatusAccepted, r.StatusCode)
	require.True(t, r.Succeeded())
	require.Len(t, r.Body, delivery.MaxResponseSnippet)

	req := <-got
	require.Equal(t, `{"object":"event","id":"event_1"}`, string(req.body))
	require.Equal(t, "application/json", req.header.Get("Content-Type"))
	require.Equal(t, "dsync-webhooks/1", req.header.Get("User-Agent"))
	require.Equal(t, "event_1", req.header.Get("webhook-id"))
	now := time.Now()
	require.NoError(t, webhooksig.VerifyWorkOS(secret, req.header.Get("WorkOS-Signature"), req.body, now, time.Minute))
	require.NoError(t, webhooksig.VerifyStandard(secret, req.header.Get("webhook-id"), req.header.Get("webhook-timestamp"),
		req.header.Get("webhook-signature"), req.body, now, time.Minute))
}

func TestSendOutcomes(t *testing.T) {
	tests := []struct {
		name       string
		handler    http.HandlerFunc
		status     int
		retryAfter time.Duration
		errs       bool
	}{
		{"500", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) }, 500, 0, false},
		{"429 with Retry-After", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(429)
		}, 429, 7 * time.Second, false},
		{"503 with huge Retry-After", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "999999999999")
			w.WriteHeader(503)
		}, 503, time.Hour, false},
		{"redirect is not followed", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://169.254.169.254/", http.StatusFound)
		}, 302, 0, false},
		{"timeout", func(w http.ResponseWriter, r *http.Request) {
			// The server notices the client hanging up only once the
			// body has been read.
			_, _ = io.Copy(io.Discard, r.Body)
			<-r.Context().Done()
		}, 0, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			t.Cleanup(srv.Close)
			r := sender.New(sender.NewClient(dialguard.AllowPrivate), 300*time.Millisecond, nil).Send(t.Context(), claim(srv.URL))
			require.Equal(t, tc.status, r.StatusCode)
			require.Equal(t, tc.retryAfter, r.RetryAfter)
			require.Equal(t, tc.errs, r.Err != nil)
			require.False(t, r.Succeeded())
		})
	}
}

func TestSendRefusesPrivateTargets(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		t.Error("the guarded client must not reach a loopback server")
	}))
	t.Cleanup(srv.Close)
	r := sender.New(sender.NewClient(dialguard.Policy{}), 5*time.Second, nil).Send(t.Context(), claim(srv.URL))
	require.ErrorIs(t, r.Err, dialguard.ErrForbiddenAddress)
	require.Zero(t, r.StatusCode)
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"-3", 0},
		{"120", 2 * time.Minute},
		{"abc", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0},
		{"99999999999999999999", 0},
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, sender.ParseRetryAfter(tc.in, now), tc.in)
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	f.Add("120")
	f.Add("Wed, 21 Oct 2015 07:28:00 GMT")
	f.Fuzz(func(t *testing.T, v string) {
		d := sender.ParseRetryAfter(v, time.Now())
		require.GreaterOrEqual(t, d, time.Duration(0))
	})
}
