package e2e_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/dsync-dev/dsync/pkg/event"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
)

// sdkDir holds the Node project that runs the WorkOS SDK. Its node_modules
// is installed by the test (gitignored) and reused by later runs.
var sdkDir = filepath.Join("testdata", "workos-node")

// installWorkOSSDK installs the pinned @workos-inc/node unless it is there.
// No lock file is written: it would record the registry's address.
func installWorkOSSDK(t *testing.T) {
	t.Helper()
	var want struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	raw, err := os.ReadFile(filepath.Join(sdkDir, "package.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &want))
	var have struct {
		Version string `json:"version"`
	}
	if raw, err := os.ReadFile(filepath.Join(sdkDir, "node_modules", "@workos-inc", "node", "package.json")); err == nil &&
		json.Unmarshal(raw, &have) == nil && have.Version == want.Dependencies["@workos-inc/node"] {
		return
	}
	npm, err := exec.LookPath("npm")
	require.NoError(t, err, "the WorkOS SDK test needs Node.js and npm on PATH")
	cmd := exec.CommandContext(t.Context(), npm, "install", "--no-package-lock", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error")
	cmd.Dir = sdkDir
	cmd.Env = append(os.Environ(), "npm_config_cache="+t.TempDir(), "npm_config_update_notifier=false")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "npm install: %s", out)
}

// publishGroup appends a group and its memberships to the event stream as
// the gateway's SCIM Groups endpoint records them.
func publishGroup(t *testing.T, js jetstream.JetStream, ids *event.IDs, dirID, orgID, name string, memberIDs []string) string {
	t.Helper()
	now := timestamppb.New(time.Now())
	raw, err := structpb.NewStruct(map[string]any{"displayName": name, "externalId": "okta-" + name})
	require.NoError(t, err)
	g := &dsyncv1.Group{
		Id: ids.New(event.PrefixGroup), DirectoryId: dirID, OrganizationId: orgID, IdpId: "okta-" + name,
		Name: name, RawAttributes: raw, CreatedAt: now, UpdatedAt: now,
	}
	pub := func(subject string, typ dsyncv1.EventType, set func(*dsyncv1.Event)) {
		ev := &dsyncv1.Event{
			Id: ids.New(event.PrefixEvent), DirectoryId: dirID, OrganizationId: orgID, OccurredAt: now, Type: typ,
			Source: &dsyncv1.Source{Api: "scim", Provider: "okta"},
		}
		set(ev)
		msg, err := event.NewMsg(subject, ev)
		require.NoError(t, err)
		_, err = js.PublishMsg(t.Context(), msg)
		require.NoError(t, err)
	}
	pub(event.GroupSubject(dirID, g.GetId()), dsyncv1.EventType_EVENT_TYPE_GROUP_CREATED, func(ev *dsyncv1.Event) {
		ev.Payload = &dsyncv1.Event_Group{Group: g}
	})
	for _, uid := range memberIDs {
		pub(event.MemberSubject(dirID, g.GetId(), uid), dsyncv1.EventType_EVENT_TYPE_GROUP_USER_ADDED, func(ev *dsyncv1.Event) {
			ev.Payload = &dsyncv1.Event_Membership{Membership: &dsyncv1.Membership{
				GroupId: g.GetId(), UserId: uid, Group: g, User: &dsyncv1.User{Id: uid, DirectoryId: dirID, OrganizationId: orgID},
			}}
		})
	}
	return g.GetId()
}

// sdkUser is the part of the SDK's DirectoryUserWithGroups the test checks.
type sdkUser struct {
	Object           string         `json:"object"`
	ID               string         `json:"id"`
	DirectoryID      string         `json:"directoryId"`
	OrganizationID   string         `json:"organizationId"`
	IdpID            string         `json:"idpId"`
	Email            string         `json:"email"`
	FirstName        string         `json:"firstName"`
	LastName         string         `json:"lastName"`
	State            string         `json:"state"`
	CustomAttributes map[string]any `json:"customAttributes"`
	RawAttributes    map[string]any `json:"rawAttributes"`
	Groups           []sdkGroup     `json:"groups"`
	CreatedAt        string         `json:"createdAt"`
	UpdatedAt        string         `json:"updatedAt"`
}

type sdkGroup struct {
	ID             string         `json:"id"`
	IdpID          string         `json:"idpId"`
	DirectoryID    string         `json:"directoryId"`
	OrganizationID string         `json:"organizationId"`
	Name           string         `json:"name"`
	RawAttributes  map[string]any `json:"rawAttributes"`
	CreatedAt      string         `json:"createdAt"`
}

type sdkDirectory struct {
	Object         string `json:"object"`
	ID             string `json:"id"`
	OrganizationID string `json:"organizationId"`
	Name           string `json:"name"`
	Domain         string `json:"domain"`
	Type           string `json:"type"`
	State          string `json:"state"`
}

type sdkList[T any] struct {
	Data         []T `json:"data"`
	ListMetadata struct {
		Before *string `json:"before"`
		After  *string `json:"after"`
	} `json:"listMetadata"`
}

type sdkEvent struct {
	ID      string         `json:"id"`
	Event   string         `json:"event"`
	Data    map[string]any `json:"data"`
	Context map[string]any `json:"context"`
}

type sdkOutput struct {
	ListUsersFirstPage    sdkList[sdkUser]  `json:"listUsersFirstPage"`
	ListUsersAll          []sdkUser         `json:"listUsersAll"`
	ListUsersAsc          []sdkUser         `json:"listUsersAsc"`
	ListUsersByGroup      []sdkUser         `json:"listUsersByGroup"`
	GetUser               sdkUser           `json:"getUser"`
	ListGroups            []sdkGroup        `json:"listGroups"`
	ListGroupsByUser      []sdkGroup        `json:"listGroupsByUser"`
	GetGroup              sdkGroup          `json:"getGroup"`
	ListDirectories       []sdkDirectory    `json:"listDirectories"`
	ListDirectoriesSearch []sdkDirectory    `json:"listDirectoriesSearch"`
	GetDirectory          sdkDirectory      `json:"getDirectory"`
	Events                sdkList[sdkEvent] `json:"events"`
	NotFound              map[string]any    `json:"notFound"`
}

// TestWorkOSNodeSDK runs the official WorkOS Node SDK against `dsync dev`:
// the directory sync reads, auto-pagination across pages, and the Events
// API, with data created through SCIM and the event stream.
func TestWorkOSNodeSDK(t *testing.T) {
	node, err := exec.LookPath("node")
	require.NoError(t, err, "the WorkOS SDK test needs Node.js on PATH")
	installWorkOSSDK(t)

	cfg := devConfig(t)
	cfg.NATSListen = "127.0.0.1:0"
	sys := startDev(t, cfg)
	require.NotNil(t, sys.Demo)
	dirID, orgID := sys.Demo.DirectoryID, sys.Demo.OrganizationID
	c := client{t: t, http: defaultHTTPClient()}

	// 105 users: the SDK's auto-pagination (pages of 100) needs two pages.
	const nUsers = 105
	userIDs := make([]string, 0, nUsers)
	for i := range nUsers {
		body := map[string]any{
			"schemas":    []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
			"userName":   fmt.Sprintf("user%03d@acme.com", i),
			"externalId": fmt.Sprintf("00u%03d", i),
			"name":       map[string]any{"givenName": "User", "familyName": fmt.Sprintf("N%03d", i)},
			"emails":     []map[string]any{{"primary": true, "value": fmt.Sprintf("user%03d@acme.com", i), "type": "work"}},
			"title":      "Engineer",
			"active":     true,
		}
		status, _, u := c.do("POST", sys.Demo.SCIMEndpoint+"/Users", sys.Demo.BearerToken, body)
		require.Equal(t, http.StatusCreated, status, u)
		userIDs = append(userIDs, u["id"].(string))
	}

	nc, err := nats.Connect(sys.NATSClientURL)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ids := event.NewIDs()
	engID := publishGroup(t, js, ids, dirID, orgID, "Engineering", userIDs[:3])
	opsID := publishGroup(t, js, ids, dirID, orgID, "Ops", userIDs[1:2])

	// The REST reads wait for the projection (consistency tokens), so the
	// SDK sees everything written above.
	cmd := exec.CommandContext(t.Context(), node, "sdk.mjs")
	cmd.Dir = sdkDir
	cmd.Env = append(os.Environ(),
		"DSYNC_URL="+sys.HTTPURL, "DSYNC_API_KEY="+sys.APIKey, "DSYNC_DIRECTORY_ID="+dirID,
		"DSYNC_ORGANIZATION_ID="+orgID, "DSYNC_GROUP_ID="+engID, "DSYNC_USER_ID="+userIDs[1])
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "node sdk.mjs: %s", stderr.String())
	var out sdkOutput
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &out), stdout.String())

	userIDsOf := func(us []sdkUser) []string {
		r := make([]string, 0, len(us))
		for _, u := range us {
			r = append(r, u.ID)
		}
		return r
	}
	newestFirst := make([]string, nUsers)
	for i, id := range userIDs {
		newestFirst[nUsers-1-i] = id
	}

	// The default page: 10 users, newest first, with an after cursor.
	require.Equal(t, newestFirst[:10], userIDsOf(out.ListUsersFirstPage.Data))
	require.NotNil(t, out.ListUsersFirstPage.ListMetadata.After)
	require.Equal(t, newestFirst[9], *out.ListUsersFirstPage.ListMetadata.After)
	require.Nil(t, out.ListUsersFirstPage.ListMetadata.Before)
	// Auto-pagination walks both pages of 100 without a duplicate or a gap.
	require.Equal(t, newestFirst, userIDsOf(out.ListUsersAll))
	require.Equal(t, userIDs[:5], userIDsOf(out.ListUsersAsc))
	require.ElementsMatch(t, userIDs[:3], userIDsOf(out.ListUsersByGroup))

	u := out.GetUser
	require.Equal(t, "directory_user", u.Object)
	require.Equal(t, userIDs[1], u.ID)
	require.Equal(t, dirID, u.DirectoryID)
	require.Equal(t, orgID, u.OrganizationID)
	require.Equal(t, "00u001", u.IdpID)
	require.Equal(t, "user001@acme.com", u.Email)
	require.Equal(t, "User", u.FirstName)
	require.Equal(t, "N001", u.LastName)
	require.Equal(t, "active", u.State)
	require.Equal(t, "Engineer", u.CustomAttributes["job_title"])
	require.Equal(t, "user001@acme.com", u.RawAttributes["userName"])
	require.NotContains(t, u.RawAttributes, "password")
	_, err = time.Parse("2006-01-02T15:04:05.000Z", u.CreatedAt)
	require.NoError(t, err, "created_at is ISO-8601 with milliseconds: %s", u.CreatedAt)
	require.Len(t, u.Groups, 2)
	require.ElementsMatch(t, []string{engID, opsID}, []string{u.Groups[0].ID, u.Groups[1].ID})

	require.Equal(t, []string{opsID, engID}, []string{out.ListGroups[0].ID, out.ListGroups[1].ID}, "newest first")
	require.Len(t, out.ListGroupsByUser, 2)
	g := out.GetGroup
	require.Equal(t, engID, g.ID)
	require.Equal(t, "Engineering", g.Name)
	require.Equal(t, "okta-Engineering", g.IdpID)
	require.Equal(t, dirID, g.DirectoryID)
	require.Equal(t, orgID, g.OrganizationID)
	require.Equal(t, "Engineering", g.RawAttributes["displayName"])

	require.Len(t, out.ListDirectories, 1)
	d := out.GetDirectory
	require.Equal(t, dirID, d.ID)
	require.Equal(t, orgID, d.OrganizationID)
	require.Equal(t, "okta scim v2.0", d.Type)
	require.Equal(t, "active", d.State, "the SDK maps linked to active")
	require.Equal(t, []sdkDirectory{d}, out.ListDirectoriesSearch)

	// Events: every user creation and membership, in stream order, with
	// dsync's context.
	require.Len(t, out.Events.Data, 100)
	require.Equal(t, "dsync.user.created", out.Events.Data[0].Event)
	require.Equal(t, userIDs[0], out.Events.Data[0].Data["id"])
	require.Equal(t, "scim", out.Events.Data[0].Context["source"])
	require.NotEmpty(t, out.Events.Data[0].Context["request_id"])
	prev := 0.0
	for _, ev := range out.Events.Data {
		seq := ev.Context["sequence"].(float64)
		require.Greater(t, seq, prev, "stream order")
		prev = seq
	}
	require.NotNil(t, out.Events.ListMetadata.After)

	require.Equal(t, "NotFoundException", out.NotFound["name"], out.NotFound)
	require.EqualValues(t, 404, out.NotFound["status"])
}

