package storetest

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/dsync-dev/dsync/pkg/event"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
	"github.com/dsync-dev/dsync/services/projector/internal/readmodel"
)

// Fixtures builds realistic events for tests. Ids come from one
// event.IDs, so they increase in the order they are made.
type Fixtures struct {
	IDs *event.IDs
	now time.Time
}

// NewFixtures returns a Fixtures.
func NewFixtures() *Fixtures {
	return &Fixtures{IDs: event.NewIDs(), now: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (f *Fixtures) tick() *timestamppb.Timestamp {
	f.now = f.now.Add(time.Second)
	return timestamppb.New(f.now)
}

func (f *Fixtures) envelope(typ dsyncv1.EventType, directoryID, orgID string) *dsyncv1.Event {
	return &dsyncv1.Event{
		Id:             f.IDs.New(event.PrefixEvent),
		DirectoryId:    directoryID,
		OrganizationId: orgID,
		OccurredAt:     f.tick(),
		Type:           typ,
		Source:         &dsyncv1.Source{Api: "scim", Provider: "okta"},
	}
}

// Organization returns a new organization.
func (f *Fixtures) Organization(name string, domains ...string) *dsyncv1.Organization {
	at := f.tick()
	return &dsyncv1.Organization{Id: f.IDs.New(event.PrefixOrganization), Name: name, Domains: domains, CreatedAt: at, UpdatedAt: at}
}

// Directory returns a new active directory of org.
func (f *Fixtures) Directory(orgID, name string) *dsyncv1.Directory {
	at := f.tick()
	return &dsyncv1.Directory{
		Id: f.IDs.New(event.PrefixDirectory), OrganizationId: orgID, Name: name, Type: "okta scim v2.0",
		State: dsyncv1.DirectoryState_DIRECTORY_STATE_ACTIVE, Domain: "example.com",
		ScimTokenSha256: []byte{1, 2, 3}, OnDeactivate: dsyncv1.DeactivatePolicy_DEACTIVATE_POLICY_KEEP_INACTIVE,
		CreatedAt: at, UpdatedAt: at,
	}
}

// User returns a new active user of dir with every field set.
func (f *Fixtures) User(dir *dsyncv1.Directory, userName string) *dsyncv1.User {
	at := f.tick()
	custom, _ := structpb.NewStruct(map[string]any{"department": "Engineering"})
	raw, _ := structpb.NewStruct(map[string]any{
		"userName": userName, "active": true,
		"name": map[string]any{"givenName": "Ada", "familyName": "Lovelace"},
	})
	return &dsyncv1.User{
		Id: f.IDs.New(event.PrefixUser), DirectoryId: dir.GetId(), OrganizationId: dir.GetOrganizationId(),
		IdpId: "idp-" + userName, UserName: userName, Email: userName, FirstName: "Ada", LastName: "Lovelace",
		DisplayName: "Ada Lovelace", State: dsyncv1.UserState_USER_STATE_ACTIVE,
		Emails:   []*dsyncv1.Email{{Value: userName, Type: "work", Primary: true}},
		JobTitle: "Engineer", CustomAttributes: custom, RawAttributes: raw, CreatedAt: at, UpdatedAt: at,
	}
}

// Group returns a new group of dir.
func (f *Fixtures) Group(dir *dsyncv1.Directory, name string) *dsyncv1.Group {
	at := f.tick()
	return &dsyncv1.Group{
		Id: f.IDs.New(event.PrefixGroup), DirectoryId: dir.GetId(), OrganizationId: dir.GetOrganizationId(),
		IdpId: "idp-" + name, Name: name, CreatedAt: at, UpdatedAt: at,
	}
}

// OrganizationEvent is an ORGANIZATION_CREATED or _UPDATED event.
func (f *Fixtures) OrganizationEvent(typ dsyncv1.EventType, o *dsyncv1.Organization) *dsyncv1.Event {
	ev := f.envelope(typ, "", o.GetId())
	ev.Payload = &dsyncv1.Event_Organization{Organization: o}
	return ev
}

// DirectoryEvent is a DIRECTORY_* event.
func (f *Fixtures) DirectoryEvent(typ dsyncv1.EventType, d *dsyncv1.Directory) *dsyncv1.Event {
	ev := f.envelope(typ, d.GetId(), d.GetOrganizationId())
	ev.Payload = &dsyncv1.Event_Directory{Directory: d}
	return ev
}

// UserEvent is a USER_* event.
func (f *Fixtures) UserEvent(typ dsyncv1.EventType, u *dsyncv1.User) *dsyncv1.Event {
	ev := f.envelope(typ, u.GetDirectoryId(), u.GetOrganizationId())
	ev.Payload = &dsyncv1.Event_User{User: u}
	return ev
}

// GroupEvent is a GROUP_CREATED, _UPDATED or _DELETED event.
func (f *Fixtures) GroupEvent(typ dsyncv1.EventType, g *dsyncv1.Group) *dsyncv1.Event {
	ev := f.envelope(typ, g.GetDirectoryId(), g.GetOrganizationId())
	ev.Payload = &dsyncv1.Event_Group{Group: g}
	return ev
}

// MembershipEvent is a GROUP_USER_ADDED or _REMOVED event.
func (f *Fixtures) MembershipEvent(typ dsyncv1.EventType, g *dsyncv1.Group, u *dsyncv1.User) *dsyncv1.Event {
	ev := f.envelope(typ, g.GetDirectoryId(), g.GetOrganizationId())
	ev.Payload = &dsyncv1.Event_Membership{Membership: &dsyncv1.Membership{GroupId: g.GetId(), UserId: u.GetId(), Group: g, User: u}}
	return ev
}

// Subject returns the stream subject of ev.
func Subject(ev *dsyncv1.Event) string {
	switch p := ev.GetPayload().(type) {
	case *dsyncv1.Event_Organization:
		return event.OrganizationSubject(p.Organization.GetId())
	case *dsyncv1.Event_User:
		return event.UserSubject(ev.GetDirectoryId(), p.User.GetId())
	case *dsyncv1.Event_Group:
		return event.GroupSubject(ev.GetDirectoryId(), p.Group.GetId())
	case *dsyncv1.Event_Membership:
		return event.MemberSubject(ev.GetDirectoryId(), p.Membership.GetGroupId(), p.Membership.GetUserId())
	default:
		return event.DirectorySubject(ev.GetDirectoryId())
	}
}

// Records numbers evs as stream sequences first, first+1, ….
func Records(first uint64, evs ...*dsyncv1.Event) []readmodel.Record {
	recs := make([]readmodel.Record, 0, len(evs))
	for i, ev := range evs {
		data, err := proto.Marshal(ev)
		if err != nil {
			panic(fmt.Sprintf("marshal fixture event: %v", err)) // fixtures are always valid
		}
		recs = append(recs, readmodel.Record{Seq: first + uint64(i), Subject: Subject(ev), Data: data})
	}
	return recs
}
