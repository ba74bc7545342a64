package httpapi

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

// The SCIM write benchmarks run the whole gateway (HTTP, authentication,
// SCIM domain, optimistic-concurrency appends) against a real in-process
// JetStream server with file storage. "serial" is one client's latency
// (ns/op); "parallel" is the throughput of GOMAXPROCS*8 concurrent clients
// (ops/s). Run: go test ./internal/httpapi -run '^$' -bench SCIM -benchtime 2s

func benchEnv(b *testing.B) (*scimEnv, testDir) {
	b.Helper()
	e := newSCIMEnv(b)
	if tr, ok := e.srv.Client().Transport.(*http.Transport); ok {
		tr.MaxIdleConnsPerHost = 256
	}
	d := e.directory("okta scim v2.0")
	// The per-directory rate limit would measure itself, not the writes.
	r := e.do("PATCH", "/directories/"+d.id, scimTestAPIKey, `{"rate_limit_per_second":100000}`)
	require.Equal(b, http.StatusOK, r.status, string(r.body))
	return e, d
}

func runBoth(b *testing.B, op func(b *testing.B, worker, i int64)) {
	b.Run("serial", func(b *testing.B) {
		for i := range b.N {
			op(b, 0, int64(i))
		}
	})
	b.Run("parallel", func(b *testing.B) {
		var workers atomic.Int64
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			w := workers.Add(1)
			var i int64
			for pb.Next() {
				op(b, w, i)
				i++
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	})
}

// BenchmarkSCIMCreateUser: POST /Users, one USER_CREATED and its userName
// claim in one atomic batch.
func BenchmarkSCIMCreateUser(b *testing.B) {
	e, d := benchEnv(b)
	var n atomic.Int64
	runBoth(b, func(b *testing.B, _, _ int64) {
		body := fmt.Sprintf(`{"userName":"bench%d@example.com","name":{"givenName":"B","familyName":"U"},"emails":[{"value":"bench%d@example.com","primary":true}]}`, n.Add(1), n.Load())
		r := e.do("POST", d.path("/Users"), d.token, body)
		if r.status != http.StatusCreated {
			b.Fatalf("status %d: %s", r.status, r.body)
		}
	})
}

// BenchmarkSCIMPatchUser: PATCH /Users/{id} replacing displayName (a real
// change every time: one USER_UPDATED). In parallel each client patches
// its own user.
func BenchmarkSCIMPatchUser(b *testing.B) {
	e, d := benchEnv(b)
	users := make([]string, 512)
	for i := range users {
		users[i] = e.createUser(d, fmt.Sprintf("patch%d@example.com", i))
	}
	runBoth(b, func(b *testing.B, w, i int64) {
		body := fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"displayName","value":"Name %d"}]}`, i)
		r := e.do("PATCH", d.path("/Users/"+users[w%int64(len(users))]), d.token, body)
		if r.status != http.StatusOK {
			b.Fatalf("status %d: %s", r.status, r.body)
		}
	})
}

// BenchmarkSCIMPatchGroupMember: PATCH /Groups/{id} adding one member (or,
// every other round, removing it again, so every request is a real change:
// one GROUP_USER_ADDED/REMOVED on its own member subject). All clients
// write the same group: member edges are separate aggregates, so they do
// not conflict.
func BenchmarkSCIMPatchGroupMember(b *testing.B) {
	e, d := benchEnv(b)
	users := make([]string, 512)
	for i := range users {
		users[i] = e.createUser(d, fmt.Sprintf("member%d@example.com", i))
	}
	g := e.scim(d, "POST", "/Groups", `{"displayName":"Bench"}`)
	require.Equal(b, http.StatusCreated, g.status)
	gid := g.obj(b)["id"].(string)
	var n atomic.Int64
	runBoth(b, func(b *testing.B, _, _ int64) {
		i := n.Add(1) - 1
		op := "add"
		if (i/int64(len(users)))%2 == 1 {
			op = "remove"
		}
		body := fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":%q,"path":"members","value":[{"value":%q}]}]}`, op, users[i%int64(len(users))])
		r := e.do("PATCH", d.path("/Groups/"+gid), d.token, body)
		if r.status != http.StatusOK {
			b.Fatalf("status %d: %s", r.status, r.body)
		}
	})
}
