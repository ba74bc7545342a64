// Package consumer reads the event stream and hands public events to the
// ingester, which makes them durable deliveries before the message is
// acknowledged.
package consumer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/propagation"

	"github.com/dsync-dev/dsync/pkg/event"
	"github.com/dsync-dev/dsync/pkg/natsx"
	"github.com/dsync-dev/dsync/pkg/workos"
	"github.com/dsync-dev/dsync/services/dispatcher/internal/delivery"
)

// Ingester stores events and their deliveries idempotently, a batch in one
// transaction.
type Ingester interface {
	IngestBatch(ctx context.Context, evs []delivery.Event) (int, error)
}

// MaxBatch bounds how many stream messages one store transaction ingests.
// Messages are batched only when they are already waiting: a lone event is
// ingested at once, so batching adds throughput under load, not latency.
const MaxBatch = 256

// retryDelay is how long a message waits after the store failed to take it.
const retryDelay = time.Second

// Consumer is a durable pull consumer on the directory events.
type Consumer struct {
	JS       jetstream.JetStream
	Name     string
	Log      *slog.Logger
	Ingester Ingester
	// Ready is called once the consumer is consuming.
	Ready func()
}

// Run consumes until ctx is done and returns nil then. It waits for the
// stream to exist (the gateway declares it) rather than declaring it with
// settings that could differ from the deployment's.
func (c *Consumer) Run(ctx context.Context) error {
	cons, err := c.consumer(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	// The callback only queues: one goroutine takes what is waiting and
	// ingests it in one transaction, then acks it all after the commit.
	msgs := make(chan jetstream.Msg, MaxBatch)
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		select {
		case msgs <- msg:
		case <-ctx.Done(): // unacked: redelivered after AckWait
		}
	},
		jetstream.PullMaxMessages(2*MaxBatch),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			c.Log.WarnContext(ctx, "event consumer", "error", err)
		}))
	if err != nil {
		return fmt.Errorf("consume %s: %w", c.Name, err)
	}
	if c.Ready != nil {
		c.Ready()
	}
	batch := make([]jetstream.Msg, 0, MaxBatch)
	for {
		select {
		case <-ctx.Done():
			cc.Stop()
			<-cc.Closed()
			return nil
		case msg := <-msgs:
			batch = append(batch[:0], msg)
		drain:
			for len(batch) < MaxBatch {
				select {
				case msg := <-msgs:
					batch = append(batch, msg)
				default:
					break drain
				}
			}
			c.handle(ctx, batch)
		}
	}
}

