package jinja

import (
	"errors"
	"fmt"
	"html"
	"strings"
)

// Control structures beyond if/for/set: template inheritance
// ({% extends %}, {% block %}), {% call %}, {% filter %}, {% with %},
// {% autoescape %} and the loop controls {% break %} and {% continue %}
// (jinja2.ext.loopcontrols, always on, as jinja2.ext.do is).

type extendsNode struct {
	pos  int
	tmpl expr
}

type blockNode struct {
	pos    int
	name   string
	scoped bool
	body   []node
}

type callBlockNode struct {
	pos      int
	params   []string
	defaults map[string]expr
	call     callExpr
	body     []node
}

// filterBlockNode is {% filter f(x)|g %}…{% endfilter %}: chain is the
// filter expression applied to the rendered body, read from the variable
// filterBody.
type filterBlockNode struct {
	chain expr
	body  []node
}

const filterBody = "\x00filter-body"

type withNode struct {
	targets []target
	values  []expr
	body    []node
}

type autoescapeNode struct {
	value expr
	body  []node
}

type loopControl struct {
	pos  int
	kind string // break or continue
}

// errLoop carries {% break %} and {% continue %} up to their loop.
type errLoop struct{ kind string }

func (e errLoop) Error() string { return "{% " + e.kind + " %} outside of a loop" }

func (ps *parser) parseExtends(nt token) (node, error) {
	e, err := ps.parseExpr()
	if err != nil {
		return nil, err
	}
	return extendsNode{nt.pos, e}, ps.endTag()
}

func (ps *parser) parseBlock(nt token) (node, error) {
	name, err := ps.expectKind(tName)
	if err != nil {
		return nil, err
	}
	n := &blockNode{pos: nt.pos, name: name.val}
	for ps.isName("scoped") || ps.isName("required") {
		if ps.next().val == "scoped" {
			n.scoped = true
		}
	}
	if _, dup := ps.blocks[n.name]; dup {
		return nil, ps.src.errorf(nt.pos, "block %q defined twice", n.name)
	}
	ps.blocks[n.name] = n
	if err := ps.endTag(); err != nil {
		return nil, err
	}
	if n.body, _, err = ps.parseBody("endblock"); err != nil {
		return nil, err
	}
	return n, ps.endName(n.name)
}

func (ps *parser) parseCallBlock(nt token) (node, error) {
	n := callBlockNode{pos: nt.pos, defaults: map[string]expr{}}
	if ps.isOp("(") {
		var err error
		if n.params, n.defaults, err = ps.parseParams(); err != nil {
			return nil, err
		}
	}
	e, err := ps.parseExpr()
	if err != nil {
		return nil, err
	}
	c, ok := e.(callExpr)
	if !ok {
		return nil, ps.src.errorf(nt.pos, "{%% call %%} needs a macro call, such as {%% call m(x) %%}")
	}
	n.call = c
	if err := ps.endTag(); err != nil {
		return nil, err
	}
	if n.body, _, err = ps.parseBody("endcall"); err != nil {
		return nil, err
	}
	return n, ps.endTag()
}

func (ps *parser) parseFilterBlock(nt token) (node, error) {
	if ps.peek().kind != tName {
		return nil, ps.src.errorf(ps.peek().pos, "{%% filter %%} needs a filter name")
	}
	// Reuse the filter-chain parser: "{% filter a(x)|b %}" reads as
	// "<body>|a(x)|b".
	ps.p--
	ps.toks[ps.p] = token{tOp, "|", nt.pos}
	chain, err := ps.parseFilters(nameExpr{nt.pos, filterBody})
	if err != nil {
		return nil, err
	}
	if err := ps.endTag(); err != nil {
		return nil, err
	}
	n := filterBlockNode{chain: chain}
	if n.body, _, err = ps.parseBody("endfilter"); err != nil {
		return nil, err
	}
	return n, ps.endTag()
}

func (ps *parser) parseWith(nt token) (node, error) {
	n := withNode{}
	for ps.peek().kind != tBlockEnd {
		t, err := ps.parseTarget()
		if err != nil {
			return nil, err
		}
		if _, err := ps.expectOp("="); err != nil {
			return nil, err
		}
		v, err := ps.parseExpr()
		if err != nil {
			return nil, err
		}
		n.targets = append(n.targets, t)
		n.values = append(n.values, v)
		if !ps.isOp(",") {
			break
		}
		ps.next()
	}
	if err := ps.endTag(); err != nil {
		return nil, err
	}
	var err error
	if n.body, _, err = ps.parseBody("endwith"); err != nil {
		return nil, err
	}
	if n.body == nil {
		n.body = []node{}
	}
	return n, ps.endTag()
}

func (ps *parser) parseAutoescape(nt token) (node, error) {
	v, err := ps.parseExpr()
	if err != nil {
		return nil, err
	}
	if err := ps.endTag(); err != nil {
		return nil, err
	}
	n := autoescapeNode{value: v}
	if n.body, _, err = ps.parseBody("endautoescape"); err != nil {
		return nil, err
	}
	return n, ps.endTag()
}

// blockDef is one definition of a block in an inheritance chain.
type blockDef struct {
	tmpl *Template
	node *blockNode
}

