package grpcapi

import (
	"fmt"

	"github.com/dsync-dev/dsync/pkg/event"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
	"github.com/dsync-dev/dsync/services/projector/internal/readmodel"
)

// parsePage validates a request's page. Cursors must be ids with prefix:
// they become query bounds, and an id of another kind would silently page
// from the wrong place.
func parsePage(p *dsyncv1.Page, prefix string) (readmodel.Page, error) {
	page := readmodel.Page{
		Limit:  int(p.GetLimit()),
		Before: p.GetBefore(),
		After:  p.GetAfter(),
	}
	if p.GetLimit() == 0 {
		page.Limit = readmodel.DefaultLimit
	}
	switch p.GetOrder() {
	case dsyncv1.Order_ORDER_UNSPECIFIED, dsyncv1.Order_ORDER_DESC:
		page.Order = readmodel.OrderDesc
	case dsyncv1.Order_ORDER_ASC:
		page.Order = readmodel.OrderAsc
	default:
		return readmodel.Page{}, fmt.Errorf("%w: unknown order %d", readmodel.ErrInvalidPage, p.GetOrder())
	}
	if err := page.Validate(); err != nil {
		return readmodel.Page{}, err
	}
	for name, c := range map[string]string{"before": page.Before, "after": page.After} {
		if c != "" && !event.ValidID(c, prefix) {
			return readmodel.Page{}, fmt.Errorf("%w: %s must be an id starting with %q", readmodel.ErrInvalidPage, name, prefix)
		}
	}
	return page, nil
}

func pageInfo(info readmodel.PageInfo) *dsyncv1.PageInfo {
	return &dsyncv1.PageInfo{Before: info.Before, After: info.After}
}
