package postgres

import (
	"context"
	"fmt"
	"hash/fnv"
	"io/fs"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dsync-dev/dsync/pkg/internal/migrate"
)

// ErrDowngrade is returned by Migrate when the database holds a migration
// version newer than any file: an older binary must not run on a newer schema.
var ErrDowngrade = migrate.ErrDowngrade

// Migrate applies the migrations in the root of migrations that component has
// not applied yet, in ascending numeric version order. Files are named
// NNNN_description.up.sql (other files, e.g. *.down.sql, are ignored); the
// version is NNNN and must be unique and positive.
//
// Each migration runs in its own transaction together with its row in
// schema_migrations(component, version, applied_at), so it is applied
// entirely or not at all; statements that cannot run in a transaction (CREATE
// INDEX CONCURRENTLY) are not supported. Every transaction first takes
// pg_advisory_xact_lock (one key for all components), so processes starting at once
// apply each migration exactly once. Migrate is idempotent. It returns an
// error wrapping ErrDowngrade, and applies nothing, when the database has a
// version for component newer than the newest file.
func Migrate(ctx context.Context, pool *pgxpool.Pool, component string, migrations fs.FS) error {
	files, err := migrate.Read(migrations)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", component, err)
	}
	for {
		done, err := migrateStep(ctx, pool, component, files)
		if err != nil {
			return fmt.Errorf("migrate %s: %w", component, err)
		}
		if done {
			return nil
		}
	}
}

// migrateStep applies the first pending migration, if any, in one locked
// transaction. It reports done when nothing was pending.
func migrateStep(ctx context.Context, pool *pgxpool.Pool, component string, files []migrate.File) (done bool, err error) {
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLockKey); err != nil {
			return fmt.Errorf("take advisory lock: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			component  text        NOT NULL,
			version    int         NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now(),
			PRIMARY KEY (component, version))`); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		rows, err := tx.Query(ctx, `SELECT version FROM schema_migrations WHERE component = $1`, component)
		if err != nil {
			return fmt.Errorf("read applied versions: %w", err)
		}
		versions, err := pgx.CollectRows(rows, pgx.RowTo[int32])
		if err != nil {
			return fmt.Errorf("read applied versions: %w", err)
		}
		applied := make(map[int]bool, len(versions))
		for _, v := range versions {
			applied[int(v)] = true
		}
		next, err := migrate.Pending(files, applied)
		if err != nil {
			return err
		}
		if next == nil {
			done = true
			return nil
		}
		if _, err := tx.Exec(ctx, next.SQL); err != nil {
			return fmt.Errorf("apply %s: %w", next.Name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (component, version, applied_at) VALUES ($1, $2, now())`,
			component, next.Version); err != nil {
			return fmt.Errorf("record %s: %w", next.Name, err)
		}
		return nil
	})
	return done, err
}

// migrationLockKey is the advisory lock every migration transaction takes.
// It is one lock for all components, not one per component: services that
// share a database start at once, and two concurrent CREATE TABLE IF NOT
// EXISTS schema_migrations collide on PostgreSQL's catalog (23505 on
// pg_type) even though each would succeed alone.
var migrationLockKey = func() int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte("dsync.schema_migrations")) // hash writes never fail
	return int64(h.Sum64())
}()
