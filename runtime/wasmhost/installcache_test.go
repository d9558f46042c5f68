package wasmhost

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var trustedGrants = Grants{Trusted: true, Exec: []string{"echo"}}

// precompileReactor fills an install-time cache under base as `slapnode
// cache compile --dir` does (base/lib/slapnode/wazero, beside base/bin),
// and returns it with its one entry.
func precompileReactor(t *testing.T, base string) (dir, entry string) {
	t.Helper()
	dir = filepath.Join(base, "lib", "slapnode", "wazero")
	res, err := Precompile(context.Background(), dir, true, []string{"reactor"}, [][]byte{module(t, "reactor")})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || !res[0].Compiled || res[0].Entry == "" || res[0].Bytes == 0 {
		t.Fatalf("Precompile: %+v", res)
	}
	for _, p := range []string{dir, filepath.Dir(res[0].Entry)} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o755 {
			t.Fatalf("%s: %v %v, want mode 0755 (read by every user)", p, fi.Mode(), err)
		}
	}
	if fi, err := os.Stat(res[0].Entry); err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("entry: %v %v, want 0644", fi.Mode(), err)
	}
	// Found compiled the second time: nothing written.
	again, err := Precompile(context.Background(), dir, true, []string{"reactor"}, [][]byte{module(t, "reactor")})
	if err != nil || len(again) != 1 || again[0].Compiled {
		t.Fatalf("Precompile again: %+v %v", again, err)
	}
	return dir, res[0].Entry
}

// loadWithInstall loads the reactor, trusted as a built-in module is, in a
// host over the machine cache and the install-time cache, calls it, and
// returns the notes the host gave.
func loadWithInstall(t *testing.T, machine, install string) []string {
	t.Helper()
	ctx := context.Background()
	var notes []string
	h, err := New(ctx, Config{CacheDir: machine, InstallCacheDir: install, Note: func(m string) { notes = append(notes, m) }})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)
	m, err := h.Load(ctx, "reactor", module(t, "reactor"), trustedGrants)
	if err != nil {
		t.Fatal(err)
	}
	s := h.NewSession(SessionConfig{})
	defer s.Close(ctx)
	if _, err := s.Call(ctx, m, "recipe_install", input("echo", map[string]any{"x": 1})); err != nil {
		t.Fatal(err)
	}
	return notes
}

// machineEntries returns the entries of the machine cache: name → whether
// it is a link (to the install-time cache) rather than a compiled file.
func machineEntries(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, p := range cacheEntries(t, dir) {
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			target, _ := os.Readlink(p)
			out[filepath.Base(p)] = "link " + target
		} else {
			out[filepath.Base(p)] = "file"
		}
	}
	return out
}

// TestInstallCacheIsUsed: with an empty machine cache and the module
// compiled in the install-time cache, the host reads the install-time
// entry (linked, not compiled: a compilation would have written a file in
// its place) and the module runs; the install-time cache is not written.
func TestInstallCacheIsUsed(t *testing.T) {
	install, entry := precompileReactor(t, t.TempDir())
	before, err := os.ReadFile(entry)
	if err != nil {
		t.Fatal(err)
	}
	machine := t.TempDir()
	if notes := loadWithInstall(t, machine, install); len(notes) != 0 {
		t.Errorf("notes: %v", notes)
	}
	got := machineEntries(t, machine)
	if len(got) != 1 || got[filepath.Base(entry)] != "link "+entry {
		t.Fatalf("machine cache after the load: %v; want only a link to %s (the module was compiled instead)", got, entry)
	}
	// A second host reads it again the same way.
	loadWithInstall(t, machine, install)
	if got := machineEntries(t, machine); got[filepath.Base(entry)] != "link "+entry {
		t.Fatalf("machine cache after a second load: %v", got)
	}
	after, _ := os.ReadFile(entry)
	if !bytes.Equal(before, after) {
		t.Fatal("the install-time entry was written")
	}
	names, _ := os.ReadDir(filepath.Dir(entry))
	if len(names) != 1 {
		t.Fatalf("install-time cache holds %d files, want its one entry", len(names))
	}
}

// TestInstallCacheOtherMachine: an install-time cache compiled for another
// machine (other CPU features, hence another entry name) is linked but not
// read: the module is compiled into the machine cache, as without it.
func TestInstallCacheOtherMachine(t *testing.T) {
	install, entry := precompileReactor(t, t.TempDir())
	other := filepath.Join(filepath.Dir(entry), strings.Repeat("ab", 32))
	if err := os.Rename(entry, other); err != nil {
		t.Fatal(err)
	}
	machine := t.TempDir()
	loadWithInstall(t, machine, install)
	got := machineEntries(t, machine)
	if got[filepath.Base(entry)] != "file" || got[filepath.Base(other)] != "link "+other {
		t.Fatalf("machine cache: %v; want the module compiled beside a link to the other machine's entry", got)
	}
}

