package jinja

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"math"
	"net/url"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The names slapos.recipe.template:jinja2 puts in every template's context
// besides Jinja2's own globals: Python builtins, assert and dumps, and the
// Python modules a `context = import NAME MODULE` line may name (only
// those with a Go rendition here; see Module).

// pythonBuiltins returns the builtins templates call (len, sorted, zip…).
func pythonBuiltins() map[string]any {
	b := map[string]any{}
	add := func(name string, call func(args []any, kw map[string]any) (any, error)) {
		b[name] = &Func{Name: name, Call: call}
	}
	add("len", func(a []any, _ map[string]any) (any, error) {
		if err := wantArgs(a, 1, 1); err != nil {
			return nil, err
		}
		n, err := length(a[0])
		return int64(n), err
	})
	add("str", func(a []any, _ map[string]any) (any, error) {
		if len(a) == 0 {
			return "", nil
		}
		return str(a[0]), nil
	})
	add("repr", func(a []any, _ map[string]any) (any, error) {
		if err := wantArgs(a, 1, 1); err != nil {
			return nil, err
		}
		return repr(a[0]), nil
	})
	add("int", func(a []any, kw map[string]any) (any, error) {
		if len(a) == 0 {
			return int64(0), nil
		}
		switch x := a[0].(type) {
		case int64:
			return x, nil
		case bool:
			return b2i(x), nil
		case float64:
			return int64(x), nil
		case string:
			base := int64(10)
			if len(a) > 1 {
				base, _ = a[1].(int64)
			}
			i, err := strconv.ParseInt(strings.ReplaceAll(strings.TrimSpace(x), "_", ""), int(base), 64)
			if err != nil {
				return nil, fmt.Errorf("invalid literal for int() with base %d: %s", base, repr(x))
			}
			return i, nil
		}
		return nil, fmt.Errorf("int() argument must be a string or a number, not %s", typeName(a[0]))
	})
	add("float", func(a []any, _ map[string]any) (any, error) {
		if len(a) == 0 {
			return 0.0, nil
		}
		if f, ok := toFloat(a[0]); ok {
			return f, nil
		}
		if s, ok := a[0].(string); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
			if err != nil {
				return nil, fmt.Errorf("could not convert string to float: %s", repr(s))
			}
			return f, nil
		}
		return nil, fmt.Errorf("float() argument must be a string or a number, not %s", typeName(a[0]))
	})
	add("bool", func(a []any, _ map[string]any) (any, error) {
		if len(a) == 0 {
			return false, nil
		}
		t, _ := truth(a[0])
		return t, nil
	})
	add("list", func(a []any, _ map[string]any) (any, error) {
		if len(a) == 0 {
			return newList(nil), nil
		}
		items, err := iterate(a[0])
		return newList(items), err
	})
	add("tuple", func(a []any, _ map[string]any) (any, error) {
		if len(a) == 0 {
			return tuple(), nil
		}
		items, err := iterate(a[0])
		return tuple(items...), err
	})
	// Sets become lists without duplicates, in first-seen order.
	add("set", func(a []any, _ map[string]any) (any, error) {
		if len(a) == 0 {
			return newList(nil), nil
		}
		items, err := iterate(a[0])
		if err != nil {
			return nil, err
		}
		var out []any
		for _, it := range items {
			if !containsItem(out, it) {
				out = append(out, it)
			}
		}
		return newList(out), nil
	})
	b["frozenset"] = b["set"]
	add("sorted", func(a []any, kw map[string]any) (any, error) {
		if err := wantArgs(a, 1, 1); err != nil {
			return nil, err
		}
		items, err := iterate(a[0])
		if err != nil {
			return nil, err
		}
		rev, _ := truth(kw["reverse"])
		if key, ok := kw["key"].(*Func); ok {
			keys := make([]any, len(items))
			for i, it := range items {
				if keys[i], err = key.Call([]any{it}, nil); err != nil {
					return nil, err
				}
			}
			idx := make([]int, len(items))
			for i := range idx {
				idx[i] = i
			}
			var cerr error
			sort.SliceStable(idx, func(i, j int) bool {
				c, err := compare(keys[idx[i]], keys[idx[j]])
				if err != nil {
					cerr = err
				}
				if rev {
					return c > 0
				}
				return c < 0
			})
			out := make([]any, len(items))
			for i, k := range idx {
				out[i] = items[k]
			}
			return newList(out), cerr
		}
		return newList(items), sortItems(items, rev, true, "")
	})
	add("reversed", func(a []any, _ map[string]any) (any, error) {
		if err := wantArgs(a, 1, 1); err != nil {
			return nil, err
		}
		items, err := iterate(a[0])
		if err != nil {
			return nil, err
		}
		out := make([]any, len(items))
		for i, it := range items {
			out[len(items)-1-i] = it
		}
		return newList(out), nil
	})
	add("enumerate", func(a []any, kw map[string]any) (any, error) {
		if err := wantArgs(a, 1, 2); err != nil {
			return nil, err
		}
		items, err := iterate(a[0])
		if err != nil {
			return nil, err
		}
		start, _ := argN(a, 1, kw, "start", int64(0)).(int64)
		out := make([]any, len(items))
		for i, it := range items {
			out[i] = tuple(start+int64(i), it)
		}
		return newList(out), nil
	})
	add("zip", func(a []any, _ map[string]any) (any, error) {
		var lists [][]any
		n := -1
		for _, x := range a {
			items, err := iterate(x)
			if err != nil {
				return nil, err
			}
			lists = append(lists, items)
			if n < 0 || len(items) < n {
				n = len(items)
			}
		}
		var out []any
		for i := 0; i < n; i++ {
			t := make([]any, len(lists))
			for j := range lists {
				t[j] = lists[j][i]
			}
			out = append(out, tuple(t...))
		}
		return newList(out), nil
	})
	add("iter", func(a []any, _ map[string]any) (any, error) {
		if err := wantArgs(a, 1, 1); err != nil {
			return nil, err
		}
		items, err := iterate(a[0])
		return newList(items), err
	})
	add("next", func(a []any, _ map[string]any) (any, error) {
		if err := wantArgs(a, 1, 2); err != nil {
			return nil, err
		}
		items, err := iterate(a[0])
		if err != nil {
			return nil, err
		}
		if len(items) == 0 {
			if len(a) == 2 {
				return a[1], nil
			}
			return nil, errors.New("StopIteration: the sequence is empty")
		}
		return items[0], nil
	})
	for _, name := range []string{"min", "max", "sum"} {
		name := name
		add(name, func(a []any, kw map[string]any) (any, error) {
			if len(a) == 0 {
				return nil, fmt.Errorf("%s expected at least 1 argument", name)
			}
			seq := a[0]
			if len(a) > 1 && name != "sum" {
				seq = newList(a)
			}
			items, err := iterate(seq)
			if err != nil {
				return nil, err
			}
			if name == "sum" {
				var total any = int64(0)
				if len(a) > 1 {
					total = a[1]
				}
				for _, it := range items {
					if total, err = binOp("+", total, it); err != nil {
						return nil, err
					}
				}
				return total, nil
			}
			if len(items) == 0 {
				if d, ok := kw["default"]; ok {
					return d, nil
				}
				return nil, fmt.Errorf("%s() arg is an empty sequence", name)
			}
			best := items[0]
			for _, it := range items[1:] {
				c, err := compare(it, best)
				if err != nil {
					return nil, err
				}
				if (name == "min" && c < 0) || (name == "max" && c > 0) {
					best = it
				}
			}
			return best, nil
		})
	}
	add("abs", func(a []any, _ map[string]any) (any, error) {
		if err := wantArgs(a, 1, 1); err != nil {
			return nil, err
		}
		switch x := a[0].(type) {
		case int64:
			if x < 0 {
				return -x, nil
			}
			return x, nil
		case float64:
			return math.Abs(x), nil
		}
		return nil, fmt.Errorf("bad operand type for abs(): %s", typeName(a[0]))
	})
	add("round", func(a []any, _ map[string]any) (any, error) {
		if err := wantArgs(a, 1, 2); err != nil {
			return nil, err
		}
		f, ok := toFloat(a[0])
		if !ok {
			return nil, fmt.Errorf("round() of %s", typeName(a[0]))
		}
		if len(a) == 1 {
			return int64(math.RoundToEven(f)), nil
		}
		n, _ := a[1].(int64)
		p := math.Pow(10, float64(n))
		return math.RoundToEven(f*p) / p, nil
	})
	add("pow", func(a []any, _ map[string]any) (any, error) {
		if err := wantArgs(a, 2, 2); err != nil {
			return nil, err
		}
		return binOp("**", a[0], a[1])
	})
	add("divmod", func(a []any, _ map[string]any) (any, error) {
		if err := wantArgs(a, 2, 2); err != nil {
			return nil, err
		}
		q, err := binOp("//", a[0], a[1])
		if err != nil {
			return nil, err
		}
		r, err := binOp("%", a[0], a[1])
		return tuple(q, r), err
	})
	add("all", func(a []any, _ map[string]any) (any, error) {
		if err := wantArgs(a, 1, 1); err != nil {
			return nil, err
		}
		items, err := iterate(a[0])
		for _, it := range items {
			if t, _ := truth(it); !t {
				return false, err
			}
		}
		return true, err
	})
	add("any", func(a []any, _ map[string]any) (any, error) {
		if err := wantArgs(a, 1, 1); err != nil {
			return nil, err
		}
		items, err := iterate(a[0])
		for _, it := range items {
			if t, _ := truth(it); t {
				return true, err
			}
		}
		return false, err
	})
	add("chr", func(a []any, _ map[string]any) (any, error) {
		i, ok := argN(a, 0, nil, "", nil).(int64)
		if !ok || i < 0 || i > utf8.MaxRune {
			return nil, errors.New("chr() needs a code point")
		}
		return string(rune(i)), nil
	})
	add("ord", func(a []any, _ map[string]any) (any, error) {
		s, ok := argN(a, 0, nil, "", nil).(string)
		if !ok || utf8.RuneCountInString(s) != 1 {
			return nil, errors.New("ord() expected a character")
		}
		r, _ := utf8.DecodeRuneInString(s)
		return int64(r), nil
	})
	intFormat := func(name, prefix string, base int) {
		add(name, func(a []any, _ map[string]any) (any, error) {
			i, ok := argN(a, 0, nil, "", nil).(int64)
			if !ok {
				return nil, fmt.Errorf("%s() needs an integer", name)
			}
			sign := ""
			if i < 0 {
				sign, i = "-", -i
			}
			return sign + prefix + strconv.FormatInt(i, base), nil
		})
	}
	intFormat("hex", "0x", 16)
	intFormat("oct", "0o", 8)
	intFormat("bin", "0b", 2)
	add("callable", func(a []any, _ map[string]any) (any, error) {
		_, ok := argN(a, 0, nil, "", nil).(*Func)
		return ok, nil
	})
	add("isinstance", func(a []any, _ map[string]any) (any, error) {
		if err := wantArgs(a, 2, 2); err != nil {
			return nil, err
		}
		kinds := []any{a[1]}
		if l, ok := a[1].(*List); ok {
			kinds = l.Items
		}
		for _, k := range kinds {
			f, ok := k.(*Func)
			if !ok {
				return nil, errors.New("isinstance() arg 2 must be a type or a tuple of types")
			}
			if isInstance(a[0], f.Name) {
				return true, nil
			}
		}
		return false, nil
	})
	add("map", func(a []any, _ map[string]any) (any, error) {
		if len(a) < 2 {
			return nil, errors.New("map() needs a function and a sequence")
		}
		f, ok := a[0].(*Func)
		if !ok {
			return nil, errors.New("map() needs a function")
		}
		items, err := iterate(a[1])
		if err != nil {
			return nil, err
		}
		out := make([]any, len(items))
		for i, it := range items {
			if out[i], err = f.Call([]any{it}, nil); err != nil {
				return nil, err
			}
		}
		return newList(out), nil
	})
	add("filter", func(a []any, _ map[string]any) (any, error) {
		if err := wantArgs(a, 2, 2); err != nil {
			return nil, err
		}
		items, err := iterate(a[1])
		if err != nil {
			return nil, err
		}
		var out []any
		for _, it := range items {
			keep := it
			if f, ok := a[0].(*Func); ok {
				if keep, err = f.Call([]any{it}, nil); err != nil {
					return nil, err
				}
			}
			if t, _ := truth(keep); t {
				out = append(out, it)
			}
		}
		return newList(out), nil
	})
	add("format", func(a []any, _ map[string]any) (any, error) {
		if err := wantArgs(a, 1, 2); err != nil {
			return nil, err
		}
		if len(a) == 1 {
			return str(a[0]), nil
		}
		return percentFormat("%"+str(a[1]), a[0])
	})
	// assert(cond, *msg) fails the rendering with msg when cond is false.
	add("assert", func(a []any, _ map[string]any) (any, error) {
		if len(a) == 0 {
			return nil, errors.New("assert() needs a condition")
		}
		if t, _ := truth(a[0]); t {
			return nil, nil
		}
		parts := make([]string, len(a)-1)
		for i, m := range a[1:] {
			parts[i] = str(m)
		}
		return nil, fmt.Errorf("AssertionError: %s", strings.Join(parts, " "))
	})
	add("dumps", func(a []any, _ map[string]any) (any, error) {
		if err := wantArgs(a, 1, 1); err != nil {
			return nil, err
		}
		return dumps(a[0]), nil
	})
	return b
}

