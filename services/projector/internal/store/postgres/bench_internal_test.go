package postgres

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/dsync-dev/dsync/pkg/pgtest"
	"github.com/dsync-dev/dsync/pkg/scim/filter"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
	"github.com/dsync-dev/dsync/services/projector/internal/readmodel"
	"github.com/dsync-dev/dsync/services/projector/internal/store/storetest"
)

// benchEnv reads a size from the environment, with a small default so that
// `make bench` stays quick. The scale is DSYNC_BENCH_USERS=1000000
// DSYNC_BENCH_GROUPS=100000 DSYNC_BENCH_MEMBERSHIPS=10 (per user)
// DSYNC_BENCH_BIG_GROUP=50000.
func benchEnv(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	require.NoError(b, err, name)
	return n
}

// seeded is a read model of one directory with n users, n/10 groups (or
// DSYNC_BENCH_GROUPS), each user in DSYNC_BENCH_MEMBERSHIPS groups, and one
// big group.
type seeded struct {
	store   *Store
	dir     *dsyncv1.Directory
	userIDs []string
	names   []string // user names, by index
	groups  []string
	big     string
	bigSize int
	edges   int
}

// seed loads the data set with COPY, the way a bulk load would, and
// computes the member counts and versions the projection would have.
func seed(b *testing.B) seeded {
	n := benchEnv(b, "DSYNC_BENCH_USERS", 2_000)
	nGroups := benchEnv(b, "DSYNC_BENCH_GROUPS", max(n/10, 1))
	perUser := benchEnv(b, "DSYNC_BENCH_MEMBERSHIPS", 10)
	bigSize := min(benchEnv(b, "DSYNC_BENCH_BIG_GROUP", 50_000), n)
	ctx := context.Background()
	s, err := Open(ctx, pgtest.NewDatabase(b))
	require.NoError(b, err)
	b.Cleanup(func() { _ = s.Close() })
	start := time.Now()

	f := storetest.NewFixtures()
	org := f.Organization("Bench")
	sd := seeded{store: s, dir: f.Directory(org.GetId(), "Bench"), bigSize: bigSize}
	require.NoError(b, s.Update(ctx, func(ctx context.Context, tx readmodel.Tx) error {
		if err := tx.UpsertOrganization(ctx, org); err != nil {
			return err
		}
		return tx.UpsertDirectory(ctx, sd.dir)
	}))
	dirID, orgID := sd.dir.GetId(), org.GetId()

	// Users and their emails.
	seq := int64(10)
	var emails [][]any
	users := make([][]any, 0, 10_000)
	flushUsers := func() {
		_, err := s.pool.CopyFrom(ctx, pgx.Identifier{"users"}, []string{"id", "directory_id", "organization_id", "idp_id",
			"user_name", "user_name_lower", "email", "first_name", "last_name", "state", "created_at", "updated_at", "data",
			"email_lower", "display_name_lower", "version"}, pgx.CopyFromRows(users))
		require.NoError(b, err)
		_, err = s.pool.CopyFrom(ctx, pgx.Identifier{"user_emails"}, []string{"user_id", "directory_id", "email_lower"}, pgx.CopyFromRows(emails))
		require.NoError(b, err)
		users, emails = users[:0], emails[:0]
	}
	for i := range n {
		u := f.User(sd.dir, fmt.Sprintf("user%07d@bench.example", i))
		u.DisplayName = fmt.Sprintf("User %07d", (i*7919)%n)
		data, err := marshal(u)
		require.NoError(b, err)
		seq++
		users = append(users, []any{u.GetId(), dirID, orgID, u.GetIdpId(), u.GetUserName(), strings.ToLower(u.GetUserName()),
			u.GetEmail(), u.GetFirstName(), u.GetLastName(), u.GetState().String(), ts(u.GetCreatedAt()), ts(u.GetUpdatedAt()),
			data, strings.ToLower(u.GetEmail()), strings.ToLower(u.GetDisplayName()), seq})
		for _, e := range readmodel.UserEmails(u) {
			emails = append(emails, []any{u.GetId(), dirID, e})
		}
		sd.userIDs = append(sd.userIDs, u.GetId())
		sd.names = append(sd.names, u.GetUserName())
		if len(users) == cap(users) {
			flushUsers()
		}
	}
	flushUsers()

	// Groups, with the member counts of the edges below.
	var gs []*dsyncv1.Group
	for i := range nGroups {
		g := f.Group(sd.dir, fmt.Sprintf("group %06d", i))
		gs = append(gs, g)
		sd.groups = append(sd.groups, g.GetId())
	}
	bigGroup := f.Group(sd.dir, "everyone")
	sd.big = bigGroup.GetId()
	counts := make([]int64, nGroups)
	memberOf := func(i, k int) int { return (i*7 + k*131) % nGroups }
	for i := range n {
		for k := range perUser {
			counts[memberOf(i, k)]++ // distinct while perUser*131 < nGroups
		}
	}
	var rows [][]any
	for i, g := range append(gs, bigGroup) {
		data, err := marshal(g)
		require.NoError(b, err)
		count := int64(bigSize)
		if i < nGroups {
			count = counts[i]
		}
		seq++
		rows = append(rows, []any{g.GetId(), dirID, orgID, g.GetIdpId(), g.GetName(), ts(g.GetCreatedAt()), ts(g.GetUpdatedAt()),
			data, strings.ToLower(g.GetName()), count, seq})
	}
	_, err = s.pool.CopyFrom(ctx, pgx.Identifier{"groups"}, []string{"id", "directory_id", "organization_id", "idp_id", "name",
		"created_at", "updated_at", "data", "name_lower", "member_count", "version"}, pgx.CopyFromRows(rows))
	require.NoError(b, err)

	// Memberships, streamed.
	i, k := 0, 0
	sd.edges, err = copyEdges(ctx, s, func() ([]any, bool) {
		for i < n {
			if k < perUser {
				k++
				return []any{dirID, sd.groups[memberOf(i, k-1)], sd.userIDs[i]}, true
			}
			if k == perUser && i < bigSize {
				k++
				return []any{dirID, sd.big, sd.userIDs[i]}, true
			}
			i, k = i+1, 0
		}
		return nil, false
	})
	require.NoError(b, err)
	_, err = s.pool.Exec(ctx, `UPDATE projector_checkpoint SET seq = $1`, seq)
	require.NoError(b, err)
	_, err = s.pool.Exec(ctx, `VACUUM ANALYZE`)
	require.NoError(b, err)
	b.Logf("seeded %d users, %d groups, %d memberships, a %d-member group in %s",
		n, nGroups+1, sd.edges, bigSize, time.Since(start).Round(time.Millisecond))
	return sd
}

