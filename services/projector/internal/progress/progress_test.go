package progress_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dsync-dev/dsync/services/projector/internal/progress"
)

func TestWait(t *testing.T) {
	p := progress.New(5)
	seq, err := p.Wait(t.Context(), 5)
	require.NoError(t, err)
	require.Equal(t, uint64(5), seq)

	done := make(chan uint64)
	go func() {
		seq, err := p.Wait(t.Context(), 8)
		if err == nil {
			done <- seq
		}
	}()
	p.Advance(7)
	p.Advance(6) // never goes back
	require.Equal(t, uint64(7), p.Seq())
	p.Advance(9)
	select {
	case seq := <-done:
		require.Equal(t, uint64(9), seq)
	case <-time.After(5 * time.Second):
		t.Fatal("waiter not woken")
	}

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	seq, err = p.Wait(ctx, 100)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Equal(t, uint64(9), seq)
}
