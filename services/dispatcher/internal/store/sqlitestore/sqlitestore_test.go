package sqlitestore_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dsync-dev/dsync/services/dispatcher/internal/delivery"
	"github.com/dsync-dev/dsync/services/dispatcher/internal/store/sqlitestore"
	"github.com/dsync-dev/dsync/services/dispatcher/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) delivery.Store {
		s, err := sqlitestore.Open(t.Context(), filepath.Join(t.TempDir(), "dispatcher.db"))
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, s.Close()) })
		return s
	})
}

// TestReopen checks that migrations are idempotent across restarts.
func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dispatcher.db")
	for range 2 {
		s, err := sqlitestore.Open(t.Context(), path)
		require.NoError(t, err)
		require.NoError(t, s.Close())
	}
}

func BenchmarkCycle(b *testing.B) {
	storetest.Bench(b, func(t testing.TB) delivery.Store {
		s, err := sqlitestore.Open(t.Context(), filepath.Join(t.TempDir(), "dispatcher.db"))
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}
