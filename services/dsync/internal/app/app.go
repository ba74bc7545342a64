// Package app is the dsync program: command-line parsing, wiring of the
// three services, the embedded topology of `dsync dev` and the demo setup.
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/dsync-dev/dsync/services/dsync/internal/admin"
)

const usage = `dsync — self-hosted Directory Sync (SCIM 2.0 in, signed webhooks and APIs out)

Usage:
  dsync dev   [flags]                 run everything in one process (in-process NATS, SQLite)
  dsync serve --target=<t> [flags]    run gateway, projector, dispatcher or all against NATS and PostgreSQL
  dsync admin <command>               manage a running dsync through its REST API ("dsync admin help")
  dsync projector rebuild [flags]     rebuild the read model from the event stream
  dsync version                       print the version

Run "dsync dev -h" or "dsync serve -h" for the flags; every flag has a DSYNC_* variable.
`

// Version is set at build time with -ldflags "-X …/app.Version=…".
var Version = "dev"

// Run runs the dsync command line. It returns when the command is done or
// ctx is cancelled (then after an orderly shutdown).
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("missing command")
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "dev":
		cfg, err := parseConfig("dev", rest, getenv, stderr, true)
		if err != nil {
			return flagError(err)
		}
		return serve(ctx, cfg, stdout, stderr)
	case "serve":
		cfg, err := parseConfig("serve", rest, getenv, stderr, false)
		if err != nil {
			return flagError(err)
		}
		return serve(ctx, cfg, stdout, stderr)
	case "admin":
		return admin.Run(ctx, rest, getenv, stdout, stderr)
	case "projector":
		return projectorCommand(ctx, rest, getenv, stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "dsync", Version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}

func flagError(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

// serve starts the system, prints how to reach it, and runs until ctx ends.
func serve(ctx context.Context, cfg Config, stdout, stderr io.Writer) error {
	log := newLogger(cfg, stderr)
	sys, err := Start(ctx, cfg, log)
	if err != nil {
		return err
	}
	printBanner(stdout, cfg, sys)
	return sys.Wait()
}
