// Package sqlitestore is the embedded SQLite delivery store (dsync dev).
//
// The database handle comes from sqlitex.Open, which holds one connection
// and begins transactions with BEGIN IMMEDIATE: writers queue instead of
// failing with SQLITE_BUSY. Consequently no method uses the *sql.DB while it
// holds a transaction, and rows are closed before the next statement.
package sqlitestore

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/dsync-dev/dsync/pkg/sqlitex"
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

// Store implements delivery.Store on SQLite.
type Store struct {
	db *sql.DB
}

var _ delivery.Store = (*Store)(nil)

// Open opens (creating) the database at path and applies the migrations.
// The caller closes the store.
func Open(ctx context.Context, path string) (*Store, error) {
	db, err := sqlitex.Open(ctx, path)
	if err != nil {
		return nil, err
	}
	if err := sqlitex.Migrate(ctx, db, Component, Migrations()); err != nil {
		_ = db.Close()
		return nil, err
	}
	return &Store{db: db}, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Times are stored as unix microseconds, PostgreSQL's precision, so both
// stores return the same values.
func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

type scanner interface{ Scan(dest ...any) error }

const endpointCols = `id, url, events, state, secret, created_at, updated_at`

func scanEndpoint(row scanner) (delivery.Endpoint, error) {
	var e delivery.Endpoint
	var events, state string
	var created, updated int64
	if err := row.Scan(&e.ID, &e.URL, &events, &state, &e.Secret, &created, &updated); err != nil {
		return delivery.Endpoint{}, err
	}
	if err := json.Unmarshal([]byte(events), &e.Events); err != nil {
		return delivery.Endpoint{}, fmt.Errorf("decode events of %s: %w", e.ID, err)
	}
	if len(e.Events) == 0 {
		e.Events = nil
	}
	e.State = delivery.EndpointState(state)
	e.CreatedAt, e.UpdatedAt = fromMicros(created), fromMicros(updated)
	return e, nil
}

// CreateEndpoint implements delivery.Store.
func (s *Store) CreateEndpoint(ctx context.Context, e delivery.Endpoint) error {
	events := e.Events
	if events == nil {
		events = []string{}
	}
	b, err := json.Marshal(events)
	if err != nil {
		return fmt.Errorf("encode events: %w", err)
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO endpoints (`+endpointCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		e.ID, e.URL, string(b), string(e.State), e.Secret, micros(e.CreatedAt), micros(e.UpdatedAt))
	if err != nil {
		return fmt.Errorf("insert endpoint %s: %w", e.ID, err)
	}
	return nil
}

// GetEndpoint implements delivery.Store.
func (s *Store) GetEndpoint(ctx context.Context, id string) (delivery.Endpoint, error) {
	e, err := scanEndpoint(s.db.QueryRowContext(ctx, `SELECT `+endpointCols+` FROM endpoints WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return delivery.Endpoint{}, fmt.Errorf("endpoint %s: %w", id, delivery.ErrNotFound)
	}
	if err != nil {
		return delivery.Endpoint{}, fmt.Errorf("select endpoint %s: %w", id, err)
	}
	return e, nil
}

// ListEndpoints implements delivery.Store.
func (s *Store) ListEndpoints(ctx context.Context, q delivery.ListQuery) ([]delivery.Endpoint, error) {
	query := `SELECT ` + endpointCols + ` FROM endpoints WHERE (?1 = '' OR id > ?1) ORDER BY id LIMIT ?2`
	if q.Desc {
		query = `SELECT ` + endpointCols + ` FROM endpoints WHERE (?1 = '' OR id < ?1) ORDER BY id DESC LIMIT ?2`
	}
	return s.endpoints(ctx, query, q.Cursor, q.Limit)
}

// EnabledEndpoints implements delivery.Store.
func (s *Store) EnabledEndpoints(ctx context.Context) ([]delivery.Endpoint, error) {
	return s.endpoints(ctx, `SELECT `+endpointCols+` FROM endpoints WHERE state = ? ORDER BY id`, string(delivery.EndpointEnabled))
}

func (s *Store) endpoints(ctx context.Context, query string, args ...any) ([]delivery.Endpoint, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("select endpoints: %w", err)
	}
	defer rows.Close()
	var out []delivery.Endpoint
	for rows.Next() {
		e, err := scanEndpoint(rows)
		if err != nil {
			return nil, fmt.Errorf("select endpoints: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("select endpoints: %w", err)
	}
	return out, nil
}

// SetEndpointState implements delivery.Store.
func (s *Store) SetEndpointState(ctx context.Context, id string, state delivery.EndpointState, at time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE endpoints SET state = ?, updated_at = ? WHERE id = ?`, string(state), micros(at), id)
	if err != nil {
		return fmt.Errorf("update endpoint %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return fmt.Errorf("endpoint %s: %w", id, delivery.ErrNotFound)
	}
	return nil
}

// inTx runs fn in one BEGIN IMMEDIATE transaction.
func (s *Store) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// AddEvent implements delivery.Store.
func (s *Store) AddEvent(ctx context.Context, ev delivery.Event, ds []delivery.Delivery) (int, error) {
	inserted := 0
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		body := ev.Body
		if body == nil {
			body = []byte{}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO events (id, name, subject, seq, body, created_at)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
			ev.ID, ev.Name, ev.Subject, int64(ev.Seq), body, micros(ev.CreatedAt)); err != nil {
			return fmt.Errorf("insert event: %w", err)
		}
		for _, d := range ds {
			res, err := tx.ExecContext(ctx, `INSERT INTO deliveries (id, endpoint_id, event_id, event_name, subject, seq, state,
				next_attempt_at, created_at, updated_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (endpoint_id, event_id) DO NOTHING`,
				d.ID, d.EndpointID, d.EventID, d.EventName, d.Subject, int64(d.Seq), string(d.State),
				micros(d.NextAttemptAt), micros(d.CreatedAt), micros(d.UpdatedAt))
			if err != nil {
				return fmt.Errorf("insert delivery %s: %w", d.ID, err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("insert delivery %s: %w", d.ID, err)
			}
			inserted += int(n)
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

func scanDelivery(row scanner, extra ...any) (delivery.Delivery, error) {
	var d delivery.Delivery
	var seq, next, created, updated int64
	var state string
	dest := append([]any{&d.ID, &d.EndpointID, &d.EventID, &d.EventName, &d.Subject, &seq, &state, &d.Attempts,
		&d.LastStatusCode, &d.LastError, &next, &created, &updated}, extra...)
	if err := row.Scan(dest...); err != nil {
		return delivery.Delivery{}, err
	}
	d.Seq = uint64(seq)
	d.State = delivery.DeliveryState(state)
	d.NextAttemptAt, d.CreatedAt, d.UpdatedAt = fromMicros(next), fromMicros(created), fromMicros(updated)
	return d, nil
}

// claimSQL selects the deliveries to lease; see delivery.Store.ClaimDue for
// the rules. It runs inside the same immediate transaction as the UPDATE
// that leases them, so no other writer can interleave.
const claimSQL = `
WITH busy AS (
    SELECT endpoint_id, count(*) AS n FROM deliveries
    WHERE state = 'pending' AND claimed_until > ?1
    GROUP BY endpoint_id
), cand AS (
    SELECT d.id, d.next_attempt_at, d.seq,
        row_number() OVER (PARTITION BY d.endpoint_id ORDER BY d.next_attempt_at, d.seq, d.id) + coalesce(b.n, 0) AS slot
    FROM deliveries d
    JOIN endpoints e ON e.id = d.endpoint_id AND e.state = 'enabled'
    LEFT JOIN busy b ON b.endpoint_id = d.endpoint_id
    WHERE d.state = 'pending' AND d.next_attempt_at <= ?1
      AND (d.claimed_until IS NULL OR d.claimed_until <= ?1)
      AND NOT EXISTS (
          SELECT 1 FROM deliveries p
          WHERE p.endpoint_id = d.endpoint_id AND p.subject = d.subject
            AND p.state = 'pending' AND p.seq < d.seq)
), picked AS (
    SELECT id FROM cand WHERE slot <= ?3 ORDER BY next_attempt_at, seq, id LIMIT ?2
)
SELECT ` + deliveryCols + `, e.url, e.secret, ev.body
FROM picked
JOIN deliveries d ON d.id = picked.id
JOIN endpoints e ON e.id = d.endpoint_id
JOIN events ev ON ev.id = d.event_id
ORDER BY d.next_attempt_at, d.seq, d.id`

// ClaimDue implements delivery.Store.
func (s *Store) ClaimDue(ctx context.Context, now, leaseUntil time.Time, limit, perEndpoint int) ([]delivery.Claim, error) {
	var claims []delivery.Claim
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, claimSQL, micros(now), limit, perEndpoint)
		if err != nil {
			return fmt.Errorf("select due: %w", err)
		}
		for rows.Next() {
			var c delivery.Claim
			d, err := scanDelivery(rows, &c.URL, &c.Secret, &c.Body)
			if err != nil {
				_ = rows.Close()
				return fmt.Errorf("select due: %w", err)
			}
			c.Delivery = d
			claims = append(claims, c)
		}
		if err := rows.Close(); err != nil {
			return fmt.Errorf("select due: %w", err)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("select due: %w", err)
		}
		if len(claims) == 0 {
			return nil
		}
		ids := make([]any, 0, len(claims)+1)
		ids = append(ids, micros(leaseUntil))
		for _, c := range claims {
			ids = append(ids, c.Delivery.ID)
		}
		marks := strings.TrimSuffix(strings.Repeat("?,", len(claims)), ",")
		if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET claimed_until = ? WHERE id IN (`+marks+`)`, ids...); err != nil {
			return fmt.Errorf("lease: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", err)
	}
	return claims, nil
}

// FinishAttempt implements delivery.Store.
func (s *Store) FinishAttempt(ctx context.Context, a delivery.Attempt, o delivery.Outcome) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		now := micros(a.StartedAt.Add(a.Latency))
		var endpointID string
		err := tx.QueryRowContext(ctx, `UPDATE deliveries SET state = ?2, attempts = max(attempts, ?3),
				last_status_code = ?4, last_error = ?5,
				next_attempt_at = CASE WHEN ?2 = 'pending' THEN ?6 ELSE next_attempt_at END,
				claimed_until = NULL, updated_at = ?7
			WHERE id = ?1 RETURNING endpoint_id`,
			a.DeliveryID, string(o.State), a.Number, a.StatusCode, a.Error, micros(o.NextAttemptAt), now).Scan(&endpointID)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("delivery %s: %w", a.DeliveryID, delivery.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("update delivery: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO attempts (delivery_id, number, started_at, status_code, error, latency_us, response_body)
			VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (delivery_id, number) DO NOTHING`,
			a.DeliveryID, a.Number, micros(a.StartedAt), a.StatusCode, a.Error, a.Latency.Microseconds(), a.ResponseBody); err != nil {
			return fmt.Errorf("insert attempt: %w", err)
		}
		if o.DisableEndpoint {
			if _, err := tx.ExecContext(ctx, `UPDATE endpoints SET state = 'disabled', updated_at = ? WHERE id = ?`,
				now, endpointID); err != nil {
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
	d, err := scanDelivery(s.db.QueryRowContext(ctx, `SELECT `+deliveryCols+` FROM deliveries d WHERE d.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return delivery.Delivery{}, fmt.Errorf("delivery %s: %w", id, delivery.ErrNotFound)
	}
	if err != nil {
		return delivery.Delivery{}, fmt.Errorf("select delivery %s: %w", id, err)
	}
	return d, nil
}

// ListDeliveries implements delivery.Store.
func (s *Store) ListDeliveries(ctx context.Context, endpointID string, q delivery.ListQuery) ([]delivery.Delivery, error) {
	query := `SELECT ` + deliveryCols + ` FROM deliveries d WHERE d.endpoint_id = ?1 AND (?2 = '' OR d.id > ?2) ORDER BY d.id LIMIT ?3`
	if q.Desc {
		query = `SELECT ` + deliveryCols + ` FROM deliveries d WHERE d.endpoint_id = ?1 AND (?2 = '' OR d.id < ?2) ORDER BY d.id DESC LIMIT ?3`
	}
	rows, err := s.db.QueryContext(ctx, query, endpointID, q.Cursor, q.Limit)
	if err != nil {
		return nil, fmt.Errorf("select deliveries: %w", err)
	}
	defer rows.Close()
	var out []delivery.Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, fmt.Errorf("select deliveries: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("select deliveries: %w", err)
	}
	return out, nil
}

// ListAttempts implements delivery.Store.
func (s *Store) ListAttempts(ctx context.Context, deliveryID string) ([]delivery.Attempt, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT delivery_id, number, started_at, status_code, error, latency_us, response_body
		FROM attempts WHERE delivery_id = ? ORDER BY number`, deliveryID)
	if err != nil {
		return nil, fmt.Errorf("select attempts: %w", err)
	}
	defer rows.Close()
	var out []delivery.Attempt
	for rows.Next() {
		var a delivery.Attempt
		var started, us int64
		if err := rows.Scan(&a.DeliveryID, &a.Number, &started, &a.StatusCode, &a.Error, &us, &a.ResponseBody); err != nil {
			return nil, fmt.Errorf("select attempts: %w", err)
		}
		a.StartedAt = fromMicros(started)
		a.Latency = time.Duration(us) * time.Microsecond
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("select attempts: %w", err)
	}
	return out, nil
}
