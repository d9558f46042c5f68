package wasmhost

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
)

// hostileMount is a writable mount holding what a partition user may plant
// there (docs/node.md §9): a hard link to a file outside the mount that is
// not the partition user's, links that stay inside the mount, a FIFO. The
// rootFS works for a partition user other than the test's own user, so
// the test's files are "another owner's" as root's are in production.
func hostileMount(t *testing.T) (rw *rootFS, dir, victim string) {
	t.Helper()
	base := t.TempDir()
	dir = filepath.Join(base, "part")
	must(t, os.MkdirAll(filepath.Join(dir, "etc"), 0o755))
	victim = filepath.Join(base, "victim")
	must(t, os.WriteFile(victim, []byte("victim\n"), 0o644))
	must(t, os.Link(victim, filepath.Join(dir, "etc", "x")))
	must(t, os.WriteFile(filepath.Join(dir, "etc", "own"), []byte("own\n"), 0o644))
	must(t, os.Symlink(".", filepath.Join(dir, "self")))
	must(t, os.Symlink("own", filepath.Join(dir, "etc", "alias")))
	must(t, syscall.Mkfifo(filepath.Join(dir, "etc", "fifo"), 0o644))
	rw, err := newRootFS(dir, false)
	must(t, err)
	rw.owner = os.Geteuid() + 1 // the partition user is not the files' owner
	t.Cleanup(func() { rw.close() })
	return rw, dir, victim
}

func victimIntact(t *testing.T, victim string) {
	t.Helper()
	if b, err := os.ReadFile(victim); err != nil || string(b) != "victim\n" {
		t.Errorf("victim: %q %v", b, err)
	}
}

// TestRootFSHardLinkOfAnotherOwner: root's writes on behalf of the guest
// must not go through a hard link the partition user planted (issue 18's
// chown finding, for content): opening it to write, truncate or append
// fails and the file outside is unchanged; reading it fails too.
func TestRootFSHardLinkOfAnotherOwner(t *testing.T) {
	rw, _, victim := hostileMount(t)
	for _, flag := range []experimentalsys.Oflag{
		experimentalsys.O_WRONLY,
		experimentalsys.O_RDWR,
		experimentalsys.O_WRONLY | experimentalsys.O_TRUNC,
		experimentalsys.O_WRONLY | experimentalsys.O_CREAT | experimentalsys.O_TRUNC,
		experimentalsys.O_WRONLY | experimentalsys.O_APPEND,
		experimentalsys.O_RDONLY,
	} {
		f, e := rw.OpenFile("etc/x", flag, 0o644)
		if e != experimentalsys.EPERM {
			t.Errorf("open etc/x flags %#x: errno %v, want EPERM", flag, e)
		}
		if f != nil {
			f.Write([]byte("pwned\n"))
			f.Close()
		}
	}
	if e := rw.Utimens("etc/x", 0, 0); e != experimentalsys.EPERM {
		t.Errorf("utimens etc/x: %v, want EPERM", e)
	}
	if e := rw.Chmod("etc/x", 0o600); e != experimentalsys.EPERM {
		t.Errorf("chmod etc/x: %v, want EPERM", e)
	}
	victimIntact(t, victim)
	if st, _ := os.Stat(victim); st.Mode().Perm() != 0o644 {
		t.Errorf("victim mode %v", st.Mode())
	}
	// Removing or renaming the planted name is fine: it touches the link
	// in the mount, not the file outside.
	if e := rw.Rename("etc/x", "etc/y"); e != 0 {
		t.Errorf("rename: %v", e)
	}
	if e := rw.Unlink("etc/y"); e != 0 {
		t.Errorf("unlink: %v", e)
	}
	victimIntact(t, victim)
}

// TestRootFSCreatedHardLinks: a file the session made itself may have
// several names (a recipe linking what it wrote) and stays writable.
func TestRootFSCreatedHardLinks(t *testing.T) {
	rw, dir, _ := hostileMount(t)
	f, e := rw.OpenFile("a", experimentalsys.O_WRONLY|experimentalsys.O_CREAT|experimentalsys.O_TRUNC, 0o644)
	if e != 0 {
		t.Fatal(e)
	}
	f.Write([]byte("1"))
	f.Close()
	if e := rw.Link("a", "b"); e != 0 {
		t.Fatal(e)
	}
	f, e = rw.OpenFile("b", experimentalsys.O_WRONLY|experimentalsys.O_TRUNC, 0)
	if e != 0 {
		t.Fatalf("rewrite of a file the session linked: %v", e)
	}
	f.Write([]byte("2"))
	f.Close()
	if b, _ := os.ReadFile(filepath.Join(dir, "a")); string(b) != "2" {
		t.Errorf("a = %q", b)
	}
	// A single-link file of another owner (the partition user's own
	// files, seen from here) is written as before.
	f, e = rw.OpenFile("etc/own", experimentalsys.O_WRONLY|experimentalsys.O_TRUNC, 0)
	if e != 0 {
		t.Fatalf("own file: %v", e)
	}
	f.Close()
}

