package customrecipe

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// The modules under test, relative to this package. Paths are the ones
// recipes-wasm/sdk.mk builds.
var (
	motdModules = map[string]string{
		"c":  "../custom-recipe-c/motd.wasm",
		"as": "../custom-recipe-as/motd.wasm",
	}
	hostcallModules = map[string]string{
		"c":  "testdata/hostcalls-c.wasm",
		"as": "testdata/hostcalls-as.wasm",
	}
)

// readWasm returns the module's bytes or skips the test when it is not built.
func readWasm(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		t.Skipf("%s is not built: run `make wasm` first", path)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fakeHost plays the host side of the slapnode import module (ABI §6): it
// records every request and answers with reply, keeping the answer pending
// until the guest fetches it with response, as the real host does.
type fakeHost struct {
	mu       sync.Mutex
	pending  []byte
	logs     []logLine
	requests map[string][]json.RawMessage
	// reply answers one request; a nil answer makes the call return -1.
	reply func(imp string, req []byte) []byte
}

type logLine struct {
	Level int
	Msg   string
}

func newFakeHost() *fakeHost {
	return &fakeHost{
		requests: map[string][]json.RawMessage{},
		reply: func(imp string, req []byte) []byte {
			return []byte(`{"error":"no reply configured"}`)
		},
	}
}

func (h *fakeHost) instantiate(ctx context.Context, r wazero.Runtime) error {
	b := r.NewHostModuleBuilder("slapnode")
	b.NewFunctionBuilder().WithFunc(func(ctx context.Context, m api.Module, level, ptr, n uint32) {
		msg, ok := m.Memory().Read(ptr, n)
		if !ok {
			panic("log: bad buffer")
		}
		h.mu.Lock()
		h.logs = append(h.logs, logLine{int(level), string(msg)})
		h.mu.Unlock()
	}).Export("log")
	b.NewFunctionBuilder().WithFunc(func(ctx context.Context, m api.Module, ptr uint32) {
		h.mu.Lock()
		defer h.mu.Unlock()
		if !m.Memory().Write(ptr, h.pending) {
			panic("response: bad buffer")
		}
		h.pending = nil
	}).Export("response")
	for _, imp := range []string{"download", "exec", "tcp_probe", "http_get"} {
		b.NewFunctionBuilder().WithFunc(func(ctx context.Context, m api.Module, ptr, n uint32) int32 {
			req, ok := m.Memory().Read(ptr, n)
			if !ok {
				return -1
			}
			req = append([]byte(nil), req...)
			h.mu.Lock()
			defer h.mu.Unlock()
			h.requests[imp] = append(h.requests[imp], req)
			ans := h.reply(imp, req)
			if ans == nil {
				return -1
			}
			h.pending = ans
			return int32(len(ans))
		}).Export(imp)
	}
	_, err := b.Instantiate(ctx)
	return err
}

// guest is one instance of a module, reused across calls as the host does
// within an apply (ABI §8).
type guest struct {
	t    testing.TB
	ctx  context.Context
	mod  api.Module
	host *fakeHost
	last []byte // the last result, as the guest wrote it
}

// load instantiates wasm with dir mounted read-write at its own path (the
// host mounts grants at their host paths, ABI §4.1).
func load(t testing.TB, wasm []byte, dir string, h *fakeHost) *guest {
	t.Helper()
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	t.Cleanup(func() { r.Close(ctx) })
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	if err := h.instantiate(ctx, r); err != nil {
		t.Fatal(err)
	}
	cfg := wazero.NewModuleConfig().
		WithName("").
		WithStartFunctions("_initialize").
		WithFSConfig(wazero.NewFSConfig().WithDirMount(dir, dir))
	mod, err := r.InstantiateWithConfig(ctx, wasm, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &guest{t: t, ctx: ctx, mod: mod, host: h}
}

func (g *guest) fn(name string) api.Function {
	g.t.Helper()
	f := g.mod.ExportedFunction(name)
	if f == nil {
		g.t.Fatalf("module does not export %s", name)
	}
	return f
}

// result unpacks ptr<<32|len (ABI §2), copies the bytes and checks they are
// UTF-8 JSON.
func (g *guest) result(packed uint64) []byte {
	g.t.Helper()
	b, ok := g.mod.Memory().Read(uint32(packed>>32), uint32(packed))
	if !ok {
		g.t.Fatalf("result %#x points outside memory", packed)
	}
	b = append([]byte(nil), b...)
	// json.Valid tolerates invalid UTF-8 (Go replaces it when decoding), but
	// JSON text must be UTF-8 and other hosts may refuse it.
	if !json.Valid(b) || !utf8.Valid(b) {
		g.t.Fatalf("result is not valid UTF-8 JSON: %q", b)
	}
	g.last = b
	return b
}

func (g *guest) describe() map[string]any {
	g.t.Helper()
	res, err := g.fn("abi_describe").Call(g.ctx)
	if err != nil {
		g.t.Fatal(err)
	}
	return decode(g.t, g.result(res[0]))
}

// callRaw runs entry on raw input bytes the way the host does: abi_alloc,
// write, call.
func (g *guest) callRaw(entry string, input []byte) map[string]any {
	g.t.Helper()
	res, err := g.fn("abi_alloc").Call(g.ctx, uint64(len(input)))
	if err != nil {
		g.t.Fatal(err)
	}
	ptr := uint32(res[0])
	if !g.mod.Memory().Write(ptr, input) {
		g.t.Fatalf("abi_alloc(%d) returned %#x, outside memory", len(input), ptr)
	}
	res, err = g.fn(entry).Call(g.ctx, uint64(ptr), uint64(len(input)))
	if err != nil {
		g.t.Fatalf("%s: %v", entry, err)
	}
	return decode(g.t, g.result(res[0]))
}

func (g *guest) call(entry string, input any) map[string]any {
	g.t.Helper()
	b, err := json.Marshal(input)
	if err != nil {
		g.t.Fatal(err)
	}
	return g.callRaw(entry, b)
}

func decode(t testing.TB, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("result %q: %v", b, err)
	}
	return m
}

// recipeInput builds an ABI §4.1 input for an instance part.
func recipeInput(recipe, phase string, dir string, options map[string]any) map[string]any {
	return map[string]any{
		"recipe":  recipe,
		"part":    "greeting",
		"phase":   phase,
		"options": options,
		"context": map[string]any{
			"kind": "instance",
			"partition": map[string]any{
				"id": "slappart3", "path": dir, "user": "slapuser3",
				"ipv4": "10.0.0.3", "ipv6": "fd00::3",
			},
			"software":    map[string]any{"path": "/srv/slapnode/software/0f", "url": "/p/software.hcl"},
			"profile_dir": "/p",
			"cache_dir":   "/srv/slapnode/cache/download",
			"node":        map[string]any{"id": "local", "root": "/srv/slapnode"},
		},
	}
}

// exports lists a module's exported function names.
func exports(t testing.TB, wasm []byte) map[string]bool {
	t.Helper()
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	cm, err := r.CompileModule(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for n := range cm.ExportedFunctions() {
		out[n] = true
	}
	for _, f := range cm.ImportedFunctions() {
		mod, name, _ := f.Import()
		out["import:"+mod+"."+name] = true
	}
	return out
}

// tempDir returns a test directory without symlinks in its path, so the
// paths the guest reports compare equal to ours.
func tempDir(t testing.TB) string {
	t.Helper()
	d, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// dig follows object keys, failing the test when one is missing.
func dig(t testing.TB, v any, keys ...string) any {
	t.Helper()
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%s: not an object: %v", k, v)
		}
		if v, ok = m[k]; !ok {
			t.Fatalf("no %q in %v", k, m)
		}
	}
	return v
}

func jsonOf(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
