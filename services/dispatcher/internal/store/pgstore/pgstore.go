// Package pgstore is the PostgreSQL delivery store (production).
package pgstore

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dsync-dev/dsync/pkg/postgres"
	"github.com/dsync-dev/dsync/services/dispatcher/internal/delivery"
)

// Component names this store's migrations in schema_migrations.
const Component = "dispatcher"

//go:embed migrations/*.up.sql
var migrationFiles embed.FS

// Migrations returns the embedded schema migrations.
func Migrations() fs.FS {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		panic(err) // the embed pattern guarantees the directory
	}
	return sub
}

// Store implements delivery.Store on a pgx pool.
type Store struct {
	pool *pgxpool.Pool
}

var _ delivery.Store = (*Store)(nil)

// Open connects to url and applies the migrations. The caller closes the
// store.
func Open(ctx context.Context, url string) (*Store, error) {
	pool, err := postgres.Open(ctx, url)
	if err != nil {
		return nil, err
	}
	if err := postgres.Migrate(ctx, pool, Component, Migrations()); err != nil {
		pool.Close()
		return nil, err
	}
	return &Store{pool: pool}, nil
}

// Close closes the pool.
func (s *Store) Close() { s.pool.Close() }

const endpointCols = `id, url, events, state, secret, created_at, updated_at`

func scanEndpoint(row pgx.Row) (delivery.Endpoint, error) {
	var e delivery.Endpoint
	var state string
	if err := row.Scan(&e.ID, &e.URL, &e.Events, &state, &e.Secret, &e.CreatedAt, &e.UpdatedAt); err != nil {
		return delivery.Endpoint{}, err
	}
	e.State = delivery.EndpointState(state)
	if len(e.Events) == 0 {
		e.Events = nil
	}
	e.CreatedAt, e.UpdatedAt = e.CreatedAt.UTC(), e.UpdatedAt.UTC()
	return e, nil
}

