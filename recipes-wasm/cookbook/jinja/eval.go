package jinja

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// Template is a parsed template, safe to render many times.
type Template struct {
	src    *source
	body   []node
	blocks map[string]*blockNode
}

// Parse parses text; name is used in error messages (a file name).
func Parse(name, text string) (*Template, error) {
	src := newSource(name, text)
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	ps := &parser{src: src, toks: toks, blocks: map[string]*blockNode{}}
	body, _, err := ps.parseBody()
	if err != nil {
		return nil, err
	}
	return &Template{src: src, body: body, blocks: ps.blocks}, nil
}

// Render parses and renders text with vars.
func Render(name, text string, vars map[string]any) (string, error) {
	return RenderWith(name, text, vars, nil)
}

// RenderWith is Render with a loader for {% import %}, {% from %} and
// {% include %}.
func RenderWith(name, text string, vars map[string]any, load Loader) (string, error) {
	if plain(text) {
		// A text without a construct renders as itself, its final
		// newline kept: the lexer, parser and evaluator are skipped, most
		// of a call for the short literal files of converted profiles
		// (FuzzPlainText checks this against the full rendering).
		return text, nil
	}
	return renderFull(name, text, vars, load)
}

// plain reports whether text opens no construct: no "{{", "{%" or "{#"
// (the engine has no line statements).
func plain(text string) bool {
	return nextDelim(text, 0) < 0
}

// renderFull parses and renders text, whatever it holds.
func renderFull(name, text string, vars map[string]any, load Loader) (string, error) {
	t, err := Parse(name, text)
	if err != nil {
		return "", err
	}
	return t.ExecuteWith(vars, load)
}

// Loader returns the text of the template a template imports or includes
// by name (SlapOS's import-list); an error says why it is not available.
type Loader func(name string) (string, error)

// MaxOutput bounds a rendering's size so a runaway loop fails instead of
// exhausting the guest's memory.
const MaxOutput = 64 << 20

// maxDepth bounds nested imports and includes (a template importing itself).
const maxDepth = 32

// Execute renders the template with vars (plain Go values: maps, slices,
// strings, numbers, bools, nil).
func (t *Template) Execute(vars map[string]any) (string, error) {
	return t.ExecuteWith(vars, nil)
}

// ExecuteWith is Execute with a loader for imported and included templates.
func (t *Template) ExecuteWith(vars map[string]any, load Loader) (string, error) {
	globalFrame := &frame{vars: sharedGlobals()}
	root := &frame{vars: map[string]any{}, parent: globalFrame}
	for k, v := range vars {
		root.vars[k] = fromGo(v)
	}
	ev := &evaluator{src: t.src, root: root, load: load, globals: globalFrame, cache: map[string]*Template{}, blocks: map[string][]blockDef{}, calls: new(int)}
	var b strings.Builder
	if err := ev.execRoot(&b, t); err != nil {
		if l, ok := isLoopSignal(err); ok {
			return "", fmt.Errorf("%s: %v", t.src.name, l)
		}
		return "", err
	}
	return b.String(), nil
}

type frame struct {
	vars   map[string]any
	parent *frame
}

func (f *frame) lookup(name string) (any, bool) {
	for ; f != nil; f = f.parent {
		if v, ok := f.vars[name]; ok {
			return v, true
		}
	}
	return nil, false
}

type evaluator struct {
	src        *source
	root       *frame // the template's top-level scope (macros see it)
	globals    *frame // range, dict, namespace
	load       Loader
	cache      map[string]*Template // loaded templates, shared by nested evaluators
	depth      int
	blocks     map[string][]blockDef // {% block %} chains, child-most first
	parent     *Template             // the template {% extends %} named
	autoescape bool
	recursions int  // calls of loop(…) in recursive loops
	calls      *int // depth of macro, caller and block calls, shared by the rendering
}

// maxCalls bounds nested macro, caller and block calls: a macro calling
// itself fails instead of exhausting the stack.
const maxCalls = 256

// enter counts a nested call; the returned function leaves it.
func (ev *evaluator) enter(what string) (func(), error) {
	if *ev.calls >= maxCalls {
		return nil, fmt.Errorf("%s: more than %d nested calls (does it call itself?)", what, maxCalls)
	}
	*ev.calls++
	return func() { *ev.calls-- }, nil
}

// maxRecursions bounds the calls of loop(…) in one rendering.
const maxRecursions = 1 << 16

