// Package buildout reads legacy zc.buildout / SlapOS `.cfg` profiles and
// converts them into slapnode HCL profiles.
//
// It has three layers, each usable alone:
//   - Parse: the line grammar of zc.buildout 2.x (configparser.py), keeping
//     every header occurrence, operator and position so that nothing is lost
//     for the converter;
//   - Load / Resolve: the `extends` closure, `+=`/`-=`, `<=` macros and
//     `${section:option}` substitution, reproducing what zc.buildout computes
//     (checked against goldens produced by zc.buildout itself);
//   - Convert: the mapping to the profile language of docs/profiles.md, with
//     a warning (file:line) for everything that cannot be carried over.
package buildout

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Pos is a position in a source file (1-based line and column).
type Pos struct {
	File string
	Line int
	Col  int
}

func (p Pos) String() string {
	if p.Line == 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// Op is the assignment operator of an option line.
type Op int

const (
	OpSet    Op = iota // name = value
	OpAppend           // name += value (line-list append on the inherited value)
	OpRemove           // name -= value (line-list removal)
)

func (o Op) String() string {
	switch o {
	case OpAppend:
		return "+="
	case OpRemove:
		return "-="
	}
	return "="
}

// Option is one `name = value` line (with its continuation lines).
type Option struct {
	// Key is the name as zc.buildout keys it in the section dict: for
	// `eggs += x` it is "eggs +", for `eggs+= x` it is "eggs+". Keeping it
	// matters: both spellings can coexist in one section.
	Key   string
	Name  string // the option name without the operator
	Op    Op
	Value string // final value: stripped or dedented as zc.buildout does
	Pos   Pos
	// End is the last line holding text of the value (Pos.Line for a
	// one-line value): a comment line before it is inside the value.
	End int
}

// Block is one `[name]` or `[name:condition]` header occurrence with the
// options that follow it. A section written twice in a file gives two blocks.
type Block struct {
	Name      string
	Condition string // Python expression of `[name:expr]`, "" when none
	Comment   string // trailing `# ...` of the header line, if any
	Pos       Pos
	Options   []*Option
}

// File is a parsed .cfg file.
type File struct {
	Path   string
	Blocks []*Block
	// Comments holds column-0 comment lines by line number, so the converter
	// can carry them over.
	Comments map[int]string
}

// Diagnostic is one problem found in a file.
type Diagnostic struct {
	Pos Pos
	Msg string
}

func (d Diagnostic) String() string { return d.Pos.String() + ": " + d.Msg }

// ErrorList is every parse error of a file, in line order.
type ErrorList []Diagnostic

func (l ErrorList) Error() string {
	var b strings.Builder
	for i, d := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(d.String())
	}
	return b.String()
}

// The two regular expressions of zc/buildout/configparser.py, with Python's
// `\s` (which includes \v) spelled out because RE2's `\s` lacks it.
var (
	sectionHeader = regexp.MustCompile(`^\[[\t\n\v\f\r ]*([^\t\n\v\f\r #\[\]:;{}]+)[\t\n\v\f\r ]*(:([^#;]*))?[\t\n\v\f\r ]*(\][\t\n\v\f\r ]*([#;].*)?)$`)
	optionStart   = regexp.MustCompile(`^([^\t\n\v\f\r {}\[\]=:]+[\t\n\v\f\r ]*[-+]?)=(.*)$`)
)

// pyIsSpace is Python's str.isspace for one rune: Go's unicode.IsSpace plus
// the four ASCII separators Python also treats as whitespace.
func pyIsSpace(r rune) bool { return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f) }

func pyStrip(s string) string  { return strings.TrimFunc(s, pyIsSpace) }
func pyRstrip(s string) string { return strings.TrimRightFunc(s, pyIsSpace) }

