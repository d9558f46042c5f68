package jinja

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode"
)

// sharedGlobals are the globals every render reads, built once: about 70
// functions whose map cost a template call in the cookbook a tenth of its
// guest time. Templates never write to them: assignments go to the
// template's own frames and only namespace() objects and dicts take
// attributes (TestGlobalsShared).
var sharedGlobals = sync.OnceValue(globals)

func globals() map[string]any {
	g := pythonBuiltins()
	for k, v := range jinjaGlobals() {
		g[k] = v
	}
	return g
}

// jinjaGlobals are Jinja2's own globals.
func jinjaGlobals() map[string]any {
	return map[string]any{
		"cycler": &Func{Name: "cycler", Call: func(args []any, _ map[string]any) (any, error) {
			if len(args) == 0 {
				return nil, errors.New("cycler() needs at least one item")
			}
			pos := 0
			c := &Func{Name: "cycler", Attrs: map[string]any{}}
			c.Attrs["items"] = newList(args)
			c.Attrs["current"] = args[0]
			c.Attrs["next"] = fn("next", func([]any, map[string]any) (any, error) {
				v := args[pos]
				pos = (pos + 1) % len(args)
				c.Attrs["current"] = args[pos]
				return v, nil
			})
			c.Attrs["reset"] = fn("reset", func([]any, map[string]any) (any, error) {
				pos = 0
				c.Attrs["current"] = args[0]
				return nil, nil
			})
			c.Call = func([]any, map[string]any) (any, error) {
				return nil, errors.New("a cycler is not callable: use .next()")
			}
			return c, nil
		}},
		"joiner": &Func{Name: "joiner", Call: func(args []any, kw map[string]any) (any, error) {
			sep := str(argN(args, 0, kw, "sep", ", "))
			used := false
			return fn("joiner", func([]any, map[string]any) (any, error) {
				if !used {
					used = true
					return "", nil
				}
				return sep, nil
			}), nil
		}},
		"range": &Func{Name: "range", Call: func(args []any, _ map[string]any) (any, error) {
			var ints []int64
			for _, a := range args {
				i, ok := a.(int64)
				if !ok {
					return nil, fmt.Errorf("arguments must be integers, not %s", typeName(a))
				}
				ints = append(ints, i)
			}
			start, stop, step := int64(0), int64(0), int64(1)
			switch len(ints) {
			case 1:
				stop = ints[0]
			case 2:
				start, stop = ints[0], ints[1]
			case 3:
				start, stop, step = ints[0], ints[1], ints[2]
			default:
				return nil, errors.New("takes 1 to 3 arguments")
			}
			if step == 0 {
				return nil, errors.New("step must not be zero")
			}
			var out []any
			for i := start; (step > 0 && i < stop) || (step < 0 && i > stop); i += step {
				if len(out) >= 1<<20 {
					return nil, errors.New("range too large")
				}
				out = append(out, i)
			}
			return newList(out), nil
		}},
		"dict": &Func{Name: "dict", Call: func(args []any, kw map[string]any) (any, error) {
			m := map[string]any{}
			for _, a := range args {
				if err := dictUpdate(m, a); err != nil {
					return nil, err
				}
			}
			for k, v := range kw {
				m[k] = v
			}
			return m, nil
		}},
		"namespace": &Func{Name: "namespace", Call: func(args []any, kw map[string]any) (any, error) {
			m := map[string]any{}
			for _, a := range args {
				if err := dictUpdate(m, a); err != nil {
					return nil, err
				}
			}
			for k, v := range kw {
				m[k] = v
			}
			return m, nil
		}},
	}
}

// dictUpdate merges a dict or a list of pairs into m.
func dictUpdate(m map[string]any, src any) error {
	switch x := src.(type) {
	case map[string]any:
		for k, v := range x {
			m[k] = v
		}
		return nil
	case *List:
		for _, it := range x.Items {
			p, ok := it.(*List)
			if !ok || len(p.Items) != 2 {
				return fmt.Errorf("needs a dict or a list of (key, value) pairs, found %s", repr(it))
			}
			m[str(p.Items[0])] = p.Items[1]
		}
		return nil
	}
	return fmt.Errorf("needs a dict or a list of pairs, not %s", typeName(src))
}

func argN(args []any, i int, kw map[string]any, name string, def any) any {
	if i < len(args) {
		return args[i]
	}
	if v, ok := kw[name]; ok {
		return v
	}
	return def
}

func wantArgs(args []any, lo, hi int) error {
	if len(args) < lo || len(args) > hi {
		if lo == hi {
			return fmt.Errorf("takes %d arguments, %d given", lo, len(args))
		}
		return fmt.Errorf("takes %d to %d arguments, %d given", lo, hi, len(args))
	}
	return nil
}

func fn(name string, call func(args []any, kw map[string]any) (any, error)) *Func {
	return &Func{Name: name, Call: call}
}

