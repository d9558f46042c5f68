package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slapnode/slapnode/internal/testenv"
)

var slapnode string // path of the binary under test

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "slapnode-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Chmod(dir, 0o755) // the rootless test runs it as another user
	slapnode = filepath.Join(dir, "slapnode")
	build := exec.Command("go", "build", "-o", slapnode, "..")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build slapnode:", err)
		os.Exit(1)
	}
	// The binaries the tests run claim loopback blocks in a registry of
	// this run, not the machine's.
	if os.Getenv(testenv.LoopbackEnv) == "" {
		reg := filepath.Join(dir, "loopback")
		os.Mkdir(reg, 0o755)
		os.Setenv(testenv.LoopbackEnv, reg)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// requireBuiltins skips (or fails under make test) when the binary lacks its
// WebAssembly modules.
func requireBuiltins(t *testing.T) {
	t.Helper()
	out, _ := exec.Command(slapnode, "version").Output()
	if bytes.Contains(out, []byte("built-in modules: none")) {
		if os.Getenv("SLAPNODE_REQUIRE_WASM") != "" {
			t.Fatal("slapnode was built without its WebAssembly modules")
		}
		t.Skip("slapnode built without its WebAssembly modules: run 'make wasm' first")
	}
}

type result struct {
	stdout, stderr string
	code           int
}

func run(t *testing.T, root string, args ...string) result {
	t.Helper()
	return runAs(t, nil, root, args...)
}

// runAs runs slapnode as another user when cred is set.
func runAs(t *testing.T, cred *syscall.Credential, root string, args ...string) result {
	t.Helper()
	cmd := exec.Command(slapnode, append(args, "--root", root)...)
	cmd.Dir = "../../.."
	if cred != nil {
		cmd.Dir = root // the checkout may be private to root
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + root, "LANG=C.UTF-8"}
	}
	return runCmd(t, cmd)
}

// runCmd runs cmd and collects its output and exit code.
func runCmd(t *testing.T, cmd *exec.Cmd) result {
	t.Helper()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{out.String(), errb.String(), code}
}

// stopNode stops the daemon a test started, even when the test fails.
func stopNode(t *testing.T, root string) {
	t.Cleanup(func() {
		cmd := exec.Command(slapnode, "node", "stop", "--root", root)
		cmd.Run()
	})
}

// TestHellowebRootless runs the demo as an unprivileged user (root drops to
// nobody; a normal user runs it as itself): no users, cgroups or network
// setup, said once, and the service still answers.
func TestHellowebRootless(t *testing.T) {
	requireBuiltins(t)
	root := t.TempDir()
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		cred = &syscall.Credential{Uid: 65534, Gid: 65534}
		os.Chmod(filepath.Dir(root), 0o755)
		if err := os.Chown(root, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { runAs(t, cred, root, "node", "stop") })
	profile := "examples/helloweb/software.hcl"
	if cred != nil {
		// The checkout may be private to root (a clone in a 0700 temporary
		// directory): give the unprivileged user its own readable copy.
		copyDir := filepath.Join(filepath.Dir(root), "helloweb")
		if err := os.CopyFS(copyDir, os.DirFS("../../../examples/helloweb")); err != nil {
			t.Fatal(err)
		}
		filepath.Walk(copyDir, func(p string, info os.FileInfo, err error) error {
			if err == nil {
				os.Chmod(p, info.Mode().Perm()|0o055)
			}
			return nil
		})
		profile = filepath.Join(copyDir, "software.hcl")
	}
	r := runAs(t, cred, root, "apply", profile, "--param", "port:=18481")
	if r.code != 0 {
		t.Fatalf("rootless apply exited %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if strings.Count(r.stderr, "rootless") != 1 {
		t.Errorf("rootless mode not said exactly once:\n%s", r.stderr)
	}
	m := urlRe.FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("no URL printed:\n%s", r.stdout)
	}
	if body := get(t, m[1]); !strings.Contains(body, "Hello from slapnode") {
		t.Fatalf("page: %q", body)
	}
	st := runAs(t, cred, root, "status")
	if !strings.Contains(st.stdout, "RUNNING") {
		t.Fatalf("status:\n%s%s", st.stdout, st.stderr)
	}
	if cred != nil {
		// The service runs as the unprivileged user.
		pid := regexp.MustCompile(`RUNNING\s+(\d+)`).FindStringSubmatch(st.stdout)
		if pid == nil {
			t.Fatalf("no pid in status:\n%s", st.stdout)
		}
		fi, err := os.Stat("/proc/" + pid[1])
		if err != nil {
			t.Fatal(err)
		}
		if uid := fi.Sys().(*syscall.Stat_t).Uid; uid != 65534 {
			t.Fatalf("service runs as uid %d", uid)
		}
	}
}

