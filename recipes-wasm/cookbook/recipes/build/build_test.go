package build

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"crypto/sha256"
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

func TestBuildCommands(t *testing.T) {
	e := recipetest.New(t)
	out := e.MustInstall("b", "build", map[string]any{
		"commands":    []any{[]any{"sh", "-c", "echo one > first"}, "echo \"$location $GREETING\" > second"},
		"script":      "test -f first && echo done > third",
		"environment": "GREETING=hi",
	})
	loc := e.Path("parts", "b")
	if out.Outputs["location"] != loc || out.Installed[0] != loc {
		t.Fatalf("result %+v", out)
	}
	if e.ReadFile(filepath.Join(loc, "second")) != loc+" hi\n" || e.ReadFile(filepath.Join(loc, "third")) != "done\n" {
		t.Fatal("commands did not run in order in the location")
	}
	if calls := e.Host.Calls(); len(calls) != 3 {
		t.Fatalf("host calls %v, want 3 execs", calls)
	}
	out = e.MustFail("f", "build", map[string]any{"script": "echo some output; exit 3"}, "exited with status 3", "some output")
	// stop-on-error = false keeps going.
	e.MustInstall("g", "build", map[string]any{"commands": []any{"false", "touch ok"}, "stop-on-error": "false"})
	if _, err := os.Stat(e.Path("parts", "g", "ok")); err != nil {
		t.Fatal("stop-on-error=false stopped")
	}
	// A relative program is run through sh: the host only runs commands
	// from its PATH.
	e.WriteFile(e.Path("tools", "gen.sh"), "#!/bin/sh\necho \"gen $1\" > generated\n")
	if err := os.Chmod(e.Path("tools", "gen.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	e.MustInstall("rel", "build", map[string]any{"commands": []any{[]any{"../../tools/gen.sh", "x"}}})
	if e.ReadFile(e.Path("parts", "rel", "generated")) != "gen x\n" {
		t.Fatal("relative command did not run")
	}
	// slapos.recipe.cmmi's %(NAME)s refers to the inherited environment.
	e.MustInstall("interp", "build", map[string]any{
		"commands":    []any{[]any{"sh", "-c", `echo "$PATH|$Q" > env`}},
		"environment": map[string]any{"PATH": "/opt/x/bin:%(PATH)s", "Q": "a \"$b`\\%(NOPE)s%(1x)s"},
	})
	got := e.ReadFile(e.Path("parts", "interp", "env"))
	if !strings.HasPrefix(got, "/opt/x/bin:/") || !strings.HasSuffix(got, "|a \"$b`\\%(1x)s\n") {
		t.Fatalf("interpolated environment: %q", got)
	}
	e.MustFail("n", "build", map[string]any{}, "nothing to run")
	e.MustFail("l", "build", map[string]any{"script": "true", "location": e.Dir()}, "partition or software directory itself")
	e.Host.AllowExec = []string{"make"}
	e.MustFail("denied", "build", map[string]any{"script": "true"}, "sh is not granted")
}

func TestBuildUpdateCommand(t *testing.T) {
	e := recipetest.New(t)
	opts := map[string]any{"command": "echo install >> log", "update-command": "echo update >> log", "location": "work"}
	e.MustInstall("p", "build", opts)
	if out := e.Update("p", "build", opts); out.Error != "" {
		t.Fatal(out.Error)
	}
	if got := e.ReadFile(e.Path("work", "log")); got != "install\nupdate\n" {
		t.Fatalf("log %q", got)
	}
}

// source returns a .tar.gz of a tiny autotools-like project whose
// configure writes a Makefile installing a script under PREFIX/bin.
func source(t *testing.T) []byte {
	t.Helper()
	files := map[string]string{
		"hello-1.0/configure": `#!/bin/sh
prefix=/usr/local
for a in "$@"; do case "$a" in --prefix=*) prefix="${a#--prefix=}";; --with-greeting=*) greeting="${a#--with-greeting=}";; esac; done
printf 'PREFIX=%s\nGREETING=%s\n' "$prefix" "$greeting" > Makefile
cat Makefile.in >> Makefile
`,
		"hello-1.0/Makefile.in": "all:\n\tprintf '#!/bin/sh\\necho $(GREETING)\\n' > hello\n\ninstall: all\n\tmkdir -p $(PREFIX)/bin\n\tcp hello $(PREFIX)/bin/hello\n\tchmod 755 $(PREFIX)/bin/hello\n",
	}
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, name := range []string{"hello-1.0/configure", "hello-1.0/Makefile.in"} {
		mode := int64(0o644)
		if strings.HasSuffix(name, "configure") {
			mode = 0o755
		}
		tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(files[name])), Typeflag: tar.TypeReg})
		tw.Write([]byte(files[name]))
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

func TestCMMI(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed")
	}
	e := recipetest.New(t).AsSoftware()
	data := source(t)
	arc := filepath.Join(e.Context.ProfileDir, "hello-1.0.tar.gz")
	e.WriteFile(arc, string(data))
	sum := sha256.Sum256(data)
	patch := "--- Makefile.in\n+++ Makefile.in\n@@ -1,2 +1,2 @@\n all:\n-\tprintf '#!/bin/sh\\necho $(GREETING)\\n' > hello\n+\tprintf '#!/bin/sh\\necho $(GREETING)!\\n' > hello\n"
	e.WriteFile(filepath.Join(e.Context.ProfileDir, "greet.patch"), patch)
	patchSum := md5.Sum([]byte(patch))
	out := e.MustInstall("hello", "cmmi", map[string]any{
		"url":               "hello-1.0.tar.gz",
		"sha256":            hex.EncodeToString(sum[:]),
		"configure-options": "--with-greeting=bonjour",
		"patches":           "greet.patch#" + hex.EncodeToString(patchSum[:]),
		// %(location)s is the part's option, %% a literal %.
		"post-install": "test -x \"%(location)s/bin/hello\" && echo '100%%' > %(location)s/done",
		"pre-build":    "echo pre-build >> %(location)s/order",
		"pre-install":  "echo pre-install >> %(location)s/order",
		"environment":  "PATH=%(PATH)s:/opt/nowhere\nRATIO=50%%",
		"shared":       "true",
	})
	loc := e.Path("parts", "hello")
	if out.Outputs["location"] != loc || out.Installed[0] != loc || out.Outputs["compile-directory"] != loc+"/.build" {
		t.Fatalf("result %+v", out)
	}
	got, err := exec.Command(filepath.Join(loc, "bin", "hello")).Output()
	if err != nil || string(got) != "bonjour!\n" {
		t.Fatalf("built program printed %q, %v", got, err)
	}
	if e.ReadFile(filepath.Join(loc, "done")) != "100%\n" || e.ReadFile(filepath.Join(loc, "order")) != "pre-build\npre-install\n" {
		t.Fatal("pre-build, pre-install or post-install did not run as expected")
	}
	if _, err := os.Stat(loc + "/.build"); !os.IsNotExist(err) {
		t.Fatal("compile directory left behind")
	}
	e.MustFail("badsum", "cmmi", map[string]any{"url": "hello-1.0.tar.gz", "sha256": hex.EncodeToString(sum[:]), "patches": "greet.patch#00000000000000000000000000000000"}, "md5sum mismatch")
	e.MustFail("badfmt", "cmmi", map[string]any{"url": "hello-1.0.tar.gz", "sha256": hex.EncodeToString(sum[:]), "pre-configure": "echo 100%"}, "write %% for a literal %")
	e.MustFail("nokey", "cmmi", map[string]any{"url": "hello-1.0.tar.gz", "sha256": hex.EncodeToString(sum[:]), "pre-configure": "echo %(nope)s"}, `no option "nope"`)

	// From a source directory, built in place: a configure-command other
	// than ./configure gets prefix=PREFIX on make install; the prefix may
	// name @@LOCATION@@.
	srcDir := filepath.Join(e.Context.ProfileDir, "src")
	e.WriteFile(filepath.Join(srcDir, "Makefile"), "all:\n\ttrue\ninstall:\n\tmkdir -p $(prefix)/share && echo x > $(prefix)/share/x\n")
	out = e.MustInstall("raw", "cmmi", map[string]any{"path": srcDir, "configure-command": "true", "prefix": "@@LOCATION@@/usr",
		"promises": e.Path("parts", "raw", "usr", "share", "x") + "\n" + e.Path("nothere")})
	if e.ReadFile(e.Path("parts", "raw", "usr", "share", "x")) != "x\n" || out.Outputs["prefix"] != e.Path("parts", "raw", "usr") {
		t.Fatalf("path build: %+v", out)
	}
	if len(out.Messages) == 0 || !strings.Contains(strings.Join(out.Messages, "\n"), "could not find promise "+e.Path("nothere")) {
		t.Fatalf("missing promise not reported: %v", out.Messages)
	}
	// An empty configure-command is ./configure, as in slapos.recipe.cmmi.
	e.MustFail("empty", "cmmi", map[string]any{"path": srcDir, "configure-command": ""}, "./configure: not found")
	e.MustFail("broken", "cmmi", map[string]any{"path": srcDir, "configure-command": "true", "make-targets": "nosuchtarget"}, "make install", "exited with status")
}

