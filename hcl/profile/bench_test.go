package profile

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/slapnode/slapnode/internal/benchprofile"
	"github.com/zclconf/go-cty/cty"
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
		{"1000-converted", filepath.Join(dir, "software.hcl"), Software},
	} {
		switch tc.name {
		case "1000-parts":
			writeFile(b, tc.path, bigProfile())
		case "1000-converted":
			writeFile(b, tc.path, benchprofile.Converted(1000))
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

// BenchmarkCheck: Profile.Check of the two 1000-part profiles of
// BenchmarkLoad, each loaded afresh (outside the timing) since a profile
// keeps what Check computed.
func BenchmarkCheck(b *testing.B) {
	dir := b.TempDir()
	for _, tc := range []struct {
		name, path, src string
		kind            Kind
		opts            CheckOptions
	}{
		{"1000-parts", filepath.Join(dir, "instance.hcl"), bigProfile(), Instance, bigOpts},
		{"1000-converted", filepath.Join(dir, "software.hcl"), benchprofile.Converted(1000), Software, cookbookOpts},
	} {
		writeFile(b, tc.path, tc.src)
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			var cpu int64
			for b.Loop() {
				b.StopTimer()
				p, diags := Load(tc.path, tc.kind)
				if diags.HasErrors() {
					b.Fatal(diags)
				}
				c := cpuTime()
				b.StartTimer()
				if diags := p.Check(tc.opts); diags.HasErrors() {
					b.Fatal(diags)
				}
				cpu += cpuTime() - c
			}
			b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}

// bigOpts describes the recipe of bigProfile's parts: each option's type
// is checked.
var bigOpts = CheckOptions{
	Recipe: func(mod, name string) (*OptionSpec, bool) {
		return &OptionSpec{Known: map[string][]string{"etc": {"string"}, "list": {"array"}, "obj": {"object"}}}, true
	},
	Names: func(mod string, promise bool) ([]string, bool) { return []string{"mkdirectory"}, !promise },
}

// cookbookOpts describes the two cookbook recipes of benchprofile.Converted
// with the options the cookbook declares, closed as the cookbook's are.
var cookbookOpts = CheckOptions{
	Recipe: func(mod, name string) (*OptionSpec, bool) {
		switch mod + ":" + name {
		case "cookbook:mkdirectory":
			return &OptionSpec{Known: map[string][]string{"path": {"string"}, "mode": {"string", "integer"}, "parents": {"boolean"}}}, true
		case "cookbook:template":
			return &OptionSpec{Known: map[string][]string{"output": {"string"}, "inline": {"string"}, "url": {"string"}, "mode": {"string", "integer"}, "context": {"object"}}}, true
		}
		return nil, false
	},
	Names: func(mod string, promise bool) ([]string, bool) {
		if mod != "cookbook" || promise {
			return nil, false
		}
		return []string{"mkdirectory", "template"}, true
	},
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

// BenchmarkEval: what the engine asks of the evaluator in a first apply of
// the converted 1000-part profile (issue 21), without the recipes: every
// part's options evaluated in graph order (EvalBlock, then its recipe),
// each part's value set from its options and an output, as the engine
// publishes them. The profile is loaded and its graph built once.
func BenchmarkEval(b *testing.B) {
	path := filepath.Join(b.TempDir(), "software.hcl")
	writeFile(b, path, benchprofile.Converted(1000))
	p, diags := Load(path, Software)
	if diags.HasErrors() {
		b.Fatal(diags)
	}
	g, diags := p.Graph(nil)
	if diags.HasErrors() {
		b.Fatal(diags)
	}
	vars := map[string]cty.Value{
		"software": cty.ObjectVal(map[string]cty.Value{
			"path": cty.StringVal("/srv/slapnode/soft/0123"), "url": cty.StringVal("file:///x/software.hcl"), "name": cty.StringVal("bench"),
		}),
		"profile": cty.ObjectVal(map[string]cty.Value{"dir": cty.StringVal("/x")}),
		"node":    cty.ObjectVal(map[string]cty.Value{"id": cty.StringVal("n"), "root": cty.StringVal("/srv/slapnode")}),
	}
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		ev := p.Evaluator(vars)
		for _, n := range g.Order {
			if n.Kind != "part" {
				b.Fatalf("unexpected %s", n.ID())
			}
			opts, diags := ev.EvalBlock(n.Block, "recipe", "depends_on")
			if diags.HasErrors() {
				b.Fatal(diags)
			}
			if r := n.Block.Attrs["recipe"]; r != nil {
				if _, diags := ev.EvalAttr(r); diags.HasErrors() {
					b.Fatal(diags)
				}
				opts["created"] = cty.StringVal("yes")
			}
			ev.SetPart(n.Name, cty.ObjectVal(opts))
		}
	}
	b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
}
