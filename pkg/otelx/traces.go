package otelx

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// newTracerProvider returns an SDK tracer provider, with an OTLP/gRPC batch
// exporter when the environment asks for one, and whether it exports.
func newTracerProvider(ctx context.Context, res *resource.Resource, getenv func(string) string) (*sdktrace.TracerProvider, bool, error) {
	export, err := wantOTLP(getenv)
	if err != nil {
		return nil, false, err
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	if export {
		// The exporter reads OTEL_EXPORTER_OTLP_* itself and connects lazily,
		// so an absent collector does not fail startup.
		exp, err := otlptracegrpc.New(ctx)
		if err != nil {
			return nil, false, fmt.Errorf("create otlp trace exporter: %w", err)
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
	}
	return sdktrace.NewTracerProvider(opts...), export, nil
}

// wantOTLP decides from the environment whether to export spans over OTLP.
func wantOTLP(getenv func(string) string) (bool, error) {
	export := false
	switch v := getenv("OTEL_TRACES_EXPORTER"); v {
	case "none":
		return false, nil
	case "otlp":
		export = true
	case "":
		export = getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
	default:
		return false, fmt.Errorf("OTEL_TRACES_EXPORTER=%q is not supported (use otlp or none)", v)
	}
	if !export {
		return false, nil
	}
	for _, key := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if p := getenv(key); p != "" {
			if p != "grpc" {
				return false, fmt.Errorf("%s=%q is not supported (only grpc)", key, p)
			}
			break // the signal-specific variable takes precedence
		}
	}
	return true, nil
}
