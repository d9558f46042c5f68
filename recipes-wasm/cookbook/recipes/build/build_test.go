package build

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
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
	e.WriteFile(filepath.Join(e.Context.ProfileDir, "greet.patch"), "--- Makefile.in\n+++ Makefile.in\n@@ -1,2 +1,2 @@\n all:\n-\tprintf '#!/bin/sh\\necho $(GREETING)\\n' > hello\n+\tprintf '#!/bin/sh\\necho $(GREETING)!\\n' > hello\n")
	out := e.MustInstall("hello", "cmmi", map[string]any{
		"url":               "hello-1.0.tar.gz",
		"sha256":            hex.EncodeToString(sum[:]),
		"configure-options": "--with-greeting=bonjour",
		"patches":           []any{"greet.patch"},
		"post-install":      "test -x \"$location/bin/hello\"",
	})
	loc := e.Path("parts", "hello")
	if out.Outputs["location"] != loc || out.Installed[0] != loc {
		t.Fatalf("result %+v", out)
	}
	got, err := exec.Command(filepath.Join(loc, "bin", "hello")).Output()
	if err != nil || string(got) != "bonjour!\n" {
		t.Fatalf("built program printed %q, %v", got, err)
	}
	if _, err := os.Stat(loc + "__compile__"); !os.IsNotExist(err) {
		t.Fatal("compile directory left behind")
	}

	// From an unpacked source directory, with a separate prefix and no configure.
	srcDir := filepath.Join(e.Context.ProfileDir, "src")
	e.WriteFile(filepath.Join(srcDir, "Makefile"), "install:\n\tmkdir -p $(DESTDIR)/share && echo x > $(DESTDIR)/share/x\n")
	out = e.MustInstall("raw", "cmmi", map[string]any{"path": srcDir, "configure-command": "", "make-options": []any{"DESTDIR=" + e.Path("opt")}, "prefix": "opt"})
	if e.ReadFile(e.Path("opt", "share", "x")) != "x\n" || out.Outputs["prefix"] != e.Path("opt") {
		t.Fatalf("path build: %+v", out)
	}
	e.MustFail("broken", "cmmi", map[string]any{"path": srcDir, "configure-command": "", "make-targets": "nosuchtarget"}, "exited with status")
}
