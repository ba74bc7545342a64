package postgres

import (
	"context"
	"errors"
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
	"organizations", "directories", "users", "user_emails", "groups", "memberships",
	"projector_checkpoint", "projector_skips", "projector_events", "directory_counts",
}

// Rebuild is a fresh read model in its own schema, built while the live
// one keeps serving, then swapped in.
type Rebuild struct {
	live *pgxpool.Pool
	side *bulkStore
	// deferred are the definitions of the secondary indexes dropped while
	// the new read model loads, recreated before the swap: building an
	// index once over the loaded rows is many times faster than keeping it
	// up to date row by row.
	deferred []string
}

// keptIndexes are the secondary indexes the projection itself reads while
// it applies events, so they stay during a rebuild: without them each user
// deletion would scan every membership.
var keptIndexes = []string{"memberships_user_id"}

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
	r := &Rebuild{live: live, side: newBulkStore(&Store{pool: pool})}
	if err := r.deferIndexes(ctx); err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

// deferIndexes drops the rebuild schema's secondary indexes, those backing
// no constraint (primary keys and unique constraints are what the upserts'
// ON CONFLICT clauses need), and remembers how to create them again.
func (r *Rebuild) deferIndexes(ctx context.Context) error {
	rows, err := r.live.Query(ctx, `SELECT i.relname, pg_get_indexdef(i.oid)
		FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
		JOIN pg_class t ON t.oid = x.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace
		WHERE n.nspname = $1 AND i.relname <> ALL($2)
			AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)
		ORDER BY i.relname`, rebuildSchema, keptIndexes)
	if err != nil {
		return fmt.Errorf("list rebuild indexes: %w", err)
	}
	type index struct{ name, def string }
	idx, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (index, error) {
		var i index
		err := row.Scan(&i.name, &i.def)
		return i, err
	})
	if err != nil {
		return fmt.Errorf("list rebuild indexes: %w", err)
	}
	for _, i := range idx {
		if _, err := r.live.Exec(ctx, `DROP INDEX `+pgx.Identifier{rebuildSchema, i.name}.Sanitize()); err != nil {
			return fmt.Errorf("defer index %s: %w", i.name, err)
		}
		r.deferred = append(r.deferred, i.def)
	}
	return nil
}

// indexBuilders is how many deferred indexes are built at a time: an index
// build is one backend sorting, so two use both cores of a small machine.
const indexBuilders = 2

// createDeferred creates the deferred indexes on the loaded tables,
// indexBuilders at a time (CREATE INDEX takes a SHARE lock, so builds on one
// table do not wait for each other).
func (r *Rebuild) createDeferred(ctx context.Context) error {
	defs := make(chan string, len(r.deferred))
	for _, def := range r.deferred {
		defs <- def
	}
	close(defs)
	errs := make(chan error, indexBuilders)
	for range indexBuilders {
		go func() { errs <- r.createIndexes(ctx, defs) }()
	}
	var err error
	for range indexBuilders {
		err = errors.Join(err, <-errs)
	}
	if err != nil {
		return err
	}
	r.deferred = nil
	return nil
}

// createIndexes creates the indexes defs yields on one connection, until
// defs is drained or one fails.
func (r *Rebuild) createIndexes(ctx context.Context, defs <-chan string) error {
	conn, err := r.live.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("create indexes: %w", err)
	}
	defer conn.Release()
	// Sorting in memory rather than on disk; this session only.
	if _, err := conn.Exec(ctx, `SET maintenance_work_mem = '256MB'`); err != nil {
		return fmt.Errorf("create indexes: %w", err)
	}
	for def := range defs {
		if _, err := conn.Exec(ctx, def); err != nil {
			return fmt.Errorf("create index: %s: %w", def, err)
		}
	}
	if _, err := conn.Exec(ctx, `RESET maintenance_work_mem`); err != nil {
		return fmt.Errorf("create indexes: %w", err)
	}
	return nil
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
	// Before the lock: readers do not wait for the index builds.
	if err := r.createDeferred(ctx); err != nil {
		return fmt.Errorf("swap in rebuilt read model: %w", err)
	}
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
