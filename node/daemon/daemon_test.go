package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slapnode/slapnode/node/supervisor"
)

// TestMain lets the test binary act as `slapnode node run --root ROOT`, so
// that Ensure can start a real daemon process without building the CLI.
func TestMain(m *testing.M) {
	if os.Getenv("SLAPNODE_DAEMON_TEST_HELPER") == "1" && len(os.Args) == 5 && os.Args[1] == "node" && os.Args[2] == "run" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		err := Serve(ctx, os.Args[4], Config{})
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "slapnode node run:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const deadline = 60 * time.Second

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out after %s waiting for %s", deadline, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i > 0 && len(b) > i+2 && b[i+2] != 'Z'
}

func sleeper(dir, name string) supervisor.ServiceSpec {
	return supervisor.ServiceSpec{Name: name, Command: []string{"/bin/sh", "-c", "exec sleep 1000"}, Dir: dir, Watch: true, StopGrace: 5 * time.Second}
}

// serveInProcess runs Serve in a goroutine and returns a connected client.
// The returned function waits for Serve to return and gives its error.
func serveInProcess(t *testing.T, root string) (*Client, func() error) {
	t.Helper()
	return serveWith(t, root, Config{})
}

// testLogger sends the daemon's records to the test's output.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// serveWith is serveInProcess with a configuration (its Ready and, when
// unset, Logger are the test's).
func serveWith(t *testing.T, root string, cfg Config) (*Client, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	cfg.Ready = func() { close(ready) }
	go func() { done <- Serve(ctx, root, cfg) }()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("Serve: %v", err)
	}
	var result error
	finished := false
	wait := func() error {
		if !finished {
			select {
			case result = <-done:
				finished = true
			case <-time.After(deadline):
				t.Errorf("Serve did not return")
			}
		}
		return result
	}
	t.Cleanup(func() { cancel(); wait() })
	c, err := Dial(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, wait
}

func TestServeAndClient(t *testing.T) {
	root, dir := t.TempDir(), t.TempDir()
	c, _ := serveInProcess(t, root)
	ctx := context.Background()

	fi, err := os.Stat(SocketPath(root))
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("socket %s: %v, mode %v; want a 0600 socket", SocketPath(root), err, fi.Mode())
	}
	if fi.Sys().(*syscall.Stat_t).Uid != uint32(os.Geteuid()) {
		t.Errorf("socket not owned by the daemon user")
	}
	if b, _ := os.ReadFile(PidPath(root)); strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
		t.Errorf("pidfile holds %q", b)
	}

	ch, err := c.Apply(ctx, "p1", []supervisor.ServiceSpec{sleeper(dir, "a"), sleeper(dir, "b")})
	if err != nil || len(ch.Started) != 2 {
		t.Fatalf("Apply: %+v %v", ch, err)
	}
	var st []supervisor.ServiceStatus
	waitFor(t, "both services running", func() bool {
		st, err = c.Status(ctx)
		return err == nil && len(st) == 2 && st[0].State == supervisor.StateRunning && st[1].State == supervisor.StateRunning
	})
	if err := c.Stop(ctx, "p1", "a"); err != nil {
		t.Fatal(err)
	}
	if alive(st[0].Pid) {
		t.Errorf("a (pid %d) survived Stop", st[0].Pid)
	}
	if err := c.Restart(ctx, "p1", "b"); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx, "p1", ""); err != nil {
		t.Fatal(err)
	}
	paths, err := c.LogPaths(ctx, "p1", "b")
	if err != nil || len(paths) != 1 || paths[0] != filepath.Join(dir, "var", "log", "b.log") {
		t.Errorf("LogPaths: %v %v", paths, err)
	}
	// Errors keep their kind across the socket.
	if err := c.Start(ctx, "nope", ""); !errors.Is(err, supervisor.ErrNotFound) {
		t.Errorf("unknown partition: %v", err)
	}
	if _, err := c.Apply(ctx, "p1", []supervisor.ServiceSpec{{Name: "x"}}); !errors.Is(err, supervisor.ErrSpec) || !strings.Contains(err.Error(), "no command") {
		t.Errorf("invalid spec: %v", err)
	}
	if err := c.StopPartition(ctx, "p1"); err != nil {
		t.Fatal(err)
	}
	if err := c.Remove(ctx, "p1"); err != nil {
		t.Fatal(err)
	}
	if st, _ := c.Status(ctx); len(st) != 0 {
		t.Errorf("status after Remove: %+v", st)
	}
}

