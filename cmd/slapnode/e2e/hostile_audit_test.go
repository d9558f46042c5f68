package e2e

// Attacks of the audit after the hostile suite (issue 18): what code merged
// after it lets a partition user do, on a node formatted as root (users
// slnthx<tag>*, cgroups slntest-hx-<tag>, removed at the end; hxFormat).

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestHostileAuditSoftwareBuildWindow: a software release is built by
// root in a tree every partition user can traverse, and a build may make
// a directory writable by others (a tarball's 0777 directory, `mkdir -m
// 777`) that shareTree closes only once the build is over. A partition
// user watching the tree plants files of its own there meanwhile; they
// must not survive in the shared tree, where every partition would run
// them and their owner could change them at will. A first build is not
// reachable at all (its tree is closed until built); a rebuild of a
// release in use is, and what was planted is removed when it ends.
func TestHostileAuditSoftwareBuildWindow(t *testing.T) {
	n := hxFormat(t, "w", false)
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	// The build makes bin/pub 0777, then waits (up to wait tenths of a
	// second) for the partition user to say it is done.
	write := func(version string, wait int) {
		sw := fmt.Sprintf(`software "hostile" { version = %q }
module "cookbook" {
  source     = "builtin:cookbook"
  allow_exec = ["sh"]
}
part "tools" {
  recipe   = "cookbook:build"
  location = "${software.path}/parts/tools"
  commands = [["sh", "-c", "rm -rf bin && mkdir -p -m 755 bin && mkdir -m 777 bin/pub && echo ok > bin/pub/tool && i=0; while [ ! -e bin/pub/planted-done ] && [ $i -lt %d ]; do sleep 0.1; i=$((i+1)); done"]]
}
instance "default" { profile = "instance.hcl" }
`, version, wait)
		os.WriteFile(filepath.Join(dir, "software.hcl"), []byte(sw), 0o644)
		os.WriteFile(filepath.Join(dir, "instance.hcl"), []byte(""), 0o644)
	}
	attack := func(tries int) string {
		done := make(chan result, 1)
		go func() { done <- n.apply(t, filepath.Join(dir, "software.hcl")) }()
		// As partition 0's user: wait for the world-writable directory,
		// plant a program, a directory and a link, then let the build
		// finish.
		planted := n.as(t, 0, fmt.Sprintf(`i=0
while [ $i -lt %d ]; do
  for d in %s/software/*/parts/tools/bin/pub; do
    if [ -d "$d" ] && [ -w "$d" ]; then
      echo evil > "$d/planted" && chmod 777 "$d/planted" && mkdir "$d/nest" && echo evil > "$d/nest/x" && ln -s /etc/shadow "$d/link" && : > "$d/planted-done" && echo "planted in $d" && exit 0
    fi
  done
  sleep 0.05; i=$((i+1))
done
echo "no window: the tree was never reachable"`, tries, n.root))
		t.Logf("partition user: %s", strings.TrimSpace(planted))
		select {
		case r := <-done:
			if r.code != 0 {
				t.Fatalf("apply (%d):\n%s%s", r.code, r.stdout, r.stderr)
			}
			t.Logf("apply: %s", r.stdout)
		case <-time.After(3 * time.Minute):
			t.Fatal("apply did not finish")
		}
		return planted
	}
	check := func() {
		t.Helper()
		matches, _ := filepath.Glob(filepath.Join(n.root, "software", "*"))
		if len(matches) != 1 {
			t.Fatalf("software tree: %v", matches)
		}
		uid, gid := n.creds[0].Uid, n.creds[0].Gid
		filepath.WalkDir(matches[0], func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			fi, err := os.Lstat(p)
			if err != nil {
				return nil
			}
			if st := fi.Sys().(*syscall.Stat_t); st.Uid == uid || st.Gid == gid {
				t.Errorf("%s (%v) belongs to the partition user in the shared software tree", p, fi.Mode())
			}
			return nil
		})
		pub := filepath.Join(matches[0], "parts", "tools", "bin", "pub")
		if b, err := os.ReadFile(filepath.Join(pub, "tool")); err != nil || string(b) != "ok\n" {
			t.Errorf("the build's own file: %q %v", b, err)
		}
		out := n.as(t, 0, fmt.Sprintf("for f in %s/planted %s/tool %s/new; do (echo pwned > $f) 2>/dev/null && echo wrote $f; done; echo end", pub, pub, pub))
		if strings.Contains(out, "wrote") {
			t.Errorf("a partition user still writes into the shared software tree: %s", out)
		}
		// Every partition reads it, once built.
		if out := n.as(t, 1, "cat "+filepath.Join(pub, "tool")); out != "ok\n" {
			t.Errorf("partition 1 reads the built tool: %q", out)
		}
	}
	// A first build: its tree is closed while it is built.
	write("1.0.0", 30)
	if got := attack(40); strings.Contains(got, "planted") {
		t.Errorf("a partition user reached a software tree during its first build: %s", got)
	}
	check()
	// A rebuild of the same release (new profile content, same tree),
	// which the partitions may be running meanwhile: open, and swept.
	write("1.0.1", 300)
	if got := attack(600); !strings.Contains(got, "planted") {
		t.Logf("the rebuild left no window this time: %s", got)
	}
	check()
	n.intact(t)
}

