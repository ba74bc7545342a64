package readmodel

import (
	"context"
	"slices"
)

// EventPage selects one page of recorded events. Cursors are stream
// sequences (exclusive); at most one is set. Order is by sequence.
type EventPage struct {
	Limit  int
	Before uint64
	After  uint64
	Order  Order
}

// EventPageInfo holds the sequences of the neighbouring pages' cursors, 0
// when there is none.
type EventPageInfo struct {
	Before uint64
	After  uint64
}

// PaginateEvents serves p from the store the way Paginate serves id-keyed
// lists. Because the cursor is the stream sequence and the events table is
// written in the same transaction as the checkpoint, a reader paging
// forward never skips an event: any event not yet visible has a sequence
// above everything it has seen.
func PaginateEvents(ctx context.Context, s Store, f EventFilter, p EventPage) ([]EventRecord, EventPageInfo, error) {
	if err := (Page{Limit: p.Limit, Order: p.Order}).Validate(); err != nil {
		return nil, EventPageInfo{}, err
	}
	if p.Before != 0 && p.After != 0 {
		return nil, EventPageInfo{}, ErrInvalidPage
	}
	backward := p.Before != 0
	ascending := (p.Order == OrderAsc) != backward
	r := SeqRange{Limit: p.Limit + 1, Desc: !ascending}
	cursor := p.After
	if backward {
		cursor = p.Before
	}
	if cursor != 0 {
		if ascending {
			r.After = cursor
		} else {
			r.Before = cursor
		}
	}
	recs, err := s.ListEvents(ctx, f, r)
	if err != nil {
		return nil, EventPageInfo{}, err
	}
	more := len(recs) > p.Limit
	if more {
		recs = recs[:p.Limit]
	}
	var info EventPageInfo
	if len(recs) == 0 {
		return recs, info, nil
	}
	if backward {
		slices.Reverse(recs)
		if more {
			info.Before = recs[0].Seq
		}
		info.After = recs[len(recs)-1].Seq
		return recs, info, nil
	}
	// Forward, the after cursor is always set: an event stream grows, and
	// a poller resumes from the last event it saw.
	info.After = recs[len(recs)-1].Seq
	if p.After != 0 {
		info.Before = recs[0].Seq
	}
	return recs, info, nil
}
