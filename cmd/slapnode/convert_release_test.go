package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slapnode/slapnode/partition"
	"github.com/slapnode/slapnode/runtime/builtin"
	"github.com/slapnode/slapnode/runtime/wasmhost"
)

// copyTree copies the fixture so that the test converts and builds outside
// the repository.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if info.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, info.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The fixture release testdata/buildout-release, written as SlapOS writes
// releases (slapos.recipe.cmmi from a local tarball with md5sum, a patch,
// a hook; gitclone of a local repository; zc.recipe.egg:develop and
// zc.recipe.egg; slapos.recipe.build Python code), is converted, planned
// offline, and built by the real cookbook with the grants the converter
// wrote; a second apply changes nothing.
func TestConvertedReleaseBuilds(t *testing.T) {
	if _, err := builtin.Module("cookbook"); err != nil {
		if os.Getenv("SLAPNODE_REQUIRE_WASM") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	// The host runs commands from /usr/local/bin, /usr/bin and /bin only.
	t.Setenv("PATH", strings.Join(wasmhost.DefaultPathDirs, ":"))
	for _, tool := range []string{"git", "make", "patch", "sh"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	if err := exec.Command("python3", "-c", "import setuptools, pip").Run(); err != nil {
		t.Skip("python3 with setuptools and pip is not installed")
	}
	dir := filepath.Join(t.TempDir(), "release")
	copyTree(t, filepath.Join("testdata", "buildout-release"), dir)
	// The egg's sources are a git repository, as SlapOS releases clone them.
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = filepath.Join(dir, "greet")
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.org", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.org")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	git("init", "-q", "-b", "master")
	git("add", ".")
	git("commit", "-qm", "greet")
	git("clone", "-q", "--bare", ".", filepath.Join(dir, "greet.git"))

	cfg := filepath.Join(dir, "software.cfg")
	code, out, errs := convertCLI(t, "--check", "--flatten", cfg)
	if code != exitOK || !strings.Contains(out, "0 warnings") {
		t.Fatalf("convert --check: code %d\n%s%s", code, out, errs)
	}
	if code, _, errs = convertCLI(t, "--flatten", cfg); code != exitOK {
		t.Fatalf("convert: code %d: %s", code, errs)
	}
	hcl := filepath.Join(dir, "software.hcl")
	b, err := os.ReadFile(hcl)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(strings.Fields(string(b)), " "), `allow_exec = ["git", "python3", "sh"]`) {
		t.Fatalf("the converted release does not grant what its recipes need:\n%s", b)
	}

	// slapnode plan says what runs outside the sandbox, and builds nothing.
	var pout, perr bytes.Buffer
	if code := run([]string{"plan", "--root", t.TempDir(), hcl}, strings.NewReader(""), &pout, &perr); code != exitOK ||
		!strings.Contains(pout.String(), "module cookbook may run on the host, outside the WebAssembly sandbox: git, python3, sh") ||
		!strings.Contains(pout.String(), "plan: 5 to install") {
		t.Fatalf("slapnode plan: code %d\n%s%s", code, pout.String(), perr.String())
	}

	root := t.TempDir()
	h, err := wasmhost.New(context.Background(), wasmhost.Config{
		CacheDir: filepath.Join(os.TempDir(), "slapnode-test-wazero-cache"), DownloadDir: filepath.Join(root, "cache", "download"),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(context.Background())
	e := &partition.Engine{Root: root, NodeID: "test", Host: h}
	ctx := context.Background()
	sw, err := e.LoadSoftware(hcl)
	if err != nil {
		t.Fatal(err)
	}
	// Plan downloads and builds nothing.
	if err := e.InstallSoftware(ctx, sw, false, true); err != nil {
		t.Fatal(err)
	}
	if n := sw.Report.Counts[partition.Install]; n != 5 {
		t.Errorf("plan: %d parts to install, want 5: %+v", n, sw.Report.Actions)
	}
	if _, err := os.Stat(sw.Path); !os.IsNotExist(err) {
		t.Errorf("plan made the software directory: %v", err)
	}
	if err := e.InstallSoftware(ctx, sw, false, false); err != nil {
		t.Fatal(err)
	}
	run := func(path string) string {
		t.Helper()
		out, err := exec.Command(path).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", path, err, out)
		}
		return string(out)
	}
	// cmmi: configured, patched, built with the environment; the hook ran.
	if got := run(filepath.Join(sw.Path, "parts", "hello", "bin", "hello")); got != "bonjour!\n" {
		t.Errorf("hello printed %q", got)
	}
	if b, err := os.ReadFile(filepath.Join(sw.Path, "parts", "hello", "share", "hook")); err != nil || string(b) != "mark !\n" {
		t.Errorf("post-make-hook: %q, %v", b, err)
	}
	// gitclone + zc.recipe.egg:develop + zc.recipe.egg: the console script.
	if got := run(filepath.Join(sw.Path, "bin", "greet")); got != "greetings from the greeter\n" {
		t.Errorf("greet printed %q", got)
	}
	// slapos.recipe.build: init's option reached install.
	if b, err := os.ReadFile(filepath.Join(sw.Path, "parts", "info", "greeting")); err != nil || string(b) != "bonjour!\n" {
		t.Errorf("info: %q, %v", b, err)
	}
	// Applied again: nothing to do.
	sw.Recheck = true
	if err := e.InstallSoftware(ctx, sw, false, false); err != nil {
		t.Fatal(err)
	}
	if n := sw.Report.Counts[partition.Install] + sw.Report.Counts[partition.Reinstall]; n != 0 {
		t.Errorf("second apply installed %d parts: %+v", n, sw.Report.Actions)
	}
}

// Through the real host: Python code, git and pip run only when the
// module block grants them, and the error says what to grant.
func TestConvertedRecipesNeedGrants(t *testing.T) {
	if _, err := builtin.Module("cookbook"); err != nil {
		if os.Getenv("SLAPNODE_REQUIRE_WASM") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	root := t.TempDir()
	h, err := wasmhost.New(context.Background(), wasmhost.Config{
		CacheDir: filepath.Join(os.TempDir(), "slapnode-test-wazero-cache"), DownloadDir: filepath.Join(root, "cache", "download"),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(context.Background())
	e := &partition.Engine{Root: root, NodeID: "test", Host: h}
	for name, c := range map[string]struct{ part, want string }{
		"python": {`recipe = "cookbook:build"` + "\n" + `init = "options['x'] = '1'"`, `allow_exec = ["python3"]`},
		"git":    {`recipe = "cookbook:gitclone"` + "\n" + `repository = "/nowhere"`, `allow_exec = ["git"]`},
		"egg":    {`recipe = "cookbook:egg"` + "\n" + `eggs = "x"` + "\n" + `offline = true`, `allow_exec = ["python3"]`},
		"hook":   {`recipe = "cookbook:cmmi"` + "\n" + `path = "."` + "\n" + `configure-command = "true"` + "\n" + `make-binary = "true"` + "\n" + `post-make-hook = "h.py:f"`, `allow_exec = ["python3"]`},
	} {
		dir := filepath.Join(t.TempDir(), name)
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, "h.py"), []byte("def f(o, b): pass\n"), 0o644)
		src := "software \"" + name + "\" {}\nmodule \"cookbook\" {\n  source = \"builtin:cookbook\"\n  allow_exec = [\"sh\"]\n}\npart \"p\" {\n" + c.part + "\n}\n"
		p := filepath.Join(dir, "software.hcl")
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		sw, err := e.LoadSoftware(p)
		if err != nil {
			t.Fatal(err)
		}
		err = e.InstallSoftware(context.Background(), sw, false, false)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %s", name, err, c.want)
		}
	}
}
