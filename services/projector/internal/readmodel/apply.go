package readmodel

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/dsync-dev/dsync/pkg/event"
	"github.com/dsync-dev/dsync/pkg/workos"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
)

// errInvalid marks an event that decodes but can never be applied (a missing
// payload, a malformed id). It is skipped like a malformed message.
var errInvalid = errors.New("invalid event")

// Record is one message of the event stream.
type Record struct {
	// Seq is the stream sequence.
	Seq     uint64
	Subject string
	Data    []byte
}

// Applied describes one event that changed the read model.
type Applied struct {
	Seq     uint64
	EventID string
	Type    dsyncv1.EventType
}

// Result reports what Apply did.
type Result struct {
	// Checkpoint is the checkpoint after the batch.
	Checkpoint uint64
	Applied    []Applied
	// Skipped are malformed or invalid messages: recorded, never applied.
	Skipped []Skip
	// Duplicates counts records at or below the checkpoint (redeliveries).
	Duplicates int
	// Claims counts uniqueness claims (event.SubjectAllClaims) passed over.
	Claims int
}

// claimPrefix is the subject prefix of uniqueness claims.
var claimPrefix = strings.TrimSuffix(event.SubjectAllClaims, ">")

// IsClaim reports whether subject is a uniqueness claim rather than a fact.
// Claims change nothing in the read model; readers of the whole stream (no
// subject filter, see Apply) pass over them.
func IsClaim(subject string) bool { return strings.HasPrefix(subject, claimPrefix) }

// Apply applies recs, in order, in one transaction together with the
// checkpoint, so a batch is applied entirely or not at all. Records at or
// below the checkpoint are skipped: a redelivery never applies an event twice.
// A malformed or invalid message is recorded with Tx.RecordSkip and moves the
// checkpoint on, so it never blocks the projection. Any error is a store
// error: the transaction was rolled back and the caller retries the batch
// from Store.Checkpoint.
//
// Claims (IsClaim) are passed over and move the checkpoint on, so callers
// read the stream without a subject filter: with several filter subjects the
// NATS server works out each pull's pending count by walking the stream's
// subject tree (one subject per user and group), which is quadratic over a
// large stream.
func Apply(ctx context.Context, store Store, recs []Record) (Result, error) {
	var res Result
	err := store.Update(ctx, func(ctx context.Context, tx Tx) error {
		res = Result{}
		cp, err := tx.Checkpoint(ctx)
		if err != nil {
			return err
		}
		for _, rec := range recs {
			if rec.Seq <= cp {
				res.Duplicates++
				continue
			}
			if IsClaim(rec.Subject) {
				res.Claims++
				cp = rec.Seq
				continue
			}
			ev, err := event.Decode(rec.Data)
			if err == nil {
				err = applyEvent(ctx, tx, rec.Seq, ev)
			}
			if err == nil {
				// Kept in the same transaction as the rows, so the Events
				// API holds exactly the events the read model reflects.
				if _, public := workos.EventName(ev.GetType()); public {
					err = tx.RecordEvent(ctx, rec.Seq, ev)
				}
			}
			switch {
			case err == nil:
				res.Applied = append(res.Applied, Applied{Seq: rec.Seq, EventID: ev.GetId(), Type: ev.GetType()})
			case errors.Is(err, event.ErrMalformed) || errors.Is(err, errInvalid):
				skip := Skip{Seq: rec.Seq, Subject: rec.Subject, Reason: err.Error()}
				if err := tx.RecordSkip(ctx, skip); err != nil {
					return err
				}
				res.Skipped = append(res.Skipped, skip)
			default:
				return fmt.Errorf("apply stream sequence %d: %w", rec.Seq, err)
			}
			cp = rec.Seq
		}
		res.Checkpoint = cp
		if len(res.Applied)+len(res.Skipped)+res.Claims == 0 {
			return nil
		}
		return tx.SetCheckpoint(ctx, cp)
	})
	if err != nil {
		return Result{}, fmt.Errorf("apply batch: %w", err)
	}
	return res, nil
}

