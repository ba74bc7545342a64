package dashboard

import (
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/dsync-dev/dsync/pkg/event"
	"github.com/dsync-dev/dsync/pkg/workos"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
)

// Directory administration: rotate the SCIM token, pause, resume, delete,
// settings. Every action is a POST behind the session and its CSRF token,
// and goes through the REST API.

// flashes are the notices an action's redirect asks for (?done=…): a fixed
// list, so that a crafted link cannot put words on the page.
var flashes = map[string]string{
	"paused":    "Directory paused: SCIM requests are answered 503 (identity providers retry) until it is resumed.",
	"resumed":   "Directory resumed: SCIM requests are accepted again.",
	"settings":  "Settings saved.",
	"deleted":   "Directory deleted. Its users and groups are removed and its SCIM token no longer works.",
	"resent":    "Delivery queued to be sent again.",
	"recovered": "Failed deliveries queued to be sent again: ",
	"replayed":  "Events scheduled for delivery again: ",
}

// flashFor returns the notice of r's ?done= parameter, with its count
// (?n=) when it has one.
func flashFor(r *http.Request) string {
	q := r.URL.Query()
	msg, ok := flashes[q.Get("done")]
	if !ok {
		return ""
	}
	if strings.HasSuffix(msg, ": ") {
		n, err := strconv.Atoi(q.Get("n"))
		if err != nil || n < 0 {
			return strings.TrimSuffix(msg, ": ") + "."
		}
		return msg + strconv.Itoa(n) + "."
	}
	return msg
}

func redirectDone(w http.ResponseWriter, r *http.Request, to, done string, n ...int64) {
	q := url.Values{"done": {done}}
	if len(n) > 0 {
		q.Set("n", strconv.FormatInt(n[0], 10))
	}
	http.Redirect(w, r, to+"?"+q.Encode(), http.StatusSeeOther)
}

// directoryID reads and checks the {id} of a directory route; on a bad id
// it renders the 404 and returns false.
func (d *Dashboard) directoryID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("id")
	if !event.ValidID(id, event.PrefixDirectory) {
		d.renderError(w, r, http.StatusNotFound, "Not found", "There is no directory "+id+".")
		return "", false
	}
	return id, true
}

// rotateToken replaces the directory's SCIM token and shows the new one,
// this once (the answer to the POST, not stored, no-store like every page).
func (d *Dashboard) rotateToken(w http.ResponseWriter, r *http.Request) {
	id, ok := d.directoryID(w, r)
	if !ok {
		return
	}
	var created createdDirectory
	if err := d.call(r.Context(), http.MethodPost, "/directories/"+id+"/token", nil, nil, &created); err != nil {
		d.fail(w, r, err)
		return
	}
	d.render(w, r, http.StatusOK, "directory_created", page{Title: "New SCIM token", Nav: "directories", Data: credentialsData{
		Directory: created.Directory, Provider: providerFor(created.Type),
		Endpoint: created.SCIM.Endpoint, Token: created.SCIM.BearerToken, Rotated: true,
	}})
}

func (d *Dashboard) pauseDirectory(w http.ResponseWriter, r *http.Request) {
	d.directoryAction(w, r, "pause", "paused")
}

func (d *Dashboard) resumeDirectory(w http.ResponseWriter, r *http.Request) {
	d.directoryAction(w, r, "resume", "resumed")
}

func (d *Dashboard) directoryAction(w http.ResponseWriter, r *http.Request, action, done string) {
	id, ok := d.directoryID(w, r)
	if !ok {
		return
	}
	if err := d.call(r.Context(), http.MethodPost, "/directories/"+id+"/"+action, nil, nil, nil); err != nil {
		d.fail(w, r, err)
		return
	}
	redirectDone(w, r, "/dashboard/directories/"+id, done)
}

// deleteDirectory deletes the directory once its name was typed as
// confirmation.
func (d *Dashboard) deleteDirectory(w http.ResponseWriter, r *http.Request) {
	id, ok := d.directoryID(w, r)
	if !ok {
		return
	}
	dir, err := d.directorySettings(r, id)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	if strings.TrimSpace(r.PostForm.Get("confirm")) != dir.GetName() {
		d.renderSettings(w, r, http.StatusUnprocessableEntity, dir, settingsForm{}, "",
			"Type the directory's name exactly to confirm the deletion.")
		return
	}
	if err := d.call(r.Context(), http.MethodDelete, "/directories/"+id, nil, nil, nil); err != nil {
		d.fail(w, r, err)
		return
	}
	redirectDone(w, r, "/dashboard/directories", "deleted")
}

