// Package cgroup creates the cgroup of each partition and sets its cpu,
// memory and pids limits, on cgroup v2, on cgroup v1, and on the hybrid
// machines that have both (v1 controllers plus a v2 hierarchy without
// them, as systemd's "hybrid" mode and this project's CI machines).
//
// Each partition has one main cgroup directory and, on v1 or hybrid
// machines, extra directories in the other controller hierarchies
// (supervisor.ServiceSpec's Cgroup and ExtraCgroups). The main one is on
// the v2 hierarchy whenever there is one, even with no controller in it:
// its membership is exact, processes can be cloned straight into it
// (clone3 CLONE_INTO_CGROUP, exec.Cmd's SysProcAttr.UseCgroupFD) and
// cgroup.kill ends them all at once. Limits go wherever the controller is.
//
// The package writes the cgroup file system directly rather than through
// containerd/cgroups: the few files involved are the kernel's stable
// interface, and that library would bring eBPF, D-Bus and systemd client
// code into the node for no gain here.
package cgroup

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/slapnode/slapnode/node/config"
)

// ErrBusy is returned when a cgroup to remove still has processes.
var ErrBusy = errors.New("cgroup has processes")

// Controllers slapnode sets limits with.
var Controllers = []string{"cpu", "memory", "pids"}

// Layout says where the cgroup hierarchies of this machine are mounted.
type Layout struct {
	// V2 is the mount point of the cgroup2 hierarchy, "" without one.
	V2 string
	// V2Controllers are the controllers the v2 hierarchy offers
	// (its root's cgroup.controllers).
	V2Controllers map[string]bool
	// V1 maps a v1 controller to the mount point of its hierarchy (several
	// controllers may share one, like cpu,cpuacct).
	V1 map[string]string
}

// Detect reads the hierarchies of this process's mount namespace.
func Detect() (*Layout, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("finding cgroup hierarchies: %w", err)
	}
	defer f.Close()
	l, err := ParseMountinfo(f)
	if err != nil {
		return nil, err
	}
	if l.V2 != "" {
		b, err := os.ReadFile(filepath.Join(l.V2, "cgroup.controllers"))
		if err != nil {
			return nil, fmt.Errorf("reading the cgroup v2 controllers: %w", err)
		}
		for _, c := range strings.Fields(string(b)) {
			l.V2Controllers[c] = true
		}
	}
	return l, nil
}

