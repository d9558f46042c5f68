package wasmhost

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// benchInput is a typical recipe input (~600 bytes of JSON).
var benchInput, _ = json.Marshal(map[string]any{
	"recipe": "echo", "part": "dirs", "phase": "install",
	"options": map[string]any{"etc": "/srv/slapnode/instance/slappart0/etc", "var": "/srv/slapnode/instance/slappart0/var"},
	"context": map[string]any{
		"kind":        "instance",
		"partition":   map[string]any{"id": "slappart0", "path": "/srv/slapnode/instance/slappart0", "user": "slapuser0", "ipv4": "10.0.0.1", "ipv6": "fd00::1"},
		"software":    map[string]any{"path": "/srv/slapnode/software/0f00", "url": "/home/me/helloweb/software.hcl"},
		"profile_dir": "/home/me/helloweb", "cache_dir": "/srv/slapnode/cache/download",
		"node": map[string]any{"id": "local", "root": "/srv/slapnode"},
	},
})

// RunCallBenchmark measures a call of entry on a warm instance of any
// module, as the engine calls a recipe (Session.CallPart, the part named
// by the caller): the per-call overhead the engine pays for every part.
// The cookbook's Go-guest benchmark reuses it through SLAPNODE_BENCH_WASM.
func RunCallBenchmark(b *testing.B, wasm []byte, g Grants, entry string, input []byte) {
	runCallBenchmark(b, wasm, g, SessionConfig{}, entry, input, nil)
}

