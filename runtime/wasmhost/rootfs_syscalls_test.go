package wasmhost

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"golang.org/x/sys/unix"
)

// syscallChildEnv makes the test binary run TestRootFSSyscalls's
// operations in a directory, for strace to count.
const syscallChildEnv = "SLAPNODE_TEST_SYSCALL_DIR"

// countedSyscalls are the file system calls a guest operation costs the
// host. The permission change itself (fchmodat2, or chmod of /proc/self/fd
// on kernels before 6.6) is left out: it is the work, and which one runs
// depends on the kernel.
var countedSyscalls = []string{"openat", "openat2", "open", "close", "fstat", "newfstatat", "statx",
	"fcntl", "mkdirat", "renameat", "renameat2", "unlinkat", "linkat", "symlinkat", "epoll_ctl",
	"ftruncate", "geteuid", "read", "write", "pread64", "pwrite64"}

// syscallBudget is what each phase of syscallPhases costs on Linux with
// openat2 (issue 21), with what it cost before.
var syscallBudget = map[string]int{
	// Stat of the directory (openat2 O_PATH + fstat + close), the
	// exclusive create (openat2 + os.NewFile's F_GETFL + fstat), the
	// guest's fd_fdstat_get (fstat), write, close, slapnode.chmod
	// (openat2 O_PATH + fstat + close), Lstat of the missing target
	// (openat2), rename in one directory (openat2 + renameat + close):
	// 31 before.
	"template": 16,
	// Stat of the missing directory (openat2), of its parent in the mount
	// (fstatat), mkdir (openat2 of the parent + mkdirat + close), Stat of
	// the new directory (3): 11 before.
	"mkdirectory": 8,
	// Open for reading (openat2 + fstat + F_SETFL + F_GETFL), read, close:
	// 12 before (os.Root's walk and its poller registration).
	"read": 6,
}

// syscallPhases runs, on one locked thread, what the cookbook's template
// and mkdirectory recipes make wazero ask of the mount (the calls of
// strace -f on a first apply), and a read, each between two getpgid
// markers strace sees.
func syscallPhases(dir string, round int) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	s := (&Host{}).NewSession(SessionConfig{Mounts: []Mount{{HostPath: dir}}})
	defer s.Close(context.Background())
	if _, err := s.fs(); err != nil {
		return err
	}
	fsys := s.roots[0]
	d := fmt.Sprintf("work/d%d", round)
	if e := fsys.Mkdir(d, 0o755); e != 0 {
		return e
	}
	mark := func(phase string, end bool) {
		n := 424200 + 2*phaseIndex(phase)
		if end {
			n++
		}
		unix.Getpgid(n)
	}
	check := func(what string, e experimentalsys.Errno, want experimentalsys.Errno) error {
		if e != want {
			return fmt.Errorf("%s: %v, want %v", what, e, want)
		}
		return nil
	}
	var errs []error
	keep := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}

	mark("template", false)
	_, e := fsys.Stat(d)
	keep(check("stat", e, 0))
	f, e := fsys.OpenFile(d+"/t.tmp", experimentalsys.O_WRONLY|experimentalsys.O_CREAT|experimentalsys.O_TRUNC, 0o600)
	keep(check("create", e, 0))
	if f != nil {
		_, e = f.Stat()
		keep(check("fstat", e, 0))
		_, e = f.Write([]byte("rendered\n"))
		keep(check("write", e, 0))
		keep(check("close", f.Close(), 0))
	}
	req, _ := json.Marshal(chmodRequest{Path: filepath.Join(dir, d, "t.tmp"), Mode: 0o644})
	if r, ok := (&Host{}).chmod(context.Background(), &callState{s: s}, req).(errorResponse); ok {
		keep(fmt.Errorf("chmod: %v", r))
	}
	_, e = fsys.Lstat(d + "/t")
	keep(check("lstat", e, experimentalsys.ENOENT))
	keep(check("rename", fsys.Rename(d+"/t.tmp", d+"/t"), 0))
	mark("template", true)

	mark("mkdirectory", false)
	n := fmt.Sprintf("work/e%d", round)
	_, e = fsys.Stat(n)
	keep(check("stat", e, experimentalsys.ENOENT))
	_, e = fsys.Stat("work")
	keep(check("stat parent", e, 0))
	keep(check("mkdir", fsys.Mkdir(n, 0o700), 0))
	_, e = fsys.Stat(n)
	keep(check("stat", e, 0))
	mark("mkdirectory", true)

	mark("read", false)
	f, e = fsys.OpenFile(d+"/t", experimentalsys.O_RDONLY, 0)
	keep(check("open", e, 0))
	if f != nil {
		buf := make([]byte, 64)
		_, e = f.Read(buf)
		keep(check("read", e, 0))
		keep(check("close", f.Close(), 0))
	}
	mark("read", true)
	if len(errs) > 0 {
		return fmt.Errorf("round %d: %v", round, errs)
	}
	return nil
}

