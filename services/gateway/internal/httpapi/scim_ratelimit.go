package httpapi

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"

	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
)

// Per-directory SCIM rate limit when the directory sets none: generous,
// well above Entra's stated 25 requests/second/tenant; the burst absorbs
// an IdP's initial sync fan-out.
const (
	defaultSCIMRate  = 100.0
	burstPerRateUnit = 2
)

// dirLimiters holds one token bucket per directory. A directory's rate can
// change (PATCH /directories/{id}); the bucket follows it on the next
// request. Buckets of directories no longer called stay small and few (one
// per directory ever seen by this process).
type dirLimiters struct {
	mu sync.Mutex
	m  map[string]*rate.Limiter
}

func newDirLimiters() *dirLimiters {
	return &dirLimiters{m: map[string]*rate.Limiter{}}
}

// allow takes one token for the directory. When none is left it returns
// false and the whole seconds to wait before retrying (Retry-After).
func (d *dirLimiters) allow(dir *dsyncv1.Directory) (int, bool) {
	perSec := dir.GetRateLimitPerSecond()
	if perSec <= 0 || math.IsNaN(perSec) || math.IsInf(perSec, 0) {
		perSec = defaultSCIMRate
	}
	burst := max(1, int(perSec*burstPerRateUnit))
	d.mu.Lock()
	l, ok := d.m[dir.GetId()]
	if !ok {
		l = rate.NewLimiter(rate.Limit(perSec), burst)
		d.m[dir.GetId()] = l
	} else if l.Limit() != rate.Limit(perSec) {
		l.SetLimit(rate.Limit(perSec))
		l.SetBurst(burst)
	}
	d.mu.Unlock()
	now := time.Now()
	res := l.ReserveN(now, 1)
	if !res.OK() {
		return 1, false
	}
	if wait := res.DelayFrom(now); wait > 0 {
		res.CancelAt(now)
		return max(1, int(math.Ceil(wait.Seconds()))), false
	}
	return 0, true
}
