package delivery

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestFailureLog(t *testing.T) {
	f := newFailureLog(2, time.Minute)
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	type step struct {
		endpoint string
		failed   bool
		at       time.Duration
		logged   bool
		unlogged int
	}
	steps := []step{
		{"a", true, 0, true, 0},
		{"a", true, time.Second, true, 0},
		{"a", true, 2 * time.Second, false, 0},  // over the limit: counted
		{"b", true, 3 * time.Second, true, 0},   // another endpoint has its own budget
		{"a", false, 4 * time.Second, false, 0}, // a success within the window reports nothing yet
		{"a", true, 5 * time.Second, false, 0},
		{"a", false, 61 * time.Second, false, 2}, // the window ended: its two unlogged failures are reported once
		{"a", true, 62 * time.Second, true, 0},   // a fresh window
		{"b", true, 200 * time.Second, true, 0},  // b's window ended with nothing unlogged
	}
	for i, s := range steps {
		logged, unlogged := f.attempt(s.endpoint, s.failed, t0.Add(s.at))
		require.Equal(t, s.logged, logged, "step %d logged", i)
		require.Equal(t, s.unlogged, unlogged, "step %d unlogged", i)
	}
	require.Len(t, f.windows, 2, "a and b have open windows")
}
