package dashboard

import (
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/dsync-dev/dsync/pkg/event"
)

// RequestsSubjectPrefix is the start of the core NATS subject every SCIM
// request is published on (RequestSubject), so that a dashboard on any
// gateway replica sees the requests all replicas serve.
const RequestsSubjectPrefix = "dsync.requests."

// RequestSubject is the subject of a directory's SCIM request records.
func RequestSubject(directoryID string) string { return RequestsSubjectPrefix + directoryID }

// SCIMRequest is one recorded SCIM request, as published on RequestSubject
// (JSON) and shown in the live view. Body never holds a secret: the
// recorder redacts passwords, tokens and secrets before it publishes.
type SCIMRequest struct {
	// ID is the request id (X-Request-Id), which the events the request
	// caused carry as source.request_id.
	ID          string  `json:"id"`
	DirectoryID string  `json:"directory_id"`
	At          string  `json:"at"`
	Method      string  `json:"method"`
	Path        string  `json:"path"`
	Query       string  `json:"query,omitempty"`
	Status      int     `json:"status"`
	LatencyMS   float64 `json:"latency_ms"`
	// Provider is the IdP dialect detected from the User-Agent or the
	// directory's type (okta, entra, onelogin, jumpcloud, generic).
	Provider  string `json:"provider,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
	// Body is the request body as indented JSON with secrets redacted;
	// BodyNote says why it is missing or cut (too large, not JSON).
	Body     string `json:"body,omitempty"`
	BodyNote string `json:"body_note,omitempty"`
}

// Limits of the request log: per directory, the last requestsKept
// requests; at most requestDirs directories (the least recently active
// one is dropped first).
const (
	requestsKept = 200
	requestDirs  = 1000
)

// stats is the dashboard's per-minute throughput over the last hour and
// the recent SCIM requests of each directory, fed by core NATS
// subscriptions so that it covers every gateway replica.
type stats struct {
	mu       sync.Mutex
	now      func() time.Time
	requests map[string]*requestRing
	reqs     minuteCounter
	events   minuteCounter
}

type requestRing struct {
	items []SCIMRequest // oldest first, at most requestsKept
	last  time.Time
}

func newStats(now func() time.Time) *stats {
	return &stats{now: now, requests: map[string]*requestRing{}}
}

// subscribe feeds s from NATS until the subscriptions are drained.
func (s *stats) subscribe(nc *nats.Conn) ([]*nats.Subscription, error) {
	reqSub, err := nc.Subscribe(RequestsSubjectPrefix+"*", func(m *nats.Msg) {
		var r SCIMRequest
		if json.Unmarshal(m.Data, &r) != nil || !event.ValidID(r.DirectoryID, event.PrefixDirectory) {
			return
		}
		s.addRequest(r)
	})
	if err != nil {
		return nil, fmt.Errorf("dashboard: subscribe requests: %w", err)
	}
	evSub, err := nc.Subscribe(event.SubjectAllDirectoryEvents, func(*nats.Msg) {
		s.mu.Lock()
		s.events.add(s.now(), 1)
		s.mu.Unlock()
	})
	if err != nil {
		_ = reqSub.Unsubscribe()
		return nil, fmt.Errorf("dashboard: subscribe events: %w", err)
	}
	return []*nats.Subscription{reqSub, evSub}, nil
}

func (s *stats) addRequest(r SCIMRequest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.reqs.add(now, 1)
	ring, ok := s.requests[r.DirectoryID]
	if !ok {
		if len(s.requests) >= requestDirs {
			s.evictOldest()
		}
		ring = &requestRing{}
		s.requests[r.DirectoryID] = ring
	}
	ring.last = now
	if len(ring.items) == requestsKept {
		copy(ring.items, ring.items[1:])
		ring.items = ring.items[:requestsKept-1]
	}
	ring.items = append(ring.items, r)
}

func (s *stats) evictOldest() {
	var oldest string
	var at time.Time
	for id, r := range s.requests {
		if oldest == "" || r.last.Before(at) {
			oldest, at = id, r.last
		}
	}
	delete(s.requests, oldest)
}

// recent returns up to n of a directory's last requests, newest first.
func (s *stats) recent(directoryID string, n int) []SCIMRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	ring := s.requests[directoryID]
	if ring == nil {
		return nil
	}
	out := make([]SCIMRequest, 0, min(n, len(ring.items)))
	for i := len(ring.items) - 1; i >= 0 && len(out) < n; i-- {
		out = append(out, ring.items[i])
	}
	return out
}

// request finds one recorded request by id.
func (s *stats) request(directoryID, id string) (SCIMRequest, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ring := s.requests[directoryID]; ring != nil {
		for _, r := range ring.items {
			if r.ID == id {
				return r, true
			}
		}
	}
	return SCIMRequest{}, false
}

// series returns the per-minute request and event counts of the last
// hour, oldest minute first.
func (s *stats) series() (requests, events []int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	return s.reqs.series(now), s.events.series(now)
}

// minutes is the span of the throughput charts.
const minutes = 60

// minuteCounter counts per minute over the last hour in a ring of
// buckets, each tagged with its minute so that stale buckets read as 0.
type minuteCounter struct {
	minute [minutes]int64
	count  [minutes]int
}

func (c *minuteCounter) add(t time.Time, n int) {
	m := t.Unix() / 60
	i := m % minutes
	if c.minute[i] != m {
		c.minute[i], c.count[i] = m, 0
	}
	c.count[i] += n
}

func (c *minuteCounter) series(now time.Time) []int {
	out := make([]int, minutes)
	cur := now.Unix() / 60
	for k := range minutes {
		m := cur - int64(minutes-1-k)
		if i := m % minutes; c.minute[i] == m {
			out[k] = c.count[i]
		}
	}
	return out
}

// bucketTimes counts times per minute of the hour ending at now, oldest
// first; times outside it are ignored.
func bucketTimes(now time.Time, times []time.Time) []int {
	var c minuteCounter
	cur := now.Unix() / 60
	for _, t := range times {
		// Only the minutes the series shows: an older one would take the
		// ring slot of the current minute.
		if m := t.Unix() / 60; m <= cur && m > cur-minutes {
			c.add(t, 1)
		}
	}
	return c.series(now)
}
