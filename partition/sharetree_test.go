package partition

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestShareTreeStripsPrivileges: a software tree is shared by every
// partition, so shareTree leaves no setuid or setgid file (a root program
// for every partition user) and nothing writable by group or others (a
// binary one partition could replace under all the others).
func TestShareTreeStripsPrivileges(t *testing.T) {
	dir := t.TempDir()
	for f, mode := range map[string]fs.FileMode{
		"bin/suid":   0o755 | fs.ModeSetuid,
		"bin/sgid":   0o711 | fs.ModeSetgid,
		"bin/open":   0o777,
		"share/data": 0o666,
		"share/priv": 0o600,
	} {
		p := filepath.Join(dir, f)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	os.Mkdir(filepath.Join(dir, "tmp"), 0o755)
	os.Chmod(filepath.Join(dir, "tmp"), 0o777|fs.ModeSticky)
	if _, err := shareTree(dir); err != nil {
		t.Fatal(err)
	}
	for f, want := range map[string]fs.FileMode{
		"bin/suid":   0o755,
		"bin/sgid":   0o755,
		"bin/open":   0o755,
		"share/data": 0o644,
		"share/priv": 0o644,
		"tmp":        fs.ModeDir | 0o755 | fs.ModeSticky,
	} {
		st, err := os.Lstat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Mode() & (fs.ModeType | fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky); got != want {
			t.Errorf("%s: %v, want %v", f, got, want)
		}
	}
}

// TestShareTreeRemovesForeign: what a partition user wrote into a software
// tree while a build left a directory open (a file, a directory of its
// own, a link) is removed, not shared; the build's files stay, and one of
// another owner in a closed directory (tar as root keeps an archive's
// owners) is given to the node's user.
func TestShareTreeRemovesForeign(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("making files of another user needs root")
	}
	dir := t.TempDir()
	pub := filepath.Join(dir, "bin", "pub")
	os.MkdirAll(pub, 0o755)
	os.Chmod(pub, 0o777)
	os.WriteFile(filepath.Join(pub, "tool"), []byte("ok"), 0o755)
	os.WriteFile(filepath.Join(pub, "planted"), []byte("evil"), 0o777)
	os.Mkdir(filepath.Join(pub, "nest"), 0o777)
	os.WriteFile(filepath.Join(pub, "nest", "x"), []byte("evil"), 0o666)
	os.Symlink("/etc/shadow", filepath.Join(pub, "link"))
	for _, f := range []string{"planted", "nest", "nest/x", "link"} {
		if err := os.Lchown(filepath.Join(pub, f), 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	// A hard link to a file of another partition's (0666, so that
	// fs.protected_hardlinks lets a user link it): unlinked, the file
	// itself untouched.
	other := filepath.Join(t.TempDir(), "other-partition-file")
	os.WriteFile(other, []byte("theirs"), 0o666)
	os.Chmod(other, 0o666)
	os.Lchown(other, 65533, 65533)
	if err := os.Link(other, filepath.Join(pub, "hardlink")); err != nil {
		t.Fatal(err)
	}
	untarred := filepath.Join(dir, "bin", "untarred")
	os.WriteFile(untarred, []byte("tar"), 0o775)
	os.Chmod(untarred, 0o775|fs.ModeSetuid)
	os.Lchown(untarred, 65534, 65534)
	removed, err := shareTree(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 4 {
		t.Errorf("removed %v, want bin/pub/hardlink, link, nest and planted", removed)
	}
	if st, err := os.Stat(other); err != nil || st.Sys().(*syscall.Stat_t).Uid != 65533 || st.Mode().Perm() != 0o666 {
		t.Errorf("the other partition's file was changed through its hard link: %v %v", st, err)
	}
	for _, f := range []string{"planted", "nest", "link", "hardlink"} {
		if _, err := os.Lstat(filepath.Join(pub, f)); !os.IsNotExist(err) {
			t.Errorf("%s is still there (%v)", f, err)
		}
	}
	if b, err := os.ReadFile(filepath.Join(pub, "tool")); err != nil || string(b) != "ok" {
		t.Errorf("the build's file: %q %v", b, err)
	}
	if st, err := os.Lstat(untarred); err != nil || st.Sys().(*syscall.Stat_t).Uid != 0 || st.Mode() != 0o755 {
		t.Errorf("bin/untarred, of another owner in a closed directory: %v %v, want root's, 0755", st.Mode(), err)
	}
	if st, _ := os.Stat(pub); st.Mode().Perm() != 0o755 {
		t.Errorf("bin/pub is %v, want 0755", st.Mode())
	}
	if _, err := os.Stat("/etc/shadow"); err != nil {
		t.Fatal(err)
	}
}
