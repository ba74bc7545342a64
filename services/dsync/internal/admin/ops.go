package admin

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"
)

// opsCommands are the operations on existing directories, groups, webhook
// deliveries and the event log.
var opsCommands = map[string]command{
	"directory rotate-token": {nargs: 1, flags: noFlags, run: directoryRotateToken},
	"directory pause":        {nargs: 1, flags: noFlags, run: directoryState("pause")},
	"directory resume":       {nargs: 1, flags: noFlags, run: directoryState("resume")},
	"directory delete": {nargs: 1, flags: func(fs *flag.FlagSet) *spec {
		s := &spec{}
		fs.BoolVar(&s.yes, "yes", false, "confirm the deletion")
		return s
	}, run: directoryDelete},
	"group list": {flags: func(fs *flag.FlagSet) *spec {
		s := &spec{}
		fs.StringVar(&s.directory, "directory", "", "directory id")
		fs.StringVar(&s.search, "search", "", "name or idp_id contains")
		return s
	}, run: groupList},
	"group members": {nargs: 1, flags: noFlags, run: func(ctx context.Context, c *client, o *options, _ *spec, args []string) error {
		l, err := c.list(ctx, o, "/directory_users", url.Values{"group": {args[0]}})
		if err != nil {
			return err
		}
		return printList(o, l, userColumns)
	}},
	"webhook deliveries": {nargs: 1, flags: func(fs *flag.FlagSet) *spec {
		s := &spec{}
		fs.StringVar(&s.state, "state", "", "pending, succeeded or failed")
		fs.StringVar(&s.event, "event", "", "event name")
		return s
	}, run: webhookDeliveries},
	"webhook resend": {nargs: 2, flags: noFlags, run: func(ctx context.Context, c *client, o *options, _ *spec, args []string) error {
		data, err := c.do(ctx, http.MethodPost, "/webhook_endpoints/"+url.PathEscape(args[0])+"/deliveries/"+url.PathEscape(args[1])+"/resend", nil, nil)
		if err != nil {
			return err
		}
		return printObject(o, data, []string{"id", "event", "event_id", "state", "attempt_count"})
	}},
	"webhook recover": {nargs: 1, flags: sinceFlags, run: webhookRecover},
	// replay's --after is the global cursor flag: an event id.
	"webhook replay": {nargs: 1, flags: sinceFlags, run: webhookReplay},
	"events tail": {flags: func(fs *flag.FlagSet) *spec {
		s := &spec{}
		fs.StringVar(&s.directory, "directory", "", "directory id")
		fs.StringVar(&s.org, "org", "", "organization id")
		fs.Var(&s.events, "event", "event name (repeatable)")
		fs.BoolVar(&s.fromStart, "from-start", false, "start with the oldest retained event")
		fs.IntVar(&s.count, "count", 0, "stop after this many events (0: follow until interrupted)")
		fs.DurationVar(&s.interval, "interval", time.Second, "how often to ask for new events")
		return s
	}, run: eventsTail},
}

var userColumns = []column{{"ID", "id"}, {"EMAIL", "email"}, {"FIRST", "first_name"}, {"LAST", "last_name"}, {"STATE", "state"}, {"IDP_ID", "idp_id"}}

func sinceFlags(fs *flag.FlagSet) *spec {
	s := &spec{}
	fs.StringVar(&s.since, "since", "", "RFC 3339 time or a duration ago (90m, 24h)")
	// --after (an event id, for replay) is the global cursor flag.
	return s
}

// parseSince reads an RFC 3339 time or a duration before now.
func parseSince(v string, now time.Time) (string, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t.UTC().Format(time.RFC3339Nano), nil
	}
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return now.Add(-d).UTC().Format(time.RFC3339Nano), nil
	}
	return "", usageError("--since must be an RFC 3339 time (2025-01-02T03:04:05Z) or a duration ago (90m, 24h), not %q", v)
}