// method returns the bound method name of obj, or nil.
func method(obj any, name string) *Func {
	switch x := obj.(type) {
	case map[string]any:
		return dictMethod(x, name)
	case *List:
		return listMethod(x, name)
	case string:
		return strMethod(x, name)
	}
	return nil
}

func pairs(m map[string]any) *List {
	var out []any
	for _, k := range sortedKeys(m) {
		out = append(out, tuple(k, m[k]))
	}
	return newList(out)
}

func dictMethod(m map[string]any, name string) *Func {
	switch name {
	case "get":
		return fn(name, func(a []any, kw map[string]any) (any, error) {
			if err := wantArgs(a, 1, 2); err != nil {
				return nil, err
			}
			if v, ok := m[str(a[0])]; ok {
				return v, nil
			}
			return argN(a, 1, kw, "default", nil), nil
		})
	case "items", "iteritems":
		return fn(name, func([]any, map[string]any) (any, error) { return pairs(m), nil })
	case "keys", "iterkeys":
		return fn(name, func([]any, map[string]any) (any, error) {
			var out []any
			for _, k := range sortedKeys(m) {
				out = append(out, k)
			}
			return newList(out), nil
		})
	case "values", "itervalues":
		return fn(name, func([]any, map[string]any) (any, error) {
			var out []any
			for _, k := range sortedKeys(m) {
				out = append(out, m[k])
			}
			return newList(out), nil
		})
	case "update":
		return fn(name, func(a []any, kw map[string]any) (any, error) {
			for _, x := range a {
				if err := dictUpdate(m, x); err != nil {
					return nil, err
				}
			}
			for k, v := range kw {
				m[k] = v
			}
			return nil, nil
		})
	case "setdefault":
		return fn(name, func(a []any, _ map[string]any) (any, error) {
			if err := wantArgs(a, 1, 2); err != nil {
				return nil, err
			}
			k := str(a[0])
			if v, ok := m[k]; ok {
				return v, nil
			}
			m[k] = argN(a, 1, nil, "", nil)
			return m[k], nil
		})
	case "pop":
		return fn(name, func(a []any, _ map[string]any) (any, error) {
			if err := wantArgs(a, 1, 2); err != nil {
				return nil, err
			}
			k := str(a[0])
			if v, ok := m[k]; ok {
				delete(m, k)
				return v, nil
			}
			if len(a) == 2 {
				return a[1], nil
			}
			return nil, fmt.Errorf("key %s not found", repr(a[0]))
		})
	case "copy":
		return fn(name, func([]any, map[string]any) (any, error) {
			c := make(map[string]any, len(m))
			for k, v := range m {
				c[k] = v
			}
			return c, nil
		})
	case "__setitem__":
		return fn(name, func(a []any, _ map[string]any) (any, error) {
			if err := wantArgs(a, 2, 2); err != nil {
				return nil, err
			}
			m[str(a[0])] = a[1]
			return nil, nil
		})
	case "__getitem__":
		return fn(name, func(a []any, _ map[string]any) (any, error) {
			if err := wantArgs(a, 1, 1); err != nil {
				return nil, err
			}
			if v, ok := m[str(a[0])]; ok {
				return v, nil
			}
			return nil, fmt.Errorf("key %s not found", repr(a[0]))
		})
	case "__contains__", "has_key":
		return fn(name, func(a []any, _ map[string]any) (any, error) {
			if err := wantArgs(a, 1, 1); err != nil {
				return nil, err
			}
			_, ok := m[str(a[0])]
			return ok, nil
		})
	}
	return moreDictMethod(m, name)
}

