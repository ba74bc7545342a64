package e2e_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dsync-dev/dsync/services/dsync/internal/app"
)

// devConfig is `dsync dev` on free loopback ports in a temp data dir.
func devConfig(t *testing.T) app.Config {
	return app.Config{
		Target:               app.TargetAll,
		Dev:                  true,
		HTTPAddr:             "127.0.0.1:0",
		DataDir:              t.TempDir(),
		ProjectorGRPCAddr:    "127.0.0.1:0",
		DispatcherGRPCAddr:   "127.0.0.1:0",
		AllowPrivateWebhooks: true,
		Demo:                 true,
		LogLevel:             "info",
		LogFormat:            "text",
	}
}

func startDev(t *testing.T, cfg app.Config) *app.System {
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	sys, err := app.Start(ctx, cfg, log)
	if err != nil {
		cancel()
		t.Fatalf("start dsync dev: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		require.NoError(t, sys.Wait())
	})
	return sys
}

func TestDevEndToEnd(t *testing.T) {
	sys := startDev(t, devConfig(t))
	require.NotEmpty(t, sys.APIKey)
	runScenario(t, sys.HTTPURL, sys.APIKey)
}

// The demo directory printed by `make run` works: its token authenticates
// SCIM requests, and a second start finds the same directory and API key.
func TestDevDemoDirectorySurvivesRestart(t *testing.T) {
	cfg := devConfig(t)
	first := startDevUntil(t, cfg)
	require.NotNil(t, first.Demo)
	require.NotEmpty(t, first.Demo.BearerToken)

	c := client{t: t, http: defaultHTTPClient()}
	status, _, user := c.do("POST", first.Demo.SCIMEndpoint+"/Users", first.Demo.BearerToken, oktaCreateUser(t))
	require.Equal(t, 201, status, user)
	first.stop(t)

	second := startDevUntil(t, cfg)
	defer second.stop(t)
	require.Equal(t, first.Demo.DirectoryID, second.Demo.DirectoryID)
	require.Empty(t, second.Demo.BearerToken, "a token is shown once")
	require.Equal(t, first.APIKey, second.APIKey)
	// The user written before the restart is still there, and the same
	// token still works against the directory.
	status, _, got := c.do("GET", second.Demo.SCIMEndpoint+"/Users/"+user["id"].(string), first.Demo.BearerToken, nil)
	require.Equal(t, 200, status, got)
	status, _, list := c.do("GET", second.HTTPURL+"/directory_users?directory="+second.Demo.DirectoryID, second.APIKey, nil)
	require.Equal(t, 200, status, list)
	require.Len(t, list["data"], 1)
}

type stoppable struct {
	*app.System
	cancel context.CancelFunc
}

func (s stoppable) stop(t *testing.T) {
	s.cancel()
	require.NoError(t, s.Wait())
}

func startDevUntil(t *testing.T, cfg app.Config) stoppable {
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	sys, err := app.Start(ctx, cfg, log)
	if err != nil {
		cancel()
		t.Fatalf("start dsync dev: %v", err)
	}
	return stoppable{System: sys, cancel: cancel}
}

// testWriter sends logs to t.Log so they show only for failing tests.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

var _ io.Writer = testWriter{}
