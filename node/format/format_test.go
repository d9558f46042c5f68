package format

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/slapnode/slapnode/node/config"
	"github.com/slapnode/slapnode/node/format/cgroup"
	"github.com/slapnode/slapnode/node/format/netsetup"
	"github.com/slapnode/slapnode/node/format/users"
)

// nodeRoot returns a node root that partition users can reach (t.TempDir's
// parent is 0700).
func nodeRoot(t testing.TB) string {
	t.Helper()
	root := t.TempDir()
	if err := os.Chmod(filepath.Dir(root), 0o755); err != nil {
		t.Fatal(err)
	}
	return root
}

func parse(t testing.TB, root, src string) *config.Config {
	t.Helper()
	cfg, err := config.Parse(root, filepath.Join(root, "node.hcl"), []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestRootlessFormat(t *testing.T) {
	root := nodeRoot(t)
	cfg := parse(t, root, "partitions {\n count = 3\n}\n")
	opts := Options{Config: cfg, Rootless: true}

	dry, err := Format(Options{Config: cfg, Rootless: true, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "instance")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("dry run created the instance root")
	}
	if len(dry.Notes) != 1 || !strings.HasPrefix(dry.Notes[0], "rootless: ") {
		t.Errorf("notes = %q, want the rootless note once", dry.Notes)
	}
	res, err := Format(opts)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(dry.Changes, "\n") != strings.Join(res.Changes, "\n") {
		t.Errorf("dry run planned\n%s\nformat did\n%s", strings.Join(dry.Changes, "\n"), strings.Join(res.Changes, "\n"))
	}
	st, err := LoadState(root)
	if err != nil {
		t.Fatal(err)
	}
	me, _ := user.Current()
	if !st.Rootless || len(st.Partitions()) != 3 {
		t.Fatalf("state = %+v", st)
	}
	p1, ok := st.Partition("slappart1")
	b := RecordedLoopback(root)
	if !ok || b == 0 || p1.User != me.Username || p1.IPv4 != LoopbackAddr(b, 1) || p1.IPv6 != "::1" || p1.Cgroup != "" || p1.Credential() != nil {
		t.Errorf("slappart1 = %+v", p1)
	}
	fi, err := os.Stat(p1.Path)
	if err != nil || fi.Mode().Perm() != 0o750 {
		t.Errorf("partition dir: %v %v", fi, err)
	}
	if p1.Join(os.Getpid()) != nil {
		t.Error("Join without cgroup must do nothing")
	}

	again, err := Format(opts)
	if err != nil || len(again.Changes) != 0 {
		t.Errorf("re-run: %q %v", again.Changes, err)
	}
	if os.Geteuid() != 0 {
		// Really without root (TestRootlessAsNobody): rootless without
		// being asked, and said once.
		res, err := Format(Options{Config: cfg})
		if err != nil || !res.Rootless || len(res.Notes) != 1 || !strings.Contains(res.Notes[0], "not running as root") || len(res.Changes) != 0 {
			t.Errorf("format without root: %+v %v", res, err)
		}
	}
	if s := again.Summary(false); !strings.HasPrefix(s, "nothing to do: 3 partitions") {
		t.Errorf("summary %q", s)
	}

	// A partition directory someone opened up is closed again.
	os.Chmod(p1.Path, 0o777)
	fix, err := Format(opts)
	if err != nil || len(fix.Changes) != 1 || !strings.HasPrefix(fix.Changes[0], "chmod 0750 ") {
		t.Errorf("repair: %q %v", fix.Changes, err)
	}

	// Growing adds partitions; shrinking is refused.
	grown, err := Format(Options{Config: parse(t, root, "partitions {\n count = 5\n}\n"), Rootless: true})
	if err != nil || len(grown.State.List) != 5 {
		t.Fatalf("grow: %v", err)
	}
	if _, err := Format(opts); !errors.Is(err, ErrShrink) {
		t.Errorf("shrink: %v, want ErrShrink", err)
	}
	if _, err := Format(Options{Config: parse(t, root, "partitions {\n count = 5\n base_name = \"part\"\n}\n"), Rootless: true}); !errors.Is(err, ErrChanged) {
		t.Errorf("renaming partitions: %v, want ErrChanged", err)
	}

	un, err := Unformat(Options{Config: cfg, Rootless: true, Purge: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(un.Changes) != 6 { // 5 directories + the state
		t.Errorf("unformat: %q", un.Changes)
	}
	if _, err := LoadState(root); !errors.Is(err, ErrNotFormatted) {
		t.Errorf("state after unformat: %v", err)
	}
	if again, err := Unformat(Options{Config: cfg, Rootless: true}); err != nil || len(again.Changes) != 0 {
		t.Errorf("second unformat: %v %v", again, err)
	}
}

// TestRootlessAsNobody runs TestRootlessFormat again as an unprivileged
// user, so that the rootless path is exercised for real on a machine where
// the tests run as root.
func TestRootlessAsNobody(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("already not root: TestRootlessFormat is the rootless run")
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o777)
	os.Chmod(filepath.Dir(dir), 0o755)
	self, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "format.test")
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run", "^TestRootlessFormat$", "-test.v")
	cmd.Dir = dir
	cmd.Env = []string{"TMPDIR=" + dir, "HOME=" + dir, "PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestRootlessFormat") {
		t.Errorf("TestRootlessFormat as nobody: %v\n%s", err, out)
	}
}

func TestLoadStateDamaged(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, StateFile), []byte("{"), 0o644)
	if _, err := LoadState(root); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("damaged state: %v", err)
	}
}

