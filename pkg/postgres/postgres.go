package postgres

import (
	"context"
	"errors"
	"fmt"
	neturl "net/url"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
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
func Open(ctx context.Context, url string, opts ...Option) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse postgres config: %w", err)
	}
	cfg.ConnConfig.Tracer = newQueryTracer(otel.GetTracerProvider())
	for _, o := range opts {
		o(cfg)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("create postgres pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("ping postgres: %w", err)
	}
	if err := ensureSchema(ctx, pool, cfg.ConnConfig.RuntimeParams["search_path"]); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// Option adjusts a pool's configuration before it connects.
type Option func(*pgxpool.Config)

// WithSetting sets a server setting (GUC) on every connection of the pool.
func WithSetting(name, value string) Option {
	return func(c *pgxpool.Config) { c.ConnConfig.RuntimeParams[name] = value }
}

// WithMaxConns bounds the pool's connections.
func WithMaxConns(n int32) Option {
	return func(c *pgxpool.Config) { c.MaxConns = n }
}

// WithSchema returns url with search_path set to schema, so that a service
// keeps its tables in its own schema of a shared database: the projector's
// and the dispatcher's tables may share names.
func WithSchema(url, schema string) (string, error) {
	if !schemaName.MatchString(schema) {
		return "", fmt.Errorf("schema name %q: want lower-case letters, digits and _", schema)
	}
	if strings.Contains(url, "://") {
		u, err := neturl.Parse(url)
		if err != nil {
			return "", fmt.Errorf("parse postgres url: %w", err)
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	return url + " search_path=" + schema, nil
}

var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// ensureSchema creates the schema named by a one-schema search_path, so a
// service can start on an empty database. A search_path the operator set to
// something else (several schemas, "$user") is left alone.
func ensureSchema(ctx context.Context, pool *pgxpool.Pool, searchPath string) error {
	if !schemaName.MatchString(searchPath) {
		return nil
	}
	_, err := pool.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{searchPath}.Sanitize())
	// Two replicas starting at once can both miss the schema; the loser's
	// error says it exists now, which is what it wanted.
	if err != nil && !IsUniqueViolation(err) && !isDuplicateSchema(err) {
		return fmt.Errorf("create schema %s: %w", searchPath, err)
	}
	return nil
}

func isDuplicateSchema(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42P06"
}

// IsUniqueViolation reports whether err (or anything it wraps) is a
// PostgreSQL unique_violation (SQLSTATE 23505).
func IsUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == uniqueViolation
}