func TestSecondDaemonRefused(t *testing.T) {
	root := t.TempDir()
	serveInProcess(t, root)
	err := Serve(context.Background(), root, Config{Logger: testLogger(t)})
	if !errors.Is(err, ErrRunning) || !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) || !strings.Contains(err.Error(), "slapnode node stop") {
		t.Fatalf("second Serve: %v", err)
	}
	// The first one still answers.
	if _, err := Dial(root); err != nil {
		t.Fatalf("first daemon broken by the refused second: %v", err)
	}
}

func TestDialWithoutDaemon(t *testing.T) {
	root := t.TempDir()
	if _, err := Dial(root); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Dial of an empty root: %v", err)
	}
	// A stale socket file left by a killed daemon is not a daemon either.
	if err := os.MkdirAll(filepath.Dir(SocketPath(root)), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(SocketPath(root), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Dial(root); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Dial with a stale socket file: %v", err)
	}
}

func TestShutdownStopsServices(t *testing.T) {
	root, dir := t.TempDir(), t.TempDir()
	c, wait := serveInProcess(t, root)
	ctx := context.Background()
	if _, err := c.Apply(ctx, "p1", []supervisor.ServiceSpec{sleeper(dir, "a")}); err != nil {
		t.Fatal(err)
	}
	var pid int
	waitFor(t, "a running", func() bool {
		st, _ := c.Status(ctx)
		if len(st) == 1 && st[0].State == supervisor.StateRunning {
			pid = st[0].Pid
		}
		return pid != 0
	})
	sctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	if err := c.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	if err := wait(); err != nil {
		t.Fatalf("Serve returned %v", err)
	}
	if alive(pid) {
		t.Errorf("service pid %d survived the daemon shutdown", pid)
	}
	for _, p := range []string{SocketPath(root), PidPath(root)} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind: %v", p, err)
		}
	}
	// The desired state is kept for the next daemon.
	if _, err := os.Stat(filepath.Join(StateDir(root), "partitions", "p1.json")); err != nil {
		t.Errorf("desired state lost: %v", err)
	}
}

// TestKilledDaemonRestores runs a real daemon process (this test binary,
// see TestMain), kills it with SIGKILL and checks that the next daemon
// brings the services back, with no process of the old generation left.
func TestKilledDaemonRestores(t *testing.T) {
	t.Setenv("SLAPNODE_DAEMON_TEST_HELPER", "1")
	root, dir := t.TempDir(), t.TempDir()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(LogPath(root))
			t.Logf("daemon log:\n%s", b)
		}
	})
	c, err := Ensure(root, exe)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if c, err := Dial(root); err == nil {
			sctx, cancel := context.WithTimeout(ctx, deadline)
			defer cancel()
			if err := c.Shutdown(sctx); err != nil {
				t.Errorf("final shutdown: %v", err)
			}
		}
	}()
	info, err := c.Info(ctx)
	if err != nil || info.Pid == os.Getpid() {
		t.Fatalf("Info: %+v %v: want a separate daemon process", info, err)
	}
	// Ensure again: same daemon, no second one.
	c2, err := Ensure(root, exe)
	if err != nil {
		t.Fatal(err)
	}
	if i2, _ := c2.Info(ctx); i2.Pid != info.Pid {
		t.Fatalf("second Ensure reached pid %d, want %d", i2.Pid, info.Pid)
	}
	// A service with a grandchild, to check that no process of the killed
	// generation survives.
	sp := sleeper(dir, "web")
	sp.Command = []string{"/bin/sh", "-c", "sleep 1000 & echo $! >> pids; echo $$ >> pids; wait"}
	if _, err := c.Apply(ctx, "p1", []supervisor.ServiceSpec{sp}); err != nil {
		t.Fatal(err)
	}
	var old []int
	waitFor(t, "the service's pids", func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "pids"))
		old = old[:0]
		for _, f := range strings.Fields(string(b)) {
			n, _ := strconv.Atoi(f)
			old = append(old, n)
		}
		return len(old) == 2
	})
	if err := syscall.Kill(info.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the daemon to die", func() bool { return !alive(info.Pid) })

	c3, err := Ensure(root, exe)
	if err != nil {
		t.Fatal(err)
	}
	i3, _ := c3.Info(ctx)
	if i3.Pid == info.Pid {
		t.Fatalf("Ensure reached the killed daemon")
	}
	waitFor(t, "the service to run again under the new daemon", func() bool {
		st, err := c3.Status(ctx)
		return err == nil && len(st) == 1 && st[0].State == supervisor.StateRunning && st[0].Pid != old[1]
	})
	waitFor(t, "the old generation to be gone", func() bool { return !alive(old[0]) && !alive(old[1]) })
	if b, _ := os.ReadFile(LogPath(root)); !strings.Contains(string(b), "serving node root") {
		t.Errorf("daemon log %s:\n%s", LogPath(root), b)
	}
}

