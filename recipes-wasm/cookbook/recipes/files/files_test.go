package files

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	recipe "github.com/slapnode/slapnode/recipes-wasm/sdk/go"
	"github.com/slapnode/slapnode/recipes-wasm/sdk/go/recipetest"
)

func TestMain(m *testing.M) {
	Register(recipe.Default())
	os.Exit(m.Run())
}

func mode(t *testing.T, p string) os.FileMode {
	t.Helper()
	st, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode()
}

func TestMkdirectory(t *testing.T) {
	e := recipetest.New(t)
	etc := e.Path("etc")
	out := e.MustInstall("dirs", "mkdirectory", map[string]any{"etc": etc, "log": e.Path("var", "log"), "label": "web-0", "mode": "0750"})
	if out.Outputs["etc"] != etc || out.Outputs["log"] != e.Path("var", "log") || out.Outputs["label"] != "web-0" {
		t.Fatalf("outputs %v", out.Outputs)
	}
	if _, err := os.Stat(e.Path("web-0")); !os.IsNotExist(err) {
		t.Fatalf("a value that is not an absolute path was created as a directory: %v", err)
	}
	if _, ok := out.Outputs["mode"]; ok {
		t.Fatal("mode published as a directory")
	}
	// SlapOS's os.makedirs(path, mode): the directory itself gets mode,
	// its missing parents the usual 0755 (Python 3).
	for _, d := range []string{etc, e.Path("var", "log")} {
		if m := mode(t, d); !m.IsDir() || m.Perm() != 0o750 {
			t.Fatalf("%s: mode %v, want a 0750 directory", d, m)
		}
	}
	if m := mode(t, e.Path("var")); !m.IsDir() || m.Perm() != 0o755 {
		t.Fatalf("parent var: mode %v, want a 0755 directory", m)
	}
	if len(out.Installed) != 0 {
		t.Fatalf("directories reported as installed (they would be deleted on uninstall): %v", out.Installed)
	}
	// Default mode 0777 less group and other write (SlapOS's 0777 under
	// a 022 umask), and idempotence: an existing directory is kept as is.
	out = e.MustInstall("more", "mkdirectory", map[string]any{"a": e.Path("srv"), "b": etc})
	if m := mode(t, e.Path("srv")); m.Perm() != 0o755 {
		t.Fatalf("default mode %v, want 0755", m)
	}
	if m := mode(t, etc); m.Perm() != 0o750 {
		t.Fatalf("existing directory changed to %v", m)
	}
	e.WriteFile(e.Path("file"), "x")
	e.MustFail("bad", "mkdirectory", map[string]any{"f": e.Path("file")}, `option "f"`, "not a directory")
	e.MustFail("bad", "mkdirectory", map[string]any{"d": e.Path("x"), "mode": "rwx"}, "not an octal file mode")
	// An unquoted HCL number 755 means octal 0755, as buildout wrote it.
	e.MustInstall("num", "mkdirectory", map[string]any{"d": e.Path("num"), "mode": 755})
	if m := mode(t, e.Path("num")); m.Perm() != 0o755 {
		t.Fatalf("mode 755 gave %v", m)
	}
}

