package buildout

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/slapnode/slapnode/hcl/profile"
)

const instanceCfg = `[buildout]
parts =
  switch-softwaretype
  publish
offline = true

[slap-configuration]
recipe = slapos.cookbook:slapconfiguration.serialised
computer = ${slap-connection:computer-id}
partition = ${slap-connection:partition-id}
configuration.name = World

[switch-softwaretype]
recipe = slapos.cookbook:switch-softwaretype
default = instance-default:output
RootSoftwareInstance = instance-default:output

[instance-default]
output = ${buildout:directory}/default.cfg

[front]
recipe = slapos.cookbook:request.serialised
name = Front
software-url = ${slap-connection:software-release-url}
software-type = frontend
config-greeting = Hello ${slap-configuration:configuration.name}
return = url
shared = true

[optional]
recipe = slapos.cookbook:requestoptional
software-url = /srv/other.cfg
return = missing

[publish]
recipe = slapos.cookbook:publish.serialised
url = ${front:connection-url}
name = ${slap-configuration:configuration.name}
maybe = ${optional:connection-missing}
-extends = more

[more]
port = ${slap-configuration:configuration.port}
`

func loadInstance(t *testing.T, text string) *Config {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "instance.cfg")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path, LoadOptions{Directory: "/srv/part"})
	if err != nil {
		t.Fatal(err)
	}
	conn := SlapConnection{ComputerID: "COMP-1", PartitionID: "slappart3", SoftwareReleaseURL: "/srv/sr/software.cfg", RequestedState: "started"}
	if err := cfg.AppendText(path, conn.Tail()); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// The tail is appended as slapgrid appends it: its sections and options
// resolve like any other.
func TestSlapgridTail(t *testing.T) {
	cfg := loadInstance(t, instanceCfg)
	got, err := cfg.ResolveSection("slap-connection")
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"computer-id": "COMP-1", "partition-id": "slappart3",
		"software-release-url": "/srv/sr/software.cfg", "requested-state": "started", "key-file": ""} {
		if got[k] != want {
			t.Errorf("slap-connection %s = %q, want %q", k, got[k], want)
		}
	}
	b, err := cfg.ResolveSection("buildout")
	if err != nil || b["bin-directory"] != "/srv/part/sbin" || b["offline"] != "true" {
		t.Errorf("[buildout] after the tail: %v %v", b, err)
	}
	old, err := cfg.ResolveSection("slap_connection")
	if err != nil || old["computer_id"] != "COMP-1" {
		t.Errorf("[slap_connection]: %v %v", old, err)
	}
}

// evalInstance loads a converted instance profile and evaluates it as the
// engine does (parts in graph order, requests answered by reply), returning
// every part's value.
func evalInstance(t *testing.T, res *InstanceResult, reply map[string]cty.Value, bind func(*profile.Profile)) (*profile.Profile, map[string]cty.Value) {
	t.Helper()
	p, diags := profile.LoadSource(filepath.Join(t.TempDir(), "instance.cfg"), res.HCL, profile.Instance)
	if err := p.Err(diags); err != nil {
		t.Fatalf("%v\n%s", err, res.HCL)
	}
	if bind != nil {
		bind(p)
	}
	g, diags := p.Graph(nil)
	if err := p.Err(diags); err != nil {
		t.Fatalf("%v\n%s", err, res.HCL)
	}
	ev := p.Evaluator(map[string]cty.Value{
		"partition": cty.ObjectVal(map[string]cty.Value{"path": cty.StringVal("/srv/part"), "id": cty.StringVal("slappart3")}),
		"node":      cty.ObjectVal(map[string]cty.Value{"id": cty.StringVal("COMP-1")}),
		"profile":   cty.ObjectVal(map[string]cty.Value{"dir": cty.StringVal("/srv/sr")}),
	})
	vals := map[string]cty.Value{}
	for _, n := range g.Order {
		switch n.Kind {
		case "request":
			opts, diags := ev.EvalBlock(n.Block)
			if err := p.Err(diags); err != nil {
				t.Fatalf("request %s: %v", n.Name, err)
			}
			vals["request."+n.Name] = cty.ObjectVal(opts)
			ev.SetRequest(n.Name, cty.ObjectVal(map[string]cty.Value{"connection": reply[n.Name], "name": cty.StringVal(n.Name)}))
		case "part":
			opts, diags := ev.EvalBlock(n.Block, "depends_on")
			if err := p.Err(diags); err != nil {
				t.Fatalf("part %s: %v\n%s", n.Name, err, res.HCL)
			}
			v := cty.ObjectVal(opts)
			ev.SetPart(n.Name, v)
			vals[n.Name] = v
		}
	}
	return p, vals
}

