package values

import (
	"os"
	"strings"
	"testing"

	recipe "github.com/slapnode/slapnode/recipes-wasm/sdk/go"
	"github.com/slapnode/slapnode/recipes-wasm/sdk/go/recipetest"
)

func TestMain(m *testing.M) {
	Register(recipe.Default())
	os.Exit(m.Run())
}

func TestPublish(t *testing.T) {
	e := recipetest.New(t)
	out := e.MustInstall("pub", "publish", map[string]any{"url": "http://[::1]:8080/", "port": 8080, "list": []any{"a"}})
	if out.Outputs["url"] != "http://[::1]:8080/" || out.Outputs["port"] != float64(8080) || len(out.Installed) != 0 {
		t.Fatalf("publish: %+v", out)
	}
	// Options named -… are the recipe's; -publish chooses; serialised puts
	// everything in _ as JSON, under the buildout names.
	out = e.MustInstall("priv", "publish", map[string]any{"a": "1", "b__2ec": "2", "__2dslave-reference": "x"})
	if len(out.Outputs) != 2 || out.Outputs["b__2ec"] != "2" {
		t.Fatalf("private options published: %+v", out.Outputs)
	}
	out = e.MustInstall("sel", "publish", map[string]any{"a": "1", "b": "2", "__2dpublish": "b"})
	if len(out.Outputs) != 1 || out.Outputs["b"] != "2" {
		t.Fatalf("-publish: %+v", out.Outputs)
	}
	out = e.MustInstall("ser", "publish", map[string]any{"serialised": true, "url": "http://x/", "b__2ec": "2", "n": 3})
	if len(out.Outputs) != 1 || out.Outputs["_"] != `{"b.c":"2","n":3,"url":"http://x/"}` {
		t.Fatalf("serialised: %+v", out.Outputs)
	}
	e.MustFail("bad", "publish", map[string]any{"__2dpublish": "nope"}, `-publish names "nope"`)
}

func TestPasswordStable(t *testing.T) {
	e := recipetest.New(t)
	out := e.MustInstall("pw", "password", map[string]any{"length": 24})
	pw, _ := out.Outputs["passwd"].(string)
	if len(pw) != 24 || out.Outputs["password"] != pw || strings.Trim(pw, alphanumeric) != "" {
		t.Fatalf("password %q", pw)
	}
	// Update keeps it; a change of length regenerates it.
	if got := e.Update("pw", "password", map[string]any{"length": 24}).Outputs["passwd"]; got != pw {
		t.Fatalf("update changed the password: %v", got)
	}
	if got := e.Update("pw", "password", map[string]any{"length": 8}).Outputs["passwd"].(string); len(got) != 8 {
		t.Fatalf("length change kept %q", got)
	}
	other := e.MustInstall("pw2", "password", map[string]any{"chars": "ab", "bytes": "40"}).Outputs["passwd"].(string)
	if len(other) != 40 || strings.Trim(other, "ab") != "" || !strings.Contains(other, "a") || !strings.Contains(other, "b") {
		t.Fatalf("chars not honoured: %q", other)
	}
	e.MustFail("bad", "password", map[string]any{"length": 0, "bytes": 0}, "not between 1 and 4096")
	e.MustFail("bad", "password", map[string]any{"chars": "a"}, "at least two characters")
}

func TestRandomStorage(t *testing.T) {
	e := recipetest.New(t)
	out := e.MustInstall("r", "generate-random", map[string]any{"storage-path": "etc/.secret"})
	v := out.Outputs["value"].(string)
	p := e.Path("etc", ".secret")
	if e.ReadFile(p) != v || out.Installed[0] != p {
		t.Fatalf("storage: %+v", out)
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o600 {
		t.Fatalf("storage mode %v", st.Mode())
	}
	// A fresh install (no previous) reuses the stored value, even if
	// it does not match the current constraints (it was set on purpose).
	e.WriteFile(p, "chosen-by-admin\n")
	out = e.MustInstall("r2", "generate-random", map[string]any{"storage-path": p})
	if out.Outputs["value"] != "chosen-by-admin" {
		t.Fatalf("stored value not reused: %v", out.Outputs)
	}
}
