package supervisor

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/slapnode/slapnode/node/format/cgroup"
)

// How a stop finds every process of a service, so that none survives:
//
//  1. With a cgroup, the service runs alone in a child cgroup of the
//     partition's: its member list is exact whatever the processes do
//     (double fork, setsid), and cgroup v2's cgroup.kill ends them at once.
//  2. Without one (rootless, or a node without cgroups), the supervisor
//     signals the process group, the descendants of the main process, and
//     every process carrying the service's marker in its environment
//     (SLAPNODE_SERVICE, set at start and inherited by every descendant
//     that does not deliberately wipe its environment). The supervisor is
//     also a child subreaper (PR_SET_CHILD_SUBREAPER), so orphans that
//     escaped with setsid are re-parented to it rather than to init: they
//     stay its descendants, it reaps their zombies, and they are found even
//     after the daemon restarts, by the marker.
const markerVar = "SLAPNODE_SERVICE"

type procStat struct {
	ppid, pgid int
	zombie     bool
	start      uint64 // start time in clock ticks since boot: tells a reused pid apart
}

// readStat parses /proc/PID/stat; the command name may contain spaces and
// parentheses, so fields are counted from the last ')'.
func readStat(pid int) (procStat, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return procStat{}, false
	}
	ppid, _ := strconv.Atoi(f[1])
	pgid, _ := strconv.Atoi(f[2])
	start, _ := strconv.ParseUint(f[19], 10, 64)
	return procStat{ppid: ppid, pgid: pgid, zombie: f[0] == "Z" || f[0] == "X", start: start}, true
}

func allProcs() map[int]procStat {
	ents, _ := os.ReadDir("/proc")
	m := make(map[int]procStat, len(ents))
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, ok := readStat(pid); ok {
			m[pid] = st
		}
	}
	return m
}

// markerOf returns the value of the SLAPNODE_SERVICE variable a process
// was started with, "" if none or unreadable.
func markerOf(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return ""
	}
	for _, kv := range bytes.Split(b, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte(markerVar+"=")); ok {
			return string(v)
		}
	}
	return ""
}

// findProcs returns the live processes of a service: those in its cgroups,
// its process group pgid (the main pid; the kernel does not reuse a pid
// while a group of that id exists, so this is safe after main exited), main
// itself while mainAlive, the descendants of all those and, without a
// cgroup, those whose marker matches (equal to marker, or starting with it
// if prefix). A cgroup is exact, so the environment scan is skipped then.
func findProcs(pgid int, mainAlive bool, cg *cgroupSet, marker string, prefix bool) []int {
	if cg != nil && pgid > 0 {
		// Everything forked by the service is in its cgroup (cloned
		// into it); zombies leave cgroup.procs when they exit.
		return cg.pids()
	}
	self := os.Getpid()
	procs := allProcs()
	found := map[int]bool{}
	// The main processes of services are children of this process too, but
	// not orphans: their environment need not be read (a mass stop would
	// read it hundreds of times).
	orphans.Lock()
	mains := maps.Clone(orphans.mains)
	orphans.Unlock()
	for pid, st := range procs {
		if pid == self || st.zombie {
			continue
		}
		if pgid > 0 && (st.pgid == pgid || mainAlive && pid == pgid) {
			found[pid] = true
			continue
		}
		// Orphans that escaped the group are re-parented to this
		// subreaper, so only its own children need their environment read
		// (reading every process's is what makes a mass stop slow).
		if marker != "" && cg == nil && (st.ppid == self && !mains[pid] || !subreaper.Load() || prefix) {
			m := markerOf(pid)
			if m == marker || prefix && strings.HasPrefix(m, marker) {
				found[pid] = true
			}
		}
	}
	// Add descendants of everything found so far (a child that changed its
	// group and wiped its environment is still a child).
	children := map[int][]int{}
	for pid, st := range procs {
		children[st.ppid] = append(children[st.ppid], pid)
	}
	stack := make([]int, 0, len(found))
	for pid := range found {
		stack = append(stack, pid)
	}
	for len(stack) > 0 {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, c := range children[p] {
			if !found[c] && c != self {
				found[c] = true
				stack = append(stack, c)
			}
		}
	}
	out := make([]int, 0, len(found))
	for pid := range found {
		if st, ok := procs[pid]; ok && st.zombie {
			continue
		}
		out = append(out, pid)
	}
	return out
}

