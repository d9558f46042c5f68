package profile

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// The attributes of a block share one `part` object when they name the
// parts they read (eval.go, blockEval.shared): what each attribute sees
// is still what an object of only its own parts would give it — an
// attribute that reads `part` as a whole sees only the parts it names, an
// installed part's recipe is read from its attributes, an unknown part is
// reported as such, with the names it may have meant.
func TestSharedPartObject(t *testing.T) {
	dir := write(t, map[string]string{"software.hcl": `
part "a" {
  recipe = "cookbook:mkdirectory"
  v      = "va"
}
part "b" { v = "vb" }
part "x" { v = "vx" }
part "c" {
  other  = part.x.v
  both   = "${part.a.v}-${part.b.v}"
  one    = part.b.v
  whole  = part.a
  recipe = "cookbook:template"
  reads  = part.a.recipe
  keys   = [for k, v in part : k]
  bykey  = [for k, v in part : k if k != part.b.v]
}
part "d" {
  v  = part.a.v
  aa = "${part.b.v}${part.aa.v}"
}
`})
	p := mustLoad(t, filepath.Join(dir, "software.hcl"), Software)
	e := p.Evaluator(nil)
	a, d := e.EvalBlock(p.Part["a"], "recipe")
	if d.HasErrors() {
		t.Fatal(d.Error())
	}
	e.SetPart("a", cty.ObjectVal(a)) // as installed: without its recipe
	b, d := e.EvalBlock(p.Part["b"])
	if d.HasErrors() {
		t.Fatal(d.Error())
	}
	e.SetPart("b", cty.ObjectVal(b))
	e.SetPart("x", cty.ObjectVal(map[string]cty.Value{"v": cty.StringVal("vx")}))
	c, d := e.EvalBlock(p.Part["c"], "recipe")
	if d.HasErrors() {
		t.Fatal(d.Error())
	}
	for name, want := range map[string]cty.Value{
		"both":  cty.StringVal("va-vb"),
		"one":   cty.StringVal("vb"),
		"other": cty.StringVal("vx"),
		"whole": cty.ObjectVal(map[string]cty.Value{"v": cty.StringVal("va")}),
		"reads": cty.StringVal("cookbook:mkdirectory"),
		"keys":  cty.EmptyTupleVal,
		"bykey": cty.TupleVal([]cty.Value{cty.StringVal("b")}),
	} {
		if !c[name].RawEquals(want) {
			t.Errorf("c.%s = %#v, want %#v", name, c[name], want)
		}
	}
	dv, d := e.EvalBlock(p.Part["d"])
	if !dv["v"].RawEquals(cty.StringVal("va")) {
		t.Errorf("d.v = %#v", dv["v"])
	}
	if len(d) != 1 || d[0].Summary != "Unsupported attribute" || d[0].Detail != `This object does not have an attribute named "aa".` ||
		d[0].Subject.Start.Line != 20 || d[0].Subject.Start.Column != 26 {
		t.Errorf("unknown part: %v", describe(d))
	}
	// The diagnostic's context is the attribute's own, as it was: the
	// evaluations after it did not reuse it.
	if len(d) == 1 {
		got := d[0].EvalContext.Variables["part"]
		if want := cty.ObjectVal(map[string]cty.Value{"b": cty.ObjectVal(b)}); !got.RawEquals(want) {
			t.Errorf("the diagnostic's part variable is %#v, want %#v", got, want)
		}
	}
}

// A block evaluated on demand (another part read its options before it
// was installed) sees the part values as they are when each of its
// options is read, not as they were when it was first read.
func TestSharedPartObjectFollowsSetPart(t *testing.T) {
	dir := write(t, map[string]string{"software.hcl": `
part "src" { v = "x" }
part "lazy" {
  x = part.src.v
  y = "${part.src.v}!"
}
part "r1" { x = part.lazy.x }
part "r2" { y = part.lazy.y }
`})
	p := mustLoad(t, filepath.Join(dir, "software.hcl"), Software)
	e := p.Evaluator(nil)
	e.SetPart("src", cty.ObjectVal(map[string]cty.Value{"v": cty.StringVal("one")}))
	r1, d := e.EvalBlock(p.Part["r1"])
	if d.HasErrors() || !r1["x"].RawEquals(cty.StringVal("one")) {
		t.Fatalf("r1 %#v: %v", r1, d)
	}
	e.SetPart("src", cty.ObjectVal(map[string]cty.Value{"v": cty.StringVal("two")}))
	r2, d := e.EvalBlock(p.Part["r2"])
	if d.HasErrors() || !r2["y"].RawEquals(cty.StringVal("two!")) {
		t.Fatalf("r2 %#v: %v", r2, d)
	}
}

func describe(diags hcl.Diagnostics) string {
	var b strings.Builder
	for _, d := range diags {
		b.WriteString(d.Error() + " | " + d.Detail + "\n")
	}
	return b.String()
}

// A quoted string without interpolation is evaluated without rendering
// it (stringLiteral): the same value as TemplateExpr.Value's, escapes,
// non-ASCII and not-yet-normalised text included; anything else is left
// to Value.
func TestStringLiteral(t *testing.T) {
	for _, tc := range []struct {
		src     string
		literal bool
	}{
		{`"cookbook:mkdirectory"`, true},
		{`""`, true},
		{`"tab\there \"q\" \u00e9"`, true},
		{"\"e\u0301t\u00e9 \u65e5\u672c\"", true},
		{`"$${not.interpolated} %%{x}"`, true},
		{"<<EOT\nline\nEOT\n", true},
		{`"a${"b"}"`, false},
		{`"${x}"`, false},
		{`12`, false},
	} {
		expr, diags := hclsyntax.ParseExpression([]byte(tc.src), "t.hcl", hcl.InitialPos)
		if diags.HasErrors() {
			t.Fatalf("%s: %v", tc.src, diags)
		}
		got, ok := stringLiteral(expr)
		if ok != tc.literal {
			t.Errorf("%s: literal %v, want %v", tc.src, ok, tc.literal)
		}
		if !ok {
			continue
		}
		want, diags := expr.Value(nil)
		if diags.HasErrors() || !got.RawEquals(want) {
			t.Errorf("%s: %#v, Value gives %#v (%v)", tc.src, got, want, diags)
		}
	}
}