// applyEvent makes the change ev describes. Events carry the resulting
// state, so created and updated events are both upserts. seq becomes the
// version of the row it writes.
func applyEvent(ctx context.Context, tx Tx, seq uint64, ev *dsyncv1.Event) error {
	switch ev.GetType() {
	case dsyncv1.EventType_EVENT_TYPE_ORGANIZATION_CREATED, dsyncv1.EventType_EVENT_TYPE_ORGANIZATION_UPDATED:
		o := ev.GetOrganization()
		if err := checkID(o.GetId(), event.PrefixOrganization); err != nil {
			return err
		}
		return tx.UpsertOrganization(ctx, o)

	case dsyncv1.EventType_EVENT_TYPE_DIRECTORY_ACTIVATED, dsyncv1.EventType_EVENT_TYPE_DIRECTORY_UPDATED:
		d := ev.GetDirectory()
		if err := checkID(d.GetId(), event.PrefixDirectory); err != nil {
			return err
		}
		if d.GetOrganizationId() == "" && ev.GetOrganizationId() != "" {
			d = proto.CloneOf(d)
			d.OrganizationId = ev.GetOrganizationId()
		}
		return tx.UpsertDirectory(ctx, d)

	case dsyncv1.EventType_EVENT_TYPE_DIRECTORY_DELETED:
		id := ev.GetDirectory().GetId()
		if id == "" {
			id = ev.GetDirectoryId()
		}
		if err := checkID(id, event.PrefixDirectory); err != nil {
			return err
		}
		return tx.DeleteDirectory(ctx, id)

	case dsyncv1.EventType_EVENT_TYPE_USER_CREATED, dsyncv1.EventType_EVENT_TYPE_USER_UPDATED:
		u := ev.GetUser()
		if err := checkID(u.GetId(), event.PrefixUser); err != nil {
			return err
		}
		u = withUserScope(u, ev)
		if err := checkID(u.GetDirectoryId(), event.PrefixDirectory); err != nil {
			return err
		}
		return tx.UpsertUser(ctx, u, seq)

	case dsyncv1.EventType_EVENT_TYPE_USER_DELETED:
		id := ev.GetUser().GetId()
		if err := checkID(id, event.PrefixUser); err != nil {
			return err
		}
		return tx.DeleteUser(ctx, id)

	case dsyncv1.EventType_EVENT_TYPE_GROUP_CREATED, dsyncv1.EventType_EVENT_TYPE_GROUP_UPDATED:
		g := ev.GetGroup()
		if err := checkID(g.GetId(), event.PrefixGroup); err != nil {
			return err
		}
		if (g.GetDirectoryId() == "" && ev.GetDirectoryId() != "") || (g.GetOrganizationId() == "" && ev.GetOrganizationId() != "") {
			g = proto.CloneOf(g)
			if g.DirectoryId == "" {
				g.DirectoryId = ev.GetDirectoryId()
			}
			if g.OrganizationId == "" {
				g.OrganizationId = ev.GetOrganizationId()
			}
		}
		if err := checkID(g.GetDirectoryId(), event.PrefixDirectory); err != nil {
			return err
		}
		return tx.UpsertGroup(ctx, g, seq)

	case dsyncv1.EventType_EVENT_TYPE_GROUP_DELETED:
		id := ev.GetGroup().GetId()
		if err := checkID(id, event.PrefixGroup); err != nil {
			return err
		}
		return tx.DeleteGroup(ctx, id)

	case dsyncv1.EventType_EVENT_TYPE_GROUP_USER_ADDED, dsyncv1.EventType_EVENT_TYPE_GROUP_USER_REMOVED:
		m := ev.GetMembership()
		groupID, userID := m.GetGroupId(), m.GetUserId()
		if groupID == "" {
			groupID = m.GetGroup().GetId()
		}
		if userID == "" {
			userID = m.GetUser().GetId()
		}
		if err := checkID(groupID, event.PrefixGroup); err != nil {
			return err
		}
		if err := checkID(userID, event.PrefixUser); err != nil {
			return err
		}
		if ev.GetType() == dsyncv1.EventType_EVENT_TYPE_GROUP_USER_REMOVED {
			return tx.RemoveMember(ctx, groupID, userID)
		}
		if err := checkID(ev.GetDirectoryId(), event.PrefixDirectory); err != nil {
			return err
		}
		return tx.AddMember(ctx, ev.GetDirectoryId(), groupID, userID)

	default:
		// A type this version does not know (added by a newer writer) is
		// skipped rather than blocking the projection; it is recorded, so
		// a rebuild after an upgrade picks it up.
		return fmt.Errorf("%w: unknown type %s", errInvalid, ev.GetType())
	}
}

// withUserScope fills the user's directory and organization from the
// envelope when the payload leaves them out, so that the stored user agrees
// with the columns it is listed by.
func withUserScope(u *dsyncv1.User, ev *dsyncv1.Event) *dsyncv1.User {
	if (u.GetDirectoryId() != "" || ev.GetDirectoryId() == "") && (u.GetOrganizationId() != "" || ev.GetOrganizationId() == "") {
		return u
	}
	u = proto.CloneOf(u)
	if u.DirectoryId == "" {
		u.DirectoryId = ev.GetDirectoryId()
	}
	if u.OrganizationId == "" {
		u.OrganizationId = ev.GetOrganizationId()
	}
	return u
}

// checkID rejects an id that is not prefix and a ULID. Stored ids must sort
// as ULIDs for pagination to mean creation order.
func checkID(id, prefix string) error {
	if !event.ValidID(id, prefix) {
		return fmt.Errorf("%w: id %q is not a %sULID", errInvalid, id, prefix)
	}
	return nil
}
