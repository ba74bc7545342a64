package projector_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/dsync-dev/dsync/pkg/event"
	"github.com/dsync-dev/dsync/pkg/grpcx"
	"github.com/dsync-dev/dsync/pkg/natsx/natstest"
	"github.com/dsync-dev/dsync/pkg/pgtest"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
	"github.com/dsync-dev/dsync/services/projector"
	"github.com/dsync-dev/dsync/services/projector/internal/store/postgres"
	"github.com/dsync-dev/dsync/services/projector/internal/store/storetest"
)

func benchEnv(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	require.NoError(b, err, name)
	return n
}

// streamOf builds n events of a realistic mix: users created (60%), groups
// (5%) and memberships (the rest), after an organization and a directory.
func streamOf(n int) []*dsyncv1.Event {
	f := storetest.NewFixtures()
	org := f.Organization("Bench")
	dir := f.Directory(org.GetId(), "Bench")
	evs := []*dsyncv1.Event{
		f.OrganizationEvent(dsyncv1.EventType_EVENT_TYPE_ORGANIZATION_CREATED, org),
		f.DirectoryEvent(dsyncv1.EventType_EVENT_TYPE_DIRECTORY_ACTIVATED, dir),
	}
	var users []*dsyncv1.User
	var groups []*dsyncv1.Group
	for i := 0; len(evs) < n; i++ {
		switch {
		case i%20 == 0 || len(groups) == 0:
			g := f.Group(dir, fmt.Sprintf("group %d", i))
			groups = append(groups, g)
			evs = append(evs, f.GroupEvent(dsyncv1.EventType_EVENT_TYPE_GROUP_CREATED, g))
		case i%20 < 13 || len(users) == 0:
			u := f.User(dir, fmt.Sprintf("user%07d@bench.example", i))
			users = append(users, u)
			evs = append(evs, f.UserEvent(dsyncv1.EventType_EVENT_TYPE_USER_CREATED, u))
		default:
			evs = append(evs, f.MembershipEvent(dsyncv1.EventType_EVENT_TYPE_GROUP_USER_ADDED,
				groups[(i*7)%len(groups)], users[(i*13)%len(users)]))
		}
	}
	return evs
}

// publishAll publishes evs with a window of asynchronous publishes. With
// claims, every user created is preceded by its userName claim, as the
// gateway appends them, so the stream holds one claim subject per user too.
func publishAll(b *testing.B, js jetstream.JetStream, evs []*dsyncv1.Event, claims bool) {
	for _, ev := range evs {
		if u := ev.GetUser(); claims && ev.GetType() == dsyncv1.EventType_EVENT_TYPE_USER_CREATED {
			_, err := js.PublishAsync(event.UserNameClaimSubject(u.GetDirectoryId(), u.GetEmail()), []byte(u.GetId()))
			require.NoError(b, err)
		}
		msg, err := event.NewMsg(storetest.Subject(ev), ev)
		require.NoError(b, err)
		_, err = js.PublishMsgAsync(msg)
		require.NoError(b, err)
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(5 * time.Minute):
		b.Fatal("publishing timed out")
	}
}

// BenchmarkRebuild measures `dsync projector rebuild` on PostgreSQL from a
// stream of DSYNC_BENCH_EVENTS events (the target: ≥ 20,000
// events/s from a stream of ≥ 200,000).
func BenchmarkRebuild(b *testing.B) {
	n := benchEnv(b, "DSYNC_BENCH_EVENTS", 5_000)
	ns := natstest.Run(b)
	js, _ := ns.JetStream(b)
	publishAll(b, js, streamOf(n), false)
	url := pgtest.NewDatabase(b)
	live, err := postgres.Open(context.Background(), url) // the live read model the rebuild replaces
	require.NoError(b, err)
	require.NoError(b, live.Close())
	nc := ns.Connect(b)
	var rate float64
	for b.Loop() {
		res, err := projector.Rebuild(context.Background(), projector.RebuildConfig{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), NATS: nc, PostgresURL: url})
		require.NoError(b, err)
		require.Equal(b, n, res.Applied+res.Skipped)
		rate = float64(res.Applied) / res.Elapsed.Seconds()
	}
	b.ReportMetric(rate, "events/s")
}

