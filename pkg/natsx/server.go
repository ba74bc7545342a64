package natsx

import (
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// EmbeddedOptions configures an in-process NATS server.
type EmbeddedOptions struct {
	// StoreDir holds JetStream's files.
	StoreDir string
	// Listen is a host:port to accept network clients on; empty means
	// in-process connections only (nats.InProcessServer).
	Listen string
	// ServerName names the server in logs and JetStream metadata.
	ServerName string
}

// StartEmbedded starts a JetStream-enabled NATS server inside this process
// and waits until it accepts connections. The caller must Shutdown it.
func StartEmbedded(opts EmbeddedOptions) (*server.Server, error) {
	sopts := &server.Options{
		ServerName: opts.ServerName,
		JetStream:  true,
		StoreDir:   opts.StoreDir,
		NoSigs:     true,
		NoLog:      true,
		// JetStream's own default of 1/4 of RAM is fine for a server, not for a
		// developer laptop running one directory.
		JetStreamMaxMemory: 256 << 20,
	}
	if opts.ServerName == "" {
		sopts.ServerName = "dsync-embedded"
	}
	if opts.Listen == "" {
		sopts.DontListen = true
	} else {
		host, port, err := splitHostPort(opts.Listen)
		if err != nil {
			return nil, err
		}
		sopts.Host, sopts.Port = host, port
	}
	srv, err := server.NewServer(sopts)
	if err != nil {
		return nil, fmt.Errorf("configure embedded nats: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("embedded nats did not become ready within 10s")
	}
	return srv, nil
}
