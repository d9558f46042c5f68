package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// unitSettings reads the [Service] settings of a systemd unit file.
func unitSettings(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if k, v, ok := strings.Cut(l, "="); ok && !strings.HasPrefix(l, "#") {
			out[k] = v
		}
	}
	return out
}

// TestUnitCapabilities runs the node daemon with exactly the capability
// bounding set (and no-new-privileges setting) of node/slapnode.service, as
// systemd would, on a formatted node joined to a master: the service of an
// instance is installed and started as its partition's user in its network
// namespace, restarted after it is killed, stopped, destroyed, and the
// daemon stops leaving no process. This is how the unit's set was measured
// (docs/services.md §systemd): SLAPNODE_TEST_UNIT names another unit file
// to try a smaller set.
func TestUnitCapabilities(t *testing.T) {
	requireBuiltins(t)
	if os.Geteuid() != 0 {
		t.Skip("the unit's capabilities matter for a daemon run as root")
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("no setpriv (util-linux) to restrict the capability bounding set")
	}
	unit := os.Getenv("SLAPNODE_TEST_UNIT")
	if unit == "" {
		unit = "../../../node/slapnode.service"
	}
	settings := unitSettings(t, unit)
	var caps []string
	for _, c := range strings.Fields(settings["CapabilityBoundingSet"]) {
		caps = append(caps, "+"+strings.ToLower(strings.TrimPrefix(c, "CAP_")))
	}
	if len(caps) == 0 {
		t.Fatalf("%s has no CapabilityBoundingSet", unit)
	}
	setpriv := []string{"setpriv", "--bounding-set", "-all," + strings.Join(caps, ",")}
	if settings["NoNewPrivileges"] == "yes" {
		setpriv = append(setpriv, "--no-new-privs")
	}

	url := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	background(t, "master.log", "master", "--root", t.TempDir(), "--listen", strings.TrimPrefix(url, "http://"))
	for end := time.Now().Add(30 * time.Second); cli(t, url, "list").code != 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("master did not start")
		}
	}
	root := t.TempDir()
	ns := formatInNamespace(t, root, 7)
	logPath := filepath.Join(t.TempDir(), "node.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	argv := append(setpriv, slapnode, "node", "run", "--root", root, "--master", url, "--node-id", "COMP-7", "--partitions", "2", "--interval", "1s")
	daemon := exec.Command(argv[0], argv[1:]...)
	daemon.Dir = "../../.."
	daemon.Stdout, daemon.Stderr = logf, logf
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- daemon.Wait() }()
	t.Cleanup(func() {
		daemon.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(90 * time.Second):
			daemon.Process.Kill()
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("daemon log (bounding set %s):\n%s", strings.Join(caps, ","), b)
		}
	})
	// The daemon really runs with the unit's set.
	waitUntil(t, "the daemon to serve", func() bool {
		b, _ := os.ReadFile(logPath)
		return strings.Contains(string(b), "serving node root")
	})
	bounding := func(pid string) string {
		b, _ := os.ReadFile("/proc/" + pid + "/status")
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "CapBnd:"); ok {
				return strings.TrimSpace(v)
			}
		}
		return ""
	}
	// setpriv exec'd slapnode: same pid.
	if mine, its := bounding("self"), bounding(fmt.Sprint(daemon.Process.Pid)); its == "" || its == mine {
		t.Fatalf("the daemon's bounding set %q is not restricted (the test's is %q)", its, mine)
	}

	sw, _ := filepath.Abs("../../../examples/helloweb/software.hcl")
	if r := cli(t, url, "supply", sw, "COMP-7"); r.code != 0 {
		t.Fatalf("supply: %s%s", r.stdout, r.stderr)
	}
	r := cli(t, url, "request", "capweb", sw, "--node", "COMP-7", "--param", "greeting=bounded", "--wait", "--timeout", "180s")
	m := urlRe.FindStringSubmatch(r.stdout)
	if r.code != 0 || m == nil {
		t.Fatalf("request (%d):\n%s%s", r.code, r.stdout, r.stderr)
	}
	if body := fetchIn(ns, m[1]); !strings.Contains(body, "bounded") {
		t.Fatalf("page: %q", body)
	}
	// The service runs as the partition's user; killed, it is restarted.
	var st struct {
		Services []struct {
			Partition, Name, State string
			Pid, Restarts          int
		}
	}
	statusOf := func() (pid, restarts int, state string) {
		if err := json.Unmarshal([]byte(run(t, root, "status", "--json").stdout), &st); err != nil || len(st.Services) == 0 {
			return 0, 0, ""
		}
		s := st.Services[0]
		return s.Pid, s.Restarts, s.State
	}
	pid, _, _ := statusOf()
	var pst syscall.Stat_t
	if err := syscall.Stat(fmt.Sprintf("/proc/%d", pid), &pst); err != nil || pst.Uid == 0 {
		t.Fatalf("service pid %d runs as uid %d (%v), want its partition's user", pid, pst.Uid, err)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	waitUntil(t, "the killed service to be restarted", func() bool {
		p, restarts, state := statusOf()
		return restarts >= 1 && state == "RUNNING" && p != pid
	})
	if r := cli(t, url, "request", "capweb", sw, "--node", "COMP-7", "--param", "greeting=bounded", "--state", "destroyed", "--wait", "--timeout", "120s"); r.code != 0 {
		t.Fatalf("destroy: %s%s", r.stdout, r.stderr)
	}
	waitUntil(t, "the page to go", func() bool { return fetchIn(ns, m[1]) == "" })
	daemon.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Errorf("the daemon stopped with %v", err)
		}
	case <-time.After(90 * time.Second):
		t.Fatal("the daemon did not stop")
	}
	b, _ := os.ReadFile(logPath)
	// A stop is graceful: SIGTERM reaches the partition user's processes
	// (a daemon without CAP_KILL could only kill them through the cgroup
	// once the grace period is over).
	if !strings.Contains(string(b), `msg="service stopped"`) {
		t.Errorf("no graceful stop in the daemon log")
	}
	for _, bad := range []string{"operation not permitted", "permission denied", "level=ERROR", "SIGKILL after its grace period"} {
		if strings.Contains(strings.ToLower(string(b)), strings.ToLower(bad)) {
			t.Errorf("the daemon log has %q", bad)
		}
	}
	if out, _ := exec.Command("pgrep", "-u", "slntestc7u0,slntestc7u1").Output(); len(out) != 0 {
		t.Errorf("processes of the partitions' users are left: %s", out)
	}
}
