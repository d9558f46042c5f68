package supervisor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// deadline is generous: the machine running the tests may be loaded.
const deadline = 60 * time.Second

func newTestSup(t *testing.T, opts Options) *Supervisor {
	t.Helper()
	if opts.StateDir == "" {
		opts.StateDir = t.TempDir()
	}
	if opts.MinBackoff == 0 {
		opts.MinBackoff = 50 * time.Millisecond
	}
	if opts.MaxBackoff == 0 {
		opts.MaxBackoff = 400 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return s
}

// testLogger sends the supervisor's records to the test's output.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// syncBuffer is a bytes.Buffer written by the services' goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestExitsAreLogged: every exit of a service reaches the daemon's log with
// its exit code or signal and what the supervisor does next — restart with
// its delay, FATAL, nothing for a run-once program — and a stop says so.
func TestExitsAreLogged(t *testing.T) {
	dir := t.TempDir()
	var buf syncBuffer
	s := newTestSup(t, Options{MinBackoff: 50 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, MaxRetries: 1,
		Logger: slog.New(slog.NewJSONHandler(&buf, nil))})
	specs := []ServiceSpec{
		shSpec(dir, "crash", `exit 3`),
		shSpec(dir, "killed", `[ -e killed.done ] && exec sleep 600; touch killed.done; kill -9 $$`),
		{Name: "once", Command: []string{"/bin/sh", "-c", "exit 0"}, Dir: dir},
		shSpec(dir, "steady", `exec sleep 600`),
	}
	if _, err := s.Apply("p1", specs); err != nil {
		t.Fatal(err)
	}
	waitState(t, s, "p1", "crash", StateFatal)
	waitState(t, s, "p1", "once", StateExited)
	waitFor(t, "killed to be restarted", func() bool {
		st := statusOf(t, s, "p1", "killed")
		return st.State == StateRunning && st.Restarts == 1
	})
	waitState(t, s, "p1", "steady", StateRunning)
	if err := s.Stop(context.Background(), "p1", "steady"); err != nil {
		t.Fatal(err)
	}
	type record struct {
		Level, Msg, Partition, Service, Signal, Next, Reason string
		ExitCode                                             *int `json:"exit_code"`
		Pid                                                  int
	}
	var recs []record
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var r record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("not a JSON record: %q: %v", line, err)
		}
		recs = append(recs, r)
	}
	find := func(svc, level, msg, next string, ok func(record) bool) {
		t.Helper()
		for _, r := range recs {
			if r.Service == svc && r.Partition == "p1" && r.Level == level && r.Msg == msg && strings.HasPrefix(r.Next, next) && ok(r) {
				return
			}
		}
		t.Errorf("no %s %q record of %s with next %q in:\n%s", level, msg, svc, next, buf.String())
	}
	code := func(c int) func(record) bool {
		return func(r record) bool { return r.ExitCode != nil && *r.ExitCode == c && r.Signal == "" && r.Pid > 0 }
	}
	find("crash", "WARN", "service exited", "restarting in 50ms (failure 1 of at most 1)", code(3))
	find("crash", "WARN", "service exited", "not restarted: 2 consecutive failures", code(3))
	find("crash", "ERROR", "service is FATAL", "", func(r record) bool { return strings.Contains(r.Reason, "exit status 3") })
	find("killed", "WARN", "service exited", "restarting in", func(r record) bool { return r.Signal == "SIGKILL" && r.ExitCode == nil })
	find("once", "INFO", "service exited", "not restarted (runs once)", code(0))
	find("steady", "INFO", "service started", "", func(r record) bool { return r.Pid > 0 })
	find("steady", "INFO", "service stopped", "", func(r record) bool { return r.Pid > 0 })
}

func shSpec(dir, name, script string) ServiceSpec {
	return ServiceSpec{Name: name, Command: []string{"/bin/sh", "-c", script}, Dir: dir, Watch: true, StopGrace: 2 * time.Second}
}

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

func statusOf(t *testing.T, s *Supervisor, part, name string) ServiceStatus {
	t.Helper()
	for _, st := range s.Status() {
		if st.Partition == part && st.Name == name {
			return st
		}
	}
	t.Fatalf("no status for %s/%s in %+v", part, name, s.Status())
	return ServiceStatus{}
}

func waitState(t *testing.T, s *Supervisor, part, name, state string) ServiceStatus {
	t.Helper()
	var st ServiceStatus
	waitFor(t, fmt.Sprintf("%s/%s to be %s", part, name, state), func() bool {
		st = statusOf(t, s, part, name)
		return st.State == state
	})
	return st
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	st, ok := readStat(pid)
	return ok && !st.zombie
}

// readPids waits until file holds n pids, one per line.
func readPids(t *testing.T, file string, n int) []int {
	t.Helper()
	var pids []int
	waitFor(t, fmt.Sprintf("%d pids in %s", n, file), func() bool {
		b, _ := os.ReadFile(file)
		pids = pids[:0]
		for _, f := range strings.Fields(string(b)) {
			if p, err := strconv.Atoi(f); err == nil {
				pids = append(pids, p)
			}
		}
		return len(pids) >= n
	})
	return pids
}

