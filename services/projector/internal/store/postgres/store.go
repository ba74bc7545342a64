// Package postgres is the production read-model store: PostgreSQL through
// pgx v5 (pgxpool, native transactions).
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/dsync-dev/dsync/pkg/postgres"
	"github.com/dsync-dev/dsync/pkg/workos"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
	"github.com/dsync-dev/dsync/services/projector/internal/readmodel"
)

// Component is the migration component of the read model.
const Component = "projector"

//go:embed migrations/*.up.sql
var migrationFiles embed.FS

// Store is the PostgreSQL read model.
type Store struct {
	pool  *pgxpool.Pool
	stats *postgres.StatsKeeper
}

var _ readmodel.Store = (*Store)(nil)

// Open connects to the database at url and applies the read model's
// migrations. The caller closes the Store.
func Open(ctx context.Context, url string) (*Store, error) {
	pool, err := postgres.Open(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("open read model: %w", err)
	}
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("open read model migrations: %w", err)
	}
	if err := postgres.Migrate(ctx, pool, Component, sub); err != nil {
		pool.Close()
		return nil, fmt.Errorf("migrate read model: %w", err)
	}
	s := &Store{pool: pool, stats: postgres.NewStatsKeeper(pool, nil, statsTables...)}
	if err := s.backfill(ctx); err != nil {
		s.stats.Close()
		pool.Close()
		return nil, err
	}
	return s, nil
}

// statsTables are the tables whose statistics the read model's prepared
// statements are planned from (see postgres.StatsKeeper).
var statsTables = []string{"users", "user_emails", "groups", "memberships", "projector_events", "directory_counts"}

// Close stops background maintenance and closes the pool.
func (s *Store) Close() error {
	s.stats.Close()
	s.pool.Close()
	return nil
}

// Update implements readmodel.Store. The Tx queues its writes and sends
// them in pipelined batches (one round trip for many statements), so a
// transaction's cost is the server's work, not network latency.
func (s *Store) Update(ctx context.Context, fn func(context.Context, readmodel.Tx) error) error {
	t := &Tx{}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		t.tx = tx
		if err := fn(ctx, t); err != nil {
			return err
		}
		return t.flush(ctx)
	})
	if err == nil {
		s.stats.Wrote(t.written)
	}
	return err
}

// Checkpoint implements readmodel.Store.
func (s *Store) Checkpoint(ctx context.Context) (uint64, error) {
	var seq int64
	if err := s.pool.QueryRow(ctx, `SELECT seq FROM projector_checkpoint WHERE id = 1`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("read checkpoint: %w", err)
	}
	return uint64(seq), nil
}

// GetOrganization implements readmodel.Store.
func (s *Store) GetOrganization(ctx context.Context, id string) (*dsyncv1.Organization, error) {
	return get(ctx, s.pool, &dsyncv1.Organization{}, `SELECT data FROM organizations WHERE id = $1`, id)
}

// ListOrganizations implements readmodel.Store.
func (s *Store) ListOrganizations(ctx context.Context, r readmodel.Range) ([]*dsyncv1.Organization, error) {
	return list(ctx, s.pool, newOrganization, `SELECT data FROM organizations WHERE true`, "id", nil, r)
}

// GetDirectory implements readmodel.Store.
func (s *Store) GetDirectory(ctx context.Context, id string) (*dsyncv1.Directory, error) {
	return get(ctx, s.pool, &dsyncv1.Directory{}, `SELECT data FROM directories WHERE id = $1`, id)
}

// ListDirectories implements readmodel.Store.
func (s *Store) ListDirectories(ctx context.Context, f readmodel.DirectoryFilter, r readmodel.Range) ([]*dsyncv1.Directory, error) {
	q := `SELECT data FROM directories WHERE true`
	var args []any
	if f.OrganizationID != "" {
		args = append(args, f.OrganizationID)
		q += ` AND organization_id = $` + strconv.Itoa(len(args))
	}
	if f.Search != "" {
		// strpos rather than LIKE: the search text needs no escaping.
		args = append(args, text(strings.ToLower(f.Search)))
		q += ` AND strpos(name_lower, $` + strconv.Itoa(len(args)) + `) > 0`
	}
	return list(ctx, s.pool, newDirectory, q, "id", args, r)
}

// GetUser implements readmodel.Store.
func (s *Store) GetUser(ctx context.Context, id string) (*dsyncv1.User, error) {
	return get(ctx, s.pool, &dsyncv1.User{}, `SELECT data FROM users WHERE id = $1`, id)
}

// ListUsers implements readmodel.Store.
func (s *Store) ListUsers(ctx context.Context, directoryID string, r readmodel.Range) ([]*dsyncv1.User, error) {
	return list(ctx, s.pool, newUser, `SELECT data FROM users WHERE directory_id = $1`, "id", []any{directoryID}, r)
}

