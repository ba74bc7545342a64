package dashboard

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/dsync-dev/dsync/pkg/event"
	"github.com/dsync-dev/dsync/pkg/workos"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
)

const (
	pageSize  = 25
	orgsShown = 100
)

// pager holds the cursors of a list page's neighbours.
type pager struct {
	Before, After string
	// Base is the query the cursors are added to (search terms).
	Base url.Values
}

func (p pager) link(key, cursor string) string {
	q := url.Values{}
	for k, v := range p.Base {
		q[k] = v
	}
	q.Set(key, cursor)
	return "?" + q.Encode()
}

// PrevURL and NextURL are the neighbouring pages' query strings; empty
// when there is none.
func (p pager) PrevURL() string {
	if p.Before == "" {
		return ""
	}
	return p.link("before", p.Before)
}

func (p pager) NextURL() string {
	if p.After == "" {
		return ""
	}
	return p.link("after", p.After)
}

// validCursor admits object ids (the API's cursors) and nothing else, so a
// crafted query parameter is never passed on.
func validCursor(s string) bool {
	if s == "" || len(s) > 100 {
		return false
	}
	for _, c := range s {
		if !(c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// cursorQuery copies the paging parameters of r into q.
func cursorQuery(r *http.Request, q url.Values) url.Values {
	if v := r.URL.Query().Get("after"); validCursor(v) {
		q.Set("after", v)
	} else if v := r.URL.Query().Get("before"); validCursor(v) {
		q.Set("before", v)
	}
	return q
}

type orgView struct {
	ID, Name string
	Domains  []string
	Created  string
}

func orgViewOf(o *dsyncv1.Organization) orgView {
	return orgView{ID: o.GetId(), Name: o.GetName(), Domains: o.GetDomains(), Created: workos.FormatTime(o.GetCreatedAt().AsTime())}
}

// organizations reads the first organizations. The REST API has no list
// of organizations yet, so this is the projector's gRPC list.
func (d *Dashboard) organizations(ctx context.Context) ([]orgView, error) {
	resp, err := d.cfg.Directories.ListOrganizations(ctx, &dsyncv1.ListOrganizationsRequest{
		Page: &dsyncv1.Page{Limit: orgsShown, Order: dsyncv1.Order_ORDER_ASC},
	})
	if err != nil {
		return nil, err
	}
	out := make([]orgView, 0, len(resp.GetOrganizations()))
	for _, o := range resp.GetOrganizations() {
		out = append(out, orgViewOf(o))
	}
	return out, nil
}

type overviewData struct {
	Orgs        []orgView
	OrgNames    map[string]string
	Directories []workos.Directory
	MoreDirs    bool
	OrgError    string
	OrgName     string
	OrgDomains  string
}

func (d *Dashboard) overview(w http.ResponseWriter, r *http.Request) {
	d.renderOverview(w, r, http.StatusOK, overviewData{}, "")
}

func (d *Dashboard) renderOverview(w http.ResponseWriter, r *http.Request, status int, data overviewData, flash string) {
	var (
		wg      sync.WaitGroup
		orgs    []orgView
		dirs    list[workos.Directory]
		orgErr  error
		dirsErr error
	)
	wg.Go(func() { orgs, orgErr = d.organizations(r.Context()) })
	wg.Go(func() {
		dirsErr = d.call(r.Context(), http.MethodGet, "/directories", url.Values{"limit": {"10"}}, nil, &dirs)
	})
	wg.Wait()
	if orgErr != nil {
		d.fail(w, r, orgErr)
		return
	}
	if dirsErr != nil {
		d.fail(w, r, dirsErr)
		return
	}
	data.Orgs, data.Directories, data.MoreDirs = orgs, dirs.Data, dirs.after() != ""
	data.OrgNames = orgNames(orgs)
	d.render(w, r, status, "overview", page{Title: "Overview", Nav: "overview", Flash: flash, Data: data})
}

func orgNames(orgs []orgView) map[string]string {
	m := make(map[string]string, len(orgs))
	for _, o := range orgs {
		m[o.ID] = o.Name
	}
	return m
}

func (d *Dashboard) createOrganization(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimSpace(r.PostForm.Get("name"))
	var domains []string
	for _, s := range strings.FieldsFunc(r.PostForm.Get("domains"), func(c rune) bool { return c == ',' || c == ' ' || c == '\n' }) {
		domains = append(domains, strings.TrimSpace(s))
	}
	var org workos.Organization
	err := d.call(r.Context(), http.MethodPost, "/organizations", nil,
		map[string]any{"name": name, "domains": domains}, &org)
	if ae, ok := asAPIError(err); ok && ae.Status == http.StatusUnprocessableEntity {
		d.renderOverview(w, r, http.StatusUnprocessableEntity,
			overviewData{OrgError: ae.Message, OrgName: name, OrgDomains: r.PostForm.Get("domains")}, "")
		return
	}
	if err != nil {
		d.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/dashboard/directories/new?organization_id="+url.QueryEscape(org.ID), http.StatusSeeOther)
}

type directoriesData struct {
	Directories []workos.Directory
	OrgNames    map[string]string
	Search      string
	Pager       pager
}

func (d *Dashboard) directories(w http.ResponseWriter, r *http.Request) {
	search := strings.TrimSpace(r.URL.Query().Get("search"))
	q := cursorQuery(r, url.Values{"limit": {"25"}})
	base := url.Values{}
	if search != "" {
		q.Set("search", search)
		base.Set("search", search)
	}
	var (
		wg     sync.WaitGroup
		dirs   list[workos.Directory]
		orgs   []orgView
		e1, e2 error
	)
	wg.Go(func() { e1 = d.call(r.Context(), http.MethodGet, "/directories", q, nil, &dirs) })
	wg.Go(func() { orgs, e2 = d.organizations(r.Context()) })
	wg.Wait()
	for _, err := range []error{e1, e2} {
		if err != nil {
			d.fail(w, r, err)
			return
		}
	}
	d.render(w, r, http.StatusOK, "directories", page{Title: "Directories", Nav: "directories", Flash: flashFor(r), Data: directoriesData{
		Directories: dirs.Data, OrgNames: orgNames(orgs), Search: search,
		Pager: pager{Before: dirs.before(), After: dirs.after(), Base: base},
	}})
}

type newDirectoryData struct {
	Orgs      []orgView
	Providers []Provider
	OrgID     string
	Name      string
	Type      string
	Error     string
}

func (d *Dashboard) newDirectory(w http.ResponseWriter, r *http.Request) {
	d.renderNewDirectory(w, r, http.StatusOK, newDirectoryData{
		OrgID: r.URL.Query().Get("organization_id"), Type: providers[0].Type,
	})
}

func (d *Dashboard) renderNewDirectory(w http.ResponseWriter, r *http.Request, status int, data newDirectoryData) {
	orgs, err := d.organizations(r.Context())
	if err != nil {
		d.fail(w, r, err)
		return
	}
	data.Orgs, data.Providers = orgs, providers
	d.render(w, r, status, "directory_new", page{Title: "New directory", Nav: "directories", Data: data})
}

// createdDirectory is the REST answer to POST /directories.
type createdDirectory struct {
	workos.Directory
	SCIM struct {
		Endpoint    string `json:"endpoint"`
		BearerToken string `json:"bearer_token"`
	} `json:"scim"`
}

type credentialsData struct {
	Directory workos.Directory
	Provider  Provider
	Endpoint  string
	Token     string
	// Rotated is set when the token replaces the directory's previous one.
	Rotated bool
}

// createDirectory creates the directory and shows its bearer token, this
// once: the page is the POST's answer, not stored and marked no-store, and
// the token exists nowhere else (the server keeps only its hash).
func (d *Dashboard) createDirectory(w http.ResponseWriter, r *http.Request) {
	data := newDirectoryData{
		OrgID: r.PostForm.Get("organization_id"),
		Name:  strings.TrimSpace(r.PostForm.Get("name")),
		Type:  r.PostForm.Get("type"),
	}
	var created createdDirectory
	err := d.call(r.Context(), http.MethodPost, "/directories", nil,
		map[string]string{"organization_id": data.OrgID, "name": data.Name, "type": data.Type}, &created)
	if ae, ok := asAPIError(err); ok && ae.Status == http.StatusUnprocessableEntity {
		data.Error = ae.Message
		d.renderNewDirectory(w, r, http.StatusUnprocessableEntity, data)
		return
	}
	if err != nil {
		d.fail(w, r, err)
		return
	}
	d.render(w, r, http.StatusCreated, "directory_created", page{Title: "Directory created", Nav: "directories", Data: credentialsData{
		Directory: created.Directory, Provider: providerFor(created.Type),
		Endpoint: created.SCIM.Endpoint, Token: created.SCIM.BearerToken,
	}})
}

type directoryData struct {
	Directory workos.Directory
	OrgName   string
	Provider  Provider
	Endpoint  string
	Users     []workos.DirectoryUser
	Search    string
	// Partial is set when a search scanned only part of a large directory.
	Partial bool
	Pager   pager
}

func (d *Dashboard) directory(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !event.ValidID(id, event.PrefixDirectory) {
		d.renderError(w, r, http.StatusNotFound, "Not found", "There is no directory "+id+".")
		return
	}
	var dir workos.Directory
	if err := d.call(r.Context(), http.MethodGet, "/directories/"+id, nil, nil, &dir); err != nil {
		d.fail(w, r, err)
		return
	}
	data := directoryData{
		Directory: dir, Provider: providerFor(dir.Type), Endpoint: d.cfg.PublicURL + "/scim/v2/" + id,
		Search: strings.TrimSpace(r.URL.Query().Get("q")),
	}
	if org, err := d.cfg.Directories.GetOrganization(r.Context(), &dsyncv1.GetOrganizationRequest{Id: dir.OrganizationID}); err == nil {
		data.OrgName = org.GetOrganization().GetName()
	}
	var err error
	if data.Search != "" {
		data.Users, data.Partial, err = d.searchUsers(r.Context(), id, data.Search)
	} else {
		var users list[workos.DirectoryUser]
		err = d.call(r.Context(), http.MethodGet, "/directory_users",
			cursorQuery(r, url.Values{"directory": {id}, "limit": {"25"}}), nil, &users)
		data.Users = users.Data
		data.Pager = pager{Before: users.before(), After: users.after(), Base: url.Values{}}
	}
	if err != nil {
		d.fail(w, r, err)
		return
	}
	d.render(w, r, http.StatusOK, "directory", page{Title: dir.Name, Nav: "directories", Flash: flashFor(r), Data: data})
}

// Search limits: a search shows at most searchResults matches, and scans
// at most searchScanPages pages of the user list.
const (
	searchResults   = 50
	searchScanPages = 50
)

// searchUsers finds a directory's users whose name, email, userName or
// idp_id contains q, case-insensitively. The REST API has no user search
// yet, so it scans the user list page by page (up to 5,000 users) and
// reports whether it stopped early.
//
// Extension point: when the REST API grows a search parameter (issue 4),
// pass q to GET /directory_users and drop the scan.
func (d *Dashboard) searchUsers(ctx context.Context, dirID, q string) ([]workos.DirectoryUser, bool, error) {
	needle := strings.ToLower(q)
	var out []workos.DirectoryUser
	after := ""
	for range searchScanPages {
		params := url.Values{"directory": {dirID}, "limit": {"100"}, "order": {"asc"}}
		if after != "" {
			params.Set("after", after)
		}
		var page list[workos.DirectoryUser]
		if err := d.call(ctx, http.MethodGet, "/directory_users", params, nil, &page); err != nil {
			return nil, false, err
		}
		for _, u := range page.Data {
			if userMatches(u, needle) {
				out = append(out, u)
				if len(out) == searchResults {
					return out, true, nil
				}
			}
		}
		if after = page.after(); after == "" {
			return out, false, nil
		}
	}
	return out, true, nil
}

func userMatches(u workos.DirectoryUser, needle string) bool {
	fields := []string{deref(u.Email), deref(u.Username), deref(u.FirstName), deref(u.LastName), u.IdpID, u.ID,
		deref(u.FirstName) + " " + deref(u.LastName)}
	for _, e := range u.Emails {
		fields = append(fields, e.Value)
	}
	for _, f := range fields {
		if f != "" && strings.Contains(strings.ToLower(f), needle) {
			return true
		}
	}
	return false
}

type userData struct {
	User      workos.DirectoryUser
	Directory workos.Directory
	// Groups are the REST answer's groups; empty until the read model
	// tracks memberships.
	Groups []workos.DirectoryGroup
	Custom string
	Raw    string
	// History is every event about the user, newest first; HistoryOK is
	// false when the read model could not list them.
	History   []historyItem
	HistoryOK bool
}

func (d *Dashboard) user(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !event.ValidID(id, event.PrefixUser) {
		d.renderError(w, r, http.StatusNotFound, "Not found", "There is no user "+id+".")
		return
	}
	var u workos.DirectoryUser
	if err := d.call(r.Context(), http.MethodGet, "/directory_users/"+id, nil, nil, &u); err != nil {
		d.fail(w, r, err)
		return
	}
	var dir workos.Directory
	// The directory only names the breadcrumb; a failure is not the user's.
	_ = d.call(r.Context(), http.MethodGet, "/directories/"+u.DirectoryID, nil, nil, &dir)
	name := strings.TrimSpace(deref(u.FirstName) + " " + deref(u.LastName))
	if name == "" {
		name = firstNonEmpty(deref(u.Email), deref(u.Username), u.ID)
	}
	history, ok := d.userHistory(r.Context(), u)
	d.render(w, r, http.StatusOK, "user", page{Title: name, Nav: "directories", Data: userData{
		User: u, Directory: dir, Groups: groupsOf(u), Custom: prettyJSON(u.CustomAttributes), Raw: prettyJSON(u.RawAttributes),
		History: history, HistoryOK: ok,
	}})
}

func groupsOf(u workos.DirectoryUser) []workos.DirectoryGroup {
	if u.Groups == nil {
		return nil
	}
	return *u.Groups
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// endpoint is the REST form of a webhook endpoint. Secret is set only in
// the answer that creates it.
type endpoint struct {
	ID        string   `json:"id"`
	URL       string   `json:"url"`
	Events    []string `json:"events"`
	State     string   `json:"state"`
	Secret    string   `json:"secret"`
	CreatedAt string   `json:"created_at"`
}

type webhooksData struct {
	Endpoints  []endpoint
	EventNames []string
	Pager      pager
	Error      string
	URL        string
	Selected   map[string]bool
}

func (d *Dashboard) webhooks(w http.ResponseWriter, r *http.Request) {
	d.renderWebhooks(w, r, http.StatusOK, webhooksData{})
}

func (d *Dashboard) renderWebhooks(w http.ResponseWriter, r *http.Request, status int, data webhooksData) {
	var eps list[endpoint]
	if err := d.call(r.Context(), http.MethodGet, "/webhook_endpoints", cursorQuery(r, url.Values{"limit": {"25"}}), nil, &eps); err != nil {
		d.fail(w, r, err)
		return
	}
	for i := range eps.Data {
		eps.Data[i].Secret = "" // never rendered after creation
	}
	data.Endpoints, data.EventNames = eps.Data, workos.EventNames
	data.Pager = pager{Before: eps.before(), After: eps.after(), Base: url.Values{}}
	d.render(w, r, status, "webhooks", page{Title: "Webhooks", Nav: "webhooks", Data: data})
}

type webhookCreatedData struct {
	Endpoint endpoint
	// Rotated is set when the secret replaces the endpoint's previous one,
	// which keeps signing for Grace.
	Rotated bool
	Grace   string
}

// createWebhook registers an endpoint and shows its signing secret this
// once, behind a reveal button.
func (d *Dashboard) createWebhook(w http.ResponseWriter, r *http.Request) {
	u := strings.TrimSpace(r.PostForm.Get("url"))
	events := r.PostForm["events"]
	var ep endpoint
	err := d.call(r.Context(), http.MethodPost, "/webhook_endpoints", nil, map[string]any{"url": u, "events": events}, &ep)
	if ae, ok := asAPIError(err); ok && ae.Status == http.StatusUnprocessableEntity {
		sel := map[string]bool{}
		for _, e := range events {
			sel[e] = true
		}
		d.renderWebhooks(w, r, http.StatusUnprocessableEntity, webhooksData{Error: ae.Message, URL: u, Selected: sel})
		return
	}
	if err != nil {
		d.fail(w, r, err)
		return
	}
	d.render(w, r, http.StatusCreated, "webhook_created", page{Title: "Endpoint created", Nav: "webhooks", Data: webhookCreatedData{Endpoint: ep}})
}

func deliveryState(s dsyncv1.DeliveryState) string {
	switch s {
	case dsyncv1.DeliveryState_DELIVERY_STATE_PENDING:
		return "pending"
	case dsyncv1.DeliveryState_DELIVERY_STATE_SUCCEEDED:
		return "succeeded"
	case dsyncv1.DeliveryState_DELIVERY_STATE_FAILED:
		return "failed"
	}
	return "unknown"
}
