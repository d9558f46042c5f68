package atomicfile

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/slapnode/slapnode/internal/nofollow"
)

func TestWriteReplacesAndLeavesNoTemp(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")
	if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteJSON(p, map[string]int{"a": 1}, 0o600); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	if string(b) != "{\n  \"a\": 1\n}\n" {
		t.Fatalf("content %q", b)
	}
	st, _ := os.Stat(p)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left: %v", entries)
	}
	if err := Write(filepath.Join(dir, "missing", "x"), nil, 0o644); err == nil {
		t.Fatal("write into a missing directory succeeded")
	}
}

// A writer killed before its rename leaves a temporary file: CleanTemp
// removes it once its process is gone, and old ones of earlier versions.
func TestCleanTempRemovesStaleOnly(t *testing.T) {
	dir := t.TempDir()
	// A process that exited: its pid is free.
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := cmd.Process.Pid
	files := map[string]bool{ // name -> stale
		".x.json.slapnode-tmp-" + strconv.Itoa(dead) + "-0a1b2c3d":        true,
		".x.json.slapnode-tmp-" + strconv.Itoa(os.Getpid()) + "-0a1b2c3d": false, // this process: maybe writing
		".x.json.slapnode-tmp-1-0a1b2c3d":                                 false, // init runs
		"..completed.tmp123456":                                           true,  // an older version's, old
		".fresh.json.tmp99":                                               false, // an older version's, recent
		"x.json":                                                          false,
		".hidden":                                                         false,
	}
	for n := range files {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * LegacyTempAge)
	os.Chtimes(filepath.Join(dir, "..completed.tmp123456"), old, old)
	removed, err := CleanTemp(dir)
	if err != nil {
		t.Fatal(err)
	}
	for n, wantGone := range files {
		_, err := os.Stat(filepath.Join(dir, n))
		if gone := err != nil; gone != wantGone {
			t.Errorf("%s: removed=%v, want %v", n, gone, wantGone)
		}
	}
	if len(removed) != 2 {
		t.Errorf("removed %v", removed)
	}
}

// The directory of a write may be another user's: a symlink planted there
// at the target's name is replaced, never written through.
func TestWriteInReplacesPlantedLink(t *testing.T) {
	base := t.TempDir()
	victim := filepath.Join(base, "victim")
	if err := os.WriteFile(victim, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(base, "part")
	os.MkdirAll(filepath.Join(dir, "state"), 0o755)
	os.Symlink(victim, filepath.Join(dir, "state", "f.json"))
	os.Symlink(base, filepath.Join(dir, "up"))
	d, err := nofollow.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := WriteIn(d, "state/f.json", []byte("new"), 0o600, -1, -1); err != nil {
		t.Fatal(err)
	}
	if err := WriteIn(d, "up/victim", []byte("new"), 0o600, -1, -1); !errors.Is(err, nofollow.ErrSymlink) {
		t.Fatalf("write through a link: %v", err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "secret" {
		t.Fatalf("victim written: %q", b)
	}
	if st, err := os.Lstat(filepath.Join(dir, "state", "f.json")); err != nil || !st.Mode().IsRegular() {
		t.Fatalf("link not replaced: %v %v", st, err)
	}
}
