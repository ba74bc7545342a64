package pgstore_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dsync-dev/dsync/pkg/pgtest"
	"github.com/dsync-dev/dsync/services/dispatcher/internal/delivery"
	"github.com/dsync-dev/dsync/services/dispatcher/internal/store/pgstore"
	"github.com/dsync-dev/dsync/services/dispatcher/internal/store/storetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) delivery.Store {
		s, err := pgstore.Open(t.Context(), pgtest.NewDatabase(t), nil)
		require.NoError(t, err)
		t.Cleanup(s.Close)
		return s
	})
}

func BenchmarkCycle(b *testing.B) {
	storetest.Bench(b, func(t testing.TB) delivery.Store {
		s, err := pgstore.Open(t.Context(), pgtest.NewDatabase(t), nil)
		require.NoError(t, err)
		t.Cleanup(s.Close)
		return s
	})
}
