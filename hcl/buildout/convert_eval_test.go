package buildout

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/slapnode/slapnode/hcl/profile"
)

// writeRelease writes the converted files of rel under dir, in their layout,
// and returns the path of root's HCL there.
func writeRelease(t testing.TB, rel *Release, dir, root string) string {
	t.Helper()
	out := ""
	for _, res := range rel.Results {
		if res.HCL == nil {
			continue
		}
		abs, err := filepath.Abs(res.Output)
		if err != nil {
			t.Fatal(err)
		}
		r, err := filepath.Rel(rel.Dir, abs)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, r)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, res.HCL, 0o644); err != nil {
			t.Fatal(err)
		}
		if res.Path == root {
			out = p
		}
	}
	return out
}

// The per-file conversion of a release (every file of the closure to its
// own HCL, loaded by slapnode's profile loader with its extends) evaluates
// to what zc.buildout resolves: every option of every section buildout
// initialises without a recipe, evaluated by the profile evaluator option
// by option (as buildout substitutes), equals the resolver's value (itself
// checked against zc.buildout by TestGoldens). This covers +=/-= with and
// without an earlier value, <= macros, ${:_profile_base_location_},
// ${:_buildout_section_name_}, engine keys and parts that read each other.
func TestConvertedEvaluatesLikeBuildout(t *testing.T) {
	corpus := corpusDir(t)
	compared, files := 0, 0
	for _, r := range readManifest(t, corpus) {
		if !isBuildoutClass(r.Class) || (r.Closure != "complete" && r.Closure != "none") {
			continue
		}
		n, ok := evaluatesLikeBuildout(t, filepath.Join(corpus, r.Path))
		compared += n
		if ok {
			files++
		}
	}
	t.Logf("%d releases loaded, %d options evaluated like buildout", files, compared)
	if compared < 3000 {
		t.Errorf("only %d options compared", compared)
	}
}

// Every construct, on a closure written for it: += and -= with and
// without an earlier value (section new, section known without the option,
// section with a macro), several macros, macros of other files, parts +=
// and -=, computed parts, engine keys, $${…}, %(name)s, _profile_base_location_
// and _buildout_section_name_ in a macro of another directory.
func TestConvertedConstructsEvaluateLikeBuildout(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"stack/base.cfg": `[buildout]
parts = a
extensions = x
[a]
recipe = slapos.recipe.cmmi
flags = -O2
[known]
other = 1
[dl-base]
url = ${:_profile_base_location_}/${:_buildout_section_name_}
mode = 0644
[env-base]
environment =
  PATH=/bin:%(PATH)s
`,
		"software/x/software.cfg": `[buildout]
extends = ../../stack/base.cfg
parts += b
  c
parts -= a
[a]
flags += -g
flags -= -O2
[known]
extra += added
gone -= nothing
[fresh]
patches +=
  ${:_profile_base_location_}/p1.patch
  p2
removed -= x
[b]
<= dl-base
  env-base
recipe = slapos.recipe.build:download
environment +=
  CC=gcc
dir = ${buildout:directory}/${buildout:parts-directory}
off = ${buildout:offline}
escaped = $${section:option} $$HOME
[c]
<= b
url = ${b:url}.${:_buildout_section_name_}
`,
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if n, ok := evaluatesLikeBuildout(t, filepath.Join(dir, "software/x/software.cfg")); !ok || n < 20 {
		t.Fatalf("%d options compared", n)
	}
}

