package delivery

import "time"

// failureLog bounds the log lines about failed attempts per endpoint: an
// endpoint that fails every attempt of a large backlog (a receiver
// answering 500 at once, say) would otherwise write a line per attempt,
// thousands a second, burying everything else. Within each window the
// first limit failures of an endpoint are logged; the rest are counted and
// reported in one line with the endpoint's next attempt after the window.
// The attempts metric counts every attempt regardless. Only the worker's
// recorder goroutine uses it.
type failureLog struct {
	limit   int
	window  time.Duration
	windows map[string]*failureWindow
}

type failureWindow struct {
	start      time.Time
	logged     int
	suppressed int
}

func newFailureLog(limit int, window time.Duration) *failureLog {
	return &failureLog{limit: limit, window: window, windows: map[string]*failureWindow{}}
}

// attempt notes an attempt of endpointID at now and reports whether a
// failure may be logged, and how many failures went unlogged in the window
// that has just ended (to report once, whatever this attempt's outcome).
func (f *failureLog) attempt(endpointID string, failed bool, now time.Time) (logFailure bool, unlogged int) {
	w := f.windows[endpointID]
	if w != nil && now.Sub(w.start) >= f.window {
		unlogged = w.suppressed
		delete(f.windows, endpointID)
		w = nil
	}
	if !failed {
		return false, unlogged
	}
	if w == nil {
		w = &failureWindow{start: now}
		f.windows[endpointID] = w
	}
	if w.logged < f.limit {
		w.logged++
		return true, unlogged
	}
	w.suppressed++
	return false, unlogged
}
