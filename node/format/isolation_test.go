package format

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
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
	deadline := time.Now().Add(2 * time.Minute)
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

	s, err := supervisor.New(supervisor.Options{Logf: t.Logf})
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
	// cgroup v1 counts the kill in the victim's own cgroup (the service's
	// child of the partition's), v2 in every ancestor too: sum the subtree.
	oom := 0
	filepath.WalkDir(memDir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			oom += max(0, counter(filepath.Join(p, "memory.oom_control"), "oom_kill"))
			oom += max(0, counter(filepath.Join(p, "memory.events.local"), "oom_kill"))
		}
		return nil
	})
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
	// The shell waits for a line before bombing, so that it is in every
	// cgroup (v1 ones are joined after start) before its first fork.
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
