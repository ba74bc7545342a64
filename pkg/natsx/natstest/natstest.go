// Package natstest starts a real in-process NATS JetStream server for tests.
package natstest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dsync-dev/dsync/pkg/natsx"
)

// Server is a running test server.
type Server struct {
	*server.Server
	// URL is the server's client URL (nats://127.0.0.1:<port>).
	URL string
}

// Run starts a JetStream server on a random loopback port with storage in
// t.TempDir(), and shuts it down when the test ends.
func Run(t testing.TB) *Server {
	t.Helper()
	srv, err := natsx.StartEmbedded(natsx.EmbeddedOptions{
		StoreDir:   t.TempDir(),
		Listen:     "127.0.0.1:0",
		ServerName: "natstest",
	})
	if err != nil {
		t.Fatalf("start nats: %v", err)
	}
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	return &Server{Server: srv, URL: srv.ClientURL()}
}

// Connect returns a connection to s that is closed when the test ends.
func (s *Server) Connect(t testing.TB) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.URL, nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatalf("connect nats: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// JetStream returns a JetStream context on a new connection with the dsync
// event stream already declared.
func (s *Server) JetStream(t testing.TB) (jetstream.JetStream, jetstream.Stream) {
	t.Helper()
	js, err := jetstream.New(s.Connect(t))
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := natsx.EnsureStream(ctx, js, natsx.StreamOptions{})
	if err != nil {
		t.Fatalf("ensure stream: %v", err)
	}
	return js, stream
}
