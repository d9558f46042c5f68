package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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
