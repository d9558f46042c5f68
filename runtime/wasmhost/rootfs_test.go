package wasmhost

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"github.com/tetratelabs/wazero/sys"
	"golang.org/x/sys/unix"
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

// TestRootFSStatAsRoot: Stat and Lstat answer in one openat2 (or one
// fstatat) when no link is on the way, and must answer exactly as the
// os.Root they stand in for: links inside the mount followed by Stat (not
// by Lstat at the last component), links leaving it and ".." refused
// (EPERM), a missing name ENOENT, a name below a file ENOTDIR; with and
// without openat2.
func TestRootFSStatAsRoot(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "m")
	must(t, os.MkdirAll(filepath.Join(dir, "a", "b", "c"), 0o755))
	must(t, os.WriteFile(filepath.Join(base, "outside.txt"), []byte("out"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "a", "b", "c", "f"), []byte("0123456789"), 0o640))
	must(t, os.WriteFile(filepath.Join(dir, "top"), []byte("top"), 0o4751))
	must(t, os.Chmod(filepath.Join(dir, "a", "b"), 0o1777|os.ModeSetgid))
	must(t, syscall.Mkfifo(filepath.Join(dir, "a", "fifo"), 0o644))
	for link, to := range map[string]string{
		"self": ".", "a/up": "..", "a/b/c/alias": "f", "a/b/cl": "c", "out": "../outside.txt",
		"a/abs": "/etc", "dangling": "nothing", "a/b/loop": "loop",
	} {
		must(t, os.Symlink(to, filepath.Join(dir, link)))
	}
	names := []string{
		".", "a", "a/b", "a/b/c", "a/b/c/f", "top", "a/fifo",
		"self", "self/top", "a/up", "a/up/a/b/c/f", "a/b/c/alias", "a/b/cl", "a/b/cl/f", "self/a/b/cl/alias",
		"out", "a/abs", "a/abs/passwd", "dangling", "a/b/loop",
		"nothing", "a/nothing", "a/b/c/nothing/f", "top/x", "a/b/c/f/x",
		"..", "../outside.txt", "a/../../outside.txt",
	}
	for _, ro := range []bool{false, true} {
		fsys, err := newRootFS(dir, ro)
		must(t, err)
		defer fsys.close()
		// Opens for reading: the same answer, and the same file, in one
		// openat2 as through os.Root (noOpenat2 takes that way alone).
		for _, name := range names {
			for _, flag := range []experimentalsys.Oflag{experimentalsys.O_RDONLY, experimentalsys.O_RDONLY | experimentalsys.O_NOFOLLOW, experimentalsys.O_RDONLY | experimentalsys.O_DIRECTORY} {
				var ino [2]uint64
				var e [2]experimentalsys.Errno
				for i, without := range []bool{true, false} {
					noOpenat2.Store(without)
					var f experimentalsys.File
					if f, e[i] = fsys.OpenFile(name, flag, 0); e[i] == 0 {
						st, se := f.Stat()
						if se != 0 {
							t.Fatalf("%s: stat: %v", name, se)
						}
						ino[i] = st.Ino
						f.Close()
					}
				}
				if e[0] != e[1] || ino[0] != ino[1] {
					t.Errorf("read-only %v: open %s flags %#x: %v (ino %d), through os.Root %v (ino %d)", ro, name, flag, e[1], ino[1], e[0], ino[0])
				}
			}
		}
		for _, without := range []bool{false, true} {
			noOpenat2.Store(without)
			for _, name := range names {
				for _, follow := range []bool{false, true} {
					var got sys.Stat_t
					var e experimentalsys.Errno
					var fi os.FileInfo
					if follow {
						got, e = fsys.Stat(name)
						fi, err = fsys.root.Stat(name)
					} else {
						got, e = fsys.Lstat(name)
						fi, err = fsys.root.Lstat(name)
					}
					var want sys.Stat_t
					if err == nil {
						want = sys.NewStat_t(fi)
					}
					if e != errno(err) || got != want {
						t.Errorf("read-only %v, no openat2 %v, follow %v: %s: %+v %v, want %+v %v",
							ro, without, follow, name, got, e, want, errno(err))
					}
				}
			}
		}
		noOpenat2.Store(false)
	}
}

// TestToStat: the status made from fstat is the one wazero makes from the
// os.FileInfo of the same file, for every type and mode bit.
func TestToStat(t *testing.T) {
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "f"), nil, 0o644))
	must(t, os.Chmod(filepath.Join(dir, "f"), 0o755|os.ModeSetuid|os.ModeSetgid|os.ModeSticky))
	must(t, os.Symlink("f", filepath.Join(dir, "l")))
	must(t, syscall.Mkfifo(filepath.Join(dir, "p"), 0o600))
	ln, err := net.Listen("unix", filepath.Join(dir, "s"))
	must(t, err)
	defer ln.Close()
	for _, p := range []string{dir, filepath.Join(dir, "f"), filepath.Join(dir, "l"), filepath.Join(dir, "p"), filepath.Join(dir, "s"), "/dev/null"} {
		fi, err := os.Lstat(p)
		must(t, err)
		var st unix.Stat_t
		must(t, unix.Lstat(p, &st))
		if got, want := toStat(&st), sys.NewStat_t(fi); got != want {
			t.Errorf("%s: %+v, want %+v", p, got, want)
		}
	}
}
