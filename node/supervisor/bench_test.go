package supervisor

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// benchCgroups creates, as root, one cgroup named slntest-bench-PID in the
// v2 hierarchy and in the v1 cpu, memory and pids hierarchies of this
// machine (those that exist), and removes them at the end. It returns the
// main directory and the v1 ones.
func benchCgroups(b *testing.B) (string, []string) {
	b.Helper()
	if os.Geteuid() != 0 {
		b.Skip("creating cgroups needs root")
	}
	name := fmt.Sprintf("slntest-bench-%d", os.Getpid())
	var dirs []string
	for _, h := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup/cpu", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids"} {
		if _, err := os.Stat(filepath.Join(h, "cgroup.procs")); err != nil {
			continue
		}
		d := filepath.Join(h, name)
		if err := os.Mkdir(d, 0o755); err != nil {
			b.Fatal(err)
		}
		dirs = append(dirs, d)
	}
	b.Cleanup(func() {
		for _, d := range dirs {
			subs, _ := filepath.Glob(filepath.Join(d, "*", "cgroup.procs"))
			for _, s := range subs {
				os.Remove(filepath.Dir(s))
			}
			os.Remove(d)
		}
	})
	if len(dirs) < 2 || filepath.Dir(dirs[0]) != "/sys/fs/cgroup/unified" {
		b.Skip("this benchmark needs the hybrid layout (v2 at /sys/fs/cgroup/unified plus v1 controllers)")
	}
	return dirs[0], dirs[1:]
}

// BenchmarkSpawn measures the start of a service (fork, placement in its
// cgroups, exec of sleep) until the supervisor holds it running, as the
// supervisor does it (the kill and reaping are not timed): without
// cgroup (rootless), cloned into a v2 cgroup only, and in a v2 cgroup plus
// the v1 controllers (a hybrid machine, where the exec shim joins them).
func BenchmarkSpawn(b *testing.B) {
	s, err := New(Options{})
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	log, err := openRotator(filepath.Join(dir, "bench.log"), 0, 0, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer log.Close()
	var main string
	var v1 []string
	if os.Geteuid() == 0 {
		main, v1 = benchCgroups(b)
	}
	for _, tc := range []struct {
		name         string
		cgroup       string
		extra        []string
		needsCgroups bool
	}{
		{"plain", "", nil, false},
		{"v2", main, nil, true},
		{"hybrid", main, v1, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			sp := ServiceSpec{Partition: "p", Name: "bench", Command: []string{"/bin/sleep", "1000"}, Dir: dir, StopGrace: time.Second}
			if tc.needsCgroups && tc.cgroup == "" {
				b.Skip("creating cgroups needs root")
			}
			sp.Cgroup, sp.ExtraCgroups = tc.cgroup, tc.extra
			u := s.newUnit(sp)
			cg, err := newCgroupSet(&u.spec, specLeaf(u.spec))
			if err != nil {
				b.Fatal(err)
			}
			if cg != nil {
				defer cg.remove()
			}
			b.ResetTimer()
			for range b.N {
				r, err := u.spawn(log, cg)
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				_ = syscall.Kill(r.pid, syscall.SIGKILL)
				<-r.exited
				b.StartTimer()
			}
		})
	}
}
