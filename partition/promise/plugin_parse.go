package promise

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Plugin is a SlapOS promise plugin (PARTITION/etc/plugin/NAME.py) as
// slapos.cookbook:promise.plugin writes it: sys.path additions, a module
// level extra_config_dict merged into the promise's config, and the line
// that imports its RunPromise class.
type Plugin struct {
	Path string
	// Module is the module RunPromise is imported from
	// (slapos.promise.plugin.check_socket_listening…); Class the class
	// imported as RunPromise when it is not RunPromise itself.
	Module, Class string
	// Config is extra_config_dict: the plugin's config-* options.
	Config map[string]string
}

var importLine = regexp.MustCompile(`(?m)^from\s+([A-Za-z_][\w.]*)\s+import\s+([A-Za-z_]\w*)(?:\s+as\s+RunPromise)?\s*$`)

// ParsePlugin reads a plugin file. A file that does not import RunPromise
// from a module (one that defines its promise itself, or execs another
// file) has no Module: it can only run with Python.
func ParsePlugin(path string, src []byte) (*Plugin, error) {
	if !utf8.Valid(src) {
		return nil, fmt.Errorf("%s is not UTF-8 text", path)
	}
	p := &Plugin{Path: path, Config: map[string]string{}}
	text := string(src)
	if i := strings.Index(text, "\nextra_config_dict = "); i >= 0 || strings.HasPrefix(text, "extra_config_dict = ") {
		start := i + len("\nextra_config_dict = ")
		if i < 0 {
			start = len("extra_config_dict = ")
		}
		ps := &pyParser{s: text, i: start}
		v, err := ps.value()
		if err != nil {
			return nil, fmt.Errorf("%s: extra_config_dict: %w", path, err)
		}
		d, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: extra_config_dict is not a dict", path)
		}
		for k, x := range d {
			switch xv := x.(type) {
			case string:
				p.Config[k] = xv
			case nil:
				p.Config[k] = ""
			default:
				p.Config[k] = fmt.Sprint(xv)
			}
		}
	}
	if m := importLine.FindStringSubmatch(text); m != nil {
		p.Module = m[1]
		if m[2] != "RunPromise" {
			p.Class = m[2]
		}
	}
	return p, nil
}

// pyParser reads the Python literals pprint.pformat writes: dicts, lists,
// tuples, strings (with escapes and implicit concatenation, possibly in
// parentheses), numbers, True, False and None.
type pyParser struct {
	s string
	i int
}

func (p *pyParser) skip() {
	for p.i < len(p.s) {
		switch c := p.s[p.i]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\\' && p.i+1 < len(p.s) && p.s[p.i+1] == '\n':
			p.i++
		case c == '#':
			for p.i < len(p.s) && p.s[p.i] != '\n' {
				p.i++
			}
		default:
			return
		}
	}
}

func (p *pyParser) errorf(format string, args ...any) error {
	line := 1 + strings.Count(p.s[:p.i], "\n")
	return fmt.Errorf("line %d: "+format, append([]any{line}, args...)...)
}

func (p *pyParser) value() (any, error) {
	p.skip()
	if p.i >= len(p.s) {
		return nil, p.errorf("unexpected end")
	}
	switch c := p.s[p.i]; {
	case c == '{':
		return p.dict()
	case c == '[':
		return p.seq('[', ']')
	case c == '(':
		return p.seq('(', ')')
	case c == '\'' || c == '"' || strings.ContainsRune("rRbBuU", rune(c)) && p.i+1 < len(p.s) && (p.s[p.i+1] == '\'' || p.s[p.i+1] == '"'):
		var sb strings.Builder
		for {
			s, err := p.str()
			if err != nil {
				return nil, err
			}
			sb.WriteString(s)
			p.skip()
			if p.i >= len(p.s) || !(p.s[p.i] == '\'' || p.s[p.i] == '"' || strings.ContainsRune("rRbBuU", rune(p.s[p.i])) && p.i+1 < len(p.s) && (p.s[p.i+1] == '\'' || p.s[p.i+1] == '"')) {
				return sb.String(), nil
			}
		}
	default:
		start := p.i
		for p.i < len(p.s) && (isIdent(p.s[p.i]) || p.s[p.i] == '.' || p.s[p.i] == '-' || p.s[p.i] == '+') {
			p.i++
		}
		word := p.s[start:p.i]
		switch word {
		case "True":
			return true, nil
		case "False":
			return false, nil
		case "None":
			return nil, nil
		}
		if n, err := strconv.ParseInt(word, 10, 64); err == nil {
			return n, nil
		}
		if f, err := strconv.ParseFloat(word, 64); err == nil {
			return f, nil
		}
		p.i = start
		return nil, p.errorf("unexpected %q", firstToken(p.s[start:]))
	}
}

