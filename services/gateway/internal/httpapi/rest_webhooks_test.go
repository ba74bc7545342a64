package httpapi

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzWebhookBodies feeds arbitrary JSON to the webhook API's body parsers:
// they accept it or return a client error (422), never panic.
func FuzzWebhookBodies(f *testing.F) {
	f.Add(`{"url":"https://x.example/h","events":["dsync.user.created"],"state":"enabled","retry_schedule":[0,5],"ordering":"directory"}`)
	f.Add(`{"state":"paused"}`)
	f.Add(`{"events":null,"url":""}`)
	f.Add(`{"since":"2024-01-02T03:04:05Z","after":"event_01HZZZZZZZZZZZZZZZZZZZZZZZ"}`)
	f.Add(`{"since":"yesterday"}`)
	f.Add(`{"grace_period_seconds":-1}`)
	f.Fuzz(func(t *testing.T, body string) {
		var upd UpdateEndpointRequest
		if json.Unmarshal([]byte(body), &upd) == nil {
			in, err := upd.toProto("we_01HZZZZZZZZZZZZZZZZZZZZZZZ")
			if err != nil {
				var he *httpError
				require.ErrorAs(t, err, &he)
				require.Equal(t, 422, he.status)
			} else {
				require.Len(t, in.GetUpdateMask().GetPaths(), countSet(upd))
			}
		}
		var create CreateEndpointRequest
		if json.Unmarshal([]byte(body), &create) == nil {
			if err := create.validate(); err != nil {
				var he *httpError
				require.ErrorAs(t, err, &he)
				require.Equal(t, 422, he.status)
			}
		}
		var rep ReplayRequest
		if json.Unmarshal([]byte(body), &rep) == nil && rep.Since != "" {
			if _, err := parseTime("since", rep.Since); err != nil {
				var he *httpError
				require.ErrorAs(t, err, &he)
				require.Equal(t, 422, he.status)
			}
		}
	})
}

func countSet(u UpdateEndpointRequest) int {
	n := 0
	for _, set := range []bool{u.URL != nil, u.Events != nil, u.Description != nil, u.State != nil, u.RetrySchedule != nil, u.Ordering != nil} {
		if set {
			n++
		}
	}
	return n
}
