package profile

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// write creates files under a temporary directory and returns it.
func write(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func mustLoad(t *testing.T, path string, kind Kind) *Profile {
	t.Helper()
	p, diags := Load(path, kind)
	if diags.HasErrors() {
		t.Fatalf("load %s: %s", path, diags.Error())
	}
	return p
}

// evalAll evaluates every part in graph order, setting each part's value to
// its options (as a data part would be).
func evalAll(t *testing.T, p *Profile, vars map[string]cty.Value) map[string]map[string]cty.Value {
	t.Helper()
	g, diags := p.Graph(nil)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	e := p.Evaluator(vars)
	out := map[string]map[string]cty.Value{}
	for _, n := range g.Order {
		if n.Kind == "local" {
			v, d := e.EvalAttr(n.Attr)
			if d.HasErrors() {
				t.Fatal(d.Error())
			}
			e.SetLocal(n.Name, v)
			continue
		}
		vals, d := e.EvalBlock(n.Block, "recipe", "depends_on")
		if d.HasErrors() {
			t.Fatal(d.Error())
		}
		out[n.Name] = vals
		e.SetPart(n.Name, cty.ObjectVal(vals))
	}
	return out
}

func TestExtendsOverrideAppendRemove(t *testing.T) {
	dir := write(t, map[string]string{
		"stack/base.hcl": `
part "dirs" {
  recipe = "cookbook:mkdirectory"
  etc    = "/srv/etc"
  eggs   = "a\nb"
}
part "gone" { recipe = "cookbook:mkdirectory" }
`,
		"sw/software.hcl": `
extends = ["../stack/base.hcl"]
remove  = ["part.gone"]
part "dirs" {
  etc  = "/srv/etc2"
  eggs = removelines(appendlines(base.eggs, "c"), "a")
}
part "user" {
  path = "${part.dirs.etc}/x"
}
`,
	})
	p := mustLoad(t, filepath.Join(dir, "sw/software.hcl"), Software)
	if len(p.Files) != 2 || !strings.HasSuffix(p.Files[0], "base.hcl") {
		t.Fatalf("merge order: %v", p.Files)
	}
	if p.Part["gone"] != nil {
		t.Fatal("removed part still present")
	}
	vals := evalAll(t, p, nil)
	if got := vals["dirs"]["etc"].AsString(); got != "/srv/etc2" {
		t.Errorf("override: %q", got)
	}
	if got := vals["dirs"]["eggs"].AsString(); got != "b\nc" {
		t.Errorf("+=/-=: %q", got)
	}
	if got := p.Part["dirs"].Attrs["recipe"]; got == nil {
		t.Error("inherited recipe lost")
	}
	if got := vals["user"]["path"].AsString(); got != "/srv/etc2/x" {
		t.Errorf("reference: %q", got)
	}
}

func TestGraphOrderAndSelection(t *testing.T) {
	dir := write(t, map[string]string{"software.hcl": `
parts = ["c"]
part "c" { x = part.b.y }
part "b" { y = "${part.a.z}!" }
part "a" { z = "hi" }
part "unused" { q = 1 }
`})
	p := mustLoad(t, filepath.Join(dir, "software.hcl"), Software)
	g, diags := p.Graph(nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	var names []string
	for _, n := range g.Order {
		names = append(names, n.Name)
	}
	if strings.Join(names, ",") != "a,b,c" {
		t.Fatalf("order: %v", names)
	}
}

func TestCycleNamesEveryPart(t *testing.T) {
	dir := write(t, map[string]string{"software.hcl": `part "a" {
  x = part.c.x
}
part "b" {
  x = part.a.x
}
part "c" {
  x = part.b.x
}
part "d" {
  x = part.d.x
}
`})
	p := mustLoad(t, filepath.Join(dir, "software.hcl"), Software)
	_, diags := p.Graph(nil)
	if !diags.HasErrors() {
		t.Fatal("cycle not reported")
	}
	var sb strings.Builder
	WriteDiagnostics(&sb, diags, p.Sources())
	msg := sb.String()
	for _, want := range []string{"part.a, part.b, part.c", "part.d", "software.hcl:2:7: error: Reference cycle", "x = part.c.x"} {
		if !strings.Contains(msg, want) {
			t.Errorf("diagnostic %q lacks %q", msg, want)
		}
	}
}

func TestUnknownReferenceHasPosition(t *testing.T) {
	dir := write(t, map[string]string{"software.hcl": `part "dirs" { etc = "/x" }
part "b" {
  y = part.dirz.etc
}
`})
	p := mustLoad(t, filepath.Join(dir, "software.hcl"), Software)
	_, diags := p.Graph(nil)
	if len(diags) != 1 {
		t.Fatalf("want one diagnostic, got %v", diags)
	}
	d := diags[0]
	if d.Subject == nil || d.Subject.Start.Line != 3 || d.Subject.Start.Column != 7 {
		t.Errorf("position: %+v", d.Subject)
	}
	if !strings.Contains(d.Detail, `Did you mean "dirs"`) {
		t.Errorf("no suggestion: %s", d.Detail)
	}
}

func TestAllErrorsOfAFileAtOnce(t *testing.T) {
	dir := write(t, map[string]string{"software.hcl": `
module "m" {
  sources = "x"
}
service "s" {}
bogus = 1
instance "default" {
  profil = "i.hcl"
}
`})
	_, diags := Load(filepath.Join(dir, "software.hcl"), Software)
	if len(diags) < 4 {
		t.Fatalf("want every error (4), got %d: %v", len(diags), diags)
	}
	for _, d := range diags {
		if d.Subject == nil {
			t.Errorf("diagnostic without position: %v", d)
		}
	}
}

func TestExtendsCycle(t *testing.T) {
	dir := write(t, map[string]string{
		"a.hcl": `extends = ["b.hcl"]`,
		"b.hcl": `extends = ["a.hcl"]`,
	})
	_, diags := Load(filepath.Join(dir, "a.hcl"), Software)
	if !diags.HasErrors() || !strings.Contains(diags.Error(), "Extends cycle") {
		t.Fatalf("cycle not reported: %v", diags)
	}
}

func TestMacro(t *testing.T) {
	dir := write(t, map[string]string{"software.hcl": `
part "tmpl" {
  recipe = "cookbook:template"
  mode   = "0644"
  output = "/a"
}
part "x" {
  macro  = ["tmpl"]
  output = "/b"
}
`})
	p := mustLoad(t, filepath.Join(dir, "software.hcl"), Software)
	x := p.Part["x"]
	if x.Attrs["recipe"] == nil || x.Attrs["mode"] == nil || x.Attrs["macro"] != nil {
		t.Fatalf("macro not expanded: %v", x.AttrNames())
	}
	vals := evalAll(t, p, nil)
	if vals["x"]["output"].AsString() != "/b" || vals["x"]["mode"].AsString() != "0644" {
		t.Fatalf("macro values: %v", vals["x"])
	}
}

func TestFileFunctionsConfined(t *testing.T) {
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret"), []byte("s3cret"), 0o600)
	dir := write(t, map[string]string{
		"tpl/page.tmpl": "Hello ${name} on port ${port}",
		"data.txt":      "data",
		"software.hcl": `
part "ok" {
  a = file("data.txt")
  b = templatefile("tpl/page.tmpl", { name = "web", port = 80 })
  c = fileexists("nope")
}
`,
	})
	os.Symlink(filepath.Join(outside, "secret"), filepath.Join(dir, "link"))
	p := mustLoad(t, filepath.Join(dir, "software.hcl"), Software)
	vals := evalAll(t, p, nil)
	if vals["ok"]["a"].AsString() != "data" || vals["ok"]["b"].AsString() != "Hello web on port 80" || vals["ok"]["c"].True() {
		t.Fatalf("values: %v", vals["ok"])
	}
	e := p.Evaluator(nil)
	for _, expr := range []string{`file("link")`, `file("../` + filepath.Base(outside) + `/secret")`, `file("/etc/passwd")`} {
		f := filepath.Join(dir, "bad.hcl")
		os.WriteFile(f, []byte("part \"x\" {\n  v = "+expr+"\n}\n"), 0o644)
		bp := mustLoad(t, f, Software)
		_, d := bp.Evaluator(nil).EvalAttr(bp.Part["x"].Attrs["v"])
		if !d.HasErrors() {
			t.Errorf("%s: escaped the profile tree", expr)
		}
	}
	_ = e
}

// TestFileFunctionFIFO: file() of a FIFO in the profile's tree fails
// instead of hanging the evaluation.
func TestFileFunctionFIFO(t *testing.T) {
	dir := write(t, map[string]string{"software.hcl": "part \"x\" {\n  v = file(\"fifo\")\n}\n"})
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := mustLoad(t, filepath.Join(dir, "software.hcl"), Software)
	done := make(chan hcl.Diagnostics, 1)
	go func() {
		_, d := p.Evaluator(nil).EvalAttr(p.Part["x"].Attrs["v"])
		done <- d
	}()
	select {
	case d := <-done:
		if !d.HasErrors() || !strings.Contains(d.Error(), "not a regular file") {
			t.Errorf("file() of a FIFO: %v", d)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("file() of a FIFO hung")
	}
}

func TestInstanceContextVariables(t *testing.T) {
	dir := write(t, map[string]string{"instance.hcl": `
locals { url = "http://${partition.ipv4}:${parameter.port}/" }
part "d" { url = local.url }
service "web" { command = ["x", part.d.url] }
publish { url = local.url }
`})
	p := mustLoad(t, filepath.Join(dir, "instance.hcl"), Instance)
	vals := evalAll(t, p, map[string]cty.Value{
		"partition": cty.ObjectVal(map[string]cty.Value{"ipv4": cty.StringVal("127.0.1.1")}),
		"parameter": cty.ObjectVal(map[string]cty.Value{"port": cty.NumberIntVal(8080)}),
	})
	if got := vals["d"]["url"].AsString(); got != "http://127.0.1.1:8080/" {
		t.Fatal(got)
	}
	if len(p.BlocksOf("service")) != 1 || len(p.BlocksOf("publish")) != 1 {
		t.Fatal("blocks missing")
	}
	// A software profile does not accept instance blocks.
	_, diags := Load(filepath.Join(dir, "instance.hcl"), Software)
	if !diags.HasErrors() {
		t.Fatal("service accepted in a software profile")
	}
}

func TestDiagnosticsRender(t *testing.T) {
	dir := write(t, map[string]string{"software.hcl": "part \"a\" {\n  x = \n}\n"})
	p, diags := Load(filepath.Join(dir, "software.hcl"), Software)
	var sb strings.Builder
	WriteDiagnostics(&sb, diags, p.Sources())
	if !strings.Contains(sb.String(), "software.hcl:2:7: error") || !strings.Contains(sb.String(), "x =") {
		t.Fatalf("rendering lacks position or snippet:\n%s", sb.String())
	}
}

func FuzzLoad(f *testing.F) {
	f.Add([]byte(`part "a" { x = part.b.y }` + "\npart \"b\" { y = 1 }"))
	f.Add([]byte(`extends = ["x.hcl"]` + "\nmodule \"m\" { source = \"builtin:cookbook\" }"))
	f.Add([]byte("locals { a = local.a }\npart \"p\" { macro = [\"p\"] }"))
	f.Add([]byte("parts = [\"x\"]\nremove = [\"part.y\"]\n"))
	f.Add([]byte("parts = concat(base.parts, regexall(\"\\\\S+\", part.l.v))\npart \"l\" { v = \"a b\" }\npart \"a\" { x = appendlines(base.x, block.name, block.dir) }"))
	f.Add([]byte("part \"a\" {\n  x = part.b.y\n  z = \"1\"\n  recipe = \"\"\n}\npart \"b\" {\n  y = part.a.z\n  w = part.a.x\n  macro = [\"a\"]\n}"))
	f.Fuzz(func(t *testing.T, src []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, "software.hcl")
		if err := os.WriteFile(path, src, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, kind := range []Kind{Software, Instance} {
			p, diags := Load(path, kind)
			if p == nil || diags.HasErrors() {
				continue
			}
			g, diags := p.Graph(p.BlocksOf("service"))
			if diags.HasErrors() {
				continue
			}
			e := p.Evaluator(nil)
			for _, n := range g.Order {
				if n.Block != nil {
					e.EvalBlock(n.Block)
				}
			}
		}
	})
}

func TestSelfReadsTheUsingPart(t *testing.T) {
	dir := write(t, map[string]string{"software.hcl": `
part "base-dir" {
  root = "/srv"
  path = "${self.root}/${self.name}"
  name = "base"
}
part "web" {
  macro = ["base-dir"]
  name  = "web"
}
part "user" {
  p = part.web.path
}
part "loop" {
  a = self.b
  b = self.a
}
`})
	p := mustLoad(t, filepath.Join(dir, "software.hcl"), Software)
	e := p.Evaluator(nil)
	web, d := e.EvalBlock(p.Part["web"])
	if d.HasErrors() {
		t.Fatal(d.Error())
	}
	if got := web["path"].AsString(); got != "/srv/web" {
		t.Fatalf("self in a macro-copied attribute: %q", got)
	}
	_, d = e.EvalBlock(p.Part["loop"])
	if !d.HasErrors() || !strings.Contains(d.Error(), "Reference cycle") {
		t.Fatalf("self cycle: %v", d)
	}
	_, d = e.EvalAttr(p.Part["web"].Attrs["path"])
	if !d.HasErrors() {
		t.Fatal("self outside a block accepted")
	}
}

// try and can, as in Terraform: an optional value without an error.
func TestTryAndCan(t *testing.T) {
	dir := write(t, map[string]string{"software.hcl": `
locals {
  settings = { name = "bob" }
}
part "p" {
  given    = try(local.settings.name, "world")
  missing  = try(local.settings.port, 8080)
  has_port = can(local.settings.port)
}
`})
	p := mustLoad(t, filepath.Join(dir, "software.hcl"), Software)
	vals := evalAll(t, p, nil)["p"]
	if got := vals["given"].AsString(); got != "bob" {
		t.Errorf("try of a present value: %q", got)
	}
	if got := vals["missing"]; !got.RawEquals(cty.NumberIntVal(8080)) {
		t.Errorf("try of a missing value: %#v", got)
	}
	if vals["has_port"].True() {
		t.Error("can of a missing value is true")
	}
}

// TestStringElemsAsConvert: the parts list's fast path reads what
// go-cty's conversion to a list of strings gives, and leaves every other
// value to it.
func TestStringElemsAsConvert(t *testing.T) {
	s := cty.StringVal
	for _, v := range []cty.Value{
		cty.EmptyTupleVal, cty.TupleVal([]cty.Value{s("a"), s("b")}), cty.ListVal([]cty.Value{s("a")}),
		cty.ListValEmpty(cty.String), cty.TupleVal([]cty.Value{s("a"), cty.NumberIntVal(1)}),
		cty.TupleVal([]cty.Value{cty.True}), cty.TupleVal([]cty.Value{s("a"), cty.NullVal(cty.String)}),
		cty.ListVal([]cty.Value{cty.NumberIntVal(2)}), cty.SetVal([]cty.Value{s("b"), s("a")}),
		cty.TupleVal([]cty.Value{s("a").Mark("x")}), s("a"),
	} {
		got, ok := stringElems(v)
		if !ok {
			continue
		}
		l, err := convert.Convert(v, cty.List(cty.String))
		if err != nil {
			t.Errorf("%#v: fast path %q, conversion fails: %v", v, got, err)
			continue
		}
		want := []string{}
		for _, e := range l.AsValueSlice() {
			want = append(want, e.AsString())
		}
		if strings.Join(got, "\x00") != strings.Join(want, "\x00") || got == nil {
			t.Errorf("%#v: fast path %q, conversion %q", v, got, want)
		}
	}
	if _, ok := stringElems(cty.TupleVal([]cty.Value{cty.StringVal("a"), cty.StringVal("b")})); !ok {
		t.Error("a tuple of strings is not read directly")
	}
}
