package jinja

import (
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"
)

// More Python methods of str, dict and list, for what SlapOS templates
// call beyond the common ones in builtins.go.

func moreStrMethod(s, name string) *Func {
	isAll := func(pred func(rune) bool) *Func {
		return fn(name, func([]any, map[string]any) (any, error) {
			return s != "" && strings.IndexFunc(s, func(r rune) bool { return !pred(r) }) < 0, nil
		})
	}
	switch name {
	case "isalnum":
		return isAll(func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) })
	case "isspace":
		return isAll(unicode.IsSpace)
	case "isnumeric", "isdecimal":
		return isAll(unicode.IsDigit)
	case "islower", "isupper":
		return fn(name, func([]any, map[string]any) (any, error) {
			hasCased := strings.IndexFunc(s, func(r rune) bool { return unicode.IsUpper(r) || unicode.IsLower(r) }) >= 0
			if name == "islower" {
				return hasCased && s == strings.ToLower(s), nil
			}
			return hasCased && s == strings.ToUpper(s), nil
		})
	case "swapcase":
		return fn(name, func([]any, map[string]any) (any, error) {
			return strings.Map(func(r rune) rune {
				if unicode.IsUpper(r) {
					return unicode.ToLower(r)
				}
				return unicode.ToUpper(r)
			}, s), nil
		})
	case "casefold":
		return fn(name, func([]any, map[string]any) (any, error) { return strings.ToLower(s), nil })
	// Strings are bytes already: encode/decode give the text back.
	case "encode", "decode":
		return fn(name, func([]any, map[string]any) (any, error) { return s, nil })
	case "partition", "rpartition":
		return fn(name, func(a []any, _ map[string]any) (any, error) {
			sep, err := strArg(a, 0, "separator")
			if err != nil {
				return nil, err
			}
			if sep == "" {
				return nil, errors.New("empty separator")
			}
			i := strings.Index(s, sep)
			if name == "rpartition" {
				i = strings.LastIndex(s, sep)
			}
			if i < 0 {
				if name == "rpartition" {
					return tuple("", "", s), nil
				}
				return tuple(s, "", ""), nil
			}
			return tuple(s[:i], sep, s[i+len(sep):]), nil
		})
	case "ljust", "rjust", "center":
		return fn(name, func(a []any, _ map[string]any) (any, error) {
			if err := wantArgs(a, 1, 2); err != nil {
				return nil, err
			}
			w, _ := a[0].(int64)
			if err := sizeOK(1, w); err != nil {
				return nil, err
			}
			fill := " "
			if len(a) == 2 {
				fill = str(a[1])
			}
			n := int(w) - utf8.RuneCountInString(s)
			if n <= 0 {
				return s, nil
			}
			switch name {
			case "ljust":
				return s + strings.Repeat(fill, n), nil
			case "rjust":
				return strings.Repeat(fill, n) + s, nil
			}
			left := n / 2
			if n%2 == 1 && int(w)%2 == 1 {
				left++
			}
			return strings.Repeat(fill, left) + s + strings.Repeat(fill, n-left), nil
		})
	case "removeprefix", "removesuffix":
		return fn(name, func(a []any, _ map[string]any) (any, error) {
			x, err := strArg(a, 0, "argument")
			if err != nil {
				return nil, err
			}
			if name == "removeprefix" {
				return strings.TrimPrefix(s, x), nil
			}
			return strings.TrimSuffix(s, x), nil
		})
	case "expandtabs":
		return fn(name, func(a []any, _ map[string]any) (any, error) {
			size := int64(8)
			if len(a) > 0 {
				size, _ = a[0].(int64)
			}
			var b strings.Builder
			col := 0
			for _, r := range s {
				switch r {
				case '\t':
					if size > 0 {
						n := int(size) - col%int(size)
						b.WriteString(strings.Repeat(" ", n))
						col += n
					}
				case '\n', '\r':
					b.WriteRune(r)
					col = 0
				default:
					b.WriteRune(r)
					col++
				}
			}
			return b.String(), nil
		})
	case "index", "rfind", "rindex":
		return fn(name, func(a []any, _ map[string]any) (any, error) {
			sub, err := strArg(a, 0, "argument")
			if err != nil {
				return nil, err
			}
			i := strings.Index(s, sub)
			if name != "index" {
				i = strings.LastIndex(s, sub)
			}
			if i < 0 {
				if name == "rfind" {
					return int64(-1), nil
				}
				return nil, errors.New("substring not found")
			}
			return int64(utf8.RuneCountInString(s[:i])), nil
		})
	}
	return nil
}

func moreDictMethod(m map[string]any, name string) *Func {
	switch name {
	case "popitem":
		return fn(name, func([]any, map[string]any) (any, error) {
			keys := sortedKeys(m)
			if len(keys) == 0 {
				return nil, errors.New("popitem(): dictionary is empty")
			}
			// Python pops the last inserted key; with no insertion order
			// here, the last in sorted order.
			k := keys[len(keys)-1]
			v := m[k]
			delete(m, k)
			return tuple(k, v), nil
		})
	case "clear":
		return fn(name, func([]any, map[string]any) (any, error) {
			for k := range m {
				delete(m, k)
			}
			return nil, nil
		})
	case "fromkeys":
		return fn(name, func(a []any, _ map[string]any) (any, error) {
			if err := wantArgs(a, 1, 2); err != nil {
				return nil, err
			}
			keys, err := iterate(a[0])
			if err != nil {
				return nil, err
			}
			var v any
			if len(a) == 2 {
				v = a[1]
			}
			out := map[string]any{}
			for _, k := range keys {
				out[str(k)] = v
			}
			return out, nil
		})
	}
	return nil
}

func moreListMethod(l *List, name string) *Func {
	switch name {
	case "clear":
		return fn(name, func([]any, map[string]any) (any, error) {
			l.Items = nil
			return nil, nil
		})
	}
	return nil
}