func listMethod(l *List, name string) *Func {
	switch name {
	case "append":
		return fn(name, func(a []any, _ map[string]any) (any, error) {
			if err := wantArgs(a, 1, 1); err != nil {
				return nil, err
			}
			l.Items = append(l.Items, a[0])
			return nil, nil
		})
	case "extend":
		return fn(name, func(a []any, _ map[string]any) (any, error) {
			if err := wantArgs(a, 1, 1); err != nil {
				return nil, err
			}
			items, err := iterate(a[0])
			if err != nil {
				return nil, err
			}
			l.Items = append(l.Items, items...)
			return nil, nil
		})
	case "insert":
		return fn(name, func(a []any, _ map[string]any) (any, error) {
			if err := wantArgs(a, 2, 2); err != nil {
				return nil, err
			}
			i, ok := a[0].(int64)
			if !ok {
				return nil, errors.New("index must be an integer")
			}
			n := int64(len(l.Items))
			if i < 0 {
				i = max(i+n, 0)
			}
			i = min(i, n)
			l.Items = append(l.Items[:i], append([]any{a[1]}, l.Items[i:]...)...)
			return nil, nil
		})
	case "pop":
		return fn(name, func(a []any, _ map[string]any) (any, error) {
			if len(l.Items) == 0 {
				return nil, errors.New("pop from empty list")
			}
			i := int64(len(l.Items) - 1)
			if len(a) > 0 {
				j, ok := a[0].(int64)
				if !ok {
					return nil, errors.New("index must be an integer")
				}
				if j < 0 {
					j += int64(len(l.Items))
				}
				if j < 0 || j >= int64(len(l.Items)) {
					return nil, errors.New("pop index out of range")
				}
				i = j
			}
			v := l.Items[i]
			l.Items = append(l.Items[:i], l.Items[i+1:]...)
			return v, nil
		})
	case "index", "count", "remove":
		return fn(name, func(a []any, _ map[string]any) (any, error) {
			if err := wantArgs(a, 1, 1); err != nil {
				return nil, err
			}
			n := int64(0)
			for i, x := range l.Items {
				if equal(x, a[0]) {
					switch name {
					case "index":
						return int64(i), nil
					case "remove":
						l.Items = append(l.Items[:i], l.Items[i+1:]...)
						return nil, nil
					}
					n++
				}
			}
			if name == "count" {
				return n, nil
			}
			return nil, fmt.Errorf("%s is not in the list", repr(a[0]))
		})
	case "copy":
		return fn(name, func([]any, map[string]any) (any, error) {
			return &List{Items: append([]any(nil), l.Items...), Tuple: l.Tuple}, nil
		})
	case "sort":
		return fn(name, func(a []any, kw map[string]any) (any, error) {
			rev, _ := truth(argN(nil, 0, kw, "reverse", false))
			return nil, sortItems(l.Items, rev, false, "")
		})
	case "reverse":
		return fn(name, func([]any, map[string]any) (any, error) {
			for i, j := 0, len(l.Items)-1; i < j; i, j = i+1, j-1 {
				l.Items[i], l.Items[j] = l.Items[j], l.Items[i]
			}
			return nil, nil
		})
	}
	return moreListMethod(l, name)
}

func strArg(a []any, i int, what string) (string, error) {
	s, ok := a[i].(string)
	if !ok {
		return "", fmt.Errorf("%s must be a string, not %s", what, typeName(a[i]))
	}
	return s, nil
}

func strMethod(s, name string) *Func {
	simple := map[string]func(string) any{
		"upper":      func(s string) any { return strings.ToUpper(s) },
		"lower":      func(s string) any { return strings.ToLower(s) },
		"title":      func(s string) any { return title(s) },
		"capitalize": func(s string) any { return capitalize(s) },
		"splitlines": func(s string) any {
			var out []any
			for _, l := range strings.Split(strings.TrimSuffix(strings.ReplaceAll(s, "\r\n", "\n"), "\n"), "\n") {
				out = append(out, l)
			}
			if s == "" {
				out = nil
			}
			return newList(out)
		},
		"isdigit": func(s string) any {
			return s != "" && strings.IndexFunc(s, func(r rune) bool { return !unicode.IsDigit(r) }) < 0
		},
		"isalpha": func(s string) any {
			return s != "" && strings.IndexFunc(s, func(r rune) bool { return !unicode.IsLetter(r) }) < 0
		},
	}
	if f, ok := simple[name]; ok {
		return fn(name, func([]any, map[string]any) (any, error) { return f(s), nil })
	}
	switch name {
	case "strip", "lstrip", "rstrip":
		return fn(name, func(a []any, _ map[string]any) (any, error) {
			cut := " \t\n\r\v\f"
			if len(a) > 0 && a[0] != nil {
				c, err := strArg(a, 0, "chars")
				if err != nil {
					return nil, err
				}
				cut = c
			}
			switch name {
			case "lstrip":
				return strings.TrimLeft(s, cut), nil
			case "rstrip":
				return strings.TrimRight(s, cut), nil
			}
			return strings.Trim(s, cut), nil
		})
	case "split", "rsplit":
		return fn(name, func(a []any, kw map[string]any) (any, error) {
			sep := argN(a, 0, kw, "sep", nil)
			maxs, _ := argN(a, 1, kw, "maxsplit", int64(-1)).(int64)
			var parts []string
			if sep == nil {
				parts = strings.Fields(s)
				if maxs >= 0 && int64(len(parts)) > maxs+1 {
					// Re-split keeping the remainder intact, as Python does.
					parts = splitFieldsN(s, int(maxs), name == "rsplit")
				}
			} else {
				sp, ok := sep.(string)
				if !ok || sp == "" {
					return nil, errors.New("separator must be a non-empty string")
				}
				if name == "rsplit" && maxs >= 0 {
					parts = rsplitN(s, sp, int(maxs))
				} else {
					parts = strings.SplitN(s, sp, int(maxs+1))
					if maxs < 0 {
						parts = strings.Split(s, sp)
					}
				}
			}
			out := make([]any, len(parts))
			for i, p := range parts {
				out[i] = p
			}
			return newList(out), nil
		})
	case "startswith", "endswith":
		return fn(name, func(a []any, _ map[string]any) (any, error) {
			if err := wantArgs(a, 1, 1); err != nil {
				return nil, err
			}
			var cands []any
			if l, ok := a[0].(*List); ok {
				cands = l.Items
			} else {
				cands = []any{a[0]}
			}
			for _, c := range cands {
				p, ok := c.(string)
				if !ok {
					return nil, errors.New("argument must be a string or a tuple of strings")
				}
				if (name == "startswith" && strings.HasPrefix(s, p)) || (name == "endswith" && strings.HasSuffix(s, p)) {
					return true, nil
				}
			}
			return false, nil
		})
	case "replace":
		return fn(name, func(a []any, _ map[string]any) (any, error) {
			return replace(s, a)
		})
	case "join":
		return fn(name, func(a []any, _ map[string]any) (any, error) {
			if err := wantArgs(a, 1, 1); err != nil {
				return nil, err
			}
			items, err := iterate(a[0])
			if err != nil {
				return nil, err
			}
			parts := make([]string, len(items))
			for i, it := range items {
				p, ok := it.(string)
				if !ok {
					return nil, fmt.Errorf("item %d is %s, not a string", i, typeName(it))
				}
				parts[i] = p
			}
			return strings.Join(parts, s), nil
		})
	case "find", "count":
		return fn(name, func(a []any, _ map[string]any) (any, error) {
			if err := wantArgs(a, 1, 1); err != nil {
				return nil, err
			}
			sub, err := strArg(a, 0, "argument")
			if err != nil {
				return nil, err
			}
			if name == "count" {
				return int64(strings.Count(s, sub)), nil
			}
			i := strings.Index(s, sub)
			if i < 0 {
				return int64(-1), nil
			}
			return int64(len([]rune(s[:i]))), nil
		})
	case "format":
		return fn(name, func(a []any, kw map[string]any) (any, error) { return braceFormat(s, a, kw) })
	case "zfill":
		return fn(name, func(a []any, _ map[string]any) (any, error) {
			if err := wantArgs(a, 1, 1); err != nil {
				return nil, err
			}
			w, _ := a[0].(int64)
			if err := sizeOK(1, w); err != nil {
				return nil, err
			}
			if pad := w - int64(len(s)); pad > 0 {
				s = strings.Repeat("0", int(pad)) + s
			}
			return s, nil
		})
	}
	return moreStrMethod(s, name)
}