// errorf makes a positioned error; an error that already has a position
// is kept as is (it is more precise).
func (ev *evaluator) errorf(pos int, format string, args ...any) error {
	return ev.src.errorf(pos, format, args...)
}

func (ev *evaluator) wrap(pos int, err error) error {
	var te *Error
	if errors.As(err, &te) {
		return err
	}
	return ev.src.errorf(pos, "%v", err)
}

func (ev *evaluator) exec(b *strings.Builder, body []node, f *frame) error {
	for _, n := range body {
		if b.Len() > MaxOutput {
			return fmt.Errorf("%s: output exceeds %d bytes", ev.src.name, MaxOutput)
		}
		switch n := n.(type) {
		case textNode:
			b.WriteString(n.text)
		case outputNode:
			v, err := ev.eval(n.expr, f)
			if err != nil {
				return err
			}
			if u, ok := v.(undefined); ok {
				pos := exprPos(n.expr)
				if pos == 0 {
					pos = n.pos
				}
				return ev.errorf(pos, "%s", u.msg)
			}
			ev.write(b, v)
		case ifNode:
			done := false
			for i, c := range n.conds {
				ok, err := ev.truth(c, f)
				if err != nil {
					return err
				}
				if ok {
					if err := ev.exec(b, n.bodies[i], f); err != nil {
						return err
					}
					done = true
					break
				}
			}
			if !done && n.orelse != nil {
				if err := ev.exec(b, n.orelse, f); err != nil {
					return err
				}
			}
		case forNode:
			if err := ev.execFor(b, n, f); err != nil {
				return err
			}
		case setNode:
			if err := ev.execSet(n, f); err != nil {
				return err
			}
		case doNode:
			if _, err := ev.eval(n.expr, f); err != nil {
				return err
			}
		case macroNode:
			f.vars[n.name] = ev.macro(n)
		case importNode:
			if err := ev.execImport(b, n, f); err != nil {
				return err
			}
		case extendsNode:
			if err := ev.execExtends(n, f); err != nil {
				return err
			}
		case *blockNode:
			if err := ev.renderBlock(b, n.name, 0, f); err != nil {
				return err
			}
		case callBlockNode:
			if err := ev.execCallBlock(b, n, f); err != nil {
				return err
			}
		case filterBlockNode:
			if err := ev.execFilterBlock(b, n, f); err != nil {
				return err
			}
		case withNode:
			if err := ev.execWith(b, n, f); err != nil {
				return err
			}
		case autoescapeNode:
			if err := ev.execAutoescape(b, n, f); err != nil {
				return err
			}
		case loopControl:
			return errLoop{n.kind}
		}
	}
	return nil
}

func (ev *evaluator) truth(e expr, f *frame) (bool, error) {
	v, err := ev.eval(e, f)
	if err != nil {
		return false, err
	}
	t, ok := truth(v)
	if !ok {
		return false, ev.errorf(exprPos(e), "%s", v.(undefined).msg)
	}
	return t, nil
}

func (ev *evaluator) bind(f *frame, t target, v any, pos int) error {
	if t.sub == nil {
		f.vars[t.name] = v
		return nil
	}
	items, err := iterate(v)
	if err != nil {
		return ev.errorf(pos, "cannot unpack %s into %s: %v", typeName(v), t, err)
	}
	if len(items) != len(t.sub) {
		return ev.errorf(pos, "cannot unpack %d values into %d names %s", len(items), len(t.sub), t)
	}
	for i, s := range t.sub {
		if err := ev.bind(f, s, items[i], pos); err != nil {
			return err
		}
	}
	return nil
}

func (ev *evaluator) execFor(b *strings.Builder, n forNode, f *frame) error {
	seq, err := ev.eval(n.iter, f)
	if err != nil {
		return err
	}
	return ev.loop(b, n, f, seq, 1)
}

