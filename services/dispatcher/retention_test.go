package dispatcher_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/dsync-dev/dsync/pkg/pgtest"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
	"github.com/dsync-dev/dsync/services/dispatcher"
)

// TestRetention: with a retention of a nanosecond, a delivered event leaves
// the delivery log (and replay) at the next prune, while a disabled
// endpoint's pending delivery stays, and so does its event, which replay
// can still send.
func TestRetention(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		store func(t *testing.T) option
	}{
		{name: "sqlite", store: func(t *testing.T) option { return sqliteStore(t) }},
		{name: "postgres", store: func(t *testing.T) option {
			url := pgtest.NewDatabase(t)
			return func(c *dispatcher.Config) { c.PostgresURL = url }
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, tt.store(t), func(c *dispatcher.Config) {
				c.Retention = time.Nanosecond
				c.PruneEvery = 20 * time.Millisecond
			})
			start := time.Now()
			rcv := newReceiver(t, always(http.StatusOK))
			ep := e.createEndpoint(rcv.URL)

			first := e.userCreated()
			require.Eventually(t, func() bool { return len(rcv.got()) == 1 }, wait, tick)
			require.Eventually(t, func() bool { return len(e.deliveries(ep.GetId())) == 0 }, wait, tick)
			_, err := e.client.ReplayEvents(t.Context(), &dsyncv1.ReplayEventsRequest{EndpointId: ep.GetId(),
				From: &dsyncv1.ReplayEventsRequest_AfterEventId{AfterEventId: first.GetId()}})
			require.Equal(t, codes.NotFound, status.Code(err), "a pruned event")

			parked := e.createEndpoint(rcv.URL)
			_, err = e.client.UpdateEndpoint(t.Context(), &dsyncv1.UpdateEndpointRequest{
				Endpoint:   &dsyncv1.Endpoint{Id: parked.GetId(), State: dsyncv1.EndpointState_ENDPOINT_STATE_DISABLED},
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"state"}},
			})
			require.NoError(t, err)
			second := e.userCreated()
			require.Eventually(t, func() bool { return len(rcv.got()) == 2 }, wait, tick)
			// The pass that pruned the second event's delivery to ep saw
			// the parked one too: they were stored together.
			require.Eventually(t, func() bool { return len(e.deliveries(ep.GetId())) == 0 }, wait, tick)
			ds := e.deliveries(parked.GetId())
			require.Len(t, ds, 1, "pending deliveries are kept")
			require.Equal(t, dsyncv1.DeliveryState_DELIVERY_STATE_PENDING, ds[0].GetState())
			require.Equal(t, second.GetId(), ds[0].GetEventId())

			rep, err := e.client.ReplayEvents(t.Context(), &dsyncv1.ReplayEventsRequest{EndpointId: ep.GetId(),
				From: &dsyncv1.ReplayEventsRequest_Since{Since: timestamppb.New(start.Add(-time.Minute))}})
			require.NoError(t, err)
			require.Equal(t, int64(1), rep.GetScheduled(), "only the event a pending delivery keeps")
			require.Eventually(t, func() bool { return len(rcv.got()) == 3 }, wait, tick)
			require.Equal(t, second.GetId(), rcv.got()[2].header.Get("webhook-id"))
		})
	}
}
