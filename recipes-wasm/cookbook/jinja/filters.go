package jinja

import (
	"errors"
	"fmt"
	"html"
	"math/rand/v2"
	"regexp"
	"strings"
	"unicode/utf8"
)

// The rest of Jinja2's built-in filters (the common ones are in
// builtins.go), with Jinja2 3.1's semantics.

var filterNames = []string{"abs", "attr", "batch", "capitalize", "center", "count", "d", "default", "dictsort",
	"e", "escape", "filesizeformat", "first", "float", "forceescape", "format", "groupby", "indent", "int",
	"items", "join", "last", "length", "list", "lower", "map", "max", "min", "pprint", "random", "reject",
	"rejectattr", "replace", "reverse", "round", "safe", "select", "selectattr", "slice", "sort", "string",
	"striptags", "sum", "title", "tojson", "trim", "truncate", "unique", "upper", "urlencode", "urlize",
	"wordcount", "wordwrap", "xmlattr"}

func isFilter(name string) bool {
	for _, n := range filterNames {
		if n == name {
			return true
		}
	}
	return false
}

func (ev *evaluator) moreFilter(name string, v any, args []any, kw map[string]any) (any, error) {
	switch name {
	case "center":
		s := str(v)
		width, _ := argN(args, 0, kw, "width", int64(80)).(int64)
		n := int(width) - utf8.RuneCountInString(s)
		if n <= 0 {
			return s, nil
		}
		// Python's str.center puts the odd space on the right when the
		// string's length is even... and on the left otherwise.
		left := n / 2
		if n%2 == 1 && int(width)%2 == 1 {
			left++
		}
		return strings.Repeat(" ", left) + s + strings.Repeat(" ", n-left), nil
	case "filesizeformat":
		f, ok := toFloat(v)
		if !ok {
			return nil, fmt.Errorf("needs a number, not %s", typeName(v))
		}
		binary, _ := truth(argN(args, 0, kw, "binary", false))
		base, prefixes := 1000.0, []string{"kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"}
		if binary {
			base, prefixes = 1024.0, []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"}
		}
		switch {
		case f == 1:
			return "1 Byte", nil
		case f < base:
			return fmt.Sprintf("%d Bytes", int64(f)), nil
		}
		unit := base
		for i, p := range prefixes {
			unit = base
			for j := 0; j < i+1; j++ {
				unit *= base
			}
			if f < unit || i == len(prefixes)-1 {
				return fmt.Sprintf("%.1f %s", base*f/unit, p), nil
			}
		}
	case "groupby":
		items, err := iterate(v)
		if err != nil {
			return nil, err
		}
		attr := str(argN(args, 0, kw, "attribute", ""))
		def, hasDef := kw["default"]
		if err := sortItems(items, false, false, attr); err != nil {
			return nil, err
		}
		var out []any
		for _, it := range items {
			k := attrOf(it, attr)
			if _, isU := k.(undefined); isU && hasDef {
				k = def
			}
			if n := len(out); n > 0 && equal(out[n-1].(*List).Items[0], k) {
				g := out[n-1].(*List).Items[1].(*List)
				g.Items = append(g.Items, it)
				continue
			}
			out = append(out, groupTuple(k, newList([]any{it})))
		}
		return newList(out), nil
	case "pprint":
		return repr(v), nil
	case "random":
		items, err := iterate(v)
		if err != nil {
			return nil, err
		}
		if len(items) == 0 {
			return nil, errors.New("no random item of an empty sequence")
		}
		return items[rand.IntN(len(items))], nil
	case "slice":
		items, err := iterate(v)
		if err != nil {
			return nil, err
		}
		n, ok := argN(args, 0, kw, "slices", nil).(int64)
		if !ok || n <= 0 {
			return nil, errors.New("needs a positive number of slices")
		}
		fill, hasFill := argN(args, 1, kw, "fill_with", nil), len(args) > 1 || kw["fill_with"] != nil
		per, extra := len(items)/int(n), len(items)%int(n)
		var out []any
		off := 0
		for i := 0; i < int(n); i++ {
			size := per
			if i < extra {
				size++
			}
			s := append([]any(nil), items[off:off+size]...)
			off += size
			if hasFill && i >= extra && extra > 0 {
				s = append(s, fill)
			}
			out = append(out, newList(s))
		}
		return newList(out), nil
	case "striptags":
		s := regexp.MustCompile(`(?s)<!--.*?-->|<[^>]*>`).ReplaceAllString(str(v), "")
		return strings.Join(strings.Fields(html.UnescapeString(s)), " "), nil
	case "truncate":
		s := str(v)
		length, _ := argN(args, 0, kw, "length", int64(255)).(int64)
		killwords, _ := truth(argN(args, 1, kw, "killwords", false))
		end := str(argN(args, 2, kw, "end", "..."))
		leeway, _ := argN(args, 3, kw, "leeway", int64(5)).(int64)
		r := []rune(s)
		if int64(len(r)) <= length+leeway {
			return s, nil
		}
		cut := int(length) - utf8.RuneCountInString(end)
		if cut < 0 {
			cut = 0
		}
		if killwords {
			return string(r[:cut]) + end, nil
		}
		head := string(r[:cut])
		if i := strings.LastIndexByte(head, ' '); i >= 0 {
			head = head[:i]
		}
		return head + end, nil
	case "urlencode":
		switch x := v.(type) {
		case map[string]any:
			var parts []string
			for _, k := range sortedKeys(x) {
				parts = append(parts, pyQuoteURL(k, "", true)+"="+pyQuoteURL(str(x[k]), "", true))
			}
			return strings.Join(parts, "&"), nil
		case *List:
			var parts []string
			for _, p := range x.Items {
				kv, ok := p.(*List)
				if !ok || len(kv.Items) != 2 {
					return nil, errors.New("needs (key, value) pairs")
				}
				parts = append(parts, pyQuoteURL(str(kv.Items[0]), "", true)+"="+pyQuoteURL(str(kv.Items[1]), "", true))
			}
			return strings.Join(parts, "&"), nil
		}
		return pyQuoteURL(str(v), "/", false), nil
	case "urlize":
		re := regexp.MustCompile(`(https?://[^\s<>"]+|www\.[^\s<>"]+)`)
		return re.ReplaceAllStringFunc(html.EscapeString(str(v)), func(u string) string {
			href := u
			if strings.HasPrefix(u, "www.") {
				href = "https://" + u
			}
			return `<a href="` + href + `" rel="noopener">` + u + `</a>`
		}), nil
	case "wordcount":
		return int64(len(regexp.MustCompile(`\w+`).FindAllString(str(v), -1))), nil
	case "wordwrap":
		width, _ := argN(args, 0, kw, "width", int64(79)).(int64)
		brk, _ := truth(argN(args, 1, kw, "break_long_words", true))
		wrap := str(argN(args, 2, kw, "wrapstring", "\n"))
		var lines []string
		for _, para := range strings.Split(str(v), "\n") {
			lines = append(lines, wordwrap(para, int(width), brk)...)
		}
		return strings.Join(lines, wrap), nil
	case "xmlattr":
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("needs a dict, not %s", typeName(v))
		}
		autospace := true
		if len(args) > 0 {
			autospace, _ = truth(args[0])
		}
		var parts []string
		for _, k := range sortedKeys(m) {
			if m[k] == nil {
				continue
			}
			if _, isU := m[k].(undefined); isU {
				continue
			}
			if strings.ContainsAny(k, " /> =\t\n") {
				return nil, fmt.Errorf("invalid character in attribute name: %s", repr(k))
			}
			parts = append(parts, html.EscapeString(k)+`="`+html.EscapeString(str(m[k]))+`"`)
		}
		s := strings.Join(parts, " ")
		if autospace && s != "" {
			s = " " + s
		}
		return s, nil
	}
	return nil, fmt.Errorf("unknown filter (Jinja2's filters are: %s)", strings.Join(filterNames, ", "))
}

