package delivery

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
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
	// Concurrency bounds the deliveries claimed and not yet recorded, all
	// endpoints together (queued or in flight); default 4096. An endpoint
	// whose attempts fail slowly (time out) holds at most PerEndpoint of
	// them, so hundreds of dead endpoints cannot take the budget healthy
	// ones need.
	Concurrency int
	// PerEndpoint bounds the attempts in flight to one endpoint; default 4.
	// Each endpoint has its own queue and sending goroutines (its lane),
	// so a slow or dead endpoint only ever waits on itself.
	PerEndpoint int
	// QueueDepth bounds the deliveries of one endpoint claimed at once
	// (queued in its lane or in flight); default 4×PerEndpoint. Deeper
	// queues mean fewer claims under load.
	QueueDepth int
	// Lease is how long one attempt may take; it must exceed the sender's
	// request timeout. A claim is held for Lease × ⌈QueueDepth/PerEndpoint⌉,
	// enough for a delivery at the back of a lane whose attempts all time
	// out. A crashed worker's deliveries are due again after it.
	Lease time.Duration
	// Poll is how often due deliveries are looked for without a
	// notification (scheduled retries, expired leases); default 1s.
	Poll time.Duration
	// DisableAfter disables an endpoint whose attempts have all failed for
	// this long; default DefaultDisableAfter, negative never.
	DisableAfter time.Duration
	// Observer traces and measures attempts; nil observes nothing.
	Observer Observer
	Now      func() time.Time
}

// DefaultDisableAfter is how long an endpoint may fail every attempt before
// it is disabled.
const DefaultDisableAfter = 5 * 24 * time.Hour

// Observer sees every attempt: Attempt is called before it is sent and
// returns the context to send it with (carrying a span, say) and a function
// called with what happened once it is recorded.
type Observer interface {
	Attempt(ctx context.Context, c Claim) (context.Context, func(Result, Outcome))
}

// Worker sends due deliveries and records their attempts.
type Worker struct {
	cfg  WorkerConfig
	wake chan struct{}
}

