package buildout

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// checkShape parses converted HCL and checks the block and attribute shapes
// of docs/profiles.md: top-level extends/parts, part "NAME" blocks (and the
// software block of a software release).
func checkShape(t *testing.T, name string, src []byte) *hclsyntax.Body {
	t.Helper()
	f, diags := hclsyntax.ParseConfig(src, name, hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatalf("%s: converted HCL does not parse: %v\n%s", name, diags, src)
	}
	body := f.Body.(*hclsyntax.Body)
	for n := range body.Attributes {
		if n != "extends" && n != "parts" {
			t.Errorf("%s: unexpected top-level attribute %q", name, n)
		}
	}
	for _, b := range body.Blocks {
		if b.Type == "module" && len(b.Labels) == 1 && b.Labels[0] == "cookbook" {
			continue // the grants of the converted recipes (recipes.go)
		}
		if b.Type == "software" && len(b.Labels) == 1 {
			continue
		}
		if b.Type != "part" || len(b.Labels) != 1 {
			t.Errorf("%s:%d: block %s %v: want part \"NAME\"", name, b.DefRange().Start.Line, b.Type, b.Labels)
			continue
		}
		if _, err := UnmangleName(b.Labels[0]); err != nil {
			t.Errorf("%s: part label: %v", name, err)
		}
		if a, ok := b.Body.Attributes["macro"]; ok {
			if _, isTuple := a.Expr.(*hclsyntax.TupleConsExpr); !isTuple {
				t.Errorf("%s: part %s: macro is not a list", name, b.Labels[0])
			}
		}
	}
	return body
}

var chomp = stdlib.ChompFunc

// literalValues evaluates every attribute that has no references and
// returns part -> attr -> string.
func literalValues(t *testing.T, body *hclsyntax.Body) map[string]map[string]string {
	ctx := &hcl.EvalContext{Functions: map[string]function.Function{"chomp": chomp}}
	out := map[string]map[string]string{}
	for _, b := range body.Blocks {
		m := map[string]string{}
		for n, a := range b.Body.Attributes {
			if len(a.Expr.Variables()) > 0 {
				continue
			}
			v, diags := a.Expr.Value(ctx)
			if diags.HasErrors() || v.Type() != cty.String {
				continue
			}
			m[n] = v.AsString()
		}
		out[b.Labels[0]] = m
	}
	return out
}

