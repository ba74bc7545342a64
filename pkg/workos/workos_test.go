package workos_test

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/dsync-dev/dsync/pkg/workos"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
)

var update = flag.Bool("update", false, "rewrite golden files")

var created = time.Date(2021, 6, 25, 19, 7, 33, 155_000_000, time.UTC)

func sampleUser(t *testing.T) *dsyncv1.User {
	t.Helper()
	raw, err := structpb.NewStruct(map[string]any{
		"userName": "eric@example.com",
		"name":     map[string]any{"givenName": "Eric", "familyName": "Schneider"},
	})
	require.NoError(t, err)
	custom, err := structpb.NewStruct(map[string]any{"department_name": "Engineering"})
	require.NoError(t, err)
	return &dsyncv1.User{
		Id:               "directory_user_01E1X56GH84T3FB41SD6PZGDBX",
		DirectoryId:      "directory_01ECAZ4NV9QMV47GW873HDCX74",
		OrganizationId:   "org_01EZTR6WYX1A0DSE2CYMGXQ24Y",
		IdpId:            "2936",
		UserName:         "eric@example.com",
		Email:            "eric@example.com",
		FirstName:        "Eric",
		LastName:         "Schneider",
		State:            dsyncv1.UserState_USER_STATE_ACTIVE,
		Emails:           []*dsyncv1.Email{{Value: "eric@example.com", Type: "work", Primary: true}},
		JobTitle:         "Software Engineer",
		CustomAttributes: custom,
		RawAttributes:    raw,
		CreatedAt:        timestamppb.New(created),
		UpdatedAt:        timestamppb.New(created),
	}
}

func golden(t *testing.T, name string, v any) {
	t.Helper()
	got, err := json.MarshalIndent(v, "", "  ")
	require.NoError(t, err)
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(path, append(got, '\n'), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -update to create %s", path)
	require.JSONEq(t, string(want), string(got))
}

func TestUserCreatedEvent(t *testing.T) {
	ev := &dsyncv1.Event{
		Id:         "event_01FKJ843CVE8F7BXQSPFH0M53V",
		Type:       dsyncv1.EventType_EVENT_TYPE_USER_CREATED,
		OccurredAt: timestamppb.New(created),
		Source:     &dsyncv1.Source{Api: "scim", RequestId: "req_01FKJ843CVE8F7BXQSPFH0M53V"},
		Payload:    &dsyncv1.Event_User{User: sampleUser(t)},
	}
	got, err := workos.NewEvent(42, ev)
	require.NoError(t, err)
	golden(t, "user_created.json", got)
}

func TestUserUpdatedCarriesPreviousAttributes(t *testing.T) {
	before := sampleUser(t)
	after := sampleUser(t)
	after.LastName = "Smith"
	after.State = dsyncv1.UserState_USER_STATE_INACTIVE
	after.UpdatedAt = timestamppb.New(created.Add(time.Hour))
	after.RawAttributes.Fields["name"] = structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{
		"givenName": structpb.NewStringValue("Eric"), "familyName": structpb.NewStringValue("Smith"),
	}})
	ev := &dsyncv1.Event{
		Id:         "event_01FKJ843CVE8F7BXQSPFH0M53W",
		Type:       dsyncv1.EventType_EVENT_TYPE_USER_UPDATED,
		OccurredAt: timestamppb.New(created.Add(time.Hour)),
		Reason:     dsyncv1.Reason_REASON_IDP_DEACTIVATED,
		Previous:   &dsyncv1.Event_PreviousUser{PreviousUser: before},
		Source:     &dsyncv1.Source{Api: "system"},
		Payload:    &dsyncv1.Event_User{User: after},
	}
	got, err := workos.NewEvent(43, ev)
	require.NoError(t, err)
	golden(t, "user_updated.json", got)
}

