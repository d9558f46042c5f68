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
// A process joins the v1 directories before it runs anything through the
// exec shim of internal/nsexec.
//
// The cgroups are created, limited, listed, killed and removed through
// containerd/cgroups (cgroup1 for the v1 hierarchies, cgroup2 for the
// unified one: docs/adr/0008-cgroups-through-containerd.md). This package
// finds the hierarchies (the library has no notion of a hybrid machine's
// per-controller mounts), and reads the current values first so that a
// second format changes nothing and a dry run lists what a real run does.
package cgroup

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
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
// reads each value first and changes only what differs, so a second call
// returns no change. With dry, nothing is written. notes list limits that
// this machine cannot apply (a controller mounted nowhere).
func (l *Layout) Ensure(rel string, lim config.Limits, dry bool) (changes []Change, notes []string, err error) {
	main, extra := l.Dirs(rel)
	if main == "" {
		return nil, nil, fmt.Errorf("creating cgroup %s: no cgroup hierarchy is mounted (mount cgroup2 on /sys/fs/cgroup, or disable cgroups in node.hcl)", rel)
	}
	w := &planner{dry: dry}
	for _, d := range append([]string{main}, extra...) {
		w.mkdir(d)
	}
	if l.V2 != "" {
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
				val, swap, eq := "max", "max", isMax
				if mem != 0 {
					val, swap, eq = strconv.FormatUint(mem, 10), "0", nil
				}
				w.set(filepath.Join(d, "memory.max"), val, eq)
				w.setIfExists(filepath.Join(d, "memory.swap.max"), swap, eq)
			} else {
				val, eq := "-1", isUnlimited
				if mem != 0 {
					val, eq = strconv.FormatUint(mem, 10), nil
				}
				w.set(filepath.Join(d, "memory.limit_in_bytes"), val, eq)
				w.setIfExists(filepath.Join(d, "memory.memsw.limit_in_bytes"), val, eq)
			}
		case "pids":
			if d == "" {
				if lim.PidsMax != 0 {
					notes = append(notes, "pids_max is not applied: no pids controller on this machine")
				}
				continue
			}
			val, eq := "max", isMax
			if lim.PidsMax != 0 {
				val, eq = strconv.FormatUint(lim.PidsMax, 10), nil
			}
			w.set(filepath.Join(d, "pids.max"), val, eq)
		}
	}
	if w.err != nil || dry || len(w.changes) == 0 {
		return w.changes, notes, w.err
	}
	return w.changes, notes, l.apply(rel, lim, w.changes)
}

// pidMaxLimit is the kernel's PID_MAX_LIMIT: a cgroup v1 pids.max this high
// is no limit (containerd's cgroup1 cannot write "max").
const pidMaxLimit = 1 << 22

