package profile

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// BenchmarkLoad: Load of a software profile (the helloweb example, with
// its instance profile) and of a generated 1000-part instance profile
// (~150 KB): reading, the input bounds (docs/profiles.md §1.8), parsing and
// merging.
func BenchmarkLoad(b *testing.B) {
	dir := b.TempDir()
	for _, tc := range []struct {
		name, path string
		kind       Kind
	}{
		{"helloweb", "../../examples/helloweb/software.hcl", Software},
		{"helloweb-instance", "../../examples/helloweb/instance.hcl", Instance},
		{"1000-parts", filepath.Join(dir, "instance.hcl"), Instance},
	} {
		if tc.name == "1000-parts" {
			writeFile(b, tc.path, bigProfile())
		}
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			cpu := cpuTime()
			for b.Loop() {
				if _, diags := Load(tc.path, tc.kind); diags.HasErrors() {
					b.Fatal(diags)
				}
			}
			b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}

// bigProfile is a 1000-part instance profile (~150 KB).
func bigProfile() string {
	var big strings.Builder
	big.WriteString("locals {\n  base = \"/srv/slapnode\"\n}\n")
	for i := range 1000 {
		fmt.Fprintf(&big, "part \"p%d\" {\n  recipe = \"cookbook:mkdirectory\"\n  etc    = \"${partition.path}/etc/%d\"\n  list   = [local.base, \"x\", %d + 1]\n  obj    = { a = \"b\", n = max(%d, 2) }\n}\n", i, i, i, i)
	}
	return big.String()
}

// cpuTime is the process's user+system CPU time in nanoseconds: on a
// shared machine, wall time mostly measures waiting for a core.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func writeFile(b *testing.B, path, content string) {
	b.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		b.Fatal(err)
	}
}