func copyEdges(ctx context.Context, s *Store, next func() ([]any, bool)) (int, error) {
	var n int
	var row []any
	_, err := s.pool.CopyFrom(ctx, pgx.Identifier{"memberships"}, []string{"directory_id", "group_id", "user_id"},
		pgx.CopyFromFunc(func() ([]any, error) {
			var ok bool
			if row, ok = next(); !ok {
				return nil, nil
			}
			n++
			return row, nil
		}))
	return n, err
}

// timed runs op b.N times and reports the 50th and 99th percentiles.
func timed(b *testing.B, op func(i int) error) {
	lat := make([]time.Duration, 0, 1024)
	i := 0
	for b.Loop() {
		t0 := time.Now()
		if err := op(i); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
		i++
	}
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	}
}

// BenchmarkReads measures the read model's point reads and 100-item pages
// on PostgreSQL. Pages start at pseudo-random depths: keyset pagination
// costs the same at any depth. The SCIM searches page by startIndex
// (OFFSET, as SCIM is index-based), so their cost grows with depth.
func BenchmarkReads(b *testing.B) {
	sd := seed(b)
	ctx := context.Background()
	s := sd.store
	n := len(sd.userIDs)
	pick := func(i int) int { return (i * 7919) % n }
	page := func(fetch func(ctx context.Context, r readmodel.Range) ([]*dsyncv1.User, error), after string) error {
		_, _, err := readmodel.Paginate(ctx, readmodel.Page{Limit: 100, After: after, Order: readmodel.OrderAsc}, (*dsyncv1.User).GetId, fetch)
		return err
	}
	b.Run("GetUser", func(b *testing.B) {
		timed(b, func(i int) error {
			_, err := s.GetUser(ctx, sd.userIDs[pick(i)])
			return err
		})
	})
	b.Run("GetBigGroupWithCount", func(b *testing.B) {
		timed(b, func(int) error {
			_, err := s.GetGroup(ctx, sd.big)
			return err
		})
	})
	b.Run("FindUserByUserName", func(b *testing.B) {
		timed(b, func(i int) error {
			_, err := s.FindUsers(ctx, sd.dir.GetId(), readmodel.Key{Field: readmodel.KeyUserName, Value: sd.names[pick(i)]}, readmodel.Range{Limit: 2})
			return err
		})
	})
	b.Run("FindUserByEmail", func(b *testing.B) {
		timed(b, func(i int) error {
			_, err := s.FindUsers(ctx, sd.dir.GetId(), readmodel.Key{Field: readmodel.KeyEmail, Value: sd.names[pick(i)]}, readmodel.Range{Limit: 2})
			return err
		})
	})
	b.Run("ListUsersPage100AnyDepth", func(b *testing.B) {
		timed(b, func(i int) error {
			return page(func(ctx context.Context, r readmodel.Range) ([]*dsyncv1.User, error) {
				return s.ListUsers(ctx, sd.dir.GetId(), r)
			}, sd.userIDs[pick(i)])
		})
	})
	b.Run("ListBigGroupMembersPage100AnyDepth", func(b *testing.B) {
		timed(b, func(i int) error {
			return page(func(ctx context.Context, r readmodel.Range) ([]*dsyncv1.User, error) {
				return s.ListGroupUsers(ctx, sd.big, r)
			}, sd.userIDs[(i*7919)%sd.bigSize])
		})
	})
	b.Run("ListGroupsPage100AnyDepth", func(b *testing.B) {
		timed(b, func(i int) error {
			_, _, err := readmodel.Paginate(ctx, readmodel.Page{Limit: 100, After: sd.groups[(i*7919)%len(sd.groups)], Order: readmodel.OrderAsc},
				func(g *dsyncv1.GroupWithCount) string { return g.GetGroup().GetId() },
				func(ctx context.Context, r readmodel.Range) ([]*dsyncv1.GroupWithCount, error) {
					return s.ListGroups(ctx, sd.dir.GetId(), r)
				})
			return err
		})
	})
	b.Run("ListUserGroups", func(b *testing.B) {
		timed(b, func(i int) error {
			_, err := s.ListUserGroups(ctx, sd.userIDs[pick(i)], readmodel.Range{Limit: 100})
			return err
		})
	})
	eq := func(f string) filter.Expr {
		e, err := filter.Parse(f)
		require.NoError(b, err)
		return e
	}
	b.Run("SCIMFilterUserNameEq", func(b *testing.B) {
		timed(b, func(i int) error {
			_, _, err := readmodel.SearchUsers(ctx, s, readmodel.Search{DirectoryID: sd.dir.GetId(), Count: 100,
				Filter: eq(fmt.Sprintf("userName eq %q", sd.names[pick(i)]))})
			return err
		})
	})
	b.Run("SCIMFilterEmailsValueEq", func(b *testing.B) {
		timed(b, func(i int) error {
			_, _, err := readmodel.SearchUsers(ctx, s, readmodel.Search{DirectoryID: sd.dir.GetId(), Count: 100,
				Filter: eq(fmt.Sprintf("emails[value eq %q]", sd.names[pick(i)]))})
			return err
		})
	})
	// The groups of a SCIM list page's 100 users: one query, against the
	// N+1 of a ListUserGroups per user.
	pageIDs := func(i int) []string {
		lo := pick(i) % max(n-100, 1)
		return sd.userIDs[lo:min(lo+100, n)]
	}
	b.Run("GroupsOf100Users", func(b *testing.B) {
		timed(b, func(i int) error {
			_, err := s.GroupsOfUsers(ctx, pageIDs(i))
			return err
		})
	})
	b.Run("GroupsOf100UsersNPlus1", func(b *testing.B) {
		timed(b, func(i int) error {
			for _, id := range pageIDs(i) {
				if _, err := s.ListUserGroups(ctx, id, readmodel.Range{Limit: 100}); err != nil {
					return err
				}
			}
			return nil
		})
	})
	// An unfiltered SCIM list page: the total comes with it.
	b.Run("SCIMUnfilteredPage100WithTotal", func(b *testing.B) {
		timed(b, func(int) error {
			_, _, err := readmodel.SearchUsers(ctx, s, readmodel.Search{DirectoryID: sd.dir.GetId(), Count: 100, StartIndex: 1})
			return err
		})
	})
	b.Run("SCIMTotalOnly", func(b *testing.B) {
		timed(b, func(int) error {
			_, _, err := readmodel.SearchUsers(ctx, s, readmodel.Search{DirectoryID: sd.dir.GetId()})
			return err
		})
	})
	for _, sort := range []readmodel.SortKey{readmodel.SortUserName, readmodel.SortDisplayName, readmodel.SortUpdated} {
		for _, depth := range []int{0, n / 2} {
			if depth > n {
				continue
			}
			b.Run(fmt.Sprintf("SCIMSortedPage100/sort=%d/startIndex=%d", sort, depth+1), func(b *testing.B) {
				timed(b, func(int) error {
					_, _, err := readmodel.SearchUsers(ctx, s, readmodel.Search{DirectoryID: sd.dir.GetId(), Count: 100,
						StartIndex: depth + 1, Sort: sort})
					return err
				})
			})
		}
	}
}