func containsItem(items []any, v any) bool {
	for _, it := range items {
		if equal(it, v) {
			return true
		}
	}
	return false
}

func isInstance(v any, typ string) bool {
	switch typ {
	case "str":
		_, ok := v.(string)
		return ok
	case "int":
		switch v.(type) {
		case int64, bool:
			return true
		}
	case "float":
		_, ok := v.(float64)
		return ok
	case "bool":
		_, ok := v.(bool)
		return ok
	case "dict":
		_, ok := v.(map[string]any)
		return ok
	case "list", "set", "frozenset":
		l, ok := v.(*List)
		return ok && !l.Tuple
	case "tuple":
		l, ok := v.(*List)
		return ok && l.Tuple
	}
	return false
}

// dumps serialises a value for a buildout option, as SlapOS's buildout
// does for slapos.recipe.template: a plain string (one line, no
// surrounding blanks, no '$', no leading '!py') is written as is;
// anything else as "!py!" followed by its Python repr, which SlapOS's
// buildout reads back with the type it had.
func dumps(v any) string {
	if s, ok := v.(string); ok && s != "" && strings.TrimSpace(s) == s &&
		!strings.ContainsAny(s, "\n\r$") && !strings.HasPrefix(s, "!py") {
		return s
	}
	return "!py!" + repr(v)
}