// TestInstallCacheDamagedEntry: a damaged install-time entry (bytes of its
// machine code flipped, or cut short) is detected when read; the module is
// compiled into the machine cache, and the install-time cache is left as
// it is (never written). The next host reads the machine cache's entry.
func TestInstallCacheDamagedEntry(t *testing.T) {
	for _, damage := range []string{"flipped", "truncated"} {
		t.Run(damage, func(t *testing.T) {
			install, entry := precompileReactor(t, t.TempDir())
			b, err := os.ReadFile(entry)
			if err != nil {
				t.Fatal(err)
			}
			if damage == "flipped" {
				for i := len(b) / 2; i < len(b)/2+64; i++ {
					b[i] ^= 0xff
				}
			} else {
				b = b[:len(b)/2]
			}
			if err := os.WriteFile(entry, b, 0o644); err != nil {
				t.Fatal(err)
			}
			machine := t.TempDir()
			loadWithInstall(t, machine, install)
			if got := machineEntries(t, machine); len(got) != 1 || got[filepath.Base(entry)] != "file" {
				t.Fatalf("machine cache: %v; want the module compiled there", got)
			}
			if after, _ := os.ReadFile(entry); !bytes.Equal(after, b) {
				t.Fatal("the install-time entry was written")
			}
			loadWithInstall(t, machine, install)
			if got := machineEntries(t, machine); got[filepath.Base(entry)] != "file" {
				t.Fatalf("machine cache after a second load: %v", got)
			}
		})
	}
}

// TestInstallCacheEntryRemoved: an install-time entry removed after it was
// linked (slapnode upgraded or uninstalled) leaves a dangling link, which
// is a miss: the module is compiled in its place.
func TestInstallCacheEntryRemoved(t *testing.T) {
	install, entry := precompileReactor(t, t.TempDir())
	machine := t.TempDir()
	loadWithInstall(t, machine, install)
	if err := os.RemoveAll(install); err != nil {
		t.Fatal(err)
	}
	loadWithInstall(t, machine, "")
	if got := machineEntries(t, machine); got[filepath.Base(entry)] != "file" {
		t.Fatalf("machine cache: %v; want the module compiled over the dangling link", got)
	}
}

