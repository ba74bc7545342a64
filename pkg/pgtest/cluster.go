package pgtest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// errNoBinaries is returned when no PostgreSQL server binaries are installed.
var errNoBinaries = errors.New("PostgreSQL server binaries not found; run `make test`, which installs them (apt-get install postgresql) as root")

// startAttempts bounds retries when the chosen free port is taken before the
// server binds it.
const startAttempts = 3

// cluster is a running throwaway PostgreSQL server.
type cluster struct {
	url    string // admin URL: user postgres, database postgres
	bindir string
	dir    string // temp dir holding data, socket and log
	data   string
	runAs  string // non-empty: run server commands as this user via runuser
}

// startCluster initializes and starts a cluster in a new temporary directory.
// It removes the directory if it fails.
func startCluster() (_ *cluster, err error) {
	bindir, err := findBindir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "dsync-pgtest-")
	if err != nil {
		return nil, fmt.Errorf("create temp dir: %w", err)
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(dir)
		}
	}()
	c := &cluster{bindir: bindir, dir: dir, data: filepath.Join(dir, "data")}
	sock := filepath.Join(dir, "sock")
	if err := os.Mkdir(sock, 0o700); err != nil {
		return nil, fmt.Errorf("create socket dir: %w", err)
	}
	// PostgreSQL refuses to run as root.
	if os.Geteuid() == 0 {
		c.runAs = "postgres"
		if err := chownTree(dir, c.runAs); err != nil {
			return nil, err
		}
	}

	if out, err := c.command("initdb", "-D", c.data, "-A", "trust", "-U", "postgres",
		"--no-sync", "-E", "UTF8", "--locale=C").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %w: %s", err, bytes.TrimSpace(out))
	}

	logfile := filepath.Join(dir, "server.log")
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off "+
			"-c synchronous_commit=off -c full_page_writes=off -c max_connections=200", port, sock)
		out, err := c.command("pg_ctl", "-w", "-t", "60", "-D", c.data, "-l", logfile, "-o", opts, "start").CombinedOutput()
		if err == nil {
			c.url = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
			return c, nil
		}
		if attempt == startAttempts {
			return nil, fmt.Errorf("pg_ctl start: %w: %s\nserver log tail:\n%s",
				err, bytes.TrimSpace(out), logTail(logfile, 30))
		}
	}
}

// stop stops the server immediately and removes its directory.
func (c *cluster) stop() error {
	var errs []error
	if out, err := c.command("pg_ctl", "stop", "-D", c.data, "-m", "immediate", "-w").CombinedOutput(); err != nil {
		errs = append(errs, fmt.Errorf("pg_ctl stop: %w: %s", err, bytes.TrimSpace(out)))
	}
	if err := os.RemoveAll(c.dir); err != nil {
		errs = append(errs, fmt.Errorf("remove cluster dir: %w", err))
	}
	return errors.Join(errs...)
}

// command builds an exec.Cmd for a server binary, run as c.runAs if set.
func (c *cluster) command(name string, args ...string) *exec.Cmd {
	bin := filepath.Join(c.bindir, name)
	var cmd *exec.Cmd
	if c.runAs != "" {
		cmd = exec.Command("runuser", append([]string{"-u", c.runAs, "--", bin}, args...)...)
	} else {
		cmd = exec.Command(bin, args...)
	}
	cmd.Dir = c.dir // the test's working directory may be unreadable to runAs
	return cmd
}

// findBindir returns a directory holding initdb and pg_ctl: pg_config
// --bindir if that has them, else the highest /usr/lib/postgresql/*/bin.
func findBindir() (string, error) {
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		if dir := strings.TrimSpace(string(out)); hasServer(dir) {
			return dir, nil
		}
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin") // the pattern is valid
	var dirs []string
	for _, m := range matches {
		if hasServer(m) {
			dirs = append(dirs, m)
		}
	}
	if len(dirs) == 0 {
		return "", errNoBinaries
	}
	version := func(dir string) float64 {
		v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(dir)), 64)
		return v
	}
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	return dirs[0], nil
}

func hasServer(dir string) bool {
	for _, bin := range []string{"initdb", "pg_ctl", "postgres"} {
		if _, err := os.Stat(filepath.Join(dir, bin)); err != nil {
			return false
		}
	}
	return true
}

// chownTree gives dir and everything under it to the named system user.
func chownTree(dir, username string) error {
	u, err := user.Lookup(username)
	if err != nil {
		return fmt.Errorf("look up user %s (needed to run PostgreSQL as root): %w", username, err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return fmt.Errorf("parse uid of %s: %w", username, err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return fmt.Errorf("parse gid of %s: %w", username, err)
	}
	err = filepath.WalkDir(dir, func(path string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, uid, gid)
	})
	if err != nil {
		return fmt.Errorf("chown %s to %s: %w", dir, username, err)
	}
	return nil
}

// freePort asks the kernel for a free TCP port on 127.0.0.1.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("find free port: %w", err)
	}
	return port, nil
}

// logTail returns the last n lines of the server log, or why it can't.
func logTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no server log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
