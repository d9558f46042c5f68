package nsexec

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// runShim runs cmd through the shim with a status pipe and returns the
// program's stdout and stderr and the shim's error.
func runShim(t *testing.T, cmd *exec.Cmd, c Confine) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	sh, err := ThroughShim(cmd, c, true)
	if err != nil {
		t.Fatal(err)
	}
	defer sh.Close()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	serr := sh.Started()
	werr := cmd.Wait()
	if serr == nil && werr != nil {
		serr = werr
	}
	return out.String(), errb.String(), serr
}

// The program gets its own arguments, environment and directory; the
// shim's Go runtime does not see the program's environment (GODEBUG here;
// LD_PRELOAD likewise for the loader of a dynamically linked slapnode).
func TestShimRunsProgram(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command("/bin/sh", "-c", `pwd; echo "$FOO"; echo "$0"`, "argzero")
	cmd.Dir = dir
	cmd.Env = []string{"FOO=bar baz", "GODEBUG=inittrace=1", "PATH=/usr/bin:/bin"}
	out, errOut, err := runShim(t, cmd, Confine{Cgroups: nil})
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	if want := dir + "\nbar baz\nargzero\n"; out != want {
		t.Errorf("output %q, want %q", out, want)
	}
	if strings.Contains(errOut, "init ") {
		t.Errorf("the shim's runtime saw the program's GODEBUG:\n%s", errOut)
	}
}

func TestShimReportsExecErrors(t *testing.T) {
	cmd := exec.Command("/nonexistent/slntest-program")
	_, _, err := runShim(t, cmd, Confine{})
	if err == nil || !strings.Contains(err.Error(), "no such file or directory") {
		t.Errorf("exec of a missing program: %v", err)
	}
	var ee *exec.ExitError
	if errors.As(cmd.Wait(), &ee) {
		t.Log("already waited")
	}
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != ShimExitCode {
		t.Errorf("shim exit state %v, want %d", cmd.ProcessState, ShimExitCode)
	}
	cmd = exec.Command("/bin/true")
	cmd.Dir = "/nonexistent/slntest-dir"
	if _, _, err := runShim(t, cmd, Confine{}); err == nil || !strings.Contains(err.Error(), "chdir") {
		t.Errorf("chdir to a missing directory: %v", err)
	}
	// Without a status pipe the reason goes to the program's stderr.
	cmd = exec.Command("/nonexistent/slntest-program")
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if _, err := ThroughShim(cmd, Confine{NetNS: "/nonexistent/slntest-ns"}, false); err != nil {
		t.Fatal(err)
	}
	err = cmd.Run()
	if !errors.As(err, &ee) || ee.ExitCode() != ShimExitCode || !strings.Contains(errb.String(), "slntest-ns") {
		t.Errorf("no status pipe: %v, stderr %q", err, errb.String())
	}
}

func TestWaitExec(t *testing.T) {
	cmd := exec.Command("/bin/sleep", "30")
	if _, err := ThroughShim(cmd, Confine{NetNS: "/proc/self/ns/net"}, false); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		t.Skip("entering a network namespace needs root")
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	WaitExec(cmd.Process.Pid)
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", cmd.Process.Pid))
	if string(b) != "/bin/sleep\x0030\x00" {
		t.Errorf("after WaitExec the process runs %q", b)
	}
}

// As root: the program is in the cgroup before its first instruction,
// runs as the given user and groups, and its directory is entered as that
// user (a directory only root may enter is refused).
func TestShimJoinsCgroupsAndDrops(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("joining cgroups and changing user need root")
	}
	var cg string
	for _, h := range []string{"/sys/fs/cgroup/pids", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		if _, err := os.Stat(filepath.Join(h, "cgroup.procs")); err == nil {
			cg = filepath.Join(h, fmt.Sprintf("slntest-nsexec-%d", os.Getpid()))
			break
		}
	}
	if cg == "" {
		t.Skip("no cgroup hierarchy mounted")
	}
	if err := os.Mkdir(cg, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.Remove(cg); err != nil {
			t.Errorf("removing %s: %v", cg, err)
		}
	})
	private := t.TempDir() // 0700, root's
	cmd := exec.Command("/bin/sh", "-c", "cat /proc/self/cgroup; id -u; id -G")
	cmd.Dir = private
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{65534}}}
	if _, _, err := runShim(t, cmd, Confine{Cgroups: []string{cg}, NetNS: "/proc/self/ns/net"}); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("the directory was entered as root: %v", err)
	}
	cmd = exec.Command("/bin/sh", "-c", "cat /proc/self/cgroup; id -u; id -G")
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{65534}}}
	out, errOut, err := runShim(t, cmd, Confine{Cgroups: []string{cg}, NetNS: "/proc/self/ns/net"})
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	rel := strings.TrimPrefix(cg, filepath.Dir(cg))
	if !strings.Contains(out, ":"+rel+"\n") || !strings.HasSuffix(out, "65534\n65534\n") {
		t.Errorf("output:\n%s", out)
	}
}

// A parent-death signal survives the credential change (which clears it):
// the shim sets it again, and, its starter being alive, runs the program.
func TestShimKeepsPdeathsig(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("changing user needs root")
	}
	cmd := exec.Command("/bin/sh", "-c", "grep -E '^(Uid|PPid)' /proc/$$/status")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, errOut, err := runShim(t, cmd, Confine{NetNS: "/proc/self/ns/net"})
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	if !strings.Contains(out, fmt.Sprintf("PPid:\t%d\n", os.Getpid())) || !strings.Contains(out, "Uid:\t65534") {
		t.Errorf("status:\n%s", out)
	}
}
