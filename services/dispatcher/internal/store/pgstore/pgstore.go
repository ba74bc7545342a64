// Package pgstore is the PostgreSQL delivery store (production).
package pgstore

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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

const endpointCols = `id, url, events, state, secret, created_at, updated_at, description, retry_schedule,
	ordering, disabled_reason, disabled_seq, previous_secret, previous_secret_expires_at, failing_since`

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func fromNullTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

func encodeSchedule(d []time.Duration) (string, error) {
	us := make([]int64, 0, len(d))
	for _, x := range d {
		us = append(us, x.Microseconds())
	}
	b, err := json.Marshal(us)
	if err != nil {
		return "", fmt.Errorf("encode retry schedule: %w", err)
	}
	return string(b), nil
}

func decodeSchedule(s string) ([]time.Duration, error) {
	var us []int64
	if err := json.Unmarshal([]byte(s), &us); err != nil {
		return nil, fmt.Errorf("decode retry schedule: %w", err)
	}
	if len(us) == 0 {
		return nil, nil
	}
	out := make([]time.Duration, 0, len(us))
	for _, x := range us {
		out = append(out, time.Duration(x)*time.Microsecond)
	}
	return out, nil
}

func scanEndpoint(row pgx.Row) (delivery.Endpoint, error) {
	var e delivery.Endpoint
	var state, schedule, ordering string
	var disabledSeq int64
	var prevExpires, failing *time.Time
	if err := row.Scan(&e.ID, &e.URL, &e.Events, &state, &e.Secret, &e.CreatedAt, &e.UpdatedAt, &e.Description, &schedule,
		&ordering, &e.DisabledReason, &disabledSeq, &e.PreviousSecret, &prevExpires, &failing); err != nil {
		return delivery.Endpoint{}, err
	}
	var err error
	if e.RetrySchedule, err = decodeSchedule(schedule); err != nil {
		return delivery.Endpoint{}, fmt.Errorf("endpoint %s: %w", e.ID, err)
	}
	e.State = delivery.EndpointState(state)
	e.Ordering = delivery.Ordering(ordering)
	e.DisabledSeq = uint64(disabledSeq) //nolint:gosec // a stream sequence
	if len(e.Events) == 0 {
		e.Events = nil
	}
	e.PreviousSecretExpiresAt, e.FailingSince = fromNullTime(prevExpires), fromNullTime(failing)
	e.CreatedAt, e.UpdatedAt = e.CreatedAt.UTC(), e.UpdatedAt.UTC()
	return e, nil
}

// endpointArgs are e's values in endpointCols order.
func endpointArgs(e delivery.Endpoint) ([]any, error) {
	events := e.Events
	if events == nil {
		events = []string{}
	}
	schedule, err := encodeSchedule(e.RetrySchedule)
	if err != nil {
		return nil, err
	}
	ordering := e.Ordering
	if ordering == "" {
		ordering = delivery.OrderResource
	}
	return []any{e.ID, e.URL, events, string(e.State), e.Secret, e.CreatedAt, e.UpdatedAt,
		e.Description, schedule, string(ordering), e.DisabledReason, int64(e.DisabledSeq), //nolint:gosec // a stream sequence
		e.PreviousSecret, nullTime(e.PreviousSecretExpiresAt), nullTime(e.FailingSince)}, nil
}

// CreateEndpoint implements delivery.Store.
func (s *Store) CreateEndpoint(ctx context.Context, e delivery.Endpoint) error {
	args, err := endpointArgs(e)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO endpoints (`+endpointCols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`, args...)
	if err != nil {
		return fmt.Errorf("insert endpoint %s: %w", e.ID, err)
	}
	return nil
}

