package scim

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/dsync-dev/dsync/services/gateway/internal/domain"
)

// maxWriteAttempts bounds how often a write re-reads and re-applies after
// losing a race on its aggregate's subject. Every round at least one of the
// racing writers wins, so this many concurrent writers to one aggregate
// all succeed.
const maxWriteAttempts = 64

// ErrContention is returned when a write lost its race maxWriteAttempts
// times: the client should retry (503).
var ErrContention = errorf(StatusServiceUnavailable, "", "The resource is being changed by many requests at once; retry later")

// Precondition is a request's If-Match header: empty for none.
type Precondition string

// holds reports whether the resource at stream sequence seq satisfies the
// precondition: "*" and any listed entity tag equal to its version (weak or
// strong form) do.
func (p Precondition) holds(seq uint64) bool {
	if p == "" {
		return true
	}
	want := strconv.FormatUint(seq, 10)
	for tag := range strings.SplitSeq(string(p), ",") {
		tag = strings.TrimSpace(tag)
		if tag == "*" {
			return true
		}
		tag = strings.TrimPrefix(tag, "W/")
		if strings.Trim(tag, `"`) == want {
			return true
		}
	}
	return false
}

func (p Precondition) check(seq uint64) error {
	if p.holds(seq) {
		return nil
	}
	return errorf(StatusPreconditionFailed, "", "The resource's version is %s, not %s", Version(seq), string(p))
}

// NoneMatch reports whether an If-None-Match header value matches the
// resource version (so a GET answers 304).
func NoneMatch(header, version string) bool {
	if header == "" {
		return false
	}
	seq := strings.Trim(strings.TrimPrefix(version, "W/"), `"`)
	n, err := strconv.ParseUint(seq, 10, 64)
	if err != nil {
		return false
	}
	return Precondition(header).holds(n)
}

// withRetry runs attempt until it does not fail with domain.ErrConflict.
// Under an If-Match precondition a conflict means the version the client
// named is gone: 412, no retry.
func withRetry[T any](ctx context.Context, pre Precondition, attempt func() (T, error)) (T, error) {
	var zero T
	for i := range maxWriteAttempts {
		v, err := attempt()
		if !errors.Is(err, domain.ErrConflict) {
			return v, err
		}
		if pre != "" {
			return zero, errorf(StatusPreconditionFailed, "", "The resource changed after the version %s", string(pre))
		}
		// Jittered backoff spreads racing writers apart, so a hot
		// aggregate converges in few rounds instead of all retrying at once.
		d := time.Duration(rand.Int64N(int64(time.Millisecond) * int64(1+min(i, 20))))
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return zero, fmt.Errorf("retry write: %w", ctx.Err())
		case <-t.C:
		}
	}
	return zero, ErrContention
}
