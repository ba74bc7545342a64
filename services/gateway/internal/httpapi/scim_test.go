package httpapi

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dsync-dev/dsync/pkg/event"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
	"github.com/dsync-dev/dsync/services/gateway/internal/scim"
)

func (e *scimEnv) createUser(d testDir, userName string) string {
	e.t.Helper()
	r := e.scim(d, "POST", "/Users", `{"userName":"`+userName+`"}`)
	require.Equal(e.t, 201, r.status, string(r.body))
	return r.obj(e.t)["id"].(string)
}

// TestSCIMConcurrentPatchesAllApply: 50 connections add distinct emails to
// one user at once; optimistic concurrency re-reads and re-applies, so
// every email is present afterwards.
func TestSCIMConcurrentPatchesAllApply(t *testing.T) {
	e := newSCIMEnv(t)
	d := e.directory("okta scim v2.0")
	id := e.createUser(d, "busy@example.com")
	const n = 50
	var wg sync.WaitGroup
	statuses := make([]int, n)
	for i := range n {
		wg.Go(func() {
			body := fmt.Sprintf(`{"schemas":[%q],"Operations":[{"op":"add","path":"emails","value":[{"value":"e%d@example.com","type":"other"}]}]}`, scim.SchemaPatchOp, i)
			statuses[i] = e.do("PATCH", d.path("/Users/"+id), d.token, body).status
		})
	}
	wg.Wait()
	for i, s := range statuses {
		require.Equal(t, 200, s, "request %d", i)
	}
	u := e.scim(d, "GET", "/Users/"+id, "").obj(t)
	got := map[string]bool{}
	for _, em := range u["emails"].([]any) {
		got[em.(map[string]any)["value"].(string)] = true
	}
	for i := range n {
		require.True(t, got[fmt.Sprintf("e%d@example.com", i)], "email %d lost", i)
	}
}

// TestSCIMConcurrentCreateSameUserName: exactly one of many concurrent
// creates of one userName (in different cases) wins; the rest get 409
// uniqueness and leave nothing in the stream.
func TestSCIMConcurrentCreateSameUserName(t *testing.T) {
	e := newSCIMEnv(t)
	d := e.directory("okta scim v2.0")
	const n = 20
	var wg sync.WaitGroup
	resps := make([]scimResp, n)
	for i := range n {
		wg.Go(func() {
			name := "Race@Example.com"
			if i%2 == 0 {
				name = strings.ToLower(name)
			}
			resps[i] = e.do("POST", d.path("/Users"), d.token, `{"userName":"`+name+`"}`)
		})
	}
	wg.Wait()
	created := 0
	for _, r := range resps {
		requireSCIMShape(t, r)
		switch r.status {
		case 201:
			created++
		case 409:
			require.Equal(t, "uniqueness", r.obj(t)["scimType"])
		default:
			t.Fatalf("status %d: %s", r.status, r.body)
		}
	}
	require.Equal(t, 1, created)
	list := e.scim(d, "GET", "/Users?count=0", "").obj(t)
	require.EqualValues(t, 1, list["totalResults"])
	require.Empty(t, list["Resources"])
}

func TestSCIMDeactivatePolicyDelete(t *testing.T) {
	e := newSCIMEnv(t)
	d := e.directory("okta scim v2.0")
	r := e.do("PATCH", "/directories/"+d.id, scimTestAPIKey, `{"on_deactivate":"delete"}`)
	require.Equal(t, 200, r.status, string(r.body))
	require.Equal(t, "delete", r.obj(t)["on_deactivate"])

	id := e.createUser(d, "leaver@example.com")
	before := e.lastSeq()
	p := e.scim(d, "PATCH", "/Users/"+id, `{"Operations":[{"op":"replace","value":{"active":false}}]}`)
	require.Equal(t, 200, p.status, string(p.body))
	evs, _ := e.events(before)
	require.Equal(t, []string{"USER_DELETED"}, evs)
	ev := e.lastEvent(event.UserSubject(d.id, id))
	require.Equal(t, dsyncv1.Reason_REASON_IDP_DEACTIVATED, ev.GetReason())
	require.Equal(t, dsyncv1.UserState_USER_STATE_INACTIVE, ev.GetUser().GetState())
	require.Equal(t, 404, e.scim(d, "GET", "/Users/"+id, "").status)
	// The name is released with the user.
	e.createUser(d, "leaver@example.com")
}

