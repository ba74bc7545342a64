package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Shutdown is an ordered list of cleanup steps. The zero value is ready to use
// and safe for concurrent use.
type Shutdown struct {
	mu    sync.Mutex
	steps []step
}

type step struct {
	name string
	fn   func(ctx context.Context) error
}

// Add registers a cleanup step. Steps run in reverse order of Add, like defer:
// add resources in the order you create them (telemetry, pools, consumers,
// servers) and they are closed in the order they must stop.
func (s *Shutdown) Add(name string, fn func(ctx context.Context) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.steps = append(s.steps, step{name: name, fn: fn})
}

// Run calls every step, last added first, one at a time, under one shared
// deadline of timeout. Every step is called even if an earlier one failed or
// the deadline has passed (it then gets an expired context and should return
// promptly). Each step is logged with its duration; the steps' errors are
// joined, each prefixed with the step's name.
//
// Run keeps ctx's values but not its cancellation, because it is normally
// called after the process context was cancelled by a signal. Steps are
// consumed: a second Run does nothing and returns nil.
func (s *Shutdown) Run(ctx context.Context, log *slog.Logger, timeout time.Duration) error {
	s.mu.Lock()
	steps := s.steps
	s.steps = nil
	s.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()

	var errs []error
	for i := len(steps) - 1; i >= 0; i-- {
		st := steps[i]
		start := time.Now()
		err := callStep(ctx, st)
		took := time.Since(start)
		if err != nil {
			log.ErrorContext(ctx, "shutdown step failed", "step", st.name, "duration", took, "error", err)
			errs = append(errs, fmt.Errorf("shutdown %s: %w", st.name, err))
			continue
		}
		log.InfoContext(ctx, "shutdown step done", "step", st.name, "duration", took)
	}
	return errors.Join(errs...)
}

func callStep(ctx context.Context, st step) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return st.fn(ctx)
}