func splitFieldsN(s string, n int, fromRight bool) []string {
	if fromRight {
		var out []string
		rest := strings.TrimRight(s, " \t\n\r\v\f")
		for len(out) < n {
			i := strings.LastIndexAny(rest, " \t\n\r\v\f")
			if i < 0 {
				break
			}
			out = append([]string{rest[i+1:]}, out...)
			rest = strings.TrimRight(rest[:i], " \t\n\r\v\f")
		}
		return append([]string{rest}, out...)
	}
	var out []string
	rest := strings.TrimLeft(s, " \t\n\r\v\f")
	for len(out) < n {
		i := strings.IndexAny(rest, " \t\n\r\v\f")
		if i < 0 {
			break
		}
		out = append(out, rest[:i])
		rest = strings.TrimLeft(rest[i:], " \t\n\r\v\f")
	}
	if rest != "" {
		out = append(out, rest)
	}
	return out
}

func rsplitN(s, sep string, n int) []string {
	var out []string
	for len(out) < n {
		i := strings.LastIndex(s, sep)
		if i < 0 {
			break
		}
		out = append([]string{s[i+len(sep):]}, out...)
		s = s[:i]
	}
	return append([]string{s}, out...)
}

func replace(s string, a []any) (any, error) {
	if err := wantArgs(a, 2, 3); err != nil {
		return nil, err
	}
	old, err := strArg(a, 0, "old")
	if err != nil {
		return nil, err
	}
	newS, ok := a[1].(string)
	if !ok {
		newS = str(a[1])
	}
	n := -1
	if len(a) == 3 {
		c, ok := a[2].(int64)
		if !ok {
			return nil, errors.New("count must be an integer")
		}
		n = int(c)
	}
	return strings.Replace(s, old, newS, n), nil
}

func title(s string) string {
	prev := false
	return strings.Map(func(r rune) rune {
		isL := unicode.IsLetter(r)
		defer func() { prev = isL }()
		if isL && !prev {
			return unicode.ToUpper(r)
		}
		if isL {
			return unicode.ToLower(r)
		}
		return r
	}, s)
}

func capitalize(s string) string {
	r := []rune(strings.ToLower(s))
	if len(r) > 0 {
		r[0] = unicode.ToUpper(r[0])
	}
	return string(r)
}

