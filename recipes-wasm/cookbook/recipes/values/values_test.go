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

func TestRandomValues(t *testing.T) {
	e := recipetest.New(t)
	out := e.MustInstall("i", "random-integer", map[string]any{"minimum": int64(5), "maximum": "7"})
	v := out.Outputs["value"]
	if v != "5" && v != "6" && v != "7" {
		t.Fatalf("random-integer %v", v)
	}
	for range 5 {
		if out := e.Update("i", "random-integer", map[string]any{"minimum": int64(5), "maximum": "7"}); out.Outputs["value"] != v {
			t.Fatal("random-integer changed on update")
		}
	}
	if out := e.MustInstall("f", "random-integer", map[string]any{"minimum": 1, "maximum": 2, "value": "9"}); out.Outputs["value"] != "9" {
		t.Fatal(out.Outputs)
	}
	e.MustFail("bad", "random-integer", map[string]any{"minimum": 3, "maximum": 2}, "below minimum")
	out = e.MustInstall("t", "random-time", map[string]any{})
	tm, _ := out.Outputs["time"].(string)
	if h, m, ok := strings.Cut(tm, ":"); !ok || len(m) != 2 || len(h) == 0 || len(h) > 2 {
		t.Fatalf("random-time %q", tm)
	}
	out = e.MustInstall("m", "mac-address", map[string]any{"storage-path": "mac"})
	mac, _ := out.Outputs["mac-address"].(string)
	if len(mac) != 17 || !strings.HasPrefix(mac, "fe:") || e.ReadFile(e.Path("mac")) != mac {
		t.Fatalf("mac %q", mac)
	}
	if out := e.MustInstall("m2", "mac-address", map[string]any{"storage-path": "mac"}); out.Outputs["mac-address"] != mac {
		t.Fatal("stored mac not reused")
	}
	out = e.MustInstall("u", "urlparse", map[string]any{"url": "https://user:pw@Example.org:8443/a/b;p=1/?q=2#frag"})
	want := map[string]any{"scheme": "https", "username": "user", "password": "pw", "host": "example.org", "port": "8443", "path": "a/b;p=1", "params": "", "query": "q=2", "fragment": "frag"}
	for k, v := range want {
		if out.Outputs[k] != v {
			t.Errorf("urlparse %s = %q, want %q", k, out.Outputs[k], v)
		}
	}
	out = e.MustInstall("u2", "urlparse", map[string]any{"url": "http://[::1]/x;type=a"})
	if out.Outputs["host"] != "::1" || out.Outputs["port"] != "" || out.Outputs["path"] != "x" || out.Outputs["params"] != "type=a" {
		t.Errorf("urlparse: %v", out.Outputs)
	}
}
