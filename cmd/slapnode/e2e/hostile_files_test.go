package e2e

import (
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestHostileFiles is issue 18's findings #1, #2, #3, #8 and #9 as they
// were reproduced: a formatted node, an instance applied in slappart0,
// then its partition user plants links, a forged journal and a hard link
// in its partition directory, and root applies again. Files owned by root
// outside the node must come out intact, and apply either refuses with a
// message or goes on safely.
func TestHostileFiles(t *testing.T) {
	requireBuiltins(t)
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("the hostile-partition suite needs root, and CI runs as root")
		}
		t.Skip("the hostile-partition suite formats a node (users, cgroups): needs root")
	}
	wat2wasm, err := exec.LookPath("wat2wasm")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("wat2wasm not found (apt-get install wabt; .ci/deps installs it)")
		}
		t.Skip("wat2wasm not found (apt-get install wabt)")
	}
	root, victims := hfNode(t)
	part := filepath.Join(root, "instance", "slappart0")
	profile := hfProfile(t, wat2wasm, part)
	u, err := user.Lookup("slnthfu0")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}

	r := hfApply(t, root, profile, "1")
	if r.code != 0 {
		t.Fatalf("first apply (%d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	hfIntact(t, victims, part)

	// #1: .slapnode replaced by the user's own, its journal a link to a
	// root file.
	hfAs(t, cred, part, fmt.Sprintf(hfAside+"mkdir .slapnode && ln -s %s/file .slapnode/parts.journal", victims))
	r = hfApply(t, root, profile, "1")
	if r.code != 0 {
		t.Errorf("#1: apply failed (%d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	hfIntact(t, victims, part)

	// #2: P/etc becomes a link to a directory of root; the page part is
	// reinstalled. apply refuses (the recipe's file system is confined
	// to the partition) or goes on, but deletes nothing out there.
	hfAs(t, cred, part, fmt.Sprintf("mv etc etc.orig && ln -s %s/dir etc", victims))
	r = hfApply(t, root, profile, "2")
	t.Logf("#2: apply exited %d:\n%s%s", r.code, r.stdout, r.stderr)
	if r.code != 0 && strings.TrimSpace(r.stderr) == "" {
		t.Errorf("#2: apply failed without a message (%d):\n%s", r.code, r.stdout)
	}
	hfIntact(t, victims, part)
	hfAs(t, cred, part, "rm etc && mv etc.orig etc")
	if r = hfApply(t, root, profile, "2"); r.code != 0 {
		t.Errorf("#2: apply after the link was undone (%d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	// #3: a journal record with a valid checksum naming P/l/tree, with
	// P/l -> the victims' directory.
	body := fmt.Sprintf(`{"op":"set","part":"ghost","rec":{"recipe":"cookbook:write-file","module_digest":"x","signature":"x","options":{},"installed":[%q],"seq":99}}`,
		filepath.Join(part, "l", "tree"))
	hfAs(t, cred, part, fmt.Sprintf(`ln -s %s l && `+hfAside+`mkdir .slapnode && printf '%%08x %%s\n' %d '%s' > .slapnode/parts.journal`,
		victims, crc32.ChecksumIEEE([]byte(body)), body))
	r = hfApply(t, root, profile, "2")
	if r.code != 0 && strings.TrimSpace(r.stderr) == "" {
		t.Errorf("#3: apply failed without a message (%d):\n%s", r.code, r.stdout)
	}
	if strings.Contains(r.stdout, "ghost") {
		t.Errorf("#3: the forged record was acted on:\n%s", r.stdout)
	}
	hfIntact(t, victims, part)

	// #8: a file of root hard-linked into the partition (fs.protected_
	// hardlinks lets a user link a file it can read and write).
	hfAs(t, cred, part, fmt.Sprintf("ln %s/shared etc/x", victims))
	r = hfApply(t, root, profile, "2")
	t.Logf("#8: apply exited %d:\n%s%s", r.code, r.stdout, r.stderr)
	if r.code != 0 {
		t.Errorf("#8: apply failed (%d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout+r.stderr, "hard link") {
		t.Errorf("#8: the skipped hard link is not reported:\n%s\n%s", r.stdout, r.stderr)
	}
	hfIntact(t, victims, part)

	// The node's state is root's alone.
	for p, want := range map[string]os.FileMode{filepath.Join(root, "state"): 0o700, filepath.Join(root, "state", "journal.key"): 0o600} {
		st, err := os.Stat(p)
		if err != nil || st.Mode().Perm() != want || st.Sys().(*syscall.Stat_t).Uid != 0 {
			t.Errorf("%s: %v %v, want root's, mode %v", p, st, err, want)
		}
	}
}

// hfAside moves the partition's .slapnode aside, as the issue's
// reproduction does (the user owns the partition, not what root made in it).
const hfAside = `if [ -e .slapnode ]; then mv .slapnode .slapnode.old$$; fi; `

// hfNode formats a node of one partition (users slnthfu0/slnthfs, cgroup
// slntest-hf) in a fresh root, and makes the victims: files of root in a
// directory outside the node that partition users can traverse.
func hfNode(t *testing.T) (root, victims string) {
	t.Helper()
	root = filepath.Join(os.TempDir(), fmt.Sprintf("slntest-hf-%d", os.Getpid()))
	victims = root + "-victims"
	os.RemoveAll(root)
	os.RemoveAll(victims)
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "node.hcl"), []byte(`
partitions {
  count          = 1
  user_base_name = "slnthfu"
}
software_user = "slnthfs"
cgroup {
  parent = "slntest-hf"
}
`), 0o644)
	t.Cleanup(func() {
		run(t, root, "node", "stop")
		if r := run(t, root, "node", "unformat", "--purge"); r.code != 0 {
			t.Errorf("unformat: %s%s", r.stdout, r.stderr)
		}
		os.RemoveAll(root)
		os.RemoveAll(victims)
	})
	if r := run(t, root, "node", "format"); r.code != 0 {
		t.Fatalf("format (%d):\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, d := range []string{victims + "/dir", victims + "/tree"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(victims, 0o755)
	for f, mode := range map[string]os.FileMode{"file": 0o600, "dir/index.html": 0o600, "tree/data": 0o600, "shared": 0o666} {
		p := filepath.Join(victims, f)
		if err := os.WriteFile(p, []byte("victim\n"), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
	}
	return root, victims
}

// hfProfile writes a software release whose instance makes P/etc and
// writes P/etc/index.html from a parameter, and whose module "hf" calls
// the chmod host call on the partition directory itself with mode 0777
// (finding #9: chmod needs no grant). The module ignores the answer.
func hfProfile(t *testing.T, wat2wasm, part string) string {
	t.Helper()
	dir := t.TempDir()
	desc := `{"abi":1,"module":"hf","version":"1.0.0","recipes":{"open":{"description":"chmod 0777 the partition.","options":{"type":"object"}}}}`
	req := fmt.Sprintf(`{"path":%q,"mode":511}`, part)
	out := `{"outputs":{}}`
	wat := fmt.Sprintf(`(module
  (import "slapnode" "chmod" (func $chmod (param i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 0) %s)
  (data (i32.const 2048) %s)
  (data (i32.const 4096) %s)
  (func (export "abi_version") (result i32) (i32.const 1))
  (func (export "abi_alloc") (param i32) (result i32) (i32.const 65536))
  (func $pack (param $ptr i32) (param $len i32) (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32)) (i64.extend_i32_u (local.get $len))))
  (func (export "abi_describe") (result i64) (call $pack (i32.const 0) (i32.const %d)))
  (func (export "recipe_install") (param i32 i32) (result i64)
    (drop (call $chmod (i32.const 2048) (i32.const %d)))
    (call $pack (i32.const 4096) (i32.const %d))))
`, hfWatString(desc), hfWatString(req), hfWatString(out), len(desc), len(req), len(out))
	os.WriteFile(filepath.Join(dir, "hf.wat"), []byte(wat), 0o644)
	if b, err := exec.Command(wat2wasm, "-o", filepath.Join(dir, "hf.wasm"), filepath.Join(dir, "hf.wat")).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm: %v\n%s", err, b)
	}
	os.WriteFile(filepath.Join(dir, "software.hcl"), []byte(`
software "hostile" { version = "1" }
instance "default" { profile = "instance.hcl" }
`), 0o644)
	os.WriteFile(filepath.Join(dir, "instance.hcl"), []byte(`
module "hf" { source = "hf.wasm" }
part "dirs" {
  recipe = "cookbook:mkdirectory"
  etc    = "${partition.path}/etc"
}
part "page" {
  recipe  = "cookbook:write-file"
  output  = "${part.dirs.etc}/index.html"
  content = "v${parameter.v}"
}
part "open" {
  recipe = "hf:open"
}
`), 0o644)
	return filepath.Join(dir, "software.hcl")
}

// hfWatString quotes s as a WebAssembly text string.
func hfWatString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

func hfApply(t *testing.T, root, profile, v string) result {
	t.Helper()
	return run(t, root, "apply", profile, "--param", "v="+v)
}

// hfAs runs a shell command in dir as the partition user.
func hfAs(t *testing.T, cred *syscall.Credential, dir, script string) {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("as the partition user: %s: %v\n%s", script, err, out)
	}
}

// hfIntact checks the victims (content, owner, mode) and that the
// partition directory was not opened to other users.
func hfIntact(t *testing.T, victims, part string) {
	t.Helper()
	for f, mode := range map[string]os.FileMode{"file": 0o600, "dir/index.html": 0o600, "tree/data": 0o600, "shared": 0o666} {
		p := filepath.Join(victims, f)
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
	if st, err := os.Stat(part); err != nil || st.Mode().Perm()&0o022 != 0 {
		t.Errorf("#9: the partition directory is writable by others: %v %v", st.Mode(), err)
	}
}
