// Package pgstore is the PostgreSQL delivery store (production).
package pgstore

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
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
	// claims runs ClaimDue only, always with its generic plan. Left to
	// choose, PostgreSQL re-planned the claim for each call once a backlog
	// made the generic plan's estimate look costly: half a millisecond of
	// planning per claim, three times the claim itself, and claims are
	// serial. The generic plan is sound because each of the claim's
	// lookups has an index keyed on exactly what it looks up (migration
	// 0003) and the StatsKeeper refreshes the statistics it is made from.
	// Bitmap and sequential scans are off on this pool: every step of the
	// claim is an ordered or point index probe. With a backlog, the generic
	// plan (which cannot see how few deliveries are due at the time it
	// runs, and so guesses a third of the pending ones) chose to read every
	// pending row of the endpoint, or every due-index entry (dead ones
	// included: a bitmap scan never marks them) and their heap pages, and
	// sort, where the ordered index scan stops after the window.
	claims *pgxpool.Pool
	stats  *postgres.StatsKeeper
}

var _ delivery.Store = (*Store)(nil)

// Open connects to url and applies the migrations. The caller closes the
// store. log receives what background maintenance has to say; nil
// discards it.
func Open(ctx context.Context, url string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pool, err := postgres.Open(ctx, url)
	if err != nil {
		return nil, err
	}
	if err := postgres.Migrate(ctx, pool, Component, Migrations()); err != nil {
		pool.Close()
		return nil, err
	}
	claims, err := postgres.Open(ctx, url,
		postgres.WithSetting("plan_cache_mode", "force_generic_plan"),
		postgres.WithSetting("enable_bitmapscan", "off"),
		postgres.WithSetting("enable_seqscan", "off"),
		postgres.WithMaxConns(2))
	if err != nil {
		pool.Close()
		return nil, err
	}
	return &Store{pool: pool, claims: claims, stats: postgres.NewStatsKeeper(pool, log, "deliveries", "events")}, nil
}

// Close stops background maintenance and closes the pools.
func (s *Store) Close() {
	s.stats.Close()
	s.claims.Close()
	s.pool.Close()
}

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

