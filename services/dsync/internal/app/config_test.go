package app

import (
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name    string
		dev     bool
		args    []string
		env     map[string]string
		check   func(t *testing.T, c Config)
		wantErr string
	}{
		{
			name: "dev defaults",
			dev:  true,
			check: func(t *testing.T, c Config) {
				require.Equal(t, "127.0.0.1:8080", c.HTTPAddr)
				require.Equal(t, "./data", c.DataDir)
				require.Empty(t, c.NATSURL, "dev runs NATS in-process")
				require.False(t, c.AllowPrivateWebhooks, "dev allows loopback only (WebhookAllowNets)")
				require.Equal(t, "127.0.0.0/8,::1/128", c.WebhookAllowNets)
				require.True(t, c.Demo)
				require.Equal(t, TargetAll, c.Target)
			},
		},
		{
			name: "environment then flags",
			dev:  true,
			env:  map[string]string{"DSYNC_HTTP_ADDR": "0.0.0.0:9000", "DSYNC_DATA_DIR": "/var/lib/dsync"},
			args: []string{"--http-addr", "127.0.0.1:7000"},
			check: func(t *testing.T, c Config) {
				require.Equal(t, "127.0.0.1:7000", c.HTTPAddr, "a flag wins over the environment")
				require.Equal(t, "/var/lib/dsync", c.DataDir)
			},
		},
		{
			name:    "serve needs postgres for the projector",
			args:    []string{"--target=projector", "--nats-url=nats://n:4222"},
			wantErr: "DSYNC_POSTGRES_URL",
		},
		{
			name: "serve gateway needs no postgres",
			args: []string{"--target=gateway"},
			env:  map[string]string{"DSYNC_NATS_URL": "nats://n:4222"},
			check: func(t *testing.T, c Config) {
				require.Equal(t, TargetGateway, c.Target)
				require.False(t, c.AllowPrivateWebhooks, "serve refuses private webhook targets by default")
				require.Equal(t, "json", c.LogFormat)
			},
		},
		{
			name: "internal token from the environment",
			args: []string{"--target=gateway"},
			env:  map[string]string{"DSYNC_NATS_URL": "nats://n:4222", "DSYNC_INTERNAL_TOKEN": "0123abcd"},
			check: func(t *testing.T, c Config) {
				require.Equal(t, "0123abcd", c.InternalToken)
			},
		},
		{
			name: "no internal token by default, dev included",
			dev:  true,
			check: func(t *testing.T, c Config) {
				require.Empty(t, c.InternalToken, "dev generates none")
			},
		},
		{
			name:    "internal token that cannot travel in a header",
			dev:     true,
			args:    []string{"--internal-token", "two words"},
			wantErr: "internal token: character 4",
		},
		{
			name:    "unknown target",
			args:    []string{"--target=everything"},
			env:     map[string]string{"DSYNC_POSTGRES_URL": "postgres://x"},
			wantErr: "unknown target",
		},
		{
			name:    "bad log level",
			dev:     true,
			args:    []string{"--log-level=loud"},
			wantErr: "log level",
		},
		{
			name:    "stray argument",
			dev:     true,
			args:    []string{"extra"},
			wantErr: "unexpected arguments",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseConfig("test", tt.args, env(tt.env), io.Discard, tt.dev)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			tt.check(t, c)
		})
	}
}

// TestSecretsStayOutOfHelp: secrets set in the environment apply, a flag
// still wins, and -h never prints them as defaults.
func TestSecretsStayOutOfHelp(t *testing.T) {
	secrets := map[string]string{
		"DSYNC_API_KEY":            "sk_from_env",
		"DSYNC_POSTGRES_URL":       "postgres://dsync:pg-password@db/dsync",
		"DSYNC_INTERNAL_TOKEN":     "internal-token-from-env",
		"DSYNC_DASHBOARD_PASSWORD": "dashboard-password-from-env",
	}
	c, err := parseConfig("test", nil, env(secrets), io.Discard, false)
	require.NoError(t, err)
	require.Equal(t, "sk_from_env", c.APIKey)
	require.Equal(t, "postgres://dsync:pg-password@db/dsync", c.PostgresURL)
	require.Equal(t, "internal-token-from-env", c.InternalToken)
	require.Equal(t, "dashboard-password-from-env", c.DashboardPassword)

	c, err = parseConfig("test", []string{"--internal-token", "from-flag"}, env(secrets), io.Discard, false)
	require.NoError(t, err)
	require.Equal(t, "from-flag", c.InternalToken, "a flag wins over the environment")

	var help strings.Builder
	_, err = parseConfig("test", []string{"-h"}, env(secrets), &help, false)
	require.ErrorIs(t, err, flag.ErrHelp)
	for name, v := range secrets {
		require.NotContains(t, help.String(), v, name)
	}
	require.Contains(t, help.String(), "DSYNC_INTERNAL_TOKEN")
}

func TestAPIKeyIsCreatedOnceAndKeptPrivate(t *testing.T) {
	dir := t.TempDir()
	key, created, err := loadOrCreateAPIKey(dir)
	require.NoError(t, err)
	require.True(t, created)
	require.Regexp(t, `^sk_[A-Za-z0-9_-]{43}$`, key)
	again, created, err := loadOrCreateAPIKey(dir)
	require.NoError(t, err)
	require.False(t, created)
	require.Equal(t, key, again)
}

func TestRunRejectsUnknownCommands(t *testing.T) {
	err := Run(t.Context(), []string{"explode"}, env(nil), io.Discard, io.Discard)
	require.ErrorContains(t, err, "unknown command")
	require.Error(t, Run(t.Context(), nil, env(nil), io.Discard, io.Discard))
	require.NoError(t, Run(t.Context(), []string{"version"}, env(nil), io.Discard, io.Discard))
}
