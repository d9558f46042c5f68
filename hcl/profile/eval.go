package profile

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
)

// Evaluator evaluates a profile's expressions once the values they refer to
// are known. The engine sets each part's value (its options and outputs) as
// it goes, in graph order.
//
// An option of a part whose value is not set yet is evaluated on demand from
// the part's attributes, as buildout substitutes option by option: parts
// that read each other's options are accepted, and only an option that
// depends on itself is a cycle.
type Evaluator struct {
	p        *Profile
	vars     map[string]cty.Value
	parts    map[string]cty.Value
	locals   map[string]cty.Value
	requests map[string]cty.Value
	ctxs     map[string]*hcl.EvalContext
	// lazy holds the options read so far from parts whose value is not
	// set (or lacks the option, as `recipe`).
	lazy map[string]*blockEval
	// active are the attributes being evaluated: meeting one of them again
	// means an option depends on itself.
	active map[attrKey]bool
	// travs are the traversals of the graph built before the evaluator
	// (read-only, shared; nil when there was none).
	travs travMemo
}

type attrKey struct {
	b    *Block
	name string
}

// Evaluator returns an evaluator with the given context variables
// (partition, software, parameter, node, profile, software_type …).
func (p *Profile) Evaluator(vars map[string]cty.Value) *Evaluator {
	var travs travMemo
	p.graphMu.Lock()
	if p.graph != nil && p.graph.g != nil {
		travs = p.graph.g.travs
	}
	p.graphMu.Unlock()
	return p.newEvaluator(vars, travs)
}

func (p *Profile) newEvaluator(vars map[string]cty.Value, travs travMemo) *Evaluator {
	return &Evaluator{p: p, vars: vars, parts: map[string]cty.Value{}, locals: map[string]cty.Value{},
		requests: map[string]cty.Value{}, ctxs: map[string]*hcl.EvalContext{},
		lazy: map[string]*blockEval{}, active: map[attrKey]bool{}, travs: travs}
}