// execRoot renders a template's top level, then the template it extends:
// as in Jinja2, once {% extends %} ran, the template's own top-level
// output is dropped (its {% set %}s still run) and the parent renders with
// the child's blocks in front of its own.
func (ev *evaluator) execRoot(b *strings.Builder, t *Template) error {
	for name, blk := range t.blocks {
		ev.blocks[name] = append(ev.blocks[name], blockDef{t, blk})
	}
	self := map[string]any{}
	for name := range ev.blocks {
		self[name] = ev.blockFunc(name, 0)
	}
	ev.root.vars["self"] = self
	out := b
	var discard strings.Builder
	for _, n := range t.body {
		if ev.parent != nil {
			switch n.(type) {
			case *blockNode, textNode, outputNode:
				// Rendered by the parent, or dropped.
				continue
			}
			discard.Reset()
			out = &discard
		}
		if err := ev.exec(out, []node{n}, ev.root); err != nil {
			return err
		}
	}
	if ev.parent == nil {
		return nil
	}
	p := ev.parent
	sub := &evaluator{src: p.src, root: ev.root, globals: ev.globals, load: ev.load, cache: ev.cache, depth: ev.depth + 1, blocks: ev.blocks, calls: ev.calls}
	if sub.depth > maxDepth {
		return fmt.Errorf("%s: more than %d levels of {%% extends %%}", p.src.name, maxDepth)
	}
	return sub.execRoot(b, p)
}

// blockFunc renders definition i of a block (0: the child-most one).
func (ev *evaluator) blockFunc(name string, i int) *Func {
	return &Func{Name: name, Call: func(args []any, kw map[string]any) (any, error) {
		var b strings.Builder
		if err := ev.renderBlock(&b, name, i, ev.root); err != nil {
			return nil, err
		}
		return b.String(), nil
	}}
}

func (ev *evaluator) renderBlock(b *strings.Builder, name string, i int, f *frame) error {
	chain := ev.blocks[name]
	if i >= len(chain) {
		return fmt.Errorf("block %q has no parent definition for super()", name)
	}
	def := chain[i]
	parent := ev.root
	if def.node.scoped {
		parent = f
	}
	scope := &frame{vars: map[string]any{}, parent: parent}
	if i+1 < len(chain) {
		scope.vars["super"] = ev.blockFunc(name, i+1)
	}
	leave, err := ev.enter("block " + name)
	if err != nil {
		return ev.errorf(def.node.pos, "%v", err)
	}
	defer leave()
	sub := &evaluator{src: def.tmpl.src, root: ev.root, globals: ev.globals, load: ev.load, cache: ev.cache, depth: ev.depth, blocks: ev.blocks, autoescape: ev.autoescape, calls: ev.calls}
	return sub.exec(b, def.node.body, scope)
}

func (ev *evaluator) execExtends(n extendsNode, f *frame) error {
	if ev.parent != nil {
		return ev.errorf(n.pos, "{%% extends %%} used twice in one template")
	}
	t, _, err := ev.template(importNode{pos: n.pos, kind: "extends", tmpl: n.tmpl}, f)
	if err != nil {
		return err
	}
	ev.parent = t
	return nil
}

func (ev *evaluator) execCallBlock(b *strings.Builder, n callBlockNode, f *frame) error {
	caller := &Func{Name: "caller", Call: func(args []any, kw map[string]any) (any, error) {
		leave, err := ev.enter("caller")
		if err != nil {
			return nil, ev.errorf(n.pos, "%v", err)
		}
		defer leave()
		inner := &frame{vars: map[string]any{}, parent: f}
		if err := ev.bindParams(inner, "caller", n.pos, n.params, n.defaults, args, kw, nil); err != nil {
			return nil, err
		}
		var cb strings.Builder
		if err := ev.exec(&cb, n.body, inner); err != nil {
			return nil, err
		}
		return cb.String(), nil
	}}
	fn, err := ev.eval(n.call.fn, f)
	if err != nil {
		return err
	}
	if err := ev.need(fn, exprPos(n.call.fn)); err != nil {
		return err
	}
	callable, ok := fn.(*Func)
	if !ok {
		return ev.errorf(n.call.pos, "{%% call %%}: %s is not callable", typeName(fn))
	}
	args, kw, err := ev.evalArgs(n.call.args, n.call.kwargs, f)
	if err != nil {
		return err
	}
	kw["caller"] = caller
	v, err := callable.Call(args, kw)
	if err != nil {
		var te *Error
		if errors.As(err, &te) {
			return err
		}
		return ev.errorf(n.call.pos, "%s(): %v", callable.Name, err)
	}
	ev.write(b, v)
	return nil
}

func (ev *evaluator) execFilterBlock(b *strings.Builder, n filterBlockNode, f *frame) error {
	var body strings.Builder
	if err := ev.exec(&body, n.body, f); err != nil {
		return err
	}
	inner := &frame{vars: map[string]any{filterBody: body.String()}, parent: f}
	v, err := ev.eval(n.chain, inner)
	if err != nil {
		return err
	}
	if err := ev.need(v, exprPos(n.chain)); err != nil {
		return err
	}
	ev.write(b, v)
	return nil
}

func (ev *evaluator) execWith(b *strings.Builder, n withNode, f *frame) error {
	inner := &frame{vars: map[string]any{}, parent: f}
	for i, t := range n.targets {
		v, err := ev.eval(n.values[i], f)
		if err != nil {
			return err
		}
		if err := ev.bind(inner, t, v, exprPos(n.values[i])); err != nil {
			return err
		}
	}
	return ev.exec(b, n.body, inner)
}

func (ev *evaluator) execAutoescape(b *strings.Builder, n autoescapeNode, f *frame) error {
	on, err := ev.truth(n.value, f)
	if err != nil {
		return err
	}
	saved := ev.autoescape
	ev.autoescape = on
	defer func() { ev.autoescape = saved }()
	return ev.exec(b, n.body, f)
}

// write prints a value, HTML-escaped inside {% autoescape true %}.
func (ev *evaluator) write(b *strings.Builder, v any) {
	if ev.autoescape {
		b.WriteString(html.EscapeString(str(v)))
		return
	}
	b.WriteString(str(v))
}

func isLoopSignal(err error) (errLoop, bool) {
	var l errLoop
	ok := errors.As(err, &l)
	return l, ok
}
