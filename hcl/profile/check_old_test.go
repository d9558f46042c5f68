package profile

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// The Check of commit 1e2e54a, before it kept its answers (checker): the
// reference of the differential tests (DiffCheck).

func (p *Profile) oldCheck(o CheckOptions) hcl.Diagnostics {
	var diags hcl.Diagnostics
	var extra []*Block
	for _, typ := range []string{"service", "schedule", "promise", "publish", "publish_shared"} {
		extra = append(extra, p.BlocksOf(typ)...)
	}
	if _, d := p.Graph(extra); d.HasErrors() {
		diags = append(diags, d...)
	}
	reads := p.HelperReads()
	for _, b := range p.Blocks {
		switch b.Type {
		case "part":
			diags = append(diags, p.oldCheckPart(b, o, reads)...)
		case "promise":
			diags = append(diags, p.oldCheckPromise(b, o)...)
		}
		for name, k := range attrKinds[b.Type] {
			if a := b.Attrs[name]; a != nil {
				if msg := k.check(p.oldStaticValue(a)); msg != "" {
					diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: fmt.Sprintf("Invalid value for %s", name),
						Detail: fmt.Sprintf("%s %s: %s", blockTitle(b), name, msg), Subject: a.Expr.Range().Ptr()})
				}
			}
		}
	}
	sortDiags(diags)
	return diags
}

func (p *Profile) oldCheckPart(b *Block, o CheckOptions, reads map[string]map[string]bool) hcl.Diagnostics {
	recipe := literalString(b.Attrs["recipe"])
	mod, name, ok := strings.Cut(recipe, ":")
	if !ok || o.Recipe == nil {
		return nil
	}
	if d := oldUnknownEntry(b.Attrs["recipe"], o, mod, name, false); d != nil {
		return hcl.Diagnostics{d}
	}
	spec, known := o.Recipe(mod, name)
	if !known || spec == nil {
		return nil
	}
	var diags hcl.Diagnostics
	for _, an := range b.AttrNames() {
		a := b.Attrs[an]
		if contains(partReserved, an) || a.Helper {
			continue
		}
		types, named := spec.Known[an]
		if !named {
			if spec.Open || b.Buildout || reads[b.Name()]["*"] || reads[b.Name()][an] {
				continue
			}
			diags = append(diags, unknownOption(a, "recipe "+recipe, an, spec, nil,
				fmt.Sprintf(" A value for other parts to read belongs in the part's extra = { %s = … }.", an)))
			continue
		}
		if msg := jsonTypeMismatch(p.oldStaticValue(a), types); msg != "" {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid option type",
				Detail: fmt.Sprintf("Option %s of %s: %s", an, recipe, msg), Subject: a.Expr.Range().Ptr()})
		}
	}
	return diags
}

func (p *Profile) oldCheckPromise(b *Block, o CheckOptions) hcl.Diagnostics {
	check := literalString(b.Attrs["check"])
	mod, name, ok := strings.Cut(check, ":")
	if !ok || o.Check == nil {
		return nil
	}
	if d := oldUnknownEntry(b.Attrs["check"], o, mod, name, true); d != nil {
		return hcl.Diagnostics{d}
	}
	spec, known := o.Check(mod, name)
	if !known || spec == nil {
		return nil
	}
	var diags hcl.Diagnostics
	for _, an := range b.AttrNames() {
		if contains(promiseSettings, an) {
			continue
		}
		a := b.Attrs[an]
		types, named := spec.Known[an]
		if !named {
			if !spec.Open {
				diags = append(diags, unknownOption(a, "check "+check, an, spec, promiseSettings, ""))
			}
			continue
		}
		if msg := jsonTypeMismatch(p.oldStaticValue(a), types); msg != "" {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid option type",
				Detail: fmt.Sprintf("Option %s of %s: %s", an, check, msg), Subject: a.Expr.Range().Ptr()})
		}
	}
	return diags
}

// unknownEntry reports a recipe or check its module does not have.
func oldUnknownEntry(a *Attr, o CheckOptions, mod, name string, promise bool) *hcl.Diagnostic {
	if o.Names == nil {
		return nil
	}
	names, ok := o.Names(mod, promise)
	if !ok || contains(names, name) {
		return nil
	}
	what := "recipe"
	if promise {
		what = "promise check"
	}
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unknown " + what,
		Detail:  fmt.Sprintf("Module %q has no %s %q.%s It has: %s.", mod, what, name, suggest(name, names), strings.Join(names, ", ")),
		Subject: a.Expr.Range().Ptr()}
}

func (p *Profile) oldStaticValue(a *Attr) cty.Value {
	vars := map[string]cty.Value{}
	for _, t := range a.Expr.Variables() {
		vars[t.RootName()] = cty.DynamicVal
	}
	ctx := &hcl.EvalContext{Variables: vars, Functions: p.fileFuncs(filepath.Dir(a.Range.Filename), stdFuncs)}
	v, d := a.Expr.Value(ctx)
	if d.HasErrors() {
		return cty.DynamicVal
	}
	return v
}
