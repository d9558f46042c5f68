package recipe_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	recipe "github.com/slapnode/slapnode/recipes-wasm/sdk/go"
	"github.com/slapnode/slapnode/recipes-wasm/sdk/go/recipetest"
)

// A registry of test recipes exercising the SDK's plumbing.
func registry() *recipe.Registry {
	g := recipe.NewRegistry("testmod", "0.1.0")
	g.Register("echo", recipe.Recipe{
		Description: "Echo options and context.",
		Schema:      `{"type":"object"}`,
		Outputs:     []string{"part"},
		Install: func(ctx recipe.Context, opts recipe.Options) (recipe.Result, error) {
			ctx.Log("installing %s", ctx.Part)
			n, err := opts.Int("n", -1)
			if err != nil {
				return recipe.Result{}, err
			}
			prev, _ := ctx.PreviousOutput("n")
			if _, isInt := prev.(int64); prev != nil && !isInt {
				return recipe.Result{}, fmt.Errorf("previous output n is %T, want int64", prev)
			}
			return recipe.Result{
				Outputs:   map[string]any{"part": ctx.Part, "phase": ctx.Phase, "kind": ctx.Kind, "dir": ctx.Dir(), "n": n, "prev": prev, "entry": ctx.Entry},
				Installed: []string{ctx.Dir() + "/x"},
				Messages:  []string{"ok"},
			}, nil
		},
		Uninstall: func(ctx recipe.Context, opts recipe.Options) (recipe.Result, error) {
			if ctx.Previous == nil || len(ctx.Previous.Installed) != 1 {
				return recipe.Result{}, errors.New("uninstall without the previous install")
			}
			return recipe.Result{Messages: []string{"bye " + opts["name"].(string)}}, nil
		},
	})
	g.Register("file", recipe.Recipe{Install: func(ctx recipe.Context, opts recipe.Options) (recipe.Result, error) {
		p, err := opts.String("path")
		if err != nil {
			return recipe.Result{}, err
		}
		return recipe.Result{Installed: []string{p}}, os.WriteFile(p, nil, 0o644)
	}})
	g.Register("fail", recipe.Recipe{Install: func(recipe.Context, recipe.Options) (recipe.Result, error) {
		return recipe.Result{Messages: []string{"partial"}}, errors.New("it broke")
	}})
	g.Register("panic", recipe.Recipe{Install: func(recipe.Context, recipe.Options) (recipe.Result, error) {
		var m map[string]int
		m["x"] = 1
		return recipe.Result{}, nil
	}})
	g.Register("exec", recipe.Recipe{Install: func(ctx recipe.Context, opts recipe.Options) (recipe.Result, error) {
		argv, err := opts.StringList("argv")
		if err != nil {
			return recipe.Result{}, err
		}
		r, err := ctx.Run(argv, ctx.Dir(), map[string]string{"V": "from-env"}, 10*time.Second)
		return recipe.Result{Outputs: map[string]any{"output": r.Output, "code": r.ExitCode}}, err
	}})
	g.RegisterPromise("always", recipe.Promise{Check: func(ctx recipe.Context, opts recipe.Options) (bool, string) {
		return opts["ok"] == true, "checked " + ctx.Part
	}})
	return g
}

func env(t *testing.T) *recipetest.Env {
	e := recipetest.New(t)
	e.Registry = registry()
	return e
}

func TestDescribe(t *testing.T) {
	var d map[string]any
	if err := json.Unmarshal(registry().Describe(), &d); err != nil {
		t.Fatal(err)
	}
	if d["abi"] != float64(1) || d["module"] != "testmod" || d["version"] != "0.1.0" {
		t.Fatalf("header: %v", d)
	}
	recipes := d["recipes"].(map[string]any)
	echo := recipes["echo"].(map[string]any)
	if echo["description"] != "Echo options and context." || echo["outputs"].([]any)[0] != "part" {
		t.Fatalf("echo: %v", echo)
	}
	// A recipe without a schema declares an object schema (options unchecked).
	if s := recipes["fail"].(map[string]any)["options"].(map[string]any); s["type"] != "object" {
		t.Fatalf("default schema %v", s)
	}
	if _, ok := d["promises"].(map[string]any)["always"]; !ok {
		t.Fatal("promise missing")
	}
}

