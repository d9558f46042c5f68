// Package format prepares a machine to be a slapnode node, as SlapOS's
// slapformat does: one user, directory, cgroup and tap per partition, the
// software user, the bridge and the partitions' addresses, following
// node.hcl (package node/config). It records what it set up in the node
// state (<root>/node-state.json), which the node reads to run each
// partition's services and commands as its user, in its cgroup, with its
// addresses (State, PartitionInfo).
//
// Format is idempotent: it compares the machine with the configuration and
// changes only what differs, so a second run reports nothing to do. The
// partition count can grow, never shrink; Unformat removes what Format
// created. Without root, Format runs rootless: no users, cgroups or
// network; the partitions run as the caller, on loopback addresses.
//
// The work is split into small packages: users (the passwd/group/shadow
// files), cgroup (cgroup v1 and v2 directories and limits) and netsetup
// (netlink: bridge, taps, addresses, routes).
package format

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/slapnode/slapnode/node/config"
	"github.com/slapnode/slapnode/node/format/cgroup"
	"github.com/slapnode/slapnode/node/format/netsetup"
	"github.com/slapnode/slapnode/node/format/users"
)

// ErrShrink is returned when the configuration has fewer partitions than
// the node already has.
var ErrShrink = errors.New("the partition count cannot shrink")

// ErrChanged is returned when a setting that existing partitions depend on
// (roots, names, network plan) differs from the last format.
var ErrChanged = errors.New("setting changed since the last format")

// Options drive Format and Unformat.
type Options struct {
	Config *config.Config
	// DryRun computes and returns the plan without changing anything.
	DryRun bool
	// Rootless skips users, cgroups and network even as root (it is
	// forced when not root).
	Rootless bool
	// EtcDir is the user database directory; default /etc.
	EtcDir string
	// Cgroups is the cgroup layout; default: detected from the mounts.
	Cgroups *cgroup.Layout
	// Purge makes Unformat delete the partition directories too.
	Purge bool
}

// Result says what Format or Unformat did (or, in a dry run, would do).
type Result struct {
	Changes []string // one line per change, in order
	Notes   []string // things the user should know (rootless mode, limits not applicable)
	State   *State   // the node state after the run (nil after Unformat)
	// Rootless says the run set up no users, cgroups or network.
	Rootless bool
}

type run struct {
	opts Options
	cfg  *config.Config
	res  *Result
	prev *State
	st   *State
}

func (r *run) change(format string, args ...any) {
	r.res.Changes = append(r.res.Changes, fmt.Sprintf(format, args...))
}

// Format makes the machine match opts.Config and saves the node state.
func Format(opts Options) (*Result, error) {
	cfg := opts.Config
	if cfg == nil {
		return nil, errors.New("format: no configuration given")
	}
	if opts.EtcDir == "" {
		opts.EtcDir = "/etc"
	}
	r := &run{opts: opts, cfg: cfg, res: &Result{Changes: []string{}, Notes: []string{}}}
	r.res.Rootless = opts.Rootless || os.Geteuid() != 0
	if !opts.DryRun {
		if err := os.MkdirAll(cfg.Root, 0o755); err != nil {
			return nil, fmt.Errorf("creating node root: %w", err)
		}
	}
	unlock, err := lockRoot(cfg.Root, opts.DryRun)
	if err != nil {
		return nil, err
	}
	defer unlock()
	prev, err := LoadState(cfg.Root)
	if err != nil && !errors.Is(err, ErrNotFormatted) {
		return nil, err
	}
	r.prev = prev
	if err := r.checkAgainstPrevious(); err != nil {
		return nil, err
	}
	r.st = &State{
		Version: stateVersion, NodeID: cfg.NodeID, Root: cfg.Root, InstanceRoot: cfg.InstanceRoot,
		SoftwareRoot: cfg.SoftwareRoot, Rootless: r.res.Rootless, PartitionBase: cfg.PartitionBase,
	}
	if r.res.Rootless {
		who := strconv.Itoa(os.Geteuid())
		if u, err := user.Current(); err == nil {
			who = u.Username
		}
		reason := "not running as root"
		if os.Geteuid() == 0 {
			reason = "rootless mode requested"
		}
		r.res.Notes = append(r.res.Notes, fmt.Sprintf("rootless: %s, so no users, cgroups or network are set up; every partition runs as %s on a loopback address", reason, who))
	}
	for i := range cfg.PartitionCount {
		id := cfg.PartitionID(i)
		r.st.List = append(r.st.List, PartitionInfo{ID: id, Path: filepath.Join(cfg.InstanceRoot, id), Limits: cfg.LimitsOf(id)})
	}
	steps := []func() error{r.roots, r.users, r.dirs, r.cgroups, r.network}
	for _, step := range steps {
		if err := step(); err != nil {
			return r.res, err
		}
	}
	r.addressChanges()
	r.res.State = r.st
	if !opts.DryRun {
		changed, err := r.st.save()
		if err != nil {
			return r.res, err
		}
		if changed {
			r.change("write node state %s", filepath.Join(cfg.Root, StateFile))
		}
	} else if r.prev == nil || len(r.res.Changes) > 0 {
		r.change("write node state %s", filepath.Join(cfg.Root, StateFile))
	}
	return r.res, nil
}

