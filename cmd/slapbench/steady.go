package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/slapnode/slapnode/node/slap"
)

// The steady state of a node: what a node with steadyPartitions instances
// costs once they are all deployed and nothing changes — the state a fleet
// spends nearly all its time in. SlapOS runs slapgrid every minute and
// buildout in each partition whose instance must be processed; slapnode
// runs `slapnode node converge` (or the same pass inside `slapnode node run
// --master`) against the master, and a daemon supervises the services.
//
// The node is a real one: `slapnode master` in its own process, a node
// root registered with steadyPartitions partitions, one instance requested
// per partition of a release whose instances run steadyServices services
// each (`sleep`, as idle as a service gets), every one started by the first
// pass under the node's daemon.

const (
	steadyPartitions = 100
	steadyServices   = 2
	steadyComputer   = "slapbench-steady"
)

// steadyBench is the node's steady-state figures.
type steadyBench struct {
	Partitions int `json:"partitions"`
	Services   int `json:"services"` // per partition
	// First is the first pass, which deploys every instance (for scale).
	First measure `json:"first"`
	// Passes are the unchanged passes: `slapnode node converge`, one
	// process each (wall, CPU of the process, peak RSS).
	Passes []measure `json:"passes"`
	// The daemon, idle: its CPU over IdleSeconds, the context switches of
	// its threads (how often it woke up), and its memory.
	IdleSeconds  float64  `json:"idle_seconds"`
	IdleCPU      float64  `json:"idle_cpu_seconds"`
	IdleSwitches int      `json:"idle_context_switches"`
	DaemonRSS    int      `json:"daemon_rss_kib"`
	DaemonHWM    int      `json:"daemon_peak_rss_kib"`
	Running      int      `json:"running_services"` // RUNNING when the idle minute started
	Commands     []string `json:"commands"`
}

// steadyProfile is the release: instances of two idle services and a
// published URL.
const steadySoftware = `software "steady" {
  version = "1.0.0"
}

module "cookbook" {
  source = "builtin:cookbook"
}

instance "default" {
  profile = "instance.hcl"
}
`

const steadyInstance = `part "etc" {
  recipe = "cookbook:mkdirectory"
  etc    = "${partition.path}/etc"
}

service "worker" {
  command = ["sleep", "1000000"]
}

service "helper" {
  command = ["sleep", "1000000"]
}

publish {
  url = "http://${partition.ipv4}:8080/"
}
`