// ParseMountinfo finds the cgroup mounts in a /proc/PID/mountinfo. The
// v2 controllers are left to the caller (they are read from the mount).
func ParseMountinfo(r io.Reader) (*Layout, error) {
	l := &Layout{V2Controllers: map[string]bool{}, V1: map[string]string{}}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		// id parent major:minor root mountpoint options [optional…] - fstype source superoptions
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 || len(qf) < 3 {
			continue
		}
		mnt := unescape(pf[4])
		switch qf[0] {
		case "cgroup2":
			if l.V2 == "" {
				l.V2 = mnt
			}
		case "cgroup":
			for _, o := range strings.Split(qf[2], ",") {
				if slices.Contains(Controllers, o) || o == "cpuacct" {
					if _, dup := l.V1[o]; !dup {
						l.V1[o] = mnt
					}
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading mountinfo: %w", err)
	}
	return l, nil
}

// unescape decodes mountinfo's octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Usable says whether the machine has any hierarchy slapnode can use.
func (l *Layout) Usable() bool { return l.V2 != "" || len(l.V1) > 0 }

// where returns the directory that controls controller c for cgroup path
// rel, and whether it is on v2; "" when the machine lacks the controller.
func (l *Layout) where(c, rel string) (string, bool) {
	if l.V2Controllers[c] {
		return filepath.Join(l.V2, rel), true
	}
	if m, ok := l.V1[c]; ok {
		return filepath.Join(m, rel), false
	}
	return "", false
}

// Dirs returns the directories of cgroup rel (relative to each
// hierarchy's root): the main one and the extra v1 ones.
func (l *Layout) Dirs(rel string) (main string, extra []string) {
	var all []string
	if l.V2 != "" {
		all = append(all, filepath.Join(l.V2, rel))
	}
	for _, c := range Controllers {
		if d, v2 := l.where(c, rel); d != "" && !v2 && !slices.Contains(all, d) {
			all = append(all, d)
		}
	}
	if len(all) == 0 {
		return "", nil
	}
	return all[0], all[1:]
}

// Change is one file write (or directory creation) that Ensure made or, in
// a dry run, would make.
type Change struct {
	Path, Value string
	Mkdir       bool
}

func (c Change) String() string {
	if c.Mkdir {
		return "create cgroup " + c.Path
	}
	return fmt.Sprintf("set %s = %s", c.Path, c.Value)
}

// Ensure creates cgroup rel in every hierarchy and sets its limits. It
// reads each value first and writes only what differs, so a second call
// returns no change. With dry, nothing is written. notes list limits that
// this machine cannot apply (a controller mounted nowhere).
func (l *Layout) Ensure(rel string, lim config.Limits, dry bool) (changes []Change, notes []string, err error) {
	main, extra := l.Dirs(rel)
	if main == "" {
		return nil, nil, fmt.Errorf("creating cgroup %s: no cgroup hierarchy is mounted (mount cgroup2 on /sys/fs/cgroup, or disable cgroups in node.hcl)", rel)
	}
	w := &writer{dry: dry}
	for _, d := range append([]string{main}, extra...) {
		w.mkdirAll(d)
	}
	if w.err == nil && l.V2 != "" {
		// A v2 controller's files appear in a cgroup only when its parent
		// delegates it (cgroup.subtree_control), all the way from the root.
		var want []string
		for _, c := range Controllers {
			if l.V2Controllers[c] {
				want = append(want, c)
			}
		}
		parts := strings.Split(filepath.Clean(rel), "/")
		dir := l.V2
		for _, p := range parts {
			w.delegate(dir, want)
			dir = filepath.Join(dir, p)
		}
	}
	pagesize := uint64(os.Getpagesize())
	for _, c := range Controllers {
		d, v2 := l.where(c, rel)
		switch c {
		case "cpu":
			if d == "" {
				if lim.CPUWeight != 0 || lim.CPUQuotaPercent != 0 {
					notes = append(notes, "cpu_weight and cpu_quota are not applied: no cpu controller on this machine")
				}
				continue
			}
			if v2 {
				w.set(filepath.Join(d, "cpu.weight"), strconv.FormatUint(or(lim.CPUWeight, 100), 10), nil)
				quota := "max"
				if lim.CPUQuotaPercent != 0 {
					quota = strconv.FormatUint(lim.CPUQuotaPercent*1000, 10)
				}
				w.set(filepath.Join(d, "cpu.max"), quota+" 100000", nil)
			} else {
				w.set(filepath.Join(d, "cpu.shares"), strconv.FormatUint(max(2, or(lim.CPUWeight, 100)*1024/100), 10), nil)
				w.set(filepath.Join(d, "cpu.cfs_period_us"), "100000", nil)
				quota := "-1"
				if lim.CPUQuotaPercent != 0 {
					quota = strconv.FormatUint(lim.CPUQuotaPercent*1000, 10)
				}
				w.set(filepath.Join(d, "cpu.cfs_quota_us"), quota, nil)
			}
		case "memory":
			if d == "" {
				if lim.MemoryMax != 0 {
					notes = append(notes, "memory_max is not applied: no memory controller on this machine")
				}
				continue
			}
			// The kernel keeps whole pages; compare what it will report.
			mem := lim.MemoryMax &^ (pagesize - 1)
			if v2 {
				val, swap := "max", "max"
				if mem != 0 {
					val, swap = strconv.FormatUint(mem, 10), "0"
				}
				w.set(filepath.Join(d, "memory.max"), val, nil)
				w.setIfExists(filepath.Join(d, "memory.swap.max"), swap, nil)
			} else {
				val, eq := "-1", isUnlimited
				if mem != 0 {
					val, eq = strconv.FormatUint(mem, 10), nil
				}
				limit, memsw := filepath.Join(d, "memory.limit_in_bytes"), filepath.Join(d, "memory.memsw.limit_in_bytes")
				// memsw must stay ≥ the memory limit at every step: raise
				// it first, lower it last.
				cur, _ := readUint(limit)
				if mem == 0 || mem > cur {
					w.setIfExists(memsw, val, eq)
					w.set(limit, val, eq)
				} else {
					w.set(limit, val, eq)
					w.setIfExists(memsw, val, eq)
				}
			}
		case "pids":
			if d == "" {
				if lim.PidsMax != 0 {
					notes = append(notes, "pids_max is not applied: no pids controller on this machine")
				}
				continue
			}
			val := "max"
			if lim.PidsMax != 0 {
				val = strconv.FormatUint(lim.PidsMax, 10)
			}
			w.set(filepath.Join(d, "pids.max"), val, nil)
		}
	}
	return w.changes, notes, w.err
}

func or(v, def uint64) uint64 {
	if v == 0 {
		return def
	}
	return v
}

// isUnlimited matches v1's way of reporting "no limit": a huge number.
func isUnlimited(cur string) bool {
	n, err := strconv.ParseUint(cur, 10, 64)
	return err == nil && n >= 1<<62
}

func readUint(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
}

// kernelDefaults are the values of a new cgroup's files.
var kernelDefaults = map[string]string{
	"cpu.weight": "100", "cpu.max": "max 100000", "memory.max": "max", "memory.swap.max": "max", "pids.max": "max",
	"cpu.shares": "1024", "cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "-1",
	"memory.limit_in_bytes": "9223372036854771712", "memory.memsw.limit_in_bytes": "9223372036854771712",
}

// writer applies (or records, in a dry run) changes, stopping at the first
// error.
type writer struct {
	dry     bool
	changes []Change
	err     error
}

func (w *writer) mkdirAll(d string) {
	if w.err != nil {
		return
	}
	if _, err := os.Stat(d); err == nil {
		return
	}
	w.changes = append(w.changes, Change{Path: d, Mkdir: true})
	if !w.dry {
		if err := os.MkdirAll(d, 0o755); err != nil {
			w.err = fmt.Errorf("creating cgroup %s: %w", d, err)
		}
	}
}

// set writes value to path unless it already reads as value (or as
// something eq accepts).
func (w *writer) set(path, value string, eq func(string) bool) {
	if w.err != nil {
		return
	}
	b, err := os.ReadFile(path)
	cur := strings.TrimSpace(string(b))
	if err != nil && w.dry && errors.Is(err, os.ErrNotExist) {
		// A dry run cannot read a cgroup it has not created: compare with
		// what the kernel puts in a new one, so that the plan lists what
		// the real run will write.
		if def, ok := kernelDefaults[filepath.Base(path)]; ok {
			cur, err = def, nil
		}
	}
	if err == nil && (cur == value || eq != nil && eq(cur)) {
		return
	}
	if err != nil && !(w.dry && errors.Is(err, os.ErrNotExist)) {
		w.err = fmt.Errorf("reading %s: %w", path, err)
		return
	}
	w.changes = append(w.changes, Change{Path: path, Value: value})
	if !w.dry {
		if err := os.WriteFile(path, []byte(value), 0); err != nil {
			w.err = fmt.Errorf("setting %s to %s: %w", path, value, err)
		}
	}
}

// setIfExists is set for files that depend on kernel options (swap
// accounting).
func (w *writer) setIfExists(path, value string, eq func(string) bool) {
	if _, err := os.Stat(path); err != nil && !(w.dry && errors.Is(err, os.ErrNotExist) && dirMissing(path)) {
		return
	}
	w.set(path, value, eq)
}

func dirMissing(path string) bool {
	_, err := os.Stat(filepath.Dir(path))
	return errors.Is(err, os.ErrNotExist)
}

// delegate enables controllers in dir's cgroup.subtree_control.
func (w *writer) delegate(dir string, controllers []string) {
	if w.err != nil || len(controllers) == 0 {
		return
	}
	p := filepath.Join(dir, "cgroup.subtree_control")
	b, err := os.ReadFile(p)
	if err != nil && !(w.dry && errors.Is(err, os.ErrNotExist)) {
		w.err = fmt.Errorf("reading %s: %w", p, err)
		return
	}
	have := strings.Fields(string(b))
	var add []string
	for _, c := range controllers {
		if !slices.Contains(have, c) {
			add = append(add, "+"+c)
		}
	}
	if len(add) == 0 {
		return
	}
	v := strings.Join(add, " ")
	w.changes = append(w.changes, Change{Path: p, Value: v})
	if !w.dry {
		if err := os.WriteFile(p, []byte(v), 0); err != nil {
			w.err = fmt.Errorf("enabling %s in %s (a cgroup with processes cannot delegate controllers: choose an empty cgroup.parent in node.hcl): %w", v, p, err)
		}
	}
}

// Procs returns the processes in dir and every cgroup below it.
func Procs(dir string) ([]int, error) {
	var out []int
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(filepath.Join(p, "cgroup.procs"))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				out = append(out, pid)
			}
		}
		return nil
	})
	sort.Ints(out)
	return out, err
}

