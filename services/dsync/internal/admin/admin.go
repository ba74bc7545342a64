// Package admin is `dsync admin`: a command-line client of a running dsync's
// REST API, for operators and scripts. Output is a human table by default
// and the API's JSON with --json; failures are errors whose ExitCode says
// what kind they are.
package admin

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Usage is the help text of `dsync admin`.
const Usage = `dsync admin — manage a running dsync through its REST API

Usage:
  dsync admin [flags] <command> [arguments] [flags]

Commands:
  org create --name <name> [--domain <domain>]...
  org list [--all]
  directory create --org <org_id> --name <name> --type <provider>
                                   provider: okta, entra, onelogin, jumpcloud, pingfederate,
                                   rippling, cyberark, generic (or a WorkOS type such as "okta scim v2.0")
  directory list [--org <org_id>] [--search <text>] [--all]
  directory get <directory_id>
  directory rotate-token <directory_id>   prints the new SCIM token once
  directory pause|resume <directory_id>
  directory delete <directory_id> --yes
  group list --directory <directory_id> [--search <text>] [--all]
  group members <group_id> [--all]
  user list --directory <directory_id> [--all]
  user get <user_id>
  webhook create <endpoint_url> [--event <name>]...
  webhook list [--all]
  webhook deliveries <endpoint_id> [--state pending|succeeded|failed] [--event <name>] [--all]
  webhook resend <endpoint_id> <delivery_id>
  webhook recover <endpoint_id> --since <time>     failed deliveries since the time, again
  webhook replay <endpoint_id> (--since <time> | --after <event_id>)
  events tail [--directory <id>] [--org <id>] [--event <name>]... [--from-start] [--count <n>]
                                   follows the Events API live until interrupted;
                                   <time> is RFC 3339 (2025-01-02T03:04:05Z) or a
                                   duration ago (90m, 24h)
  status                           the server's health checks

Flags (anywhere on the line):
  --url <url>        the dsync base URL (DSYNC_URL; default http://127.0.0.1:8080)
  --api-key <key>    the REST API key (DSYNC_API_KEY; default: the api_key file in
                     DSYNC_DATA_DIR or ./data, as ` + "`dsync dev`" + ` writes it)
  --json             print the API's JSON instead of a table
  --limit <n>        page size of lists (1–100; default 10)
  --after, --before  list cursors (object ids)
  --all              follow the cursors to the end (progress on stderr)
  --timeout <d>      per-request timeout (default 30s)

Exit status: 0 ok, 1 failed, 2 usage, 3 API key refused, 4 not found,
5 not available in this server version, 6 server unreachable.
`

// Exit codes.
const (
	ExitFailed       = 1
	ExitUsage        = 2
	ExitUnauthorized = 3
	ExitNotFound     = 4
	ExitNotAvailable = 5
	ExitUnreachable  = 6
)

// Error is a failure with its exit code.
type Error struct {
	Code int
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// ExitCode returns the exit status for err: 0 for nil, the code of an
// *Error, ExitFailed otherwise.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ExitFailed
}

func usageError(format string, args ...any) error {
	return &Error{Code: ExitUsage, Err: fmt.Errorf(format+` (see "dsync admin help")`, args...)}
}

// options are the flags every command takes.
type options struct {
	url, apiKey    string
	json, all      bool
	limit          int
	after, before  string
	timeout        time.Duration
	stdout, stderr io.Writer
	getenv         func(string) string
}

func (o *options) register(fs *flag.FlagSet) {
	fs.StringVar(&o.url, "url", o.url, "dsync base URL")
	fs.StringVar(&o.apiKey, "api-key", o.apiKey, "REST API key")
	fs.BoolVar(&o.json, "json", o.json, "print JSON")
	fs.BoolVar(&o.all, "all", o.all, "fetch every page")
	fs.IntVar(&o.limit, "limit", o.limit, "page size")
	fs.StringVar(&o.after, "after", o.after, "cursor")
	fs.StringVar(&o.before, "before", o.before, "cursor")
	fs.DurationVar(&o.timeout, "timeout", o.timeout, "per-request timeout")
}

// multi is a repeatable string flag.
type multi []string

func (m *multi) String() string { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*m = append(*m, s)
		}
	}
	return nil
}

// parse parses args, which may mix flags and positional arguments, and
// returns the positional ones.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// Run runs `dsync admin` with args (the words after "admin").
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	o := &options{url: getenv("DSYNC_URL"), apiKey: getenv("DSYNC_API_KEY"), limit: 0, timeout: 30 * time.Second,
		stdout: stdout, stderr: stderr, getenv: getenv}
	fs := flag.NewFlagSet("dsync admin", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o.register(fs)
	// Flags before the command words are global; the command parses the
	// rest, where its own flags and the global ones may mix with arguments.
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, Usage)
		return nil
	}
	if err != nil {
		return usageError("%v", err)
	}
	words := fs.Args()
	if len(words) == 0 {
		fmt.Fprint(stderr, Usage)
		return usageError("missing command")
	}
	if words[0] == "help" {
		fmt.Fprint(stdout, Usage)
		return nil
	}
	name, rest := words[0], words[1:]
	if name != "status" {
		if len(rest) == 0 {
			return usageError("%q needs a subcommand", name)
		}
		name, rest = name+" "+rest[0], rest[1:]
	}
	c, ok := commands[name]
	if !ok {
		c, ok = opsCommands[name]
	}
	if !ok {
		return usageError("unknown command %q", name)
	}
	cfs := flag.NewFlagSet("dsync admin "+name, flag.ContinueOnError)
	cfs.SetOutput(io.Discard)
	o.register(cfs)
	spec := c.flags(cfs)
	pos, err := parse(cfs, rest)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, Usage)
		return nil
	}
	if err != nil {
		return usageError("%s: %v", name, err)
	}
	if len(pos) != c.nargs {
		return usageError("%s takes %d argument(s), got %d", name, c.nargs, len(pos))
	}
	if o.limit != 0 && (o.limit < 1 || o.limit > 100) {
		return usageError("--limit must be from 1 to 100")
	}
	return c.run(ctx, o.client(), o, spec, pos)
}

func (o *options) client() *client {
	base := strings.TrimRight(o.url, "/")
	if base == "" {
		base = "http://127.0.0.1:8080"
	}
	key := o.apiKey
	if key == "" {
		key = keyFromDataDir(o.getenv)
	}
	return &client{base: base, apiKey: key, http: &http.Client{Timeout: o.timeout}}
}

// keyFromDataDir reads the key `dsync dev` wrote, so that `dsync admin`
// works next to `make run` without copying it.
func keyFromDataDir(getenv func(string) string) string {
	dir := getenv("DSYNC_DATA_DIR")
	if dir == "" {
		dir = "data"
	}
	b, err := os.ReadFile(filepath.Join(dir, "api_key"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
