// Package webhooksig signs webhook requests and verifies their signatures, in
// the two schemes dsync sends on every delivery: WorkOS's
// (WorkOS-Signature: t=<unix ms>, v1=<hex HMAC>) so that WorkOS SDKs verify
// it, and Standard Webhooks (webhook-id, webhook-timestamp,
// webhook-signature) so that any Standard Webhooks library verifies it.
//
// The wire formats are pinned by the vectors in testdata/; a change that
// alters a single byte of a header breaks every customer's verification.
package webhooksig

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Header names set on every delivery.
const (
	HeaderWorkOS             = "WorkOS-Signature"
	HeaderWebhookID          = "webhook-id"
	HeaderWebhookTimestamp   = "webhook-timestamp"
	HeaderWebhookSignature   = "webhook-signature"
	SecretPrefix             = "whsec_"
	secretBytes              = 32
	standardSignatureVersion = "v1"
)

// Errors returned by the verifiers.
var (
	ErrMalformedHeader = errors.New("malformed signature header")
	ErrInvalidSecret   = errors.New("invalid webhook secret")
	ErrMismatch        = errors.New("signature mismatch")
	ErrTimestamp       = errors.New("signature timestamp outside tolerance")
)

// NewSecret returns a fresh endpoint secret: "whsec_" followed by the
// standard base64 of 32 bytes from crypto/rand.
func NewSecret() (string, error) {
	b := make([]byte, secretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("read random secret: %w", err)
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(b), nil
}

// Headers are the signature headers of one attempt.
type Headers struct {
	WorkOS           string // WorkOS-Signature
	WebhookID        string // webhook-id
	WebhookTimestamp string // webhook-timestamp
	WebhookSignature string // webhook-signature
}

// Sign computes both schemes' headers for body sent at t as the event id.
// It returns ErrInvalidSecret when secret is not "whsec_<base64>", since the
// Standard Webhooks key is the decoded base64.
//
// During a secret rotation, previous holds the secrets still within their
// grace period: webhook-signature then carries one space-separated "v1,…"
// entry per secret, the current one first, so a receiver that still knows
// only an old secret keeps verifying. WorkOS-Signature is always signed
// with secret alone: WorkOS SDKs read a single v1 and the rotation contract
// for them is "switch to the new secret at once".
func Sign(secret, id string, t time.Time, body []byte, previous ...string) (Headers, error) {
	std, err := StandardWebhooks(secret, id, t, body)
	if err != nil {
		return Headers{}, err
	}
	for _, old := range previous {
		sig, err := StandardWebhooks(old, id, t, body)
		if err != nil {
			return Headers{}, fmt.Errorf("previous secret: %w", err)
		}
		std += " " + sig
	}
	return Headers{
		WorkOS:           WorkOS(secret, t, body),
		WebhookID:        id,
		WebhookTimestamp: strconv.FormatInt(t.Unix(), 10),
		WebhookSignature: std,
	}, nil
}

// WorkOS returns the WorkOS-Signature header value for body signed at t:
// "t=<unix ms>, v1=<lowercase hex HMAC-SHA256>". The HMAC key is the whole
// secret string (prefix included, not decoded) and the message is
// "<unix ms>.<body>", which is what WorkOS SDKs compute.
func WorkOS(secret string, t time.Time, body []byte) string {
	ms := strconv.FormatInt(t.UnixMilli(), 10)
	return "t=" + ms + ", v1=" + hex.EncodeToString(workosMAC(secret, ms, body))
}

func workosMAC(secret, ms string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ms))
	m.Write([]byte("."))
	m.Write(body)
	return m.Sum(nil)
}

// StandardWebhooks returns the webhook-signature header value,
// "v1,<base64 HMAC-SHA256>", keyed with the base64-decoded part of secret
// after "whsec_" over "<id>.<unix seconds>.<body>".
func StandardWebhooks(secret, id string, t time.Time, body []byte) (string, error) {
	key, err := standardKey(secret)
	if err != nil {
		return "", err
	}
	mac := standardMAC(key, id, strconv.FormatInt(t.Unix(), 10), body)
	return standardSignatureVersion + "," + base64.StdEncoding.EncodeToString(mac), nil
}

func standardKey(secret string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, SecretPrefix))
	if err != nil || len(key) == 0 {
		return nil, ErrInvalidSecret
	}
	return key, nil
}

func standardMAC(key []byte, id, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte("."))
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return m.Sum(nil)
}