func TestCMMIHooksAndShebang(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is not installed")
	}
	e := recipetest.New(t).AsSoftware()
	srcDir := filepath.Join(e.Context.ProfileDir, "src")
	long := "#!/" + strings.Repeat("x", 140) + "/python\nprint(1)\n"
	e.WriteFile(filepath.Join(srcDir, "Makefile"), "all:\n\techo built > built\ninstall:\n\tmkdir -p $(prefix)/bin && cp built $(prefix)/\n\tprintf '"+strings.ReplaceAll(long, "\n", "\\n")+"' > $(prefix)/bin/long && chmod 755 $(prefix)/bin/long\n")
	hooks := `import os
def pre(options, buildout, environ):
    open('pre', 'w').write(options['location'] + ' ' + environ['GREETING'] + ' ' + buildout['other']['x'])
def post(options, buildout):
    assert os.path.exists('built')
    open(os.path.join(options['prefix'], 'post'), 'w').write(open('pre').read())
`
	e.WriteFile(filepath.Join(e.Context.ProfileDir, "hooks.py"), hooks)
	sum := md5.Sum([]byte(hooks))
	out := e.MustInstall("h", "cmmi", map[string]any{
		"path": srcDir, "configure-command": ":",
		"pre-configure-hook": "hooks.py#" + hex.EncodeToString(sum[:]) + ":pre",
		"post-make-hook":     "hooks.py:post",
		"environment":        "GREETING=hi",
		"buildout":           map[string]any{"other": map[string]any{"x": "from-other"}},
	})
	loc := out.Outputs["location"].(string)
	if got := e.ReadFile(filepath.Join(loc, "post")); got != loc+" hi from-other" {
		t.Fatalf("hooks wrote %q", got)
	}
	// The long #! line is moved aside and replaced by a launcher.
	if e.ReadFile(filepath.Join(loc, "bin", "long.shebang")) != long || !strings.HasPrefix(e.ReadFile(filepath.Join(loc, "bin", "long")), "#!/bin/sh -e\n") {
		t.Fatal("long shebang not fixed")
	}
	e.MustFail("hookfail", "cmmi", map[string]any{"path": srcDir, "configure-command": ":", "pre-make-hook": "hooks.py:nope"}, "pre-make-hook", "AttributeError")
	e.Host.AllowExec = []string{"sh"}
	e.MustFail("denied", "cmmi", map[string]any{"path": srcDir, "configure-command": ":", "pre-make-hook": "hooks.py:pre"}, `allow_exec = ["python3"]`)
}

