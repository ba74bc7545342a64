// Package pgtest gives each test its own database in a real, throwaway
// PostgreSQL server. Tests that use it are never skipped: without server
// binaries they fail with instructions.
//
// One cluster is started per test binary, on first use, with initdb and pg_ctl
// in a temporary directory and a free TCP port on 127.0.0.1. When
// DSYNC_TEST_DATABASE_URL is set, that server is used instead and no cluster is
// started; per-test databases are still created in it.
//
// Every package that uses NewDatabase must stop the cluster from TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
package pgtest
