package nofollow

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"golang.org/x/sys/unix"
)

// both runs a test with openat2 and with the openat walk that replaces it
// on kernels without openat2.
func both(t *testing.T, f func(t *testing.T)) {
	t.Run("openat2", f)
	t.Run("walk", func(t *testing.T) {
		noOpenat2.Store(true)
		t.Cleanup(func() { noOpenat2.Store(false) })
		f(t)
	})
}

// fixture is a directory "part" holding links out of it, and a victim
// directory beside it.
func fixture(t *testing.T) (part, victim string, d *Dir) {
	t.Helper()
	base := t.TempDir()
	part, victim = filepath.Join(base, "part"), filepath.Join(base, "victim")
	for _, dir := range []string{part + "/etc", part + "/tree/sub", victim + "/dir"} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{victim + "/file", victim + "/dir/index.html", part + "/tree/sub/f", part + "/etc/own"} {
		if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for link, to := range map[string]string{
		part + "/l":           victim,
		part + "/tree/out":    victim + "/dir",
		part + "/tree/sub/fl": victim + "/file",
		part + "/self":        ".",
		part + "/tree/up":     "..",
	} {
		if err := os.Symlink(to, link); err != nil {
			t.Fatal(err)
		}
	}
	d, err := Open(part)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return part, victim, d
}

func intact(t *testing.T, victim string) {
	t.Helper()
	for _, f := range []string{victim + "/file", victim + "/dir/index.html"} {
		if b, err := os.ReadFile(f); err != nil || string(b) != "x" {
			t.Fatalf("victim %s damaged: %q %v", f, b, err)
		}
	}
}

func TestRemoveAllNeverFollows(t *testing.T) {
	both(t, func(t *testing.T) {
		part, victim, d := fixture(t)
		// Through a link: refused, nothing removed.
		for _, rel := range []string{"l/dir", "l/file", "self/etc/own", "tree/out/index.html"} {
			if err := d.RemoveAll(rel); !errors.Is(err, ErrSymlink) {
				t.Errorf("RemoveAll(%s) = %v, want ErrSymlink", rel, err)
			}
		}
		for _, rel := range []string{"../victim/file", "/abs"} {
			if err := d.RemoveAll(rel); !errors.Is(err, ErrEscape) {
				t.Errorf("RemoveAll(%s) = %v, want ErrEscape", rel, err)
			}
		}
		if _, err := os.Stat(part + "/etc/own"); err != nil {
			t.Fatal(err)
		}
		// A tree holding links: the links go, not their targets.
		if err := d.RemoveAll("tree"); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Lstat(part + "/tree"); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("tree left: %v", err)
		}
		// A link itself is removed, not followed.
		if err := d.RemoveAll("l"); err != nil {
			t.Fatal(err)
		}
		if err := d.RemoveAll("missing/x"); err != nil {
			t.Fatalf("missing: %v", err)
		}
		intact(t, victim)
	})
}

func TestOpenAndMkdirNeverFollow(t *testing.T) {
	both(t, func(t *testing.T) {
		part, victim, d := fixture(t)
		if _, err := d.OpenFile("l/file", os.O_WRONLY|os.O_TRUNC, 0); !errors.Is(err, ErrSymlink) {
			t.Errorf("open through a link: %v", err)
		}
		if _, err := d.OpenFile("tree/sub/fl", os.O_WRONLY|os.O_TRUNC, 0); !errors.Is(err, ErrSymlink) {
			t.Errorf("open of a link: %v", err)
		}
		if _, err := d.OpenFile("tree/sub/fl", os.O_WRONLY|os.O_CREATE, 0o600); !errors.Is(err, ErrSymlink) {
			t.Errorf("create at a link: %v", err)
		}
		if _, err := d.MkdirAll("l/new", 0o700); !errors.Is(err, ErrSymlink) {
			t.Errorf("mkdir through a link: %v", err)
		}
		if _, err := d.OpenDir("tree/out"); !errors.Is(err, ErrSymlink) {
			t.Errorf("opendir of a link: %v", err)
		}
		if _, err := d.ReadFile("tree/sub/fl", 10); !errors.Is(err, ErrSymlink) {
			t.Errorf("read of a link: %v", err)
		}
		if err := d.Chmod("tree/sub/fl", 0o777); !errors.Is(err, ErrSymlink) {
			t.Errorf("chmod of a link: %v", err)
		}
		if err := d.Chmod("self", 0o777); !errors.Is(err, ErrSymlink) {
			t.Errorf("chmod of a link to the directory: %v", err)
		}
		nd, err := d.MkdirAll("a/b/c", 0o700)
		if err != nil {
			t.Fatal(err)
		}
		nd.Close()
		if st, err := os.Stat(part + "/a/b/c"); err != nil || st.Mode().Perm() != 0o700 {
			t.Fatalf("mkdir: %v %v", st, err)
		}
		intact(t, victim)
		if st, _ := os.Stat(victim); st.Mode().Perm() != 0o755 {
			t.Fatalf("victim mode changed: %v", st.Mode())
		}
	})
}

