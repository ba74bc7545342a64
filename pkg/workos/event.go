package workos

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
)

// WorkOS event names.
const (
	EventDirectoryActivated = "dsync.activated"
	EventDirectoryDeleted   = "dsync.deleted"
	EventUserCreated        = "dsync.user.created"
	EventUserUpdated        = "dsync.user.updated"
	EventUserDeleted        = "dsync.user.deleted"
	EventGroupCreated       = "dsync.group.created"
	EventGroupUpdated       = "dsync.group.updated"
	EventGroupDeleted       = "dsync.group.deleted"
	EventGroupUserAdded     = "dsync.group.user_added"
	EventGroupUserRemoved   = "dsync.group.user_removed"
)

// EventNames lists every event name a webhook endpoint can subscribe to.
var EventNames = []string{
	EventDirectoryActivated, EventDirectoryDeleted,
	EventUserCreated, EventUserUpdated, EventUserDeleted,
	EventGroupCreated, EventGroupUpdated, EventGroupDeleted,
	EventGroupUserAdded, EventGroupUserRemoved,
}

// IsEventName reports whether name is a known event name.
func IsEventName(name string) bool {
	for _, n := range EventNames {
		if n == name {
			return true
		}
	}
	return false
}

// EventName returns the WorkOS name of an event type, and false for types
// that are internal (directory settings, organizations).
func EventName(t dsyncv1.EventType) (string, bool) {
	switch t {
	case dsyncv1.EventType_EVENT_TYPE_DIRECTORY_ACTIVATED:
		return EventDirectoryActivated, true
	case dsyncv1.EventType_EVENT_TYPE_DIRECTORY_DELETED:
		return EventDirectoryDeleted, true
	case dsyncv1.EventType_EVENT_TYPE_USER_CREATED:
		return EventUserCreated, true
	case dsyncv1.EventType_EVENT_TYPE_USER_UPDATED:
		return EventUserUpdated, true
	case dsyncv1.EventType_EVENT_TYPE_USER_DELETED:
		return EventUserDeleted, true
	case dsyncv1.EventType_EVENT_TYPE_GROUP_CREATED:
		return EventGroupCreated, true
	case dsyncv1.EventType_EVENT_TYPE_GROUP_UPDATED:
		return EventGroupUpdated, true
	case dsyncv1.EventType_EVENT_TYPE_GROUP_DELETED:
		return EventGroupDeleted, true
	case dsyncv1.EventType_EVENT_TYPE_GROUP_USER_ADDED:
		return EventGroupUserAdded, true
	case dsyncv1.EventType_EVENT_TYPE_GROUP_USER_REMOVED:
		return EventGroupUserRemoved, true
	default:
		return "", false
	}
}

// Event is the envelope shared by webhooks and the Events API.
type Event struct {
	Object    string         `json:"object"`
	ID        string         `json:"id"`
	Event     string         `json:"event"`
	Data      any            `json:"data"`
	CreatedAt string         `json:"created_at"`
	Context   map[string]any `json:"context"`
}

// ErrNotPublic is returned by NewEvent for internal event types.
var ErrNotPublic = fmt.Errorf("event type is not a public webhook event")

// NewEvent renders ev, stored at stream sequence seq, as a WorkOS event: the
// one envelope both the webhooks and the Events API send, so a receiver sees
// the same bytes whichever way it learns of the event. It returns
// ErrNotPublic for event types that are not sent to customers.
func NewEvent(seq uint64, ev *dsyncv1.Event) (Event, error) {
	name, ok := EventName(ev.GetType())
	if !ok {
		return Event{}, fmt.Errorf("%s: %w", ev.GetType(), ErrNotPublic)
	}
	data, err := eventData(ev)
	if err != nil {
		return Event{}, err
	}
	return Event{
		Object:    "event",
		ID:        ev.GetId(),
		Event:     name,
		Data:      data,
		CreatedAt: FormatTime(ev.GetOccurredAt().AsTime()),
		Context:   EventContext(seq, ev),
	}, nil
}

// EventContext is the context of ev's envelope: what dsync adds to WorkOS's
// event. sequence is the stream sequence (the order of events; omitted when
// seq is 0, i.e. unknown), source the origin of the change (scim, api,
// reconciliation), request_id the request that caused it and reason why a
// change was made (e.g. idp_deactivated). Absent facts are omitted, never
// sent empty.
func EventContext(seq uint64, ev *dsyncv1.Event) map[string]any {
	ctx := map[string]any{}
	if seq != 0 {
		ctx["sequence"] = seq
	}
	switch api := ev.GetSource().GetApi(); api {
	case "":
	case "rest", "dashboard":
		ctx["source"] = "api"
	case "system":
		ctx["source"] = "reconciliation"
	default:
		ctx["source"] = api
	}
	if id := ev.GetSource().GetRequestId(); id != "" {
		ctx["request_id"] = id
	}
	if r := ev.GetReason(); r != dsyncv1.Reason_REASON_UNSPECIFIED {
		ctx["reason"] = strings.ToLower(strings.TrimPrefix(r.String(), "REASON_"))
	}
	return ctx
}

