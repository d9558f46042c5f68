package wasmhost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The test modules are compiled from testdata/ by TestMain with the flags
// of runtime/runtime.mk, so `go test` needs no prior `make`.
var (
	testModules  = map[string][]byte{}
	missingTool  error // clang or wat2wasm absent: tests that need modules skip
	buildFailure error // a tool is present but a module did not build: tests fail
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wasmhost-modules-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if os.Getenv(syscallChildEnv) == "" { // strace's child needs no module
		buildTestModules(dir)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func buildTestModules(dir string) {
	clang, err := exec.LookPath("clang")
	if err != nil {
		missingTool = errors.New("clang not found in PATH (apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32)")
		return
	}
	wat2wasm, err := exec.LookPath("wat2wasm")
	if err != nil {
		missingTool = errors.New("wat2wasm not found in PATH (apt-get install wabt)")
		return
	}
	cflags := []string{"--target=wasm32-wasi", "--sysroot=/usr", "-O2", "-Wall", "-Wl,--strip-debug"}
	jobs := map[string][]string{
		"reactor":      append([]string{clang}, append(cflags, "-mexec-model=reactor", "-o", "OUT", "testdata/reactor.c")...),
		"hostile":      append([]string{clang}, append(cflags, "-mexec-model=reactor", "-o", "OUT", "testdata/hostile.c")...),
		"hostile_exec": append([]string{clang}, append(cflags, "-mexec-model=reactor", "-o", "OUT", "testdata/hostile_exec.c")...),
		"command":      append([]string{clang}, append(cflags, "-o", "OUT", "testdata/command.c")...),
	}
	wats, _ := filepath.Glob("testdata/*.wat")
	for _, w := range wats {
		jobs[strings.TrimSuffix(filepath.Base(w), ".wat")] = []string{wat2wasm, "-o", "OUT", w}
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var errs []error
	for name, argv := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := filepath.Join(dir, name+".wasm")
			args := append([]string(nil), argv...)
			for i, a := range args {
				if a == "OUT" {
					args[i] = out
				}
			}
			msg, err := exec.Command(args[0], args[1:]...).CombinedOutput()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %v\n%s", strings.Join(args, " "), err, msg))
				return
			}
			b, err := os.ReadFile(out)
			if err != nil {
				errs = append(errs, err)
				return
			}
			testModules[name] = b
		}()
	}
	wg.Wait()
	buildFailure = errors.Join(errs...)
}

// module returns the bytes of a test module built by TestMain.
func module(t testing.TB, name string) []byte {
	t.Helper()
	if missingTool != nil {
		t.Skipf("test modules not built: %v", missingTool)
	}
	if buildFailure != nil {
		t.Fatalf("building test modules: %v", buildFailure)
	}
	b, ok := testModules[name]
	if !ok {
		t.Fatalf("no test module %q", name)
	}
	return b
}

type logLine struct {
	module, part string
	level        int
	msg          string
}

type logRecorder struct {
	mu    sync.Mutex
	lines []logLine
}

func (r *logRecorder) log(module, part string, level int, msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, logLine{module, part, level, msg})
}

func (r *logRecorder) has(substr string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range r.lines {
		if strings.Contains(l.msg, substr) {
			return true
		}
	}
	return false
}

func newHost(t testing.TB) (*Host, *logRecorder) {
	t.Helper()
	rec := &logRecorder{}
	dir := t.TempDir()
	h, err := New(context.Background(), Config{
		CacheDir:    filepath.Join(dir, "wazero"),
		DownloadDir: filepath.Join(dir, "download"),
		Logger:      rec.log,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	return h, rec
}

func load(t testing.TB, h *Host, name, file string, g Grants) *Module {
	t.Helper()
	m, err := h.Load(context.Background(), name, module(t, file), g)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// input builds a recipe input; options are JSON-encoded.
func input(recipe string, options any) []byte {
	b, _ := json.Marshal(map[string]any{
		"recipe":  recipe,
		"part":    "p-" + recipe,
		"options": options,
		"context": map[string]any{"kind": "instance"},
	})
	return b
}

type recipeOut struct {
	Outputs map[string]any `json:"outputs"`
	Error   string         `json:"error"`
}

func call(t testing.TB, s *Session, m *Module, recipe string, options any) recipeOut {
	t.Helper()
	out, err := s.Call(context.Background(), m, "recipe_install", input(recipe, options))
	if err != nil {
		t.Fatalf("%s: %v", recipe, err)
	}
	var r recipeOut
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("%s: %v in %s", recipe, err, out)
	}
	return r
}

func newSession(t testing.TB, h *Host, cfg SessionConfig) *Session {
	t.Helper()
	s := h.NewSession(cfg)
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

var allGrants = Grants{Exec: []string{"echo", "sh", "sleep"}, Net: []string{"tcp://127.0.0.1:*", "http://127.0.0.1:*"}, Timeout: time.Minute}