func TestReadFileRefusesFIFOAndLarge(t *testing.T) {
	both(t, func(t *testing.T) {
		part, _, d := fixture(t)
		if err := unix.Mkfifo(part+"/fifo", 0o600); err != nil {
			t.Fatal(err)
		}
		// Would block forever without O_NONBLOCK.
		if _, err := d.ReadFile("fifo", 10); !errors.Is(err, ErrNotRegular) {
			t.Errorf("fifo: %v", err)
		}
		if err := os.WriteFile(part+"/big", make([]byte, 100), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := d.ReadFile("big", 10); err == nil {
			t.Error("a file larger than the limit was read")
		}
		if b, err := d.ReadFile("big", 100); err != nil || len(b) != 100 {
			t.Errorf("read: %d %v", len(b), err)
		}
	})
}

func TestWalkNeverFollows(t *testing.T) {
	both(t, func(t *testing.T) {
		_, _, d := fixture(t)
		var seen []string
		err := d.Walk(func(e Entry) (bool, error) {
			seen = append(seen, e.Rel)
			return true, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		sort.Strings(seen)
		want := []string{".", "etc", "etc/own", "l", "self", "tree", "tree/out", "tree/sub", "tree/sub/f", "tree/sub/fl", "tree/up"}
		if len(seen) != len(want) {
			t.Fatalf("walk saw %v, want %v", seen, want)
		}
		for i := range want {
			if seen[i] != want[i] {
				t.Fatalf("walk saw %v, want %v", seen, want)
			}
		}
	})
}

func TestRenameAndRemove(t *testing.T) {
	both(t, func(t *testing.T) {
		part, victim, d := fixture(t)
		if err := d.Rename("etc/own", "etc/moved"); err != nil {
			t.Fatal(err)
		}
		if err := d.Rename("etc/moved", "l/file"); !errors.Is(err, ErrSymlink) {
			t.Errorf("rename through a link: %v", err)
		}
		if err := d.Remove("etc/moved"); err != nil {
			t.Fatal(err)
		}
		if err := d.Remove("etc"); err != nil {
			t.Fatal(err)
		}
		if err := d.Remove("tree/sub/fl"); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Lstat(part + "/etc"); !errors.Is(err, fs.ErrNotExist) {
			t.Fatal("etc left")
		}
		intact(t, victim)
	})
}

// TestChangesInOneDirectory: a name directly in d is changed through d's
// own descriptor, and two names in one directory (a temporary file renamed
// onto its target) through one descriptor of it; links on the way are
// still refused, and a link at the last component is renamed, linked or
// removed itself.
func TestChangesInOneDirectory(t *testing.T) {
	both(t, func(t *testing.T) {
		part, victim, d := fixture(t)
		for _, step := range []struct {
			what string
			err  error
		}{
			{"mkdir top", d.Mkdir("top", 0o755)},
			{"symlink top", d.Symlink("top", "tl")},
			{"rename top", d.Rename("tl", "tl2")},
			{"link top", d.Link("tl2", "tl3")},
			{"remove top", d.Remove("tl3")},
			{"rename in etc", d.Rename("etc/own", "etc/own2")},
			{"link in etc", d.Link("etc/own2", "etc/own3")},
			{"rename a link", d.Rename("tree/sub/fl", "tree/sub/fl2")},
		} {
			if step.err != nil {
				t.Errorf("%s: %v", step.what, step.err)
			}
		}
		for _, p := range []string{"top", "tl2", "etc/own2", "etc/own3", "tree/sub/fl2"} {
			if _, err := os.Lstat(filepath.Join(part, p)); err != nil {
				t.Errorf("%s: %v", p, err)
			}
		}
		if st, err := os.Lstat(filepath.Join(part, "tl2")); err != nil || st.Mode()&fs.ModeSymlink == 0 {
			t.Errorf("tl2 is not the link renamed: %v", err)
		}
		for what, err := range map[string]error{
			"rename through a link":      d.Rename("self/etc/own2", "self/etc/x"),
			"link through a link":        d.Link("l/file", "l/x"),
			"mkdir through a link":       d.Mkdir("self/x", 0o755),
			"remove through a link":      d.Remove("l/file"),
			"symlink through a link":     d.Symlink("x", "tree/out/x"),
			"rename into a link":         d.Rename("etc/own2", "l/own2"),
			"rename out":                 d.Rename("etc/own2", "../own2"),
			"rename onto the dir itself": d.Rename("etc/own2", "."),
		} {
			if err == nil {
				t.Errorf("%s: no error", what)
			}
		}
		if _, err := os.Lstat(filepath.Join(part, "etc", "own2")); err != nil {
			t.Errorf("etc/own2 moved by a refused rename: %v", err)
		}
		intact(t, victim)
		if _, err := os.Lstat(filepath.Join(victim, "x")); err == nil {
			t.Error("a change went through a link")
		}
	})
}
