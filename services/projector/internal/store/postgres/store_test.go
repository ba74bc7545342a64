package postgres_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dsync-dev/dsync/pkg/pgtest"
	"github.com/dsync-dev/dsync/services/projector/internal/readmodel"
	"github.com/dsync-dev/dsync/services/projector/internal/store/postgres"
	"github.com/dsync-dev/dsync/services/projector/internal/store/storetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) readmodel.Store {
		s, err := postgres.Open(t.Context(), pgtest.NewDatabase(t))
		require.NoError(t, err)
		return s
	})
}

func TestOpenBadURL(t *testing.T) {
	_, err := postgres.Open(t.Context(), "postgres://nobody@127.0.0.1:1/none?connect_timeout=1")
	require.Error(t, err)
}
