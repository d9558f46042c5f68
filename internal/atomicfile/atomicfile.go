// Package atomicfile writes files so that a reader, or the next run after a
// crash, sees either the old content or the new one, never a mix: write a
// temporary file in the same directory, fsync it, rename it over the target,
// fsync the directory.
//
// Temporary files are named ".NAME.slapnode-tmp-PID-RANDOM", created with
// O_EXCL and never through a symlink. A writer killed before its rename
// (kill -9, power loss) leaves one behind; CleanTemp, called by the engine
// when it opens its directories, removes those whose writer process is
// gone.
package atomicfile

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/slapnode/slapnode/internal/nofollow"
)

const tempInfix = ".slapnode-tmp-"

// tempRE matches this package's temporary names; legacyRE those of its
// older versions (os.CreateTemp's ".NAME.tmpDIGITS"), which carry no pid.
var (
	tempRE   = regexp.MustCompile(`^\..+\.slapnode-tmp-([0-9]+)-[0-9a-f]+$`)
	legacyRE = regexp.MustCompile(`^\..+\.tmp[0-9]+$`)
)

// LegacyTempAge is how old a temporary file of an older version must be
// before CleanTemp removes it: it does not say which process wrote it, and
// a writer takes milliseconds.
const LegacyTempAge = time.Minute

func tempName(base string) string {
	var r [4]byte
	rand.Read(r[:])
	return "." + base + tempInfix + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(r[:])
}

// IsTemp reports whether name is a temporary file of this package.
func IsTemp(name string) bool { return tempRE.MatchString(name) || legacyRE.MatchString(name) }

// Write replaces path with data, atomically and durably. path's directory
// is the caller's (it is opened as given); the file is created beneath it
// without following links (WriteIn).
func Write(path string, data []byte, perm os.FileMode) error {
	return WriteOwned(path, data, perm, -1, -1)
}

// WriteOwned is Write, the new file owned by uid:gid (-1 keeps the
// writer's; only root can give a file away, so the owner is set only when
// running as root).
func WriteOwned(path string, data []byte, perm os.FileMode, uid, gid int) error {
	d, err := nofollow.Open(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer d.Close()
	return WriteIn(d, filepath.Base(path), data, perm, uid, gid)
}

// WriteIn replaces rel below d with data, atomically and durably, never
// following a symlink on the way (a link at rel itself is replaced, as
// rename does). For directories another user can write.
func WriteIn(d *nofollow.Dir, rel string, data []byte, perm os.FileMode, uid, gid int) error {
	return writeIn(d, rel, data, perm, uid, gid, true)
}

// ReplaceIn is WriteIn without the fsyncs: readers never see a partial
// file, but a power loss may lose the new content. For files rewritten at
// every run (promise results).
func ReplaceIn(d *nofollow.Dir, rel string, data []byte, perm os.FileMode, uid, gid int) error {
	return writeIn(d, rel, data, perm, uid, gid, false)
}

func writeIn(d *nofollow.Dir, rel string, data []byte, perm os.FileMode, uid, gid int, durable bool) error {
	dir, base := filepath.Split(rel)
	p, err := d.OpenDir(dir)
	if err != nil {
		return fmt.Errorf("write %s: %w", d.Path(rel), err)
	}
	defer p.Close()
	tmp := tempName(base)
	f, err := p.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write %s: %w", d.Path(rel), err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			p.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", d.Path(rel), err)
	}
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", d.Path(rel), err)
	}
	if (uid >= 0 || gid >= 0) && os.Geteuid() == 0 {
		if err := f.Chown(uid, gid); err != nil {
			return fmt.Errorf("write %s: %w", d.Path(rel), err)
		}
	}
	if durable {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("write %s: %w", d.Path(rel), err)
		}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", d.Path(rel), err)
	}
	if err := p.Rename(tmp, base); err != nil {
		return fmt.Errorf("write %s: %w", d.Path(rel), err)
	}
	ok = true
	if !durable {
		return nil
	}
	return syncFd(p.Fd(), p.Name())
}

// WriteJSON writes v as indented JSON with Write.
func WriteJSON(path string, v any, perm os.FileMode) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return Write(path, append(b, '\n'), perm)
}

// SyncDir fsyncs a directory so that a rename in it survives a power loss.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

func syncFd(fd int, name string) error {
	if err := unix.Fsync(fd); err != nil {
		return fmt.Errorf("sync %s: %w", name, err)
	}
	return nil
}

// CleanTemp removes the stale temporary files of this package in dir (not
// below it): those whose writer process no longer runs, and those of older
// versions once LegacyTempAge old. It returns the names removed. A missing
// dir has nothing to clean.
func CleanTemp(dir string) ([]string, error) {
	d, err := nofollow.Open(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return CleanTempIn(d, ".")
}

// CleanTempIn is CleanTemp for the directory rel below d.
func CleanTempIn(d *nofollow.Dir, rel string) ([]string, error) {
	names, err := d.ReadDirNames(rel)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, n := range names {
		if !stale(d, filepath.Join(rel, n), n) {
			continue
		}
		if err := d.Remove(filepath.Join(rel, n)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, n)
	}
	return removed, errors.Join(errs...)
}

func stale(d *nofollow.Dir, rel, name string) bool {
	if m := tempRE.FindStringSubmatch(name); m != nil {
		pid, err := strconv.Atoi(m[1])
		if err != nil || pid <= 0 {
			return true
		}
		if pid == os.Getpid() {
			return false // a write of this process, maybe under way
		}
		// ESRCH: no such process. EPERM means it runs as another user.
		return unix.Kill(pid, 0) == unix.ESRCH
	}
	if legacyRE.MatchString(name) {
		st, err := d.Lstat(rel)
		return err == nil && st.Mode().IsRegular() && time.Since(st.ModTime()) > LegacyTempAge
	}
	return false
}