func (c *Consumer) consumer(ctx context.Context) (jetstream.Consumer, error) {
	cfg := jetstream.ConsumerConfig{
		Durable:        c.Name,
		Description:    "dsync dispatcher: events to webhook deliveries",
		FilterSubjects: []string{event.SubjectAllDirectoryEvents},
		AckPolicy:      jetstream.AckExplicitPolicy,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		AckWait:        30 * time.Second,
		// Messages are acked as soon as their deliveries are stored, so
		// this bounds only in-flight ingestion, never webhook retries.
		MaxAckPending: 1000,
	}
	logged := false
	for {
		cons, err := c.JS.CreateOrUpdateConsumer(ctx, event.Stream, cfg)
		if err == nil {
			return cons, nil
		}
		if !errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, fmt.Errorf("create consumer %s: %w", c.Name, err)
		}
		if !logged {
			c.Log.InfoContext(ctx, "waiting for the event stream", "stream", event.Stream)
			logged = true
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// pending is a message whose event awaits ingestion.
type pending struct {
	msg jetstream.Msg
	ctx context.Context
	log *slog.Logger
}

// handle gives each message of batch its fate: Ack when stored (after the
// batch's commit) or not public, Term when it can never be processed,
// NakWithDelay when the store failed.
func (c *Consumer) handle(ctx context.Context, batch []jetstream.Msg) {
	evs := make([]delivery.Event, 0, len(batch))
	waiting := make([]pending, 0, len(batch))
	for _, msg := range batch {
		mctx := natsx.ExtractTrace(ctx, msg.Headers())
		ev, log, ok := c.prepare(mctx, msg)
		if !ok {
			continue
		}
		evs = append(evs, ev)
		waiting = append(waiting, pending{msg: msg, ctx: mctx, log: log})
	}
	if len(evs) == 0 {
		return
	}
	n, err := c.Ingester.IngestBatch(ctx, evs)
	if err != nil {
		if ctx.Err() != nil {
			return // shutting down: the messages are redelivered after AckWait
		}
		c.Log.ErrorContext(ctx, "store deliveries; will retry", "events", len(evs), "error", err)
		for _, p := range waiting {
			_ = p.msg.NakWithDelay(retryDelay)
		}
		return
	}
	c.Log.DebugContext(ctx, "events ingested", "events", len(evs), "deliveries", n)
	for _, p := range waiting {
		c.ack(p.ctx, p.log, p.msg)
	}
}

// prepare renders msg's event as a delivery.Event, or settles msg (ack or
// term) and returns false when there is nothing to ingest.
func (c *Consumer) prepare(ctx context.Context, msg jetstream.Msg) (delivery.Event, *slog.Logger, bool) {
	log := c.Log.With("subject", msg.Subject())
	md, err := msg.Metadata()
	if err != nil {
		log.ErrorContext(ctx, "event without metadata; terminated", "error", err)
		_ = msg.TermWithReason("no metadata")
		return delivery.Event{}, nil, false
	}
	log = log.With("stream_seq", md.Sequence.Stream)
	ev, err := event.Decode(msg.Data())
	if err != nil {
		log.ErrorContext(ctx, "malformed event; terminated", "error", err)
		_ = msg.TermWithReason("malformed event")
		return delivery.Event{}, nil, false
	}
	log = log.With("event_id", ev.GetId())
	// The stream sequence goes into the envelope's context, as the Events
	// API renders it: the webhook body and the API agree byte for byte.
	we, err := workos.NewEvent(md.Sequence.Stream, ev)
	if errors.Is(err, workos.ErrNotPublic) {
		c.ack(ctx, log, msg)
		return delivery.Event{}, nil, false
	}
	if err != nil {
		log.ErrorContext(ctx, "event has no webhook form; terminated", "error", err)
		_ = msg.TermWithReason("no webhook form")
		return delivery.Event{}, nil, false
	}
	body, err := json.Marshal(we)
	if err != nil {
		log.ErrorContext(ctx, "render webhook event; terminated", "error", err)
		_ = msg.TermWithReason("render failed")
		return delivery.Event{}, nil, false
	}
	return delivery.Event{
		ID:        ev.GetId(),
		Name:      we.Event,
		Subject:   msg.Subject(),
		Seq:       md.Sequence.Stream,
		Body:      body,
		CreatedAt: ev.GetOccurredAt().AsTime(),
		// Attempts run later, outside this context: keep the trace
		// context so their spans can link to the event's trace.
		TraceParent: traceParent(msg.Headers()),
	}, log, true
}

func (c *Consumer) ack(ctx context.Context, log *slog.Logger, msg jetstream.Msg) {
	// A lost ack redelivers the message; ingestion is idempotent, so that
	// costs a lookup, not a duplicate webhook.
	if err := msg.Ack(); err != nil {
		log.WarnContext(ctx, "ack event", "error", err)
	}
}

// traceParent is the valid W3C traceparent in h, "" when there is none. It
// reads W3C trace context whatever the process's global propagator is.
func traceParent(h nats.Header) string {
	if h == nil {
		return ""
	}
	ctx := propagation.TraceContext{}.Extract(context.Background(), natsx.HeaderCarrier(h))
	carrier := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, carrier)
	return carrier.Get("traceparent")
}

// Lag is the number of stream messages the consumer has yet to receive
// (consumer lag); it fails before the consumer exists.
func (c *Consumer) Lag(ctx context.Context) (uint64, error) {
	cons, err := c.JS.Consumer(ctx, event.Stream, c.Name)
	if err != nil {
		return 0, fmt.Errorf("consumer %s: %w", c.Name, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("consumer %s info: %w", c.Name, err)
	}
	return info.NumPending, nil
}