// WorkOSHeader is a parsed WorkOS-Signature header.
type WorkOSHeader struct {
	Timestamp time.Time
	// raw is the timestamp exactly as sent; it is what was signed.
	raw string
	// Signatures are the decoded v1 signatures (a header may carry several
	// during secret rotation).
	Signatures [][]byte
}

// ParseWorkOS parses "t=<unix ms>, v1=<hex>[, v1=<hex>…]". Whitespace around
// the comma-separated parts is ignored; unknown schemes are skipped. It
// returns ErrMalformedHeader when t or every v1 is missing or unparsable.
func ParseWorkOS(header string) (WorkOSHeader, error) {
	var h WorkOSHeader
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return WorkOSHeader{}, fmt.Errorf("%w: part %q", ErrMalformedHeader, part)
		}
		switch k {
		case "t":
			ms, err := strconv.ParseInt(v, 10, 64)
			if err != nil || ms < 0 || h.raw != "" {
				return WorkOSHeader{}, fmt.Errorf("%w: timestamp %q", ErrMalformedHeader, v)
			}
			h.raw, h.Timestamp = v, time.UnixMilli(ms)
		case "v1":
			sig, err := hex.DecodeString(v)
			if err != nil || len(sig) != sha256.Size {
				return WorkOSHeader{}, fmt.Errorf("%w: v1 %q", ErrMalformedHeader, v)
			}
			h.Signatures = append(h.Signatures, sig)
		}
	}
	if h.raw == "" || len(h.Signatures) == 0 {
		return WorkOSHeader{}, fmt.Errorf("%w: need t and v1", ErrMalformedHeader)
	}
	return h, nil
}

// VerifyWorkOS checks a WorkOS-Signature header against body. When
// tolerance is positive the timestamp must be within tolerance of now
// (ErrTimestamp otherwise), which bounds replays. It returns
// ErrMalformedHeader or ErrMismatch on failure; comparison is constant-time.
func VerifyWorkOS(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	h, err := ParseWorkOS(header)
	if err != nil {
		return err
	}
	if err := checkTolerance(h.Timestamp, now, tolerance); err != nil {
		return err
	}
	want := workosMAC(secret, h.raw, body)
	for _, sig := range h.Signatures {
		if hmac.Equal(sig, want) {
			return nil
		}
	}
	return ErrMismatch
}

// ParseStandardSignatures parses a webhook-signature header: space-separated
// "<version>,<base64>" entries. It returns the decoded v1 signatures, and
// ErrMalformedHeader when there is none or one is not valid base64.
func ParseStandardSignatures(header string) ([][]byte, error) {
	var sigs [][]byte
	for entry := range strings.FieldsSeq(header) {
		version, b64, ok := strings.Cut(entry, ",")
		if !ok {
			return nil, fmt.Errorf("%w: entry %q", ErrMalformedHeader, entry)
		}
		if version != standardSignatureVersion {
			continue
		}
		sig, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			return nil, fmt.Errorf("%w: entry %q", ErrMalformedHeader, entry)
		}
		sigs = append(sigs, sig)
	}
	if len(sigs) == 0 {
		return nil, fmt.Errorf("%w: no v1 signature", ErrMalformedHeader)
	}
	return sigs, nil
}

// VerifyStandard checks Standard Webhooks headers (id, timestamp in unix
// seconds, signature) against body with the same tolerance rule as
// VerifyWorkOS. It returns ErrInvalidSecret, ErrMalformedHeader,
// ErrTimestamp or ErrMismatch on failure.
func VerifyStandard(secret, id, timestamp, signature string, body []byte, now time.Time, tolerance time.Duration) error {
	key, err := standardKey(secret)
	if err != nil {
		return err
	}
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil || sec < 0 {
		return fmt.Errorf("%w: timestamp %q", ErrMalformedHeader, timestamp)
	}
	sigs, err := ParseStandardSignatures(signature)
	if err != nil {
		return err
	}
	if err := checkTolerance(time.Unix(sec, 0), now, tolerance); err != nil {
		return err
	}
	want := standardMAC(key, id, timestamp, body)
	for _, sig := range sigs {
		if hmac.Equal(sig, want) {
			return nil
		}
	}
	return ErrMismatch
}

func checkTolerance(t, now time.Time, tolerance time.Duration) error {
	if tolerance <= 0 {
		return nil
	}
	if d := now.Sub(t); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: signed at %s", ErrTimestamp, t.UTC().Format(time.RFC3339))
	}
	return nil
}