// splitLines splits like Python's universal-newline readline: \r\n and \r
// end a line too. The newline itself is dropped.
func splitLines(src []byte) []string {
	s := string(src)
	if strings.IndexByte(s, '\r') >= 0 {
		s = strings.ReplaceAll(s, "\r\n", "\n")
		s = strings.ReplaceAll(s, "\r", "\n")
	}
	lines := strings.Split(s, "\n")
	if len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// Parse reads one .cfg file with zc.buildout 2.x's line rules:
// column-0 `#`/`;` lines are comments; a line starting with whitespace
// continues the current option (so an indented `#` line is data); a value
// that starts on the option line has its continuation lines stripped and
// blank ones dropped, while a value starting on the next line ("block") is
// dedented with blank lines kept. Conditions of `[name:expr]` are recorded,
// not evaluated: Sections evaluates them. All errors are returned at once as
// an ErrorList.
func Parse(path string, src []byte) (*File, error) {
	if errs := checkBounds(path, src); errs != nil {
		return nil, errs
	}
	f := &File{Path: path, Comments: map[int]string{}}
	var (
		errs      ErrorList
		cur       *Block
		opt       *Option
		blockMode bool
		// buf accumulates the raw value of opt, as configparser does with
		// "%s\n%s" concatenation.
		buf strings.Builder
	)
	flush := func() {
		if opt != nil {
			opt.Value = finishValue(buf.String())
			opt = nil
		}
		buf.Reset()
	}
	src = bytes.TrimPrefix(src, []byte("\xef\xbb\xbf"))
	for i, line := range splitLines(src) {
		lineno := i + 1
		if !utf8.ValidString(line) {
			// Python 3's buildout reads profiles as UTF-8 and fails too.
			col := 1
			for j := 0; j < len(line); {
				r, n := utf8.DecodeRuneInString(line[j:])
				if r == utf8.RuneError && n <= 1 {
					col = j + 1
					break
				}
				j += n
			}
			errs = append(errs, Diagnostic{Pos{path, lineno, col}, "invalid UTF-8: save the profile as UTF-8"})
			continue
		}
		r := []rune(line)
		if len(line) > 0 && (line[0] == '#' || line[0] == ';') {
			f.Comments[lineno] = line
			continue
		}
		// An empty line is "\n" for Python's readline, which is whitespace.
		leadingSpace := len(line) == 0 || pyIsSpace(r[0])
		if leadingSpace && cur != nil && opt != nil {
			if pyStrip(line) != "" {
				opt.End = lineno
			}
			if blockMode {
				buf.WriteString("\n" + pyRstrip(line))
			} else if s := pyStrip(line); s != "" {
				buf.WriteString("\n" + s)
			}
			continue
		}
		if m := sectionHeader.FindStringSubmatch(line); m != nil {
			flush()
			b := &Block{Name: m[1], Pos: Pos{path, lineno, 1}}
			if m[2] != "" {
				b.Condition = strings.TrimSpace(strings.NewReplacer(`\x23`, "#", `\x3b`, ";").Replace(m[3]))
			}
			b.Comment = m[5]
			f.Blocks = append(f.Blocks, b)
			cur = b
			continue
		}
		if cur == nil {
			if pyStrip(line) == "" {
				continue
			}
			errs = append(errs, Diagnostic{Pos{path, lineno, 1}, fmt.Sprintf("option %q before any [section] header: start the file with a section such as [buildout]", clip(line))})
			// zc.buildout stops at this error (MissingSectionHeaderError).
			return nil, errs
		}
		l := line
		if strings.HasPrefix(l, "=>") {
			l = "<part-dependencies> = " + l[2:]
		}
		if m := optionStart.FindStringSubmatch(l); m != nil {
			flush()
			key := pyRstrip(m[1])
			val := pyStrip(m[2])
			o := &Option{Key: key, Name: key, Op: OpSet, Pos: Pos{path, lineno, 1}, End: lineno}
			switch {
			case strings.HasSuffix(key, "+"):
				o.Op, o.Name = OpAppend, strings.TrimRight(key, " +")
			case strings.HasSuffix(key, "-"):
				o.Op, o.Name = OpRemove, strings.TrimRight(key, " -")
			}
			cur.Options = append(cur.Options, o)
			opt = o
			buf.WriteString(val)
			blockMode = val == ""
			continue
		}
		if opt == nil && pyStrip(line) == "" {
			continue
		}
		col := 1
		errs = append(errs, Diagnostic{Pos{path, lineno, col}, fmt.Sprintf("cannot parse %q: expected [section], name = value, an indented continuation line or a column-0 # comment", clip(line))})
	}
	flush()
	if len(errs) > 0 {
		return nil, errs
	}
	return f, nil
}

func clip(s string) string {
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}

// finishValue applies configparser's post-processing: a value whose first
// character is whitespace (a block value, which starts with the newline of
// its first continuation) is right-stripped, dedented and loses its leading
// blank lines.
func finishValue(v string) string {
	if v == "" {
		return v
	}
	r, _ := firstRune(v)
	if !pyIsSpace(r) {
		return v
	}
	v = dedent(pyRstrip(v))
	return trimLeadingBlankLines(v)
}

func firstRune(s string) (rune, bool) {
	for _, r := range s {
		return r, true
	}
	return 0, false
}

// trimLeadingBlankLines is re.sub(r"^(\s*\n)+", "", v).
func trimLeadingBlankLines(v string) string {
	i := strings.IndexFunc(v, func(r rune) bool { return !pyIsSpace(r) })
	if i < 0 {
		i = len(v)
	}
	if nl := strings.LastIndexByte(v[:i], '\n'); nl >= 0 {
		return v[nl+1:]
	}
	return v
}

// dedent is Python's textwrap.dedent: whitespace-only lines become empty,
// then the longest common leading run of spaces and tabs of the other lines
// is removed (tabs and spaces are not equivalent).
func dedent(text string) string {
	lines := strings.Split(text, "\n")
	margin, have := "", false
	for i, l := range lines {
		t := strings.TrimLeft(l, " \t")
		if t == "" {
			lines[i] = ""
			continue
		}
		indent := l[:len(l)-len(t)]
		switch {
		case !have:
			margin, have = indent, true
		case strings.HasPrefix(indent, margin):
		case strings.HasPrefix(margin, indent):
			margin = indent
		default:
			n := 0
			for n < len(margin) && n < len(indent) && margin[n] == indent[n] {
				n++
			}
			margin = margin[:n]
		}
	}
	if margin != "" {
		for i, l := range lines {
			lines[i] = strings.TrimPrefix(l, margin)
		}
	}
	return strings.Join(lines, "\n")
}

// Sections merges the blocks of the file the way configparser.parse returns
// them: blocks whose condition is false are skipped, a section written twice
// merges, and the same key twice keeps the last value. It returns the
// options of each section in first-definition order of their keys.
func (f *File) Sections(env *CondEnv) (map[string][]*Option, []string, error) {
	out := map[string][]*Option{}
	index := map[string]map[string]int{} // section -> key -> position in out
	var order []string
	var errs ErrorList
	for _, b := range f.Blocks {
		if b.Condition != "" {
			ok, err := env.Eval(b.Condition)
			if err != nil {
				errs = append(errs, Diagnostic{b.Pos, fmt.Sprintf("condition of [%s:%s]: %v", b.Name, b.Condition, err)})
				continue
			}
			if !ok {
				continue
			}
		}
		opts, seen := out[b.Name]
		if !seen {
			order = append(order, b.Name)
			index[b.Name] = map[string]int{}
		}
		idx := index[b.Name]
		for _, o := range b.Options {
			if i, ok := idx[o.Key]; ok {
				opts[i] = o
				continue
			}
			idx[o.Key] = len(opts)
			opts = append(opts, o)
		}
		out[b.Name] = opts
	}
	if len(errs) > 0 {
		return nil, nil, errs
	}
	return out, order, nil
}

// Input bounds of a .cfg file (docs/convert.md §1). The line grammar does not
// recurse, but the condition of a [name:condition] header is parsed by a
// recursive-descent parser (cond.go): 500,000 parentheses, which fit in
// 1 MiB, overflowed the stack and killed the process.
const (
	// MaxFileSize bounds a .cfg file (the largest SlapOS profile is 44 KB).
	MaxFileSize = 1 << 20
	// MaxNesting bounds the brackets of a section condition.
	MaxNesting = 256
	// MaxConditionLen bounds a section condition's length, and with it
	// chains of unary operators (not not not …); the longest in SlapOS's
	// profiles is 166 characters.
	MaxConditionLen = 4096
)

// checkBounds enforces the bounds above before anything parses src; each
// error says where (file:line:col).
func checkBounds(path string, src []byte) ErrorList {
	if len(src) > MaxFileSize {
		line := 1 + bytes.Count(src[:MaxFileSize], []byte("\n"))
		col := MaxFileSize - bytes.LastIndexByte(src[:MaxFileSize], '\n')
		return ErrorList{{Pos{path, line, col}, fmt.Sprintf("the file is larger than %d MiB, the limit for a .cfg profile: split it with extends", MaxFileSize>>20)}}
	}
	var errs ErrorList
	for start, line := 0, 1; start < len(src); line++ {
		// Lines end as in splitLines: \n, \r\n or \r.
		end := len(src)
		if i := bytes.IndexAny(src[start:], "\r\n"); i >= 0 {
			end = start + i
		}
		l := src[start:end]
		start = end + 1
		if end+1 < len(src) && src[end] == '\r' && src[end+1] == '\n' {
			start++
		}
		colon := bytes.IndexByte(l, ':')
		if len(l) == 0 || l[0] != '[' || colon < 0 {
			continue
		}
		// The header grammar stops a condition at # or ; (even quoted).
		cond := l[colon+1:]
		if i := bytes.IndexAny(cond, "#;"); i >= 0 {
			cond = cond[:i]
		}
		if len(cond) > MaxConditionLen {
			errs = append(errs, Diagnostic{Pos{path, line, colon + 2}, fmt.Sprintf("the section condition is longer than %d characters: write a shorter expression", MaxConditionLen)})
			continue
		}
		depth := 0
		var quote byte
		for i, c := range cond {
			switch {
			case quote != 0:
				if c == quote {
					quote = 0
				}
			case c == '\'' || c == '"':
				quote = c
			case c == '(' || c == '[' || c == '{':
				depth++
			case c == ')' || c == ']' || c == '}':
				depth = max(depth-1, 0)
			}
			if depth > MaxNesting {
				errs = append(errs, Diagnostic{Pos{path, line, colon + 2 + i}, fmt.Sprintf("the section condition nests more than %d brackets deep: write a shallower expression", MaxNesting)})
				break
			}
		}
	}
	return errs
}
