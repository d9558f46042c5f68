package profile

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
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
	// spare is an attribute's context that no diagnostic refers to, for
	// the next attribute to reuse (takeCtx).
	spare *hcl.EvalContext
	// gen counts SetPart calls: a block's shared part object is made
	// again once a part value changed (blockEval.shared).
	gen int
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
func (e *Evaluator) SetPart(name string, v cty.Value) {
	e.parts[name] = v
	e.gen++
}

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
	// shared is the `part` object its attributes share, made once for the
	// block (sharedParts) while gen is the evaluator's: the parts the
	// block's attributes read whose values are set and seen as they are.
	// An attribute whose every reference to a part names one of them,
	// statically, reads only those through `part`: the larger object
	// gives it the values and diagnostics its own would.
	shared    map[string]cty.Value
	sharedObj cty.Value
	sharedGen int
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

// partRef is one reference of an expression to a part: to one of its
// attributes (attr, with the range of the reference), or to the whole
// part. An expression makes a few: they are collected in a slice that
// stays on the stack.
type partRef struct {
	name, attr string
	whole      bool
	rng        hcl.Range
}

// evalAttr evaluates a within block evaluation be (nil outside a block).
// Only the parts and locals the expression names are put in its context,
// which keeps large profiles linear. Every variable is defined (empty when
// the expression reads none of it), so that a misspelt one is told the
// names it may have meant; the maps are made only when something goes in.
func (e *Evaluator) evalAttr(a *Attr, be *blockEval) (cty.Value, hcl.Diagnostics) {
	travs := e.traversals(a)
	if len(travs) == 0 {
		if v, ok := stringLiteral(a.Expr); ok {
			return v, nil
		}
		// Functions of literals: no variable to look up.
		return a.Expr.Value(e.fileCtx(a.Range.Filename))
	}
	var locals, base, self, requests map[string]cty.Value
	put := func(m *map[string]cty.Value, k string, v cty.Value) {
		if *m == nil {
			*m = make(map[string]cty.Value, 2)
		}
		(*m)[k] = v
	}
	var refBuf [8]partRef
	refs := refBuf[:0]
	readsBlock := false
	// partDyn: the expression reads `part` otherwise than by a static
	// part name (part[x], for … in part, keys(part)).
	partDyn := false
	var diags hcl.Diagnostics
	for _, t := range travs {
		if t.RootName() == "block" {
			if be == nil {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "block outside a block",
					Detail: "block.name and block.dir describe the block an attribute belongs to; they have no meaning here.", Subject: t.SourceRange().Ptr()})
			}
			readsBlock = true
			continue
		}
		if len(t) < 2 {
			partDyn = partDyn || t.RootName() == "part"
			continue
		}
		name, ok := traverserName(t[1])
		if !ok {
			partDyn = partDyn || t.RootName() == "part"
			continue
		}
		switch t.RootName() {
		case "part":
			r := partRef{name: name, whole: true}
			if len(t) >= 3 {
				if an, ok := traverserName(t[2]); ok {
					r.attr, r.whole, r.rng = an, false, t.SourceRange()
				}
			}
			refs = append(refs, r)
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
	var partsObj cty.Value
	if be != nil && len(refs) > 0 && !partDyn {
		shared, obj := e.sharedParts(be)
		partsObj = obj
		for _, r := range refs {
			if _, ok := shared[r.name]; !ok {
				partsObj = cty.NilVal
				break
			}
		}
		if partsObj != cty.NilVal {
			refs = refs[:0]
		}
	}
	// Parts in name order: reading one may evaluate another's options,
	// whose errors come in this order. Within a part, its attributes in
	// the order of their first reference.
	slices.SortStableFunc(refs, func(a, b partRef) int { return strings.Compare(a.name, b.name) })
	var parts map[string]cty.Value
	for i := 0; i < len(refs); {
		j := i + 1
		for j < len(refs) && refs[j].name == refs[i].name {
			j++
		}
		v, d := e.partValue(refs[i].name, refs[i:j])
		diags = append(diags, d...)
		if v != cty.NilVal {
			put(&parts, refs[i].name, v)
		}
		i = j
	}
	ctx, vars := e.takeCtx(a.Range.Filename)
	if partsObj != cty.NilVal {
		vars["part"] = partsObj
	} else {
		vars["part"] = objectOrEmpty(parts)
	}
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
		// block is defined in every block, for the names a misspelt
		// variable is told; its value is made only when read.
		vars["block"] = cty.DynamicVal
		if readsBlock {
			if be.block == cty.NilVal {
				be.block = blockValue(be.b)
			}
			vars["block"] = be.block
		}
	}
	v, d := a.Expr.Value(ctx)
	if len(d) == 0 {
		// Nothing refers to the context any more (a diagnostic would):
		// the next attribute reuses it.
		e.spare = ctx
	}
	diags = append(diags, d...)
	return v, diags
}

