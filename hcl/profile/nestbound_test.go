package profile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// nestingCases are inputs where the lexer's modes change what a byte
// means: the bound must never be below hclsyntax's count.
var nestingCases = []string{
	"a = (((1)))", "a = [[1], [[2]]]", "a = {b = {c = 1}}", "a = 1 + 2 * 3 - -4", "a = !!!true",
	"a = x ? y : z ? w : v", "a = x[0][y][z]", "a = f(g(h(1)))", "a = x[*].y", "a = a-b-c - 1",
	"a = 1e+5 + 1.5e-3 - 1..2 - 1...", "a = [for x in y : x if x]", "a = {for k, v in m : k => v...}",
	// strings holding brackets, separators, escapes
	`a = "(((" + 1 + 2`, `a = ")]}" + 1`, `a = "," + (1 + 2 + 3)`, `a = "=" + 1 + 2`,
	`a = "\"(" + (1 + 2)`, `a = "\\" + (1 + (2))`, `a = "$${(((" + 1`, `a = "%%{ if x }" + 1`,
	`a = "${"${"${x + 1}"}"}" + 1`, `a = "${ { b = "}" } }" + 1`, `a = "\${x}" + (1)`,
	`a = "$" + "%" + "$$" + "x$"`, "a = \"x\ny\" + (1 + 2)", "a = \"x\r\ny\" + 1", "a = \"\\\n\" + 1",
	`a = "%{ if x }${y}%{ else }z%{ endif }" + 1`, `a = "%{~ for v in l ~}${v}%{~ endfor ~}"`,
	`a = "%{if}%{ if-x }%{ /* c */ if }%{` + "\n" + `if }"`, `a = "${~ x ~}" + (1)`,
	// newlines inside parentheses, brackets, braces
	"a = (1\n+ 2\n+ 3)", "a = [1,\n2 +\n3]", "a = {\nb = 1 +\n2\nc = (3\n* 4)\n}", "a = 1\n+ 2\nb = -\n-\n1",
	// comments
	"a = 1 # c\n- 2", "a = 1 // \"(((\n+ 2", "a = /* \" ( */ -(1)", "a = 1 /* \n */ + 2", "# }}}\n{{{",
	"/* unterminated ((( ", "a = 1 / 2 /* x */ */ 3",
	// heredocs
	"a = <<EOT\n\"(((}\n${x + 1}\nEOT\nb = (1)", "a = <<-EOT\n  }\"\n  EOT\nb = [[1]]",
	"a = <<EOT\r\n${x}\r\nEOT\r\nb = ((2))", "a = <<EOT\nEOT x\n EOT \n(((", "a = <<EOT\n${<<IN\n(\nIN\n}\nEOT\n((1))",
	"a = <<EOT\n$\nEOT\n((1))", "a = <<EOT\n%\nEOT\n((1))", "a = <<EOT\n$${x}EOT\nEOT\n[[1]]", "a = <<EOT\nx${y}EOT\nEOT\n((",
	"a = <<EOT\n(((", "a = <<EOT\nEOT", "a = <<EOT x\n((1))", "a = <<EOT-1\nEOT-1\n(1)", "a = <<EOT\n\u00a0EOT\u2003\n((1))",
	"a = <<EOT\nx\ry\nEOT\n((1))", "a = <<\nEOT\n(1)", "a = <<EOT\n%{ if x }\nEOT\n%{ endif }\nEOT\n(1)",
	// unterminated, stray closers, template sequence ends
	`a = "(((`, `a = "${`, "a = ((((", "}}}} ))) a = ((1))", "a = ~} ((1))", "a = \"${ ~} ((1))\"",
	"a = \"${ } }\" ((1))", "a = \"${ { }\" ((1))",
	// CRLF, UTF-8, invalid bytes
	"a = (1\r\n+ 2)\r\nb = 3", "a = \"é(((\" + 1", "# é\na = (1)", "a = é + (1)", "a = \xff(((1)))", "\xef\xbb\xbfa = ((1))",
	"a = \r (1)", "a = @ $ \\ ` ' ; ^ & | ~ ((1))", "a = x&&y||z && (1)",
}

// nestingTemplates are templatefile inputs.
var nestingTemplates = []string{
	"x${a + 1}y", "%{ if a }${b}%{ endif }", "$${(((}", "%%{ if }", "${\"${x}\"}", "}}}((( ${x}",
	"a\r\nb${(1)}", "a\rb${(1)}", "${ { }", "${ ~} ${((1))}", "$", "x%", "${<<EOT\n}\nEOT\n}((",
	"%{ for x in y }%{ if x }z%{ endif }%{ endfor }",
}

