package wasmhost

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// sandbox lays out <base>/part (read-write mount), <base>/ro (read-only
// mount) and <base>/secret.txt next to them, outside every mount.
type sandbox struct {
	base, part, ro string
}

func newSandbox(t *testing.T) sandbox {
	t.Helper()
	base := t.TempDir()
	sb := sandbox{base: base, part: filepath.Join(base, "part"), ro: filepath.Join(base, "ro")}
	for _, d := range []string{sb.part, sb.ro, filepath.Join(sb.part, "sub")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	must(t, os.WriteFile(filepath.Join(base, "secret.txt"), []byte("TOP-SECRET"), 0o644))
	must(t, os.WriteFile(filepath.Join(sb.ro, "existing.txt"), []byte("read-only data"), 0o644))
	// Links planted by someone else (an earlier process, a service).
	must(t, os.Symlink("/etc", filepath.Join(sb.part, "planted_abs")))
	must(t, os.Symlink("../secret.txt", filepath.Join(sb.part, "planted_rel")))
	return sb
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (sb sandbox) mounts() []Mount {
	return []Mount{{HostPath: sb.part}, {HostPath: sb.ro, ReadOnly: true}}
}

func TestSandboxFiles(t *testing.T) {
	h, _ := newHost(t)
	m := load(t, h, "ctest", "reactor", allGrants)
	sb := newSandbox(t)
	s := newSession(t, h, SessionConfig{Mounts: sb.mounts()})
	file := filepath.Join(sb.part, "sub", "hello.txt")
	if r := call(t, s, m, "write", map[string]any{"path": file, "content": "hi there"}); r.Outputs["errno"] != 0.0 {
		t.Fatalf("write: %v", r.Outputs)
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "hi there" {
		t.Fatalf("host sees %q, %v", b, err)
	}
	if r := call(t, s, m, "read", map[string]any{"path": file}); r.Outputs["content"] != "hi there" {
		t.Fatalf("read: %v", r.Outputs)
	}
	if r := call(t, s, m, "seek", map[string]any{"path": file}); r.Outputs["size"] != 8.0 || r.Outputs["second"] != "i" {
		t.Fatalf("seek: %v", r.Outputs)
	}
	if r := call(t, s, m, "read", map[string]any{"path": filepath.Join(sb.ro, "existing.txt")}); r.Outputs["content"] != "read-only data" {
		t.Fatalf("read-only mount: %v", r.Outputs)
	}
	if r := call(t, s, m, "write", map[string]any{"path": filepath.Join(sb.ro, "x.txt")}); r.Outputs["errno"] == 0.0 {
		t.Fatal("write to a read-only mount succeeded")
	}
	if r := call(t, s, m, "mkdir", map[string]any{"path": filepath.Join(sb.part, "newdir")}); r.Outputs["errno"] != 0.0 {
		t.Fatalf("mkdir: %v", r.Outputs)
	}
	// A relative link that stays inside the mount is fine, and followed.
	if r := call(t, s, m, "symlink", map[string]any{"target": "sub/hello.txt", "link": filepath.Join(sb.part, "ok-link")}); r.Outputs["errno"] != 0.0 {
		t.Fatalf("symlink inside: %v", r.Outputs)
	}
	if r := call(t, s, m, "read", map[string]any{"path": filepath.Join(sb.part, "ok-link")}); r.Outputs["content"] != "hi there" {
		t.Fatalf("read via link: %v", r.Outputs)
	}
	r := call(t, s, m, "readdir", map[string]any{"path": sb.part})
	names := r.Outputs["names"].(string)
	for _, n := range []string{"sub", "newdir", "ok-link", "planted_abs"} {
		if strings.Count(names, n+" ") != 2 {
			t.Fatalf("readdir (listed twice around a rewind): %q lacks %s", names, n)
		}
	}
	// No mounts: no file system at all.
	bare := newSession(t, h, SessionConfig{})
	if r := call(t, bare, m, "read", map[string]any{"path": file}); r.Outputs["errno"] == 0.0 {
		t.Fatal("a session without mounts could read a file")
	}
}

// The hostile-module suite (docs/wasm-abi.md §7): every attack fails, leaks
// nothing, and the host and other sessions carry on.
func TestHostileFiles(t *testing.T) {
	h, _ := newHost(t)
	hm := load(t, h, "hostile", "hostile", Grants{})
	sb := newSandbox(t)
	s := newSession(t, h, SessionConfig{Mounts: sb.mounts()})
	for _, recipe := range []string{"shadow", "walk", "symlink_abs", "symlink_rel", "planted"} {
		r := call(t, s, hm, recipe, map[string]any{"dir": sb.part})
		if leaked := r.Outputs["leaked"].(string); leaked != "" {
			t.Errorf("%s leaked: %q", recipe, leaked)
		}
		if r.Outputs["errors"] == "" {
			t.Errorf("%s: no attempt was refused, the test did not run", recipe)
		}
		t.Logf("%s refused: %s", recipe, r.Outputs["errors"])
	}
	for _, l := range []string{"link", "side"} {
		if _, err := os.Lstat(filepath.Join(sb.part, l)); err == nil {
			t.Errorf("the guest created escaping symlink %s", l)
		}
	}
	r := call(t, s, hm, "write_ro", map[string]any{"dir": sb.ro})
	if r.Outputs["leaked"] != "" {
		t.Errorf("read-only mount modified: %v", r.Outputs)
	}
	if b, _ := os.ReadFile(filepath.Join(sb.ro, "existing.txt")); string(b) != "read-only data" {
		t.Errorf("read-only file now %q", b)
	}
	if _, err := os.Stat(filepath.Join(sb.ro, "new.txt")); err == nil {
		t.Error("file created in a read-only mount")
	}
}

func TestHostileResources(t *testing.T) {
	h, _ := newHost(t)
	ctx := context.Background()
	hm := load(t, h, "hostile", "hostile", Grants{MemoryBytes: 16 << 20, Timeout: time.Minute})
	// The same module, loaded again with a short timeout for the loop.
	looper := load(t, h, "hostile", "hostile", Grants{MemoryBytes: 16 << 20, Timeout: 500 * time.Millisecond})
	good := load(t, h, "ctest", "reactor", allGrants)
	s := newSession(t, h, SessionConfig{})

	// Another partition keeps working while the hostile module spins.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		other := h.NewSession(SessionConfig{})
		defer other.Close(ctx)
		for i := 0; i < 20; i++ {
			if _, err := other.Call(ctx, good, "recipe_install", input("echo", nil)); err != nil {
				t.Error(err)
			}
		}
	}()
	for _, tc := range []struct{ recipe, want string }{
		{"loop", "timed out after 500ms"},
		{"alloc", "trapped with its memory at the 16 MiB limit"},
		{"badjson", "result is not valid JSON"},
		{"badptr", "lies outside the guest's"},
		{"huge", "exceeds the 4 MiB output cap"},
		{"badlog", "slapnode.log: message pointer"},
	} {
		m := hm
		if tc.recipe == "loop" {
			m = looper
		}
		start := time.Now()
		_, err := s.Call(ctx, m, "recipe_install", input(tc.recipe, nil))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.recipe, err, tc.want)
			continue
		}
		if !strings.Contains(err.Error(), `module "hostile" recipe_install (part "p-`+tc.recipe+`")`) {
			t.Errorf("%s: error does not name the module and part: %v", tc.recipe, err)
		}
		if d := time.Since(start); tc.recipe == "loop" && d > 10*time.Second {
			t.Errorf("a 500ms timeout took %s", d)
		}
		// The failed instance was discarded: the next call gets a fresh,
		// working one.
		if _, err := s.Call(ctx, m, "recipe_install", input("shadow", nil)); err != nil {
			t.Errorf("after %s: %v", tc.recipe, err)
		}
	}
	wg.Wait()
	// A cancelled caller interrupts a call too.
	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	_, err := s.Call(cctx, hm, "recipe_install", input("loop", nil))
	if err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Errorf("cancelled: %v", err)
	}
}