// TestInstallCacheDir: the install-time cache is found at
// ../lib/slapnode/wazero from the executable; absent, there is none (no
// note); one that others could write to, or that belongs to someone else,
// is ignored with a reason to note.
func TestInstallCacheDir(t *testing.T) {
	base := t.TempDir()
	exe := filepath.Join(base, "bin", "slapnode")
	if dir, err := installCacheDirOf(exe); dir != "" || err != nil {
		t.Fatalf("no install cache: %q, %v", dir, err)
	}
	install, _ := precompileReactor(t, base)
	if dir, err := installCacheDirOf(exe); dir != install || err != nil {
		t.Fatalf("installCacheDirOf = %q, %v; want %q", dir, err, install)
	}
	for _, p := range []string{install, filepath.Dir(install)} {
		os.Chmod(p, 0o777)
		if dir, err := installCacheDirOf(exe); dir != "" || err == nil || !strings.Contains(err.Error(), "writable by others") || !strings.Contains(err.Error(), "ignored") {
			t.Errorf("%s writable by others: %q, %v", p, dir, err)
		}
		os.Chmod(p, 0o755)
	}
	if os.Geteuid() == 0 {
		if err := os.Chown(install, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		if dir, err := installCacheDirOf(exe); dir != "" || err == nil || !strings.Contains(err.Error(), "owned by uid 65534") {
			t.Errorf("someone else's install cache: %q, %v", dir, err)
		}
		os.Chown(install, 0, 0)
	}
}

// TestInstallCacheHostileEntries: entries of the install-time cache that
// another user could have written (owned by them, writable by others, or
// a link) are not used, and the host says so once; the module is compiled.
func TestInstallCacheHostileEntries(t *testing.T) {
	cases := map[string]func(entry string) error{
		"writable by others": func(e string) error { return os.Chmod(e, 0o666) },
		"a link": func(e string) error {
			elsewhere := filepath.Join(filepath.Dir(filepath.Dir(filepath.Dir(e))), "elsewhere")
			if err := os.Rename(e, elsewhere); err != nil {
				return err
			}
			return os.Symlink(elsewhere, e)
		},
	}
	if os.Geteuid() == 0 {
		cases["owned by another user"] = func(e string) error { return os.Chown(e, 65534, 65534) }
	}
	for name, plant := range cases {
		t.Run(name, func(t *testing.T) {
			install, entry := precompileReactor(t, t.TempDir())
			if err := plant(entry); err != nil {
				t.Fatal(err)
			}
			machine := t.TempDir()
			notes := loadWithInstall(t, machine, install)
			if len(notes) != 1 || !strings.Contains(notes[0], "1 entries ignored") {
				t.Errorf("notes: %q", notes)
			}
			if got := machineEntries(t, machine); len(got) != 1 || got[filepath.Base(entry)] != "file" {
				t.Fatalf("machine cache: %v; want the module compiled, the planted entry unused", got)
			}
		})
	}
	// A versioned directory others can write to is not used at all.
	install, entry := precompileReactor(t, t.TempDir())
	os.Chmod(filepath.Dir(entry), 0o777)
	machine := t.TempDir()
	notes := loadWithInstall(t, machine, install)
	if len(notes) != 1 || !strings.Contains(notes[0], "not used") || !strings.Contains(notes[0], "writable by others") {
		t.Errorf("notes: %q", notes)
	}
	if got := machineEntries(t, machine); got[filepath.Base(entry)] != "file" {
		t.Fatalf("machine cache: %v", got)
	}
}

// TestInstallCacheTrustRevoked: a link made while the install-time cache
// was trusted is checked again by every later host, even one of a slapnode
// without an install-time cache: once others can write the entry, or a
// directory above it, the link is dropped and the module compiled.
func TestInstallCacheTrustRevoked(t *testing.T) {
	revoke := map[string]func(install, entry string) error{
		"entry writable by others":     func(_, e string) error { return os.Chmod(e, 0o666) },
		"directory writable by others": func(i, _ string) error { return os.Chmod(i, 0o777) },
	}
	if os.Geteuid() == 0 {
		revoke["entry given to another user"] = func(_, e string) error { return os.Chown(e, 65534, 65534) }
	}
	for name, fn := range revoke {
		t.Run(name, func(t *testing.T) {
			install, entry := precompileReactor(t, t.TempDir())
			machine := t.TempDir()
			loadWithInstall(t, machine, install)
			if got := machineEntries(t, machine); got[filepath.Base(entry)] != "link "+entry {
				t.Fatalf("machine cache: %v", got)
			}
			if err := fn(install, entry); err != nil {
				t.Fatal(err)
			}
			loadWithInstall(t, machine, "")
			if got := machineEntries(t, machine); len(got) != 1 || got[filepath.Base(entry)] != "file" {
				t.Fatalf("machine cache: %v; want the link dropped and the module compiled", got)
			}
		})
	}
}

// TestInstallCacheDescription: the install-time cache also records what a
// compiled module describes, so that a host over an empty machine cache
// knows its recipes without loading it; the machine cache's own record
// wins, and a digest that is not one is never looked up as a path.
func TestInstallCacheDescription(t *testing.T) {
	ctx := context.Background()
	install, _ := precompileReactor(t, t.TempDir())
	sum := sha256.Sum256(module(t, "reactor"))
	digest := hex.EncodeToString(sum[:])
	if fi, err := os.Stat(filepath.Join(install, descriptionsDir, digest+".json")); err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("description in the install cache: %v %v, want a file of mode 0644", fi, err)
	}
	machine := filepath.Join(t.TempDir(), "machine")
	h, err := New(ctx, Config{CacheDir: machine, InstallCacheDir: install})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)
	d, described, ok := h.CachedDescription(digest)
	if !ok || !described || d.ABI == 0 || len(d.Recipes) == 0 {
		t.Fatalf("CachedDescription = %+v %v %v, want the reactor's recipes", d, described, ok)
	}
	if _, _, ok := h.CachedDescription("../" + digest[3:]); ok {
		t.Fatal("a path was looked up as a digest")
	}
	// Loaded on this machine: recorded in its own cache too, private.
	m, err := h.Load(ctx, "reactor", module(t, "reactor"), trustedGrants)
	if err != nil {
		t.Fatal(err)
	}
	h.SaveDescription(m)
	if fi, err := os.Stat(filepath.Join(machine, descriptionsDir, digest+".json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("description in the machine cache: %v %v, want mode 0600", fi, err)
	}
	h2, err := New(ctx, Config{CacheDir: machine})
	if err != nil {
		t.Fatal(err)
	}
	defer h2.Close(ctx)
	if _, _, ok := h2.CachedDescription(digest); !ok {
		t.Fatal("the machine cache's record is not read")
	}
}
