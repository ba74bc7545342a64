package backenderr

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// nilStatus is an error whose GRPCStatus is nil, which gRPC refuses to
// treat as a status.
type nilStatus struct{}

func (nilStatus) Error() string              { return "nil status" }
func (nilStatus) GRPCStatus() *status.Status { return nil }

func TestClassifyEveryCode(t *testing.T) {
	want := map[codes.Code]Kind{
		codes.OK:                 Unknown,
		codes.Canceled:           Unknown,
		codes.Unknown:            Unknown,
		codes.InvalidArgument:    Invalid,
		codes.DeadlineExceeded:   Unavailable,
		codes.NotFound:           NotFound,
		codes.AlreadyExists:      Unknown,
		codes.PermissionDenied:   Unknown,
		codes.ResourceExhausted:  Unknown,
		codes.FailedPrecondition: NotReady,
		codes.Aborted:            Unknown,
		codes.OutOfRange:         Unknown,
		codes.Unimplemented:      Misconfigured,
		codes.Internal:           Unknown,
		codes.Unavailable:        Unavailable,
		codes.DataLoss:           Unknown,
		codes.Unauthenticated:    Unknown,
	}
	// Every code gRPC defines, so that a new one is classified on purpose.
	for c := codes.OK; c <= codes.Unauthenticated; c++ {
		require.Contains(t, want, c, "code %s", c)
	}
	for code, kind := range want {
		t.Run(code.String(), func(t *testing.T) {
			// status.Error answers nil for OK: there is no OK error.
			err := status.Error(code, "backend says why")
			wantMsg := "backend says why"
			if code == codes.OK {
				require.NoError(t, err)
				wantMsg = ""
			}
			k, msg := Classify(err)
			require.Equal(t, kind, k)
			require.Equal(t, wantMsg, msg)

			if err == nil {
				return
			}
			// A wrapped status is found, and its message is the
			// backend's own, not the wrapping's.
			wrapped := fmt.Errorf("get directory d: %w", err)
			k, msg = Classify(wrapped)
			require.Equal(t, kind, k)
			require.Equal(t, wantMsg, msg)

			k, _ = Classify(fmt.Errorf("outer: %w", fmt.Errorf("inner: %w", err)))
			require.Equal(t, kind, k, "twice wrapped")
			k, _ = Classify(errors.Join(errors.New("other"), err))
			require.Equal(t, kind, k, "joined")
		})
	}
}

func TestClassifyNonGRPCErrors(t *testing.T) {
	tests := []struct {
		name string
		err  error
	}{
		{"nil", nil},
		{"plain", errors.New("boom")},
		{"wrapped plain", fmt.Errorf("make token: %w", errors.New("boom"))},
		// A context error is not a status: the caller decides what its own
		// deadline means (SCIM answers it as a timeout).
		{"context deadline", context.DeadlineExceeded},
		{"context canceled", fmt.Errorf("call: %w", context.Canceled)},
		{"nil GRPCStatus", nilStatus{}},
		{"wrapped nil GRPCStatus", fmt.Errorf("call: %w", nilStatus{})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, msg := Classify(tt.err)
			require.Equal(t, Unknown, k)
			require.Empty(t, msg, "no status, no backend message")
		})
	}
}

func TestKindRendering(t *testing.T) {
	tests := []struct {
		kind      Kind
		status    int
		retryable bool
		name      string
	}{
		{Unknown, http.StatusInternalServerError, false, "unknown"},
		{NotFound, http.StatusNotFound, false, "not_found"},
		{Invalid, http.StatusUnprocessableEntity, false, "invalid"},
		{NotReady, http.StatusServiceUnavailable, true, "not_ready"},
		{Unavailable, http.StatusServiceUnavailable, true, "unavailable"},
		{Misconfigured, http.StatusServiceUnavailable, true, "misconfigured"},
		{Kind(99), http.StatusInternalServerError, false, "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.status, tt.kind.HTTPStatus())
			require.Equal(t, tt.retryable, tt.kind.Retryable())
			require.Equal(t, tt.name, tt.kind.String())
		})
	}
	var zero Kind
	require.Equal(t, Unknown, zero, "an unclassified error is Unknown")
}
