package e2e

// More hostile partitions (issue 18, the holes wave 1 found outside its
// areas and the attacks tried after it), through the real binary on a node
// formatted as root: users slnthx*, cgroups under slntest-hx-*, network
// namespaces slntest-hx-*, all removed at the end. Each test replays what a
// partition user with a shell in its directory, a hostile recipe module, a
// hostile promise or a hostile profile can do, then checks that root's
// files, the partition's limits and the other partitions came out intact.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// hxNeedRoot skips, with one line, unless the test runs as root; under CI
// the suite must run, so not being root is a failure there.
func hxNeedRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("the hostile-partition suite needs root (users, cgroups, namespaces), and CI runs it as root")
		}
		t.Skip("hostile-partition suite: formatting a node creates users, cgroups and namespaces, which needs root")
	}
}

// hxNode is a formatted node of two partitions.
type hxNode struct {
	root    string
	parts   [2]string // partition directories
	creds   [2]*syscall.Credential
	netns   string // "" unless asked for
	victims string // root's files outside the node, which no apply may touch
}

// hxFormat formats a node under a fresh root (users slnthx<tag>0/1,
// software user slnthx<tag>s, cgroups slntest-hx-<tag>), in a network
// namespace of its own when netns is set, and makes the victims: files of
// root in a directory partition users can traverse ("shared" is 0666, so
// that fs.protected_hardlinks lets a user hard-link it). Everything is
// stopped, unformatted and removed at the end, and the partition users'
// processes that a broken confinement let out are killed.
func hxFormat(t *testing.T, tag string, netns bool) *hxNode {
	t.Helper()
	requireBuiltins(t)
	hxNeedRoot(t)
	n := &hxNode{root: filepath.Join(os.TempDir(), fmt.Sprintf("slntest-hx-%d-%s", os.Getpid(), tag))}
	n.victims = n.root + "-victims"
	os.RemoveAll(n.root)
	os.RemoveAll(n.victims)
	if err := os.MkdirAll(n.root, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Dir(n.root), 0o755)
	network := ""
	if netns {
		n.netns = fmt.Sprintf("slntest-hx-%d-%s", os.Getpid()%100000, tag)
		exec.Command("ip", "netns", "del", n.netns).Run()
		if out, err := exec.Command("ip", "netns", "add", n.netns).CombinedOutput(); err != nil {
			t.Fatalf("ip netns add: %v %s", err, out)
		}
		t.Cleanup(func() { exec.Command("ip", "netns", "del", n.netns).Run() })
		network = fmt.Sprintf("network {\n  enabled   = true\n  namespace = %q\n}\n", n.netns)
	}
	conf := fmt.Sprintf(`partitions {
  count          = 2
  user_base_name = "slnthx%s"
}
software_user = "slnthx%ss"
cgroup {
  parent     = "slntest-hx-%s"
  memory_max = "256MiB"
  pids_max   = 200
}
%s`, tag, tag, tag, network)
	if err := os.WriteFile(filepath.Join(n.root, "node.hcl"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		run(t, n.root, "node", "stop")
		for i := range 2 {
			if u, err := user.Lookup(fmt.Sprintf("slnthx%s%d", tag, i)); err == nil {
				uid, _ := strconv.Atoi(u.Uid)
				hcKillUser(uid)
			}
		}
		if r := run(t, n.root, "node", "unformat", "--purge"); r.code != 0 {
			t.Errorf("unformat: %s%s", r.stdout, r.stderr)
		}
		os.RemoveAll(n.root)
		os.RemoveAll(n.victims)
	})
	if r := run(t, n.root, "node", "format"); r.code != 0 {
		t.Fatalf("format (%d):\n%s%s", r.code, r.stdout, r.stderr)
	}
	for i := range 2 {
		n.parts[i] = filepath.Join(n.root, "instance", fmt.Sprintf("slappart%d", i))
		u, err := user.Lookup(fmt.Sprintf("slnthx%s%d", tag, i))
		if err != nil {
			t.Fatal(err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		n.creds[i] = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	if err := os.MkdirAll(n.victims, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(n.victims, 0o755)
	for f, mode := range map[string]os.FileMode{"file": 0o600, "shared": 0o666} {
		p := filepath.Join(n.victims, f)
		if err := os.WriteFile(p, []byte("victim\n"), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
	}
	return n
}

// intact checks the victims: content, owner and mode.
func (n *hxNode) intact(t *testing.T) {
	t.Helper()
	for f, mode := range map[string]os.FileMode{"file": 0o600, "shared": 0o666} {
		p := filepath.Join(n.victims, f)
		b, err := os.ReadFile(p)
		if err != nil || string(b) != "victim\n" {
			t.Errorf("victim %s: %q %v", p, b, err)
			continue
		}
		st, _ := os.Stat(p)
		if st.Sys().(*syscall.Stat_t).Uid != 0 || st.Mode().Perm() != mode {
			t.Errorf("victim %s: uid %d mode %v, want root's %v", p, st.Sys().(*syscall.Stat_t).Uid, st.Mode().Perm(), mode)
		}
	}
}

// as runs a shell script in partition i's directory as its user.
func (n *hxNode) as(t *testing.T, i int, script string) string {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Dir = n.parts[i]
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: n.creds[i]}
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("as the partition user: %s: %v\n%s", script, err, out)
	}
	return string(out)
}

// apply applies a profile to partition 0 (the first instance).
func (n *hxNode) apply(t *testing.T, profile string, args ...string) result {
	t.Helper()
	return run(t, n.root, append([]string{"apply", profile}, args...)...)
}

// hxProfile writes a software release (software.hcl, instance.hcl and
// extra files) in a directory partition users can read.
func hxProfile(t *testing.T, instance string, extra map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	files := map[string]string{
		"software.hcl": "software \"hostile\" {\n  version = \"1.0.0\"\n}\ninstance \"default\" {\n  profile = \"instance.hcl\"\n}\n",
		"instance.hcl": instance,
	}
	for k, v := range extra {
		files[k] = v
	}
	for f, body := range files {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "software.hcl")
}

// TestHostileMoreRecipeWrites: what a recipe writes, root writes on the
// guest's behalf. The cookbook's write-file writes PATH.slapnode-tmp and
// renames it; the partition user plants that name as a hard link to a
// file of root's outside the node, and as a symbolic link to a file of
// its own. The apply must neither write the root file nor follow the
// link: it fails, says why, and works again once the plants are gone.
func TestHostileMoreRecipeWrites(t *testing.T) {
	n := hxFormat(t, "w", false)
	profile := hxProfile(t, `
part "dirs" {
  recipe = "cookbook:mkdirectory"
  etc    = "${partition.path}/etc"
}
part "page" {
  recipe  = "cookbook:write-file"
  output  = "${part.dirs.etc}/index.html"
  content = "v${parameter.v}"
}
part "other" {
  recipe  = "cookbook:write-file"
  output  = "${part.dirs.etc}/other"
  content = "v${parameter.v}"
}
`, nil)
	if r := n.apply(t, profile, "--param", "v=1"); r.code != 0 {
		t.Fatalf("first apply (%d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	n.as(t, 0, fmt.Sprintf(`ln %s/shared etc/index.html.slapnode-tmp && echo mine > keep && chmod 600 keep && ln -s ../keep etc/other.slapnode-tmp`, n.victims))
	r := n.apply(t, profile, "--param", "v=2")
	t.Logf("apply with the plants exited %d:\n%s%s", r.code, r.stdout, r.stderr)
	n.intact(t)
	if b, _ := os.ReadFile(filepath.Join(n.parts[0], "keep")); string(b) != "mine\n" {
		t.Errorf("the partition user's file was written through a link: %q", b)
	}
	if r.code == 0 {
		t.Errorf("apply succeeded although it could not write its files")
	}
	if !strings.Contains(r.stdout+r.stderr, "hard link") {
		t.Errorf("apply does not say why it refused:\n%s%s", r.stdout, r.stderr)
	}
	n.as(t, 0, `rm -f etc/*.slapnode-tmp`)
	if r := n.apply(t, profile, "--param", "v=3"); r.code != 0 {
		t.Fatalf("apply once the plants are gone (%d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(n.parts[0], "etc", "index.html")); string(b) != "v3" {
		t.Errorf("index.html = %q, want v3", b)
	}
	n.intact(t)
}

// hxForkScript forks ten sleepers at once and records their pids in FILE:
// what a command forks before a node moves it into its cgroups stays
// outside them on cgroup v1 and hybrid machines.
func hxForkScript(file string) string {
	return fmt.Sprintf(`for i in 1 2 3 4 5 6 7 8 9 10; do sleep 120 >/dev/null 2>&1 </dev/null & echo $! >> %s; done`, file)
}

// hxCheckConfined reads the pids in file and checks that each process is
// partition 0's user's, in partition 0's cgroup in every hierarchy that
// holds a limit (v1 pids and memory, or the unified one), and in the
// node's network namespace when it has one.
func (n *hxNode) hxCheckConfined(t *testing.T, what, file string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%s: no pids recorded: %v", what, err)
	}
	pids := strings.Fields(string(b))
	if len(pids) == 0 {
		t.Fatalf("%s: no pids recorded", what)
	}
	var nsIno uint64
	if n.netns != "" {
		var st syscall.Stat_t
		if err := syscall.Stat("/run/netns/"+n.netns, &st); err != nil {
			t.Fatal(err)
		}
		nsIno = st.Ino
	}
	escaped := 0
	for _, p := range pids {
		cg, err := os.ReadFile("/proc/" + p + "/cgroup")
		if err != nil {
			t.Errorf("%s: process %s is gone: %v", what, p, err)
			continue
		}
		for _, line := range strings.Split(strings.TrimSpace(string(cg)), "\n") {
			f := strings.SplitN(line, ":", 3)
			if len(f) != 3 {
				continue
			}
			limited := f[1] == "" || strings.Contains(","+f[1]+",", ",pids,") || strings.Contains(","+f[1]+",", ",memory,")
			if limited && !strings.Contains(f[2], "/slappart0") {
				escaped++
				t.Errorf("%s: process %s is outside the partition's cgroup: %s", what, p, line)
			}
		}
		var st syscall.Stat_t
		if err := syscall.Stat("/proc/"+p, &st); err == nil && st.Uid != n.creds[0].Uid {
			t.Errorf("%s: process %s runs as uid %d, not the partition user's %d", what, p, st.Uid, n.creds[0].Uid)
		}
		if nsIno != 0 {
			if err := syscall.Stat("/proc/"+p+"/ns/net", &st); err == nil && st.Ino != nsIno {
				t.Errorf("%s: process %s is outside the partition's network namespace", what, p)
			}
		}
	}
	t.Logf("%s: %d processes, %d cgroup escapes", what, len(pids), escaped)
}

// TestHostileMoreExecForks: a recipe's command (the cookbook's build,
// granted sh) and a promise's command (check_command) fork at once; every
// child must be in the partition's cgroups, as its user, in its network
// namespace. The node used to move them after their start (Join), which
// left what they forked meanwhile outside the limits.
func TestHostileMoreExecForks(t *testing.T) {
	n := hxFormat(t, "f", true)
	pids := filepath.Join(n.parts[0], "recipe.pids")
	ppids := filepath.Join(n.parts[0], "promise.pids")
	profile := hxProfile(t, fmt.Sprintf(`
module "cookbook" {
  source     = "builtin:cookbook"
  allow_exec = ["sh"]
}
part "fork" {
  recipe   = "cookbook:build"
  location = "${partition.path}/forked"
  commands = [["sh", "-c", %q]]
}
promise "fork" {
  check   = "cookbook:check_command"
  command = ["/bin/sh", "-c", %q]
}
`, "mkdir -p $${location} && "+hxForkScript(pids), hxForkScript(ppids)), nil)
	r := n.apply(t, profile)
	if r.code != 0 {
		t.Fatalf("apply (%d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	n.hxCheckConfined(t, "recipe command", pids)
	n.hxCheckConfined(t, "promise command", ppids)
}

// TestHostileMorePromiseEnv: a hostile profile gives a check_command
// promise LD_PRELOAD. The library must load, if at all, only in the
// partition user's program: on a node with a network namespace the
// command used to start through nsenter, which ran as root with the
// promise's environment and so loaded the library as root.
func TestHostileMorePromiseEnv(t *testing.T) {
	n := hxFormat(t, "e", true)
	cc, err := exec.LookPath("cc")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("cc not found (the CI image has gcc)")
		}
		t.Skip("cc not found: the test builds an LD_PRELOAD library")
	}
	lib := filepath.Join(n.victims, "lib") // readable by the partition user
	if err := os.MkdirAll(lib, 0o755); err != nil {
		t.Fatal(err)
	}
	proofDir := filepath.Join(n.victims, "proof") // root's, 0755: only root can write there
	if err := os.MkdirAll(proofDir, 0o755); err != nil {
		t.Fatal(err)
	}
	src := fmt.Sprintf(`#include <stdio.h>
#include <unistd.h>
__attribute__((constructor)) static void evil(void) {
	char p[512];
	snprintf(p, sizeof p, "%s/uid-%%d", (int)getuid());
	FILE *f = fopen(p, "w");
	if (f) { fputs("ran\n", f); fclose(f); }
}
`, proofDir)
	os.WriteFile(filepath.Join(lib, "evil.c"), []byte(src), 0o644)
	so := filepath.Join(lib, "evil.so")
	if out, err := exec.Command(cc, "-shared", "-fPIC", "-o", so, filepath.Join(lib, "evil.c")).CombinedOutput(); err != nil {
		t.Fatalf("cc: %v\n%s", err, out)
	}
	os.Chmod(so, 0o755)
	profile := hxProfile(t, fmt.Sprintf(`
promise "preload" {
  check   = "cookbook:check_command"
  command = ["/bin/true"]
  env     = { LD_PRELOAD = %q }
}
`, so), nil)
	r := n.apply(t, profile)
	t.Logf("apply exited %d:\n%s%s", r.code, r.stdout, r.stderr)
	if r.code != 0 {
		t.Fatalf("apply (%d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	entries, _ := os.ReadDir(proofDir)
	for _, e := range entries {
		t.Errorf("the promise's LD_PRELOAD ran with write access to a root directory: %s", e.Name())
	}
	if r := run(t, n.root, "promise", "run", "slappart0"); r.code != 0 {
		t.Logf("promise run (%d):\n%s%s", r.code, r.stdout, r.stderr)
	}
	entries, _ = os.ReadDir(proofDir)
	for _, e := range entries {
		t.Errorf("promise run: the promise's LD_PRELOAD ran with write access to a root directory: %s", e.Name())
	}
}

// runTimeout runs slapnode on the node with a deadline: a hang is a
// finding, not a stuck test run.
func (n *hxNode) runTimeout(t *testing.T, d time.Duration, args ...string) (result, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, slapnode, append(args, "--root", n.root)...)
	cmd.Dir = "../../.."
	cmd.WaitDelay = 5 * time.Second
	r := runCmd(t, cmd)
	return r, ctx.Err() == nil
}

// TestHostileMoreRunDirsAndLogs: root reads what recipes placed in
// etc/service (for its digest) and what `slapnode logs` shows, both in
// the partition directory. A FIFO with execute bits in etc/service used
// to hang every apply; a service log replaced by a link to a file of root
// was printed by root's `slapnode logs`; a FIFO there hung it.
func TestHostileMoreRunDirsAndLogs(t *testing.T) {
	n := hxFormat(t, "l", false)
	profile := hxProfile(t, `
service "web" {
  command = ["/bin/sh", "-c", "echo started; exec sleep 600"]
}
`, nil)
	if r := n.apply(t, profile); r.code != 0 {
		t.Fatalf("apply (%d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	n.as(t, 0, "mkdir -p etc/service && mkfifo -m 755 etc/service/evil")
	r, ok := n.runTimeout(t, 2*time.Minute, "apply", profile)
	if !ok {
		t.Fatalf("apply hung on a FIFO planted in etc/service:\n%s%s", r.stdout, r.stderr)
	}
	if r.code != 0 {
		t.Errorf("apply with a FIFO in etc/service (%d):\n%s%s", r.code, r.stdout, r.stderr)
	}
	n.as(t, 0, "rm etc/service/evil")

	n.as(t, 0, fmt.Sprintf("rm -f var/log/web.log && ln -s %s/file var/log/web.log", n.victims))
	r, ok = n.runTimeout(t, time.Minute, "logs", "slappart0", "web")
	if !ok {
		t.Fatalf("logs hung:\n%s%s", r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout, "victim") {
		t.Errorf("root's slapnode logs printed a file of root through a link the partition user planted:\n%s", r.stdout)
	}
	t.Logf("logs through a link (%d): %s%s", r.code, r.stdout, r.stderr)
	n.as(t, 0, "rm -f var/log/web.log && mkfifo var/log/web.log")
	r, ok = n.runTimeout(t, time.Minute, "logs", "slappart0", "web")
	if !ok {
		t.Fatalf("logs hung on a FIFO in a log's place:\n%s%s", r.stdout, r.stderr)
	}
	t.Logf("logs on a FIFO (%d): %s%s", r.code, r.stdout, r.stderr)
	n.intact(t)
}

// TestHostileMoreRecipeAsksMaster: a master on loopback without --auth
// takes root as its operator (ADR 0007), and a recipe's download or a
// promise's http_get is made by slapnode's root process on the guest's
// behalf. A hostile profile granting its module http://127.0.0.1:* must
// not read the computer's partitions (their parameters, their secrets)
// that way: the master must see the partition's user and ask it for a
// credential.
func TestHostileMoreRecipeAsksMaster(t *testing.T) {
	n := hxFormat(t, "m", false)
	_, addr := startMaster(t)
	base := "http://" + addr
	other := t.TempDir()
	if r := run(t, other, "node", "converge", "--master", base, "--node-id", "COMP-HX", "--partitions", "1"); r.code != 0 {
		t.Fatalf("converge: %s%s", r.stdout, r.stderr)
	}
	stopNode(t, other)
	secretURL := base + "/getFullComputerInformation?computer_id=COMP-HX"
	const grant = `
module "cookbook" {
  source    = "builtin:cookbook"
  allow_net = ["http://127.0.0.1:*"]
}
`
	profile := hxProfile(t, grant+fmt.Sprintf(`
part "steal" {
  recipe = "cookbook:download"
  url    = %q
  sha256 = "%s"
}
`, secretURL, strings.Repeat("0", 64)), nil)
	r := n.apply(t, profile)
	t.Logf("apply (%d):\n%s%s", r.code, r.stdout, r.stderr)
	if strings.Contains(r.stdout+r.stderr, "checksum mismatch") {
		t.Errorf("the recipe's request to the loopback master was answered as root's: it got the computer's data")
	}
	if !strings.Contains(r.stdout+r.stderr, "401 Unauthorized") {
		t.Errorf("the master did not refuse the recipe's request with 401")
	}
	profile = hxProfile(t, grant+fmt.Sprintf(`
promise "steal" {
  check = "cookbook:check_url_available"
  url   = %q
}
`, secretURL), nil)
	r = n.apply(t, profile)
	t.Logf("apply with the promise (%d):\n%s%s", r.code, r.stdout, r.stderr)
	if !strings.Contains(r.stdout+r.stderr, "401") {
		t.Errorf("the promise's request to the loopback master was not refused with 401")
	}
}

// TestHostileMoreSoftwareTree: a software release is built by root and
// shared by every partition. What its build leaves must give no partition
// user root (a setuid file) nor another partition's programs (a file or
// directory writable by others).
func TestHostileMoreSoftwareTree(t *testing.T) {
	n := hxFormat(t, "s", false)
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	sw := `software "hostile" { version = "1.0.0" }
module "cookbook" {
  source     = "builtin:cookbook"
  allow_exec = ["sh"]
}
part "tools" {
  recipe   = "cookbook:build"
  location = "${software.path}/parts/tools"
  commands = [["sh", "-c", "cp /bin/true su-tool && chmod 4755 su-tool && cp /bin/true sg-tool && chmod 2755 sg-tool && mkdir -m 777 shared && echo x > shared/data && chmod 666 shared/data"]]
}
instance "default" { profile = "instance.hcl" }
`
	os.WriteFile(filepath.Join(dir, "software.hcl"), []byte(sw), 0o644)
	os.WriteFile(filepath.Join(dir, "instance.hcl"), []byte(""), 0o644)
	if r := n.apply(t, filepath.Join(dir, "software.hcl")); r.code != 0 {
		t.Fatalf("apply (%d):\n%s%s", r.code, r.stdout, r.stderr)
	}
	matches, _ := filepath.Glob(filepath.Join(n.root, "software", "*", "parts", "tools"))
	if len(matches) != 1 {
		t.Fatalf("no built tools: %v", matches)
	}
	filepath.WalkDir(matches[0], func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, _ := os.Lstat(p)
		if fi.Mode()&(os.ModeSetuid|os.ModeSetgid) != 0 && !fi.IsDir() {
			t.Errorf("%s is %v in the shared software tree", p, fi.Mode())
		}
		if fi.Mode()&0o022 != 0 && fi.Mode()&os.ModeSymlink == 0 {
			t.Errorf("%s is writable by others (%v) in the shared software tree", p, fi.Mode())
		}
		return nil
	})
	// And, as a partition user, nothing there can be changed.
	out := n.as(t, 0, fmt.Sprintf("echo pwned > %s/shared/data 2>&1 || echo refused", matches[0]))
	if !strings.Contains(out, "refused") {
		t.Errorf("a partition user wrote into the software tree: %s", out)
	}
}

// TestHostileMorePromiseFifo: a promise reads a file of its partition
// (check_file_state), which the partition user replaces with a FIFO. The
// promise fails; it must not hang the apply or `slapnode promise run`
// (in the daemon, each run lost a thread for good).
func TestHostileMorePromiseFifo(t *testing.T) {
	n := hxFormat(t, "p", false)
	profile := hxProfile(t, `
part "conf" {
  recipe  = "cookbook:write-file"
  output  = "${partition.path}/etc/app.conf"
  content = "ready"
}
promise "conf" {
  check   = "cookbook:check_file_state"
  path    = part.conf.location
  state   = "contains"
  content = "ready"
}
`, nil)
	if r := n.apply(t, profile); r.code != 0 {
		t.Fatalf("apply (%d):\n%s%s", r.code, r.stdout, r.stderr)
	}
	n.as(t, 0, "rm etc/app.conf && mkfifo etc/app.conf")
	r, ok := n.runTimeout(t, 2*time.Minute, "promise", "run", "slappart0")
	if !ok {
		t.Fatalf("promise run hung on a FIFO:\n%s%s", r.stdout, r.stderr)
	}
	if r.code == 0 {
		t.Errorf("the promise passed on a FIFO:\n%s%s", r.stdout, r.stderr)
	}
	t.Logf("promise run (%d): %s%s", r.code, r.stdout, r.stderr)
}
