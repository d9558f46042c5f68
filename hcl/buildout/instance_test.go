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
func evalInstance(t *testing.T, res *InstanceResult, reply map[string]cty.Value) (*profile.Profile, map[string]cty.Value) {
	t.Helper()
	p, diags := profile.LoadSource(filepath.Join(t.TempDir(), "instance.cfg"), res.HCL, profile.Instance)
	if err := p.Err(diags); err != nil {
		t.Fatalf("%v\n%s", err, res.HCL)
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

func TestConvertInstance(t *testing.T) {
	cfg := loadInstance(t, instanceCfg)
	m := InstanceMapping{
		Data: map[string]map[string]cty.Value{"slap-configuration": {
			"configuration.port": cty.StringVal("8080"),
			"configuration":      cty.ObjectVal(map[string]cty.Value{"port": cty.StringVal("8080")}),
			"ipv6":               cty.TupleVal([]cty.Value{cty.StringVal("fd00::1")}),
			"slap-software-type": cty.StringVal("default"),
		}},
		Switch:         map[string]string{"switch-softwaretype": "instance-default:output"},
		RequestedState: "stopped",
		Exec:           []string{"python3"},
	}
	res, err := ConvertInstance(cfg, m, ConvertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	reply := map[string]cty.Value{
		"Front":    cty.ObjectVal(map[string]cty.Value{"_": cty.StringVal(`{"url": "https://front.example/"}`)}),
		"optional": cty.EmptyObjectVal,
	}
	p, vals := evalInstance(t, res, reply)
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
	if slap.Type().HasAttribute("recipe") {
		t.Error("slap-configuration kept its recipe: the host computes it")
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
	mods, _ := p.Modules(p.Evaluator(nil))
	if c := mods["cookbook"]; c == nil || len(c.AllowExec) != 1 || c.AllowExec[0] != "python3" {
		t.Errorf("module cookbook: %#v", c)
	}
	var kinds []string
	for _, s := range res.Sections {
		kinds = append(kinds, s.Section+":"+s.Kind+"/"+s.Variant)
	}
	want := "front:request/serialised optional:request/optional publish:publish/serialised slap-configuration:slapconfiguration/serialised switch-softwaretype:switch-softwaretype/"
	if strings.Join(kinds, " ") != want {
		t.Errorf("sections: %s", strings.Join(kinds, " "))
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
	res, err := ConvertInstance(cfg, InstanceMapping{}, ConvertOptions{})
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

func TestConvertInstanceErrors(t *testing.T) {
	for _, c := range []struct {
		cfg  string
		m    InstanceMapping
		want string
	}{
		{"[s]\nrecipe = slapos.cookbook:slapconfiguration\n", InstanceMapping{}, "were not computed"},
		{"[switch]\nrecipe = slapos.cookbook:switch-softwaretype\ndefault = instance-default\n",
			InstanceMapping{Switch: map[string]string{"switch": "instance-default"}}, "SECTION:OPTION"},
		{"[switch]\nrecipe = slapos.cookbook:switch-softwaretype\n", InstanceMapping{}, "no profile chosen"},
		{"[r]\nrecipe = slapos.cookbook:request\nconfig = a b\n", InstanceMapping{}, "obsolete"},
	} {
		_, err := ConvertInstance(loadInstance(t, c.cfg), c.m, ConvertOptions{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: err = %v, want %q", c.cfg, err, c.want)
		}
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
	m := InstanceMapping{
		Data:   map[string]map[string]cty.Value{"slap-configuration": {"configuration.port": cty.StringVal("8080")}},
		Switch: map[string]string{"switch-softwaretype": "instance-default:output"},
	}
	b.ReportAllocs()
	for b.Loop() {
		cfg, err := Load(path, LoadOptions{Directory: "/srv/part"})
		if err != nil {
			b.Fatal(err)
		}
		if err := cfg.AppendText(path, conn.Tail()); err != nil {
			b.Fatal(err)
		}
		if _, err := ConvertInstance(cfg, m, ConvertOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
