package buildout

import (
	"errors"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
)

// The flattened HCL evaluates to exactly what zc.buildout resolves: every
// attribute of every part, evaluated with part.X.Y bound to the resolved
// options, equals the resolved value. This checks references, escapes and
// heredocs of the converter against the resolver (itself checked against
// zc.buildout by TestGoldens).
func TestFlattenEvaluatesLikeBuildout(t *testing.T) {
	corpus := corpusDir(t)
	compared := 0
	for _, r := range readManifest(t, corpus) {
		if !isBuildoutClass(r.Class) || (r.Closure != "complete" && r.Closure != "none") {
			continue
		}
		file := filepath.Join(corpus, r.Path)
		lopts := LoadOptions{Directory: "/srv/buildout"}
		cfg, err := Load(file, lopts)
		if errors.Is(err, ErrNotCached) {
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", r.Path, err)
		}
		res, err := ConvertConfig(cfg, ConvertOptions{Kind: "software", NoAdapt: true})
		if err != nil {
			t.Fatalf("%s: %v", r.Path, err)
		}
		f, diags := hclsyntax.ParseConfig(res.HCL, r.Path, hcl.InitialPos)
		if diags.HasErrors() {
			t.Fatalf("%s: %v", r.Path, diags)
		}
		resolved := cfg.Resolve()
		parts := map[string]cty.Value{}
		for name, rs := range resolved {
			if rs.Err != nil {
				continue
			}
			attrs := map[string]cty.Value{}
			for k, v := range rs.Options {
				attrs[MangleName(k)] = cty.StringVal(v)
			}
			parts[MangleName(name)] = cty.ObjectVal(attrs)
		}
		ctx := &hcl.EvalContext{
			Variables: map[string]cty.Value{
				"part":     cty.ObjectVal(parts),
				"software": cty.ObjectVal(map[string]cty.Value{"path": cty.StringVal("/srv/buildout")}),
				"profile":  cty.ObjectVal(map[string]cty.Value{"dir": cty.StringVal(filepath.Dir(file))}),
			},
			Functions: map[string]function.Function{"chomp": chomp},
		}
		for _, b := range f.Body.(*hclsyntax.Body).Blocks {
			name, _ := UnmangleName(b.Labels[0])
			rs := resolved[name]
			if rs == nil || rs.Err != nil {
				continue
			}
			// self is the section's own resolved options (buildout ${:x}).
			bctx := ctx.NewChild()
			bctx.Variables = map[string]cty.Value{"self": parts[b.Labels[0]]}
			_, node := b.Body.Attributes[NodeRecipeAttr]
			for an, a := range b.Body.Attributes {
				// The node's mark stands for the recipe; the dependencies
				// it adds (publish's -extends, a switch's
				// slap-configuration) are the node's (instance.go).
				if an == "recipe" || an == NodeRecipeAttr || node && an == "depends_on" {
					continue
				}
				opt, _ := UnmangleName(an)
				want, ok := rs.Options[opt]
				if !ok {
					t.Errorf("%s: part %s: attribute %s is not a resolved option", r.Path, name, an)
					continue
				}
				v, diags := a.Expr.Value(bctx)
				if diags.HasErrors() {
					t.Errorf("%s: part %s.%s: %v", r.Path, name, an, diags)
					continue
				}
				// profile.dir + "/../x" names the same directory as buildout's
				// normalized path of the defining file.
				if v.Type() != cty.String || cleanDots(v.AsString()) != want {
					t.Errorf("%s: part %s.%s = %#v, buildout resolves %q", r.Path, name, an, v, want)
				}
				compared++
			}
		}
	}
	t.Logf("%d resolved options reproduced by the flattened HCL", compared)
	if compared < 1000 {
		t.Errorf("only %d options compared", compared)
	}
}

var dotdot = regexp.MustCompile(`[^/\s.][^/\s]*/\.\./`)

func cleanDots(s string) string {
	for {
		t := dotdot.ReplaceAllString(s, "")
		if t == s {
			return s
		}
		s = t
	}
}
