package customrecipe

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/slapnode/slapnode/hcl/profile"
	"github.com/slapnode/slapnode/runtime/wasmhost"
)

// TestExampleProfiles checks that the example profiles load and that their
// module blocks point at the .wasm files the build writes next to them.
func TestExampleProfiles(t *testing.T) {
	for _, dir := range []string{"../custom-recipe-c", "../custom-recipe-as"} {
		for file, kind := range map[string]profile.Kind{"software.hcl": profile.Software, "instance.hcl": profile.Instance} {
			p, diags := profile.Load(filepath.Join(dir, file), kind)
			if diags.HasErrors() {
				t.Errorf("%s/%s: %v", dir, file, diags)
				continue
			}
			mods := p.BlocksOf("module")
			if len(mods) != 1 || mods[0].Name() != "motd" {
				t.Errorf("%s/%s: want one module block \"motd\", got %d", dir, file, len(mods))
			}
		}
	}
}

// TestRealHost runs both motd modules in runtime/wasmhost, the host slapnode
// uses, with the grants their profiles give: no exec, no network, 16 MiB.
func TestRealHost(t *testing.T) {
	ctx := context.Background()
	h, err := wasmhost.New(ctx, wasmhost.Config{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)
	for lang, path := range motdModules {
		t.Run(lang, func(t *testing.T) {
			m, err := h.Load(ctx, "motd", readWasm(t, path), wasmhost.Grants{MemoryBytes: 16 << 20})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(m.Imports, []string{"log"}) {
				t.Errorf("imports = %v", m.Imports)
			}
			dir := tempDir(t)
			s := h.NewSession(wasmhost.SessionConfig{Mounts: []wasmhost.Mount{{HostPath: dir}}})
			defer s.Close(ctx)
			motd := filepath.Join(dir, "motd")
			raw, err := s.Call(ctx, m, "recipe_install", jsonOf(t, recipeInput("motd", "install", dir,
				map[string]any{"path": motd, "message": "hi", "banner": true, "signature": ""})))
			if err != nil {
				t.Fatal(err)
			}
			var res struct {
				Outputs map[string]any `json:"outputs"`
				Error   string         `json:"error"`
			}
			if err := json.Unmarshal(raw, &res); err != nil || res.Error != "" || res.Outputs["lines"] != 2.0 {
				t.Fatalf("install: %s, %v", raw, err)
			}
			if b, _ := os.ReadFile(motd); string(b) != "=== slappart3 ===\nhi\n" {
				t.Errorf("file = %q", b)
			}
			// Outside the mount the sandbox refuses, and the recipe says so.
			outside := filepath.Join(tempDir(t), "motd")
			raw, err = s.Call(ctx, m, "recipe_install", jsonOf(t, recipeInput("motd", "install", dir,
				map[string]any{"path": outside, "message": "x"})))
			if err != nil || !strings.Contains(string(raw), outside+".tmp") {
				t.Errorf("outside the mount: %s, %v", raw, err)
			}
			if _, err := os.Stat(outside); !os.IsNotExist(err) {
				t.Errorf("the guest wrote outside its mount: %v", err)
			}
			raw, err = s.Call(ctx, m, "promise_check", jsonOf(t, map[string]any{
				"promise": "motd_present", "name": "motd", "options": map[string]any{"path": motd, "contains": "hi"},
			}))
			if err != nil || !strings.Contains(string(raw), `"ok":true`) {
				t.Errorf("promise: %s, %v", raw, err)
			}
		})
	}
}
