package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
)

// Worker is a long-lived loop. It runs until ctx is done and then returns nil;
// any non-nil return means the worker failed.
type Worker func(ctx context.Context) error

// Run runs all workers concurrently and waits for every one of them to return.
//
// The first worker to return a non-nil error (or to panic) cancels the context
// passed to the others. Run then returns that first error, joined with any
// later errors that are not merely context.Canceled echoes of the cancellation.
// Run returns nil when every worker returned nil, e.g. after ctx was cancelled.
func Run(ctx context.Context, workers ...Worker) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for i, w := range workers {
		wg.Go(func() {
			err := runWorker(ctx, i, w)
			if err == nil {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if len(errs) > 0 && errors.Is(err, context.Canceled) {
				return // a consequence of the first failure, not news
			}
			errs = append(errs, err)
			cancel()
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// runWorker calls w and turns a panic into an error so that one broken worker
// shuts the process down in order instead of crashing it.
func runWorker(ctx context.Context, i int, w Worker) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("worker %d panicked: %v\n%s", i, r, debug.Stack())
		}
	}()
	return w(ctx)
}