// BenchmarkApply measures readmodel.Apply alone (no NATS) on PostgreSQL:
// DSYNC_BENCH_EVENTS events of the rebuild benchmark's mix, in
// transactions of 4,000.
func BenchmarkApply(b *testing.B) {
	n := benchEnv(b, "DSYNC_BENCH_EVENTS", 5_000)
	f := storetest.NewFixtures()
	org := f.Organization("Bench")
	dir := f.Directory(org.GetId(), "Bench")
	evs := []*dsyncv1.Event{
		f.OrganizationEvent(dsyncv1.EventType_EVENT_TYPE_ORGANIZATION_CREATED, org),
		f.DirectoryEvent(dsyncv1.EventType_EVENT_TYPE_DIRECTORY_ACTIVATED, dir),
	}
	var users []*dsyncv1.User
	var groups []*dsyncv1.Group
	for i := 0; len(evs) < n; i++ {
		switch {
		case i%20 == 0 || len(groups) == 0:
			g := f.Group(dir, fmt.Sprintf("group %d", i))
			groups = append(groups, g)
			evs = append(evs, f.GroupEvent(dsyncv1.EventType_EVENT_TYPE_GROUP_CREATED, g))
		case i%20 < 13 || len(users) == 0:
			u := f.User(dir, fmt.Sprintf("user%07d@bench.example", i))
			users = append(users, u)
			evs = append(evs, f.UserEvent(dsyncv1.EventType_EVENT_TYPE_USER_CREATED, u))
		default:
			evs = append(evs, f.MembershipEvent(dsyncv1.EventType_EVENT_TYPE_GROUP_USER_ADDED, groups[(i*7)%len(groups)], users[(i*13)%len(users)]))
		}
	}
	recs := storetest.Records(1, evs...)
	for b.Loop() {
		b.StopTimer()
		s, err := Open(context.Background(), pgtest.NewDatabase(b))
		require.NoError(b, err)
		b.StartTimer()
		t0 := time.Now()
		for lo := 0; lo < len(recs); lo += 4000 {
			_, err := readmodel.Apply(context.Background(), s, recs[lo:min(lo+4000, len(recs))])
			require.NoError(b, err)
		}
		b.ReportMetric(float64(len(recs))/time.Since(t0).Seconds(), "events/s")
		b.StopTimer()
		require.NoError(b, s.Close())
		b.StartTimer()
	}
}