func TestInstallUpdateUninstall(t *testing.T) {
	e := env(t)
	out := e.MustInstall("p1", "echo", map[string]any{"n": 3, "name": "p"})
	o := out.Outputs
	if o["part"] != "p1" || o["phase"] != "install" || o["kind"] != "instance" || o["dir"] != e.Dir() || o["n"] != float64(3) || o["prev"] != nil || o["entry"] != recipe.EntryInstall {
		t.Fatalf("outputs %v", o)
	}
	if len(out.Messages) != 1 || len(out.Installed) != 1 {
		t.Fatalf("result %+v", out)
	}
	if logs := e.Host.Logs(); len(logs) != 1 || logs[0].Message != "installing p1" || logs[0].Level != recipe.Info {
		t.Fatalf("logs %v", logs)
	}
	// Without an Update function, update runs Install with Previous set.
	out = e.Update("p1", "echo", map[string]any{"n": "4", "name": "p"})
	if out.Error != "" || out.Outputs["phase"] != "update" || out.Outputs["prev"] != float64(3) || out.Outputs["n"] != float64(4) {
		t.Fatalf("update %+v", out)
	}
	out = e.Uninstall("p1", "echo")
	if out.Error != "" || out.Messages[0] != "bye p" {
		t.Fatalf("uninstall %+v", out)
	}
	// A recipe without Uninstall succeeds doing nothing.
	if out := e.Uninstall("never", "fail"); out.Error != "" {
		t.Fatalf("uninstall of a recipe without Uninstall: %v", out.Error)
	}
}

func TestErrors(t *testing.T) {
	e := env(t)
	out := e.MustFail("f", "fail", nil, `part "f" (recipe fail): it broke`)
	if len(out.Messages) != 1 || out.Messages[0] != "partial" {
		t.Fatalf("messages of a failed install are kept: %v", out.Messages)
	}
	e.MustFail("p", "panic", nil, "panic: assignment to entry in nil map")
	e.MustFail("u", "unknown", nil, `module testmod has no recipe "unknown" (it has: echo, exec, fail, file, panic)`)
	e.MustFail("bad", "echo", map[string]any{"n": "three"}, `option "n" must be an integer`)

	raw := registry().Dispatch(recipe.EntryInstall, []byte("{not json"), e.Host)
	var o recipe.RecipeOutput
	if err := json.Unmarshal(raw, &o); err != nil || !strings.Contains(o.Error, "malformed input JSON") {
		t.Fatalf("bad input gave %s", raw)
	}
	raw = registry().Dispatch("recipe_frobnicate", []byte(`{"recipe":"echo"}`), e.Host)
	if err := json.Unmarshal(raw, &o); err != nil || !strings.Contains(o.Error, `unknown entry point "recipe_frobnicate"`) {
		t.Fatalf("bad entry gave %s", raw)
	}
}

func TestHostCallsThroughJSON(t *testing.T) {
	e := env(t)
	// The host's environment rule: V is no default variable.
	e.MustFail("v", "exec", map[string]any{"argv": []any{"sh", "-c", "echo $V"}}, "environment variable V is not granted")
	e.Host.AllowEnv = []string{"V"}
	out := e.MustInstall("x", "exec", map[string]any{"argv": []any{"sh", "-c", "echo $V"}})
	if out.Outputs["output"] != "from-env\n" {
		t.Fatalf("exec output %v", out.Outputs)
	}
	e.MustFail("y", "exec", map[string]any{"argv": []any{"sh", "-c", "echo oops; exit 2"}}, "exited with status 2", "oops")
	e.MustFail("rel", "exec", map[string]any{"argv": []any{"./configure"}}, "./configure is a relative path")
	e.Host.AllowExec = []string{"make"}
	e.MustFail("z", "exec", map[string]any{"argv": []any{"sh"}}, "sh is not granted")
}

func TestContextWithoutHost(t *testing.T) {
	// Outside a call (no host) the host functions fail with a useful error
	// instead of crashing.
	var ctx recipe.Context
	if _, err := ctx.Download("http://x", "00"); err == nil || !strings.Contains(err.Error(), "no slapnode host") {
		t.Fatalf("Download without host: %v", err)
	}
	if err := ctx.TCPProbe("::1", 1, time.Second); err == nil {
		t.Fatal("TCPProbe without host succeeded")
	}
	if _, err := ctx.DownloadFile("http://x", "", ""); err == nil || !strings.Contains(err.Error(), "checksum is required") {
		t.Fatalf("DownloadFile without checksum: %v", err)
	}
}

func TestPromise(t *testing.T) {
	e := env(t)
	if out := e.Check("always", map[string]any{"ok": true}); !out.OK || out.Message != "checked always" {
		t.Fatalf("check %+v", out)
	}
	if out := e.Check("always", nil); out.OK {
		t.Fatal("check should fail")
	}
}

