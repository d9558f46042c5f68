package profile

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

const head = "software \"x\" { version = \"1\" }\n"

// TestNestingBound is issue 18 #6: input that nests deeper than
// MaxNesting — in every way the parser or the evaluator recurses — is
// refused with its position, without the stack overflow (100,000
// parentheses) or the 447 MB (20,000) it cost before.
func TestNestingBound(t *testing.T) {
	deep := func(open, mid, close string, n int) string {
		return strings.Repeat(open, n) + mid + strings.Repeat(close, n)
	}
	for name, tc := range map[string]struct {
		src       string
		line, col int
	}{
		"parentheses 100k":  {head + "locals { v = " + deep("(", "1", ")", 100_000) + " }\n", 2, 12 + MaxNesting + 1},
		"parentheses 20k":   {head + "locals { v = " + deep("(", "1", ")", 20_000) + " }\n", 2, 12 + MaxNesting + 1},
		"brackets":          {head + "locals { v = " + deep("[", "1", "]", 50_000) + " }\n", 2, 12 + MaxNesting + 1},
		"objects":           {head + "locals { v = " + deep("{a = ", "1", "}", 50_000) + " }\n", 2, 0},
		"blocks":            {head + deep("part \"p\" {\n", "", "}\n", 2_000), 0, 0},
		"nested strings":    {head + "locals { v = " + deep(`"${`, "1", `}"`, 20_000) + " }\n", 2, 0},
		"function calls":    {head + "locals { v = " + deep("max(", "1", ")", 20_000) + " }\n", 2, 0},
		"unary minus":       {head + "locals { v = " + strings.Repeat("-", 500_000) + "1 }\n", 2, 12 + MaxNesting + 1},
		"unary not":         {head + "locals { v = " + strings.Repeat("!", 500_000) + "true }\n", 2, 12 + MaxNesting + 1},
		"binary chain":      {head + "locals { v = 1" + strings.Repeat(" + 1", 200_000) + " }\n", 2, 0},
		"binary over lines": {head + "locals { v = (1" + strings.Repeat("\n+ 1", 200_000) + ") }\n", 0, 0},
		"conditionals":      {head + "locals { v = " + strings.Repeat("true ? 1 : ", 80_000) + "1 }\n", 2, 0},
		"index chain":       {head + "locals {\n  a = [1]\n  v = local.a" + strings.Repeat("[local.a[0] - 1]", 50_000) + "\n}\n", 4, 0},
		"heredoc template":  {head + "locals { v = <<EOT\n" + deep("${", "1", "}", 20_000) + "\nEOT\n}\n", 3, 0},
		"directives":        {head + "locals { v = \"" + deep("%{ if true }", "x", "%{ endif }", 20_000) + "\" }\n", 2, 0},
	} {
		t.Run(name, func(t *testing.T) {
			dir := write(t, map[string]string{"software.hcl": tc.src})
			_, diags := Load(filepath.Join(dir, "software.hcl"), Software)
			if !diags.HasErrors() || diags[0].Summary != "Nesting too deep" {
				t.Fatalf("not refused: %v", diags)
			}
			s := diags[0].Subject
			if s == nil || s.Filename != filepath.Join(dir, "software.hcl") || (tc.line != 0 && s.Start.Line != tc.line) || (tc.col != 0 && s.Start.Column != tc.col) {
				t.Errorf("at %v, want software.hcl:%d:%d", s, tc.line, tc.col)
			}
			if !strings.Contains(diags[0].Detail, fmt.Sprint(MaxNesting)) {
				t.Errorf("detail does not name the limit: %s", diags[0].Detail)
			}
		})
	}
}

// Nesting up to the bound loads and evaluates.
func TestNestingWithinBound(t *testing.T) {
	n := MaxNesting - 8 // locals { … } and the part's own levels
	dir := write(t, map[string]string{"software.hcl": head +
		"locals {\n  v = " + strings.Repeat("(", n) + "41" + strings.Repeat(")", n) + " + 1\n" +
		"  w = " + strings.Repeat("-", n) + "1\n" +
		"  l = " + strings.Repeat("[", n) + "1" + strings.Repeat("]", n) + "\n}\n" +
		"part \"p\" {\n  recipe = \"cookbook:x\"\n  v = local.v\n  w = local.w\n}\n"})
	p := mustLoad(t, filepath.Join(dir, "software.hcl"), Software)
	vals := evalAll(t, p, nil)
	if got := vals["p"]["v"].AsBigFloat().String(); got != "42" {
		t.Errorf("v = %s", got)
	}
}

