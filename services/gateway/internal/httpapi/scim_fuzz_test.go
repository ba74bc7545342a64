package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/dsync-dev/dsync/services/gateway/internal/scim"
)

// FuzzSCIMBodies sends arbitrary bodies to every SCIM write and search
// endpoint of a gateway on a real JetStream server: no body may cause a
// panic or a 500, and every error is a SCIM Error with status as a string.
func FuzzSCIMBodies(f *testing.F) {
	e := newSCIMEnv(f)
	d := e.directory("okta scim v2.0")
	userID := e.createUser(d, "fuzz@example.com")
	g := e.scim(d, "POST", "/Groups", `{"displayName":"Fuzz"}`)
	groupID := g.obj(f)["id"].(string)
	targets := []struct{ method, path string }{
		{"POST", "/Users"}, {"PUT", "/Users/" + userID}, {"PATCH", "/Users/" + userID},
		{"POST", "/Groups"}, {"PUT", "/Groups/" + groupID}, {"PATCH", "/Groups/" + groupID},
		{"POST", "/Bulk"}, {"POST", "/Users/.search"}, {"POST", "/Groups/.search"},
	}
	seeds := []string{
		`{"userName":"a@b.c","active":"True","emails":[{"value":"x","primary":"false"}]}`,
		`{"userName":"fuzz@example.com","groups":[{"value":"` + groupID + `"}]}`,
		`{"displayName":"x","members":["` + userID + `",{"value":null},5]}`,
		`{"Operations":[{"op":"Replace","path":"emails[type eq \"work\"].value","value":"a"}]}`,
		`{"Operations":[{"op":"remove","path":"members[value eq \"` + userID + `\"]"}]}`,
		`{"Operations":[{"op":"replace","value":{"name.givenName":"x","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager":"m"}}]}`,
		`{"Operations":[{"op":"add","path":"members","value":[{"value":"bulkId:x"}]}]}`,
		`{"Operations":[{"method":"POST","path":"/Users","bulkId":"a","data":{"userName":"q"}},{"method":"PATCH","path":"/Groups/bulkId:a"}]}`,
		`{"filter":"userName eq \"x\" or (emails[type eq \"work\"] and not (title pr))","count":"5","startIndex":-3}`,
		`{"attributes":"userName,meta.created","excludedAttributes":["members"]}`,
		`null`, `[]`, `{`, ``, `{"userName":{"a":1}}`, `{"Operations":null}`, `{"Operations":[{}]}`,
	}
	for i := range targets {
		for _, s := range seeds {
			f.Add(uint8(i), []byte(s))
		}
	}
	h := e.srv.Config.Handler
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		target := targets[int(which)%len(targets)]
		req := httptest.NewRequestWithContext(t.Context(), target.method, d.path(target.path), bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+d.token)
		req.Header.Set("Content-Type", "application/scim+json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s %q: status %d: %s", target.method, target.path, body, rec.Code, rec.Body)
		}
		if rec.Code == http.StatusNoContent {
			return
		}
		var m map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
			t.Fatalf("%s %s %q: body %q is not a JSON object", target.method, target.path, body, rec.Body)
		}
		if rec.Code >= 400 {
			if m["status"] != strconv.Itoa(rec.Code) || m["detail"] == "" {
				t.Fatalf("%s %s %q: error body %q", target.method, target.path, body, rec.Body)
			}
			if s, _ := m["schemas"].([]any); len(s) != 1 || s[0] != scim.SchemaError {
				t.Fatalf("%s %s %q: error body %q", target.method, target.path, body, rec.Body)
			}
		}
	})
}