// runCallBenchmark is RunCallBenchmark in a session of cfg; check, when
// set, vets the first call's output (a benchmark of a failing call
// measures the error path, not the recipe). Besides the CPU per call it
// reports the guest's linear memory after the loop (guest-MiB): a Go
// guest's heap lives there and never shrinks, so its growth over many
// calls is resident memory of the whole apply.
func runCallBenchmark(b *testing.B, wasm []byte, g Grants, cfg SessionConfig, entry string, input []byte, check func([]byte) error) {
	ctx := context.Background()
	dir := b.TempDir()
	h, err := New(ctx, Config{CacheDir: filepath.Join(dir, "wazero"), DownloadDir: filepath.Join(dir, "dl")})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close(ctx)
	m, err := h.Load(ctx, "bench", wasm, g)
	if err != nil {
		b.Fatal(err)
	}
	s := h.NewSession(cfg)
	defer s.Close(ctx)
	out, err := s.Call(ctx, m, entry, input) // instantiate outside the timing
	if err != nil {
		b.Fatal(err)
	}
	if check != nil {
		if err := check(out); err != nil {
			b.Fatal(err)
		}
	}
	var in struct {
		Part string `json:"part"`
	}
	json.Unmarshal(input, &in)
	b.SetBytes(int64(len(input)))
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	for b.Loop() {
		if _, err := s.CallPart(ctx, m, entry, in.Part, input); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
	s.mu.Lock()
	sl := s.slots[m]
	s.mu.Unlock()
	if sl != nil && sl.inst != nil {
		b.ReportMetric(float64(sl.inst.mod.Memory().Size())/(1<<20), "guest-MiB")
	}
}

// cpuTime is the process's user+system CPU time in nanoseconds. On a
// shared machine wall time per op mostly measures waiting for a core;
// CPU time per op is what a call costs.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkCallC: per-call overhead of the C reactor (abi_alloc, copy in,
// recipe_install with one slapnode.log call, copy out, JSON check).
func BenchmarkCallC(b *testing.B) {
	RunCallBenchmark(b, module(b, "reactor"), allGrants, "recipe_install", benchInput)
}

// BenchmarkCallCommandC: a command module pays a fresh instance and _start
// on every call.
func BenchmarkCallCommandC(b *testing.B) {
	RunCallBenchmark(b, module(b, "command"), Grants{}, "recipe_install", benchInput)
}

// BenchmarkFirstCallC: a new session's first call (instantiate +
// _initialize + call), paid once per module per apply.
func BenchmarkFirstCallC(b *testing.B) {
	runFirstCallBenchmark(b, Config{}, module(b, "reactor"), allGrants)
}

// runFirstCallBenchmark measures a new session's first call of wasm
// loaded with grants in a host configured by cfg.
func runFirstCallBenchmark(b *testing.B, cfg Config, wasm []byte, grants Grants) {
	ctx := context.Background()
	h, err := New(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close(ctx)
	m, err := h.Load(ctx, "bench", wasm, grants)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		s := h.NewSession(SessionConfig{})
		if _, err := s.Call(ctx, m, "recipe_install", benchInput); err != nil {
			b.Fatal(err)
		}
		s.Close(ctx)
	}
	b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
}

// BenchmarkCallWasm benchmarks any module: SLAPNODE_BENCH_WASM=path.wasm,
// optionally SLAPNODE_BENCH_ENTRY (default recipe_install) and
// SLAPNODE_BENCH_INPUT (a JSON file; default a typical recipe input).
// @DIR@ in an input file is replaced by a fresh directory the session
// mounts, so a recipe that writes files (mkdirectory, template) does its
// real work there; a recipe result from an input file must carry no error.
func BenchmarkCallWasm(b *testing.B) {
	path := os.Getenv("SLAPNODE_BENCH_WASM")
	if path == "" {
		b.Skip("set SLAPNODE_BENCH_WASM to a module to benchmark")
	}
	wasm, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	entry := os.Getenv("SLAPNODE_BENCH_ENTRY")
	if entry == "" {
		entry = "recipe_install"
	}
	input := benchInput
	var cfg SessionConfig
	var check func([]byte) error
	if p := os.Getenv("SLAPNODE_BENCH_INPUT"); p != "" {
		if input, err = os.ReadFile(p); err != nil {
			b.Fatal(err)
		}
		if bytes.Contains(input, []byte("@DIR@")) {
			dir := b.TempDir()
			input = bytes.ReplaceAll(input, []byte("@DIR@"), []byte(dir))
			cfg.Mounts = []Mount{{HostPath: dir}}
		}
		check = func(out []byte) error {
			var res struct {
				Error string `json:"error"`
			}
			if err := json.Unmarshal(out, &res); err != nil || res.Error != "" {
				return fmt.Errorf("%s: the call failed: %s", p, out)
			}
			return nil
		}
	}
	runCallBenchmark(b, wasm, Grants{Trusted: true, MemoryBytes: 64 << 20}, cfg, entry, input, check)
}

// BenchmarkInstantiateWasm is BenchmarkFirstCallC for any module
// (SLAPNODE_BENCH_WASM, as BenchmarkCallWasm): instantiation, the guest's
// _initialize (a Go guest's package initialisers) and one call of the
// default input, paid once per module by every session (each partition's
// apply).
func BenchmarkInstantiateWasm(b *testing.B) {
	path := os.Getenv("SLAPNODE_BENCH_WASM")
	if path == "" {
		b.Skip("set SLAPNODE_BENCH_WASM to a module to benchmark")
	}
	wasm, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	runFirstCallBenchmark(b, Config{CacheDir: filepath.Join(b.TempDir(), "wazero")}, wasm, Grants{Trusted: true, MemoryBytes: 64 << 20})
}

// BenchmarkWazeroBaselineC calls the same C recipe straight through wazero,
// without this package, with and without WithCloseOnContextDone: the
// termination check wazero then compiles into every loop header is a call
// out to Go, which dominates BenchmarkCallC. Kept to see whether a wazero
// upgrade changes that.
func BenchmarkWazeroBaselineC(b *testing.B) {
	for _, closeOnDone := range []bool{false, true} {
		b.Run(fmt.Sprintf("CloseOnContextDone=%v", closeOnDone), func(b *testing.B) {
			ctx := context.Background()
			rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(closeOnDone))
			defer rt.Close(ctx)
			wasi_snapshot_preview1.MustInstantiate(ctx, rt)
			if err := (&Host{}).instantiateSlapnode(ctx, rt); err != nil {
				b.Fatal(err)
			}
			mod, err := rt.InstantiateWithConfig(ctx, module(b, "reactor"), wazero.NewModuleConfig().WithStartFunctions("_initialize"))
			if err != nil {
				b.Fatal(err)
			}
			alloc, install := mod.ExportedFunction("abi_alloc"), mod.ExportedFunction("recipe_install")
			// echo minus its log line: there is no call state to log to.
			in := bytes.Replace(benchInput, []byte(`"recipe":"echo"`), []byte(`"recipe":"nothing"`), 1)
			cpu := cpuTime()
			for b.Loop() {
				r, err := alloc.Call(ctx, uint64(len(in)))
				if err != nil || !mod.Memory().Write(uint32(r[0]), in) {
					b.Fatal(err)
				}
				if _, err := install.Call(ctx, r[0], uint64(len(in))); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}

// BenchmarkExec: one slapnode.exec call of a granted `true` with a typical
// build environment, through the C reactor (request decoding, grant and
// environment checks, command lookup, fork/exec, wait, response).
func BenchmarkExec(b *testing.B) {
	ctx := context.Background()
	h, err := New(ctx, Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close(ctx)
	m, err := h.Load(ctx, "bench", module(b, "reactor"), Grants{Exec: []string{"true"}, Net: []string{"tcp://127.0.0.1:1"}})
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	s := h.NewSession(SessionConfig{Mounts: []Mount{{HostPath: dir}}})
	defer s.Close(ctx)
	in := input("host", map[string]any{"fn": "exec", "request": map[string]any{
		"argv": []string{"true"}, "dir": dir,
		"env": map[string]string{"CFLAGS": "-O2", "LDFLAGS": "-Wl,-rpath=/x", "LC_ALL": "C", "TMPDIR": dir, "location": dir},
	}})
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		out, err := s.Call(ctx, m, "recipe_install", in)
		if err != nil || !bytes.Contains(out, []byte(`"exit_code":0`)) {
			b.Fatalf("%s %v", out, err)
		}
	}
	b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
}
