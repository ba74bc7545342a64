package app

import (
	"bytes"
	"log/slog"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestWarnIfOpen(t *testing.T) {
	tests := []struct {
		name     string
		ip       string
		token    string
		wantWarn bool
	}{
		{name: "loopback without token", ip: "127.0.0.1"},
		{name: "IPv6 loopback without token", ip: "::1"},
		{name: "wildcard without token", ip: "0.0.0.0", wantWarn: true},
		{name: "IPv6 wildcard without token", ip: "::", wantWarn: true},
		{name: "private address without token", ip: "10.0.0.5", wantWarn: true},
		{name: "wildcard with token", ip: "0.0.0.0", token: "t0ken"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewTextHandler(&buf, nil))
			addr := &net.TCPAddr{IP: net.ParseIP(tc.ip), Port: 9091}
			warnIfOpen(log, Config{InternalToken: tc.token}, "projector", addr)
			if !tc.wantWarn {
				require.Empty(t, buf.String())
				return
			}
			require.Contains(t, buf.String(), "level=WARN")
			require.Contains(t, buf.String(), "DSYNC_INTERNAL_TOKEN")
			require.Contains(t, buf.String(), "service=projector")
		})
	}
}
