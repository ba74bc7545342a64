package readmodel_test

import (
	"context"
	"slices"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dsync-dev/dsync/services/projector/internal/readmodel"
)

// scan is an in-memory keyset scan: what a store's list does, over a
// sorted slice.
func scan(ids []string) func(context.Context, readmodel.Range) ([]string, error) {
	return func(_ context.Context, r readmodel.Range) ([]string, error) {
		var out []string
		for _, id := range ids {
			if (r.GreaterThan == "" || id > r.GreaterThan) && (r.LessThan == "" || id < r.LessThan) {
				out = append(out, id)
			}
		}
		if r.Desc {
			slices.Reverse(out)
		}
		if len(out) > r.Limit {
			out = out[:r.Limit]
		}
		return out, nil
	}
}

func identity(s string) string { return s }

// requireIDs compares id lists, nil and empty alike.
func requireIDs(t *testing.T, want, got []string) {
	t.Helper()
	require.True(t, slices.Equal(want, got), "want %v, got %v", want, got)
}

// FuzzPaginate walks a list page by page from a fuzzed start and checks the
// pagination contract: pages are contiguous runs of the list in list order,
// never longer than the limit, and PageInfo cursors lead to the neighbouring
// pages.
func FuzzPaginate(f *testing.F) {
	f.Add([]byte("abcdefghij"), uint8(3), "", "", false)
	f.Add([]byte("abcdefghij"), uint8(3), "", "e", true)
	f.Add([]byte("az"), uint8(1), "m", "", false)
	f.Add([]byte(""), uint8(0), "", "", true)
	f.Fuzz(func(t *testing.T, raw []byte, limit uint8, before, after string, asc bool) {
		set := map[string]bool{}
		for _, b := range raw {
			set[string([]byte{'a' + b%26, 'a' + (b/26)%26})] = true
		}
		var ids []string
		for id := range set {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		listOrder := slices.Clone(ids)
		order := readmodel.OrderDesc
		if asc {
			order = readmodel.OrderAsc
		} else {
			slices.Reverse(listOrder)
		}
		p := readmodel.Page{Limit: int(limit), Before: before, After: after, Order: order}
		page, info, err := readmodel.Paginate(t.Context(), p, identity, scan(ids))
		if p.Validate() != nil {
			require.ErrorIs(t, err, readmodel.ErrInvalidPage)
			return
		}
		require.NoError(t, err)
		require.LessOrEqual(t, len(page), p.Limit)
		if len(page) == 0 {
			require.Equal(t, readmodel.PageInfo{}, info)
			return
		}
		start := slices.Index(listOrder, page[0])
		require.GreaterOrEqual(t, start, 0)
		require.Equal(t, listOrder[start:start+len(page)], page, "a page is a contiguous run in list order")
		end := start + len(page)
		if info.After != "" {
			require.Equal(t, page[len(page)-1], info.After)
			next, _, err := readmodel.Paginate(t.Context(), readmodel.Page{Limit: p.Limit, After: info.After, Order: order}, identity, scan(ids))
			require.NoError(t, err)
			requireIDs(t, listOrder[end:min(end+p.Limit, len(listOrder))], next)
		} else if before == "" {
			require.Equal(t, len(listOrder), end, "no after cursor only at the end")
		}
		if info.Before != "" {
			require.Equal(t, page[0], info.Before)
			prev, _, err := readmodel.Paginate(t.Context(), readmodel.Page{Limit: p.Limit, Before: info.Before, Order: order}, identity, scan(ids))
			require.NoError(t, err)
			requireIDs(t, listOrder[max(0, start-p.Limit):start], prev)
		} else if after == "" {
			require.Zero(t, start, "no before cursor only at the start")
		}
	})
}