// groupTuple is groupby's (grouper, list) pair, readable as .grouper
// and .list too.
func groupTuple(k any, items *List) *List {
	return &List{Items: []any{k, items}, Tuple: true}
}

// wordwrap wraps one paragraph as Python's textwrap.wrap does (the
// whitespace between words collapses to one space).
func wordwrap(s string, width int, breakLong bool) []string {
	words := strings.Fields(s)
	if len(words) == 0 {
		return []string{""}
	}
	var lines []string
	cur := ""
	for _, w := range words {
		for breakLong && utf8.RuneCountInString(w) > width && width > 0 {
			room := width
			if cur != "" {
				room = width - utf8.RuneCountInString(cur) - 1
				if room <= 0 {
					lines = append(lines, cur)
					cur = ""
					room = width
				}
			}
			r := []rune(w)
			if cur != "" {
				cur += " " + string(r[:room])
			} else {
				cur = string(r[:room])
			}
			lines = append(lines, cur)
			cur = ""
			w = string(r[room:])
		}
		switch {
		case cur == "":
			cur = w
		case utf8.RuneCountInString(cur)+1+utf8.RuneCountInString(w) <= width:
			cur += " " + w
		default:
			lines = append(lines, cur)
			cur = w
		}
	}
	if cur != "" {
		lines = append(lines, cur)
	}
	return lines
}