// TestRESTReadsAndDirectoryLifecycle covers what the SDK test does not:
// error statuses, the Events API's cursor, token rotation and deletion.
func TestRESTReadsAndDirectoryLifecycle(t *testing.T) {
	sys := startDev(t, devConfig(t))
	base, key := sys.HTTPURL, sys.APIKey
	dirID := sys.Demo.DirectoryID
	c := client{t: t, http: defaultHTTPClient()}
	status, _, user := c.do("POST", sys.Demo.SCIMEndpoint+"/Users", sys.Demo.BearerToken, oktaCreateUser(t))
	require.Equal(t, http.StatusCreated, status, user)

	for _, tt := range []struct {
		name, method, path, key string
		status                  int
		code                    string
	}{
		{"no key", "GET", "/directory_users?directory=" + dirID, "", 401, "unauthorized"},
		{"wrong key", "GET", "/directory_groups?directory=" + dirID, "sk_wrong", 401, "unauthorized"},
		{"unknown user", "GET", "/directory_users/directory_user_01ARZ3NDEKTSV4RRFFQ69G5FAV", key, 404, "entity_not_found"},
		{"malformed user id", "GET", "/directory_users/nope", key, 404, "entity_not_found"},
		{"unknown group", "GET", "/directory_groups/directory_group_01ARZ3NDEKTSV4RRFFQ69G5FAV", key, 404, "entity_not_found"},
		{"unknown directory", "GET", "/directories/directory_01ARZ3NDEKTSV4RRFFQ69G5FAV", key, 404, "entity_not_found"},
		{"delete unknown directory", "DELETE", "/directories/directory_01ARZ3NDEKTSV4RRFFQ69G5FAV", key, 404, "entity_not_found"},
		{"limit too big", "GET", "/directory_users?directory=" + dirID + "&limit=101", key, 422, "invalid_request_parameters"},
		{"limit not a number", "GET", "/directory_groups?directory=" + dirID + "&limit=ten", key, 422, "invalid_request_parameters"},
		{"no directory", "GET", "/directory_users", key, 422, "invalid_request_parameters"},
		{"directory and group", "GET", "/directory_users?directory=" + dirID + "&group=directory_group_01ARZ3NDEKTSV4RRFFQ69G5FAV", key, 422, "invalid_request_parameters"},
		{"bad cursor", "GET", "/directory_users?directory=" + dirID + "&after=org_1", key, 422, "invalid_request_parameters"},
		{"bad order", "GET", "/directories?order=sideways", key, 422, "invalid_request_parameters"},
		{"unknown event", "GET", "/events?events=user.created", key, 422, "invalid_request_parameters"},
		{"bad range", "GET", "/events?range_start=yesterday", key, 422, "invalid_request_parameters"},
		{"expired event cursor", "GET", "/events?after=event_01ARZ3NDEKTSV4RRFFQ69G5FAV", key, 422, "invalid_request_parameters"},
		{"bad user_id", "GET", "/events?user_id=directory_group_01ARZ3NDEKTSV4RRFFQ69G5FAV", key, 422, "invalid_request_parameters"},
		{"bad group_id", "GET", "/events?group_id=nope", key, 422, "invalid_request_parameters"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, _, body := c.do(tt.method, base+tt.path, tt.key, nil)
			require.Equal(t, tt.status, status, body)
			require.Equal(t, tt.code, body["code"], body)
			require.NotEmpty(t, body["message"])
		})
	}

	// The Events API pages by cursor in stream order.
	status, _, page := c.do("GET", base+"/events?limit=1", key, nil)
	require.Equal(t, 200, status, page)
	first := page["data"].([]any)[0].(map[string]any)
	require.Equal(t, "dsync.activated", first["event"])
	after := page["list_metadata"].(map[string]any)["after"].(string)
	require.Equal(t, first["id"], after)
	status, _, page = c.do("GET", base+"/events?events=dsync.user.created&after="+after, key, nil)
	require.Equal(t, 200, status, page)
	created := page["data"].([]any)[0].(map[string]any)
	require.Equal(t, user["id"], created["data"].(map[string]any)["id"])
	require.Equal(t, "scim", created["context"].(map[string]any)["source"])

	// A user's history: every event about it, and nothing else.
	status, _, page = c.do("GET", base+"/events?user_id="+user["id"].(string), key, nil)
	require.Equal(t, 200, status, page)
	history := page["data"].([]any)
	require.NotEmpty(t, history)
	require.Equal(t, created["id"], history[0].(map[string]any)["id"])
	for _, ev := range history {
		require.Contains(t, ev.(map[string]any)["event"], "dsync.user.", "only events about the user: %v", ev)
	}
	status, _, page = c.do("GET", base+"/events?user_id=directory_user_01ARZ3NDEKTSV4RRFFQ69G5FAV", key, nil)
	require.Equal(t, 200, status, page)
	require.Empty(t, page["data"])

	// A rotated token replaces the old one at once.
	status, _, rotated := c.do("POST", base+"/directories/"+dirID+"/token", key, nil)
	require.Equal(t, 200, status, rotated)
	newToken := rotated["scim"].(map[string]any)["bearer_token"].(string)
	status, _, _ = c.do("GET", sys.Demo.SCIMEndpoint+"/Users/"+user["id"].(string), sys.Demo.BearerToken, nil)
	require.Equal(t, 401, status)
	status, _, _ = c.do("GET", sys.Demo.SCIMEndpoint+"/Users/"+user["id"].(string), newToken, nil)
	require.Equal(t, 200, status)

	// Deleting the directory: its token stops working, its data is gone,
	// and dsync.deleted is the last event.
	status, _, _ = c.do("DELETE", base+"/directories/"+dirID, key, nil)
	require.Equal(t, http.StatusAccepted, status)
	status, _, _ = c.do("GET", sys.Demo.SCIMEndpoint+"/Users/"+user["id"].(string), newToken, nil)
	require.Equal(t, 401, status)
	status, _, _ = c.do("GET", base+"/directories/"+dirID, key, nil)
	require.Equal(t, 404, status)
	status, _, _ = c.do("GET", base+"/directory_users/"+user["id"].(string), key, nil)
	require.Equal(t, 404, status)
	status, _, list := c.do("GET", base+"/directory_users?directory="+dirID, key, nil)
	require.Equal(t, 200, status, list)
	require.Empty(t, list["data"])
	status, _, _ = c.do("DELETE", base+"/directories/"+dirID, key, nil)
	require.Equal(t, 404, status, "deleted already")
	status, _, page = c.do("GET", base+"/events?order=desc&limit=1&directory_id="+dirID, key, nil)
	require.Equal(t, 200, status, page)
	require.Equal(t, "dsync.deleted", page["data"].([]any)[0].(map[string]any)["event"])
}
