package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/dsync-dev/dsync/pkg/event"
	"github.com/dsync-dev/dsync/services/gateway/internal/scim"
)

// requestInfo is filled in as a request is handled and read by the access log.
type requestInfo struct {
	id          string
	directoryID string
}

type requestInfoKey struct{}

func info(ctx context.Context) *requestInfo {
	if ri, ok := ctx.Value(requestInfoKey{}).(*requestInfo); ok {
		return ri
	}
	return &requestInfo{}
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// observe gives every request an id (X-Request-Id, also recorded in the
// events it causes) and logs one access line for it. The line never holds
// headers or bodies: they carry tokens, API keys and passwords.
func (s *server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ri := &requestInfo{id: s.IDs.New(event.PrefixRequest)}
		w.Header().Set("X-Request-Id", ri.id)
		rec := &statusRecorder{ResponseWriter: w}
		ctx := context.WithValue(r.Context(), requestInfoKey{}, ri)
		next.ServeHTTP(rec, r.WithContext(ctx))
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		level := slog.LevelInfo
		if rec.status >= 500 {
			level = slog.LevelWarn
		}
		s.Logger.LogAttrs(ctx, level, "http request",
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", rec.status),
			slog.Int64("bytes", rec.bytes),
			slog.Duration("latency", time.Since(start)),
			slog.String("request_id", ri.id),
			slog.String("directory_id", ri.directoryID),
		)
	})
}

// recoverPanics turns a panic into a 500 in the format of the API that was
// called, and logs it with its stack. There should be none; this keeps one
// bad request from taking the process down.
func (s *server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.Logger.ErrorContext(r.Context(), "handler panic",
				"request_id", info(r.Context()).id, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			if strings.HasPrefix(r.URL.Path, "/scim/") {
				writeSCIMError(w, &scim.Error{Status: http.StatusInternalServerError, Detail: "Internal server error"})
				return
			}
			writeRESTError(w, http.StatusInternalServerError, "internal_error", "Internal server error")
		}()
		next.ServeHTTP(w, r)
	})
}
