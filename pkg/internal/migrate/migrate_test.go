package migrate_test

import (
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"

	"github.com/dsync-dev/dsync/pkg/internal/migrate"
)

func TestReadSortsNumericallyAndRejectsBadNames(t *testing.T) {
	files, err := migrate.Read(fstest.MapFS{
		"10_c.up.sql":     {Data: []byte("c")},
		"2_b.up.sql":      {Data: []byte("b")},
		"0001_a.up.sql":   {Data: []byte("a")},
		"0001_a.down.sql": {Data: []byte("ignored")},
		"README.md":       {Data: []byte("ignored")},
	})
	require.NoError(t, err)
	require.Len(t, files, 3)
	require.Equal(t, []int{1, 2, 10}, []int{files[0].Version, files[1].Version, files[2].Version})

	for name, fsys := range map[string]fstest.MapFS{
		"no version": {"a.up.sql": {}},
		"zero":       {"0_a.up.sql": {}},
		"duplicate":  {"1_a.up.sql": {}, "01_b.up.sql": {}},
	} {
		_, err := migrate.Read(fsys)
		require.Error(t, err, name)
	}
}

func TestPending(t *testing.T) {
	files := []migrate.File{{Version: 1}, {Version: 2}}
	next, err := migrate.Pending(files, map[int]bool{1: true})
	require.NoError(t, err)
	require.Equal(t, 2, next.Version)
	next, err = migrate.Pending(files, map[int]bool{1: true, 2: true})
	require.NoError(t, err)
	require.Nil(t, next)
	_, err = migrate.Pending(files, map[int]bool{3: true})
	require.ErrorIs(t, err, migrate.ErrDowngrade)
}