func TestSCIMDeactivateKeepsInactiveWithReason(t *testing.T) {
	e := newSCIMEnv(t)
	d := e.directory("okta scim v2.0")
	id := e.createUser(d, "sleeper@example.com")
	require.Equal(t, 200, e.scim(d, "PATCH", "/Users/"+id, `{"Operations":[{"op":"Replace","path":"active","value":"False"}]}`).status)
	ev := e.lastEvent(event.UserSubject(d.id, id))
	require.Equal(t, dsyncv1.EventType_EVENT_TYPE_USER_UPDATED, ev.GetType())
	require.Equal(t, dsyncv1.Reason_REASON_IDP_DEACTIVATED, ev.GetReason())
	require.Contains(t, ev.GetChangedAttributes(), "state")
	require.Equal(t, dsyncv1.UserState_USER_STATE_ACTIVE, ev.GetPreviousUser().GetState())
}

func (e *scimEnv) lastEvent(subject string) *dsyncv1.Event {
	e.t.Helper()
	msg, err := e.stream.GetLastMsgForSubject(e.t.Context(), subject)
	require.NoError(e.t, err)
	ev, err := event.Decode(msg.Data)
	require.NoError(e.t, err)
	return ev
}

func TestSCIMPatchManyOperationsIsOneEventWithPrevious(t *testing.T) {
	e := newSCIMEnv(t)
	d := e.directory("okta scim v2.0")
	r := e.scim(d, "POST", "/Users", `{"userName":"multi@example.com","name":{"givenName":"A","familyName":"B"},"title":"Dev"}`)
	id := r.obj(t)["id"].(string)
	before := e.lastSeq()
	p := e.scim(d, "PATCH", "/Users/"+id, `{"Operations":[
		{"op":"replace","path":"name.givenName","value":"C"},
		{"op":"replace","path":"title","value":"Lead"},
		{"op":"add","path":"emails","value":[{"value":"multi@example.com","type":"work","primary":true}]}]}`)
	require.Equal(t, 200, p.status, string(p.body))
	evs, _ := e.events(before)
	require.Equal(t, []string{"USER_UPDATED"}, evs)
	ev := e.lastEvent(event.UserSubject(d.id, id))
	require.Subset(t, ev.GetChangedAttributes(), []string{"first_name", "job_title", "emails"})
	require.Equal(t, "A", ev.GetPreviousUser().GetFirstName())
	require.Equal(t, "C", ev.GetUser().GetFirstName())
}

func TestSCIMETags(t *testing.T) {
	e := newSCIMEnv(t)
	d := e.directory("okta scim v2.0")
	r := e.scim(d, "POST", "/Users", `{"userName":"etag@example.com"}`)
	id, etag := r.obj(t)["id"].(string), r.header.Get("ETag")
	require.Equal(t, r.obj(t)["meta"].(map[string]any)["version"], etag)
	require.True(t, strings.HasPrefix(etag, `W/"`))

	require.Equal(t, 304, e.scim(d, "GET", "/Users/"+id, "", "If-None-Match", etag).status)
	require.Equal(t, 200, e.scim(d, "GET", "/Users/"+id, "", "If-None-Match", `W/"1"`).status)

	p := e.scim(d, "PATCH", "/Users/"+id, `{"Operations":[{"op":"replace","path":"title","value":"x"}]}`, "If-Match", etag)
	require.Equal(t, 200, p.status, string(p.body))
	require.NotEqual(t, etag, p.header.Get("ETag"))
	stale := e.scim(d, "PATCH", "/Users/"+id, `{"Operations":[{"op":"replace","path":"title","value":"y"}]}`, "If-Match", etag)
	require.Equal(t, 412, stale.status)
	require.Equal(t, 412, e.scim(d, "DELETE", "/Users/"+id, "", "If-Match", etag).status)
	require.Equal(t, 204, e.scim(d, "DELETE", "/Users/"+id, "", "If-Match", p.header.Get("ETag")).status)
}