// TestNestingBound checks the fast bound against the token pass on
// inputs where a byte's meaning depends on the lexer's mode, and that it
// is exact on the constructs real profiles use (else the fast path would
// rarely help).
func TestNestingBoundTable(t *testing.T) {
	for _, tmpl := range []bool{false, true} {
		cases := nestingCases
		if tmpl {
			cases = append(append([]string{}, nestingTemplates...), nestingCases...)
		}
		for _, src := range cases {
			want, _ := nesting([]byte(src), "f.hcl", tmpl, 1<<30)
			got := nestingBound([]byte(src), tmpl, 1<<30)
			if got < want {
				t.Errorf("template=%v %q: bound %d < nesting %d", tmpl, src, got, want)
			}
		}
	}
	for _, src := range []string{
		"a = (((1)))", "a = 1 + 2 * 3 - -4", "a = !!!true", "a = x[0][y][z]", "a = \"${\"${\"${x + 1}\"}\"}\" + 1",
		"a = <<EOT\n\"(((}\n${x + 1}\nEOT\nb = (1)", "a = 1 # c\n- 2", "a = {\nb = 1 +\n2\nc = (3\n* 4)\n}",
		`a = "%{ if x }${y}%{ else }z%{ endif }" + 1`, "a = <<EOT\n${<<IN\n(\nIN\n}\nEOT\n((1))",
	} {
		want, _ := nesting([]byte(src), "f.hcl", false, 1<<30)
		if got := nestingBound([]byte(src), false, 1<<30); got != want {
			t.Errorf("%q: bound %d, nesting %d", src, got, want)
		}
	}
}

// The repository's profiles and templates, and the benchmark's 1000-part
// profile, are within the bound: the precise pass is skipped for them.
func TestNestingBoundRealProfiles(t *testing.T) {
	files := realProfiles(t)
	if len(files) < 10 {
		t.Fatalf("only %d profiles found", len(files))
	}
	files = append(files, "1000-parts")
	for _, f := range files {
		src, tmpl := []byte(bigProfile()), false
		if f != "1000-parts" {
			var err error
			if src, err = os.ReadFile(f); err != nil {
				t.Fatal(err)
			}
			tmpl = !strings.HasSuffix(f, ".hcl")
		}
		want, _ := nesting(src, f, tmpl, 1<<30)
		got := nestingBound(src, tmpl, MaxNesting)
		if got > MaxNesting || got != want {
			t.Errorf("%s: bound %d, nesting %d", f, got, want)
		}
	}
}

// realProfiles lists the HCL profiles and templates of the repository.
func realProfiles(t testing.TB) []string {
	var files []string
	for _, pat := range []string{"../../examples/*/*.hcl", "../../examples/*/templates/*", "testdata/*/*.hcl", "testdata/*.hcl"} {
		m, err := filepath.Glob(pat)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	return files
}

func TestNestingBoundAllocs(t *testing.T) {
	src := []byte(bigProfile())
	if n := testing.AllocsPerRun(5, func() { nestingBound(src, false, MaxNesting) }); n != 0 {
		t.Errorf("%v allocations", n)
	}
}

// FuzzNestingBound: for every input, in config and template mode, the
// bound is at least what the token pass counts, and a bound within a limit
// means the token pass is within it too.
func FuzzNestingBound(f *testing.F) {
	for _, s := range nestingCases {
		f.Add([]byte(s))
	}
	for _, s := range nestingTemplates {
		f.Add([]byte(s))
	}
	for _, p := range realProfiles(f) {
		if src, err := os.ReadFile(p); err == nil {
			f.Add(src)
		}
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		for _, tmpl := range []bool{false, true} {
			want, _ := nesting(src, "f.hcl", tmpl, 1<<30)
			if got := nestingBound(src, tmpl, 1<<30); got < want {
				t.Fatalf("template=%v: bound %d < nesting %d", tmpl, got, want)
			}
			if got := nestingBound(src, tmpl, 3); got <= 3 && want > 3 {
				t.Fatalf("template=%v: bound %d within 3, nesting %d", tmpl, got, want)
			}
		}
	})
}

func BenchmarkNesting(b *testing.B) {
	src := []byte(bigProfile())
	b.Run("tokens", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(src)))
		for b.Loop() {
			nesting(src, "f.hcl", false, MaxNesting)
		}
	})
	b.Run("bound", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(src)))
		for b.Loop() {
			nestingBound(src, false, MaxNesting)
		}
	})
}
