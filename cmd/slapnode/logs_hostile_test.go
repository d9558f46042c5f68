package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLogsHostile: `slapnode logs` reads files a partition user controls.
// A FIFO or a link to /dev/zero in a log's place is refused instead of
// hanging or reading forever; a huge log is read from its end only; as
// root, a link to a file the partition user cannot read is refused.
func TestLogsHostile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.log")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	zero := filepath.Join(dir, "zero.log")
	os.Symlink("/dev/zero", zero)
	huge := filepath.Join(dir, "huge.log")
	f, _ := os.Create(huge)
	f.Truncate(1 << 40) // a sparse terabyte of NULs…
	f.WriteAt([]byte("\nlast line\n"), 1<<40)
	f.Close()
	for _, p := range []string{fifo, zero} {
		done := make(chan error, 1)
		go func() {
			var out bytes.Buffer
			done <- showLogs(context.Background(), &out, []string{p}, 10, false, time.Millisecond)
		}()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "not a regular file") {
				t.Errorf("%s: %v, want a refusal", p, err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: logs hung", p)
		}
	}
	var out bytes.Buffer
	if err := showLogs(context.Background(), &out, []string{huge}, 1, false, time.Millisecond); err != nil || out.String() != "last line\n" {
		t.Errorf("huge log: %q %v", out.String(), err)
	}

	if os.Geteuid() != 0 {
		return
	}
	secret := filepath.Join(dir, "secret")
	os.WriteFile(secret, []byte("root only\n"), 0o600)
	link := filepath.Join(dir, "web.log")
	os.Symlink(secret, link)
	os.Chmod(dir, 0o755)
	out.Reset()
	lf := logFS{uid: 65534, gid: 65534, groups: []int{}}
	err := lf.show(context.Background(), &out, []string{link}, 10, false, time.Millisecond)
	if err == nil || strings.Contains(out.String(), "root only") {
		t.Errorf("a log linked to a file of root was read as root: %q %v", out.String(), err)
	}
}