// apply makes the planned changes through containerd/cgroups: the v2
// cgroup (created with its controllers delegated from the root) and each
// v1 controller's cgroup that has a change.
func (l *Layout) apply(rel string, lim config.Limits, changes []Change) error {
	touched := func(dir string) bool {
		for _, c := range changes {
			if c.Path == dir || strings.HasPrefix(c.Path, dir+"/") {
				return true
			}
		}
		return false
	}
	mem := int64(lim.MemoryMax &^ uint64(os.Getpagesize()-1))
	if l.V2 != "" && touched(l.V2) {
		dir := filepath.Join(l.V2, rel)
		enable := &cgroup2.Resources{}
		res := &cgroup2.Resources{}
		if l.V2Controllers["cpu"] {
			weight := or(lim.CPUWeight, 100)
			var quota *int64
			if lim.CPUQuotaPercent != 0 {
				q := int64(lim.CPUQuotaPercent * 1000)
				quota = &q
			}
			period := uint64(100000)
			enable.CPU = &cgroup2.CPU{}
			res.CPU = &cgroup2.CPU{Weight: &weight, Max: cgroup2.NewCPUMax(quota, &period)}
		}
		if l.V2Controllers["memory"] {
			// "max" is written as the largest value, which the kernel
			// shows as "max".
			limit, swap := int64(math.MaxInt64), int64(math.MaxInt64)
			if mem != 0 {
				limit, swap = mem, 0
			}
			enable.Memory = &cgroup2.Memory{}
			res.Memory = &cgroup2.Memory{Max: &limit, Swap: &swap}
		}
		if l.V2Controllers["pids"] {
			pids := int64(-1)
			if lim.PidsMax != 0 {
				pids = int64(lim.PidsMax)
			}
			enable.Pids = &cgroup2.Pids{}
			res.Pids = &cgroup2.Pids{Max: pids}
		}
		m, err := cgroup2.NewManager(l.V2, "/"+filepath.Clean(rel), enable)
		if err != nil {
			return fmt.Errorf("creating cgroup %s (a cgroup with processes cannot delegate controllers: choose an empty cgroup.parent in node.hcl): %w", dir, err)
		}
		if res.Memory != nil {
			if _, err := os.Stat(filepath.Join(dir, "memory.swap.max")); err != nil {
				res.Memory.Swap = nil // no swap accounting in this kernel
			}
		}
		if err := m.Update(res); err != nil {
			return fmt.Errorf("setting the limits of cgroup %s: %w", dir, err)
		}
	}
	for _, c := range Controllers {
		mnt, ok := l.V1[c]
		if !ok || l.V2Controllers[c] {
			continue
		}
		dir := filepath.Join(mnt, rel)
		if !touched(dir) {
			continue
		}
		cg, err := cgroup1.New(v1Path(mnt, c, rel), &specs.LinuxResources{}, cgroup1.WithHierarchy(func() ([]cgroup1.Subsystem, error) {
			return []cgroup1.Subsystem{v1Subsystem(mnt, c)}, nil
		}))
		if err != nil {
			return fmt.Errorf("creating cgroup %s: %w", dir, err)
		}
		var updates []*specs.LinuxResources
		switch c {
		case "cpu":
			shares := max(2, or(lim.CPUWeight, 100)*1024/100)
			period := uint64(100000)
			quota := int64(-1)
			if lim.CPUQuotaPercent != 0 {
				quota = int64(lim.CPUQuotaPercent * 1000)
			}
			updates = append(updates, &specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: &shares, Period: &period, Quota: &quota}})
		case "memory":
			limit := int64(-1)
			if mem != 0 {
				limit = mem
			}
			onlyLimit := &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}}
			if _, err := os.Stat(filepath.Join(dir, "memory.memsw.limit_in_bytes")); err != nil {
				updates = append(updates, onlyLimit) // no swap accounting
				break
			}
			onlySwap := &specs.LinuxResources{Memory: &specs.LinuxMemory{Swap: &limit}}
			// memsw must stay ≥ the memory limit at every step: raise it
			// first, lower it last.
			cur, _ := readUint(filepath.Join(dir, "memory.limit_in_bytes"))
			if limit < 0 || uint64(limit) > cur {
				updates = append(updates, onlySwap, onlyLimit)
			} else {
				updates = append(updates, onlyLimit, onlySwap)
			}
		case "pids":
			pids := int64(pidMaxLimit)
			if lim.PidsMax != 0 {
				pids = int64(lim.PidsMax)
			}
			updates = append(updates, &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &pids}})
		}
		for _, u := range updates {
			if err := cg.Update(u); err != nil {
				return fmt.Errorf("setting the %s limit of cgroup %s: %w", c, dir, err)
			}
		}
	}
	return nil
}

// v1Subsystem is containerd's controller c of the v1 hierarchy mounted at
// mnt. The library places controller c at <root>/<c>: mnt's parent is the
// root, and v1Path compensates when the mount is named otherwise
// ("cpu,cpuacct").
func v1Subsystem(mnt, c string) cgroup1.Subsystem {
	root := filepath.Dir(mnt)
	switch c {
	case "cpu":
		return cgroup1.NewCpu(root)
	case "memory":
		return cgroup1.NewMemory(root)
	case "pids":
		return cgroup1.NewPids(root)
	}
	return cgroup1.NewNamed(root, cgroup1.Name(filepath.Base(mnt)))
}

