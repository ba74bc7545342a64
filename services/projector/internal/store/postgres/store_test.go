package postgres_test

import (
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
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

func TestBackfill(t *testing.T) {
	url := pgtest.NewDatabase(t)
	storetest.Backfill(t, func() readmodel.Store {
		s, err := postgres.Open(t.Context(), url)
		require.NoError(t, err)
		return s
	}, func(readmodel.Store) {
		pool, err := pgxpool.New(t.Context(), url)
		require.NoError(t, err)
		defer pool.Close()
		for _, q := range []string{
			`UPDATE users SET display_name_lower = NULL`, `DELETE FROM user_emails`, `UPDATE projector_events SET user_id = NULL, group_id = NULL`,
		} {
			_, err := pool.Exec(t.Context(), q)
			require.NoError(t, err)
		}
	})
}
