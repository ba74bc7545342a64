package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/dsync-dev/dsync/pkg/event"
	"github.com/dsync-dev/dsync/pkg/natsx/natstest"
	"github.com/dsync-dev/dsync/pkg/scim/filter"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
	"github.com/dsync-dev/dsync/services/gateway/internal/domain"
	"github.com/dsync-dev/dsync/services/gateway/internal/eventlog"
	"github.com/dsync-dev/dsync/services/gateway/internal/registry"
	"github.com/dsync-dev/dsync/services/gateway/internal/scim"
)

const scimTestAPIKey = "sk_scim_test"

// streamReadModel answers the SCIM searches of DirectoryService straight
// from the event stream (the last event of each user and group subject),
// evaluating filters with the same filter package the projector uses. It
// stands in for the projector, which is tested on its own; the gateway's
// side of the contract (queries, min_sequence, rendering) is what these
// tests check. Other methods are not called by SCIM handlers.
type streamReadModel struct {
	dsyncv1.DirectoryServiceClient
	log *eventlog.JetStream
	// memberReads counts SearchGroups calls that asked for member ids.
	memberReads atomic.Int64
	// userGroupReads counts ListGroupsForUsers calls.
	userGroupReads atomic.Int64
}

func (m *streamReadModel) liveEntries(ctx context.Context, filterSubject string, deleted dsyncv1.EventType) ([]domain.Entry, error) {
	entries, err := m.log.LastPerSubject(ctx, filterSubject)
	if err != nil {
		return nil, err
	}
	var out []domain.Entry
	for _, e := range entries {
		if e.Event.GetType() != deleted {
			out = append(out, e)
		}
	}
	return out, nil
}

func (m *streamReadModel) live(ctx context.Context, filterSubject string, deleted dsyncv1.EventType) ([]*dsyncv1.Event, error) {
	entries, err := m.liveEntries(ctx, filterSubject, deleted)
	if err != nil {
		return nil, err
	}
	out := make([]*dsyncv1.Event, 0, len(entries))
	for _, e := range entries {
		out = append(out, e.Event)
	}
	return out, nil
}

// ListGroupsForUsers answers the groups of each user, in group id order,
// in one call; it is what SCIM user reads ask for their groups attribute.
func (m *streamReadModel) ListGroupsForUsers(ctx context.Context, req *dsyncv1.ListGroupsForUsersRequest, _ ...grpc.CallOption) (*dsyncv1.ListGroupsForUsersResponse, error) {
	m.userGroupReads.Add(1)
	if n := len(req.GetUserIds()); n == 0 || n > 200 {
		return nil, status.Errorf(codes.InvalidArgument, "user_ids must hold 1 to 200 ids, not %d", n)
	}
	entries, err := m.liveEntries(ctx, "dsync.ev.*.group.*", dsyncv1.EventType_EVENT_TYPE_GROUP_DELETED)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(entries, func(a, b domain.Entry) int {
		return strings.Compare(a.Event.GetGroup().GetId(), b.Event.GetGroup().GetId())
	})
	resp := &dsyncv1.ListGroupsForUsersResponse{GroupsByUser: map[string]*dsyncv1.UserGroups{}}
	for _, id := range req.GetUserIds() {
		ug := &dsyncv1.UserGroups{}
		for _, e := range entries {
			g := e.Event.GetGroup()
			ev, _, err := m.log.Last(ctx, event.MemberSubject(g.GetDirectoryId(), g.GetId(), id))
			if err != nil {
				return nil, err
			}
			if ev.GetType() == dsyncv1.EventType_EVENT_TYPE_GROUP_USER_ADDED {
				ug.Groups = append(ug.Groups, &dsyncv1.GroupWithCount{Group: g, Version: e.Seq})
			}
		}
		resp.GroupsByUser[id] = ug
	}
	return resp, nil
}

func asMap(t any) map[string]any {
	data, _ := json.Marshal(t)
	var m map[string]any
	_ = json.Unmarshal(data, &m)
	return m
}

func page[T any](items []T, q *dsyncv1.ScimQuery) []T {
	start := max(int(q.GetStartIndex()), 1) - 1
	if start >= len(items) {
		return nil
	}
	return items[start:min(len(items), start+int(q.GetCount()))]
}

