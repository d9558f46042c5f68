package wasmhost

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// cacheEntries lists the files of wazero's versioned cache directories.
func cacheEntries(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "wazero-*", "*"))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// loadOnce loads the reactor in a new Host over the cache dir and calls it.
func loadOnce(t *testing.T, dir string) error {
	t.Helper()
	ctx := context.Background()
	h, err := New(ctx, Config{CacheDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)
	m, err := h.Load(ctx, "reactor", module(t, "reactor"), allGrants)
	if err != nil {
		return err
	}
	s := h.NewSession(SessionConfig{})
	defer s.Close(ctx)
	_, err = s.Call(ctx, m, "recipe_install", input("echo", map[string]any{"x": 1}))
	return err
}

// TestCorruptCacheEntryIsRebuilt: a damaged compilation cache entry (here
// bytes of its machine code flipped, as a disk error would) is detected
// when it is read, and the module is compiled again, leaving a sound entry.
func TestCorruptCacheEntryIsRebuilt(t *testing.T) {
	dir := t.TempDir()
	if err := loadOnce(t, dir); err != nil {
		t.Fatal(err)
	}
	entries := cacheEntries(t, dir)
	if len(entries) != 1 {
		t.Fatalf("want one cache entry, have %v", entries)
	}
	b, err := os.ReadFile(entries[0])
	if err != nil {
		t.Fatal(err)
	}
	for i := len(b) / 2; i < len(b)/2+64; i++ {
		b[i] ^= 0xff
	}
	if err := os.WriteFile(entries[0], b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := loadOnce(t, dir); err != nil {
		t.Fatalf("load over a damaged entry: %v", err)
	}
	after := cacheEntries(t, dir)
	if len(after) != 1 {
		t.Fatalf("want the entry rebuilt, have %v", after)
	}
	rebuilt, err := os.ReadFile(after[0])
	if err != nil {
		t.Fatal(err)
	}
	if string(rebuilt) == string(b) {
		t.Fatal("the damaged entry was kept")
	}
	// And the rebuilt entry is read as it is.
	if err := loadOnce(t, dir); err != nil {
		t.Fatal(err)
	}
}

// TestMachineCacheDir: the machine-wide cache is created private, and a
// directory others could write to, or a link in its place, is refused.
func TestMachineCacheDir(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "m", "wazero")
	t.Setenv(MachineCacheEnv, dir)
	got, err := MachineCacheDir()
	if err != nil || got != dir {
		t.Fatalf("MachineCacheDir() = %q, %v; want %q", got, err, dir)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("created %v %v, want mode 0700", fi.Mode(), err)
	}

	// Writable by others.
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := MachineCacheDir(); err == nil || !strings.Contains(err.Error(), "writable by others") {
		t.Fatalf("world-writable cache: %v", err)
	}
	os.Chmod(dir, 0o700)

	// A parent others can write to, not sticky: they could rename the
	// cache away and put their own in its place.
	if err := os.Chmod(filepath.Dir(dir), 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := MachineCacheDir(); err == nil || !strings.Contains(err.Error(), "not sticky") {
		t.Fatalf("cache in a world-writable parent: %v", err)
	}
	os.Chmod(filepath.Dir(dir), 0o755)

	// A link planted where the cache should be.
	other := filepath.Join(base, "elsewhere")
	os.Mkdir(other, 0o700)
	link := filepath.Join(base, "m", "linked")
	if err := os.Symlink(other, link); err != nil {
		t.Fatal(err)
	}
	t.Setenv(MachineCacheEnv, link)
	if _, err := MachineCacheDir(); err == nil || !strings.Contains(err.Error(), "link") {
		t.Fatalf("link as cache: %v", err)
	}

	// Owned by someone else (as root: a partition user's directory).
	if os.Geteuid() == 0 {
		theirs := filepath.Join(base, "m", "theirs")
		os.Mkdir(theirs, 0o700)
		if err := os.Chown(theirs, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		t.Setenv(MachineCacheEnv, theirs)
		if _, err := MachineCacheDir(); err == nil || !strings.Contains(err.Error(), "owned by uid 65534") {
			t.Fatalf("someone else's cache: %v", err)
		}
	}
}
