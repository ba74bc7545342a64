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
	"slices"
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
	// stmts holds the hot statements, prepared once at Open: parsing and
	// planning them (the claim query above all) otherwise costs more than
	// running them.
	stmts map[string]*sql.Stmt
	// checkpointer is a second connection that copies the write-ahead log
	// into the database (see checkpoint); stop ends its goroutine.
	checkpointer *sql.DB
	stop         context.CancelFunc
	stopped      chan struct{}
}

// checkpointEvery is how often the write-ahead log is checkpointed.
const checkpointEvery = 250 * time.Millisecond

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
	s := &Store{db: db, stmts: map[string]*sql.Stmt{}, stopped: make(chan struct{})}
	// SQLite checkpoints the log in whichever commit crosses 1000 pages,
	// with an fsync, holding the one connection: every store call queued
	// behind it (the webhook of a healthy endpoint included) waits
	// milliseconds. A passive checkpoint on a connection of its own runs
	// beside the writer instead.
	if _, err := db.ExecContext(ctx, `PRAGMA wal_autocheckpoint = 0`); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("disable autocheckpoint: %w", err)
	}
	if s.checkpointer, err = sqlitex.Open(ctx, path); err != nil {
		_ = db.Close()
		return nil, err
	}
	var cctx context.Context
	cctx, s.stop = context.WithCancel(context.WithoutCancel(ctx))
	go s.checkpoint(cctx)
	// Prepared here, never lazily: preparing needs the one connection,
	// which a method holding a transaction already has (deadlock).
	for _, q := range hotSQL {
		st, err := db.PrepareContext(ctx, q)
		if err != nil {
			_ = s.Close()
			return nil, fmt.Errorf("prepare: %w", err)
		}
		s.stmts[q] = st
	}
	return s, nil
}

// hotSQL are the statements of the delivery path (ingest, claim, finish).
var hotSQL = []string{
	enabledEndpointsSQL, allEndpointsSQL, insertEventSQL, insertDeliverySQL, resetDeliverySQL,
	claimSQL, leaseSQL, finishDeliverySQL, insertAttemptSQL, healthySQL, failingSQL, disableSQL, backlogSQL,
}

// Close closes the database.
func (s *Store) Close() error {
	s.stop()
	<-s.stopped
	for _, st := range s.stmts {
		_ = st.Close()
	}
	_ = s.checkpointer.Close()
	return s.db.Close()
}