// GetGroup implements readmodel.Store.
func (s *Store) GetGroup(ctx context.Context, id string) (*dsyncv1.GroupWithCount, error) {
	gs, err := listGroups(ctx, s.pool, `SELECT g.data, g.member_count, g.version FROM groups g WHERE g.id = $1`, "g.id", []any{id}, readmodel.Range{Limit: 1})
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", id, err)
	}
	if len(gs) == 0 {
		return nil, fmt.Errorf("get %s: %w", id, readmodel.ErrNotFound)
	}
	return gs[0], nil
}

// ListGroups implements readmodel.Store.
func (s *Store) ListGroups(ctx context.Context, directoryID string, r readmodel.Range) ([]*dsyncv1.GroupWithCount, error) {
	return listGroups(ctx, s.pool, `SELECT g.data, g.member_count, g.version FROM groups g WHERE g.directory_id = $1`, "g.id", []any{directoryID}, r)
}

// ListUserGroups implements readmodel.Store.
func (s *Store) ListUserGroups(ctx context.Context, userID string, r readmodel.Range) ([]*dsyncv1.GroupWithCount, error) {
	return listGroups(ctx, s.pool,
		`SELECT g.data, g.member_count, g.version FROM memberships m JOIN groups g ON g.id = m.group_id WHERE m.user_id = $1`,
		"m.group_id", []any{userID}, r)
}

// GroupsOfUsers implements readmodel.Store: one index scan of
// memberships_user_id per user, joined to groups.
func (s *Store) GroupsOfUsers(ctx context.Context, userIDs []string) (map[string][]*dsyncv1.GroupWithCount, error) {
	if len(userIDs) == 0 {
		return map[string][]*dsyncv1.GroupWithCount{}, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT m.user_id, g.id, g.data, g.member_count, g.version
		FROM memberships m JOIN groups g ON g.id = m.group_id
		WHERE m.user_id = ANY($1) ORDER BY m.user_id, m.group_id`, userIDs)
	if err != nil {
		return nil, fmt.Errorf("groups of users: %w", err)
	}
	defer rows.Close()
	c := readmodel.NewGroupsByUser()
	for rows.Next() {
		var (
			userID, groupID string
			data            []byte
			n, vers         int64
		)
		if err := rows.Scan(&userID, &groupID, &data, &n, &vers); err != nil {
			return nil, fmt.Errorf("groups of users: %w", err)
		}
		if err := c.Add(userID, groupID, data, n, uint64(vers)); err != nil {
			return nil, fmt.Errorf("groups of users: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("groups of users: %w", err)
	}
	return c.Result(), nil
}

// ListGroupUsers implements readmodel.Store.
func (s *Store) ListGroupUsers(ctx context.Context, groupID string, r readmodel.Range) ([]*dsyncv1.User, error) {
	return list(ctx, s.pool, newUser,
		`SELECT u.data FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.group_id = $1`,
		"m.user_id", []any{groupID}, r)
}

// GroupMemberIDs implements readmodel.Store.
func (s *Store) GroupMemberIDs(ctx context.Context, groupID string) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT user_id FROM memberships WHERE group_id = $1 ORDER BY user_id`, groupID)
	if err != nil {
		return nil, fmt.Errorf("list members of %s: %w", groupID, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list members of %s: %w", groupID, err)
	}
	return ids, nil
}

// FindUsers implements readmodel.Store.
func (s *Store) FindUsers(ctx context.Context, directoryID string, k readmodel.Key, r readmodel.Range) ([]*dsyncv1.User, error) {
	var col, v string
	switch k.Field {
	case readmodel.KeyID:
		col, v = "id", k.Value
	case readmodel.KeyIdpID:
		col, v = "idp_id", text(k.Value)
	case readmodel.KeyUserName:
		col, v = "user_name_lower", text(strings.ToLower(k.Value))
	case readmodel.KeyEmail:
		return list(ctx, s.pool, newUser, `SELECT data FROM users WHERE directory_id = $1 AND id IN
			(SELECT user_id FROM user_emails WHERE directory_id = $1 AND email_lower = $2)`,
			"id", []any{directoryID, text(strings.ToLower(k.Value))}, r)
	default:
		return nil, fmt.Errorf("find users: unsupported key %d", k.Field)
	}
	return list(ctx, s.pool, newUser, `SELECT data FROM users WHERE directory_id = $1 AND `+col+` = $2`, "id", []any{directoryID, v}, r)
}

// FindGroups implements readmodel.Store.
func (s *Store) FindGroups(ctx context.Context, directoryID string, k readmodel.Key, r readmodel.Range) ([]*dsyncv1.GroupWithCount, error) {
	sel := `SELECT g.data, g.member_count, g.version FROM groups g WHERE g.directory_id = $1 AND `
	idCol := "g.id"
	switch k.Field {
	case readmodel.KeyID:
		sel += `g.id = $2`
	case readmodel.KeyIdpID:
		sel += `g.idp_id = $2`
	case readmodel.KeyGroupName:
		sel += `g.name_lower = $2`
		k.Value = strings.ToLower(k.Value)
	case readmodel.KeyMember:
		sel = `SELECT g.data, g.member_count, g.version FROM memberships m JOIN groups g ON g.id = m.group_id
			WHERE m.directory_id = $1 AND m.user_id = $2`
		idCol = "m.group_id"
	default:
		return nil, fmt.Errorf("find groups: unsupported key %d", k.Field)
	}
	return listGroups(ctx, s.pool, sel, idCol, []any{directoryID, text(k.Value)}, r)
}

// CountUsers implements readmodel.Store. It reads the count the Tx keeps
// in directory_counts (migration 0004).
func (s *Store) CountUsers(ctx context.Context, directoryID string) (int64, error) {
	return count(ctx, s.pool, `SELECT coalesce((SELECT users FROM directory_counts WHERE directory_id = $1), 0)`, directoryID)
}

// CountGroups implements readmodel.Store, like CountUsers.
func (s *Store) CountGroups(ctx context.Context, directoryID string) (int64, error) {
	return count(ctx, s.pool, `SELECT coalesce((SELECT groups FROM directory_counts WHERE directory_id = $1), 0)`, directoryID)
}

func count(ctx context.Context, q querier, sql string, args ...any) (int64, error) {
	var n int64
	if err := q.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count: %w", err)
	}
	return n, nil
}

