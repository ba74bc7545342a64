// Package event holds what every service agrees on about the event log:
// object ids, subjects, header names and the envelope's encoding.
package event

import (
	"crypto/rand"
	"strings"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
)

// Id prefixes, as WorkOS spells them.
const (
	PrefixEvent        = "event_"
	PrefixOrganization = "org_"
	PrefixDirectory    = "directory_"
	PrefixUser         = "directory_user_"
	PrefixGroup        = "directory_group_"
	PrefixEndpoint     = "we_"
	PrefixDelivery     = "whd_"
	PrefixRequest      = "req_"
)

// IDs makes sortable unique ids: a prefix and a ULID. Ids made by one IDs
// within the same millisecond are strictly increasing, so id order is
// creation order inside one process. The zero value is not usable; use NewIDs.
type IDs struct {
	mu      sync.Mutex
	entropy *ulid.MonotonicEntropy
	now     func() time.Time
}

// NewIDs returns an id source backed by crypto/rand.
func NewIDs() *IDs {
	return &IDs{entropy: ulid.Monotonic(rand.Reader, 0), now: time.Now}
}

// New returns prefix followed by a new ULID. It is safe for concurrent use.
func (g *IDs) New(prefix string) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	id, err := ulid.New(ulid.Timestamp(g.now()), g.entropy)
	if err != nil {
		// Monotonic entropy only fails when 2^80 ids are made in one
		// millisecond; fall back to fresh entropy rather than fail a write.
		id = ulid.MustNew(ulid.Timestamp(g.now()), rand.Reader)
	}
	return prefix + id.String()
}

// ValidID reports whether id is prefix followed by a well-formed ULID. Ids
// are checked before they are used in subjects or queries, so that no
// client-supplied text can reach a NATS subject.
func ValidID(id, prefix string) bool {
	rest, ok := strings.CutPrefix(id, prefix)
	if !ok || len(rest) != ulid.EncodedSize {
		return false
	}
	_, err := ulid.ParseStrict(rest)
	return err == nil
}
