package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/dsync-dev/dsync/pkg/event"
	"github.com/dsync-dev/dsync/pkg/workos"
	"github.com/dsync-dev/dsync/services/gateway/internal/dashboard"
	"github.com/dsync-dev/dsync/services/gateway/internal/scim"
)

// The SCIM request log (DESIGN §6): every SCIM request to a well-formed
// directory id is recorded — method, path, status, latency, request id, the
// IdP dialect and the body with its secrets redacted — and published on
// core NATS (dashboard.RequestSubject), where the dashboards of every
// gateway replica keep the last requests of each directory and show them
// live. Publishing is fire-and-forget: the log never slows or fails a SCIM
// request.

const (
	// requestBodyCapture is how much of a body is read for the log; a
	// larger body is noted, not shown (it cannot be redacted when cut).
	requestBodyCapture = 64 << 10
	// requestBodyShown caps the redacted body kept in a record.
	requestBodyShown = 16 << 10
	// directoryTypesKept bounds the cache of directory types (for the
	// dialect of requests whose User-Agent does not name the IdP).
	directoryTypesKept = 10_000
)

// requestLogger records SCIM requests.
type requestLogger struct {
	s     *server
	mu    sync.Mutex
	types map[string]string // directory id → WorkOS type
}

func newRequestLogger(s *server) *requestLogger {
	return &requestLogger{s: s, types: map[string]string{}}
}

// wrap records each request next serves. It sits inside observe, which
// assigns the request id.
func (l *requestLogger) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, _ := strings.CutPrefix(r.URL.Path, "/scim/v2/")
		dirID, _, _ := strings.Cut(rest, "/")
		// Only a well-formed id becomes part of a subject: never a
		// wildcard or a dotted path.
		if !event.ValidID(dirID, event.PrefixDirectory) || l.s.NATS == nil {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		body := &captureBody{ReadCloser: r.Body}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = body
		}
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		out := dashboard.SCIMRequest{
			ID: info(r.Context()).id, DirectoryID: dirID, At: workos.FormatTime(start),
			Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Status: rec.status,
			LatencyMS: float64(time.Since(start).Microseconds()) / 1000,
			UserAgent: truncate(r.UserAgent(), 200),
		}
		out.Provider = l.provider(r.Context(), dirID, r.UserAgent())
		out.Body, out.BodyNote = body.redacted()
		data, err := json.Marshal(out)
		if err != nil {
			return
		}
		if err := l.s.NATS.Publish(dashboard.RequestSubject(dirID), data); err != nil {
			l.s.Logger.WarnContext(r.Context(), "request log: publish", "request_id", out.ID, "error", err)
		}
	})
}

// provider detects the IdP dialect: from the User-Agent when it names the
// IdP, else from the directory's type (read once per directory, after
// the response is written).
func (l *requestLogger) provider(ctx context.Context, dirID, userAgent string) string {
	if p := scim.DetectProvider(userAgent, ""); p != scim.ProviderGeneric {
		return p
	}
	l.mu.Lock()
	typ, ok := l.types[dirID]
	l.mu.Unlock()
	if !ok && l.s.Log != nil {
		ev, _, err := l.s.Log.Last(ctx, event.DirectorySubject(dirID))
		if err != nil || ev.GetDirectory() == nil {
			return scim.ProviderGeneric
		}
		typ = ev.GetDirectory().GetType()
		l.mu.Lock()
		if len(l.types) >= directoryTypesKept {
			clear(l.types)
		}
		l.types[dirID] = typ
		l.mu.Unlock()
	}
	return scim.DetectProvider(userAgent, typ)
}

// captureBody keeps the first bytes of what the handler reads.
type captureBody struct {
	io.ReadCloser
	buf      bytes.Buffer
	total    int64
	overflow bool
}

func (c *captureBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.total += int64(n)
	if room := requestBodyCapture - c.buf.Len(); room > 0 {
		c.buf.Write(p[:min(n, room)])
	}
	if n > 0 && c.total > requestBodyCapture {
		c.overflow = true
	}
	return n, err
}

// redacted returns the captured body as indented JSON with secrets
// replaced, or a note saying why there is none.
func (c *captureBody) redacted() (body, note string) {
	switch {
	case c.total == 0:
		return "", ""
	case c.overflow:
		return "", fmt.Sprintf("body of %d bytes or more not recorded (over %d KiB)", c.total, requestBodyCapture>>10)
	}
	return RedactBody(c.buf.Bytes())
}

// redactedValue replaces every secret in a recorded body.
const redactedValue = "[redacted]"

// RedactBody parses a JSON request body and returns it indented with every
// secret replaced by "[redacted]": the value of any key that names a
// password, token or secret (case-insensitive, e.g. "password",
// "bearer_token", "clientSecret"), and the value of a SCIM PATCH operation
// whose path names one ({"op":"replace","path":"password","value":…}).
// A body that is not JSON is not returned (it could hold anything); the
// note says so. The result is cut to 16 KiB.
func RedactBody(data []byte) (body, note string) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return "", fmt.Sprintf("body of %d bytes is not JSON; not recorded", len(data))
	}
	v = redact(v)
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return "", "body could not be re-encoded; not recorded"
	}
	if len(out) > requestBodyShown {
		return string(out[:requestBodyShown]), fmt.Sprintf("cut to the first %d KiB", requestBodyShown>>10)
	}
	return string(out), ""
}

func secretKey(k string) bool {
	k = strings.ToLower(k)
	return strings.Contains(k, "password") || strings.Contains(k, "token") || strings.Contains(k, "secret")
}

func redact(v any) any {
	switch t := v.(type) {
	case map[string]any:
		// A PATCH operation that sets a secret carries it in "value".
		if p, ok := t["path"].(string); ok && secretKey(p) {
			if _, has := t["value"]; has {
				t["value"] = redactedValue
			}
		}
		for k, x := range t {
			if secretKey(k) {
				t[k] = redactedValue
				continue
			}
			t[k] = redact(x)
		}
		return t
	case []any:
		for i, x := range t {
			t[i] = redact(x)
		}
		return t
	}
	return v
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
