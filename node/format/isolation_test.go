package format

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slapnode/slapnode/node/format/cgroup"
	"github.com/slapnode/slapnode/node/supervisor"
)

// The isolation proofs: each formats a node as root (users slntestfmtN,
// cgroups under slntest-format) and shows that partitions cannot reach
// each other and that a partition's limits hold while the node and the
// other partitions keep working. The waits below poll for an event with a
// generous deadline; they never assert on durations.

// TestHelperProcess is the memory hog the memory test runs as a service
// (the test binary, copied where partition users can execute it).
func TestHelperProcess(t *testing.T) {
	if os.Getenv("SLNTEST_HELPER") != "memhog" {
		t.Skip("helper process for TestIsolationMemoryLimit")
	}
	var keep [][]byte
	for i := 0; i < 1024; i++ { // up to 1 GiB, far above the partition's 64 MiB
		b := make([]byte, 1<<20)
		for j := 0; j < len(b); j += 4096 {
			b[j] = 1
		}
		keep = append(keep, b)
	}
	fmt.Println("allocated", len(keep), "MiB without being stopped")
	os.Exit(0)
}

// runAs runs a command as partition p's user in its directory.
func runAs(p PartitionInfo, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = p.Path
	ce, err := p.CgroupExec()
	if err != nil {
		return "", err
	}
	defer ce.Close()
	if err := ce.Hook(cmd); err != nil {
		return "", err
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// startIn starts a command as p's user inside p's cgroups; wait reaps it.
func startIn(t *testing.T, ce *CgroupExec, p PartitionInfo, name string, args ...string) (pid int, wait func()) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = p.Path
	if err := ce.Hook(cmd); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := ce.Started(cmd.Process.Pid); err != nil {
		cmd.Process.Kill()
		t.Fatal(err)
	}
	return cmd.Process.Pid, func() { _ = cmd.Wait() }
}

func TestIsolationFilesAndSignals(t *testing.T) {
	needRoot(t)
	_, st := formatRoot(t, 2, "")
	a, b := st.List[0], st.List[1]
	secret := filepath.Join(b.Path, "secret")
	if err := os.WriteFile(secret, []byte("b's data"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chown(secret, int(b.Uid), int(b.Gid))
	own := filepath.Join(a.Path, "own")
	os.WriteFile(own, []byte("a's data"), 0o600)
	os.Chown(own, int(a.Uid), int(a.Gid))

	if out, err := runAs(a, "cat", own); err != nil || out != "a's data" {
		t.Fatalf("A cannot read its own file (the test setup is wrong): %q %v", out, err)
	}
	if out, err := runAs(b, "cat", secret); err != nil || out != "b's data" {
		t.Fatalf("B cannot read its own file: %q %v", out, err)
	}
	if out, err := runAs(a, "cat", secret); err == nil || !strings.Contains(out, "Permission denied") {
		t.Errorf("A read B's file: %q %v", out, err)
	}
	if out, err := runAs(a, "ls", b.Path); err == nil {
		t.Errorf("A listed B's directory: %q", out)
	}
	if out, err := runAs(a, "touch", filepath.Join(b.Path, "intruder")); err == nil {
		t.Errorf("A created a file in B's directory: %q", out)
	}

	ce, err := b.CgroupExec()
	if err != nil {
		t.Fatal(err)
	}
	defer ce.Close()
	pid, wait := startIn(t, ce, b, "sleep", "300")
	defer wait()
	defer func() { _ = exec.Command("kill", "-9", strconv.Itoa(pid)).Run() }()

	// The process runs as B, in B's cgroups.
	// The process is in every cgroup of B: born in the main one (cgroup
	// v2 here, through CgroupFD) and moved into the v1 ones.
	cg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if n := strings.Count(string(cg), ":/slntest-format/"+b.ID+"\n"); n != 1+len(b.ExtraCgroups) {
		t.Errorf("process of B is in %d of B's %d cgroups:\n%s", n, 1+len(b.ExtraCgroups), cg)
	}
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if !strings.Contains(string(status), fmt.Sprintf("Uid:\t%d\t", b.Uid)) {
		t.Errorf("process of B does not run as uid %d:\n%s", b.Uid, status)
	}
	kill0 := fmt.Sprintf("kill -0 %d", pid)
	if out, err := runAs(b, "sh", "-c", kill0); err != nil {
		t.Fatalf("B cannot signal its own process (the test setup is wrong): %q %v", out, err)
	}
	if out, err := runAs(a, "sh", "-c", kill0); err == nil || !strings.Contains(strings.ToLower(out), "not permitted") {
		t.Errorf("A could signal B's process: %q %v", out, err)
	}
	if out, err := runAs(a, "sh", "-c", "kill -TERM "+strconv.Itoa(pid)); err == nil {
		t.Errorf("A sent SIGTERM to B's process: %q", out)
	}
	if err := exec.Command("kill", "-0", strconv.Itoa(pid)).Run(); err != nil {
		t.Errorf("B's process died: %v", err)
	}
}

// ctrlDir returns the directory of p's cgroups that has one of files
// (the v2 name, the v1 name), and which one.
func ctrlDir(t *testing.T, p PartitionInfo, files ...string) (string, string) {
	t.Helper()
	for _, d := range append([]string{p.Cgroup}, p.ExtraCgroups...) {
		for _, f := range files {
			if _, err := os.Stat(filepath.Join(d, f)); err == nil {
				return d, f
			}
		}
	}
	t.Skipf("no cgroup of %s has %v: the controller is not available on this machine", p.ID, files)
	return "", ""
}

// counter reads "key N" from a cgroup's flat-keyed file.
func counter(path, key string) int {
	b, _ := os.ReadFile(path)
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[0] == key {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return -1
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func statusOf(s *supervisor.Supervisor, partition, name string) supervisor.ServiceStatus {
	for _, st := range s.Status() {
		if st.Partition == partition && st.Name == name {
			return st
		}
	}
	return supervisor.ServiceStatus{}
}

// TestIsolationMemoryLimit runs, through the supervisor, a service that
// allocates far more than its partition's memory_max, beside a service of
// another partition: the kernel kills the hog inside its cgroup, the
// supervisor reports the kill, the other service keeps running.
func TestIsolationMemoryLimit(t *testing.T) {
	needRoot(t)
	cfg, st := formatRoot(t, 2, "")
	other, hogPart := st.List[0], st.List[1] // slappart1 has memory_max = 64MiB
	memDir, memFile := ctrlDir(t, hogPart, "memory.max", "memory.limit_in_bytes")
	if got := strings.TrimSpace(readString(filepath.Join(memDir, memFile))); got != strconv.Itoa(64<<20) {
		t.Fatalf("%s/%s = %s, want 64MiB", memDir, memFile, got)
	}

	// The test binary is the hog; partition users must be able to run it.
	bin := filepath.Join(cfg.Root, "bin", "hog")
	os.MkdirAll(filepath.Dir(bin), 0o755)
	self, _ := os.ReadFile("/proc/self/exe")
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}

	s, err := supervisor.New(supervisor.Options{Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("supervisor shutdown: %v", err)
		}
	})
	spec := func(p PartitionInfo, name string, watch bool, cmd ...string) supervisor.ServiceSpec {
		return supervisor.ServiceSpec{Partition: p.ID, Name: name, Command: cmd, Dir: p.Path, Watch: watch,
			StopGrace: time.Second, Credential: p.ServiceCredential(), Cgroup: p.Cgroup, ExtraCgroups: p.ExtraCgroups,
			Env: map[string]string{"SLNTEST_HELPER": "memhog"}}
	}
	if _, err := s.Apply(other.ID, []supervisor.ServiceSpec{spec(other, "sleeper", true, "sleep", "1000")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the other partition's service to run", func() bool { return statusOf(s, other.ID, "sleeper").State == supervisor.StateRunning })
	before := statusOf(s, other.ID, "sleeper")

	if _, err := s.Apply(hogPart.ID, []supervisor.ServiceSpec{spec(hogPart, "hog", false, bin, "-test.run=^TestHelperProcess$")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the hog to end", func() bool { return statusOf(s, hogPart.ID, "hog").State == supervisor.StateExited })
	hog := statusOf(s, hogPart.ID, "hog")
	if !strings.Contains(hog.LastExit, "killed") {
		log, _ := os.ReadFile(filepath.Join(hogPart.Path, "var", "log", "hog.log"))
		t.Errorf("the hog was not killed: last exit %q; log:\n%s", hog.LastExit, log)
	}
	oom := oomKills(memDir)
	if oom < 1 {
		t.Errorf("no OOM kill recorded in %s (oom_kill = %d)", memDir, oom)
	}
	after := statusOf(s, other.ID, "sleeper")
	if after.State != supervisor.StateRunning || after.Pid != before.Pid {
		t.Errorf("the other partition's service was disturbed: %+v, was %+v", after, before)
	}
}

func readString(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

// TestIsolationForkBomb runs a fork bomb in a partition whose pids_max is
// 20: it hits the limit, the node and the other partition can still start
// processes, and every process of the bomb is killed at the end.
func TestIsolationForkBomb(t *testing.T) {
	needRoot(t)
	_, st := formatRoot(t, 2, "")
	other, bombPart := st.List[0], st.List[1] // slappart1 has pids_max = 20
	pidsDir, _ := ctrlDir(t, bombPart, "pids.max")
	if got := strings.TrimSpace(readString(filepath.Join(pidsDir, "pids.max"))); got != "20" {
		t.Fatalf("pids.max = %s, want 20", got)
	}
	dirs := append([]string{bombPart.Cgroup}, bombPart.ExtraCgroups...)
	defer func() {
		for _, d := range dirs {
			if left := cgroup.Kill(d, 200); len(left) > 0 {
				t.Errorf("processes left in %s: %v", d, left)
			}
		}
	}()

	ce, err := bombPart.CgroupExec()
	if err != nil {
		t.Fatal(err)
	}
	defer ce.Close()
	// The shell waits for a line before bombing, so that the test has its
	// pid before the bomb starts (CgroupExec's shim placed it in every
	// cgroup before its first instruction: see
	// TestIsolationForkBombFromFirstInstruction for a bomb that does not wait).
	cmd := exec.Command("bash", "-c", `read -r go; bomb() { bomb | bomb & }; bomb; sleep 300`)
	cmd.Dir = bombPart.Path
	stdin, _ := cmd.StdinPipe()
	if err := ce.Hook(cmd); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait() }()
	if err := ce.Started(cmd.Process.Pid); err != nil {
		cmd.Process.Kill()
		t.Fatal(err)
	}
	io.WriteString(stdin, "go\n")
	stdin.Close()

	events := filepath.Join(pidsDir, "pids.events")
	maxCurrent := 0
	waitFor(t, "the bomb to hit pids.max", func() bool {
		n, _ := strconv.Atoi(strings.TrimSpace(readString(filepath.Join(pidsDir, "pids.current"))))
		maxCurrent = max(maxCurrent, n)
		return counter(events, "max") > 0
	})
	if maxCurrent > 20 {
		t.Errorf("pids.current reached %d > pids.max 20", maxCurrent)
	}
	// The node (this process) and the other partition still start processes.
	if out, err := exec.Command("sh", "-c", "echo node ok").CombinedOutput(); err != nil || string(out) != "node ok\n" {
		t.Errorf("the node cannot start a process: %q %v", out, err)
	}
	if out, err := runAs(other, "sh", "-c", "echo other ok"); err != nil || out != "other ok\n" {
		t.Errorf("the other partition cannot start a process: %q %v", out, err)
	}
	if n := counter(events, "max"); n < 1 {
		t.Errorf("pids.events max = %d", n)
	}
	sc := bufio.NewScanner(strings.NewReader(readString(filepath.Join(pidsDir, "cgroup.procs"))))
	procs := 0
	for sc.Scan() {
		procs++
	}
	t.Logf("bomb: %d processes in the cgroup, pids.events max = %d", procs, counter(events, "max"))
}

// ---- limits hold from the first instruction (issue 18, finding 4) ----
//
// On a cgroup v1 or hybrid machine the memory and pids limits live in v1
// directories, which a process cannot be cloned into. A service that forks
// at once must still have every child in every cgroup of its partition:
// the exec shim joins them before the service's first instruction. These
// tests bound what they start, so that on a node without the shim the
// escaped processes stay few, and kill every process that carries their
// services' marker at the end.

// newIsolationSupervisor returns a supervisor stopped at the end of the test.
func newIsolationSupervisor(t *testing.T) *supervisor.Supervisor {
	t.Helper()
	s, err := supervisor.New(supervisor.Options{Logger: slog.New(slog.NewTextHandler(t.Output(), nil)), MinBackoff: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("supervisor shutdown: %v", err)
		}
	})
	return s
}

func partSpec(p PartitionInfo, name string, watch bool, env map[string]string, cmd ...string) supervisor.ServiceSpec {
	return supervisor.ServiceSpec{Partition: p.ID, Name: name, Command: cmd, Dir: p.Path, Watch: watch,
		StopGrace: time.Second, Credential: p.ServiceCredential(), Cgroup: p.Cgroup, ExtraCgroups: p.ExtraCgroups, Env: env}
}

// markedProcs returns the live processes whose SLAPNODE_SERVICE marker
// contains part ("/slappart1/slntest", the services of these tests): a
// service's processes wherever they are.
func markedProcs(part string) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if i := strings.LastIndexByte(string(st), ')'); i < 0 || i+2 >= len(st) || st[i+2] == 'Z' {
			continue
		}
		env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		for _, kv := range strings.Split(string(env), "\x00") {
			if v, ok := strings.CutPrefix(kv, "SLAPNODE_SERVICE="); ok && strings.Contains(v, part) {
				out = append(out, pid)
			}
		}
	}
	return out
}

// killMarkedAtEnd kills, when the test ends, every process of the
// partition's slntest services, including those a broken confinement let out of
// the cgroups (which the supervisor's stop would not find).
func killMarkedAtEnd(t *testing.T, p PartitionInfo) {
	t.Cleanup(func() {
		for range 50 {
			pids := markedProcs("/" + p.ID + "/slntest")
			if len(pids) == 0 {
				return
			}
			for _, pid := range pids {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// inCgroups reports in how many of dirs' hierarchies pid is exactly in
// the service's cgroup (dir/leaf).
func inCgroups(pid int, dirs []string, leaf string) (int, string) {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	n := 0
	for _, d := range dirs {
		// /proc/PID/cgroup names the path relative to the hierarchy's root;
		// every partition cgroup is PARENT/slappartN under it.
		rel := "/" + filepath.Base(filepath.Dir(d)) + "/" + filepath.Base(d) + "/" + leaf + "\n"
		if strings.Contains(string(b), ":"+rel) {
			n++
		}
	}
	return n, string(b)
}

// TestIsolationChildInEveryHierarchy: `sh -c 'sleep 120 & exec sleep 121'`
// forks before anything else; its child is in the service's cgroup in every
// hierarchy (the v2 one and each v1 controller), ten times out of ten.
func TestIsolationChildInEveryHierarchy(t *testing.T) {
	needRoot(t)
	_, st := formatRoot(t, 2, "")
	p := st.List[0]
	if len(p.ExtraCgroups) == 0 && !cgroup.IsV2(p.Cgroup) {
		t.Logf("cgroup v1 only: every hierarchy is joined by the shim")
	}
	killMarkedAtEnd(t, p)
	s := newIsolationSupervisor(t)
	var specs []supervisor.ServiceSpec
	for i := range 10 {
		specs = append(specs, partSpec(p, fmt.Sprintf("slntestfork%d", i), true, nil, "/bin/sh", "-c", "sleep 120 & exec sleep 121"))
	}
	if _, err := s.Apply(p.ID, specs); err != nil {
		t.Fatal(err)
	}
	dirs := append([]string{p.Cgroup}, p.ExtraCgroups...)
	outside := 0
	for i := range 10 {
		name := fmt.Sprintf("slntestfork%d", i)
		var main int
		waitFor(t, name+" to run", func() bool {
			st := statusOf(s, p.ID, name)
			main = st.Pid
			return st.State == supervisor.StateRunning
		})
		var child int
		waitFor(t, "the child of "+name, func() bool {
			child = childOf(main)
			return child > 0
		})
		for _, pid := range []int{main, child} {
			if n, cg := inCgroups(pid, dirs, name+".service"); n != len(dirs) {
				outside++
				t.Errorf("%s: pid %d (main %d) is in %d of the %d cgroups of the service:\n%s", name, pid, main, n, len(dirs), cg)
			}
		}
	}
	if outside > 0 {
		t.Errorf("%d of 20 processes escaped a cgroup of their partition", outside)
	}
}

// childOf returns a live child of pid, 0 if none yet.
func childOf(pid int) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		c, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c))
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) && f[0] != "Z" {
			return c
		}
	}
	return 0
}

// TestIsolationForkBombFromFirstInstruction runs, as a service of the
// partition whose pids_max is 20, a fork bomb that forks from its first
// instruction (bounded to 2^9 processes, so that a broken confinement does
// not take the machine down): pids.max holds it, and none of its processes
// is outside the partition's pids cgroup.
func TestIsolationForkBombFromFirstInstruction(t *testing.T) {
	needRoot(t)
	_, st := formatRoot(t, 2, "")
	p := st.List[1] // pids_max = 20
	pidsDir, _ := ctrlDir(t, p, "pids.max")
	killMarkedAtEnd(t, p)
	s := newIsolationSupervisor(t)
	bomb := `b() { if [ "$1" -gt 0 ]; then b $(($1-1)) & b $(($1-1)) & fi; exec sleep 300; }; b 8`
	if _, err := s.Apply(p.ID, []supervisor.ServiceSpec{partSpec(p, "slntestbomb", false, nil, "/bin/sh", "-c", bomb)}); err != nil {
		t.Fatal(err)
	}
	// cgroup v1 counts a refused fork in the cgroup of the process that
	// forked (the service's child of the partition's), v2 where the limit
	// is: sum the subtree.
	maxEvents := func() int {
		n := 0
		filepath.WalkDir(pidsDir, func(path string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				n += max(0, counter(filepath.Join(path, "pids.events"), "max"))
			}
			return nil
		})
		return n
	}
	t.Cleanup(func() {
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(p.Path, "var", "log", "slntestbomb.log"))
			t.Logf("log of the bomb:\n%s", log)
		}
	})
	// Either the limit stops it, or (confinement broken) it grows past it.
	waitFor(t, "the bomb to hit pids.max", func() bool {
		return maxEvents() > 0 || len(markedProcs("/"+p.ID+"/slntest")) > 20
	})
	// Let the processes that could still fork do so.
	time.Sleep(500 * time.Millisecond)
	marked := markedProcs("/" + p.ID + "/slntest")
	procs := strings.Fields(readString(filepath.Join(pidsDir, "slntestbomb.service", "cgroup.procs")))
	current, _ := strconv.Atoi(strings.TrimSpace(readString(filepath.Join(pidsDir, "pids.current"))))
	t.Logf("bomb: %d processes carry the marker, %d are in %s, pids.current %d", len(marked), len(procs), pidsDir, current)
	if len(marked) > 20 {
		t.Errorf("the bomb made %d processes, pids.max is 20", len(marked))
	}
	var outside []int
	for _, pid := range marked {
		if !slices.Contains(procs, strconv.Itoa(pid)) {
			outside = append(outside, pid)
		}
	}
	if len(outside) > 0 {
		cg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", outside[0]))
		t.Errorf("%d processes of the bomb are outside the partition's pids cgroup; the first, %d, is in:\n%s", len(outside), outside[0], cg)
	}
	if current > 20 {
		t.Errorf("pids.current = %d > 20", current)
	}
}

// TestIsolationMemoryBombForks: a service that forks four children at once,
// each allocating up to 1 GiB, in the partition limited to 256 MiB (not
// the 64 MiB one: its pids_max of 20 would not let four Go programs start
// their threads): every child is OOM-killed inside the partition's memory
// cgroup, none allocates its gigabyte, and the other partition's service
// keeps running.
func TestIsolationMemoryBombForks(t *testing.T) {
	needRoot(t)
	cfg, st := formatRoot(t, 2, "")
	p, other := st.List[0], st.List[1] // slappart0: memory_max = 256MiB
	memDir, _ := ctrlDir(t, p, "memory.max", "memory.limit_in_bytes")
	killMarkedAtEnd(t, p)
	bin := filepath.Join(cfg.Root, "bin", "hog")
	os.MkdirAll(filepath.Dir(bin), 0o755)
	self, _ := os.ReadFile("/proc/self/exe")
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	s := newIsolationSupervisor(t)
	if _, err := s.Apply(other.ID, []supervisor.ServiceSpec{partSpec(other, "sleeper", true, nil, "sleep", "1000")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the other partition's service to run", func() bool { return statusOf(s, other.ID, "sleeper").State == supervisor.StateRunning })
	before := statusOf(s, other.ID, "sleeper")
	hog := `"$HOG" -test.run='^TestHelperProcess$' & "$HOG" -test.run='^TestHelperProcess$' & "$HOG" -test.run='^TestHelperProcess$' & "$HOG" -test.run='^TestHelperProcess$' & wait`
	env := map[string]string{"SLNTEST_HELPER": "memhog", "HOG": bin}
	if _, err := s.Apply(p.ID, []supervisor.ServiceSpec{partSpec(p, "slntestmembomb", false, env, "/bin/sh", "-c", hog)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the memory bomb to end", func() bool { return statusOf(s, p.ID, "slntestmembomb").State == supervisor.StateExited })
	log, _ := os.ReadFile(filepath.Join(p.Path, "var", "log", "slntestmembomb.log"))
	if n := strings.Count(string(log), "allocated 1024 MiB"); n > 0 {
		t.Errorf("%d children of the memory bomb allocated 1 GiB despite the 256 MiB limit:\n%s", n, log)
	}
	oom := oomKills(memDir)
	if oom < 4 {
		t.Errorf("%d OOM kills recorded in %s, want one per child (4)", oom, memDir)
	}
	after := statusOf(s, other.ID, "sleeper")
	if after.State != supervisor.StateRunning || after.Pid != before.Pid {
		t.Errorf("the other partition's service was disturbed: %+v, was %+v", after, before)
	}
}

// oomKills sums the OOM kills recorded in a memory cgroup's subtree: cgroup
// v1 counts a kill in the victim's own cgroup (the service's child of the
// partition's), v2 in every ancestor too.
func oomKills(memDir string) int {
	oom := 0
	filepath.WalkDir(memDir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			oom += max(0, counter(filepath.Join(p, "memory.oom_control"), "oom_kill"))
			oom += max(0, counter(filepath.Join(p, "memory.events.local"), "oom_kill"))
		}
		return nil
	})
	return oom
}