// Remove deletes dir and the cgroups below it (deepest first). It refuses
// with ErrBusy while any of them has a process.
func Remove(dir string) error {
	pids, err := Procs(dir)
	if err != nil {
		return fmt.Errorf("removing cgroup %s: %w", dir, err)
	}
	if len(pids) > 0 {
		return fmt.Errorf("removing cgroup %s: %w: pids %v (stop the partition's services first: slapnode node stop)", dir, ErrBusy, pids)
	}
	var dirs []string
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("removing cgroup %s: %w", dir, err)
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		// cgroup directories are removed with rmdir even though they
		// list files: the files are the kernel's, not real entries.
		if err := unix.Rmdir(dirs[i]); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("removing cgroup %s: %w", dirs[i], err)
		}
	}
	return nil
}

// Kill sends SIGKILL to every process in dir and below, until none is left
// or rounds are exhausted (a fork bomb forks while being killed; with a
// pids limit it runs out of room quickly). It returns the processes left.
func Kill(dir string, rounds int) []int {
	var pids []int
	for range rounds {
		// cgroup v2's cgroup.kill (Linux ≥ 5.14) kills every member
		// atomically, forks included; v1 needs the signal rounds below.
		if _, err := os.Stat(filepath.Join(dir, "cgroup.kill")); err == nil {
			_ = os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0)
		}
		pids, _ = Procs(dir)
		if len(pids) == 0 {
			return nil
		}
		for _, p := range pids {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		waitGone(pids)
	}
	pids, _ = Procs(dir)
	return pids
}

// waitGone waits until the killed processes have left /proc's view of
// running processes, so that the next round sees only new ones.
func waitGone(pids []int) {
	for _, p := range pids {
		for range 1000 {
			b, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/stat")
			if err != nil {
				break
			}
			if i := strings.LastIndexByte(string(b), ')'); i >= 0 && i+2 < len(b) && (b[i+2] == 'Z' || b[i+2] == 'X') {
				break
			}
			unix.Nanosleep(&unix.Timespec{Nsec: 1e6}, nil)
		}
	}
}

// Join moves pid into each directory (its cgroup.procs).
func Join(pid int, dirs ...string) error {
	for _, d := range dirs {
		if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
			return fmt.Errorf("moving pid %d into cgroup %s: %w", pid, d, err)
		}
	}
	return nil
}

// IsV2 says whether dir is on a cgroup2 file system.
func IsV2(dir string) bool {
	var fs unix.Statfs_t
	return unix.Statfs(dir, &fs) == nil && fs.Type == unix.CGROUP2_SUPER_MAGIC
}