// ListEvents implements readmodel.Store.
func (s *Store) ListEvents(ctx context.Context, f readmodel.EventFilter, r readmodel.SeqRange) ([]readmodel.EventRecord, error) {
	var (
		b    strings.Builder
		args []any
	)
	b.WriteString(`SELECT seq, data FROM projector_events WHERE true`)
	cond := func(sql string, v any) {
		args = append(args, v)
		fmt.Fprintf(&b, sql, len(args))
	}
	if len(f.Types) > 0 {
		cond(` AND type = ANY($%d)`, f.Types)
	}
	if f.DirectoryID != "" {
		cond(` AND directory_id = $%d`, f.DirectoryID)
	}
	if f.OrganizationID != "" {
		cond(` AND organization_id = $%d`, f.OrganizationID)
	}
	if f.UserID != "" {
		cond(` AND user_id = $%d`, f.UserID)
	}
	if f.GroupID != "" {
		cond(` AND group_id = $%d`, f.GroupID)
	}
	if !f.OccurredFrom.IsZero() {
		cond(` AND occurred_at >= $%d`, f.OccurredFrom)
	}
	if !f.OccurredTo.IsZero() {
		cond(` AND occurred_at < $%d`, f.OccurredTo)
	}
	if r.After > 0 {
		cond(` AND seq > $%d`, int64(r.After))
	}
	if r.Before > 0 {
		cond(` AND seq < $%d`, int64(r.Before))
	}
	dir := "ASC"
	if r.Desc {
		dir = "DESC"
	}
	b.WriteString(` ORDER BY seq ` + dir)
	cond(` LIMIT $%d`, r.Limit)
	rows, err := s.pool.Query(ctx, b.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (readmodel.EventRecord, error) {
		var (
			seq  int64
			data []byte
		)
		if err := row.Scan(&seq, &data); err != nil {
			return readmodel.EventRecord{}, err
		}
		ev := &dsyncv1.Event{}
		if err := proto.Unmarshal(data, ev); err != nil {
			return readmodel.EventRecord{}, fmt.Errorf("decode event %d: %w", seq, err)
		}
		return readmodel.EventRecord{Seq: uint64(seq), Event: ev}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	return out, nil
}

// EventSeq implements readmodel.Store.
func (s *Store) EventSeq(ctx context.Context, eventID string) (uint64, error) {
	var seq int64
	err := s.pool.QueryRow(ctx, `SELECT seq FROM projector_events WHERE id = $1`, text(eventID)).Scan(&seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("event %s: %w", eventID, readmodel.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("event %s: %w", eventID, err)
	}
	return uint64(seq), nil
}

// PruneEvents implements readmodel.Store.
func (s *Store) PruneEvents(ctx context.Context, before time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM projector_events WHERE occurred_at < $1`, before)
	if err != nil {
		return 0, fmt.Errorf("prune events: %w", err)
	}
	return tag.RowsAffected(), nil
}

// Skips implements readmodel.Store.
func (s *Store) Skips(ctx context.Context) ([]readmodel.Skip, error) {
	rows, err := s.pool.Query(ctx, `SELECT seq, subject, reason FROM projector_skips ORDER BY seq`)
	if err != nil {
		return nil, fmt.Errorf("list skips: %w", err)
	}
	skips, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (readmodel.Skip, error) {
		var (
			sk  readmodel.Skip
			seq int64
		)
		err := row.Scan(&seq, &sk.Subject, &sk.Reason)
		sk.Seq = uint64(seq)
		return sk, err
	})
	if err != nil {
		return nil, fmt.Errorf("list skips: %w", err)
	}
	return skips, nil
}

// Tx is one read-model transaction. Writes are queued and sent in one
// pipelined batch when the transaction's own reads need them, when the
// queue is long, and before commit; an error of any of them fails the
// transaction, naming the write.
type Tx struct {
	tx    pgx.Tx
	batch pgx.Batch
	// what describes each queued write, for errors.
	what []string
	// events are the recorded events not yet sent: one multi-row insert
	// per flush, as they depend on no other row.
	events eventRows
	// users and members are the current run of consecutive user upserts
	// or membership additions, written as one statement each when the run
	// ends: a bulk import is a long run of either.
	users   userRun
	members memberRun
	// written counts the events recorded, a measure of the rows written
	// for the StatsKeeper.
	written int
}

// userRun is a run of user upserts by column. A user upserted twice in a
// run keeps its last state (upserts carry the full state), as one
// statement cannot change a row twice.
type userRun struct {
	at                                                     map[string]int
	id, dir, org, idp, name, nameLower, email, first, last []string
	state, emailLower, displayLower                        []string
	created, updated                                       []*time.Time
	data                                                   [][]byte
	version                                                []int64
	emailUser, emailDir, emailValue                        []string
}

// memberRun is a run of membership additions.
type memberRun struct {
	dir, group, user []string
}

// eventRows are projector_events rows by column.
type eventRows struct {
	seq                                []int64
	id, dir, org, typ, userID, groupID []string
	occurred                           []*time.Time
	data                               [][]byte
}

// maxQueued bounds the writes queued before a flush, and so the memory a
// large transaction holds.
const maxQueued = 4096

// queue adds a write to the batch.
func (t *Tx) queue(ctx context.Context, what, sql string, args ...any) error {
	t.endRuns()
	t.batch.Queue(sql, args...)
	t.what = append(t.what, what)
	if len(t.what) >= maxQueued {
		return t.flush(ctx)
	}
	return nil
}

// flush sends the queued writes and reads their results in order.
func (t *Tx) flush(ctx context.Context) error {
	t.endRuns()
	if e := t.events; len(e.seq) > 0 {
		t.batch.Queue(`INSERT INTO projector_events (seq, id, directory_id, organization_id, type, occurred_at, data, user_id, group_id)
			SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::bytea[], $8::text[], $9::text[])
			ON CONFLICT DO NOTHING`, e.seq, e.id, e.dir, e.org, e.typ, e.occurred, e.data, e.userID, e.groupID)
		t.what = append(t.what, fmt.Sprintf("record events %d to %d", e.seq[0], e.seq[len(e.seq)-1]))
		t.written += len(e.seq)
		t.events = eventRows{}
	}
	if len(t.what) == 0 {
		return nil
	}
	// The results read the batch as they go: hand it over whole.
	batch, what := t.batch, t.what
	t.batch, t.what = pgx.Batch{}, nil
	br := t.tx.SendBatch(ctx, &batch)
	for _, w := range what {
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			return fmt.Errorf("%s: %w", w, err)
		}
	}
	if err := br.Close(); err != nil {
		return fmt.Errorf("write batch: %w", err)
	}
	return nil
}

var _ readmodel.Tx = (*Tx)(nil)

// Checkpoint implements readmodel.Tx. FOR UPDATE serializes concurrent
// projectors on one database: the second waits, then sees the first's
// checkpoint and skips what it applied.
func (t *Tx) Checkpoint(ctx context.Context) (uint64, error) {
	if err := t.flush(ctx); err != nil {
		return 0, err
	}
	var seq int64
	if err := t.tx.QueryRow(ctx, `SELECT seq FROM projector_checkpoint WHERE id = 1 FOR UPDATE`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("read checkpoint: %w", err)
	}
	return uint64(seq), nil
}

// SetCheckpoint implements readmodel.Tx.
func (t *Tx) SetCheckpoint(ctx context.Context, seq uint64) error {
	return t.queue(ctx, "set checkpoint", `UPDATE projector_checkpoint SET seq = $1 WHERE id = 1`, int64(seq))
}

// RecordSkip implements readmodel.Tx.
func (t *Tx) RecordSkip(ctx context.Context, sk readmodel.Skip) error {
	return t.queue(ctx, fmt.Sprintf("record skip %d", sk.Seq), `INSERT INTO projector_skips (seq, subject, reason) VALUES ($1, $2, $3)
		ON CONFLICT (seq) DO UPDATE SET subject = EXCLUDED.subject, reason = EXCLUDED.reason`,
		int64(sk.Seq), text(sk.Subject), text(sk.Reason))
}

// UpsertOrganization implements readmodel.Tx.
func (t *Tx) UpsertOrganization(ctx context.Context, o *dsyncv1.Organization) error {
	data, err := marshal(o)
	if err != nil {
		return err
	}
	domains := make([]string, 0, len(o.GetDomains()))
	for _, d := range o.GetDomains() {
		domains = append(domains, text(d))
	}
	return t.queue(ctx, "upsert organization "+o.GetId(), `INSERT INTO organizations (id, name, domains, created_at, updated_at, data)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, domains = EXCLUDED.domains,
			created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at, data = EXCLUDED.data`,
		o.GetId(), text(o.GetName()), domains, ts(o.GetCreatedAt()), ts(o.GetUpdatedAt()), data)
}

// UpsertDirectory implements readmodel.Tx.
func (t *Tx) UpsertDirectory(ctx context.Context, d *dsyncv1.Directory) error {
	data, err := marshal(d)
	if err != nil {
		return err
	}
	return t.queue(ctx, "upsert directory "+d.GetId(), `INSERT INTO directories (id, organization_id, name, name_lower, type, state, domain,
			on_deactivate, created_at, updated_at, data)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
		ON CONFLICT (id) DO UPDATE SET organization_id = EXCLUDED.organization_id, name = EXCLUDED.name,
			name_lower = EXCLUDED.name_lower, type = EXCLUDED.type, state = EXCLUDED.state,
			domain = EXCLUDED.domain, on_deactivate = EXCLUDED.on_deactivate,
			created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at, data = EXCLUDED.data`,
		d.GetId(), text(d.GetOrganizationId()), text(d.GetName()), text(strings.ToLower(d.GetName())), text(d.GetType()),
		d.GetState().String(), text(d.GetDomain()), d.GetOnDeactivate().String(),
		ts(d.GetCreatedAt()), ts(d.GetUpdatedAt()), data)
}

// DeleteDirectory implements readmodel.Tx.
func (t *Tx) DeleteDirectory(ctx context.Context, id string) error {
	for _, q := range []string{
		`DELETE FROM memberships WHERE directory_id = $1`,
		`DELETE FROM user_emails WHERE directory_id = $1`,
		`DELETE FROM users WHERE directory_id = $1`,
		`DELETE FROM groups WHERE directory_id = $1`,
		`DELETE FROM directory_counts WHERE directory_id = $1`,
		`DELETE FROM directories WHERE id = $1`,
	} {
		if err := t.queue(ctx, "delete directory "+id, q, id); err != nil {
			return err
		}
	}
	return nil
}

// UpsertUser implements readmodel.Tx. It joins the current run of user
// upserts (endRuns writes it).
func (t *Tx) UpsertUser(ctx context.Context, u *dsyncv1.User, version uint64) error {
	data, err := marshal(u)
	if err != nil {
		return err
	}
	t.endMembers()
	r := &t.users
	if r.at == nil {
		r.at = map[string]int{}
	}
	if _, dup := r.at[u.GetId()]; dup {
		// End the run here: one statement cannot change a row twice, and
		// the later state must win.
		t.endUsers()
		r.at = map[string]int{}
	}
	r.at[u.GetId()] = len(r.id)
	r.id = append(r.id, u.GetId())
	r.dir = append(r.dir, u.GetDirectoryId())
	r.org = append(r.org, text(u.GetOrganizationId()))
	r.idp = append(r.idp, text(u.GetIdpId()))
	r.name = append(r.name, text(u.GetUserName()))
	r.nameLower = append(r.nameLower, text(strings.ToLower(u.GetUserName())))
	r.email = append(r.email, text(u.GetEmail()))
	r.first = append(r.first, text(u.GetFirstName()))
	r.last = append(r.last, text(u.GetLastName()))
	r.state = append(r.state, u.GetState().String())
	r.created = append(r.created, ts(u.GetCreatedAt()))
	r.updated = append(r.updated, ts(u.GetUpdatedAt()))
	r.data = append(r.data, data)
	r.emailLower = append(r.emailLower, text(strings.ToLower(u.GetEmail())))
	r.displayLower = append(r.displayLower, text(strings.ToLower(u.GetDisplayName())))
	r.version = append(r.version, int64(version))
	for _, e := range readmodel.UserEmails(u) {
		r.emailUser = append(r.emailUser, u.GetId())
		r.emailDir = append(r.emailDir, u.GetDirectoryId())
		r.emailValue = append(r.emailValue, text(e))
	}
	if len(r.id) >= maxQueued {
		return t.flush(ctx)
	}
	return nil
}

// endRuns queues the statements of the current runs.
func (t *Tx) endRuns() {
	t.endUsers()
	t.endMembers()
}

// endUsers queues the current run of user upserts: the rows, then their
// emails (the old ones deleted, the current ones inserted).
func (t *Tx) endUsers() {
	r := t.users
	if len(r.id) == 0 {
		return
	}
	t.users = userRun{}
	what := fmt.Sprintf("upsert users %s…%s", r.id[0], r.id[len(r.id)-1])
	// The users inserted (not updated: xmax = 0) are added to their
	// directory's count in the same statement. A user's directory never
	// changes (its id is minted for one directory), so updates keep counts.
	t.batch.Queue(`WITH up AS (INSERT INTO users (id, directory_id, organization_id, idp_id, user_name,
			user_name_lower, email, first_name, last_name, state, created_at, updated_at, data, email_lower,
			display_name_lower, version)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
			$8::text[], $9::text[], $10::text[], $11::timestamptz[], $12::timestamptz[], $13::bytea[], $14::text[],
			$15::text[], $16::bigint[])
		ON CONFLICT (id) DO UPDATE SET directory_id = EXCLUDED.directory_id,
			organization_id = EXCLUDED.organization_id, idp_id = EXCLUDED.idp_id,
			user_name = EXCLUDED.user_name, user_name_lower = EXCLUDED.user_name_lower,
			email = EXCLUDED.email, first_name = EXCLUDED.first_name, last_name = EXCLUDED.last_name,
			state = EXCLUDED.state, created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at,
			data = EXCLUDED.data, email_lower = EXCLUDED.email_lower,
			display_name_lower = EXCLUDED.display_name_lower, version = EXCLUDED.version
		RETURNING directory_id, xmax = 0 AS inserted)
		INSERT INTO directory_counts (directory_id, users)
		SELECT directory_id, count(*) FROM up WHERE inserted GROUP BY directory_id
		ON CONFLICT (directory_id) DO UPDATE SET users = directory_counts.users + EXCLUDED.users`,
		r.id, r.dir, r.org, r.idp, r.name, r.nameLower, r.email, r.first, r.last, r.state, r.created, r.updated,
		r.data, r.emailLower, r.displayLower, r.version)
	t.batch.Queue(`DELETE FROM user_emails WHERE user_id = ANY($1)`, r.id)
	t.batch.Queue(`INSERT INTO user_emails (user_id, directory_id, email_lower)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) ON CONFLICT DO NOTHING`, r.emailUser, r.emailDir, r.emailValue)
	t.what = append(t.what, what, what+": emails", what+": emails")
}

// endMembers queues the current run of membership additions: the edges,
// then the counts of the groups that gained one (an edge added twice, or
// present already, is skipped by ON CONFLICT and not counted).
func (t *Tx) endMembers() {
	r := t.members
	if len(r.group) == 0 {
		return
	}
	t.members = memberRun{}
	t.batch.Queue(`WITH added AS (INSERT INTO memberships (directory_id, group_id, user_id)
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
			ON CONFLICT (group_id, user_id) DO NOTHING RETURNING group_id)
		UPDATE groups g SET member_count = g.member_count + a.n
		FROM (SELECT group_id, count(*) AS n FROM added GROUP BY group_id) a WHERE g.id = a.group_id`,
		r.dir, r.group, r.user)
	t.what = append(t.what, fmt.Sprintf("add %d members", len(r.group)))
}

// setEmails makes user_emails hold exactly u's emails: it removes the ones
// u no longer has and adds the new ones, leaving the rest untouched.
func (t *Tx) setEmails(ctx context.Context, u *dsyncv1.User) error {
	emails := readmodel.UserEmails(u)
	for i, e := range emails {
		emails[i] = text(e)
	}
	what := "index emails of user " + u.GetId()
	if err := t.queue(ctx, what, `DELETE FROM user_emails WHERE user_id = $1 AND NOT (email_lower = ANY($2))`, u.GetId(), emails); err != nil {
		return err
	}
	if len(emails) == 0 {
		return nil
	}
	return t.queue(ctx, what, `INSERT INTO user_emails (user_id, directory_id, email_lower)
		SELECT $1, $2, e FROM unnest($3::text[]) AS e
		ON CONFLICT (user_id, email_lower) DO UPDATE SET directory_id = EXCLUDED.directory_id
			WHERE user_emails.directory_id <> EXCLUDED.directory_id`, u.GetId(), u.GetDirectoryId(), emails)
}

// DeleteUser implements readmodel.Tx.
func (t *Tx) DeleteUser(ctx context.Context, id string) error {
	what := "delete user " + id
	// One statement removes the edges and decrements the counts of exactly
	// the groups that lost one.
	for _, q := range []string{
		`WITH gone AS (DELETE FROM memberships WHERE user_id = $1 RETURNING group_id)
		UPDATE groups SET member_count = member_count - 1 WHERE id IN (SELECT group_id FROM gone)`,
		`DELETE FROM user_emails WHERE user_id = $1`,
		`WITH gone AS (DELETE FROM users WHERE id = $1 RETURNING directory_id)
		UPDATE directory_counts c SET users = c.users - 1 FROM gone WHERE c.directory_id = gone.directory_id`,
	} {
		if err := t.queue(ctx, what, q, id); err != nil {
			return err
		}
	}
	return nil
}

// UpsertGroup implements readmodel.Tx.
func (t *Tx) UpsertGroup(ctx context.Context, g *dsyncv1.Group, version uint64) error {
	data, err := marshal(g)
	if err != nil {
		return err
	}
	// A new row counts the edges that arrived before it (the projection has
	// no foreign keys); an update keeps the maintained count.
	// An inserted group (xmax = 0) is counted in its directory's row.
	return t.queue(ctx, "upsert group "+g.GetId(), `WITH up AS (INSERT INTO groups (id, directory_id, organization_id, idp_id, name,
			created_at, updated_at, data, name_lower, version, member_count)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, (SELECT count(*) FROM memberships WHERE group_id = $1))
		ON CONFLICT (id) DO UPDATE SET directory_id = EXCLUDED.directory_id,
			organization_id = EXCLUDED.organization_id, idp_id = EXCLUDED.idp_id, name = EXCLUDED.name,
			created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at, data = EXCLUDED.data,
			name_lower = EXCLUDED.name_lower, version = EXCLUDED.version
		RETURNING directory_id, xmax = 0 AS inserted)
		INSERT INTO directory_counts (directory_id, groups) SELECT directory_id, 1 FROM up WHERE inserted
		ON CONFLICT (directory_id) DO UPDATE SET groups = directory_counts.groups + 1`,
		g.GetId(), g.GetDirectoryId(), text(g.GetOrganizationId()), text(g.GetIdpId()), text(g.GetName()),
		ts(g.GetCreatedAt()), ts(g.GetUpdatedAt()), data, text(strings.ToLower(g.GetName())), int64(version))
}

// DeleteGroup implements readmodel.Tx.
func (t *Tx) DeleteGroup(ctx context.Context, id string) error {
	for _, q := range []string{
		`DELETE FROM memberships WHERE group_id = $1`,
		`WITH gone AS (DELETE FROM groups WHERE id = $1 RETURNING directory_id)
		UPDATE directory_counts c SET groups = c.groups - 1 FROM gone WHERE c.directory_id = gone.directory_id`,
	} {
		if err := t.queue(ctx, "delete group "+id, q, id); err != nil {
			return err
		}
	}
	return nil
}

// AddMember implements readmodel.Tx. It joins the current run of
// membership additions (endRuns writes it).
func (t *Tx) AddMember(ctx context.Context, directoryID, groupID, userID string) error {
	t.endUsers()
	r := &t.members
	r.dir = append(r.dir, directoryID)
	r.group = append(r.group, groupID)
	r.user = append(r.user, userID)
	if len(r.group) >= maxQueued {
		return t.flush(ctx)
	}
	return nil
}

// RemoveMember implements readmodel.Tx.
func (t *Tx) RemoveMember(ctx context.Context, groupID, userID string) error {
	return t.queue(ctx, fmt.Sprintf("remove member %s from %s", userID, groupID),
		`WITH gone AS (DELETE FROM memberships WHERE group_id = $1 AND user_id = $2 RETURNING group_id)
		UPDATE groups SET member_count = member_count - 1 WHERE id IN (SELECT group_id FROM gone)`, groupID, userID)
}

// RecordEvent implements readmodel.Tx.
func (t *Tx) RecordEvent(ctx context.Context, seq uint64, ev *dsyncv1.Event) error {
	if err := t.events.add(seq, ev); err != nil {
		return err
	}
	if len(t.events.seq) >= maxQueued {
		return t.flush(ctx)
	}
	return nil
}

// add appends the row of ev, recorded under seq.
func (e *eventRows) add(seq uint64, ev *dsyncv1.Event) error {
	data, err := marshal(ev)
	if err != nil {
		return err
	}
	name, _ := workos.EventName(ev.GetType())
	userID, groupID := readmodel.EventResources(ev)
	e.seq = append(e.seq, int64(seq))
	e.id = append(e.id, text(ev.GetId()))
	e.dir = append(e.dir, text(ev.GetDirectoryId()))
	e.org = append(e.org, text(ev.GetOrganizationId()))
	e.typ = append(e.typ, name)
	e.occurred = append(e.occurred, ts(ev.GetOccurredAt()))
	e.data = append(e.data, data)
	e.userID = append(e.userID, text(userID))
	e.groupID = append(e.groupID, text(groupID))
	return nil
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func get[T proto.Message](ctx context.Context, q querier, m T, sql, id string) (T, error) {
	var zero T
	var data []byte
	err := q.QueryRow(ctx, sql, id).Scan(&data)
	if errors.Is(err, pgx.ErrNoRows) {
		return zero, fmt.Errorf("get %s: %w", id, readmodel.ErrNotFound)
	}
	if err != nil {
		return zero, fmt.Errorf("get %s: %w", id, err)
	}
	if err := proto.Unmarshal(data, m); err != nil {
		return zero, fmt.Errorf("decode %s: %w", id, err)
	}
	return m, nil
}

// list runs sel (a SELECT of one data column ending in a WHERE clause) with
// the keyset bounds of r on idCol.
func list[T proto.Message](ctx context.Context, q querier, newT func() T, sel, idCol string, args []any, r readmodel.Range) ([]T, error) {
	sql, args := keyset(sel, idCol, args, r)
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	datas, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	out := make([]T, 0, len(datas))
	for _, data := range datas {
		m := newT()
		if err := proto.Unmarshal(data, m); err != nil {
			return nil, fmt.Errorf("list: decode: %w", err)
		}
		out = append(out, m)
	}
	return out, nil
}

// listGroups is list for a SELECT of a group's data and member_count.
func listGroups(ctx context.Context, q querier, sel, idCol string, args []any, r readmodel.Range) ([]*dsyncv1.GroupWithCount, error) {
	sql, args := keyset(sel, idCol, args, r)
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	return collectGroups(rows)
}

// collectGroups reads rows of a group's data, member_count and version.
func collectGroups(rows pgx.Rows) ([]*dsyncv1.GroupWithCount, error) {
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*dsyncv1.GroupWithCount, error) {
		var (
			data    []byte
			n, vers int64
		)
		if err := row.Scan(&data, &n, &vers); err != nil {
			return nil, err
		}
		g := &dsyncv1.Group{}
		if err := proto.Unmarshal(data, g); err != nil {
			return nil, fmt.Errorf("decode group: %w", err)
		}
		return &dsyncv1.GroupWithCount{Group: g, MemberCount: n, Version: uint64(vers)}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	return out, nil
}

// keyset completes sel (a SELECT ending in a WHERE clause) with the bounds,
// order, limit and offset of r on idCol.
func keyset(sel, idCol string, args []any, r readmodel.Range) (string, []any) {
	var b strings.Builder
	b.WriteString(sel)
	if r.GreaterThan != "" {
		args = append(args, r.GreaterThan)
		fmt.Fprintf(&b, " AND %s > $%d", idCol, len(args))
	}
	if r.LessThan != "" {
		args = append(args, r.LessThan)
		fmt.Fprintf(&b, " AND %s < $%d", idCol, len(args))
	}
	dir := "ASC"
	if r.Desc {
		dir = "DESC"
	}
	args = append(args, r.Limit)
	fmt.Fprintf(&b, " ORDER BY %s %s LIMIT $%d", idCol, dir, len(args))
	if r.Offset > 0 {
		args = append(args, r.Offset)
		fmt.Fprintf(&b, " OFFSET $%d", len(args))
	}
	return b.String(), args
}

func newOrganization() *dsyncv1.Organization { return &dsyncv1.Organization{} }
func newDirectory() *dsyncv1.Directory       { return &dsyncv1.Directory{} }
func newUser() *dsyncv1.User                 { return &dsyncv1.User{} }

func marshal(m proto.Message) ([]byte, error) {
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return data, nil
}

// ts converts an optional proto timestamp to a nullable column value. An
// out-of-range timestamp becomes NULL: the column is informational (data
// keeps the value), and a value PostgreSQL rejects would stall the projection.
func ts(t *timestamppb.Timestamp) *time.Time {
	if !t.IsValid() {
		return nil
	}
	v := t.AsTime()
	return &v
}

// text makes s storable in a text column: PostgreSQL rejects NUL bytes (valid
// UTF-8 that can arrive from an IdP) and invalid UTF-8, and a rejected value
// would stall the projection. The exact value stays in data.
func text(s string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
}