// checkpoint copies the write-ahead log into the database every
// checkpointEvery until ctx is done. PASSIVE never blocks the writer; the
// log restarts from its beginning once a checkpoint has caught up, so it
// stays small.
func (s *Store) checkpoint(ctx context.Context) {
	defer close(s.stopped)
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			// A last full pass so the database file is complete at rest.
			_, _ = s.checkpointer.ExecContext(context.WithoutCancel(ctx), `PRAGMA wal_checkpoint(PASSIVE)`)
			return
		case <-t.C:
			// An error (say, a full disk) is retried at the next tick; the
			// log keeps every commit meanwhile.
			_, _ = s.checkpointer.ExecContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`)
		}
	}
}

// stmt returns the prepared form of q for use in tx (or outside any
// transaction when tx is nil), or nil when q is not a hot statement.
func (s *Store) stmt(ctx context.Context, tx *sql.Tx, q string) *sql.Stmt {
	st := s.stmts[q]
	if st == nil || tx == nil {
		return st
	}
	// On the same connection (there is only one) the prepared statement
	// is reused, not prepared again.
	return tx.StmtContext(ctx, st)
}

// exec runs q in tx, prepared when it is a hot statement.
func (s *Store) exec(ctx context.Context, tx *sql.Tx, q string, args ...any) (sql.Result, error) {
	if st := s.stmt(ctx, tx, q); st != nil {
		return st.ExecContext(ctx, args...)
	}
	if tx == nil {
		return s.db.ExecContext(ctx, q, args...)
	}
	return tx.ExecContext(ctx, q, args...)
}

// query runs q in tx, prepared when it is a hot statement.
func (s *Store) query(ctx context.Context, tx *sql.Tx, q string, args ...any) (*sql.Rows, error) {
	if st := s.stmt(ctx, tx, q); st != nil {
		return st.QueryContext(ctx, args...)
	}
	if tx == nil {
		return s.db.QueryContext(ctx, q, args...)
	}
	return tx.QueryContext(ctx, q, args...)
}

// queryRow runs q in tx, prepared when it is a hot statement.
func (s *Store) queryRow(ctx context.Context, tx *sql.Tx, q string, args ...any) *sql.Row {
	if st := s.stmt(ctx, tx, q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	if tx == nil {
		return s.db.QueryRowContext(ctx, q, args...)
	}
	return tx.QueryRowContext(ctx, q, args...)
}

// Times are stored as unix microseconds, PostgreSQL's precision, so both
// stores return the same values.
func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

type scanner interface{ Scan(dest ...any) error }

const endpointCols = `id, url, events, state, secret, created_at, updated_at, description, retry_schedule,
	ordering, disabled_reason, disabled_seq, previous_secret, previous_secret_expires_at, failing_since`

func nullMicros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return micros(t)
}

func fromNullMicros(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return fromMicros(v.Int64)
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

func scanEndpoint(row scanner) (delivery.Endpoint, error) {
	var e delivery.Endpoint
	var events, state, schedule, ordering string
	var created, updated, disabledSeq int64
	var prevExpires, failing sql.NullInt64
	if err := row.Scan(&e.ID, &e.URL, &events, &state, &e.Secret, &created, &updated, &e.Description, &schedule,
		&ordering, &e.DisabledReason, &disabledSeq, &e.PreviousSecret, &prevExpires, &failing); err != nil {
		return delivery.Endpoint{}, err
	}
	if err := json.Unmarshal([]byte(events), &e.Events); err != nil {
		return delivery.Endpoint{}, fmt.Errorf("decode events of %s: %w", e.ID, err)
	}
	if len(e.Events) == 0 {
		e.Events = nil
	}
	var err error
	if e.RetrySchedule, err = decodeSchedule(schedule); err != nil {
		return delivery.Endpoint{}, fmt.Errorf("endpoint %s: %w", e.ID, err)
	}
	e.State = delivery.EndpointState(state)
	e.Ordering = delivery.Ordering(ordering)
	e.DisabledSeq = uint64(disabledSeq) //nolint:gosec // a stream sequence
	e.PreviousSecretExpiresAt, e.FailingSince = fromNullMicros(prevExpires), fromNullMicros(failing)
	e.CreatedAt, e.UpdatedAt = fromMicros(created), fromMicros(updated)
	return e, nil
}

// endpointArgs are e's values in endpointCols order.
func endpointArgs(e delivery.Endpoint) ([]any, error) {
	events := e.Events
	if events == nil {
		events = []string{}
	}
	b, err := json.Marshal(events)
	if err != nil {
		return nil, fmt.Errorf("encode events: %w", err)
	}
	schedule, err := encodeSchedule(e.RetrySchedule)
	if err != nil {
		return nil, err
	}
	ordering := e.Ordering
	if ordering == "" {
		ordering = delivery.OrderResource
	}
	return []any{e.ID, e.URL, string(b), string(e.State), e.Secret, micros(e.CreatedAt), micros(e.UpdatedAt),
		e.Description, schedule, string(ordering), e.DisabledReason, int64(e.DisabledSeq), //nolint:gosec // a stream sequence
		e.PreviousSecret, nullMicros(e.PreviousSecretExpiresAt), nullMicros(e.FailingSince)}, nil
}

// CreateEndpoint implements delivery.Store.
func (s *Store) CreateEndpoint(ctx context.Context, e delivery.Endpoint) error {
	args, err := endpointArgs(e)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO endpoints (`+endpointCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, args...)
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
	// args: 1 id, 2 url, 3 events, 5 secret, 7 updated_at, 8 description,
	// 9 retry_schedule, 10 ordering, 13 previous_secret, 14 its expiry.
	res, err := s.db.ExecContext(ctx, `UPDATE endpoints SET url = ?2, events = ?3, secret = ?5, updated_at = ?7,
		description = ?8, retry_schedule = ?9, ordering = ?10, previous_secret = ?13, previous_secret_expires_at = ?14
		WHERE id = ?1`, args[:14]...)
	if err != nil {
		return fmt.Errorf("update endpoint %s: %w", e.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return fmt.Errorf("endpoint %s: %w", e.ID, delivery.ErrNotFound)
	}
	return nil
}

