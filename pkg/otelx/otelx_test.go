package otelx_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"

	"github.com/dsync-dev/dsync/pkg/otelx"
)

func setup(t *testing.T, service string) *otelx.Telemetry {
	t.Helper()
	tel, err := otelx.Setup(t.Context(), service)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.WithoutCancel(t.Context()))) })
	return tel
}

func scrape(t *testing.T, h http.Handler) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	body, err := io.ReadAll(rec.Body)
	require.NoError(t, err)
	return string(body)
}

func TestSetupWithoutEnv(t *testing.T) {
	for _, k := range []string{"OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES"} {
		t.Setenv(k, "")
	}
	tel := setup(t, "projector")
	require.False(t, tel.TracesExported)

	// Spans are real (sampled, with ids) even though nothing is exported.
	ctx, span := otel.Tracer("test").Start(t.Context(), "work")
	require.True(t, span.SpanContext().IsValid())
	require.True(t, span.SpanContext().IsSampled())
	span.End()

	// The global propagator is W3C trace context + baggage.
	carrier := propagation.MapCarrier{}
	otel.GetTextMapPropagator().Inject(ctx, carrier)
	require.Contains(t, carrier["traceparent"], span.SpanContext().TraceID().String())
	require.ElementsMatch(t, []string{"traceparent", "tracestate", "baggage"}, otel.GetTextMapPropagator().Fields())

	// A counter shows up in the metrics handler, with the service name.
	counter, err := otel.Meter("test").Int64Counter("dsync.test.things")
	require.NoError(t, err)
	counter.Add(t.Context(), 3)
	body := scrape(t, tel.MetricsHandler)
	require.Contains(t, body, "dsync_test_things_total")
	require.Contains(t, body, `service_name="projector"`)
	require.Contains(t, body, "go_goroutines")
}

func TestSetupTwiceDoesNotCollide(t *testing.T) {
	a := setup(t, "a")
	b := setup(t, "b")
	ca, err := a.MeterProvider.Meter("m").Int64Counter("only.in.a")
	require.NoError(t, err)
	ca.Add(t.Context(), 1)
	require.Contains(t, scrape(t, a.MetricsHandler), "only_in_a_total")
	require.NotContains(t, scrape(t, b.MetricsHandler), "only_in_a_total")
}

func TestSetupEnv(t *testing.T) {
	tests := []struct {
		name       string
		env        map[string]string
		wantExport bool
		wantErr    string
	}{
		{name: "none wins over endpoint", env: map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"}},
		{name: "endpoint enables otlp", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}, wantExport: true},
		{name: "traces endpoint enables otlp", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:1"}, wantExport: true},
		{name: "explicit otlp", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, wantExport: true},
		{name: "unsupported exporter", env: map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, wantErr: "not supported"},
		{name: "unsupported protocol", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, wantErr: "only grpc"},
		{name: "service name from env", env: map[string]string{"OTEL_SERVICE_NAME": "from-env"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_SERVICE_NAME"} {
				t.Setenv(k, tc.env[k])
			}
			tel, err := otelx.Setup(t.Context(), "svc")
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			t.Cleanup(func() {
				// Shutdown may fail to flush to an absent collector; it must return.
				ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 0)
				defer cancel()
				_ = tel.Shutdown(ctx)
			})
			require.Equal(t, tc.wantExport, tel.TracesExported)
			_, span := tel.TracerProvider.Tracer("t").Start(t.Context(), "s")
			span.End()
			if name := tc.env["OTEL_SERVICE_NAME"]; name != "" {
				c, err := tel.MeterProvider.Meter("m").Int64Counter("c")
				require.NoError(t, err)
				c.Add(t.Context(), 1)
				require.Contains(t, scrape(t, tel.MetricsHandler), `service_name="`+name+`"`)
			}
		})
	}
}

func TestShutdownIsIdempotent(t *testing.T) {
	tel, err := otelx.Setup(t.Context(), "svc")
	require.NoError(t, err)
	require.NoError(t, tel.Shutdown(t.Context()))
	require.NoError(t, tel.Shutdown(t.Context()))
}