// UpdateEndpoint implements delivery.Store.
func (s *Store) UpdateEndpoint(ctx context.Context, e delivery.Endpoint) error {
	args, err := endpointArgs(e)
	if err != nil {
		return err
	}
	// args in endpointCols order: 0 id, 1 url, 2 events, 4 secret,
	// 6 updated_at, 7 description, 8 retry_schedule, 9 ordering,
	// 12 previous_secret, 13 its expiry.
	tag, err := s.pool.Exec(ctx, `UPDATE endpoints SET url = $2, events = $3, secret = $4, updated_at = $5,
		description = $6, retry_schedule = $7, ordering = $8, previous_secret = $9, previous_secret_expires_at = $10
		WHERE id = $1`, args[0], args[1], args[2], args[4], args[6], args[7], args[8], args[9], args[12], args[13])
	if err != nil {
		return fmt.Errorf("update endpoint %s: %w", e.ID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("endpoint %s: %w", e.ID, delivery.ErrNotFound)
	}
	return nil
}

// DeleteEndpoint implements delivery.Store. Deliveries and attempts go by
// ON DELETE CASCADE.
func (s *Store) DeleteEndpoint(ctx context.Context, id string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM endpoints WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("delete endpoint %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("endpoint %s: %w", id, delivery.ErrNotFound)
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
func (s *Store) SetEndpointState(ctx context.Context, id string, state delivery.EndpointState, reason string, at time.Time) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var tag pgconn.CommandTag
		var err error
		if state == delivery.EndpointEnabled {
			tag, err = tx.Exec(ctx, `UPDATE endpoints SET state = $2, disabled_reason = '', disabled_seq = 0,
				failing_since = NULL, updated_at = $3 WHERE id = $1`, id, string(state), at)
		} else {
			tag, err = tx.Exec(ctx, `UPDATE endpoints SET state = $2, disabled_reason = $3,
				disabled_seq = (SELECT coalesce(max(seq), 0) FROM events), updated_at = $4 WHERE id = $1`,
				id, string(state), reason, at)
		}
		if err != nil {
			return fmt.Errorf("update endpoint %s: %w", id, err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("endpoint %s: %w", id, delivery.ErrNotFound)
		}
		if state == delivery.EndpointEnabled {
			if _, err := tx.Exec(ctx, `UPDATE deliveries SET next_attempt_at = $2, round_start = attempts, updated_at = $2
				WHERE endpoint_id = $1 AND state = 'pending'`, id, at); err != nil {
				return fmt.Errorf("resume deliveries of %s: %w", id, err)
			}
		}
		return nil
	})
}

// AddEvent implements delivery.Store.
func (s *Store) AddEvent(ctx context.Context, ev delivery.Event, ds []delivery.Delivery) (int, error) {
	inserted := 0
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		body := ev.Body
		if body == nil {
			body = []byte{}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO events (id, name, subject, seq, body, created_at, traceparent)
			VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING`,
			ev.ID, ev.Name, ev.Subject, int64(ev.Seq), body, ev.CreatedAt, ev.TraceParent); err != nil { //nolint:gosec // a stream sequence
			return fmt.Errorf("insert event: %w", err)
		}
		n, err := insertDeliveries(ctx, tx, ds, false, time.Time{})
		inserted = n
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("add event %s: %w", ev.ID, err)
	}
	return inserted, nil
}

// insertDeliveries inserts ds; an existing (endpoint, event) is skipped, or
// with reset made pending and due at at in a fresh retry round.
func insertDeliveries(ctx context.Context, tx pgx.Tx, ds []delivery.Delivery, reset bool, at time.Time) (int, error) {
	conflict := `DO NOTHING`
	if reset {
		conflict = `DO UPDATE SET state = 'pending', next_attempt_at = $12, round_start = deliveries.attempts, updated_at = $12`
	}
	inserted := 0
	for _, d := range ds {
		sql := `INSERT INTO deliveries (id, endpoint_id, event_id, event_name, subject, seq, state,
			next_attempt_at, created_at, updated_at, directory_id)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (endpoint_id, event_id) ` + conflict
		args := []any{d.ID, d.EndpointID, d.EventID, d.EventName, d.Subject, int64(d.Seq), string(d.State), //nolint:gosec // a stream sequence
			d.NextAttemptAt, d.CreatedAt, d.UpdatedAt, d.DirectoryID}
		if reset {
			args = append(args, at)
		}
		tag, err := tx.Exec(ctx, sql, args...)
		if err != nil {
			return 0, fmt.Errorf("insert delivery %s: %w", d.ID, err)
		}
		inserted += int(tag.RowsAffected())
	}
	return inserted, nil
}

// ScheduleDeliveries implements delivery.Store.
func (s *Store) ScheduleDeliveries(ctx context.Context, ds []delivery.Delivery, reset bool, at time.Time) (int, error) {
	n := 0
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		n, err = insertDeliveries(ctx, tx, ds, reset, at)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("schedule deliveries: %w", err)
	}
	return n, nil
}

// Events implements delivery.Store.
func (s *Store) Events(ctx context.Context, q delivery.EventQuery) ([]delivery.Event, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, name, subject, seq, created_at, traceparent FROM events
		WHERE seq > $1 AND created_at >= $2 ORDER BY seq, id LIMIT $3`,
		int64(q.AfterSeq), q.Since, q.Limit) //nolint:gosec // a stream sequence
	if err != nil {
		return nil, fmt.Errorf("select events: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (delivery.Event, error) {
		var ev delivery.Event
		var seq int64
		err := r.Scan(&ev.ID, &ev.Name, &ev.Subject, &seq, &ev.CreatedAt, &ev.TraceParent)
		ev.Seq, ev.CreatedAt = uint64(seq), ev.CreatedAt.UTC() //nolint:gosec // a stream sequence
		return ev, err
	})
	if err != nil {
		return nil, fmt.Errorf("select events: %w", err)
	}
	return out, nil
}

// EventSeq implements delivery.Store.
func (s *Store) EventSeq(ctx context.Context, id string) (uint64, error) {
	var seq int64
	err := s.pool.QueryRow(ctx, `SELECT seq FROM events WHERE id = $1`, id).Scan(&seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("event %s: %w", id, delivery.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("select event %s: %w", id, err)
	}
	return uint64(seq), nil //nolint:gosec // a stream sequence
}

// RecoverFailed implements delivery.Store.
func (s *Store) RecoverFailed(ctx context.Context, endpointID string, since, at time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE deliveries SET state = 'pending', next_attempt_at = $1, round_start = attempts,
		updated_at = $1 WHERE endpoint_id = $2 AND state = 'failed' AND created_at >= $3`, at, endpointID, since)
	if err != nil {
		return 0, fmt.Errorf("recover deliveries of %s: %w", endpointID, err)
	}
	return int(tag.RowsAffected()), nil
}

// Backlog implements delivery.Store.
func (s *Store) Backlog(ctx context.Context) (map[string]int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT endpoint_id, count(*) FROM deliveries WHERE state = 'pending' GROUP BY endpoint_id`)
	if err != nil {
		return nil, fmt.Errorf("select backlog: %w", err)
	}
	out := map[string]int64{}
	var id string
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&id, &n}, func() error {
		out[id] = n
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("select backlog: %w", err)
	}
	return out, nil
}

