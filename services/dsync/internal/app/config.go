package app

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/dsync-dev/dsync/services/dispatcher"
)

// Targets that `dsync serve --target` accepts.
const (
	TargetAll        = "all"
	TargetGateway    = "gateway"
	TargetProjector  = "projector"
	TargetDispatcher = "dispatcher"
)

// Config is the whole configuration of a dsync process. Every field is a
// flag and an environment variable; a flag wins over the environment.
type Config struct {
	// Target is the service this process runs (serve) or "all" (dev).
	Target string
	// Dev runs the embedded topology: in-process NATS and SQLite in DataDir.
	Dev bool

	HTTPAddr  string
	PublicURL string
	DataDir   string
	APIKey    string

	NATSURL     string
	NATSListen  string
	PostgresURL string

	ProjectorGRPCAddr  string
	DispatcherGRPCAddr string
	ProjectorURL       string
	DispatcherURL      string
	// InternalToken is the bearer token the projector's and dispatcher's
	// gRPC services require and the gateway sends; empty: no
	// authentication.
	InternalToken string

	DashboardPassword string
	// EventRetention is how long the Events API keeps events, and the
	// webhook delivery log finished deliveries and their events: a Go
	// duration, or "forever".
	EventRetention string

	AllowPrivateWebhooks bool
	// WebhookAllowNets are comma-separated networks webhooks may reach
	// although private (dev: loopback).
	WebhookAllowNets string
	// WebhookTimeout bounds each webhook attempt (a Go duration).
	WebhookTimeout string
	// WebhookDisableAfter disables an endpoint failing every attempt for
	// that long (a Go duration, or "never").
	WebhookDisableAfter string
	Demo                bool

	LogLevel  string
	LogFormat string
}

// setting is one configuration value: its flag, its variable and its default.
type setting struct {
	flag, env, def, usage string
	target                *string
	// secret values set in the environment are applied after parsing
	// rather than as the flag's default, which -h would print.
	secret bool
}

func settings(c *Config, dev bool) []setting {
	dataDir := "./data"
	return []setting{
		{"http-addr", "DSYNC_HTTP_ADDR", "127.0.0.1:8080", "address of the HTTP server (SCIM, REST API, dashboard, /healthz, /metrics)", &c.HTTPAddr, false},
		{"public-url", "DSYNC_PUBLIC_URL", "", "absolute base URL clients reach the gateway at (default: http://<http-addr>)", &c.PublicURL, false},
		{"data-dir", "DSYNC_DATA_DIR", dataDir, "directory for the API key and, in dev, JetStream files and SQLite stores", &c.DataDir, false},
		{"api-key", "DSYNC_API_KEY", "", "REST API key (default: generated on first start and kept in the data dir)", &c.APIKey, true},
		{"nats-url", "DSYNC_NATS_URL", ifElse(dev, "", "nats://127.0.0.1:4222"), "NATS server URL (serve); empty in dev runs NATS in-process", &c.NATSURL, false},
		{"nats-listen", "DSYNC_NATS_LISTEN", "", "dev: also accept NATS clients on this host:port (empty: in-process only)", &c.NATSListen, false},
		{"postgres-url", "DSYNC_POSTGRES_URL", "", "PostgreSQL URL of the read model and delivery log (serve); empty in dev uses SQLite", &c.PostgresURL, true},
		{"projector-grpc-addr", "DSYNC_PROJECTOR_GRPC_ADDR", "127.0.0.1:9091", "listen address of the projector's DirectoryService", &c.ProjectorGRPCAddr, false},
		{"dispatcher-grpc-addr", "DSYNC_DISPATCHER_GRPC_ADDR", "127.0.0.1:9092", "listen address of the dispatcher's WebhookService", &c.DispatcherGRPCAddr, false},
		{"projector-url", "DSYNC_PROJECTOR_URL", "", "gRPC target the gateway dials for DirectoryService (default: the projector's listen address)", &c.ProjectorURL, false},
		{"dispatcher-url", "DSYNC_DISPATCHER_URL", "", "gRPC target the gateway dials for WebhookService (default: the dispatcher's listen address)", &c.DispatcherURL, false},
		{"internal-token", "DSYNC_INTERNAL_TOKEN", "", "shared bearer token the projector's and dispatcher's gRPC services require (health excepted) and the gateway sends; empty: no authentication", &c.InternalToken, true},
		{"dashboard-password", "DSYNC_DASHBOARD_PASSWORD", "", "operator password for the dashboard (alternative to the API key)", &c.DashboardPassword, true},
		{"event-retention", "DSYNC_EVENT_RETENTION", "720h", `how long GET /events keeps events and the webhook delivery log keeps finished deliveries (webhook replay reaches back as far): a duration such as 720h, or "forever"`, &c.EventRetention, false},
		{"webhook-allow-nets", "DSYNC_WEBHOOK_ALLOW_NETS", ifElse(dev, "127.0.0.0/8,::1/128", ""), "comma-separated networks (CIDR) webhooks may reach although private, loopback or reserved", &c.WebhookAllowNets, false},
		{"webhook-timeout", "DSYNC_WEBHOOK_TIMEOUT", "15s", "time a webhook receiver has to answer 2xx", &c.WebhookTimeout, false},
		{"webhook-disable-after", "DSYNC_WEBHOOK_DISABLE_AFTER", "120h", `disable a webhook endpoint whose attempts have all failed this long ("never": keep retrying)`, &c.WebhookDisableAfter, false},
		{"log-level", "DSYNC_LOG_LEVEL", "info", "debug, info, warn or error", &c.LogLevel, false},
		{"log-format", "DSYNC_LOG_FORMAT", ifElse(dev, "text", "json"), "text or json", &c.LogFormat, false},
	}
}

