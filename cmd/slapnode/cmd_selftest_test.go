package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slapnode/slapnode/runtime/builtin"
)

func selfTestCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), code
}

// requireCookbook skips (or fails under make test) without the built-in
// WebAssembly modules, which every release uses.
func requireCookbook(t *testing.T) {
	t.Helper()
	if len(builtin.Names()) == 0 {
		if os.Getenv("SLAPNODE_REQUIRE_WASM") != "" {
			t.Fatal("slapnode was built without its WebAssembly modules")
		}
		t.Skip("built without the WebAssembly modules: run 'make wasm' first")
	}
}

func TestSelfTestPassesOnEveryExample(t *testing.T) {
	requireCookbook(t)
	profiles, err := filepath.Glob("../../examples/*/software.hcl")
	if err != nil || len(profiles) == 0 {
		t.Fatalf("no examples found: %v", err)
	}
	for _, p := range profiles {
		t.Run(filepath.Base(filepath.Dir(p)), func(t *testing.T) {
			out, errs, code := selfTestCLI(t, "test", p)
			if code != exitOK || !strings.Contains(out, "PASS") {
				t.Fatalf("exit %d\n%s%s", code, out, errs)
			}
			if strings.Contains(out, "FAILED") {
				t.Errorf("a passing test reports a failure:\n%s", out)
			}
		})
	}
}

func TestSelfTestFailsOnBrokenReleases(t *testing.T) {
	requireCookbook(t)
	cases := map[string]struct {
		files map[string]string
		want  []string
	}{
		"build fails": {
			files: map[string]string{
				"software.hcl": `
software "broken-build" { version = "1" }
module "cookbook" {
  source     = "builtin:cookbook"
  allow_exec = ["sh"]
}
part "server" {
  recipe   = "cookbook:build"
  commands = ["echo compiling; exit 3"]
}
instance "default" { profile = "instance.hcl" }
`,
				"instance.hcl": "publish {\n  ok = true\n}\n",
			},
			want: []string{"install: FAILED", "FAIL (0 type(s) tested)"},
		},
		"promise fails": {
			files: map[string]string{
				"software.hcl": `
software "broken-promise" { version = "1" }
instance "default" {
  profile    = "instance.hcl"
  parameters = "input.json"
}
`,
				// The example parameters come from the schema's examples.
				"input.json": `{"type":"object","properties":{"port":{"type":"integer"}},"examples":[{"port":1}]}`,
				"instance.hcl": `
service "idle" {
  command = ["/bin/sh", "-c", "exec sleep 1000"]
}
promise "listening" {
  check = "cookbook:check_port_listening"
  host  = partition.ipv4
  port  = parameter.port
}
`,
			},
			want: []string{`type default: FAILED`, `parameters {"port":1}`, "promise listening FAILED", "FAIL (1 type(s) tested)"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			for f, content := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, f), []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			tmp := t.TempDir()
			t.Setenv("TMPDIR", tmp) // where the throwaway node root goes
			out, errs, code := selfTestCLI(t, "test", filepath.Join(dir, "software.hcl"), "--wait", "1s")
			if code != exitFailure {
				t.Errorf("exit %d, want %d", code, exitFailure)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("report lacks %q:\n%s%s", w, out, errs)
				}
			}
			if left, _ := os.ReadDir(tmp); len(left) != 0 {
				t.Errorf("the throwaway node root was left behind: %v", left)
			}
		})
	}
}