// braceFormat implements str.format with {}, {0} and {name} fields.
func braceFormat(s string, args []any, kw map[string]any) (any, error) {
	var b strings.Builder
	auto := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '{' && i+1 < len(s) && s[i+1] == '{' || c == '}' && i+1 < len(s) && s[i+1] == '}' {
			b.WriteByte(c)
			i++
			continue
		}
		if c != '{' {
			b.WriteByte(c)
			continue
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			return nil, errors.New("format: single '{' without '}'")
		}
		field := s[i+1 : i+j]
		if k := strings.IndexAny(field, ":!"); k >= 0 {
			return nil, fmt.Errorf("format: conversions and format specs ({%s}) are not supported", field)
		}
		var v any
		switch n, err := strconv.Atoi(field); {
		case field == "":
			if auto >= len(args) {
				return nil, errors.New("format: not enough arguments")
			}
			v = args[auto]
			auto++
		case err == nil:
			if n >= len(args) {
				return nil, fmt.Errorf("format: no argument %d", n)
			}
			v = args[n]
		default:
			var ok bool
			if v, ok = kw[field]; !ok {
				return nil, fmt.Errorf("format: no keyword argument %q", field)
			}
		}
		b.WriteString(str(v))
		i += j
	}
	return b.String(), nil
}

// percentFormat implements Python's "fmt % args" for the conversions
// templates use: s r d i f x o % with flags, width and precision.
func percentFormat(format string, arg any) (any, error) {
	var args []any
	named, _ := arg.(map[string]any)
	if l, ok := arg.(*List); ok && l.Tuple {
		args = l.Items
	} else if named == nil {
		args = []any{arg}
	}
	var b strings.Builder
	next := 0
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			b.WriteByte(format[i])
			continue
		}
		i++
		if i >= len(format) {
			return nil, errors.New("incomplete format")
		}
		var v any
		if format[i] == '(' {
			j := strings.IndexByte(format[i:], ')')
			if j < 0 || named == nil {
				return nil, errors.New("%(name) needs a dict argument")
			}
			v = named[format[i+1:i+j]]
			i += j + 1
		}
		spec := "%"
		for i < len(format) && strings.IndexByte("-+ 0#.123456789", format[i]) >= 0 {
			spec += string(format[i])
			i++
		}
		if len(spec) > 6 {
			// Widths and precisions stay below 10000: "%0999999999d" would
			// allocate gigabytes.
			return nil, fmt.Errorf("format %s: width or precision too large", spec)
		}
		if i >= len(format) {
			return nil, errors.New("incomplete format")
		}
		conv := format[i]
		if conv == '%' {
			b.WriteByte('%')
			continue
		}
		if v == nil && named == nil {
			if next >= len(args) {
				return nil, errors.New("not enough arguments for format string")
			}
			v = args[next]
			next++
		}
		switch conv {
		case 's':
			fmt.Fprintf(&b, spec+"s", str(v))
		case 'r':
			fmt.Fprintf(&b, spec+"s", repr(v))
		case 'd', 'i', 'x', 'X', 'o':
			f, ok := toFloat(v)
			if !ok {
				return nil, fmt.Errorf("%%%c format: a number is required, not %s", conv, typeName(v))
			}
			c := conv
			if c == 'i' {
				c = 'd'
			}
			fmt.Fprintf(&b, spec+string(c), int64(f))
		case 'f', 'F', 'e', 'g':
			f, ok := toFloat(v)
			if !ok {
				return nil, fmt.Errorf("%%%c format: a number is required, not %s", conv, typeName(v))
			}
			if !strings.Contains(spec, ".") && conv != 'g' {
				spec += ".6"
			}
			fmt.Fprintf(&b, spec+string(conv), f)
		default:
			return nil, fmt.Errorf("unsupported format character %q", conv)
		}
	}
	if named == nil && next < len(args) {
		return nil, errors.New("not all arguments converted during string formatting")
	}
	return b.String(), nil
}

func attrOf(v any, attr string) any {
	for _, part := range strings.Split(attr, ".") {
		if i, err := strconv.Atoi(part); err == nil {
			if x, err := getItem(v, int64(i)); err == nil {
				v = x
				continue
			}
		}
		v = getAttr(v, part)
	}
	return v
}

func sortItems(items []any, reverse, caseSensitive bool, attr string) error {
	var err error
	key := func(v any) any {
		if attr != "" {
			v = attrOf(v, attr)
		}
		if s, ok := v.(string); ok && !caseSensitive {
			return strings.ToLower(s)
		}
		return v
	}
	sort.SliceStable(items, func(i, j int) bool {
		c, e := compare(key(items[i]), key(items[j]))
		if e != nil && err == nil {
			err = e
		}
		if reverse {
			return c > 0
		}
		return c < 0
	})
	return err
}