// loop renders a for loop over seq at a recursion depth (1 outside
// recursive calls of loop(...)).
func (ev *evaluator) loop(b *strings.Builder, n forNode, f *frame, seq any, depth int) error {
	if err := ev.need(seq, exprPos(n.iter)); err != nil {
		return err
	}
	items, err := iterate(seq)
	if err != nil {
		return ev.errorf(exprPos(n.iter), "for loop: %v", err)
	}
	if n.cond != nil {
		var kept []any
		for _, it := range items {
			inner := &frame{vars: map[string]any{}, parent: f}
			if err := ev.bind(inner, n.targets, it, n.pos); err != nil {
				return err
			}
			ok, err := ev.truth(n.cond, inner)
			if err != nil {
				return err
			}
			if ok {
				kept = append(kept, it)
			}
		}
		items = kept
	}
	if len(items) == 0 {
		if n.orelse != nil && depth == 1 {
			return ev.exec(b, n.orelse, f)
		}
		return nil
	}
	var last any
	hasLast := false
	for i, it := range items {
		// Each iteration gets its own scope: as in Jinja2, a {% set %} in a
		// loop body does not leak out of the loop.
		inner := &frame{vars: map[string]any{}, parent: f}
		attrs := map[string]any{
			"index": int64(i + 1), "index0": int64(i), "revindex": int64(len(items) - i),
			"revindex0": int64(len(items) - i - 1), "first": i == 0, "last": i == len(items)-1,
			"length": int64(len(items)), "depth": int64(depth), "depth0": int64(depth - 1),
		}
		if i > 0 {
			attrs["previtem"] = items[i-1]
		}
		if i < len(items)-1 {
			attrs["nextitem"] = items[i+1]
		}
		idx := i
		attrs["cycle"] = fn("loop.cycle", func(args []any, _ map[string]any) (any, error) {
			if len(args) == 0 {
				return nil, errors.New("no items for cycling given")
			}
			return args[idx%len(args)], nil
		})
		attrs["changed"] = fn("loop.changed", func(args []any, _ map[string]any) (any, error) {
			v := any(newList(args))
			if hasLast && equal(last, v) {
				return false, nil
			}
			last, hasLast = v, true
			return true, nil
		})
		lp := &Func{Name: "loop", Attrs: attrs, Call: func(args []any, _ map[string]any) (any, error) {
			if !n.recursive {
				return nil, errors.New("the loop is not recursive: write 'for … recursive' to call loop(…)")
			}
			if len(args) != 1 {
				return nil, errors.New("loop() takes the sequence to loop over")
			}
			if depth >= maxDepth*8 {
				return nil, fmt.Errorf("recursive loop deeper than %d", maxDepth*8)
			}
			// Each call may loop over several items: bound the total, or
			// loop([a, b]) at every level would run for 2^depth calls.
			if ev.recursions++; ev.recursions > maxRecursions {
				return nil, fmt.Errorf("recursive loop called more than %d times", maxRecursions)
			}
			var sub strings.Builder
			if err := ev.loop(&sub, n, f, args[0], depth+1); err != nil {
				return nil, err
			}
			return sub.String(), nil
		}}
		inner.vars["loop"] = lp
		if err := ev.bind(inner, n.targets, it, n.pos); err != nil {
			return err
		}
		if err := ev.exec(b, n.body, inner); err != nil {
			if l, ok := isLoopSignal(err); ok {
				if l.kind == "break" {
					break
				}
				continue
			}
			return err
		}
	}
	return nil
}

func (ev *evaluator) execSet(n setNode, f *frame) error {
	var v any
	if n.body != nil {
		var sb strings.Builder
		if err := ev.exec(&sb, n.body, f); err != nil {
			return err
		}
		v = sb.String()
	} else {
		var err error
		if v, err = ev.eval(n.value, f); err != nil {
			return err
		}
	}
	if n.attr != "" {
		ns, ok := f.lookup(n.targets.name)
		m, isMap := ns.(map[string]any)
		if !ok || !isMap {
			return ev.errorf(n.pos, "cannot set attribute %q of %s %s: only namespace() objects and dicts take attributes", n.attr, n.targets.name, typeName(ns))
		}
		m[n.attr] = v
		return nil
	}
	return ev.bind(f, n.targets, v, n.pos)
}

func (ev *evaluator) macro(n macroNode) *Func {
	return &Func{Name: n.name, Call: func(args []any, kwargs map[string]any) (any, error) {
		leave, err := ev.enter("macro " + n.name)
		if err != nil {
			return nil, ev.errorf(n.pos, "%v", err)
		}
		defer leave()
		// A macro sees the template's top-level names, not its caller's locals.
		inner := &frame{vars: map[string]any{}, parent: ev.root}
		if err := ev.bindParams(inner, "macro "+n.name, n.pos, n.params, n.defaults, args, kwargs, macroExtras); err != nil {
			return nil, err
		}
		var b strings.Builder
		if err := ev.exec(&b, n.body, inner); err != nil {
			return nil, err
		}
		return b.String(), nil
	}}
}

