package buildout

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// CondEnv is the Python environment a `[name:expr]` condition is evaluated
// in: zc.buildout evaluates it with Python's eval and its _default_globals.
// slapnode has no Python, so the conditions are evaluated by a small
// interpreter of the expression subset real profiles use (boolean
// operators, comparisons, tuples, attribute access, a few calls) against
// the facts below.
type CondEnv struct {
	PythonVersion  [3]int // sys.version_info[:3]
	Implementation string // "cpython", "pypy", "jython" or "ironpython"
	Platform       string // sys.platform: "linux", "darwin", "win32"…
	Machine        string // platform.machine()
	Release        string // platform.release()
	Bits           int    // 32 or 64
	LittleEndian   bool
	// ReadFile and IsDir answer open(p).read(), os.path.isdir/exists and
	// os.access; nil means "no such file".
	ReadFile func(path string) (string, error)
	IsDir    func(path string) bool
}

// DefaultCondEnv is the environment the goldens were computed in: Debian's
// CPython 3.11 on 64-bit x86 Linux, with file checks on the real host.
// Files are read as profiles are (ReadBounded): a regular file, at most
// MaxFileSize bytes, opened without blocking — a condition reading
// /dev/zero or a FIFO would otherwise exhaust or hang the process. A
// caller reading for a less trusted user sets ReadFile and IsDir to read
// with that user's rights.
func DefaultCondEnv() *CondEnv {
	return &CondEnv{
		PythonVersion:  [3]int{3, 11, 2},
		Implementation: "cpython",
		Platform:       "linux",
		Machine:        "x86_64",
		Release:        hostRelease(),
		Bits:           64,
		LittleEndian:   true,
		ReadFile: func(p string) (string, error) {
			b, err := ReadBounded(p)
			return string(b), err
		},
		IsDir: func(p string) bool { st, err := os.Stat(p); return err == nil && st.IsDir() },
	}
}

// platformSystem is platform.system() for a sys.platform value.
func platformSystem(p string) string {
	switch {
	case strings.HasPrefix(p, "linux"):
		return "Linux"
	case p == "darwin":
		return "Darwin"
	case p == "win32":
		return "Windows"
	}
	return p
}

func hostRelease() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "6.1.0"
	}
	return strings.TrimSpace(string(b))
}

// ErrCondition marks a condition the interpreter cannot evaluate.
var ErrCondition = errors.New("unsupported condition expression")

// Eval evaluates a condition's expression and returns its truth value.
func (e *CondEnv) Eval(expr string) (bool, error) {
	if e == nil {
		e = DefaultCondEnv()
	}
	p := &condParser{src: expr}
	if err := p.lex(); err != nil {
		return false, err
	}
	n, err := p.expr()
	if err != nil {
		return false, err
	}
	if p.peek().kind != tkEOF {
		return false, fmt.Errorf("%w: unexpected %q", ErrCondition, p.peek().text)
	}
	v, err := n(e, nil)
	if err != nil {
		return false, err
	}
	return truthy(v), nil
}

// Python values of the interpreter.
type (
	pyTuple []any
	pyList  []any
	pyDict  map[string]any
	pyFunc  func(args []any) (any, error)
	pyMod   map[string]any
)

