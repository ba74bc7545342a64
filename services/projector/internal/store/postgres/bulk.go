package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
	"github.com/dsync-dev/dsync/services/projector/internal/readmodel"
)

// bulkStore is the read model a rebuild writes into: a Store whose
// transactions fold the users and groups created, the memberships added and
// the events recorded in memory and write them at the end of the
// transaction, with COPY where nothing can conflict, instead of statements
// per event or per run. It relies on what only a rebuild guarantees: the
// tables start empty and only this Store writes them, so it knows every
// user and group id it has written (known) and one not among them is a
// plain insert. Everything else goes through the ordinary Tx, in order.
type bulkStore struct {
	*Store
	// known holds the id of every user row committed in the rebuild
	// schema, less those deleted by id since. Changed only after a commit,
	// so a rolled-back transaction leaves it as it was. An id known but no
	// longer in the table (its directory was deleted) is safe: it takes
	// the ordinary upsert path. The reverse would fail the copy.
	known map[string]bool
	// knownGroups is known for groups.
	knownGroups map[string]bool
}

var _ readmodel.Store = (*bulkStore)(nil)

func newBulkStore(s *Store) *bulkStore {
	return &bulkStore{Store: s, known: map[string]bool{}, knownGroups: map[string]bool{}}
}

// Update implements readmodel.Store with a bulkTx.
func (s *bulkStore) Update(ctx context.Context, fn func(context.Context, readmodel.Tx) error) error {
	var b *bulkTx
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		b = &bulkTx{Tx: &Tx{tx: tx}, store: s, users: map[string]*foldedUser{},
			groups: map[string][]any{}, edges: map[edge]string{},
			goneUsers: map[string]bool{}, goneGroups: map[string]bool{}, countDirs: map[string]bool{}}
		if err := fn(ctx, b); err != nil {
			return err
		}
		return b.write(ctx)
	})
	if err != nil {
		return err
	}
	// Committed: the rows written are now known, the deleted ones not.
	for id := range b.goneUsers {
		delete(s.known, id)
	}
	for id := range b.users {
		s.known[id] = true
	}
	for id := range b.goneGroups {
		delete(s.knownGroups, id)
	}
	for id := range b.groups {
		s.knownGroups[id] = true
	}
	return nil
}

// foldedUser is the last state of a user created in this transaction.
type foldedUser struct {
	row    []any // the users columns, as usersColumns
	emails []string
}

var usersColumns = []string{"id", "directory_id", "organization_id", "idp_id", "user_name", "user_name_lower",
	"email", "first_name", "last_name", "state", "created_at", "updated_at", "data", "email_lower",
	"display_name_lower", "version"}

var groupsColumns = []string{"id", "directory_id", "organization_id", "idp_id", "name", "created_at",
	"updated_at", "data", "name_lower", "version", "member_count"}

// edge is a membership by group and user id.
type edge struct{ group, user string }

var eventsColumns = []string{"seq", "id", "directory_id", "organization_id", "type", "occurred_at", "data",
	"user_id", "group_id"}