func TestCrashingServiceBacksOffThenFatal(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	var fatal []string
	s := newTestSup(t, Options{MinBackoff: 100 * time.Millisecond, MaxBackoff: 400 * time.Millisecond, MaxRetries: 4,
		OnFatal: func(p, svc, reason string) {
			mu.Lock()
			defer mu.Unlock()
			fatal = append(fatal, p+"/"+svc+": "+reason)
		}})
	// Each start appends a nanosecond timestamp, then the service crashes.
	sp := shSpec(dir, "crash", `date +%s%N >> starts; echo boom; exit 3`)
	if _, err := s.Apply("p1", []ServiceSpec{sp}); err != nil {
		t.Fatal(err)
	}
	st := waitState(t, s, "p1", "crash", StateFatal)
	if st.Restarts != 4 || !strings.Contains(st.LastExit, "exit status 3") || !strings.Contains(st.LastExit, "gave up") {
		t.Errorf("status %+v: want 4 restarts and exit status 3", st)
	}
	mu.Lock()
	if len(fatal) != 1 || !strings.HasPrefix(fatal[0], "p1/crash: ") {
		t.Errorf("OnFatal calls: %q", fatal)
	}
	mu.Unlock()
	b, _ := os.ReadFile(filepath.Join(dir, "starts"))
	var starts []int64
	for _, f := range strings.Fields(string(b)) {
		n, _ := strconv.ParseInt(f, 10, 64)
		starts = append(starts, n)
	}
	if len(starts) != 5 {
		t.Fatalf("started %d times, want 1 + 4 restarts", len(starts))
	}
	// Backoff doubles from 100ms and is capped at 400ms; a loaded machine
	// only makes gaps longer, so only lower bounds are checked.
	want := []time.Duration{100, 200, 400, 400}
	for i, w := range want {
		if gap := time.Duration(starts[i+1] - starts[i]); gap < w*time.Millisecond {
			t.Errorf("gap before restart %d = %s, want ≥ %dms", i+1, gap, w)
		}
	}
	log, _ := os.ReadFile(filepath.Join(dir, "var", "log", "crash.log"))
	if strings.Count(string(log), "\nboom\n") != 5 {
		t.Errorf("log should hold the 5 runs' output:\n%s", log)
	}
	// A FATAL service is started again by Start.
	if err := s.Start(context.Background(), "p1", "crash"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a sixth start", func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "starts"))
		return len(strings.Fields(string(b))) >= 6
	})
}

