package profile

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"
)

func order(t *testing.T, p *Profile) []string {
	t.Helper()
	g, diags := p.Graph(nil)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	var names []string
	for _, n := range g.Order {
		names = append(names, n.Name)
	}
	return names
}

// buildout's += and -= with or without an earlier value: an append to an
// option no earlier file sets is an assignment when the block is new (the
// case of component/pkgconfig's `patches +=`), adds an empty first line
// when the block exists without the option, and applies to the value a
// macro copied.
func TestAppendWithoutBase(t *testing.T) {
	dir := write(t, map[string]string{
		"base.hcl": `
part "old" { recipe = "cookbook:cmmi" }
part "tmpl" { flags = "-a" }
`,
		"software.hcl": `
extends = ["base.hcl"]
part "new" {
  patches = appendlines(base.patches, "p1", "p2")
  gone    = removelines(base.gone, "x")
}
part "old" {
  patches = appendlines(base.patches, "p1")
}
part "user" {
  macro = ["tmpl"]
  flags = appendlines(base.flags, "-b")
  other = appendlines(base.other, "-c")
}
`,
	})
	p := mustLoad(t, filepath.Join(dir, "software.hcl"), Software)
	vals := evalAll(t, p, nil)
	for _, c := range []struct{ part, attr, want string }{
		{"new", "patches", "p1\np2"},
		{"new", "gone", ""},
		{"old", "patches", "\np1"},
		{"user", "flags", "-a\n-b"},
		{"user", "other", "\n-c"},
	} {
		if got := vals[c.part][c.attr].AsString(); got != c.want {
			t.Errorf("%s.%s = %q, want %q", c.part, c.attr, got, c.want)
		}
	}
}

// parts += (concat(base.parts, …)), with and without parts in the files
// extended, and a parts list computed from a part's option.
func TestPartsAppendAndComputed(t *testing.T) {
	dir := write(t, map[string]string{
		"stack.hcl": `
parts = ["a"]
part "a" { recipe = "cookbook:mkdirectory" }
part "b" { recipe = "cookbook:mkdirectory" }
part "c" { recipe = "cookbook:mkdirectory" }
part "lists" { more = "b\n  c" }
`,
		"append.hcl": `
extends = ["stack.hcl"]
parts = concat(base.parts, ["b"])
`,
		"remove.hcl": `
extends = ["append.hcl"]
parts = [for p in base.parts : p if !contains(["a"], p)]
`,
		"fresh.hcl": `
parts = concat(base.parts, ["x"])
part "x" { recipe = "cookbook:mkdirectory" }
part "y" { recipe = "cookbook:mkdirectory" }
`,
		"computed.hcl": `
extends = ["stack.hcl"]
parts = regexall("\\S+", "${part.lists.more} a")
`,
	})
	for file, want := range map[string]string{
		"append.hcl": "a,b", "remove.hcl": "b", "fresh.hcl": "x", "computed.hcl": "a,b,c",
	} {
		p := mustLoad(t, filepath.Join(dir, file), Software)
		var got []string
		for _, n := range order(t, p) {
			if n != "lists" {
				got = append(got, n)
			}
		}
		if strings.Join(got, ",") != want {
			t.Errorf("%s: parts %v, want %s", file, got, want)
		}
	}
	bad := write(t, map[string]string{"software.hcl": `
parts = [software.path]
part "a" { recipe = "cookbook:mkdirectory" }
`})
	p := mustLoad(t, filepath.Join(bad, "software.hcl"), Software)
	if _, diags := p.Graph(nil); !diags.HasErrors() || !strings.Contains(diags.Error(), "Invalid parts") {
		t.Errorf("parts from a node value: %v", diags)
	}
}

// Parts may read each other's options, as in buildout (component/golang:
// [gowork] reads ${gowork.goinstall:recipe}, which reads
// ${gowork:env.sh}); the part read first is evaluated option by option.
// The order is buildout's: depth first from the parts list.
func TestPartsReadingEachOther(t *testing.T) {
	dir := write(t, map[string]string{"software.hcl": `
parts = ["gowork"]
part "gowork" {
  directory = "/srv/go"
  env       = "${self.directory}/env.sh"
  depends   = part.goinstall.recipe
}
part "goinstall" {
  recipe  = "cookbook:build"
  command = ". ${part.gowork.env} && go install"
}
`})
	p := mustLoad(t, filepath.Join(dir, "software.hcl"), Software)
	if got := strings.Join(order(t, p), ","); got != "goinstall,gowork" {
		t.Fatalf("order %s", got)
	}
	vals := evalAll(t, p, nil)
	if got := vals["goinstall"]["command"].AsString(); got != ". /srv/go/env.sh && go install" {
		t.Errorf("command %q", got)
	}
	if got := vals["gowork"]["depends"].AsString(); got != "cookbook:build" {
		t.Errorf("depends %q", got)
	}
}