// The instance-side sections are converted to the forms the node binds
// (NodeSections, Bind, BindReference); bound, they evaluate as slapgrid's
// buildout would.
func TestConvertInstance(t *testing.T) {
	cfg := loadInstance(t, instanceCfg)
	res, err := ConvertInstance(cfg, ConvertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	reply := map[string]cty.Value{
		"Front":    cty.ObjectVal(map[string]cty.Value{"_": cty.StringVal(`{"url": "https://front.example/"}`)}),
		"optional": cty.EmptyObjectVal,
	}
	var secs []InstanceSection
	_, vals := evalInstance(t, res, reply, func(p *profile.Profile) {
		if secs, err = NodeSections(p); err != nil {
			t.Fatal(err)
		}
		Unmark(p)
		conn := SlapConnection{ComputerID: "COMP-1", PartitionID: "slappart3", SoftwareReleaseURL: "/srv/sr/software.cfg", RequestedState: "stopped"}
		for sec, vals := range conn.TailValues() {
			m := map[string]cty.Value{}
			for k, v := range vals {
				m[k] = cty.StringVal(v)
			}
			if err := Bind(p, MangleName(sec), m); err != nil {
				t.Fatal(err)
			}
		}
		ev := p.Evaluator(map[string]cty.Value{"partition": cty.ObjectVal(map[string]cty.Value{"path": cty.StringVal("/srv/part"), "id": cty.StringVal("slappart3")}),
			"node": cty.ObjectVal(map[string]cty.Value{"id": cty.StringVal("COMP-1")})})
		own, err := Options(p, ev, "slap-configuration")
		if err != nil {
			t.Fatal(err)
		}
		if own["configuration.name"] != "World" || own["computer"] != "COMP-1" {
			t.Errorf("own options of slap-configuration: %v", own)
		}
		if err := Bind(p, "slap-configuration", map[string]cty.Value{
			"configuration.port": cty.StringVal("8080"),
			"configuration":      cty.ObjectVal(map[string]cty.Value{"port": cty.StringVal("8080")}),
			"ipv6":               cty.TupleVal([]cty.Value{cty.StringVal("fd00::1")}),
			"slap-software-type": cty.StringVal("default"),
		}); err != nil {
			t.Fatal(err)
		}
		if err := BindReference(p, "switch-softwaretype", SwitchProfileAttr, "instance-default", "output"); err != nil {
			t.Fatal(err)
		}
	})
	slap := vals["slap-configuration"]
	if got := slap.GetAttr("configuration__2eport").AsString(); got != "8080" {
		t.Errorf("configuration.port = %q", got)
	}
	if got := slap.GetAttr("configuration__2ename").AsString(); got != "World" {
		t.Errorf("the default configuration.name = %q, want World", got)
	}
	if got := slap.GetAttr("ipv6"); got.LengthInt() != 1 {
		t.Errorf("ipv6 = %#v, want a list", got)
	}
	if slap.Type().HasAttribute("recipe") || slap.Type().HasAttribute(NodeRecipeAttr) {
		t.Error("slap-configuration kept its recipe or the node's mark")
	}
	sw := vals["switch-softwaretype"]
	if got := sw.GetAttr(SwitchProfileAttr).AsString(); got != "/srv/part/default.cfg" {
		t.Errorf("switch profile = %q", got)
	}
	front := vals["request.Front"]
	if front.GetAttr("software").AsString() != "/srv/sr/software.cfg" || front.GetAttr("software_type").AsString() != "frontend" ||
		!front.GetAttr("shared").True() || front.GetAttr("state").AsString() != "stopped" {
		t.Errorf("request Front = %#v", front)
	}
	if got := front.GetAttr("parameters").GetAttr("greeting").AsString(); got != "Hello World" {
		t.Errorf("config-greeting = %q", got)
	}
	pub := vals["publish"]
	if got := pub.GetAttr("url").AsString(); got != "https://front.example/" {
		t.Errorf("connection-url read through the request: %q", got)
	}
	if got := pub.GetAttr("maybe").AsString(); got != "" {
		t.Errorf("an optional request's missing parameter = %q, want empty", got)
	}
	if _, ok := vals["more"]; !ok {
		t.Error("the -extends section of publish is not evaluated with it")
	}
	if got := vals["optional"].GetAttr("requested-state").AsString(); got != "stopped" {
		t.Errorf("requested-state follows the parent's state: %q", got)
	}
	var kinds []string
	for _, s := range secs {
		kinds = append(kinds, s.Section+":"+s.Kind+"/"+s.Variant)
	}
	want := "publish:publish/serialised slap-configuration:slapconfiguration/serialised switch-softwaretype:switch-softwaretype/"
	if strings.Join(kinds, " ") != want {
		t.Errorf("sections: %s", strings.Join(kinds, " "))
	}
}

// `slapnode convert` of an instance profile writes the same forms as the
// node's in-memory conversion: one mapping.
func TestConvertInstanceStaticSameForms(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "instance.cfg")
	if err := os.WriteFile(path, []byte(instanceCfg), 0o644); err != nil {
		t.Fatal(err)
	}
	rel, err := ConvertRelease([]string{path}, ConvertOptions{Kind: "instance"})
	if err != nil {
		t.Fatal(err)
	}
	static := string(rel.Results[0].HCL)
	cfg, err := Load(path, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mem, err := ConvertInstance(cfg, ConvertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	squash := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	for _, want := range []string{
		`part "slap-configuration" { slapnode-recipe = "slapos.cookbook:slapconfiguration.serialised"`,
		`slapnode-recipe = "slapos.cookbook:switch-softwaretype"`,
		`slapnode-recipe = "slapos.cookbook:publish.serialised"`,
		`request "Front" {`, `part "front__slapnode_request_input" {`,
		`part "slap-connection" {`, `requested-state = "started"`,
	} {
		for name, text := range map[string]string{"slapnode convert": static, "in memory": string(mem.HCL)} {
			if !strings.Contains(squash(text), squash(want)) {
				t.Errorf("%s lacks %s:\n%s", name, want, text)
			}
		}
	}
	for _, w := range rel.Results[0].Warnings {
		if w.Kind == WarnUnmappedRecipe || w.Kind == WarnRuntimeSection {
			t.Errorf("warning: %s", w)
		}
	}
}

// A request whose connection parameter is not published yet fails when it
// is read (the instance is processed again), unless the request is optional.
func TestConvertInstanceRequestNotReady(t *testing.T) {
	cfg := loadInstance(t, `[buildout]
parts = use
[db]
recipe = slapos.cookbook:request
software-url = /srv/db.cfg
return = url
[use]
url = ${db:connection-url}
`)
	res, err := ConvertInstance(cfg, ConvertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p, diags := profile.LoadSource(filepath.Join(t.TempDir(), "i.cfg"), res.HCL, profile.Instance)
	if err := p.Err(diags); err != nil {
		t.Fatal(err)
	}
	g, _ := p.Graph(nil)
	ev := p.Evaluator(map[string]cty.Value{"partition": cty.ObjectVal(map[string]cty.Value{"path": cty.StringVal("/p")})})
	var failed bool
	for _, n := range g.Order {
		switch n.Kind {
		case "request":
			ev.SetRequest(n.Name, cty.ObjectVal(map[string]cty.Value{"connection": cty.EmptyObjectVal}))
		case "part":
			opts, diags := ev.EvalBlock(n.Block, "depends_on")
			if diags.HasErrors() {
				if !failed && !strings.Contains(diags.Error(), "Invalid index") {
					t.Errorf("error: %v", diags)
				}
				failed = true
				continue
			}
			ev.SetPart(n.Name, cty.ObjectVal(opts))
		}
	}
	if !failed {
		t.Error("a missing connection parameter of a non-optional request did not fail")
	}
}

func TestConvertInstanceObsoleteRequest(t *testing.T) {
	res, err := ConvertInstance(loadInstance(t, "[r]\nrecipe = slapos.cookbook:request\nconfig = a b\n"), ConvertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !hasKind(res.Warnings, WarnUnmappedRecipe) || strings.Contains(string(res.HCL), "request \"r\"") {
		t.Errorf("an obsolete config option was converted: %v\n%s", res.Warnings, res.HCL)
	}
}

func TestInstanceRecipe(t *testing.T) {
	for recipe, want := range map[string]string{
		"slapos.cookbook:slapconfiguration.jsonschema": "slapconfiguration/jsonschema",
		"slapos.cookbook:requestoptional.serialised":   "request/optional.serialised",
		"slapos.cookbook:publish":                      "publish/",
		"slapos.cookbook:wrapper":                      "/",
		"slapos.recipe.template":                       "/",
	} {
		k, v := InstanceRecipe(recipe)
		if k+"/"+v != want {
			t.Errorf("InstanceRecipe(%q) = %s/%s, want %s", recipe, k, v, want)
		}
	}
}

// BenchmarkConvertInstance measures what every apply of a buildout
// instance costs before any part runs: loading the rendered profile with
// its tail and converting it.
func BenchmarkConvertInstance(b *testing.B) {
	dir := b.TempDir()
	path := filepath.Join(dir, "instance.cfg")
	os.WriteFile(path, []byte(instanceCfg), 0o644)
	conn := SlapConnection{ComputerID: "COMP-1", PartitionID: "slappart3", SoftwareReleaseURL: "/srv/sr/software.cfg", RequestedState: "started"}
	b.ReportAllocs()
	for b.Loop() {
		cfg, err := Load(path, LoadOptions{Directory: "/srv/part"})
		if err != nil {
			b.Fatal(err)
		}
		if err := cfg.AppendText(path, conn.Tail()); err != nil {
			b.Fatal(err)
		}
		if _, err := ConvertInstance(cfg, ConvertOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// publish-early becomes the data part of the values it publishes through
// the publish section extending it: -init values, unless the section sets
// them, and -publish listing them.
func TestPublishEarly(t *testing.T) {
	cfg := loadInstance(t, `[buildout]
parts = publish
[gen-foo]
x = secret
[publish-early]
recipe = slapos.cookbook:publish-early
-init =
  foo gen-foo:x
  bar gen-bar:y
bar = z
[publish]
recipe = slapos.cookbook:publish.serialised
-extends = publish-early
url = http://x/
`)
	res, err := ConvertInstance(cfg, ConvertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, vals := evalInstance(t, res, nil, func(p *profile.Profile) { Unmark(p) })
	pe := vals["publish-early"]
	if pe.GetAttr("foo").AsString() != "secret" || pe.GetAttr("bar").AsString() != "z" || pe.GetAttr("__2dpublish").AsString() != "bar foo" {
		t.Errorf("publish-early = %#v", pe)
	}
	if _, ok := vals["gen-bar"]; ok || strings.Contains(string(res.HCL), "part.gen-bar") {
		t.Errorf("the forced value's init section is read:\n%s", res.HCL)
	}
}

// A request named with spaces, whose section copies slap-connection (and
// its requested-state) through a macro (software/hugo's hugo-frontend).
func TestConvertInstanceRequestNamedWithSpaces(t *testing.T) {
	cfg := loadInstance(t, `[buildout]
parts = hugo-frontend
[hugo-frontend]
<= slap-connection
recipe = slapos.cookbook:requestoptional
name = Hugo frontend
software-url = http://example.org/apache-frontend/software.cfg
shared = true
config-url = http://x/
return = domain secure_access
`)
	res, err := ConvertInstance(cfg, ConvertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if hasKind(res.Warnings, WarnUnmappedRecipe) {
		t.Fatalf("warnings: %v", res.Warnings)
	}
	reply := map[string]cty.Value{"Hugo frontend": cty.ObjectVal(map[string]cty.Value{"secure_access": cty.StringVal("https://f/")})}
	_, vals := evalInstance(t, res, reply, func(p *profile.Profile) { Unmark(p) })
	hf := vals["hugo-frontend"]
	if hf.GetAttr("connection-secure_access").AsString() != "https://f/" || hf.GetAttr("connection-domain").AsString() != "" {
		t.Errorf("hugo-frontend = %#v", hf)
	}
}