// DeleteEndpoint implements delivery.Store.
func (s *Store) DeleteEndpoint(ctx context.Context, id string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		// Foreign keys may be off in SQLite; delete the children explicitly.
		if _, err := tx.ExecContext(ctx, `DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE endpoint_id = ?)`, id); err != nil {
			return fmt.Errorf("delete attempts of %s: %w", id, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM deliveries WHERE endpoint_id = ?`, id); err != nil {
			return fmt.Errorf("delete deliveries of %s: %w", id, err)
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM endpoints WHERE id = ?`, id)
		if err != nil {
			return fmt.Errorf("delete endpoint %s: %w", id, err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return fmt.Errorf("endpoint %s: %w", id, delivery.ErrNotFound)
		}
		return nil
	})
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

const enabledEndpointsSQL = `SELECT ` + endpointCols + ` FROM endpoints WHERE state = 'enabled' ORDER BY id`

// EnabledEndpoints implements delivery.Store.
func (s *Store) EnabledEndpoints(ctx context.Context) ([]delivery.Endpoint, error) {
	return s.endpoints(ctx, enabledEndpointsSQL)
}

const allEndpointsSQL = `SELECT ` + endpointCols + ` FROM endpoints ORDER BY id`

// AllEndpoints implements delivery.Store.
func (s *Store) AllEndpoints(ctx context.Context) ([]delivery.Endpoint, error) {
	return s.endpoints(ctx, allEndpointsSQL)
}

func (s *Store) endpoints(ctx context.Context, query string, args ...any) ([]delivery.Endpoint, error) {
	rows, err := s.query(ctx, nil, query, args...)
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
func (s *Store) SetEndpointState(ctx context.Context, id string, state delivery.EndpointState, reason string, at time.Time) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var res sql.Result
		var err error
		if state == delivery.EndpointEnabled {
			res, err = tx.ExecContext(ctx, `UPDATE endpoints SET state = ?, disabled_reason = '', disabled_seq = 0,
				failing_since = NULL, updated_at = ? WHERE id = ?`, string(state), micros(at), id)
		} else {
			res, err = tx.ExecContext(ctx, `UPDATE endpoints SET state = ?, disabled_reason = ?,
				disabled_seq = (SELECT coalesce(max(seq), 0) FROM events), updated_at = ? WHERE id = ?`,
				string(state), reason, micros(at), id)
		}
		if err != nil {
			return fmt.Errorf("update endpoint %s: %w", id, err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return fmt.Errorf("endpoint %s: %w", id, delivery.ErrNotFound)
		}
		if state == delivery.EndpointEnabled {
			if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET next_attempt_at = ?, round_start = attempts, updated_at = ?
				WHERE endpoint_id = ? AND state = 'pending'`, micros(at), micros(at), id); err != nil {
				return fmt.Errorf("resume deliveries of %s: %w", id, err)
			}
		}
		return nil
	})
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

// ReleaseClaims implements delivery.Store.
func (s *Store) ReleaseClaims(ctx context.Context, ids []string) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for _, id := range ids {
			if _, err := s.exec(ctx, tx, `UPDATE deliveries SET claimed_until = NULL
				WHERE id = ? AND state = 'pending'`, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("release %d claims: %w", len(ids), err)
	}
	return nil
}

// AddEvent implements delivery.Store (AddEvents with one event).
func (s *Store) AddEvent(ctx context.Context, ev delivery.Event, ds []delivery.Delivery) (int, error) {
	return s.AddEvents(ctx, []delivery.Event{ev}, ds)
}

// AddEvents implements delivery.Store: one transaction for them all.
func (s *Store) AddEvents(ctx context.Context, evs []delivery.Event, ds []delivery.Delivery) (int, error) {
	inserted := 0
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		// Events at or below the pruned watermark were ingested before
		// (see migrations/0003_retention.up.sql): neither they nor their
		// deliveries come back.
		var pruned int64
		if err := tx.QueryRowContext(ctx, `SELECT pruned_through_seq FROM prune_state`).Scan(&pruned); err != nil {
			return fmt.Errorf("read pruned watermark: %w", err)
		}
		evs = slices.DeleteFunc(slices.Clone(evs), func(ev delivery.Event) bool { return int64(ev.Seq) <= pruned }) //nolint:gosec // a stream sequence
		ds = slices.DeleteFunc(slices.Clone(ds), func(d delivery.Delivery) bool { return int64(d.Seq) <= pruned })  //nolint:gosec // a stream sequence
		for _, ev := range evs {
			body := ev.Body
			if body == nil {
				body = []byte{}
			}
			if _, err := s.exec(ctx, tx, insertEventSQL,
				ev.ID, ev.Name, ev.Subject, int64(ev.Seq), body, micros(ev.CreatedAt), ev.TraceParent); err != nil { //nolint:gosec // a stream sequence
				return fmt.Errorf("insert event %s: %w", ev.ID, err)
			}
		}
		n, err := s.insertDeliveries(ctx, tx, ds, false, time.Time{})
		inserted = n
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("add %d events: %w", len(evs), err)
	}
	return inserted, nil
}

const insertEventSQL = `INSERT INTO events (id, name, subject, seq, body, created_at, traceparent)
	VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`

const insertDeliveryHead = `INSERT INTO deliveries (id, endpoint_id, event_id, event_name, subject, seq, state,
	next_attempt_at, created_at, updated_at, directory_id)
	VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT (endpoint_id, event_id) `

const (
	insertDeliverySQL = insertDeliveryHead + `DO NOTHING`
	// The lease goes too, so that an attempt in flight does not undo the
	// reset when it is recorded (see delivery.Finished.Lease).
	resetDeliverySQL = insertDeliveryHead + `DO UPDATE SET state = 'pending', next_attempt_at = ?12,
		round_start = deliveries.attempts, claimed_until = NULL, updated_at = ?12`
)

// insertDeliveries inserts ds; an existing (endpoint, event) is skipped, or
// with reset made pending and due at at in a fresh retry round.
func (s *Store) insertDeliveries(ctx context.Context, tx *sql.Tx, ds []delivery.Delivery, reset bool, at time.Time) (int, error) {
	q := insertDeliverySQL
	if reset {
		q = resetDeliverySQL
	}
	inserted := 0
	for _, d := range ds {
		args := []any{d.ID, d.EndpointID, d.EventID, d.EventName, d.Subject, int64(d.Seq), string(d.State), //nolint:gosec // a stream sequence
			micros(d.NextAttemptAt), micros(d.CreatedAt), micros(d.UpdatedAt), d.DirectoryID}
		if reset {
			args = append(args, micros(at))
		}
		res, err := s.exec(ctx, tx, q, args...)
		if err != nil {
			return 0, fmt.Errorf("insert delivery %s: %w", d.ID, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return 0, fmt.Errorf("insert delivery %s: %w", d.ID, err)
		}
		inserted += int(n)
	}
	return inserted, nil
}

// ScheduleDeliveries implements delivery.Store.
func (s *Store) ScheduleDeliveries(ctx context.Context, ds []delivery.Delivery, reset bool, at time.Time) (int, error) {
	n := 0
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		n, err = s.insertDeliveries(ctx, tx, ds, reset, at)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("schedule deliveries: %w", err)
	}
	return n, nil
}

// Events implements delivery.Store.
func (s *Store) Events(ctx context.Context, q delivery.EventQuery) ([]delivery.Event, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, name, subject, seq, created_at, traceparent FROM events
		WHERE seq > ? AND created_at >= ? ORDER BY seq, id LIMIT ?`,
		int64(q.AfterSeq), micros(q.Since), q.Limit) //nolint:gosec // a stream sequence
	if err != nil {
		return nil, fmt.Errorf("select events: %w", err)
	}
	defer rows.Close()
	var out []delivery.Event
	for rows.Next() {
		var ev delivery.Event
		var seq, created int64
		if err := rows.Scan(&ev.ID, &ev.Name, &ev.Subject, &seq, &created, &ev.TraceParent); err != nil {
			return nil, fmt.Errorf("select events: %w", err)
		}
		ev.Seq, ev.CreatedAt = uint64(seq), fromMicros(created) //nolint:gosec // a stream sequence
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("select events: %w", err)
	}
	return out, nil
}

// EventSeq implements delivery.Store.
func (s *Store) EventSeq(ctx context.Context, id string) (uint64, error) {
	var seq int64
	err := s.db.QueryRowContext(ctx, `SELECT seq FROM events WHERE id = ?`, id).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("event %s: %w", id, delivery.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("select event %s: %w", id, err)
	}
	return uint64(seq), nil //nolint:gosec // a stream sequence
}

// RecoverFailed implements delivery.Store.
func (s *Store) RecoverFailed(ctx context.Context, endpointID string, since, at time.Time) (int, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE deliveries SET state = 'pending', next_attempt_at = ?1, round_start = attempts,
		updated_at = ?1 WHERE endpoint_id = ?2 AND state = 'failed' AND created_at >= ?3`, micros(at), endpointID, micros(since))
	if err != nil {
		return 0, fmt.Errorf("recover deliveries of %s: %w", endpointID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("recover deliveries of %s: %w", endpointID, err)
	}
	return int(n), nil
}

const backlogSQL = `SELECT endpoint_id, count(*) FROM deliveries WHERE state = 'pending' GROUP BY endpoint_id`

// Backlog implements delivery.Store.
func (s *Store) Backlog(ctx context.Context) (map[string]int64, error) {
	rows, err := s.query(ctx, nil, backlogSQL)
	if err != nil {
		return nil, fmt.Errorf("select backlog: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var id string
		var n int64
		if err := rows.Scan(&id, &n); err != nil {
			return nil, fmt.Errorf("select backlog: %w", err)
		}
		out[id] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("select backlog: %w", err)
	}
	return out, nil
}

const deliveryCols = `d.id, d.endpoint_id, d.event_id, d.event_name, d.subject, d.seq, d.state, d.attempts,
	d.last_status_code, d.last_error, d.next_attempt_at, d.created_at, d.updated_at, d.directory_id, d.round_start`

func scanDelivery(row scanner, extra ...any) (delivery.Delivery, error) {
	var d delivery.Delivery
	var seq, next, created, updated int64
	var state string
	dest := append([]any{&d.ID, &d.EndpointID, &d.EventID, &d.EventName, &d.Subject, &seq, &state, &d.Attempts,
		&d.LastStatusCode, &d.LastError, &next, &created, &updated, &d.DirectoryID, &d.RoundStart}, extra...)
	if err := row.Scan(dest...); err != nil {
		return delivery.Delivery{}, err
	}
	d.Seq = uint64(seq) //nolint:gosec // a stream sequence
	d.State = delivery.DeliveryState(state)
	d.NextAttemptAt, d.CreatedAt, d.UpdatedAt = fromMicros(next), fromMicros(created), fromMicros(updated)
	return d, nil
}

// claimSQL selects the deliveries to lease; see delivery.Store.ClaimDue for
// the rules. It runs inside the same immediate transaction as the UPDATE
// that leases them, so no other writer can interleave.
const claimSQL = `
WITH held AS (
    SELECT key AS endpoint_id, value AS n FROM json_each(?4)
), open AS (
    -- Endpoints with a free slot. A saturated endpoint (say, one whose
    -- requests all hang) is left out before any of its backlog is looked
    -- at, so its backlog does not slow claims for everyone else.
    SELECT e.id, e.ordering, ?3 - coalesce(h.n, 0) AS free
    FROM endpoints e LEFT JOIN held h ON h.endpoint_id = e.id
    WHERE e.state = 'enabled' AND coalesce(h.n, 0) < ?3
), cand AS (
    -- Per open endpoint, only its first few due deliveries are looked at
    -- (index deliveries_endpoint_due, stopping at the LIMIT), so a claim
    -- costs the same whatever the backlog.
    SELECT d.id, d.endpoint_id, d.next_attempt_at, d.seq, o.free
    -- CROSS JOIN makes SQLite drive the scan from the open endpoints.
    FROM open o
    CROSS JOIN deliveries d
    WHERE d.id IN (
        SELECT x.id FROM deliveries x
        WHERE x.endpoint_id = o.id AND x.state = 'pending' AND x.next_attempt_at <= ?1
          AND (x.claimed_until IS NULL OR x.claimed_until <= ?1)
          AND NOT EXISTS (
              SELECT 1 FROM deliveries p
              WHERE p.endpoint_id = x.endpoint_id AND p.subject = x.subject
                AND p.state = 'pending' AND p.seq < x.seq)
          AND (o.ordering <> 'directory' OR NOT EXISTS (
              SELECT 1 FROM deliveries p
              WHERE p.endpoint_id = x.endpoint_id AND p.directory_id = x.directory_id
                AND p.state = 'pending' AND p.seq < x.seq))
        -- Exactly the order of deliveries_endpoint_due (seq is unique per
        -- endpoint): the scan streams and stops at the LIMIT, where a
        -- sort would read the endpoint's whole due backlog first.
        ORDER BY x.next_attempt_at, x.seq
        LIMIT ?3)
), ranked AS (
    SELECT id, next_attempt_at, seq, free,
        row_number() OVER (PARTITION BY endpoint_id ORDER BY next_attempt_at, seq, id) AS slot
    FROM cand
), picked AS (
    SELECT id FROM ranked WHERE slot <= free ORDER BY next_attempt_at, seq, id LIMIT ?2
)
SELECT ` + deliveryCols + `, e.url, e.secret,
    CASE WHEN e.previous_secret_expires_at > ?1 THEN e.previous_secret ELSE '' END,
    e.retry_schedule, e.failing_since, ev.body, ev.traceparent
FROM picked
JOIN deliveries d ON d.id = picked.id
JOIN endpoints e ON e.id = d.endpoint_id
JOIN events ev ON ev.id = d.event_id
ORDER BY d.next_attempt_at, d.seq, d.id`

// leaseSQL leases the deliveries whose ids are in the JSON array ?2: one
// prepared statement whatever the number of ids.
const leaseSQL = `UPDATE deliveries SET claimed_until = ?1 WHERE id IN (SELECT value FROM json_each(?2))`

// ClaimDue implements delivery.Store.
func (s *Store) ClaimDue(ctx context.Context, now, leaseUntil time.Time, limit, perEndpoint int, held map[string]int) ([]delivery.Claim, error) {
	if held == nil {
		held = map[string]int{}
	}
	heldJSON, err := json.Marshal(held)
	if err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", err)
	}
	var claims []delivery.Claim
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		rows, err := s.query(ctx, tx, claimSQL, micros(now), limit, perEndpoint, string(heldJSON))
		if err != nil {
			return fmt.Errorf("select due: %w", err)
		}
		for rows.Next() {
			var c delivery.Claim
			var schedule string
			var failing sql.NullInt64
			d, err := scanDelivery(rows, &c.URL, &c.Secret, &c.PreviousSecret, &schedule, &failing, &c.Body, &c.TraceParent)
			if err == nil {
				c.Schedule, err = decodeSchedule(schedule)
			}
			if err != nil {
				_ = rows.Close()
				return fmt.Errorf("select due: %w", err)
			}
			c.Delivery, c.FailingSince = d, fromNullMicros(failing)
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
		ids := make([]string, 0, len(claims))
		for _, c := range claims {
			ids = append(ids, c.Delivery.ID)
		}
		list, err := json.Marshal(ids)
		if err != nil {
			return fmt.Errorf("lease: %w", err)
		}
		if _, err := s.exec(ctx, tx, leaseSQL, micros(leaseUntil), string(list)); err != nil {
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
	recorded, err := s.FinishAttempts(ctx, []delivery.Finished{{Attempt: a, Outcome: o}})
	if err != nil {
		return err
	}
	if !recorded[0] {
		return fmt.Errorf("finish attempt %d of %s: delivery %s: %w", a.Number, a.DeliveryID, a.DeliveryID, delivery.ErrNotFound)
	}
	return nil
}

const (
	// ?8 is the attempt's lease, NULL to record unconditionally: the
	// state, next attempt and lease change only while the delivery still
	// holds it (delivery.Finished.Lease).
	finishDeliverySQL = `UPDATE deliveries SET
			state = CASE WHEN ?8 IS NULL OR claimed_until = ?8 THEN ?2 ELSE state END,
			attempts = max(attempts, ?3),
			last_status_code = ?4, last_error = ?5,
			next_attempt_at = CASE WHEN (?8 IS NULL OR claimed_until = ?8) AND ?2 = 'pending' THEN ?6 ELSE next_attempt_at END,
			claimed_until = CASE WHEN ?8 IS NULL OR claimed_until = ?8 THEN NULL ELSE claimed_until END,
			updated_at = ?7
		WHERE id = ?1 RETURNING endpoint_id`
	// A second recording of the same attempt number (a lease that expired
	// under a very slow attempt) keeps the first.
	insertAttemptSQL = `INSERT INTO attempts (delivery_id, number, started_at, status_code, error, latency_us, response_body)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (delivery_id, number) DO NOTHING`
	// Only a change of health writes the endpoint row, so the common case
	// (healthy stays healthy) adds no write to it.
	healthySQL = `UPDATE endpoints SET failing_since = NULL WHERE id = ? AND failing_since IS NOT NULL`
	failingSQL = `UPDATE endpoints SET failing_since = ? WHERE id = ? AND failing_since IS NULL`
	disableSQL = `UPDATE endpoints SET state = 'disabled', disabled_reason = ?,
		disabled_seq = (SELECT coalesce(max(seq), 0) FROM events), updated_at = ? WHERE id = ? AND state = 'enabled'`
)

// FinishAttempts implements delivery.Store.
func (s *Store) FinishAttempts(ctx context.Context, fs []delivery.Finished) ([]bool, error) {
	recorded := make([]bool, len(fs))
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for i, f := range fs {
			ok, err := s.finish(ctx, tx, f)
			if err != nil {
				return fmt.Errorf("finish attempt %d of %s: %w", f.Attempt.Number, f.Attempt.DeliveryID, err)
			}
			recorded[i] = ok
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return recorded, nil
}

// finish records one attempt in tx; false when the delivery is gone.
func (s *Store) finish(ctx context.Context, tx *sql.Tx, f delivery.Finished) (bool, error) {
	a, o := f.Attempt, f.Outcome
	now := micros(a.StartedAt.Add(a.Latency))
	var lease sql.NullInt64
	if !f.Lease.IsZero() {
		lease = sql.NullInt64{Int64: micros(f.Lease), Valid: true}
	}
	var endpointID string
	err := s.queryRow(ctx, tx, finishDeliverySQL,
		a.DeliveryID, string(o.State), a.Number, a.StatusCode, a.Error, micros(o.NextAttemptAt), now, lease).Scan(&endpointID)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("update delivery: %w", err)
	}
	if _, err := s.exec(ctx, tx, insertAttemptSQL,
		a.DeliveryID, a.Number, micros(a.StartedAt), a.StatusCode, a.Error, a.Latency.Microseconds(), a.ResponseBody); err != nil {
		return false, fmt.Errorf("insert attempt: %w", err)
	}
	if o.State == delivery.DeliverySucceeded {
		_, err = s.exec(ctx, tx, healthySQL, endpointID)
	} else {
		_, err = s.exec(ctx, tx, failingSQL, micros(a.StartedAt), endpointID)
	}
	if err != nil {
		return false, fmt.Errorf("update endpoint health: %w", err)
	}
	if o.DisableEndpoint {
		if _, err := s.exec(ctx, tx, disableSQL, o.DisableReason, now, endpointID); err != nil {
			return false, fmt.Errorf("disable endpoint: %w", err)
		}
	}
	return true, nil
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
func (s *Store) ListDeliveries(ctx context.Context, endpointID string, f delivery.DeliveryFilter, q delivery.ListQuery) ([]delivery.Delivery, error) {
	where := `d.endpoint_id = ?1 AND (?4 = '' OR d.state = ?4) AND (?5 = '' OR d.event_name = ?5)
		AND (?6 = 0 OR d.created_at >= ?6) AND (?7 = 0 OR d.created_at < ?7)`
	query := `SELECT ` + deliveryCols + ` FROM deliveries d WHERE ` + where + ` AND (?2 = '' OR d.id > ?2) ORDER BY d.id LIMIT ?3`
	if q.Desc {
		query = `SELECT ` + deliveryCols + ` FROM deliveries d WHERE ` + where + ` AND (?2 = '' OR d.id < ?2) ORDER BY d.id DESC LIMIT ?3`
	}
	var after, before int64
	if !f.CreatedAfter.IsZero() {
		after = micros(f.CreatedAfter)
	}
	if !f.CreatedBefore.IsZero() {
		before = micros(f.CreatedBefore)
	}
	rows, err := s.db.QueryContext(ctx, query, endpointID, q.Cursor, q.Limit, string(f.State), f.EventName, after, before)
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
