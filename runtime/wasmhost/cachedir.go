package wasmhost

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
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
			if e.Type().IsRegular() {
				if err := os.Remove(filepath.Join(sub, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
					errs = append(errs, err)
				}
			}
		}
	}
	return errors.Join(errs...)
}