// directorySettings reads the directory with its settings, which the
// WorkOS-shaped REST answer does not carry, from the read model.
func (d *Dashboard) directorySettings(r *http.Request, id string) (*dsyncv1.Directory, error) {
	resp, err := d.cfg.Directories.GetDirectory(r.Context(), &dsyncv1.GetDirectoryRequest{Id: id})
	if err != nil {
		return nil, err
	}
	return resp.GetDirectory(), nil
}

// settingsForm is the settings form as typed.
type settingsForm struct {
	OnDeactivate     string
	RateLimit        string
	AttributeMapping string
	RoleMapping      string
}

type settingsData struct {
	Directory workos.Directory
	Form      settingsForm
	Error     string
	// DeleteError is the delete form's error.
	DeleteError string
}

func formOf(dir *dsyncv1.Directory) settingsForm {
	f := settingsForm{OnDeactivate: "keep_inactive", AttributeMapping: formatMapping(dir.GetAttributeMapping()),
		RoleMapping: formatMapping(dir.GetRoleMapping())}
	if dir.GetOnDeactivate() == dsyncv1.DeactivatePolicy_DEACTIVATE_POLICY_DELETE {
		f.OnDeactivate = "delete"
	}
	if dir.GetRateLimitPerSecond() > 0 {
		f.RateLimit = strconv.FormatFloat(dir.GetRateLimitPerSecond(), 'f', -1, 64)
	}
	return f
}

// formatMapping writes a mapping as "key = value" lines, sorted.
func formatMapping(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k + " = " + m[k] + "\n")
	}
	return b.String()
}

// parseMapping reads "key = value" lines (blank lines and # comments
// skipped). It returns the line of the first malformed entry.
func parseMapping(s string) (map[string]string, int) {
	out := map[string]string{}
	for i, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" || v == "" {
			return nil, i + 1
		}
		out[k] = v
	}
	return out, 0
}

func (d *Dashboard) settings(w http.ResponseWriter, r *http.Request) {
	id, ok := d.directoryID(w, r)
	if !ok {
		return
	}
	dir, err := d.directorySettings(r, id)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	d.renderSettings(w, r, http.StatusOK, dir, formOf(dir), "", "")
}

func (d *Dashboard) renderSettings(w http.ResponseWriter, r *http.Request, status int, dir *dsyncv1.Directory, f settingsForm, formErr, deleteErr string) {
	if f == (settingsForm{}) {
		f = formOf(dir)
	}
	d.render(w, r, status, "directory_settings", page{Title: "Settings · " + dir.GetName(), Nav: "directories", Flash: flashFor(r),
		Data: settingsData{Directory: workos.NewDirectory(dir), Form: f, Error: formErr, DeleteError: deleteErr}})
}

// saveSettings sends the changed settings as one PATCH. The mappings are
// sent only when they changed, so that a server without them (they came
// later than on_deactivate and the rate limit) still saves the rest.
func (d *Dashboard) saveSettings(w http.ResponseWriter, r *http.Request) {
	id, ok := d.directoryID(w, r)
	if !ok {
		return
	}
	dir, err := d.directorySettings(r, id)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	f := settingsForm{
		OnDeactivate: r.PostForm.Get("on_deactivate"), RateLimit: strings.TrimSpace(r.PostForm.Get("rate_limit")),
		AttributeMapping: r.PostForm.Get("attribute_mapping"), RoleMapping: r.PostForm.Get("role_mapping"),
	}
	bad := func(msg string) { d.renderSettings(w, r, http.StatusUnprocessableEntity, dir, f, msg, "") }
	body := map[string]any{"on_deactivate": f.OnDeactivate}
	rate := 0.0
	if f.RateLimit != "" {
		if rate, err = strconv.ParseFloat(f.RateLimit, 64); err != nil || rate < 0 {
			bad("The rate limit must be a number of requests per second (empty for the server default).")
			return
		}
	}
	body["rate_limit_per_second"] = rate
	attrs, line := parseMapping(f.AttributeMapping)
	if line > 0 {
		bad("Attribute mapping, line " + strconv.Itoa(line) + ": write one “custom_attribute = SCIM path” per line.")
		return
	}
	roles, line := parseMapping(f.RoleMapping)
	if line > 0 {
		bad("Role mapping, line " + strconv.Itoa(line) + ": write one “group = role slug” per line.")
		return
	}
	if !sameMapping(attrs, dir.GetAttributeMapping()) {
		body["attribute_mapping"] = attrs
	}
	if !sameMapping(roles, dir.GetRoleMapping()) {
		body["role_mapping"] = roles
	}
	err = d.call(r.Context(), http.MethodPatch, "/directories/"+id, nil, body, nil)
	if ae, ok := asAPIError(err); ok && ae.Status == http.StatusUnprocessableEntity {
		bad(ae.Message)
		return
	}
	if err != nil {
		d.fail(w, r, err)
		return
	}
	redirectDone(w, r, "/dashboard/directories/"+id+"/settings", "settings")
}

func sameMapping(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