// macroExtras are the names a macro gets besides its parameters: the
// extra positional and keyword arguments, and the body of a {% call %}.
var macroExtras = []string{"varargs", "kwargs", "caller"}

// bindParams binds a macro's (or a call block's) arguments into inner:
// positional, then keyword, then defaults evaluated in inner; with extras,
// surplus arguments land in varargs/kwargs as in Jinja2.
func (ev *evaluator) bindParams(inner *frame, what string, pos int, params []string, defaults map[string]expr, args []any, kwargs map[string]any, extras []string) error {
	var varargs []any
	if len(args) > len(params) {
		if extras == nil {
			return ev.errorf(pos, "%s takes %d arguments, %d given", what, len(params), len(args))
		}
		varargs = args[len(params):]
	}
	for i, p := range params {
		if v, ok := kwargs[p]; ok && i < len(args) {
			return ev.errorf(pos, "%s got multiple values for argument %q", what, p)
		} else if ok {
			inner.vars[p] = v
			continue
		}
		switch {
		case i < len(args):
			inner.vars[p] = args[i]
		case defaults[p] != nil:
			d, err := ev.eval(defaults[p], inner)
			if err != nil {
				return err
			}
			inner.vars[p] = d
		default:
			inner.vars[p] = undefined{fmt.Sprintf("%s: argument %q was not given", what, p)}
		}
	}
	extra := map[string]any{}
	for k, v := range kwargs {
		if _, ok := inner.vars[k]; ok {
			continue
		}
		if k == "caller" && extras != nil {
			inner.vars["caller"] = v
			continue
		}
		if extras == nil {
			return ev.errorf(pos, "%s has no argument %q", what, k)
		}
		extra[k] = v
	}
	if extras != nil {
		inner.vars["varargs"] = tuple(varargs...)
		inner.vars["kwargs"] = extra
	}
	return nil
}

func exprPos(e expr) int {
	switch e := e.(type) {
	case nameExpr:
		return e.pos
	case attrExpr:
		return e.pos
	case indexExpr:
		return e.pos
	case sliceExpr:
		return e.pos
	case callExpr:
		return e.pos
	case filterExpr:
		return e.pos
	case testExpr:
		return e.pos
	case unaryExpr:
		return e.pos
	case binExpr:
		return exprPos(e.l)
	case condExpr:
		return e.pos
	case splat:
		return e.pos
	case listExpr:
		if len(e.items) > 0 {
			return exprPos(e.items[0])
		}
	case dictExpr:
		if len(e.keys) > 0 {
			return exprPos(e.keys[0])
		}
	}
	return 0
}

// need fails when v is undefined: every use of a value but tests and
// default/get goes through it.
func (ev *evaluator) need(v any, pos int) error {
	if u, ok := v.(undefined); ok {
		return ev.errorf(pos, "%s", u.msg)
	}
	return nil
}

