package jinja

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Values inside the engine are nil (None), bool, int64, float64, string,
// *List (lists and tuples, mutable in place like Python lists),
// map[string]any (dicts; iterated in sorted key order because Go maps have
// no insertion order), *Func (methods, macros, globals) and undefined.

// List is a Jinja list or tuple.
type List struct {
	Items []any
	Tuple bool
}

// Func is a callable value.
type Func struct {
	Name string
	Call func(args []any, kwargs map[string]any) (any, error)
	// Attrs are the function's attributes (loop.index, module members).
	Attrs map[string]any
}

// undefined is the value of a missing variable or attribute; using it for
// anything but "is defined", "default" or "get" is an error (StrictUndefined).
type undefined struct{ msg string }

func newList(items []any) *List { return &List{Items: items} }

func tuple(items ...any) *List { return &List{Items: items, Tuple: true} }

// fromGo converts values given by the caller into engine values.
func fromGo(v any) any {
	switch x := v.(type) {
	case nil, bool, int64, float64, string, *List, *Func:
		return x
	case int:
		return int64(x)
	case int32:
		return int64(x)
	case uint32:
		return int64(x)
	case float32:
		return float64(x)
	case []any:
		items := make([]any, len(x))
		for i, e := range x {
			items[i] = fromGo(e)
		}
		return newList(items)
	case []string:
		items := make([]any, len(x))
		for i, e := range x {
			items[i] = e
		}
		return newList(items)
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = fromGo(e)
		}
		return m
	case map[string]string:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = e
		}
		return m
	case fmt.Stringer:
		return x.String()
	}
	return fmt.Sprint(v)
}

// ToGo converts an engine value back into plain Go values ([]any, maps).
func ToGo(v any) any {
	switch x := v.(type) {
	case *List:
		out := make([]any, len(x.Items))
		for i, e := range x.Items {
			out[i] = ToGo(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = ToGo(e)
		}
		return out
	case undefined, *Func:
		return nil
	}
	return v
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "none"
	case bool:
		return "boolean"
	case int64:
		return "integer"
	case float64:
		return "float"
	case string:
		return "string"
	case *List:
		if v.(*List).Tuple {
			return "tuple"
		}
		return "list"
	case map[string]any:
		return "dict"
	case *Func:
		return "function"
	case undefined:
		return "undefined"
	}
	return fmt.Sprintf("%T", v)
}

// str is Python's str() of a value.
func str(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return formatFloat(x)
	case string:
		return x
	}
	return repr(v)
}

func formatFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case math.IsNaN(f):
		return "nan"
	}
	if a := math.Abs(f); a != 0 && (a < 1e-4 || a >= 1e16) {
		return strconv.FormatFloat(f, 'e', -1, 64)
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}

// repr is Python's repr() of a value.
func repr(v any) string {
	switch x := v.(type) {
	case string:
		return pyQuote(x)
	case *List:
		parts := make([]string, len(x.Items))
		for i, e := range x.Items {
			parts[i] = repr(e)
		}
		if x.Tuple {
			if len(parts) == 1 {
				return "(" + parts[0] + ",)"
			}
			return "(" + strings.Join(parts, ", ") + ")"
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]any:
		parts := make([]string, 0, len(x))
		for _, k := range sortedKeys(x) {
			parts = append(parts, pyQuote(k)+": "+repr(x[k]))
		}
		return "{" + strings.Join(parts, ", ") + "}"
	case *Func:
		return "<function " + x.Name + ">"
	case undefined:
		return "Undefined"
	}
	return str(v)
}

