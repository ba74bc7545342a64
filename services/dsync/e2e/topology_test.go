package e2e_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dsync-dev/dsync/pkg/pgtest"
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

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

// process is a child process whose output is kept for failure reports.
type process struct {
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
}

func startProcess(t *testing.T, name string, env []string, bin string, args ...string) *process {
	t.Helper()
	p := &process{name: name, out: &syncBuffer{}}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	require.NoError(t, p.cmd.Start(), name)
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- p.cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil && !t.Failed() {
				t.Errorf("%s exited badly after SIGTERM: %v\n%s", name, err, p.out.String())
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

func waitHealthy(t *testing.T, url string, procs ...*process) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		for _, p := range procs {
			if p.cmd.ProcessState != nil {
				t.Fatalf("%s exited:\n%s", p.name, p.out.String())
			}
		}
		time.Sleep(100 * time.Millisecond) //nolint:forbidigo // polling a child process
	}
	t.Fatalf("%s not healthy within 60s", url)
}

// TestProductionTopology runs the scenario against each service in its own
// process, a standalone nats-server and PostgreSQL.
func TestProductionTopology(t *testing.T) {
	dsync, natsServer := binaries(t)
	pgURL := pgtest.NewDatabase(t)

	natsAddr := freeAddr(t)
	_, natsPort, _ := net.SplitHostPort(natsAddr)
	nats := startProcess(t, "nats-server", nil, natsServer,
		"-a", "127.0.0.1", "-p", natsPort, "-js", "-sd", t.TempDir(), "--server_name", "e2e")
	natsURL := "nats://" + natsAddr
	waitTCP(t, natsAddr)

	projectorGRPC, dispatcherGRPC := freeAddr(t), freeAddr(t)
	gatewayHTTP, projectorHTTP, dispatcherHTTP := freeAddr(t), freeAddr(t), freeAddr(t)
	apiKey := "sk_e2e_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	common := []string{
		"DSYNC_NATS_URL=" + natsURL,
		"DSYNC_POSTGRES_URL=" + pgURL,
		"DSYNC_DATA_DIR=" + t.TempDir(),
		"DSYNC_LOG_LEVEL=warn",
	}
	projector := startProcess(t, "projector", append(common,
		"DSYNC_HTTP_ADDR="+projectorHTTP, "DSYNC_PROJECTOR_GRPC_ADDR="+projectorGRPC),
		dsync, "serve", "--target=projector")
	dispatcher := startProcess(t, "dispatcher", append(common,
		"DSYNC_HTTP_ADDR="+dispatcherHTTP, "DSYNC_DISPATCHER_GRPC_ADDR="+dispatcherGRPC,
		"DSYNC_ALLOW_PRIVATE_WEBHOOKS=true"),
		dsync, "serve", "--target=dispatcher")
	waitHealthy(t, "http://"+projectorHTTP+"/healthz", nats, projector)
	waitHealthy(t, "http://"+dispatcherHTTP+"/healthz", nats, dispatcher)
	gateway := startProcess(t, "gateway", append(common,
		"DSYNC_HTTP_ADDR="+gatewayHTTP, "DSYNC_API_KEY="+apiKey,
		"DSYNC_PROJECTOR_URL="+projectorGRPC, "DSYNC_DISPATCHER_URL="+dispatcherGRPC),
		dsync, "serve", "--target=gateway")
	waitHealthy(t, "http://"+gatewayHTTP+"/healthz", nats, gateway)

	runScenario(t, "http://"+gatewayHTTP, apiKey)
}

func waitTCP(t *testing.T, addr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		if err == nil {
			conn.Close()
			return
		}
		time.Sleep(50 * time.Millisecond) //nolint:forbidigo // polling a child process
	}
	t.Fatalf("%s did not accept connections", addr)
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
