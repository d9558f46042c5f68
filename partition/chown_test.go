package partition

import (
	"os"
	"path/filepath"
	"strings"
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
	if err := shareTree(dir); err != nil {
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