func pyQuote(s string) string {
	q := byte('\'')
	if strings.IndexByte(s, '\'') >= 0 && strings.IndexByte(s, '"') < 0 {
		q = '"'
	}
	var b strings.Builder
	b.WriteByte(q)
	for _, r := range s {
		switch {
		case r == rune(q) || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte(q)
	return b.String()
}

// truth is Python's bool(); undefined has no truth value.
func truth(v any) (bool, bool) {
	switch x := v.(type) {
	case nil:
		return false, true
	case bool:
		return x, true
	case int64:
		return x != 0, true
	case float64:
		return x != 0, true
	case string:
		return x != "", true
	case *List:
		return len(x.Items) > 0, true
	case map[string]any:
		return len(x) > 0, true
	case *Func:
		return true, true
	}
	return false, false
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case int64:
		return float64(x), true
	case float64:
		return x, true
	case bool:
		if x {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

func equal(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case string:
		y, ok := b.(string)
		return ok && x == y
	case int64, float64, bool:
		if _, isStr := b.(string); isStr {
			return false
		}
		fa, ok1 := toFloat(a)
		fb, ok2 := toFloat(b)
		return ok1 && ok2 && fa == fb
	case *List:
		y, ok := b.(*List)
		if !ok || len(x.Items) != len(y.Items) {
			return false
		}
		for i := range x.Items {
			if !equal(x.Items[i], y.Items[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, e := range x {
			f, ok := y[k]
			if !ok || !equal(e, f) {
				return false
			}
		}
		return true
	case *Func:
		return a == b
	}
	return false
}

// compare orders two numbers, two strings or two lists: -1, 0, 1.
func compare(a, b any) (int, error) {
	if fa, ok := toFloat(a); ok {
		if fb, ok := toFloat(b); ok {
			switch {
			case fa < fb:
				return -1, nil
			case fa > fb:
				return 1, nil
			}
			return 0, nil
		}
	}
	if sa, ok := a.(string); ok {
		if sb, ok := b.(string); ok {
			return strings.Compare(sa, sb), nil
		}
	}
	if la, ok := a.(*List); ok {
		if lb, ok := b.(*List); ok {
			for i := 0; i < len(la.Items) && i < len(lb.Items); i++ {
				c, err := compare(la.Items[i], lb.Items[i])
				if err != nil || c != 0 {
					return c, err
				}
			}
			return len(la.Items) - len(lb.Items), nil
		}
	}
	return 0, fmt.Errorf("cannot compare %s with %s", typeName(a), typeName(b))
}

func length(v any) (int, error) {
	switch x := v.(type) {
	case string:
		return utf8.RuneCountInString(x), nil
	case *List:
		return len(x.Items), nil
	case map[string]any:
		return len(x), nil
	}
	return 0, fmt.Errorf("%s has no length", typeName(v))
}

// iterate returns the items a for loop visits: list items, dict keys
// (sorted), string characters.
func iterate(v any) ([]any, error) {
	switch x := v.(type) {
	case *List:
		return append([]any(nil), x.Items...), nil
	case map[string]any:
		keys := sortedKeys(x)
		out := make([]any, len(keys))
		for i, k := range keys {
			out[i] = k
		}
		return out, nil
	case string:
		var out []any
		for _, r := range x {
			out = append(out, string(r))
		}
		return out, nil
	case undefined:
		return nil, fmt.Errorf("%s", x.msg)
	}
	return nil, fmt.Errorf("cannot iterate over %s %s", typeName(v), repr(v))
}

// toJSON encodes v as Jinja2's tojson does: keys sorted, Python's default
// separators, and <, >, &, ' escaped so the result is safe in HTML and in
// single-quoted shell/ini contexts.
func toJSON(v any, indent int) (string, error) {
	var b strings.Builder
	if err := writeJSON(&b, v, indent, 0); err != nil {
		return "", err
	}
	return b.String(), nil
}

func writeJSON(b *strings.Builder, v any, indent, depth int) error {
	nl := func(d int) {
		if indent > 0 {
			b.WriteByte('\n')
			b.WriteString(strings.Repeat(" ", indent*d))
		}
	}
	sep := ", "
	if indent > 0 {
		sep = ","
	}
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return fmt.Errorf("cannot encode %v as JSON", x)
		}
		b.WriteString(formatFloat(x))
	case string:
		jsonString(b, x)
	case *List:
		if len(x.Items) == 0 {
			b.WriteString("[]")
			return nil
		}
		b.WriteByte('[')
		for i, e := range x.Items {
			if i > 0 {
				b.WriteString(sep)
			}
			nl(depth + 1)
			if err := writeJSON(b, e, indent, depth+1); err != nil {
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
				b.WriteString(sep)
			}
			nl(depth + 1)
			jsonString(b, k)
			b.WriteString(": ")
			if err := writeJSON(b, x[k], indent, depth+1); err != nil {
				return err
			}
		}
		nl(depth)
		b.WriteByte('}')
	case undefined:
		return fmt.Errorf("%s", x.msg)
	default:
		return fmt.Errorf("cannot encode %s as JSON", typeName(v))
	}
	return nil
}

func jsonString(b *strings.Builder, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '<', '>', '&', '\'':
			fmt.Fprintf(b, `\u%04x`, r)
		default:
			switch {
			case r < 0x20 || r >= 0x7f && r <= 0xffff:
				// Python's json.dumps escapes every non-ASCII character.
				fmt.Fprintf(b, `\u%04x`, r)
			case r > 0xffff:
				r1, r2 := utf16.EncodeRune(r)
				fmt.Fprintf(b, `\u%04x\u%04x`, r1, r2)
			default:
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
}