// BenchmarkProjectionLag publishes user events at a steady
// DSYNC_BENCH_RATE per second (default 2,000) for DSYNC_BENCH_SECONDS
// (default 2) into JetStream while the projector applies them to
// PostgreSQL, and reports the time from each publish's ack to the event's
// arrival on a WatchEvents stream (so: applied and visible to readers).
// DSYNC_BENCH_PRELOAD events (default 0), with a userName claim per user,
// are in the stream and applied before the measurement: the lag on a large
// stream (many subjects) must be the lag on an empty one.
func BenchmarkProjectionLag(b *testing.B) {
	rate := benchEnv(b, "DSYNC_BENCH_RATE", 2_000)
	seconds := benchEnv(b, "DSYNC_BENCH_SECONDS", 2)
	preload := benchEnv(b, "DSYNC_BENCH_PRELOAD", 0)
	ns := natstest.Run(b)
	js, _ := ns.JetStream(b)
	if preload > 0 {
		publishAll(b, js, streamOf(preload), true)
	}
	info, err := js.Stream(context.Background(), event.Stream)
	require.NoError(b, err)
	preloaded := info.CachedInfo().State.LastSeq
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	ctx, cancel := context.WithCancel(context.Background())
	caughtUp := time.Now()
	done := make(chan error, 1)
	go func() {
		done <- projector.Run(ctx, projector.Config{
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), NATS: ns.Connect(b),
			PostgresURL: pgtest.NewDatabase(b), GRPCListener: lis,
		})
	}()
	b.Cleanup(func() {
		cancel()
		require.NoError(b, <-done)
	})
	conn, err := grpcx.Dial(lis.Addr().String())
	require.NoError(b, err)
	b.Cleanup(func() { _ = conn.Close() })
	client := dsyncv1.NewDirectoryServiceClient(conn)

	var (
		mu      sync.Mutex
		applied = map[uint64]time.Time{}
	)
	watch := func(ctx context.Context) {
		for ctx.Err() == nil {
			stream, err := client.WatchEvents(ctx, &dsyncv1.WatchEventsRequest{AfterSequence: preloaded})
			if err != nil {
				continue // the projector is starting
			}
			for {
				m, err := stream.Recv()
				if err != nil {
					break
				}
				mu.Lock()
				applied[m.GetEvent().GetSequence()] = time.Now()
				mu.Unlock()
			}
		}
	}
	go watch(ctx)

	evs := streamOf(rate*seconds + 2)
	// The organization and directory first, and wait until they are applied.
	for _, ev := range evs[:2] {
		msg, err := event.NewMsg(storetest.Subject(ev), ev)
		require.NoError(b, err)
		_, err = js.PublishMsg(ctx, msg)
		require.NoError(b, err)
	}
	require.Eventually(b, func() bool {
		st, err := client.GetProjectionStatus(ctx, &dsyncv1.GetProjectionStatusRequest{})
		return err == nil && st.GetAppliedSequence() >= preloaded+2
	}, 10*time.Minute, 10*time.Millisecond)
	if preload > 0 {
		b.Logf("caught up with %d preloaded messages in %s", preloaded, time.Since(caughtUp))
	}

	var lags []time.Duration
	for b.Loop() {
		acked := make(map[uint64]time.Time, len(evs))
		const tick = 10 * time.Millisecond
		perTick := rate / int(time.Second/tick)
		t := time.NewTicker(tick)
		next := 2
		for next < len(evs) {
			<-t.C
			for range perTick {
				if next == len(evs) {
					break
				}
				ev := evs[next]
				next++
				msg, err := event.NewMsg(storetest.Subject(ev), ev)
				require.NoError(b, err)
				ack, err := js.PublishMsg(ctx, msg)
				require.NoError(b, err)
				acked[ack.Sequence] = time.Now()
			}
		}
		t.Stop()
		require.Eventually(b, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(applied) >= len(evs)-1 // every event but the organization's is public
		}, time.Minute, 10*time.Millisecond)
		mu.Lock()
		for seq, at := range acked {
			if got, ok := applied[seq]; ok {
				lags = append(lags, max(got.Sub(at), 0))
			}
		}
		mu.Unlock()
	}
	slices.Sort(lags)
	require.NotEmpty(b, lags)
	b.ReportMetric(float64(lags[len(lags)/2].Microseconds())/1000, "lag-p50-ms")
	b.ReportMetric(float64(lags[len(lags)*99/100].Microseconds())/1000, "lag-p99-ms")
	b.ReportMetric(float64(lags[len(lags)-1].Microseconds())/1000, "lag-max-ms")
}
