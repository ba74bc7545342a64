// Package readmodel is the projector's domain: the read model's store port,
// how events change it, and cursor pagination over it. It imports no
// transport or storage package; internal/store/postgres and
// internal/store/sqlite implement Store, and internal/store/storetest is the
// conformance suite both must pass.
package readmodel

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
)

// ErrNotFound is returned by the Get methods of a Store for an unknown id.
var ErrNotFound = errors.New("not found")

// Store is the read model. Reads see committed state only. Implementations
// are safe for concurrent use.
type Store interface {
	// Update runs fn in one transaction. It commits when fn returns nil and
	// rolls back otherwise, so a failing fn leaves nothing half-written. The
	// Tx is valid only inside fn, and fn must not call the Store's own
	// methods (the SQLite store has one connection and would deadlock).
	Update(ctx context.Context, fn func(ctx context.Context, tx Tx) error) error
	// Checkpoint returns the last stream sequence applied to the read model
	// (0 for an empty one).
	Checkpoint(ctx context.Context) (uint64, error)

	GetOrganization(ctx context.Context, id string) (*dsyncv1.Organization, error)
	ListOrganizations(ctx context.Context, r Range) ([]*dsyncv1.Organization, error)
	GetDirectory(ctx context.Context, id string) (*dsyncv1.Directory, error)
	ListDirectories(ctx context.Context, f DirectoryFilter, r Range) ([]*dsyncv1.Directory, error)
	GetUser(ctx context.Context, id string) (*dsyncv1.User, error)
	ListUsers(ctx context.Context, directoryID string, r Range) ([]*dsyncv1.User, error)
	// GetGroup returns the group with its member count, which is kept in
	// the group's row (never counted per read).
	GetGroup(ctx context.Context, id string) (*dsyncv1.GroupWithCount, error)
	ListGroups(ctx context.Context, directoryID string, r Range) ([]*dsyncv1.GroupWithCount, error)
	// ListUserGroups lists the groups userID is a member of, by group id.
	ListUserGroups(ctx context.Context, userID string, r Range) ([]*dsyncv1.GroupWithCount, error)
	// GroupsOfUsers returns the groups of each of userIDs, in group id
	// order, in one query. Users in no group (or unknown) have no entry.
	GroupsOfUsers(ctx context.Context, userIDs []string) (map[string][]*dsyncv1.GroupWithCount, error)
	// ListGroupUsers lists the users that are members of groupID.
	ListGroupUsers(ctx context.Context, groupID string, r Range) ([]*dsyncv1.User, error)
	// GroupMemberIDs returns the user ids of groupID's members in id order.
	GroupMemberIDs(ctx context.Context, groupID string) ([]string, error)
	// FindUsers lists a directory's users whose key equals k, using an index.
	FindUsers(ctx context.Context, directoryID string, k Key, r Range) ([]*dsyncv1.User, error)
	// FindGroups lists a directory's groups whose key equals k, using an index.
	FindGroups(ctx context.Context, directoryID string, k Key, r Range) ([]*dsyncv1.GroupWithCount, error)
	// QueryUsers and QueryGroups are the SCIM searches' scans: one
	// directory, optionally narrowed by an indexed equality, in the order of
	// a sort key (ties by id), with the rows' versions.
	QueryUsers(ctx context.Context, q Query) ([]VersionedUser, error)
	QueryGroups(ctx context.Context, q Query) ([]*dsyncv1.GroupWithCount, error)
	// CountUsers and CountGroups count a directory's users and groups.
	CountUsers(ctx context.Context, directoryID string) (int64, error)
	CountGroups(ctx context.Context, directoryID string) (int64, error)

	// ListEvents lists recorded public events in sequence order within r.
	ListEvents(ctx context.Context, f EventFilter, r SeqRange) ([]EventRecord, error)
	// EventSeq returns the stream sequence of the recorded event id, or
	// ErrNotFound.
	EventSeq(ctx context.Context, eventID string) (uint64, error)
	// PruneEvents deletes recorded events that occurred before t and
	// returns how many.
	PruneEvents(ctx context.Context, before time.Time) (int64, error)
	// Skips lists the messages recorded with Tx.RecordSkip, oldest first.
	Skips(ctx context.Context) ([]Skip, error)

	Close() error
}