// traversals are the variables an attribute's expression reads.
func (e *Evaluator) traversals(a *Attr) []hcl.Traversal {
	if t, ok := e.travs[a]; ok {
		return t
	}
	return a.Variables()
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
// its file functions resolve paths against that file's directory. It holds
// the context variables too; each attribute's own (part, local, self…) are
// in a child context, where they hide any of the same name as a copy of
// the variables with them replaced did.
func (e *Evaluator) fileCtx(file string) *hcl.EvalContext {
	if c, ok := e.ctxs[file]; ok {
		return c
	}
	c := &hcl.EvalContext{Functions: e.p.fileFuncs(filepath.Dir(file), stdFuncs), Variables: e.vars}
	e.ctxs[file] = c
	return c
}

// Functions returns the functions available to expressions written in file.
func (e *Evaluator) Functions(file string) map[string]function.Function {
	return e.fileCtx(file).Functions
}

// EvalAttr evaluates one attribute outside any block context (locals,
// top-level values): `self` and `block` are not available there.
func (e *Evaluator) EvalAttr(a *Attr) (cty.Value, hcl.Diagnostics) {
	return e.evalAttr(a, nil)
}

// blockEval is the evaluation of one block: `self.NAME` reads the block's
// own attribute NAME (buildout's ${:NAME}), evaluated once, cycles refused.
// For a part that copies a macro, self is the part, not the macro.
type blockEval struct {
	b    *Block
	vals map[string]cty.Value
	// block is blockValue(b), once computed.
	block cty.Value
}

func (be *blockEval) done(name string) bool { _, ok := be.vals[name]; return ok }

func newBlockEval(b *Block) *blockEval {
	return &blockEval{b: b, vals: map[string]cty.Value{}}
}

func (e *Evaluator) evalIn(be *blockEval, name string) (cty.Value, hcl.Diagnostics) {
	if v, ok := be.vals[name]; ok {
		return v, nil
	}
	k := attrKey{be.b, name}
	e.active[k] = true
	v, diags := e.evalAttr(be.b.Attrs[name], be)
	delete(e.active, k)
	be.vals[name] = v
	return v, diags
}

// partNeed is what an expression reads of one part: the whole part, or
// attributes, each with the range of its first reference (ranges[i] is
// that of attrs[i]). An expression reads a few: slices, not maps.
type partNeed struct {
	name   string
	whole  bool
	attrs  []string
	ranges []hcl.Range
}

// evalAttr evaluates a within block evaluation be (nil outside a block).
// Only the parts and locals the expression names are put in its context,
// which keeps large profiles linear. Every variable is defined (empty when
// the expression reads none of it), so that a misspelt one is told the
// names it may have meant; the maps are made only when something goes in.
func (e *Evaluator) evalAttr(a *Attr, be *blockEval) (cty.Value, hcl.Diagnostics) {
	travs := e.traversals(a)
	if len(travs) == 0 {
		// A literal, or functions of literals: no variable to look up.
		return a.Expr.Value(e.fileCtx(a.Range.Filename))
	}
	var parts, locals, base, self, requests map[string]cty.Value
	put := func(m *map[string]cty.Value, k string, v cty.Value) {
		if *m == nil {
			*m = make(map[string]cty.Value, 2)
		}
		(*m)[k] = v
	}
	var needs []*partNeed
	var diags hcl.Diagnostics
	for _, t := range travs {
		if t.RootName() == "block" {
			if be == nil {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "block outside a block",
					Detail: "block.name and block.dir describe the block an attribute belongs to; they have no meaning here.", Subject: t.SourceRange().Ptr()})
			}
			continue
		}
		if len(t) < 2 {
			continue
		}
		name, ok := traverserName(t[1])
		if !ok {
			continue
		}
		switch t.RootName() {
		case "part":
			var n *partNeed
			for _, x := range needs {
				if x.name == name {
					n = x
					break
				}
			}
			if n == nil {
				n = &partNeed{name: name}
				needs = append(needs, n)
			}
			if len(t) >= 3 {
				if an, ok := traverserName(t[2]); ok {
					if !slices.Contains(n.attrs, an) {
						n.attrs = append(n.attrs, an)
						n.ranges = append(n.ranges, t.SourceRange())
					}
					continue
				}
			}
			n.whole = true
		case "local":
			if v, ok := e.locals[name]; ok {
				put(&locals, name, v)
			}
		case "request":
			if v, ok := e.requests[name]; ok {
				put(&requests, name, v)
			}
		case "self":
			switch {
			case be == nil:
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "self outside a block",
					Detail: "self.NAME reads another attribute of the same block; it has no meaning here.", Subject: t.SourceRange().Ptr()})
			case be.b.Attrs[name] == nil:
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unknown attribute",
					Detail: fmt.Sprintf("This %s block has no attribute %q for self.%s to read.", be.b.Type, name, name), Subject: t.SourceRange().Ptr()})
			case !be.done(name) && e.active[attrKey{be.b, name}]:
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Reference cycle",
					Detail: fmt.Sprintf("self.%s refers back to itself through the block's own attributes.", name), Subject: t.SourceRange().Ptr()})
			default:
				v, d := e.evalIn(be, name)
				diags = append(diags, d...)
				put(&self, name, v)
				continue
			}
			put(&self, name, cty.DynamicVal)
		case "base":
			if b := a.Base[name]; b != nil {
				v, d := e.evalAttr(b, be)
				diags = append(diags, d...)
				put(&base, name, v)
			} else {
				put(&base, name, implicitBase(a))
			}
		}
	}
	// Parts in name order: reading one may evaluate another's options,
	// whose errors come in this order.
	slices.SortFunc(needs, func(a, b *partNeed) int { return strings.Compare(a.name, b.name) })
	for _, n := range needs {
		v, d := e.partValue(n.name, n)
		diags = append(diags, d...)
		if v != cty.NilVal {
			put(&parts, n.name, v)
		}
	}
	vars := make(map[string]cty.Value, 6)
	vars["part"] = objectOrEmpty(parts)
	vars["local"] = objectOrEmpty(locals)
	if len(requests) > 0 {
		vars["request"] = cty.ObjectVal(requests)
	}
	if len(base) > 0 {
		vars["base"] = cty.ObjectVal(base)
	}
	if len(self) > 0 {
		vars["self"] = cty.ObjectVal(self)
	}
	if be != nil {
		if be.block == cty.NilVal {
			be.block = blockValue(be.b)
		}
		vars["block"] = be.block
	}
	ctx := e.fileCtx(a.Range.Filename).NewChild()
	ctx.Variables = vars
	v, d := a.Expr.Value(ctx)
	diags = append(diags, d...)
	return v, diags
}

// objectOrEmpty is cty.ObjectVal(m), the shared empty object for none.
func objectOrEmpty(m map[string]cty.Value) cty.Value {
	if len(m) == 0 {
		return cty.EmptyObjectVal
	}
	return cty.ObjectVal(m)
}

