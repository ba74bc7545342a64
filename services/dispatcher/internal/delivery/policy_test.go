package delivery_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dsync-dev/dsync/services/dispatcher/internal/delivery"
)

func TestPolicyDecide(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	p := delivery.Policy{Schedule: []time.Duration{5 * time.Second, time.Minute}, Jitter: func() float64 { return 1 }}
	tests := []struct {
		name   string
		number int
		r      delivery.Result
		want   delivery.Outcome
	}{
		{"200", 1, delivery.Result{StatusCode: 200}, delivery.Outcome{State: delivery.DeliverySucceeded}},
		{"299", 3, delivery.Result{StatusCode: 299}, delivery.Outcome{State: delivery.DeliverySucceeded}},
		{"500 first", 1, delivery.Result{StatusCode: 500}, delivery.Outcome{State: delivery.DeliveryPending, NextAttemptAt: now.Add(5 * time.Second)}},
		{"500 second", 2, delivery.Result{StatusCode: 500}, delivery.Outcome{State: delivery.DeliveryPending, NextAttemptAt: now.Add(time.Minute)}},
		{"500 last", 3, delivery.Result{StatusCode: 500}, delivery.Outcome{State: delivery.DeliveryFailed}},
		{"transport error", 1, delivery.Result{Err: errors.New("refused")}, delivery.Outcome{State: delivery.DeliveryPending, NextAttemptAt: now.Add(5 * time.Second)}},
		{"302", 1, delivery.Result{StatusCode: 302}, delivery.Outcome{State: delivery.DeliveryPending, NextAttemptAt: now.Add(5 * time.Second)}},
		{"410", 1, delivery.Result{StatusCode: 410}, delivery.Outcome{State: delivery.DeliveryFailed, DisableEndpoint: true}},
		{"429 Retry-After", 1, delivery.Result{StatusCode: 429, RetryAfter: 42 * time.Second}, delivery.Outcome{State: delivery.DeliveryPending, NextAttemptAt: now.Add(42 * time.Second)}},
		{"503 Retry-After capped", 1, delivery.Result{StatusCode: 503, RetryAfter: 5 * time.Hour}, delivery.Outcome{State: delivery.DeliveryPending, NextAttemptAt: now.Add(time.Hour)}},
		{"500 Retry-After ignored", 1, delivery.Result{StatusCode: 500, RetryAfter: 42 * time.Second}, delivery.Outcome{State: delivery.DeliveryPending, NextAttemptAt: now.Add(5 * time.Second)}},
		{"429 on last attempt", 3, delivery.Result{StatusCode: 429, RetryAfter: time.Second}, delivery.Outcome{State: delivery.DeliveryFailed}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, p.Decide(tc.number, tc.r, now))
		})
	}
}

func TestPolicyJitter(t *testing.T) {
	now := time.Now()
	p := delivery.Policy{Schedule: []time.Duration{100 * time.Second}}
	for range 1000 {
		o := p.Decide(1, delivery.Result{StatusCode: 500}, now)
		d := o.NextAttemptAt.Sub(now)
		require.GreaterOrEqual(t, d, 90*time.Second)
		require.LessOrEqual(t, d, 110*time.Second)
	}
}

func TestDefaultScheduleIsAboutThreeDays(t *testing.T) {
	var total time.Duration
	for _, d := range delivery.DefaultSchedule {
		total += d
	}
	require.InDelta(t, 72, total.Hours(), 12)
}

func TestSubscribes(t *testing.T) {
	require.True(t, delivery.Endpoint{}.Subscribes("dsync.user.created"))
	e := delivery.Endpoint{Events: []string{"dsync.user.created"}}
	require.True(t, e.Subscribes("dsync.user.created"))
	require.False(t, e.Subscribes("dsync.group.created"))
}
