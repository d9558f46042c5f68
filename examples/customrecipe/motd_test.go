package customrecipe

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// forEachMotd runs f once per language on a fresh instance of its motd
// module, with a scratch directory mounted.
func forEachMotd(t *testing.T, f func(t *testing.T, g *guest, dir string)) {
	for lang, path := range motdModules {
		t.Run(lang, func(t *testing.T) {
			wasm := readWasm(t, path)
			dir := tempDir(t)
			f(t, load(t, wasm, dir, newFakeHost()), dir)
		})
	}
}

func TestMotdExports(t *testing.T) {
	for lang, path := range motdModules {
		t.Run(lang, func(t *testing.T) {
			ex := exports(t, readWasm(t, path))
			for _, want := range []string{"abi_version", "abi_alloc", "abi_describe",
				"recipe_install", "recipe_update", "promise_check", "import:slapnode.log"} {
				if !ex[want] {
					t.Errorf("missing %s", want)
				}
			}
			// Only what the module uses (ABI §1.1, §6): an ungranted import
			// would make the profile fail to load.
			for _, unwanted := range []string{"recipe_uninstall", "import:slapnode.response",
				"import:slapnode.download", "import:slapnode.exec",
				"import:slapnode.tcp_probe", "import:slapnode.http_get", "import:env.abort"} {
				if ex[unwanted] {
					t.Errorf("unexpected %s", unwanted)
				}
			}
		})
	}
}

func TestMotdDescribe(t *testing.T) {
	forEachMotd(t, func(t *testing.T, g *guest, dir string) {
		res, err := g.fn("abi_version").Call(g.ctx)
		if err != nil || res[0] != 1 {
			t.Fatalf("abi_version = %v, %v; want 1", res, err)
		}
		d := g.describe()
		if d["abi"] != 1.0 || d["module"] != "motd" || d["version"] != "1.0.0" {
			t.Errorf("description header = %v %v %v", d["abi"], d["module"], d["version"])
		}
		r := dig(t, d, "recipes", "motd").(map[string]any)
		if r["description"] == "" {
			t.Error("recipe motd has no description")
		}
		if got := dig(t, r, "options", "required"); !reflect.DeepEqual(got, []any{"path", "message"}) {
			t.Errorf("options.required = %v", got)
		}
		if got := dig(t, r, "options", "properties", "banner", "default"); got != false {
			t.Errorf("banner default = %v", got)
		}
		if got := r["outputs"]; !reflect.DeepEqual(got, []any{"path", "bytes", "lines"}) {
			t.Errorf("outputs = %v", got)
		}
		if got := dig(t, d, "promises", "motd_present", "options", "required"); !reflect.DeepEqual(got, []any{"path"}) {
			t.Errorf("promise options.required = %v", got)
		}
	})
}

func TestMotdInstall(t *testing.T) {
	forEachMotd(t, func(t *testing.T, g *guest, dir string) {
		path := filepath.Join(dir, "motd")
		out := g.call("recipe_install", recipeInput("motd", "install", dir, map[string]any{
			"path": path, "message": "Hello", "signature": "ops", "banner": true,
		}))
		if out["error"] != "" {
			t.Fatalf("error = %q", out["error"])
		}
		want := "=== slappart3 ===\nHello\n-- ops\n"
		if b, err := os.ReadFile(path); err != nil || string(b) != want {
			t.Fatalf("file = %q, %v; want %q", b, err, want)
		}
		if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
			t.Errorf("temporary file left behind: %v", err)
		}
		wantOut := map[string]any{"path": path, "bytes": float64(len(want)), "lines": 3.0}
		if !reflect.DeepEqual(out["outputs"], wantOut) {
			t.Errorf("outputs = %v, want %v", out["outputs"], wantOut)
		}
		if !reflect.DeepEqual(out["installed"], []any{path}) {
			t.Errorf("installed = %v", out["installed"])
		}
		if msgs := out["messages"].([]any); len(msgs) != 1 || msgs[0] != fmt.Sprintf("wrote %d bytes to %s", len(want), path) {
			t.Errorf("messages = %v", msgs)
		}
		if len(g.host.logs) != 1 || g.host.logs[0].Level != 0 || !strings.Contains(g.host.logs[0].Msg, "greeting") {
			t.Errorf("logs = %v", g.host.logs)
		}

		// Defaults are the host's business (schema defaults); a software part
		// without them still works, and a message ending in a newline keeps it.
		in := recipeInput("motd", "install", dir, map[string]any{"path": path, "message": "a\nb\n"})
		in["context"] = map[string]any{"kind": "software"}
		if out := g.call("recipe_install", in); out["error"] != "" {
			t.Fatalf("error = %q", out["error"])
		}
		if b, _ := os.ReadFile(path); string(b) != "a\nb\n" {
			t.Errorf("file = %q", b)
		}
	})
}

