package dashboard

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestGRPCStatus(t *testing.T) {
	const msg = "no such directory"
	want := map[codes.Code]grpcFailure{
		codes.NotFound:        {http.StatusNotFound, "Not found", msg},
		codes.InvalidArgument: {http.StatusUnprocessableEntity, "Request not accepted", msg},
		codes.FailedPrecondition: {http.StatusServiceUnavailable, "Catching up",
			"The read model has not caught up with recent writes yet. Reload in a moment."},
		codes.Unavailable: {http.StatusServiceUnavailable, "Temporarily unavailable",
			"A backend service is unavailable. Check the health page."},
		codes.DeadlineExceeded: {http.StatusServiceUnavailable, "Temporarily unavailable",
			"A backend service is unavailable. Check the health page."},
		codes.Unimplemented: {http.StatusServiceUnavailable, "Backend out of date",
			"A backend service is older than this gateway. Upgrade it; the health page shows which."},
	}
	for c := codes.Canceled; c <= codes.Unauthenticated; c++ {
		t.Run(c.String(), func(t *testing.T) {
			err := status.Error(c, msg)
			w, ok := want[c]
			got, gotOK := grpcStatus(err)
			require.Equal(t, ok, gotOK, "anything else is the dashboard's logged 502")
			require.Equal(t, w, got)

			wrapped := fmt.Errorf("list users: %w", err)
			got, gotOK = grpcStatus(wrapped)
			require.Equal(t, ok, gotOK)
			require.Equal(t, w, got)
		})
	}
	for _, err := range []error{nil, errors.New("boom"), &APIError{Status: 404}} {
		_, ok := grpcStatus(err)
		require.False(t, ok, "%v", err)
	}
}