func (ev *evaluator) eval(e expr, f *frame) (any, error) {
	switch e := e.(type) {
	case literal:
		return e.val, nil
	case nameExpr:
		if v, ok := f.lookup(e.name); ok {
			return v, nil
		}
		return undefined{fmt.Sprintf("%q is undefined (test it with 'is defined' or give a default with |default(...))", e.name)}, nil
	case listExpr:
		items := make([]any, len(e.items))
		for i, x := range e.items {
			v, err := ev.eval(x, f)
			if err != nil {
				return nil, err
			}
			if err := ev.need(v, exprPos(x)); err != nil {
				return nil, err
			}
			items[i] = v
		}
		return &List{Items: items, Tuple: e.tuple}, nil
	case dictExpr:
		m := make(map[string]any, len(e.keys))
		for i := range e.keys {
			k, err := ev.eval(e.keys[i], f)
			if err != nil {
				return nil, err
			}
			ks, ok := k.(string)
			if !ok {
				if _, isU := k.(undefined); isU {
					return nil, ev.need(k, exprPos(e.keys[i]))
				}
				ks = str(k)
			}
			v, err := ev.eval(e.vals[i], f)
			if err != nil {
				return nil, err
			}
			if err := ev.need(v, exprPos(e.vals[i])); err != nil {
				return nil, err
			}
			m[ks] = v
		}
		return m, nil
	case attrExpr:
		obj, err := ev.eval(e.obj, f)
		if err != nil {
			return nil, err
		}
		if err := ev.need(obj, exprPos(e.obj)); err != nil {
			return nil, err
		}
		return getAttr(obj, e.name), nil
	case indexExpr:
		obj, err := ev.eval(e.obj, f)
		if err != nil {
			return nil, err
		}
		if err := ev.need(obj, exprPos(e.obj)); err != nil {
			return nil, err
		}
		idx, err := ev.eval(e.idx, f)
		if err != nil {
			return nil, err
		}
		if err := ev.need(idx, exprPos(e.idx)); err != nil {
			return nil, err
		}
		v, err := getItem(obj, idx)
		if err != nil {
			return nil, ev.errorf(e.pos, "%v", err)
		}
		return v, nil
	case sliceExpr:
		return ev.evalSlice(e, f)
	case callExpr:
		return ev.evalCall(e, f)
	case filterExpr:
		return ev.evalFilter(e, f)
	case testExpr:
		return ev.evalTest(e, f)
	case unaryExpr:
		if e.op == "not" {
			t, err := ev.truth(e.x, f)
			return !t, err
		}
		v, err := ev.eval(e.x, f)
		if err != nil {
			return nil, err
		}
		switch x := v.(type) {
		case int64:
			if e.op == "-" {
				return -x, nil
			}
			return x, nil
		case float64:
			if e.op == "-" {
				return -x, nil
			}
			return x, nil
		}
		if err := ev.need(v, exprPos(e.x)); err != nil {
			return nil, err
		}
		return nil, ev.errorf(e.pos, "bad operand for unary %s: %s", e.op, typeName(v))
	case binExpr:
		return ev.evalBin(e, f)
	case condExpr:
		t, err := ev.truth(e.cond, f)
		if err != nil {
			return nil, err
		}
		if t {
			return ev.eval(e.yes, f)
		}
		if e.no == nil {
			return undefined{"the inline if has no else branch and its condition is false"}, nil
		}
		return ev.eval(e.no, f)
	}
	return nil, fmt.Errorf("jinja: unknown expression %T", e)
}

