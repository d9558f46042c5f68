package wrapper

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	recipe "github.com/slapnode/slapnode/recipes-wasm/sdk/go"
	"github.com/slapnode/slapnode/recipes-wasm/sdk/go/recipetest"
)

func TestMain(m *testing.M) {
	Register(recipe.Default())
	os.Exit(m.Run())
}

func run(t *testing.T, path string, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(path, args...).CombinedOutput()
	return string(out), err
}

func TestWrapperRuns(t *testing.T) {
	e := recipetest.New(t)
	out := e.MustInstall("w", "wrapper", map[string]any{
		"command-line":     `/bin/sh -c 'echo "$GREETING $1 $2" "$@"' 'it'\''s'`,
		"wrapper-path":     "bin/hello",
		"environment":      "GREETING=hello world\nEMPTY=",
		"parameters-extra": "true",
	})
	p := e.Path("bin", "hello")
	if out.Outputs["location"] != p || out.Installed[0] != p {
		t.Fatalf("result %+v", out)
	}
	if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o755 {
		t.Fatalf("wrapper mode: %v %v", st, err)
	}
	got, err := run(t, p, "a b", "c")
	if err != nil {
		t.Fatalf("wrapper failed: %v\n%s\n%s", err, got, e.ReadFile(p))
	}
	if want := "hello world a b c a b c\n"; got != want {
		t.Fatalf("wrapper printed %q, want %q; script:\n%s", got, want, e.ReadFile(p))
	}
}

func TestWrapperListPidfileWait(t *testing.T) {
	e := recipetest.New(t)
	ready := e.Path("ready")
	e.WriteFile(ready, "")
	e.MustInstall("w", "wrapper", map[string]any{
		"command-line":   []any{"/bin/echo", "$HOME", "*"},
		"wrapper-path":   e.Path("bin", "w"),
		"pidfile":        "run/w.pid",
		"wait-for-files": []any{ready},
	})
	if err := os.MkdirAll(e.Path("run"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := run(t, e.Path("bin", "w"))
	if err != nil || got != "$HOME *\n" {
		t.Fatalf("list command is not literal: %q %v", got, err)
	}
	// The pid file now names a dead process: the next start is allowed.
	// With a live pid, the wrapper refuses to start.
	if err := os.WriteFile(e.Path("run", "w.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err = run(t, e.Path("bin", "w"))
	if err == nil || !strings.Contains(got, "already running") {
		t.Fatalf("pidfile not honoured: %q %v", got, err)
	}
}

func TestWrapperHashAndErrors(t *testing.T) {
	e := recipetest.New(t)
	e.WriteFile(e.Path("conf"), "a")
	opts := map[string]any{"command-line": "true", "wrapper-path": "w", "hash-files": e.Path("conf"), "hash-existing-files": "nope"}
	h1 := e.MustInstall("w", "wrapper", opts).Outputs["hash"]
	e.WriteFile(e.Path("conf"), "b")
	h2 := e.MustInstall("w", "wrapper", opts).Outputs["hash"]
	if h1 == nil || h1 == h2 || !strings.Contains(e.ReadFile(e.Path("w")), h2.(string)) {
		t.Fatalf("hash did not follow the file: %v %v", h1, h2)
	}
	e.MustFail("x", "wrapper", map[string]any{"command-line": "true", "wrapper-path": "w", "hash-files": "missing"}, `option "hash-files"`)
	e.MustFail("x", "wrapper", map[string]any{"command-line": "", "wrapper-path": "w"}, "is empty")
	e.MustFail("x", "wrapper", map[string]any{"command-line": "'open", "wrapper-path": "w"}, "unterminated")
	e.MustFail("x", "wrapper", map[string]any{"command-line": "true", "wrapper-path": "w", "environment": "1X=2"}, "not a valid variable name")
	e.MustFail("x", "wrapper", map[string]any{"command-line": "true", "wrapper-path": "w", "private-tmpfs": "/tmp"}, "not supported")
}
