package projector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/dsync-dev/dsync/pkg/event"
	"github.com/dsync-dev/dsync/pkg/natsx"
	"github.com/dsync-dev/dsync/services/projector/internal/readmodel"
	"github.com/dsync-dev/dsync/services/projector/internal/store/postgres"
	"github.com/dsync-dev/dsync/services/projector/internal/store/sqlite"
)

// DefaultRebuildBatch is how many events a rebuild applies per transaction.
const DefaultRebuildBatch = 4000

// catchUpTimeout bounds the catch-up inside the swap, while readers wait.
const catchUpTimeout = 30 * time.Second

// RebuildConfig wires Rebuild. NATS and one of PostgresURL and SQLitePath
// are required.
type RebuildConfig struct {
	Logger      *slog.Logger
	NATS        *nats.Conn
	PostgresURL string
	// SQLitePath is rebuilt into a new file that replaces it; dsync dev must
	// be stopped (it would keep using the old file).
	SQLitePath string
	// BatchSize is the most events per transaction; DefaultRebuildBatch when zero.
	BatchSize int
}

// RebuildResult reports a rebuild.
type RebuildResult struct {
	// Checkpoint is the last stream sequence in the new read model.
	Checkpoint uint64
	Applied    int
	Skipped    int
	Elapsed    time.Duration
}

// rebuildTarget is a fresh read model being built beside the live one.
type rebuildTarget interface {
	Store() readmodel.Store
	// SwapIn replaces the live read model. catchUp is called once no live
	// projector can apply anything more, with the live checkpoint, and must
	// bring the new read model at least that far.
	SwapIn(ctx context.Context, catchUp func(ctx context.Context, live uint64) error) error
	// Discard drops the new read model after a failure.
	Discard(ctx context.Context) error
}

// Rebuild builds the read model again from stream sequence 1 into fresh
// tables and swaps them in. On PostgreSQL the swap is one transaction that
// waits for a running projector's batch, catches up to it and moves the
// tables, so a running projector carries on against the new tables and
// readers wait for a moment at most. Events are applied exactly as the
// projector applies them (readmodel.Apply), so the result is row for row
// what the projection would have built.
func Rebuild(ctx context.Context, cfg RebuildConfig) (RebuildResult, error) {
	start := time.Now()
	if cfg.NATS == nil || (cfg.PostgresURL == "" && cfg.SQLitePath == "") {
		return RebuildResult{}, errors.New("rebuild: NATS and PostgresURL or SQLitePath are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultRebuildBatch
	}
	var (
		target rebuildTarget
		err    error
	)
	if cfg.PostgresURL != "" {
		target, err = postgres.OpenRebuild(ctx, cfg.PostgresURL)
	} else {
		target, err = sqlite.OpenRebuild(ctx, cfg.SQLitePath)
	}
	if err != nil {
		return RebuildResult{}, fmt.Errorf("rebuild: %w", err)
	}
	res, err := rebuild(ctx, cfg, target)
	if err != nil {
		if derr := target.Discard(context.WithoutCancel(ctx)); derr != nil {
			err = errors.Join(err, derr)
		}
		return RebuildResult{}, fmt.Errorf("rebuild: %w", err)
	}
	res.Elapsed = time.Since(start)
	cfg.Logger.InfoContext(ctx, "read model rebuilt", "checkpoint", res.Checkpoint, "applied", res.Applied,
		"skipped", res.Skipped, "elapsed", res.Elapsed.String())
	return res, nil
}

func rebuild(ctx context.Context, cfg RebuildConfig, target rebuildTarget) (RebuildResult, error) {
	js, err := jetstream.New(cfg.NATS)
	if err != nil {
		return RebuildResult{}, fmt.Errorf("jetstream: %w", err)
	}
	if _, err := natsx.EnsureStream(ctx, js, natsx.StreamOptions{}); err != nil {
		return RebuildResult{}, err
	}
	// No subject filter: with several filter subjects the server works out
	// each pull's pending count by walking the stream's subject tree (one
	// subject per user and group), which made a rebuild quadratic.
	// readmodel.Apply passes over claims, as the live projection does.
	cons, err := js.OrderedConsumer(ctx, event.Stream, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverAllPolicy,
		NamePrefix:    "rebuild_" + nuid.Next(),
	})
	if err != nil {
		return RebuildResult{}, fmt.Errorf("create consumer: %w", err)
	}
	store := target.Store()
	var res RebuildResult
	// fetch reads the next batch of at most n messages and returns its
	// facts and how many messages were pending after it.
	fetch := func(n int) ([]readmodel.Record, uint64, error) {
		batch, err := cons.Fetch(n, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return nil, 0, fmt.Errorf("fetch: %w", err)
		}
		var pending uint64
		recs := make([]readmodel.Record, 0, n)
		for m := range batch.Messages() {
			rec := readmodel.Record{Subject: m.Subject(), Data: m.Data()}
			if md, err := m.Metadata(); err == nil {
				rec.Seq, pending = md.Sequence.Stream, md.NumPending
			}
			recs = append(recs, rec)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return nil, 0, fmt.Errorf("fetch: %w", err)
		}
		return recs, pending, nil
	}
	// size asks for no more than is pending: Fetch returns when the batch
	// is full, so a larger one would wait out FetchMaxWait.
	size := func(pending uint64) int { return int(min(uint64(cfg.BatchSize), max(pending, 1))) }
	apply := func(ctx context.Context, recs []readmodel.Record) error {
		if len(recs) == 0 {
			return nil
		}
		r, err := readmodel.Apply(ctx, store, recs)
		if err != nil {
			return err
		}
		res.Checkpoint = max(res.Checkpoint, r.Checkpoint)
		res.Applied += len(r.Applied)
		res.Skipped += len(r.Skipped)
		return nil
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return res, fmt.Errorf("consumer info: %w", err)
	}
	// Until the stream is read, the next batch is fetched while this one is
	// applied: NATS and the database work at the same time. One fetch at a
	// time, so the ordered consumer sees no concurrent use.
	type fetched struct {
		recs    []readmodel.Record
		pending uint64
		err     error
	}
	prefetch := func(pending uint64) <-chan fetched {
		ch := make(chan fetched, 1)
		go func() {
			recs, p, err := fetch(size(pending))
			ch <- fetched{recs, p, err}
		}()
		return ch
	}
	var next <-chan fetched
	if info.NumPending > 0 {
		next = prefetch(info.NumPending)
	}
	for next != nil {
		f := <-next
		if f.err != nil {
			return res, f.err
		}
		next = nil
		if f.pending > 0 {
			next = prefetch(f.pending)
		}
		if err := apply(ctx, f.recs); err != nil {
			if next != nil {
				<-next // no fetch outlives the rebuild
			}
			return res, err
		}
	}
	cfg.Logger.InfoContext(ctx, "rebuild caught up, swapping in", "checkpoint", res.Checkpoint)
	err = target.SwapIn(ctx, func(ctx context.Context, live uint64) error {
		// The live projector applied through live, so those events are in
		// the stream; the bound only guards against a stream that lost them.
		ctx, cancel := context.WithTimeout(ctx, catchUpTimeout)
		defer cancel()
		pending := uint64(1)
		for res.Checkpoint < live {
			if err := ctx.Err(); err != nil {
				return err
			}
			recs, p, err := fetch(size(pending))
			if err != nil {
				return err
			}
			pending = p
			if err := apply(ctx, recs); err != nil {
				return err
			}
		}
		return nil
	})
	return res, err
}
