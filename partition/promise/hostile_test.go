package promise

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The runner writes results, logs and caches under the partition's
// .slapgrid as root; the partition's user owns that directory and plants
// links, FIFOs and hard links there (issue 18). Files outside must come
// out intact, and the runner must not hang.

func hostileRun(t *testing.T, p PartitionRef) []Result {
	t.Helper()
	done := make(chan []Result, 1)
	go func() {
		res, _ := (&Runner{}).RunPartition(context.Background(), p, RunOptions{Force: true, NoLegacy: true,
			Specs: []Spec{spec("p", "promises:check_command", map[string]any{"command": []string{"true"}})}})
		done <- res
	}()
	select {
	case res := <-done:
		return res
	case <-time.After(30 * time.Second):
		t.Fatal("the runner hung on a planted file")
		return nil
	}
}

func victimFile(t *testing.T) string {
	t.Helper()
	v := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(v, []byte("victim\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return v
}

func victimIntact(t *testing.T, v string) {
	t.Helper()
	if b, err := os.ReadFile(v); err != nil || string(b) != "victim\n" {
		t.Fatalf("victim %s: %q %v", v, b, err)
	}
}

func TestHostilePromiseLogLink(t *testing.T) {
	p := newPartition(t, "slappart0")
	v := victimFile(t)
	os.MkdirAll(filepath.Join(p.Path, ".slapgrid", "promise", "log"), 0o755)
	os.Symlink(v, filepath.Join(p.Path, ".slapgrid", "promise", "log", "p.log"))
	res := hostileRun(t, p)
	victimIntact(t, v)
	if len(res) != 1 || res[0].OK {
		t.Fatalf("a promise whose log is a link passed: %+v", res)
	}
}

func TestHostilePromiseDirLink(t *testing.T) {
	p := newPartition(t, "slappart0")
	victims := t.TempDir()
	os.Symlink(victims, filepath.Join(p.Path, ".slapgrid"))
	hostileRun(t, p)
	if ents, _ := os.ReadDir(victims); len(ents) != 0 {
		t.Fatalf("the runner wrote through .slapgrid -> %s: %v", victims, ents)
	}
	// A result file that links to a file of root: not overwritten.
	os.Remove(filepath.Join(p.Path, ".slapgrid"))
	v := victimFile(t)
	os.MkdirAll(filepath.Join(p.Path, ".slapgrid", "promise", "result"), 0o755)
	os.Symlink(v, filepath.Join(p.Path, ".slapgrid", "promise", "result", "p.status.json"))
	hostileRun(t, p)
	victimIntact(t, v)
}

func TestHostilePromiseFIFO(t *testing.T) {
	p := newPartition(t, "slappart0")
	for _, rel := range []string{"log/p.log", "result/p.status.json", "cache/p"} {
		full := filepath.Join(p.Path, ".slapgrid", "promise", rel)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := unix.Mkfifo(full, 0o666); err != nil {
			t.Fatal(err)
		}
	}
	hostileRun(t, p)
}

// A hard link to a file of another owner is not appended to.
func TestHostilePromiseLogHardLink(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("a file of another owner needs root")
	}
	p := newPartition(t, "slappart0")
	p.Credential = &syscall.Credential{Uid: 65534, Gid: 65534}
	v := victimFile(t)
	os.MkdirAll(filepath.Join(p.Path, ".slapgrid", "promise", "log"), 0o755)
	if err := os.Link(v, filepath.Join(p.Path, ".slapgrid", "promise", "log", "p.log")); err != nil {
		t.Fatal(err)
	}
	hostileRun(t, p)
	victimIntact(t, v)
}