// v1Path is the path of cgroup rel for controller c mounted at mnt, as
// containerd wants it: relative to <dir of mnt>/<c>.
func v1Path(mnt, c, rel string) cgroup1.Path {
	p := "/" + filepath.Clean(rel)
	if filepath.Base(mnt) != c {
		// Joined lexically to <dir of mnt>/<c>: lands in mnt.
		p = "../" + filepath.Base(mnt) + p
	}
	return cgroup1.StaticPath(p)
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

// isMax matches "no limit" as the kernel shows it ("max"), as containerd
// writes it (the largest value: a file tree that is not the kernel's
// keeps it as is), and v1's pids.max at the kernel's largest pid count.
func isMax(cur string) bool {
	n, err := strconv.ParseUint(cur, 10, 64)
	return cur == "max" || isUnlimited(cur) || err == nil && n >= pidMaxLimit
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

// planner compares the machine with what Ensure wants and records the
// changes, stopping at the first error; apply makes them.
type planner struct {
	dry     bool
	changes []Change
	err     error
}

func (w *planner) mkdir(d string) {
	if w.err != nil {
		return
	}
	if _, err := os.Stat(d); err == nil {
		return
	}
	w.changes = append(w.changes, Change{Path: d, Mkdir: true})
}

// set plans writing value to path unless it already reads as value (or as
// something eq accepts).
func (w *planner) set(path, value string, eq func(string) bool) {
	if w.err != nil {
		return
	}
	b, err := os.ReadFile(path)
	cur := strings.TrimSpace(string(b))
	if err != nil && errors.Is(err, os.ErrNotExist) {
		// A cgroup not created yet has the kernel's defaults: compare
		// with them, so that the plan (and a dry run) lists what the real
		// run writes.
		if def, ok := kernelDefaults[filepath.Base(path)]; ok {
			cur, err = def, nil
		}
	}
	if err == nil && (cur == value || eq != nil && eq(cur)) {
		return
	}
	if err != nil {
		w.err = fmt.Errorf("reading %s: %w", path, err)
		return
	}
	w.changes = append(w.changes, Change{Path: path, Value: value})
}

// setIfExists is set for files that depend on kernel options (swap
// accounting).
func (w *planner) setIfExists(path, value string, eq func(string) bool) {
	if _, err := os.Stat(path); err != nil && !(errors.Is(err, os.ErrNotExist) && dirMissing(path)) {
		return
	}
	w.set(path, value, eq)
}

func dirMissing(path string) bool {
	_, err := os.Stat(filepath.Dir(path))
	return errors.Is(err, os.ErrNotExist)
}

// delegate plans enabling controllers in dir's cgroup.subtree_control.
func (w *planner) delegate(dir string, controllers []string) {
	if w.err != nil || len(controllers) == 0 {
		return
	}
	p := filepath.Join(dir, "cgroup.subtree_control")
	b, err := os.ReadFile(p)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		w.err = fmt.Errorf("reading %s: %w", p, err)
		return
	}
	have := strings.Fields(string(b))
	var add []string
	for _, c := range controllers {
		if !slices.Contains(have, c) && !slices.Contains(have, "+"+c) {
			add = append(add, "+"+c)
		}
	}
	if len(add) == 0 {
		return
	}
	w.changes = append(w.changes, Change{Path: p, Value: strings.Join(add, " ")})
}

// Group is one cgroup directory, v1 or v2, handled through containerd's
// cgroups.
type Group struct {
	dir string
	v2  *cgroup2.Manager
	v1  cgroup1.Cgroup
	sub cgroup1.Name
}

// Open returns the cgroup at dir (an existing directory of a mounted
// hierarchy): the hierarchy's root is the highest ancestor on the same
// mount.
func Open(dir string) (*Group, error) {
	dir = filepath.Clean(dir)
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil {
		return nil, fmt.Errorf("opening cgroup %s: %w", dir, err)
	}
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return nil, fmt.Errorf("opening cgroup %s: %w", dir, err)
	}
	mnt := dir
	for mnt != "/" {
		var pst unix.Stat_t
		if unix.Stat(filepath.Dir(mnt), &pst) != nil || pst.Dev != st.Dev {
			break
		}
		mnt = filepath.Dir(mnt)
	}
	group := "/" + strings.TrimPrefix(strings.TrimPrefix(dir, mnt), "/")
	switch fs.Type {
	case unix.CGROUP2_SUPER_MAGIC:
		m, err := cgroup2.Load(group, cgroup2.WithMountpoint(mnt))
		if err != nil {
			return nil, fmt.Errorf("opening cgroup %s: %w", dir, err)
		}
		return &Group{dir: dir, v2: m}, nil
	case unix.CGROUP_SUPER_MAGIC:
		sub := cgroup1.Name(filepath.Base(mnt))
		cg, err := cgroup1.Load(cgroup1.StaticPath(group), cgroup1.WithHierarchy(func() ([]cgroup1.Subsystem, error) {
			return []cgroup1.Subsystem{cgroup1.NewNamed(filepath.Dir(mnt), sub)}, nil
		}))
		if err != nil {
			return nil, fmt.Errorf("opening cgroup %s: %w", dir, err)
		}
		return &Group{dir: dir, v1: cg, sub: sub}, nil
	}
	return nil, fmt.Errorf("opening cgroup %s: not on a cgroup file system", dir)
}

// Dir is the group's directory.
func (g *Group) Dir() string { return g.dir }

// V2 says whether the group is on the cgroup2 hierarchy.
func (g *Group) V2() bool { return g.v2 != nil }

