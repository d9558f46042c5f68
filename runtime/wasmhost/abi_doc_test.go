package wasmhost

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestABIDocumentExample builds the WebAssembly-text recipe of
// docs/wasm-abi.md §9 and runs it through the host, so the document's
// complete example stays true.
func TestABIDocumentExample(t *testing.T) {
	doc, err := os.ReadFile("../../docs/wasm-abi.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```wat\n")
	if !ok {
		t.Fatal("docs/wasm-abi.md has no ```wat block")
	}
	src, _, _ := strings.Cut(rest, "```")
	wat2wasm, err := exec.LookPath("wat2wasm")
	if err != nil {
		if os.Getenv("SLAPNODE_REQUIRE_WASM") != "" {
			t.Fatal("wat2wasm (wabt) is needed")
		}
		t.Skip("wat2wasm (wabt) is not installed")
	}
	dir := t.TempDir()
	in, out := filepath.Join(dir, "echo.wat"), filepath.Join(dir, "echo.wasm")
	os.WriteFile(in, []byte(src), 0o644)
	if b, err := exec.Command(wat2wasm, "-o", out, in).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm: %v\n%s", err, b)
	}
	wasm, _ := os.ReadFile(out)
	h, logs := newHost(t)
	m, err := h.Load(context.Background(), "echo", wasm, Grants{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Description.Recipes["echo"]; !ok {
		t.Fatalf("description: %+v", m.Description)
	}
	s := h.NewSession(SessionConfig{})
	defer s.Close(context.Background())
	input := `{"recipe":"echo","part":"p","phase":"install","options":{"a":"x","n":{"b":2}},"context":{"kind":"instance"}}`
	res, err := s.Call(context.Background(), m, "recipe_install", []byte(input))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Outputs map[string]any `json:"outputs"`
	}
	if err := json.Unmarshal(res, &got); err != nil || got.Outputs["a"] != "x" {
		t.Fatalf("result %s: %v", res, err)
	}
	if !logs.has("echo: installing") {
		t.Fatal("the guest's log line did not reach the host's logger")
	}
}
