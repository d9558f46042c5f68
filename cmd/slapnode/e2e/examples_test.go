package e2e

import (
	"os"
	"strings"
	"testing"
)

// TestCustomRecipeExamples applies the examples whose recipes are written
// in C, AssemblyScript and Go (built by make wasm), as a user would.
func TestCustomRecipeExamples(t *testing.T) {
	requireBuiltins(t)
	root := t.TempDir()
	stopNode(t, root)
	for _, tc := range []struct{ dir, want string }{
		{"custom-recipe-c", "motd = "},
		{"custom-recipe-as", "motd = "},
		{"custom-recipe-go", "greeting = Hello, world!"},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			profile := "examples/" + tc.dir + "/software.hcl"
			if _, err := os.Stat("../../../" + strings.TrimSuffix(profile, "software.hcl") + "motd.wasm"); err != nil && tc.dir != "custom-recipe-go" {
				if os.Getenv("SLAPNODE_REQUIRE_WASM") != "" {
					t.Fatalf("%s not built", tc.dir)
				}
				t.Skipf("%s not built: run make wasm", tc.dir)
			}
			r := run(t, root, "apply", profile)
			if r.code != 0 || !strings.Contains(r.stdout, tc.want) || !strings.Contains(r.stdout, ": ok (") {
				t.Fatalf("apply %s exited %d\nstdout:\n%s\nstderr:\n%s", profile, r.code, r.stdout, r.stderr)
			}
			r = run(t, root, "apply", profile)
			if r.code != 0 || !strings.Contains(r.stdout, "0 installed, 0 reinstalled, 0 uninstalled") {
				t.Fatalf("second apply of %s not a no-op:\n%s\n%s", profile, r.stdout, r.stderr)
			}
		})
	}
}
