package daemon

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slapnode/slapnode/node/supervisor"
)

// BenchmarkDaemon100Partitions starts a real daemon process, applies 100
// partitions of 2 idle services each, and reports the time until all 200
// run, the daemon's resident memory then, and the time to stop them all.
// Run: go test ./node/daemon -run XXX -bench Daemon100 -benchtime 1x
func BenchmarkDaemon100Partitions(b *testing.B) {
	b.Setenv("SLAPNODE_DAEMON_TEST_HELPER", "1")
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		root, dir := b.TempDir(), b.TempDir()
		c, err := Ensure(root, exe)
		if err != nil {
			b.Fatal(err)
		}
		info, _ := c.Info(ctx)
		idle := rssKiB(info.Pid)
		start := time.Now()
		for p := 0; p < 100; p++ {
			var specs []supervisor.ServiceSpec
			for s := 0; s < 2; s++ {
				specs = append(specs, supervisor.ServiceSpec{Name: fmt.Sprintf("svc%d", s), Command: []string{"sleep", "100000"}, Dir: dir, Watch: true, StopGrace: 10 * time.Second})
			}
			if _, err := c.Apply(ctx, fmt.Sprintf("slappart%d", p), specs); err != nil {
				b.Fatal(err)
			}
		}
		applied := time.Since(start)
		for {
			st, err := c.Status(ctx)
			if err != nil {
				b.Fatal(err)
			}
			running := 0
			for _, s := range st {
				if s.State == supervisor.StateRunning {
					running++
				}
			}
			if running == 200 {
				break
			}
			if time.Since(start) > 5*time.Minute {
				b.Fatalf("only %d of 200 services running after 5 minutes", running)
			}
			time.Sleep(10 * time.Millisecond)
		}
		allRunning := time.Since(start)
		time.Sleep(2 * time.Second) // let the reaper and GC settle
		rss := rssKiB(info.Pid)
		stop := time.Now()
		if err := c.Shutdown(ctx); err != nil {
			b.Fatal(err)
		}
		stopped := time.Since(stop)
		b.ReportMetric(float64(idle)/1024, "idle-RSS-MiB")
		b.ReportMetric(float64(rss)/1024, "RSS-200svc-MiB")
		b.ReportMetric(float64(applied.Milliseconds()), "apply-ms")
		b.ReportMetric(float64(allRunning.Milliseconds()), "all-running-ms")
		b.ReportMetric(float64(stopped.Milliseconds()), "stop-all-ms")
	}
}

// rssKiB reads VmRSS of pid from /proc.
func rssKiB(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}