// CreateEndpoint implements delivery.Store.
func (s *Store) CreateEndpoint(ctx context.Context, e delivery.Endpoint) error {
	events := e.Events
	if events == nil {
		events = []string{}
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO endpoints (`+endpointCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		e.ID, e.URL, events, string(e.State), e.Secret, e.CreatedAt, e.UpdatedAt)
	if err != nil {
		return fmt.Errorf("insert endpoint %s: %w", e.ID, err)
	}
	return nil
}

// GetEndpoint implements delivery.Store.
func (s *Store) GetEndpoint(ctx context.Context, id string) (delivery.Endpoint, error) {
	e, err := scanEndpoint(s.pool.QueryRow(ctx, `SELECT `+endpointCols+` FROM endpoints WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return delivery.Endpoint{}, fmt.Errorf("endpoint %s: %w", id, delivery.ErrNotFound)
	}
	if err != nil {
		return delivery.Endpoint{}, fmt.Errorf("select endpoint %s: %w", id, err)
	}
	return e, nil
}

// ListEndpoints implements delivery.Store.
func (s *Store) ListEndpoints(ctx context.Context, q delivery.ListQuery) ([]delivery.Endpoint, error) {
	sql := `SELECT ` + endpointCols + ` FROM endpoints WHERE ($1 = '' OR id > $1) ORDER BY id LIMIT $2`
	if q.Desc {
		sql = `SELECT ` + endpointCols + ` FROM endpoints WHERE ($1 = '' OR id < $1) ORDER BY id DESC LIMIT $2`
	}
	return s.endpoints(ctx, sql, q.Cursor, q.Limit)
}

// EnabledEndpoints implements delivery.Store.
func (s *Store) EnabledEndpoints(ctx context.Context) ([]delivery.Endpoint, error) {
	return s.endpoints(ctx, `SELECT `+endpointCols+` FROM endpoints WHERE state = $1 ORDER BY id`, string(delivery.EndpointEnabled))
}

func (s *Store) endpoints(ctx context.Context, sql string, args ...any) ([]delivery.Endpoint, error) {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("select endpoints: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (delivery.Endpoint, error) { return scanEndpoint(r) })
	if err != nil {
		return nil, fmt.Errorf("select endpoints: %w", err)
	}
	return out, nil
}

// SetEndpointState implements delivery.Store.
func (s *Store) SetEndpointState(ctx context.Context, id string, state delivery.EndpointState, at time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE endpoints SET state = $2, updated_at = $3 WHERE id = $1`, id, string(state), at)
	if err != nil {
		return fmt.Errorf("update endpoint %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("endpoint %s: %w", id, delivery.ErrNotFound)
	}
	return nil
}

// AddEvent implements delivery.Store.
func (s *Store) AddEvent(ctx context.Context, ev delivery.Event, ds []delivery.Delivery) (int, error) {
	inserted := 0
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO events (id, name, subject, seq, body, created_at)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING`,
			ev.ID, ev.Name, ev.Subject, int64(ev.Seq), ev.Body, ev.CreatedAt); err != nil {
			return fmt.Errorf("insert event: %w", err)
		}
		for _, d := range ds {
			tag, err := tx.Exec(ctx, `INSERT INTO deliveries (id, endpoint_id, event_id, event_name, subject, seq, state,
				next_attempt_at, created_at, updated_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (endpoint_id, event_id) DO NOTHING`,
				d.ID, d.EndpointID, d.EventID, d.EventName, d.Subject, int64(d.Seq), string(d.State),
				d.NextAttemptAt, d.CreatedAt, d.UpdatedAt)
			if err != nil {
				return fmt.Errorf("insert delivery %s: %w", d.ID, err)
			}
			inserted += int(tag.RowsAffected())
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("add event %s: %w", ev.ID, err)
	}
	return inserted, nil
}

const deliveryCols = `d.id, d.endpoint_id, d.event_id, d.event_name, d.subject, d.seq, d.state, d.attempts,
	d.last_status_code, d.last_error, d.next_attempt_at, d.created_at, d.updated_at`

func scanDelivery(row pgx.Row, extra ...any) (delivery.Delivery, error) {
	var d delivery.Delivery
	var seq int64
	var state string
	dest := append([]any{&d.ID, &d.EndpointID, &d.EventID, &d.EventName, &d.Subject, &seq, &state, &d.Attempts,
		&d.LastStatusCode, &d.LastError, &d.NextAttemptAt, &d.CreatedAt, &d.UpdatedAt}, extra...)
	if err := row.Scan(dest...); err != nil {
		return delivery.Delivery{}, err
	}
	d.Seq = uint64(seq)
	d.State = delivery.DeliveryState(state)
	d.NextAttemptAt, d.CreatedAt, d.UpdatedAt = d.NextAttemptAt.UTC(), d.CreatedAt.UTC(), d.UpdatedAt.UTC()
	return d, nil
}

// claimSQL picks due deliveries and leases them in one statement. Under
// concurrent claimers the UPDATE re-checks the lease condition on each row
// it locks, so a row is leased to one claimer only.
const claimSQL = `
WITH busy AS (
    SELECT endpoint_id, count(*) AS n FROM deliveries
    WHERE state = 'pending' AND claimed_until > $1
    GROUP BY endpoint_id
), cand AS (
    SELECT d.id, d.next_attempt_at, d.seq,
        row_number() OVER (PARTITION BY d.endpoint_id ORDER BY d.next_attempt_at, d.seq, d.id) + coalesce(b.n, 0) AS slot
    FROM deliveries d
    JOIN endpoints e ON e.id = d.endpoint_id AND e.state = 'enabled'
    LEFT JOIN busy b ON b.endpoint_id = d.endpoint_id
    WHERE d.state = 'pending' AND d.next_attempt_at <= $1
      AND (d.claimed_until IS NULL OR d.claimed_until <= $1)
      AND NOT EXISTS (
          SELECT 1 FROM deliveries p
          WHERE p.endpoint_id = d.endpoint_id AND p.subject = d.subject
            AND p.state = 'pending' AND p.seq < d.seq)
), picked AS (
    SELECT id FROM cand WHERE slot <= $4 ORDER BY next_attempt_at, seq, id LIMIT $3
)
UPDATE deliveries d SET claimed_until = $2
FROM picked, endpoints e, events ev
WHERE d.id = picked.id AND e.id = d.endpoint_id AND ev.id = d.event_id
  AND d.state = 'pending' AND (d.claimed_until IS NULL OR d.claimed_until <= $1)
RETURNING ` + deliveryCols + `, e.url, e.secret, ev.body`

// ClaimDue implements delivery.Store.
func (s *Store) ClaimDue(ctx context.Context, now, leaseUntil time.Time, limit, perEndpoint int) ([]delivery.Claim, error) {
	rows, err := s.pool.Query(ctx, claimSQL, now, leaseUntil, limit, perEndpoint)
	if err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", err)
	}
	claims, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (delivery.Claim, error) {
		var c delivery.Claim
		d, err := scanDelivery(r, &c.URL, &c.Secret, &c.Body)
		c.Delivery = d
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", err)
	}
	return claims, nil
}

