package delivery

import (
	"context"
	"fmt"
	"slices"
)

// Page limits, as the WorkOS API has them.
const (
	DefaultPageLimit = 10
	MaxPageLimit     = 100
)

// Page selects one page of a list. Before and After are exclusive ids; at
// most one is set. Desc lists newest first.
type Page struct {
	Limit  int
	Before string
	After  string
	Desc   bool
}

// PageInfo holds the cursors of the neighbouring pages, empty when there is
// none.
type PageInfo struct {
	Before string
	After  string
}

// Paginate fetches one page through fetch, which must honour ListQuery.
// It returns ErrInvalid for a limit outside 0..MaxPageLimit or both cursors.
func Paginate[T any](ctx context.Context, p Page, id func(T) string,
	fetch func(context.Context, ListQuery) ([]T, error),
) ([]T, PageInfo, error) {
	if p.Limit < 0 || p.Limit > MaxPageLimit {
		return nil, PageInfo{}, fmt.Errorf("%w: limit must be 1..%d", ErrInvalid, MaxPageLimit)
	}
	if p.Before != "" && p.After != "" {
		return nil, PageInfo{}, fmt.Errorf("%w: before and after are exclusive", ErrInvalid)
	}
	limit := p.Limit
	if limit == 0 {
		limit = DefaultPageLimit
	}
	backward := p.Before != ""
	q := ListQuery{Cursor: p.After, Desc: p.Desc, Limit: limit + 1}
	if backward {
		// Walk away from the cursor in the opposite direction, then turn
		// the rows around so the page reads in the requested order.
		q = ListQuery{Cursor: p.Before, Desc: !p.Desc, Limit: limit + 1}
	}
	rows, err := fetch(ctx, q)
	if err != nil {
		return nil, PageInfo{}, err
	}
	more := len(rows) > limit
	if more {
		rows = rows[:limit]
	}
	var info PageInfo
	if len(rows) == 0 {
		return rows, info, nil
	}
	if backward {
		slices.Reverse(rows)
		if more {
			info.Before = id(rows[0])
		}
		info.After = id(rows[len(rows)-1])
		return rows, info, nil
	}
	if more {
		info.After = id(rows[len(rows)-1])
	}
	if p.After != "" {
		info.Before = id(rows[0])
	}
	return rows, info, nil
}
