package profile

import (
	"bytes"
	"math"
	"unicode/utf8"
)

// nestingBound returns an upper bound of nesting(src, _, template, limit):
// the same count, computed without hclsyntax's token slice (which costs
// about half the lexing of a large profile and 40% of its allocations),
// or math.MaxInt for input it does not model. checkBounds runs the precise
// pass only when this bound exceeds MaxNesting.
//
// It is not a lexer of its own: it follows hclsyntax's lexer
// (scan_tokens.rl) only as far as the nesting count needs, the token kinds
// that count and where strings, heredocs, comments and template sequences
// begin and end, and it gives up (math.MaxInt, so the precise pass runs)
// wherever following it exactly would take more: invalid UTF-8, any
// non-ASCII byte outside strings, heredocs and comments (identifiers may
// then continue), an unterminated /* comment, a lone \r in a heredoc or a
// template, and more nesting than its fixed stacks hold. FuzzNestingBound
// checks the bound against nesting itself.
func nestingBound(src []byte, template bool, limit int) int {
	var s nestScan
	return s.run(src, template, limit)
}

const (
	nestCap     = 512 // frames, calls and template sequences held
	nestDocsCap = 64  // heredocs open at once
	nestUnknown = math.MaxInt
)

// Lexer modes (hclsyntax's Ragel machines).
const (
	modeMain uint8 = iota
	modeString
	modeHeredoc
	modeBare
)

// Token kinds, as nesting tells them apart.
const (
	kOperand = iota // identifier, number
	kClose          // ) ] } " end of heredoc: end an operand
	kSeqEnd         // } or ~} ending a template sequence
	kOpen           // ( " heredoc ${ %{
	kOBrace         // {: newlines separate items inside
	kOBrack         // [: an index after an operand
	kMinus          // -
	kBang           // !
	kBinary         // + * / % == != < <= > >= && || ?
	kReset          // , =
	kNewline        // newline
	kComment        // comment (a line comment holds its newline)
	kOther          // anything else
)

type nestFrame struct {
	chain     int32
	newlineEq bool
}

type nestDoc struct {
	start, end  int // the marker in src
	startOfLine bool
}

type nestScan struct {
	frames              [nestCap]nestFrame
	nf                  int
	chains, unary, dirs int
	deepest             int
	afterOperand        bool
	modes               [nestCap]uint8 // the modes to return to
	nm                  int
	rets                [nestCap]int // brace levels that end a template sequence
	nr                  int
	braces              int
	docs                [nestDocsCap]nestDoc
	nd                  int
	bail                bool

	// cutEvery > 0 asks run to record in cuts where the file may be cut
	// into pieces that hclsyntax parses alone (splitConfig): after a
	// newline between two top-level items, at least cutEvery bytes after
	// the previous cut.
	cutEvery int
	cuts     []int
}

// cut records i, the offset after a newline token, when it ends a
// top-level item: in the main mode, no bracket, string, heredoc or
// template sequence open.
func (s *nestScan) cut(i int) {
	if s.cutEvery == 0 || s.nf != 1 || s.nm != 0 || s.nd != 0 || s.nr != 0 {
		return
	}
	last := 0
	if len(s.cuts) > 0 {
		last = s.cuts[len(s.cuts)-1]
	}
	if i-last >= s.cutEvery {
		s.cuts = append(s.cuts, i)
	}
}

// emit counts one token as nesting does; dir is the change of the
// directive count (a %{ if/for } or %{ endif/endfor }). It reports whether
// the depth exceeds limit or the scan gave up.
func (s *nestScan) emit(k int, dir, limit int) bool {
	top := &s.frames[s.nf-1]
	operand := s.afterOperand
	switch k {
	case kOperand, kClose:
		s.afterOperand = true
	case kNewline, kComment:
		if top.newlineEq {
			s.afterOperand = false
		}
	default:
		s.afterOperand = false
	}
	switch k {
	case kOpen, kOBrace, kOBrack:
		if k == kOBrack && operand {
			top.chain++
			s.chains++
		}
		if s.nf == nestCap {
			s.bail = true
			return true
		}
		s.frames[s.nf] = nestFrame{newlineEq: k == kOBrace}
		s.nf++
		switch {
		case dir > 0:
			s.dirs++
		case dir < 0:
			s.dirs = max(s.dirs-1, 0)
		}
	case kClose, kSeqEnd:
		if s.nf > 1 {
			s.chains -= int(top.chain)
			s.nf--
		}
	case kMinus:
		if operand {
			top.chain++
			s.chains++
		}
	case kBinary:
		top.chain++
		s.chains++
	case kReset:
		s.chains -= int(top.chain)
		top.chain = 0
	case kNewline:
		if top.newlineEq {
			s.chains -= int(top.chain)
			top.chain = 0
		}
	}
	if (k == kMinus && !operand) || k == kBang {
		s.unary++
	} else if k != kNewline && k != kComment {
		s.unary = 0
	}
	if d := s.nf - 1 + s.chains + s.unary + s.dirs; d > s.deepest {
		s.deepest = d
		return d > limit
	}
	return false
}