// ---- as root: real users, cgroups, and the network in a namespace ----

const testPrefix = "slntestfmt"

// sweep removes what an earlier crashed run of these tests left: users and
// groups named slntestfmt*, cgroups under slntest-format.
func sweep(t testing.TB) {
	tx, err := users.Begin("/etc")
	if err != nil {
		t.Fatal(err)
	}
	us, gs := tx.Names(testPrefix)
	for _, u := range us {
		tx.RemoveUser(u)
	}
	for _, g := range gs {
		if _, err := tx.RemoveGroup(g); err != nil {
			t.Log(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if l, err := cgroup.Detect(); err == nil {
		main, extra := l.Dirs("slntest-format")
		for _, d := range append([]string{main}, extra...) {
			if d == "" {
				continue
			}
			cgroup.Kill(d, 50)
			if err := cgroup.Remove(d); err != nil {
				t.Errorf("sweeping cgroup %s: %v", d, err)
			}
		}
	}
}

func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("users, cgroups and network namespaces need root; TestRootlessFormat covers the rest")
	}
	sweep(t)
	t.Cleanup(func() { sweep(t) })
}

var nsCount atomic.Int32

// newNS creates a network namespace for the test and deletes it after:
// the network part of format only ever runs in it.
func newNS(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("slntest-%d-f%d", os.Getpid(), nsCount.Add(1))
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread is left in the new namespace
		h, err := netns.NewNamed(name)
		if err == nil {
			h.Close()
		}
		errc <- err
	}()
	if err := <-errc; err != nil {
		t.Fatalf("creating network namespace: %v", err)
	}
	t.Cleanup(func() {
		if err := netns.DeleteNamed(name); err != nil {
			t.Errorf("deleting network namespace %s: %v", name, err)
		}
	})
	return name
}

// rootConfig is a node.hcl whose every name starts with slntest
// (users and groups with slntestfmt, swept by this package's tests only).
func rootConfig(count int, ns string) string {
	s := fmt.Sprintf(`node_id       = "slntest"
software_user = "slntestfmtsoft"
partitions {
  count          = %d
  user_base_name = "slntestfmt"
}
cgroup {
  parent     = "slntest-format"
  cpu_weight = 50
  memory_max = "256MiB"
  pids_max   = 200
}
partition "slappart1" {
  memory_max = "64MiB"
  pids_max   = 20
}
`, count)
	if ns != "" {
		s += fmt.Sprintf(`network {
  enabled            = true
  namespace          = %q
  bridge             = "slntbr0"
  tap_base_name      = "slnttap"
  ipv6_prefix        = "fd00:5ab:2::/64"
  ipv4_local_network = "10.45.0.0/16"
}
`, ns)
	}
	return s
}

// formatRoot formats a node as root and unformats it at the end.
func formatRoot(t testing.TB, count int, ns string) (*config.Config, *State) {
	t.Helper()
	root := nodeRoot(t)
	cfg := parse(t, root, rootConfig(count, ns))
	res, err := Format(Options{Config: cfg})
	if err != nil {
		t.Fatalf("format: %v", err)
	}
	t.Cleanup(func() {
		st, err := LoadState(root)
		if err == nil {
			for _, p := range st.List {
				if p.Cgroup != "" {
					for _, d := range append([]string{p.Cgroup}, p.ExtraCgroups...) {
						cgroup.Kill(d, 50)
					}
				}
			}
		}
		if _, err := Unformat(Options{Config: cfg, Purge: true}); err != nil {
			t.Errorf("unformat: %v", err)
		}
	})
	return cfg, res.State
}