// moduleFunc makes a module (an object with attributes).
func module(name string, attrs map[string]any) *Func {
	return &Func{Name: "module " + name, Attrs: attrs, Call: func([]any, map[string]any) (any, error) {
		return nil, fmt.Errorf("module %s is not callable", name)
	}}
}

// Module returns the Go rendition of a Python module a template's context
// imports (slapos.recipe.template's `import NAME MODULE`), and whether
// there is one.
func Module(name string) (any, bool) {
	switch name {
	case "json":
		return jsonModule(), true
	case "re":
		return reModule(), true
	case "os.path", "posixpath":
		return osPathModule(), true
	case "os":
		return module("os", map[string]any{"path": osPathModule(), "sep": "/", "linesep": "\n", "pathsep": ":", "curdir": ".", "pardir": ".."}), true
	case "hashlib":
		return hashlibModule(), true
	case "urllib.parse", "six.moves.urllib.parse", "urlparse":
		return urlParseModule(), true
	case "shlex", "pipes":
		return module(name, map[string]any{"quote": fn("quote", func(a []any, _ map[string]any) (any, error) {
			return shellQuote(str(argN(a, 0, nil, "", ""))), nil
		})}), true
	case "six":
		parse := urlParseModule()
		b := pythonBuiltins()
		return module("six", map[string]any{
			"moves": module("six.moves", map[string]any{
				"urllib":      module("six.moves.urllib", map[string]any{"parse": parse}),
				"shlex_quote": fn("shlex_quote", func(a []any, _ map[string]any) (any, error) { return shellQuote(str(argN(a, 0, nil, "", ""))), nil }),
				"range":       globals()["range"],
				"zip":         b["zip"],
				"map":         b["map"],
			}),
			"text_type":     b["str"],
			"string_types":  tuple(b["str"]),
			"integer_types": tuple(b["int"]),
			"iteritems": fn("iteritems", func(a []any, _ map[string]any) (any, error) {
				m, ok := argN(a, 0, nil, "", nil).(map[string]any)
				if !ok {
					return nil, errors.New("iteritems() needs a dict")
				}
				return pairs(m), nil
			}),
			"PY2": false,
			"PY3": true,
		}), true
	}
	return nil, false
}