// bulkTx is a rebuild transaction. Users and groups not yet in the table
// are folded (a user updated five times is written once, a user created and
// deleted not at all) and copied in at the end, with the users' emails and
// the directory counts they add; an update of a row an earlier transaction
// wrote takes the ordinary upsert path. Added memberships are folded into a
// set (a removal or deletion drops them from it) and inserted at the end in
// one statement, which counts them into their groups; the new groups' counts
// are then their edges. Recorded events are copied in at the end. The
// ordinary writes, sent first, are deletions (whose effect on the folded
// rows the fold applies itself) and upserts of existing rows, which no
// folded write depends on; so the result is the ordinary Tx's row for row
// (TestRebuildPostgres compares).
type bulkTx struct {
	*Tx
	store *bulkStore
	users map[string]*foldedUser
	// order is the order users were first folded, so the copy (and so the
	// heap) follows the stream as the ordinary path's does.
	order []string
	// groups are the groups created in this transaction by id, as
	// groupsColumns, in groupOrder; their member_count is set from the
	// edges once these are written.
	groups     map[string][]any
	groupOrder []string
	// edges are the memberships added in this transaction (to the
	// directory id), in edgeOrder. They may exist already (an edge added
	// twice): written with ON CONFLICT DO NOTHING.
	edges     map[edge]string
	edgeOrder []edge
	// goneUsers and goneGroups are the users and groups deleted by id in
	// this transaction: their known rows are gone from the table.
	goneUsers  map[string]bool
	goneGroups map[string]bool
	events     eventRows
	// countDirs are the directories a folded user or group was created
	// in, in countOrder: the ordinary path leaves their directory_counts
	// row even when the row is deleted again.
	countDirs  map[string]bool
	countOrder []string
}

// countDir notes that a user or group of dir was created.
func (t *bulkTx) countDir(dir string) {
	if !t.countDirs[dir] {
		t.countDirs[dir] = true
		t.countOrder = append(t.countOrder, dir)
	}
}

// inTable reports whether user id has a row in the table at this point of
// the transaction, written by an earlier one.
func (t *bulkTx) inTable(id string) bool {
	return t.store.known[id] && !t.goneUsers[id]
}

// UpsertUser implements readmodel.Tx.
func (t *bulkTx) UpsertUser(ctx context.Context, u *dsyncv1.User, version uint64) error {
	id := u.GetId()
	if t.inTable(id) {
		return t.Tx.UpsertUser(ctx, u, version)
	}
	data, err := marshal(u)
	if err != nil {
		return err
	}
	f := &foldedUser{row: []any{id, u.GetDirectoryId(), text(u.GetOrganizationId()), text(u.GetIdpId()),
		text(u.GetUserName()), text(strings.ToLower(u.GetUserName())), text(u.GetEmail()), text(u.GetFirstName()),
		text(u.GetLastName()), u.GetState().String(), ts(u.GetCreatedAt()), ts(u.GetUpdatedAt()), data,
		text(strings.ToLower(u.GetEmail())), text(strings.ToLower(u.GetDisplayName())), int64(version)}}
	// The ordinary path inserts emails with ON CONFLICT DO NOTHING; COPY
	// has no such clause, so duplicates go here.
	seen := map[string]bool{}
	for _, e := range readmodel.UserEmails(u) {
		if e = text(e); !seen[e] {
			seen[e] = true
			f.emails = append(f.emails, e)
		}
	}
	if _, ok := t.users[id]; !ok {
		t.order = append(t.order, id)
	}
	t.countDir(u.GetDirectoryId())
	t.users[id] = f
	return nil
}

// groupInTable is inTable for groups.
func (t *bulkTx) groupInTable(id string) bool {
	return t.store.knownGroups[id] && !t.goneGroups[id]
}

// UpsertGroup implements readmodel.Tx.
func (t *bulkTx) UpsertGroup(ctx context.Context, g *dsyncv1.Group, version uint64) error {
	id := g.GetId()
	if t.groupInTable(id) {
		return t.Tx.UpsertGroup(ctx, g, version)
	}
	data, err := marshal(g)
	if err != nil {
		return err
	}
	if _, ok := t.groups[id]; !ok {
		t.groupOrder = append(t.groupOrder, id)
	}
	t.countDir(g.GetDirectoryId())
	t.groups[id] = []any{id, g.GetDirectoryId(), text(g.GetOrganizationId()), text(g.GetIdpId()), text(g.GetName()),
		ts(g.GetCreatedAt()), ts(g.GetUpdatedAt()), data, text(strings.ToLower(g.GetName())), int64(version), int64(0)}
	return nil
}

