package dispatcher_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/dsync-dev/dsync/pkg/event"
	"github.com/dsync-dev/dsync/pkg/workos"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
)

// TestListEventDeliveries: one call returns every endpoint's deliveries of
// the events named, with their attempts exactly as ListDeliveries has them,
// in event then endpoint order; bad requests are INVALID_ARGUMENT.
func TestListEventDeliveries(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sqliteStore(t))
	ctx := t.Context()
	flaky := newReceiver(t, func(n int) int {
		if n == 0 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	healthy := newReceiver(t, always(http.StatusNoContent))
	eps := []string{e.createEndpoint(flaky.URL).GetId(), e.createEndpoint(healthy.URL, workos.EventUserCreated).GetId()}
	e.createEndpoint(healthy.URL+"/groups", workos.EventGroupCreated) // gets none of them
	evs := []string{e.userCreated().GetId(), e.userCreated().GetId()}
	succeeded := dsyncv1.DeliveryState_DELIVERY_STATE_SUCCEEDED
	byEndpoint := map[string][]*dsyncv1.Delivery{}
	for _, ep := range eps {
		byEndpoint[ep] = e.waitStates(ep, succeeded, succeeded)
	}

	var want []*dsyncv1.Delivery
	slices.Sort(eps)
	for _, ev := range slices.Sorted(slices.Values(evs)) {
		for _, ep := range eps {
			i := slices.IndexFunc(byEndpoint[ep], func(d *dsyncv1.Delivery) bool { return d.GetEventId() == ev })
			require.GreaterOrEqual(t, i, 0)
			want = append(want, byEndpoint[ep][i])
		}
	}
	resp, err := e.client.ListEventDeliveries(ctx, &dsyncv1.ListEventDeliveriesRequest{
		EventIds: []string{evs[1], evs[0], evs[1], e.ids.New(event.PrefixEvent)}})
	require.NoError(t, err)
	require.Len(t, resp.GetDeliveries(), 4)
	require.True(t, proto.Equal(&dsyncv1.ListEventDeliveriesResponse{Deliveries: want}, resp),
		"want %v\ngot  %v", want, resp.GetDeliveries())
	attempts := 0
	for _, d := range resp.GetDeliveries() {
		attempts += len(d.GetAttemptsLog())
	}
	require.Equal(t, 5, attempts, "the flaky endpoint's first attempt failed")

	tooMany := make([]string, 101)
	for i := range tooMany {
		tooMany[i] = e.ids.New(event.PrefixEvent)
	}
	for _, tc := range []struct {
		name string
		ids  []string
	}{
		{"none", nil},
		{"more than 100", tooMany},
		{"malformed", []string{evs[0], "event_'; DROP TABLE deliveries"}},
		{"another kind of id", []string{eps[0]}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.client.ListEventDeliveries(ctx, &dsyncv1.ListEventDeliveriesRequest{EventIds: tc.ids})
			require.Equal(t, codes.InvalidArgument, status.Code(err), err)
			require.Contains(t, status.Convert(err).Message(), "event id")
		})
	}
}