// FinishAttempt implements delivery.Store.
func (s *Store) FinishAttempt(ctx context.Context, a delivery.Attempt, o delivery.Outcome) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		now := a.StartedAt.Add(a.Latency)
		var endpointID string
		err := tx.QueryRow(ctx, `UPDATE deliveries SET state = $2, attempts = greatest(attempts, $3),
				last_status_code = $4, last_error = $5,
				next_attempt_at = CASE WHEN $2 = 'pending' THEN $6 ELSE next_attempt_at END,
				claimed_until = NULL, updated_at = $7
			WHERE id = $1 RETURNING endpoint_id`,
			a.DeliveryID, string(o.State), a.Number, a.StatusCode, a.Error, o.NextAttemptAt, now).Scan(&endpointID)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("delivery %s: %w", a.DeliveryID, delivery.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("update delivery: %w", err)
		}
		// A second recording of the same attempt number (a lease that
		// expired under a very slow attempt) keeps the first.
		if _, err := tx.Exec(ctx, `INSERT INTO attempts (delivery_id, number, started_at, status_code, error, latency_us, response_body)
			VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (delivery_id, number) DO NOTHING`,
			a.DeliveryID, a.Number, a.StartedAt, a.StatusCode, a.Error, a.Latency.Microseconds(), a.ResponseBody); err != nil {
			return fmt.Errorf("insert attempt: %w", err)
		}
		if o.DisableEndpoint {
			if _, err := tx.Exec(ctx, `UPDATE endpoints SET state = 'disabled', updated_at = $2 WHERE id = $1`,
				endpointID, now); err != nil {
				return fmt.Errorf("disable endpoint: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("finish attempt %d of %s: %w", a.Number, a.DeliveryID, err)
	}
	return nil
}

// GetDelivery implements delivery.Store.
func (s *Store) GetDelivery(ctx context.Context, id string) (delivery.Delivery, error) {
	d, err := scanDelivery(s.pool.QueryRow(ctx, `SELECT `+deliveryCols+` FROM deliveries d WHERE d.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return delivery.Delivery{}, fmt.Errorf("delivery %s: %w", id, delivery.ErrNotFound)
	}
	if err != nil {
		return delivery.Delivery{}, fmt.Errorf("select delivery %s: %w", id, err)
	}
	return d, nil
}

// ListDeliveries implements delivery.Store.
func (s *Store) ListDeliveries(ctx context.Context, endpointID string, q delivery.ListQuery) ([]delivery.Delivery, error) {
	sql := `SELECT ` + deliveryCols + ` FROM deliveries d WHERE d.endpoint_id = $1 AND ($2 = '' OR d.id > $2) ORDER BY d.id LIMIT $3`
	if q.Desc {
		sql = `SELECT ` + deliveryCols + ` FROM deliveries d WHERE d.endpoint_id = $1 AND ($2 = '' OR d.id < $2) ORDER BY d.id DESC LIMIT $3`
	}
	rows, err := s.pool.Query(ctx, sql, endpointID, q.Cursor, q.Limit)
	if err != nil {
		return nil, fmt.Errorf("select deliveries: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (delivery.Delivery, error) { return scanDelivery(r) })
	if err != nil {
		return nil, fmt.Errorf("select deliveries: %w", err)
	}
	return out, nil
}

// ListAttempts implements delivery.Store.
func (s *Store) ListAttempts(ctx context.Context, deliveryID string) ([]delivery.Attempt, error) {
	rows, err := s.pool.Query(ctx, `SELECT delivery_id, number, started_at, status_code, error, latency_us, response_body
		FROM attempts WHERE delivery_id = $1 ORDER BY number`, deliveryID)
	if err != nil {
		return nil, fmt.Errorf("select attempts: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (delivery.Attempt, error) {
		var a delivery.Attempt
		var us int64
		err := r.Scan(&a.DeliveryID, &a.Number, &a.StartedAt, &a.StatusCode, &a.Error, &us, &a.ResponseBody)
		a.Latency = time.Duration(us) * time.Microsecond
		a.StartedAt = a.StartedAt.UTC()
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("select attempts: %w", err)
	}
	return out, nil
}