// TestRootFSNoLinkFollowedForWrites: links that stay inside the mount are
// followed for reading but never for a change.
func TestRootFSNoLinkFollowedForWrites(t *testing.T) {
	rw, dir, _ := hostileMount(t)
	for _, tc := range []struct {
		name string
		got  experimentalsys.Errno
	}{
		{"mkdir through self", rw.Mkdir("self/d", 0o755)},
		{"symlink through self", rw.Symlink("etc", "self/l")},
		{"link through self", rw.Link("etc/own", "self/h")},
		{"rename through self", rw.Rename("etc/own", "self/moved")},
		{"unlink through self", rw.Unlink("self/etc/own")},
		{"rmdir through self", rw.Rmdir("self/etc")},
		{"utimens through a link", rw.Utimens("etc/alias", 0, 0)},
		{"chmod through self", rw.Chmod("self/etc/own", 0o600)},
	} {
		if tc.got != experimentalsys.ELOOP {
			t.Errorf("%s: errno %v, want ELOOP", tc.name, tc.got)
		}
	}
	for _, p := range []string{"self/etc/own", "etc/alias", "self/new"} {
		f, e := rw.OpenFile(p, experimentalsys.O_WRONLY|experimentalsys.O_CREAT|experimentalsys.O_TRUNC, 0o644)
		if e != experimentalsys.ELOOP {
			t.Errorf("open %s for writing: errno %v, want ELOOP", p, e)
		}
		if f != nil {
			f.Close()
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "etc", "own")); string(b) != "own\n" {
		t.Errorf("etc/own was changed through a link: %q", b)
	}
	for _, p := range []string{"self/etc/own", "etc/alias"} {
		f, e := rw.OpenFile(p, experimentalsys.O_RDONLY, 0)
		if e != 0 {
			t.Errorf("read %s: %v", p, e)
			continue
		}
		buf := make([]byte, 8)
		if n, _ := f.Read(buf); string(buf[:n]) != "own\n" {
			t.Errorf("read %s: %q", p, buf[:n])
		}
		f.Close()
	}
	// Stat and listing through inside links still work.
	if _, e := rw.Stat("self/etc"); e != 0 {
		t.Errorf("stat through self: %v", e)
	}
}

// TestRootFSFifo: a FIFO planted in the mount neither blocks the guest
// (and the apply with it) nor is read or written.
func TestRootFSFifo(t *testing.T) {
	rw, _, _ := hostileMount(t)
	done := make(chan experimentalsys.Errno, 2)
	go func() {
		_, e := rw.OpenFile("etc/fifo", experimentalsys.O_RDONLY, 0)
		done <- e
	}()
	go func() {
		_, e := rw.OpenFile("etc/fifo", experimentalsys.O_WRONLY|experimentalsys.O_TRUNC, 0)
		done <- e
	}()
	for range 2 {
		select {
		case e := <-done:
			if e == 0 {
				t.Errorf("a FIFO was opened")
			}
		case <-time.After(10 * time.Second):
			t.Fatal("opening a FIFO planted in the mount blocked")
		}
	}
}

// TestRootFSMkdirMode: wazero asks 0700 for every directory a guest makes
// (WASI has no mode); the commands a recipe runs as the partition user
// must be able to enter what the recipe made as root.
func TestRootFSMkdirMode(t *testing.T) {
	rw, dir, _ := hostileMount(t)
	if e := rw.Mkdir("made", 0o700); e != 0 {
		t.Fatal(e)
	}
	st, err := os.Stat(filepath.Join(dir, "made"))
	if err != nil || st.Mode().Perm()&0o055 != 0o055 {
		t.Errorf("made: %v %v, want others to read and enter it", st.Mode(), err)
	}
}

// TestRootFSFifoReadOnly: a promise mounts its partition read-only, and
// the partition user may put a FIFO where it reads: opening it must not
// block (the daemon's promise runner lost a thread at every run).
func TestRootFSFifoReadOnly(t *testing.T) {
	_, dir, _ := hostileMount(t)
	ro, err := newRootFS(dir, true)
	must(t, err)
	defer ro.close()
	done := make(chan experimentalsys.Errno, 1)
	go func() {
		_, e := ro.OpenFile("etc/fifo", experimentalsys.O_RDONLY, 0)
		done <- e
	}()
	select {
	case e := <-done:
		if e == 0 {
			t.Errorf("a FIFO was opened")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("opening a FIFO on a read-only mount blocked")
	}
	// Hard links are read there: software trees have root's.
	if f, e := ro.OpenFile("etc/x", experimentalsys.O_RDONLY, 0); e != 0 {
		t.Errorf("read-only hard link: %v", e)
	} else {
		f.Close()
	}
}
