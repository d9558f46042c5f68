package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slapnode/slapnode/node/local"
)

func convertCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(append([]string{"convert"}, args...), strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// The peer benchmark's profile (shared/peers/buildout-bench) converts with
// its two recipes mapped and no warning; without the map, --check fails.
func TestConvertCommand(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "sw", "buildout.cfg")
	if err := os.MkdirAll(filepath.Dir(cfg), 0o755); err != nil {
		t.Fatal(err)
	}
	src := "[buildout]\nparts = d t\n\n[vars]\nbase = ${buildout:directory}/work\n\n" +
		"[d]\nrecipe = peerbench.recipes:mkdir\npath = ${vars:base}/d0000\n\n" +
		"[t]\nrecipe = peerbench.recipes:template\noutput = ${d:path}/t.conf\ninline =\n  [${:output}]\n  x = $${not:now}\n"
	if err := os.WriteFile(cfg, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	maps := []string{"--recipe-map", "peerbench.recipes:mkdir=cookbook:mkdirectory", "--recipe-map", "peerbench.recipes:template=cookbook:template"}

	code, out, errs := convertCLI(t, append([]string{"--check", cfg}, maps...)...)
	if code != exitOK || out != "convert: 1 files, 1 converted, 0 failed, 0 warnings\n" {
		t.Errorf("--check with maps: code %d\nstdout %s\nstderr %s", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "sw", "buildout.hcl")); err == nil {
		t.Error("--check wrote a file")
	}

	code, out, errs = convertCLI(t, "--check", cfg)
	if code != exitFailure || !strings.Contains(errs, "buildout.cfg:8:1: warning: unmapped-recipe: [d] recipe peerbench.recipes:mkdir") ||
		!strings.Contains(out, "unmapped-recipe 2") {
		t.Errorf("--check without maps: code %d\nstdout %s\nstderr %s", code, out, errs)
	}

	outDir := filepath.Join(dir, "out")
	code, _, errs = convertCLI(t, append([]string{cfg, "-o", outDir}, maps...)...)
	if code != exitOK {
		t.Fatalf("convert: code %d: %s", code, errs)
	}
	hcl, err := os.ReadFile(filepath.Join(outDir, "buildout.hcl"))
	if err != nil {
		matches, _ := filepath.Glob(filepath.Join(outDir, "*", "*", "*", "*"))
		t.Fatalf("output not under -o: %v (found %v)", err, matches)
	}
	for _, want := range []string{`recipe = "cookbook:mkdirectory"`, `path   = "${part.vars.base}/d0000"`, "[${self.output}]", "x = $$${not:now}"} {
		if !strings.Contains(string(hcl), want) {
			t.Errorf("output lacks %q:\n%s", want, hcl)
		}
	}

	code, out, _ = convertCLI(t, "--resolve", cfg)
	if code != exitOK || !strings.Contains(out, "\n[t]\n") || !strings.Contains(out, "output = "+filepath.Join(dir, "sw")+"/work/d0000/t.conf\n") {
		t.Errorf("--resolve: code %d\n%s", code, out)
	}

	code, _, errs = convertCLI(t, "--recipe-map", "nonsense", cfg)
	if code != exitUsage || !strings.Contains(errs, "want OLD=MODULE:RECIPE") {
		t.Errorf("bad --recipe-map: code %d %s", code, errs)
	}
}

// --resolve prints what zc.buildout computes: compared with Debian's
// zc.buildout on the same file when it is installed.
func TestConvertResolveMatchesBuildout(t *testing.T) {
	if _, err := os.Stat("/usr/lib/python3/dist-packages/zc/buildout/buildout.py"); err != nil {
		t.Skip("Debian's python3-zc.buildout is not installed")
	}
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("base.cfg", "[a]\nx = 1\nl =\n  one\n  two\n")
	root := write("top.cfg", "[buildout]\nextends = base.cfg\nparts =\n[a]\nl -= one\nl += three\n[b]\n<= a\ny = ${a:x}-${:l}\n")
	py := `import collections, collections.abc, sys
collections.MutableMapping = collections.abc.MutableMapping
import zc.buildout.buildout as bo
d = bo._open('` + dir + `', 'top.cfg', [], {}, {}, set())
d = bo._unannotate(d)
class B(dict):
    _raw = d; _data = {}; _parts = []
    def __getitem__(self, s):
        if s in self._data: return self._data[s]
        o = bo.Options(self, s, d[s]); self._data[s] = o; o._initialize(); return o
o = B()['b']
print(o.get('y'))
`
	cmd := exec.Command("/usr/bin/python3", "-c", py)
	want, err := cmd.Output()
	if err != nil {
		t.Fatalf("zc.buildout: %v", err)
	}
	code, out, errs := convertCLI(t, "--resolve", root)
	if code != exitOK {
		t.Fatalf("code %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(string(want)), "\n")
	if !strings.Contains(out, "y = "+strings.Join(lines, "\n    ")+"\n") {
		t.Errorf("slapnode --resolve:\n%s\nzc.buildout: %q", out, want)
	}
}

// A release converts with its closure into a tree that loads and plans:
// the files it extends are converted in their layout, the files its
// profiles read are copied, the software block has the release's name and
// git tag, and a missing extends file is a warning.
func TestConvertRelease(t *testing.T) {
	dir := t.TempDir()
	const commit = "4c5e8a7d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f7"
	files := map[string]string{
		".git/HEAD":                     "ref: refs/heads/main\n",
		".git/refs/heads/main":          commit + "\n",
		".git/packed-refs":              "# pack-refs with: peeled\n" + commit + " refs/tags/1.0.238\n",
		"component/hello/fix.patch":     "--- a\n+++ b\n",
		"component/hello/buildout.cfg":  "[buildout]\nparts = hello\n\n# hello, patched\n[hello]\nrecipe = slapos.recipe.cmmi\nurl = https://example.invalid/hello-1.0.tar.gz\nmd5sum = 0123456789abcdef0123456789abcdef\npatches +=\n  ${:_profile_base_location_}/fix.patch#d41d8cd98f00b204e9800998ecf8427e\n",
		"stack/base.cfg":                "[buildout]\nparts =\n\n[tmpl-base]\nrecipe = slapos.recipe.build:download\nurl = ${:_profile_base_location_}/${:filename}\nsha256 = 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n",
		"software/demo/instance.cfg.in": "[buildout]\nparts =\n",
		"software/demo/software.cfg": "[buildout]\nextends =\n  ../../stack/base.cfg\n  ../../component/hello/buildout.cfg\n  ../../component/missing/buildout.cfg\n" +
			"parts += instance.cfg\n\n[instance.cfg]\n<= tmpl-base\nfilename = instance.cfg.in\n",
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	root := filepath.Join(dir, "software/demo/software.cfg")
	out := filepath.Join(dir, "out")
	code, stdout, errs := convertCLI(t, "-o", out, root)
	if code != exitOK {
		t.Fatalf("convert: code %d\n%s", code, errs)
	}
	if !strings.Contains(errs, "software.cfg:2:1: warning: missing-extends: extends ../../component/missing/buildout.cfg") ||
		!strings.Contains(stdout, "convert: 3 files, 3 converted, 0 failed, 2 files copied, 1 warnings (missing-extends 1)") {
		t.Fatalf("warnings or summary:\n%s\n%s", stdout, errs)
	}
	for _, f := range []string{"software/demo/software.hcl", "stack/base.hcl", "component/hello/buildout.hcl", "component/hello/fix.patch", "software/demo/instance.cfg.in"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("not written: %v", err)
		}
	}
	sw, _ := os.ReadFile(filepath.Join(out, "software/demo/software.hcl"))
	hello, _ := os.ReadFile(filepath.Join(out, "component/hello/buildout.hcl"))
	for _, want := range []string{`software "demo" {`, `version = "1.0.238"`, `parts   = concat(base.parts, ["instance__2ecfg"])`} {
		if !strings.Contains(string(sw), want) {
			t.Errorf("software.hcl lacks %q:\n%s", want, sw)
		}
	}
	for _, want := range []string{"# hello, patched\npart \"hello\" {", `patches = appendlines(base.patches, "${block.dir}/fix.patch#d41d8cd98f00b204e9800998ecf8427e")`} {
		if !strings.Contains(string(hello), want) {
			t.Errorf("buildout.hcl lacks %q:\n%s", want, hello)
		}
	}

	// Without the missing file, the converted release plans.
	if err := os.WriteFile(root, []byte(strings.Replace(files["software/demo/software.cfg"], "  ../../component/missing/buildout.cfg\n", "", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := convertCLI(t, "-o", out, root); code != exitOK {
		t.Fatalf("convert: code %d\n%s", code, errs)
	}
	var pout, perr bytes.Buffer
	code = run([]string{"plan", "--root", filepath.Join(dir, "node"), filepath.Join(out, "software/demo/software.hcl")}, strings.NewReader(""), &pout, &perr)
	if code != exitOK || !strings.Contains(pout.String(), "+ hello (cookbook:cmmi)") || !strings.Contains(pout.String(), "+ instance__2ecfg (cookbook:download)") {
		t.Errorf("plan: code %d\n%s\n%s", code, pout.String(), perr.String())
	}
}

// Parts that read each other's options (component/golang's gowork ↔
// gowork.goinstall) plan and apply: the part read first is evaluated option
// by option, and installed in buildout's order.
func TestApplyPartsReadingEachOther(t *testing.T) {
	dir := t.TempDir()
	sw := filepath.Join(dir, "software.hcl")
	src := `parts = ["gowork"]
part "gowork" {
  directory = "${software.path}/go.work"
  bin       = "${self.directory}/bin"
  depends   = part.gowork__2egoinstall.recipe
}
part "gowork__2egoinstall" {
  recipe = "cookbook:mkdirectory"
  bin    = part.gowork.bin
}
`
	if err := os.WriteFile(sw, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "node")
	var pout, perr bytes.Buffer
	if code := run([]string{"plan", "--root", root, sw}, strings.NewReader(""), &pout, &perr); code != exitOK || !strings.Contains(pout.String(), "+ gowork__2egoinstall (cookbook:mkdirectory)") {
		t.Fatalf("plan: code %d\n%s\n%s", code, pout.String(), perr.String())
	}
	// A software-only release: applied without the node's daemon.
	n, err := local.Open(context.Background(), root, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(context.Background())
	if _, err := n.Apply(context.Background(), sw, local.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	matches, _ := filepath.Glob(filepath.Join(root, "software", "*", "go.work", "bin"))
	if len(matches) != 1 {
		t.Fatal("go.work/bin not created")
	}
}