// Child creates (or reuses) the child cgroup name.
func (g *Group) Child(name string) (*Group, error) {
	if g.v2 != nil {
		m, err := g.v2.NewChild(name, nil)
		if err != nil {
			return nil, fmt.Errorf("creating cgroup %s: %w", filepath.Join(g.dir, name), err)
		}
		return &Group{dir: filepath.Join(g.dir, name), v2: m}, nil
	}
	cg, err := g.v1.New(name, &specs.LinuxResources{})
	if err != nil {
		return nil, fmt.Errorf("creating cgroup %s: %w", filepath.Join(g.dir, name), err)
	}
	return &Group{dir: filepath.Join(g.dir, name), v1: cg, sub: g.sub}, nil
}

// Procs returns the processes in the group and every cgroup below it.
func (g *Group) Procs() ([]int, error) {
	var out []int
	if g.v2 != nil {
		pids, err := g.v2.Procs(true)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		for _, p := range pids {
			out = append(out, int(p))
		}
	} else {
		procs, err := g.v1.Processes(g.sub, true)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		for _, p := range procs {
			out = append(out, p.Pid)
		}
	}
	sort.Ints(out)
	return out, nil
}

// Add moves pid into the group.
func (g *Group) Add(pid int) error {
	var err error
	if g.v2 != nil {
		err = g.v2.AddProc(uint64(pid))
	} else {
		err = g.v1.AddProc(uint64(pid))
	}
	if err != nil {
		return fmt.Errorf("moving pid %d into cgroup %s: %w", pid, g.dir, err)
	}
	return nil
}

// ErrNoKill is returned by KillAll where the kernel cannot kill a cgroup at
// once (cgroup v1): signal its Procs instead.
var ErrNoKill = errors.New("cgroup v1 has no cgroup.kill")

// KillAll kills every member of the group and below at once (cgroup v2's
// cgroup.kill: forks included).
func (g *Group) KillAll() error {
	// Without cgroup.kill (cgroup v1, Linux < 5.14, a removed cgroup) the
	// library would fall back to freezing and signalling, and log about
	// it: the callers signal the members themselves instead.
	if g.v2 == nil {
		return ErrNoKill
	}
	if _, err := os.Stat(filepath.Join(g.dir, "cgroup.kill")); err != nil {
		return ErrNoKill
	}
	return g.v2.Kill()
}

// Delete removes the group (which must have no child cgroup), refusing
// with ErrBusy while it has processes.
func (g *Group) Delete() error {
	var err error
	if g.v2 != nil {
		err = g.v2.Delete()
	} else {
		err = g.v1.Delete()
	}
	if err != nil && strings.Contains(err.Error(), "running") {
		return fmt.Errorf("removing cgroup %s: %w: %v", g.dir, ErrBusy, err)
	}
	return err
}

// Procs returns the processes in dir and every cgroup below it.
func Procs(dir string) ([]int, error) {
	g, err := Open(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return g.Procs()
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
		g, err := Open(dirs[i])
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err == nil {
			err = g.Delete()
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("removing cgroup %s: %w", dirs[i], err)
		}
	}
	return nil
}

// Kill sends SIGKILL to every process in dir and below, until none is left
// or rounds are exhausted (a fork bomb forks while being killed; with a
// pids limit it runs out of room quickly). It returns the processes left.
func Kill(dir string, rounds int) []int {
	g, err := Open(dir)
	if err != nil {
		return nil
	}
	var pids []int
	for range rounds {
		// cgroup v2's cgroup.kill (Linux ≥ 5.14) kills every member
		// atomically, forks included; v1 needs the signal rounds below.
		_ = g.KillAll()
		pids, _ = g.Procs()
		if len(pids) == 0 {
			return nil
		}
		for _, p := range pids {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		waitGone(pids)
	}
	pids, _ = g.Procs()
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

// Join moves pid into each directory. A child the process forked before
// stays outside: processes that must be confined from their first
// instruction start through nsexec.ThroughShim.
func Join(pid int, dirs ...string) error {
	for _, d := range dirs {
		g, err := Open(d)
		if err != nil {
			return fmt.Errorf("moving pid %d into cgroup %s: %w", pid, d, err)
		}
		if err := g.Add(pid); err != nil {
			return err
		}
	}
	return nil
}

// IsV2 says whether dir is on a cgroup2 file system.
func IsV2(dir string) bool {
	var fs unix.Statfs_t
	return unix.Statfs(dir, &fs) == nil && fs.Type == unix.CGROUP2_SUPER_MAGIC
}
