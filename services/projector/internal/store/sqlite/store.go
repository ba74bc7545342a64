// Package sqlite is the embedded read-model store of `dsync dev`: SQLite
// through database/sql and modernc.org/sqlite (pkg/sqlitex).
package sqlite

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

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/dsync-dev/dsync/pkg/sqlitex"
	"github.com/dsync-dev/dsync/pkg/workos"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
	"github.com/dsync-dev/dsync/services/projector/internal/readmodel"
)

// Component is the migration component of the read model.
const Component = "projector"

//go:embed migrations/*.up.sql
var migrationFiles embed.FS

// Store is the SQLite read model. sqlitex gives it one connection, so reads
// wait while a batch is applied; that is the price of an embedded store.
type Store struct {
	db *sql.DB
}

var _ readmodel.Store = (*Store)(nil)

// Open opens (creating it if needed) the database file at path and applies
// the read model's migrations. The caller closes the Store.
func Open(ctx context.Context, path string) (*Store, error) {
	db, err := sqlitex.Open(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("open read model: %w", err)
	}
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open read model migrations: %w", err)
	}
	if err := sqlitex.Migrate(ctx, db, Component, sub); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("migrate read model: %w", err)
	}
	s := &Store{db: db}
	if err := s.backfill(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close read model: %w", err)
	}
	return nil
}

// Update implements readmodel.Store.
func (s *Store) Update(ctx context.Context, fn func(context.Context, readmodel.Tx) error) (err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, ignoreDone(tx.Rollback()))
		}
	}()
	if err := fn(ctx, &Tx{tx: tx}); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// ignoreDone drops the error of rolling back a transaction that a cancelled
// context already rolled back.
func ignoreDone(err error) error {
	if errors.Is(err, sql.ErrTxDone) {
		return nil
	}
	return err
}

// Checkpoint implements readmodel.Store.
func (s *Store) Checkpoint(ctx context.Context) (uint64, error) {
	return checkpoint(ctx, s.db)
}

func checkpoint(ctx context.Context, q querier) (uint64, error) {
	var seq int64
	if err := q.QueryRowContext(ctx, `SELECT seq FROM projector_checkpoint WHERE id = 1`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("read checkpoint: %w", err)
	}
	return uint64(seq), nil
}

// GetOrganization implements readmodel.Store.
func (s *Store) GetOrganization(ctx context.Context, id string) (*dsyncv1.Organization, error) {
	return get(ctx, s.db, &dsyncv1.Organization{}, `SELECT data FROM organizations WHERE id = ?`, id)
}

// ListOrganizations implements readmodel.Store.
func (s *Store) ListOrganizations(ctx context.Context, r readmodel.Range) ([]*dsyncv1.Organization, error) {
	return list(ctx, s.db, newOrganization, `SELECT data FROM organizations WHERE 1`, "id", nil, r)
}

// GetDirectory implements readmodel.Store.
func (s *Store) GetDirectory(ctx context.Context, id string) (*dsyncv1.Directory, error) {
	return get(ctx, s.db, &dsyncv1.Directory{}, `SELECT data FROM directories WHERE id = ?`, id)
}

// ListDirectories implements readmodel.Store.
func (s *Store) ListDirectories(ctx context.Context, f readmodel.DirectoryFilter, r readmodel.Range) ([]*dsyncv1.Directory, error) {
	q := `SELECT data FROM directories WHERE 1`
	var args []any
	if f.OrganizationID != "" {
		q += ` AND organization_id = ?`
		args = append(args, f.OrganizationID)
	}
	if f.Search != "" {
		// instr rather than LIKE: the search text needs no escaping, and
		// name_lower was lower-cased in Go (SQLite's lower is ASCII only).
		q += ` AND instr(name_lower, ?) > 0`
		args = append(args, strings.ToLower(f.Search))
	}
	return list(ctx, s.db, newDirectory, q, "id", args, r)
}

// GetUser implements readmodel.Store.
func (s *Store) GetUser(ctx context.Context, id string) (*dsyncv1.User, error) {
	return get(ctx, s.db, &dsyncv1.User{}, `SELECT data FROM users WHERE id = ?`, id)
}

// ListUsers implements readmodel.Store.
func (s *Store) ListUsers(ctx context.Context, directoryID string, r readmodel.Range) ([]*dsyncv1.User, error) {
	return list(ctx, s.db, newUser, `SELECT data FROM users WHERE directory_id = ?`, "id", []any{directoryID}, r)
}

