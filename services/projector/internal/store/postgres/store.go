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
	pool *pgxpool.Pool
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
	return &Store{pool: pool}, nil
}

// Close closes the pool.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// Update implements readmodel.Store.
func (s *Store) Update(ctx context.Context, fn func(context.Context, readmodel.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		return fn(ctx, &Tx{tx: tx})
	})
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
	gs, err := listGroups(ctx, s.pool, `SELECT g.data, g.member_count FROM groups g WHERE g.id = $1`, "g.id", []any{id}, readmodel.Range{Limit: 1})
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
	return listGroups(ctx, s.pool, `SELECT g.data, g.member_count FROM groups g WHERE g.directory_id = $1`, "g.id", []any{directoryID}, r)
}

// ListUserGroups implements readmodel.Store.
func (s *Store) ListUserGroups(ctx context.Context, userID string, r readmodel.Range) ([]*dsyncv1.GroupWithCount, error) {
	return listGroups(ctx, s.pool,
		`SELECT g.data, g.member_count FROM memberships m JOIN groups g ON g.id = m.group_id WHERE m.user_id = $1`,
		"m.group_id", []any{userID}, r)
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
		col, v = "email_lower", text(strings.ToLower(k.Value))
	default:
		return nil, fmt.Errorf("find users: unsupported key %d", k.Field)
	}
	return list(ctx, s.pool, newUser, `SELECT data FROM users WHERE directory_id = $1 AND `+col+` = $2`, "id", []any{directoryID, v}, r)
}

// FindGroups implements readmodel.Store.
func (s *Store) FindGroups(ctx context.Context, directoryID string, k readmodel.Key, r readmodel.Range) ([]*dsyncv1.GroupWithCount, error) {
	sel := `SELECT g.data, g.member_count FROM groups g WHERE g.directory_id = $1 AND `
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
		sel = `SELECT g.data, g.member_count FROM memberships m JOIN groups g ON g.id = m.group_id
			WHERE m.directory_id = $1 AND m.user_id = $2`
		idCol = "m.group_id"
	default:
		return nil, fmt.Errorf("find groups: unsupported key %d", k.Field)
	}
	return listGroups(ctx, s.pool, sel, idCol, []any{directoryID, text(k.Value)}, r)
}

// CountUsers implements readmodel.Store.
func (s *Store) CountUsers(ctx context.Context, directoryID string) (int64, error) {
	return count(ctx, s.pool, `SELECT count(*) FROM users WHERE directory_id = $1`, directoryID)
}