func TestFormatAsRoot(t *testing.T) {
	needRoot(t)
	ns := newNS(t)
	cfg, st := formatRoot(t, 3, ns)

	soft, err := user.Lookup("slntestfmtsoft")
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range st.List {
		u, err := user.Lookup(fmt.Sprintf("slntestfmt%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if u.HomeDir != p.Path || u.Uid != fmt.Sprint(p.Uid) || u.Gid != fmt.Sprint(p.Gid) {
			t.Errorf("user %+v, partition %+v", u, p)
		}
		gids, _ := u.GroupIds()
		if !contains(gids, soft.Gid) || len(p.Groups) != 1 || fmt.Sprint(p.Groups[0]) != soft.Gid {
			t.Errorf("%s groups %v (software group %s), state %v", u.Username, gids, soft.Gid, p.Groups)
		}
		fi, err := os.Stat(p.Path)
		if err != nil {
			t.Fatal(err)
		}
		sys := fi.Sys().(*syscall.Stat_t)
		if fi.Mode().Perm() != 0o750 || sys.Uid != p.Uid || sys.Gid != p.Gid {
			t.Errorf("%s: mode %v owner %d:%d", p.Path, fi.Mode().Perm(), sys.Uid, sys.Gid)
		}
		if p.Cgroup == "" {
			t.Errorf("%s has no cgroup", p.ID)
		}
		for _, d := range append([]string{p.Cgroup}, p.ExtraCgroups...) {
			if _, err := os.Stat(filepath.Join(d, "cgroup.procs")); err != nil {
				t.Errorf("cgroup %s: %v", d, err)
			}
		}
		if p.Tap != fmt.Sprintf("slnttap%d", i) || p.IPv4 != fmt.Sprintf("10.45.0.%d", i+1) || p.IPv6 != fmt.Sprintf("fd00:5ab:2::%d", i+2) {
			t.Errorf("network of %s: %+v", p.ID, p)
		}
	}
	if p1 := st.List[1]; p1.Limits.MemoryMax != 64<<20 || p1.Limits.PidsMax != 20 || p1.Limits.CPUWeight != 50 {
		t.Errorf("slappart1 limits %+v", p1.Limits)
	}
	// The taps exist in the namespace, owned by their partition's user.
	err = netsetup.InNS(ns, func() error {
		for _, p := range st.List {
			l, err := netlink.LinkByName(p.Tap)
			if err != nil {
				return err
			}
			if tt, ok := l.(*netlink.Tuntap); !ok || tt.Owner != p.Uid {
				t.Errorf("tap %s: %+v", p.Tap, l)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := netlink.LinkByName("slntbr0"); err == nil {
		t.Fatal("the bridge appeared in the host namespace")
	}

	again, err := Format(Options{Config: cfg})
	if err != nil || len(again.Changes) != 0 {
		t.Errorf("re-run changed %q (%v)", again.Changes, err)
	}
	if _, err := Format(Options{Config: cfg, Rootless: true}); !errors.Is(err, ErrChanged) {
		t.Errorf("a rootless format over a root-formatted node: %v, want ErrChanged", err)
	}
	// Growing adds one partition and touches nothing else.
	grown, err := Format(Options{Config: parse(t, cfg.Root, rootConfig(4, ns))})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range grown.Changes {
		if strings.Contains(c, "slappart0") || strings.Contains(c, "slnttap0") || strings.Contains(c, "slntestfmt0 ") {
			t.Errorf("growing changed partition 0: %s", c)
		}
	}
	if len(grown.State.List) != 4 {
		t.Errorf("grown to %d", len(grown.State.List))
	}
	// Unformat refuses while a partition runs something.
	if _, err := Unformat(Options{Config: cfg, DryRun: true}); err != nil {
		t.Errorf("dry unformat: %v", err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestUnformatRemovesEverything(t *testing.T) {
	needRoot(t)
	ns := newNS(t)
	root := nodeRoot(t)
	cfg := parse(t, root, rootConfig(2, ns))
	dry, err := Format(Options{Config: cfg, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	st, err := Format(Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	// The plan is what happens (users, cgroups, network), line for line
	// but for the order of the v1 memory limits.
	if len(dry.Changes) != len(st.Changes) {
		t.Errorf("dry run planned %d changes:\n%s\nformat made %d:\n%s", len(dry.Changes), strings.Join(dry.Changes, "\n"), len(st.Changes), strings.Join(st.Changes, "\n"))
	}
	p0 := st.State.List[0]
	// A process in a partition blocks unformat.
	ce, err := p0.CgroupExec()
	if err != nil {
		t.Fatal(err)
	}
	defer ce.Close()
	pid, wait := startIn(t, ce, p0, "sleep", "300")
	if _, err := Unformat(Options{Config: cfg}); !errors.Is(err, cgroup.ErrBusy) {
		t.Errorf("unformat with a running process: %v", err)
	}
	unix.Kill(pid, unix.SIGKILL)
	wait()

	res, err := Unformat(Options{Config: cfg, Purge: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("unformat: %d changes", len(res.Changes))
	for _, n := range []string{"slntestfmtsoft", "slntestfmt0", "slntestfmt1"} {
		if _, err := user.Lookup(n); err == nil {
			t.Errorf("user %s left", n)
		}
		if _, err := user.LookupGroup(n); err == nil {
			t.Errorf("group %s left", n)
		}
	}
	for _, p := range st.State.List {
		for _, d := range append([]string{p.Cgroup, p.Path}, p.ExtraCgroups...) {
			if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s left", d)
			}
		}
	}
	if err := netsetup.InNS(ns, func() error {
		links, _ := netlink.LinkList()
		for _, l := range links {
			if l.Attrs().Name != "lo" {
				t.Errorf("link %s left in the namespace", l.Attrs().Name)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestUnformatGivesSoftwareRootBack (issue 18, finding 13): unformat
// --purge deletes the software user; the software root it owned, and what
// the user left in it, belong to root again, and a symbolic link the user
// planted there is changed itself, not what it points to.
func TestUnformatGivesSoftwareRootBack(t *testing.T) {
	needRoot(t)
	root := nodeRoot(t)
	cfg := parse(t, root, rootConfig(2, ""))
	res, err := Format(Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	soft := res.State.SoftwareUser
	sw := res.State.SoftwareRoot
	victim := filepath.Join(root, "victim")
	if err := os.WriteFile(victim, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chown(victim, 65534, 65534)
	for _, f := range []string{"bin/tool", "link"} {
		p := filepath.Join(sw, f)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if f == "link" {
			if err := os.Symlink(victim, p); err != nil {
				t.Fatal(err)
			}
		} else if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Lchown(p, int(soft.Uid), int(soft.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	os.Lchown(filepath.Join(sw, "bin"), int(soft.Uid), int(soft.Gid))
	if _, err := Unformat(Options{Config: cfg, Purge: true}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{sw, filepath.Join(sw, "bin"), filepath.Join(sw, "bin/tool"), filepath.Join(sw, "link")} {
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 || st.Gid != 0 {
			t.Errorf("%s is owned by %d:%d after unformat, want 0:0 (uid %d was deleted)", p, st.Uid, st.Gid, soft.Uid)
		}
	}
	fi, _ := os.Stat(victim)
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 65534 {
		t.Errorf("unformat followed a link of the software root: %s is owned by %d", victim, st.Uid)
	}
}

// A symbolic link in a partition directory's place is refused, not
// followed: format would otherwise change the mode (and, as root, the
// owner) of whatever it points to.
func TestFormatRefusesSymlinkedPartitionDir(t *testing.T) {
	root := nodeRoot(t)
	cfg := parse(t, root, "partitions {\n count = 1\n}\n")
	other := filepath.Join(root, "elsewhere")
	if err := os.Mkdir(other, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(other, 0o755)
	if err := os.MkdirAll(cfg.InstanceRoot, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(other, filepath.Join(cfg.InstanceRoot, "slappart0")); err != nil {
		t.Fatal(err)
	}
	_, err := Format(Options{Config: cfg, Rootless: true})
	if err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("format over a symlinked partition directory: %v", err)
	}
	if fi, _ := os.Stat(other); fi.Mode().Perm() != 0o755 {
		t.Errorf("format changed the link's target to %v", fi.Mode().Perm())
	}
}