// AllEndpoints implements delivery.Store.
func (s *Store) AllEndpoints(ctx context.Context) ([]delivery.Endpoint, error) {
	return s.endpoints(ctx, `SELECT `+endpointCols+` FROM endpoints ORDER BY id`)
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

// AddEvent implements delivery.Store (AddEvents with one event).
func (s *Store) AddEvent(ctx context.Context, ev delivery.Event, ds []delivery.Delivery) (int, error) {
	return s.AddEvents(ctx, []delivery.Event{ev}, ds)
}

// AddEvents implements delivery.Store. The events and their deliveries go
// in one batch: one round trip, in the implicit transaction PostgreSQL
// gives a pipeline (all or nothing).
func (s *Store) AddEvents(ctx context.Context, evs []delivery.Event, ds []delivery.Delivery) (int, error) {
	if len(evs) == 0 && len(ds) == 0 {
		return 0, nil
	}
	b := &pgx.Batch{}
	for _, ev := range evs {
		body := ev.Body
		if body == nil {
			body = []byte{}
		}
		b.Queue(`INSERT INTO events (id, name, subject, seq, body, created_at, traceparent)
			SELECT $1, $2, $3, $4, $5, $6, $7 FROM prune_state WHERE $4 > pruned_through_seq
			ON CONFLICT (id) DO NOTHING`,
			ev.ID, ev.Name, ev.Subject, int64(ev.Seq), body, ev.CreatedAt, ev.TraceParent) //nolint:gosec // a stream sequence
	}
	queueDeliveries(b, ds, false, true, time.Time{})
	n, err := sendInserts(s.pool.SendBatch(ctx, b), len(evs), len(ds))
	if err != nil {
		return 0, fmt.Errorf("add %d events: %w", len(evs), err)
	}
	s.stats.Wrote(n)
	return n, nil
}

// queueDeliveries queues the insertion of ds; an existing (endpoint, event)
// is skipped, or with reset made pending and due at at in a fresh retry
// round. With ingest (deliveries of events just read from the stream), a
// delivery whose event is at or below the pruned watermark is skipped, as
// its event is by AddEvents.
func queueDeliveries(b *pgx.Batch, ds []delivery.Delivery, reset, ingest bool, at time.Time) {
	conflict := `DO NOTHING`
	if reset {
		// The lease goes too, so that an attempt in flight does not undo
		// the reset when it is recorded (see delivery.Finished.Lease).
		conflict = `DO UPDATE SET state = 'pending', next_attempt_at = $12, round_start = deliveries.attempts,
			claimed_until = NULL, updated_at = $12`
	}
	values := `VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`
	if ingest {
		values = `SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 FROM prune_state WHERE $6 > pruned_through_seq`
	}
	sql := `INSERT INTO deliveries (id, endpoint_id, event_id, event_name, subject, seq, state,
		next_attempt_at, created_at, updated_at, directory_id)
		` + values + ` ON CONFLICT (endpoint_id, event_id) ` + conflict
	for _, d := range ds {
		args := []any{d.ID, d.EndpointID, d.EventID, d.EventName, d.Subject, int64(d.Seq), string(d.State), //nolint:gosec // a stream sequence
			d.NextAttemptAt, d.CreatedAt, d.UpdatedAt, d.DirectoryID}
		if reset {
			args = append(args, at)
		}
		b.Queue(sql, args...)
	}
}

// sendInserts reads the results of a batch of skip statements followed by
// the insertions of deliveries, returns how many rows those inserted, and
// closes the batch.
func sendInserts(br pgx.BatchResults, skip, deliveries int) (int, error) {
	inserted := 0
	for i := range skip + deliveries {
		tag, err := br.Exec()
		if err != nil {
			_ = br.Close()
			return 0, err
		}
		if i >= skip {
			inserted += int(tag.RowsAffected())
		}
	}
	if err := br.Close(); err != nil {
		return 0, err
	}
	return inserted, nil
}

// ScheduleDeliveries implements delivery.Store (one batch, as AddEvent).
func (s *Store) ScheduleDeliveries(ctx context.Context, ds []delivery.Delivery, reset bool, at time.Time) (int, error) {
	if len(ds) == 0 {
		return 0, nil
	}
	b := &pgx.Batch{}
	queueDeliveries(b, ds, reset, false, at)
	n, err := sendInserts(s.pool.SendBatch(ctx, b), 0, len(ds))
	if err != nil {
		return 0, fmt.Errorf("schedule deliveries: %w", err)
	}
	s.stats.Wrote(n)
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
WITH held AS (
    SELECT * FROM unnest($5::text[], $6::int[]) AS h(endpoint_id, n)
), open AS (
    -- Endpoints with a free slot. A saturated endpoint (say, one whose
    -- requests all hang) is left out before any of its backlog is looked
    -- at, so its backlog does not slow claims for everyone else.
    SELECT e.id, e.ordering, $4 - coalesce(h.n, 0) AS free
    FROM endpoints e LEFT JOIN held h ON h.endpoint_id = e.id
    WHERE e.state = 'enabled' AND coalesce(h.n, 0) < $4
), cand AS (
    -- Per open endpoint, only a window of its first due deliveries in
    -- index order (deliveries_endpoint_due, a plain ordered scan stopped by
    -- the LIMIT) is looked at, and within it the first o.free that may go:
    -- a claim costs the same however long the endpoint's backlog (say, a
    -- dead endpoint's). The price: were a whole window's worth of due
    -- deliveries waiting behind retrying earlier ones, the endpoint's other
    -- deliveries would wait for those retries too; other endpoints never.
    SELECT x.id, x.next_attempt_at, x.seq
    FROM open o CROSS JOIN LATERAL (
        SELECT w.id, w.next_attempt_at, w.seq FROM (
            SELECT d.id, d.subject_key, d.directory_key, d.next_attempt_at, d.seq
            FROM deliveries d
            WHERE d.endpoint_id = o.id AND d.state = 'pending' AND d.next_attempt_at <= $1
              AND (d.claimed_until IS NULL OR d.claimed_until <= $1)
            ORDER BY d.next_attempt_at, d.seq
            LIMIT 256) w
        -- The first pending delivery of its subject (of its directory
        -- under OrderDirectory): scalar subqueries, one index probe each
        -- on the generated keys (deliveries_subject_head,
        -- deliveries_directory_head: keyed on the lookup's whole key, where
        -- (endpoint_id, subject) competed with deliveries_endpoint_due),
        -- evaluated only until o.free rows qualify. (NOT EXISTS would
        -- become an anti join keyed on the endpoint alone, reading its
        -- whole backlog for every candidate.)
        WHERE w.seq = (
              SELECT min(p.seq) FROM deliveries p
              WHERE p.subject_key = w.subject_key AND p.state = 'pending')
          AND (o.ordering <> 'directory' OR w.seq = (
              SELECT min(p.seq) FROM deliveries p
              WHERE p.directory_key = w.directory_key AND p.state = 'pending'))
        LIMIT o.free) x
), picked AS (
    SELECT id FROM cand ORDER BY next_attempt_at, seq, id LIMIT $3
)
-- The picked ids go in as one array (an init plan) probed through the
-- primary key.
UPDATE deliveries d SET claimed_until = $2
FROM endpoints e, events ev
WHERE d.id = ANY (ARRAY(SELECT id FROM picked)) AND e.id = d.endpoint_id AND ev.id = d.event_id
  AND d.state = 'pending' AND (d.claimed_until IS NULL OR d.claimed_until <= $1)
RETURNING ` + deliveryCols + `, e.url, e.secret,
    CASE WHEN e.previous_secret_expires_at > $1 THEN e.previous_secret ELSE '' END,
    e.retry_schedule, e.failing_since, ev.body, ev.traceparent`

// ClaimDue implements delivery.Store.
func (s *Store) ClaimDue(ctx context.Context, now, leaseUntil time.Time, limit, perEndpoint int, held map[string]int) ([]delivery.Claim, error) {
	ids, counts := make([]string, 0, len(held)), make([]int32, 0, len(held))
	for id, n := range held {
		ids, counts = append(ids, id), append(counts, int32(min(n, perEndpoint))) //nolint:gosec // bounded by perEndpoint
	}
	rows, err := s.claims.Query(ctx, claimSQL, now, leaseUntil, limit, perEndpoint, ids, counts)
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

// ReleaseClaims implements delivery.Store.
func (s *Store) ReleaseClaims(ctx context.Context, ids []string) error {
	if _, err := s.pool.Exec(ctx, `UPDATE deliveries SET claimed_until = NULL
		WHERE id = ANY($1) AND state = 'pending'`, ids); err != nil {
		return fmt.Errorf("release %d claims: %w", len(ids), err)
	}
	return nil
}

// FinishAttempt implements delivery.Store.
func (s *Store) FinishAttempt(ctx context.Context, a delivery.Attempt, o delivery.Outcome) error {
	recorded, err := s.FinishAttempts(ctx, []delivery.Finished{{Attempt: a, Outcome: o}})
	if err != nil {
		return err
	}
	if !recorded[0] {
		return fmt.Errorf("finish attempt %d of %s: delivery %s: %w", a.Number, a.DeliveryID, a.DeliveryID, delivery.ErrNotFound)
	}
	return nil
}

// finishSQL records one attempt in one statement, so a batch of them is
// one round trip: the delivery is updated and its lease released, the
// attempt inserted (a second recording of the same number, after a lease
// expired under a very slow attempt, keeps the first), and the endpoint row
// written only when its health changes or it is to be disabled, so the
// common case (healthy stays healthy) takes no lock on it. It returns a row
// when the delivery exists.
//
// $1 delivery id, $2 state, $3 attempt number, $4 status code, $5 error,
// $6 next attempt, $7 now, $8 started at, $9 latency µs, $10 response body,
// $11 succeeded, $12 disable, $13 disable reason, $14 the attempt's lease
// (NULL: unconditional). The state, next attempt and lease change only
// while the delivery still holds that lease (delivery.Finished.Lease).
const finishSQL = `
WITH d AS (
    UPDATE deliveries SET
        state = CASE WHEN $14::timestamptz IS NULL OR claimed_until = $14 THEN $2 ELSE state END,
        attempts = greatest(attempts, $3),
        last_status_code = $4, last_error = $5,
        next_attempt_at = CASE WHEN ($14::timestamptz IS NULL OR claimed_until = $14) AND $2 = 'pending' THEN $6
            ELSE next_attempt_at END,
        claimed_until = CASE WHEN $14::timestamptz IS NULL OR claimed_until = $14 THEN NULL ELSE claimed_until END,
        updated_at = $7
    WHERE id = $1 RETURNING endpoint_id
), a AS (
    INSERT INTO attempts (delivery_id, number, started_at, status_code, error, latency_us, response_body)
    SELECT $1, $3, $8, $4, $5, $9, $10 FROM d
    ON CONFLICT (delivery_id, number) DO NOTHING
), e AS (
    UPDATE endpoints e SET
        failing_since = CASE WHEN $11 THEN NULL ELSE coalesce(e.failing_since, $8) END,
        state = CASE WHEN $12 AND e.state = 'enabled' THEN 'disabled' ELSE e.state END,
        disabled_reason = CASE WHEN $12 AND e.state = 'enabled' THEN $13 ELSE e.disabled_reason END,
        disabled_seq = CASE WHEN $12 AND e.state = 'enabled' THEN (SELECT coalesce(max(seq), 0) FROM events)
            ELSE e.disabled_seq END,
        updated_at = CASE WHEN $12 AND e.state = 'enabled' THEN $7 ELSE e.updated_at END
    FROM d
    WHERE e.id = d.endpoint_id
      AND (($12 AND e.state = 'enabled')
        OR ($11 AND e.failing_since IS NOT NULL)
        OR (NOT $11 AND e.failing_since IS NULL))
)
SELECT 1 FROM d`

// FinishAttempts implements delivery.Store: the batch goes in one round
// trip and one transaction.
func (s *Store) FinishAttempts(ctx context.Context, fs []delivery.Finished) ([]bool, error) {
	recorded := make([]bool, len(fs))
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		for _, f := range fs {
			a, o := f.Attempt, f.Outcome
			b.Queue(finishSQL, a.DeliveryID, string(o.State), a.Number, a.StatusCode, a.Error, o.NextAttemptAt,
				a.StartedAt.Add(a.Latency), a.StartedAt, a.Latency.Microseconds(), a.ResponseBody,
				o.State == delivery.DeliverySucceeded, o.DisableEndpoint, o.DisableReason, nullTime(f.Lease))
		}
		br := tx.SendBatch(ctx, b)
		for i, f := range fs {
			var one int
			err := br.QueryRow().Scan(&one)
			switch {
			case errors.Is(err, pgx.ErrNoRows):
			case err != nil:
				_ = br.Close()
				return fmt.Errorf("finish attempt %d of %s: %w", f.Attempt.Number, f.Attempt.DeliveryID, err)
			default:
				recorded[i] = true
			}
		}
		if err := br.Close(); err != nil {
			return fmt.Errorf("finish attempts: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return recorded, nil
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