// CountGroups implements readmodel.Store.
func (s *Store) CountGroups(ctx context.Context, directoryID string) (int64, error) {
	return count(ctx, s.pool, `SELECT count(*) FROM groups WHERE directory_id = $1`, directoryID)
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

// Tx is one read-model transaction.
type Tx struct {
	tx pgx.Tx
}

var _ readmodel.Tx = (*Tx)(nil)

// Checkpoint implements readmodel.Tx. FOR UPDATE serializes concurrent
// projectors on one database: the second waits, then sees the first's
// checkpoint and skips what it applied.
func (t *Tx) Checkpoint(ctx context.Context) (uint64, error) {
	var seq int64
	if err := t.tx.QueryRow(ctx, `SELECT seq FROM projector_checkpoint WHERE id = 1 FOR UPDATE`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("read checkpoint: %w", err)
	}
	return uint64(seq), nil
}

// SetCheckpoint implements readmodel.Tx.
func (t *Tx) SetCheckpoint(ctx context.Context, seq uint64) error {
	if _, err := t.tx.Exec(ctx, `UPDATE projector_checkpoint SET seq = $1 WHERE id = 1`, int64(seq)); err != nil {
		return fmt.Errorf("set checkpoint: %w", err)
	}
	return nil
}

// RecordSkip implements readmodel.Tx.
func (t *Tx) RecordSkip(ctx context.Context, sk readmodel.Skip) error {
	_, err := t.tx.Exec(ctx, `INSERT INTO projector_skips (seq, subject, reason) VALUES ($1, $2, $3)
		ON CONFLICT (seq) DO UPDATE SET subject = EXCLUDED.subject, reason = EXCLUDED.reason`,
		int64(sk.Seq), text(sk.Subject), text(sk.Reason))
	if err != nil {
		return fmt.Errorf("record skip %d: %w", sk.Seq, err)
	}
	return nil
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
	_, err = t.tx.Exec(ctx, `INSERT INTO organizations (id, name, domains, created_at, updated_at, data)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, domains = EXCLUDED.domains,
			created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at, data = EXCLUDED.data`,
		o.GetId(), text(o.GetName()), domains, ts(o.GetCreatedAt()), ts(o.GetUpdatedAt()), data)
	if err != nil {
		return fmt.Errorf("upsert organization %s: %w", o.GetId(), err)
	}
	return nil
}

// UpsertDirectory implements readmodel.Tx.
func (t *Tx) UpsertDirectory(ctx context.Context, d *dsyncv1.Directory) error {
	data, err := marshal(d)
	if err != nil {
		return err
	}
	_, err = t.tx.Exec(ctx, `INSERT INTO directories (id, organization_id, name, name_lower, type, state, domain,
			on_deactivate, created_at, updated_at, data)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
		ON CONFLICT (id) DO UPDATE SET organization_id = EXCLUDED.organization_id, name = EXCLUDED.name,
			name_lower = EXCLUDED.name_lower, type = EXCLUDED.type, state = EXCLUDED.state,
			domain = EXCLUDED.domain, on_deactivate = EXCLUDED.on_deactivate,
			created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at, data = EXCLUDED.data`,
		d.GetId(), text(d.GetOrganizationId()), text(d.GetName()), text(strings.ToLower(d.GetName())), text(d.GetType()),
		d.GetState().String(), text(d.GetDomain()), d.GetOnDeactivate().String(),
		ts(d.GetCreatedAt()), ts(d.GetUpdatedAt()), data)
	if err != nil {
		return fmt.Errorf("upsert directory %s: %w", d.GetId(), err)
	}
	return nil
}

// DeleteDirectory implements readmodel.Tx.
func (t *Tx) DeleteDirectory(ctx context.Context, id string) error {
	for _, q := range []string{
		`DELETE FROM memberships WHERE directory_id = $1`,
		`DELETE FROM users WHERE directory_id = $1`,
		`DELETE FROM groups WHERE directory_id = $1`,
		`DELETE FROM directories WHERE id = $1`,
	} {
		if _, err := t.tx.Exec(ctx, q, id); err != nil {
			return fmt.Errorf("delete directory %s: %w", id, err)
		}
	}
	return nil
}

// UpsertUser implements readmodel.Tx.
func (t *Tx) UpsertUser(ctx context.Context, u *dsyncv1.User) error {
	data, err := marshal(u)
	if err != nil {
		return err
	}
	_, err = t.tx.Exec(ctx, `INSERT INTO users (id, directory_id, organization_id, idp_id, user_name,
			user_name_lower, email, first_name, last_name, state, created_at, updated_at, data, email_lower)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
		ON CONFLICT (id) DO UPDATE SET directory_id = EXCLUDED.directory_id,
			organization_id = EXCLUDED.organization_id, idp_id = EXCLUDED.idp_id,
			user_name = EXCLUDED.user_name, user_name_lower = EXCLUDED.user_name_lower,
			email = EXCLUDED.email, first_name = EXCLUDED.first_name, last_name = EXCLUDED.last_name,
			state = EXCLUDED.state, created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at,
			data = EXCLUDED.data, email_lower = EXCLUDED.email_lower`,
		u.GetId(), u.GetDirectoryId(), text(u.GetOrganizationId()), text(u.GetIdpId()), text(u.GetUserName()),
		text(strings.ToLower(u.GetUserName())), text(u.GetEmail()), text(u.GetFirstName()), text(u.GetLastName()),
		u.GetState().String(), ts(u.GetCreatedAt()), ts(u.GetUpdatedAt()), data, text(strings.ToLower(u.GetEmail())))
	if err != nil {
		return fmt.Errorf("upsert user %s: %w", u.GetId(), err)
	}
	return nil
}

// DeleteUser implements readmodel.Tx.
func (t *Tx) DeleteUser(ctx context.Context, id string) error {
	// One statement removes the edges and decrements the counts of exactly
	// the groups that lost one.
	if _, err := t.tx.Exec(ctx, `WITH gone AS (DELETE FROM memberships WHERE user_id = $1 RETURNING group_id)
		UPDATE groups SET member_count = member_count - 1 WHERE id IN (SELECT group_id FROM gone)`, id); err != nil {
		return fmt.Errorf("delete user %s memberships: %w", id, err)
	}
	if _, err := t.tx.Exec(ctx, `DELETE FROM users WHERE id = $1`, id); err != nil {
		return fmt.Errorf("delete user %s: %w", id, err)
	}
	return nil
}

// UpsertGroup implements readmodel.Tx.
func (t *Tx) UpsertGroup(ctx context.Context, g *dsyncv1.Group) error {
	data, err := marshal(g)
	if err != nil {
		return err
	}
	// A new row counts the edges that arrived before it (the projection has
	// no foreign keys); an update keeps the maintained count.
	_, err = t.tx.Exec(ctx, `INSERT INTO groups (id, directory_id, organization_id, idp_id, name,
			created_at, updated_at, data, name_lower, member_count)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, (SELECT count(*) FROM memberships WHERE group_id = $1))
		ON CONFLICT (id) DO UPDATE SET directory_id = EXCLUDED.directory_id,
			organization_id = EXCLUDED.organization_id, idp_id = EXCLUDED.idp_id, name = EXCLUDED.name,
			created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at, data = EXCLUDED.data,
			name_lower = EXCLUDED.name_lower`,
		g.GetId(), g.GetDirectoryId(), text(g.GetOrganizationId()), text(g.GetIdpId()), text(g.GetName()),
		ts(g.GetCreatedAt()), ts(g.GetUpdatedAt()), data, text(strings.ToLower(g.GetName())))
	if err != nil {
		return fmt.Errorf("upsert group %s: %w", g.GetId(), err)
	}
	return nil
}

// DeleteGroup implements readmodel.Tx.
func (t *Tx) DeleteGroup(ctx context.Context, id string) error {
	if _, err := t.tx.Exec(ctx, `DELETE FROM memberships WHERE group_id = $1`, id); err != nil {
		return fmt.Errorf("delete group %s memberships: %w", id, err)
	}
	if _, err := t.tx.Exec(ctx, `DELETE FROM groups WHERE id = $1`, id); err != nil {
		return fmt.Errorf("delete group %s: %w", id, err)
	}
	return nil
}

// AddMember implements readmodel.Tx.
func (t *Tx) AddMember(ctx context.Context, directoryID, groupID, userID string) error {
	_, err := t.tx.Exec(ctx, `WITH added AS (INSERT INTO memberships (directory_id, group_id, user_id) VALUES ($1, $2, $3)
		ON CONFLICT (group_id, user_id) DO NOTHING RETURNING group_id)
		UPDATE groups SET member_count = member_count + 1 WHERE id IN (SELECT group_id FROM added)`, directoryID, groupID, userID)
	if err != nil {
		return fmt.Errorf("add member %s to %s: %w", userID, groupID, err)
	}
	return nil
}

// RemoveMember implements readmodel.Tx.
func (t *Tx) RemoveMember(ctx context.Context, groupID, userID string) error {
	if _, err := t.tx.Exec(ctx, `WITH gone AS (DELETE FROM memberships WHERE group_id = $1 AND user_id = $2 RETURNING group_id)
		UPDATE groups SET member_count = member_count - 1 WHERE id IN (SELECT group_id FROM gone)`, groupID, userID); err != nil {
		return fmt.Errorf("remove member %s from %s: %w", userID, groupID, err)
	}
	return nil
}

// RecordEvent implements readmodel.Tx.
func (t *Tx) RecordEvent(ctx context.Context, seq uint64, ev *dsyncv1.Event) error {
	data, err := marshal(ev)
	if err != nil {
		return err
	}
	name, _ := workos.EventName(ev.GetType())
	_, err = t.tx.Exec(ctx, `INSERT INTO projector_events (seq, id, directory_id, organization_id, type, occurred_at, data)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
		int64(seq), text(ev.GetId()), text(ev.GetDirectoryId()), text(ev.GetOrganizationId()), name, ts(ev.GetOccurredAt()), data)
	if err != nil {
		return fmt.Errorf("record event %d: %w", seq, err)
	}
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
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*dsyncv1.GroupWithCount, error) {
		var (
			data []byte
			n    int64
		)
		if err := row.Scan(&data, &n); err != nil {
			return nil, err
		}
		g := &dsyncv1.Group{}
		if err := proto.Unmarshal(data, g); err != nil {
			return nil, fmt.Errorf("decode group: %w", err)
		}
		return &dsyncv1.GroupWithCount{Group: g, MemberCount: n}, nil
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
