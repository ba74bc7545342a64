package lifecycle_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dsync-dev/dsync/pkg/lifecycle"
)

var errBoom = errors.New("boom")

// blockUntilDone is a well-behaved background loop.
func blockUntilDone(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

func TestRun(t *testing.T) {
	tests := []struct {
		name    string
		workers []lifecycle.Worker
		cancel  bool // cancel the parent context after start
		wantErr error
	}{
		{name: "no workers"},
		{
			name:    "all return nil",
			workers: []lifecycle.Worker{func(context.Context) error { return nil }, func(context.Context) error { return nil }},
		},
		{
			name:    "parent cancellation stops loops cleanly",
			workers: []lifecycle.Worker{blockUntilDone, blockUntilDone},
			cancel:  true,
		},
		{
			name:    "first error cancels the rest",
			workers: []lifecycle.Worker{blockUntilDone, func(context.Context) error { return errBoom }, blockUntilDone},
			wantErr: errBoom,
		},
		{
			name: "cancellation echoes are not reported",
			workers: []lifecycle.Worker{
				func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() },
				func(context.Context) error { return errBoom },
			},
			wantErr: errBoom,
		},
		{
			name:    "panic becomes an error",
			workers: []lifecycle.Worker{blockUntilDone, func(context.Context) error { panic("kaput") }},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			t.Cleanup(cancel)
			if tc.cancel {
				go func() { time.Sleep(10 * time.Millisecond); cancel() }()
			}
			done := make(chan error, 1)
			go func() { done <- lifecycle.Run(ctx, tc.workers...) }()

			var err error
			select {
			case err = <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("Run did not return")
			}
			switch {
			case tc.name == "panic becomes an error":
				require.ErrorContains(t, err, "kaput")
			case tc.wantErr != nil:
				require.ErrorIs(t, err, tc.wantErr)
				require.NotErrorIs(t, err, context.Canceled)
			default:
				require.NoError(t, err)
			}
		})
	}
}

func TestRunJoinsIndependentErrors(t *testing.T) {
	errOther := errors.New("other")
	var started sync.WaitGroup
	started.Add(2)
	gate := make(chan struct{})
	go func() { started.Wait(); close(gate) }()
	fail := func(err error) lifecycle.Worker {
		return func(context.Context) error { started.Done(); <-gate; return err }
	}
	err := lifecycle.Run(t.Context(), fail(errBoom), fail(errOther))
	require.ErrorIs(t, err, errBoom)
	require.ErrorIs(t, err, errOther)
}

func TestShutdownRunsInReverseOrder(t *testing.T) {
	var (
		sd  lifecycle.Shutdown
		got []string
	)
	for _, name := range []string{"telemetry", "postgres", "consumer", "grpc"} {
		sd.Add(name, func(context.Context) error { got = append(got, name); return nil })
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))

	require.NoError(t, sd.Run(t.Context(), log, time.Second))
	require.Equal(t, []string{"grpc", "consumer", "postgres", "telemetry"}, got)
	require.Equal(t, 4, strings.Count(logs.String(), "shutdown step done"))

	got = nil
	require.NoError(t, sd.Run(t.Context(), log, time.Second), "second Run is a no-op")
	require.Empty(t, got)
}

func TestShutdownErrorsAndDeadline(t *testing.T) {
	errA, errB := errors.New("a failed"), errors.New("b failed")
	tests := []struct {
		name     string
		steps    map[string]func(ctx context.Context) error
		order    []string
		wantErrs []error
		wantText []string
	}{
		{
			name:  "errors are joined and every step still runs",
			order: []string{"a", "b", "c"},
			steps: map[string]func(ctx context.Context) error{
				"a": func(context.Context) error { return errA },
				"b": func(context.Context) error { return errB },
				"c": func(context.Context) error { return nil },
			},
			wantErrs: []error{errA, errB},
			wantText: []string{"shutdown a:", "shutdown b:"},
		},
		{
			name:  "one deadline is shared by all steps",
			order: []string{"late", "slow"},
			steps: map[string]func(ctx context.Context) error{
				"slow": func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() },
				"late": func(ctx context.Context) error { return ctx.Err() },
			},
			wantErrs: []error{context.DeadlineExceeded},
			wantText: []string{"shutdown slow:", "shutdown late:"},
		},
		{
			name:     "panic in a step is an error",
			order:    []string{"p"},
			steps:    map[string]func(ctx context.Context) error{"p": func(context.Context) error { panic("oops") }},
			wantText: []string{"shutdown p: panic: oops"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var sd lifecycle.Shutdown
			for _, name := range tc.order {
				sd.Add(name, tc.steps[name])
			}
			// A cancelled parent must not cut the shutdown short.
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			err := sd.Run(ctx, slog.New(slog.DiscardHandler), 50*time.Millisecond)
			require.Error(t, err)
			for _, want := range tc.wantErrs {
				require.ErrorIs(t, err, want)
			}
			for _, want := range tc.wantText {
				require.ErrorContains(t, err, want)
			}
		})
	}
}

func TestShutdownIgnoresParentCancellation(t *testing.T) {
	var sd lifecycle.Shutdown
	sd.Add("check", func(ctx context.Context) error { return ctx.Err() })
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	require.NoError(t, sd.Run(ctx, slog.New(slog.DiscardHandler), time.Second))
}
