package httpapi

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dsync-dev/dsync/pkg/event"
)

func TestRecoverPanics(t *testing.T) {
	var logs bytes.Buffer
	s := &server{Deps: Deps{Logger: slog.New(slog.NewJSONHandler(&logs, nil)), IDs: event.NewIDs()}}
	h := s.observe(s.recoverPanics(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") })))
	tests := []struct{ path, contentType, field string }{
		{"/scim/v2/x/Users", "application/scim+json", "detail"},
		{"/directories", "application/json", "message"},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, tt.path, nil))
		require.Equal(t, http.StatusInternalServerError, rec.Code)
		require.Equal(t, tt.contentType, rec.Header().Get("Content-Type"))
		var m map[string]any
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &m))
		require.NotEmpty(t, m[tt.field])
	}
	require.Contains(t, logs.String(), "handler panic")
	require.Contains(t, logs.String(), `"status":500`)
}