// evaluatesLikeBuildout converts file as a release, loads it and compares
// every option of every section zc.buildout initialises without a recipe
// with the resolver's value. It returns the options compared, and whether
// the converted release loaded.
func evaluatesLikeBuildout(t *testing.T, file string) (int, bool) {
	t.Helper()
	compared := 0
	cfg, err := Load(file, LoadOptions{Directory: "/srv/buildout"})
	if errors.Is(err, ErrNotCached) {
		return 0, false
	}
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	resolved := cfg.Resolve()
	rel, err := ConvertRelease([]string{file}, ConvertOptions{Kind: "software", NoAdapt: true})
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	for f, err := range rel.Errors {
		t.Fatalf("%s: %s: %v", file, f, err)
	}
	dir := t.TempDir()
	root := writeRelease(t, rel, dir, filepath.Clean(file))
	p, diags := profile.Load(root, profile.Software)
	if u := unexpected(diags); len(u) > 0 {
		t.Errorf("%s: %v", file, u)
		return 0, false
	}
	if diags.HasErrors() {
		return 0, false
	}
	if _, diags := p.Graph(nil); diags.HasErrors() && resolvedParts(cfg, resolved) {
		t.Errorf("%s: graph: %s", file, diagText(diags))
	}
	e := p.Evaluator(map[string]cty.Value{
		"software": cty.ObjectVal(map[string]cty.Value{"path": cty.StringVal("/srv/buildout")}),
		"profile":  cty.ObjectVal(map[string]cty.Value{"dir": cty.StringVal(filepath.Dir(root))}),
	})
	for _, b := range p.Parts {
		name, err := UnmangleName(b.Name())
		if err != nil {
			t.Errorf("%s: %v", file, err)
			continue
		}
		rs := resolved[name]
		if rs == nil || rs.Err != nil {
			continue
		}
		// The node's mark stands for the recipe (instance.go).
		vals, diags := e.EvalBlock(b, "recipe", "depends_on", NodeRecipeAttr)
		if diags.HasErrors() {
			t.Errorf("%s: part %s: %s", file, name, diagText(diags))
			continue
		}
		for an, v := range vals {
			opt, _ := UnmangleName(strings.TrimSuffix(an, "_option"))
			want, ok := rs.Options[opt]
			if !ok {
				// zc.buildout 2.13 keeps `x +=` of a section new in its
				// file as the option "x +" (and `x -=` as "x -"); SlapOS's
				// buildout (3.x) and slapnode make it the assignment of x.
				if v, kept := rs.Options[opt+" +"]; kept {
					want, ok = v, true
				} else if _, kept := rs.Options[opt+" -"]; kept {
					want, ok = "", true
				}
			}
			if !ok {
				t.Errorf("%s: part %s: attribute %s is not a resolved option", file, name, an)
				continue
			}
			got := ""
			if v.Type() == cty.String && v.IsKnown() && !v.IsNull() {
				got = strings.ReplaceAll(v.AsString(), dir, rel.Dir)
			}
			if got != want {
				t.Errorf("%s: part %s.%s = %#v, buildout resolves %q", file, name, an, v, want)
			}
			compared++
		}
		for _, k := range sortedKeys(rs.Options) {
			switch {
			case k == "recipe" || k == ProfileBaseOption || k == "<part-dependencies>" ||
				strings.HasSuffix(k, "+") || strings.HasSuffix(k, "-"):
				continue
			case name == "buildout" && (k == "parts" || k == "extends"):
				continue // top-level attributes
			}
			if v := cfg.Sections[name][k]; v != nil && (v.Source == "DEFAULT_VALUE" || v.Source == "COMPUTED_VALUE") {
				continue // buildout's own: engine values, the host's Python, default pins
			}
			if _, ok := vals[MangleName(k)]; !ok {
				if _, ok := vals[MangleName(k)+"_option"]; !ok {
					t.Errorf("%s: part %s: option %s missing", file, name, k)
				}
			}
		}
	}
	if want, ok := resolved["buildout"]; ok && want.Err == nil && p.PartsAttr != nil {
		g, diags := p.Graph(nil)
		if !diags.HasErrors() {
			var got []string
			for _, n := range g.Order {
				if n.Kind == "part" && (p.Selected == nil || containsString(p.Selected, n.Name)) {
					got = append(got, n.Name)
				}
			}
			var names []string
			for _, s := range strings.Fields(want.Options["parts"]) {
				names = append(names, MangleName(s))
			}
			sort.Strings(got)
			sort.Strings(names)
			if strings.Join(got, " ") != strings.Join(names, " ") {
				t.Errorf("%s: parts %v, buildout's %v", file, got, names)
			}
		}
	}
	return compared, true
}

// resolvedParts reports whether every part buildout installs resolves (else
// buildout fails too, and so may the graph).
func resolvedParts(cfg *Config, resolved map[string]*ResolvedSection) bool {
	b := resolved["buildout"]
	if b == nil || b.Err != nil {
		return false
	}
	for _, s := range strings.Fields(b.Options["parts"]) {
		if r := resolved[s]; r == nil || r.Err != nil {
			return false
		}
	}
	return true
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func diagText(diags hcl.Diagnostics) string {
	var lines []string
	for _, d := range diags {
		lines = append(lines, d.Error())
	}
	sort.Strings(lines)
	return strings.Join(lines, "; ")
}
