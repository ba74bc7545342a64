package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"

	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
	"github.com/dsync-dev/dsync/services/projector/internal/readmodel"
)

// userSortCols and groupSortCols are the indexed columns each sort key
// orders by (every one leads an index after directory_id).
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
	sql := `SELECT u.data, u.version FROM users u WHERE u.directory_id = $1`
	if q.Key != nil {
		args = append(args, text(keyValue(*q.Key)))
		switch q.Key.Field {
		case readmodel.KeyID:
			sql += ` AND u.id = $2`
		case readmodel.KeyIdpID:
			sql += ` AND u.idp_id = $2`
		case readmodel.KeyUserName:
			sql += ` AND u.user_name_lower = $2`
		case readmodel.KeyEmail:
			sql += ` AND u.id IN (SELECT user_id FROM user_emails WHERE directory_id = $1 AND email_lower = $2)`
		default:
			return nil, fmt.Errorf("query users: unsupported key %d", q.Key.Field)
		}
	}
	sql, args, err := ordered(sql, args, userSortCols, "u.id", q)
	if err != nil {
		return nil, fmt.Errorf("query users: %w", err)
	}
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("query users: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (readmodel.VersionedUser, error) {
		var (
			data []byte
			vers int64
		)
		if err := row.Scan(&data, &vers); err != nil {
			return readmodel.VersionedUser{}, err
		}
		u := &dsyncv1.User{}
		if err := proto.Unmarshal(data, u); err != nil {
			return readmodel.VersionedUser{}, fmt.Errorf("decode user: %w", err)
		}
		return readmodel.VersionedUser{User: u, Version: uint64(vers)}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("query users: %w", err)
	}
	return out, nil
}

// QueryGroups implements readmodel.Store.
func (s *Store) QueryGroups(ctx context.Context, q readmodel.Query) ([]*dsyncv1.GroupWithCount, error) {
	args := []any{q.DirectoryID}
	sql := `SELECT g.data, g.member_count, g.version FROM groups g WHERE g.directory_id = $1`
	if q.Key != nil {
		args = append(args, text(keyValue(*q.Key)))
		switch q.Key.Field {
		case readmodel.KeyID:
			sql += ` AND g.id = $2`
		case readmodel.KeyIdpID:
			sql += ` AND g.idp_id = $2`
		case readmodel.KeyGroupName:
			sql += ` AND g.name_lower = $2`
		case readmodel.KeyMember:
			sql += ` AND g.id IN (SELECT group_id FROM memberships WHERE user_id = $2 AND directory_id = $1)`
		default:
			return nil, fmt.Errorf("query groups: unsupported key %d", q.Key.Field)
		}
	}
	sql, args, err := ordered(sql, args, groupSortCols, "g.id", q)
	if err != nil {
		return nil, fmt.Errorf("query groups: %w", err)
	}
	rows, err := s.pool.Query(ctx, sql, args...)
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

// ordered completes sel with q's id bound, order (the sort column, then
// idCol), limit and offset.
func ordered(sel string, args []any, cols map[readmodel.SortKey]string, idCol string, q readmodel.Query) (string, []any, error) {
	col, ok := cols[q.Sort]
	if !ok {
		return "", nil, fmt.Errorf("unsupported sort key %d", q.Sort)
	}
	var b strings.Builder
	b.WriteString(sel)
	if q.GreaterThan != "" {
		args = append(args, q.GreaterThan)
		fmt.Fprintf(&b, " AND %s > $%d", idCol, len(args))
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
	fmt.Fprintf(&b, " LIMIT $%d", len(args))
	if q.Offset > 0 {
		args = append(args, q.Offset)
		fmt.Fprintf(&b, " OFFSET $%d", len(args))
	}
	return b.String(), args, nil
}

// backfillBatch is how many rows the backfill fixes per transaction.
const backfillBatch = 1000

// backfill fills what migration 0003 could not compute in SQL, from the
// rows' data: users' display_name_lower and emails, and events' user and
// group. It works in batches on the rows still NULL, so it is idempotent
// and resumes after a crash; on a new or current database it is two
// indexed reads.
func (s *Store) backfill(ctx context.Context) error {
	for {
		n, err := s.backfillUsers(ctx)
		if err != nil {
			return fmt.Errorf("backfill users: %w", err)
		}
		if n < backfillBatch {
			break
		}
	}
	for {
		n, err := s.backfillEvents(ctx)
		if err != nil {
			return fmt.Errorf("backfill events: %w", err)
		}
		if n < backfillBatch {
			return nil
		}
	}
}

func (s *Store) backfillUsers(ctx context.Context) (int, error) {
	var n int
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT data FROM users WHERE display_name_lower IS NULL LIMIT $1 FOR UPDATE`, backfillBatch)
		if err != nil {
			return err
		}
		datas, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
		if err != nil {
			return err
		}
		n = len(datas)
		t := &Tx{tx: tx}
		for _, data := range datas {
			u := &dsyncv1.User{}
			if err := proto.Unmarshal(data, u); err != nil {
				return fmt.Errorf("decode user: %w", err)
			}
			if err := t.queue(ctx, "backfill user "+u.GetId(), `UPDATE users SET display_name_lower = $2 WHERE id = $1`,
				u.GetId(), text(strings.ToLower(u.GetDisplayName()))); err != nil {
				return err
			}
			if err := t.setEmails(ctx, u); err != nil {
				return err
			}
		}
		return t.flush(ctx)
	})
	return n, err
}

func (s *Store) backfillEvents(ctx context.Context) (int, error) {
	var n int
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT seq, data FROM projector_events WHERE user_id IS NULL LIMIT $1 FOR UPDATE`, backfillBatch)
		if err != nil {
			return err
		}
		type rec struct {
			seq  int64
			data []byte
		}
		recs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (rec, error) {
			var r rec
			err := row.Scan(&r.seq, &r.data)
			return r, err
		})
		if err != nil {
			return err
		}
		n = len(recs)
		t := &Tx{tx: tx}
		for _, r := range recs {
			ev := &dsyncv1.Event{}
			if err := proto.Unmarshal(r.data, ev); err != nil {
				return fmt.Errorf("decode event %d: %w", r.seq, err)
			}
			userID, groupID := readmodel.EventResources(ev)
			if err := t.queue(ctx, fmt.Sprintf("backfill event %d", r.seq),
				`UPDATE projector_events SET user_id = $2, group_id = $3 WHERE seq = $1`, r.seq, text(userID), text(groupID)); err != nil {
				return err
			}
		}
		return t.flush(ctx)
	})
	return n, err
}
