package wasmhost

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
)

func TestRootFS(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "m")
	must(t, os.MkdirAll(filepath.Join(dir, "d"), 0o755))
	must(t, os.WriteFile(filepath.Join(base, "outside.txt"), []byte("out"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "f.txt"), []byte("0123456789"), 0o644))
	rw, err := newRootFS(dir, false)
	must(t, err)
	defer rw.close()
	ro, err := newRootFS(dir, true)
	must(t, err)
	defer ro.close()

	for _, tc := range []struct {
		name string
		got  experimentalsys.Errno
		want experimentalsys.Errno
	}{
		{"symlink absolute", rw.Symlink("/etc", "l1"), experimentalsys.EPERM},
		{"symlink escaping", rw.Symlink("../outside.txt", "l2"), experimentalsys.EPERM},
		{"symlink escaping from subdir", rw.Symlink("../../outside.txt", "d/l3"), experimentalsys.EPERM},
		{"symlink inside", rw.Symlink("../f.txt", "d/l4"), 0},
		{"symlink to the mount", rw.Symlink(".", "self"), 0},
		{"symlink escaping through a link", rw.Symlink("..", "self/up"), experimentalsys.EPERM},
		{"unlink dir", rw.Unlink("d"), experimentalsys.EISDIR},
		{"rmdir file", rw.Rmdir("f.txt"), experimentalsys.ENOTDIR},
		{"rmdir mount", rw.Rmdir("."), experimentalsys.EPERM},
		{"rename out", rw.Rename("f.txt", "../moved.txt"), experimentalsys.EPERM},
		{"link out", rw.Link("../outside.txt", "hard"), experimentalsys.EPERM},
		{"ro mkdir", ro.Mkdir("x", 0o755), experimentalsys.EROFS},
		{"ro unlink", ro.Unlink("f.txt"), experimentalsys.EROFS},
		{"ro symlink", ro.Symlink("f.txt", "x"), experimentalsys.EROFS},
		{"ro chmod", ro.Chmod("f.txt", 0o777), experimentalsys.EROFS},
		{"ro utimens", ro.Utimens("f.txt", 0, 0), experimentalsys.EROFS},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: errno %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	if _, e := ro.OpenFile("f.txt", experimentalsys.O_RDWR, 0); e != experimentalsys.EROFS {
		t.Errorf("ro open for write: %v", e)
	}
	if _, e := rw.OpenFile("../outside.txt", experimentalsys.O_RDONLY, 0); e != experimentalsys.EPERM {
		t.Errorf("open outside: %v", e)
	}
	if _, e := rw.OpenFile("d/l4", experimentalsys.O_RDONLY|experimentalsys.O_NOFOLLOW, 0); e != experimentalsys.ELOOP {
		t.Errorf("O_NOFOLLOW on a link: %v", e)
	}
	if _, e := rw.OpenFile("f.txt", experimentalsys.O_RDONLY|experimentalsys.O_DIRECTORY, 0); e != experimentalsys.ENOTDIR {
		t.Errorf("O_DIRECTORY on a file: %v", e)
	}
	if s, e := rw.Readlink("d/l4"); e != 0 || s != "../f.txt" {
		t.Errorf("readlink: %q %v", s, e)
	}
	if st, e := rw.Lstat("d/l4"); e != 0 || st.Mode&os.ModeSymlink == 0 {
		t.Errorf("lstat: %v %v", st.Mode, e)
	}
	if st, e := rw.Stat("d/l4"); e != 0 || st.Size != 10 {
		t.Errorf("stat through link: %v %v", st.Size, e)
	}

	f, e := rw.OpenFile("f.txt", experimentalsys.O_RDWR, 0)
	if e != 0 {
		t.Fatal(e)
	}
	buf := make([]byte, 4)
	if n, e := f.Pread(buf, 3); e != 0 || string(buf[:n]) != "3456" {
		t.Errorf("pread: %q %v", buf[:n], e)
	}
	if off, e := f.Seek(-2, io.SeekEnd); e != 0 || off != 8 {
		t.Errorf("seek: %d %v", off, e)
	}
	if n, e := f.Write([]byte("AB")); e != 0 || n != 2 {
		t.Errorf("write: %d %v", n, e)
	}
	if e := f.Truncate(9); e != 0 {
		t.Errorf("truncate: %v", e)
	}
	if e := f.Close(); e != 0 {
		t.Errorf("close: %v", e)
	}
	if _, e := f.Read(buf); e != experimentalsys.EBADF {
		t.Errorf("read after close: %v", e)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "f.txt")); string(b) != "01234567A" {
		t.Errorf("file now %q", b)
	}
	rf, e := ro.OpenFile("f.txt", experimentalsys.O_RDONLY, 0)
	if e != 0 {
		t.Fatal(e)
	}
	defer rf.Close()
	if _, e := rf.Write([]byte("x")); e != experimentalsys.EBADF {
		t.Errorf("write on a read-only descriptor: %v", e)
	}
	if e := rf.Utimens(0, 0); e != experimentalsys.EROFS {
		t.Errorf("utimens on a read-only mount: %v", e)
	}
}

// TestRootFSOpenTruncate: O_TRUNC empties an existing file (applied after
// the file is checked), leaves an empty or new one as it is, and the data
// written after it is all the file holds.
func TestRootFSOpenTruncate(t *testing.T) {
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "full"), []byte("0123456789"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "empty"), nil, 0o644))
	rw, err := newRootFS(dir, false)
	must(t, err)
	defer rw.close()
	for _, name := range []string{"full", "empty", "new"} {
		f, e := rw.OpenFile(name, experimentalsys.O_WRONLY|experimentalsys.O_CREAT|experimentalsys.O_TRUNC, 0o600)
		if e != 0 {
			t.Fatalf("%s: open: %v", name, e)
		}
		if _, e := f.Write([]byte("ab")); e != 0 {
			t.Fatalf("%s: write: %v", name, e)
		}
		if e := f.Close(); e != 0 {
			t.Fatalf("%s: close: %v", name, e)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, name)); string(b) != "ab" {
			t.Errorf("%s holds %q after O_TRUNC and a write of \"ab\"", name, b)
		}
	}
}
