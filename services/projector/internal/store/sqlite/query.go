package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"

	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
	"github.com/dsync-dev/dsync/services/projector/internal/readmodel"
)

// userSortCols and groupSortCols are the indexed columns each sort key
// orders by.
var (
	userSortCols = map[readmodel.SortKey]string{
		readmodel.SortID: "u.id", readmodel.SortUserName: "u.user_name_lower", readmodel.SortDisplayName: "u.display_name_lower",
		readmodel.SortExternalID: "u.idp_id", readmodel.SortEmail: "u.email_lower",
		readmodel.SortCreated: "u.created_at", readmodel.SortUpdated: "u.updated_at",
	}
	groupSortCols = map[readmodel.SortKey]string{
		readmodel.SortID: "g.id", readmodel.SortDisplayName: "g.name_lower", readmodel.SortExternalID: "g.idp_id",
		readmodel.SortCreated: "g.created_at", readmodel.SortUpdated: "g.updated_at",
	}
)

// QueryUsers implements readmodel.Store.
func (s *Store) QueryUsers(ctx context.Context, q readmodel.Query) ([]readmodel.VersionedUser, error) {
	args := []any{q.DirectoryID}
	query := `SELECT u.data, u.version FROM users u WHERE u.directory_id = ?1`
	if q.Key != nil {
		args = append(args, keyValue(*q.Key))
		switch q.Key.Field {
		case readmodel.KeyID:
			query += ` AND u.id = ?2`
		case readmodel.KeyIdpID:
			query += ` AND u.idp_id = ?2`
		case readmodel.KeyUserName:
			query += ` AND u.user_name_lower = ?2`
		case readmodel.KeyEmail:
			query += ` AND u.id IN (SELECT user_id FROM user_emails WHERE directory_id = ?1 AND email_lower = ?2)`
		default:
			return nil, fmt.Errorf("query users: unsupported key %d", q.Key.Field)
		}
	}
	query, args, err := ordered(query, args, userSortCols, "u.id", q)
	if err != nil {
		return nil, fmt.Errorf("query users: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("query users: %w", err)
	}
	defer rows.Close()
	var out []readmodel.VersionedUser
	for rows.Next() {
		var (
			data []byte
			vers int64
		)
		if err := rows.Scan(&data, &vers); err != nil {
			return nil, fmt.Errorf("query users: %w", err)
		}
		u := &dsyncv1.User{}
		if err := proto.Unmarshal(data, u); err != nil {
			return nil, fmt.Errorf("query users: decode: %w", err)
		}
		out = append(out, readmodel.VersionedUser{User: u, Version: uint64(vers)})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query users: %w", err)
	}
	return out, nil
}

// QueryGroups implements readmodel.Store.
func (s *Store) QueryGroups(ctx context.Context, q readmodel.Query) ([]*dsyncv1.GroupWithCount, error) {
	args := []any{q.DirectoryID}
	query := `SELECT g.data, g.member_count, g.version FROM groups g WHERE g.directory_id = ?1`
	if q.Key != nil {
		args = append(args, keyValue(*q.Key))
		switch q.Key.Field {
		case readmodel.KeyID:
			query += ` AND g.id = ?2`
		case readmodel.KeyIdpID:
			query += ` AND g.idp_id = ?2`
		case readmodel.KeyGroupName:
			query += ` AND g.name_lower = ?2`
		case readmodel.KeyMember:
			query += ` AND g.id IN (SELECT group_id FROM memberships WHERE user_id = ?2 AND directory_id = ?1)`
		default:
			return nil, fmt.Errorf("query groups: unsupported key %d", q.Key.Field)
		}
	}
	query, args, err := ordered(query, args, groupSortCols, "g.id", q)
	if err != nil {
		return nil, fmt.Errorf("query groups: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("query groups: %w", err)
	}
	return collectGroups(rows)
}

// keyValue is k's value as stored: case-folded for the case-insensitive keys.
func keyValue(k readmodel.Key) string {
	switch k.Field {
	case readmodel.KeyUserName, readmodel.KeyEmail, readmodel.KeyGroupName:
		return strings.ToLower(k.Value)
	}
	return k.Value
}

// ordered completes query with q's id bound, order (the sort column, then
// idCol), limit and offset. Parameters are numbered explicitly.
func ordered(query string, args []any, cols map[readmodel.SortKey]string, idCol string, q readmodel.Query) (string, []any, error) {
	col, ok := cols[q.Sort]
	if !ok {
		return "", nil, fmt.Errorf("unsupported sort key %d", q.Sort)
	}
	var b strings.Builder
	b.WriteString(query)
	if q.GreaterThan != "" {
		args = append(args, q.GreaterThan)
		fmt.Fprintf(&b, " AND %s > ?%d", idCol, len(args))
	}
	dir := " ASC"
	if q.Desc {
		dir = " DESC"
	}
	b.WriteString(" ORDER BY " + col + dir)
	if col != idCol {
		b.WriteString(", " + idCol + dir)
	}
	args = append(args, q.Limit)
	fmt.Fprintf(&b, " LIMIT ?%d", len(args))
	if q.Offset > 0 {
		args = append(args, q.Offset)
		fmt.Fprintf(&b, " OFFSET ?%d", len(args))
	}
	return b.String(), args, nil
}

// backfillBatch is how many rows the backfill fixes per transaction.
const backfillBatch = 1000

// backfill fills what migration 0003 could not compute in SQL, from the
// rows' data: users' display_name_lower and emails, and events' user and
// group. It works in batches on the rows still NULL, so it is idempotent
// and resumes after a crash.
func (s *Store) backfill(ctx context.Context) error {
	for _, step := range []func(ctx context.Context, tx *sql.Tx) (int, error){backfillUsers, backfillEvents} {
		for {
			var n int
			err := s.Update(ctx, func(ctx context.Context, t readmodel.Tx) error {
				var err error
				n, err = step(ctx, t.(*Tx).tx)
				return err
			})
			if err != nil {
				return fmt.Errorf("backfill: %w", err)
			}
			if n < backfillBatch {
				break
			}
		}
	}
	return nil
}

func backfillUsers(ctx context.Context, tx *sql.Tx) (int, error) {
	datas, err := blobs(ctx, tx, `SELECT data FROM users WHERE display_name_lower IS NULL LIMIT ?`)
	if err != nil {
		return 0, err
	}
	for _, data := range datas {
		u := &dsyncv1.User{}
		if err := proto.Unmarshal(data, u); err != nil {
			return 0, fmt.Errorf("decode user: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE users SET display_name_lower = ? WHERE id = ?`,
			strings.ToLower(u.GetDisplayName()), u.GetId()); err != nil {
			return 0, fmt.Errorf("backfill user %s: %w", u.GetId(), err)
		}
		if err := setEmails(ctx, tx, u); err != nil {
			return 0, err
		}
	}
	return len(datas), nil
}

func backfillEvents(ctx context.Context, tx *sql.Tx) (int, error) {
	datas, err := blobs(ctx, tx, `SELECT data FROM projector_events WHERE user_id IS NULL LIMIT ?`)
	if err != nil {
		return 0, err
	}
	for _, data := range datas {
		ev := &dsyncv1.Event{}
		if err := proto.Unmarshal(data, ev); err != nil {
			return 0, fmt.Errorf("decode event: %w", err)
		}
		userID, groupID := readmodel.EventResources(ev)
		if _, err := tx.ExecContext(ctx, `UPDATE projector_events SET user_id = ?, group_id = ? WHERE id = ?`,
			userID, groupID, ev.GetId()); err != nil {
			return 0, fmt.Errorf("backfill event %s: %w", ev.GetId(), err)
		}
	}
	return len(datas), nil
}

// blobs reads one blob column, at most backfillBatch rows.
func blobs(ctx context.Context, tx *sql.Tx, query string) ([][]byte, error) {
	rows, err := tx.QueryContext(ctx, query, backfillBatch)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}
