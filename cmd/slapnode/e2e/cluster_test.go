package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cli runs slapnode against the master at url (no --root).
func cli(t *testing.T, url string, args ...string) result {
	t.Helper()
	cmd := exec.Command(slapnode, args...)
	cmd.Dir = "../../.."
	cmd.Env = append(os.Environ(), "SLAPNODE_MASTER="+url)
	return runCmd(t, cmd)
}

// background starts a long-running slapnode command, stopped at cleanup.
func background(t *testing.T, logName string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(slapnode, args...)
	cmd.Dir = "../../.."
	logf, err := os.Create(filepath.Join(t.TempDir(), logName))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(90 * time.Second):
			cmd.Process.Kill()
		}
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("%s:\n%s", logName, b)
		}
	})
	return cmd
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type instanceInfo struct {
	State      string         `json:"state"`
	Connection map[string]any `json:"connection"`
}

// TestClusterOneMasterThreeNodes: a master and three nodes on one machine;
// a user supplies and requests helloweb on each, instances start and their
// promises pass, connection parameters reach the requester, a shared
// instance is attached, stop and destroy propagate, and a node killed and
// restarted converges again.
func TestClusterOneMasterThreeNodes(t *testing.T) {
	requireBuiltins(t)
	url := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	mroot := t.TempDir()
	background(t, "master.log", "master", "--root", mroot, "--listen", strings.TrimPrefix(url, "http://"))
	deadline := time.Now().Add(30 * time.Second)
	for cli(t, url, "list").code != 0 {
		if time.Now().After(deadline) {
			t.Fatal("master did not start")
		}
		time.Sleep(100 * time.Millisecond)
	}
	sw, _ := filepath.Abs("../../../examples/helloweb/software.hcl")
	roots := make([]string, 3)
	netns := make([]string, 3) // as root: each node's partitions in a namespace of their own
	daemons := make([]*exec.Cmd, 3)
	for i := range roots {
		roots[i] = t.TempDir()
		node := fmt.Sprintf("COMP-%d", i)
		if os.Geteuid() == 0 {
			netns[i] = formatInNamespace(t, roots[i], i)
		}
		daemons[i] = background(t, node+".log", "node", "run", "--root", roots[i], "--master", url, "--node-id", node, "--partitions", "2", "--interval", "1s")
		t.Cleanup(func() { run(t, roots[i], "node", "stop") })
		if r := cli(t, url, "supply", sw, node); r.code != 0 {
			t.Fatalf("supply: %s%s", r.stdout, r.stderr)
		}
	}
	urls := make([]string, 3)
	for i := range roots {
		r := cli(t, url, "request", fmt.Sprintf("web%d", i), sw, "--node", fmt.Sprintf("COMP-%d", i),
			"--param", fmt.Sprintf("greeting=node %d", i), "--wait", "--timeout", "180s")
		m := urlRe.FindStringSubmatch(r.stdout)
		if r.code != 0 || m == nil {
			t.Fatalf("request web%d (%d):\n%s%s", i, r.code, r.stdout, r.stderr)
		}
		urls[i] = m[1]
		if body := fetchIn(netns[i], urls[i]); !strings.Contains(body, fmt.Sprintf("node %d", i)) {
			t.Fatalf("web%d page: %q", i, body)
		}
	}

	// Usage reports reach the master: info shows the partition's disk use.
	waitUsage := time.Now().Add(60 * time.Second)
	for !strings.Contains(cli(t, url, "info", "web0").stdout, "Disk Usage") {
		if time.Now().After(waitUsage) {
			t.Fatalf("no usage in info web0:\n%s", cli(t, url, "info", "web0").stdout)
		}
		time.Sleep(500 * time.Millisecond)
	}

	// A shared instance, hosted by one of the instances.
	r := cli(t, url, "request", "site-a", sw, "--shared", "--node", "COMP-0", "--wait", "--timeout", "120s")
	if r.code != 0 || !strings.Contains(r.stdout, "site-a") {
		t.Fatalf("shared request (%d):\n%s%s", r.code, r.stdout, r.stderr)
	}

	info := func(name string) instanceInfo {
		r := cli(t, url, "info", name, "--json")
		var in instanceInfo
		json.Unmarshal([]byte(r.stdout), &in)
		return in
	}
	waitFor := func(what string, ok func() bool) {
		deadline := time.Now().Add(120 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}

	// Stop propagates: the node stops the service.
	if r := cli(t, url, "request", "web1", sw, "--node", "COMP-1", "--param", "greeting=node 1", "--state", "stopped"); r.code != 0 {
		t.Fatalf("stop: %s%s", r.stdout, r.stderr)
	}
	waitFor("web1 to stop", func() bool { return fetchIn(netns[1], urls[1]) == "" })

	// Destroy propagates: the partition is freed.
	if r := cli(t, url, "request", "web2", sw, "--node", "COMP-2", "--param", "greeting=node 2", "--state", "destroyed", "--wait", "--timeout", "120s"); r.code != 0 {
		t.Fatalf("remove: %s%s", r.stdout, r.stderr)
	}
	if fetchIn(netns[2], urls[2]) != "" {
		t.Fatal("web2 still answers after destroy")
	}

	// A node killed with SIGKILL and started again converges: web0 answers.
	daemons[0].Process.Kill()
	daemons[0].Wait()
	background(t, "COMP-0-again.log", "node", "run", "--root", roots[0], "--master", url, "--node-id", "COMP-0", "--partitions", "2", "--interval", "1s")
	waitFor("web0 to answer again", func() bool { return fetchIn(netns[0], urls[0]) != "" })
	if st := info("web0").State; st != "" && st != "started" {
		t.Fatalf("web0 state %q", st)
	}
}

// fetchIn GETs url from network namespace ns ("" = this one) and returns
// the body, "" when it does not answer 200. Traffic stays on loopback or
// inside the test's own namespaces.
func fetchIn(ns, url string) string {
	argv := []string{"curl", "-sf", "-m", "3", url}
	if ns != "" {
		argv = append([]string{"ip", "netns", "exec", ns}, argv...)
	}
	out, err := exec.Command(argv[0], argv[1:]...).Output()
	if err != nil {
		return ""
	}
	return string(out)
}

// formatInNamespace formats node i in a network namespace the test creates
// (bridge, taps and addresses live there; services run there), with users
// and cgroups of a recognisable prefix; everything is removed at cleanup.
func formatInNamespace(t *testing.T, root string, i int) string {
	t.Helper()
	os.Chmod(filepath.Dir(root), 0o755) // partition users traverse to their directories
	ns := fmt.Sprintf("slntest-cl%d-%d", os.Getpid()%100000, i)
	exec.Command("ip", "netns", "del", ns).Run()
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	conf := fmt.Sprintf(`
partitions {
  count          = 2
  user_base_name = "slntestc%du"
}
software_user = "slntestc%ds"
cgroup {
  parent = "slntest-cl%d"
}
network {
  enabled   = true
  namespace = %q
}
`, i, i, i, ns)
	if err := os.WriteFile(filepath.Join(root, "node.hcl"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		run(t, root, "node", "stop")
		if r := run(t, root, "node", "unformat", "--purge"); r.code != 0 {
			t.Errorf("unformat node %d: %s%s", i, r.stdout, r.stderr)
		}
	})
	if r := run(t, root, "node", "format"); r.code != 0 {
		t.Fatalf("format node %d: %s%s", i, r.stdout, r.stderr)
	}
	return ns
}
