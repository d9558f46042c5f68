package wasmhost

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"
)

// fuelRuntime instantiates the instrumented fuel.wat in a runtime without
// wazero's own termination check: only the fuel counter can stop it.
func fuelRuntime(t *testing.T) (api.Module, []byte) {
	t.Helper()
	ctx := context.Background()
	orig := module(t, "fuel")
	wasm, err := instrument(orig)
	if err != nil {
		t.Fatal(err)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(false))
	t.Cleanup(func() { rt.Close(ctx) })
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	if err := (&Host{}).instantiateSlapnode(ctx, rt); err != nil {
		t.Fatal(err)
	}
	mod, err := rt.InstantiateWithConfig(ctx, wasm, wazero.NewModuleConfig().WithStartFunctions())
	if err != nil {
		t.Fatalf("instrumented module: %v", err)
	}
	return mod, orig
}

func call1(t *testing.T, ctx context.Context, mod api.Module, fn string, args ...uint64) (uint64, error) {
	t.Helper()
	r, err := mod.ExportedFunction(fn).Call(ctx, args...)
	if err != nil {
		return 0, err
	}
	if len(r) == 0 {
		return 0, nil
	}
	return r[0], nil
}

// TestFuelKeepsSemantics: the rewritten module computes what the original
// does — direct calls, calls through the table (element segment) and loops
// past many refills, with an import before its functions so that every
// function index moved.
func TestFuelKeepsSemantics(t *testing.T) {
	mod, _ := fuelRuntime(t)
	ctx := context.Background()
	for _, tc := range []struct {
		fn   string
		args []uint64
		want uint64
	}{
		{"fib", []uint64{20}, 6765},
		{"count", []uint64{3 * fuelRefill}, 3 * fuelRefill},
		{"indirect", []uint64{0, 15}, 610},
		{"indirect", []uint64{1, 7}, 7},
	} {
		got, err := call1(t, ctx, mod, tc.fn, tc.args...)
		if err != nil || got != tc.want {
			t.Errorf("%s%v = %d, %v; want %d", tc.fn, tc.args, got, err, tc.want)
		}
	}
	// The module's own global is untouched by the counter.
	if n, err := call1(t, ctx, mod, "calls"); err != nil || n == 0 {
		t.Errorf("calls = %d, %v", n, err)
	}
}

// TestFuelStopsRunawayCode: with no wazero check at all, a loop without
// calls and a recursion without loops both stop at the deadline, with the
// exit code wazero's own check gives (explain turns it into "timed out").
func TestFuelStopsRunawayCode(t *testing.T) {
	mod, _ := fuelRuntime(t)
	for _, tc := range []struct {
		fn   string
		args []uint64
	}{
		{"spin", nil},
		{"fib", []uint64{60}}, // 2^60 calls
	} {
		t.Run(tc.fn, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err := call1(t, ctx, mod, tc.fn, tc.args...)
			var ee *sys.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != sys.ExitCodeDeadlineExceeded {
				t.Fatalf("%s: %v, want exit code %d (deadline exceeded)", tc.fn, err, sys.ExitCodeDeadlineExceeded)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("stopped after %s", d)
			}
		})
	}
}

// TestFuelOnEveryModule: every test module, and the cookbook when built (a
// Go guest: 9 MB of code), is rewritten — not left to wazero's check — and
// the result compiles.
func TestFuelOnEveryModule(t *testing.T) {
	mods := map[string][]byte{}
	for _, n := range []string{"reactor", "hostile", "hostile_exec", "command", "fuel"} {
		mods[n] = module(t, n)
	}
	if b, err := os.ReadFile(filepath.Join("..", "builtin", "wasm", "cookbook.wasm")); err == nil {
		mods["cookbook"] = b
	}
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(false))
	defer rt.Close(ctx)
	for n, b := range mods {
		w, err := instrument(b)
		if err != nil {
			t.Errorf("%s: %v", n, err)
			continue
		}
		if _, err := rt.CompileModule(ctx, w); err != nil {
			t.Errorf("%s: rewritten module does not compile: %v", n, err)
		}
	}
}

// TestFuelUntrustedLoad: Load gives untrusted modules the counter, and a
// module that imports slapnode.fuel itself is refused.
func TestFuelUntrustedLoad(t *testing.T) {
	ctx := context.Background()
	h, err := New(ctx, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)
	m, err := h.Load(ctx, "hostile", module(t, "hostile"), allGrants)
	if err != nil {
		t.Fatal(err)
	}
	if !m.fueled || m.class.interruptible {
		t.Fatalf("untrusted module: fueled %v, wazero check %v", m.fueled, m.class.interruptible)
	}
	for _, imp := range m.Imports {
		if imp == fuelImport {
			t.Fatalf("imports listed: %v", m.Imports)
		}
	}
	tm, err := h.Load(ctx, "trusted", module(t, "reactor"), Grants{Trusted: true})
	if err != nil || tm.fueled || tm.class.interruptible {
		t.Fatalf("trusted module: %v fueled %v", err, tm != nil && tm.fueled)
	}

	// (import "slapnode" "fuel") in the module itself.
	fueled, _ := instrument(module(t, "fuel"))
	_, err = h.Load(ctx, "sneaky", fueled, allGrants)
	if err == nil || !strings.Contains(err.Error(), "slapnode.fuel") {
		t.Fatalf("module importing slapnode.fuel: %v", err)
	}
}

// TestFuelCounterOutOfReach: a module whose code names a global (or a
// function) one past its own — invalid as it stands — must stay invalid
// once rewritten, not name the counter: else it could refill the counter
// itself and never be stopped.
func TestFuelCounterOutOfReach(t *testing.T) {
	body := []byte{
		0x00,       // no locals
		0x03, 0x40, // loop
		0x41, 0xff, 0xff, 0xff, 0xff, 0x07, // i32.const 0x7fffffff
		0x24, 0x00, // global.set 0: the module has no global
		0x0c, 0x00, // br 0
		0x0b, 0x0b, // end end
	}
	wasm := []byte("\x00asm\x01\x00\x00\x00")
	section := func(id byte, content ...byte) {
		wasm = append(append(append(wasm, id), uleb(uint64(len(content)))...), content...)
	}
	section(secType, 0x01, 0x60, 0x00, 0x00)
	section(secFunction, 0x01, 0x00)
	section(secExport, append(append([]byte{0x01}, wasmName("spin")...), 0x00, 0x00)...)
	section(secCode, append(append([]byte{0x01}, uleb(uint64(len(body)))...), body...)...)

	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(false))
	defer rt.Close(ctx)
	if _, err := rt.CompileModule(ctx, wasm); err == nil {
		t.Fatal("the module itself should be invalid")
	}
	w, err := instrument(wasm)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rt.CompileModule(ctx, w); err == nil {
		t.Fatal("rewritten, the module's global.set 0 names the fuel counter")
	}
}