// Modules lists the module names Module knows.
func Modules() []string {
	return []string{"hashlib", "json", "os", "os.path", "pipes", "posixpath", "re", "shlex", "six", "six.moves.urllib.parse", "urllib.parse", "urlparse"}
}

func jsonModule() *Func {
	return module("json", map[string]any{
		"dumps": fn("dumps", func(a []any, kw map[string]any) (any, error) {
			if err := wantArgs(a, 1, 1); err != nil {
				return nil, err
			}
			indent := -1
			if i, ok := kw["indent"].(int64); ok {
				indent = int(i)
			}
			sortKeys, _ := truth(kw["sort_keys"])
			_ = sortKeys // dicts are always written in sorted key order
			sep := [2]string{", ", ": "}
			if indent >= 0 {
				sep[0] = ","
			}
			if s, ok := kw["separators"].(*List); ok && len(s.Items) == 2 {
				sep = [2]string{str(s.Items[0]), str(s.Items[1])}
			}
			var b strings.Builder
			if err := writePyJSON(&b, a[0], indent, 0, sep); err != nil {
				return nil, err
			}
			return b.String(), nil
		}),
		"loads": fn("loads", func(a []any, _ map[string]any) (any, error) {
			if err := wantArgs(a, 1, 1); err != nil {
				return nil, err
			}
			return ParseJSON(str(a[0]))
		}),
	})
}