// GetGroup implements readmodel.Store.
func (s *Store) GetGroup(ctx context.Context, id string) (*dsyncv1.GroupWithCount, error) {
	gs, err := listGroups(ctx, s.db, `SELECT g.data, g.member_count, g.version FROM groups g WHERE g.id = ?`, "g.id", []any{id}, readmodel.Range{Limit: 1})
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
	return listGroups(ctx, s.db, `SELECT g.data, g.member_count, g.version FROM groups g WHERE g.directory_id = ?`, "g.id", []any{directoryID}, r)
}

// ListUserGroups implements readmodel.Store.
func (s *Store) ListUserGroups(ctx context.Context, userID string, r readmodel.Range) ([]*dsyncv1.GroupWithCount, error) {
	return listGroups(ctx, s.db,
		`SELECT g.data, g.member_count, g.version FROM memberships m JOIN groups g ON g.id = m.group_id WHERE m.user_id = ?`,
		"m.group_id", []any{userID}, r)
}

// GroupsOfUsers implements readmodel.Store: one index scan of
// memberships_user_id per user, joined to groups.
func (s *Store) GroupsOfUsers(ctx context.Context, userIDs []string) (map[string][]*dsyncv1.GroupWithCount, error) {
	if len(userIDs) == 0 {
		return map[string][]*dsyncv1.GroupWithCount{}, nil
	}
	args := make([]any, len(userIDs))
	for i, id := range userIDs {
		args[i] = id
	}
	rows, err := s.db.QueryContext(ctx, `SELECT m.user_id, g.id, g.data, g.member_count, g.version
		FROM memberships m JOIN groups g ON g.id = m.group_id
		WHERE m.user_id IN (?`+strings.Repeat(",?", len(userIDs)-1)+`) ORDER BY m.user_id, m.group_id`, args...)
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
	return list(ctx, s.db, newUser,
		`SELECT u.data FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.group_id = ?`,
		"m.user_id", []any{groupID}, r)
}

