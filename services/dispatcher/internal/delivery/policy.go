package delivery

import (
	"math/rand/v2"
	"time"
)

// DefaultSchedule is the delay before attempts 2, 3, …: about three days in
// all, then the delivery is dead-lettered.
var DefaultSchedule = []time.Duration{
	5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour,
	5 * time.Hour, 10 * time.Hour, 14 * time.Hour, 20 * time.Hour, 24 * time.Hour,
}

// MaxRetryAfter caps a receiver's Retry-After, so one header cannot park a
// delivery for a week.
const MaxRetryAfter = time.Hour

// Result is what one HTTP attempt produced.
type Result struct {
	StatusCode int // 0 when there was no response
	// RetryAfter is the parsed Retry-After of a 429 or 503; 0 when absent.
	RetryAfter time.Duration
	Err        error // transport error or timeout
	Body       string
	Latency    time.Duration
}

// Succeeded reports whether the attempt counts as delivered: a 2xx.
func (r Result) Succeeded() bool {
	return r.Err == nil && r.StatusCode >= 200 && r.StatusCode < 300
}

// Policy decides a delivery's fate after each attempt.
type Policy struct {
	// Schedule holds the delays before attempts 2, 3, …; after attempt
	// len(Schedule)+1 fails the delivery is failed.
	Schedule []time.Duration
	// Jitter returns a factor in [0.9, 1.1]; nil uses math/rand. Jitter
	// spreads the retries of a burst that failed together.
	Jitter func() float64
}

// Decide returns the outcome of attempt number (1-based) that ended at now
// with r.
func (p Policy) Decide(number int, r Result, now time.Time) Outcome {
	switch {
	case r.Succeeded():
		return Outcome{State: DeliverySucceeded}
	case r.Err == nil && r.StatusCode == 410:
		// The receiver says the endpoint is gone for good: stop sending to it.
		return Outcome{State: DeliveryFailed, DisableEndpoint: true}
	case number > len(p.Schedule):
		return Outcome{State: DeliveryFailed}
	}
	delay := p.jittered(p.Schedule[number-1])
	if r.RetryAfter > 0 && (r.StatusCode == 429 || r.StatusCode == 503) {
		delay = min(r.RetryAfter, MaxRetryAfter)
	}
	return Outcome{State: DeliveryPending, NextAttemptAt: now.Add(delay)}
}

func (p Policy) jittered(d time.Duration) time.Duration {
	f := 0.9 + rand.Float64()*0.2 //nolint:gosec // jitter needs no cryptographic randomness
	if p.Jitter != nil {
		f = p.Jitter()
	}
	return time.Duration(float64(d) * f)
}