func TestStableRunResetsFailures(t *testing.T) {
	dir := t.TempDir()
	s := newTestSup(t, Options{MaxRetries: 2, StableAfter: 300 * time.Millisecond})
	// Runs long enough to count as stable, then exits: never FATAL.
	if _, err := s.Apply("p1", []ServiceSpec{shSpec(dir, "flaky", `echo x >> runs; sleep 0.4; exit 1`)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "5 runs", func() bool { b, _ := os.ReadFile(filepath.Join(dir, "runs")); return len(b) >= 10 })
	if st := statusOf(t, s, "p1", "flaky"); st.State == StateFatal {
		t.Fatalf("stable runs marked FATAL: %+v", st)
	}
}

func TestRunOnceIsNotRestarted(t *testing.T) {
	dir := t.TempDir()
	s := newTestSup(t, Options{})
	sp := shSpec(dir, "init", `echo ran >> out`)
	sp.Watch = false
	if _, err := s.Apply("p1", []ServiceSpec{sp}); err != nil {
		t.Fatal(err)
	}
	st := waitState(t, s, "p1", "init", StateExited)
	if !strings.Contains(st.LastExit, "exit status 0") || st.Restarts != 0 {
		t.Errorf("status %+v", st)
	}
	// Applying the same spec again does not run it again; after waiting
	// several backoff periods it has still run once.
	ch, err := s.Apply("p1", []ServiceSpec{sp})
	if err != nil || !slices.Equal(ch.Unchanged, []string{"init"}) {
		t.Fatalf("re-apply: %+v, %v", ch, err)
	}
	time.Sleep(500 * time.Millisecond)
	if b, _ := os.ReadFile(filepath.Join(dir, "out")); string(b) != "ran\n" {
		t.Errorf("run-once ran %q", b)
	}
}

func TestEnvironmentDirAndStdin(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("SLNTEST_LEAK", "must not reach the service")
	s := newTestSup(t, Options{})
	sp := shSpec(dir, "env", `env > env.out; pwd > pwd.out; cat > stdin.out; echo done > done.out; exec sleep 1000`)
	sp.Env = map[string]string{"GREETING": "hello"}
	if _, err := s.Apply("p1", []ServiceSpec{sp}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "done.out", func() bool { _, err := os.Stat(filepath.Join(dir, "done.out")); return err == nil })
	env, _ := os.ReadFile(filepath.Join(dir, "env.out"))
	for _, want := range []string{"GREETING=hello", "PATH=" + defaultPath, "HOME=", markerVar + "="} {
		if !strings.Contains(string(env), want) {
			t.Errorf("environment lacks %q:\n%s", want, env)
		}
	}
	if strings.Contains(string(env), "SLNTEST_LEAK") {
		t.Errorf("daemon environment leaked into the service:\n%s", env)
	}
	if pwd, _ := os.ReadFile(filepath.Join(dir, "pwd.out")); strings.TrimSpace(string(pwd)) != dir {
		t.Errorf("working directory %q, want %q", pwd, dir)
	}
	if in, _ := os.ReadFile(filepath.Join(dir, "stdin.out")); len(in) != 0 {
		t.Errorf("stdin gave %q, want nothing", in)
	}
}

// escapeScript starts a plain child, a child in its own session (setsid),
// and a grandchild that is orphaned (its parent exits) after setsid; all
// record their pids. The service itself ignores SIGTERM, so the stop must
// escalate to SIGKILL.
const escapeScript = `trap '' TERM
sleep 1000 & echo $! >> pids
setsid sleep 1000 & echo $! >> pids
sh -c 'setsid sleep 1000 & echo $! >> pids'
echo $$ >> pids
while :; do sleep 1; done`

func checkNoSurvivor(t *testing.T, s *Supervisor, dir, part, svc string, extra int) {
	t.Helper()
	pids := readPids(t, filepath.Join(dir, "pids"), 4+extra)
	waitState(t, s, part, svc, StateRunning)
	for _, p := range pids {
		if !alive(p) {
			t.Fatalf("pid %d died before the stop", p)
		}
	}
	start := time.Now()
	if err := s.Stop(context.Background(), part, svc); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < time.Second {
		t.Errorf("stop took %s: the SIGTERM-ignoring service should have been given its grace period", took)
	}
	for _, p := range pids {
		if alive(p) {
			st, _ := readStat(p)
			cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
			t.Errorf("pid %d (of %v) survived the stop: %+v %q marker %q", p, pids, st, cmdline, markerOf(p))
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
	}
	if st := statusOf(t, s, part, svc); st.State != StateStopped || st.Pid != 0 {
		t.Errorf("after stop: %+v", st)
	}
}

func TestStopLeavesNoProcessWithoutCgroup(t *testing.T) {
	dir := t.TempDir()
	s := newTestSup(t, Options{})
	sp := shSpec(dir, "escape", escapeScript)
	sp.StopGrace = time.Second
	if _, err := s.Apply("p1", []ServiceSpec{sp}); err != nil {
		t.Fatal(err)
	}
	checkNoSurvivor(t, s, dir, "p1", "escape", 0)
}

func TestStopLeavesNoProcessInCgroup(t *testing.T) {
	cg := testCgroup(t)
	dir := t.TempDir()
	s := newTestSup(t, Options{})
	// With a cgroup even a process that wiped its environment and left the
	// session is found.
	sp := shSpec(dir, "escape", escapeScript+"\n")
	sp.Command[2] = strings.Replace(escapeScript, "echo $$ >> pids", "sh -c 'env -i setsid sleep 1000 & echo $! >> pids'\necho $$ >> pids", 1)
	sp.StopGrace = time.Second
	sp.Cgroup = cg
	if _, err := s.Apply("p1", []ServiceSpec{sp}); err != nil {
		t.Fatal(err)
	}
	checkNoSurvivor(t, s, dir, "p1", "escape", 1)
	if _, err := os.Stat(filepath.Join(cg, "escape.service")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("service cgroup not removed after stop: %v", err)
	}
}

// testCgroup creates a throwaway cgroup v2 directory, removed at the end.
func testCgroup(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("creating a cgroup needs root")
	}
	const root = "/sys/fs/cgroup/unified"
	if _, err := os.Stat(filepath.Join(root, "cgroup.procs")); err != nil {
		t.Skipf("no cgroup v2 hierarchy at %s", root)
	}
	dir := filepath.Join(root, fmt.Sprintf("slntest-%d-%d", os.Getpid(), time.Now().UnixNano()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Children first; retry while the last processes finish exiting.
		end := time.Now().Add(deadline)
		for {
			subs, _ := filepath.Glob(filepath.Join(dir, "*", "cgroup.procs"))
			for _, s := range subs {
				_ = os.WriteFile(filepath.Join(filepath.Dir(s), "cgroup.kill"), []byte("1"), 0)
				_ = os.Remove(filepath.Dir(s))
			}
			if err := os.Remove(dir); err == nil || errors.Is(err, os.ErrNotExist) || time.Now().After(end) {
				if err != nil && !errors.Is(err, os.ErrNotExist) {
					t.Errorf("removing test cgroup %s: %v", dir, err)
				}
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	return dir
}

var userSeq int

// testUser creates a throwaway system user slntestN (removed at the end)
// and returns its credential.
func testUser(t *testing.T) *Credential {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("creating a user needs root")
	}
	if _, err := exec.LookPath("useradd"); err != nil {
		t.Skip("useradd is not installed")
	}
	userSeq++
	name := fmt.Sprintf("slntest%d%d", os.Getpid()%100000, userSeq)
	if out, err := exec.Command("useradd", "--system", "--no-create-home", "--user-group", "--shell", "/bin/sh", name).CombinedOutput(); err != nil {
		t.Fatalf("useradd %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("userdel", name).CombinedOutput(); err != nil {
			t.Errorf("userdel %s: %v: %s", name, err, out)
		}
	})
	out, err := exec.Command("id", "-u", name).Output()
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	out, err = exec.Command("id", "-g", name).Output()
	if err != nil {
		t.Fatal(err)
	}
	gid, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	return &Credential{Uid: uint32(uid), Gid: uint32(gid)}
}

// partitionDir makes a directory the partition user owns (mode 0750 like
// SlapOS), inside a world-traversable temporary directory.
func partitionDir(t *testing.T, c *Credential) string {
	t.Helper()
	base := t.TempDir()
	for _, d := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	d := filepath.Join(base, "part")
	if err := os.Mkdir(d, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(d, int(c.Uid), int(c.Gid)); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestServiceRunsAsPartitionUserInItsCgroup(t *testing.T) {
	cred := testUser(t)
	cg := testCgroup(t)
	dir := partitionDir(t, cred)
	s := newTestSup(t, Options{})
	sp := shSpec(dir, "web", `id -u > id.out; id -g >> id.out; cat /proc/self/cgroup > cg.out; echo $USER > user.out; exec sleep 1000`)
	sp.Credential, sp.Cgroup = cred, cg
	if _, err := s.Apply("p1", []ServiceSpec{sp}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "user.out", func() bool { b, _ := os.ReadFile(filepath.Join(dir, "user.out")); return len(b) > 0 })
	ids, _ := os.ReadFile(filepath.Join(dir, "id.out"))
	if want := fmt.Sprintf("%d\n%d\n", cred.Uid, cred.Gid); string(ids) != want {
		t.Errorf("ran as %q, want %q", ids, want)
	}
	cgOut, _ := os.ReadFile(filepath.Join(dir, "cg.out"))
	rel := strings.TrimPrefix(cg, "/sys/fs/cgroup/unified")
	if !strings.Contains(string(cgOut), "0::"+rel+"/web.service\n") {
		t.Errorf("cgroup membership %q, want %s/web.service", cgOut, rel)
	}
	st := waitState(t, s, "p1", "web", StateRunning)
	b, _ := os.ReadFile(filepath.Join(cg, "web.service", "cgroup.procs"))
	if strings.TrimSpace(string(b)) != strconv.Itoa(st.Pid) {
		t.Errorf("cgroup procs %q, want the service pid %d", b, st.Pid)
	}
	// The log and the var/log directory the supervisor created belong to
	// the partition user, who can read its logs and write its own there.
	for _, p := range []string{st.Log, filepath.Join(dir, "var", "log"), filepath.Join(dir, "var")} {
		if fi, err := os.Stat(p); err != nil || fi.Sys().(*syscall.Stat_t).Uid != cred.Uid {
			t.Errorf("%s: %v, owner not uid %d", p, err, cred.Uid)
		}
	}
}

func TestPartitionsCannotSignalEachOther(t *testing.T) {
	credA, credB := testUser(t), testUser(t)
	dirA, dirB := partitionDir(t, credA), partitionDir(t, credB)
	s := newTestSup(t, Options{})
	a := shSpec(dirA, "a", `echo $$ > pid; exec sleep 1000`)
	a.Credential = credA
	if _, err := s.Apply("pa", []ServiceSpec{a}); err != nil {
		t.Fatal(err)
	}
	pidA := readPids(t, filepath.Join(dirA, "pid"), 1)[0]
	b := shSpec(dirB, "b", fmt.Sprintf(`if kill -TERM %d 2> err; then echo killed > result; else echo refused > result; fi; exec sleep 1000`, pidA))
	b.Credential = credB
	if _, err := s.Apply("pb", []ServiceSpec{b}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b's result", func() bool { r, _ := os.ReadFile(filepath.Join(dirB, "result")); return len(r) > 0 })
	r, _ := os.ReadFile(filepath.Join(dirB, "result"))
	e, _ := os.ReadFile(filepath.Join(dirB, "err"))
	if string(r) != "refused\n" || !strings.Contains(strings.ToLower(string(e)), "not permitted") {
		t.Errorf("partition b signalling a: %q %q", r, e)
	}
	if !alive(pidA) || statusOf(t, s, "pa", "a").Restarts != 0 {
		t.Errorf("service a was disturbed")
	}
}

func TestRootlessRefusesOtherUser(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("checks the error of a non-root supervisor")
	}
	dir := t.TempDir()
	s := newTestSup(t, Options{MaxRetries: 1})
	sp := shSpec(dir, "x", "sleep 1000")
	sp.Credential = &Credential{Uid: uint32(os.Getuid() + 1), Gid: uint32(os.Getgid())}
	if _, err := s.Apply("p1", []ServiceSpec{sp}); err != nil {
		t.Fatal(err)
	}
	st := waitState(t, s, "p1", "x", StateFatal)
	if !strings.Contains(st.LastExit, "not root") {
		t.Errorf("LastExit %q should explain rootless mode", st.LastExit)
	}
}

func TestLogsRotate(t *testing.T) {
	dir := t.TempDir()
	s := newTestSup(t, Options{LogMaxBytes: 2000, LogKeep: 2})
	// 100 lines of 100 bytes: 10000 bytes through a 2000-byte log.
	sp := shSpec(dir, "chatty", `i=0; while [ $i -lt 100 ]; do printf '%099d\n' $i; i=$((i+1)); done; echo end; exec sleep 1000`)
	if _, err := s.Apply("p1", []ServiceSpec{sp}); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(dir, "var", "log", "chatty.log")
	waitFor(t, "the end of output", func() bool { b, _ := os.ReadFile(log); return strings.Contains(string(b), "end\n") })
	for _, f := range []string{log, log + ".1", log + ".2"} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if fi.Size() > 2000 {
			t.Errorf("%s is %d bytes, over the 2000 limit", f, fi.Size())
		}
	}
	if _, err := os.Stat(log + ".3"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("more than LogKeep=2 rotated files kept: %v", err)
	}
	paths, err := s.LogPaths("p1", "")
	if err != nil || !slices.Equal(paths, []string{log}) {
		t.Errorf("LogPaths = %v, %v", paths, err)
	}
}

func TestApplyRestartsOnlyChangedService(t *testing.T) {
	dir := t.TempDir()
	s := newTestSup(t, Options{})
	a, b, c := shSpec(dir, "a", "exec sleep 1000"), shSpec(dir, "b", "exec sleep 1000"), shSpec(dir, "c", "exec sleep 1000")
	ch, err := s.Apply("p1", []ServiceSpec{a, b, c})
	if err != nil || !slices.Equal(ch.Started, []string{"a", "b", "c"}) {
		t.Fatalf("first apply: %+v %v", ch, err)
	}
	pa := waitState(t, s, "p1", "a", StateRunning).Pid
	pb := waitState(t, s, "p1", "b", StateRunning).Pid
	pc := waitState(t, s, "p1", "c", StateRunning).Pid
	b.Env = map[string]string{"NEW": "1"}
	d := shSpec(dir, "d", "exec sleep 1000")
	ch, err = s.Apply("p1", []ServiceSpec{d, b, a})
	if err != nil {
		t.Fatal(err)
	}
	want := Changes{Started: []string{"d"}, Restarted: []string{"b"}, Stopped: []string{"c"}, Unchanged: []string{"a"}}
	if fmt.Sprint(ch) != fmt.Sprint(want) {
		t.Errorf("changes %+v, want %+v", ch, want)
	}
	if st := statusOf(t, s, "p1", "a"); st.Pid != pa || st.State != StateRunning {
		t.Errorf("unchanged a was disturbed: %+v (pid was %d)", st, pa)
	}
	if st := waitState(t, s, "p1", "b", StateRunning); st.Pid == pb {
		t.Errorf("changed b kept pid %d", pb)
	}
	if alive(pb) || alive(pc) {
		t.Errorf("old b (%d) or removed c (%d) still alive", pb, pc)
	}
	for _, st := range s.Status() {
		if st.Name == "c" {
			t.Errorf("removed service still listed: %+v", st)
		}
	}
}

func TestStopStartPartitionAndRemove(t *testing.T) {
	dir := t.TempDir()
	s := newTestSup(t, Options{})
	ctx := context.Background()
	if _, err := s.Apply("p1", []ServiceSpec{shSpec(dir, "a", "exec sleep 1000"), shSpec(dir, "b", "exec sleep 1000")}); err != nil {
		t.Fatal(err)
	}
	waitState(t, s, "p1", "a", StateRunning)
	if err := s.StopPartition(ctx, "p1"); err != nil {
		t.Fatal(err)
	}
	for _, st := range s.Status() {
		if st.State != StateStopped || st.Requested != PartitionStopped {
			t.Errorf("after StopPartition: %+v", st)
		}
	}
	if err := s.Start(ctx, "p1", "b"); err != nil {
		t.Fatal(err)
	}
	waitState(t, s, "p1", "b", StateRunning)
	if st := statusOf(t, s, "p1", "a"); st.State != StateStopped {
		t.Errorf("a started with b: %+v", st)
	}
	pb := statusOf(t, s, "p1", "b").Pid
	if err := s.Restart(ctx, "p1", "b"); err != nil {
		t.Fatal(err)
	}
	if st := waitState(t, s, "p1", "b", StateRunning); st.Pid == pb {
		t.Errorf("restart kept pid %d", pb)
	}
	if err := s.Start(ctx, "p1", ""); err != nil {
		t.Fatal(err)
	}
	waitState(t, s, "p1", "a", StateRunning)
	if err := s.Stop(ctx, "p1", "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("stopping an unknown service: %v", err)
	}
	if err := s.Start(ctx, "nope", ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("starting an unknown partition: %v", err)
	}
	pa := statusOf(t, s, "p1", "a").Pid
	if err := s.Remove(ctx, "p1"); err != nil {
		t.Fatal(err)
	}
	if len(s.Status()) != 0 || alive(pa) {
		t.Errorf("after Remove: %+v, a alive: %v", s.Status(), alive(pa))
	}
	if _, err := os.Stat(s.statePath("p1")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state file kept after Remove: %v", err)
	}
}

func TestRestoreAfterRestart(t *testing.T) {
	state, dir := t.TempDir(), t.TempDir()
	s1, err := New(Options{StateDir: state, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s1.Apply("p1", []ServiceSpec{shSpec(dir, "a", "exec sleep 1000"), shSpec(dir, "b", "exec sleep 1000")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s1.Apply("p2", []ServiceSpec{shSpec(dir, "c", "exec sleep 1000")}); err != nil {
		t.Fatal(err)
	}
	if err := s1.Stop(ctx, "p1", "b"); err != nil {
		t.Fatal(err)
	}
	if err := s1.StopPartition(ctx, "p2"); err != nil {
		t.Fatal(err)
	}
	old := waitState(t, s1, "p1", "a", StateRunning).Pid
	if err := s1.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if alive(old) {
		t.Fatalf("Shutdown left pid %d", old)
	}
	// A process left behind by the previous daemon (as after SIGKILL),
	// recognisable by its marker, is killed by Restore.
	leftover := exec.Command("sleep", "1000")
	leftover.Env = []string{markerVar + "=" + s1.marker("p1", "a")}
	if err := leftover.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = leftover.Wait() }()

	s2 := newTestSup(t, Options{StateDir: state})
	if err := s2.Restore(ctx); err != nil {
		t.Fatal(err)
	}
	waitState(t, s2, "p1", "a", StateRunning)
	if st := statusOf(t, s2, "p1", "b"); st.State != StateStopped {
		t.Errorf("b was stopped before the restart, now %+v", st)
	}
	if st := statusOf(t, s2, "p2", "c"); st.State != StateStopped || st.Requested != PartitionStopped {
		t.Errorf("p2 was stopped before the restart, now %+v", st)
	}
	waitFor(t, "the leftover to be killed", func() bool { return !alive(leftover.Process.Pid) })
}

func TestScheduleRunsWithoutOverlap(t *testing.T) {
	dir := t.TempDir()
	s := newTestSup(t, Options{})
	// Fire every tick at once: runs follow each other as fast as they end.
	s.after = func(time.Duration) <-chan time.Time {
		c := make(chan time.Time, 1)
		c <- time.Now()
		return c
	}
	sp := shSpec(dir, "job", `mkdir lock 2>/dev/null || echo OVERLAP >> out; echo run >> out; sleep 0.1; rmdir lock`)
	sp.Schedule, sp.Watch = "*/5 * * * *", false
	if _, err := s.Apply("p1", []ServiceSpec{sp}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "5 runs", func() bool { return statusOf(t, s, "p1", "job").Restarts >= 5 })
	if err := s.Stop(context.Background(), "p1", "job"); err != nil {
		t.Fatal(err)
	}
	out, _ := os.ReadFile(filepath.Join(dir, "out"))
	if strings.Contains(string(out), "OVERLAP") || strings.Count(string(out), "run") < 5 {
		t.Errorf("job output:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "var", "log", "job.log")); err != nil {
		t.Errorf("job log: %v", err)
	}
}

func TestScheduleWaitsForNextTick(t *testing.T) {
	dir := t.TempDir()
	s := newTestSup(t, Options{})
	sp := shSpec(dir, "yearly", `echo ran > out`)
	sp.Schedule = "@yearly"
	if _, err := s.Apply("p1", []ServiceSpec{sp}); err != nil {
		t.Fatal(err)
	}
	st := waitState(t, s, "p1", "yearly", StateScheduled)
	if st.Next.Month() != time.January || st.Next.Day() != 1 || !st.Next.After(time.Now()) {
		t.Errorf("next run %s", st.Next)
	}
}

func TestApplyRejectsBadSpecs(t *testing.T) {
	s := newTestSup(t, Options{})
	dir := t.TempDir()
	bad := []ServiceSpec{
		{Name: "", Command: []string{"x"}, Dir: dir},
		{Name: "a/b", Command: []string{"x"}, Dir: dir},
		{Name: "a", Dir: dir},
		{Name: "a", Command: []string{"x"}, Dir: "relative"},
		{Name: "a", Command: []string{"x"}, Dir: dir, Schedule: "61 * * * *"},
		{Name: "a", Command: []string{"x"}, Dir: dir, Partition: "other"},
	}
	for _, sp := range bad {
		if _, err := s.Apply("p1", []ServiceSpec{sp}); err == nil {
			t.Errorf("Apply accepted %+v", sp)
		}
	}
	ok := shSpec(dir, "a", "true")
	if _, err := s.Apply("p1", []ServiceSpec{ok, ok}); !errors.Is(err, ErrSpec) {
		t.Errorf("duplicate names: %v", err)
	}
	if _, err := s.Apply("../x", []ServiceSpec{ok}); !errors.Is(err, ErrSpec) {
		t.Errorf("bad partition name: %v", err)
	}
}

func TestScanRunDirs(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []struct {
		path string
		mode os.FileMode
	}{{"etc/service/web", 0o755}, {"etc/service/notexec", 0o644}, {"etc/run/init", 0o755}} {
		p := filepath.Join(dir, f.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), f.mode); err != nil {
			t.Fatal(err)
		}
	}
	specs, err := ScanRunDirs(dir, ServiceSpec{Partition: "slappart3", StopGrace: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) != 2 || specs[0].Name != "web" || !specs[0].Watch || specs[1].Name != "init" || specs[1].Watch {
		t.Fatalf("specs %+v", specs)
	}
	if specs[0].LogFile != filepath.Join(dir, ".slappart3_web.log") || specs[0].Command[0] != filepath.Join(dir, "etc/service/web") || specs[0].StopGrace != time.Second {
		t.Errorf("spec %+v", specs[0])
	}
	if none, err := ScanRunDirs(t.TempDir(), ServiceSpec{}); err != nil || len(none) != 0 {
		t.Errorf("empty partition: %v %v", none, err)
	}
}

func TestPersistIsAtomicFile(t *testing.T) {
	s := newTestSup(t, Options{})
	dir := t.TempDir()
	if _, err := s.Apply("p1", []ServiceSpec{shSpec(dir, "a", "exec sleep 1000")}); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(filepath.Join(s.opts.StateDir, "partitions"))
	if len(ents) != 1 || ents[0].Name() != "p1.json" {
		t.Errorf("state dir holds %v, want only p1.json (no temporary left)", ents)
	}
	states, err := s.loadAll()
	if err != nil || len(states) != 1 || states[0].Specs[0].Name != "a" {
		t.Errorf("loadAll: %+v %v", states, err)
	}
	if err := os.WriteFile(filepath.Join(s.opts.StateDir, "partitions", "p2.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.loadAll(); err == nil || !strings.Contains(err.Error(), "p2.json") {
		t.Errorf("damaged file not reported: %v", err)
	}
}

func TestPersistedLogPaths(t *testing.T) {
	s := newTestSup(t, Options{})
	dir := t.TempDir()
	if _, err := s.Apply("p1", []ServiceSpec{shSpec(dir, "a", "exec sleep 1000"), shSpec(dir, "b", "exec sleep 1000")}); err != nil {
		t.Fatal(err)
	}
	got, err := PersistedLogPaths(s.opts.StateDir, "p1", "b")
	if err != nil || len(got) != 1 || got[0] != filepath.Join(dir, "var", "log", "b.log") {
		t.Errorf("PersistedLogPaths(p1, b) = %v, %v", got, err)
	}
	if all, err := PersistedLogPaths(s.opts.StateDir, "p1", ""); err != nil || len(all) != 2 {
		t.Errorf("PersistedLogPaths(p1) = %v, %v", all, err)
	}
	for _, c := range [][2]string{{"p2", ""}, {"p1", "zz"}, {"../p1", ""}} {
		if _, err := PersistedLogPaths(s.opts.StateDir, c[0], c[1]); !errors.Is(err, ErrNotFound) {
			t.Errorf("PersistedLogPaths(%q, %q): %v", c[0], c[1], err)
		}
	}
}

func TestApplyStateStoppedStartsNothing(t *testing.T) {
	dir := t.TempDir()
	s := newTestSup(t, Options{})
	a := shSpec(dir, "a", `echo started >> a.out; exec sleep 1000`)
	ch, err := s.ApplyState("p1", []ServiceSpec{a}, PartitionStopped)
	if err != nil || !slices.Equal(ch.Unchanged, []string{"a"}) {
		t.Fatalf("ApplyState stopped: %+v %v", ch, err)
	}
	if st := statusOf(t, s, "p1", "a"); st.State != StateStopped || st.Requested != PartitionStopped {
		t.Errorf("status %+v", st)
	}
	if ch, err = s.Apply("p1", []ServiceSpec{a}); err != nil || !slices.Equal(ch.Started, []string{"a"}) {
		t.Fatalf("Apply after stopped: %+v %v", ch, err)
	}
	pid := waitState(t, s, "p1", "a", StateRunning).Pid
	if ch, err = s.ApplyState("p1", []ServiceSpec{a}, PartitionStopped); err != nil || !slices.Equal(ch.Stopped, []string{"a"}) {
		t.Fatalf("ApplyState stopped of a running partition: %+v %v", ch, err)
	}
	if alive(pid) {
		t.Errorf("pid %d still running in a stopped partition", pid)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "a.out")); string(b) != "started\n" {
		t.Errorf("a started %q, want once (only by Apply)", b)
	}
	if _, err := s.ApplyState("p1", nil, "destroyed"); !errors.Is(err, ErrSpec) {
		t.Errorf("unknown requested state: %v", err)
	}
}

// TestLogSymlinkIsRefused: the log directory belongs to the partition
// user; a symlink planted there must not make the root daemon write to (or
// give away) a file the user cannot write.
func TestLogSymlinkIsRefused(t *testing.T) {
	cred := testUser(t)
	dir := partitionDir(t, cred)
	secret := filepath.Join(filepath.Dir(dir), "secret")
	if err := os.WriteFile(secret, []byte("root only\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	logDir := filepath.Join(dir, "var", "log")
	if err := os.MkdirAll(logDir, 0o750); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{filepath.Join(dir, "var"), logDir} {
		if err := os.Chown(d, int(cred.Uid), int(cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(secret, filepath.Join(logDir, "web.log")); err != nil {
		t.Fatal(err)
	}
	s := newTestSup(t, Options{})
	sp := shSpec(dir, "web", "echo pwned; exec sleep 1000")
	sp.Credential = cred
	if _, err := s.Apply("p1", []ServiceSpec{sp}); err != nil {
		t.Fatal(err)
	}
	st := waitState(t, s, "p1", "web", StateFatal)
	if !strings.Contains(st.LastExit, "log") {
		t.Errorf("FATAL reason %q should name the log", st.LastExit)
	}
	b, _ := os.ReadFile(secret)
	fi, _ := os.Stat(secret)
	if string(b) != "root only\n" || fi.Sys().(*syscall.Stat_t).Uid != 0 {
		t.Errorf("secret changed: %q, owner %d", b, fi.Sys().(*syscall.Stat_t).Uid)
	}

	// A symlinked directory (var -> a root-only directory): the log is
	// opened with the user's filesystem identity, so nothing is created.
	dir2 := partitionDir(t, cred)
	rootOnly := filepath.Join(filepath.Dir(dir2), "rootonly")
	if err := os.Mkdir(rootOnly, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(rootOnly, filepath.Join(dir2, "var")); err != nil {
		t.Fatal(err)
	}
	sp2 := shSpec(dir2, "web", "exec sleep 1000")
	sp2.Credential = cred
	if _, err := s.Apply("p2", []ServiceSpec{sp2}); err != nil {
		t.Fatal(err)
	}
	waitState(t, s, "p2", "web", StateFatal)
	if ents, _ := os.ReadDir(rootOnly); len(ents) != 0 {
		t.Errorf("the root daemon created %v in a directory the partition user cannot write", ents)
	}

	// The same through root's groups: var/log -> a directory writable by
	// group root only (0770), holding a log-named file of group root
	// (0660). The user's filesystem identity alone would still carry the
	// daemon's supplementary groups (root): the log is opened with the
	// user's groups too.
	dir3 := partitionDir(t, cred)
	groupDir := filepath.Join(filepath.Dir(dir3), "rootgroup")
	if err := os.Mkdir(groupDir, 0o770); err != nil {
		t.Fatal(err)
	}
	os.Chmod(groupDir, 0o770)
	victim := filepath.Join(groupDir, "web.log")
	if err := os.WriteFile(victim, []byte("root's\n"), 0o660); err != nil {
		t.Fatal(err)
	}
	os.Chmod(victim, 0o660)
	if err := os.MkdirAll(filepath.Join(dir3, "var"), 0o750); err != nil {
		t.Fatal(err)
	}
	os.Chown(filepath.Join(dir3, "var"), int(cred.Uid), int(cred.Gid))
	if err := os.Symlink(groupDir, filepath.Join(dir3, "var", "log")); err != nil {
		t.Fatal(err)
	}
	// Give the daemon (this process) root's usual supplementary group.
	groups, _ := syscall.Getgroups()
	if err := syscall.Setgroups([]int{0}); err != nil {
		t.Fatal(err)
	}
	defer syscall.Setgroups(groups)
	sp3 := shSpec(dir3, "web", "echo pwned; exec sleep 1000")
	sp3.Credential = cred
	if _, err := s.Apply("p3", []ServiceSpec{sp3}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "p3/web to fail or run", func() bool {
		st := statusOf(t, s, "p3", "web").State
		return st == StateFatal || st == StateRunning
	})
	if st := statusOf(t, s, "p3", "web"); st.State != StateFatal {
		t.Errorf("p3/web is %s, want FATAL (its log cannot be opened as its user)", st.State)
	}
	if b, _ := os.ReadFile(victim); string(b) != "root's\n" {
		t.Errorf("the root daemon wrote the service's log into a file of group root: %q", b)
	}
	if ents, _ := os.ReadDir(groupDir); len(ents) != 1 {
		t.Errorf("the root daemon created files in a directory of group root: %v", ents)
	}
}

// TestRestoreKillsCgroupLeftovers: what a killed daemon left in a service's
// cgroup is killed by the next one, even without the marker.
func TestRestoreKillsCgroupLeftovers(t *testing.T) {
	cg := testCgroup(t)
	state, dir := t.TempDir(), t.TempDir()
	s1, err := New(Options{StateDir: state, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	sp := shSpec(dir, "web", "exec sleep 1000")
	sp.Cgroup = cg
	stopped := sp
	stopped.Name = "idle"
	if _, err := s1.Apply("p1", []ServiceSpec{sp, stopped}); err != nil {
		t.Fatal(err)
	}
	if err := s1.Stop(context.Background(), "p1", "idle"); err != nil {
		t.Fatal(err)
	}
	if err := s1.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	var leftovers []*exec.Cmd
	for _, leaf := range []string{"web.service", "idle.service"} {
		if err := os.Mkdir(filepath.Join(cg, leaf), 0o755); err != nil {
			t.Fatal(err)
		}
		c := exec.Command("sleep", "1000")
		c.Env = []string{} // no marker: only the cgroup tells whose it is
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { _ = c.Wait() }()
		leftovers = append(leftovers, c)
		if err := os.WriteFile(filepath.Join(cg, leaf, "cgroup.procs"), []byte(strconv.Itoa(c.Process.Pid)), 0); err != nil {
			t.Fatal(err)
		}
	}
	s2 := newTestSup(t, Options{StateDir: state})
	if err := s2.Restore(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, c := range leftovers {
		waitFor(t, "the leftover to be killed", func() bool { return !alive(c.Process.Pid) })
	}
	st := waitState(t, s2, "p1", "web", StateRunning)
	if b, _ := os.ReadFile(filepath.Join(cg, "web.service", "cgroup.procs")); strings.TrimSpace(string(b)) != strconv.Itoa(st.Pid) {
		t.Errorf("web cgroup holds %q, want only the new pid %d", b, st.Pid)
	}
	if _, err := os.Stat(filepath.Join(cg, "idle.service")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cgroup of the stopped service kept: %v", err)
	}
}

// zombieChildren lists the dead children of this process among pids.
func zombieChildren(pids []int) []int {
	self := os.Getpid()
	var out []int
	for _, pid := range pids {
		if st, ok := readStat(pid); ok && st.zombie && st.ppid == self {
			out = append(out, pid)
		}
	}
	return out
}

// TestZombiesOfKilledTreeAreReaped (issue 18, finding 14): a service's
// tree killed from outside, its main process first, leaves hundreds of
// orphans re-parented to the supervisor (a subreaper), dead before the
// supervisor ever saw them alive; none stays a zombie.
func TestZombiesOfKilledTreeAreReaped(t *testing.T) {
	s := newTestSup(t, Options{})
	dir := t.TempDir()
	sp := shSpec(dir, "tree", `for i in $(seq 300); do sleep 1000 & done; echo $! > last; exec sleep 1000`)
	sp.Watch = false
	if _, err := s.Apply("p", []ServiceSpec{sp}); err != nil {
		t.Fatal(err)
	}
	main := waitState(t, s, "p", "tree", StateRunning).Pid
	var kids []int
	waitFor(t, "the 300 children", func() bool {
		kids = kids[:0]
		for pid, st := range allProcs() {
			if st.ppid == main && !st.zombie {
				kids = append(kids, pid)
			}
		}
		return len(kids) >= 300
	})
	// From outside: the main process first (its children go to the
	// supervisor), then every child at once.
	if err := syscall.Kill(main, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the children to be re-parented", func() bool {
		st, ok := readStat(kids[0])
		return ok && st.ppid == os.Getpid()
	})
	for _, pid := range kids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	waitFor(t, "the dead children to be reaped", func() bool {
		return len(zombieChildren(kids)) == 0
	})
}

// The reaper never steals the exit status of a child that other code of
// the process waits for with os/exec.
func TestReaperLeavesOsExecChildren(t *testing.T) {
	cmd := exec.Command("/bin/sh", "-c", "exit 7")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the child to exit", func() bool { return len(zombieChildren([]int{cmd.Process.Pid})) == 1 })
	if _, err := reapZombies(); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 7 {
		t.Errorf("os/exec's Wait after the reaper ran: %v, want exit status 7", err)
	}
}

// TestScanRunDirsAsPartitionUser: a partition user who makes its
// etc/service a link to a directory only root may read does not get root
// to list it (the scan is done as the user).
func TestScanRunDirsAsPartitionUser(t *testing.T) {
	cred := testUser(t)
	dir := partitionDir(t, cred)
	private := filepath.Join(filepath.Dir(dir), "private")
	if err := os.Mkdir(private, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(private, "rootjob"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	etc := filepath.Join(dir, "etc")
	os.Mkdir(etc, 0o755)
	os.Chown(etc, int(cred.Uid), int(cred.Gid))
	if err := os.Symlink(private, filepath.Join(etc, "service")); err != nil {
		t.Fatal(err)
	}
	specs, err := ScanRunDirs(dir, ServiceSpec{Partition: "p", Credential: cred})
	if len(specs) != 0 {
		t.Errorf("root listed a directory the partition user cannot read: %+v", specs)
	}
	if err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("scan error %v, want permission denied", err)
	}
}