// call enters mode m from mode cur; ret pops back.
func (s *nestScan) call(cur, m uint8) uint8 {
	if s.nm == nestCap {
		s.bail = true
		return cur
	}
	s.modes[s.nm] = cur
	s.nm++
	return m
}

func (s *nestScan) ret(cur uint8) uint8 {
	if s.nm == 0 {
		s.bail = true
		return cur
	}
	s.nm--
	return s.modes[s.nm]
}

// sequence enters a ${ or %{ sequence at src[i] (a $ or %), returning the
// index after its token and the mode (main).
func (s *nestScan) sequence(src []byte, i int, cur uint8, limit int) (int, uint8, bool) {
	control := src[i] == '%'
	i += 2
	if i < len(src) && src[i] == '~' {
		i++
	}
	s.braces++
	if s.nr == nestCap {
		s.bail = true
		return i, cur, true
	}
	s.rets[s.nr] = s.braces
	s.nr++
	if s.nd > 0 {
		s.docs[s.nd-1].startOfLine = false
	}
	dir := 0
	if control {
		// nesting looks at the token after %{: spaces are not tokens.
		j := i
		for j < len(src) && (src[j] == ' ' || src[j] == '\t') {
			j++
		}
		if e := identEnd(src, j); e > j {
			switch string(src[j:e]) {
			case "if", "for":
				dir = 1
			case "endif", "endfor":
				dir = -1
			}
		}
	}
	m := s.call(cur, modeMain)
	return i, m, s.bail || s.emit(kOpen, dir, limit)
}

// closeBrace handles a } (n = 1) or ~} (n = 2) in main mode.
func (s *nestScan) closeBrace(tilde bool, cur uint8, limit int) (uint8, bool) {
	if s.nr > 0 && s.rets[s.nr-1] == s.braces {
		s.braces--
		s.nr--
		m := s.ret(cur)
		return m, s.bail || s.emit(kSeqEnd, 0, limit)
	}
	s.braces--
	if tilde {
		return cur, s.emit(kSeqEnd, 0, limit)
	}
	return cur, s.emit(kClose, 0, limit)
}

func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
}

func isIdentCont(c byte) bool {
	return isIdentStart(c) || c >= '0' && c <= '9' || c == '-'
}

// identEnd returns the end of the ASCII identifier at src[i] (i if none).
func identEnd(src []byte, i int) int {
	if i >= len(src) || !isIdentStart(src[i]) {
		return i
	}
	i++
	for i < len(src) && isIdentCont(src[i]) {
		i++
	}
	return i
}

// numberEnd returns the end of the number literal starting with the digit
// at src[i]: digits, dots and exponents, not ending with a dot.
func numberEnd(src []byte, i int) int {
	i++
	end := i
	for i < len(src) {
		c := src[i]
		switch {
		case c >= '0' && c <= '9':
			i++
			end = i
		case c == '.':
			i++
		case c == 'e' || c == 'E':
			j := i + 1
			if j < len(src) && (src[j] == '+' || src[j] == '-') {
				j++
			}
			if j < len(src) && src[j] >= '0' && src[j] <= '9' {
				i = j + 1
				end = i
				continue
			}
			return end
		default:
			return end
		}
	}
	return end
}