func (m *streamReadModel) SearchUsers(ctx context.Context, req *dsyncv1.SearchUsersRequest, _ ...grpc.CallOption) (*dsyncv1.SearchUsersResponse, error) {
	evs, err := m.liveEntries(ctx, "dsync.ev."+req.GetDirectoryId()+".user.*", dsyncv1.EventType_EVENT_TYPE_USER_DELETED)
	if err != nil {
		return nil, err
	}
	var expr filter.Expr
	if f := req.GetQuery().GetFilter(); f != "" {
		if expr, err = filter.Parse(f); err != nil {
			return nil, err
		}
	}
	var users []*dsyncv1.User
	versions := map[string]uint64{}
	for _, e := range evs {
		u := e.Event.GetUser()
		if expr == nil || filter.Match(expr, asMap(scim.RenderUser(u, 1, ""))) {
			users = append(users, u)
			versions[u.GetId()] = e.Seq
		}
	}
	slices.SortFunc(users, func(a, b *dsyncv1.User) int { return strings.Compare(a.GetId(), b.GetId()) })
	if strings.EqualFold(req.GetQuery().GetSortBy(), "userName") {
		slices.SortStableFunc(users, func(a, b *dsyncv1.User) int {
			return strings.Compare(strings.ToLower(a.GetUserName()), strings.ToLower(b.GetUserName()))
		})
	}
	if req.GetQuery().GetSortDescending() {
		slices.Reverse(users)
	}
	resp := &dsyncv1.SearchUsersResponse{Users: page(users, req.GetQuery()), TotalResults: int64(len(users))}
	for _, u := range resp.GetUsers() {
		resp.Versions = append(resp.Versions, versions[u.GetId()])
	}
	return resp, nil
}

func (m *streamReadModel) SearchGroups(ctx context.Context, req *dsyncv1.SearchGroupsRequest, _ ...grpc.CallOption) (*dsyncv1.SearchGroupsResponse, error) {
	evs, err := m.liveEntries(ctx, "dsync.ev."+req.GetDirectoryId()+".group.*", dsyncv1.EventType_EVENT_TYPE_GROUP_DELETED)
	if err != nil {
		return nil, err
	}
	var expr filter.Expr
	if f := req.GetQuery().GetFilter(); f != "" {
		if expr, err = filter.Parse(f); err != nil {
			return nil, err
		}
	}
	var groups []*dsyncv1.GroupWithMembers
	for _, e := range evs {
		g := e.Event.GetGroup()
		members, err := m.live(ctx, event.MemberSubject(req.GetDirectoryId(), g.GetId(), "*"), dsyncv1.EventType_EVENT_TYPE_GROUP_USER_REMOVED)
		if err != nil {
			return nil, err
		}
		var ids []string
		for _, mev := range members {
			ids = append(ids, mev.GetMembership().GetUserId())
		}
		slices.Sort(ids)
		rendered := scim.RenderGroup(g, 1, "").WithMembers(ids, func(string) string { return "" })
		if expr != nil && !filter.Match(expr, asMap(rendered)) {
			continue
		}
		gw := &dsyncv1.GroupWithMembers{Group: g, MemberCount: int64(len(ids)), Version: e.Seq}
		if req.GetIncludeMemberIds() {
			m.memberReads.Add(1)
			gw.MemberIds = ids
		}
		groups = append(groups, gw)
	}
	slices.SortFunc(groups, func(a, b *dsyncv1.GroupWithMembers) int {
		return strings.Compare(a.GetGroup().GetId(), b.GetGroup().GetId())
	})
	return &dsyncv1.SearchGroupsResponse{Groups: page(groups, req.GetQuery()), TotalResults: int64(len(groups))}, nil
}

// scimEnv is a gateway handler on a real JetStream server, served over a
// real HTTP listener.
type scimEnv struct {
	t      testing.TB
	srv    *httptest.Server
	stream jetstream.Stream
	model  *streamReadModel
}

func newSCIMEnv(t testing.TB) *scimEnv {
	t.Helper()
	ns := natstest.Run(t)
	js, stream := ns.JetStream(t)
	conn, err := grpc.NewClient("127.0.0.1:1", grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	ids := event.NewIDs()
	log := eventlog.New(js)
	model := &streamReadModel{log: log}
	e := &scimEnv{t: t, stream: stream, model: model}
	e.srv = httptest.NewUnstartedServer(nil)
	e.srv.Start()
	t.Cleanup(e.srv.Close)
	e.srv.Config.Handler = NewHandler(Deps{
		Logger:          slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
		NATS:            ns.Connect(t),
		JS:              js,
		Log:             log,
		IDs:             ids,
		SCIM:            scim.NewService(log, ids, e.srv.URL, nil),
		Registry:        registry.New(log, ids, nil),
		PublicURL:       e.srv.URL,
		APIKey:          scimTestAPIKey,
		Directories:     model,
		Webhooks:        dsyncv1.NewWebhookServiceClient(conn),
		DirectoryHealth: grpc_health_v1.NewHealthClient(conn),
		WebhookHealth:   grpc_health_v1.NewHealthClient(conn),
		MaxBodyBytes:    1 << 20,
	})
	return e
}

type scimResp struct {
	status int
	header http.Header
	body   []byte
}

func (r scimResp) obj(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.body, &m), string(r.body))
	return m
}

