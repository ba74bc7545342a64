package postgres

import (
	"context"
	"errors"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

const (
	tracerName = "github.com/dsync-dev/dsync/pkg/postgres"
	spanName   = "db.query"
	// maxStatementLen caps the db.statement attribute, in bytes.
	maxStatementLen = 200
)

// queryTracer is a pgx.QueryTracer that wraps every query in a client span.
// It records the statement text (truncated) but never the arguments, which
// may hold personal data.
type queryTracer struct {
	tracer trace.Tracer
}

var _ pgx.QueryTracer = (*queryTracer)(nil)

func newQueryTracer(tp trace.TracerProvider) *queryTracer {
	return &queryTracer{tracer: tp.Tracer(tracerName)}
}

// TraceQueryStart starts the span; pgx passes the returned ctx to TraceQueryEnd.
func (q *queryTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	ctx, _ = q.tracer.Start(ctx, spanName,
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			attribute.String("db.system", "postgresql"),
			attribute.String("db.statement", truncate(data.SQL, maxStatementLen)),
		))
	return ctx
}

// TraceQueryEnd ends the span, marking it failed unless the query succeeded or
// merely found no rows.
func (q *queryTracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	span := trace.SpanFromContext(ctx)
	if data.Err != nil && !errors.Is(data.Err, pgx.ErrNoRows) {
		span.RecordError(data.Err)
		span.SetStatus(codes.Error, data.Err.Error())
	}
	span.End()
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
