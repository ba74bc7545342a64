package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dsync-dev/dsync/pkg/sqlitex"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
	"github.com/dsync-dev/dsync/services/projector/internal/readmodel"
	"github.com/dsync-dev/dsync/services/projector/internal/store/sqlite"
	"github.com/dsync-dev/dsync/services/projector/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) readmodel.Store {
		s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "readmodel.db"))
		require.NoError(t, err)
		return s
	})
}

func TestReopenKeepsCheckpoint(t *testing.T) {
	path := filepath.Join(t.TempDir(), "readmodel.db")
	s, err := sqlite.Open(t.Context(), path)
	require.NoError(t, err)
	f := storetest.NewFixtures()
	org := f.Organization("Acme")
	_, err = readmodel.Apply(t.Context(), s, storetest.Records(7, f.OrganizationEvent(dsyncv1.EventType_EVENT_TYPE_ORGANIZATION_CREATED, org)))
	require.NoError(t, err)
	require.NoError(t, s.Close())

	s, err = sqlite.Open(t.Context(), path) // migrations again: a no-op
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	cp, err := s.Checkpoint(t.Context())
	require.NoError(t, err)
	require.Equal(t, uint64(7), cp)
	_, err = s.GetOrganization(t.Context(), org.GetId())
	require.NoError(t, err)
}

func TestBackfill(t *testing.T) {
	path := filepath.Join(t.TempDir(), "readmodel.db")
	storetest.Backfill(t, func() readmodel.Store {
		s, err := sqlite.Open(t.Context(), path)
		require.NoError(t, err)
		return s
	}, func(readmodel.Store) {
		db, err := sqlitex.Open(t.Context(), path)
		require.NoError(t, err)
		defer db.Close()
		for _, q := range []string{
			`UPDATE users SET display_name_lower = NULL`, `DELETE FROM user_emails`, `UPDATE projector_events SET user_id = NULL, group_id = NULL`,
		} {
			_, err := db.ExecContext(t.Context(), q)
			require.NoError(t, err)
		}
	})
}
