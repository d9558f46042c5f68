package customrecipe

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestDocExamplesVerbatim keeps docs/sdk-c-assemblyscript.md honest: its two
// complete examples are these files, byte for byte.
func TestDocExamplesVerbatim(t *testing.T) {
	doc, err := os.ReadFile("../../docs/sdk-c-assemblyscript.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"testdata/hello.c", "testdata/hello.ts"} {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(doc), "\n"+string(src)+"```\n") {
			t.Errorf("docs/sdk-c-assemblyscript.md does not show %s verbatim: copy the file into its code block", f)
		}
	}
}

// TestDocExamples runs the documented hello modules.
func TestDocExamples(t *testing.T) {
	for lang, path := range map[string]string{"c": "testdata/hello-c.wasm", "as": "testdata/hello-as.wasm"} {
		t.Run(lang, func(t *testing.T) {
			wasm := readWasm(t, path)
			dir := tempDir(t)
			g := load(t, wasm, dir, newFakeHost())
			d := g.describe()
			if got := dig(t, d, "recipes", "hello", "options", "properties", "greeting", "default"); got != "hello" {
				t.Errorf("greeting default = %v", got)
			}
			if got := dig(t, d, "recipes", "hello", "outputs"); !reflect.DeepEqual(got, []any{"path"}) {
				t.Errorf("outputs = %v", got)
			}
			ex := exports(t, wasm)
			if ex["recipe_update"] || ex["recipe_uninstall"] || !ex["recipe_install"] || !ex["promise_check"] {
				t.Errorf("exports = %v", ex)
			}

			path := filepath.Join(dir, "hello.txt")
			out := g.call("recipe_install", recipeInput("hello", "install", dir, map[string]any{"path": path, "greeting": "Hi"}))
			if out["error"] != "" || !reflect.DeepEqual(out["outputs"], map[string]any{"path": path}) ||
				!reflect.DeepEqual(out["installed"], []any{path}) || !reflect.DeepEqual(out["messages"], []any{"greeted slappart3"}) {
				t.Errorf("install: %v", out)
			}
			if b, _ := os.ReadFile(path); string(b) != "Hi from slappart3\n" {
				t.Errorf("file = %q", b)
			}
			check := func() map[string]any {
				return g.call("promise_check", map[string]any{"promise": "hello_present", "name": "h", "options": map[string]any{"path": path}})
			}
			if res := check(); res["ok"] != true || res["message"] != path+" is there" {
				t.Errorf("check: %v", res)
			}
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			if res := check(); res["ok"] != false || !strings.Contains(res["message"].(string), path) {
				t.Errorf("check after removal: %v", res)
			}
		})
	}
}