func phaseIndex(phase string) int {
	return map[string]int{"template": 0, "mkdirectory": 1, "read": 2}[phase]
}

// TestRootFSSyscalls counts, with strace, the host system calls of a
// template and a mkdirectory call's file operations and of a read, on the
// real mount types (no wrapper: the test binary runs them under strace),
// and fails when one costs more than its budget: each call is
// microseconds, paid for every part of a first apply. The least of three
// rounds is taken (a signal can add a call). Skipped without strace or
// ptrace, and on kernels without openat2 (the slower fallbacks then run).
func TestRootFSSyscalls(t *testing.T) {
	if dir := os.Getenv(syscallChildEnv); dir != "" {
		for round := range 3 {
			if err := syscallPhases(dir, round); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	strace, err := exec.LookPath("strace")
	if err != nil {
		t.Skip("strace is not installed: the system calls cannot be counted")
	}
	if fd, err := unix.Openat2(unix.AT_FDCWD, "/", &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC}); err != nil {
		t.Skipf("no openat2 (%v): the fallbacks are not budgeted", err)
	} else {
		unix.Close(fd)
	}
	dir := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(dir, "work"), 0o755))
	out := filepath.Join(t.TempDir(), "strace")
	var trace []string
	for _, name := range append(countedSyscalls, "getpgid") {
		trace = append(trace, "?"+name) // unknown on this architecture: ignored
	}
	cmd := exec.Command(strace, "-f", "-qq", "-o", out, "-e", "trace="+strings.Join(trace, ","),
		os.Args[0], "-test.run", "^TestRootFSSyscalls$", "-test.count", "1")
	cmd.Env = append(os.Environ(), syscallChildEnv+"="+dir)
	if b, err := cmd.CombinedOutput(); err != nil {
		if strings.Contains(string(b), "ptrace") || strings.Contains(string(b), "Operation not permitted") {
			t.Skipf("strace cannot trace here: %s", b)
		}
		t.Fatalf("%v: %s", err, b)
	}
	counts, calls, err := countPhases(out)
	must(t, err)
	for phase, budget := range syscallBudget {
		got, ok := counts[phase]
		switch {
		case !ok:
			t.Errorf("%s: no markers in the trace", phase)
		case got > budget:
			t.Errorf("%s costs %d system calls, budget %d:\n%s", phase, got, budget, strings.Join(calls[phase], "\n"))
		default:
			t.Logf("%s: %d system calls (budget %d)", phase, got, budget)
		}
	}
}

// countPhases reads an strace -f output and returns, for each phase, the
// least number of counted calls its thread made between its markers, and
// those calls.
func countPhases(file string) (map[string]int, map[string][]string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	line := regexp.MustCompile(`^(\d+) +(?:<\.\.\. )?(\w+)\((.*)`)
	marker := regexp.MustCompile(`^getpgid\((4242\d\d)`)
	names := map[string]bool{}
	for _, n := range countedSyscalls {
		names[n] = true
	}
	phases := []string{"template", "mkdirectory", "read"}
	counts := map[string]int{}
	calls := map[string][]string{}
	open := map[string][]string{} // thread -> calls of the phase in progress
	cur := map[string]string{}    // thread -> phase in progress
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := line.FindStringSubmatch(sc.Text())
		if m == nil || strings.Contains(sc.Text(), "resumed>") {
			continue // a call split by another thread's is counted once
		}
		tid, name := m[1], m[2]
		if mm := marker.FindStringSubmatch(name + "(" + m[3]); mm != nil {
			var n int
			fmt.Sscan(mm[1], &n)
			phase, end := phases[(n-424200)/2], (n-424200)%2 == 1
			if !end {
				cur[tid], open[tid] = phase, nil
				continue
			}
			if cur[tid] == phase {
				if c, ok := counts[phase]; !ok || len(open[tid]) < c {
					counts[phase], calls[phase] = len(open[tid]), open[tid]
				}
			}
			delete(cur, tid)
			continue
		}
		if cur[tid] != "" && names[name] {
			open[tid] = append(open[tid], sc.Text())
		}
	}
	return counts, calls, sc.Err()
}
