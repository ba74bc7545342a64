// Package natsx connects to NATS, declares the event stream and carries
// trace context in message headers.
package natsx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dsync-dev/dsync/pkg/event"
)

// Connect dials url (or uses opts, e.g. nats.InProcessServer) and retries
// reconnects forever: a service should ride out a NATS restart, not exit.
func Connect(ctx context.Context, log *slog.Logger, url, name string, opts ...nats.Option) (*nats.Conn, error) {
	base := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.RetryOnFailedConnect(false),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "error", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			log.Info("nats reconnected", "url", c.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			log.Warn("nats async error", "subject", subject, "error", err)
		}),
	}
	nc, err := nats.Connect(url, append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("connect to nats %s: %w", url, err)
	}
	return nc, nil
}

// StreamOptions tunes the event stream for a deployment.
type StreamOptions struct {
	// Replicas is 1 for a single server and 3 for a production cluster.
	Replicas int
}

// EnsureStream creates the DSYNC_EVENTS stream or updates it to the
// configuration this version expects. The stream is the source of truth:
// file storage, no age or size limit, atomic batch publish for uniqueness
// claims, direct get for linearizable reads of one aggregate.
func EnsureStream(ctx context.Context, js jetstream.JetStream, opts StreamOptions) (jetstream.Stream, error) {
	replicas := opts.Replicas
	if replicas <= 0 {
		replicas = 1
	}
	cfg := jetstream.StreamConfig{
		Name:               event.Stream,
		Description:        "dsync directory events: the source of truth",
		Subjects:           event.StreamSubjects,
		Retention:          jetstream.LimitsPolicy,
		Storage:            jetstream.FileStorage,
		Replicas:           replicas,
		Discard:            jetstream.DiscardOld,
		Duplicates:         2 * time.Minute,
		AllowDirect:        true,
		AllowAtomicPublish: true,
	}
	stream, err := js.CreateOrUpdateStream(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("ensure stream %s: %w", event.Stream, err)
	}
	return stream, nil
}

// LastForSubject returns the last message on subject, or (nil, nil) when
// the subject has none. It reads the stream directly, so it sees every
// append that was acknowledged before it was called.
func LastForSubject(ctx context.Context, stream jetstream.Stream, subject string) (*jetstream.RawStreamMsg, error) {
	msg, err := stream.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("last message for %s: %w", subject, err)
	}
	return msg, nil
}
