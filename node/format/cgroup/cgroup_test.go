package cgroup

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slapnode/slapnode/node/config"
)

const hybridMountinfo = `25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
33 25 0:28 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
34 33 0:29 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
35 33 0:30 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
36 33 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,cpu,cpuacct
37 33 0:32 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,memory
38 33 0:33 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,pids
39 33 0:34 / /sys/fs/cgroup/my\040dir rw - cgroup cgroup rw,freezer
`

func TestParseMountinfo(t *testing.T) {
	l, err := ParseMountinfo(strings.NewReader(hybridMountinfo))
	if err != nil {
		t.Fatal(err)
	}
	if l.V2 != "/sys/fs/cgroup/unified" {
		t.Errorf("V2 = %q", l.V2)
	}
	want := map[string]string{"cpu": "/sys/fs/cgroup/cpu,cpuacct", "cpuacct": "/sys/fs/cgroup/cpu,cpuacct", "memory": "/sys/fs/cgroup/memory", "pids": "/sys/fs/cgroup/pids"}
	if len(l.V1) != len(want) {
		t.Errorf("V1 = %v, want %v", l.V1, want)
	}
	for k, v := range want {
		if l.V1[k] != v {
			t.Errorf("V1[%s] = %q, want %q", k, l.V1[k], v)
		}
	}
	main, extra := l.Dirs("slapnode/slappart0")
	if main != "/sys/fs/cgroup/unified/slapnode/slappart0" || strings.Join(extra, " ") != "/sys/fs/cgroup/cpu,cpuacct/slapnode/slappart0 /sys/fs/cgroup/memory/slapnode/slappart0 /sys/fs/cgroup/pids/slapnode/slappart0" {
		t.Errorf("Dirs = %q %q", main, extra)
	}
	if unescape(`/a\040b`) != "/a b" {
		t.Error("mountinfo escapes not decoded")
	}
}