var urlRe = regexp.MustCompile(`url = (http://\S+)`)

func TestHellowebDemo(t *testing.T) {
	requireBuiltins(t)
	root := t.TempDir()
	stopNode(t, root)
	r := run(t, root, "apply", "examples/helloweb/software.hcl", "--param", "port:=18480")
	if r.code != 0 {
		t.Fatalf("apply exited %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	m := urlRe.FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("no URL printed:\n%s", r.stdout)
	}
	body := get(t, m[1])
	if !strings.Contains(body, "Hello from slapnode") || !strings.Contains(body, "slappart0") {
		t.Fatalf("page: %q", body)
	}

	// Applying again changes nothing.
	r = run(t, root, "apply", "examples/helloweb/software.hcl", "--param", "port:=18480")
	if r.code != 0 || !strings.Contains(r.stdout, "software: already installed") || !strings.Contains(r.stdout, "0 installed, 0 reinstalled, 0 uninstalled") {
		t.Fatalf("second apply not a no-op (%d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	// A new greeting reinstalls the page and restarts nothing else.
	r = run(t, root, "apply", "examples/helloweb/software.hcl", "--param", "port:=18480", "--param", "greeting=Bonjour")
	if r.code != 0 || !strings.Contains(r.stdout, "1 reinstalled") {
		t.Fatalf("greeting change (%d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if body := get(t, m[1]); !strings.Contains(body, "Bonjour") {
		t.Fatalf("page after change: %q", body)
	}

	// A bad parameter is refused before anything runs, with its pointer.
	r = run(t, root, "apply", "examples/helloweb/software.hcl", "--param", "port:=80")
	if r.code != 1 || !strings.Contains(r.stderr, "/port") {
		t.Fatalf("bad parameter (%d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	// Destroy stops the service and empties the partition.
	r = run(t, root, "apply", "examples/helloweb/software.hcl", "--state", "destroyed", "-auto-approve")
	if r.code != 0 {
		t.Fatalf("destroy (%d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if _, err := http.Get(m[1]); err == nil {
		t.Fatal("server still answers after destroy")
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	return string(b)
}

// TestHellowebFormattedNode runs the demo on a node prepared by `slapnode
// node format` (as root): the service runs as its partition's user, in the
// partition's cgroup; unformat removes the users and cgroups again.
func TestHellowebFormattedNode(t *testing.T) {
	requireBuiltins(t)
	if os.Geteuid() != 0 {
		t.Skip("node format creates users and cgroups: needs root")
	}
	root := filepath.Join(os.TempDir(), fmt.Sprintf("slntest-e2e-%d", os.Getpid()))
	os.RemoveAll(root)
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(root, "node.hcl")
	os.WriteFile(conf, []byte(`
partitions {
  count          = 2
  user_base_name = "slntestuser"
}
software_user = "slntestsoft"
cgroup {
  parent = "slntest-e2e"
}
`), 0o644)
	t.Cleanup(func() {
		run(t, root, "node", "stop")
		r := run(t, root, "node", "unformat", "--purge")
		if r.code != 0 {
			t.Errorf("unformat: %s%s", r.stdout, r.stderr)
		}
		os.RemoveAll(root)
	})
	if r := run(t, root, "node", "format"); r.code != 0 {
		t.Fatalf("format (%d):\n%s%s", r.code, r.stdout, r.stderr)
	}
	r := run(t, root, "apply", "examples/helloweb/software.hcl", "--param", "port:=18482")
	if r.code != 0 {
		t.Fatalf("apply (%d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	m := urlRe.FindStringSubmatch(r.stdout)
	if m == nil || !strings.Contains(get(t, m[1]), "Hello from slapnode") {
		t.Fatalf("no working URL:\n%s", r.stdout)
	}
	st := run(t, root, "status")
	pid := regexp.MustCompile(`RUNNING\s+(\d+)`).FindStringSubmatch(st.stdout)
	if pid == nil {
		t.Fatalf("status:\n%s", st.stdout)
	}
	status, _ := os.ReadFile("/proc/" + pid[1] + "/status")
	uidLine := regexp.MustCompile(`(?m)^Uid:\s+(\d+)`).FindStringSubmatch(string(status))
	u, err := user.LookupId(uidLine[1])
	if err != nil || u.Username != "slntestuser0" {
		t.Fatalf("service runs as uid %s (%v), want slntestuser0", uidLine[1], err)
	}
	cg, _ := os.ReadFile("/proc/" + pid[1] + "/cgroup")
	if !strings.Contains(string(cg), "slntest-e2e/slappart0") {
		t.Fatalf("service not in its partition's cgroup:\n%s", cg)
	}
}

// TestDaemonRestartsOnUpgrade: a daemon started by another slapnode binary
// (an upgrade, a rebuild) is replaced by the current one, and the services
// come back.
func TestDaemonRestartsOnUpgrade(t *testing.T) {
	requireBuiltins(t)
	root := t.TempDir()
	stopNode(t, root)
	r := run(t, root, "apply", "examples/helloweb/software.hcl", "--param", "port:=18483")
	m := urlRe.FindStringSubmatch(r.stdout)
	if r.code != 0 || m == nil {
		t.Fatalf("apply: %s%s", r.stdout, r.stderr)
	}
	pidOf := func() string {
		b, _ := os.ReadFile(filepath.Join(root, "var", "run", "daemon.pid"))
		return strings.TrimSpace(string(b))
	}
	before := pidOf()
	upgraded := filepath.Join(t.TempDir(), "slapnode-new")
	b, err := os.ReadFile(slapnode)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(upgraded, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(upgraded, "apply", "examples/helloweb/software.hcl", "--param", "port:=18483", "--root", root)
	cmd.Dir = "../../.."
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("apply with the new binary: %v\n%s", err, out)
	}
	if after := pidOf(); after == before || after == "" {
		t.Fatalf("daemon not replaced: pid %s -> %s", before, after)
	}
	if body := get(t, m[1]); !strings.Contains(body, "Hello") {
		t.Fatalf("page after the daemon restart: %q", body)
	}
	t.Cleanup(func() { exec.Command(upgraded, "node", "stop", "--root", root).Run() })
}

// TestCLIOutputOnANewNode: on a fresh node root, the long first steps are
// named on stderr (once each, not being a terminal), the note about an
// unformatted node comes once per root, -q leaves only the result, and the
// connection parameters can be shown again with output, by instance name.
func TestCLIOutputOnANewNode(t *testing.T) {
	requireBuiltins(t)
	root := t.TempDir()
	stopNode(t, root)
	// An empty machine-wide compilation cache: this node is the machine's
	// first, so the cookbook is compiled (named below).
	t.Setenv("SLAPNODE_WASM_CACHE", t.TempDir())
	r := run(t, root, "apply", "examples/helloweb/software.hcl", "--param", "port:=18484")
	if r.code != 0 {
		t.Fatalf("apply exited %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	// A cold compilation of the cookbook takes seconds (4 s measured in
	// docs/adr/0006-jinja2-engine.md), well over the one second after
	// which a step is named.
	if n := strings.Count(r.stderr, "compiling module cookbook"); n != 1 {
		t.Errorf("the cookbook's compilation named %d times:\n%s", n, r.stderr)
	}
	if !strings.Contains(r.stderr, "no cgroup limits") || strings.Contains(r.stderr, "\r") {
		t.Errorf("stderr:\n%q", r.stderr)
	}
	r = run(t, root, "-q", "apply", "examples/helloweb/software.hcl", "--param", "port:=18484")
	if r.code != 0 || r.stderr != "" || strings.Contains(r.stdout, "instance helloweb in") || !strings.Contains(r.stdout, "url = ") {
		t.Errorf("apply -q (%d):\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	r = run(t, root, "apply", "examples/helloweb/software.hcl", "--param", "port:=18484")
	if strings.Contains(r.stderr, "note:") {
		t.Errorf("the note came again:\n%s", r.stderr)
	}
	r = run(t, root, "output", "helloweb")
	if r.code != 0 || !strings.Contains(r.stdout, "url = http://") {
		t.Errorf("output helloweb (%d):\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = run(t, root, "restart", "helloweb")
	if r.code != 0 || r.stdout != "restarted slappart0\n" {
		t.Errorf("restart helloweb (%d):\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = run(t, root, "apply", "examples/helloweb/software.hcl", "--json", "--param", "port:=80")
	if r.code != 1 || !strings.Contains(r.stdout, `"pointer": "/port"`) || !strings.Contains(r.stdout, `"format_version": "1.0"`) {
		t.Errorf("a refused apply --json (%d):\nstdout:\n%s", r.code, r.stdout)
	}
}