func signalAll(pids []int, sig syscall.Signal) {
	for _, pid := range pids {
		_ = syscall.Kill(pid, sig)
	}
}

// subreaper is set once this process is a child subreaper.
var subreaper atomic.Bool

// enableSubreaper makes this process the reaper of its orphaned
// descendants. It is process-wide and harmless to call twice.
func enableSubreaper() error {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_CHILD_SUBREAPER): %w", err)
	}
	subreaper.Store(true)
	return nil
}

// orphans tracks the processes of services that were re-parented to this
// process. Only those are reaped here: a blanket wait(-1) would steal the
// exit status of children other code of the daemon runs with os/exec (and
// of the services' main processes, which os/exec waits for).
var orphans = struct {
	sync.Mutex
	adopted map[int]bool
	mains   map[int]bool // main processes of services, waited for by os/exec
}{adopted: map[int]bool{}, mains: map[int]bool{}}

// reapOrphans records the live adopted orphans that carry a marker starting
// with idPrefix (one scan of /proc) and reaps the recorded ones that died.
// It is the fallback of reapZombies on kernels without pidfds: there, an
// orphan that is born and dies between two calls stays a zombie until the
// daemon exits.
func reapOrphans(idPrefix string) {
	self := os.Getpid()
	procs := allProcs()
	orphans.Lock()
	for pid, st := range procs {
		if st.ppid == self && !st.zombie && !orphans.mains[pid] && !orphans.adopted[pid] && strings.HasPrefix(markerOf(pid), idPrefix) {
			orphans.adopted[pid] = true
		}
	}
	orphans.Unlock()
	reapAdopted()
}