// fakeV2 builds a pure cgroup v2 tree in a temporary directory, with the
// files the kernel would show, so that the v2 limit logic is tested even
// though this machine's v2 hierarchy has no cpu/memory/pids controller
// (they are bound to v1 hierarchies). Rootless.
func fakeV2(t *testing.T, rel string) (*Layout, string) {
	t.Helper()
	root := t.TempDir()
	files := map[string]string{"cgroup.controllers": "cpu memory pids", "cgroup.subtree_control": ""}
	for n, v := range files {
		os.WriteFile(filepath.Join(root, n), []byte(v), 0o644)
	}
	dir := root
	for _, p := range strings.Split(rel, "/") {
		dir = filepath.Join(dir, p)
		os.MkdirAll(dir, 0o755)
		for n, v := range map[string]string{"cgroup.procs": "", "cgroup.subtree_control": "", "cpu.weight": "100", "cpu.max": "max 100000", "memory.max": "max", "memory.swap.max": "max", "pids.max": "max"} {
			os.WriteFile(filepath.Join(dir, n), []byte(v+"\n"), 0o644)
		}
	}
	return &Layout{V2: root, V2Controllers: map[string]bool{"cpu": true, "memory": true, "pids": true}, V1: map[string]string{}}, dir
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestEnsureV2Files(t *testing.T) {
	l, dir := fakeV2(t, "slapnode/slappart0")
	lim := config.Limits{CPUWeight: 200, CPUQuotaPercent: 150, MemoryMax: 64 << 20, PidsMax: 20}
	dry, _, err := l.Ensure("slapnode/slappart0", lim, true)
	if err != nil || len(dry) == 0 {
		t.Fatalf("dry run: %v %v", dry, err)
	}
	if readFile(t, filepath.Join(dir, "pids.max")) != "max" {
		t.Fatal("dry run wrote pids.max")
	}
	changes, notes, err := l.Ensure("slapnode/slappart0", lim, false)
	if err != nil || len(notes) != 0 {
		t.Fatal(err, notes)
	}
	if len(changes) != len(dry) {
		t.Errorf("dry run planned %v, run made %v", dry, changes)
	}
	for f, want := range map[string]string{"cpu.weight": "200", "cpu.max": "150000 100000", "memory.max": "67108864", "memory.swap.max": "0", "pids.max": "20"} {
		if got := readFile(t, filepath.Join(dir, f)); got != want {
			t.Errorf("%s = %q, want %q", f, got, want)
		}
	}
	for _, d := range []string{l.V2, filepath.Join(l.V2, "slapnode")} {
		if got := readFile(t, filepath.Join(d, "cgroup.subtree_control")); got != "+cpu +memory +pids" {
			t.Errorf("%s/cgroup.subtree_control = %q", d, got)
		}
	}
	// The real kernel answers the enabled list without '+'; emulate it.
	for _, d := range []string{l.V2, filepath.Join(l.V2, "slapnode")} {
		os.WriteFile(filepath.Join(d, "cgroup.subtree_control"), []byte("cpu memory pids\n"), 0o644)
	}
	again, _, err := l.Ensure("slapnode/slappart0", lim, false)
	if err != nil || len(again) != 0 {
		t.Errorf("second Ensure changed %v (%v)", again, err)
	}
	// Removing the limits puts the kernel defaults back. containerd writes
	// "no memory limit" as the largest value, which the kernel shows as
	// "max" and this file tree keeps as written.
	if _, _, err := l.Ensure("slapnode/slappart0", config.Limits{}, false); err != nil {
		t.Fatal(err)
	}
	for f, want := range map[string]string{"cpu.weight": "100", "cpu.max": "max 100000", "memory.max": "max", "pids.max": "max"} {
		if got := readFile(t, filepath.Join(dir, f)); got != want && !(want == "max" && isMax(got)) {
			t.Errorf("after reset %s = %q, want %q", f, got, want)
		}
	}
}

func TestEnsureWithoutHierarchy(t *testing.T) {
	l := &Layout{V2Controllers: map[string]bool{}, V1: map[string]string{}}
	if _, _, err := l.Ensure("x", config.Limits{}, true); err == nil {
		t.Error("Ensure without any hierarchy succeeded")
	}
	l2, _ := fakeV2(t, "p")
	delete(l2.V2Controllers, "memory")
	_, notes, err := l2.Ensure("p", config.Limits{MemoryMax: 1 << 30}, true)
	if err != nil || len(notes) != 1 || !strings.Contains(notes[0], "memory_max") {
		t.Errorf("notes = %v, err = %v", notes, err)
	}
}

// needRoot skips tests that create real cgroups: only root may.
func needRoot(t *testing.T) *Layout {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("creating cgroups needs root; the v2 logic is covered rootless by TestEnsureV2Files")
	}
	l, err := Detect()
	if err != nil {
		t.Fatal(err)
	}
	if !l.Usable() {
		t.Skip("no cgroup hierarchy mounted")
	}
	sweep(t, l)
	t.Cleanup(func() { sweep(t, l) })
	return l
}

// sweep removes slntest cgroups left by this or an earlier run.
func sweep(t *testing.T, l *Layout) {
	main, extra := l.Dirs("slntest-cgroup")
	for _, d := range append([]string{main}, extra...) {
		Kill(d, 20)
		if err := Remove(d); err != nil {
			t.Errorf("sweep: %v", err)
		}
	}
}