func TestDirectoryDeletedEvent(t *testing.T) {
	ev := &dsyncv1.Event{
		Id:         "event_01FKJ843CVE8F7BXQSPFH0M53X",
		Type:       dsyncv1.EventType_EVENT_TYPE_DIRECTORY_DELETED,
		OccurredAt: timestamppb.New(created),
		Payload: &dsyncv1.Event_Directory{Directory: &dsyncv1.Directory{
			Id: "directory_01ECAZ4NV9QMV47GW873HDCX74", OrganizationId: "org_01EZTR6WYX1A0DSE2CYMGXQ24Y",
			Name: "Okta", Type: "okta scim v2.0", State: dsyncv1.DirectoryState_DIRECTORY_STATE_ACTIVE,
			Domain: "example.com", ScimTokenSha256: []byte("secret hash never rendered"),
			CreatedAt: timestamppb.New(created), UpdatedAt: timestamppb.New(created),
		}},
	}
	got, err := workos.NewEvent(0, ev)
	require.NoError(t, err)
	golden(t, "directory_deleted.json", got)
	b, err := json.Marshal(got)
	require.NoError(t, err)
	require.NotContains(t, string(b), "secret hash")
}

func TestInternalEventsAreNotPublic(t *testing.T) {
	for _, typ := range []dsyncv1.EventType{
		dsyncv1.EventType_EVENT_TYPE_DIRECTORY_UPDATED,
		dsyncv1.EventType_EVENT_TYPE_ORGANIZATION_CREATED,
		dsyncv1.EventType_EVENT_TYPE_UNSPECIFIED,
	} {
		_, err := workos.NewEvent(1, &dsyncv1.Event{Id: "event_x", Type: typ})
		require.ErrorIs(t, err, workos.ErrNotPublic, typ.String())
	}
	for _, name := range workos.EventNames {
		require.True(t, workos.IsEventName(name))
	}
	require.False(t, workos.IsEventName("dsync.user.exploded"))
}

func TestDirectoryUserRESTShapeAlwaysHasGroups(t *testing.T) {
	u := workos.NewDirectoryUser(&dsyncv1.User{Id: "directory_user_x"}).WithGroups(nil)
	b, err := json.Marshal(u)
	require.NoError(t, err)
	m := map[string]any{}
	require.NoError(t, json.Unmarshal(b, &m))
	require.Equal(t, []any{}, m["groups"])
	require.Nil(t, m["email"], "missing email is null, as WorkOS sends it")
	require.Equal(t, map[string]any{}, m["custom_attributes"])
	require.Equal(t, "1970-01-01T00:00:00.000Z", m["created_at"])
}

func TestUserRoles(t *testing.T) {
	u := sampleUser(t)
	u.RoleSlugs = []string{"admin", "member"}
	golden(t, "user_with_roles.json", workos.NewDirectoryUser(u))
	// Without mapped roles the keys are absent, not null.
	got, err := json.Marshal(workos.NewDirectoryUser(sampleUser(t)))
	require.NoError(t, err)
	require.NotContains(t, string(got), `"role"`)
}

func TestEventContext(t *testing.T) {
	tests := []struct {
		name string
		seq  uint64
		ev   *dsyncv1.Event
		want map[string]any
	}{
		{"nothing known", 0, &dsyncv1.Event{}, map[string]any{}},
		{"scim request", 7, &dsyncv1.Event{Source: &dsyncv1.Source{Api: "scim", RequestId: "req_1"}},
			map[string]any{"sequence": uint64(7), "source": "scim", "request_id": "req_1"}},
		{"rest is api", 8, &dsyncv1.Event{Source: &dsyncv1.Source{Api: "rest"}}, map[string]any{"sequence": uint64(8), "source": "api"}},
		{"dashboard is api", 9, &dsyncv1.Event{Source: &dsyncv1.Source{Api: "dashboard"}}, map[string]any{"sequence": uint64(9), "source": "api"}},
		{"system is reconciliation", 10, &dsyncv1.Event{
			Source: &dsyncv1.Source{Api: "system"}, Reason: dsyncv1.Reason_REASON_IDP_DEACTIVATED,
		}, map[string]any{"sequence": uint64(10), "source": "reconciliation", "reason": "idp_deactivated"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, workos.EventContext(tt.seq, tt.ev))
		})
	}
}
