// Package sender posts signed webhook requests over HTTP.
package sender

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/dsync-dev/dsync/pkg/webhooksig"
	"github.com/dsync-dev/dsync/services/dispatcher/internal/delivery"
	"github.com/dsync-dev/dsync/services/dispatcher/internal/dialguard"
)

// UserAgent is sent with every delivery.
const UserAgent = "dsync-webhooks/1"

// maxDrain bounds how much of a response is read so that the connection can
// be reused; a receiver streaming an endless body cannot hold a worker.
const maxDrain = 64 << 10

// Sender implements delivery.Sender with net/http.
type Sender struct {
	client  *http.Client
	timeout time.Duration
	now     func() time.Time
}

var _ delivery.Sender = (*Sender)(nil)

// NewClient returns an HTTP client whose connections go through the dial
// guard and that does not follow redirects: a redirect could lead the
// signed request somewhere the endpoint's owner did not register, and a
// 3xx is reported to the customer as a failed attempt instead.
func NewClient(p dialguard.Policy) *http.Client {
	dialer := dialguard.NewDialer(p, 10*time.Second)
	transport := &http.Transport{
		Proxy:                 nil, // a proxy would dial on our behalf and bypass the guard
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   8,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{
		Transport: transport,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// New returns a sender using client with a per-attempt timeout. now is the
// clock used for signature timestamps (nil: time.Now).
func New(client *http.Client, timeout time.Duration, now func() time.Time) *Sender {
	if now == nil {
		now = time.Now
	}
	return &Sender{client: client, timeout: timeout, now: now}
}

// Send posts c's body to c's URL, signed now with the endpoint's secret.
func (s *Sender) Send(ctx context.Context, c delivery.Claim) delivery.Result {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	start := time.Now()
	result := func(r delivery.Result) delivery.Result {
		r.Latency = time.Since(start)
		return r
	}

	var previous []string
	if c.PreviousSecret != "" {
		previous = []string{c.PreviousSecret}
	}
	h, err := webhooksig.Sign(c.Secret, c.Delivery.EventID, s.now(), c.Body, previous...)
	if err != nil {
		return result(delivery.Result{Err: fmt.Errorf("sign: %w", err)})
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, bytes.NewReader(c.Body))
	if err != nil {
		return result(delivery.Result{Err: fmt.Errorf("build request: %w", err)})
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set(webhooksig.HeaderWorkOS, h.WorkOS)
	// Standard Webhooks header names are lower-case in the spec; Go
	// canonicalizes them on the wire, and HTTP header names are
	// case-insensitive.
	req.Header.Set(webhooksig.HeaderWebhookID, h.WebhookID)
	req.Header.Set(webhooksig.HeaderWebhookTimestamp, h.WebhookTimestamp)
	req.Header.Set(webhooksig.HeaderWebhookSignature, h.WebhookSignature)

	resp, err := s.client.Do(req)
	if err != nil {
		return result(delivery.Result{Err: err})
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, delivery.MaxResponseSnippet))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	r := delivery.Result{StatusCode: resp.StatusCode, Body: string(snippet)}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		r.RetryAfter = ParseRetryAfter(resp.Header.Get("Retry-After"), s.now())
	}
	return result(r)
}

// ParseRetryAfter reads a Retry-After value (delay seconds or an HTTP date)
// relative to now. It returns 0 when the value is absent, malformed or in
// the past.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		// Cap before multiplying so a huge value cannot overflow.
		return time.Duration(min(secs, int64(delivery.MaxRetryAfter/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
