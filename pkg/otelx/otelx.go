// Package otelx sets up OpenTelemetry tracing, metrics and propagation for a
// dsync process in one call.
package otelx

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Telemetry holds the providers built by Setup. Its fields are set by Setup
// and must not be changed.
type Telemetry struct {
	// TracerProvider creates spans; it is also installed globally.
	TracerProvider trace.TracerProvider
	// MeterProvider creates instruments; it is also installed globally.
	MeterProvider metric.MeterProvider
	// MetricsHandler serves this Telemetry's metrics (and Go runtime and
	// process metrics) in the Prometheus text format; mount it at /metrics.
	MetricsHandler http.Handler
	// Propagator is the W3C TraceContext + Baggage propagator, also
	// installed globally.
	Propagator propagation.TextMapPropagator
	// TracesExported reports whether spans are sent to an OTLP endpoint.
	TracesExported bool

	tp       *sdktrace.TracerProvider
	mp       *sdkmetric.MeterProvider
	shutdown sync.Once
	err      error
}

// Setup builds tracing and metrics for service and installs them as the
// global OpenTelemetry providers and propagator (otel.SetTracerProvider,
// otel.SetMeterProvider, otel.SetTextMapPropagator). A process calls Setup
// once — `dsync dev` runs all services in one process and still calls it once
// — and calls Shutdown last, to flush.
//
// Traces go to an OTLP/gRPC exporter, configured by the standard
// OTEL_EXPORTER_OTLP_* variables, when OTEL_TRACES_EXPORTER is "otlp" or an
// OTLP endpoint variable is set. When OTEL_TRACES_EXPORTER is "none" or
// nothing is configured, spans are still created (so trace ids propagate and
// appear in logs) but not exported. Other OTEL_TRACES_EXPORTER values and
// non-gRPC OTLP protocols are errors. The resource carries service.name =
// service unless OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES override it.
//
// Metrics are exported through a Prometheus registry private to this
// Telemetry, so several Setup calls in one test binary do not collide.
func Setup(ctx context.Context, service string) (*Telemetry, error) {
	return setup(ctx, service, os.Getenv)
}

func setup(ctx context.Context, service string, getenv func(string) string) (_ *Telemetry, err error) {
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", service)),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(), // last, so the environment wins
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("build otel resource: %w", err)
	}

	tel := &Telemetry{}
	tel.tp, tel.TracesExported, err = newTracerProvider(ctx, res, getenv)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = tel.tp.Shutdown(context.WithoutCancel(ctx))
		}
	}()

	reg := prometheus.NewRegistry()
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, fmt.Errorf("register go collector: %w", err)
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, fmt.Errorf("register process collector: %w", err)
	}
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("create prometheus exporter: %w", err)
	}
	tel.mp = sdkmetric.NewMeterProvider(sdkmetric.WithResource(res), sdkmetric.WithReader(exp))

	tel.TracerProvider = tel.tp
	tel.MeterProvider = tel.mp
	tel.MetricsHandler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
	tel.Propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

	otel.SetTracerProvider(tel.tp)
	otel.SetMeterProvider(tel.mp)
	otel.SetTextMapPropagator(tel.Propagator)
	return tel, nil
}

// Shutdown flushes pending spans and metrics and stops the providers, within
// ctx's deadline. Later calls return the first call's result. The global
// providers stay installed but record nothing afterwards.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	t.shutdown.Do(func() {
		var errs []error
		if err := t.tp.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("shut down tracer provider: %w", err))
		}
		if err := t.mp.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("shut down meter provider: %w", err))
		}
		t.err = errors.Join(errs...)
	})
	return t.err
}
