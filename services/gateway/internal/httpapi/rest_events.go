package httpapi

import (
	"net/http"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/dsync-dev/dsync/pkg/event"
	"github.com/dsync-dev/dsync/pkg/workos"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
)

// newAPIEvent renders ev exactly as the webhooks do (workos.NewEvent), its
// context carrying the stream sequence, source, request id and reason.
func newAPIEvent(seq uint64, ev *dsyncv1.Event) (workos.Event, error) {
	return workos.NewEvent(seq, ev)
}

// listEvents serves GET /events: WorkOS's Events API, in stream order
// (order=asc) unless order=desc. Beyond WorkOS's filters, user_id and
// group_id keep the events about one user or group (its own events and its
// membership changes): a resource's history. The after cursor of a page is its last
// event, so a poller that stores it never skips an event: events are
// visible only once everything before them is.
func (s *server) listEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := &dsyncv1.EventFilter{
		OrganizationId: q.Get("organization_id"), DirectoryId: q.Get("directory_id"),
		UserId: q.Get("user_id"), GroupId: q.Get("group_id"),
	}
	// events=a,b and events=a&events=b and events[]=a all work: SDKs differ.
	for _, key := range []string{"events", "events[]"} {
		for _, v := range q[key] {
			for name := range strings.SplitSeq(v, ",") {
				if name = strings.TrimSpace(name); name != "" {
					f.Events = append(f.Events, name)
				}
			}
		}
	}
	for _, name := range f.GetEvents() {
		if !workos.IsEventName(name) {
			s.restFail(w, r, unprocessable("unknown event %q; events are: %s", name, strings.Join(workos.EventNames, ", ")))
			return
		}
	}
	if f.OrganizationId != "" && !event.ValidID(f.OrganizationId, event.PrefixOrganization) {
		s.restFail(w, r, unprocessable("organization_id must be an organization id (org_…)"))
		return
	}
	if f.DirectoryId != "" && !event.ValidID(f.DirectoryId, event.PrefixDirectory) {
		s.restFail(w, r, unprocessable("directory_id must be a directory id (directory_…)"))
		return
	}
	if f.UserId != "" && !event.ValidID(f.UserId, event.PrefixUser) {
		s.restFail(w, r, unprocessable("user_id must be a directory user id (directory_user_…)"))
		return
	}
	if f.GroupId != "" && !event.ValidID(f.GroupId, event.PrefixGroup) {
		s.restFail(w, r, unprocessable("group_id must be a directory group id (directory_group_…)"))
		return
	}
	for name, dst := range map[string]**timestamppb.Timestamp{"range_start": &f.RangeStart, "range_end": &f.RangeEnd} {
		if v := q.Get(name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				s.restFail(w, r, unprocessable("%s must be an ISO-8601 time such as 2025-01-02T03:04:05Z", name))
				return
			}
			*dst = timestamppb.New(t)
		}
	}
	page, err := parsePage(q)
	if err != nil {
		s.restFail(w, r, err)
		return
	}
	if q.Get("order") == "" {
		page.Order = dsyncv1.Order_ORDER_ASC
	}
	if err := checkCursors(page, event.PrefixEvent); err != nil {
		s.restFail(w, r, err)
		return
	}
	token, err := s.allDirectoriesToken(r)
	if err != nil {
		s.restFail(w, r, err)
		return
	}
	resp, err := s.Directories.ListEvents(r.Context(), &dsyncv1.ListEventsRequest{Filter: f, Page: page, MinSequence: token})
	if err != nil {
		s.restFail(w, r, err)
		return
	}
	data := make([]workos.Event, 0, len(resp.GetEvents()))
	for _, se := range resp.GetEvents() {
		ev, err := newAPIEvent(se.GetSequence(), se.GetEvent())
		if err != nil {
			s.restFail(w, r, err)
			return
		}
		data = append(data, ev)
	}
	writeJSON(w, http.StatusOK, newList(data, resp.GetPageInfo()))
}