// TestHostileAuditBuildoutConditionReads: buildout's `[section:condition]`
// may read files (open(p).read(), os.path.exists, os.access). An
// instance profile's conditions are evaluated by root while the node
// applies it; a hostile release (or a partition user rewriting a profile
// rendered in its partition) turns them into an oracle on files only root
// may read — one section per guessed byte, published as a connection
// parameter. They must be evaluated with the partition user's rights, as
// its profile files are read; and a condition reading a device or a FIFO
// must neither exhaust nor hang the apply (the previous code read
// /dev/zero until the kernel killed the apply: a FIFO is used here, which
// hung it).
func TestHostileAuditBuildoutConditionReads(t *testing.T) {
	n := hxFormat(t, "c", false)
	secret := filepath.Join(n.victims, "file") // root's, 0600, "victim\n"
	pub := filepath.Join(n.victims, "public")
	fifo := filepath.Join(n.victims, "fifo")
	if err := syscall.Mkfifo(fifo, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pub, []byte("public\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	files := map[string]string{
		"software.cfg": `[buildout]
parts = instance-profile

[instance-profile]
recipe = slapos.recipe.template:jinja2
url = ${:_profile_base_location_}/instance.cfg.in
output = ${buildout:directory}/instance.cfg
`,
		"instance.cfg.in": fmt.Sprintf(`[buildout]
parts = publish
offline = true

[publish]
recipe = slapos.cookbook:publish
secret-read = no
public-read = no
zero = no

[publish:os.access('%[1]s', os.R_OK) and open('%[1]s').read().startswith('victim')]
secret-read = yes

[publish:open('%[2]s').read().startswith('public')]
public-read = yes

[publish:os.path.isfile('%[3]s') and len(open('%[3]s').read()) >= 0]
zero = yes
`, secret, pub, fifo),
	}
	for f, body := range files {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, slapnode, "apply", filepath.Join(dir, "software.cfg"), "--root", n.root)
	cmd.Dir = "../../.."
	r := runCmd(t, cmd)
	if ctx.Err() != nil {
		t.Fatal("apply did not finish: a condition reading a FIFO hung it")
	}
	out := r.stdout + r.stderr
	t.Logf("apply (%d):\n%s", r.code, out)
	if strings.Contains(out, "secret-read = yes") {
		t.Errorf("a condition of the instance profile read a file of root's that the partition user cannot")
	}
	if r.code != 0 {
		t.Fatalf("apply failed")
	}
	if !strings.Contains(out, "public-read = yes") {
		t.Errorf("a condition reading a file the partition user can read must still see it")
	}
	if strings.Contains(out, "zero = yes") {
		t.Errorf("a condition read a FIFO")
	}
	n.intact(t)
}

// TestHostileAuditModuleSource: a profile's module may be any path, which
// root reads. A hostile profile naming a FIFO hung the apply; one naming
// /dev/zero or a huge file made root's apply grow until the kernel's OOM
// killer stopped it — or another process of the machine (a sparse file of
// 1 TiB stands for /dev/zero here, so that the previous code fails by
// itself rather than by taking the machine's memory). Each must be
// refused with a message, promptly.
func TestHostileAuditModuleSource(t *testing.T) {
	n := hxFormat(t, "m", false)
	fifo := filepath.Join(n.victims, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	huge := filepath.Join(n.victims, "huge.wasm")
	f, err := os.Create(huge)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 40); err != nil {
		f.Close()
		t.Skipf("no sparse file of 1 TiB here: %v", err)
	}
	f.Close()
	for _, c := range []struct{ path, want string }{{fifo, "not a regular file"}, {huge, "more than the"}} {
		dir := t.TempDir()
		os.Chmod(dir, 0o755)
		sw := fmt.Sprintf(`software "hostile" { version = "1.0.0" }
module "evil" {
  source = %q
}
part "x" {
  recipe = "evil:thing"
}
instance "default" { profile = "instance.hcl" }
`, c.path)
		os.WriteFile(filepath.Join(dir, "software.hcl"), []byte(sw), 0o644)
		os.WriteFile(filepath.Join(dir, "instance.hcl"), []byte(""), 0o644)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		cmd := exec.CommandContext(ctx, slapnode, "apply", filepath.Join(dir, "software.hcl"), "--root", n.root)
		cmd.Dir = "../../.."
		r := runCmd(t, cmd)
		timedOut := ctx.Err() != nil
		cancel()
		if timedOut {
			t.Errorf("%s: the apply hung", c.path)
			continue
		}
		if r.code == 0 || !strings.Contains(r.stderr+r.stdout, c.want) {
			t.Errorf("%s: apply exited %d, want a refusal saying %q:\n%s%s", c.path, r.code, c.want, r.stdout, r.stderr)
		}
	}
	n.intact(t)
}