// NewWorker returns a worker; call Run to start it.
func NewWorker(cfg WorkerConfig) *Worker {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 4096
	}
	if cfg.PerEndpoint <= 0 {
		cfg.PerEndpoint = 4
	}
	if cfg.QueueDepth < cfg.PerEndpoint {
		cfg.QueueDepth = 4 * cfg.PerEndpoint
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
	if cfg.DisableAfter == 0 {
		cfg.DisableAfter = DefaultDisableAfter
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

// stallAfter is how long a failed attempt must have taken for its endpoint
// to count as stalled (claimed no further ahead than its attempts in
// flight).
const stallAfter = time.Second

// failureLogLimit is how many failed attempts of one endpoint are logged
// per minute.
const failureLogLimit = 20

// maxRecordBatch bounds how many finished attempts one store transaction
// records.
const maxRecordBatch = 256

// finished is an attempt that was made and awaits recording.
type finished struct {
	claim  Claim
	result Result
	Finished
	observed func(Result, Outcome)
}

// lane is one endpoint's queue of claimed deliveries and how many of its
// attempts are in flight. Only Run's goroutine touches lanes.
type lane struct {
	queue   []Claim
	running int
}

// Run claims and sends due deliveries until ctx is done, then releases the
// claims not yet started, waits for the attempts in flight to be recorded
// and returns nil. Store errors are logged and retried at the next poll: a
// database blip must not stop deliveries.
//
// Claims are made in bulk and queued per endpoint; each endpoint's lane
// runs at most PerEndpoint attempts at once, so an endpoint that hangs
// until every request times out holds its own lane only, never a healthy
// endpoint's. One claim runs at a time, beside the lanes: requests for
// another (a new event, recorded attempts, the poll) made meanwhile are
// coalesced into one claim after it, so however fast an endpoint's attempts
// finish (one failing at once, say) the store sees at most one claim in
// flight and the lanes never wait for it.
//
// Attempts are recorded by one recorder goroutine that writes every attempt
// finished meanwhile in one transaction (group commit), so the store sees
// one write per batch rather than one per attempt, and a slow write never
// holds a sending goroutine.
func (w *Worker) Run(ctx context.Context) error {
	// Attempts in flight finish and are recorded even during shutdown
	// (bounded by the sender's timeout); abandoning them would leave the
	// receiver with a request we then send again after the lease expires.
	attemptCtx := context.WithoutCancel(ctx)
	results := make(chan finished, w.cfg.Concurrency)
	done := make(chan []recorded, w.cfg.Concurrency)
	freed := make(chan string, w.cfg.Concurrency)
	go w.record(attemptCtx, results, done)
	defer close(results)
	lanes := map[string]*lane{}
	// held counts, per endpoint, the deliveries claimed and not yet
	// recorded; the store leaves out endpoints holding QueueDepth.
	held := map[string]int{}
	// stalled holds the endpoints whose last recorded attempt failed
	// slowly (a timeout, say). They are claimed no further ahead than
	// their attempts in flight (PerEndpoint): a queue behind an endpoint
	// that hangs only holds claims (and their share of Concurrency) that
	// wait for its timeouts. An endpoint failing fast keeps its queue:
	// it drains it at once, and fed a few at a time it would need a claim
	// per attempt.
	stalled := map[string]bool{}
	// start runs l's queued claims while it has free slots.
	start := func(l *lane) {
		for l.running < w.cfg.PerEndpoint && len(l.queue) > 0 {
			c := l.queue[0]
			l.queue[0] = Claim{}
			l.queue = l.queue[1:]
			l.running++
			go func() {
				results <- w.attempt(attemptCtx, c)
				freed <- c.Delivery.EndpointID
			}()
		}
	}
	lease := w.cfg.Lease * time.Duration((w.cfg.QueueDepth+w.cfg.PerEndpoint-1)/w.cfg.PerEndpoint)
	// Claims run on their own goroutine, one at a time: a claim is the
	// costliest store call on this path, and while it runs the lanes must
	// keep starting their queued attempts (a claim made here, inline, held
	// every lane for its duration, so an endpoint whose attempts finish
	// fast, say one failing at once, turned the loop into back-to-back
	// claims and healthy deliveries queued behind them). Requests for a
	// claim made while one runs coalesce into one claim after it.
	claimedCh := make(chan []Claim, 1)
	claiming, again := false, false
	claimed := 0 // claimed (or being claimed) and not yet recorded or released
	requested := 0
	startClaim := func() {
		free := w.cfg.Concurrency - claimed
		if claiming || free <= 0 || ctx.Err() != nil {
			again = again || claiming
			return
		}
		claiming, again, requested = true, false, free
		claimed += free // reserved until the claim returns
		holding := maps.Clone(held)
		for id := range stalled {
			holding[id] += w.cfg.QueueDepth - w.cfg.PerEndpoint
		}
		go func() {
			now := w.cfg.Now().UTC()
			leaseUntil := now.Add(lease)
			claims, err := w.cfg.Store.ClaimDue(ctx, now, leaseUntil, free, w.cfg.QueueDepth, holding)
			for i := range claims {
				claims[i].LeaseUntil = leaseUntil
			}
			if err != nil && ctx.Err() == nil {
				w.cfg.Log.ErrorContext(ctx, "claim due deliveries", "error", err)
			}
			claimedCh <- claims
		}()
	}
	// enqueue puts the claims of the claim that ended in their lanes and,
	// unless shutting down, starts them (at shutdown they are released).
	enqueue := func(claims []Claim, run bool) {
		claiming = false
		claimed -= requested - len(claims)
		for _, c := range claims {
			held[c.Delivery.EndpointID]++
			l := lanes[c.Delivery.EndpointID]
			if l == nil {
				l = &lane{}
				lanes[c.Delivery.EndpointID] = l
			}
			l.queue = append(l.queue, c)
		}
		for _, c := range claims {
			if run {
				start(lanes[c.Delivery.EndpointID])
			}
		}
	}
	tick := time.NewTicker(w.cfg.Poll)
	defer tick.Stop()
	startClaim()
	for {
		select {
		case <-ctx.Done():
			if claiming {
				enqueue(<-claimedCh, false)
			}
			claimed -= w.release(attemptCtx, lanes)
			for claimed > 0 {
				select {
				case rs := <-done:
					claimed -= len(rs)
				case <-freed:
				}
			}
			return nil
		case claims := <-claimedCh:
			enqueue(claims, true)
			if again {
				startClaim()
			}
		case id := <-freed:
			l := lanes[id]
			l.running--
			start(l)
			if l.running == 0 && len(l.queue) == 0 {
				delete(lanes, id)
			}
			// The claim is freed only once recorded (done): no claim now.
		case rs := <-done:
			// Recorded attempts free claims and may unblock the next
			// delivery of the same subject.
			claimed -= len(rs)
			for _, r := range rs {
				if held[r.endpointID]--; held[r.endpointID] <= 0 {
					delete(held, r.endpointID)
				}
				if r.stalled {
					stalled[r.endpointID] = true
				} else {
					delete(stalled, r.endpointID)
				}
			}
			startClaim()
		case <-w.wake:
			startClaim()
		case <-tick.C:
			startClaim()
		}
	}
}

// release gives back the claims queued and not started, so that a restarted
// worker need not wait for their leases, and returns how many it dropped.
// Were the store unreachable, the leases expire: nothing is lost.
func (w *Worker) release(ctx context.Context, lanes map[string]*lane) int {
	var ids []string
	for _, l := range lanes {
		for _, c := range l.queue {
			ids = append(ids, c.Delivery.ID)
		}
		l.queue = nil
	}
	if len(ids) == 0 {
		return 0
	}
	if err := w.cfg.Store.ReleaseClaims(ctx, ids); err != nil {
		w.cfg.Log.WarnContext(ctx, "release claims; they are due again when their lease expires", "error", err)
	}
	return len(ids)
}

// recorded is an attempt whose recording ended (written or not).
type recorded struct {
	endpointID string
	stalled    bool // failed after at least stallAfter
}

// record writes finished attempts in batches until results is closed,
// reporting on done the attempts each batch settled.
func (w *Worker) record(ctx context.Context, results <-chan finished, done chan<- []recorded) {
	failures := newFailureLog(failureLogLimit, time.Minute)
	batch := make([]finished, 0, maxRecordBatch)
	fs := make([]Finished, 0, maxRecordBatch)
	for f := range results {
		batch, fs = append(batch[:0], f), fs[:0]
	drain:
		for len(batch) < maxRecordBatch {
			select {
			case f, ok := <-results:
				if !ok {
					break drain
				}
				batch = append(batch, f)
			default:
				break drain
			}
		}
		for _, f := range batch {
			fs = append(fs, f.Finished)
		}
		written, err := w.cfg.Store.FinishAttempts(ctx, fs)
		rs := make([]recorded, 0, len(batch))
		for i, f := range batch {
			f.observed(f.result, f.Outcome)
			w.logAttempt(ctx, failures, f, err, err == nil && !written[i])
			rs = append(rs, recorded{endpointID: f.claim.Delivery.EndpointID,
				stalled: f.Outcome.State != DeliverySucceeded && f.result.Latency >= stallAfter})
		}
		done <- rs
	}
}

// attempt sends one claimed delivery and decides what follows.
func (w *Worker) attempt(ctx context.Context, c Claim) finished {
	d := c.Delivery
	number := d.Attempts + 1
	observed := func(Result, Outcome) {}
	if w.cfg.Observer != nil {
		ctx, observed = w.cfg.Observer.Attempt(ctx, c)
	}
	started := w.cfg.Now().UTC()
	r := w.cfg.Sender.Send(ctx, c)
	o := w.decide(c, number, r, started)
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
	return finished{claim: c, result: r, Finished: Finished{Attempt: a, Outcome: o, Lease: c.LeaseUntil}, observed: observed}
}

// logAttempt logs what became of a recorded (or not) attempt. Failures are
// logged up to failureLogLimit per endpoint and minute (see failureLog);
// disabling an endpoint is always logged.
func (w *Worker) logAttempt(ctx context.Context, failures *failureLog, f finished, err error, gone bool) {
	d, a, o, r := f.claim.Delivery, f.Attempt, f.Outcome, f.result
	logFailure, unlogged := failures.attempt(d.EndpointID, o.State != DeliverySucceeded, w.cfg.Now())
	if unlogged > 0 {
		w.cfg.Log.WarnContext(ctx, "failed webhook attempts not logged one by one", "endpoint_id", d.EndpointID,
			"count", unlogged, "window", failures.window.String())
	}
	log := w.cfg.Log.With("delivery_id", d.ID, "endpoint_id", d.EndpointID, "event_id", d.EventID,
		"attempt", a.Number, "status_code", r.StatusCode, "latency_ms", r.Latency.Milliseconds())
	switch {
	case err != nil:
		// The lease expires and the delivery is attempted again: at least
		// once, never lost.
		log.ErrorContext(ctx, "record delivery attempt", "error", err)
	case gone:
		// An endpoint deleted meanwhile is not an error.
		log.DebugContext(ctx, "delivery gone before its attempt was recorded")
	case o.State == DeliverySucceeded:
		log.DebugContext(ctx, "webhook delivered")
	case o.DisableEndpoint:
		log.WarnContext(ctx, "webhook endpoint disabled", "reason", o.DisableReason, "error", a.Error)
	case !logFailure:
	case o.State == DeliveryFailed:
		log.WarnContext(ctx, "webhook delivery failed for good", "error", a.Error)
	default:
		log.InfoContext(ctx, "webhook attempt failed; retry scheduled", "error", a.Error, "next_attempt_at", o.NextAttemptAt)
	}
}

// decide applies the policy with the endpoint's schedule to attempt number
// of the current retry round, and disables an endpoint that has failed for
// longer than DisableAfter. Such a delivery stays pending: re-enabling the
// endpoint resumes it.
func (w *Worker) decide(c Claim, number int, r Result, started time.Time) Outcome {
	p := w.cfg.Policy
	if len(c.Schedule) > 0 {
		p.Schedule = c.Schedule
	}
	now := w.cfg.Now().UTC()
	o := p.Decide(number-c.Delivery.RoundStart, r, now)
	switch {
	case o.DisableEndpoint:
		o.DisableReason = "the endpoint answered 410 Gone"
	case o.State != DeliverySucceeded && w.cfg.DisableAfter > 0:
		since := c.FailingSince
		if since.IsZero() {
			since = started
		}
		if now.Sub(since) >= w.cfg.DisableAfter {
			o.DisableEndpoint = true
			o.DisableReason = fmt.Sprintf("every attempt failed since %s", since.Format(time.RFC3339))
		}
	}
	return o
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