func getAttr(obj any, name string) any {
	switch x := obj.(type) {
	case map[string]any:
		if v, ok := x[name]; ok {
			return v
		}
		if m := method(obj, name); m != nil {
			return m
		}
		return undefined{fmt.Sprintf("dict has no attribute or key %q", name)}
	}
	if fx, ok := obj.(*Func); ok && fx.Attrs != nil {
		if v, ok := fx.Attrs[name]; ok {
			return v
		}
		return undefined{fmt.Sprintf("%s has no attribute %q", fx.Name, name)}
	}
	if m := method(obj, name); m != nil {
		return m
	}
	return undefined{fmt.Sprintf("%s %s has no attribute %q", typeName(obj), truncate(repr(obj), 60), name)}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func getItem(obj, idx any) (any, error) {
	switch x := obj.(type) {
	case map[string]any:
		k, ok := idx.(string)
		if !ok {
			k = str(idx)
		}
		if v, ok := x[k]; ok {
			return v, nil
		}
		return undefined{fmt.Sprintf("dict has no key %s", repr(idx))}, nil
	case *List:
		i, ok := idx.(int64)
		if !ok {
			return nil, fmt.Errorf("list index must be an integer, not %s", typeName(idx))
		}
		if i < 0 {
			i += int64(len(x.Items))
		}
		if i < 0 || i >= int64(len(x.Items)) {
			return undefined{fmt.Sprintf("list index %s out of range (length %d)", str(idx), len(x.Items))}, nil
		}
		return x.Items[i], nil
	case string:
		i, ok := idx.(int64)
		if !ok {
			return nil, fmt.Errorf("string index must be an integer, not %s", typeName(idx))
		}
		r := []rune(x)
		if i < 0 {
			i += int64(len(r))
		}
		if i < 0 || i >= int64(len(r)) {
			return undefined{fmt.Sprintf("string index %d out of range", i)}, nil
		}
		return string(r[i]), nil
	}
	return nil, fmt.Errorf("%s is not subscriptable", typeName(obj))
}

func (ev *evaluator) evalSlice(e sliceExpr, f *frame) (any, error) {
	obj, err := ev.eval(e.obj, f)
	if err != nil {
		return nil, err
	}
	if err := ev.need(obj, exprPos(e.obj)); err != nil {
		return nil, err
	}
	var items []any
	var isStr bool
	switch x := obj.(type) {
	case *List:
		items = x.Items
	case string:
		isStr = true
		for _, r := range x {
			items = append(items, string(r))
		}
	default:
		return nil, ev.errorf(e.pos, "cannot slice %s", typeName(obj))
	}
	bound := func(x expr, def int64) (int64, error) {
		if x == nil {
			return def, nil
		}
		v, err := ev.eval(x, f)
		if err != nil {
			return 0, err
		}
		if v == nil {
			return def, nil
		}
		i, ok := v.(int64)
		if !ok {
			return 0, ev.errorf(e.pos, "slice indices must be integers, not %s", typeName(v))
		}
		return i, nil
	}
	n := int64(len(items))
	step, err := bound(e.stp, 1)
	if err != nil {
		return nil, err
	}
	if step == 0 {
		return nil, ev.errorf(e.pos, "slice step cannot be zero")
	}
	var lo, hi int64
	if step > 0 {
		if lo, err = bound(e.lo, 0); err != nil {
			return nil, err
		}
		if hi, err = bound(e.hi, n); err != nil {
			return nil, err
		}
	} else {
		if lo, err = bound(e.lo, n-1); err != nil {
			return nil, err
		}
		if hi, err = bound(e.hi, -n-1); err != nil {
			return nil, err
		}
	}
	clamp := func(i int64, low, high int64) int64 {
		if i < 0 {
			i += n
		}
		return max(low, min(i, high))
	}
	var out []any
	if step > 0 {
		lo, hi = clamp(lo, 0, n), clamp(hi, 0, n)
		for i := lo; i < hi; i += step {
			out = append(out, items[i])
		}
	} else {
		lo, hi = clamp(lo, -1, n-1), clamp(hi, -1, n-1)
		for i := lo; i > hi; i += step {
			out = append(out, items[i])
		}
	}
	if isStr {
		var b strings.Builder
		for _, s := range out {
			b.WriteString(s.(string))
		}
		return b.String(), nil
	}
	return newList(out), nil
}

func (ev *evaluator) evalArgs(args []expr, kwargs []kwarg, f *frame) ([]any, map[string]any, error) {
	vals := make([]any, 0, len(args))
	kw := map[string]any{}
	for _, a := range args {
		if s, ok := a.(splat); ok {
			v, err := ev.eval(s.x, f)
			if err != nil {
				return nil, nil, err
			}
			if err := ev.need(v, exprPos(s.x)); err != nil {
				return nil, nil, err
			}
			if s.dict {
				m, ok := v.(map[string]any)
				if !ok {
					return nil, nil, ev.errorf(s.pos, "** needs a dict, not %s", typeName(v))
				}
				for k, e := range m {
					kw[k] = e
				}
				continue
			}
			items, err := iterate(v)
			if err != nil {
				return nil, nil, ev.errorf(s.pos, "*: %v", err)
			}
			vals = append(vals, items...)
			continue
		}
		v, err := ev.eval(a, f)
		if err != nil {
			return nil, nil, err
		}
		vals = append(vals, v)
	}
	for _, k := range kwargs {
		v, err := ev.eval(k.val, f)
		if err != nil {
			return nil, nil, err
		}
		kw[k.name] = v
	}
	return vals, kw, nil
}

func (ev *evaluator) evalCall(e callExpr, f *frame) (any, error) {
	fn, err := ev.eval(e.fn, f)
	if err != nil {
		return nil, err
	}
	if err := ev.need(fn, exprPos(e.fn)); err != nil {
		return nil, err
	}
	callable, ok := fn.(*Func)
	if !ok {
		return nil, ev.errorf(e.pos, "%s %s is not callable", typeName(fn), truncate(repr(fn), 60))
	}
	args, kwargs, err := ev.evalArgs(e.args, e.kwargs, f)
	if err != nil {
		return nil, err
	}
	for _, a := range args {
		if err := ev.need(a, e.pos); err != nil {
			return nil, err
		}
	}
	v, err := callable.Call(args, kwargs)
	if err != nil {
		var te *Error
		if errors.As(err, &te) {
			// Positioned inside the callee (a macro's body): keep it.
			return nil, err
		}
		return nil, ev.errorf(e.pos, "%s(): %v", callable.Name, err)
	}
	return v, nil
}

func (ev *evaluator) evalBin(e binExpr, f *frame) (any, error) {
	switch e.op {
	case "and", "or":
		l, err := ev.eval(e.l, f)
		if err != nil {
			return nil, err
		}
		t, ok := truth(l)
		if !ok {
			return nil, ev.need(l, exprPos(e.l))
		}
		// Python semantics: the result is an operand, not a boolean.
		if (e.op == "and") != t {
			return l, nil
		}
		return ev.eval(e.r, f)
	}
	l, err := ev.eval(e.l, f)
	if err != nil {
		return nil, err
	}
	if err := ev.need(l, exprPos(e.l)); err != nil {
		return nil, err
	}
	r, err := ev.eval(e.r, f)
	if err != nil {
		return nil, err
	}
	if err := ev.need(r, exprPos(e.r)); err != nil {
		return nil, err
	}
	v, err := binOp(e.op, l, r)
	if err != nil {
		return nil, ev.errorf(e.pos, "%v", err)
	}
	return v, nil
}

func contains(container, item any) (bool, error) {
	switch c := container.(type) {
	case string:
		s, ok := item.(string)
		if !ok {
			return false, fmt.Errorf("'in <string>' requires a string on the left, not %s", typeName(item))
		}
		return strings.Contains(c, s), nil
	case *List:
		for _, x := range c.Items {
			if equal(x, item) {
				return true, nil
			}
		}
		return false, nil
	case map[string]any:
		k, ok := item.(string)
		if !ok {
			return false, nil
		}
		_, found := c[k]
		return found, nil
	}
	return false, fmt.Errorf("'in' needs a string, list or dict on the right, not %s", typeName(container))
}

func binOp(op string, l, r any) (any, error) {
	switch op {
	case "==":
		return equal(l, r), nil
	case "!=":
		return !equal(l, r), nil
	case "<", ">", "<=", ">=":
		c, err := compare(l, r)
		if err != nil {
			return nil, err
		}
		switch op {
		case "<":
			return c < 0, nil
		case ">":
			return c > 0, nil
		case "<=":
			return c <= 0, nil
		}
		return c >= 0, nil
	case "in":
		return contains(r, l)
	case "not in":
		ok, err := contains(r, l)
		return !ok, err
	case "~":
		return str(l) + str(r), nil
	case "+":
		switch x := l.(type) {
		case string:
			if y, ok := r.(string); ok {
				return x + y, nil
			}
		case *List:
			if y, ok := r.(*List); ok {
				return &List{Items: append(append([]any{}, x.Items...), y.Items...), Tuple: x.Tuple && y.Tuple}, nil
			}
		}
	case "*":
		if _, ok := l.(int64); ok {
			switch r.(type) {
			case string, *List:
				l, r = r, l
			}
		}
		if s, ok := l.(string); ok {
			if n, ok := r.(int64); ok {
				if err := sizeOK(int64(len(s)), n); err != nil {
					return nil, err
				}
				return strings.Repeat(s, int(max(n, 0))), nil
			}
		}
		if s, ok := l.(*List); ok {
			if n, ok := r.(int64); ok {
				if err := sizeOK(int64(len(s.Items)), n); err != nil {
					return nil, err
				}
				var out []any
				for range max(n, 0) {
					out = append(out, s.Items...)
				}
				return &List{Items: out, Tuple: s.Tuple}, nil
			}
		}
	case "%":
		if s, ok := l.(string); ok {
			return percentFormat(s, r)
		}
	}
	return arith(op, l, r)
}

func arith(op string, l, r any) (any, error) {
	li, lInt := l.(int64)
	ri, rInt := r.(int64)
	lb, lBool := l.(bool)
	rb, rBool := r.(bool)
	if lBool {
		li, lInt = b2i(lb), true
	}
	if rBool {
		ri, rInt = b2i(rb), true
	}
	if lInt && rInt {
		switch op {
		case "+":
			return li + ri, nil
		case "-":
			return li - ri, nil
		case "*":
			return li * ri, nil
		case "//":
			if ri == 0 {
				return nil, errors.New("integer division by zero")
			}
			q := li / ri
			if (li%ri != 0) && ((li < 0) != (ri < 0)) {
				q--
			}
			return q, nil
		case "%":
			if ri == 0 {
				return nil, errors.New("integer modulo by zero")
			}
			m := li % ri
			if m != 0 && (m < 0) != (ri < 0) {
				m += ri
			}
			return m, nil
		case "**":
			if ri >= 0 {
				// Square-and-multiply: the exponent may be huge.
				p, base := int64(1), li
				for e := ri; e > 0; e >>= 1 {
					if e&1 == 1 {
						p *= base
					}
					base *= base
				}
				return p, nil
			}
		}
	}
	lf, ok1 := toFloat(l)
	rf, ok2 := toFloat(r)
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("unsupported operand types for %s: %s and %s", op, typeName(l), typeName(r))
	}
	switch op {
	case "+":
		return lf + rf, nil
	case "-":
		return lf - rf, nil
	case "*":
		return lf * rf, nil
	case "/":
		if rf == 0 {
			return nil, errors.New("division by zero")
		}
		return lf / rf, nil
	case "//":
		if rf == 0 {
			return nil, errors.New("division by zero")
		}
		return math.Floor(lf / rf), nil
	case "%":
		if rf == 0 {
			return nil, errors.New("modulo by zero")
		}
		m := math.Mod(lf, rf)
		if m != 0 && (m < 0) != (rf < 0) {
			m += rf
		}
		return m, nil
	case "**":
		return math.Pow(lf, rf), nil
	}
	return nil, fmt.Errorf("unsupported operator %s", op)
}

