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

// The isolation proofs: each formats a node as root (users slntestuN,
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
	cg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if !strings.Contains(string(cg), "/slntest-format/"+b.ID) {
		t.Errorf("process of B is not in B's cgroup:\n%s", cg)
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

// ctrlDir returns the directory of p's cgroups that has file.
func ctrlDir(t *testing.T, p PartitionInfo, file string) string {
	t.Helper()
	for _, d := range append([]string{p.Cgroup}, p.ExtraCgroups...) {
		if _, err := os.Stat(filepath.Join(d, file)); err == nil {
			return d
		}
	}
	t.Skipf("no cgroup of %s has %s: the controller is not available on this machine", p.ID, file)
	return ""
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

func TestIsolationMemoryLimit(t *testing.T) {
	needRoot(t)
	cfg, st := formatRoot(t, 2, "")
	other, hogPart := st.List[0], st.List[1] // slappart1 has memory_max = 64MiB
	memDir := ctrlDir(t, hogPart, "memory.max")
	if memDir == "" {
		return
	}
	_ = memDir
}
