package dashboard

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/dsync-dev/dsync/pkg/event"
	"github.com/dsync-dev/dsync/pkg/workos"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
)

// Groups, a group's members, a user's history and one recorded SCIM
// request: the pages that answer "why is this user in this state?".

type groupsData struct {
	Directory workos.Directory
	Groups    []workos.DirectoryGroup
	Search    string
	Partial   bool
	Pager     pager
}

// groups lists a directory's groups with their member counts. A search
// (name or idp_id) scans the list, as the REST API has no group search.
func (d *Dashboard) groups(w http.ResponseWriter, r *http.Request) {
	id, ok := d.directoryID(w, r)
	if !ok {
		return
	}
	var dir workos.Directory
	if err := d.call(r.Context(), http.MethodGet, "/directories/"+id, nil, nil, &dir); err != nil {
		d.fail(w, r, err)
		return
	}
	data := groupsData{Directory: dir, Search: strings.TrimSpace(r.URL.Query().Get("q"))}
	if data.Search != "" {
		needle := strings.ToLower(data.Search)
		after := ""
		data.Partial = true
		for range searchScanPages {
			q := url.Values{"directory": {id}, "limit": {"100"}, "order": {"asc"}}
			if after != "" {
				q.Set("after", after)
			}
			var pg list[workos.DirectoryGroup]
			if err := d.call(r.Context(), http.MethodGet, "/directory_groups", q, nil, &pg); err != nil {
				d.fail(w, r, err)
				return
			}
			for _, g := range pg.Data {
				if strings.Contains(strings.ToLower(g.Name), needle) || strings.Contains(strings.ToLower(g.IdpID), needle) || g.ID == data.Search {
					data.Groups = append(data.Groups, g)
				}
			}
			if after = pg.after(); after == "" || len(data.Groups) >= searchResults {
				data.Partial = after != ""
				break
			}
		}
	} else {
		var pg list[workos.DirectoryGroup]
		if err := d.call(r.Context(), http.MethodGet, "/directory_groups",
			cursorQuery(r, url.Values{"directory": {id}, "limit": {"25"}}), nil, &pg); err != nil {
			d.fail(w, r, err)
			return
		}
		data.Groups = pg.Data
		data.Pager = pager{Before: pg.before(), After: pg.after(), Base: url.Values{}}
	}
	d.render(w, r, http.StatusOK, "groups", page{Title: "Groups · " + dir.Name, Nav: "directories", Data: data})
}

type groupData struct {
	Group     workos.DirectoryGroup
	Directory workos.Directory
	Members   []workos.DirectoryUser
	Pager     pager
	Raw       string
}

func (d *Dashboard) group(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !event.ValidID(id, event.PrefixGroup) {
		d.renderError(w, r, http.StatusNotFound, "Not found", "There is no group "+id+".")
		return
	}
	var g workos.DirectoryGroup
	if err := d.call(r.Context(), http.MethodGet, "/directory_groups/"+id, nil, nil, &g); err != nil {
		d.fail(w, r, err)
		return
	}
	var members list[workos.DirectoryUser]
	if err := d.call(r.Context(), http.MethodGet, "/directory_users",
		cursorQuery(r, url.Values{"group": {id}, "limit": {"25"}}), nil, &members); err != nil {
		d.fail(w, r, err)
		return
	}
	var dir workos.Directory
	_ = d.call(r.Context(), http.MethodGet, "/directories/"+g.DirectoryID, nil, nil, &dir) // names the breadcrumb only
	d.render(w, r, http.StatusOK, "group", page{Title: g.Name, Nav: "directories", Data: groupData{
		Group: g, Directory: dir, Members: members.Data, Raw: prettyJSON(g.RawAttributes),
		Pager: pager{Before: members.before(), After: members.after(), Base: url.Values{}},
	}})
}

// historyItem is one event about a user, with the request that caused it
// and the deliveries that carried it.
type historyItem struct {
	Event      LiveEvent
	RequestURL string
	Deliveries []LiveDelivery
}

// Limits of a user's history: the last historyEvents events about it,
// scanning at most historyPages pages of the directory's events.
const (
	historyEvents = 50
	historyPages  = 10
)

