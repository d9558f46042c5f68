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
		file := filepath.Join(corpus, r.Path)
		cfg, err := Load(file, LoadOptions{Directory: "/srv/buildout"})
		if errors.Is(err, ErrNotCached) {
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", r.Path, err)
		}
		resolved := cfg.Resolve()
		rel, err := ConvertRelease([]string{file}, ConvertOptions{Kind: "software", NoAdapt: true})
		if err != nil {
			t.Fatalf("%s: %v", r.Path, err)
		}
		for f, err := range rel.Errors {
			t.Fatalf("%s: %s: %v", r.Path, f, err)
		}
		dir := t.TempDir()
		root := writeRelease(t, rel, dir, filepath.Clean(file))
		p, diags := profile.Load(root, profile.Software)
		if u := unexpected(diags); len(u) > 0 {
			t.Errorf("%s: %v", r.Path, u)
			continue
		}
		if diags.HasErrors() {
			continue
		}
		files++
		e := p.Evaluator(map[string]cty.Value{
			"software": cty.ObjectVal(map[string]cty.Value{"path": cty.StringVal("/srv/buildout")}),
			"profile":  cty.ObjectVal(map[string]cty.Value{"dir": cty.StringVal(filepath.Dir(root))}),
		})
		for _, b := range p.Parts {
			name, err := UnmangleName(b.Name())
			if err != nil {
				t.Errorf("%s: %v", r.Path, err)
				continue
			}
			rs := resolved[name]
			if rs == nil || rs.Err != nil {
				continue
			}
			vals, diags := e.EvalBlock(b, "recipe", "depends_on")
			if diags.HasErrors() {
				t.Errorf("%s: part %s: %s", r.Path, name, diagText(diags))
				continue
			}
			for an, v := range vals {
				opt, _ := UnmangleName(strings.TrimSuffix(an, "_option"))
				want, ok := rs.Options[opt]
				if !ok {
					// zc.buildout 2.13 keeps `x +=` of a section new in
					// its file as the option "x +"; SlapOS's buildout (3.x)
					// and slapnode make it the assignment of x.
					if _, kept := rs.Options[opt+" +"]; kept {
						continue
					}
					t.Errorf("%s: part %s: attribute %s is not a resolved option", r.Path, name, an)
					continue
				}
				got := ""
				if v.Type() == cty.String && v.IsKnown() && !v.IsNull() {
					got = strings.ReplaceAll(v.AsString(), dir, rel.Dir)
				}
				if got != want {
					t.Errorf("%s: part %s.%s = %#v, buildout resolves %q", r.Path, name, an, v, want)
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
						t.Errorf("%s: part %s: option %s missing", r.Path, name, k)
					}
				}
			}
		}
	}
	t.Logf("%d releases loaded, %d options evaluated like buildout", files, compared)
	if compared < 3000 {
		t.Errorf("only %d options compared", compared)
	}
}

func diagText(diags hcl.Diagnostics) string {
	var lines []string
	for _, d := range diags {
		lines = append(lines, d.Error())
	}
	sort.Strings(lines)
	return strings.Join(lines, "; ")
}