// GroupMemberIDs implements readmodel.Store.
func (s *Store) GroupMemberIDs(ctx context.Context, groupID string) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT user_id FROM memberships WHERE group_id = ? ORDER BY user_id`, groupID)
	if err != nil {
		return nil, fmt.Errorf("list members of %s: %w", groupID, err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("list members of %s: %w", groupID, err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
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
		col, v = "idp_id", k.Value
	case readmodel.KeyUserName:
		col, v = "user_name_lower", strings.ToLower(k.Value)
	case readmodel.KeyEmail:
		return list(ctx, s.db, newUser, `SELECT data FROM users WHERE directory_id = ?1 AND id IN
			(SELECT user_id FROM user_emails WHERE directory_id = ?1 AND email_lower = ?2)`,
			"id", []any{directoryID, strings.ToLower(k.Value)}, r)
	default:
		return nil, fmt.Errorf("find users: unsupported key %d", k.Field)
	}
	return list(ctx, s.db, newUser, `SELECT data FROM users WHERE directory_id = ? AND `+col+` = ?`, "id", []any{directoryID, v}, r)
}

// FindGroups implements readmodel.Store.
func (s *Store) FindGroups(ctx context.Context, directoryID string, k readmodel.Key, r readmodel.Range) ([]*dsyncv1.GroupWithCount, error) {
	sel := `SELECT g.data, g.member_count, g.version FROM groups g WHERE g.directory_id = ? AND `
	idCol := "g.id"
	switch k.Field {
	case readmodel.KeyID:
		sel += `g.id = ?`
	case readmodel.KeyIdpID:
		sel += `g.idp_id = ?`
	case readmodel.KeyGroupName:
		sel += `g.name_lower = ?`
		k.Value = strings.ToLower(k.Value)
	case readmodel.KeyMember:
		sel = `SELECT g.data, g.member_count, g.version FROM memberships m JOIN groups g ON g.id = m.group_id
			WHERE m.directory_id = ? AND m.user_id = ?`
		idCol = "m.group_id"
	default:
		return nil, fmt.Errorf("find groups: unsupported key %d", k.Field)
	}
	return listGroups(ctx, s.db, sel, idCol, []any{directoryID, k.Value}, r)
}

// CountUsers implements readmodel.Store. It reads the count the triggers
// keep in directory_counts (migration 0004).
func (s *Store) CountUsers(ctx context.Context, directoryID string) (int64, error) {
	return count(ctx, s.db, `SELECT coalesce((SELECT users FROM directory_counts WHERE directory_id = ?), 0)`, directoryID)
}

// CountGroups implements readmodel.Store, like CountUsers.
func (s *Store) CountGroups(ctx context.Context, directoryID string) (int64, error) {
	return count(ctx, s.db, `SELECT coalesce((SELECT groups FROM directory_counts WHERE directory_id = ?), 0)`, directoryID)
}

func count(ctx context.Context, q querier, query string, args ...any) (int64, error) {
	var n int64
	if err := q.QueryRowContext(ctx, query, args...).Scan(&n); err != nil {
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
	b.WriteString(`SELECT seq, data FROM projector_events WHERE 1`)
	if len(f.Types) > 0 {
		b.WriteString(` AND type IN (?` + strings.Repeat(`, ?`, len(f.Types)-1) + `)`)
		for _, t := range f.Types {
			args = append(args, t)
		}
	}
	cond := func(sql string, v any) {
		b.WriteString(sql)
		args = append(args, v)
	}
	if f.DirectoryID != "" {
		cond(` AND directory_id = ?`, f.DirectoryID)
	}
	if f.OrganizationID != "" {
		cond(` AND organization_id = ?`, f.OrganizationID)
	}
	if f.UserID != "" {
		cond(` AND user_id = ?`, f.UserID)
	}
	if f.GroupID != "" {
		cond(` AND group_id = ?`, f.GroupID)
	}
	if !f.OccurredFrom.IsZero() {
		cond(` AND occurred_at >= ?`, f.OccurredFrom.UTC().Format(timeLayout))
	}
	if !f.OccurredTo.IsZero() {
		cond(` AND occurred_at < ?`, f.OccurredTo.UTC().Format(timeLayout))
	}
	if r.After > 0 {
		cond(` AND seq > ?`, int64(r.After))
	}
	if r.Before > 0 {
		cond(` AND seq < ?`, int64(r.Before))
	}
	dir := "ASC"
	if r.Desc {
		dir = "DESC"
	}
	cond(` ORDER BY seq `+dir+` LIMIT ?`, r.Limit)
	rows, err := s.db.QueryContext(ctx, b.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	defer rows.Close()
	var out []readmodel.EventRecord
	for rows.Next() {
		var (
			seq  int64
			data []byte
		)
		if err := rows.Scan(&seq, &data); err != nil {
			return nil, fmt.Errorf("list events: %w", err)
		}
		ev := &dsyncv1.Event{}
		if err := proto.Unmarshal(data, ev); err != nil {
			return nil, fmt.Errorf("list events: decode %d: %w", seq, err)
		}
		out = append(out, readmodel.EventRecord{Seq: uint64(seq), Event: ev})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	return out, nil
}

// EventSeq implements readmodel.Store.
func (s *Store) EventSeq(ctx context.Context, eventID string) (uint64, error) {
	var seq int64
	err := s.db.QueryRowContext(ctx, `SELECT seq FROM projector_events WHERE id = ?`, eventID).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("event %s: %w", eventID, readmodel.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("event %s: %w", eventID, err)
	}
	return uint64(seq), nil
}

// PruneEvents implements readmodel.Store.
func (s *Store) PruneEvents(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM projector_events WHERE occurred_at < ?`, before.UTC().Format(timeLayout))
	if err != nil {
		return 0, fmt.Errorf("prune events: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("prune events: %w", err)
	}
	return n, nil
}