// evalFilter applies a filter; default/d are the only ones that accept an
// undefined value.
func (ev *evaluator) evalFilter(e filterExpr, f *frame) (any, error) {
	v, err := ev.eval(e.obj, f)
	if err != nil {
		return nil, err
	}
	args, kw, err := ev.evalArgs(e.args, e.kwargs, f)
	if err != nil {
		return nil, err
	}
	if e.name == "default" || e.name == "d" {
		def := argN(args, 0, kw, "default_value", "")
		boolean, _ := truth(argN(args, 1, kw, "boolean", false))
		if _, isU := v.(undefined); isU {
			return def, nil
		}
		if t, _ := truth(v); boolean && !t {
			return def, nil
		}
		return v, nil
	}
	if err := ev.need(v, exprPos(e.obj)); err != nil {
		return nil, err
	}
	for _, a := range args {
		if err := ev.need(a, e.pos); err != nil {
			return nil, err
		}
	}
	out, err := ev.filter(e.name, v, args, kw, f)
	if err != nil {
		return nil, ev.wrap(e.pos, fmt.Errorf("filter %s: %w", e.name, err))
	}
	return out, nil
}

func (ev *evaluator) filter(name string, v any, args []any, kw map[string]any, f *frame) (any, error) {
	switch name {
	case "upper":
		return strings.ToUpper(str(v)), nil
	case "lower":
		return strings.ToLower(str(v)), nil
	case "capitalize":
		return capitalize(str(v)), nil
	case "title":
		return title(str(v)), nil
	case "trim":
		cut := " \t\n\r\v\f"
		if c, ok := argN(args, 0, kw, "chars", nil).(string); ok {
			cut = c
		}
		return strings.Trim(str(v), cut), nil
	case "replace":
		return replace(str(v), args)
	case "string", "safe", "e", "escape", "forceescape":
		s := str(v)
		if name == "e" || name == "escape" || name == "forceescape" {
			s = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;").Replace(s)
		}
		return s, nil
	case "int":
		def := argN(args, 0, kw, "default", int64(0))
		switch x := v.(type) {
		case int64:
			return x, nil
		case bool:
			return b2i(x), nil
		case float64:
			return int64(x), nil
		case string:
			t := strings.TrimSpace(x)
			base, _ := argN(args, 1, kw, "base", int64(10)).(int64)
			if i, err := strconv.ParseInt(strings.ReplaceAll(t, "_", ""), int(base), 64); err == nil {
				return i, nil
			}
			if fl, err := strconv.ParseFloat(t, 64); err == nil {
				return int64(fl), nil
			}
		}
		return def, nil
	case "float":
		def := argN(args, 0, kw, "default", 0.0)
		if fl, ok := toFloat(v); ok {
			return fl, nil
		}
		if s, ok := v.(string); ok {
			if fl, err := strconv.ParseFloat(strings.TrimSpace(s), 64); err == nil {
				return fl, nil
			}
		}
		return def, nil
	case "abs":
		switch x := v.(type) {
		case int64:
			if x < 0 {
				return -x, nil
			}
			return x, nil
		case float64:
			return math.Abs(x), nil
		}
		return nil, fmt.Errorf("needs a number, not %s", typeName(v))
	case "round":
		fl, ok := toFloat(v)
		if !ok {
			return nil, fmt.Errorf("needs a number, not %s", typeName(v))
		}
		prec, _ := argN(args, 0, kw, "precision", int64(0)).(int64)
		method, _ := argN(args, 1, kw, "method", "common").(string)
		p := math.Pow(10, float64(prec))
		switch method {
		case "common":
			return math.Round(fl*p) / p, nil
		case "floor":
			return math.Floor(fl*p) / p, nil
		case "ceil":
			return math.Ceil(fl*p) / p, nil
		}
		return nil, fmt.Errorf("method must be common, floor or ceil, not %q", method)
	case "length", "count":
		n, err := length(v)
		return int64(n), err
	case "tojson":
		indent, _ := argN(args, 0, kw, "indent", int64(0)).(int64)
		if indent < 0 || indent > 64 {
			return nil, fmt.Errorf("indent must be between 0 and 64, not %d", indent)
		}
		return toJSON(v, int(indent))
	case "dictsort":
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("needs a dict, not %s", typeName(v))
		}
		cs, _ := truth(argN(args, 0, kw, "case_sensitive", false))
		by, _ := argN(args, 1, kw, "by", "key").(string)
		rev, _ := truth(argN(args, 2, kw, "reverse", false))
		items := pairs(m).Items
		attr := "0"
		switch by {
		case "key":
		case "value":
			attr = "1"
		default:
			return nil, fmt.Errorf("by must be 'key' or 'value', not %q", by)
		}
		return newList(items), sortItems(items, rev, cs, attr)
	case "items":
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("needs a dict, not %s", typeName(v))
		}
		return pairs(m), nil
	case "list":
		items, err := iterate(v)
		return newList(items), err
	case "sort":
		items, err := iterate(v)
		if err != nil {
			return nil, err
		}
		rev, _ := truth(argN(args, 0, kw, "reverse", false))
		cs, _ := truth(argN(args, 1, kw, "case_sensitive", false))
		attr, _ := argN(args, 2, kw, "attribute", "").(string)
		return newList(items), sortItems(items, rev, cs, attr)
	case "unique":
		items, err := iterate(v)
		if err != nil {
			return nil, err
		}
		var out []any
		for _, it := range items {
			dup := false
			for _, o := range out {
				if equal(o, it) {
					dup = true
					break
				}
			}
			if !dup {
				out = append(out, it)
			}
		}
		return newList(out), nil
	case "reverse":
		if s, ok := v.(string); ok {
			r := []rune(s)
			for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
				r[i], r[j] = r[j], r[i]
			}
			return string(r), nil
		}
		items, err := iterate(v)
		if err != nil {
			return nil, err
		}
		for i, j := 0, len(items)-1; i < j; i, j = i+1, j-1 {
			items[i], items[j] = items[j], items[i]
		}
		return newList(items), nil
	case "first", "last":
		items, err := iterate(v)
		if err != nil {
			return nil, err
		}
		if len(items) == 0 {
			return undefined{fmt.Sprintf("%s of an empty sequence", name)}, nil
		}
		if name == "first" {
			return items[0], nil
		}
		return items[len(items)-1], nil
	case "join":
		items, err := iterate(v)
		if err != nil {
			return nil, err
		}
		sep, _ := argN(args, 0, kw, "d", "").(string)
		attr, _ := argN(args, 1, kw, "attribute", "").(string)
		parts := make([]string, len(items))
		for i, it := range items {
			if attr != "" {
				it = attrOf(it, attr)
			}
			if u, ok := it.(undefined); ok {
				return nil, errors.New(u.msg)
			}
			parts[i] = str(it)
		}
		return strings.Join(parts, sep), nil
	case "indent":
		width := argN(args, 0, kw, "width", int64(4))
		first, _ := truth(argN(args, 1, kw, "first", false))
		blank, _ := truth(argN(args, 2, kw, "blank", false))
		pad := ""
		switch w := width.(type) {
		case int64:
			if err := sizeOK(1, w); err != nil {
				return nil, err
			}
			pad = strings.Repeat(" ", int(max(w, 0)))
		case string:
			pad = w
		}
		lines := strings.Split(str(v), "\n")
		for i, l := range lines {
			if (i > 0 || first) && (blank || strings.TrimSpace(l) != "") {
				lines[i] = pad + l
			}
		}
		return strings.Join(lines, "\n"), nil
	case "min", "max", "sum":
		items, err := iterate(v)
		if err != nil {
			return nil, err
		}
		attr, _ := argN(args, 0, kw, "attribute", "").(string)
		if name == "sum" {
			attr, _ = argN(args, 0, kw, "attribute", "").(string)
			var total any = argN(args, 1, kw, "start", int64(0))
			for _, it := range items {
				if attr != "" {
					it = attrOf(it, attr)
				}
				if total, err = arith("+", total, it); err != nil {
					return nil, err
				}
			}
			return total, nil
		}
		if len(items) == 0 {
			return undefined{fmt.Sprintf("%s of an empty sequence", name)}, nil
		}
		if err := sortItems(items, name == "max", false, attr); err != nil {
			return nil, err
		}
		return items[0], nil
	case "attr":
		a, _ := argN(args, 0, kw, "name", "").(string)
		return getAttr(v, a), nil
	case "map":
		items, err := iterate(v)
		if err != nil {
			return nil, err
		}
		out := make([]any, len(items))
		if attr, ok := kw["attribute"].(string); ok {
			def, hasDef := kw["default"]
			for i, it := range items {
				out[i] = attrOf(it, attr)
				if _, isU := out[i].(undefined); isU && hasDef {
					out[i] = def
				}
			}
			return newList(out), nil
		}
		if len(args) == 0 {
			return nil, errors.New("needs a filter name or attribute=")
		}
		fname, ok := args[0].(string)
		if !ok {
			return nil, errors.New("the filter name must be a string")
		}
		for i, it := range items {
			if out[i], err = ev.filter(fname, it, args[1:], nil, f); err != nil {
				return nil, err
			}
		}
		return newList(out), nil
	case "select", "reject", "selectattr", "rejectattr":
		items, err := iterate(v)
		if err != nil {
			return nil, err
		}
		rest := args
		attr := ""
		if strings.HasSuffix(name, "attr") {
			if len(rest) == 0 {
				return nil, errors.New("needs an attribute name")
			}
			attr = str(rest[0])
			rest = rest[1:]
		}
		want := strings.HasPrefix(name, "select")
		var out []any
		for _, it := range items {
			x := it
			if attr != "" {
				x = attrOf(it, attr)
			}
			var ok bool
			if len(rest) == 0 {
				ok, _ = truth(x)
			} else {
				tname, isS := rest[0].(string)
				if !isS {
					return nil, errors.New("the test name must be a string")
				}
				if ok, err = test(tname, x, rest[1:]); err != nil {
					return nil, err
				}
			}
			if ok == want {
				out = append(out, it)
			}
		}
		return newList(out), nil
	case "format":
		if len(kw) > 0 {
			return percentFormat(str(v), kw)
		}
		return percentFormat(str(v), tuple(args...))
	case "batch":
		items, err := iterate(v)
		if err != nil {
			return nil, err
		}
		n, ok := argN(args, 0, kw, "linecount", nil).(int64)
		if !ok || n <= 0 {
			return nil, errors.New("needs a positive size")
		}
		var out []any
		for i := 0; i < len(items); i += int(n) {
			out = append(out, newList(items[i:min(i+int(n), len(items))]))
		}
		return newList(out), nil
	}
	return ev.moreFilter(name, v, args, kw)
}

