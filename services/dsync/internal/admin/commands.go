package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// command is one `dsync admin <noun> <verb>`.
type command struct {
	nargs int
	// flags registers the command's own flags and returns where they land.
	flags func(*flag.FlagSet) *spec
	run   func(ctx context.Context, c *client, o *options, s *spec, args []string) error
}

// spec holds the values of command-specific flags.
type spec struct {
	name, org, typ, search, directory string
	domains, events                   multi
	// Operations (ops.go).
	state, event, since string
	yes, fromStart      bool
	count               int
	interval            time.Duration
}

func noFlags(*flag.FlagSet) *spec { return &spec{} }

var commands = map[string]command{
	"status": {flags: noFlags, run: runStatus},
	"org create": {flags: func(fs *flag.FlagSet) *spec {
		s := &spec{}
		fs.StringVar(&s.name, "name", "", "organization name")
		fs.Var(&s.domains, "domain", "domain (repeatable)")
		return s
	}, run: orgCreate},
	"org list": {flags: noFlags, run: func(ctx context.Context, c *client, o *options, _ *spec, _ []string) error {
		l, err := c.list(ctx, o, "/organizations", nil)
		if err != nil {
			return err
		}
		return printList(o, l, []column{{"ID", "id"}, {"NAME", "name"}, {"DOMAINS", "domains"}, {"CREATED", "created_at"}})
	}},
	"directory create": {flags: func(fs *flag.FlagSet) *spec {
		s := &spec{}
		fs.StringVar(&s.org, "org", "", "organization id")
		fs.StringVar(&s.name, "name", "", "directory name")
		fs.StringVar(&s.typ, "type", "", "identity provider")
		return s
	}, run: directoryCreate},
	"directory list": {flags: func(fs *flag.FlagSet) *spec {
		s := &spec{}
		fs.StringVar(&s.org, "org", "", "organization id")
		fs.StringVar(&s.search, "search", "", "name contains")
		return s
	}, run: func(ctx context.Context, c *client, o *options, s *spec, _ []string) error {
		q := url.Values{}
		if s.org != "" {
			q.Set("organization_id", s.org)
		}
		if s.search != "" {
			q.Set("search", s.search)
		}
		l, err := c.list(ctx, o, "/directories", q)
		if err != nil {
			return err
		}
		return printList(o, l, []column{{"ID", "id"}, {"NAME", "name"}, {"TYPE", "type"}, {"STATE", "state"}, {"ORGANIZATION", "organization_id"}, {"CREATED", "created_at"}})
	}},
	"directory get": {nargs: 1, flags: noFlags, run: func(ctx context.Context, c *client, o *options, _ *spec, args []string) error {
		return get(ctx, c, o, "/directories/"+url.PathEscape(args[0]), []string{"id", "name", "type", "state", "organization_id", "domain", "created_at", "updated_at"})
	}},
	"user list": {flags: func(fs *flag.FlagSet) *spec {
		s := &spec{}
		fs.StringVar(&s.directory, "directory", "", "directory id")
		return s
	}, run: func(ctx context.Context, c *client, o *options, s *spec, _ []string) error {
		if s.directory == "" {
			return usageError("user list needs --directory <directory_id>")
		}
		l, err := c.list(ctx, o, "/directory_users", url.Values{"directory": {s.directory}})
		if err != nil {
			return err
		}
		return printList(o, l, []column{{"ID", "id"}, {"EMAIL", "email"}, {"FIRST", "first_name"}, {"LAST", "last_name"}, {"STATE", "state"}, {"IDP_ID", "idp_id"}})
	}},
	"user get": {nargs: 1, flags: noFlags, run: func(ctx context.Context, c *client, o *options, _ *spec, args []string) error {
		return get(ctx, c, o, "/directory_users/"+url.PathEscape(args[0]),
			[]string{"id", "email", "username", "first_name", "last_name", "state", "idp_id", "job_title", "directory_id", "organization_id", "role", "groups", "custom_attributes", "raw_attributes", "created_at", "updated_at"})
	}},
	"webhook create": {nargs: 1, flags: func(fs *flag.FlagSet) *spec {
		s := &spec{}
		fs.Var(&s.events, "event", "event name (repeatable; none = all)")
		return s
	}, run: webhookCreate},
	"webhook list": {flags: noFlags, run: func(ctx context.Context, c *client, o *options, _ *spec, _ []string) error {
		l, err := c.list(ctx, o, "/webhook_endpoints", nil)
		if err != nil {
			return err
		}
		return printList(o, l, []column{{"ID", "id"}, {"URL", "url"}, {"EVENTS", "events"}, {"STATE", "state"}, {"CREATED", "created_at"}})
	}},
}

