package partition

import (
	"io/fs"
	"os"
	"path/filepath"
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
	if err := shareTree(dir); err != nil {
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
