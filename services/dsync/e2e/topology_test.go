package e2e_test

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/dsync-dev/dsync/pkg/grpcx"
	"github.com/dsync-dev/dsync/pkg/pgtest"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds bin/dsync and a standalone nats-server (from the
// nats-server module this module already requires) once per test binary.
func binaries(t *testing.T) (dsync, natsServer string) {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "dsync-e2e-bin-")
		if buildErr != nil {
			return
		}
		for _, pkg := range []struct{ out, path string }{
			{"dsync", "github.com/dsync-dev/dsync/services/dsync/cmd/dsync"},
			{"nats-server", "github.com/nats-io/nats-server/v2"},
		} {
			cmd := exec.Command(goBinary(), "build", "-o", filepath.Join(binDir, pkg.out), pkg.path)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Run(); err != nil {
				buildErr = fmt.Errorf("go build %s: %w\n%s", pkg.path, err, out.String())
				return
			}
		}
	})
	require.NoError(t, buildErr)
	return filepath.Join(binDir, "dsync"), filepath.Join(binDir, "nats-server")
}

func goBinary() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// process is a child process whose output is kept for failure reports.
type process struct {
	name    string
	cmd     *exec.Cmd
	out     *syncBuffer
	exited  chan struct{}
	waitErr error
}

func startProcess(t *testing.T, name string, env []string, bin string, args ...string) *process {
	t.Helper()
	p := &process{name: name, out: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	require.NoError(t, p.cmd.Start(), name)
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
			if p.waitErr != nil && !t.Failed() {
				t.Errorf("%s exited badly after SIGTERM: %v\n%s", name, p.waitErr, p.out.String())
			}
		case <-time.After(15 * time.Second):
			_ = p.cmd.Process.Kill()
			t.Errorf("%s did not stop within 15s of SIGTERM\n%s", name, p.out.String())
		}
		if t.Failed() {
			t.Logf("--- output of %s ---\n%s", name, p.out.String())
		}
	})
	return p
}

// announced waits until p prints a line matching re and returns its first
// group. Services listen on port 0 and announce where they listen, so no
// port is picked by the test and taken by someone else before use.
func (p *process) announced(t *testing.T, re *regexp.Regexp) string {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		if m := re.FindStringSubmatch(p.out.String()); m != nil {
			return m[1]
		}
		select {
		case <-p.exited:
			t.Fatalf("%s exited (%v) before announcing %s:\n%s", p.name, p.waitErr, re, p.out.String())
		case <-deadline:
			t.Fatalf("%s did not announce %s within 60s:\n%s", p.name, re, p.out.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

var (
	natsListening = regexp.MustCompile(`Listening for client connections on (\S+)`)
	healthURL     = regexp.MustCompile(`Health\s+(http://\S+)/healthz`)
	restURL       = regexp.MustCompile(`Dashboard / REST API\s+(http://\S+)`)
	directoryGRPC = regexp.MustCompile(`DirectoryService gRPC\s+(\S+)`)
	webhookGRPC   = regexp.MustCompile(`WebhookService gRPC\s+(\S+)`)
)

func waitHealthy(t *testing.T, url string) {
	t.Helper()
	require.Eventually(t, func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 30*time.Second, 50*time.Millisecond, "%s healthy", url)
}

// TestProductionTopology runs the scenario against each service in its own
// process, a standalone nats-server and PostgreSQL.
func TestProductionTopology(t *testing.T) {
	dsync, natsServer := binaries(t)
	pgURL := pgtest.NewDatabase(t)

	nats := startProcess(t, "nats-server", nil, natsServer,
		"-a", "127.0.0.1", "-p", "-1", "-js", "-sd", t.TempDir(), "--server_name", "e2e")
	natsURL := "nats://" + nats.announced(t, natsListening)

	apiKey := "sk_e2e_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	internalToken := "it_e2e_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	common := []string{
		"DSYNC_INTERNAL_TOKEN=" + internalToken,
		"DSYNC_NATS_URL=" + natsURL,
		"DSYNC_POSTGRES_URL=" + pgURL,
		"DSYNC_DATA_DIR=" + t.TempDir(),
		"DSYNC_LOG_LEVEL=warn",
		"DSYNC_HTTP_ADDR=127.0.0.1:0",
		"DSYNC_PROJECTOR_GRPC_ADDR=127.0.0.1:0",
		"DSYNC_DISPATCHER_GRPC_ADDR=127.0.0.1:0",
	}
	projector := startProcess(t, "projector", common, dsync, "serve", "--target=projector")
	dispatcher := startProcess(t, "dispatcher", append(common, "DSYNC_ALLOW_PRIVATE_WEBHOOKS=true"),
		dsync, "serve", "--target=dispatcher")
	waitHealthy(t, projector.announced(t, healthURL)+"/healthz")
	waitHealthy(t, dispatcher.announced(t, healthURL)+"/healthz")
	projectorGRPC, dispatcherGRPC := projector.announced(t, directoryGRPC), dispatcher.announced(t, webhookGRPC)
	gateway := startProcess(t, "gateway", append(common, "DSYNC_API_KEY="+apiKey,
		"DSYNC_PROJECTOR_URL="+projectorGRPC,
		"DSYNC_DISPATCHER_URL="+dispatcherGRPC),
		dsync, "serve", "--target=gateway")
	gatewayURL := gateway.announced(t, restURL)
	waitHealthy(t, gatewayURL+"/healthz")

	runScenario(t, gatewayURL, apiKey)
	requireInternalToken(t, projectorGRPC, dispatcherGRPC, internalToken)
}

// requireInternalToken checks that the gRPC services, which the gateway
// reached with the token throughout the scenario, refuse callers without it.
func requireInternalToken(t *testing.T, projectorAddr, dispatcherAddr, token string) {
	t.Helper()
	dial := func(addr string, opts ...grpc.DialOption) *grpc.ClientConn {
		conn, err := grpcx.Dial(addr, opts...)
		require.NoError(t, err)
		t.Cleanup(func() { _ = conn.Close() })
		return conn
	}
	_, err := dsyncv1.NewDirectoryServiceClient(dial(projectorAddr)).GetProjectionStatus(t.Context(), &dsyncv1.GetProjectionStatusRequest{})
	require.Equal(t, codes.Unauthenticated, status.Code(err), "projector without the token: %v", err)
	_, err = dsyncv1.NewWebhookServiceClient(dial(dispatcherAddr)).ListEndpoints(t.Context(), &dsyncv1.ListEndpointsRequest{})
	require.Equal(t, codes.Unauthenticated, status.Code(err), "dispatcher without the token: %v", err)
	_, err = dsyncv1.NewDirectoryServiceClient(dial(projectorAddr, grpcx.WithBearer(token))).GetProjectionStatus(t.Context(), &dsyncv1.GetProjectionStatusRequest{})
	require.NoError(t, err, "projector with the token")
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
