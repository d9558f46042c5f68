package buildout

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slapnode/slapnode/hcl/profile"
)

// convertAndLoad writes files (path → content) into a directory, converts
// the release rooted at root with its closure (as `slapnode convert -o`
// does), and loads and graphs the converted root as `slapnode plan` does.
func convertAndLoad(t *testing.T, files map[string]string, root string) (*profile.Profile, map[string]string) {
	t.Helper()
	src, out := t.TempDir(), t.TempDir()
	for name, text := range files {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rel, err := ConvertRelease([]string{filepath.Join(src, root)}, ConvertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for f, err := range rel.Errors {
		t.Fatalf("%s: %v", f, err)
	}
	hcls := map[string]string{}
	var rootOut string
	for _, res := range rel.Results {
		r, err := filepath.Rel(rel.Dir, res.Output)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(out, r)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, res.HCL, 0o644); err != nil {
			t.Fatal(err)
		}
		hcls[filepath.ToSlash(r)] = string(res.HCL)
		if res.Path == filepath.Join(src, root) {
			rootOut = dst
		}
	}
	p, diags := profile.Load(rootOut, profile.Software)
	if err := p.Err(diags); err != nil {
		t.Fatalf("converted release does not load: %v\n%v", err, hcls)
	}
	if _, diags := p.Graph(nil); diags.HasErrors() {
		t.Fatalf("converted release does not plan: %v\n%v", p.Err(diags), hcls)
	}
	return p, hcls
}

// A parts list computed from options names buildout sections as they are
// written (software/kvm: parts = ${:json-parts}, which lists instance.json):
// the converted release plans, the part instance__2ejson being selected.
func TestComputedPartsWithDottedNames(t *testing.T) {
	p, _ := convertAndLoad(t, map[string]string{
		"software.cfg": `[buildout]
json-parts =
  instance.json
parts =
  ${:json-parts}

[instance.json]
recipe = slapos.recipe.build:download
url = ${:_profile_base_location_}/instance.json
`,
		"instance.json": "{}\n",
	}, "software.cfg")
	g, _ := p.Graph(nil)
	if g.Nodes["part.instance__2ejson"] == nil {
		t.Errorf("part instance.json not in the graph: %v", g.Nodes)
	}
}

// slapos.recipe.build's Python code may make a section itself
// (component/ZEO: self.buildout.parse('[_ZEO-versions]\n' + …)) and read
// it: such a section is not passed to the shim as a part, which would be a
// reference to a part no file defines.
func TestBuildCodeReadsSectionItMakes(t *testing.T) {
	_, hcls := convertAndLoad(t, map[string]string{
		"software.cfg": `[buildout]
parts = zeo

[versions]
ZEO = 5.4.0

[zeo]
recipe = slapos.recipe.build
init =
  self.buildout.parse('[_ZEO-versions]\n' + 'a = 1')
  versions = self.buildout['versions']
  versions.update(self.buildout['_ZEO-versions'])
`,
	}, "software.cfg")
	got := hcls["software.hcl"]
	if strings.Contains(got, "part._ZEO-versions") || !strings.Contains(got, `"versions" = part.versions`) {
		t.Errorf("want [versions] passed and [_ZEO-versions] not:\n%s", got)
	}
}

// A section taking its recipe from a <= macro (stack/nxdtest:
// [nxdtest-instance.cfg] <= jinja2-template, with its own context) or from
// an earlier file has its options adapted like the macro's: context becomes
// vars, so the cookbook's template recipe accepts them.
func TestInheritedRecipeAdapted(t *testing.T) {
	_, hcls := convertAndLoad(t, map[string]string{
		"stack/nxdtest.cfg": `[jinja2-template]
recipe = slapos.recipe.template:jinja2
output = ${buildout:directory}/${:_buildout_section_name_}
context =
  section buildout buildout

[nxdtest-instance.cfg]
<= jinja2-template
url = ${:_profile_base_location_}/nxdtest/instance.cfg.in
context =
  section buildout buildout
  key port nxdtest:port

[nxdtest]
port = 8080

[plain]
recipe = slapos.recipe.template
url = ${:_profile_base_location_}/plain.in
output = ${buildout:directory}/plain
`,
		"stack/nxdtest/instance.cfg.in": "x\n",
		"stack/plain.in":                "port ${nxdtest:port}\n",
		"software.cfg": `[buildout]
extends = stack/nxdtest.cfg
parts = nxdtest-instance.cfg plain

[plain]
mode = 0600
`,
	}, "software.cfg")
	stack := strings.Join(strings.Fields(hcls["stack/nxdtest.hcl"]), " ")
	for _, want := range []string{`"port" = part.nxdtest.port`, `path = "${block.dir}/nxdtest/instance.cfg.in"`} {
		if !strings.Contains(stack, want) {
			t.Errorf("stack/nxdtest.hcl lacks %q:\n%s", want, hcls["stack/nxdtest.hcl"])
		}
	}
	// [plain] extended with an option of its own keeps the engine its
	// first definition set for its template file.
	if strings.Contains(hcls["software.hcl"], "engine") {
		t.Errorf("software.hcl overrides the engine of [plain]:\n%s", hcls["software.hcl"])
	}
}

// rubygemsrecipe and zc.recipe.testrunner map to the cookbook
// (software/gitlab, software/helloworld, software/dream).
func TestRubygemsAndTestrunnerMapped(t *testing.T) {
	_, hcls := convertAndLoad(t, map[string]string{
		"software.cfg": `[buildout]
parts = bundler dream-testrunner
allow-picked-versions = false

[manpy]
initialization = import sys

[bundler]
recipe = rubygemsrecipe
url = https://rubygems.org/rubygems/rubygems-3.4.21.zip
md5sum = 0123456789abcdef0123456789abcdef
ruby-executable = /opt/ruby/bin/ruby
gems = bundler==1.17.3

[dream-testrunner]
recipe = zc.recipe.testrunner
eggs = dream
script = dream_testrunner
initialization =
  ${manpy:initialization}
`,
	}, "software.cfg")
	got := strings.Join(strings.Fields(hcls["software.hcl"]), " ")
	for _, want := range []string{
		`recipe = "cookbook:rubygems"`,
		`deployment = lower(trimspace(part.buildout.allow-picked-versions)) == "false"`,
		`bin-directory = "${software.path}/bin"`,
		`recipe = "cookbook:egg"`, `eggs = "dream"`, `egg = "zope.testrunner"`, `scripts = ""`,
		`entry-points = "dream_testrunner=zope.testrunner:run"`,
		`arguments = "[] + ['--test-path', '${software.path}/parts/dream-testrunner', '-s', 'dream']"`,
		`allow_exec = ["python3", "sh"]`, `allow_net = ["https://rubygems.org"]`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("software.hcl lacks %s:\n%s", want, hcls["software.hcl"])
		}
	}
}