func (e *CondEnv) globals() map[string]any {
	major := e.PythonVersion[0]
	g := map[string]any{
		"python2":       major == 2,
		"python3":       major == 3,
		"cpython":       e.Implementation == "cpython",
		"pypy":          e.Implementation == "pypy",
		"jython":        e.Implementation == "jython",
		"ironpython":    e.Implementation == "ironpython",
		"linux":         strings.Contains(e.Platform, "linux"),
		"windows":       strings.Contains(e.Platform, "win32"),
		"cygwin":        strings.Contains(e.Platform, "cygwin"),
		"solaris":       strings.Contains(e.Platform, "sunos"),
		"macosx":        strings.Contains(e.Platform, "darwin"),
		"posix":         e.Platform != "win32",
		"bits32":        e.Bits == 32,
		"bits64":        e.Bits == 64,
		"little_endian": e.LittleEndian,
		"big_endian":    !e.LittleEndian,
	}
	for _, v := range []string{"24", "25", "26", "27", "30", "31", "32", "33", "34", "35", "36"} {
		g["python"+v] = fmt.Sprintf("%d%d", major, e.PythonVersion[1]) == v
	}
	readFile := func(p string) (string, error) {
		if e.ReadFile == nil {
			return "", os.ErrNotExist
		}
		return e.ReadFile(p)
	}
	isDir := func(p string) bool { return e.IsDir != nil && e.IsDir(p) }
	str1 := func(name string, args []any) (string, error) {
		if len(args) < 1 {
			return "", fmt.Errorf("%s() takes an argument", name)
		}
		s, ok := args[0].(string)
		if !ok {
			return "", fmt.Errorf("%s() needs a string", name)
		}
		return s, nil
	}
	g["sys"] = pyMod{
		"version_info": pyTuple{int64(e.PythonVersion[0]), int64(e.PythonVersion[1]), int64(e.PythonVersion[2]), "final", int64(0)},
		"platform":     e.Platform,
		"byteorder":    map[bool]string{true: "little", false: "big"}[e.LittleEndian],
	}
	g["platform"] = pyMod{
		"machine": pyFunc(func([]any) (any, error) { return e.Machine, nil }),
		"release": pyFunc(func([]any) (any, error) { return e.Release, nil }),
		"system":  pyFunc(func([]any) (any, error) { return platformSystem(e.Platform), nil }),
		"python_version": pyFunc(func([]any) (any, error) {
			return fmt.Sprintf("%d.%d.%d", e.PythonVersion[0], e.PythonVersion[1], e.PythonVersion[2]), nil
		}),
		"freedesktop_os_release": pyFunc(func([]any) (any, error) {
			s, err := readFile("/etc/os-release")
			if err != nil {
				return nil, fmt.Errorf("platform.freedesktop_os_release(): %w", err)
			}
			return parseOSRelease(s), nil
		}),
	}
	g["os"] = pyMod{
		"R_OK": int64(4), "W_OK": int64(2), "X_OK": int64(1), "F_OK": int64(0),
		"name": "posix",
		"path": pyMod{
			"isdir": pyFunc(func(a []any) (any, error) { p, err := str1("os.path.isdir", a); return err == nil && isDir(p), err }),
			"exists": pyFunc(func(a []any) (any, error) {
				p, err := str1("os.path.exists", a)
				_, rerr := readFile(p)
				return err == nil && (isDir(p) || rerr == nil), err
			}),
			"isfile": pyFunc(func(a []any) (any, error) {
				p, err := str1("os.path.isfile", a)
				_, rerr := readFile(p)
				return err == nil && rerr == nil, err
			}),
		},
		"access": pyFunc(func(a []any) (any, error) {
			p, err := str1("os.access", a)
			if err != nil {
				return nil, err
			}
			_, rerr := readFile(p)
			return rerr == nil || isDir(p), nil
		}),
	}
	g["open"] = pyFunc(func(a []any) (any, error) {
		p, err := str1("open", a)
		if err != nil {
			return nil, err
		}
		s, err := readFile(p)
		if err != nil {
			return nil, fmt.Errorf("open(%q): %w", p, err)
		}
		return pyMod{"read": pyFunc(func([]any) (any, error) { return s, nil })}, nil
	})
	g["int"] = pyFunc(func(a []any) (any, error) {
		if len(a) != 1 {
			return nil, errors.New("int() takes one argument")
		}
		switch v := a[0].(type) {
		case int64:
			return v, nil
		case bool:
			if v {
				return int64(1), nil
			}
			return int64(0), nil
		case string:
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("int(%q): invalid literal", v)
			}
			return n, nil
		}
		return nil, errors.New("int() of an unsupported type")
	})
	return g
}

func parseOSRelease(s string) pyDict {
	d := pyDict{}
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok || strings.HasPrefix(k, "#") {
			continue
		}
		if uq, err := strconv.Unquote(v); err == nil {
			v = uq
		} else {
			v = strings.Trim(v, `'"`)
		}
		d[k] = v
	}
	return d
}

func truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case int64:
		return x != 0
	case string:
		return x != ""
	case pyTuple:
		return len(x) > 0
	case pyList:
		return len(x) > 0
	case pyDict:
		return len(x) > 0
	}
	return true
}

// --- lexer -----------------------------------------------------------------

type tkKind int

const (
	tkEOF tkKind = iota
	tkName
	tkInt
	tkStr
	tkOp
)

type token struct {
	kind tkKind
	text string
	val  any
}

type condParser struct {
	src  string
	toks []token
	i    int
}

