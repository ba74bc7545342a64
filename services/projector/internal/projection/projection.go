// Package projection feeds the event stream into the read model.
//
// Where to resume is decided by the read model alone: its checkpoint (the
// last applied stream sequence) is written in the same transaction as the
// rows, so it is exactly what has been applied. The projection therefore
// reads the stream with an ordered consumer (ephemeral, AckNone, flow
// controlled, recreated by the client on any gap) starting at
// checkpoint+1, rather than a durable consumer whose ack floor would be a
// second, possibly disagreeing, record of progress: a durable consumer can be
// ahead of a restored or rebuilt database (and would never redeliver what it
// considers acked), and with MaxAckPending above one a NAKed message can be
// redelivered after later ones, which would apply full-state events out of
// order. After a failed batch the consumer is dropped and recreated from the
// checkpoint, so a batch is applied in full or retried in full.
package projection

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/dsync-dev/dsync/pkg/event"
	"github.com/dsync-dev/dsync/pkg/natsx"
	"github.com/dsync-dev/dsync/services/projector/internal/progress"
	"github.com/dsync-dev/dsync/services/projector/internal/readmodel"
)

const tracerName = "github.com/dsync-dev/dsync/services/projector/internal/projection"

// DefaultBatchSize bounds the messages applied in one transaction.
const DefaultBatchSize = 256

// Retry delays after a failed batch.
const (
	minRetryDelay = 100 * time.Millisecond
	maxRetryDelay = 10 * time.Second
)

// Projection applies the facts of the event stream to a read model.
type Projection struct {
	Log      *slog.Logger
	JS       jetstream.JetStream
	Store    readmodel.Store
	Progress *progress.Progress
	// Name prefixes the ordered consumers' names, so they can be told apart
	// in monitoring; a random suffix keeps two replicas from sharing one.
	Name string
	// BatchSize is the most messages applied in one transaction;
	// DefaultBatchSize when zero.
	BatchSize int
	// OnRunning, if set, is called once, when the first consumer is running.
	OnRunning func()
}

// Run applies events until ctx is done, then returns nil. A failing batch
// (store or NATS trouble) is retried from the checkpoint with backoff; Run
// itself returns an error only for a broken configuration.
func (p *Projection) Run(ctx context.Context) error {
	if p.Store == nil || p.JS == nil || p.Progress == nil || p.Log == nil {
		return fmt.Errorf("projection: Log, JS, Store and Progress are required")
	}
	running := p.OnRunning
	delay := minRetryDelay
	for {
		progressed, err := p.consume(ctx, &running)
		if ctx.Err() != nil {
			return nil
		}
		if progressed {
			delay = minRetryDelay
		}
		p.Log.ErrorContext(ctx, "projection failed, resuming from checkpoint", "error", err, "retry_in", delay)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		delay = min(2*delay, maxRetryDelay)
	}
}

// consume runs one ordered consumer from the checkpoint until a batch fails
// or ctx is done. It reports whether any batch was applied.
func (p *Projection) consume(ctx context.Context, running *func()) (progressed bool, err error) {
	cp, err := p.Store.Checkpoint(ctx)
	if err != nil {
		return false, fmt.Errorf("read checkpoint: %w", err)
	}
	// The store is the authority; a restart never moves progress back, but a
	// store another projector advanced moves it forward.
	p.Progress.Advance(cp)

	batch := p.BatchSize
	if batch <= 0 {
		batch = DefaultBatchSize
	}
	// No subject filter: with several filter subjects the server walks the
	// stream's subject tree (one subject per user and group) on every pull,
	// which grows with the stream. readmodel.Apply passes over claims.
	cfg := jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverAllPolicy,
		NamePrefix:    p.Name + "_" + nuid.Next(),
	}
	if cp > 0 {
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = cp + 1
	}
	cons, err := p.JS.OrderedConsumer(ctx, event.Stream, cfg)
	if err != nil {
		return false, fmt.Errorf("create ordered consumer: %w", err)
	}

	msgs := make(chan jetstream.Msg, batch)
	stop := make(chan struct{})
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case msgs <- m:
		case <-stop: // this consumer is being replaced; its messages are redelivered from the checkpoint
		}
	},
		jetstream.PullMaxMessages(batch),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			p.Log.WarnContext(ctx, "event consumer", "error", err)
		}))
	if err != nil {
		return false, fmt.Errorf("consume: %w", err)
	}
	defer func() {
		close(stop)
		cc.Stop()
	}()
	p.Log.InfoContext(ctx, "projection consuming", "stream", event.Stream, "start_seq", cp+1)
	if *running != nil {
		(*running)()
		*running = nil
	}

	recs := make([]readmodel.Record, 0, batch)
	links := make([]trace.Link, 0, batch)
	for {
		var m jetstream.Msg
		select {
		case <-ctx.Done():
			return progressed, ctx.Err()
		case m = <-msgs:
		}
		// Take whatever else has arrived already: one transaction for a
		// burst, no waiting for a batch to fill.
		recs, links = append(recs[:0], record(m)), appendLink(links[:0], m)
	drain:
		for len(recs) < batch {
			select {
			case m = <-msgs:
				recs, links = append(recs, record(m)), appendLink(links, m)
			default:
				break drain
			}
		}
		if err := p.apply(ctx, recs, links); err != nil {
			return progressed, err
		}
		progressed = true
	}
}

// apply applies one batch in one transaction. Its span links to the trace
// of every event in it (a batch has many parents, so links, not a parent),
// which continues each SCIM request's trace into the projection.
func (p *Projection) apply(ctx context.Context, recs []readmodel.Record, links []trace.Link) error {
	ctx, span := otel.Tracer(tracerName).Start(ctx, "projector apply",
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithLinks(links...),
		trace.WithAttributes(
			attribute.String("messaging.system", "nats"),
			attribute.String("messaging.destination.name", event.Stream),
			attribute.Int("messaging.batch.message_count", len(recs)),
		))
	defer span.End()
	res, err := readmodel.Apply(ctx, p.Store, recs)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(otelcodes.Error, "apply failed")
		return err
	}
	for _, sk := range res.Skipped {
		// A poison message can never succeed; it is recorded in the store
		// and stepped over (there is nothing to Term: ordered consumers do
		// not ack).
		p.Log.WarnContext(ctx, "event skipped", "stream_seq", sk.Seq, "subject", sk.Subject, "reason", sk.Reason)
	}
	for _, a := range res.Applied {
		p.Log.DebugContext(ctx, "event applied", "stream_seq", a.Seq, "event_id", a.EventID, "event_type", a.Type.String())
	}
	p.Progress.Advance(res.Checkpoint)
	return nil
}

// appendLink adds a link to the trace m carries, if any.
func appendLink(links []trace.Link, m jetstream.Msg) []trace.Link {
	// A fresh context, so that only the message's own trace can be found.
	sc := trace.SpanContextFromContext(natsx.ExtractTrace(context.Background(), m.Headers()))
	if !sc.IsValid() {
		return links
	}
	return append(links, trace.Link{SpanContext: sc})
}

func record(m jetstream.Msg) readmodel.Record {
	rec := readmodel.Record{Subject: m.Subject(), Data: m.Data()}
	if md, err := m.Metadata(); err == nil {
		rec.Seq = md.Sequence.Stream
	}
	return rec
}
