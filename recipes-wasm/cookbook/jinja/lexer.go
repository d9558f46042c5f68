// Package jinja is the cookbook's Jinja2 engine: the template language
// of Jinja2 3.1 as slapos.recipe.template:jinja2 configures it, written
// for this WebAssembly guest (docs/adr/0006-jinja2-engine.md says why it
// is not github.com/nikolalohinski/gonja/v2).
//
// It covers the whole language: {{ }}, {% if %}, {% for %} (unpacking,
// inline if, else, recursive, loop.*), {% set %} (tuples, blocks,
// namespaces), {% macro %} and {% call %}, {% import %}/{% from %}/
// {% include %} (through a Loader), {% extends %}/{% block %} with super()
// and self, {% filter %}, {% with %}, {% autoescape %}, {% raw %},
// {% do %} and {% break %}/{% continue %} (always on), whitespace control,
// Jinja2's filters, tests and globals, and the Python methods, builtins and
// modules (Module) templates call. As slapos.recipe.template does, an
// undefined name is an error naming the template's line:col
// (StrictUndefined) and the template's final newline is kept. Dicts
// iterate in sorted key order (Go maps keep no insertion order).
package jinja

import (
	"fmt"
	"sort"
	"strings"
)

type tokKind int

const (
	tText tokKind = iota
	tVarBegin
	tVarEnd
	tBlockBegin
	tBlockEnd
	tName
	tString
	tInt
	tFloat
	tOp
	tEOF
)

var tokNames = map[tokKind]string{tText: "text", tVarBegin: "'{{'", tVarEnd: "'}}'", tBlockBegin: "'{%'",
	tBlockEnd: "'%}'", tName: "name", tString: "string", tInt: "integer", tFloat: "number", tOp: "operator", tEOF: "end of template"}

type token struct {
	kind tokKind
	val  string
	pos  int // byte offset in the source
}

func (t token) String() string {
	switch t.kind {
	case tText:
		return "text"
	case tEOF, tVarBegin, tVarEnd, tBlockBegin, tBlockEnd:
		return tokNames[t.kind]
	}
	return fmt.Sprintf("%q", t.val)
}

// Error is a template error at a position.
type Error struct {
	Name      string // template name
	Line, Col int
	Msg       string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s", e.Name, e.Line, e.Col, e.Msg)
}

// source locates byte offsets as line:col for errors.
type source struct {
	name  string
	text  string
	lines []int // offsets of line starts
}

func newSource(name, text string) *source {
	s := &source{name: name, text: text, lines: []int{0}}
	for i := 0; i < len(text); i++ {
		if text[i] == '\n' {
			s.lines = append(s.lines, i+1)
		}
	}
	return s
}

func (s *source) errorf(pos int, format string, args ...any) *Error {
	line := sort.Search(len(s.lines), func(i int) bool { return s.lines[i] > pos })
	col := pos - s.lines[line-1] + 1
	return &Error{Name: s.name, Line: line, Col: col, Msg: fmt.Sprintf(format, args...)}
}

// lex splits the template into tokens, applying whitespace control and
// handling comments and raw blocks.
func lex(src *source) ([]token, error) {
	s := src.text
	var toks []token
	i := 0
	lstripNext := false
	addText := func(text string, pos int) {
		if lstripNext {
			trimmed := strings.TrimLeft(text, " \t\r\n")
			pos += len(text) - len(trimmed)
			text = trimmed
			lstripNext = false
		}
		if text != "" {
			toks = append(toks, token{tText, text, pos})
		}
	}
	rstripPrev := func() {
		if n := len(toks); n > 0 && toks[n-1].kind == tText {
			toks[n-1].val = strings.TrimRight(toks[n-1].val, " \t\r\n")
			if toks[n-1].val == "" {
				toks = toks[:n-1]
			}
		}
	}
	for i < len(s) {
		j := nextDelim(s, i)
		if j < 0 {
			addText(s[i:], i)
			break
		}
		addText(s[i:j], i)
		start := j
		kind := s[j+1]
		j += 2
		if j < len(s) && s[j] == '-' {
			rstripPrev()
			j++
		} else if j < len(s) && s[j] == '+' {
			j++
		}
		switch kind {
		case '#':
			end := strings.Index(s[j:], "#}")
			if end < 0 {
				return nil, src.errorf(start, "comment '{#' is never closed with '#}'")
			}
			end += j
			if end > j && s[end-1] == '-' {
				lstripNext = true
			}
			i = end + 2
			continue
		case '{':
			toks = append(toks, token{tVarBegin, "{{", start})
		case '%':
			toks = append(toks, token{tBlockBegin, "{%", start})
		}
		closeKind := tVarEnd
		closeDelim := "}}"
		if kind == '%' {
			closeKind, closeDelim = tBlockEnd, "%}"
		}
		tagStart := len(toks)
		var err error
		var trimAfter bool
		i, trimAfter, err = lexTag(src, j, closeDelim, closeKind, &toks)
		if err != nil {
			return nil, err
		}
		lstripNext = trimAfter
		// {% raw %}: everything up to {% endraw %} is text.
		if kind == '%' && len(toks) == tagStart+2 && toks[tagStart].kind == tName && toks[tagStart].val == "raw" {
			toks = toks[:tagStart-1]
			bodyStart := i
			endTag, endAt, after, ok := findEndraw(s, i)
			if !ok {
				return nil, src.errorf(start, "{%% raw %%} is never closed with {%% endraw %%}")
			}
			body := s[bodyStart:endTag]
			if lstripNext {
				body = strings.TrimLeft(body, " \t\r\n")
				lstripNext = false
			}
			if strings.HasPrefix(s[endTag:], "{%-") {
				body = strings.TrimRight(body, " \t\r\n")
			}
			if body != "" {
				toks = append(toks, token{tText, body, bodyStart})
			}
			lstripNext = s[endAt-1] == '-'
			i = after
		}
	}
	toks = append(toks, token{tEOF, "", len(s)})
	return toks, nil
}