func runSteadyBench(c *config, slapnode string) (*steadyBench, error) {
	dir := filepath.Join(c.work, "steady")
	root := filepath.Join(dir, "root")
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	release := filepath.Join(dir, "release")
	if err := os.MkdirAll(release, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(release, "software.hcl"), []byte(steadySoftware), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(release, "instance.hcl"), []byte(steadyInstance), 0o644); err != nil {
		return nil, err
	}
	sr := filepath.Join(release, "software.hcl")
	srv, err := startSlapnodeMasterFor(slapnode, filepath.Join(dir, "master"), steadyComputer)
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	defer stopNode(slapnode, root)
	ctx := context.Background()
	cl := srv.client()
	sb := &steadyBench{Partitions: steadyPartitions, Services: steadyServices}
	converge := []string{"node", "converge", "--master", strings.TrimSuffix(srv.base, "/"), "--node-id", steadyComputer,
		"--partitions", strconv.Itoa(steadyPartitions), "--root", root, "--json"}
	sb.Commands = []string{
		"slapnode " + strings.Join(converge, " ") + "   (first pass, then the unchanged passes)",
		"daemon: `slapnode node run --root ROOT`, started by the first pass; CPU from /proc/PID/stat, context switches from /proc/PID/task/*/status",
	}
	pass := func(log string) (measure, *convergeOut, error) {
		m, out, err := timed(exec.Command(slapnode, converge...), filepath.Join(dir, log))
		if err != nil {
			return m, nil, fmt.Errorf("slapnode node converge: %v\n%s", err, tail(out))
		}
		var co convergeOut
		if i := strings.Index(out, "{"); i < 0 || json.Unmarshal([]byte(out[i:]), &co) != nil {
			return m, nil, fmt.Errorf("slapnode node converge: no JSON report in\n%s", tail(out))
		}
		return m, &co, nil
	}
	// Register the node's partitions (nothing to deploy yet).
	if _, _, err := pass("register.log"); err != nil {
		return nil, err
	}
	if err := cl.Supply(ctx, sr, steadyComputer, ""); err != nil {
		return nil, err
	}
	for i := 0; i < steadyPartitions; i++ {
		if _, err := cl.Request(ctx, slap.Request{SoftwareURL: sr, Reference: fmt.Sprintf("steady-%d", i),
			Parameters: map[string]any{"n": strconv.Itoa(i)}, Filter: map[string]any{"computer_guid": steadyComputer}}); err != nil {
			return nil, fmt.Errorf("request steady-%d: %w", i, err)
		}
	}
	logf("steady: first pass: %d partitions, %d services each", steadyPartitions, steadyServices)
	first, co, err := pass("first.log")
	if err != nil {
		return nil, err
	}
	if len(co.Processed) != steadyPartitions {
		return nil, fmt.Errorf("first pass processed %d partitions, want %d (errors: %v)", len(co.Processed), steadyPartitions, co.Errors)
	}
	sb.First = first
	for i := 0; i < c.repeat; i++ {
		m, co, err := pass(fmt.Sprintf("pass-%d.log", i))
		if err != nil {
			return nil, err
		}
		if len(co.UpToDate) != steadyPartitions || len(co.Processed) != 0 {
			return nil, fmt.Errorf("unchanged pass %d: %d up to date, %d processed, want %d and 0", i, len(co.UpToDate), len(co.Processed), steadyPartitions)
		}
		sb.Passes = append(sb.Passes, m)
		logf("steady: unchanged pass: %.3f s wall, %.3f s CPU, %.1f MiB", m.Wall, m.CPU, m.RSSMB)
	}
	pid, err := daemonPid(root)
	if err != nil {
		return nil, err
	}
	if sb.Running, err = runningServices(slapnode, root); err != nil {
		return nil, err
	}
	if sb.Running != steadyPartitions*steadyServices {
		return nil, fmt.Errorf("%d services running, want %d", sb.Running, steadyPartitions*steadyServices)
	}
	idle := c.steadyIdle
	logf("steady: daemon (pid %d) idle for %s with %d services", pid, idle, sb.Running)
	cpu0, sw0 := procCPU(pid), contextSwitches(pid)
	start := time.Now()
	time.Sleep(idle)
	sb.IdleSeconds = time.Since(start).Seconds()
	sb.IdleCPU = (procCPU(pid) - cpu0).Seconds()
	sb.IdleSwitches = contextSwitches(pid) - sw0
	sb.DaemonRSS = procStatusKiB(pid, "VmRSS")
	sb.DaemonHWM = procStatusKiB(pid, "VmHWM")
	logf("steady: daemon idle: %.3f s CPU in %.0f s, %d context switches, %d KiB RSS", sb.IdleCPU, sb.IdleSeconds, sb.IdleSwitches, sb.DaemonRSS)
	return sb, nil
}

// convergeOut is what `slapnode node converge --json` prints.
type convergeOut struct {
	Processed []string `json:"processed"`
	UpToDate  []string `json:"up_to_date"`
	Errors    []any    `json:"errors"`
}

func daemonPid(root string) (int, error) {
	b, err := os.ReadFile(filepath.Join(root, "var", "run", "daemon.pid"))
	if err != nil {
		return 0, fmt.Errorf("the node daemon's pid: %w", err)
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// runningServices counts the RUNNING services `slapnode status` shows.
func runningServices(slapnode, root string) (int, error) {
	out, err := exec.Command(slapnode, "status", "--root", root, "--json").Output()
	if err != nil {
		return 0, fmt.Errorf("slapnode status: %w", err)
	}
	return strings.Count(string(out), `"RUNNING"`), nil
}

// contextSwitches sums the voluntary and involuntary context switches of
// every thread of a process: each is the process waking up or being woken.
func contextSwitches(pid int) int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	n := 0
	for _, t := range tasks {
		for _, line := range strings.Split(readFile(t), "\n") {
			for _, k := range []string{"voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:"} {
				if v, ok := strings.CutPrefix(line, k); ok {
					x, _ := strconv.Atoi(strings.TrimSpace(v))
					n += x
				}
			}
		}
	}
	return n
}
