package egg

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	recipe "github.com/slapnode/slapnode/recipes-wasm/sdk/go"
	"github.com/slapnode/slapnode/recipes-wasm/sdk/go/recipetest"
)

func TestMain(m *testing.M) {
	Register(recipe.Default())
	os.Exit(m.Run())
}

// needPip looks commands up where slapnode's host does (its PATH is
// /usr/local/bin:/usr/bin:/bin, not the user's), and skips when that
// python3 has no pip or setuptools.
func needPip(t *testing.T) {
	t.Helper()
	t.Setenv("PATH", "/usr/local/bin:/usr/bin:/bin")
	if err := exec.Command("python3", "-c", "import setuptools, pip").Run(); err != nil {
		t.Skip("python3 with pip and setuptools is not installed")
	}
}

// wheel writes a pure-Python wheel NAME-VERSION into dir: package files,
// dependencies and console scripts.
func wheel(t *testing.T, dir, name, version string, files map[string]string, requires []string, scripts map[string]string) string {
	t.Helper()
	info := name + "-" + version + ".dist-info/"
	meta := "Metadata-Version: 2.1\nName: " + name + "\nVersion: " + version + "\n"
	for _, r := range requires {
		meta += "Requires-Dist: " + r + "\n"
	}
	all := map[string]string{
		info + "METADATA": meta,
		info + "WHEEL":    "Wheel-Version: 1.0\nGenerator: slapnode-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
	}
	if len(scripts) > 0 {
		ep := "[console_scripts]\n"
		for k, v := range scripts {
			ep += k + " = " + v + "\n"
		}
		all[info+"entry_points.txt"] = ep
	}
	for k, v := range files {
		all[k] = v
	}
	var record strings.Builder
	var buf bytes.Buffer
	z := zip.NewWriter(&buf)
	for k, v := range all {
		w, _ := z.Create(k)
		w.Write([]byte(v))
		record.WriteString(k + ",,\n")
	}
	w, _ := z.Create(info + "RECORD")
	w.Write([]byte(record.String() + info + "RECORD,,\n"))
	z.Close()
	path := filepath.Join(dir, name+"-"+version+"-py3-none-any.whl")
	os.MkdirAll(dir, 0o755)
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// sdist writes a setuptools source distribution NAME-VERSION.tar.gz.
func sdist(t *testing.T, dir, name, version string, files map[string]string) string {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	root := name + "-" + version + "/"
	all := map[string]string{
		root + "setup.py": "from setuptools import setup\nsetup(name='" + name + "', version='" + version + "', packages=['" + name + "'])\n",
		root + "PKG-INFO": "Metadata-Version: 2.1\nName: " + name + "\nVersion: " + version + "\n",
	}
	for k, v := range files {
		all[root+k] = v
	}
	for k, v := range all {
		tw.WriteHeader(&tar.Header{Name: k, Mode: 0o644, Size: int64(len(v)), Typeflag: tar.TypeReg})
		tw.Write([]byte(v))
	}
	tw.Close()
	gz.Close()
	path := filepath.Join(dir, name+"-"+version+".tar.gz")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestEggOffline(t *testing.T) {
	needPip(t)
	e := recipetest.New(t).AsSoftware()
	links := filepath.Join(e.Context.ProfileDir, "links")
	wheel(t, links, "greet", "1.0", map[string]string{
		"greet/__init__.py": "import sys, dep\ndef main(*args):\n    print('hello', dep.VERSION, *(args or sys.argv[1:]))\n    return 3\n",
	}, []string{"dep"}, map[string]string{"greet": "greet:main", "greet-other": "greet:main"})
	wheel(t, links, "dep", "1.0", map[string]string{"dep/__init__.py": "VERSION = '1.0'\n"}, nil, map[string]string{"dep-tool": "dep:x"})
	wheel(t, links, "dep", "2.0", map[string]string{"dep/__init__.py": "VERSION = '2.0'\n"}, nil, nil)

	out := e.MustInstall("greeter", "egg", map[string]any{
		"eggs":           "greet",
		"find-links":     "links",
		"offline":        "true",
		"versions":       map[string]any{"dep": "1.0+SlapOSPatched001", "recipe": "ignored but harmless", "zc.buildout": "", "greet": "1.0:whl"},
		"interpreter":    "py",
		"initialization": "import os\nos.environ['INIT'] = 'done'",
		"arguments":      "'from', 'args'",
		"scripts":        "greet=hi\nnope",
	})
	loc, bin := e.Path("parts", "greeter"), e.Path("bin")
	if out.Outputs["location"] != loc || out.Outputs["bin-directory"] != bin {
		t.Fatalf("result %+v", out)
	}
	// Only the asked script, under its alias; the dependency's scripts are
	// not written.
	if _, err := os.Stat(filepath.Join(bin, "greet-other")); !os.IsNotExist(err) {
		t.Fatal("a script that was not asked for was written")
	}
	if _, err := os.Stat(filepath.Join(bin, "dep-tool")); !os.IsNotExist(err) {
		t.Fatal("a dependency's script was written")
	}
	cmd := exec.Command(filepath.Join(bin, "hi"))
	got, err := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 3 || string(got) != "hello 1.0 from args\n" {
		t.Fatalf("script printed %q, exit %d (%v): the pin, the arguments or the exit status is wrong", got, cmd.ProcessState.ExitCode(), err)
	}
	got, err = exec.Command(filepath.Join(bin, "py"), "-c", "import os, dep, sys; print(dep.VERSION, os.environ['INIT'], sys.argv)", "a").CombinedOutput()
	if err != nil || string(got) != "1.0 done ['-c', 'a']\n" {
		t.Fatalf("interpreter printed %q, %v", got, err)
	}
	if scripts := out.Outputs["scripts"].([]any); len(scripts) != 2 || len(out.Installed) != 3 {
		t.Fatalf("scripts %v, installed %v", scripts, out.Installed)
	}

	// Without scripts: every console script of the listed eggs.
	out = e.MustInstall("all", "egg", map[string]any{"eggs": []any{"greet"}, "find-links": []any{links}, "index": "", "bin-directory": "sbin"})
	if _, err := os.Stat(e.Path("sbin", "greet-other")); err != nil {
		t.Fatalf("all scripts: %v (%+v)", err, out)
	}
	// An empty scripts option writes none (zc.recipe.egg:eggs).
	out = e.MustInstall("none", "egg", map[string]any{"eggs": "dep", "find-links": links, "offline": true, "scripts": ""})
	if len(out.Outputs["scripts"].([]any)) != 0 {
		t.Fatalf("scripts written: %v", out.Outputs["scripts"])
	}
	// A missing egg is reported with its name and version.
	e.MustFail("missing", "egg", map[string]any{"eggs": "nothere", "find-links": links, "offline": "true", "versions": "nothere = 3.1"}, "egg nothere==3.1 is missing", links)
	e.MustFail("oldpin", "egg", map[string]any{"eggs": "dep==3.0", "find-links": links, "offline": "true"}, "egg dep==3.0 is missing", "versions found: 1.0, 2.0")
	e.Host.AllowExec = []string{"sh"}
	e.MustFail("denied", "egg", map[string]any{"eggs": "dep", "find-links": links, "offline": "true"}, `allow_exec = ["python3"]`)

	// zc.recipe.egg's python = SECTION: the section's executable when this
	// host has it (a path, run through sh), else the host's python3, said.
	e.Host.AllowExec = []string{"sh", "python3"}
	host, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal(err)
	}
	out = e.MustInstall("own-python", "egg", map[string]any{"eggs": "dep", "find-links": links, "offline": "true", "python": host})
	if out.Outputs["python"] != host {
		t.Errorf("python %v, want %s", out.Outputs["python"], host)
	}
	out = e.MustInstall("no-python", "egg", map[string]any{"eggs": "dep", "find-links": links, "offline": "true", "python": "/nonexistent/bin/python2.7"})
	if out.Outputs["python"] != "python3" {
		t.Errorf("python %v, want the host's python3", out.Outputs["python"])
	}
	said := false
	for _, l := range e.Host.Logs() {
		said = said || strings.Contains(l.Message, "/nonexistent/bin/python2.7 is not an executable on this host")
	}
	if !said {
		t.Error("the fallback to the host's python3 was not said")
	}
}

func TestEggCustomAndDevelop(t *testing.T) {
	needPip(t)
	e := recipetest.New(t).AsSoftware()
	links := filepath.Join(e.Context.ProfileDir, "links")
	os.MkdirAll(links, 0o755)
	sdist(t, links, "custom", "1.0", map[string]string{"custom/__init__.py": "WHO = 'upstream'\nFLAGS = ''\n"})
	patch := "--- custom/__init__.py\n+++ custom/__init__.py\n@@ -1,2 +1,2 @@\n-WHO = 'upstream'\n+WHO = 'patched'\n FLAGS = ''\n"
	e.WriteFile(filepath.Join(e.Context.ProfileDir, "custom.patch"), patch)
	sum := md5.Sum([]byte(patch))
	out := e.MustInstall("custom", "egg-custom", map[string]any{
		"egg": "custom", "find-links": links, "offline": "true",
		"patches":      "custom.patch#" + hex.EncodeToString(sum[:]),
		"include-dirs": "include", "rpath": "$ORIGIN\nlib",
		"environment": "EXTRA=1",
	})
	whl := e.Path("eggs", "custom-1.0-py3-none-any.whl")
	if out.Outputs["wheel"] != whl || out.Installed[0] != whl {
		t.Fatalf("result %+v", out)
	}
	// A later egg part installs the custom build from the eggs directory.
	e.MustInstall("use", "egg", map[string]any{"eggs": "custom", "offline": "true", "interpreter": "pyc"})
	got, err := exec.Command(e.Path("bin", "pyc"), "-c", "import custom; print(custom.WHO)").CombinedOutput()
	if err != nil || string(got) != "patched\n" {
		t.Fatalf("custom egg: %q, %v", got, err)
	}
	e.MustFail("badpatch", "egg-custom", map[string]any{"egg": "custom", "find-links": links, "offline": "true", "patches": "custom.patch#00000000000000000000000000000000"}, "md5sum mismatch")

	src := filepath.Join(e.Context.ProfileDir, "devsrc")
	e.WriteFile(filepath.Join(src, "setup.py"), "from setuptools import setup\nsetup(name='devel', version='0.1', py_modules=['devel'])\n")
	e.WriteFile(filepath.Join(src, "devel.py"), "X = 'dev'\n")
	out = e.MustInstall("dev", "egg-develop", map[string]any{"setup": filepath.Join(src, "setup.py"), "offline": "true"})
	if !strings.HasSuffix(out.Outputs["wheel"].(string), "devel-0.1-py3-none-any.whl") {
		t.Fatalf("develop: %+v", out)
	}
	e.MustInstall("usedev", "egg", map[string]any{"eggs": "devel", "offline": "true", "interpreter": "pyd"})
	got, err = exec.Command(e.Path("bin", "pyd"), "-c", "import devel; print(devel.X)").CombinedOutput()
	if err != nil || string(got) != "dev\n" {
		t.Fatalf("develop egg: %q, %v", got, err)
	}
	e.MustFail("nodev", "egg-develop", map[string]any{"setup": "nowhere"}, "is not a source directory")
}

func TestNames(t *testing.T) {
	for in, want := range map[string]string{"Foo_Bar.baz": "foo-bar-baz", "slapos.toolbox[zodbpack]": "slapos-toolbox", "x==1.0": "x", " a-b ; python_version<'3'": "a-b"} {
		if got := reqName(in); got != want {
			t.Errorf("reqName(%q) = %q, want %q", in, got, want)
		}
	}
	for in, ok := range map[string]bool{"a = m:f": true, "a = m.n:f.g [extra]": true, "a = m": false, "a = 1m:f": false, "= m:f": false} {
		if _, got := parseEntryPoint(in); got != ok {
			t.Errorf("parseEntryPoint(%q) = %v", in, got)
		}
	}
}
