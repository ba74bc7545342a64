package sqlitex

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"time"

	"github.com/dsync-dev/dsync/pkg/internal/migrate"
)

// ErrDowngrade is returned by Migrate when the database holds a migration
// version newer than any file: an older binary must not run on a newer schema.
var ErrDowngrade = migrate.ErrDowngrade

// Migrate applies the migrations in the root of migrations that component has
// not applied yet, in ascending numeric version order. It has the same
// contract as postgres.Migrate: files named NNNN_description.up.sql (others
// ignored), each applied in its own transaction together with its row in
// schema_migrations(component, version, applied_at); idempotent; an error
// wrapping ErrDowngrade, and nothing applied, when the database has a version
// for component newer than the newest file.
//
// Each transaction starts with BEGIN IMMEDIATE, which takes SQLite's write
// lock up front, so concurrent starters (even in other processes) apply each
// migration once. Migrate holds one connection of db while it runs.
func Migrate(ctx context.Context, db *sql.DB, component string, migrations fs.FS) error {
	files, err := migrate.Read(migrations)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", component, err)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("migrate %s: get connection: %w", component, err)
	}
	defer conn.Close()
	for {
		done, err := migrateStep(ctx, conn, component, files)
		if err != nil {
			return fmt.Errorf("migrate %s: %w", component, err)
		}
		if done {
			return nil
		}
	}
}

// migrateStep applies the first pending migration, if any, in one
// BEGIN IMMEDIATE transaction. It reports done when nothing was pending.
func migrateStep(ctx context.Context, conn *sql.Conn, component string, files []migrate.File) (done bool, err error) {
	// database/sql cannot issue BEGIN IMMEDIATE on a caller's DSN, so the
	// transaction is driven by hand on one dedicated connection.
	if _, err := conn.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		return false, fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			// Roll back even if ctx is done, so the connection is reusable.
			_, _ = conn.ExecContext(context.WithoutCancel(ctx), `ROLLBACK`)
		}
	}()

	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		component  TEXT    NOT NULL,
		version    INTEGER NOT NULL,
		applied_at TEXT    NOT NULL,
		PRIMARY KEY (component, version))`); err != nil {
		return false, fmt.Errorf("create schema_migrations: %w", err)
	}
	applied, err := appliedVersions(ctx, conn, component)
	if err != nil {
		return false, err
	}
	next, err := migrate.Pending(files, applied)
	if err != nil {
		return false, err
	}
	if next != nil {
		if _, err := conn.ExecContext(ctx, next.SQL); err != nil {
			return false, fmt.Errorf("apply %s: %w", next.Name, err)
		}
		if _, err := conn.ExecContext(ctx,
			`INSERT INTO schema_migrations (component, version, applied_at) VALUES (?, ?, ?)`,
			component, next.Version, time.Now().UTC().Format(time.RFC3339Nano)); err != nil {
			return false, fmt.Errorf("record %s: %w", next.Name, err)
		}
	}
	if _, err := conn.ExecContext(ctx, `COMMIT`); err != nil {
		return false, fmt.Errorf("commit: %w", err)
	}
	return next == nil, nil
}

func appliedVersions(ctx context.Context, conn *sql.Conn, component string) (map[int]bool, error) {
	rows, err := conn.QueryContext(ctx, `SELECT version FROM schema_migrations WHERE component = ?`, component)
	if err != nil {
		return nil, fmt.Errorf("read applied versions: %w", err)
	}
	defer rows.Close()
	applied := map[int]bool{}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("read applied versions: %w", err)
		}
		applied[v] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read applied versions: %w", err)
	}
	return applied, nil
}
