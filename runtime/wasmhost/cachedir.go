package wasmhost

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// MachineCacheEnv names the variable that sets the machine-wide compilation
// cache directory (MachineCacheDir).
const MachineCacheEnv = "SLAPNODE_WASM_CACHE"

// machineCacheRoot is where root's processes keep compiled modules.
const machineCacheRoot = "/var/cache/slapnode/wazero"

// MachineCacheDir returns the compilation cache shared by every node root
// of this machine (and user): $SLAPNODE_WASM_CACHE when set, else
// /var/cache/slapnode/wazero for root, else the user's cache directory
// ($XDG_CACHE_HOME or ~/.cache)/slapnode/wazero. Compiling the cookbook
// takes seconds; with one cache per machine a new node root — or a new
// node on a machine that has run slapnode before — loads machine code
// instead. Entries are keyed by wazero (wazero's version and architecture
// name a subdirectory; the module's digest and the CPU features name the
// entry), so modules built by other slapnode versions live side by side.
//
// The directory holds machine code that slapnode maps executable, so it is
// created when missing, mode 0700, and refused (an error) unless it and
// every directory above it belong to root or to the caller, and none but
// its owner can write to them (a sticky world-writable parent such as /tmp
// is allowed: others cannot replace what is in it). A partition user can
// therefore neither plant an entry nor swap the directory for a link.
func MachineCacheDir() (string, error) {
	dir := os.Getenv(MachineCacheEnv)
	switch {
	case dir != "":
		abs, err := filepath.Abs(dir)
		if err != nil {
			return "", fmt.Errorf("%s: %w", MachineCacheEnv, err)
		}
		dir = abs
	case os.Geteuid() == 0:
		dir = machineCacheRoot
	default:
		ucd, err := os.UserCacheDir()
		if err != nil {
			return "", fmt.Errorf("compilation cache: %w (set %s)", err, MachineCacheEnv)
		}
		dir = filepath.Join(ucd, "slapnode", "wazero")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("compilation cache: %w", err)
	}
	if err := checkPrivateDir(dir); err != nil {
		return "", fmt.Errorf("compilation cache %s: %w (set %s to a directory of your own)", dir, err, MachineCacheEnv)
	}
	// wazero fails a compilation whose entry it cannot write: a cache on a
	// read-only mount (a unit with ProtectSystem=strict and no
	// CacheDirectory=) is refused here instead.
	if err := unix.Access(dir, unix.W_OK); err != nil {
		return "", fmt.Errorf("compilation cache %s: not writable: %w (set %s to a directory of your own)", dir, err, MachineCacheEnv)
	}
	return dir, nil
}

// checkPrivateDir checks that dir is a directory (not a link) that only
// its owner, root or the caller, can write, and that no directory above it
// lets anyone else rename it away (owned by root or the caller, and not
// writable by others unless sticky).
func checkPrivateDir(dir string) error {
	euid := uint32(os.Geteuid())
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSymlink != 0 || !fi.IsDir() {
		return errors.New("not a directory (a link or a file is there)")
	}
	st := fi.Sys().(*syscall.Stat_t)
	if st.Uid != euid && st.Uid != 0 {
		return fmt.Errorf("owned by uid %d, not by uid %d or root", st.Uid, euid)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("writable by others (mode %04o)", fi.Mode().Perm())
	}
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		// Parents may be links (/var/cache → elsewhere is common): their
		// targets are checked the same way.
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			return err
		}
		fi, err := os.Stat(real)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != euid && st.Uid != 0 {
			return fmt.Errorf("%s is owned by uid %d, not by uid %d or root", p, st.Uid, euid)
		}
		if fi.Mode().Perm()&0o022 != 0 && fi.Mode()&fs.ModeSticky == 0 {
			return fmt.Errorf("%s is writable by others (mode %04o) and not sticky", p, fi.Mode().Perm())
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

// isCacheEntryError tells a compilation that failed on a compilation cache
// entry (wazero checks each entry's header, version and the checksum of its
// machine code) from one that failed on the module.
func isCacheEntryError(err error) bool {
	return err != nil && strings.Contains(err.Error(), "compilationcache:")
}

// purgeCacheEntries removes the entries of wazero's versioned directories
// under dir (wazero names an entry by a hash it does not expose, so the
// damaged one cannot be told from the others: the others are rebuilt on
// their next use). Processes that opened an entry keep reading it.
func purgeCacheEntries(dir string) error {
	subs, err := filepath.Glob(filepath.Join(dir, "wazero-*"))
	if err != nil {
		return err
	}
	var errs []error
	for _, sub := range subs {
		entries, err := os.ReadDir(sub)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, e := range entries {
			// Links into the install-time cache go too (only the link).
			if e.Type().IsRegular() || e.Type()&fs.ModeSymlink != 0 {
				if err := os.Remove(filepath.Join(sub, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
					errs = append(errs, err)
				}
			}
		}
	}
	return errors.Join(errs...)
}

// InstallCacheRel is where the install-time compilation cache lies,
// relative to the directory of the slapnode executable: /usr/bin/slapnode
// reads /usr/lib/slapnode/wazero, bin/slapnode of a checkout (make build)
// lib/slapnode/wazero.
const InstallCacheRel = "../lib/slapnode/wazero"

// InstallCacheDir returns the install-time compilation cache of the running
// binary (InstallCacheRel from its real location, links resolved): the
// built-in modules compiled by `slapnode cache compile` when slapnode was
// built or installed. It is only ever read: a host whose machine cache
// lacks an entry that it holds links to it (Config.InstallCacheDir).
//
// "" and no error when there is none. A directory that fails the checks of
// MachineCacheDir (it and every parent owned by root or the caller,
// writable by nobody else) is ignored: "" and an error to show as a note.
func InstallCacheDir() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", nil // no executable to be relative to: no install cache
	}
	if real, err := filepath.EvalSymlinks(exe); err == nil {
		exe = real
	}
	return installCacheDirOf(exe)
}