// Tx changes the read model inside Store.Update. Upserts replace the whole
// row with the state given; deletes of unknown ids are no-ops, because a
// projection replays the same facts and must converge.
type Tx interface {
	// Checkpoint returns the checkpoint as seen by this transaction. The
	// PostgreSQL store locks the row, so two projectors on one database
	// apply batches one after the other and never both apply an event.
	Checkpoint(ctx context.Context) (uint64, error)
	SetCheckpoint(ctx context.Context, seq uint64) error
	// RecordSkip records a message that was not applied and why.
	RecordSkip(ctx context.Context, s Skip) error

	UpsertOrganization(ctx context.Context, o *dsyncv1.Organization) error
	UpsertDirectory(ctx context.Context, d *dsyncv1.Directory) error
	// DeleteDirectory removes the directory with its users, groups and
	// memberships.
	DeleteDirectory(ctx context.Context, id string) error
	// UpsertUser stores u; version is the stream sequence of the event that
	// carried it (SCIM's meta.version). The user's emails (UserEmails) are
	// indexed for KeyEmail.
	UpsertUser(ctx context.Context, u *dsyncv1.User, version uint64) error
	// DeleteUser removes the user and its memberships.
	DeleteUser(ctx context.Context, id string) error
	// UpsertGroup stores g; version is as for UpsertUser. Membership changes
	// do not change a group's version.
	UpsertGroup(ctx context.Context, g *dsyncv1.Group, version uint64) error
	// DeleteGroup removes the group and its memberships.
	DeleteGroup(ctx context.Context, id string) error
	// AddMember records the edge; adding an existing edge is a no-op.
	AddMember(ctx context.Context, directoryID, groupID, userID string) error
	RemoveMember(ctx context.Context, groupID, userID string) error
	// RecordEvent keeps a public event for the Events API under its stream
	// sequence, indexed by the user and group it is about (EventResources). A sequence or event id recorded already is left as it is
	// (a replay, or a duplicate publish outside the dedup window): it must
	// never stall the projection.
	RecordEvent(ctx context.Context, seq uint64, ev *dsyncv1.Event) error
}

// KeyField names an indexed column FindUsers and FindGroups look up by.
type KeyField int

// Key fields. Values of the case-insensitive ones (user name, email, group
// name) are compared case-folded.
const (
	KeyID KeyField = iota + 1
	KeyIdpID
	KeyUserName
	// KeyEmail matches any of a user's emails (UserEmails), not only the
	// primary one.
	KeyEmail
	// KeyGroupName is a group's name (SCIM displayName).
	KeyGroupName
	// KeyMember selects the groups that have the user id Value as a member.
	KeyMember
)

// Key is one equality lookup.
type Key struct {
	Field KeyField
	Value string
}

// EventFilter narrows ListEvents; zero fields do not narrow.
type EventFilter struct {
	// Types are WorkOS event names (dsync.user.created, …).
	Types          []string
	DirectoryID    string
	OrganizationID string
	// UserID and GroupID keep the events about that user or group
	// (EventResources).
	UserID  string
	GroupID string
	// OccurredFrom (inclusive) and OccurredTo (exclusive) bound occurred_at.
	OccurredFrom time.Time
	OccurredTo   time.Time
}

// SeqRange is one keyset scan over stream sequences.
type SeqRange struct {
	// After and Before are exclusive bounds; 0 means unbounded.
	After  uint64
	Before uint64
	Desc   bool
	Limit  int
}

// EventRecord is a recorded event and its stream sequence.
type EventRecord struct {
	Seq   uint64
	Event *dsyncv1.Event
}

// Range is one keyset scan over ids. Ids are a prefix and a ULID, so byte
// order of ids is creation order.
type Range struct {
	// GreaterThan and LessThan are exclusive bounds; "" means unbounded.
	GreaterThan string
	LessThan    string
	// Desc scans from the highest id down.
	Desc bool
	// Limit is the maximum number of rows; it is always positive.
	Limit int
	// Offset skips that many rows first. Only SCIM's index-based pages use
	// it; cursor-based lists page by keyset.
	Offset int
}

// DirectoryFilter narrows ListDirectories.
type DirectoryFilter struct {
	// OrganizationID keeps only that organization's directories when set.
	OrganizationID string
	// Search keeps directories whose name contains it, without regard to case.
	Search string
}

// Skip is a message the projection stepped over without applying.
type Skip struct {
	Seq     uint64
	Subject string
	Reason  string
}

// GroupsByUser collects the rows of Store.GroupsOfUsers: (user, group)
// pairs in user then group order, each group decoded once however many of
// the users share it. The zero value is not usable; see NewGroupsByUser.
type GroupsByUser struct {
	out     map[string][]*dsyncv1.GroupWithCount
	decoded map[string]*dsyncv1.GroupWithCount
}

// NewGroupsByUser returns an empty GroupsByUser.
func NewGroupsByUser() *GroupsByUser {
	return &GroupsByUser{out: map[string][]*dsyncv1.GroupWithCount{}, decoded: map[string]*dsyncv1.GroupWithCount{}}
}

// Add appends the group groupID (data is its encoded dsyncv1.Group) to
// userID's groups.
func (c *GroupsByUser) Add(userID, groupID string, data []byte, memberCount int64, version uint64) error {
	g, ok := c.decoded[groupID]
	if !ok {
		pg := &dsyncv1.Group{}
		if err := proto.Unmarshal(data, pg); err != nil {
			return fmt.Errorf("decode group %s: %w", groupID, err)
		}
		g = &dsyncv1.GroupWithCount{Group: pg, MemberCount: memberCount, Version: version}
		c.decoded[groupID] = g
	}
	c.out[userID] = append(c.out[userID], g)
	return nil
}

// Result returns the groups by user id.
func (c *GroupsByUser) Result() map[string][]*dsyncv1.GroupWithCount { return c.out }