// Skips implements readmodel.Store.
func (s *Store) Skips(ctx context.Context) ([]readmodel.Skip, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT seq, subject, reason FROM projector_skips ORDER BY seq`)
	if err != nil {
		return nil, fmt.Errorf("list skips: %w", err)
	}
	defer rows.Close()
	var skips []readmodel.Skip
	for rows.Next() {
		var (
			sk  readmodel.Skip
			seq int64
		)
		if err := rows.Scan(&seq, &sk.Subject, &sk.Reason); err != nil {
			return nil, fmt.Errorf("list skips: %w", err)
		}
		sk.Seq = uint64(seq)
		skips = append(skips, sk)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list skips: %w", err)
	}
	return skips, nil
}

// Tx is one read-model transaction. sqlitex begins it IMMEDIATE, so it
// holds the write lock from the start and the checkpoint it reads cannot
// change under it.
type Tx struct {
	tx *sql.Tx
}

var _ readmodel.Tx = (*Tx)(nil)

// Checkpoint implements readmodel.Tx.
func (t *Tx) Checkpoint(ctx context.Context) (uint64, error) {
	return checkpoint(ctx, t.tx)
}

// SetCheckpoint implements readmodel.Tx.
func (t *Tx) SetCheckpoint(ctx context.Context, seq uint64) error {
	if _, err := t.tx.ExecContext(ctx, `UPDATE projector_checkpoint SET seq = ? WHERE id = 1`, int64(seq)); err != nil {
		return fmt.Errorf("set checkpoint: %w", err)
	}
	return nil
}

// RecordSkip implements readmodel.Tx.
func (t *Tx) RecordSkip(ctx context.Context, sk readmodel.Skip) error {
	_, err := t.tx.ExecContext(ctx, `INSERT INTO projector_skips (seq, subject, reason) VALUES (?, ?, ?)
		ON CONFLICT (seq) DO UPDATE SET subject = excluded.subject, reason = excluded.reason`,
		int64(sk.Seq), sk.Subject, sk.Reason)
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
	domains := o.GetDomains()
	if domains == nil {
		domains = []string{}
	}
	domainsJSON, err := json.Marshal(domains)
	if err != nil {
		return fmt.Errorf("encode domains: %w", err)
	}
	_, err = t.tx.ExecContext(ctx, `INSERT INTO organizations (id, name, domains, created_at, updated_at, data)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET name = excluded.name, domains = excluded.domains,
			created_at = excluded.created_at, updated_at = excluded.updated_at, data = excluded.data`,
		o.GetId(), o.GetName(), string(domainsJSON), ts(o.GetCreatedAt()), ts(o.GetUpdatedAt()), data)
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
	_, err = t.tx.ExecContext(ctx, `INSERT INTO directories (id, organization_id, name, name_lower, type, state, domain,
			on_deactivate, created_at, updated_at, data)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET organization_id = excluded.organization_id, name = excluded.name,
			name_lower = excluded.name_lower, type = excluded.type, state = excluded.state,
			domain = excluded.domain, on_deactivate = excluded.on_deactivate,
			created_at = excluded.created_at, updated_at = excluded.updated_at, data = excluded.data`,
		d.GetId(), d.GetOrganizationId(), d.GetName(), strings.ToLower(d.GetName()), d.GetType(),
		d.GetState().String(), d.GetDomain(), d.GetOnDeactivate().String(),
		ts(d.GetCreatedAt()), ts(d.GetUpdatedAt()), data)
	if err != nil {
		return fmt.Errorf("upsert directory %s: %w", d.GetId(), err)
	}
	return nil
}

// DeleteDirectory implements readmodel.Tx.
func (t *Tx) DeleteDirectory(ctx context.Context, id string) error {
	for _, q := range []string{
		`DELETE FROM memberships WHERE directory_id = ?`,
		`DELETE FROM user_emails WHERE directory_id = ?`,
		`DELETE FROM users WHERE directory_id = ?`,
		`DELETE FROM groups WHERE directory_id = ?`,
		`DELETE FROM directories WHERE id = ?`,
	} {
		if _, err := t.tx.ExecContext(ctx, q, id); err != nil {
			return fmt.Errorf("delete directory %s: %w", id, err)
		}
	}
	return nil
}

// UpsertUser implements readmodel.Tx.
func (t *Tx) UpsertUser(ctx context.Context, u *dsyncv1.User, version uint64) error {
	data, err := marshal(u)
	if err != nil {
		return err
	}
	_, err = t.tx.ExecContext(ctx, `INSERT INTO users (id, directory_id, organization_id, idp_id, user_name,
			user_name_lower, email, first_name, last_name, state, created_at, updated_at, data, email_lower,
			display_name_lower, version)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET directory_id = excluded.directory_id,
			organization_id = excluded.organization_id, idp_id = excluded.idp_id,
			user_name = excluded.user_name, user_name_lower = excluded.user_name_lower,
			email = excluded.email, first_name = excluded.first_name, last_name = excluded.last_name,
			state = excluded.state, created_at = excluded.created_at, updated_at = excluded.updated_at,
			data = excluded.data, email_lower = excluded.email_lower,
			display_name_lower = excluded.display_name_lower, version = excluded.version`,
		u.GetId(), u.GetDirectoryId(), u.GetOrganizationId(), u.GetIdpId(), u.GetUserName(),
		strings.ToLower(u.GetUserName()), u.GetEmail(), u.GetFirstName(), u.GetLastName(),
		u.GetState().String(), ts(u.GetCreatedAt()), ts(u.GetUpdatedAt()), data, strings.ToLower(u.GetEmail()),
		strings.ToLower(u.GetDisplayName()), int64(version))
	if err != nil {
		return fmt.Errorf("upsert user %s: %w", u.GetId(), err)
	}
	return setEmails(ctx, t.tx, u)
}

// setEmails makes user_emails hold exactly u's emails.
func setEmails(ctx context.Context, tx *sql.Tx, u *dsyncv1.User) error {
	emails := readmodel.UserEmails(u)
	list, err := json.Marshal(emails)
	if err != nil {
		return fmt.Errorf("index emails of user %s: %w", u.GetId(), err)
	}
	for _, q := range []string{
		`DELETE FROM user_emails WHERE user_id = ?1 AND email_lower NOT IN (SELECT value FROM json_each(?3))`,
		`INSERT INTO user_emails (user_id, directory_id, email_lower) SELECT ?1, ?2, value FROM json_each(?3) WHERE true
			ON CONFLICT (user_id, email_lower) DO UPDATE SET directory_id = excluded.directory_id
			WHERE user_emails.directory_id <> excluded.directory_id`,
	} {
		if _, err := tx.ExecContext(ctx, q, u.GetId(), u.GetDirectoryId(), string(list)); err != nil {
			return fmt.Errorf("index emails of user %s: %w", u.GetId(), err)
		}
	}
	return nil
}

// DeleteUser implements readmodel.Tx.
func (t *Tx) DeleteUser(ctx context.Context, id string) error {
	// Decrement first, while the edges still say which groups lose one.
	if _, err := t.tx.ExecContext(ctx, `UPDATE groups SET member_count = member_count - 1
		WHERE id IN (SELECT group_id FROM memberships WHERE user_id = ?)`, id); err != nil {
		return fmt.Errorf("delete user %s counts: %w", id, err)
	}
	if _, err := t.tx.ExecContext(ctx, `DELETE FROM memberships WHERE user_id = ?`, id); err != nil {
		return fmt.Errorf("delete user %s memberships: %w", id, err)
	}
	if _, err := t.tx.ExecContext(ctx, `DELETE FROM user_emails WHERE user_id = ?`, id); err != nil {
		return fmt.Errorf("delete user %s emails: %w", id, err)
	}
	if _, err := t.tx.ExecContext(ctx, `DELETE FROM users WHERE id = ?`, id); err != nil {
		return fmt.Errorf("delete user %s: %w", id, err)
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
	_, err = t.tx.ExecContext(ctx, `INSERT INTO groups (id, directory_id, organization_id, idp_id, name,
			created_at, updated_at, data, name_lower, version, member_count)
		VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, (SELECT count(*) FROM memberships WHERE group_id = ?1))
		ON CONFLICT (id) DO UPDATE SET directory_id = excluded.directory_id,
			organization_id = excluded.organization_id, idp_id = excluded.idp_id, name = excluded.name,
			created_at = excluded.created_at, updated_at = excluded.updated_at, data = excluded.data,
			name_lower = excluded.name_lower, version = excluded.version`,
		g.GetId(), g.GetDirectoryId(), g.GetOrganizationId(), g.GetIdpId(), g.GetName(),
		ts(g.GetCreatedAt()), ts(g.GetUpdatedAt()), data, strings.ToLower(g.GetName()), int64(version))
	if err != nil {
		return fmt.Errorf("upsert group %s: %w", g.GetId(), err)
	}
	return nil
}

// DeleteGroup implements readmodel.Tx.
func (t *Tx) DeleteGroup(ctx context.Context, id string) error {
	if _, err := t.tx.ExecContext(ctx, `DELETE FROM memberships WHERE group_id = ?`, id); err != nil {
		return fmt.Errorf("delete group %s memberships: %w", id, err)
	}
	if _, err := t.tx.ExecContext(ctx, `DELETE FROM groups WHERE id = ?`, id); err != nil {
		return fmt.Errorf("delete group %s: %w", id, err)
	}
	return nil
}

// AddMember implements readmodel.Tx.
func (t *Tx) AddMember(ctx context.Context, directoryID, groupID, userID string) error {
	res, err := t.tx.ExecContext(ctx, `INSERT INTO memberships (directory_id, group_id, user_id) VALUES (?, ?, ?)
		ON CONFLICT (group_id, user_id) DO NOTHING`, directoryID, groupID, userID)
	if err != nil {
		return fmt.Errorf("add member %s to %s: %w", userID, groupID, err)
	}
	return t.count(ctx, res, groupID, +1)
}

// RemoveMember implements readmodel.Tx.
func (t *Tx) RemoveMember(ctx context.Context, groupID, userID string) error {
	res, err := t.tx.ExecContext(ctx, `DELETE FROM memberships WHERE group_id = ? AND user_id = ?`, groupID, userID)
	if err != nil {
		return fmt.Errorf("remove member %s from %s: %w", userID, groupID, err)
	}
	return t.count(ctx, res, groupID, -1)
}

// count moves groupID's member count by delta when res changed an edge, so
// a repeated add or remove leaves it alone.
func (t *Tx) count(ctx context.Context, res sql.Result, groupID string, delta int) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("count members of %s: %w", groupID, err)
	}
	if n == 0 {
		return nil
	}
	if _, err := t.tx.ExecContext(ctx, `UPDATE groups SET member_count = member_count + ? WHERE id = ?`, delta, groupID); err != nil {
		return fmt.Errorf("count members of %s: %w", groupID, err)
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
	userID, groupID := readmodel.EventResources(ev)
	_, err = t.tx.ExecContext(ctx, `INSERT INTO projector_events (seq, id, directory_id, organization_id, type, occurred_at, data,
			user_id, group_id)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		int64(seq), ev.GetId(), ev.GetDirectoryId(), ev.GetOrganizationId(), name, ts(ev.GetOccurredAt()), data, userID, groupID)
	if err != nil {
		return fmt.Errorf("record event %d: %w", seq, err)
	}
	return nil
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func get[T proto.Message](ctx context.Context, q querier, m T, query, id string) (T, error) {
	var zero T
	var data []byte
	err := q.QueryRowContext(ctx, query, id).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
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
	query, args := keyset(sel, idCol, args, r)
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var data []byte
		if err := rows.Scan(&data); err != nil {
			return nil, fmt.Errorf("list: %w", err)
		}
		m := newT()
		if err := proto.Unmarshal(data, m); err != nil {
			return nil, fmt.Errorf("list: decode: %w", err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	return out, nil
}

// keyset completes sel (a SELECT ending in a WHERE clause) with the bounds,
// order, limit and offset of r on idCol.
func keyset(sel, idCol string, args []any, r readmodel.Range) (string, []any) {
	var b strings.Builder
	b.WriteString(sel)
	if r.GreaterThan != "" {
		fmt.Fprintf(&b, " AND %s > ?", idCol)
		args = append(args, r.GreaterThan)
	}
	if r.LessThan != "" {
		fmt.Fprintf(&b, " AND %s < ?", idCol)
		args = append(args, r.LessThan)
	}
	dir := "ASC"
	if r.Desc {
		dir = "DESC"
	}
	fmt.Fprintf(&b, " ORDER BY %s %s LIMIT ?", idCol, dir)
	args = append(args, r.Limit)
	if r.Offset > 0 {
		b.WriteString(" OFFSET ?")
		args = append(args, r.Offset)
	}
	return b.String(), args
}

// listGroups is list for a SELECT of a group's data and member_count.
func listGroups(ctx context.Context, q querier, sel, idCol string, args []any, r readmodel.Range) ([]*dsyncv1.GroupWithCount, error) {
	query, args := keyset(sel, idCol, args, r)
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	return collectGroups(rows)
}

// collectGroups reads and closes rows of a group's data, member_count and
// version.
func collectGroups(rows *sql.Rows) ([]*dsyncv1.GroupWithCount, error) {
	defer rows.Close()
	var out []*dsyncv1.GroupWithCount
	for rows.Next() {
		var (
			data    []byte
			n, vers int64
		)
		if err := rows.Scan(&data, &n, &vers); err != nil {
			return nil, fmt.Errorf("list groups: %w", err)
		}
		g := &dsyncv1.Group{}
		if err := proto.Unmarshal(data, g); err != nil {
			return nil, fmt.Errorf("list groups: decode: %w", err)
		}
		out = append(out, &dsyncv1.GroupWithCount{Group: g, MemberCount: n, Version: uint64(vers)})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	return out, nil
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

// timeLayout is how times are stored: fixed width, so that text order is
// time order (RFC3339Nano drops trailing zeros and would not sort).
const timeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// ts converts an optional proto timestamp to a nullable RFC 3339 column.
func ts(t *timestamppb.Timestamp) any {
	if !t.IsValid() {
		return nil
	}
	return t.AsTime().UTC().Format(timeLayout)
}