func ifElse(cond bool, a, b string) string {
	if cond {
		return a
	}
	return b
}

// parseConfig reads flags from args and variables through getenv.
func parseConfig(name string, args []string, getenv func(string) string, stderr io.Writer, dev bool) (Config, error) {
	c := Config{Dev: dev, Target: TargetAll}
	fs := flag.NewFlagSet("dsync "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	all := settings(&c, dev)
	for _, s := range all {
		def := s.def
		if v := getenv(s.env); v != "" && !s.secret {
			def = v
		}
		fs.StringVar(s.target, s.flag, def, s.usage+" ($"+s.env+")")
	}
	allowPrivate := boolEnv(getenv, "DSYNC_ALLOW_PRIVATE_WEBHOOKS", false)
	fs.BoolVar(&c.AllowPrivateWebhooks, "allow-private-webhooks", allowPrivate, "deliver webhooks to any address, loopback, private and link-local included ($DSYNC_ALLOW_PRIVATE_WEBHOOKS)")
	fs.BoolVar(&c.Demo, "demo", boolEnv(getenv, "DSYNC_DEMO", dev), "on first start, create a demo organization and Okta directory and print its credentials ($DSYNC_DEMO)")
	if !dev {
		target := getenv("DSYNC_TARGET")
		if target == "" {
			target = TargetAll
		}
		fs.StringVar(&c.Target, "target", target, "service to run: all, gateway, projector or dispatcher ($DSYNC_TARGET)")
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, s := range all {
		if v := getenv(s.env); s.secret && v != "" && !given[s.flag] {
			*s.target = v
		}
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	return c, c.validate()
}

func boolEnv(getenv func(string) string, key string, def bool) bool {
	v, err := strconv.ParseBool(getenv(key))
	if err != nil {
		return def
	}
	return v
}

func (c Config) validate() error {
	switch c.Target {
	case TargetAll, TargetGateway, TargetProjector, TargetDispatcher:
	default:
		return fmt.Errorf("unknown target %q: want all, gateway, projector or dispatcher", c.Target)
	}
	if !c.Dev {
		if c.NATSURL == "" {
			return errors.New("serve needs a NATS server: set --nats-url or DSYNC_NATS_URL")
		}
		if c.PostgresURL == "" && c.Target != TargetGateway {
			return errors.New("serve needs PostgreSQL: set --postgres-url or DSYNC_POSTGRES_URL")
		}
	}
	if err := validToken(c.InternalToken); err != nil {
		return err
	}
	if _, err := c.eventRetention(); err != nil {
		return err
	}
	if _, err := c.webhookSettings(); err != nil {
		return err
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		return err
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return fmt.Errorf("log format %q: want text or json", c.LogFormat)
	}
	return nil
}

func (c Config) runs(target string) bool {
	return c.Target == TargetAll || c.Target == target
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("log level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

func newLogger(c Config, w io.Writer) *slog.Logger {
	level, _ := parseLevel(c.LogLevel)
	opts := &slog.HandlerOptions{Level: level}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// validToken accepts what can travel in a gRPC header after "Bearer ":
// printable ASCII without spaces. The error does not repeat the token.
func validToken(token string) error {
	for i := 0; i < len(token); i++ {
		if token[i] < 0x21 || token[i] > 0x7e {
			return fmt.Errorf("internal token: character %d is not printable ASCII or is a space; use e.g. $(openssl rand -hex 32)", i+1)
		}
	}
	return nil
}

// eventRetention parses EventRetention; a negative result keeps events forever.
func (c Config) eventRetention() (time.Duration, error) {
	if c.EventRetention == "" {
		return 0, nil
	}
	if c.EventRetention == "forever" {
		return -1, nil
	}
	d, err := time.ParseDuration(c.EventRetention)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("event retention %q: want a positive duration such as 720h, or \"forever\"", c.EventRetention)
	}
	return d, nil
}

// webhookSettings are the dispatcher's settings from WebhookAllowNets,
// WebhookTimeout and WebhookDisableAfter.
type webhookSettings struct {
	allowNets    []netip.Prefix
	timeout      time.Duration
	disableAfter time.Duration // negative: never
}

func (c Config) webhookSettings() (webhookSettings, error) {
	var w webhookSettings
	var err error
	if w.allowNets, err = dispatcher.ParseNets(c.WebhookAllowNets); err != nil {
		return w, fmt.Errorf("webhook allow nets: %w", err)
	}
	if c.WebhookTimeout != "" {
		if w.timeout, err = time.ParseDuration(c.WebhookTimeout); err != nil || w.timeout <= 0 {
			return w, fmt.Errorf("webhook timeout %q: want a positive duration such as 15s", c.WebhookTimeout)
		}
	}
	switch c.WebhookDisableAfter {
	case "":
	case "never":
		w.disableAfter = -1
	default:
		if w.disableAfter, err = time.ParseDuration(c.WebhookDisableAfter); err != nil || w.disableAfter <= 0 {
			return w, fmt.Errorf("webhook disable after %q: want a positive duration such as 120h, or \"never\"", c.WebhookDisableAfter)
		}
	}
	return w, nil
}