// sharedParts returns the parts be's attributes read, by a static name,
// whose values are set and which partValue gives as they are (no option
// of theirs read from attributes), and the object of them: what `part`
// holds for an attribute that reads only those. Resolving them has no
// effect (no evaluation, no diagnostic), so when it happens does not
// matter.
func (e *Evaluator) sharedParts(be *blockEval) (map[string]cty.Value, cty.Value) {
	if be.shared != nil && be.sharedGen == e.gen {
		return be.shared, be.sharedObj
	}
	shared := map[string]cty.Value{}
	lacking := map[string]bool{}
	for _, a := range be.b.Attrs {
		for _, t := range e.traversals(a) {
			if t.RootName() != "part" || len(t) < 2 {
				continue
			}
			name, ok := traverserName(t[1])
			if !ok || lacking[name] {
				continue
			}
			v, set := e.parts[name]
			if !set {
				lacking[name] = true
				continue
			}
			if b := e.p.Part[name]; b != nil && len(t) >= 3 && v.IsKnown() && !v.IsNull() && v.Type().IsObjectType() {
				// What partValue reads from the part's attributes
				// instead: an option its value lacks.
				if an, ok := traverserName(t[2]); ok && !v.Type().HasAttribute(an) && b.Attrs[an] != nil && an != "depends_on" {
					lacking[name] = true
					delete(shared, name)
					continue
				}
			}
			shared[name] = v
		}
	}
	be.shared, be.sharedObj, be.sharedGen = shared, objectOrEmpty(shared), e.gen
	return be.shared, be.sharedObj
}

// stringLiteral is the value of a quoted string without interpolation
// ("cookbook:mkdirectory"), as TemplateExpr.Value makes it — the string
// again as cty.StringVal, known and not null — without rendering it
// through a buffer.
func stringLiteral(expr hcl.Expression) (cty.Value, bool) {
	t, ok := expr.(*hclsyntax.TemplateExpr)
	if !ok || !t.IsStringLiteral() {
		return cty.NilVal, false
	}
	v := t.Parts[0].(*hclsyntax.LiteralValueExpr).Val
	if v.Type() != cty.String || !v.IsKnown() || v.IsNull() || v.IsMarked() {
		return cty.NilVal, false
	}
	return cty.StringVal(v.AsString()), true
}

// takeCtx returns a child of file's context with empty variables, for one
// attribute's evaluation: the one the last evaluation left when it can be
// reused, else a new one. It is taken after the attribute's references
// were resolved, which may evaluate other attributes.
func (e *Evaluator) takeCtx(file string) (*hcl.EvalContext, map[string]cty.Value) {
	parent := e.fileCtx(file)
	if c := e.spare; c != nil {
		e.spare = nil
		clear(c.Variables)
		// Its parent cannot be set again (NewChild's field is
		// unexported): reused for the same file only.
		if c.Parent() == parent {
			return c, c.Variables
		}
	}
	c := parent.NewChild()
	c.Variables = make(map[string]cty.Value, 6)
	return c, c.Variables
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

// partValue is what an expression sees of part name, given its references
// to it (refs, in the order of the first reference to each attribute;
// one reference of the whole part is a reference to all): its value once
// set, else the options it reads, evaluated on demand.
func (e *Evaluator) partValue(name string, refs []partRef) (cty.Value, hcl.Diagnostics) {
	v, set := e.parts[name]
	b := e.p.Part[name]
	whole := false
	for _, r := range refs {
		whole = whole || r.whole
	}
	var diags hcl.Diagnostics
	if set {
		if b == nil || whole || !v.IsKnown() || v.IsNull() || !v.Type().IsObjectType() {
			return v, nil
		}
		// An installed part's value holds its options and outputs, but not
		// its recipe: read what it lacks from its attributes.
		var m map[string]cty.Value
		for i, r := range refs {
			an := r.attr
			if readBefore(refs, i) || v.Type().HasAttribute(an) || b.Attrs[an] == nil || an == "depends_on" {
				continue
			}
			if m == nil {
				m = v.AsValueMap()
				if m == nil {
					m = map[string]cty.Value{}
				}
			}
			av, d := e.lazyAttr(b, an, r.rng)
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
	if whole {
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
	for i, r := range refs {
		an := r.attr
		if readBefore(refs, i) {
			continue
		}
		if b.Attrs[an] == nil {
			rng := r.rng
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Value not known yet",
				Detail: fmt.Sprintf("%s is not an option of part %q. If its recipe sets it, part %q must be installed first, but it comes after the block evaluated here because the two refer to each other. Read one of its options instead, or remove one of the references.",
					"part."+name+"."+an, name, name),
				Subject: &rng})
			m[an] = cty.DynamicVal
			continue
		}
		av, d := e.lazyAttr(b, an, r.rng)
		diags = append(diags, d...)
		m[an] = av
	}
	return cty.ObjectVal(m), diags
}

// readBefore reports whether refs[i] reads an attribute an earlier
// reference read too (which was read then).
func readBefore(refs []partRef, i int) bool {
	for _, r := range refs[:i] {
		if !r.whole && r.attr == refs[i].attr {
			return true
		}
	}
	return false
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