func (ev *evaluator) evalTest(e testExpr, f *frame) (any, error) {
	v, err := ev.eval(e.obj, f)
	if err != nil {
		return nil, err
	}
	args, _, err := ev.evalArgs(e.args, nil, f)
	if err != nil {
		return nil, err
	}
	_, isU := v.(undefined)
	var ok bool
	switch e.name {
	case "defined":
		ok = !isU
	case "undefined":
		ok = isU
	default:
		if err := ev.need(v, exprPos(e.obj)); err != nil {
			return nil, err
		}
		if ok, err = test(e.name, v, args); err != nil {
			return nil, ev.errorf(e.pos, "test %s: %v", e.name, err)
		}
	}
	return ok != e.negate, nil
}

func test(name string, v any, args []any) (bool, error) {
	arg := func() (any, error) {
		if len(args) != 1 {
			return nil, errors.New("needs one argument")
		}
		return args[0], nil
	}
	switch name {
	case "defined":
		_, isU := v.(undefined)
		return !isU, nil
	case "undefined":
		_, isU := v.(undefined)
		return isU, nil
	case "none":
		return v == nil, nil
	case "boolean":
		_, ok := v.(bool)
		return ok, nil
	case "true", "false":
		b, ok := v.(bool)
		return ok && b == (name == "true"), nil
	case "string":
		_, ok := v.(string)
		return ok, nil
	case "number":
		switch v.(type) {
		case int64, float64:
			return true, nil
		}
		return false, nil
	case "integer":
		_, ok := v.(int64)
		return ok, nil
	case "float":
		_, ok := v.(float64)
		return ok, nil
	case "mapping":
		_, ok := v.(map[string]any)
		return ok, nil
	case "sequence", "iterable":
		switch v.(type) {
		case *List, string, map[string]any:
			return true, nil
		}
		return false, nil
	case "callable":
		_, ok := v.(*Func)
		return ok, nil
	case "odd", "even":
		i, ok := v.(int64)
		if !ok {
			return false, fmt.Errorf("needs an integer, not %s", typeName(v))
		}
		return (i%2 != 0) == (name == "odd"), nil
	case "divisibleby":
		a, err := arg()
		if err != nil {
			return false, err
		}
		i, ok1 := v.(int64)
		d, ok2 := a.(int64)
		if !ok1 || !ok2 || d == 0 {
			return false, errors.New("needs integers and a non-zero divisor")
		}
		return i%d == 0, nil
	case "lower", "upper":
		s, ok := v.(string)
		if !ok {
			return false, nil
		}
		if name == "lower" {
			return s == strings.ToLower(s), nil
		}
		return s == strings.ToUpper(s), nil
	case "in":
		a, err := arg()
		if err != nil {
			return false, err
		}
		return contains(a, v)
	case "sameas":
		a, err := arg()
		if err != nil {
			return false, err
		}
		switch v.(type) {
		case nil, bool:
			return v == a, nil
		}
		return equal(v, a), nil
	case "eq", "equalto", "==", "ne", "!=", "lt", "lessthan", "<", "le", "<=", "gt", "greaterthan", ">", "ge", ">=":
		a, err := arg()
		if err != nil {
			return false, err
		}
		op := map[string]string{"eq": "==", "equalto": "==", "ne": "!=", "lt": "<", "lessthan": "<", "le": "<=",
			"gt": ">", "greaterthan": ">", "ge": ">="}[name]
		if op == "" {
			op = name
		}
		r, err := binOp(op, v, a)
		if err != nil {
			return false, err
		}
		return r.(bool), nil
	case "escaped":
		// No value is markup-safe in this engine (output is never escaped).
		return false, nil
	case "filter":
		return isFilter(str(v)), nil
	case "test":
		_, err := test(str(v), nil, []any{nil})
		return err == nil || !strings.HasPrefix(err.Error(), "unknown test"), nil
	}
	return false, fmt.Errorf("unknown test (supported: boolean, callable, defined, divisibleby, eq, escaped, even, false, filter, float, ge, gt, in, integer, iterable, le, lower, lt, mapping, ne, none, number, odd, sameas, sequence, string, test, true, undefined, upper)")
}