// sizeOK refuses a repetition whose result would exceed MaxOutput.
func sizeOK(unit, n int64) error {
	if n > 0 && unit > 0 && n > MaxOutput/unit {
		return fmt.Errorf("the result would exceed %d bytes", MaxOutput)
	}
	return nil
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// template loads (once per rendering) the template an import names.
func (ev *evaluator) template(n importNode, f *frame) (*Template, string, error) {
	v, err := ev.eval(n.tmpl, f)
	if err != nil {
		return nil, "", err
	}
	name, ok := v.(string)
	if !ok {
		return nil, "", ev.errorf(n.pos, "{%% %s %%} needs a template name (a string), not %s", n.kind, typeName(v))
	}
	if ev.depth >= maxDepth {
		return nil, name, ev.errorf(n.pos, "{%% %s %%} of %q: more than %d nested imports (does a template import itself?)", n.kind, name, maxDepth)
	}
	if t, ok := ev.cache[name]; ok {
		return t, name, nil
	}
	if ev.load == nil {
		if n.ignoreMissing {
			return nil, name, nil
		}
		return nil, name, ev.errorf(n.pos, "{%% %s %%} of %q: no templates to import (give them to the template recipe: imports = { %q = file(\"…\") })", n.kind, name, name)
	}
	text, err := ev.load(name)
	if err != nil {
		if n.ignoreMissing {
			return nil, name, nil
		}
		return nil, name, ev.errorf(n.pos, "{%% %s %%} of %q: %v", n.kind, name, err)
	}
	t, err := Parse(name, text)
	if err != nil {
		return nil, name, err
	}
	ev.cache[name] = t
	return t, name, nil
}

func (ev *evaluator) child(t *Template, root *frame) *evaluator {
	return &evaluator{src: t.src, root: root, globals: ev.globals, load: ev.load, cache: ev.cache, depth: ev.depth + 1, blocks: map[string][]blockDef{}, calls: ev.calls}
}

func (ev *evaluator) execImport(b *strings.Builder, n importNode, f *frame) error {
	t, name, err := ev.template(n, f)
	if err != nil || t == nil {
		// t is nil without error for a missing "include … ignore missing".
		return err
	}
	// A template imported "with context" sees the importer's variables;
	// otherwise only the globals, as in Jinja2.
	parent := ev.globals
	if n.withContext {
		parent = f
	}
	scope := &frame{vars: map[string]any{}, parent: parent}
	sub := ev.child(t, scope)
	if n.kind == "include" {
		return sub.execRoot(b, t)
	}
	var discard strings.Builder
	if err := sub.execRoot(&discard, t); err != nil {
		return err
	}
	// The module's exports: its top-level macros and variables, except
	// the private ones (leading underscore).
	exports := map[string]any{}
	for k, v := range scope.vars {
		if !strings.HasPrefix(k, "_") && k != "self" {
			exports[k] = v
		}
	}
	if n.kind == "import" {
		f.vars[n.as] = exports
		return nil
	}
	for _, p := range n.names {
		v, ok := exports[p[0]]
		if !ok {
			return ev.errorf(n.pos, "template %q exports no %q", name, p[0])
		}
		f.vars[p[1]] = v
	}
	return nil
}