func (s *nestScan) run(src []byte, template bool, limit int) int {
	src = bytes.TrimPrefix(src, []byte("\xef\xbb\xbf")) // as hclsyntax does
	if !utf8.Valid(src) {
		return nestUnknown
	}
	s.frames[0] = nestFrame{newlineEq: !template}
	s.nf = 1
	mode := modeMain
	if template {
		mode = modeBare
	}
	n := len(src)
	i := 0
	stop := false
	for i < n && !stop {
		switch mode {
		case modeMain:
			c := src[i]
			k := kOther
			w := 1
			switch {
			case c == ' ' || c == '\t':
				i++
				continue
			case c == '\n':
				k = kNewline
			case c == '\r':
				if i+1 < n && src[i+1] == '\n' {
					k, w = kNewline, 2
				}
			case c >= '0' && c <= '9':
				k, w = kOperand, numberEnd(src, i)-i
			case isIdentStart(c):
				k, w = kOperand, identEnd(src, i)-i
			case c == '#' || c == '/' && i+1 < n && src[i+1] == '/':
				k = kComment
				if e := bytes.IndexByte(src[i:], '\n'); e >= 0 {
					w = e + 1
				} else {
					w = n - i
				}
			case c == '/' && i+1 < n && src[i+1] == '*':
				e := bytes.Index(src[i+2:], []byte("*/"))
				if e < 0 {
					return nestUnknown
				}
				k, w = kComment, e+4
			case c == '"':
				stop = s.emit(kOpen, 0, limit)
				mode = s.call(mode, modeString)
				i++
				continue
			case c == '{':
				s.braces++
				k = kOBrace
			case c == '}':
				mode, stop = s.closeBrace(false, mode, limit)
				i++
				continue
			case c == '~' && i+1 < n && src[i+1] == '}':
				mode, stop = s.closeBrace(true, mode, limit)
				i += 2
				continue
			case c == '<' && i+1 < n && src[i+1] == '<':
				// <<EOT or <<-EOT and a newline begins a heredoc.
				j := i + 2
				if j < n && src[j] == '-' {
					j++
				}
				e := identEnd(src, j)
				if j < n && src[j] >= 0x80 || e < n && src[e] >= 0x80 {
					return nestUnknown // a Unicode identifier
				}
				nl := 0
				if e < n && src[e] == '\n' {
					nl = 1
				} else if e+1 < n && src[e] == '\r' && src[e+1] == '\n' {
					nl = 2
				}
				if e == j || nl == 0 {
					k = kBinary // <, and the next < alone
					break
				}
				if s.nd == nestDocsCap {
					return nestUnknown
				}
				s.docs[s.nd] = nestDoc{start: j, end: e, startOfLine: true}
				s.nd++
				stop = s.emit(kOpen, 0, limit)
				mode = s.call(mode, modeHeredoc)
				i = e + nl
				continue
			case c == '<' || c == '>':
				k = kBinary
				if i+1 < n && src[i+1] == '=' {
					w = 2
				}
			case c == '=':
				k = kReset
				if i+1 < n && (src[i+1] == '=' || src[i+1] == '>') {
					k, w = kBinary, 2
					if src[i+1] == '>' {
						k = kOther
					}
				}
			case c == '!':
				k = kBang
				if i+1 < n && src[i+1] == '=' {
					k, w = kBinary, 2
				}
			case c == '&' || c == '|':
				if i+1 < n && src[i+1] == c {
					k, w = kBinary, 2
				}
			case c == '+' || c == '*' || c == '/' || c == '%' || c == '?':
				k = kBinary
			case c == '-':
				k = kMinus
			case c == ',':
				k = kReset
			case c == '(':
				k = kOpen
			case c == '[':
				k = kOBrack
			case c == ')' || c == ']':
				k = kClose
			case c >= 0x80:
				return nestUnknown
			}
			stop = s.emit(k, 0, limit)
			i += w
			if k == kNewline || k == kComment && src[i-1] == '\n' {
				s.cut(i)
			}
		case modeString:
			c := src[i]
			switch c {
			case '"':
				stop = s.emit(kClose, 0, limit)
				mode = s.ret(mode)
				i++
			case '\\':
				// An escape takes the next character but a newline.
				if i+1 < n && src[i+1] != '\n' && src[i+1] != '\r' && src[i+1] < 0x80 {
					i += 2
				} else {
					i++
				}
			case '$', '%':
				i, mode, stop = s.template(src, i, mode, limit)
			default:
				i++
			}
		case modeHeredoc, modeBare:
			if mode == modeHeredoc && s.docs[s.nd-1].startOfLine {
				// A line that is the marker alone ends the heredoc.
				e := i
				for e < n && src[e] != '$' && src[e] != '%' && src[e] != '\r' && src[e] != '\n' {
					e++
				}
				nl := 0
				if e < n && src[e] == '\n' {
					nl = 1
				} else if e+1 < n && src[e] == '\r' && src[e+1] == '\n' {
					nl = 2
				}
				d := s.docs[s.nd-1]
				if nl > 0 && bytes.Equal(bytes.TrimSpace(src[i:e]), src[d.start:d.end]) {
					s.nd--
					stop = s.emit(kClose, 0, limit)
					mode = s.ret(mode)
					if !stop {
						stop = s.emit(kNewline, 0, limit)
					}
					i = e + nl
					if mode == modeMain {
						s.cut(i)
					}
					continue
				}
			}
			c := src[i]
			switch c {
			case '$', '%':
				i, mode, stop = s.template(src, i, mode, limit)
			case '\n', '\r':
				if c == '\r' {
					if i+1 >= n || src[i+1] != '\n' {
						return nestUnknown // hclsyntax stops there
					}
					i++
				}
				if mode == modeHeredoc {
					s.docs[s.nd-1].startOfLine = true
				}
				i++
			default:
				if mode == modeHeredoc {
					s.docs[s.nd-1].startOfLine = false
				}
				i++
			}
		}
		if s.bail {
			return nestUnknown
		}
	}
	if s.bail {
		return nestUnknown
	}
	return s.deepest
}

// template handles a $ or % in a string, heredoc or template: ${ and %{
// begin a sequence, $${ and %%{ are escapes, anything else is literal.
func (s *nestScan) template(src []byte, i int, mode uint8, limit int) (int, uint8, bool) {
	c := src[i]
	if i+1 < len(src) && src[i+1] == '{' {
		return s.sequence(src, i, mode, limit)
	}
	if mode == modeHeredoc {
		s.docs[s.nd-1].startOfLine = false
	}
	if i+2 < len(src) && src[i+1] == c && src[i+2] == '{' {
		return i + 3, mode, false
	}
	return i + 1, mode, false
}