// zombieChild tells whether a child of this process has exited and waits
// to be reaped, without reaping it (waitid with WNOWAIT): one system call,
// where reapZombies reads the status of every process on the machine.
func zombieChild() bool {
	var info unix.Siginfo
	err := unix.Waitid(unix.P_ALL, 0, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
	if errors.Is(err, unix.ECHILD) {
		return false // no child at all
	}
	// The kernel fills in SIGCHLD only when it found a dead child; on any
	// other error, look.
	return err != nil || info.Signo == int32(unix.SIGCHLD)
}

// reapMu keeps two reapZombies from seeing each other's pidfds as held.
var reapMu sync.Mutex

// errNoPidfd says the kernel has no pidfd_open (Linux < 5.3).
var errNoPidfd = errors.New("pidfd_open not supported")

// reapZombies reaps every dead child of this process that no code of the
// process is going to wait for, and returns how many. As a subreaper the
// daemon inherits every orphan of the services: when a service's tree is
// killed from outside (its main process first), thousands of dead children
// may land here, most of them never seen alive. The ones some code will
// wait for are the children started by os/exec (services' main processes,
// and any command the daemon runs): os/exec holds a pidfd on each until it
// waits for it, so a dead child without a pidfd in this process is an
// orphan, and reaping it steals no exit status. Each one is opened with
// pidfd_open and reaped through that pidfd, so a reused pid cannot be hit.
func reapZombies() (int, error) {
	reapMu.Lock()
	defer reapMu.Unlock()
	self := os.Getpid()
	var dead []int
	starts := map[int]uint64{}
	for pid, st := range allProcs() {
		if st.ppid == self && st.zombie {
			dead = append(dead, pid)
			starts[pid] = st.start
		}
	}
	if len(dead) == 0 {
		return 0, nil
	}
	orphans.Lock()
	mains := maps.Clone(orphans.mains)
	orphans.Unlock()
	held := heldPidfds()
	n := 0
	for _, pid := range dead {
		if mains[pid] || held[pid] {
			continue
		}
		fd, err := unix.PidfdOpen(pid, 0)
		if errors.Is(err, unix.ENOSYS) {
			return n, errNoPidfd
		}
		if err != nil {
			continue // reaped meanwhile
		}
		// The pid still names the same dead child (not a new process that
		// reused it), and nobody took a pidfd on it meanwhile.
		st, ok := readStat(pid)
		if ok && st.zombie && st.ppid == self && st.start == starts[pid] && !heldPidfd(pid, fd) {
			var info unix.Siginfo
			if unix.Waitid(unix.P_PIDFD, fd, &info, unix.WEXITED|unix.WNOHANG, nil) == nil {
				n++
			}
		}
		unix.Close(fd)
	}
	return n, nil
}

// heldPidfds returns the pids that the pidfds open in this process refer to.
func heldPidfds() map[int]bool {
	held := map[int]bool{}
	ents, _ := os.ReadDir("/proc/self/fdinfo")
	for _, e := range ents {
		if pid := pidfdTarget(e.Name()); pid > 0 {
			held[pid] = true
		}
	}
	return held
}

// heldPidfd reports whether a pidfd other than ours refers to pid.
func heldPidfd(pid, ours int) bool {
	ents, _ := os.ReadDir("/proc/self/fdinfo")
	for _, e := range ents {
		if e.Name() != strconv.Itoa(ours) && pidfdTarget(e.Name()) == pid {
			return true
		}
	}
	return false
}

// pidfdTarget returns the pid of fd's "Pid:" line in /proc/self/fdinfo (only
// pidfds have one), 0 for any other file.
func pidfdTarget(fd string) int {
	b, err := os.ReadFile("/proc/self/fdinfo/" + fd)
	if err != nil {
		return 0
	}
	_, rest, ok := bytes.Cut(b, []byte("\nPid:"))
	if !ok {
		return 0
	}
	line, _, _ := bytes.Cut(rest, []byte("\n"))
	pid, _ := strconv.Atoi(strings.TrimSpace(string(line)))
	return pid
}

// adopt records which of pids (processes of a service being stopped) are
// orphans re-parented to this process, so that reapAdopted collects them.
func adopt(pids []int) {
	self := os.Getpid()
	orphans.Lock()
	defer orphans.Unlock()
	for _, pid := range pids {
		if st, ok := readStat(pid); ok && st.ppid == self && !orphans.mains[pid] {
			orphans.adopted[pid] = true
		}
	}
}

// reapAdopted collects the adopted orphans that died, without scanning /proc.
func reapAdopted() {
	orphans.Lock()
	defer orphans.Unlock()
	for pid := range orphans.adopted {
		var ws unix.WaitStatus
		got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		if got == pid || err != nil { // reaped, or not (or no longer) our child
			delete(orphans.adopted, pid)
		}
	}
}

// cgroupSet is the per-service child of each cgroup directory the spec names.
type cgroupSet struct {
	dirs   []string        // dirs[0] is the main one
	groups []*cgroup.Group // the same, through containerd's cgroups
	v2     bool            // dirs[0] is on a cgroup2 filesystem
}

// newCgroupSet creates (or reuses) the child directories. leaf is the
// service's own directory name.
func newCgroupSet(sp *ServiceSpec, leaf string) (*cgroupSet, error) {
	if sp.Cgroup == "" {
		return nil, nil
	}
	cg := &cgroupSet{}
	for _, parent := range append([]string{sp.Cgroup}, sp.ExtraCgroups...) {
		if _, err := os.Stat(filepath.Join(parent, "cgroup.procs")); err != nil {
			return nil, fmt.Errorf("cgroup %s of partition %s is not a cgroup directory (the node layer creates it): %w", parent, sp.Partition, err)
		}
		p, err := cgroup.Open(parent)
		if err != nil {
			return nil, fmt.Errorf("cgroup of partition %s: %w", sp.Partition, err)
		}
		g, err := p.Child(leaf)
		if err != nil {
			return nil, err
		}
		cg.dirs = append(cg.dirs, g.Dir())
		cg.groups = append(cg.groups, g)
	}
	cg.v2 = cg.groups[0].V2()
	return cg, nil
}

func (cg *cgroupSet) pids() []int {
	var out []int
	for _, g := range cg.groups {
		pids, _ := g.Procs()
		out = append(out, pids...)
	}
	return out
}

// kill ends every member at once where the kernel offers it (cgroup v2's
// cgroup.kill, Linux ≥ 5.14); elsewhere the caller signals the members.
func (cg *cgroupSet) kill() bool {
	return cg.groups[0].KillAll() == nil
}

// remove deletes the service's directories; a busy one is left behind
// (it is reused at the next start).
func (cg *cgroupSet) remove() {
	for _, g := range cg.groups {
		_ = g.Delete()
	}
}
