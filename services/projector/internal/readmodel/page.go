package readmodel

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// Page limits.
const (
	DefaultLimit = 10
	MaxLimit     = 100
)

// ErrInvalidPage is returned by Page.Validate.
var ErrInvalidPage = errors.New("invalid page")

// Order is the order of a list by id, which is creation order.
type Order int

const (
	// OrderDesc lists newest first; it is the zero value, as in WorkOS.
	OrderDesc Order = iota
	OrderAsc
)

// Page selects one page of a list, WorkOS style: Before and After are
// exclusive cursors (object ids) in list order, at most one of them set.
type Page struct {
	Limit  int
	Before string
	After  string
	Order  Order
}

// PageInfo holds the cursors of the neighbouring pages, "" when there is none.
type PageInfo struct {
	// Before is the first id of the page when rows precede it.
	Before string
	// After is the last id of the page when more rows may follow.
	After string
}

// Validate reports a page that Paginate cannot serve.
func (p Page) Validate() error {
	switch {
	case p.Limit < 1 || p.Limit > MaxLimit:
		return fmt.Errorf("%w: limit must be between 1 and %d", ErrInvalidPage, MaxLimit)
	case p.Before != "" && p.After != "":
		return fmt.Errorf("%w: before and after are mutually exclusive", ErrInvalidPage)
	case p.Order != OrderAsc && p.Order != OrderDesc:
		return fmt.Errorf("%w: unknown order", ErrInvalidPage)
	}
	return nil
}

// Paginate serves page p with fetch, a keyset scan of the store. It fetches
// one row more than the limit to learn whether another page follows, so
// PageInfo never points at an empty page in the direction of travel.
func Paginate[T any](ctx context.Context, p Page, id func(T) string, fetch func(context.Context, Range) ([]T, error)) ([]T, PageInfo, error) {
	if err := p.Validate(); err != nil {
		return nil, PageInfo{}, err
	}
	backward := p.Before != ""
	r := Range{Limit: p.Limit + 1}
	// List order is ascending ids for OrderAsc; going backward scans the
	// other way and the page is reversed afterwards.
	ascending := (p.Order == OrderAsc) != backward
	r.Desc = !ascending
	cursor := p.After
	if backward {
		cursor = p.Before
	}
	if cursor != "" {
		if ascending {
			r.GreaterThan = cursor
		} else {
			r.LessThan = cursor
		}
	}
	rows, err := fetch(ctx, r)
	if err != nil {
		return nil, PageInfo{}, err
	}
	more := len(rows) > p.Limit
	if more {
		rows = rows[:p.Limit]
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
		info.After = id(rows[len(rows)-1]) // the cursor row, at least, follows
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