func TestSCIMListQueries(t *testing.T) {
	e := newSCIMEnv(t)
	d := e.directory("okta scim v2.0")
	for _, n := range []string{"carol", "alice", "bob"} {
		r := e.scim(d, "POST", "/Users", `{"userName":"`+n+`@example.com","emails":[{"value":"`+n+`@example.com","type":"work"}],"name":{"givenName":"`+n+`"}}`)
		require.Equal(t, 201, r.status)
	}
	l := e.scim(d, "GET", "/Users?count=0", "").obj(t)
	require.EqualValues(t, 3, l["totalResults"])
	require.EqualValues(t, 0, l["itemsPerPage"])

	l = e.scim(d, "GET", "/Users?sortBy=userName&sortOrder=descending&startIndex=2&count=1", "").obj(t)
	require.EqualValues(t, 3, l["totalResults"])
	require.EqualValues(t, 2, l["startIndex"])
	require.Equal(t, "bob@example.com", l["Resources"].([]any)[0].(map[string]any)["userName"])

	l = e.scim(d, "GET", "/Users?attributes=userName,name.givenName&filter=userName%20sw%20%22a%22", "").obj(t)
	res := l["Resources"].([]any)
	require.Len(t, res, 1)
	require.Equal(t, map[string]any{
		"schemas": []any{scim.SchemaUser}, "id": res[0].(map[string]any)["id"], "userName": "alice@example.com",
		"name": map[string]any{"givenName": "alice"},
	}, res[0])

	l = e.scim(d, "GET", "/Users?excludedAttributes=emails,id,meta", "").obj(t)
	for _, r := range l["Resources"].([]any) {
		require.NotContains(t, r, "emails")
		require.NotContains(t, r, "meta")
		require.Contains(t, r, "id", "id is always returned")
	}

	s := e.scim(d, "POST", "/Users/.search", `{"schemas":["`+scim.SchemaSearchReq+`"],"filter":"emails[type eq \"work\" and value co \"bob\"]","attributes":["userName"],"startIndex":1,"count":10}`)
	require.Equal(t, 200, s.status, string(s.body))
	require.EqualValues(t, 1, s.obj(t)["totalResults"])

	bad := e.scim(d, "GET", "/Users?filter=userName%20eq", "")
	require.Equal(t, 400, bad.status)
	require.Equal(t, "invalidFilter", bad.obj(t)["scimType"])
	require.Equal(t, 400, e.scim(d, "GET", "/Users?count=ten", "").status)
}

func TestSCIMExcludedMembersNeverReadsMembership(t *testing.T) {
	e := newSCIMEnv(t)
	d := e.directory("azure scim v2.0")
	u := e.createUser(d, "m@example.com")
	g := e.scim(d, "POST", "/Groups", `{"displayName":"G","members":[{"value":"`+u+`"}]}`)
	require.Equal(t, 201, g.status, string(g.body))
	require.Len(t, g.obj(t)["members"], 1)
	gid := g.obj(t)["id"].(string)

	reads := e.model.memberReads.Load()
	require.Equal(t, 200, e.scim(d, "GET", "/Groups?excludedAttributes=members", "").status)
	require.Equal(t, 200, e.scim(d, "GET", "/Groups/"+gid+"?excludedAttributes=members", "").status)
	require.Equal(t, reads, e.model.memberReads.Load())
	one := e.scim(d, "GET", "/Groups/"+gid, "").obj(t)
	require.Len(t, one["members"], 1)
	require.Equal(t, reads+1, e.model.memberReads.Load())
}