func directoryRotateToken(ctx context.Context, c *client, o *options, _ *spec, args []string) error {
	data, err := c.do(ctx, http.MethodPost, "/directories/"+url.PathEscape(args[0])+"/token", nil, nil)
	if err != nil {
		return err
	}
	if o.json {
		return printJSON(o, data)
	}
	var d struct {
		ID   string `json:"id"`
		SCIM struct {
			Endpoint    string `json:"endpoint"`
			BearerToken string `json:"bearer_token"`
		} `json:"scim"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return fmt.Errorf("decode directory: %w", err)
	}
	w := tabwriter.NewWriter(o.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "id\t%s\nscim base url\t%s\nscim bearer token\t%s\n", d.ID, d.SCIM.Endpoint, d.SCIM.BearerToken)
	fmt.Fprintln(w, "\t(shown once; the previous token no longer works)")
	return w.Flush()
}

func directoryState(action string) func(context.Context, *client, *options, *spec, []string) error {
	return func(ctx context.Context, c *client, o *options, _ *spec, args []string) error {
		data, err := c.do(ctx, http.MethodPost, "/directories/"+url.PathEscape(args[0])+"/"+action, nil, nil)
		if err != nil {
			return err
		}
		return printObject(o, data, []string{"id", "name", "state", "on_deactivate", "rate_limit_per_second"})
	}
}

func directoryDelete(ctx context.Context, c *client, o *options, s *spec, args []string) error {
	if !s.yes {
		return usageError("directory delete removes the directory's users and groups and stops its token: add --yes to confirm")
	}
	if _, err := c.do(ctx, http.MethodDelete, "/directories/"+url.PathEscape(args[0]), nil, nil); err != nil {
		return err
	}
	if o.json {
		return printJSON(o, []byte(`{"id":"`+args[0]+`","deleted":true}`))
	}
	fmt.Fprintf(o.stdout, "deleted %s\n", args[0])
	return nil
}

func groupList(ctx context.Context, c *client, o *options, s *spec, _ []string) error {
	if s.directory == "" {
		return usageError("group list needs --directory <directory_id>")
	}
	if s.search != "" {
		// The REST API has no group search: read every page and filter.
		o.all = true
	}
	l, err := c.list(ctx, o, "/directory_groups", url.Values{"directory": {s.directory}})
	if err != nil {
		return err
	}
	if s.search != "" {
		needle := strings.ToLower(s.search)
		kept := l.Data[:0]
		for _, g := range l.Data {
			name, _ := g["name"].(string)
			idp, _ := g["idp_id"].(string)
			if strings.Contains(strings.ToLower(name), needle) || strings.Contains(strings.ToLower(idp), needle) {
				kept = append(kept, g)
			}
		}
		l.Data = kept
	}
	return printList(o, l, []column{{"ID", "id"}, {"NAME", "name"}, {"MEMBERS", "member_count"}, {"IDP_ID", "idp_id"}, {"UPDATED", "updated_at"}})
}

func webhookDeliveries(ctx context.Context, c *client, o *options, s *spec, args []string) error {
	q := url.Values{}
	if s.state != "" {
		q.Set("state", s.state)
	}
	if s.event != "" {
		q.Set("event", s.event)
	}
	l, err := c.list(ctx, o, "/webhook_endpoints/"+url.PathEscape(args[0])+"/deliveries", q)
	if err != nil {
		return err
	}
	return printList(o, l, []column{{"ID", "id"}, {"EVENT", "event"}, {"STATE", "state"}, {"ATTEMPTS", "attempt_count"}, {"LAST_STATUS", "last_status_code"}, {"CREATED", "created_at"}})
}

func webhookRecover(ctx context.Context, c *client, o *options, s *spec, args []string) error {
	if s.since == "" || o.after != "" {
		return usageError("webhook recover needs --since <time> (and no --after)")
	}
	since, err := parseSince(s.since, time.Now())
	if err != nil {
		return err
	}
	data, err := c.do(ctx, http.MethodPost, "/webhook_endpoints/"+url.PathEscape(args[0])+"/recover", nil, map[string]string{"since": since})
	if err != nil {
		return err
	}
	return printObject(o, data, []string{"recovered"})
}

func webhookReplay(ctx context.Context, c *client, o *options, s *spec, args []string) error {
	body := map[string]string{}
	switch {
	case (s.since == "") == (o.after == ""):
		return usageError("webhook replay needs exactly one of --since <time> and --after <event_id>")
	case s.since != "":
		since, err := parseSince(s.since, time.Now())
		if err != nil {
			return err
		}
		body["since"] = since
	default:
		body["after"] = o.after
	}
	data, err := c.do(ctx, http.MethodPost, "/webhook_endpoints/"+url.PathEscape(args[0])+"/replay", nil, body)
	if err != nil {
		return err
	}
	return printObject(o, data, []string{"scheduled"})
}

// eventsTail follows GET /events: it starts after the newest event (or
// at the oldest retained one with --from-start) and asks for the events
// after the last one printed every --interval, until ctx is done or
// --count events were printed. With --json it prints one event per line.
func eventsTail(ctx context.Context, c *client, o *options, s *spec, _ []string) error {
	q := url.Values{"limit": {"100"}}
	if s.directory != "" {
		q.Set("directory_id", s.directory)
	}
	if s.org != "" {
		q.Set("organization_id", s.org)
	}
	if len(s.events) > 0 {
		q.Set("events", strings.Join(s.events, ","))
	}
	after := o.after
	if after == "" && !s.fromStart {
		newest := url.Values{}
		for k, v := range q {
			newest[k] = v
		}
		newest.Set("order", "desc")
		newest.Set("limit", "1")
		data, err := c.do(ctx, http.MethodGet, "/events", newest, nil)
		if err != nil {
			return err
		}
		var l list
		if err := json.Unmarshal(data, &l); err != nil {
			return fmt.Errorf("decode events: %w", err)
		}
		if len(l.Data) > 0 {
			after, _ = l.Data[0]["id"].(string)
		}
	}
	if !o.json {
		fmt.Fprintln(o.stderr, "following events (Ctrl-C to stop)…")
	}
	w := tabwriter.NewWriter(o.stdout, 0, 4, 2, ' ', 0)
	printed := 0
	tick := time.NewTicker(max(s.interval, 100*time.Millisecond))
	defer tick.Stop()
	for {
		q.Set("order", "asc")
		if after != "" {
			q.Set("after", after)
		}
		data, err := c.do(ctx, http.MethodGet, "/events", q, nil)
		if ctx.Err() != nil {
			return nil // interrupted: a normal end of a tail
		}
		if err != nil {
			return err
		}
		var l struct {
			Data []json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(data, &l); err != nil {
			return fmt.Errorf("decode events: %w", err)
		}
		for _, raw := range l.Data {
			var ev struct {
				ID        string         `json:"id"`
				Event     string         `json:"event"`
				CreatedAt string         `json:"created_at"`
				Data      map[string]any `json:"data"`
				Context   map[string]any `json:"context"`
			}
			if err := json.Unmarshal(raw, &ev); err != nil {
				return fmt.Errorf("decode event: %w", err)
			}
			after = ev.ID
			if o.json {
				fmt.Fprintf(o.stdout, "%s\n", raw)
			} else {
				subject := firstNonEmptyAny(ev.Data["email"], ev.Data["name"], ev.Data["id"])
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", ev.CreatedAt, ev.Event, cell(subject), cell(ev.Data["id"]), cell(ev.Context["request_id"]))
				if err := w.Flush(); err != nil {
					return err
				}
			}
			printed++
			if s.count > 0 && printed >= s.count {
				return nil
			}
		}
		if len(l.Data) == 100 {
			continue // more are waiting
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
