package gateway_test

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
)

// fakeProjector is a small in-memory DirectoryService: the real projector
// is tested on its own; here only the gateway's side of the contract is.
type fakeProjector struct {
	dsyncv1.UnimplementedDirectoryServiceServer
	mu          sync.Mutex
	directories []*dsyncv1.Directory
	users       map[string]*dsyncv1.User
	lastMinSeq  uint64
	lastPage    *dsyncv1.Page
	// notReady makes every call answer FAILED_PRECONDITION.
	notReady bool
}

func (f *fakeProjector) record(minSeq uint64, page *dsyncv1.Page) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastMinSeq, f.lastPage = minSeq, page
	if f.notReady {
		return status.Error(codes.FailedPrecondition, "projection behind")
	}
	return nil
}

func (f *fakeProjector) ListDirectories(_ context.Context, req *dsyncv1.ListDirectoriesRequest) (*dsyncv1.ListDirectoriesResponse, error) {
	if err := f.record(req.GetMinSequence(), req.GetPage()); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	resp := &dsyncv1.ListDirectoriesResponse{PageInfo: &dsyncv1.PageInfo{}}
	for _, d := range f.directories {
		if req.GetOrganizationId() == "" || d.GetOrganizationId() == req.GetOrganizationId() {
			resp.Directories = append(resp.Directories, d)
		}
	}
	if len(resp.Directories) > 0 {
		resp.PageInfo.After = resp.Directories[len(resp.Directories)-1].GetId()
	}
	return resp, nil
}

func (f *fakeProjector) GetDirectory(_ context.Context, req *dsyncv1.GetDirectoryRequest) (*dsyncv1.GetDirectoryResponse, error) {
	if err := f.record(req.GetMinSequence(), nil); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, d := range f.directories {
		if d.GetId() == req.GetId() {
			return &dsyncv1.GetDirectoryResponse{Directory: d}, nil
		}
	}
	return nil, status.Errorf(codes.NotFound, "directory %s not found", req.GetId())
}

func (f *fakeProjector) GetUser(_ context.Context, req *dsyncv1.GetUserRequest) (*dsyncv1.GetUserResponse, error) {
	if err := f.record(req.GetMinSequence(), nil); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if u, ok := f.users[req.GetId()]; ok {
		return &dsyncv1.GetUserResponse{User: u}, nil
	}
	return nil, status.Errorf(codes.NotFound, "user %s not found", req.GetId())
}

func (f *fakeProjector) ListUsers(_ context.Context, req *dsyncv1.ListUsersRequest) (*dsyncv1.ListUsersResponse, error) {
	if err := f.record(req.GetMinSequence(), req.GetPage()); err != nil {
		return nil, err
	}
	if strings.HasSuffix(req.GetPage().GetAfter(), "bad") {
		return nil, status.Error(codes.InvalidArgument, "after is not a user id")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	resp := &dsyncv1.ListUsersResponse{}
	for _, u := range f.users {
		if u.GetDirectoryId() == req.GetDirectoryId() {
			resp.Users = append(resp.Users, u)
		}
	}
	return resp, nil
}

// ListGroupsForUsers answers every user with no groups: the fake keeps no
// memberships. It does not record its request: the tests check the
// list call before it.
func (f *fakeProjector) ListGroupsForUsers(_ context.Context, req *dsyncv1.ListGroupsForUsersRequest) (*dsyncv1.ListGroupsForUsersResponse, error) {
	f.mu.Lock()
	notReady := f.notReady
	f.mu.Unlock()
	if notReady {
		return nil, status.Error(codes.FailedPrecondition, "projection behind")
	}
	resp := &dsyncv1.ListGroupsForUsersResponse{GroupsByUser: map[string]*dsyncv1.UserGroups{}}
	for _, id := range req.GetUserIds() {
		resp.GroupsByUser[id] = &dsyncv1.UserGroups{}
	}
	return resp, nil
}

// fakeDispatcher is a small in-memory WebhookService.
type fakeDispatcher struct {
	dsyncv1.UnimplementedWebhookServiceServer
	mu        sync.Mutex
	endpoints []*dsyncv1.Endpoint
}

func (f *fakeDispatcher) CreateEndpoint(_ context.Context, req *dsyncv1.CreateEndpointRequest) (*dsyncv1.CreateEndpointResponse, error) {
	if strings.Contains(req.GetUrl(), "10.0.0.1") {
		return nil, status.Error(codes.InvalidArgument, "url resolves to a private address")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	now := timestamppb.Now()
	e := &dsyncv1.Endpoint{
		Id: "we_01JZ0000000000000000000000", Url: req.GetUrl(), Events: req.GetEvents(),
		State: dsyncv1.EndpointState_ENDPOINT_STATE_ENABLED, Secret: "whsec_c2VjcmV0",
		CreatedAt: now, UpdatedAt: now,
	}
	f.endpoints = append(f.endpoints, e)
	return &dsyncv1.CreateEndpointResponse{Endpoint: e}, nil
}

func (f *fakeDispatcher) ListEndpoints(context.Context, *dsyncv1.ListEndpointsRequest) (*dsyncv1.ListEndpointsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &dsyncv1.ListEndpointsResponse{Endpoints: f.endpoints, PageInfo: &dsyncv1.PageInfo{}}, nil
}

// serveGRPC registers services on a real gRPC server on a loopback port
// and returns a client connection to it and its health server.
func serveGRPC(t *testing.T, register func(*grpc.Server)) (*grpc.ClientConn, *health.Server) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	hs := health.NewServer()
	grpc_health_v1.RegisterHealthServer(srv, hs)
	register(srv)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return conn, hs
}