// TestSCIMMembershipEvents checks that membership events carry both
// snapshots on the member subject, and that a replace is diffed.
func TestSCIMMembershipEvents(t *testing.T) {
	e := newSCIMEnv(t)
	d := e.directory("okta scim v2.0")
	u1, u2, u3 := e.createUser(d, "a@x.io"), e.createUser(d, "b@x.io"), e.createUser(d, "c@x.io")
	g := e.scim(d, "POST", "/Groups", `{"displayName":"G","members":["`+u1+`",{"value":"`+u2+`","display":"b"}]}`).obj(t)["id"].(string)
	ev := e.lastEvent(event.MemberSubject(d.id, g, u1))
	require.Equal(t, dsyncv1.EventType_EVENT_TYPE_GROUP_USER_ADDED, ev.GetType())
	require.Equal(t, "a@x.io", ev.GetMembership().GetUser().GetUserName())
	require.Equal(t, "G", ev.GetMembership().GetGroup().GetName())

	before := e.lastSeq()
	r := e.scim(d, "PATCH", "/Groups/"+g, `{"Operations":[{"op":"replace","path":"members","value":[{"value":"`+u2+`"},{"value":"`+u3+`"}]}]}`)
	require.Equal(t, 200, r.status, string(r.body))
	evs, _ := e.events(before)
	require.ElementsMatch(t, []string{"GROUP_USER_REMOVED", "GROUP_USER_ADDED"}, evs)
	require.Equal(t, dsyncv1.EventType_EVENT_TYPE_GROUP_USER_REMOVED, e.lastEvent(event.MemberSubject(d.id, g, u1)).GetType())
	require.Equal(t, dsyncv1.EventType_EVENT_TYPE_GROUP_USER_ADDED, e.lastEvent(event.MemberSubject(d.id, g, u3)).GetType())
}

func TestSCIMDiscovery(t *testing.T) {
	e := newSCIMEnv(t)
	d := e.directory("okta scim v2.0")
	spc := e.scim(d, "GET", "/ServiceProviderConfig", "").obj(t)
	require.Equal(t, true, spc["patch"].(map[string]any)["supported"])
	require.Equal(t, true, spc["bulk"].(map[string]any)["supported"])
	require.EqualValues(t, scim.BulkMaxOperations, spc["bulk"].(map[string]any)["maxOperations"])
	require.EqualValues(t, scim.MaxResults, spc["filter"].(map[string]any)["maxResults"])
	require.Equal(t, false, spc["changePassword"].(map[string]any)["supported"])
	require.Equal(t, true, spc["sort"].(map[string]any)["supported"])
	require.Equal(t, true, spc["etag"].(map[string]any)["supported"])
	require.Equal(t, "oauthbearertoken", spc["authenticationSchemes"].([]any)[0].(map[string]any)["type"])

	rts := e.scim(d, "GET", "/ResourceTypes", "").obj(t)
	require.EqualValues(t, 2, rts["totalResults"])
	require.Equal(t, "/Users", e.scim(d, "GET", "/ResourceTypes/User", "").obj(t)["endpoint"])

	schemas := e.scim(d, "GET", "/Schemas", "").obj(t)
	require.EqualValues(t, 3, schemas["totalResults"])
	for _, urn := range []string{scim.SchemaUser, scim.SchemaEnterprise, scim.SchemaGroup} {
		s := e.scim(d, "GET", "/Schemas/"+urn, "").obj(t)
		require.Equal(t, urn, s["id"])
		require.NotEmpty(t, s["attributes"])
		require.Equal(t, e.srv.URL+"/scim/v2/"+d.id+"/Schemas/"+urn, s["meta"].(map[string]any)["location"])
	}
	require.Equal(t, 404, e.scim(d, "GET", "/Schemas/urn:nope", "").status)
}

