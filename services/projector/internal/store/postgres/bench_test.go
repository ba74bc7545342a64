package postgres_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dsync-dev/dsync/pkg/pgtest"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
	"github.com/dsync-dev/dsync/services/projector/internal/readmodel"
	"github.com/dsync-dev/dsync/services/projector/internal/store/postgres"
	"github.com/dsync-dev/dsync/services/projector/internal/store/storetest"
)

// benchSize reads the data set's size from DSYNC_BENCH_USERS (default
// 2,000, so `make bench` stays quick; the target is 1,000,000).
// Groups are a tenth of the users, each user is in ten groups, and one
// group holds half the users, at most 50,000.
func benchSize(b *testing.B) int {
	n := 2_000
	if v := os.Getenv("DSYNC_BENCH_USERS"); v != "" {
		var err error
		n, err = strconv.Atoi(v)
		require.NoError(b, err, "DSYNC_BENCH_USERS")
	}
	return n
}

type seeded struct {
	store   *postgres.Store
	dir     *dsyncv1.Directory
	users   []*dsyncv1.User
	groups  []*dsyncv1.Group
	big     *dsyncv1.Group
	bigSize int
}

func seed(b *testing.B) seeded {
	n := benchSize(b)
	ctx := context.Background()
	s, err := postgres.Open(ctx, pgtest.NewDatabase(b))
	require.NoError(b, err)
	b.Cleanup(func() { _ = s.Close() })
	f := storetest.NewFixtures()
	org := f.Organization("Bench")
	sd := seeded{store: s, dir: f.Directory(org.GetId(), "Bench")}
	for i := range n {
		sd.users = append(sd.users, f.User(sd.dir, fmt.Sprintf("user%07d@bench.example", i)))
	}
	for i := range max(n/10, 1) {
		sd.groups = append(sd.groups, f.Group(sd.dir, fmt.Sprintf("group %06d", i)))
	}
	sd.big = f.Group(sd.dir, "everyone")
	sd.bigSize = min(n/2, 50_000)
	const perTx = 5000
	start := time.Now()
	update := func(fn func(ctx context.Context, tx readmodel.Tx) error) {
		require.NoError(b, s.Update(ctx, fn))
	}
	update(func(ctx context.Context, tx readmodel.Tx) error {
		if err := tx.UpsertOrganization(ctx, org); err != nil {
			return err
		}
		if err := tx.UpsertGroup(ctx, sd.big); err != nil {
			return err
		}
		return tx.UpsertDirectory(ctx, sd.dir)
	})
	for lo := 0; lo < len(sd.users); lo += perTx {
		update(func(ctx context.Context, tx readmodel.Tx) error {
			for _, u := range sd.users[lo:min(lo+perTx, len(sd.users))] {
				if err := tx.UpsertUser(ctx, u); err != nil {
					return err
				}
			}
			return nil
		})
	}
	for lo := 0; lo < len(sd.groups); lo += perTx {
		update(func(ctx context.Context, tx readmodel.Tx) error {
			for _, g := range sd.groups[lo:min(lo+perTx, len(sd.groups))] {
				if err := tx.UpsertGroup(ctx, g); err != nil {
					return err
				}
			}
			return nil
		})
	}
	for lo := 0; lo < len(sd.users); lo += perTx / 10 {
		update(func(ctx context.Context, tx readmodel.Tx) error {
			for i := lo; i < min(lo+perTx/10, len(sd.users)); i++ {
				u := sd.users[i]
				for k := range 10 {
					g := sd.groups[(i*7+k*131)%len(sd.groups)]
					if err := tx.AddMember(ctx, sd.dir.GetId(), g.GetId(), u.GetId()); err != nil {
						return err
					}
				}
				if i < sd.bigSize {
					if err := tx.AddMember(ctx, sd.dir.GetId(), sd.big.GetId(), u.GetId()); err != nil {
						return err
					}
				}
			}
			return nil
		})
	}
	b.Logf("seeded %d users, %d groups, ~%d memberships in %s", n, len(sd.groups)+1, n*10+sd.bigSize, time.Since(start).Round(time.Millisecond))
	return sd
}

// timed runs op b.N times and reports the 50th and 99th percentiles.
func timed(b *testing.B, op func(i int) error) {
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		t0 := time.Now()
		if err := op(i); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	}
}

// BenchmarkReads measures the read model's point reads and 100-item pages
// on PostgreSQL. Pages start at random depths: keyset pagination costs the
// same at any depth.
func BenchmarkReads(b *testing.B) {
	sd := seed(b)
	ctx := context.Background()
	s := sd.store
	b.Run("GetUser", func(b *testing.B) {
		timed(b, func(i int) error {
			_, err := s.GetUser(ctx, sd.users[(i*7919)%len(sd.users)].GetId())
			return err
		})
	})
	b.Run("GetGroupWithCount", func(b *testing.B) {
		timed(b, func(i int) error {
			_, err := s.GetGroup(ctx, sd.big.GetId())
			return err
		})
	})
	b.Run("FindUserByUserName", func(b *testing.B) {
		timed(b, func(i int) error {
			u := sd.users[(i*7919)%len(sd.users)]
			_, err := s.FindUsers(ctx, sd.dir.GetId(), readmodel.Key{Field: readmodel.KeyUserName, Value: u.GetUserName()}, readmodel.Range{Limit: 2})
			return err
		})
	})
	b.Run("ListUsersPage100AnyDepth", func(b *testing.B) {
		timed(b, func(i int) error {
			after := sd.users[(i*7919)%len(sd.users)].GetId()
			_, _, err := readmodel.Paginate(ctx, readmodel.Page{Limit: 100, After: after, Order: readmodel.OrderAsc}, (*dsyncv1.User).GetId,
				func(ctx context.Context, r readmodel.Range) ([]*dsyncv1.User, error) {
					return s.ListUsers(ctx, sd.dir.GetId(), r)
				})
			return err
		})
	})
	b.Run("ListBigGroupMembersPage100AnyDepth", func(b *testing.B) {
		timed(b, func(i int) error {
			after := sd.users[(i*7919)%sd.bigSize].GetId()
			_, _, err := readmodel.Paginate(ctx, readmodel.Page{Limit: 100, After: after, Order: readmodel.OrderAsc}, (*dsyncv1.User).GetId,
				func(ctx context.Context, r readmodel.Range) ([]*dsyncv1.User, error) {
					return s.ListGroupUsers(ctx, sd.big.GetId(), r)
				})
			return err
		})
	})
	b.Run("ListUserGroups", func(b *testing.B) {
		timed(b, func(i int) error {
			_, err := s.ListUserGroups(ctx, sd.users[(i*7919)%len(sd.users)].GetId(), readmodel.Range{Limit: 100})
			return err
		})
	})
}
