package dashboard_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dsync-dev/dsync/services/gateway/internal/dashboard"
)

// A user's history and the live view find an event's deliveries with one
// ListEventDeliveries call, every endpoint's included (one past those
// ListEndpoints lists shows its id); beside a dispatcher from before that
// call they ask each listed endpoint, as they used to.
func TestDeliveriesByEvent(t *testing.T) {
	otherShown := `class="mono">` + otherEPID + `</a>`
	tests := []struct {
		name string
		old  bool
	}{
		{"one call", false},
		{"older dispatcher", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixtureWith(t, &fakeWebhooks{old: tt.old})
			b := f.browser(t)
			b.signIn(apiKey)

			resp, page := b.do("GET", "/dashboard/users/"+userID, nil)
			require.Equal(t, http.StatusOK, resp.StatusCode, page)
			require.Contains(t, page, "https://app.test/hook")
			require.Contains(t, page, "HTTP 500")
			require.Equal(t, 1, f.wh.count("ListEventDeliveries"))
			if tt.old {
				require.NotContains(t, page, otherEPID, "a scan sees the listed endpoints only")
				require.Positive(t, f.wh.count("ListDeliveries"))
			} else {
				require.Contains(t, page, otherShown)
				require.Zero(t, f.wh.count("ListDeliveries"), "no endpoint is asked")
			}

			// Bounded: the stream itself never ends.
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, "GET", f.srv.URL+"/dashboard/directories/"+dirID+"/live", nil)
			require.NoError(t, err)
			stream, err := (&http.Client{Jar: b.c.Jar}).Do(req)
			require.NoError(t, err)
			defer stream.Body.Close()
			var got []dashboard.LiveDelivery
			want := 2
			if tt.old {
				want = 1
			}
			for fr := range readFrames(stream.Body) {
				if fr.name != "delivery" {
					continue
				}
				var dv dashboard.LiveDelivery
				require.NoError(t, json.Unmarshal([]byte(fr.data), &dv))
				if got = append(got, dv); len(got) == want {
					break
				}
			}
			require.Len(t, got, want)
			require.Equal(t, eventID, got[0].EventID)
			require.Equal(t, epID, got[0].EndpointID)
			require.Equal(t, "https://app.test/hook", got[0].EndpointURL)
			if !tt.old {
				require.Equal(t, otherEPID, got[1].EndpointID)
				require.Equal(t, otherEPID, got[1].EndpointURL, "an endpoint not listed shows its id")
				require.Zero(t, f.wh.count("ListDeliveries"))
			}
		})
	}
}