func TestSCIMBulk(t *testing.T) {
	e := newSCIMEnv(t)
	d := e.directory("okta scim v2.0")
	body := `{"schemas":["` + scim.SchemaBulkReq + `"],"failOnErrors":2,"Operations":[
		{"method":"POST","path":"/Users","bulkId":"u1","data":{"userName":"bulk1@example.com"}},
		{"method":"POST","path":"/Groups","bulkId":"g1","data":{"displayName":"Bulk","members":[{"value":"bulkId:u1"}]}},
		{"method":"PATCH","path":"/Users/bulkId:u1","data":{"Operations":[{"op":"replace","path":"title","value":"T"}]}},
		{"method":"POST","path":"/Users","bulkId":"dup","data":{"userName":"bulk1@example.com"}},
		{"method":"DELETE","path":"/Users/bulkId:missing"},
		{"method":"DELETE","path":"/Groups/bulkId:g1"}]}`
	r := e.scim(d, "POST", "/Bulk", body)
	require.Equal(t, 200, r.status, string(r.body))
	m := r.obj(t)
	require.Equal(t, []any{scim.SchemaBulkResp}, m["schemas"])
	ops := m["Operations"].([]any)
	require.Len(t, ops, 5, "processing stops after failOnErrors failures")
	statuses := []string{}
	for _, o := range ops {
		statuses = append(statuses, o.(map[string]any)["status"].(string))
	}
	require.Equal(t, []string{"201", "201", "200", "409", "409"}, statuses)
	first := ops[0].(map[string]any)
	require.NotEmpty(t, first["location"])
	require.NotEmpty(t, first["version"])
	require.Equal(t, "uniqueness", ops[3].(map[string]any)["response"].(map[string]any)["scimType"])
	g := e.scim(d, "GET", "/Groups?filter=displayName%20eq%20%22Bulk%22", "").obj(t)
	require.Len(t, g["Resources"].([]any)[0].(map[string]any)["members"], 1)
}

func TestSCIMPauseResumeAndRateLimit(t *testing.T) {
	e := newSCIMEnv(t)
	d := e.directory("okta scim v2.0")
	require.Equal(t, 401, e.do("POST", "/directories/"+d.id+"/pause", "", "").status)
	r := e.do("POST", "/directories/"+d.id+"/pause", scimTestAPIKey, "")
	require.Equal(t, 200, r.status, string(r.body))
	ev := e.lastEvent(event.DirectorySubject(d.id))
	require.Equal(t, dsyncv1.EventType_EVENT_TYPE_DIRECTORY_UPDATED, ev.GetType())
	require.Equal(t, dsyncv1.DirectoryState_DIRECTORY_STATE_INACTIVE, ev.GetDirectory().GetState())

	p := e.scim(d, "GET", "/Users", "")
	require.Equal(t, 503, p.status)
	require.NotEmpty(t, p.header.Get("Retry-After"))

	require.Equal(t, 200, e.do("POST", "/directories/"+d.id+"/resume", scimTestAPIKey, "").status)
	require.Equal(t, 200, e.scim(d, "GET", "/Users", "").status)
	require.Equal(t, 404, e.do("POST", "/directories/directory_01JZ0000000000000000000000/pause", scimTestAPIKey, "").status)
	require.Equal(t, 422, e.do("PATCH", "/directories/"+d.id, scimTestAPIKey, `{"on_deactivate":"explode"}`).status)

	r = e.do("PATCH", "/directories/"+d.id, scimTestAPIKey, `{"rate_limit_per_second":1}`)
	require.Equal(t, 200, r.status, string(r.body))
	var limited scimResp
	require.Eventually(t, func() bool {
		limited = e.do("GET", d.path("/ServiceProviderConfig"), d.token, "")
		return limited.status == http.StatusTooManyRequests
	}, 5e9, 1e6)
	requireSCIMShape(t, limited)
	require.NotEmpty(t, limited.header.Get("Retry-After"))
}

func TestSCIMRequestLimits(t *testing.T) {
	e := newSCIMEnv(t)
	d := e.directory("okta scim v2.0")
	big := `{"userName":"x","pad":"` + strings.Repeat("a", 1<<20) + `"}`
	require.Equal(t, 413, e.scim(d, "POST", "/Users", big).status)
	require.Equal(t, 405, e.scim(d, "POST", "/Users/directory_user_01JZ0000000000000000000000", `{}`).status)
	require.Equal(t, 404, e.scim(d, "GET", "/Nope", "").status)
	// A PATCH on a group that does not exist.
	require.Equal(t, 404, e.scim(d, "PATCH", "/Groups/directory_group_01JZ0000000000000000000000", `{"Operations":[{"op":"add","path":"members","value":[]}]}`).status)
}