// providerTypes maps the short provider names to WorkOS directory types.
var providerTypes = map[string]string{
	"okta": "okta scim v2.0", "entra": "azure scim v2.0", "azure": "azure scim v2.0",
	"onelogin": "onelogin scim v2.0", "jumpcloud": "jumpcloud scim v2.0", "pingfederate": "pingfederate scim v2.0",
	"rippling": "rippling scim v2.0", "cyberark": "cyberark scim v2.0", "generic": "generic scim v2.0",
}

func runStatus(ctx context.Context, c *client, o *options, _ *spec, _ []string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/healthz", nil)
	if err != nil {
		return &Error{Code: ExitUsage, Err: fmt.Errorf("bad --url %q: %w", c.base, err)}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return &Error{Code: ExitUnreachable, Err: fmt.Errorf("cannot reach dsync at %s (is it running? set --url or DSYNC_URL): %w", c.base, unwrapURL(err))}
	}
	defer resp.Body.Close()
	var hz struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}
	var raw json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		return &Error{Code: ExitFailed, Err: fmt.Errorf("%s/healthz did not answer JSON (status %d)", c.base, resp.StatusCode)}
	}
	_ = json.Unmarshal(raw, &hz)
	if o.json {
		if err := printJSON(o, raw); err != nil {
			return err
		}
	} else {
		w := tabwriter.NewWriter(o.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintf(w, "dsync at %s: %s\n", c.base, hz.Status)
		for _, name := range []string{"nats", "stream", "projector", "dispatcher"} {
			state := "ok"
			if msg, bad := hz.Checks[name]; bad {
				state = "FAILED: " + msg
			}
			fmt.Fprintf(w, "  %s\t%s\n", name, state)
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
	if hz.Status != "ok" {
		return &Error{Code: ExitFailed, Err: fmt.Errorf("dsync at %s is %s", c.base, firstNonEmpty(hz.Status, "not healthy"))}
	}
	return nil
}

func orgCreate(ctx context.Context, c *client, o *options, s *spec, _ []string) error {
	if s.name == "" {
		return usageError("org create needs --name")
	}
	domains := []string(s.domains)
	if domains == nil {
		domains = []string{}
	}
	data, err := c.do(ctx, http.MethodPost, "/organizations", nil, map[string]any{"name": s.name, "domains": domains})
	if err != nil {
		return err
	}
	return printObject(o, data, []string{"id", "name", "domains", "created_at"})
}

func directoryCreate(ctx context.Context, c *client, o *options, s *spec, _ []string) error {
	if s.org == "" || s.name == "" || s.typ == "" {
		return usageError("directory create needs --org, --name and --type")
	}
	typ := s.typ
	if t, ok := providerTypes[strings.ToLower(typ)]; ok {
		typ = t
	}
	data, err := c.do(ctx, http.MethodPost, "/directories", nil, map[string]string{"organization_id": s.org, "name": s.name, "type": typ})
	if err != nil {
		return err
	}
	if o.json {
		return printJSON(o, data)
	}
	var d struct {
		ID   string `json:"id"`
		Name string `json:"name"`
		Type string `json:"type"`
		SCIM struct {
			Endpoint    string `json:"endpoint"`
			BearerToken string `json:"bearer_token"`
		} `json:"scim"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return fmt.Errorf("decode directory: %w", err)
	}
	w := tabwriter.NewWriter(o.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "id\t%s\nname\t%s\ntype\t%s\nscim base url\t%s\nscim bearer token\t%s\n", d.ID, d.Name, d.Type, d.SCIM.Endpoint, d.SCIM.BearerToken)
	fmt.Fprintln(w, "\t(shown once: dsync stores only its hash)")
	return w.Flush()
}

func webhookCreate(ctx context.Context, c *client, o *options, s *spec, args []string) error {
	u := args[0]
	events := []string(s.events)
	if events == nil {
		events = []string{}
	}
	data, err := c.do(ctx, http.MethodPost, "/webhook_endpoints", nil, map[string]any{"url": u, "events": events})
	if err != nil {
		return err
	}
	if err := printObject(o, data, []string{"id", "url", "events", "state", "secret", "created_at"}); err != nil {
		return err
	}
	if !o.json {
		fmt.Fprintln(o.stdout, "(the secret is shown once)")
	}
	return nil
}

func get(ctx context.Context, c *client, o *options, path string, fields []string) error {
	data, err := c.do(ctx, http.MethodGet, path, nil, nil)
	if err != nil {
		return err
	}
	return printObject(o, data, fields)
}

type column struct{ title, key string }

func printList(o *options, l list, cols []column) error {
	if o.json {
		if l.Data == nil {
			l.Data = []map[string]any{}
		}
		b, err := json.Marshal(l)
		if err != nil {
			return err
		}
		return printJSON(o, b)
	}
	if len(l.Data) == 0 {
		fmt.Fprintln(o.stdout, "(none)")
		return nil
	}
	w := tabwriter.NewWriter(o.stdout, 0, 4, 2, ' ', 0)
	titles := make([]string, len(cols))
	for i, c := range cols {
		titles[i] = c.title
	}
	fmt.Fprintln(w, strings.Join(titles, "\t"))
	for _, row := range l.Data {
		cells := make([]string, len(cols))
		for i, c := range cols {
			cells[i] = cell(row[c.key])
		}
		fmt.Fprintln(w, strings.Join(cells, "\t"))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if a := l.ListMetadata.After; a != nil && *a != "" && !o.all {
		fmt.Fprintf(o.stderr, "more: --after %s (or --all)\n", *a)
	}
	return nil
}

// printObject prints fields of a JSON object as "key value" lines; nested
// values as indented JSON.
func printObject(o *options, data []byte, fields []string) error {
	if o.json {
		return printJSON(o, data)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	w := tabwriter.NewWriter(o.stdout, 0, 4, 2, ' ', 0)
	seen := map[string]bool{}
	show := func(k string) {
		v, ok := m[k]
		seen[k] = true
		if !ok {
			return
		}
		switch v.(type) {
		case map[string]any:
			b, _ := json.MarshalIndent(v, "  ", "  ")
			fmt.Fprintf(w, "%s\t%s\n", k, b)
		default:
			fmt.Fprintf(w, "%s\t%s\n", k, cell(v))
		}
	}
	for _, k := range fields {
		show(k)
	}
	var rest []string
	for k := range m {
		if !seen[k] && k != "object" {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	for _, k := range rest {
		show(k)
	}
	return w.Flush()
}

// cell renders one table value.
func cell(v any) string {
	switch x := v.(type) {
	case nil:
		return "-"
	case string:
		if x == "" {
			return "-"
		}
		return x
	case float64:
		return fmt.Sprint(x)
	case []any:
		parts := make([]string, 0, len(x))
		for _, e := range x {
			if m, ok := e.(map[string]any); ok {
				e = firstNonEmptyAny(m["domain"], m["name"], m["slug"], m["value"], m["id"])
			}
			parts = append(parts, fmt.Sprint(e))
		}
		if len(parts) == 0 {
			return "-"
		}
		return strings.Join(parts, ",")
	case map[string]any:
		if s, ok := x["slug"].(string); ok {
			return s
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func firstNonEmptyAny(vs ...any) any {
	for _, v := range vs {
		if s, ok := v.(string); ok && s != "" {
			return s
		}
	}
	return ""
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

func printJSON(o *options, data []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, data, "", "  "); err != nil {
		return errors.New("the server's answer is not JSON")
	}
	buf.WriteByte('\n')
	_, err := o.stdout.Write(buf.Bytes())
	return err
}
