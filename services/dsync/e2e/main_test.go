// Package e2e_test runs dsync end to end: in one process (`dsync dev`) and
// in the production topology (each service its own process, a standalone
// nats-server and PostgreSQL).
package e2e_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/dsync-dev/dsync/pkg/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func defaultHTTPClient() *http.Client { return &http.Client{Timeout: 10 * time.Second} }
