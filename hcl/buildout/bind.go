package buildout

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/slapnode/slapnode/hcl/profile"
)

// Binding a converted instance profile: the node gives the sections it
// computes (slapgrid's tail, slapconfiguration, the profile a
// switch-softwaretype picks) their values on the loaded profile, before
// it is applied. A converted instance profile is the same whether
// `slapnode convert` wrote it or the node converted it in memory; this is
// where both get the partition's values.

// NodeSections lists the sections of a loaded converted instance profile
// that the node acts on: the parts marked with NodeRecipeAttr, by section
// name. The mark must be a literal string.
func NodeSections(p *profile.Profile) ([]InstanceSection, error) {
	var out []InstanceSection
	for _, b := range p.BlocksOf("part") {
		a := b.Attrs[NodeRecipeAttr]
		if a == nil {
			continue
		}
		v, diags := a.Expr.Value(nil)
		if diags.HasErrors() || v.Type() != cty.String || v.IsNull() {
			return nil, fmt.Errorf("%s: %s must be a literal string naming the buildout recipe", a.Range, NodeRecipeAttr)
		}
		recipe := strings.TrimSpace(v.AsString())
		kind, variant := InstanceRecipe(recipe)
		if kind == "" {
			return nil, fmt.Errorf("%s: %s = %q: not a recipe the node computes (slapconfiguration, switch-softwaretype, publish)", a.Range, NodeRecipeAttr, recipe)
		}
		name, err := UnmangleName(b.Name())
		if err != nil {
			name = b.Name()
		}
		out = append(out, InstanceSection{Section: name, Part: b.Name(), Kind: kind, Variant: variant, Recipe: recipe})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Section < out[j].Section })
	return out, nil
}

// Unmark removes the NodeRecipeAttr marks of a loaded profile (once
// NodeSections has read them), so that the parts' values hold only their
// options, as the sections of buildout do.
func Unmark(p *profile.Profile) {
	for _, b := range p.BlocksOf("part") {
		delete(b.Attrs, NodeRecipeAttr)
	}
}

// Bind sets options of a part of a loaded profile to values the node
// computed (a recipe's values are literal: never substituted again, as in
// buildout). An option the part had is replaced in the parts that copied
// it through a macro too, as buildout's <= copies the section's options.
func Bind(p *profile.Profile, part string, values map[string]cty.Value) error {
	b := p.Part[part]
	if b == nil {
		return fmt.Errorf("no part %s to bind", part)
	}
	for _, k := range sortedKeys(values) {
		name := MangleName(k)
		old := b.Attrs[name]
		a := &profile.Attr{Name: name, Expr: hcl.StaticExpr(values[k], b.DefRange), Range: b.DefRange}
		b.Attrs[name] = a
		if old == nil {
			continue
		}
		for _, o := range p.BlocksOf("part") {
			if o != b && o.Attrs[name] == old {
				o.Attrs[name] = a
			}
		}
	}
	return nil
}

// BindReference gives a part an attribute that reads option option of
// section section (`part.SECTION.OPTION`), as buildout's ${section:option}.
func BindReference(p *profile.Profile, part, attr, section, option string) error {
	b := p.Part[part]
	if b == nil {
		return fmt.Errorf("no part %s to bind", part)
	}
	if p.Part[MangleName(section)] == nil {
		return fmt.Errorf("[%s] is not defined", section)
	}
	src := fmt.Sprintf("part.%s.%s", MangleName(section), MangleName(option))
	expr, diags := hclsyntax.ParseExpression([]byte(src), b.DefRange.Filename, b.DefRange.Start)
	if diags.HasErrors() {
		return fmt.Errorf("${%s:%s}: %s", section, option, diags.Error())
	}
	b.Attrs[attr] = &profile.Attr{Name: attr, Expr: expr, Range: b.DefRange}
	return nil
}

// Options evaluates the options of a part (but the node's mark) as
// buildout strings, by buildout name: what a recipe computing the
// section's values reads of it. ev evaluates them lazily, as buildout
// initialises a section.
func Options(p *profile.Profile, ev *profile.Evaluator, part string) (map[string]string, error) {
	b := p.Part[part]
	if b == nil {
		return nil, fmt.Errorf("no part %s", part)
	}
	vals, diags := ev.EvalBlock(b, "recipe", "depends_on", NodeRecipeAttr)
	if diags.HasErrors() {
		return nil, p.Err(diags)
	}
	out := make(map[string]string, len(vals))
	for k, v := range vals {
		name, err := UnmangleName(k)
		if err != nil {
			name = k
		}
		if !v.IsKnown() {
			return nil, fmt.Errorf("option %s is known only after apply", name)
		}
		if v.IsNull() {
			out[name] = ""
			continue
		}
		if v.Type() == cty.String {
			out[name] = v.AsString()
			continue
		}
		out[name] = strings.TrimSpace(fmt.Sprint(ctyText(v)))
	}
	return out, nil
}

// ctyText writes a non-string value as JSON (what buildout would hold is
// text; a computed value handed over is kept readable).
func ctyText(v cty.Value) string {
	b, err := ctyMarshal(v)
	if err != nil {
		return v.GoString()
	}
	return string(b)
}

func ctyMarshal(v cty.Value) ([]byte, error) {
	return ctyjson.SimpleJSONValue{Value: v}.MarshalJSON()
}