func TestConvertSmall(t *testing.T) {
	src := `[buildout]
extends = ../base.cfg
  other/buildout.cfg
parts = dirs instance.cfg

[dirs]
recipe = slapos.cookbook:mkdirectory
etc = ${buildout:directory}/etc
self = ${:etc}/x

[instance.cfg]
recipe = peerbench.recipes:template
<= dirs
output = ${dirs:etc}/app.conf
inline =
  a = $${slap-connection:computer-id}
    # indented comment is data
  %(PATH)s %{x} "q" \n
eggs += extra
unknown = ${nocolon}

[cond:python2]
x = 1
`
	r, err := ConvertFile("software.cfg", []byte(src), ConvertOptions{RecipeMap: map[string]string{"peerbench.recipes:template": "cookbook:template"}})
	if err != nil {
		t.Fatal(err)
	}
	got := string(r.HCL)
	for _, want := range []string{
		`extends = ["../base.hcl", "other/buildout.hcl"]`,
		`parts   = ["dirs", "instance__2ecfg"]`,
		`recipe = "cookbook:mkdirectory"`,
		`etc    = "${software.path}/etc"`,
		`self   = "${self.etc}/x"`,
		`part "instance__2ecfg" {`,
		`macro  = ["dirs"]`,
		`recipe = "cookbook:template"`,
		`eggs    = appendlines(base.eggs, "extra")`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	body := checkShape(t, "software.hcl", r.HCL)
	lit := literalValues(t, body)
	if v := lit["instance__2ecfg"]["inline"]; v != "a = $${slap-connection:computer-id}\n  # indented comment is data\n%(PATH)s %{x} \"q\" \\n" {
		t.Errorf("inline = %q", v)
	}
	kinds := map[string]int{}
	for _, w := range r.Warnings {
		kinds[w.Kind]++
		if w.Pos.Line == 0 {
			t.Errorf("warning without a line: %v", w)
		}
	}
	if kinds[WarnBadReference] != 1 || kinds[WarnConditional] != 1 {
		t.Errorf("warnings = %v", r.Warnings)
	}
}

func TestConvertJinjaTemplate(t *testing.T) {
	r, err := ConvertFile("instance.cfg.in", []byte("{% set x = 1 %}\n[buildout]\nparts = a\n"), ConvertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r.HCL != nil || len(r.Warnings) != 1 || r.Warnings[0].Kind != WarnJinjaTemplate || r.Warnings[0].Pos.Line != 1 {
		t.Fatalf("template not reported: %+v", r)
	}
	// jinja2 inside a block value is an inline template, not a template file.
	if l := JinjaLine("t.cfg.in", []byte("[t]\ninline =\n  {% if x %}y{% endif %}\n")); l != 0 {
		t.Errorf("JinjaLine of an inline template = %d", l)
	}
	// jinja2 in a value on the option line: a template in a *.in file, a
	// value a recipe renders in a plain .cfg; a statement line is a
	// template either way.
	for _, c := range []struct {
		path, src string
		want      int
	}{
		{"instance.cfg.in", "[t]\nport = {{ port }}\n", 2},
		{"buildout.cfg", "[t]\nport = {{ port }}\n", 0},
		{"buildout.cfg", "[t]\n{% if x %}\na = 1\n{% endif %}\n", 2},
		{"buildout.cfg", "[t-{{ kind }}]\na = 1\n", 1},
	} {
		if got := JinjaLine(c.path, []byte(c.src)); got != c.want {
			t.Errorf("JinjaLine(%s, %q) = %d, want %d", c.path, c.src, got, c.want)
		}
	}
}

// Every buildout file of the corpus converts to HCL of the right shape, and
// every literal option keeps its exact buildout value; jinja2 templates are
// reported as such.
func TestConvertCorpus(t *testing.T) {
	corpus := corpusDir(t)
	var sum Summary
	for _, r := range readManifest(t, corpus) {
		src, err := os.ReadFile(filepath.Join(corpus, r.Path))
		if err != nil {
			t.Fatal(err)
		}
		res, err := ConvertFile(r.Path, src, ConvertOptions{})
		sum.Add(res, err)
		switch {
		case r.Class == "jinja-template":
			if err == nil && res.HCL != nil && !hasKind(res.Warnings, WarnBuildoutTemplate) {
				t.Errorf("%s: a jinja2 template was converted without a %s warning", r.Path, WarnJinjaTemplate)
			}
			continue
		case !isBuildoutClass(r.Class):
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", r.Path, err)
			continue
		}
		if res.HCL == nil {
			t.Errorf("%s: not converted: %v", r.Path, res.Warnings)
			continue
		}
		body := checkShape(t, r.Path, res.HCL)
		f, _ := Parse(r.Path, src)
		secs, _, _ := f.Sections(DefaultCondEnv())
		lit := literalValues(t, body)
		for name, opts := range secs {
			for _, o := range opts {
				if o.Op != OpSet || strings.Contains(o.Value, "${") || strings.HasPrefix(o.Key, "<") || o.Key == "recipe" || name == "buildout" {
					continue
				}
				got, ok := lit[MangleName(name)][MangleName(o.Key)]
				if ok && got != o.Value {
					t.Errorf("%s [%s] %s: HCL value %q, buildout value %q", r.Path, name, o.Key, got, o.Value)
				}
			}
		}
	}
	t.Logf("per file: %s", sum.String())
	var unmapped []string
	for _, r := range sum.UnmappedByFrequency() {
		unmapped = append(unmapped, fmt.Sprintf("%s %d", r, sum.Unmapped[r]))
	}
	t.Logf("unmapped recipes (sections): %s", strings.Join(unmapped, ", "))
}

// --flatten over every complete closure gives one HCL file of the right shape.
func TestConvertCorpusFlatten(t *testing.T) {
	corpus := corpusDir(t)
	var sum Summary
	for _, r := range readManifest(t, corpus) {
		if !isBuildoutClass(r.Class) || r.Closure != "complete" {
			continue
		}
		res, err := ConvertClosure(filepath.Join(corpus, r.Path), LoadOptions{}, ConvertOptions{})
		sum.Add(res, err)
		if errors.Is(err, ErrNotCached) {
			continue // an extends URL: never downloaded
		}
		if err != nil {
			t.Errorf("%s: %v", r.Path, err)
			continue
		}
		checkShape(t, r.Path, res.HCL)
	}
	t.Logf("flattened: %s", sum.String())
}

func hasKind(ws []Warning, kind string) bool {
	for _, w := range ws {
		if w.Kind == kind {
			return true
		}
	}
	return false
}

// FuzzConvert: the converter never panics and never returns HCL that does
// not parse (finish checks it; a failure here is a converter bug).
func FuzzConvert(f *testing.F) {
	f.Add([]byte("[buildout]\nparts = a\nextends = b.cfg\n[a]\nrecipe = x\nv = ${b:c}$${d:e}%{f}$$${g:h}\n  \"q\" \\\\\n"))
	f.Add([]byte("[a:python3 or sys.version_info < (3, 8)]\n<= m\nx += 1\n  2\ny -= 3\n"))
	f.Add([]byte("[t]\nrecipe = slapos.recipe.template:jinja2\nurl = ${:_profile_base_location_}/a b.in\ncontext =\n  key k s:o\n  raw r x y\n  json j {\"a\": 1}\n  ${:more}\nmore = section s s\n[p]\nrecipe = slapos.recipe.template\ninline = $$$${x}\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		r, err := ConvertFile("fuzz.cfg", src, ConvertOptions{})
		if err != nil {
			if strings.Contains(err.Error(), "converter bug") {
				t.Fatal(err)
			}
			return
		}
		if r.HCL != nil {
			if _, diags := hclsyntax.ParseConfig(r.HCL, "fuzz.hcl", hcl.InitialPos); diags.HasErrors() {
				t.Fatalf("%v\n%s", diags, r.HCL)
			}
		}
	})
}

// Every literal buildout value, one line or several, evaluates in HCL to
// exactly itself: ${ and %{ are escaped, and a $ before an interpolation
// does not turn it into an escape.
func TestEscapeRoundTrip(t *testing.T) {
	ctx := &hcl.EvalContext{
		Functions: map[string]function.Function{"chomp": chomp},
		Variables: map[string]cty.Value{"part": cty.ObjectVal(map[string]cty.Value{
			"a": cty.ObjectVal(map[string]cty.Value{"b": cty.StringVal("B")}),
		})},
	}
	c := newConverter("t.cfg", ConvertOptions{})
	for _, c2 := range []struct{ in, want string }{
		{"$${a:b}", "$${a:b}"},
		{"$$${a:b}", "$$B"},
		{"$$$${a:b}", "$$$${a:b}"},
		{"x$${a:b}y", "x$${a:b}y"},
		{"%{x} %%{y} %%%{z} %(PATH)s %%", "%{x} %%{y} %%%{z} %(PATH)s %%"},
		{"${ unclosed", "${ unclosed"},
		{`back\slash "quoted" ` + "\ttab", `back\slash "quoted" ` + "\ttab"},
		{"$ ${a:b} $", "$ B $"},
		{"EOT\n  EOT\n${a:b}", "EOT\n  EOT\nB"},
		{"line1\n\n  $${x}\n%{if}", "line1\n\n  $${x}\n%{if}"},
		{"a$\n$${a:b}", "a$\n$${a:b}"},
	} {
		e := c.expr("s", c2.in, Pos{})
		x, diags := hclsyntax.ParseExpression([]byte(e), "e.hcl", hcl.InitialPos)
		if diags.HasErrors() {
			t.Errorf("%q -> %s: %v", c2.in, e, diags)
			continue
		}
		v, diags := x.Value(ctx)
		if diags.HasErrors() || v.AsString() != c2.want {
			t.Errorf("%q -> %s = %#v (%v), want %q", c2.in, e, v, diags, c2.want)
		}
	}
}

// A computed [buildout] parts splits on any whitespace, as buildout does.
func TestComputedParts(t *testing.T) {
	r, err := ConvertFile("software.cfg", []byte("[buildout]\nparts = ${x:list} extra\n[x]\nlist = a b\n  c\n"), ConvertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f, diags := hclsyntax.ParseConfig(r.HCL, "p.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	ctx := &hcl.EvalContext{
		Functions: map[string]function.Function{"regexall": stdlib.RegexAllFunc},
		Variables: map[string]cty.Value{"part": cty.ObjectVal(map[string]cty.Value{
			"x": cty.ObjectVal(map[string]cty.Value{"list": cty.StringVal("a b\nc")}),
		})},
	}
	v, diags := f.Body.(*hclsyntax.Body).Attributes["parts"].Expr.Value(ctx)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	want := cty.ListVal([]cty.Value{cty.StringVal("a"), cty.StringVal("b"), cty.StringVal("c"), cty.StringVal("extra")})
	if !v.RawEquals(want) {
		t.Errorf("parts = %#v", v)
	}
}

// A computed parts list reading [buildout]'s own options (software/clammit:
// parts = ${:clamd-parts} …) reads them from part "buildout": parts is a
// top-level attribute, where self has no meaning.
func TestConvertComputedPartsOfBuildout(t *testing.T) {
	src := "[buildout]\nparts =\n  ${:clamd-parts}\n  ${buildout:web-parts}\n  monitor\nclamd-parts = clamd\nweb-parts = web\n"
	r, err := ConvertFile("software.cfg", []byte(src), ConvertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := "parts = regexall(\"\\\\S+\", chomp(<<EOT\n${part.buildout.clamd-parts}\n${part.buildout.web-parts}\nmonitor\nEOT\n))"
	if !strings.Contains(string(r.HCL), want) {
		t.Errorf("output lacks %s:\n%s", want, r.HCL)
	}
}
