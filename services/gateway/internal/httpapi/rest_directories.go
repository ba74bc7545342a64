package httpapi

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/dsync-dev/dsync/pkg/event"
	"github.com/dsync-dev/dsync/pkg/workos"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
	"github.com/dsync-dev/dsync/services/gateway/internal/domain"
)

// maxDirectoryRetries bounds the re-reads when a directory changes between
// reading and appending (a concurrent settings change).
const maxDirectoryRetries = 3

// changeDirectory appends the event change makes of the directory's current
// state, with optimistic concurrency on the directory subject: the append
// holds only if nothing was appended since the read, and is retried on a
// conflict. change returns nil to append nothing.
func (s *server) changeDirectory(ctx context.Context, id string, change func(dir *dsyncv1.Directory) *dsyncv1.Event) (*dsyncv1.Event, error) {
	for attempt := 0; ; attempt++ {
		last, seq, err := s.Log.Last(ctx, event.DirectorySubject(id))
		if err != nil {
			return nil, err
		}
		if last.GetDirectory() == nil || last.GetType() == dsyncv1.EventType_EVENT_TYPE_DIRECTORY_DELETED {
			return nil, notFound("Directory %s not found", id)
		}
		ev := change(proto.CloneOf(last.GetDirectory()))
		if _, err = s.Log.Append(ctx, event.DirectorySubject(id), ev, seq); err == nil {
			return ev, nil
		}
		if !errors.Is(err, domain.ErrConflict) || attempt == maxDirectoryRetries {
			return nil, fmt.Errorf("change directory %s: %w", id, err)
		}
	}
}

func (s *server) directoryEvent(r *http.Request, typ dsyncv1.EventType, d *dsyncv1.Directory, now time.Time) *dsyncv1.Event {
	src := s.source(r)
	return &dsyncv1.Event{
		Id:             s.IDs.New(event.PrefixEvent),
		DirectoryId:    d.GetId(),
		OrganizationId: d.GetOrganizationId(),
		OccurredAt:     timestamppb.New(now),
		Type:           typ,
		Reason:         dsyncv1.Reason_REASON_ADMIN,
		Source:         &dsyncv1.Source{Api: "rest", RequestId: src.RequestID, UserAgent: src.UserAgent},
		TraceContext:   src.TraceContext,
		Payload:        &dsyncv1.Event_Directory{Directory: d},
	}
}

// deleteDirectory appends DIRECTORY_DELETED (dsync.deleted, the only event
// of a deletion, as in WorkOS). The SCIM endpoint reads the directory's
// subject on every request, so the token stops working with the append;
// the projector removes the directory's data when it applies it.
func (s *server) deleteDirectory(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !event.ValidID(id, event.PrefixDirectory) {
		s.restFail(w, r, notFound("Directory %s not found", id))
		return
	}
	info(r.Context()).directoryID = id
	_, err := s.changeDirectory(r.Context(), id, func(d *dsyncv1.Directory) *dsyncv1.Event {
		now := time.Now()
		d.State = dsyncv1.DirectoryState_DIRECTORY_STATE_DELETING
		d.UpdatedAt = timestamppb.New(now)
		return s.directoryEvent(r, dsyncv1.EventType_EVENT_TYPE_DIRECTORY_DELETED, d, now)
	})
	if err != nil {
		s.restFail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// rotateToken replaces the directory's SCIM bearer token. The new token is
// in this response only; the old one stops working with the append.
func (s *server) rotateToken(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !event.ValidID(id, event.PrefixDirectory) {
		s.restFail(w, r, notFound("Directory %s not found", id))
		return
	}
	info(r.Context()).directoryID = id
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		s.restFail(w, r, fmt.Errorf("make token: %w", err))
		return
	}
	token := base64.RawURLEncoding.EncodeToString(raw[:])
	sum := sha256.Sum256([]byte(token))
	ev, err := s.changeDirectory(r.Context(), id, func(d *dsyncv1.Directory) *dsyncv1.Event {
		now := time.Now()
		d.ScimTokenSha256 = sum[:]
		d.UpdatedAt = timestamppb.New(now)
		return s.directoryEvent(r, dsyncv1.EventType_EVENT_TYPE_DIRECTORY_UPDATED, d, now)
	})
	if err != nil {
		s.restFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, createdDirectory{
		Directory: workos.NewDirectory(ev.GetDirectory()),
		SCIM:      scimConnection{Endpoint: s.PublicURL + "/scim/v2/" + id, BearerToken: token},
	})
}