// writePyJSON writes v as Python's json.dumps does (non-ASCII escaped as
// \uXXXX, keys sorted since the engine's dicts keep no insertion order).
func writePyJSON(b *strings.Builder, v any, indent, depth int, sep [2]string) error {
	nl := func(d int) {
		if indent >= 0 {
			b.WriteByte('\n')
			b.WriteString(strings.Repeat(" ", indent*d))
		}
	}
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		if x {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case float64:
		switch {
		case math.IsInf(x, 1):
			b.WriteString("Infinity")
		case math.IsInf(x, -1):
			b.WriteString("-Infinity")
		case math.IsNaN(x):
			b.WriteString("NaN")
		default:
			b.WriteString(formatFloat(x))
		}
	case string:
		b.WriteByte('"')
		for _, r := range x {
			switch {
			case r == '"' || r == '\\':
				b.WriteByte('\\')
				b.WriteRune(r)
			case r == '\n':
				b.WriteString(`\n`)
			case r == '\r':
				b.WriteString(`\r`)
			case r == '\t':
				b.WriteString(`\t`)
			case r == '\b':
				b.WriteString(`\b`)
			case r == '\f':
				b.WriteString(`\f`)
			case r < 0x20 || r > 0x7e:
				if r > 0xffff {
					r -= 0x10000
					fmt.Fprintf(b, `\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
				} else {
					fmt.Fprintf(b, `\u%04x`, r)
				}
			default:
				b.WriteRune(r)
			}
		}
		b.WriteByte('"')
	case *List:
		if len(x.Items) == 0 {
			b.WriteString("[]")
			return nil
		}
		b.WriteByte('[')
		for i, e := range x.Items {
			if i > 0 {
				b.WriteString(sep[0])
			}
			nl(depth + 1)
			if err := writePyJSON(b, e, indent, depth+1, sep); err != nil {
				return err
			}
		}
		nl(depth)
		b.WriteByte(']')
	case map[string]any:
		if len(x) == 0 {
			b.WriteString("{}")
			return nil
		}
		b.WriteByte('{')
		for i, k := range sortedKeys(x) {
			if i > 0 {
				b.WriteString(sep[0])
			}
			nl(depth + 1)
			if err := writePyJSON(b, k, indent, depth+1, sep); err != nil {
				return err
			}
			b.WriteString(sep[1])
			if err := writePyJSON(b, x[k], indent, depth+1, sep); err != nil {
				return err
			}
		}
		nl(depth)
		b.WriteByte('}')
	default:
		return fmt.Errorf("Object of type %s is not JSON serializable", typeName(v))
	}
	return nil
}

func reModule() *Func {
	compile := func(p any) (*regexp.Regexp, error) {
		s := str(p)
		// Python's (?P<name>…) is Go's syntax too; \Z is Go's \z.
		s = strings.ReplaceAll(s, `\Z`, `\z`)
		re, err := regexp.Compile(s)
		if err != nil {
			return nil, fmt.Errorf("regular expression %s: %v", repr(p), err)
		}
		return re, nil
	}
	matchObj := func(re *regexp.Regexp, s string, loc []int) any {
		if loc == nil {
			return nil
		}
		group := func(i int) any {
			if i < 0 || 2*i+1 >= len(loc) || loc[2*i] < 0 {
				return nil
			}
			return s[loc[2*i]:loc[2*i+1]]
		}
		return module("re.Match", map[string]any{
			"group": fn("group", func(a []any, _ map[string]any) (any, error) {
				if len(a) == 0 {
					return group(0), nil
				}
				var out []any
				for _, g := range a {
					i, ok := g.(int64)
					if !ok {
						i = int64(re.SubexpIndex(str(g)))
					}
					out = append(out, group(int(i)))
				}
				if len(out) == 1 {
					return out[0], nil
				}
				return tuple(out...), nil
			}),
			"groups": fn("groups", func([]any, map[string]any) (any, error) {
				var out []any
				for i := 1; i <= re.NumSubexp(); i++ {
					out = append(out, group(i))
				}
				return tuple(out...), nil
			}),
			"groupdict": fn("groupdict", func([]any, map[string]any) (any, error) {
				m := map[string]any{}
				for i, n := range re.SubexpNames() {
					if n != "" {
						m[n] = group(i)
					}
				}
				return m, nil
			}),
			"start": fn("start", func([]any, map[string]any) (any, error) { return int64(loc[0]), nil }),
			"end":   fn("end", func([]any, map[string]any) (any, error) { return int64(loc[1]), nil }),
		})
	}
	return module("re", map[string]any{
		"match": fn("match", func(a []any, _ map[string]any) (any, error) {
			if err := wantArgs(a, 2, 3); err != nil {
				return nil, err
			}
			re, err := compile(a[0])
			if err != nil {
				return nil, err
			}
			s := str(a[1])
			loc := re.FindStringSubmatchIndex(s)
			if loc == nil || loc[0] != 0 {
				// Anchor at the start as Python's match does.
				re2, err := compile(`^(?:` + str(a[0]) + `)`)
				if err != nil {
					return nil, err
				}
				loc = re2.FindStringSubmatchIndex(s)
				return matchObj(re2, s, loc), nil
			}
			return matchObj(re, s, loc), nil
		}),
		"fullmatch": fn("fullmatch", func(a []any, _ map[string]any) (any, error) {
			if err := wantArgs(a, 2, 3); err != nil {
				return nil, err
			}
			re, err := compile(`^(?:` + str(a[0]) + `)$`)
			if err != nil {
				return nil, err
			}
			s := str(a[1])
			return matchObj(re, s, re.FindStringSubmatchIndex(s)), nil
		}),
		"search": fn("search", func(a []any, _ map[string]any) (any, error) {
			if err := wantArgs(a, 2, 3); err != nil {
				return nil, err
			}
			re, err := compile(a[0])
			if err != nil {
				return nil, err
			}
			s := str(a[1])
			return matchObj(re, s, re.FindStringSubmatchIndex(s)), nil
		}),
		"findall": fn("findall", func(a []any, _ map[string]any) (any, error) {
			if err := wantArgs(a, 2, 3); err != nil {
				return nil, err
			}
			re, err := compile(a[0])
			if err != nil {
				return nil, err
			}
			var out []any
			for _, m := range re.FindAllStringSubmatch(str(a[1]), -1) {
				switch {
				case len(m) == 1:
					out = append(out, m[0])
				case len(m) == 2:
					out = append(out, m[1])
				default:
					t := make([]any, len(m)-1)
					for i, g := range m[1:] {
						t[i] = g
					}
					out = append(out, tuple(t...))
				}
			}
			return newList(out), nil
		}),
		"sub": fn("sub", func(a []any, kw map[string]any) (any, error) {
			if err := wantArgs(a, 3, 4); err != nil {
				return nil, err
			}
			re, err := compile(a[0])
			if err != nil {
				return nil, err
			}
			// Python's \1 and \g<name> are Go's ${1} and ${name}.
			repl := regexp.MustCompile(`\\(\d+)|\\g<(\w+)>`).ReplaceAllString(strings.ReplaceAll(str(a[1]), "$", "$$"), "$${$1$2}")
			return re.ReplaceAllString(str(a[2]), repl), nil
		}),
		"split": fn("split", func(a []any, _ map[string]any) (any, error) {
			if err := wantArgs(a, 2, 3); err != nil {
				return nil, err
			}
			re, err := compile(a[0])
			if err != nil {
				return nil, err
			}
			var out []any
			for _, p := range re.Split(str(a[1]), -1) {
				out = append(out, p)
			}
			return newList(out), nil
		}),
		"escape": fn("escape", func(a []any, _ map[string]any) (any, error) {
			return regexp.QuoteMeta(str(argN(a, 0, nil, "", ""))), nil
		}),
	})
}

func osPathModule() *Func {
	strs := func(a []any) []string {
		out := make([]string, len(a))
		for i, x := range a {
			out[i] = str(x)
		}
		return out
	}
	return module("os.path", map[string]any{
		"join": fn("join", func(a []any, _ map[string]any) (any, error) {
			// Python's join restarts at an absolute component.
			out := ""
			for _, p := range strs(a) {
				switch {
				case strings.HasPrefix(p, "/") || out == "":
					out = p
				case strings.HasSuffix(out, "/"):
					out += p
				default:
					out += "/" + p
				}
			}
			return out, nil
		}),
		"basename": fn("basename", func(a []any, _ map[string]any) (any, error) {
			s := str(argN(a, 0, nil, "", ""))
			return s[strings.LastIndexByte(s, '/')+1:], nil
		}),
		"dirname": fn("dirname", func(a []any, _ map[string]any) (any, error) {
			s := str(argN(a, 0, nil, "", ""))
			d := s[:strings.LastIndexByte(s, '/')+1]
			if t := strings.TrimRight(d, "/"); t != "" {
				d = t
			}
			return d, nil
		}),
		"normpath": fn("normpath", func(a []any, _ map[string]any) (any, error) {
			return path.Clean(str(argN(a, 0, nil, "", ""))), nil
		}),
		"isabs": fn("isabs", func(a []any, _ map[string]any) (any, error) {
			return strings.HasPrefix(str(argN(a, 0, nil, "", "")), "/"), nil
		}),
		"splitext": fn("splitext", func(a []any, _ map[string]any) (any, error) {
			s := str(argN(a, 0, nil, "", ""))
			ext := path.Ext(s)
			if strings.HasPrefix(path.Base(s), ".") && path.Base(s) == ext {
				ext = ""
			}
			return tuple(s[:len(s)-len(ext)], ext), nil
		}),
		"sep": "/",
	})
}

func hashlibModule() *Func {
	ctor := func(name string, h func() hash.Hash) *Func {
		return fn(name, func(a []any, _ map[string]any) (any, error) {
			d := h()
			if len(a) > 0 {
				d.Write([]byte(str(a[0])))
			}
			var obj *Func
			obj = module("hashlib."+name, map[string]any{
				"update": fn("update", func(a []any, _ map[string]any) (any, error) {
					d.Write([]byte(str(argN(a, 0, nil, "", ""))))
					return nil, nil
				}),
				"hexdigest": fn("hexdigest", func([]any, map[string]any) (any, error) {
					return hex.EncodeToString(d.Sum(nil)), nil
				}),
				"digest": fn("digest", func([]any, map[string]any) (any, error) {
					return string(d.Sum(nil)), nil
				}),
			})
			return obj, nil
		})
	}
	return module("hashlib", map[string]any{
		"md5":    ctor("md5", md5.New),
		"sha1":   ctor("sha1", sha1.New),
		"sha256": ctor("sha256", sha256.New),
		"sha512": ctor("sha512", sha512.New),
	})
}

func urlParseModule() *Func {
	parsed := func(u *url.URL, withParams bool) any {
		host := u.Hostname()
		var port any
		if p := u.Port(); p != "" {
			n, _ := strconv.ParseInt(p, 10, 64)
			port = n
		}
		var username, password any
		if u.User != nil {
			username = u.User.Username()
			if p, ok := u.User.Password(); ok {
				password = p
			}
		}
		pth := u.EscapedPath()
		if u.Opaque != "" {
			pth = u.Opaque
		}
		netloc := u.Host
		if u.User != nil {
			netloc = u.User.String() + "@" + netloc
		}
		items := []any{u.Scheme, netloc, pth}
		if withParams {
			items = append(items, "")
		}
		items = append(items, u.RawQuery, u.Fragment)
		var hostname any
		if host != "" {
			hostname = strings.ToLower(host)
		}
		t := tuple(items...)
		attrs := map[string]any{"scheme": u.Scheme, "netloc": netloc, "path": pth, "query": u.RawQuery,
			"fragment": u.Fragment, "hostname": hostname, "port": port, "username": username, "password": password,
			"params": "", "geturl": fn("geturl", func([]any, map[string]any) (any, error) { return u.String(), nil })}
		return &Func{Name: "ParseResult", Attrs: attrs, Call: func([]any, map[string]any) (any, error) {
			return t, nil
		}}
	}
	parse := func(name string, withParams bool) *Func {
		return fn(name, func(a []any, _ map[string]any) (any, error) {
			u, err := url.Parse(str(argN(a, 0, nil, "", "")))
			if err != nil {
				return nil, err
			}
			return parsed(u, withParams), nil
		})
	}
	quote := func(name string, plus bool) *Func {
		return fn(name, func(a []any, kw map[string]any) (any, error) {
			safe := "/"
			if plus {
				safe = ""
			}
			if s, ok := argN(a, 1, kw, "safe", nil).(string); ok {
				safe = s
			}
			return pyQuoteURL(str(argN(a, 0, nil, "", "")), safe, plus), nil
		})
	}
	return module("urllib.parse", map[string]any{
		"urlparse":   parse("urlparse", true),
		"urlsplit":   parse("urlsplit", false),
		"quote":      quote("quote", false),
		"quote_plus": quote("quote_plus", true),
		"unquote": fn("unquote", func(a []any, _ map[string]any) (any, error) {
			s, err := url.PathUnescape(str(argN(a, 0, nil, "", "")))
			return s, err
		}),
		"unquote_plus": fn("unquote_plus", func(a []any, _ map[string]any) (any, error) {
			s, err := url.QueryUnescape(str(argN(a, 0, nil, "", "")))
			return s, err
		}),
		"urlencode": fn("urlencode", func(a []any, _ map[string]any) (any, error) {
			var ps *List
			switch x := argN(a, 0, nil, "", nil).(type) {
			case map[string]any:
				ps = pairs(x)
			case *List:
				ps = x
			default:
				return nil, errors.New("urlencode() needs a dict or a list of pairs")
			}
			var parts []string
			for _, p := range ps.Items {
				kv, ok := p.(*List)
				if !ok || len(kv.Items) != 2 {
					return nil, errors.New("urlencode() needs (key, value) pairs")
				}
				parts = append(parts, pyQuoteURL(str(kv.Items[0]), "", true)+"="+pyQuoteURL(str(kv.Items[1]), "", true))
			}
			return strings.Join(parts, "&"), nil
		}),
	})
}

// pyQuoteURL is urllib.parse.quote: letters, digits, "_.-~" and the safe
// characters are kept, the rest percent-encoded (spaces as "+" with plus).
func pyQuoteURL(s, safe string, plus bool) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', strings.IndexByte("_.-~", c) >= 0, strings.IndexByte(safe, c) >= 0:
			b.WriteByte(c)
		case plus && c == ' ':
			b.WriteByte('+')
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// shellQuote is shlex.quote.
func shellQuote(s string) string {
	if s == "" {
		return "''"
	}
	if regexp.MustCompile(`^[\w@%+=:,./-]+$`).MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'"
}

// ParseJSON decodes JSON text into engine values (integers stay integers,
// as with Python's json.loads).
func ParseJSON(text string) (any, error) {
	d := json.NewDecoder(strings.NewReader(text))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, fmt.Errorf("invalid JSON: %v", err)
	}
	if d.More() {
		return nil, errors.New("invalid JSON: extra data after the value")
	}
	return fromJSON(v), nil
}

func fromJSON(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = fromJSON(e)
		}
		return newList(out)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = fromJSON(e)
		}
		return out
	}
	return v
}