const deliveryCols = `d.id, d.endpoint_id, d.event_id, d.event_name, d.subject, d.seq, d.state, d.attempts,
	d.last_status_code, d.last_error, d.next_attempt_at, d.created_at, d.updated_at, d.directory_id, d.round_start`

func scanDelivery(row pgx.Row, extra ...any) (delivery.Delivery, error) {
	var d delivery.Delivery
	var seq int64
	var state string
	dest := append([]any{&d.ID, &d.EndpointID, &d.EventID, &d.EventName, &d.Subject, &seq, &state, &d.Attempts,
		&d.LastStatusCode, &d.LastError, &d.NextAttemptAt, &d.CreatedAt, &d.UpdatedAt, &d.DirectoryID, &d.RoundStart}, extra...)
	if err := row.Scan(dest...); err != nil {
		return delivery.Delivery{}, err
	}
	d.Seq = uint64(seq) //nolint:gosec // a stream sequence
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
), open AS (
    -- Endpoints with a free slot. A saturated endpoint (say, one whose
    -- requests all hang) is left out before any of its backlog is looked
    -- at, so its backlog does not slow claims for everyone else.
    SELECT e.id, e.ordering, $4 - coalesce(b.n, 0) AS free
    FROM endpoints e LEFT JOIN busy b ON b.endpoint_id = e.id
    WHERE e.state = 'enabled' AND coalesce(b.n, 0) < $4
), cand AS (
    -- Per open endpoint, only its first few due deliveries are looked at
    -- (index deliveries_endpoint_due, stopping at the LIMIT), so a claim
    -- costs the same whatever the backlog.
    SELECT x.id, x.next_attempt_at, x.seq
    FROM open o CROSS JOIN LATERAL (
        SELECT d.id, d.next_attempt_at, d.seq FROM deliveries d
        WHERE d.endpoint_id = o.id AND d.state = 'pending' AND d.next_attempt_at <= $1
          AND (d.claimed_until IS NULL OR d.claimed_until <= $1)
          AND NOT EXISTS (
              SELECT 1 FROM deliveries p
              WHERE p.endpoint_id = d.endpoint_id AND p.subject = d.subject
                AND p.state = 'pending' AND p.seq < d.seq)
          AND (o.ordering <> 'directory' OR NOT EXISTS (
              SELECT 1 FROM deliveries p
              WHERE p.endpoint_id = d.endpoint_id AND p.directory_id = d.directory_id
                AND p.state = 'pending' AND p.seq < d.seq))
        ORDER BY d.next_attempt_at, d.seq, d.id
        LIMIT o.free) x
), picked AS (
    SELECT id FROM cand ORDER BY next_attempt_at, seq, id LIMIT $3
)
UPDATE deliveries d SET claimed_until = $2
FROM picked, endpoints e, events ev
WHERE d.id = picked.id AND e.id = d.endpoint_id AND ev.id = d.event_id
  AND d.state = 'pending' AND (d.claimed_until IS NULL OR d.claimed_until <= $1)