func TestRealCgroup(t *testing.T) {
	l := needRoot(t)
	rel := "slntest-cgroup/slappart0"
	lim := config.Limits{CPUWeight: 50, CPUQuotaPercent: 50, MemoryMax: 32 << 20, PidsMax: 20}
	changes, notes, err := l.Ensure(rel, lim, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("layout v2=%s %v v1=%v; %d changes; notes %v", l.V2, l.V2Controllers, l.V1, len(changes), notes)
	main, extra := l.Dirs(rel)
	for _, d := range append([]string{main}, extra...) {
		if _, err := os.Stat(filepath.Join(d, "cgroup.procs")); err != nil {
			t.Errorf("cgroup %s not created: %v", d, err)
		}
	}
	if d, v2 := l.where("pids", rel); d != "" {
		if got := readFile(t, filepath.Join(d, "pids.max")); got != "20" {
			t.Errorf("pids.max = %q (v2=%v)", got, v2)
		}
	}
	if d, v2 := l.where("memory", rel); d != "" && !v2 {
		if got := readFile(t, filepath.Join(d, "memory.limit_in_bytes")); got != "33554432" {
			t.Errorf("memory.limit_in_bytes = %q", got)
		}
	}
	if d, v2 := l.where("cpu", rel); d != "" && !v2 {
		if got := readFile(t, filepath.Join(d, "cpu.shares")); got != "512" {
			t.Errorf("cpu.shares = %q", got)
		}
		if got := readFile(t, filepath.Join(d, "cpu.cfs_quota_us")); got != "50000" {
			t.Errorf("cpu.cfs_quota_us = %q", got)
		}
	}
	again, _, err := l.Ensure(rel, lim, false)
	if err != nil || len(again) != 0 {
		t.Errorf("second Ensure: %v %v", again, err)
	}
	// Lowering then raising the memory limit keeps memsw ≥ limit.
	for _, m := range []uint64{16 << 20, 64 << 20, 0} {
		lim.MemoryMax = m
		if _, _, err := l.Ensure(rel, lim, false); err != nil {
			t.Fatalf("memory_max %d: %v", m, err)
		}
	}

	// A process joined to the cgroup is seen, blocks removal, is killed.
	cmd := exec.Command("sleep", "300")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	defer func() { _ = cmd.Process.Kill(); <-done }()
	if err := Join(cmd.Process.Pid, append([]string{main}, extra...)...); err != nil {
		t.Fatal(err)
	}
	pids, err := Procs(main)
	if err != nil || len(pids) != 1 || pids[0] != cmd.Process.Pid {
		t.Errorf("Procs = %v %v", pids, err)
	}
	if err := Remove(main); !errors.Is(err, ErrBusy) {
		t.Errorf("Remove of a busy cgroup: %v", err)
	}
	if left := Kill(main, 10); len(left) != 0 {
		t.Errorf("left after Kill: %v", left)
	}
	for _, d := range append([]string{main}, extra...) {
		if err := Remove(filepath.Dir(d)); err != nil {
			t.Error(err)
		}
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still exists", d)
		}
	}
}

func TestIsV2(t *testing.T) {
	l, err := Detect()
	if err != nil {
		t.Fatal(err)
	}
	if l.V2 == "" {
		t.Skip("no cgroup2 mount")
	}
	if !IsV2(l.V2) {
		t.Errorf("IsV2(%s) = false", l.V2)
	}
	if IsV2(t.TempDir()) {
		t.Error("IsV2 of a temporary directory")
	}
}

func FuzzParseMountinfo(f *testing.F) {
	f.Add(hybridMountinfo)
	f.Add("1 0 0:1 / /x rw - cgroup2 none rw\n")
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseMountinfo(strings.NewReader(s))
		if err != nil {
			return
		}
		for c, m := range l.V1 {
			if m == "" || c == "" {
				t.Errorf("empty v1 entry %q → %q", c, m)
			}
		}
	})
}

// containerd places v1 controller c at <root>/<c>; a hierarchy mounted
// under another name (cpu,cpuacct) is reached through a relative path.
func TestV1PathOfCoMountedController(t *testing.T) {
	p, err := v1Path("/sys/fs/cgroup/cpu,cpuacct", "cpu", "slapnode/slappart0")("cpu")
	if err != nil {
		t.Fatal(err)
	}
	sub := v1Subsystem("/sys/fs/cgroup/cpu,cpuacct", "cpu").(interface{ Path(string) string })
	if got := sub.Path(p); got != "/sys/fs/cgroup/cpu,cpuacct/slapnode/slappart0" {
		t.Errorf("cpu cgroup at %s", got)
	}
	p, _ = v1Path("/sys/fs/cgroup/pids", "pids", "slapnode/slappart0")("pids")
	if got := v1Subsystem("/sys/fs/cgroup/pids", "pids").(interface{ Path(string) string }).Path(p); got != "/sys/fs/cgroup/pids/slapnode/slappart0" {
		t.Errorf("pids cgroup at %s", got)
	}
}
