package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel"
)

// uniqueViolation is SQLSTATE unique_violation.
const uniqueViolation = "23505"

// Open parses url (a postgres:// URL or keyword/value DSN; pool settings such
// as pool_max_conns are honoured), installs a query tracer that records one
// OpenTelemetry span per query, and pings the server. The caller closes the
// pool. The tracer comes from the global provider, so spans follow whatever
// otelx.Setup installs even if it runs after Open.
func Open(ctx context.Context, url string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse postgres config: %w", err)
	}
	cfg.ConnConfig.Tracer = newQueryTracer(otel.GetTracerProvider())
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("create postgres pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("ping postgres: %w", err)
	}
	return pool, nil
}

// IsUniqueViolation reports whether err (or anything it wraps) is a
// PostgreSQL unique_violation (SQLSTATE 23505).
func IsUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == uniqueViolation
}