// userHistory returns the events about a user, newest first. It asks the
// read model for the user's events (EventFilter.user_id) and keeps only
// those that are about the user, so that it is right whether or not the
// read model applies the filter.
func (d *Dashboard) userHistory(ctx context.Context, u workos.DirectoryUser) ([]historyItem, bool) {
	var evs []*dsyncv1.Event
	after := ""
	for range historyPages {
		resp, err := d.cfg.Directories.ListEvents(ctx, &dsyncv1.ListEventsRequest{
			Filter: &dsyncv1.EventFilter{DirectoryId: u.DirectoryID, UserId: u.ID},
			Page:   &dsyncv1.Page{Limit: 100, Order: dsyncv1.Order_ORDER_DESC, After: after},
		})
		if err != nil {
			return nil, false
		}
		for _, se := range resp.GetEvents() {
			if aboutUser(se.GetEvent(), u.ID) {
				evs = append(evs, se.GetEvent())
			}
		}
		if after = resp.GetPageInfo().GetAfter(); after == "" || len(evs) >= historyEvents {
			break
		}
	}
	if len(evs) > historyEvents {
		evs = evs[:historyEvents]
	}
	deliveries := d.deliveriesOf(ctx, evs)
	out := make([]historyItem, 0, len(evs))
	for _, ev := range evs {
		it := historyItem{Event: NewLiveEvent(ev), Deliveries: deliveries[ev.GetId()]}
		if rid := ev.GetSource().GetRequestId(); event.ValidID(rid, event.PrefixRequest) && ev.GetSource().GetApi() == "scim" {
			it.RequestURL = "/dashboard/directories/" + u.DirectoryID + "/requests/" + rid
		}
		out = append(out, it)
	}
	return out, true
}

func aboutUser(ev *dsyncv1.Event, userID string) bool {
	switch p := ev.GetPayload().(type) {
	case *dsyncv1.Event_User:
		return p.User.GetId() == userID
	case *dsyncv1.Event_Membership:
		return p.Membership.GetUserId() == userID
	}
	return false
}

// deliveriesOf finds the webhook deliveries of evs, by event id: one
// ListEventDeliveries call per maxEventIDs events (the pages pass at most
// that many), every endpoint's deliveries included.
func (d *Dashboard) deliveriesOf(ctx context.Context, evs []*dsyncv1.Event) map[string][]LiveDelivery {
	out := map[string][]LiveDelivery{}
	if len(evs) == 0 {
		return out
	}
	ids := make([]string, 0, len(evs))
	oldest := time.Now()
	for _, ev := range evs {
		ids = append(ids, ev.GetId())
		if t := ev.GetOccurredAt().AsTime(); t.Before(oldest) {
			oldest = t
		}
	}
	var ds []*dsyncv1.Delivery
	for chunk := range slices.Chunk(ids, maxEventIDs) {
		// Three pages per endpoint should the dispatcher be older and
		// scanned (see eventDeliveries).
		got, err := d.eventDeliveries(ctx, chunk, oldest, 3)
		if err != nil {
			break // the page shows the events without their deliveries
		}
		ds = append(ds, got...)
	}
	if len(ds) == 0 {
		return out
	}
	urls := d.endpointURLs(ctx)
	for _, x := range ds {
		out[x.GetEventId()] = append(out[x.GetEventId()], newLiveDelivery(x, urls[x.GetEndpointId()]))
	}
	return out
}

type requestData struct {
	Directory workos.Directory
	ID        string
	Request   SCIMRequest
	Found     bool
	Events    []historyItem
}

// scimRequest shows one recorded SCIM request and the events it produced.
func (d *Dashboard) scimRequest(w http.ResponseWriter, r *http.Request) {
	id, ok := d.directoryID(w, r)
	if !ok {
		return
	}
	rid := r.PathValue("rid")
	if !event.ValidID(rid, event.PrefixRequest) {
		d.renderError(w, r, http.StatusNotFound, "Not found", "There is no request "+rid+".")
		return
	}
	var dir workos.Directory
	if err := d.call(r.Context(), http.MethodGet, "/directories/"+id, nil, nil, &dir); err != nil {
		d.fail(w, r, err)
		return
	}
	data := requestData{Directory: dir, ID: rid}
	data.Request, data.Found = d.stats.request(id, rid)
	// The events it caused: among the directory's recent events.
	resp, err := d.cfg.Directories.ListEvents(r.Context(), &dsyncv1.ListEventsRequest{
		Filter: &dsyncv1.EventFilter{DirectoryId: id},
		Page:   &dsyncv1.Page{Limit: 100, Order: dsyncv1.Order_ORDER_DESC},
	})
	if err == nil {
		var evs []*dsyncv1.Event
		for _, se := range resp.GetEvents() {
			if se.GetEvent().GetSource().GetRequestId() == rid {
				evs = append(evs, se.GetEvent())
			}
		}
		dl := d.deliveriesOf(r.Context(), evs)
		for i := len(evs) - 1; i >= 0; i-- {
			data.Events = append(data.Events, historyItem{Event: NewLiveEvent(evs[i]), Deliveries: dl[evs[i].GetId()]})
		}
	}
	d.render(w, r, http.StatusOK, "request", page{Title: "Request " + rid, Nav: "directories", Data: data})
}