func TestPythonBuild(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is not installed")
	}
	e := recipetest.New(t).AsSoftware()
	arc := filepath.Join(e.Context.ProfileDir, "hello-1.0.tar.gz")
	data := source(t)
	e.WriteFile(arc, string(data))
	sum := md5.Sum(data)
	out := e.MustInstall("py", "build", map[string]any{
		"url":    arc,
		"md5sum": hex.EncodeToString(sum[:]),
		"init":   "options['arch'] = 'x' + self.buildout['python']['version']\noptions['greeting'] = 'hi'",
		"install": `import os
extract_dir = self.extract(self.download())
self.copyTree(guessworkdir(extract_dir), location)
call(['sh', '-c', 'echo "$G" > made'], cwd=location, env=dict(self.environ))
`,
		"environment":    "G=%(HOME)s/x",
		"buildout":       map[string]any{"python": map[string]any{"version": "3.11"}},
		"slapos_promise": "file:configure\ndirectory:.",
	})
	loc := e.Path("parts", "py")
	if out.Outputs["arch"] != "x3.11" || out.Outputs["location"] != loc || len(out.Installed) != 1 || out.Installed[0] != loc {
		t.Fatalf("result %+v", out)
	}
	if _, err := os.Stat(filepath.Join(loc, "configure")); err != nil {
		t.Fatal("copyTree did not copy the unpacked tree")
	}
	if got := e.ReadFile(filepath.Join(loc, "made")); !strings.HasSuffix(got, "/x\n") || got == "/x\n" {
		t.Fatalf("environment not applied: %q", got)
	}
	// Installing again (an update) starts from an empty location.
	if out := e.Update("py", "build", map[string]any{"url": arc, "md5sum": hex.EncodeToString(sum[:]), "install": "self.copyTree(guessworkdir(self.extract(self.download())), location)"}); out.Error != "" {
		t.Fatal(out.Error)
	}
	// init alone: options become outputs, nothing is installed.
	out = e.MustInstall("init", "build", map[string]any{"init": "import platform\noptions['machine'] = platform.machine() or 'unknown'"})
	if out.Outputs["machine"] == "" || len(out.Installed) != 0 {
		t.Fatalf("init only: %+v", out)
	}
	// An option holding a whole section's dict (slapparameter-dict =
	// ${slap-configuration:configuration}) reaches the code as a dict, and
	// the code may set lists and numbers, as SlapOS's buildout allows.
	out = e.MustInstall("dict", "build", map[string]any{
		"slapparameter-dict": map[string]any{"conf-text": "<source> port 24224 </source>", "n": 2.0},
		"init":               "import re\noptions['port-list'] = re.findall(r'port (\\d+)', options['slapparameter-dict'].get('conf-text'))\noptions['count'] = 1 + int(options['slapparameter-dict']['n'])",
	})
	if pl, _ := out.Outputs["port-list"].([]any); len(pl) != 1 || pl[0] != "24224" || out.Outputs["count"] != 3.0 {
		t.Fatalf("dict option: %+v", out.Outputs)
	}
	e.MustFail("object", "build", map[string]any{"init": "options['x'] = object()"}, "cannot be an option value")
	// Errors: a traceback names the part and line; a UserError is shown as is.
	e.MustFail("boom", "build", map[string]any{"install": "import os\nos.mkdir(location)\nprint(1 / 0.)"}, "ZeroDivisionError", `File "boom", line 3`)
	if _, err := os.Stat(e.Path("parts", "boom")); !os.IsNotExist(err) {
		t.Fatal("a failed install left its location")
	}
	e.MustFail("user", "build", map[string]any{"init": "from zc.buildout import UserError\nraise UserError('no gcc')"}, "no gcc")
	e.MustFail("nocreate", "build", map[string]any{"install": "pass"}, "was not created")
	e.MustFail("missing", "build", map[string]any{"init": "self.buildout['gcc-4']['location']"}, "section 'gcc-4' was not passed")
	e.MustFail("badmd5", "build", map[string]any{"url": arc, "md5sum": "00000000000000000000000000000000", "install": "self.download()"}, "MD5 checksum mismatch")
	e.MustFail("both", "build", map[string]any{"install": "pass", "command": "true"}, "not both")
	e.Host.AllowExec = []string{"sh"}
	e.MustFail("denied", "build", map[string]any{"init": "pass"}, `allow_exec = ["python3"]`)
}

func TestPyFormat(t *testing.T) {
	vals := map[string]string{"location": "/l", "a b": "x"}
	for in, want := range map[string]string{
		"plain":                 "plain",
		"%(location)s/bin":      "/l/bin",
		"100%% %(location)s%%":  "100% /l%",
		"%(a b)s":               "x",
		"--prefix=%(location)s": "--prefix=/l",
	} {
		got, err := PyFormat(in, vals)
		if err != nil || got != want {
			t.Errorf("PyFormat(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"50%", "%d", "%(location)d", "%(nope)s", "%("} {
		if _, err := PyFormat(bad, vals); err == nil {
			t.Errorf("PyFormat(%q) accepted", bad)
		}
	}
}
