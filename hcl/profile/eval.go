package profile

import (
	"fmt"
	"path/filepath"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
)

// Evaluator evaluates a profile's expressions once the values they refer to
// are known. The engine sets each part's value (its options and outputs) as
// it goes, in graph order.
type Evaluator struct {
	p        *Profile
	vars     map[string]cty.Value
	parts    map[string]cty.Value
	locals   map[string]cty.Value
	requests map[string]cty.Value
	ctxs     map[string]*hcl.EvalContext
}

// Evaluator returns an evaluator with the given context variables
// (partition, software, parameter, node, profile, software_type …).
func (p *Profile) Evaluator(vars map[string]cty.Value) *Evaluator {
	return &Evaluator{p: p, vars: vars, parts: map[string]cty.Value{}, locals: map[string]cty.Value{}, requests: map[string]cty.Value{}, ctxs: map[string]*hcl.EvalContext{}}
}

// SetPart records a part's value: an object of its options and outputs.
func (e *Evaluator) SetPart(name string, v cty.Value) { e.parts[name] = v }

// Part returns a part's value, if set.
func (e *Evaluator) Part(name string) (cty.Value, bool) { v, ok := e.parts[name]; return v, ok }

// SetRequest records what a request returned (its connection parameters).
func (e *Evaluator) SetRequest(name string, v cty.Value) { e.requests[name] = v }

// SetLocal records a local value.
func (e *Evaluator) SetLocal(name string, v cty.Value) { e.locals[name] = v }

// fileCtx returns the evaluation context for expressions written in file:
// its file functions resolve paths against that file's directory.
func (e *Evaluator) fileCtx(file string) *hcl.EvalContext {
	if c, ok := e.ctxs[file]; ok {
		return c
	}
	c := &hcl.EvalContext{Functions: e.p.fileFuncs(filepath.Dir(file), stdFuncs)}
	e.ctxs[file] = c
	return c
}

// Functions returns the functions available to expressions written in file.
func (e *Evaluator) Functions(file string) map[string]function.Function {
	return e.fileCtx(file).Functions
}

// EvalAttr evaluates one attribute outside any block context (locals,
// top-level values): `self` is not available there.
func (e *Evaluator) EvalAttr(a *Attr) (cty.Value, hcl.Diagnostics) {
	return e.evalAttr(a, nil)
}

// blockEval is the evaluation of one block: `self.NAME` reads the block's
// own attribute NAME (buildout's ${:NAME}), evaluated once, cycles refused.
// For a part that copies a macro, self is the part, not the macro.
type blockEval struct {
	b       *Block
	vals    map[string]cty.Value
	running map[string]bool
}

func (e *Evaluator) evalIn(be *blockEval, name string) (cty.Value, hcl.Diagnostics) {
	if v, ok := be.vals[name]; ok {
		return v, nil
	}
	be.running[name] = true
	v, diags := e.evalAttr(be.b.Attrs[name], be)
	delete(be.running, name)
	be.vals[name] = v
	return v, diags
}

// evalAttr evaluates a within block evaluation be (nil outside a block).
// Only the parts and locals the expression names are put in its context,
// which keeps large profiles linear.
func (e *Evaluator) evalAttr(a *Attr, be *blockEval) (cty.Value, hcl.Diagnostics) {
	vars := make(map[string]cty.Value, len(e.vars)+4)
	for k, v := range e.vars {
		vars[k] = v
	}
	parts, locals, base, self, requests := map[string]cty.Value{}, map[string]cty.Value{}, map[string]cty.Value{}, map[string]cty.Value{}, map[string]cty.Value{}
	var diags hcl.Diagnostics
	for _, t := range a.Expr.Variables() {
		if len(t) < 2 {
			continue
		}
		name, ok := traverserName(t[1])
		if !ok {
			continue
		}
		switch t.RootName() {
		case "part":
			if v, ok := e.parts[name]; ok {
				parts[name] = v
			}
		case "local":
			if v, ok := e.locals[name]; ok {
				locals[name] = v
			}
		case "request":
			if v, ok := e.requests[name]; ok {
				requests[name] = v
			}
		case "self":
			switch {
			case be == nil:
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "self outside a block",
					Detail: "self.NAME reads another attribute of the same block; it has no meaning here.", Subject: t.SourceRange().Ptr()})
			case be.b.Attrs[name] == nil:
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unknown attribute",
					Detail: fmt.Sprintf("This %s block has no attribute %q for self.%s to read.", be.b.Type, name, name), Subject: t.SourceRange().Ptr()})
			case be.running[name]:
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Reference cycle",
					Detail: fmt.Sprintf("self.%s refers back to itself through the block's own attributes.", name), Subject: t.SourceRange().Ptr()})
			default:
				v, d := e.evalIn(be, name)
				diags = append(diags, d...)
				self[name] = v
				continue
			}
			self[name] = cty.DynamicVal
		case "base":
			if b := a.Base[name]; b != nil {
				v, d := e.evalAttr(b, be)
				diags = append(diags, d...)
				base[name] = v
			} else {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: "Nothing to extend",
					Detail:  "base." + name + " refers to the value " + name + " had in a profile this one extends, but no earlier definition of this block sets " + name + ".",
					Subject: t.SourceRange().Ptr(),
				})
				base[name] = cty.NullVal(cty.DynamicPseudoType)
			}
		}
	}
	vars["part"] = cty.ObjectVal(parts)
	vars["local"] = cty.ObjectVal(locals)
	if len(requests) > 0 {
		vars["request"] = cty.ObjectVal(requests)
	}
	if len(base) > 0 {
		vars["base"] = cty.ObjectVal(base)
	}
	if len(self) > 0 {
		vars["self"] = cty.ObjectVal(self)
	}
	ctx := e.fileCtx(a.Range.Filename).NewChild()
	ctx.Variables = vars
	v, d := a.Expr.Value(ctx)
	diags = append(diags, d...)
	return v, diags
}

// EvalBlock evaluates every attribute of b except those named in skip.
func (e *Evaluator) EvalBlock(b *Block, skip ...string) (map[string]cty.Value, hcl.Diagnostics) {
	out := make(map[string]cty.Value, len(b.Attrs))
	var diags hcl.Diagnostics
	be := &blockEval{b: b, vals: map[string]cty.Value{}, running: map[string]bool{}}
	for _, n := range b.AttrNames() {
		if contains(skip, n) {
			continue
		}
		v, d := e.evalIn(be, n)
		diags = append(diags, d...)
		out[n] = v
	}
	return out, diags
}