func installCacheDirOf(exe string) (string, error) {
	dir := filepath.Clean(filepath.Join(filepath.Dir(exe), InstallCacheRel))
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err := checkPrivateDir(dir); err != nil {
		return "", fmt.Errorf("install-time compilation cache %s ignored: %w", dir, err)
	}
	return dir, nil
}

// wazeroSubdir is the directory wazero keeps its entries in under a cache
// directory, named after its version, the architecture and the OS
// (wazero's NewCompilationCacheWithDir, which takes its version from the
// build information the same way). Callers check that wazero created it
// before relying on the name.
func wazeroSubdir() string {
	v := ""
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if strings.Contains(dep.Path, "github.com/tetratelabs/wazero") {
				v = dep.Version
			}
		}
		if v == "" || v == "(devel)" {
			v = info.Main.Version
		}
	}
	if v == "" || v == "(devel)" {
		v = "dev"
	}
	return "wazero-" + v + "-" + runtime.GOARCH + "-" + runtime.GOOS
}

// isEntryName tells wazero's entry names (a hex sha256) from its
// temporary files and anything else.
func isEntryName(name string) bool {
	if len(name) != 2*sha256.Size {
		return false
	}
	_, err := hex.DecodeString(name)
	return err == nil
}

// linkInstallEntries links, into wazero's directory of cache, each entry of
// the same directory of install that cache lacks. wazero names an entry by
// the module's digest, its compilation flags and the CPU features it was
// compiled for, so an entry compiled on another machine is linked but never
// read (its name is not asked for): the module is compiled as without an
// install cache. A link is only a pointer: wazero reads through it, and
// replaces it with a file of its own when it compiles again (a damaged or
// stale entry, or one removed since), so the install cache is never
// written. install may be "" (none, or not trusted): links already in
// cache are checked all the same.
//
// Trust is checked again at each call, for the links already there too
// (made by an earlier process, maybe of another slapnode): a link whose
// entry, or a directory above it, someone other than root or the caller
// could now write is removed, and the module is compiled instead. It
// returns the install entries skipped for the same reasons.
func linkInstallEntries(install, cache string) (skipped []string, err error) {
	sub := wazeroSubdir()
	dst := filepath.Join(cache, sub)
	if fi, err := os.Lstat(dst); err != nil || !fi.IsDir() {
		// Not where this wazero keeps its entries: nothing to link into.
		return nil, nil
	}
	trusted := map[string]bool{} // directory → checkPrivateDir passed
	dirOK := func(d string) bool {
		ok, seen := trusted[d]
		if !seen {
			ok = checkPrivateDir(d) == nil
			trusted[d] = ok
		}
		return ok
	}
	have, err := os.ReadDir(dst)
	if err != nil {
		return nil, err
	}
	for _, e := range have {
		if e.Type()&fs.ModeSymlink == 0 || !isEntryName(e.Name()) {
			continue
		}
		link := filepath.Join(dst, e.Name())
		target, err := os.Readlink(link)
		if err == nil && filepath.IsAbs(target) && dirOK(filepath.Dir(target)) && entryProblem(target) == "" {
			continue
		}
		// No longer trusted, or dangling (its target could be created
		// later by whoever can write there): removed, a miss.
		if err := os.Remove(link); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	if install == "" {
		return nil, nil
	}
	src := filepath.Join(install, sub)
	entries, err := os.ReadDir(src)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // compiled by another wazero, or for another platform
	}
	if err != nil {
		return nil, err
	}
	if !dirOK(src) {
		return nil, fmt.Errorf("%s: %w", src, checkPrivateDir(src))
	}
	for _, e := range entries {
		if !isEntryName(e.Name()) {
			continue
		}
		from := filepath.Join(src, e.Name())
		if p := entryProblem(from); p != "" {
			skipped = append(skipped, e.Name()+" ("+p+")")
			continue
		}
		to := filepath.Join(dst, e.Name())
		if _, err := os.Lstat(to); !errors.Is(err, fs.ErrNotExist) {
			continue // compiled here already (or linked by another process)
		}
		if err := os.Symlink(from, to); err != nil && !errors.Is(err, fs.ErrExist) {
			return skipped, err
		}
	}
	return skipped, nil
}

