package jinja

import (
	"strconv"
	"strings"
)

// Statement nodes.
type node interface{}

type textNode struct{ text string }

type outputNode struct {
	pos  int
	expr expr
}

type ifNode struct {
	conds  []expr
	bodies [][]node
	orelse []node
}

// target is an assignment target: a name, or a tuple of targets
// ("for name, (port, backends) in …").
type target struct {
	name string
	sub  []target
}

func (t target) String() string {
	if t.sub == nil {
		return t.name
	}
	parts := make([]string, len(t.sub))
	for i, s := range t.sub {
		parts[i] = s.String()
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

type forNode struct {
	pos       int
	targets   target
	iter      expr
	cond      expr // optional inline filter: for x in xs if cond
	recursive bool // loop(children) renders the body again
	body      []node
	orelse    []node
}

type setNode struct {
	pos     int
	targets target // a name, or a tuple for unpacking
	attr    string // set ns.attr = …: targets.name is the namespace
	value   expr
	body    []node // block set: {% set x %}…{% endset %}
}

type doNode struct{ expr expr }

// importNode is {% import T as name %}, {% from T import a, b as c %} or
// {% include T %}: kind is the tag.
type importNode struct {
	pos           int
	kind          string
	tmpl          expr
	as            string
	names         [][2]string // from-import: name, alias
	withContext   bool
	ignoreMissing bool
}

type macroNode struct {
	pos      int
	name     string
	params   []string
	defaults map[string]expr
	body     []node
}

// Expression nodes.
type expr interface{}

type literal struct{ val any }

type nameExpr struct {
	pos  int
	name string
}

type listExpr struct {
	items []expr
	tuple bool
}

type dictExpr struct{ keys, vals []expr }

type attrExpr struct {
	pos  int
	obj  expr
	name string
}

type indexExpr struct {
	pos      int
	obj, idx expr
}

type sliceExpr struct {
	pos              int
	obj, lo, hi, stp expr
}

type callExpr struct {
	pos    int
	fn     expr
	args   []expr
	kwargs []kwarg
}

// splat is *list or **dict in a call's arguments.
type splat struct {
	pos  int
	dict bool
	x    expr
}

type kwarg struct {
	name string
	val  expr
}

type filterExpr struct {
	pos    int
	name   string
	obj    expr
	args   []expr
	kwargs []kwarg
}

type testExpr struct {
	pos    int
	name   string
	negate bool
	obj    expr
	args   []expr
}

type unaryExpr struct {
	pos int
	op  string
	x   expr
}

type binExpr struct {
	pos  int
	op   string
	l, r expr
}

type condExpr struct {
	cond, yes, no expr // no may be nil (undefined when false)
	pos           int
}

type parser struct {
	src    *source
	toks   []token
	p      int
	loops  int                   // nesting of for loops (break/continue)
	blocks map[string]*blockNode // every {% block %} of the template
}

func (ps *parser) peek() token { return ps.toks[ps.p] }
func (ps *parser) next() token {
	t := ps.toks[ps.p]
	if t.kind != tEOF {
		ps.p++
	}
	return t
}

func (ps *parser) isOp(v string) bool {
	t := ps.peek()
	return t.kind == tOp && t.val == v
}

func (ps *parser) isName(v string) bool {
	t := ps.peek()
	return t.kind == tName && t.val == v
}

func (ps *parser) expectOp(v string) (token, error) {
	t := ps.next()
	if t.kind != tOp || t.val != v {
		return t, ps.src.errorf(t.pos, "expected '%s', found %s", v, t)
	}
	return t, nil
}

func (ps *parser) expectKind(k tokKind) (token, error) {
	t := ps.next()
	if t.kind != k {
		return t, ps.src.errorf(t.pos, "expected %s, found %s", tokNames[k], t)
	}
	return t, nil
}

func (ps *parser) expectName(v string) error {
	t := ps.next()
	if t.kind != tName || t.val != v {
		return ps.src.errorf(t.pos, "expected '%s', found %s", v, t)
	}
	return nil
}

// parseBody parses statements until a block tag whose name is in ends (or
// the end of the template when ends is empty). It returns the name of the
// end tag found, positioned after that name.
func (ps *parser) parseBody(ends ...string) ([]node, string, error) {
	var body []node
	for {
		t := ps.next()
		switch t.kind {
		case tEOF:
			if len(ends) > 0 {
				return nil, "", ps.src.errorf(t.pos, "unexpected end of template: expected {%% %s %%}", strings.Join(ends, " %} or {% "))
			}
			return body, "", nil
		case tText:
			body = append(body, textNode{t.val})
		case tVarBegin:
			e, err := ps.parseExpr()
			if err != nil {
				return nil, "", err
			}
			if _, err := ps.expectKind(tVarEnd); err != nil {
				return nil, "", err
			}
			body = append(body, outputNode{t.pos, e})
		case tBlockBegin:
			nt := ps.next()
			if nt.kind != tName {
				return nil, "", ps.src.errorf(nt.pos, "expected a tag name after '{%%', found %s", nt)
			}
			for _, e := range ends {
				if nt.val == e {
					return body, e, nil
				}
			}
			n, err := ps.parseStatement(nt)
			if err != nil {
				return nil, "", err
			}
			if n != nil {
				body = append(body, n)
			}
		default:
			return nil, "", ps.src.errorf(t.pos, "unexpected %s", t)
		}
	}
}

func (ps *parser) endTag() error {
	_, err := ps.expectKind(tBlockEnd)
	return err
}

func (ps *parser) parseStatement(nt token) (node, error) {
	switch nt.val {
	case "if":
		return ps.parseIf()
	case "for":
		return ps.parseFor(nt)
	case "set":
		return ps.parseSet(nt)
	case "do":
		e, err := ps.parseExpr()
		if err != nil {
			return nil, err
		}
		return doNode{e}, ps.endTag()
	case "macro":
		return ps.parseMacro(nt)
	case "import", "from", "include":
		return ps.parseImport(nt)
	case "extends":
		return ps.parseExtends(nt)
	case "block":
		return ps.parseBlock(nt)
	case "call":
		return ps.parseCallBlock(nt)
	case "filter":
		return ps.parseFilterBlock(nt)
	case "with":
		return ps.parseWith(nt)
	case "autoescape":
		return ps.parseAutoescape(nt)
	case "break", "continue":
		if ps.loops == 0 {
			return nil, ps.src.errorf(nt.pos, "{%% %s %%} outside of a loop", nt.val)
		}
		return loopControl{nt.pos, nt.val}, ps.endTag()
	}
	return nil, ps.src.errorf(nt.pos, "unknown tag {%% %s %%} (or one without its opening tag)", nt.val)
}

func (ps *parser) parseIf() (node, error) {
	n := ifNode{}
	for {
		cond, err := ps.parseExpr()
		if err != nil {
			return nil, err
		}
		if err := ps.endTag(); err != nil {
			return nil, err
		}
		body, end, err := ps.parseBody("elif", "else", "endif")
		if err != nil {
			return nil, err
		}
		n.conds = append(n.conds, cond)
		n.bodies = append(n.bodies, body)
		switch end {
		case "elif":
			continue
		case "else":
			if err := ps.endTag(); err != nil {
				return nil, err
			}
			n.orelse, _, err = ps.parseBody("endif")
			if err != nil {
				return nil, err
			}
		}
		return n, ps.endTag()
	}
}

// parseTargets parses "a", "a, b", "(a, b)" or nested tuples.
func (ps *parser) parseTargets() (target, error) {
	first, err := ps.parseTarget()
	if err != nil || !ps.isOp(",") {
		return first, err
	}
	t := target{sub: []target{first}}
	for ps.isOp(",") {
		ps.next()
		if !ps.startsTarget() {
			break
		}
		n, err := ps.parseTarget()
		if err != nil {
			return t, err
		}
		t.sub = append(t.sub, n)
	}
	return t, nil
}

func (ps *parser) startsTarget() bool {
	return ps.peek().kind == tName && !ps.isName("in") || ps.isOp("(")
}

func (ps *parser) parseTarget() (target, error) {
	if ps.isOp("(") {
		ps.next()
		t, err := ps.parseTargets()
		if err != nil {
			return t, err
		}
		if t.sub == nil {
			t = target{sub: []target{t}}
		}
		_, err = ps.expectOp(")")
		return t, err
	}
	n, err := ps.expectKind(tName)
	return target{name: n.val}, err
}

func (ps *parser) parseFor(nt token) (node, error) {
	targets, err := ps.parseTargets()
	if err != nil {
		return nil, err
	}
	if err := ps.expectName("in"); err != nil {
		return nil, err
	}
	// No inline if/else here: a trailing "if" filters the loop. The
	// iterable may be a tuple without parentheses, as in Jinja2
	// ({% for k in 'ssl', '_ca' %}).
	iter, err := ps.parseOr()
	if err != nil {
		return nil, err
	}
	if ps.isOp(",") {
		items := []expr{iter}
		for ps.isOp(",") {
			ps.next()
			if ps.peek().kind == tBlockEnd || ps.isName("if") || ps.isName("recursive") {
				break
			}
			e, err := ps.parseOr()
			if err != nil {
				return nil, err
			}
			items = append(items, e)
		}
		iter = listExpr{items: items, tuple: true}
	}
	n := forNode{pos: nt.pos, targets: targets, iter: iter}
	if ps.isName("if") {
		ps.next()
		if n.cond, err = ps.parseOr(); err != nil {
			return nil, err
		}
	}
	if ps.isName("recursive") {
		ps.next()
		n.recursive = true
	}
	if err := ps.endTag(); err != nil {
		return nil, err
	}
	ps.loops++
	body, end, err := ps.parseBody("else", "endfor")
	ps.loops--
	if err != nil {
		return nil, err
	}
	n.body = body
	if end == "else" {
		if err := ps.endTag(); err != nil {
			return nil, err
		}
		if n.orelse, _, err = ps.parseBody("endfor"); err != nil {
			return nil, err
		}
	}
	return n, ps.endTag()
}

func (ps *parser) parseSet(nt token) (node, error) {
	n := setNode{pos: nt.pos}
	if ps.peek().kind == tName && ps.toks[ps.p+1].kind == tOp && ps.toks[ps.p+1].val == "." {
		n.targets = target{name: ps.next().val}
		ps.next()
		a, err := ps.expectKind(tName)
		if err != nil {
			return nil, err
		}
		n.attr = a.val
	} else {
		var err error
		if n.targets, err = ps.parseTargets(); err != nil {
			return nil, err
		}
	}
	var err error
	if ps.peek().kind == tBlockEnd && n.attr == "" && n.targets.sub == nil {
		ps.next()
		body, _, err := ps.parseBody("endset")
		if err != nil {
			return nil, err
		}
		n.body = body
		if n.body == nil {
			n.body = []node{}
		}
		return n, ps.endTag()
	}
	if _, err := ps.expectOp("="); err != nil {
		return nil, err
	}
	if n.value, err = ps.parseTuple(); err != nil {
		return nil, err
	}
	return n, ps.endTag()
}

func (ps *parser) parseMacro(nt token) (node, error) {
	name, err := ps.expectKind(tName)
	if err != nil {
		return nil, err
	}
	n := macroNode{pos: nt.pos, name: name.val}
	if n.params, n.defaults, err = ps.parseParams(); err != nil {
		return nil, err
	}
	if err := ps.endTag(); err != nil {
		return nil, err
	}
	loops := ps.loops
	ps.loops = 0
	n.body, _, err = ps.parseBody("endmacro")
	ps.loops = loops
	if err != nil {
		return nil, err
	}
	return n, ps.endName(n.name)
}

// parseParams parses a macro's "(a, b='x')".
func (ps *parser) parseParams() ([]string, map[string]expr, error) {
	var params []string
	defaults := map[string]expr{}
	if _, err := ps.expectOp("("); err != nil {
		return nil, nil, err
	}
	for !ps.isOp(")") {
		p, err := ps.expectKind(tName)
		if err != nil {
			return nil, nil, err
		}
		params = append(params, p.val)
		if ps.isOp("=") {
			ps.next()
			d, err := ps.parseExpr()
			if err != nil {
				return nil, nil, err
			}
			defaults[p.val] = d
		}
		if !ps.isOp(",") {
			break
		}
		ps.next()
	}
	_, err := ps.expectOp(")")
	return params, defaults, err
}

// endName ends an end tag that may repeat the block's name
// ({% endmacro name %}, {% endblock name %}).
func (ps *parser) endName(name string) error {
	if t := ps.peek(); t.kind == tName {
		ps.next()
		if t.val != name {
			return ps.src.errorf(t.pos, "mismatched end tag: %q ends %q", t.val, name)
		}
	}
	return ps.endTag()
}

// parseTuple parses an expression or an unparenthesized tuple "a, b".
func (ps *parser) parseTuple() (expr, error) {
	e, err := ps.parseExpr()
	if err != nil || !ps.isOp(",") {
		return e, err
	}
	items := []expr{e}
	for ps.isOp(",") {
		ps.next()
		if ps.peek().kind == tBlockEnd {
			break
		}
		e, err := ps.parseExpr()
		if err != nil {
			return nil, err
		}
		items = append(items, e)
	}
	return listExpr{items: items, tuple: true}, nil
}

// parseExpr parses a full expression, with inline "x if c else y".
func (ps *parser) parseExpr() (expr, error) {
	pos := ps.peek().pos
	e, err := ps.parseOr()
	if err != nil {
		return nil, err
	}
	for ps.isName("if") {
		ps.next()
		cond, err := ps.parseOr()
		if err != nil {
			return nil, err
		}
		var no expr
		if ps.isName("else") {
			ps.next()
			if no, err = ps.parseExpr(); err != nil {
				return nil, err
			}
		}
		e = condExpr{cond: cond, yes: e, no: no, pos: pos}
	}
	return e, nil
}

func (ps *parser) parseOr() (expr, error) {
	l, err := ps.parseAnd()
	for err == nil && ps.isName("or") {
		t := ps.next()
		var r expr
		if r, err = ps.parseAnd(); err == nil {
			l = binExpr{t.pos, "or", l, r}
		}
	}
	return l, err
}

func (ps *parser) parseAnd() (expr, error) {
	l, err := ps.parseNot()
	for err == nil && ps.isName("and") {
		t := ps.next()
		var r expr
		if r, err = ps.parseNot(); err == nil {
			l = binExpr{t.pos, "and", l, r}
		}
	}
	return l, err
}

func (ps *parser) parseNot() (expr, error) {
	if ps.isName("not") {
		t := ps.next()
		x, err := ps.parseNot()
		return unaryExpr{t.pos, "not", x}, err
	}
	return ps.parseCompare()
}

func (ps *parser) parseCompare() (expr, error) {
	l, err := ps.parseMath1()
	if err != nil {
		return nil, err
	}
	for {
		t := ps.peek()
		op := ""
		switch {
		case t.kind == tOp && (t.val == "==" || t.val == "!=" || t.val == "<" || t.val == ">" || t.val == "<=" || t.val == ">="):
			op = t.val
			ps.next()
		case t.kind == tName && t.val == "in":
			op = "in"
			ps.next()
		case t.kind == tName && t.val == "not" && ps.toks[ps.p+1].kind == tName && ps.toks[ps.p+1].val == "in":
			op = "not in"
			ps.next()
			ps.next()
		default:
			return l, nil
		}
		r, err := ps.parseMath1()
		if err != nil {
			return nil, err
		}
		l = binExpr{t.pos, op, l, r}
	}
}

func (ps *parser) parseMath1() (expr, error) {
	l, err := ps.parseConcat()
	for err == nil && (ps.isOp("+") || ps.isOp("-")) {
		t := ps.next()
		var r expr
		if r, err = ps.parseConcat(); err == nil {
			l = binExpr{t.pos, t.val, l, r}
		}
	}
	return l, err
}

func (ps *parser) parseConcat() (expr, error) {
	l, err := ps.parseMath2()
	for err == nil && ps.isOp("~") {
		t := ps.next()
		var r expr
		if r, err = ps.parseMath2(); err == nil {
			l = binExpr{t.pos, "~", l, r}
		}
	}
	return l, err
}

func (ps *parser) parseMath2() (expr, error) {
	l, err := ps.parsePow()
	for err == nil && (ps.isOp("*") || ps.isOp("/") || ps.isOp("//") || ps.isOp("%")) {
		t := ps.next()
		var r expr
		if r, err = ps.parsePow(); err == nil {
			l = binExpr{t.pos, t.val, l, r}
		}
	}
	return l, err
}

func (ps *parser) parsePow() (expr, error) {
	l, err := ps.parseUnary()
	for err == nil && ps.isOp("**") {
		t := ps.next()
		var r expr
		if r, err = ps.parseUnary(); err == nil {
			l = binExpr{t.pos, "**", l, r}
		}
	}
	return l, err
}

// parseUnary follows Jinja2: filters apply after a unary sign, so -3|abs
// is abs(-3).
func (ps *parser) parseUnary() (expr, error) {
	e, err := ps.parseSigned()
	if err != nil {
		return nil, err
	}
	return ps.parseFilters(e)
}

func (ps *parser) parseSigned() (expr, error) {
	if ps.isOp("-") || ps.isOp("+") {
		t := ps.next()
		x, err := ps.parseSigned()
		return unaryExpr{t.pos, t.val, x}, err
	}
	e, err := ps.parsePrimary()
	if err != nil {
		return nil, err
	}
	return ps.parsePostfix(e)
}

func (ps *parser) parsePrimary() (expr, error) {
	t := ps.next()
	switch t.kind {
	case tName:
		switch t.val {
		case "true", "True":
			return literal{true}, nil
		case "false", "False":
			return literal{false}, nil
		case "none", "None":
			return literal{nil}, nil
		}
		return nameExpr{t.pos, t.val}, nil
	case tString:
		s := t.val
		// Adjacent string literals concatenate, as in Python.
		for ps.peek().kind == tString {
			s += ps.next().val
		}
		return literal{s}, nil
	case tInt:
		i, err := strconv.ParseInt(t.val, 10, 64)
		if err != nil {
			return nil, ps.src.errorf(t.pos, "integer %s out of range", t.val)
		}
		return literal{i}, nil
	case tFloat:
		f, err := strconv.ParseFloat(t.val, 64)
		if err != nil {
			return nil, ps.src.errorf(t.pos, "bad number %s", t.val)
		}
		return literal{f}, nil
	case tOp:
		switch t.val {
		case "(":
			if ps.isOp(")") {
				ps.next()
				return listExpr{tuple: true}, nil
			}
			e, err := ps.parseExpr()
			if err != nil {
				return nil, err
			}
			if ps.isOp(",") {
				items := []expr{e}
				for ps.isOp(",") {
					ps.next()
					if ps.isOp(")") {
						break
					}
					e, err := ps.parseExpr()
					if err != nil {
						return nil, err
					}
					items = append(items, e)
				}
				e = listExpr{items: items, tuple: true}
			}
			_, err = ps.expectOp(")")
			return e, err
		case "[":
			items, err := ps.parseList("]")
			return listExpr{items: items}, err
		case "{":
			d := dictExpr{}
			for !ps.isOp("}") {
				k, err := ps.parseExpr()
				if err != nil {
					return nil, err
				}
				if _, err := ps.expectOp(":"); err != nil {
					return nil, err
				}
				v, err := ps.parseExpr()
				if err != nil {
					return nil, err
				}
				d.keys, d.vals = append(d.keys, k), append(d.vals, v)
				if !ps.isOp(",") {
					break
				}
				ps.next()
			}
			_, err := ps.expectOp("}")
			return d, err
		}
	}
	return nil, ps.src.errorf(t.pos, "unexpected %s in expression", t)
}

// parseList parses comma-separated expressions up to the closing op.
func (ps *parser) parseList(closing string) ([]expr, error) {
	var items []expr
	for !ps.isOp(closing) {
		e, err := ps.parseExpr()
		if err != nil {
			return nil, err
		}
		items = append(items, e)
		if !ps.isOp(",") {
			break
		}
		ps.next()
	}
	_, err := ps.expectOp(closing)
	return items, err
}

func (ps *parser) parseArgs() ([]expr, []kwarg, error) {
	var args []expr
	var kwargs []kwarg
	for !ps.isOp(")") {
		if ps.peek().kind == tName && ps.toks[ps.p+1].kind == tOp && ps.toks[ps.p+1].val == "=" {
			name := ps.next().val
			ps.next()
			v, err := ps.parseExpr()
			if err != nil {
				return nil, nil, err
			}
			kwargs = append(kwargs, kwarg{name, v})
		} else {
			if ps.isOp("*") || ps.isOp("**") {
				t := ps.next()
				e, err := ps.parseExpr()
				if err != nil {
					return nil, nil, err
				}
				args = append(args, splat{t.pos, t.val == "**", e})
			} else if len(kwargs) > 0 {
				return nil, nil, ps.src.errorf(ps.peek().pos, "positional argument after a keyword argument")
			} else {
				e, err := ps.parseExpr()
				if err != nil {
					return nil, nil, err
				}
				args = append(args, e)
			}
		}
		if !ps.isOp(",") {
			break
		}
		ps.next()
	}
	_, err := ps.expectOp(")")
	return args, kwargs, err
}

func (ps *parser) parsePostfix(e expr) (expr, error) {
	for {
		t := ps.peek()
		if t.kind != tOp {
			return e, nil
		}
		switch t.val {
		case ".":
			ps.next()
			n := ps.next()
			switch n.kind {
			case tName:
				e = attrExpr{n.pos, e, n.val}
			case tInt:
				e = indexExpr{n.pos, e, literal{mustInt(n.val)}}
			default:
				return nil, ps.src.errorf(n.pos, "expected an attribute name after '.', found %s", n)
			}
		case "[":
			ps.next()
			var lo, hi, stp expr
			var err error
			if !ps.isOp(":") {
				if lo, err = ps.parseExpr(); err != nil {
					return nil, err
				}
			}
			if ps.isOp(":") {
				ps.next()
				if !ps.isOp("]") && !ps.isOp(":") {
					if hi, err = ps.parseExpr(); err != nil {
						return nil, err
					}
				}
				if ps.isOp(":") {
					ps.next()
					if !ps.isOp("]") {
						if stp, err = ps.parseExpr(); err != nil {
							return nil, err
						}
					}
				}
				e = sliceExpr{t.pos, e, lo, hi, stp}
			} else {
				e = indexExpr{t.pos, e, lo}
			}
			if _, err := ps.expectOp("]"); err != nil {
				return nil, err
			}
		case "(":
			ps.next()
			args, kwargs, err := ps.parseArgs()
			if err != nil {
				return nil, err
			}
			e = callExpr{t.pos, e, args, kwargs}
		default:
			return e, nil
		}
	}
}

func mustInt(s string) int64 {
	i, _ := strconv.ParseInt(s, 10, 64)
	return i
}

func (ps *parser) parseFilters(e expr) (expr, error) {
	for {
		switch {
		case ps.isOp("|"):
			ps.next()
			name, err := ps.parseDottedName()
			if err != nil {
				return nil, err
			}
			f := filterExpr{pos: name.pos, name: name.val, obj: e}
			if ps.isOp("(") {
				ps.next()
				if f.args, f.kwargs, err = ps.parseArgs(); err != nil {
					return nil, err
				}
			}
			e = f
		case ps.isName("is"):
			ps.next()
			t := testExpr{obj: e}
			if ps.isName("not") {
				ps.next()
				t.negate = true
			}
			name := ps.next()
			switch {
			case name.kind == tName:
			case name.kind == tOp && (name.val == "==" || name.val == "!=" || name.val == "<" || name.val == ">" || name.val == "<=" || name.val == ">="):
			default:
				return nil, ps.src.errorf(name.pos, "expected a test name after 'is', found %s", name)
			}
			t.pos, t.name = name.pos, name.val
			switch {
			case ps.isOp("("):
				ps.next()
				args, _, err := ps.parseArgs()
				if err != nil {
					return nil, err
				}
				t.args = args
			case ps.startsPrimary():
				// "x is divisibleby 3", "x is sameas none": one argument without parentheses.
				a, err := ps.parsePrimary()
				if err != nil {
					return nil, err
				}
				if a, err = ps.parsePostfix(a); err != nil {
					return nil, err
				}
				t.args = []expr{a}
			}
			e = t
		default:
			return e, nil
		}
	}
}

// startsPrimary reports whether the next token can begin a test argument
// written without parentheses.
func (ps *parser) startsPrimary() bool {
	t := ps.peek()
	switch t.kind {
	case tString, tInt, tFloat:
		return true
	case tName:
		switch t.val {
		case "and", "or", "if", "else", "in", "not", "is", "recursive":
			return false
		}
		return true
	}
	return false
}

func (ps *parser) parseDottedName() (token, error) {
	t, err := ps.expectKind(tName)
	if err != nil {
		return t, err
	}
	for ps.isOp(".") {
		ps.next()
		n, err := ps.expectKind(tName)
		if err != nil {
			return t, err
		}
		t.val += "." + n.val
	}
	return t, nil
}

func (ps *parser) parseImport(nt token) (node, error) {
	n := importNode{pos: nt.pos, kind: nt.val, withContext: nt.val == "include"}
	var err error
	if n.tmpl, err = ps.parseExpr(); err != nil {
		return nil, err
	}
	switch nt.val {
	case "import":
		if err := ps.expectName("as"); err != nil {
			return nil, err
		}
		t, err := ps.expectKind(tName)
		if err != nil {
			return nil, err
		}
		n.as = t.val
	case "from":
		if err := ps.expectName("import"); err != nil {
			return nil, err
		}
		for {
			t, err := ps.expectKind(tName)
			if err != nil {
				return nil, err
			}
			pair := [2]string{t.val, t.val}
			if ps.isName("as") {
				ps.next()
				a, err := ps.expectKind(tName)
				if err != nil {
					return nil, err
				}
				pair[1] = a.val
			}
			n.names = append(n.names, pair)
			if !ps.isOp(",") {
				break
			}
			ps.next()
		}
	case "include":
		if ps.isName("ignore") {
			ps.next()
			if err := ps.expectName("missing"); err != nil {
				return nil, err
			}
			n.ignoreMissing = true
		}
	}
	if ps.isName("with") || ps.isName("without") {
		n.withContext = ps.next().val == "with"
		if err := ps.expectName("context"); err != nil {
			return nil, err
		}
	}
	return n, ps.endTag()
}
