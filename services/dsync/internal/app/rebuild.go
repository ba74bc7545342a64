package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"

	"github.com/dsync-dev/dsync/pkg/postgres"
	"github.com/dsync-dev/dsync/services/projector"
)

const projectorUsage = `Usage:
  dsync projector rebuild [flags]

Rebuilds the projector's read model from stream sequence 1 into fresh tables
and swaps them in. With a PostgreSQL URL it runs beside a live projector,
which carries on against the new tables. Without one it rebuilds the SQLite
read model of dsync dev in --data-dir; stop dsync dev first.

Flags:
`

// projectorCommand runs `dsync projector …`.
func projectorCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "rebuild" {
		fmt.Fprint(stderr, projectorUsage)
		return errors.New(`unknown or missing projector command; the only one is "rebuild"`)
	}
	fs := flag.NewFlagSet("projector rebuild", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, projectorUsage); fs.PrintDefaults() }
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	pgURL := fs.String("postgres-url", env("DSYNC_POSTGRES_URL", ""), "PostgreSQL read model (DSYNC_POSTGRES_URL); empty rebuilds dsync dev's SQLite")
	natsURL := fs.String("nats-url", env("DSYNC_NATS_URL", ""), "NATS server (DSYNC_NATS_URL); empty opens dsync dev's JetStream files in --data-dir")
	dataDir := fs.String("data-dir", env("DSYNC_DATA_DIR", "./data"), "dsync dev's data directory (DSYNC_DATA_DIR)")
	batch := fs.Int("batch-size", projector.DefaultRebuildBatch, "events per transaction")
	if err := fs.Parse(args[1:]); err != nil {
		return flagError(err)
	}
	if *pgURL != "" && *natsURL == "" {
		return errors.New("a PostgreSQL rebuild needs --nats-url (DSYNC_NATS_URL)")
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	cfg := Config{Target: TargetProjector, NATSURL: *natsURL, DataDir: *dataDir}
	nc, ns, err := connectNATS(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer func() {
		nc.Close()
		if ns != nil {
			ns.Shutdown()
		}
	}()
	rcfg := projector.RebuildConfig{Logger: log, NATS: nc, BatchSize: *batch}
	if *pgURL == "" {
		rcfg.SQLitePath = filepath.Join(*dataDir, "projector.db")
	} else if rcfg.PostgresURL, err = postgres.WithSchema(*pgURL, "projector"); err != nil {
		// The projector keeps its tables in its own schema (see system.go).
		return err
	}
	res, err := projector.Rebuild(ctx, rcfg)
	if err != nil {
		return err
	}
	rate := float64(res.Applied+res.Skipped) / max(res.Elapsed.Seconds(), 1e-9)
	fmt.Fprintf(stdout, "read model rebuilt through stream sequence %d: %d events applied, %d skipped in %s (%.0f events/s)\n",
		res.Checkpoint, res.Applied, res.Skipped, res.Elapsed.Round(1e6), rate)
	return nil
}