func (p *condParser) lex() error {
	s := p.src
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			i++
		case c == '#':
			i = len(s) // a trailing comment
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			j := i
			for j < len(s) && (s[j] == '_' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= '0' && s[j] <= '9') {
				j++
			}
			p.toks = append(p.toks, token{kind: tkName, text: s[i:j]})
			i = j
		case c >= '0' && c <= '9':
			j := i
			for j < len(s) && s[j] >= '0' && s[j] <= '9' {
				j++
			}
			n, err := strconv.ParseInt(s[i:j], 10, 64)
			if err != nil {
				return fmt.Errorf("%w: number %q", ErrCondition, s[i:j])
			}
			p.toks = append(p.toks, token{kind: tkInt, text: s[i:j], val: n})
			i = j
		case c == '\'' || c == '"':
			j := i + 1
			var b strings.Builder
			for j < len(s) && s[j] != c {
				if s[j] == '\\' && j+1 < len(s) {
					j++
					switch s[j] {
					case 'n':
						b.WriteByte('\n')
					case 't':
						b.WriteByte('\t')
					default:
						b.WriteByte(s[j])
					}
				} else {
					b.WriteByte(s[j])
				}
				j++
			}
			if j >= len(s) {
				return fmt.Errorf("%w: unterminated string", ErrCondition)
			}
			p.toks = append(p.toks, token{kind: tkStr, text: s[i : j+1], val: b.String()})
			i = j + 1
		default:
			two := ""
			if i+1 < len(s) {
				two = s[i : i+2]
			}
			switch two {
			case "==", "!=", "<=", ">=":
				p.toks = append(p.toks, token{kind: tkOp, text: two})
				i += 2
				continue
			}
			if strings.IndexByte("()[],.:<>", c) < 0 {
				return fmt.Errorf("%w: character %q", ErrCondition, c)
			}
			p.toks = append(p.toks, token{kind: tkOp, text: string(c)})
			i++
		}
	}
	p.toks = append(p.toks, token{kind: tkEOF})
	return nil
}

func (p *condParser) peek() token { return p.toks[p.i] }
func (p *condParser) next() token { t := p.toks[p.i]; p.i++; return t }
func (p *condParser) is(text string) bool {
	t := p.peek()
	return (t.kind == tkOp || t.kind == tkName) && t.text == text
}
func (p *condParser) want(text string) error {
	if !p.is(text) {
		return fmt.Errorf("%w: expected %q, found %q", ErrCondition, text, p.peek().text)
	}
	p.i++
	return nil
}

// --- parser: builds closures, so `and`/`or` short-circuit like Python ----

type scope map[string]any
type node func(e *CondEnv, sc scope) (any, error)

func (p *condParser) expr() (node, error) { return p.or() }

func (p *condParser) or() (node, error) {
	l, err := p.and()
	for err == nil && p.is("or") {
		p.i++
		var r node
		if r, err = p.and(); err != nil {
			return nil, err
		}
		a, b := l, r
		l = func(e *CondEnv, sc scope) (any, error) {
			v, err := a(e, sc)
			if err != nil || truthy(v) {
				return v, err
			}
			return b(e, sc)
		}
	}
	return l, err
}

func (p *condParser) and() (node, error) {
	l, err := p.not()
	for err == nil && p.is("and") {
		p.i++
		var r node
		if r, err = p.not(); err != nil {
			return nil, err
		}
		a, b := l, r
		l = func(e *CondEnv, sc scope) (any, error) {
			v, err := a(e, sc)
			if err != nil || !truthy(v) {
				return v, err
			}
			return b(e, sc)
		}
	}
	return l, err
}

func (p *condParser) not() (node, error) {
	if p.is("not") {
		p.i++
		x, err := p.not()
		if err != nil {
			return nil, err
		}
		return func(e *CondEnv, sc scope) (any, error) {
			v, err := x(e, sc)
			return !truthy(v), err
		}, nil
	}
	return p.comparison()
}

func (p *condParser) comparison() (node, error) {
	first, err := p.primary()
	if err != nil {
		return nil, err
	}
	var ops []string
	operands := []node{first}
	for {
		var op string
		switch {
		case p.is("==") || p.is("!=") || p.is("<") || p.is(">") || p.is("<=") || p.is(">=") || p.is("in"):
			op = p.next().text
		case p.is("not") && p.toks[p.i+1].text == "in":
			p.i += 2
			op = "not in"
		default:
			if len(ops) == 0 {
				return first, nil
			}
			return func(e *CondEnv, sc scope) (any, error) {
				l, err := operands[0](e, sc)
				if err != nil {
					return nil, err
				}
				for i, op := range ops {
					r, err := operands[i+1](e, sc)
					if err != nil {
						return nil, err
					}
					ok, err := compare(op, l, r)
					if err != nil || !ok {
						return false, err
					}
					l = r
				}
				return true, nil
			}, nil
		}
		r, err := p.primary()
		if err != nil {
			return nil, err
		}
		ops = append(ops, op)
		operands = append(operands, r)
	}
}