// nextDelim returns the offset of the next "{{", "{%" or "{#" at or after i.
func nextDelim(s string, i int) int {
	for {
		k := strings.IndexByte(s[i:], '{')
		if k < 0 || i+k+1 >= len(s) {
			return -1
		}
		k += i
		if c := s[k+1]; c == '{' || c == '%' || c == '#' {
			return k
		}
		i = k + 1
	}
}

// findEndraw finds "{% endraw %}" (with optional "-") from i: it returns the
// offset of the tag, of its closing "%}" and just after it.
func findEndraw(s string, i int) (tag, closeAt, after int, ok bool) {
	for {
		k := strings.Index(s[i:], "{%")
		if k < 0 {
			return 0, 0, 0, false
		}
		k += i
		j := k + 2
		if j < len(s) && (s[j] == '-' || s[j] == '+') {
			j++
		}
		rest := strings.TrimLeft(s[j:], " \t\r\n")
		if strings.HasPrefix(rest, "endraw") {
			j = len(s) - len(rest) + len("endraw")
			rest = strings.TrimLeft(s[j:], " \t\r\n")
			j = len(s) - len(rest)
			if strings.HasPrefix(rest, "-%}") {
				return k, j + 1, j + 3, true
			}
			if strings.HasPrefix(rest, "%}") {
				return k, j, j + 2, true
			}
		}
		i = k + 2
	}
}

var twoCharOps = []string{"==", "!=", "<=", ">=", "//", "**"}

// lexTag tokenizes an expression from i until closeDelim and appends the
// tokens plus the closing token. It returns the offset after the tag and
// whether the tag ended with "-" (strip the following whitespace).
func lexTag(src *source, i int, closeDelim string, closeKind tokKind, toks *[]token) (int, bool, error) {
	s := src.text
	for {
		for i < len(s) && strings.IndexByte(" \t\r\n", s[i]) >= 0 {
			i++
		}
		if i >= len(s) {
			return 0, false, src.errorf(i, "tag is never closed with %q", closeDelim)
		}
		if strings.HasPrefix(s[i:], "-"+closeDelim) {
			*toks = append(*toks, token{closeKind, closeDelim, i})
			return i + 3, true, nil
		}
		if strings.HasPrefix(s[i:], "+"+closeDelim) {
			*toks = append(*toks, token{closeKind, closeDelim, i})
			return i + 3, false, nil
		}
		if strings.HasPrefix(s[i:], closeDelim) {
			*toks = append(*toks, token{closeKind, closeDelim, i})
			return i + 2, false, nil
		}
		c := s[i]
		start := i
		switch {
		case c == '_' || isLetter(c):
			for i < len(s) && (s[i] == '_' || isLetter(s[i]) || isDigit(s[i])) {
				i++
			}
			*toks = append(*toks, token{tName, s[start:i], start})
		case isDigit(c):
			kind := tInt
			for i < len(s) && (isDigit(s[i]) || s[i] == '_') {
				i++
			}
			if i+1 < len(s) && s[i] == '.' && isDigit(s[i+1]) {
				kind = tFloat
				i++
				for i < len(s) && isDigit(s[i]) {
					i++
				}
			}
			if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
				j := i + 1
				if j < len(s) && (s[j] == '+' || s[j] == '-') {
					j++
				}
				if j < len(s) && isDigit(s[j]) {
					kind = tFloat
					for i = j; i < len(s) && isDigit(s[i]); i++ {
					}
				}
			}
			*toks = append(*toks, token{kind, strings.ReplaceAll(s[start:i], "_", ""), start})
		case c == '\'' || c == '"':
			val, end, err := lexString(src, i)
			if err != nil {
				return 0, false, err
			}
			i = end
			*toks = append(*toks, token{tString, val, start})
		default:
			op := ""
			for _, o := range twoCharOps {
				if strings.HasPrefix(s[i:], o) {
					op = o
					break
				}
			}
			if op == "" {
				if strings.IndexByte("+-*/%~()[]{}.,:|=<>", c) < 0 {
					return 0, false, src.errorf(i, "unexpected character %q in expression", c)
				}
				op = string(c)
			}
			i += len(op)
			*toks = append(*toks, token{tOp, op, start})
		}
	}
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }

// lexString reads a Python string literal starting at the quote at i.
func lexString(src *source, i int) (string, int, error) {
	s := src.text
	q := s[i]
	var b strings.Builder
	j := i + 1
	for j < len(s) {
		c := s[j]
		switch {
		case c == q:
			return b.String(), j + 1, nil
		case c == '\\' && j+1 < len(s):
			j++
			switch e := s[j]; e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case '0':
				b.WriteByte(0)
			case '\\', '\'', '"':
				b.WriteByte(e)
			case '\n':
			default:
				b.WriteByte('\\')
				b.WriteByte(e)
			}
			j++
		default:
			b.WriteByte(c)
			j++
		}
	}
	return "", 0, src.errorf(i, "string literal is never closed")
}
