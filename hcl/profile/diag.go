package profile

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// WriteDiagnostics prints diagnostics as compilers do — "file:line:col:
// error: summary" — followed by the source line with a caret under the
// position and the detail. Paths are shown relative to the working directory
// when shorter.
func WriteDiagnostics(w io.Writer, diags hcl.Diagnostics, files map[string]*hcl.File) {
	wd, _ := os.Getwd()
	for _, d := range diags {
		sev := "error"
		if d.Severity == hcl.DiagWarning {
			sev = "warning"
		}
		if d.Subject == nil {
			fmt.Fprintf(w, "%s: %s", sev, d.Summary)
			if d.Detail != "" {
				fmt.Fprintf(w, ": %s", d.Detail)
			}
			fmt.Fprintln(w)
			continue
		}
		name := d.Subject.Filename
		if rel, err := filepath.Rel(wd, name); err == nil && len(rel) < len(name) {
			name = rel
		}
		fmt.Fprintf(w, "%s:%d:%d: %s: %s\n", name, d.Subject.Start.Line, d.Subject.Start.Column, sev, d.Summary)
		if f := files[d.Subject.Filename]; f != nil {
			if line, ok := sourceLine(f.Bytes, d.Subject.Start.Line); ok {
				fmt.Fprintf(w, "  %4d | %s\n", d.Subject.Start.Line, line)
				width := 1
				if d.Subject.End.Line == d.Subject.Start.Line && d.Subject.End.Column > d.Subject.Start.Column {
					width = d.Subject.End.Column - d.Subject.Start.Column
				}
				pad := strings.Map(func(r rune) rune {
					if r == '\t' {
						return '\t'
					}
					return ' '
				}, prefixRunes(line, d.Subject.Start.Column-1))
				fmt.Fprintf(w, "       | %s%s\n", pad, strings.Repeat("^", width))
			}
		}
		if d.Detail != "" {
			fmt.Fprintf(w, "  %s\n", d.Detail)
		}
	}
}

// sourceLine returns line n (from 1) of src, without its line end.
func sourceLine(src []byte, n int) (string, bool) {
	if n < 1 {
		return "", false
	}
	for ; n > 1; n-- {
		i := bytes.IndexByte(src, '\n')
		if i < 0 {
			return "", false
		}
		src = src[i+1:]
	}
	if i := bytes.IndexByte(src, '\n'); i >= 0 {
		src = src[:i]
	}
	return strings.TrimRight(string(src), "\r"), true
}

func prefixRunes(s string, n int) string {
	r := []rune(s)
	if n > len(r) {
		n = len(r)
	}
	if n < 0 {
		n = 0
	}
	return string(r[:n])
}

// Error carries diagnostics as a Go error; its message is the rendered
// diagnostics with positions and snippets.
type Error struct {
	Diags hcl.Diagnostics
	Files map[string]*hcl.File
}

func (e *Error) Error() string {
	var b strings.Builder
	WriteDiagnostics(&b, e.Diags, e.Files)
	return strings.TrimRight(b.String(), "\n")
}

// Err returns diags as an *Error when they contain an error, else nil.
func (p *Profile) Err(diags hcl.Diagnostics) error {
	if !diags.HasErrors() {
		return nil
	}
	var files map[string]*hcl.File
	if p != nil {
		files = p.Sources()
	}
	return &Error{Diags: diags, Files: files}
}

// JoinErrors merges the diagnostics of several profiles' errors into one,
// in file and position order, each problem once.
func JoinErrors(errs ...*Error) *Error {
	out := &Error{Files: map[string]*hcl.File{}}
	seen := map[string]bool{}
	for _, e := range errs {
		if e == nil {
			continue
		}
		for k, f := range e.Files {
			out.Files[k] = f
		}
		for _, d := range e.Diags {
			key := d.Summary
			if d.Subject != nil {
				key = fmt.Sprintf("%s:%d:%s", d.Subject.Filename, d.Subject.Start.Byte, d.Summary)
			}
			if seen[key] {
				continue
			}
			seen[key] = true
			out.Diags = append(out.Diags, d)
		}
	}
	sortDiags(out.Diags)
	return out
}