func (p *condParser) primary() (node, error) {
	n, err := p.atom()
	if err != nil {
		return nil, err
	}
	for {
		switch {
		case p.is("."):
			p.i++
			t := p.next()
			if t.kind != tkName {
				return nil, fmt.Errorf("%w: attribute name expected", ErrCondition)
			}
			obj, attr := n, t.text
			n = func(e *CondEnv, sc scope) (any, error) {
				v, err := obj(e, sc)
				if err != nil {
					return nil, err
				}
				return getattr(v, attr)
			}
		case p.is("("):
			p.i++
			var args []node
			for !p.is(")") {
				a, err := p.expr()
				if err != nil {
					return nil, err
				}
				args = append(args, a)
				if !p.is(")") {
					if err := p.want(","); err != nil {
						return nil, err
					}
				}
			}
			p.i++
			fn := n
			n = func(e *CondEnv, sc scope) (any, error) {
				f, err := fn(e, sc)
				if err != nil {
					return nil, err
				}
				call, ok := f.(pyFunc)
				if !ok {
					return nil, fmt.Errorf("%w: calling a non-function", ErrCondition)
				}
				vals := make([]any, len(args))
				for i, a := range args {
					if vals[i], err = a(e, sc); err != nil {
						return nil, err
					}
				}
				return call(vals)
			}
		case p.is("["):
			p.i++
			var lo, hi node
			slice := false
			if !p.is(":") {
				if lo, err = p.expr(); err != nil {
					return nil, err
				}
			}
			if p.is(":") {
				p.i++
				slice = true
				if !p.is("]") {
					if hi, err = p.expr(); err != nil {
						return nil, err
					}
				}
			}
			if err := p.want("]"); err != nil {
				return nil, err
			}
			obj := n
			n = func(e *CondEnv, sc scope) (any, error) {
				v, err := obj(e, sc)
				if err != nil {
					return nil, err
				}
				return index(e, sc, v, lo, hi, slice)
			}
		default:
			return n, nil
		}
	}
}

func (p *condParser) atom() (node, error) {
	t := p.next()
	switch t.kind {
	case tkInt, tkStr:
		v := t.val
		// Adjacent string literals concatenate, as in Python.
		for t.kind == tkStr && p.peek().kind == tkStr {
			v = v.(string) + p.next().val.(string)
		}
		return func(*CondEnv, scope) (any, error) { return v, nil }, nil
	case tkName:
		name := t.text
		switch name {
		case "True":
			return func(*CondEnv, scope) (any, error) { return true, nil }, nil
		case "False":
			return func(*CondEnv, scope) (any, error) { return false, nil }, nil
		case "None":
			return func(*CondEnv, scope) (any, error) { return nil, nil }, nil
		}
		return func(e *CondEnv, sc scope) (any, error) {
			if v, ok := sc[name]; ok {
				return v, nil
			}
			if v, ok := e.globals()[name]; ok {
				return v, nil
			}
			return nil, fmt.Errorf("name %q is not defined", name)
		}, nil
	case tkOp:
		switch t.text {
		case "(":
			items, trailingComma, err := p.items(")")
			if err != nil {
				return nil, err
			}
			if len(items) == 1 && !trailingComma {
				return items[0], nil
			}
			return seqNode(items, true), nil
		case "[":
			if p.is("]") {
				p.i++
				return seqNode(nil, false), nil
			}
			first, err := p.expr()
			if err != nil {
				return nil, err
			}
			if p.is("for") {
				return p.listComp(first)
			}
			items := []node{first}
			if p.is(",") {
				p.i++
				more, _, err := p.items("]")
				if err != nil {
					return nil, err
				}
				items = append(items, more...)
			} else if err := p.want("]"); err != nil {
				return nil, err
			}
			return seqNode(items, false), nil
		}
	}
	return nil, fmt.Errorf("%w: unexpected %q", ErrCondition, t.text)
}

