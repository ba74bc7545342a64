package dashboard

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"
)

// page is what every template gets.
type page struct {
	Title string
	// Nav is the highlighted navigation entry.
	Nav string
	// CSRF is the token every form posts back.
	CSRF string
	// Flash is a one-line notice at the top of the page.
	Flash string
	// SignedIn shows the navigation and the sign-out button.
	SignedIn bool
	Data     any
}

var funcs = template.FuncMap{
	"ago":        ago,
	"timefmt":    timefmt,
	"prettyJSON": prettyJSON,
	"provider":   providerFor,
	"stateClass": stateClass,
	"join":       strings.Join,
	"list3":      func(a, b, c string) []string { return []string{a, b, c} },
	"deref": func(s *string) string {
		if s == nil {
			return ""
		}
		return *s
	},
	"query": func(kv ...string) template.URL {
		q := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] != "" {
				q.Set(kv[i], kv[i+1])
			}
		}
		return template.URL("?" + q.Encode())
	},
}

// parsePages parses each page template together with the layout, so that
// every page defines its own "content" block.
func parsePages() (map[string]*template.Template, error) {
	layout, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("dashboard: parse layout: %w", err)
	}
	files, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("dashboard: list templates: %w", err)
	}
	pages := map[string]*template.Template{}
	for _, f := range files {
		name := strings.TrimSuffix(path.Base(f), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.Must(layout.Clone()).ParseFS(templateFS, f)
		if err != nil {
			return nil, fmt.Errorf("dashboard: parse %s: %w", f, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// render writes a page. It renders into a buffer first, so a template error
// becomes a clean 500 rather than half a page.
func (d *Dashboard) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	t, ok := d.pages[name]
	if !ok {
		d.logError(r, "render", fmt.Errorf("no template %q", name))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if ss := sessionFrom(r.Context()); ss != nil {
		p.SignedIn = true
		if p.CSRF == "" {
			p.CSRF = ss.csrf
		}
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout.html", p); err != nil {
		d.logError(r, "render "+name, err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

type errorData struct {
	Status  int
	Heading string
	Message string
}

func (d *Dashboard) renderError(w http.ResponseWriter, r *http.Request, status int, heading, message string) {
	d.render(w, r, status, "error", page{Title: heading, Data: errorData{Status: status, Heading: heading, Message: message}})
}

// fail renders an error from the API or a backend: API errors with their
// status and message (they are written for people), anything else as a
// logged 502 that does not leak internals.
func (d *Dashboard) fail(w http.ResponseWriter, r *http.Request, err error) {
	if ae, ok := asAPIError(err); ok {
		status := ae.Status
		heading := "Something went wrong"
		switch {
		case status == http.StatusNotFound:
			heading = "Not found"
		case status == http.StatusServiceUnavailable:
			heading = "Temporarily unavailable"
		case status < 500:
			heading = "Request not accepted"
		}
		d.renderError(w, r, status, heading, ae.Message)
		return
	}
	if st, ok := grpcStatus(err); ok {
		d.renderError(w, r, st.status, st.heading, st.message)
		return
	}
	d.logError(r, "request failed", err)
	d.renderError(w, r, http.StatusBadGateway, "Something went wrong",
		"A backend service did not answer as expected. Check the health page and the gateway's log.")
}

func timefmt(v any) string {
	t, ok := toTime(v)
	if !ok {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func ago(v any) string {
	t, ok := toTime(v)
	if !ok {
		return ""
	}
	dd := time.Since(t)
	switch {
	case dd < 0:
		return "in " + roundDur(-dd)
	case dd < 10*time.Second:
		return "just now"
	}
	return roundDur(dd) + " ago"
}

func roundDur(dd time.Duration) string {
	switch {
	case dd < time.Minute:
		return fmt.Sprintf("%ds", int(dd.Seconds()))
	case dd < time.Hour:
		return fmt.Sprintf("%dm", int(dd.Minutes()))
	case dd < 48*time.Hour:
		return fmt.Sprintf("%dh", int(dd.Hours()))
	}
	return fmt.Sprintf("%dd", int(dd.Hours()/24))
}

func toTime(v any) (time.Time, bool) {
	switch t := v.(type) {
	case time.Time:
		return t, !t.IsZero()
	case string:
		p, err := time.Parse(time.RFC3339Nano, t)
		return p, err == nil
	}
	return time.Time{}, false
}

func prettyJSON(v any) string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// stateClass maps a state word to a badge colour.
func stateClass(s string) string {
	switch strings.ToLower(s) {
	case "active", "linked", "enabled", "succeeded", "ok", "serving":
		return "ok"
	case "pending", "validating", "deleting", "behind":
		return "warn"
	case "inactive", "unlinked", "disabled", "failed", "unavailable", "down":
		return "bad"
	}
	return "neutral"
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }
