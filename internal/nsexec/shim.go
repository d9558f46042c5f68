package nsexec

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The exec shim. A process must be in all of its cgroups before the first
// instruction of the program it runs: cgroup v2 can clone a process
// straight into one cgroup (CLONE_INTO_CGROUP), but cgroup v1 has no such
// call, and a v1 or hybrid machine (v1 controllers beside a v2 hierarchy)
// keeps its memory and pids limits in v1 directories. Moving the process
// after it started leaves a window in which what it forks stays in the
// starter's cgroups, outside every limit. So, as runc does, the starter
// re-executes its own binary (/proc/self/exe) in a hidden mode; that
// process, still running slapnode's code, writes its own pid into the
// cgroup.procs of every cgroup it must join, enters the network namespace,
// drops to the target user, changes to the working directory as that user,
// and only then executes the program. Nothing the program does runs
// outside its cgroups.
//
// The shim mode is recognised by argv[0] in this package's init, so that
// every binary that links the package — slapnode, and the test binaries of
// the packages that start services — serves it without a hook of its own.

// shimArg0 is the argv[0] that selects the shim mode.
const shimArg0 = "slapnode-exec-shim"

// envPrefix hides the target's environment from the shim's own process:
// the shim runs as root in a dynamically linked binary, so LD_PRELOAD,
// LD_LIBRARY_PATH, GODEBUG… meant for the program must not reach the
// dynamic loader or the Go runtime of the shim. The shim strips the prefix
// when it executes the program.
const envPrefix = "_SLAPNODE_ENV_"

// ShimExitCode is the exit status of a shim that could not execute its
// program (as a shell's "command not found").
const ShimExitCode = 127

// shimConfig is what the starter tells the shim (argv[1], JSON).
type shimConfig struct {
	Path      string   `json:"path"`
	Dir       string   `json:"dir,omitempty"`
	Cgroups   []string `json:"cgroups,omitempty"`
	NetNS     string   `json:"netns,omitempty"`
	Cred      *cred    `json:"cred,omitempty"`
	Pdeathsig int      `json:"pdeathsig,omitempty"`
	Parent    int      `json:"parent,omitempty"`    // the starter's pid, for Pdeathsig
	StatusFD  int      `json:"status_fd,omitempty"` // 0: none
}

type cred struct {
	Uid, Gid    uint32
	Groups      []uint32 `json:",omitempty"`
	NoSetGroups bool     `json:",omitempty"`
}

// Confine says where a command must be before its program starts.
type Confine struct {
	// Cgroups are cgroup directories whose cgroup.procs the process joins
	// (v1 controller directories, or v2 ones it was not cloned into).
	Cgroups []string
	// NetNS is a network namespace (a name under /run/netns or a path).
	NetNS string
}

// Empty reports whether c asks for nothing, so that no shim is needed.
func (c Confine) Empty() bool { return len(c.Cgroups) == 0 && c.NetNS == "" }

// Shim is one command rewritten to start through the shim.
type Shim struct {
	statusR, statusW *os.File
}

// ThroughShim rewrites cmd, before its Start, so that it starts through
// the shim, which joins c's cgroups and network namespace, takes the
// credential of cmd.SysProcAttr and the working directory of cmd.Dir, and
// executes cmd.Path with cmd.Args and cmd's environment. The other
// SysProcAttr settings (process group, CgroupFD…) apply to the shim's
// process, which becomes the program's. With status, Started reports
// whether the program was executed (or why not) once cmd has started;
// without, a shim that fails writes the reason to the command's stderr and
// exits with ShimExitCode. Call Close in every case once Start returned.
func ThroughShim(cmd *exec.Cmd, c Confine, status bool) (*Shim, error) {
	if cmd.Path == "" {
		return nil, errors.New("exec shim: command has no path")
	}
	cfg := shimConfig{Path: cmd.Path, Dir: cmd.Dir, Cgroups: c.Cgroups, NetNS: c.NetNS}
	env := cmd.Environ()
	attr := cmd.SysProcAttr
	if attr == nil {
		attr = &syscall.SysProcAttr{}
		cmd.SysProcAttr = attr
	}
	if cr := attr.Credential; cr != nil {
		cfg.Cred = &cred{Uid: cr.Uid, Gid: cr.Gid, Groups: append([]uint32(nil), cr.Groups...), NoSetGroups: cr.NoSetGroups}
		attr.Credential = nil // the shim starts privileged and drops itself
	}
	if attr.Pdeathsig != 0 {
		// A credential change clears the parent-death signal: the shim
		// sets it again after dropping.
		cfg.Pdeathsig, cfg.Parent = int(attr.Pdeathsig), os.Getpid()
	}
	sh := &Shim{}
	if status {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, fmt.Errorf("exec shim: %w", err)
		}
		sh.statusR, sh.statusW = r, w
		cmd.ExtraFiles = append(cmd.ExtraFiles, w)
		cfg.StatusFD = 2 + len(cmd.ExtraFiles)
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		sh.Close()
		return nil, fmt.Errorf("exec shim: %w", err)
	}
	shimEnv := make([]string, len(env))
	for i, kv := range env {
		shimEnv[i] = envPrefix + kv
	}
	cmd.Args = append([]string{shimArg0, string(b), "--"}, cmd.Args...)
	cmd.Path = "/proc/self/exe"
	cmd.Env = shimEnv
	// The shim changes directory itself, as the target user: entering a
	// directory as root would let the program start in a place its user
	// cannot reach.
	cmd.Dir = ""
	return sh, nil
}

// Started waits until the shim of a started command executed its program,
// and returns the shim's error if it could not (the process then exits
// with ShimExitCode: Wait for it). It is nil for a Shim made without
// status.
func (s *Shim) Started() error {
	if s == nil || s.statusR == nil {
		return nil
	}
	s.statusW.Close()
	s.statusW = nil
	// The shim's copy of the pipe closes when it executes the program
	// (close-on-exec): EOF with nothing read means success.
	b, err := io.ReadAll(io.LimitReader(s.statusR, 64<<10))
	s.statusR.Close()
	s.statusR = nil
	if err != nil {
		return fmt.Errorf("exec shim: reading its status: %w", err)
	}
	if len(b) > 0 {
		return errors.New(string(b))
	}
	return nil
}

// Close releases the status pipe (after a failed Start, or when Started
// was not called).
func (s *Shim) Close() {
	if s == nil {
		return
	}
	for _, f := range []*os.File{s.statusR, s.statusW} {
		if f != nil {
			f.Close()
		}
	}
	s.statusR, s.statusW = nil, nil
}

func init() {
	if len(os.Args) > 0 && os.Args[0] == shimArg0 {
		shimMain(os.Args[1:])
	}
}

// shimMain runs in the re-executed process and never returns.
func shimMain(args []string) {
	// The network namespace is entered by this thread only, and the
	// program is executed from it: execve gives the new program the
	// calling thread's namespaces and ends every other thread.
	runtime.LockOSThread()
	var cfg shimConfig
	fail := func(format string, a ...any) {
		msg := fmt.Sprintf(format, a...)
		if cfg.StatusFD > 0 {
			_, _ = unix.Write(cfg.StatusFD, []byte(msg))
		} else {
			fmt.Fprintf(os.Stderr, "slapnode: %s\n", msg)
		}
		os.Exit(ShimExitCode)
	}
	if len(args) < 3 || args[1] != "--" {
		fail("exec shim: bad arguments (this mode is internal to slapnode)")
	}
	if err := json.Unmarshal([]byte(args[0]), &cfg); err != nil {
		fail("exec shim: bad configuration: %v", err)
	}
	argv := args[2:]
	if cfg.StatusFD > 0 {
		// Closed by the exec: the starter reads EOF once the program runs.
		if _, err := unix.FcntlInt(uintptr(cfg.StatusFD), unix.F_SETFD, unix.FD_CLOEXEC); err != nil {
			cfg.StatusFD = 0
			fail("exec shim: status pipe: %v", err)
		}
	}
	env := make([]string, 0, len(os.Environ()))
	for _, kv := range os.Environ() {
		if v, ok := strings.CutPrefix(kv, envPrefix); ok {
			env = append(env, v)
		}
	}
	pid := []byte(strconv.Itoa(os.Getpid()))
	for _, d := range cfg.Cgroups {
		if err := joinCgroup(d, pid); err != nil {
			fail("moving pid %d into cgroup %s: %v", os.Getpid(), d, err)
		}
	}
	if cfg.NetNS != "" {
		fd, err := unix.Open(Path(cfg.NetNS), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			fail("opening network namespace %s: %v", cfg.NetNS, err)
		}
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			fail("entering network namespace %s: %v", cfg.NetNS, err)
		}
		unix.Close(fd)
	}
	if c := cfg.Cred; c != nil {
		if err := dropTo(c); err != nil {
			fail("switching to uid %d gid %d: %v", c.Uid, c.Gid, err)
		}
	}
	if cfg.Pdeathsig != 0 {
		if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(cfg.Pdeathsig), 0, 0, 0); err != nil {
			fail("setting the parent-death signal: %v", err)
		}
		if os.Getppid() != cfg.Parent {
			os.Exit(ShimExitCode) // the starter is already gone
		}
	}
	if cfg.Dir != "" {
		if err := unix.Chdir(cfg.Dir); err != nil {
			fail("chdir %s: %v", cfg.Dir, err)
		}
	}
	err := unix.Exec(cfg.Path, argv, env)
	fail("fork/exec %s: %v", cfg.Path, err)
}

// joinCgroup writes pid into dir's cgroup.procs. The kernel moves every
// thread of the process.
func joinCgroup(dir string, pid []byte) error {
	f, err := os.OpenFile(dir+"/cgroup.procs", os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.Write(pid)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// dropTo sets the groups, gid and uid of the process, in that order (as
// os/exec does), before the program is executed.
func dropTo(c *cred) error {
	if !c.NoSetGroups {
		groups := make([]int, len(c.Groups))
		for i, g := range c.Groups {
			groups[i] = int(g)
		}
		if err := syscall.Setgroups(groups); err != nil {
			return fmt.Errorf("setgroups: %w", err)
		}
	}
	if err := syscall.Setresgid(int(c.Gid), int(c.Gid), int(c.Gid)); err != nil {
		return fmt.Errorf("setresgid: %w", err)
	}
	if err := syscall.Setresuid(int(c.Uid), int(c.Uid), int(c.Uid)); err != nil {
		return fmt.Errorf("setresuid: %w", err)
	}
	return nil
}

// WaitExec waits until process pid, started through a shim without a
// status pipe, has left the shim: it executed its program, or exited. It
// is for callers that only have the pid (the shim of a command that could
// not be executed exits with ShimExitCode, which Wait reports).
func WaitExec(pid int) {
	cmdline := "/proc/" + strconv.Itoa(pid) + "/cmdline"
	delay := 20 * time.Microsecond
	for {
		b, err := os.ReadFile(cmdline)
		if err != nil {
			return // gone
		}
		// The command line is empty for a zombie, and also for a moment
		// while execve replaces the process's memory: only the first
		// means it is over.
		if len(b) == 0 && zombie(pid) {
			return
		}
		if len(b) > 0 && !strings.HasPrefix(string(b), shimArg0+"\x00") {
			return
		}
		time.Sleep(delay)
		delay = min(2*delay, 10*time.Millisecond)
	}
}

// zombie reports whether pid has exited (or is gone): state Z or X in
// /proc/PID/stat, after the parenthesised command name.
func zombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 || i+2 >= len(b) {
		return true
	}
	return b[i+2] == 'Z' || b[i+2] == 'X'
}