func TestRegisterPanics(t *testing.T) {
	for name, f := range map[string]func(g *recipe.Registry){
		"duplicate": func(g *recipe.Registry) {
			g.Register("echo", recipe.Recipe{Install: func(recipe.Context, recipe.Options) (recipe.Result, error) { return recipe.Result{}, nil }})
		},
		"no install": func(g *recipe.Registry) { g.Register("x", recipe.Recipe{}) },
		"bad schema": func(g *recipe.Registry) {
			g.Register("y", recipe.Recipe{Schema: "{", Install: func(recipe.Context, recipe.Options) (recipe.Result, error) { return recipe.Result{}, nil }})
		},
		"no check": func(g *recipe.Registry) { g.RegisterPromise("p", recipe.Promise{}) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			f(registry())
		})
	}
}

func TestOptions(t *testing.T) {
	o := recipe.Options{"s": "x", "n": int64(8), "f": 2.5, "b": "yes", "l": "a\n\n b \n", "la": []any{"a", int64(1)}, "m": map[string]any{"k": "v"}, "mode": int64(755), "nil": nil}
	if s, err := o.String("n"); err != nil || s != "8" {
		t.Errorf("String(n) = %q %v", s, err)
	}
	if _, err := o.String("m"); err == nil || !strings.Contains(err.Error(), "must be a string, not an object") {
		t.Errorf("String(m): %v", err)
	}
	if _, err := o.String("nil"); err == nil || !strings.Contains(err.Error(), "is required") {
		t.Errorf("String(nil): %v", err)
	}
	if b, err := o.Bool("b", false); err != nil || !b {
		t.Errorf("Bool(b) = %v %v", b, err)
	}
	if _, err := o.Int("f", 0); err == nil {
		t.Error("Int(2.5) accepted")
	}
	if l, err := o.StringList("l"); err != nil || len(l) != 2 || l[1] != "b" {
		t.Errorf("StringList(l) = %q %v", l, err)
	}
	if l, err := o.StringList("la"); err != nil || l[1] != "1" {
		t.Errorf("StringList(la) = %q %v", l, err)
	}
	if m, err := o.Mode("mode", 0); err != nil || m != 0o755 {
		t.Errorf("Mode = %v %v", m, err)
	}
	if m, err := recipe.ParseMode("m", "4755"); err != nil || m&os.ModeSetuid == 0 || m.Perm() != 0o755 {
		t.Errorf("ParseMode(4755) = %v %v", m, err)
	}
	var typed struct {
		S string `json:"s"`
		N int    `json:"n"`
	}
	if err := o.Decode(&typed); err != nil || typed.S != "x" || typed.N != 8 {
		t.Errorf("Decode = %+v %v", typed, err)
	}
}

func TestUpdateRemovesStale(t *testing.T) {
	e := env(t)
	a, b := e.Path("a"), e.Path("b")
	e.MustInstall("f", "file", map[string]any{"path": a})
	out := e.Update("f", "file", map[string]any{"path": b})
	if out.Error != "" || len(out.Messages) != 1 || !strings.Contains(out.Messages[0], "removed "+a) {
		t.Fatalf("update %+v", out)
	}
	if _, err := os.Stat(a); !os.IsNotExist(err) {
		t.Fatal("the file of the previous install was kept")
	}
	// The same path again is kept.
	if out := e.Update("f", "file", map[string]any{"path": b}); len(out.Messages) != 0 {
		t.Fatalf("update with the same path: %v", out.Messages)
	}
	if _, err := os.Stat(b); err != nil {
		t.Fatal(err)
	}
}

func TestChmodFallsBackToHostChmod(t *testing.T) {
	e := env(t)
	e.Registry.Register("mode", recipe.Recipe{Install: func(ctx recipe.Context, opts recipe.Options) (recipe.Result, error) {
		p, _ := opts.String("path")
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o600); err != nil {
			return recipe.Result{}, err
		}
		return recipe.Result{}, ctx.Chmod(0o755, p)
	}})
	p := e.Path("tool")
	// The mode is set by the host (slapnode.chmod), as under WASI where
	// os.Chmod does nothing; no grant is needed.
	e.MustInstall("host", "mode", map[string]any{"path": p})
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o755 || len(e.Host.Calls()) != 1 || e.Host.Calls()[0] != "chmod" {
		t.Fatalf("mode %v, host calls %v", st.Mode(), e.Host.Calls())
	}
}