RETURNING ` + deliveryCols + `, e.url, e.secret,
    CASE WHEN e.previous_secret_expires_at > $1 THEN e.previous_secret ELSE '' END,
    e.retry_schedule, e.failing_since, ev.body, ev.traceparent`

// ClaimDue implements delivery.Store.
func (s *Store) ClaimDue(ctx context.Context, now, leaseUntil time.Time, limit, perEndpoint int) ([]delivery.Claim, error) {
	rows, err := s.pool.Query(ctx, claimSQL, now, leaseUntil, limit, perEndpoint)
	if err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", err)
	}
	claims, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (delivery.Claim, error) {
		var c delivery.Claim
		var schedule string
		var failing *time.Time
		d, err := scanDelivery(r, &c.URL, &c.Secret, &c.PreviousSecret, &schedule, &failing, &c.Body, &c.TraceParent)
		if err != nil {
			return c, err
		}
		c.Schedule, err = decodeSchedule(schedule)
		c.Delivery, c.FailingSince = d, fromNullTime(failing)
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
		// Only a change of health writes the endpoint row, so the common
		// case (healthy stays healthy) takes no lock on it.
		if o.State == delivery.DeliverySucceeded {
			_, err = tx.Exec(ctx, `UPDATE endpoints SET failing_since = NULL WHERE id = $1 AND failing_since IS NOT NULL`, endpointID)
		} else {
			_, err = tx.Exec(ctx, `UPDATE endpoints SET failing_since = $2 WHERE id = $1 AND failing_since IS NULL`, endpointID, a.StartedAt)
		}
		if err != nil {
			return fmt.Errorf("update endpoint health: %w", err)
		}
		if o.DisableEndpoint {
			if _, err := tx.Exec(ctx, `UPDATE endpoints SET state = 'disabled', disabled_reason = $3,
				disabled_seq = (SELECT coalesce(max(seq), 0) FROM events), updated_at = $2 WHERE id = $1 AND state = 'enabled'`,
				endpointID, now, o.DisableReason); err != nil {
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
func (s *Store) ListDeliveries(ctx context.Context, endpointID string, f delivery.DeliveryFilter, q delivery.ListQuery) ([]delivery.Delivery, error) {
	where := `d.endpoint_id = $1 AND ($4 = '' OR d.state = $4) AND ($5 = '' OR d.event_name = $5)
		AND ($6::timestamptz IS NULL OR d.created_at >= $6) AND ($7::timestamptz IS NULL OR d.created_at < $7)`
	sql := `SELECT ` + deliveryCols + ` FROM deliveries d WHERE ` + where + ` AND ($2 = '' OR d.id > $2) ORDER BY d.id LIMIT $3`
	if q.Desc {
		sql = `SELECT ` + deliveryCols + ` FROM deliveries d WHERE ` + where + ` AND ($2 = '' OR d.id < $2) ORDER BY d.id DESC LIMIT $3`
	}
	rows, err := s.pool.Query(ctx, sql, endpointID, q.Cursor, q.Limit, string(f.State), f.EventName,
		nullTime(f.CreatedAfter), nullTime(f.CreatedBefore))
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