// A part whose value (an output) another needs is installed first, even
// when the first reads options of the second.
func TestOutputsOrderPartsReadingEachOther(t *testing.T) {
	dir := write(t, map[string]string{"software.hcl": `
part "app" {
  recipe = "cookbook:build"
  prefix = part.lib.location
  name   = "app"
}
part "lib" {
  recipe = "cookbook:cmmi"
  for    = part.app.name
}
`})
	p := mustLoad(t, filepath.Join(dir, "software.hcl"), Software)
	if got := strings.Join(order(t, p), ","); got != "lib,app" {
		t.Fatalf("order %s", got)
	}
	e := p.Evaluator(nil)
	lib, d := e.EvalBlock(p.Part["lib"], "recipe")
	if d.HasErrors() {
		t.Fatal(d.Error())
	}
	lib["location"] = cty.StringVal("/parts/lib")
	e.SetPart("lib", cty.ObjectVal(lib))
	app, d := e.EvalBlock(p.Part["app"], "recipe")
	if d.HasErrors() || app["prefix"].AsString() != "/parts/lib" || lib["for"].AsString() != "app" {
		t.Fatalf("values %v %v: %v", app, lib, d)
	}
	// Read before it is installed, an output is reported, not guessed.
	e = p.Evaluator(nil)
	if _, d := e.EvalBlock(p.Part["app"], "recipe"); !d.HasErrors() || !strings.Contains(d.Error(), "Value not known yet") {
		t.Errorf("output read early: %v", d)
	}
}

// An option that depends on itself through other parts is a cycle, named
// with its options; the same parts reading other options are not.
func TestOptionCycle(t *testing.T) {
	dir := write(t, map[string]string{"software.hcl": `
part "a" {
  x = part.b.y
  ok = part.b.z
}
part "b" {
  y = "${part.a.x}!"
  z = part.a.w
}
part "a" { w = 1 }
`})
	p := mustLoad(t, filepath.Join(dir, "software.hcl"), Software)
	_, diags := p.Graph(nil)
	if len(diags) != 1 || !strings.Contains(diags[0].Detail, "part.a, part.b (through part.a.x, part.b.y)") {
		t.Fatalf("want one cycle through a.x and b.y, got %v", diags)
	}
	e := p.Evaluator(nil)
	if _, d := e.EvalBlock(p.Part["a"]); !d.HasErrors() || !strings.Contains(d.Error(), "Reference cycle") {
		t.Errorf("evaluation: %v", d)
	}
}

// An empty recipe (buildout's `recipe =`) cancels an inherited recipe: the
// part becomes a data part; block.name and block.dir are buildout's
// ${:_buildout_section_name_} and ${:_profile_base_location_}, for the
// part that uses a macro: its own name, and, as SlapOS's buildout fork
// copies _profile_base_location_ with the macro's options when the section
// does not use it itself, the macro's directory; a definition reading
// block.dir makes it its own file's, a later one that does not read it
// leaves it.
func TestEmptyRecipeAndBlockValues(t *testing.T) {
	dir := write(t, map[string]string{
		"component/python/buildout.hcl": `
part "python" { recipe = "cookbook:cmmi" }
part "download-base" {
  recipe = "cookbook:download"
  url    = "${block.dir}/${block.name}"
}
`,
		"software/x/software.hcl": `
extends = ["../../component/python/buildout.hcl"]
part "python" { recipe = "" }
part "instance__2ecfg" { macro = ["download-base"] }
part "own" {
  macro = ["download-base"]
  url   = "${block.dir}/own"
}
part "none" { recipe = null }
part "download-base" { md5sum = "0123456789abcdef0123456789abcdef" }
`,
	})
	p := mustLoad(t, filepath.Join(dir, "software/x/software.hcl"), Software)
	if p.Part["python"].Attrs["recipe"] != nil || p.Part["none"].Attrs["recipe"] != nil {
		t.Error("empty recipe kept")
	}
	vals := evalAll(t, p, nil)
	if got, want := vals["instance__2ecfg"]["url"].AsString(), filepath.Join(dir, "component/python")+"/instance.cfg"; got != want {
		t.Errorf("url %q, want %q", got, want)
	}
	if got, want := vals["own"]["url"].AsString(), filepath.Join(dir, "software/x")+"/own"; got != want {
		t.Errorf("url %q, want %q", got, want)
	}
	if got, want := vals["download-base"]["url"].AsString(), filepath.Join(dir, "component/python")+"/download-base"; got != want {
		t.Errorf("url %q, want %q", got, want)
	}
}

// As buildout, a part nobody uses may copy a macro or read a part that does
// not exist (slap-connection, injected at run time in SlapOS; sections of
// files a release does not extend); the error is reported once it is used.
func TestErrorsOfUnusedParts(t *testing.T) {
	files := map[string]string{"software.hcl": `
parts = ["ok"]
part "ok" { recipe = "cookbook:mkdirectory" }
part "bad-macro" { macro = ["slap-connection"] }
part "bad-ref" { x = part.nowhere.location }
`}
	p := mustLoad(t, filepath.Join(write(t, files), "software.hcl"), Software)
	if _, diags := p.Graph(nil); diags.HasErrors() {
		t.Fatalf("unused parts reported: %v", diags)
	}
	files["software.hcl"] = strings.Replace(files["software.hcl"], `parts = ["ok"]`, `parts = ["ok", "bad-macro", "bad-ref"]`, 1)
	p = mustLoad(t, filepath.Join(write(t, files), "software.hcl"), Software)
	_, diags := p.Graph(nil)
	var msg string
	for _, d := range diags {
		msg += d.Summary + "; "
	}
	if len(diags) != 2 || !strings.Contains(msg, "Unknown macro") || !strings.Contains(msg, "undeclared part") {
		t.Fatalf("used parts: %v", diags)
	}
}
