package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

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
