// Package telemetry traces and measures webhook delivery with
// OpenTelemetry: a span per attempt linked to the trace of the request that
// caused the event, and metrics for outcomes, attempt latency, backlog per
// endpoint, consumer lag and the rows retention deleted.
package telemetry

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/dsync-dev/dsync/services/dispatcher/internal/delivery"
)

// Instrumentation scope name.
const scope = "github.com/dsync-dev/dsync/services/dispatcher"

// Metric names.
const (
	MetricDeliveries     = "dsync.webhook.attempts"
	MetricAttemptLatency = "dsync.webhook.attempt.duration"
	MetricBacklog        = "dsync.webhook.backlog"
	MetricConsumerLag    = "dsync.webhook.consumer.lag"
	MetricPruned         = "dsync.dispatcher.pruned"
)

// Outcomes of an attempt, the "outcome" attribute.
const (
	OutcomeSucceeded        = "succeeded"
	OutcomeRetry            = "retry"
	OutcomeFailed           = "failed"
	OutcomeEndpointDisabled = "endpoint_disabled"
)

// Sources read at collection time by the observable gauges.
type Sources struct {
	// Backlog returns the pending deliveries per endpoint.
	Backlog func(context.Context) (map[string]int64, error)
	// Lag returns the event messages not yet received by the consumer.
	Lag func(context.Context) (uint64, error)
}

// Observer implements delivery.Observer.
type Observer struct {
	tracer   trace.Tracer
	attempts metric.Int64Counter
	latency  metric.Float64Histogram
	pruned   metric.Int64Counter
	reg      metric.Registration
}

var _ delivery.Observer = (*Observer)(nil)

// New creates the instruments on mp and tp. The gauges call src when
// collected; a failing source is logged and reports nothing. Close
// unregisters them.
func New(tp trace.TracerProvider, mp metric.MeterProvider, src Sources, log *slog.Logger) (*Observer, error) {
	m := mp.Meter(scope)
	o := &Observer{tracer: tp.Tracer(scope)}
	var err error
	if o.attempts, err = m.Int64Counter(MetricDeliveries, metric.WithUnit("{attempt}"),
		metric.WithDescription("Webhook delivery attempts by outcome: succeeded, retry, failed (dead-lettered), endpoint_disabled.")); err != nil {
		return nil, fmt.Errorf("metric %s: %w", MetricDeliveries, err)
	}
	if o.latency, err = m.Float64Histogram(MetricAttemptLatency, metric.WithUnit("s"),
		metric.WithDescription("Duration of webhook HTTP attempts."),
		metric.WithExplicitBucketBoundaries(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30)); err != nil {
		return nil, fmt.Errorf("metric %s: %w", MetricAttemptLatency, err)
	}
	if o.pruned, err = m.Int64Counter(MetricPruned, metric.WithUnit("{row}"),
		metric.WithDescription("Rows deleted by delivery log retention, by kind: delivery (with its attempts) or event.")); err != nil {
		return nil, fmt.Errorf("metric %s: %w", MetricPruned, err)
	}
	backlog, err := m.Int64ObservableGauge(MetricBacklog, metric.WithUnit("{delivery}"),
		metric.WithDescription("Pending webhook deliveries per endpoint."))
	if err != nil {
		return nil, fmt.Errorf("metric %s: %w", MetricBacklog, err)
	}
	lag, err := m.Int64ObservableGauge(MetricConsumerLag, metric.WithUnit("{message}"),
		metric.WithDescription("Event stream messages the dispatcher has not received yet."))
	if err != nil {
		return nil, fmt.Errorf("metric %s: %w", MetricConsumerLag, err)
	}
	o.reg, err = m.RegisterCallback(func(ctx context.Context, obs metric.Observer) error {
		if src.Backlog != nil {
			b, err := src.Backlog(ctx)
			if err != nil {
				log.WarnContext(ctx, "collect webhook backlog", "error", err)
			}
			for id, n := range b {
				obs.ObserveInt64(backlog, n, metric.WithAttributes(attribute.String("endpoint_id", id)))
			}
		}
		if src.Lag != nil {
			if n, err := src.Lag(ctx); err == nil {
				obs.ObserveInt64(lag, int64(n)) //nolint:gosec // a message count
			}
		}
		return nil
	}, backlog, lag)
	if err != nil {
		return nil, fmt.Errorf("register gauges: %w", err)
	}
	return o, nil
}

// Close unregisters the gauges' callback.
func (o *Observer) Close() error { return o.reg.Unregister() }

// Attempt starts the attempt's span. Attempts may run days after the event,
// so the span links to the event's trace rather than joining it.
func (o *Observer) Attempt(ctx context.Context, c delivery.Claim) (context.Context, func(delivery.Result, delivery.Outcome)) {
	d := c.Delivery
	opts := []trace.SpanStartOption{
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			attribute.String("dsync.endpoint_id", d.EndpointID),
			attribute.String("dsync.delivery_id", d.ID),
			attribute.String("dsync.event_id", d.EventID),
			attribute.String("dsync.event", d.EventName),
			attribute.Int("dsync.attempt", d.Attempts+1),
		),
	}
	if c.TraceParent != "" {
		carrier := propagation.MapCarrier{"traceparent": c.TraceParent}
		if sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), carrier)); sc.IsValid() {
			opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc}))
		}
	}
	ctx, span := o.tracer.Start(ctx, "webhook attempt", opts...)
	return ctx, func(r delivery.Result, out delivery.Outcome) {
		outcome := OutcomeRetry
		switch {
		case out.State == delivery.DeliverySucceeded:
			outcome = OutcomeSucceeded
		case out.DisableEndpoint:
			outcome = OutcomeEndpointDisabled
		case out.State == delivery.DeliveryFailed:
			outcome = OutcomeFailed
		}
		attrs := metric.WithAttributes(attribute.String("outcome", outcome))
		o.attempts.Add(ctx, 1, attrs)
		o.latency.Record(ctx, r.Latency.Seconds(), attrs)
		span.SetAttributes(attribute.String("dsync.outcome", outcome))
		if r.StatusCode != 0 {
			span.SetAttributes(attribute.Int("http.response.status_code", r.StatusCode))
		}
		if !r.Succeeded() {
			msg := "status " + strconv.Itoa(r.StatusCode)
			if r.Err != nil {
				msg = r.Err.Error()
			}
			span.SetStatus(codes.Error, msg)
		}
		span.End()
	}
}

// Pruned counts what a batch of retention deleted (delivery.PrunerConfig's
// Observe).
func (o *Observer) Pruned(ctx context.Context, r delivery.PruneResult) {
	o.pruned.Add(ctx, int64(r.Deliveries), metric.WithAttributes(attribute.String("kind", "delivery")))
	o.pruned.Add(ctx, int64(r.Events), metric.WithAttributes(attribute.String("kind", "event")))
}