// items parses `a, b, c<close>` (the opening bracket already consumed).
func (p *condParser) items(close string) ([]node, bool, error) {
	var items []node
	trailing := false
	for !p.is(close) {
		n, err := p.expr()
		if err != nil {
			return nil, false, err
		}
		items = append(items, n)
		trailing = false
		if p.is(",") {
			p.i++
			trailing = true
		} else if !p.is(close) {
			return nil, false, fmt.Errorf("%w: expected %q, found %q", ErrCondition, close, p.peek().text)
		}
	}
	p.i++
	return items, trailing, nil
}

func (p *condParser) listComp(elem node) (node, error) {
	p.i++ // for
	t := p.next()
	if t.kind != tkName {
		return nil, fmt.Errorf("%w: loop variable expected", ErrCondition)
	}
	if err := p.want("in"); err != nil {
		return nil, err
	}
	src, err := p.or()
	if err != nil {
		return nil, err
	}
	if err := p.want("]"); err != nil {
		return nil, err
	}
	name := t.text
	return func(e *CondEnv, sc scope) (any, error) {
		it, err := src(e, sc)
		if err != nil {
			return nil, err
		}
		seq, ok := asSeq(it)
		if !ok {
			return nil, fmt.Errorf("%w: iterating a non-sequence", ErrCondition)
		}
		inner := scope{}
		for k, v := range sc {
			inner[k] = v
		}
		var out pyList
		for _, x := range seq {
			inner[name] = x
			v, err := elem(e, inner)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	}, nil
}

func seqNode(items []node, tuple bool) node {
	return func(e *CondEnv, sc scope) (any, error) {
		vals := make([]any, len(items))
		for i, it := range items {
			v, err := it(e, sc)
			if err != nil {
				return nil, err
			}
			vals[i] = v
		}
		if tuple {
			return pyTuple(vals), nil
		}
		return pyList(vals), nil
	}
}

func asSeq(v any) ([]any, bool) {
	switch x := v.(type) {
	case pyTuple:
		return x, true
	case pyList:
		return x, true
	}
	return nil, false
}

func getattr(v any, attr string) (any, error) {
	switch x := v.(type) {
	case pyMod:
		if a, ok := x[attr]; ok {
			return a, nil
		}
	case string:
		switch attr {
		case "split":
			return pyFunc(func(a []any) (any, error) {
				var parts []string
				if len(a) == 0 {
					parts = strings.Fields(x)
				} else if sep, ok := a[0].(string); ok {
					parts = strings.Split(x, sep)
				} else {
					return nil, errors.New("split() separator must be a string")
				}
				out := make(pyList, len(parts))
				for i, s := range parts {
					out[i] = s
				}
				return out, nil
			}), nil
		case "startswith", "endswith":
			return pyFunc(func(a []any) (any, error) {
				if len(a) != 1 {
					return nil, errors.New(attr + "() takes one argument")
				}
				s, _ := a[0].(string)
				if attr == "startswith" {
					return strings.HasPrefix(x, s), nil
				}
				return strings.HasSuffix(x, s), nil
			}), nil
		case "lower":
			return pyFunc(func([]any) (any, error) { return strings.ToLower(x), nil }), nil
		case "strip":
			return pyFunc(func([]any) (any, error) { return strings.TrimSpace(x), nil }), nil
		}
	}
	return nil, fmt.Errorf("%w: attribute %q", ErrCondition, attr)
}

func index(e *CondEnv, sc scope, v any, lo, hi node, slice bool) (any, error) {
	get := func(n node) (int64, bool, error) {
		if n == nil {
			return 0, false, nil
		}
		x, err := n(e, sc)
		if err != nil {
			return 0, false, err
		}
		i, ok := x.(int64)
		if !ok {
			return 0, false, fmt.Errorf("%w: non-integer index", ErrCondition)
		}
		return i, true, nil
	}
	if d, ok := v.(pyDict); ok && !slice {
		k, err := lo(e, sc)
		if err != nil {
			return nil, err
		}
		ks, _ := k.(string)
		r, ok := d[ks]
		if !ok {
			return nil, fmt.Errorf("KeyError: %q", ks)
		}
		return r, nil
	}
	var seq []any
	tuple := false
	switch x := v.(type) {
	case pyTuple:
		seq, tuple = x, true
	case pyList:
		seq = x
	case string:
		for _, c := range x {
			seq = append(seq, string(c))
		}
	default:
		return nil, fmt.Errorf("%w: subscript of a non-sequence", ErrCondition)
	}
	n := int64(len(seq))
	norm := func(i int64) int64 {
		if i < 0 {
			i += n
		}
		return max(0, min(i, n))
	}
	a, hasA, err := get(lo)
	if err != nil {
		return nil, err
	}
	if !slice {
		if a < 0 {
			a += n
		}
		if a < 0 || a >= n {
			return nil, errors.New("IndexError: index out of range")
		}
		return seq[a], nil
	}
	b, hasB, err := get(hi)
	if err != nil {
		return nil, err
	}
	start, end := int64(0), n
	if hasA {
		start = norm(a)
	}
	if hasB {
		end = norm(b)
	}
	if end < start {
		end = start
	}
	out := append([]any(nil), seq[start:end]...)
	if _, isStr := v.(string); isStr {
		var sb strings.Builder
		for _, c := range out {
			sb.WriteString(c.(string))
		}
		return sb.String(), nil
	}
	if tuple {
		return pyTuple(out), nil
	}
	return pyList(out), nil
}

// compare implements Python's comparison operators on the interpreter's
// values (lexicographic for sequences; bool compares as an int).
func compare(op string, l, r any) (bool, error) {
	switch op {
	case "in", "not in":
		var found bool
		switch c := r.(type) {
		case string:
			s, ok := l.(string)
			if !ok {
				return false, errors.New("TypeError: 'in <string>' needs a string")
			}
			found = strings.Contains(c, s)
		case pyTuple, pyList:
			seq, _ := asSeq(c)
			for _, x := range seq {
				if c, _ := cmp3(l, x); c == 0 && sameKind(l, x) {
					found = true
					break
				}
			}
		case pyDict:
			s, _ := l.(string)
			_, found = c[s]
		default:
			return false, errors.New("TypeError: argument of 'in' is not iterable")
		}
		return found == (op == "in"), nil
	case "==", "!=":
		eq := false
		if sameKind(l, r) {
			c, err := cmp3(l, r)
			eq = err == nil && c == 0
		}
		return eq == (op == "=="), nil
	}
	if !sameKind(l, r) {
		return false, fmt.Errorf("TypeError: %q not supported between %T and %T", op, l, r)
	}
	c, err := cmp3(l, r)
	if err != nil {
		return false, err
	}
	switch op {
	case "<":
		return c < 0, nil
	case "<=":
		return c <= 0, nil
	case ">":
		return c > 0, nil
	default:
		return c >= 0, nil
	}
}

func sameKind(l, r any) bool {
	num := func(v any) bool { _, a := v.(int64); _, b := v.(bool); return a || b }
	if num(l) && num(r) {
		return true
	}
	switch l.(type) {
	case string:
		_, ok := r.(string)
		return ok
	case pyTuple:
		_, ok := r.(pyTuple)
		return ok
	case pyList:
		_, ok := r.(pyList)
		return ok
	case nil:
		return r == nil
	}
	return false
}

func cmp3(l, r any) (int, error) {
	toInt := func(v any) (int64, bool) {
		switch x := v.(type) {
		case int64:
			return x, true
		case bool:
			if x {
				return 1, true
			}
			return 0, true
		}
		return 0, false
	}
	if a, ok := toInt(l); ok {
		b, ok := toInt(r)
		if !ok {
			return 0, errors.New("TypeError: comparing a number")
		}
		switch {
		case a < b:
			return -1, nil
		case a > b:
			return 1, nil
		}
		return 0, nil
	}
	if a, ok := l.(string); ok {
		b, ok := r.(string)
		if !ok {
			return 0, errors.New("TypeError: comparing a string")
		}
		return strings.Compare(a, b), nil
	}
	if l == nil && r == nil {
		return 0, nil
	}
	a, ok1 := asSeq(l)
	b, ok2 := asSeq(r)
	if !ok1 || !ok2 {
		return 0, errors.New("TypeError: unorderable values")
	}
	for i := 0; i < len(a) && i < len(b); i++ {
		if !sameKind(a[i], b[i]) {
			return 0, errors.New("TypeError: comparing sequence items of different types")
		}
		c, err := cmp3(a[i], b[i])
		if err != nil || c != 0 {
			return c, err
		}
	}
	switch {
	case len(a) < len(b):
		return -1, nil
	case len(a) > len(b):
		return 1, nil
	}
	return 0, nil
}