func isIdent(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func firstToken(s string) string {
	if i := strings.IndexAny(s, " \n\t,:)]}"); i > 0 {
		return s[:i]
	}
	if len(s) > 20 {
		return s[:20]
	}
	return s
}

func (p *pyParser) dict() (any, error) {
	p.i++ // {
	out := map[string]any{}
	for {
		p.skip()
		if p.i < len(p.s) && p.s[p.i] == '}' {
			p.i++
			return out, nil
		}
		k, err := p.value()
		if err != nil {
			return nil, err
		}
		ks, ok := k.(string)
		if !ok {
			return nil, p.errorf("a dict key is not a string")
		}
		p.skip()
		if p.i >= len(p.s) || p.s[p.i] != ':' {
			return nil, p.errorf("want ':' after a dict key")
		}
		p.i++
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		out[ks] = v
		p.skip()
		if p.i < len(p.s) && p.s[p.i] == ',' {
			p.i++
			continue
		}
		if p.i < len(p.s) && p.s[p.i] == '}' {
			p.i++
			return out, nil
		}
		return nil, p.errorf("want ',' or '}' in a dict")
	}
}

// seq reads a list or tuple; a parenthesised single value without a comma
// is that value (how pformat wraps a long string).
func (p *pyParser) seq(open, close byte) (any, error) {
	p.i++
	var out []any
	comma := false
	for {
		p.skip()
		if p.i < len(p.s) && p.s[p.i] == close {
			p.i++
			if open == '(' && len(out) == 1 && !comma {
				return out[0], nil
			}
			if out == nil {
				out = []any{}
			}
			return out, nil
		}
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		p.skip()
		if p.i < len(p.s) && p.s[p.i] == ',' {
			p.i++
			comma = true
			continue
		}
		if p.i < len(p.s) && p.s[p.i] == close {
			continue
		}
		return nil, p.errorf("want ',' or %q", string(close))
	}
}

// str reads one string literal (prefixes r, b, u; single, double or
// triple quotes; Python's escapes).
func (p *pyParser) str() (string, error) {
	raw := false
	for p.i < len(p.s) && strings.ContainsRune("rRbBuU", rune(p.s[p.i])) {
		if p.s[p.i] == 'r' || p.s[p.i] == 'R' {
			raw = true
		}
		p.i++
	}
	q := p.s[p.i]
	triple := strings.HasPrefix(p.s[p.i:], strings.Repeat(string(q), 3))
	if triple {
		p.i += 3
	} else {
		p.i++
	}
	var sb strings.Builder
	for {
		if p.i >= len(p.s) {
			return "", p.errorf("unterminated string")
		}
		c := p.s[p.i]
		switch {
		case triple && strings.HasPrefix(p.s[p.i:], strings.Repeat(string(q), 3)):
			p.i += 3
			return sb.String(), nil
		case !triple && c == q:
			p.i++
			return sb.String(), nil
		case !triple && c == '\n':
			return "", p.errorf("newline in a string")
		case c == '\\' && !raw:
			if p.i+1 >= len(p.s) {
				return "", p.errorf("unterminated string")
			}
			e := p.s[p.i+1]
			p.i += 2
			switch e {
			case 'n':
				sb.WriteByte('\n')
			case 't':
				sb.WriteByte('\t')
			case 'r':
				sb.WriteByte('\r')
			case '\\', '\'', '"':
				sb.WriteByte(e)
			case '\n':
			case 'a':
				sb.WriteByte(7)
			case 'b':
				sb.WriteByte(8)
			case 'f':
				sb.WriteByte(12)
			case 'v':
				sb.WriteByte(11)
			case '0', '1', '2', '3', '4', '5', '6', '7':
				j := p.i - 1
				for j < len(p.s) && j < p.i+2 && p.s[j] >= '0' && p.s[j] <= '7' {
					j++
				}
				n, _ := strconv.ParseUint(p.s[p.i-1:j], 8, 32)
				sb.WriteRune(rune(n))
				p.i = j
			case 'x', 'u', 'U':
				n := map[byte]int{'x': 2, 'u': 4, 'U': 8}[e]
				if p.i+n > len(p.s) {
					return "", p.errorf("bad \\%c escape", e)
				}
				v, err := strconv.ParseUint(p.s[p.i:p.i+n], 16, 32)
				if err != nil {
					return "", p.errorf("bad \\%c escape", e)
				}
				sb.WriteRune(rune(v))
				p.i += n
			default:
				sb.WriteByte('\\')
				sb.WriteByte(e)
			}
		default:
			sb.WriteByte(c)
			p.i++
		}
	}
}
