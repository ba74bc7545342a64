package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvDatabaseURL names the environment variable that points the tests at an
// existing server (its user must be allowed to CREATE and DROP databases).
const EnvDatabaseURL = "DSYNC_TEST_DATABASE_URL"

// adminTimeout bounds each CREATE/DROP DATABASE round trip.
const adminTimeout = 30 * time.Second

// shared is the one cluster of this test binary. It is package state by
// necessity: a test binary has one TestMain, and the cluster outlives tests.
var shared struct {
	once     sync.Once
	adminURL string
	cluster  *cluster // nil when EnvDatabaseURL is used
	err      error
	mu       sync.Mutex // serializes CREATE DATABASE
}

// Main runs the tests, stops the cluster if one was started, and exits with
// the tests' exit code. Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if c := shared.cluster; c != nil {
		if err := c.stop(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	os.Exit(code)
}

// NewDatabase creates an empty database for t and returns its connection URL
// (postgres://…/NAME?sslmode=disable). The database is dropped, with
// (FORCE), when t finishes. The first call in a test binary starts the
// cluster, which can take a few seconds; a failure to start fails t.
func NewDatabase(t testing.TB) string {
	t.Helper()
	shared.once.Do(func() {
		shared.adminURL, shared.cluster, shared.err = setup()
	})
	if shared.err != nil {
		t.Fatalf("pgtest: %v", shared.err)
	}

	name := databaseName(t.Name())
	ident := pgx.Identifier{name}.Sanitize()
	if err := adminExec(shared.adminURL, "CREATE DATABASE "+ident); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := adminExec(shared.adminURL, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})

	u, err := withDatabase(shared.adminURL, name)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return u
}

// setup returns the admin URL of the server to use, starting a cluster unless
// EnvDatabaseURL is set.
func setup() (string, *cluster, error) {
	if u := os.Getenv(EnvDatabaseURL); u != "" {
		return u, nil, nil
	}
	c, err := startCluster()
	if err != nil {
		return "", nil, err
	}
	return c.url, c, nil
}

// adminExec runs one statement on the admin connection.
func adminExec(adminURL, sql string) error {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("exec: %w", err)
	}
	return nil
}

// withDatabase returns base with its path set to database and sslmode=disable
// unless base chose an sslmode.
func withDatabase(base, database string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("parse database url: %w", err)
	}
	u.Path = "/" + database
	u.RawPath = ""
	q := u.Query()
	if q.Get("sslmode") == "" {
		q.Set("sslmode", "disable")
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// databaseName derives a unique, valid, readable database name from a test
// name: "t_" + lower-cased alphanumerics (at most 40) + "_" + 12 random hex.
func databaseName(testName string) string {
	var b strings.Builder
	b.WriteString("t_")
	for _, r := range strings.ToLower(testName) {
		if b.Len() >= 42 {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:]) // crypto/rand.Read never fails
	b.WriteByte('_')
	b.WriteString(hex.EncodeToString(rnd[:]))
	return b.String()
}