// TestConcurrentEnsureStartsOneDaemon: commands racing to start the daemon
// of one root all end up talking to the same daemon.
func TestConcurrentEnsureStartsOneDaemon(t *testing.T) {
	t.Setenv("SLAPNODE_DAEMON_TEST_HELPER", "1")
	root := t.TempDir()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	pids := make(chan int, 4)
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			c, err := Ensure(root, exe)
			if err != nil {
				errs <- err
				return
			}
			i, err := c.Info(ctx)
			if err != nil {
				errs <- err
				return
			}
			pids <- i.Pid
		}()
	}
	var got []int
	for range 4 {
		select {
		case err := <-errs:
			t.Error(err)
		case p := <-pids:
			got = append(got, p)
		}
	}
	for _, p := range got {
		if p != got[0] {
			t.Errorf("Ensure reached daemons %v, want one", got)
			break
		}
	}
	if c, err := Dial(root); err == nil {
		sctx, cancel := context.WithTimeout(ctx, deadline)
		defer cancel()
		if err := c.Shutdown(sctx); err != nil {
			t.Error(err)
		}
	}
	b, _ := os.ReadFile(LogPath(root))
	if n := strings.Count(string(b), "serving node root"); n != 1 {
		t.Errorf("%d daemons served the root:\n%s", n, b)
	}
}

// TestSocketRefusesOtherUsers: the 0600 socket of a root daemon cannot be
// used by another user, and the error says why.
func TestSocketRefusesOtherUsers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to act as another user")
	}
	root := t.TempDir()
	serveInProcess(t, root)
	// Let "nobody" traverse to the socket, so that only its mode refuses.
	top := filepath.Dir(root) // the test's own temporary directory
	for d := filepath.Dir(SocketPath(root)); strings.HasPrefix(d, top); d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(d, fi.Mode().Perm()|0o001); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A copy of this test binary that "nobody" may run.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	binDir := t.TempDir()
	for _, d := range []string{filepath.Dir(binDir), binDir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	exe := filepath.Join(binDir, "daemon.test")
	if err := os.WriteFile(exe, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestDialAsOtherUser$")
	cmd.Dir = binDir
	cmd.Env = append(os.Environ(), "SLAPNODE_DIAL_ROOT="+root)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "refused as expected") {
		t.Errorf("dial as nobody: %v\n%s", err, out)
	}
}

// TestDialAsOtherUser is the other side of TestSocketRefusesOtherUsers.
func TestDialAsOtherUser(t *testing.T) {
	root := os.Getenv("SLAPNODE_DIAL_ROOT")
	if root == "" {
		t.Skip("run by TestSocketRefusesOtherUsers")
	}
	_, err := Dial(root)
	if err == nil || !errors.Is(err, syscall.EACCES) || !strings.Contains(err.Error(), "another user") {
		t.Fatalf("Dial as uid %d: %v", os.Getuid(), err)
	}
	fmt.Println("refused as expected:", err)
}