// DeleteGroup implements readmodel.Tx.
func (t *bulkTx) DeleteGroup(ctx context.Context, id string) error {
	delete(t.groups, id)
	t.dropEdges(func(e edge, _ string) bool { return e.group == id })
	t.goneGroups[id] = true
	return t.Tx.DeleteGroup(ctx, id)
}

// AddMember implements readmodel.Tx.
func (t *bulkTx) AddMember(_ context.Context, directoryID, groupID, userID string) error {
	e := edge{groupID, userID}
	if _, ok := t.edges[e]; !ok {
		t.edgeOrder = append(t.edgeOrder, e)
		t.edges[e] = directoryID
	}
	return nil
}

// RemoveMember implements readmodel.Tx.
func (t *bulkTx) RemoveMember(ctx context.Context, groupID, userID string) error {
	delete(t.edges, edge{groupID, userID})
	return t.Tx.RemoveMember(ctx, groupID, userID)
}

// dropEdges removes the folded edges that gone reports.
func (t *bulkTx) dropEdges(gone func(e edge, dir string) bool) {
	for e, dir := range t.edges {
		if gone(e, dir) {
			delete(t.edges, e)
		}
	}
}

// DeleteUser implements readmodel.Tx.
func (t *bulkTx) DeleteUser(ctx context.Context, id string) error {
	t.dropEdges(func(e edge, _ string) bool { return e.user == id })
	t.dropFolded(func(uid string, _ *foldedUser) bool { return uid == id })
	t.goneUsers[id] = true
	// Still run: the user's memberships are in the table either way.
	return t.Tx.DeleteUser(ctx, id)
}

// DeleteDirectory implements readmodel.Tx.
func (t *bulkTx) DeleteDirectory(ctx context.Context, id string) error {
	t.dropFolded(func(_ string, u *foldedUser) bool { return u.row[1] == id })
	t.dropEdges(func(_ edge, dir string) bool { return dir == id })
	delete(t.countDirs, id) // its directory_counts row is deleted too
	for gid, g := range t.groups {
		if g[1] == id {
			delete(t.groups, gid)
		}
	}
	return t.Tx.DeleteDirectory(ctx, id)
}

// dropFolded removes the folded users that gone reports.
func (t *bulkTx) dropFolded(gone func(id string, u *foldedUser) bool) {
	for id, u := range t.users {
		if gone(id, u) {
			delete(t.users, id)
		}
	}
}

// RecordEvent implements readmodel.Tx: the row is kept for writeEvents.
func (t *bulkTx) RecordEvent(_ context.Context, seq uint64, ev *dsyncv1.Event) error {
	return t.events.add(seq, ev)
}