// MembershipData is the data of dsync.group.user_added/removed.
type MembershipData struct {
	DirectoryID string         `json:"directory_id"`
	User        DirectoryUser  `json:"user"`
	Group       DirectoryGroup `json:"group"`
}

// DirectoryEventData is the data of dsync.activated and dsync.deleted: the
// directory with the organization's domains instead of domain.
type DirectoryEventData struct {
	Object         string               `json:"object"`
	ID             string               `json:"id"`
	OrganizationID string               `json:"organization_id"`
	ExternalKey    string               `json:"external_key"`
	Name           string               `json:"name"`
	Type           string               `json:"type"`
	State          string               `json:"state"`
	Domains        []OrganizationDomain `json:"domains"`
	CreatedAt      string               `json:"created_at"`
	UpdatedAt      string               `json:"updated_at"`
}

func eventData(ev *dsyncv1.Event) (any, error) {
	switch p := ev.GetPayload().(type) {
	case *dsyncv1.Event_User:
		user := NewDirectoryUser(p.User)
		if ev.GetType() == dsyncv1.EventType_EVENT_TYPE_USER_UPDATED && ev.GetPreviousUser() != nil {
			return withPrevious(user, NewDirectoryUser(ev.GetPreviousUser()))
		}
		return user, nil
	case *dsyncv1.Event_Group:
		group := NewDirectoryGroup(p.Group)
		if ev.GetType() == dsyncv1.EventType_EVENT_TYPE_GROUP_UPDATED && ev.GetPreviousGroup() != nil {
			return withPrevious(group, NewDirectoryGroup(ev.GetPreviousGroup()))
		}
		return group, nil
	case *dsyncv1.Event_Membership:
		return MembershipData{
			DirectoryID: ev.GetDirectoryId(),
			User:        NewDirectoryUser(p.Membership.GetUser()),
			Group:       NewDirectoryGroup(p.Membership.GetGroup()),
		}, nil
	case *dsyncv1.Event_Directory:
		d := NewDirectory(p.Directory)
		state := d.State
		if ev.GetType() == dsyncv1.EventType_EVENT_TYPE_DIRECTORY_DELETED {
			state = "deleting"
		}
		domains := []OrganizationDomain{}
		if d.Domain != nil {
			domains = append(domains, OrganizationDomain{Object: "organization_domain", Domain: *d.Domain})
		}
		return DirectoryEventData{
			Object: d.Object, ID: d.ID, OrganizationID: d.OrganizationID, ExternalKey: d.ExternalKey,
			Name: d.Name, Type: d.Type, State: state, Domains: domains,
			CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt,
		}, nil
	default:
		return nil, fmt.Errorf("event %s: payload %T has no WorkOS form", ev.GetId(), p)
	}
}

// withPrevious returns current as a JSON object with previous_attributes:
// the keys whose values differ from previous, holding the old values.
// Nested objects (raw_attributes, custom_attributes) are compared key by key
// so only the changed leaves are reported.
func withPrevious(current, previous any) (map[string]any, error) {
	cur, err := toMap(current)
	if err != nil {
		return nil, err
	}
	prev, err := toMap(previous)
	if err != nil {
		return nil, err
	}
	delete(prev, "updated_at")
	changed := diff(prev, cur)
	if changed == nil {
		changed = map[string]any{}
	}
	cur["previous_attributes"] = changed
	return cur, nil
}

func toMap(v any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("marshal %T: %w", v, err)
	}
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("unmarshal %T: %w", v, err)
	}
	return m, nil
}

// diff returns the entries of prev that differ from cur (a key missing from
// prev but present in cur is reported as nil).
func diff(prev, cur map[string]any) map[string]any {
	var out map[string]any
	set := func(k string, v any) {
		if out == nil {
			out = map[string]any{}
		}
		out[k] = v
	}
	for k, pv := range prev {
		cv, ok := cur[k]
		if ok && reflect.DeepEqual(pv, cv) {
			continue
		}
		pm, pIsMap := pv.(map[string]any)
		cm, cIsMap := cv.(map[string]any)
		if pIsMap && cIsMap {
			if d := diff(pm, cm); d != nil {
				set(k, d)
			}
			continue
		}
		set(k, pv)
	}
	for k := range cur {
		if _, ok := prev[k]; !ok && k != "updated_at" {
			set(k, nil)
		}
	}
	return out
}