func TestMotdUpdate(t *testing.T) {
	forEachMotd(t, func(t *testing.T, g *guest, dir string) {
		old, path := filepath.Join(dir, "old"), filepath.Join(dir, "new")
		if err := os.WriteFile(old, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		in := recipeInput("motd", "update", dir, map[string]any{"path": path, "message": "Hi"})
		in["previous"] = map[string]any{
			"options":   map[string]any{"path": old, "message": "Hi"},
			"outputs":   map[string]any{"path": old},
			"installed": []any{old},
		}
		out := g.call("recipe_update", in)
		if out["error"] != "" {
			t.Fatalf("error = %q", out["error"])
		}
		if _, err := os.Stat(old); !os.IsNotExist(err) {
			t.Errorf("previous file kept: %v", err)
		}
		if b, _ := os.ReadFile(path); string(b) != "Hi\n" {
			t.Errorf("file = %q", b)
		}
		if !reflect.DeepEqual(out["installed"], []any{path}) {
			t.Errorf("installed = %v", out["installed"])
		}
		if msgs := out["messages"].([]any); len(msgs) != 2 || !strings.Contains(msgs[1].(string), "removed previous "+old) {
			t.Errorf("messages = %v", msgs)
		}
	})
}

func TestMotdErrors(t *testing.T) {
	forEachMotd(t, func(t *testing.T, g *guest, dir string) {
		cases := []struct {
			name, entry string
			input       []byte
			want        string
		}{
			{"relative path", "recipe_install",
				jsonOf(t, recipeInput("motd", "install", dir, map[string]any{"path": "motd", "message": "m"})),
				`path must be absolute, got "motd"`},
			{"missing directory", "recipe_install",
				jsonOf(t, recipeInput("motd", "install", dir, map[string]any{"path": dir + "/no/motd", "message": "m"})),
				dir + "/no/motd.tmp"},
			{"unknown recipe", "recipe_install",
				jsonOf(t, recipeInput("nope", "install", dir, nil)), `module motd has no recipe "nope"`},
			{"malformed input", "recipe_update", []byte(`{"recipe": "motd", `), "invalid JSON at byte"},
		}
		for _, c := range cases {
			out := g.callRaw(c.entry, c.input)
			if e, _ := out["error"].(string); !strings.Contains(e, c.want) {
				t.Errorf("%s: error = %q, want it to contain %q", c.name, e, c.want)
			}
			if !reflect.DeepEqual(out["installed"], []any{}) {
				t.Errorf("%s: installed = %v", c.name, out["installed"])
			}
		}
		// The instance still serves after failures (ABI §8: one instance per module).
		path := filepath.Join(dir, "motd")
		if out := g.call("recipe_install", recipeInput("motd", "install", dir, map[string]any{"path": path, "message": "m"})); out["error"] != "" {
			t.Errorf("after failures: error = %q", out["error"])
		}
	})
}

func TestMotdPromise(t *testing.T) {
	forEachMotd(t, func(t *testing.T, g *guest, dir string) {
		path := filepath.Join(dir, "motd")
		if out := g.call("recipe_install", recipeInput("motd", "install", dir, map[string]any{"path": path, "message": "Hello"})); out["error"] != "" {
			t.Fatal(out["error"])
		}
		check := func(options map[string]any) map[string]any {
			return g.call("promise_check", map[string]any{
				"promise": "motd_present", "name": "motd", "options": options, "context": map[string]any{"kind": "instance"},
			})
		}
		cases := []struct {
			options map[string]any
			ok      bool
			msg     string
		}{
			{map[string]any{"path": path, "contains": "Hello"}, true, path + " is present (6 bytes)"},
			{map[string]any{"path": path}, true, "is present"},
			{map[string]any{"path": path, "contains": "Bye"}, false, `does not contain "Bye"`},
			{map[string]any{"path": dir + "/absent"}, false, dir + "/absent: "},
		}
		for _, c := range cases {
			out := check(c.options)
			if out["ok"] != c.ok || !strings.Contains(out["message"].(string), c.msg) {
				t.Errorf("%v: got %v, want ok=%v message containing %q", c.options, out, c.ok, c.msg)
			}
		}
		out := g.call("promise_check", map[string]any{"promise": "nope", "options": map[string]any{}})
		if out["ok"] != false || !strings.Contains(out["message"].(string), `no promise "nope"`) {
			t.Errorf("unknown promise: %v", out)
		}
	})
}

// TestMotdReuse serves many parts from one instance, as the host does within
// an apply (ABI §8): memory must not keep growing.
func TestMotdReuse(t *testing.T) {
	forEachMotd(t, func(t *testing.T, g *guest, dir string) {
		in := recipeInput("motd", "install", dir, map[string]any{
			"path": filepath.Join(dir, "motd"), "message": strings.Repeat("all work and no play\n", 500),
		})
		var pages [2]uint32
		for i := 1; i <= 300; i++ {
			if out := g.call("recipe_install", in); out["error"] != "" {
				t.Fatalf("call %d: %v", i, out["error"])
			}
			switch i {
			case 100:
				pages[0] = g.mod.Memory().Size() / 65536
			case 300:
				pages[1] = g.mod.Memory().Size() / 65536
			}
		}
		t.Logf("memory: %d pages after 100 installs, %d after 300", pages[0], pages[1])
		if pages[1] > pages[0] {
			t.Errorf("memory grew from %d to %d pages between calls 100 and 300", pages[0], pages[1])
		}
	})
}

// benchSetup compiles a motd module in a runtime with the slapnode imports.
func benchSetup(b *testing.B, lang string) (context.Context, wazero.Runtime, wazero.CompiledModule, wazero.ModuleConfig, string) {
	wasm := readWasm(b, motdModules[lang])
	dir := tempDir(b)
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	b.Cleanup(func() { r.Close(ctx) })
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	if err := newFakeHost().instantiate(ctx, r); err != nil {
		b.Fatal(err)
	}
	cm, err := r.CompileModule(ctx, wasm)
	if err != nil {
		b.Fatal(err)
	}
	cfg := wazero.NewModuleConfig().WithName("").WithStartFunctions("_initialize").
		WithFSConfig(wazero.NewFSConfig().WithDirMount(dir, dir))
	return ctx, r, cm, cfg, dir
}

// BenchmarkInstantiate measures one instantiation (with _initialize or the
// start function) and close, as docs/sdk-c-assemblyscript.md reports.
func BenchmarkInstantiate(b *testing.B) {
	for _, lang := range []string{"c", "as"} {
		b.Run(lang, func(b *testing.B) {
			ctx, r, cm, cfg, _ := benchSetup(b, lang)
			for i := 0; i < b.N; i++ {
				mod, err := r.InstantiateModule(ctx, cm, cfg)
				if err != nil {
					b.Fatal(err)
				}
				mod.Close(ctx)
			}
			b.ReportMetric(float64(len(readWasm(b, motdModules[lang]))), "wasm-bytes")
		})
	}
}

// BenchmarkInstall measures one recipe_install call on a live instance:
// abi_alloc, input copy, JSON in, file write and rename, JSON out.
func BenchmarkInstall(b *testing.B) {
	for _, lang := range []string{"c", "as"} {
		b.Run(lang, func(b *testing.B) {
			ctx, r, cm, cfg, dir := benchSetup(b, lang)
			mod, err := r.InstantiateModule(ctx, cm, cfg)
			if err != nil {
				b.Fatal(err)
			}
			g := &guest{t: b, ctx: ctx, mod: mod}
			in := jsonOf(b, recipeInput("motd", "install", dir, map[string]any{"path": dir + "/motd", "message": "m", "banner": true}))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if out := g.callRaw("recipe_install", in); out["error"] != "" {
					b.Fatal(out["error"])
				}
			}
		})
	}
}

// BenchmarkCompile measures a cold compilation (no compilation cache).
func BenchmarkCompile(b *testing.B) {
	for _, lang := range []string{"c", "as"} {
		b.Run(lang, func(b *testing.B) {
			wasm := readWasm(b, motdModules[lang])
			ctx := context.Background()
			for i := 0; i < b.N; i++ {
				r := wazero.NewRuntime(ctx)
				if _, err := r.CompileModule(ctx, wasm); err != nil {
					b.Fatal(err)
				}
				r.Close(ctx)
			}
		})
	}
}
