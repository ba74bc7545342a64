package delivery

import (
	"context"
	"log/slog"
	"time"
)

// Retention defaults.
const (
	// DefaultRetention is how long finished deliveries and events are kept.
	DefaultRetention = 30 * 24 * time.Hour
	// DefaultPruneEvery is how often the pruner runs.
	DefaultPruneEvery = 5 * time.Minute
	// DefaultPruneBatch bounds the rows one Store.Prune call deletes of each
	// kind, so a large backlog never holds locks or a transaction long.
	DefaultPruneBatch = 1000
	// DefaultSweepRestart is how often the sweep for events no delivery
	// references starts over from the oldest event.
	DefaultSweepRestart = 24 * time.Hour
)

// EventPosition is a place in the events ordered by (CreatedAt, ID); the
// zero value is before the first.
type EventPosition struct {
	CreatedAt time.Time
	ID        string
}

// PruneQuery is one batch of retention: see Store.Prune.
type PruneQuery struct {
	// Before is the retention horizon.
	Before time.Time
	// Limit bounds the deliveries deleted and the events the sweep examines.
	Limit int
	// After is where the sweep resumes.
	After EventPosition
}

// PruneResult is what one Store.Prune call (or one Pruner pass) removed.
type PruneResult struct {
	// Deliveries counts the finished deliveries deleted with their attempts.
	Deliveries int
	// Events counts the events deleted.
	Events int
	// Next is where the next sweep resumes: the last event examined, or the
	// query's After when there was none.
	Next EventPosition
	// More reports that a part of the batch stopped at the limit: another
	// call has more to do.
	More bool
}

// PrunerConfig tunes a Pruner. Zero values take the defaults.
type PrunerConfig struct {
	Store Store
	Log   *slog.Logger
	// Retention is how long finished deliveries and events are kept;
	// default DefaultRetention, negative forever (Run returns at once).
	Retention time.Duration
	// Every is how often a pass runs; default DefaultPruneEvery.
	Every time.Duration
	// Batch is the Limit of each Store.Prune call; default DefaultPruneBatch.
	Batch int
	// SweepRestart is how often the sweep starts over from the oldest
	// event; default DefaultSweepRestart.
	SweepRestart time.Duration
	// Observe is told what each batch removed; may be nil.
	Observe func(context.Context, PruneResult)
	Now     func() time.Time
}

// Pruner deletes finished deliveries, their attempts and events once they
// are older than the retention, so the delivery log stops growing with
// traffic. Pending deliveries are kept whatever their age: a disabled
// endpoint's deliveries wait for it to be enabled again, and the events
// they reference stay with them.
//
// An event goes when no delivery references it any more. Most events lose
// their last delivery to the pruner itself, which then deletes them in the
// same batch. The others (an event no endpoint subscribed to, one whose
// endpoints were deleted) are found by a sweep through the events in
// creation order. The sweep remembers where it stopped, so each pass
// examines only the events that crossed the horizon since the last one,
// not every old event that a pending delivery keeps alive (a disabled
// endpoint can keep millions); it starts over every SweepRestart to find
// the events behind it that deleted endpoints left unreferenced.
type Pruner struct {
	cfg PrunerConfig
	// sweep is where the sweep resumes; restarted is when it last started
	// from the oldest event. Only Run's goroutine (or a test calling Pass)
	// touches them.
	sweep     EventPosition
	restarted time.Time
}

// NewPruner returns a pruner; call Run to start it.
func NewPruner(cfg PrunerConfig) *Pruner {
	if cfg.Retention == 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.Every <= 0 {
		cfg.Every = DefaultPruneEvery
	}
	if cfg.Batch <= 0 {
		cfg.Batch = DefaultPruneBatch
	}
	if cfg.SweepRestart <= 0 {
		cfg.SweepRestart = DefaultSweepRestart
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Pruner{cfg: cfg}
}

// Run prunes now and every Every until ctx is done, then returns nil. A
// failed pass is logged and retried at the next tick: a row kept a little
// longer harms no one. With a negative retention it returns at once.
func (p *Pruner) Run(ctx context.Context) error {
	if p.cfg.Retention < 0 {
		return nil
	}
	t := time.NewTicker(p.cfg.Every)
	defer t.Stop()
	for {
		r, err := p.Pass(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			p.cfg.Log.WarnContext(ctx, "prune delivery log; retrying at the next tick", "error", err,
				"deliveries", r.Deliveries, "events", r.Events)
		case r.Deliveries > 0 || r.Events > 0:
			p.cfg.Log.InfoContext(ctx, "delivery log pruned", "deliveries", r.Deliveries, "events", r.Events,
				"retention", p.cfg.Retention.String())
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Pass deletes in batches everything older than the retention at Now,
// until a batch finds no more, and returns what it removed (also on error,
// what the batches before it removed).
func (p *Pruner) Pass(ctx context.Context) (PruneResult, error) {
	now := p.cfg.Now()
	if p.restarted.IsZero() || now.Sub(p.restarted) >= p.cfg.SweepRestart {
		p.sweep, p.restarted = EventPosition{}, now
	}
	q := PruneQuery{Before: now.Add(-p.cfg.Retention).UTC(), Limit: p.cfg.Batch}
	var total PruneResult
	for {
		q.After = p.sweep
		r, err := p.cfg.Store.Prune(ctx, q)
		if err != nil {
			return total, err
		}
		p.sweep = r.Next
		total.Deliveries += r.Deliveries
		total.Events += r.Events
		if p.cfg.Observe != nil && (r.Deliveries > 0 || r.Events > 0) {
			p.cfg.Observe(ctx, r)
		}
		if !r.More {
			total.Next = p.sweep
			return total, nil
		}
		if err := ctx.Err(); err != nil {
			return total, err
		}
	}
}
