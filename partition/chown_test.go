package partition

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestChownTreeStaysInside(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("changing owners needs root")
	}
	dir, outside := t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(dir, "etc", "sub"), 0o700)
	os.WriteFile(filepath.Join(dir, "etc", "sub", "f"), []byte("x"), 0o600)
	os.MkdirAll(filepath.Join(dir, ".slapnode"), 0o700)
	os.WriteFile(filepath.Join(outside, "victim"), []byte("x"), 0o600)
	os.Symlink(outside, filepath.Join(dir, "escape"))
	os.Symlink(filepath.Join(outside, "victim"), filepath.Join(dir, "etc", "link"))
	if _, err := chownTree(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{".", "etc", "etc/sub", "etc/sub/f", "escape", "etc/link"} {
		st, err := os.Lstat(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		if uid, _ := ownerOf(st); uid != 65534 {
			t.Errorf("%s: owner %d", p, uid)
		}
	}
	for _, p := range []string{filepath.Join(dir, ".slapnode"), outside, filepath.Join(outside, "victim")} {
		st, _ := os.Lstat(p)
		if uid, _ := ownerOf(st); uid != 0 {
			t.Errorf("%s changed owner to %d", p, uid)
		}
	}
}

func TestShareTree(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "parts", "bin"), 0o700)
	os.WriteFile(filepath.Join(dir, "parts", "bin", "tool"), []byte("x"), 0o700)
	os.WriteFile(filepath.Join(dir, "parts", "data"), []byte("x"), 0o600)
	if _, err := shareTree(dir); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{"parts": 0o755, "parts/bin": 0o755, "parts/bin/tool": 0o755, "parts/data": 0o644} {
		st, _ := os.Stat(filepath.Join(dir, p))
		if st.Mode().Perm() != want {
			t.Errorf("%s: %v, want %v", p, st.Mode().Perm(), want)
		}
	}
}

// Finding #8: a file of another owner hard-linked into the partition is
// not given to the partition user; a file a recipe linked twice inside the
// partition is.
func TestChownTreeSkipsHardLinksFromOutside(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("changing owners needs root")
	}
	dir, outside := t.TempDir(), t.TempDir()
	victim := filepath.Join(outside, "victim")
	os.WriteFile(victim, []byte("x"), 0o600)
	os.MkdirAll(filepath.Join(dir, "etc"), 0o755)
	if err := os.Link(victim, filepath.Join(dir, "etc", "x")); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "a"), []byte("x"), 0o600)
	if err := os.Link(filepath.Join(dir, "a"), filepath.Join(dir, "etc", "a2")); err != nil {
		t.Fatal(err)
	}
	skipped, err := chownTree(dir, 65534, 65534)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Lstat(victim)
	if uid, _ := ownerOf(st); uid != 0 {
		t.Fatalf("the victim outside became uid %d's", uid)
	}
	if len(skipped) != 1 || !strings.Contains(skipped[0], "etc/x") || !strings.Contains(skipped[0], "hard link") {
		t.Fatalf("skipped: %q", skipped)
	}
	st, _ = os.Lstat(filepath.Join(dir, "a"))
	if uid, _ := ownerOf(st); uid != 65534 {
		t.Fatalf("a file linked twice inside stayed uid %d's", uid)
	}
}

// What a part makes in a partition is the partition user's as soon as the
// part is installed: a later part's command, run as that user, writes into
// the directories an earlier part made (root-owned 0700 until the apply's
// final chown otherwise).
func TestPartPathsGivenAtOnce(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("running commands as another user needs root")
	}
	e := newEngine(t)
	for d := e.Root; d != "/" && d != "."; d = filepath.Dir(d) {
		os.Chmod(d, 0o755) // the partition user reaches its partition
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "instance.hcl"), []byte(`
part "dirs" {
  recipe = "cookbook:mkdirectory"
  data   = "${partition.path}/srv/data"
}
part "write" {
  recipe  = "cookbook:build"
  script  = "id -u > ${part.dirs.data}/by && touch ${part.dirs.data}/ok"
  location = "${partition.path}/parts/write"
}
module "cookbook" {
  source     = "builtin:cookbook"
  allow_exec = ["sh"]
}
`), 0o644)
	os.WriteFile(filepath.Join(dir, "software.hcl"), []byte("software \"x\" {\n  version = \"1\"\n}\ninstance \"default\" {\n  profile = \"instance.hcl\"\n}\n"), 0o644)
	s, err := e.LoadSoftware(filepath.Join(dir, "software.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.InstallSoftware(context.Background(), s, false, false); err != nil {
		t.Fatal(err)
	}
	part := Partition{ID: "slappart0", Path: filepath.Join(e.Root, "instance", "slappart0"),
		Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	os.MkdirAll(filepath.Dir(part.Path), 0o755) // as slapnode node format makes it
	if _, err := e.Instantiate(context.Background(), &InstanceRequest{Software: s, Partition: part}, false); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(part.Path, "srv", "data", "by")); err != nil || strings.TrimSpace(string(b)) != "65534" {
		t.Fatalf("the command did not write as the partition user: %q %v", b, err)
	}
}

// chownPaths gives a part's paths, their parents under the partition and
// what its directories hold, never following a link.
func TestChownPathsStaysInside(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("changing owners needs root")
	}
	dir, outside := t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(dir, "srv", "data", "sub"), 0o700)
	os.WriteFile(filepath.Join(dir, "srv", "data", "sub", "f"), []byte("x"), 0o600)
	os.MkdirAll(filepath.Join(dir, "other"), 0o700)
	os.Symlink(outside, filepath.Join(dir, "escape"))
	if _, err := chownPaths(dir, []string{filepath.Join(dir, "srv", "data"), filepath.Join(dir, "escape", "x"), outside, "/etc"}, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]uint32{"srv": 65534, "srv/data": 65534, "srv/data/sub/f": 65534, "other": 0, "escape": 65534} {
		st, err := os.Lstat(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		if uid, _ := ownerOf(st); uid != want {
			t.Errorf("%s: owner %d, want %d", p, uid, want)
		}
	}
	if st, _ := os.Lstat(outside); st != nil {
		if uid, _ := ownerOf(st); uid != 0 {
			t.Errorf("outside changed owner to %d", uid)
		}
	}
}