// entryProblem says why an install-time entry must not be read: not a
// regular file (a link could lead anywhere), owned by someone other than
// root or the caller, or writable by others. "" when it may be.
func entryProblem(path string) string {
	fi, err := os.Lstat(path)
	if err != nil {
		return err.Error()
	}
	st := fi.Sys().(*syscall.Stat_t)
	switch euid := uint32(os.Geteuid()); {
	case !fi.Mode().IsRegular():
		return "not a regular file"
	case st.Uid != euid && st.Uid != 0:
		return fmt.Sprintf("owned by uid %d", st.Uid)
	case fi.Mode().Perm()&0o022 != 0:
		return fmt.Sprintf("writable by others, mode %04o", fi.Mode().Perm())
	}
	return ""
}

// Precompiled is a module compiled by Precompile.
type Precompiled struct {
	Name   string
	Digest string // sha256 of the wasm bytes, hex
	// Entry is the file of the compiled module; Compiled is false when it
	// was there already.
	Entry    string
	Bytes    int64
	Compiled bool
}

// Precompile compiles trusted modules (the built-in ones: names and wasm
// bytes, in order) into the compilation cache dir, created when missing,
// as a host loading them does, so that hosts reading dir (as their
// CacheDir, or as their InstallCacheDir) find them compiled. dir must
// pass the checks of MachineCacheDir. With shared, dir and wazero's
// directory get mode 0755 and the entries 0644, so that every user's
// slapnode can read them (an install-time cache); otherwise what dir holds
// stays private.
func Precompile(ctx context.Context, dir string, shared bool, names []string, modules [][]byte) ([]Precompiled, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	mode := os.FileMode(0o700)
	if shared {
		mode = 0o755
	}
	if err := os.MkdirAll(abs, mode); err != nil {
		return nil, fmt.Errorf("compilation cache: %w", err)
	}
	if err := checkPrivateDir(abs); err != nil {
		return nil, fmt.Errorf("compilation cache %s: %w", abs, err)
	}
	sub := filepath.Join(abs, wazeroSubdir())
	if shared {
		// wazero creates its directory 0700 when missing.
		if err := os.MkdirAll(sub, 0o755); err != nil {
			return nil, fmt.Errorf("compilation cache: %w", err)
		}
		for _, d := range []string{abs, sub} {
			if err := os.Chmod(d, 0o755); err != nil {
				return nil, fmt.Errorf("compilation cache: %w", err)
			}
		}
	}
	h, err := New(ctx, Config{CacheDir: abs})
	if err != nil {
		return nil, err
	}
	defer h.Close(ctx)
	if fi, err := os.Lstat(sub); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("compilation cache %s: wazero did not create %s", abs, filepath.Base(sub))
	}
	var out []Precompiled
	for i, name := range names {
		before, err := entryNames(sub)
		if err != nil {
			return nil, err
		}
		m, err := h.Load(ctx, name, modules[i], Grants{Trusted: true})
		if err != nil {
			return nil, err
		}
		after, err := entryNames(sub)
		if err != nil {
			return nil, err
		}
		// Its description too, so that a new node knows its recipes
		// before it loads it (Host.CachedDescription).
		dm, fm := os.FileMode(0o700), os.FileMode(0o600)
		if shared {
			dm, fm = 0o755, 0o644
		}
		if err := h.saveDescription(m, dm, fm); err != nil {
			return nil, fmt.Errorf("compilation cache: %w", err)
		}
		p := Precompiled{Name: name, Digest: m.Digest}
		for _, n := range after {
			if !slices.Contains(before, n) {
				p.Entry, p.Compiled = filepath.Join(sub, n), true
			}
		}
		// Found compiled, Entry stays empty: wazero does not say which
		// entry it read.
		if p.Entry != "" {
			fi, err := os.Stat(p.Entry)
			if err != nil {
				return nil, err
			}
			p.Bytes = fi.Size()
		}
		out = append(out, p)
	}
	if shared {
		names, err := entryNames(sub)
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			p := filepath.Join(sub, n)
			if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() {
				if err := os.Chmod(p, 0o644); err != nil {
					return nil, err
				}
			}
		}
	}
	return out, nil
}

// entryNames lists the entry names in one of wazero's directories.
func entryNames(sub string) ([]string, error) {
	des, err := os.ReadDir(sub)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, d := range des {
		if isEntryName(d.Name()) {
			out = append(out, d.Name())
		}
	}
	return out, nil
}