// write sends the ordinary Tx's queued writes, then copies in the folded
// users, their emails and counts, and the events.
func (t *bulkTx) write(ctx context.Context) error {
	if err := t.Tx.flush(ctx); err != nil {
		return err
	}
	var (
		users, emails, groups [][]any
		newGroups             []string
		dirs                  []string
		counts                = map[string]*[2]int64{} // users, groups inserted by directory
		done                  = map[string]bool{}      // an id folded, deleted and folded again is in an order twice
	)
	count := func(dir string, i int) {
		c, ok := counts[dir]
		if !ok {
			c = &[2]int64{}
			counts[dir] = c
			dirs = append(dirs, dir)
		}
		if i >= 0 {
			c[i]++
		}
	}
	for _, dir := range t.countOrder {
		if t.countDirs[dir] {
			count(dir, -1)
		}
	}
	for _, id := range t.order {
		u, ok := t.users[id]
		if !ok || done[id] {
			continue
		}
		done[id] = true
		users = append(users, u.row)
		dir := u.row[1].(string)
		count(dir, 0)
		for _, e := range u.emails {
			emails = append(emails, []any{id, dir, e})
		}
	}
	for _, id := range t.groupOrder {
		g, ok := t.groups[id]
		if !ok || done[id] {
			continue
		}
		done[id] = true
		groups = append(groups, g)
		newGroups = append(newGroups, id)
		count(g[1].(string), 1)
	}
	for _, c := range []struct {
		table string
		cols  []string
		rows  [][]any
	}{
		{"users", usersColumns, users},
		{"user_emails", []string{"user_id", "directory_id", "email_lower"}, emails},
		{"groups", groupsColumns, groups},
	} {
		if len(c.rows) == 0 {
			continue
		}
		if _, err := t.tx.CopyFrom(ctx, pgx.Identifier{c.table}, c.cols, pgx.CopyFromRows(c.rows)); err != nil {
			return fmt.Errorf("copy %d rows into %s: %w", len(c.rows), c.table, err)
		}
	}
	if len(dirs) > 0 {
		nu, ng := make([]int64, len(dirs)), make([]int64, len(dirs))
		for i, d := range dirs {
			nu[i], ng[i] = counts[d][0], counts[d][1]
		}
		if _, err := t.tx.Exec(ctx, `INSERT INTO directory_counts (directory_id, users, groups)
			SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[])
			ON CONFLICT (directory_id) DO UPDATE SET users = directory_counts.users + EXCLUDED.users,
				groups = directory_counts.groups + EXCLUDED.groups`, dirs, nu, ng); err != nil {
			return fmt.Errorf("count copied users and groups: %w", err)
		}
	}
	if len(t.edges) > 0 {
		var dir, group, user []string
		for _, e := range t.edgeOrder {
			d, ok := t.edges[e]
			if !ok {
				continue
			}
			delete(t.edges, e)
			dir, group, user = append(dir, d), append(group, e.group), append(user, e.user)
		}
		// As the ordinary path: only the edges not there already count.
		if _, err := t.tx.Exec(ctx, `WITH added AS (INSERT INTO memberships (directory_id, group_id, user_id)
				SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
				ON CONFLICT (group_id, user_id) DO NOTHING RETURNING group_id)
			UPDATE groups g SET member_count = g.member_count + a.n
			FROM (SELECT group_id, count(*) AS n FROM added GROUP BY group_id) a WHERE g.id = a.group_id`,
			dir, group, user); err != nil {
			return fmt.Errorf("add %d members: %w", len(group), err)
		}
	}
	if len(newGroups) > 0 {
		// A group's count is its edges, including those that arrived
		// before it (the projection has no foreign keys).
		if _, err := t.tx.Exec(ctx, `UPDATE groups g SET member_count =
				(SELECT count(*) FROM memberships m WHERE m.group_id = g.id) WHERE g.id = ANY($1)`, newGroups); err != nil {
			return fmt.Errorf("count members of %d groups: %w", len(newGroups), err)
		}
	}
	return t.writeEvents(ctx)
}

// writeEvents copies the events in. An event id recorded already (a
// duplicate publish outside the dedup window) fails the copy; then, back at
// a savepoint, the ordinary insert that leaves it as it is.
func (t *bulkTx) writeEvents(ctx context.Context) error {
	e := t.events
	if len(e.seq) == 0 {
		return nil
	}
	rows := make([][]any, len(e.seq))
	for i := range e.seq {
		rows[i] = []any{e.seq[i], e.id[i], e.dir[i], e.org[i], e.typ[i], e.occurred[i], e.data[i], e.userID[i], e.groupID[i]}
	}
	sp, err := t.tx.Begin(ctx)
	if err != nil {
		return fmt.Errorf("record events: %w", err)
	}
	if _, err := sp.CopyFrom(ctx, pgx.Identifier{"projector_events"}, eventsColumns, pgx.CopyFromRows(rows)); err == nil {
		if err := sp.Commit(ctx); err != nil {
			return fmt.Errorf("record events: %w", err)
		}
		return nil
	}
	if err := sp.Rollback(ctx); err != nil {
		return fmt.Errorf("record events: %w", err)
	}
	t.Tx.events = e
	return t.Tx.flush(ctx)
}
