package delivery

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Sender makes one HTTP attempt of a claimed delivery: signs the body with
// the endpoint's secret (afresh, so the signature timestamp is current),
// posts it within its request timeout and reports what happened. It never
// returns an error of its own; failures are in the Result.
type Sender interface {
	Send(ctx context.Context, c Claim) Result
}

// WorkerConfig tunes a Worker. Zero values take the defaults.
type WorkerConfig struct {
	Store  Store
	Sender Sender
	Policy Policy
	Log    *slog.Logger
	// Concurrency bounds the attempts in flight; default 32.
	Concurrency int
	// PerEndpoint bounds the attempts in flight to one endpoint, so one
	// slow endpoint cannot occupy every worker; default 4.
	PerEndpoint int
	// Lease is how long a claim is held; it must exceed the sender's
	// request timeout. A crashed worker's deliveries are due again after it.
	Lease time.Duration
	// Poll is how often due deliveries are looked for without a
	// notification (scheduled retries, expired leases); default 1s.
	Poll time.Duration
	Now  func() time.Time
}

// Worker sends due deliveries and records their attempts.
type Worker struct {
	cfg  WorkerConfig
	wake chan struct{}
}

// NewWorker returns a worker; call Run to start it.
func NewWorker(cfg WorkerConfig) *Worker {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 32
	}
	if cfg.PerEndpoint <= 0 {
		cfg.PerEndpoint = 4
	}
	if cfg.Lease <= 0 {
		cfg.Lease = time.Minute
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Worker{cfg: cfg, wake: make(chan struct{}, 1)}
}

// Notify wakes the worker to look for due deliveries now. It never blocks.
func (w *Worker) Notify() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run claims and sends due deliveries until ctx is done, then waits for the
// attempts in flight to be recorded and returns nil. Store errors are logged
// and retried at the next poll: a database blip must not stop deliveries.
func (w *Worker) Run(ctx context.Context) error {
	// Attempts in flight finish and are recorded even during shutdown
	// (bounded by the sender's timeout); abandoning them would leave the
	// receiver with a request we then send again after the lease expires.
	attemptCtx := context.WithoutCancel(ctx)
	done := make(chan struct{}, w.cfg.Concurrency)
	inflight := 0
	tick := time.NewTicker(w.cfg.Poll)
	defer tick.Stop()
	for {
		if free := w.cfg.Concurrency - inflight; free > 0 && ctx.Err() == nil {
			now := w.cfg.Now().UTC()
			claims, err := w.cfg.Store.ClaimDue(ctx, now, now.Add(w.cfg.Lease), free, w.cfg.PerEndpoint)
			if err != nil && ctx.Err() == nil {
				w.cfg.Log.ErrorContext(ctx, "claim due deliveries", "error", err)
			}
			for _, c := range claims {
				inflight++
				go func() {
					w.attempt(attemptCtx, c)
					done <- struct{}{}
				}()
			}
		}
		select {
		case <-ctx.Done():
			for ; inflight > 0; inflight-- {
				<-done
			}
			return nil
		case <-done:
			// A finished attempt frees a slot and may unblock the next
			// delivery of the same subject.
			inflight--
		case <-w.wake:
		case <-tick.C:
		}
	}
}

// attempt sends one claimed delivery and records the attempt.
func (w *Worker) attempt(ctx context.Context, c Claim) {
	d := c.Delivery
	number := d.Attempts + 1
	started := w.cfg.Now().UTC()
	r := w.cfg.Sender.Send(ctx, c)
	o := w.cfg.Policy.Decide(number, r, w.cfg.Now().UTC())
	a := Attempt{
		DeliveryID:   d.ID,
		Number:       number,
		StartedAt:    started,
		StatusCode:   r.StatusCode,
		Latency:      r.Latency,
		ResponseBody: truncate(r.Body, MaxResponseSnippet),
	}
	switch {
	case r.Err != nil:
		a.Error = r.Err.Error()
	case !r.Succeeded():
		a.Error = fmt.Sprintf("unexpected status %d", r.StatusCode)
	}
	log := w.cfg.Log.With("delivery_id", d.ID, "endpoint_id", d.EndpointID, "event_id", d.EventID,
		"attempt", number, "status_code", r.StatusCode, "latency_ms", r.Latency.Milliseconds())
	if err := w.cfg.Store.FinishAttempt(ctx, a, o); err != nil {
		// The lease expires and the delivery is attempted again: at least
		// once, never lost.
		log.ErrorContext(ctx, "record delivery attempt", "error", err)
		return
	}
	switch {
	case o.State == DeliverySucceeded:
		log.DebugContext(ctx, "webhook delivered")
	case o.DisableEndpoint:
		log.WarnContext(ctx, "webhook endpoint gone; endpoint disabled")
	case o.State == DeliveryFailed:
		log.WarnContext(ctx, "webhook delivery failed for good", "error", a.Error)
	default:
		log.InfoContext(ctx, "webhook attempt failed; retry scheduled", "error", a.Error, "next_attempt_at", o.NextAttemptAt)
	}
}

// truncate cuts s to at most n bytes and makes it valid UTF-8 without NUL
// bytes: response bodies are arbitrary bytes, and PostgreSQL text accepts
// neither invalid UTF-8 nor NUL.
func truncate(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, ""), "\x00", "")
}
