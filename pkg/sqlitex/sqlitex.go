package sqlitex

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// DriverName is the database/sql driver name registered by modernc.org/sqlite.
const DriverName = "sqlite"

// busyTimeoutMS is how long a connection waits for another process's lock
// before failing with SQLITE_BUSY.
const busyTimeoutMS = 10000

// Open opens (creating if needed, with its parent directory) the SQLite
// database file at path and pings it. Every connection runs with
// journal_mode=WAL, busy_timeout=10s, foreign_keys=ON and synchronous=NORMAL,
// and db.BeginTx issues BEGIN IMMEDIATE.
//
// The pool holds exactly one connection (MaxOpenConns(1)). SQLite allows one
// writer at a time; with one connection, writers in this process queue in
// database/sql instead of failing with SQLITE_BUSY (a deferred transaction
// that upgrades to a write after another connection wrote fails at once,
// whatever busy_timeout says). Reads are serialized too, which is fine for the
// dev read model. Consequences for callers: finish (Close) Rows before the
// next query, and never use db while holding a *sql.Tx or *sql.Conn from it —
// that deadlocks.
func Open(ctx context.Context, path string) (*sql.DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("create sqlite dir: %w", err)
	}
	db, err := sql.Open(DriverName, dsn(path))
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("ping sqlite %s: %w", path, err)
	}
	return db, nil
}

// dsn builds the modernc.org/sqlite data source name for path.
func dsn(path string) string {
	q := url.Values{}
	for _, p := range []string{
		"journal_mode(WAL)",
		fmt.Sprintf("busy_timeout(%d)", busyTimeoutMS),
		"foreign_keys(1)",
		"synchronous(NORMAL)",
	} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	u := url.URL{Scheme: "file", Opaque: path, RawQuery: q.Encode()}
	return u.String()
}