func (e *scimEnv) do(method, path, token, body string, header ...string) scimResp {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(e.t.Context(), method, e.srv.URL+path, rd)
	require.NoError(e.t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := e.srv.Client().Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	return scimResp{status: resp.StatusCode, header: resp.Header, body: data}
}

type testDir struct {
	id, token string
}

func (d testDir) path(p string) string { return "/scim/v2/" + d.id + p }

func (e *scimEnv) directory(typ string) testDir {
	e.t.Helper()
	org := e.do("POST", "/organizations", scimTestAPIKey, `{"name":"Acme","domains":["acme.com"]}`)
	require.Equal(e.t, 201, org.status, string(org.body))
	r := e.do("POST", "/directories", scimTestAPIKey, `{"organization_id":"`+org.obj(e.t)["id"].(string)+`","name":"IdP","type":"`+typ+`"}`)
	require.Equal(e.t, 201, r.status, string(r.body))
	m := r.obj(e.t)
	return testDir{id: m["id"].(string), token: m["scim"].(map[string]any)["bearer_token"].(string)}
}

// scim sends a SCIM request to the directory and checks the response's
// shape: an Error, a ListResponse, a resource or no content.
func (e *scimEnv) scim(d testDir, method, path, body string, header ...string) scimResp {
	e.t.Helper()
	r := e.do(method, d.path(path), d.token, body, header...)
	requireSCIMShape(e.t, r)
	return r
}

// requireSCIMShape checks a SCIM response against the message it must be.
func requireSCIMShape(t testing.TB, r scimResp) {
	t.Helper()
	switch {
	case r.status == http.StatusNoContent || r.status == http.StatusNotModified:
		require.Empty(t, r.body)
		return
	}
	require.Equal(t, "application/scim+json", r.header.Get("Content-Type"), string(r.body))
	m := r.obj(t)
	schemas, _ := m["schemas"].([]any)
	require.NotEmpty(t, schemas, string(r.body))
	switch {
	case r.status >= 400:
		require.Equal(t, []any{scim.SchemaError}, schemas)
		require.Equal(t, strconv.Itoa(r.status), m["status"], "status is a string equal to the HTTP status")
		require.NotEmpty(t, m["detail"])
	case schemas[0] == scim.SchemaListResp:
		for _, k := range []string{"totalResults", "startIndex", "itemsPerPage"} {
			v, ok := m[k].(float64)
			require.True(t, ok, "%s must be an integer: %s", k, r.body)
			require.Equal(t, float64(int64(v)), v)
		}
		res, ok := m["Resources"].([]any)
		require.True(t, ok, "Resources must be a list")
		require.Len(t, res, int(m["itemsPerPage"].(float64)))
	case schemas[0] == scim.SchemaUser || schemas[0] == scim.SchemaGroup:
		require.NotEmpty(t, m["id"])
		if meta, ok := m["meta"].(map[string]any); ok {
			require.Contains(t, []any{"User", "Group"}, meta["resourceType"])
			require.True(t, strings.HasPrefix(meta["location"].(string), "http"), "location is absolute")
		}
	}
}

// events returns the types of the fact events appended after seq, and the
// stream's last sequence.
func (e *scimEnv) events(after uint64) ([]string, uint64) {
	e.t.Helper()
	info, err := e.stream.Info(e.t.Context())
	require.NoError(e.t, err)
	var types []string
	for seq := after + 1; seq <= info.State.LastSeq; seq++ {
		msg, err := e.stream.GetMsg(e.t.Context(), seq)
		require.NoError(e.t, err)
		if strings.HasPrefix(msg.Subject, "dsync.idx.") {
			continue
		}
		ev, err := event.Decode(msg.Data)
		require.NoError(e.t, err)
		types = append(types, strings.TrimPrefix(ev.GetType().String(), "EVENT_TYPE_"))
	}
	return types, info.State.LastSeq
}

func (e *scimEnv) lastSeq() uint64 {
	_, seq := e.events(1 << 62)
	return seq
}

// GetUser answers a user by id from its subject in any directory.
func (m *streamReadModel) GetUser(ctx context.Context, req *dsyncv1.GetUserRequest, _ ...grpc.CallOption) (*dsyncv1.GetUserResponse, error) {
	evs, err := m.live(ctx, "dsync.ev.*.user."+req.GetId(), dsyncv1.EventType_EVENT_TYPE_USER_DELETED)
	if err != nil {
		return nil, err
	}
	if len(evs) == 0 {
		return nil, status.Error(codes.NotFound, "directory user "+req.GetId()+" not found")
	}
	return &dsyncv1.GetUserResponse{User: evs[0].GetUser()}, nil
}