// implicitBase is base.NAME when no earlier definition sets NAME, as
// buildout's += and -= see it: an empty value when the block was defined
// before (or copies a macro) without the attribute; null when nothing
// defined the block before, so that appendlines(base.x, …) is a plain
// assignment; an empty list for the top-level parts.
func implicitBase(a *Attr) cty.Value {
	switch {
	case a.topParts:
		return cty.ListValEmpty(cty.String)
	case a.Base != nil:
		return cty.StringVal("")
	default:
		return cty.NullVal(cty.String)
	}
}

// blockValue is `block`: the name of the block (decoded as §1.7 says, so a
// converted [instance.cfg] is "instance.cfg") and the directory of the file
// of its last definition that reads block.dir, else of its macro's, else of
// its last definition (buildout's ${:_buildout_section_name_} and SlapOS's
// ${:_profile_base_location_}).
func blockValue(b *Block) cty.Value {
	name := b.Name()
	if d, err := DecodeName(name); err == nil {
		name = d
	}
	dir := b.dir
	if dir == "" {
		dir = filepath.Dir(b.DefRange.Filename)
	}
	return cty.ObjectVal(map[string]cty.Value{
		"name": cty.StringVal(name),
		"dir":  cty.StringVal(dir),
	})
}

// partValue is what an expression sees of part name: its value once set,
// else the options it reads, evaluated on demand.
func (e *Evaluator) partValue(name string, n *partNeed) (cty.Value, hcl.Diagnostics) {
	v, set := e.parts[name]
	b := e.p.Part[name]
	var diags hcl.Diagnostics
	if set {
		if b == nil || n.whole || !v.IsKnown() || v.IsNull() || !v.Type().IsObjectType() {
			return v, nil
		}
		// An installed part's value holds its options and outputs, but not
		// its recipe: read what it lacks from its attributes.
		var m map[string]cty.Value
		for i, an := range n.attrs {
			if v.Type().HasAttribute(an) || b.Attrs[an] == nil || an == "depends_on" {
				continue
			}
			if m == nil {
				m = v.AsValueMap()
				if m == nil {
					m = map[string]cty.Value{}
				}
			}
			av, d := e.lazyAttr(b, an, n.ranges[i])
			diags = append(diags, d...)
			m[an] = av
		}
		if m == nil {
			return v, nil
		}
		return cty.ObjectVal(m), diags
	}
	if b == nil {
		return cty.NilVal, nil // an unknown part: the graph reports it
	}
	m := map[string]cty.Value{}
	if n.whole {
		for _, an := range b.AttrNames() {
			if an == "recipe" || an == "depends_on" {
				continue
			}
			av, d := e.lazyAttr(b, an, b.Attrs[an].Range)
			diags = append(diags, d...)
			m[an] = av
		}
		return cty.ObjectVal(m), diags
	}
	for i, an := range n.attrs {
		if b.Attrs[an] == nil {
			rng := n.ranges[i]
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Value not known yet",
				Detail: fmt.Sprintf("%s is not an option of part %q. If its recipe sets it, part %q must be installed first, but it comes after the block evaluated here because the two refer to each other. Read one of its options instead, or remove one of the references.",
					"part."+name+"."+an, name, name),
				Subject: &rng})
			m[an] = cty.DynamicVal
			continue
		}
		av, d := e.lazyAttr(b, an, n.ranges[i])
		diags = append(diags, d...)
		m[an] = av
	}
	return cty.ObjectVal(m), diags
}

// lazyAttr evaluates one option of part b before its value is set.
func (e *Evaluator) lazyAttr(b *Block, name string, rng hcl.Range) (cty.Value, hcl.Diagnostics) {
	be := e.lazy[b.Name()]
	if be == nil {
		be = newBlockEval(b)
		e.lazy[b.Name()] = be
	}
	if v, ok := be.vals[name]; ok {
		return v, nil
	}
	if e.active[attrKey{b, name}] {
		return cty.DynamicVal, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Reference cycle",
			Detail:  fmt.Sprintf("part.%s.%s depends on itself through the options it reads.", b.Name(), name),
			Subject: &rng}}
	}
	return e.evalIn(be, name)
}

// EvalBlock evaluates every attribute of b except those named in skip.
func (e *Evaluator) EvalBlock(b *Block, skip ...string) (map[string]cty.Value, hcl.Diagnostics) {
	out := make(map[string]cty.Value, len(b.Attrs))
	var diags hcl.Diagnostics
	be := newBlockEval(b)
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
