package grpcapi

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dsync-dev/dsync/pkg/event"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
	"github.com/dsync-dev/dsync/services/projector/internal/readmodel"
)

func TestParsePage(t *testing.T) {
	id := event.NewIDs().New(event.PrefixUser)
	for _, tt := range []struct {
		name    string
		page    *dsyncv1.Page
		want    readmodel.Page
		wantErr bool
	}{
		{"nil is the default", nil, readmodel.Page{Limit: 10, Order: readmodel.OrderDesc}, false},
		{"limit 1", &dsyncv1.Page{Limit: 1}, readmodel.Page{Limit: 1}, false},
		{"limit 100 asc", &dsyncv1.Page{Limit: 100, Order: dsyncv1.Order_ORDER_ASC}, readmodel.Page{Limit: 100, Order: readmodel.OrderAsc}, false},
		{"after", &dsyncv1.Page{After: id, Order: dsyncv1.Order_ORDER_DESC}, readmodel.Page{Limit: 10, After: id}, false},
		{"before", &dsyncv1.Page{Before: id}, readmodel.Page{Limit: 10, Before: id}, false},
		{"limit 101", &dsyncv1.Page{Limit: 101}, readmodel.Page{}, true},
		{"limit -1", &dsyncv1.Page{Limit: -1}, readmodel.Page{}, true},
		{"both cursors", &dsyncv1.Page{Before: id, After: id}, readmodel.Page{}, true},
		{"cursor of another kind", &dsyncv1.Page{After: event.NewIDs().New(event.PrefixGroup)}, readmodel.Page{}, true},
		{"cursor not an id", &dsyncv1.Page{Before: "' OR 1=1 --"}, readmodel.Page{}, true},
		{"unknown order", &dsyncv1.Page{Order: 7}, readmodel.Page{}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parsePage(tt.page, event.PrefixUser)
			if tt.wantErr {
				require.ErrorIs(t, err, readmodel.ErrInvalidPage)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

// FuzzParsePage checks that any request page is either rejected with
// ErrInvalidPage or yields a page Paginate accepts, with well-formed cursors.
func FuzzParsePage(f *testing.F) {
	id := event.NewIDs().New(event.PrefixUser)
	f.Add(int32(0), "", "", int32(0))
	f.Add(int32(10), id, "", int32(1))
	f.Add(int32(100), "", id, int32(2))
	f.Add(int32(101), id, id, int32(3))
	f.Add(int32(-5), "directory_user_", "\x00", int32(-1))
	f.Fuzz(func(t *testing.T, limit int32, before, after string, order int32) {
		p, err := parsePage(&dsyncv1.Page{Limit: limit, Before: before, After: after, Order: dsyncv1.Order(order)}, event.PrefixUser)
		if err != nil {
			require.ErrorIs(t, err, readmodel.ErrInvalidPage)
			return
		}
		require.NoError(t, p.Validate())
		require.False(t, p.Before != "" && p.After != "")
		for _, c := range []string{p.Before, p.After} {
			require.True(t, c == "" || event.ValidID(c, event.PrefixUser), "cursor %q", c)
		}
	})
}
