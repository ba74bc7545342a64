package postgres

import (
	"context"
	"fmt"
	"io/fs"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dsync-dev/dsync/pkg/postgres"
	"github.com/dsync-dev/dsync/services/projector/internal/readmodel"
)

// Schemas a rebuild uses beside the live tables (in the search path's
// first schema, normally public).
const (
	rebuildSchema = "projector_rebuild"
	oldSchema     = "projector_replaced"
)

// tables are the read model's tables, moved together by a swap.
var tables = []string{
	"organizations", "directories", "users", "groups", "memberships",
	"projector_checkpoint", "projector_skips", "projector_events",
}

// Rebuild is a fresh read model in its own schema, built while the live
// one keeps serving, then swapped in.
type Rebuild struct {
	live *pgxpool.Pool
	side *Store
}

// OpenRebuild creates an empty, migrated read model in a schema of its own
// on the database at url, replacing what a failed rebuild left there.
func OpenRebuild(ctx context.Context, dbURL string) (*Rebuild, error) {
	live, err := postgres.Open(ctx, dbURL)
	if err != nil {
		return nil, fmt.Errorf("open live read model: %w", err)
	}
	for _, q := range []string{
		`DROP SCHEMA IF EXISTS ` + rebuildSchema + ` CASCADE`,
		`DROP SCHEMA IF EXISTS ` + oldSchema + ` CASCADE`,
		`CREATE SCHEMA ` + rebuildSchema,
	} {
		if _, err := live.Exec(ctx, q); err != nil {
			live.Close()
			return nil, fmt.Errorf("prepare rebuild schema: %w", err)
		}
	}
	sideURL, err := withSearchPath(dbURL, rebuildSchema)
	if err != nil {
		live.Close()
		return nil, err
	}
	pool, err := postgres.Open(ctx, sideURL)
	if err != nil {
		live.Close()
		return nil, fmt.Errorf("open rebuild schema: %w", err)
	}
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err == nil {
		// schema_migrations lands in the rebuild schema too and is dropped with it.
		err = postgres.Migrate(ctx, pool, Component, sub)
	}
	if err != nil {
		pool.Close()
		live.Close()
		return nil, fmt.Errorf("migrate rebuild schema: %w", err)
	}
	return &Rebuild{live: live, side: &Store{pool: pool}}, nil
}

// withSearchPath returns dbURL with search_path set to schema; pgx sends
// unknown URL parameters as run-time parameters.
func withSearchPath(dbURL, schema string) (string, error) {
	if !strings.Contains(dbURL, "://") {
		return dbURL + " search_path=" + schema, nil
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		return "", fmt.Errorf("parse database url: %w", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// Store is the new read model being built.
func (r *Rebuild) Store() readmodel.Store { return r.side }

// SwapIn replaces the live tables with the rebuilt ones in one transaction.
// It first locks the live checkpoint table exclusively: a running
// projector's batch (which starts by locking the checkpoint row) finishes
// first, and the next one waits; PostgreSQL resolves the table name again
// after that wait, so the waiting batch runs against the new tables and
// skips what catchUp applied. Readers wait while the tables move.
func (r *Rebuild) SwapIn(ctx context.Context, catchUp func(ctx context.Context, live uint64) error) error {
	defer r.close()
	err := pgx.BeginFunc(ctx, r.live, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `LOCK TABLE projector_checkpoint IN ACCESS EXCLUSIVE MODE`); err != nil {
			return fmt.Errorf("lock live checkpoint: %w", err)
		}
		var live int64
		if err := tx.QueryRow(ctx, `SELECT seq FROM projector_checkpoint WHERE id = 1`).Scan(&live); err != nil {
			return fmt.Errorf("read live checkpoint: %w", err)
		}
		if err := catchUp(ctx, uint64(live)); err != nil {
			return fmt.Errorf("catch up to %d: %w", live, err)
		}
		var schema string
		if err := tx.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
			return fmt.Errorf("read schema: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE SCHEMA `+oldSchema); err != nil {
			return fmt.Errorf("create %s: %w", oldSchema, err)
		}
		for _, t := range tables {
			for _, q := range []string{
				`ALTER TABLE ` + pgx.Identifier{schema, t}.Sanitize() + ` SET SCHEMA ` + oldSchema,
				`ALTER TABLE ` + pgx.Identifier{rebuildSchema, t}.Sanitize() + ` SET SCHEMA ` + pgx.Identifier{schema}.Sanitize(),
			} {
				if _, err := tx.Exec(ctx, q); err != nil {
					return fmt.Errorf("swap %s: %w", t, err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("swap in rebuilt read model: %w", err)
	}
	for _, s := range []string{oldSchema, rebuildSchema} {
		if _, err := r.live.Exec(ctx, `DROP SCHEMA IF EXISTS `+s+` CASCADE`); err != nil {
			return fmt.Errorf("drop %s: %w", s, err)
		}
	}
	return nil
}

// Discard drops the rebuild schema.
func (r *Rebuild) Discard(ctx context.Context) error {
	defer r.close()
	if _, err := r.live.Exec(ctx, `DROP SCHEMA IF EXISTS `+rebuildSchema+` CASCADE`); err != nil {
		return fmt.Errorf("drop %s: %w", rebuildSchema, err)
	}
	return nil
}

func (r *Rebuild) close() {
	r.side.pool.Close()
	r.live.Close()
}