// lockRoot keeps two formats of one node from interleaving.
func lockRoot(root string, dry bool) (func(), error) {
	// A dry run creates nothing, not even the lock: it takes the lock
	// when a format left one (so that it reads no half-written state),
	// and needs none on a root never formatted.
	flags, how := os.O_RDWR|os.O_CREATE, unix.LOCK_EX
	if dry {
		flags, how = os.O_RDONLY, unix.LOCK_SH
	}
	f, err := os.OpenFile(filepath.Join(root, ".format.lock"), flags, 0o600)
	if err != nil {
		if dry && errors.Is(err, os.ErrNotExist) {
			return func() {}, nil
		}
		return nil, fmt.Errorf("locking node root: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("another 'slapnode node format' or 'unformat' is running on %s: %w", root, err)
	}
	return func() { f.Close() }, nil
}

func (r *run) checkAgainstPrevious() error {
	p, c := r.prev, r.cfg
	if p == nil {
		return nil
	}
	if !p.Rootless && r.res.Rootless {
		return fmt.Errorf("%w: the node was formatted as root (users, cgroups, network); run format as root, or unformat it (as root) first", ErrChanged)
	}
	if len(p.List) > c.PartitionCount {
		return fmt.Errorf("%w: the node has %d partitions and the configuration asks for %d; partitions hold instances, so format never removes them (raise partitions.count back to %d, or 'slapnode node unformat' first)", ErrShrink, len(p.List), c.PartitionCount, len(p.List))
	}
	for _, d := range []struct{ what, was, now string }{
		{"instance_root", p.InstanceRoot, c.InstanceRoot},
		{"software_root", p.SoftwareRoot, c.SoftwareRoot},
		{"partitions.base_name", p.PartitionBase, c.PartitionBase},
	} {
		if d.was != d.now {
			return fmt.Errorf("%w: %s was %q, is now %q; run 'slapnode node unformat' before changing it", ErrChanged, d.what, d.was, d.now)
		}
	}
	return nil
}

// roots creates the instance and software roots, 0755 like SlapOS, and
// checks that partition users can reach them.
func (r *run) roots() error {
	for _, d := range []string{r.cfg.InstanceRoot, r.cfg.SoftwareRoot} {
		if err := r.ensureDir(d, 0o755, -1, -1); err != nil {
			return err
		}
	}
	if r.res.Rootless || !r.cfg.Users {
		return nil
	}
	// Services run as the partition users with their partition as working
	// directory: every ancestor must let others through.
	for _, root := range []string{r.cfg.InstanceRoot, r.cfg.SoftwareRoot} {
		for d := filepath.Dir(root); ; d = filepath.Dir(d) {
			st, err := os.Stat(d)
			if err == nil && st.Mode().Perm()&0o001 == 0 {
				return fmt.Errorf("partition users cannot reach %s: %s has mode %v (no 'x' for others); choose a node root outside it (--root /srv/slapnode) or chmod o+x %s", root, d, st.Mode().Perm(), d)
			}
			if d == "/" || d == "." {
				break
			}
		}
	}
	return nil
}

// ensureDir creates d with mode and owner (uid/gid -1: leave as is), or
// corrects them. It never follows a symbolic link in d's place: the mode
// and owner are changed through a descriptor of d itself (O_NOFOLLOW), so
// a link planted there cannot make root change another directory.
func (r *run) ensureDir(d string, mode os.FileMode, uid, gid int) error {
	st, err := os.Lstat(d)
	switch {
	case errors.Is(err, os.ErrNotExist):
		r.change("create directory %s (mode %04o%s)", d, mode, owner(uid, gid))
		if r.opts.DryRun {
			return nil
		}
		if err := os.MkdirAll(d, mode); err != nil {
			return fmt.Errorf("creating %s: %w", d, err)
		}
		// MkdirAll's mode is masked by umask.
		return fixDir(d, mode, uid, gid, true, true)
	case err != nil:
		return fmt.Errorf("checking %s: %w", d, err)
	case st.Mode()&os.ModeSymlink != 0:
		return fmt.Errorf("%s is a symbolic link, not a directory: remove it (format creates the directory)", d)
	case !st.IsDir():
		return fmt.Errorf("%s exists and is not a directory: move it away", d)
	}
	chmod := st.Mode().Perm() != mode
	if chmod {
		r.change("chmod %04o %s (was %04o)", mode, d, st.Mode().Perm())
	}
	s, ok := st.Sys().(*syscall.Stat_t)
	chown := ok && uid >= 0 && (int(s.Uid) != uid || int(s.Gid) != gid)
	if chown {
		r.change("chown %d:%d %s (was %d:%d)", uid, gid, d, s.Uid, s.Gid)
	}
	if r.opts.DryRun || !chmod && !chown {
		return nil
	}
	return fixDir(d, mode, uid, gid, chmod, chown)
}

// fixDir sets d's mode and owner through a descriptor opened without
// following a link.
func fixDir(d string, mode os.FileMode, uid, gid int, chmod, chown bool) error {
	fd, err := unix.Open(d, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening %s: %w", d, err)
	}
	defer unix.Close(fd)
	if chmod {
		if err := unix.Fchmod(fd, uint32(mode.Perm())); err != nil {
			return fmt.Errorf("chmod %s: %w", d, err)
		}
	}
	if chown && uid >= 0 {
		if err := unix.Fchown(fd, uid, gid); err != nil {
			return fmt.Errorf("chown %s: %w", d, err)
		}
	}
	return nil
}

func owner(uid, gid int) string {
	if uid < 0 {
		return ""
	}
	return fmt.Sprintf(", owner %d:%d", uid, gid)
}

// users creates the software user and one user per partition, each with
// its own group and the software user's group as supplementary group.
func (r *run) users() error {
	if r.res.Rootless || !r.cfg.Users {
		uid, gid := uint32(os.Geteuid()), uint32(os.Getegid())
		name := strconv.Itoa(int(uid))
		if u, err := user.Current(); err == nil {
			name = u.Username
		}
		for i := range r.st.List {
			p := &r.st.List[i]
			p.User, p.Uid, p.Gid = name, uid, gid
		}
		return nil
	}
	tx, err := users.Begin(r.opts.EtcDir)
	if err != nil {
		return err
	}
	defer tx.Close()
	created := map[string]bool{}
	if r.prev != nil {
		for _, a := range r.prev.Users {
			created[a.Name] = a.Created
		}
		if a := r.prev.SoftwareUser; a != nil {
			created[a.Name] = a.Created
		}
	}
	ensure := func(sp users.Spec) (Account, error) {
		_, existed := tx.LookupUser(sp.Name)
		u, changed, err := tx.EnsureUser(sp)
		if err != nil {
			return Account{}, err
		}
		switch {
		case !existed:
			r.change("create user %s (uid %d, group %s gid %d, home %s)", sp.Name, u.Uid, sp.Name, u.Gid, sp.Home)
		case changed:
			r.change("update user %s (home %s, shell /bin/sh, groups %v, password locked)", sp.Name, sp.Home, sp.Groups)
		}
		return Account{Name: u.Name, Uid: u.Uid, Gid: u.Gid, Created: created[sp.Name] || !existed}, nil
	}
	soft, err := ensure(users.Spec{Name: r.cfg.SoftwareUser, Home: r.cfg.SoftwareRoot})
	if err != nil {
		return err
	}
	r.st.SoftwareUser = &soft
	for i := range r.st.List {
		p := &r.st.List[i]
		name := r.cfg.UserBase + strconv.Itoa(i)
		a, err := ensure(users.Spec{Name: name, Home: p.Path, Groups: []string{r.cfg.SoftwareUser}})
		if err != nil {
			return err
		}
		r.st.Users = append(r.st.Users, a)
		p.User, p.Uid, p.Gid, p.Groups = name, a.Uid, a.Gid, []uint32{soft.Gid}
	}
	if r.opts.DryRun {
		return nil
	}
	return tx.Commit()
}

// dirs creates the partition directories, 0750 and owned by their user.
func (r *run) dirs() error {
	if !r.res.Rootless && r.cfg.Users && r.st.SoftwareUser != nil {
		if err := r.ensureDir(r.cfg.SoftwareRoot, 0o755, int(r.st.SoftwareUser.Uid), int(r.st.SoftwareUser.Gid)); err != nil {
			return err
		}
	}
	for _, p := range r.st.List {
		uid, gid := int(p.Uid), int(p.Gid)
		if r.res.Rootless {
			uid, gid = -1, -1
		}
		if err := r.ensureDir(p.Path, 0o750, uid, gid); err != nil {
			return err
		}
	}
	return nil
}

// cgroups creates one cgroup per partition with its limits.
func (r *run) cgroups() error {
	if r.res.Rootless || !r.cfg.Cgroups {
		return nil
	}
	l := r.opts.Cgroups
	if l == nil {
		var err error
		if l, err = cgroup.Detect(); err != nil {
			return err
		}
	}
	if !l.Usable() {
		r.res.Notes = append(r.res.Notes, "no cgroup hierarchy is mounted: partitions get no cgroup (set cgroup { enabled = false } in node.hcl to silence this)")
		return nil
	}
	r.st.CgroupParent = r.cfg.CgroupParent
	main, extra := l.Dirs(r.cfg.CgroupParent)
	r.st.CgroupDirs = append([]string{main}, extra...)
	notes := map[string]bool{}
	for i := range r.st.List {
		p := &r.st.List[i]
		rel := r.cfg.CgroupParent + "/" + p.ID
		changes, ns, err := l.Ensure(rel, p.Limits, r.opts.DryRun)
		for _, c := range changes {
			r.change("%s", c)
		}
		if err != nil {
			return fmt.Errorf("cgroup of partition %s: %w", p.ID, err)
		}
		for _, n := range ns {
			if !notes[n] {
				notes[n] = true
				r.res.Notes = append(r.res.Notes, n)
			}
		}
		p.Cgroup, p.ExtraCgroups = l.Dirs(rel)
	}
	return nil
}

// network computes the addresses and, when enabled, sets up the bridge,
// taps, addresses and routes.
func (r *run) network() error {
	n := r.cfg.Network
	if r.res.Rootless || !n.Enabled {
		// Linux routes all of 127/8 to lo without any setup, so every
		// partition can have its own IPv4 address for fixed ports, in a
		// block of 127/8 no other node root of the machine uses.
		was := 0
		if r.prev != nil && len(r.prev.List) > 0 {
			was = BlockOfAddr(r.prev.List[0].IPv4)
		} else if _, err := os.Stat(filepath.Join(r.cfg.Root, "instances.json")); err == nil {
			was = DerivedLoopback(r.cfg.Root)
		}
		b, err := LoopbackBlock(r.cfg.Root, was, r.opts.DryRun)
		if err != nil {
			return err
		}
		for i := range r.st.List {
			p := &r.st.List[i]
			p.IPv4 = LoopbackAddr(b, i)
			p.IPv6 = "::1"
		}
		if r.prev != nil && r.prev.Network != nil {
			return fmt.Errorf("%w: the network was set up (bridge %s) and is now disabled; run 'slapnode node unformat' to remove it first", ErrChanged, r.prev.Network.Bridge)
		}
		return nil
	}
	prefix := n.IPv6Prefix
	switch {
	case prefix.IsValid():
	case n.IPv6Interface != "":
		var prefer netip.Prefix
		if r.prev != nil && r.prev.Network != nil {
			prefer, _ = netip.ParsePrefix(r.prev.Network.IPv6Prefix)
		}
		var err error
		if prefix, err = netsetup.InterfacePrefix(n.Namespace, n.IPv6Interface, prefer); err != nil {
			return err
		}
	default:
		prefix = netsetup.ULAPrefix(r.cfg.NodeID)
	}
	if err := netsetup.CheckIPv6Plan(prefix, n.IPv6PrefixShift, len(r.st.List)); err != nil {
		return err
	}
	ns := &NetState{Namespace: n.Namespace, Bridge: n.Bridge, IPv6Prefix: prefix.String(),
		IPv6PrefixShift: n.IPv6PrefixShift, IPv4Network: n.IPv4Network.String(), Taps: n.CreateTap}
	if pn := r.prev; pn != nil && pn.Network != nil && *pn.Network != *ns {
		return fmt.Errorf("%w: the network plan was %+v and is now %+v; partitions' addresses would change: run 'slapnode node unformat' first", ErrChanged, *pn.Network, *ns)
	}
	r.st.Network = ns
	plan := netsetup.Plan{Bridge: n.Bridge}
	for i := range r.st.List {
		p := &r.st.List[i]
		v4, err := netsetup.PartitionIPv4(n.IPv4Network, i)
		if err != nil {
			return err
		}
		v6 := netsetup.PartitionIPv6(prefix, i)
		rng := netsetup.PartitionIPv6Range(prefix, n.IPv6PrefixShift, i)
		p.IPv4, p.IPv6, p.IPv6Range = v4.String(), v6.Addr().String(), rng.String()
		plan.Addrs = append(plan.Addrs, netip.PrefixFrom(v4, 32), v6)
		plan.LocalRanges = append(plan.LocalRanges, rng)
		if n.CreateTap {
			tr, gw := netsetup.TapIPv6Range(prefix, n.IPv6PrefixShift, i)
			p.Tap = n.TapBase + strconv.Itoa(i)
			p.TapIPv6Range, p.TapIPv6Gateway = tr.String(), gw.String()
			plan.Taps = append(plan.Taps, netsetup.Tap{Name: p.Tap, Uid: p.Uid, Gid: p.Gid, Range: tr})
		}
	}
	changes, err := netsetup.Apply(n.Namespace, plan, r.opts.DryRun)
	for _, c := range changes {
		where := ""
		if n.Namespace != "" {
			where = " (netns " + n.Namespace + ")"
		}
		r.change("%s%s", c, where)
	}
	return err
}

// addressChanges says which partitions' addresses this format changes:
// from the previous format's, or, on a node formatted for the first time,
// from the loopback addresses its partitions had unformatted. Instances
// listening on the old ones must be applied again.
func (r *run) addressChanges() {
	prev := func(i int) (v4, v6 string, ok bool) {
		if r.prev != nil {
			for _, p := range r.prev.List {
				if p.ID == r.st.List[i].ID {
					return p.IPv4, p.IPv6, true
				}
			}
			return "", "", false
		}
		b := RecordedLoopback(r.cfg.Root)
		if b == 0 {
			if _, err := os.Stat(filepath.Join(r.cfg.Root, "instances.json")); err != nil {
				return "", "", false
			}
			b = DerivedLoopback(r.cfg.Root)
		}
		return LoopbackAddr(b, i), "::1", true
	}
	for i, p := range r.st.List {
		v4, v6, ok := prev(i)
		if !ok {
			continue
		}
		if v4 != p.IPv4 {
			r.change("partition %s: IPv4 address %s → %s (apply its instance again)", p.ID, v4, p.IPv4)
		}
		if v6 != p.IPv6 {
			r.change("partition %s: IPv6 address %s → %s (apply its instance again)", p.ID, v6, p.IPv6)
		}
	}
}

// planOf rebuilds the network plan of a saved state, for Unformat.
func planOf(s *State) netsetup.Plan {
	p := netsetup.Plan{Bridge: s.Network.Bridge}
	for _, pi := range s.List {
		if rng, err := netip.ParsePrefix(pi.IPv6Range); err == nil {
			p.LocalRanges = append(p.LocalRanges, rng)
		}
		if pi.Tap != "" {
			p.Taps = append(p.Taps, netsetup.Tap{Name: pi.Tap})
		}
	}
	return p
}

// Unformat removes what Format created: taps, bridge and routes, cgroups,
// the users and groups it created (not those it found), the node state,
// and with opts.Purge the partition directories. It refuses while a
// partition cgroup still has processes.
func Unformat(opts Options) (*Result, error) {
	cfg := opts.Config
	if cfg == nil {
		return nil, errors.New("unformat: no configuration given")
	}
	if opts.EtcDir == "" {
		opts.EtcDir = "/etc"
	}
	res := &Result{Changes: []string{}, Notes: []string{}, Rootless: opts.Rootless || os.Geteuid() != 0}
	unlock, err := lockRoot(cfg.Root, opts.DryRun)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return res, nil
		}
		return nil, err
	}
	defer unlock()
	st, err := LoadState(cfg.Root)
	if errors.Is(err, ErrNotFormatted) {
		res.Notes = append(res.Notes, "the node was not formatted: nothing to remove")
		return res, nil
	}
	if err != nil {
		return nil, err
	}
	change := func(format string, args ...any) { res.Changes = append(res.Changes, fmt.Sprintf(format, args...)) }
	if !st.Rootless && os.Geteuid() != 0 {
		return nil, fmt.Errorf("the node was formatted as root (users, cgroups, network): unformat it as root")
	}
	// Processes first: nothing is removed while a partition runs.
	for _, p := range st.List {
		if p.Cgroup == "" {
			continue
		}
		if pids, _ := cgroup.Procs(p.Cgroup); len(pids) > 0 {
			return nil, fmt.Errorf("partition %s still has processes %v in %s: %w (stop them first: slapnode node stop)", p.ID, pids, p.Cgroup, cgroup.ErrBusy)
		}
	}
	if st.Network != nil {
		changes, err := netsetup.Remove(st.Network.Namespace, planOf(st), opts.DryRun)
		for _, c := range changes {
			change("%s", c)
		}
		if err != nil {
			return res, err
		}
	}
	for _, p := range st.List {
		for _, d := range append([]string{p.Cgroup}, p.ExtraCgroups...) {
			if d == "" {
				continue
			}
			if _, err := os.Stat(d); err != nil {
				continue
			}
			change("remove cgroup %s", d)
			if !opts.DryRun {
				if err := cgroup.Remove(d); err != nil {
					return res, err
				}
			}
		}
	}
	for _, d := range st.CgroupDirs {
		if _, err := os.Stat(d); err != nil {
			continue
		}
		// The parent may hold cgroups that are not ours: rmdir fails then,
		// and the parent stays.
		if opts.DryRun {
			change("remove cgroup %s (if empty)", d)
			continue
		}
		if err := unix.Rmdir(d); err == nil {
			change("remove cgroup %s", d)
		} else if !errors.Is(err, unix.ENOTEMPTY) && !errors.Is(err, unix.EBUSY) {
			return res, fmt.Errorf("removing cgroup %s: %w", d, err)
		}
	}
	if opts.Purge {
		for _, p := range st.List {
			if _, err := os.Lstat(p.Path); err != nil {
				continue
			}
			change("delete partition directory %s", p.Path)
			if !opts.DryRun {
				if err := os.RemoveAll(p.Path); err != nil {
					return res, fmt.Errorf("deleting %s: %w", p.Path, err)
				}
			}
		}
	} else if len(st.List) > 0 && !st.Rootless && len(st.Users) > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("partition directories are kept under %s (their owners' uids stay on the files); --purge deletes them", st.InstanceRoot))
	}
	var accounts []Account
	for _, a := range st.Users {
		if a.Created {
			accounts = append(accounts, a)
		}
	}
	if a := st.SoftwareUser; a != nil && a.Created {
		accounts = append(accounts, *a)
	}
	if len(accounts) > 0 {
		tx, err := users.Begin(opts.EtcDir)
		if err != nil {
			return res, err
		}
		defer tx.Close()
		for _, a := range accounts {
			if tx.RemoveUser(a.Name) {
				change("delete user %s", a.Name)
			}
			ok, err := tx.RemoveGroup(a.Name)
			if err != nil {
				return res, err
			}
			if ok {
				change("delete group %s", a.Name)
			}
		}
		if !opts.DryRun {
			if err := tx.Commit(); err != nil {
				return res, err
			}
		}
	}
	if a := st.SoftwareUser; a != nil && a.Created && !st.Rootless {
		// Format gave the software root to the software user, now
		// deleted: a user created later with the same id would own it.
		if _, err := os.Lstat(st.SoftwareRoot); err == nil {
			change("give %s back to root (what uid %d and gid %d owned in it)", st.SoftwareRoot, a.Uid, a.Gid)
			if !opts.DryRun {
				if err := giveBack(st.SoftwareRoot, a.Uid, a.Gid); err != nil {
					return res, err
				}
			}
		}
	}
	p := filepath.Join(cfg.Root, StateFile)
	change("delete node state %s", p)
	if !opts.DryRun {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return res, fmt.Errorf("deleting node state: %w", err)
		}
	}
	return res, nil
}

