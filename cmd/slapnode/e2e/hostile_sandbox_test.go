package e2e

// The hostile-sandbox suite: issue 18 findings #5, #6 and #7 reproduced
// through the real binary, exactly as they were reported. Run under the
// shared lock: flock /tmp/slapnode-system.lock go test ./cmd/slapnode/e2e -run HostileSandbox

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// hsRequire skips when a build tool is missing, except under CI=true.
func hsRequire(t *testing.T, tool, install string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not found (%s)", tool, install)
		}
		t.Skipf("%s not found: skipping (%s)", tool, install)
	}
	return p
}

// hsWasm compiles a module of the hostile-module suite
// (runtime/wasmhost/testdata) into dir, as runtime/runtime.mk does.
func hsWasm(t *testing.T, dir, name string) string {
	t.Helper()
	clang := hsRequire(t, "clang", "apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32")
	out := filepath.Join(dir, name+".wasm")
	cmd := exec.Command(clang, "--target=wasm32-wasi", "--sysroot=/usr", "-O2", "-Wall", "-Wl,--strip-debug",
		"-mexec-model=reactor", "-o", out, "../../../runtime/wasmhost/testdata/"+name+".c")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", name, err, msg)
	}
	return out
}

// hsRun runs slapnode (with --root unless root is empty) with extra
// environment and returns its result and peak resident memory (its own,
// from wait4; the node daemon it may start is not its child).
func hsRun(t *testing.T, env []string, root string, args ...string) (result, int64) {
	t.Helper()
	if root != "" {
		args = append(args, "--root", root)
	}
	cmd := exec.Command(slapnode, args...)
	cmd.Dir = "../../.."
	cmd.Env = append(os.Environ(), env...)
	r := runCmd(t, cmd)
	ru, _ := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if ru == nil {
		t.Fatal("no resource usage for the slapnode process")
	}
	return r, ru.Maxrss << 10
}

func hsWrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestHostileSandboxExecEnv is #5: a module granted only `true` sent
// {"argv":["true"],"env":{"LD_PRELOAD":"<profile dir>/evil.so"}} and ran
// its code on the host, as root on an unformatted node.
func TestHostileSandboxExecEnv(t *testing.T) {
	requireBuiltins(t)
	cc := hsRequire(t, "cc", "apt-get install gcc")
	dir, root := t.TempDir(), t.TempDir()
	stopNode(t, root)
	hsWasm(t, dir, "hostile_exec")
	marker := filepath.Join(t.TempDir(), "pwned")
	hsWrite(t, filepath.Join(dir, "evil.c"), `#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
__attribute__((constructor)) static void pwn(void) {
	int fd = open(MARKER, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd >= 0) { dprintf(fd, "ran as uid %d\n", (int)getuid()); close(fd); }
}
`)
	if msg, err := exec.Command(cc, "-shared", "-fPIC", "-o", filepath.Join(dir, "evil.so"), `-DMARKER="`+marker+`"`, filepath.Join(dir, "evil.c")).CombinedOutput(); err != nil {
		t.Fatalf("build evil.so: %v\n%s", err, msg)
	}
	profile := func(grants string) string {
		return fmt.Sprintf(`software "evil" { version = "1" }
module "evil" {
  source     = "hostile_exec.wasm"
  allow_exec = ["true"]
  %s
}
part "pwn" {
  recipe = "evil:exec"
  argv   = ["true"]
  env    = { LD_PRELOAD = "${profile.dir}/evil.so" }
}
`, grants)
	}
	for _, tc := range []struct{ name, grants, want string }{
		{"no allow_env", "", `LD_PRELOAD is not granted to module "evil"`},
		{"allow_env everything", `allow_env = ["*"]`, `LD_PRELOAD is not granted to module "evil"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hsWrite(t, filepath.Join(dir, "software.hcl"), profile(tc.grants))
			r, _ := hsRun(t, nil, root, "apply", filepath.Join(dir, "software.hcl"))
			if b, err := os.ReadFile(marker); err == nil {
				t.Fatalf("the module's code ran on the host (%s)\nstdout:\n%s\nstderr:\n%s", bytes.TrimSpace(b), r.stdout, r.stderr)
			}
			if r.code == 0 || !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("apply exited %d, want a failure saying %q\nstdout:\n%s\nstderr:\n%s", r.code, tc.want, r.stdout, r.stderr)
			}
		})
	}
	if os.Geteuid() == 0 {
		t.Log("ran as root on an unformatted node: the payload would have run as root")
	}
}

// TestHostileSandboxDeepHCL is #6: `locals { v = ((((…1…)))) }` nested
// 100,000 deep made `slapnode plan` die with "fatal error: stack overflow"
// and a goroutine dump at about 1 GB; a .cfg condition of 500,000
// parentheses did the same to `slapnode convert`.
func TestHostileSandboxDeepHCL(t *testing.T) {
	dir, root := t.TempDir(), t.TempDir()
	n := 100_000
	hsWrite(t, filepath.Join(dir, "software.hcl"), "software \"deep\" { version = \"1\" }\nlocals { v = "+strings.Repeat("(", n)+"1"+strings.Repeat(")", n)+" }\n")
	r, rss := hsRun(t, nil, root, "plan", filepath.Join(dir, "software.hcl"))
	t.Logf("plan: exit %d, peak RSS %d MiB", r.code, rss>>20)
	if r.code != 1 || !strings.Contains(r.stderr, "software.hcl:2:269: error: Nesting too deep") {
		t.Errorf("plan exited %d, want 1 and the position\nstderr:\n%.2000s", r.code, r.stderr)
	}
	if strings.Contains(r.stderr, "fatal error") || strings.Contains(r.stderr, "goroutine ") {
		t.Errorf("plan crashed:\n%.2000s", r.stderr)
	}
	if rss > 256<<20 {
		t.Errorf("refusing the file took %d MiB", rss>>20)
	}

	n = 500_000
	cfg := filepath.Join(dir, "software.cfg")
	hsWrite(t, cfg, "[buildout]\nparts =\n\n[x:"+strings.Repeat("(", n)+"True"+strings.Repeat(")", n)+"]\na = 1\n")
	r, rss = hsRun(t, nil, "", "convert", cfg, "-o", filepath.Join(dir, "out"))
	t.Logf("convert: exit %d, peak RSS %d MiB", r.code, rss>>20)
	if r.code == 0 || !strings.Contains(r.stderr, "software.cfg:4:4: the section condition is longer than 4096 characters") ||
		strings.Contains(r.stderr, "fatal error") {
		t.Errorf("convert exited %d\nstderr:\n%.2000s", r.code, r.stderr)
	}
	if rss > 256<<20 {
		t.Errorf("refusing the file took %d MiB", rss>>20)
	}
}

// TestHostileSandboxWasmMemory is #7: a module with memory = "1GiB" whose
// guest grew to its limit made the apply peak at 4.7 GB, charged to root's
// apply process. Now it costs its limit, and the node's budget bounds the
// sum over guests.
func TestHostileSandboxWasmMemory(t *testing.T) {
	requireBuiltins(t)
	dir, root := t.TempDir(), t.TempDir()
	stopNode(t, root)
	hsWasm(t, dir, "hostile")
	// Above the 1 GiB guest: slapnode itself (the cookbook is not loaded).
	const overhead = 256 << 20
	hsWrite(t, filepath.Join(dir, "software.hcl"), `software "memfill" { version = "1" }
module "hostile" {
  source = "hostile.wasm"
  memory = "1GiB"
}
part "fill" {
  recipe = "hostile:fill"
}
`)
	r, rss := hsRun(t, []string{"SLAPNODE_WASM_MEMORY=2GiB"}, root, "apply", filepath.Join(dir, "software.hcl"))
	t.Logf("1 GiB guest: exit %d, peak RSS %d MiB", r.code, rss>>20)
	if r.code != 0 {
		t.Fatalf("apply exited %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if rss > 1<<30+overhead {
		t.Errorf("a 1 GiB guest took the apply to %d MiB (bound %d MiB)", rss>>20, (1<<30+overhead)>>20)
	}

	// Four modules of 200 to 230 MiB (distinct limits: the engine shares
	// one module between blocks that load the same file with the same
	// grants), each filled and kept by the apply's session, under a
	// 512 MiB budget: 860 MiB without it.
	var p strings.Builder
	p.WriteString("software \"memfill4\" { version = \"1\" }\n")
	for i := range 4 {
		fmt.Fprintf(&p, "module \"h%d\" {\n  source = \"hostile.wasm\"\n  memory = \"%dMiB\"\n}\npart \"fill%d\" {\n  recipe = \"h%d:fill\"\n}\n", i, 200+10*i, i, i)
	}
	hsWrite(t, filepath.Join(dir, "four.hcl"), p.String())
	root4 := t.TempDir()
	stopNode(t, root4)
	r, rss = hsRun(t, []string{"SLAPNODE_WASM_MEMORY=512MiB"}, root4, "apply", filepath.Join(dir, "four.hcl"))
	t.Logf("4 guests of 200-230 MiB, budget 512 MiB: exit %d, peak RSS %d MiB", r.code, rss>>20)
	if r.code != 0 {
		t.Fatalf("apply exited %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if rss > 512<<20+overhead {
		t.Errorf("four guests of 200-230 MiB under a 512 MiB budget took the apply to %d MiB", rss>>20)
	}

	// A module above the whole budget is refused, saying so.
	r, _ = hsRun(t, []string{"SLAPNODE_WASM_MEMORY=512MiB"}, root4, "apply", filepath.Join(dir, "software.hcl"))
	if r.code == 0 || !strings.Contains(r.stderr, "memory limit of 1024 MiB exceeds the node's WebAssembly memory budget of 512 MiB") {
		t.Errorf("1 GiB module under a 512 MiB budget: exit %d\n%s", r.code, r.stderr)
	}
}
