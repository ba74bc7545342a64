// Command dsync is the one binary of dsync: `dsync dev` runs everything in
// one process, `dsync serve --target=…` runs one service against external
// NATS and PostgreSQL.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/dsync-dev/dsync/services/dsync/internal/admin"
	"github.com/dsync-dev/dsync/services/dsync/internal/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := app.Run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "dsync:", err)
		os.Exit(admin.ExitCode(err))
	}
}