// giveBack makes root the owner (and root the group) of whatever uid (gid)
// owns in the tree dir, the tree's top included. The walk goes through an
// os.Root: a symbolic link is changed itself, never what it points to, and
// nothing outside dir is reached even if the tree changes meanwhile.
// Changing the owner clears the set-user-ID and set-group-ID bits of
// regular files (Linux does it for root too).
func giveBack(dir string, uid, gid uint32) error {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("giving %s back to root: %w", dir, err)
	}
	defer r.Close()
	return fs.WalkDir(r.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return fmt.Errorf("giving %s back to root: %w", dir, err)
		}
		info, err := d.Info() // lstat: the link itself
		if err != nil {
			return nil
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok || st.Uid != uid && st.Gid != gid {
			return nil
		}
		u, g := -1, -1
		if st.Uid == uid {
			u = 0
		}
		if st.Gid == gid {
			g = 0
		}
		if err := r.Lchown(p, u, g); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("giving %s back to root: %w", filepath.Join(dir, p), err)
		}
		return nil
	})
}

// Summary is the one-line outcome of a Format for humans.
func (res *Result) Summary(dry bool) string {
	n := 0
	if res.State != nil {
		n = len(res.State.List)
	}
	switch {
	case len(res.Changes) == 0:
		return fmt.Sprintf("nothing to do: %d partitions already formatted, unchanged", n)
	case dry:
		return fmt.Sprintf("%d changes planned for %d partitions (dry run: nothing changed)", len(res.Changes), n)
	default:
		return fmt.Sprintf("%d changes made; %d partitions formatted", len(res.Changes), n)
	}
}

// Describe returns a short human description of a partition.
func (p PartitionInfo) Describe() string {
	parts := []string{p.ID, "user " + p.User, "ipv4 " + p.IPv4, "ipv6 " + p.IPv6}
	if p.Tap != "" {
		parts = append(parts, "tap "+p.Tap)
	}
	if p.Cgroup != "" {
		parts = append(parts, "cgroup "+p.Cgroup)
	}
	return strings.Join(parts, ", ")
}
