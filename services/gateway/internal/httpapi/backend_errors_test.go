package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// backendFailure is how one error from a backend is answered.
type backendFailure struct {
	status      int
	code        string // REST only
	message     string // REST message or SCIM detail
	retryAfter  string
	logContains string // "" when nothing may be logged
}

// backendErrorCases are the errors of the projector and dispatcher the
// gateway may see: every gRPC code, plain and wrapped, and errors that
// hold no status.
func backendErrorCases() map[string]error {
	cases := map[string]error{
		"plain error":      errors.New("boom"),
		"context deadline": fmt.Errorf("call: %w", context.DeadlineExceeded),
	}
	for c := codes.Canceled; c <= codes.Unauthenticated; c++ {
		err := status.Error(c, "backend says "+c.String())
		cases[c.String()] = err
		cases["wrapped "+c.String()] = fmt.Errorf("read directory_x: %w", err)
	}
	return cases
}

func backendTestServer() (*server, *bytes.Buffer) {
	var logs bytes.Buffer
	return &server{Deps: Deps{Logger: slog.New(slog.NewTextHandler(&logs, nil))}}, &logs
}

func backendTestRequest(t *testing.T) *http.Request {
	r := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/directories", nil)
	return r.WithContext(context.WithValue(r.Context(), requestInfoKey{}, &requestInfo{id: "req_1"}))
}

func TestRESTBackendErrors(t *testing.T) {
	internal := backendFailure{status: 500, code: "internal_error", message: "Internal server error; request id req_1", logContains: "rest request failed"}
	byCode := map[codes.Code]func(msg string) backendFailure{
		codes.NotFound: func(msg string) backendFailure {
			return backendFailure{status: 404, code: "entity_not_found", message: msg}
		},
		codes.InvalidArgument: func(msg string) backendFailure {
			return backendFailure{status: 422, code: "invalid_request_parameters", message: msg}
		},
		codes.FailedPrecondition: func(string) backendFailure {
			return backendFailure{status: 503, code: "not_ready", message: "The read model has not caught up with recent writes yet; retry shortly", retryAfter: "1"}
		},
		codes.Unavailable: func(string) backendFailure {
			return backendFailure{status: 503, code: "service_unavailable", message: "A backend service is unavailable; retry shortly", retryAfter: "1"}
		},
		codes.DeadlineExceeded: func(string) backendFailure {
			return backendFailure{status: 503, code: "service_unavailable", message: "A backend service is unavailable; retry shortly", retryAfter: "1"}
		},
		codes.Unimplemented: func(string) backendFailure {
			return backendFailure{status: 503, code: "backend_misconfigured", message: "A backend service does not implement this call (misconfigured deployment); retry later",
				retryAfter: "1", logContains: "backend does not implement a call"}
		},
	}
	for name, err := range backendErrorCases() {
		t.Run(name, func(t *testing.T) {
			want := internal
			// Clients see the backend's own message, never the wrapping.
			var carrier interface{ GRPCStatus() *status.Status }
			if errors.As(err, &carrier) {
				st := carrier.GRPCStatus()
				if f, ok := byCode[st.Code()]; ok {
					want = f(st.Message())
				}
			}
			s, logs := backendTestServer()
			w := httptest.NewRecorder()
			s.restFail(w, backendTestRequest(t), err)
			require.Equal(t, want.status, w.Code)
			require.Equal(t, "application/json", w.Header().Get("Content-Type"))
			require.Equal(t, want.retryAfter, w.Header().Get("Retry-After"))
			var body restError
			require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body))
			require.Equal(t, restError{Message: want.message, Code: want.code}, body)
			requireLogged(t, logs, want.logContains)
		})
	}
}

func TestSCIMBackendErrors(t *testing.T) {
	internal := backendFailure{status: 500, message: "Internal server error; request id req_1", logContains: "scim request failed"}
	catchingUp := backendFailure{status: 503, message: "The directory's read model is catching up; retry later", retryAfter: "30"}
	// SCIM answers only what a read model can say about itself; the scim
	// package turns NotFound and the like into SCIM errors before here.
	byCode := map[codes.Code]backendFailure{
		codes.FailedPrecondition: catchingUp,
		codes.Unavailable:        catchingUp,
		codes.DeadlineExceeded:   catchingUp,
		codes.Unimplemented: {status: 503, message: "The directory's read model is misconfigured (a backend call is not implemented); request id req_1",
			retryAfter: "30", logContains: "read model does not implement"},
	}
	for name, err := range backendErrorCases() {
		t.Run(name, func(t *testing.T) {
			want := internal
			if st, ok := status.FromError(err); ok {
				if f, ok := byCode[st.Code()]; ok {
					want = f
				}
			}
			if errors.Is(err, context.DeadlineExceeded) {
				want = backendFailure{status: 503, message: "The request did not complete in time; retry later", retryAfter: "30"}
			}
			s, logs := backendTestServer()
			w := httptest.NewRecorder()
			s.scimFail(w, backendTestRequest(t), err)
			require.Equal(t, want.status, w.Code)
			require.Equal(t, scimContentType, w.Header().Get("Content-Type"))
			require.Equal(t, want.retryAfter, w.Header().Get("Retry-After"))
			var body struct {
				Schemas []string `json:"schemas"`
				Status  string   `json:"status"`
				Detail  string   `json:"detail"`
			}
			require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body))
			require.Equal(t, want.message, body.Detail)
			require.Equal(t, fmt.Sprint(want.status), body.Status)
			requireLogged(t, logs, want.logContains)
		})
	}
}

func requireLogged(t *testing.T, logs *bytes.Buffer, line string) {
	t.Helper()
	if line == "" {
		require.Empty(t, logs.String())
		return
	}
	require.Contains(t, logs.String(), line)
	require.Contains(t, logs.String(), "level=ERROR")
	require.Contains(t, logs.String(), "request_id=req_1")
}
