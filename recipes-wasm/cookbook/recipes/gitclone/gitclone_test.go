package gitclone

import (
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

// repo makes a local repository: two commits on master (the first tagged
// v1), a branch "feature" with a third, and a subdirectory for sparse
// checkouts.
func repo(t *testing.T) (dir string, first, second string) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	dir = filepath.Join(t.TempDir(), "repo")
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.org", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.org")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	write := func(name, content string) {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(dir, 0o755)
	git("init", "-q", "-b", "master")
	write("README", "one\n")
	write("sub/only", "sparse\n")
	git("add", ".")
	git("commit", "-qm", "one")
	git("tag", "v1")
	first = git("rev-parse", "HEAD")
	write("README", "two\n")
	git("commit", "-qam", "two")
	second = git("rev-parse", "HEAD")
	git("checkout", "-qb", "feature")
	write("README", "feature\n")
	git("commit", "-qam", "feature")
	git("checkout", "-q", "master")
	return dir, first, second
}

func TestGitClone(t *testing.T) {
	src, first, second := repo(t)
	e := recipetest.New(t).AsSoftware()
	out := e.MustInstall("clone", "gitclone", map[string]any{"repository": src, "git-executable": "git"})
	loc := e.Path("parts", "clone")
	if out.Outputs["location"] != loc || out.Outputs["commit"] != second || out.Installed[0] != loc {
		t.Fatalf("result %+v", out)
	}
	if e.ReadFile(filepath.Join(loc, "README")) != "two\n" {
		t.Fatal("not the master branch")
	}
	e.MustInstall("b", "gitclone", map[string]any{"repository": src, "branch": "feature", "revision": ""})
	if e.ReadFile(e.Path("parts", "b", "README")) != "feature\n" {
		t.Fatal("branch not checked out")
	}
	// revision wins over branch; a tag is a revision too.
	out = e.MustInstall("r", "gitclone", map[string]any{"repository": src, "branch": "feature", "revision": "v1", "location": "tagged"})
	if out.Outputs["commit"] != first || e.ReadFile(e.Path("tagged", "README")) != "one\n" {
		t.Fatalf("revision: %+v", out)
	}
	out = e.MustInstall("s", "gitclone", map[string]any{"repository": src, "sparse-checkout": "/sub/", "depth": int64(1), "ignore-cloning-submodules": "true"})
	if _, err := os.Stat(e.Path("parts", "s", "README")); !os.IsNotExist(err) {
		t.Fatal("sparse checkout has README")
	}
	if e.ReadFile(e.Path("parts", "s", "sub", "only")) != "sparse\n" {
		t.Fatal("sparse checkout lacks sub/only")
	}
	// Installing again replaces the working copy.
	os.WriteFile(filepath.Join(loc, "local"), []byte("x"), 0o644)
	if out := e.Update("clone", "gitclone", map[string]any{"repository": src, "revision": first}); out.Error != "" || out.Outputs["commit"] != first {
		t.Fatalf("update: %+v", out)
	}
	if _, err := os.Stat(filepath.Join(loc, "local")); !os.IsNotExist(err) {
		t.Fatal("a new clone kept a stray file")
	}
	// develop: the working copy is the developer's, never reset nor removed.
	out = e.MustInstall("dev", "gitclone", map[string]any{"repository": src, "develop": "true"})
	if len(out.Installed) != 0 {
		t.Fatalf("develop working copy reported as installed: %v", out.Installed)
	}
	os.WriteFile(e.Path("parts", "dev", "README"), []byte("mine\n"), 0o644)
	e.MustInstall("dev", "gitclone", map[string]any{"repository": src, "develop": "true", "branch": "feature"})
	if e.ReadFile(e.Path("parts", "dev", "README")) != "mine\n" {
		t.Fatal("develop working copy was reset")
	}
	e.MustFail("bad", "gitclone", map[string]any{"repository": filepath.Join(src, "nope")}, "cloning", "exited with status")
	e.MustFail("badrev", "gitclone", map[string]any{"repository": src, "revision": "0000000"}, "checking out revision 0000000")
	if _, err := os.Stat(e.Path("parts", "badrev")); !os.IsNotExist(err) {
		t.Fatal("failed clone left behind")
	}
	e.Host.AllowExec = []string{"sh"}
	e.MustFail("denied", "gitclone", map[string]any{"repository": src}, `allow_exec = ["git"]`)
	// A git given by path runs through sh.
	gitPath, _ := exec.LookPath("git")
	e.MustInstall("path", "gitclone", map[string]any{"repository": src, "git-executable": gitPath})
}