func TestFileSizeBound(t *testing.T) {
	big := head + "locals {\n" + strings.Repeat("  a = \"0123456789012345678901234567890123456789\"\n", MaxFileSize/48+1) + "}\n"
	dir := write(t, map[string]string{"software.hcl": big, "small.hcl": head + "extends = [\"/dev/zero\"]\n"})
	_, diags := Load(filepath.Join(dir, "software.hcl"), Software)
	if !diags.HasErrors() || !strings.Contains(diags.Error(), "larger than 1 MiB, the limit for a profile file") {
		t.Errorf("a %d-byte profile: %v", len(big), diags)
	}
	// A device is read up to the bound, not forever.
	_, diags = Load(filepath.Join(dir, "small.hcl"), Software)
	if !diags.HasErrors() || !strings.Contains(diags.Error(), "/dev/zero is larger than 1 MiB") {
		t.Errorf("extends /dev/zero: %v", diags)
	}
	if d := diags[0].Subject; d == nil || d.Start.Line != 2 {
		t.Errorf("the error is not at the extends entry: %v", d)
	}
}

func TestTemplateBound(t *testing.T) {
	dir := write(t, map[string]string{
		"software.hcl": head + "part \"p\" {\n  recipe = \"cookbook:x\"\n  t = templatefile(\"deep.tmpl\", {})\n}\n",
		"deep.tmpl":    strings.Repeat("%{ if true }", 10_000) + "x" + strings.Repeat("%{ endif }", 10_000),
	})
	p := mustLoad(t, filepath.Join(dir, "software.hcl"), Software)
	g, diags := p.Graph(nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	_, diags = p.Evaluator(nil).EvalBlock(g.Order[0].Block, "recipe")
	if !diags.HasErrors() || !strings.Contains(diags.Error(), "Nesting too deep") || !strings.Contains(diags.Error(), "deep.tmpl:1,") {
		t.Errorf("deep template: %v", diags)
	}
}

// FuzzNestingIsABound checks the nesting count against hclsyntax itself:
// whatever the source, the parsed expressions nest at most about twice as
// deep as nesting says (a template directive makes two levels of the
// syntax tree), so that bounding the count bounds the parser's and the
// evaluator's recursion.
func FuzzNestingIsABound(f *testing.F) {
	for _, s := range []string{
		"a = (((1)))", "a = [[1], [[2]]]", "a = {b = {c = 1}}", "a = 1 + 2 * 3 - -4", "a = !!!true",
		"a = x ? y : z ? w : v", "a = x[0][y][z]", "a = f(g(h(1)))", "a = \"${\"${x}\"}\"",
		"a = <<EOT\n${x}\n%{ if y }${z}%{ endif }\nEOT\n", "a = [for x in y : x if x]", "a = {for k, v in m : k => v...}",
		"a = x[*].y", "a = \"%{for a in b}%{if c}d%{endif}%{endfor}\"", "b {\n c {\n d = (1\n+ 2)\n }\n}",
		"a = 1 # c\n- 2", "a = /* x */ -(1)", "a = \"$${x}%%{y}\"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		n, _ := nesting(src, "f.hcl", false, 1<<30)
		file, diags := hclsyntax.ParseConfig(src, "f.hcl", hcl.InitialPos)
		if diags.HasErrors() {
			return
		}
		w := &depthWalker{}
		hclsyntax.Walk(file.Body.(*hclsyntax.Body), w)
		if w.max > 2*n+2 {
			t.Fatalf("expressions nest %d deep, nesting counted %d", w.max, n)
		}
	})
}

// depthWalker measures how deep expressions nest in a syntax tree.
type depthWalker struct{ cur, max int }

func (w *depthWalker) Enter(n hclsyntax.Node) hcl.Diagnostics {
	if _, ok := n.(hclsyntax.Expression); ok {
		w.cur++
		w.max = max(w.max, w.cur)
	}
	return nil
}

func (w *depthWalker) Exit(n hclsyntax.Node) hcl.Diagnostics {
	if _, ok := n.(hclsyntax.Expression); ok {
		w.cur--
	}
	return nil
}