func TestSymlink(t *testing.T) {
	e := recipetest.New(t)
	e.WriteFile(e.Path("bin", "real"), "#!/bin/sh\n")
	out := e.MustInstall("l", "symlink", map[string]any{"link": e.Path("link"), "target": e.Path("bin", "real")})
	l, err := os.Readlink(e.Path("link"))
	if err != nil || l != filepath.Join("bin", "real") {
		t.Fatalf("link -> %q, %v; want a relative link bin/real", l, err)
	}
	if out.Outputs["location"] != e.Path("link") || len(out.Installed) != 1 {
		t.Fatalf("outputs %v installed %v", out.Outputs, out.Installed)
	}
	if e.ReadFile(e.Path("link")) != "#!/bin/sh\n" {
		t.Fatal("link does not resolve")
	}
	// Re-install replaces the link; SlapOS style link-binary works too.
	e.MustInstall("l", "symlink", map[string]any{"link": e.Path("link"), "target": "elsewhere"})
	if l, _ := os.Readlink(e.Path("link")); l != "elsewhere" {
		t.Fatalf("link not replaced: %q", l)
	}
	out = e.MustInstall("bins", "symlink", map[string]any{"target-directory": e.Path("sbin"), "link-binary": e.Path("bin", "real") + "\n"})
	if l, _ := os.Readlink(e.Path("sbin", "real")); l != "../bin/real" {
		t.Fatalf("link-binary made %q", l)
	}
	e.WriteFile(e.Path("plain"), "x")
	e.MustFail("bad", "symlink", map[string]any{"link": e.Path("plain"), "target": "x"}, "is not a symbolic link")
	e.MustFail("none", "symlink", map[string]any{}, "nothing to link")
	e.Uninstall("bins", "symlink")
	if _, err := os.Lstat(e.Path("sbin", "real")); !os.IsNotExist(err) {
		t.Fatal("uninstall left the link")
	}
}

func TestCopy(t *testing.T) {
	e := recipetest.New(t)
	e.WriteFile(e.Path("src", "a"), "A")
	e.WriteFile(e.Path("src", "sub", "b"), "B")
	if err := os.Symlink("a", e.Path("src", "l")); err != nil {
		t.Fatal(err)
	}
	out := e.MustInstall("c", "copy", map[string]any{"source": e.Path("src"), "destination": e.Path("dst")})
	if e.ReadFile(e.Path("dst", "sub", "b")) != "B" || e.ReadFile(e.Path("dst", "l")) != "A" {
		t.Fatal("tree not copied")
	}
	if out.Installed[0] != e.Path("dst") {
		t.Fatalf("installed %v", out.Installed)
	}
	e.MustInstall("f", "copy", map[string]any{"source": e.Path("src", "a"), "destination": e.Path("one", "a"), "mode": "0600"})
	if m := mode(t, e.Path("one", "a")); m.Perm() != 0o600 {
		t.Fatalf("mode %v", m)
	}
	e.MustFail("missing", "copy", map[string]any{"source": e.Path("nope"), "destination": e.Path("x")}, "source:")
}

func TestWriteFileAndJSON(t *testing.T) {
	e := recipetest.New(t)
	out := e.MustInstall("w", "write-file", map[string]any{"output": "etc/motd", "content": "hello\n", "mode": "0600"})
	if p := e.Path("etc", "motd"); e.ReadFile(p) != "hello\n" || out.Outputs["location"] != p || out.Installed[0] != p {
		t.Fatalf("write-file: %v", out)
	}
	if m := mode(t, e.Path("etc", "motd")); m.Perm() != 0o600 {
		t.Fatalf("mode %v", m)
	}
	e.MustFail("w2", "write-file", map[string]any{"output": "x"}, `option "content" is required`)

	e.MustInstall("j", "json", map[string]any{"output": "etc/a.json", "data": map[string]any{"port": 8080, "hosts": []any{"a"}}})
	var got map[string]any
	if err := json.Unmarshal([]byte(e.ReadFile(e.Path("etc", "a.json"))), &got); err != nil || got["port"] != float64(8080) {
		t.Fatalf("json data: %v %v", got, err)
	}
	e.MustInstall("j2", "json", map[string]any{"path": "etc/b.json", "name": "x", "indent": 0})
	if s := e.ReadFile(e.Path("etc", "b.json")); s != "{\"name\":\"x\"}\n" {
		t.Fatalf("json from options: %q", s)
	}
	e.Uninstall("j2", "json")
	if _, err := os.Stat(e.Path("etc", "b.json")); !os.IsNotExist(err) {
		t.Fatal("uninstall left the file")
	}
}
