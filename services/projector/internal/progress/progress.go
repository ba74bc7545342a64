// Package progress tells readers how far the projection has applied the
// event stream, and lets them wait for it to get further.
package progress

import (
	"context"
	"sync"
)

// Progress is the applied stream sequence. It is safe for concurrent use.
type Progress struct {
	mu  sync.Mutex
	seq uint64
	// changed is closed and replaced on every advance: a broadcast that
	// wakes every waiter without polling.
	changed chan struct{}
}

// New returns a Progress at seq.
func New(seq uint64) *Progress {
	return &Progress{seq: seq, changed: make(chan struct{})}
}

// Seq returns the applied sequence.
func (p *Progress) Seq() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seq
}

// Advance records that the projection has applied through seq. A seq at or
// below the current one is ignored, so the sequence never goes back.
func (p *Progress) Advance(seq uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if seq <= p.seq {
		return
	}
	p.seq = seq
	close(p.changed)
	p.changed = make(chan struct{})
}

// Wait blocks until the applied sequence reaches target or ctx is done, and
// returns the applied sequence then. It returns ctx.Err() only when target
// was not reached.
func (p *Progress) Wait(ctx context.Context, target uint64) (uint64, error) {
	for {
		p.mu.Lock()
		seq, changed := p.seq, p.changed
		p.mu.Unlock()
		if seq >= target {
			return seq, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			if seq := p.Seq(); seq >= target {
				return seq, nil
			}
			return p.Seq(), ctx.Err()
		}
	}
}
