package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/dsync-dev/dsync/services/projector/internal/readmodel"
)

// Rebuild is a fresh read model in a new file beside the live one.
type Rebuild struct {
	path, tmp string
	side      *Store
}

// OpenRebuild creates an empty, migrated read model in path+".rebuild".
// The embedded store serves one process: swap it in with dsync dev stopped.
func OpenRebuild(ctx context.Context, path string) (*Rebuild, error) {
	tmp := path + ".rebuild"
	for _, f := range []string{tmp, tmp + "-wal", tmp + "-shm"} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("remove %s: %w", f, err)
		}
	}
	side, err := Open(ctx, tmp)
	if err != nil {
		return nil, err
	}
	return &Rebuild{path: path, tmp: tmp, side: side}, nil
}

// Store is the new read model being built.
func (r *Rebuild) Store() readmodel.Store { return r.side }

// SwapIn catches up to the live file's checkpoint and renames the new file
// over it.
func (r *Rebuild) SwapIn(ctx context.Context, catchUp func(ctx context.Context, live uint64) error) error {
	var live uint64
	if _, err := os.Stat(r.path); err == nil {
		old, err := Open(ctx, r.path)
		if err != nil {
			return err
		}
		live, err = old.Checkpoint(ctx)
		if cerr := old.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	if err := catchUp(ctx, live); err != nil {
		return fmt.Errorf("catch up to %d: %w", live, err)
	}
	// Closing checkpoints the WAL into the file, so the file alone is whole.
	if err := r.side.Close(); err != nil {
		return err
	}
	for _, f := range []string{r.path + "-wal", r.path + "-shm"} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", f, err)
		}
	}
	if err := os.Rename(r.tmp, r.path); err != nil {
		return fmt.Errorf("swap in rebuilt read model: %w", err)
	}
	return nil
}

// Discard removes the new file.
func (r *Rebuild) Discard(context.Context) error {
	_ = r.side.Close() // may be closed already
	if err := os.Remove(r.tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", r.tmp, err)
	}
	return nil
}
