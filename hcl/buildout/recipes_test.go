package buildout

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/slapnode/slapnode/hcl/profile"
	"github.com/zclconf/go-cty/cty"
)

// cookbookRecipes reads the names the cookbook registers from its
// sources (g.Register("NAME", …)): hcl/buildout may not import the
// runtime that embeds the built module.
func cookbookRecipes(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	re := regexp.MustCompile(`g\.Register\("([^"]+)"`)
	err := filepath.Walk("../../recipes-wasm/cookbook", func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return err
		}
		b, err := os.ReadFile(p)
		for _, m := range re.FindAllSubmatch(b, -1) {
			names[string(m[1])] = true
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// Every mapping names a recipe the cookbook has; the node's recipes are
// converted to the forms the node acts on.
func TestRecipeTable(t *testing.T) {
	names := cookbookRecipes(t)
	for from, to := range DefaultRecipeMap {
		if !names[strings.TrimPrefix(to, "cookbook:")] {
			t.Errorf("%s maps to %s, which the cookbook does not register", from, to)
		}
	}
	for from := range NodeRecipes {
		if _, ok := DefaultRecipeMap[from]; ok {
			t.Errorf("%s is both a cookbook recipe and the node's", from)
		}
		if k, _ := InstanceRecipe(from); k == "" && from != "slapos.cookbook:publish-early" {
			t.Errorf("%s is the node's, but the converter does not write it in the node's form", from)
		}
	}
}

// squash compares HCL with single spaces (hclwrite aligns = signs).
func squash(s string) string { return strings.Join(strings.Fields(s), " ") }

func TestAdaptRecipes(t *testing.T) {
	src := `[buildout]
parts = py gcc
find-links = https://pypi.example.org/simple

[versions]
dep = 1.0

[py]
recipe = slapos.recipe.build
part = python3
init =
  python = self.buildout[options['part']]
  d = self.buildout['buildout']['eggs-directory']
  options['x'] = self.buildout["other"]['y']
update =
  self.buildout['binutils']['location']

[gcc]
recipe = slapos.recipe.build
install =
  self.buildout.parse("[x]")

[python3]
recipe = slapos.recipe.cmmi
url = https://www.python.org/ftp/Python-3.11.tar.xz
md5sum = 0123456789abcdef0123456789abcdef
environment = python3-env
pre-configure-hook = ${:_profile_base_location_}/hooks.py#0123456789abcdef0123456789abcdef:pre

[python3-env]
CFLAGS = -O2

[other]
y = z

[eggs]
recipe = zc.recipe.egg
eggs = greet
python = python2.7

[with-python]
recipe = zc.recipe.egg
eggs = greet
python = python3.11

[python3.11]
executable = /opt/python/bin/python3.11

[lib]
recipe = zc.recipe.egg:eggs
eggs = dep

[custom]
recipe = zc.recipe.egg:custom
egg = custom
environment = python3-env
patches = https://lab.example.org/p.patch#0123456789abcdef0123456789abcdef

[tpl]
recipe = collective.recipe.template
input = inline:
  #!/bin/sh
  echo $${HOME} ${other:y}
output = ${buildout:directory}/bin/x
mode = 755

[tplfile]
recipe = collective.recipe.template
input = ${:_profile_base_location_}/t.in
output = ${buildout:directory}/t

[pub]
recipe = slapos.cookbook:publish.serialised
url = http://x/

[cron]
recipe = slapos.cookbook:cron
binary = ${buildout:directory}/bin/crond
dcrond-binary = /usr/sbin/crond
cron-entries = ${buildout:directory}/etc/cron.d
crontabs = ${buildout:directory}/etc/crontabs
cronstamps = ${buildout:directory}/etc/cronstamps
catcher = ${buildout:directory}/bin/catcher
log-file = ${buildout:directory}/var/log/crond.log

[log]
recipe = slapos.cookbook:simplelogger
wrapper = ${buildout:directory}/bin/log
log = ${buildout:directory}/var/it's.log

[clone]
recipe = slapos.recipe.build:gitclone
repository = https://lab.example.org/repo.git
git-executable = ${git:location}/bin/git

[dl]
recipe = slapos.recipe.build:download-unpacked
url = https://${:host}/x.tar.gz
md5sum = 0123456789abcdef0123456789abcdef
host = example.com
`
	dir := t.TempDir()
	cfg := filepath.Join(dir, "software.cfg")
	if err := os.WriteFile(cfg, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "t.in"), []byte("y is ${other:y}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := ConvertFile(cfg, []byte(src), ConvertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := squash(string(r.HCL))
	for _, want := range []string{
		// slapos.recipe.build: the sections init/install read, not update's.
		`buildout = { "buildout" = merge({ "directory" = "${software.path}" "bin-directory" = "${software.path}/bin" "parts-directory" = "${software.path}/parts" "eggs-directory" = "${software.path}/eggs" "develop-eggs-directory" = "${software.path}/develop-eggs" }, part.buildout) "other" = part.other "python3" = part.python3 }`,
		// environment = SECTION is the section's part.
		`environment = part.python3-env`,
		`recipe = "cookbook:egg" eggs = "greet" versions = part.versions find-links = part.buildout.find-links`,
		`recipe = "cookbook:egg" eggs = "dep" scripts = "" versions = part.versions`,
		`recipe = "cookbook:egg-custom"`,
		// python = SECTION: its executable.
		`python = part.python3__2e11.executable`,
		"inline = chomp(<<EOT #!/bin/sh echo $${HOME} ${part.other.y} EOT ) engine = \"none\"",
		`path = "${block.dir}/t.in" sections = { "other" = { "y" = part.other.y } } engine = "buildout"`,
		`serialised = true`,
		`command-line = [trimspace(self.dcrond-binary), "-s", self.cron-entries,`,
		`wrapper-path = self.binary`,
		`recipe = "cookbook:gitclone"`,
		// The grants: every command and download host the recipes need.
		`module "cookbook" { source = "builtin:cookbook" allow_exec = ["python3", "sh", "tar"] allow_net = ["https://example.com", "https://lab.example.org", "https://www.python.org"] timeout = "24h" }`,
	} {
		if !strings.Contains(got, squash(want)) {
			t.Errorf("output lacks %q:\n%s", want, r.HCL)
		}
	}
	if strings.Contains(got, `python = "python2.7"`) || strings.Contains(got, `"binutils" = part`) {
		t.Errorf("python option or update's section kept:\n%s", r.HCL)
	}
	kinds := map[string]int{}
	for _, w := range r.Warnings {
		kinds[w.Kind]++
	}
	if kinds[WarnHostPython] != 1 || kinds[WarnPythonCode] != 1 || kinds[WarnTemplateFile] != 0 || kinds[WarnUnmappedRecipe] != 0 {
		t.Errorf("warnings %v", r.Warnings)
	}

	// The converted file loads, and the adapted values evaluate.
	hcl := filepath.Join(dir, "software.hcl")
	if err := os.WriteFile(hcl, r.HCL, 0o644); err != nil {
		t.Fatal(err)
	}
	p, diags := profile.Load(hcl, profile.Software)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	ev := p.Evaluator(map[string]cty.Value{"software": cty.ObjectVal(map[string]cty.Value{"path": cty.StringVal("/sw")})})
	vals := map[string]map[string]cty.Value{}
	for _, b := range p.BlocksOf("part") {
		if b.Name() == "log" || b.Name() == "cron" {
			v, diags := ev.EvalBlock(b, "recipe")
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			vals[b.Name()] = v
		}
	}
	wantLog := "#!/bin/sh\n# Written by slapnode's cookbook (slapos.cookbook:simplelogger).\nprefix=$(date +%Y-%m-%d.%H:%M.%s:)\n{ while IFS= read -r line || [ -n \"$line\" ]; do printf '%s %s\\n' \"$prefix\" \"$line\"; done; printf '%s ------------------------\\n' \"$prefix\"; } >> '/sw/var/it'\\''s.log'\n"
	if c := vals["log"]["content"]; c.AsString() != wantLog || vals["log"]["output"].AsString() != "/sw/bin/log" {
		t.Errorf("simplelogger content:\n%s", c.AsString())
	}
	cl := vals["cron"]["command-line"]
	if cl.LengthInt() != 14 || cl.Index(cty.NumberIntVal(0)).AsString() != "/usr/sbin/crond" || cl.Index(cty.NumberIntVal(13)).AsString() != "/sw/var/log/crond.log" {
		t.Errorf("cron command-line %#v", cl)
	}
	mods, diags := p.Modules(ev)
	if diags.HasErrors() || len(mods["cookbook"].AllowExec) != 3 {
		t.Errorf("module block: %v %v", mods, diags)
	}

	// --no-adapt keeps buildout's options, but grants still follow.
	r, err = ConvertFile(cfg, []byte(src), ConvertOptions{NoAdapt: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := squash(string(r.HCL)); strings.Contains(got, "buildout = {") || !strings.Contains(got, `allow_exec = ["python3", "sh", "tar"]`) {
		t.Errorf("--no-adapt:\n%s", r.HCL)
	}
}

// The module block of a file grants what its whole extends closure needs
// (an extending file's block replaces the earlier one attribute by
// attribute); a host the converter cannot work out is reported once, by
// the file that defines it.
func TestModuleGrantsClosure(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	comp := write("component/lib/buildout.cfg", `[lib]
recipe = slapos.recipe.cmmi
url = https://ftp.example.org/lib-${:version}.tar.gz
version = 1.0
md5sum = 0123456789abcdef0123456789abcdef

[tool]
recipe = slapos.recipe.build:download
url = https://${lib:mirror}/tool
md5sum = 0123456789abcdef0123456789abcdef
`)
	sw := write("software/app/software.cfg", `[buildout]
extends = ../../component/lib/buildout.cfg
parts = lib app clone

[lib]
mirror = mirror.example.org

[app]
recipe = zc.recipe.egg
eggs = app

[clone]
recipe = slapos.recipe.build:gitclone
repository = /srv/repo
`)
	inst := write("software/app/instance.cfg", `[port]
recipe = slapos.cookbook:free_port
ip = 127.0.0.1

[me]
recipe = slapos.cookbook:userinfo

[bin]
recipe = slapos.cookbook:symbolic.link
target-directory = ${buildout:directory}/bin
link-binary = /opt/software/parts/tool/bin/tool
`)
	convert := func(p string) *Result {
		src, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		r, err := ConvertFile(p, src, ConvertOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	r := convert(sw)
	if got := squash(string(r.HCL)); !strings.Contains(got, `allow_exec = ["git", "python3", "sh"] allow_net = ["https://ftp.example.org", "https://mirror.example.org"]`) {
		t.Errorf("software grants:\n%s", r.HCL)
	}
	if len(r.Warnings) != 0 {
		t.Errorf("software warnings: %v", r.Warnings)
	}
	r = convert(comp)
	if got := squash(string(r.HCL)); !strings.Contains(got, `allow_exec = ["sh"] allow_net = ["https://ftp.example.org"]`) {
		t.Errorf("component grants:\n%s", r.HCL)
	}
	if len(r.Warnings) != 1 || r.Warnings[0].Kind != WarnModuleGrant || !strings.Contains(r.Warnings[0].Msg, "[tool] url https://${lib:mirror}/tool") {
		t.Errorf("component warnings: %v", r.Warnings)
	}
	r = convert(inst)
	if got := squash(string(r.HCL)); !strings.Contains(got, `allow_exec = ["getent", "id", "ln"] allow_net = ["tcp://${partition.ipv4}:*", "tcp://[${partition.ipv6}]:*"]`) {
		t.Errorf("instance grants:\n%s", r.HCL)
	}
	p := filepath.Join(dir, "instance.hcl")
	os.WriteFile(p, r.HCL, 0o644)
	prof, diags := profile.Load(p, profile.Instance)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	ev := prof.Evaluator(map[string]cty.Value{"partition": cty.ObjectVal(map[string]cty.Value{"ipv4": cty.StringVal("10.0.0.2"), "ipv6": cty.StringVal("fd00::2")})})
	mods, diags := prof.Modules(ev)
	if diags.HasErrors() || strings.Join(mods["cookbook"].AllowNet, " ") != "tcp://10.0.0.2:* tcp://[fd00::2]:*" {
		t.Errorf("instance module: %+v %v", mods["cookbook"], diags)
	}
}

// recipeUse is one `recipe =` line of the corpus.
var recipeLine = regexp.MustCompile(`^\s*recipe\s*\+?=\s*(.*?)\s*$`)

// The share of recipe uses of the public corpus that map to a cookbook
// recipe (every `recipe =` line of every profile and template: .cfg, .in,
// .jinja2), with the unmapped ones by frequency. An empty `recipe =`
// cancels an inherited recipe: it is not a use. The recipes the node
// handles itself (NodeRecipes) are counted apart.
func TestRecipeCoverage(t *testing.T) {
	corpus := corpusDir(t)
	uses, mapped, waiting, empty := 0, 0, 0, 0
	unmapped := map[string]int{}
	err := filepath.Walk(corpus, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		base := info.Name()
		if !strings.HasSuffix(base, ".cfg") && !strings.HasSuffix(base, ".in") && !strings.HasSuffix(base, ".jinja2") && !strings.HasSuffix(base, ".jinja") {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		s := bufio.NewScanner(f)
		s.Buffer(make([]byte, 1<<20), 1<<20)
		for s.Scan() {
			m := recipeLine.FindStringSubmatch(s.Text())
			if m == nil {
				continue
			}
			r := m[1]
			switch {
			case r == "":
				empty++
				continue
			case DefaultRecipeMap[r] != "":
				mapped++
			case Mapped(r):
				waiting++
			default:
				unmapped[r]++
			}
			uses++
		}
		return s.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	var list []string
	for r := range unmapped {
		list = append(list, r)
	}
	sort.Slice(list, func(i, j int) bool {
		if unmapped[list[i]] != unmapped[list[j]] {
			return unmapped[list[i]] > unmapped[list[j]]
		}
		return list[i] < list[j]
	})
	var lines []string
	for _, r := range list {
		lines = append(lines, fmt.Sprintf("%s %d", r, unmapped[r]))
	}
	share := func(n int) float64 { return 100 * float64(n) / float64(uses) }
	t.Logf("%d recipe uses (and %d empty recipe lines): %d mapped to the cookbook (%.1f%%), %d to the node's forms (%.1f%%), mapped %.1f%%", uses, empty, mapped, share(mapped), waiting, share(waiting), share(mapped+waiting))
	t.Logf("unmapped: %s", strings.Join(lines, ", "))
	if share(mapped+waiting) < 97 {
		t.Errorf("mapped: %.1f%% of recipe uses, want at least 97%% (it was 98.3%% when the node's recipes were mapped)", share(mapped+waiting))
	}
}
