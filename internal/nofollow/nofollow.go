// Package nofollow performs file operations beneath a directory without
// ever following a symbolic link, for a privileged process working in a
// directory that a less privileged user can write (a partition directory is
// its user's: root must not be led outside it, nor onto a file of its own).
//
// A Dir is an open directory. Every name given to its methods is resolved
// beneath it by openat2(2) with RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|
// RESOLVE_NO_MAGICLINKS: a component that is a symlink (the last one
// included), "..", or an absolute name fails with ErrSymlink or ErrEscape
// instead of being followed. Operations act on the file descriptor they
// opened, never on a path looked up again, so a rename racing with them
// cannot redirect them. Kernels without openat2 (before Linux 5.6) get the
// same guarantees from a walk of openat(O_NOFOLLOW) one component at a time.
//
// os.Root is not enough here: it follows symlinks that stay inside the
// root, and a partition user can make an "inside" link point at the
// partition directory itself or at node state.
package nofollow

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// ErrSymlink is returned (wrapped) when a name crosses a symbolic link.
var ErrSymlink = errors.New("refusing to follow a symbolic link")

// ErrEscape is returned (wrapped) when a name leaves its directory.
var ErrEscape = errors.New("refusing a name that leaves its directory")

// ErrNotRegular is returned by ReadFile and the checked opens for a name
// that is not a regular file (a FIFO would block the reader, a device
// would be read as root).
var ErrNotRegular = errors.New("not a regular file")

const resolve = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS

// noOpenat2 is set when the kernel lacks openat2 (and by tests, to
// exercise the fallback).
var noOpenat2 atomic.Bool

// Dir is an open directory; see the package comment.
type Dir struct {
	f    *os.File
	name string // for messages
}

// Open opens the directory path. path itself is trusted (it is the
// caller's configuration, such as the node root, and may go through
// symlinks); what is below it is not.
func Open(path string) (*Dir, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return &Dir{f: os.NewFile(uintptr(fd), path), name: filepath.Clean(path)}, nil
}

// OpenNoFollow opens the directory path, refusing a symlink as its last
// component (its parents are trusted, as with Open).
func OpenNoFollow(path string) (*Dir, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, wrap("open", path, err)
	}
	return &Dir{f: os.NewFile(uintptr(fd), path), name: filepath.Clean(path)}, nil
}

// Close closes the directory.
func (d *Dir) Close() error { return d.f.Close() }

// Name is the path the directory was opened by.
func (d *Dir) Name() string { return d.name }

// Fd is the directory's descriptor, valid until Close.
func (d *Dir) Fd() int { return int(d.f.Fd()) }

// Path is the path of rel below d, for messages.
func (d *Dir) Path(rel string) string { return filepath.Join(d.name, rel) }

// clean checks rel: a relative, local name ("." is d itself).
func clean(rel string) (string, error) {
	if rel == "" || rel == "." {
		return ".", nil
	}
	c := path.Clean(filepath.ToSlash(rel))
	if !filepath.IsLocal(c) {
		return "", ErrEscape
	}
	return c, nil
}

func wrap(op, p string, err error) error {
	switch {
	case errors.Is(err, unix.ELOOP):
		err = fmt.Errorf("%w (a component of the name is a link)", ErrSymlink)
	case errors.Is(err, unix.EXDEV):
		err = ErrEscape
	}
	return &fs.PathError{Op: op, Path: p, Err: err}
}

// openat opens rel below d with flags; O_NOFOLLOW and O_CLOEXEC are always
// added, so that the last component is never followed either (with O_PATH,
// a symlink is then opened itself).
func (d *Dir) openat(rel string, flags int, mode uint32) (int, error) {
	rel, err := clean(rel)
	if err != nil {
		return -1, err
	}
	flags |= unix.O_NOFOLLOW | unix.O_CLOEXEC
	if flags&(unix.O_CREAT|unix.O_TMPFILE) == 0 {
		mode = 0 // openat2 refuses a mode it would not use (EINVAL)
	}
	if !noOpenat2.Load() {
		how := &unix.OpenHow{Flags: uint64(flags), Mode: uint64(mode), Resolve: resolve}
		for range 16 {
			fd, err := unix.Openat2(d.Fd(), rel, how)
			switch err {
			case nil:
				return fd, nil
			case unix.EAGAIN, unix.EINTR:
				// A concurrent rename anywhere on the system: retry.
				continue
			case unix.ENOSYS, unix.EPERM:
				// No openat2 (or a seccomp filter that denies it).
				if err == unix.ENOSYS || !openat2Works() {
					noOpenat2.Store(true)
					return d.walkOpen(rel, flags, mode)
				}
			}
			return -1, err
		}
		return -1, unix.EAGAIN
	}
	return d.walkOpen(rel, flags, mode)
}

// openat2Works tells an EPERM of the call from an EPERM of the file.
func openat2Works() bool {
	fd, err := unix.Openat2(unix.AT_FDCWD, "/", &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_NO_SYMLINKS})
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
}

// walkOpen is openat2's resolution by hand: one component at a time, each
// opened with O_NOFOLLOW, ".." refused by clean.
func (d *Dir) walkOpen(rel string, flags int, mode uint32) (int, error) {
	if rel == "." {
		return unix.Openat(d.Fd(), ".", flags, mode)
	}
	parts := strings.Split(rel, "/")
	dirfd := d.Fd()
	owned := -1
	defer func() {
		if owned >= 0 {
			unix.Close(owned)
		}
	}()
	for _, p := range parts[:len(parts)-1] {
		fd, err := unix.Openat(dirfd, p, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			if err == unix.ENOTDIR {
				// A symlink opened with O_NOFOLLOW|O_DIRECTORY.
				var st unix.Stat_t
				if unix.Fstatat(dirfd, p, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
					return -1, unix.ELOOP
				}
			}
			return -1, err
		}
		if owned >= 0 {
			unix.Close(owned)
		}
		owned, dirfd = fd, fd
	}
	return unix.Openat(dirfd, parts[len(parts)-1], flags, mode)
}

// OpenDir opens the directory rel below d.
func (d *Dir) OpenDir(rel string) (*Dir, error) {
	fd, err := d.openat(rel, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil, d.linkErr("open", rel, err)
	}
	return &Dir{f: os.NewFile(uintptr(fd), d.Path(rel)), name: d.Path(rel)}, nil
}

// linkErr wraps err, telling a symlink as the last component (ELOOP from
// O_NOFOLLOW, or ENOTDIR when O_DIRECTORY met a link) as ErrSymlink.
func (d *Dir) linkErr(op, rel string, err error) error {
	if errors.Is(err, unix.ENOTDIR) {
		if st, lerr := d.Lstat(rel); lerr == nil && st.Mode()&fs.ModeSymlink != 0 {
			err = unix.ELOOP
		}
	}
	return wrap(op, d.Path(rel), err)
}

// MkdirAll creates rel and its missing parents below d with perm and opens
// it. An existing component must be a directory, not a link to one.
// mkdir is called for every component (it never follows a link at the
// name it creates), then the component is opened without following.
func (d *Dir) MkdirAll(rel string, perm os.FileMode) (*Dir, error) {
	rel, err := clean(rel)
	if err != nil {
		return nil, &fs.PathError{Op: "mkdir", Path: d.Path(rel), Err: err}
	}
	if rel == "." {
		return d.OpenDir(".")
	}
	cur, err := d.OpenDir(".")
	if err != nil {
		return nil, err
	}
	for _, p := range strings.Split(rel, "/") {
		if err := unix.Mkdirat(cur.Fd(), p, uint32(perm.Perm())); err != nil && err != unix.EEXIST {
			cur.Close()
			return nil, &fs.PathError{Op: "mkdir", Path: cur.Path(p), Err: err}
		}
		next, err := cur.OpenDir(p)
		cur.Close()
		if err != nil {
			return nil, err
		}
		cur = next
	}
	return cur, nil
}

// Lstat describes rel below d without following it.
func (d *Dir) Lstat(rel string) (os.FileInfo, error) {
	fd, err := d.openat(rel, unix.O_PATH, 0)
	if err != nil {
		return nil, wrap("lstat", d.Path(rel), err)
	}
	f := os.NewFile(uintptr(fd), d.Path(rel))
	defer f.Close()
	return f.Stat()
}

// OpenPath opens rel below d with O_PATH|O_NOFOLLOW: a descriptor of the
// file itself (a symlink included) for Fstat, Fchown and Fchmod. The caller
// closes it (unix.Close).
func (d *Dir) OpenPath(rel string) (int, error) {
	fd, err := d.openat(rel, unix.O_PATH, 0)
	if err != nil {
		return -1, wrap("open", d.Path(rel), err)
	}
	return fd, nil
}

// OpenFile opens rel below d (never through a symlink, the last component
// included). The open is non-blocking, so that a FIFO planted there cannot
// block the caller (a write-only open of one fails with ENXIO); the
// caller checks what it opened (Stat, or OpenRegular). An exclusive
// create (O_CREAT|O_EXCL) opens nothing that was there (a FIFO, a link:
// EEXIST) and needs no O_NONBLOCK.
func (d *Dir) OpenFile(rel string, flag int, perm os.FileMode) (*os.File, error) {
	if flag&unix.O_PATH != 0 {
		return nil, &fs.PathError{Op: "open", Path: d.Path(rel), Err: errors.New("O_PATH: use OpenPath")}
	}
	exclusive := flag&(unix.O_CREAT|unix.O_EXCL) == unix.O_CREAT|unix.O_EXCL
	if !exclusive {
		flag |= unix.O_NONBLOCK
	}
	fd, err := d.openat(rel, flag, uint32(perm.Perm()))
	if err != nil {
		return nil, d.linkErr("open", rel, err)
	}
	if !exclusive {
		// Regular files ignore O_NONBLOCK; clear it anyway so that the
		// *os.File behaves as an ordinary one. F_SETFL changes only the
		// status flags below, which the open set: no F_GETFL needed.
		unix.FcntlInt(uintptr(fd), unix.F_SETFL, flag&(unix.O_APPEND|unix.O_DIRECT|unix.O_NOATIME))
	}
	return os.NewFile(uintptr(fd), d.Path(rel)), nil
}

// OpenRegular opens rel for reading and checks that it is a regular file.
func (d *Dir) OpenRegular(rel string) (*os.File, os.FileInfo, error) {
	f, err := d.OpenFile(rel, os.O_RDONLY, 0)
	if err != nil {
		return nil, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, nil, &fs.PathError{Op: "open", Path: d.Path(rel), Err: ErrNotRegular}
	}
	return f, st, nil
}

// ReadFile reads the regular file rel below d, at most max bytes (a larger
// file is an error): a planted FIFO, device or huge file is refused rather
// than blocking or exhausting the caller.
func (d *Dir) ReadFile(rel string, max int64) ([]byte, error) {
	f, st, err := d.OpenRegular(rel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st.Size() > max {
		return nil, &fs.PathError{Op: "read", Path: d.Path(rel), Err: fmt.Errorf("%d bytes, more than the %d expected", st.Size(), max)}
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err == nil && int64(len(b)) > max {
		err = fmt.Errorf("grew past %d bytes while read", max)
	}
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: d.Path(rel), Err: err}
	}
	return b, nil
}

// parent opens the directory holding rel and returns its descriptor with
// rel's last component, and a function that closes what parent opened. A
// name directly in d needs no open: d itself is its parent.
func (d *Dir) parent(rel string) (fd int, base string, done func(), err error) {
	dir, base, err := d.split(rel)
	if err != nil {
		return -1, "", nil, err
	}
	if dir == "" {
		return d.Fd(), base, func() {}, nil
	}
	fd, err = d.openat(dir, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return -1, "", nil, d.linkErr("open", dir, err)
	}
	return fd, base, func() { unix.Close(fd) }, nil
}

// split cleans rel and splits it into its directory ("" for a name
// directly in d) and last component.
func (d *Dir) split(rel string) (dir, base string, err error) {
	c, err := clean(rel)
	if err != nil {
		return "", "", &fs.PathError{Op: "open", Path: d.Path(rel), Err: err}
	}
	if c == "." {
		return "", "", &fs.PathError{Op: "open", Path: d.name, Err: errors.New("the directory itself has no name in it")}
	}
	dir, base = path.Split(c)
	return dir, base, nil
}

// parents is parent for two names: one open when they share a directory
// (a rename of a temporary file next to its target).
func (d *Dir) parents(oldRel, newRel string) (ofd int, ob string, nfd int, nb string, done func(), err error) {
	ofd, ob, odone, err := d.parent(oldRel)
	if err != nil {
		return -1, "", -1, "", nil, err
	}
	odir, _, _ := d.split(oldRel)
	if ndir, nb, err := d.split(newRel); err == nil && ndir == odir {
		return ofd, ob, ofd, nb, odone, nil
	}
	nfd, nb, ndone, err := d.parent(newRel)
	if err != nil {
		odone()
		return -1, "", -1, "", nil, err
	}
	return ofd, ob, nfd, nb, func() { odone(); ndone() }, nil
}

// Remove removes the file, symlink or empty directory rel below d. A
// symlink is removed itself, never what it points at.
func (d *Dir) Remove(rel string) error {
	pfd, base, done, err := d.parent(rel)
	if err != nil {
		return err
	}
	defer done()
	err = unix.Unlinkat(pfd, base, 0)
	if err == unix.EISDIR {
		err = unix.Unlinkat(pfd, base, unix.AT_REMOVEDIR)
	}
	if err != nil {
		return &fs.PathError{Op: "remove", Path: d.Path(rel), Err: err}
	}
	return nil
}

// RemoveAll removes rel below d and everything under it, as os.RemoveAll,
// but never through a symlink: a link on the way to rel is an error
// (ErrSymlink: what is beyond it is not below d), a link inside the tree is
// removed itself. A missing rel is not an error.
func (d *Dir) RemoveAll(rel string) error {
	dir, base, err := d.split(rel)
	if err != nil {
		return err
	}
	p := d
	if dir != "" {
		if p, err = d.OpenDir(dir); errors.Is(err, fs.ErrNotExist) {
			return nil
		} else if err != nil {
			return err
		}
		defer p.Close()
	}
	return p.removeEntry(base)
}

// removeEntry removes name, an entry of d, recursively.
func (d *Dir) removeEntry(name string) error {
	err := unix.Unlinkat(d.Fd(), name, 0)
	switch err {
	case nil, unix.ENOENT:
		return nil
	case unix.EISDIR:
	default:
		return &fs.PathError{Op: "remove", Path: d.Path(name), Err: err}
	}
	// A directory.
	sub, oerr := d.OpenDir(name)
	if oerr != nil {
		if errors.Is(oerr, fs.ErrNotExist) {
			return nil
		}
		if errors.Is(oerr, ErrSymlink) {
			// Replaced by a link since: remove the link.
			if err := unix.Unlinkat(d.Fd(), name, 0); err != nil && err != unix.ENOENT {
				return &fs.PathError{Op: "remove", Path: d.Path(name), Err: err}
			}
			return nil
		}
		if errors.Is(oerr, unix.ENOTDIR) {
			return &fs.PathError{Op: "remove", Path: d.Path(name), Err: err}
		}
		return oerr
	}
	defer sub.Close()
	// Read everything, remove it, and read again while the directory is
	// not empty (its user may be adding to it meanwhile; bounded so that
	// an endless writer cannot hold the caller).
	for range 8 {
		if _, err := sub.f.Seek(0, io.SeekStart); err != nil {
			return &fs.PathError{Op: "readdir", Path: sub.name, Err: err}
		}
		names, err := sub.f.Readdirnames(-1)
		if err != nil {
			return &fs.PathError{Op: "readdir", Path: sub.name, Err: err}
		}
		for _, n := range names {
			if err := sub.removeEntry(n); err != nil {
				return err
			}
		}
		err = unix.Unlinkat(d.Fd(), name, unix.AT_REMOVEDIR)
		if err == nil || err == unix.ENOENT {
			return nil
		}
		if err != unix.ENOTEMPTY && err != unix.EEXIST {
			return &fs.PathError{Op: "remove", Path: d.Path(name), Err: err}
		}
	}
	return &fs.PathError{Op: "remove", Path: d.Path(name), Err: unix.ENOTEMPTY}
}

// Rename renames oldRel to newRel, both below d, replacing newRel. It never
// follows a link on the way to either; a link at oldRel is renamed itself,
// one at newRel replaced.
func (d *Dir) Rename(oldRel, newRel string) error {
	ofd, ob, nfd, nb, done, err := d.parents(oldRel, newRel)
	if err != nil {
		return err
	}
	defer done()
	if err := unix.Renameat(ofd, ob, nfd, nb); err != nil {
		return &os.LinkError{Op: "rename", Old: d.Path(oldRel), New: d.Path(newRel), Err: err}
	}
	return nil
}

// Mkdir creates the directory rel below d (its parents must exist and are
// not followed; mkdirat never follows a link at the name it creates).
func (d *Dir) Mkdir(rel string, perm os.FileMode) error {
	pfd, base, done, err := d.parent(rel)
	if err != nil {
		return err
	}
	defer done()
	if err := unix.Mkdirat(pfd, base, uint32(perm.Perm())); err != nil {
		return &fs.PathError{Op: "mkdir", Path: d.Path(rel), Err: err}
	}
	return nil
}

// Link makes newRel a hard link to oldRel, both below d. Neither path is
// followed: a link at oldRel is linked itself (linkat without
// AT_SYMLINK_FOLLOW), one on the way to either is refused.
func (d *Dir) Link(oldRel, newRel string) error {
	ofd, ob, nfd, nb, done, err := d.parents(oldRel, newRel)
	if err != nil {
		return err
	}
	defer done()
	if err := unix.Linkat(ofd, ob, nfd, nb, 0); err != nil {
		return &os.LinkError{Op: "link", Old: d.Path(oldRel), New: d.Path(newRel), Err: err}
	}
	return nil
}

// Symlink creates the symbolic link rel below d, pointing at target (which
// is stored, not checked: the caller decides what a link may name).
func (d *Dir) Symlink(target, rel string) error {
	pfd, base, done, err := d.parent(rel)
	if err != nil {
		return err
	}
	defer done()
	if err := unix.Symlinkat(target, pfd, base); err != nil {
		return &os.LinkError{Op: "symlink", Old: target, New: d.Path(rel), Err: err}
	}
	return nil
}

// ReadDirNames lists the entries of the directory rel below d.
func (d *Dir) ReadDirNames(rel string) ([]string, error) {
	sub, err := d.OpenDir(rel)
	if err != nil {
		return nil, err
	}
	defer sub.Close()
	return sub.f.Readdirnames(-1)
}

// Entry is one file met by Walk: a descriptor opened with O_PATH on the
// file itself (a symlink included), and its status. It is valid only
// during the call.
type Entry struct {
	Rel  string // "." for the walked directory itself
	Fd   int
	Stat *unix.Stat_t
}

// Walk calls fn for d itself and everything below it, depth first, parents
// before their contents; fn returning false skips a directory's contents.
// Nothing is followed: each entry is opened O_PATH|O_NOFOLLOW beneath its
// parent, and a directory is read through the descriptor just checked, so
// a rename during the walk cannot take it elsewhere.
func (d *Dir) Walk(fn func(e Entry) (descend bool, err error)) error {
	fd, err := d.openat(".", unix.O_PATH, 0)
	if err != nil {
		return wrap("open", d.name, err)
	}
	return d.walk(fd, ".", fn)
}

func (d *Dir) walk(fd int, rel string, fn func(Entry) (bool, error)) error {
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &fs.PathError{Op: "stat", Path: d.Path(rel), Err: err}
	}
	descend, err := fn(Entry{Rel: rel, Fd: fd, Stat: &st})
	if err != nil || !descend || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return err
	}
	dfd, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &fs.PathError{Op: "open", Path: d.Path(rel), Err: err}
	}
	dir := &Dir{f: os.NewFile(uintptr(dfd), d.Path(rel)), name: d.Path(rel)}
	names, err := dir.f.Readdirnames(-1)
	if err != nil {
		dir.Close()
		return &fs.PathError{Op: "readdir", Path: dir.name, Err: err}
	}
	defer dir.Close()
	for _, n := range names {
		cfd, err := dir.openat(n, unix.O_PATH, 0)
		if err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue // removed meanwhile
			}
			return wrap("open", dir.Path(n), err)
		}
		if err := d.walk(cfd, path.Join(rel, n), fn); err != nil {
			return err
		}
	}
	return nil
}

// Fchown gives the file behind an O_PATH descriptor (Walk's) to uid:gid,
// a symlink itself rather than its target.
func Fchown(fd, uid, gid int) error {
	return unix.Fchownat(fd, "", uid, gid, unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW)
}

// Fchmod sets the permission bits of the file behind an O_PATH descriptor,
// and its setuid, setgid and sticky bits as mode's fs.ModeSetuid,
// fs.ModeSetgid and fs.ModeSticky say (other bits are ignored). Linux has
// no chmod of a symlink; the caller skips those.
func Fchmod(fd int, mode os.FileMode) error {
	m := uint32(mode.Perm())
	if mode&fs.ModeSetuid != 0 {
		m |= unix.S_ISUID
	}
	if mode&fs.ModeSetgid != 0 {
		m |= unix.S_ISGID
	}
	if mode&fs.ModeSticky != 0 {
		m |= unix.S_ISVTX
	}
	err := unix.Fchmodat(fd, "", m, unix.AT_EMPTY_PATH)
	if err == unix.EOPNOTSUPP || err == unix.ENOSYS || err == unix.EINVAL {
		// No fchmodat2 (before Linux 6.6): the descriptor's magic link,
		// which names exactly the inode opened, as glibc does.
		err = unix.Chmod(fmt.Sprintf("/proc/self/fd/%d", fd), m)
	}
	return err
}

// Chmod sets the permission bits of rel below d, refusing a symlink.
func (d *Dir) Chmod(rel string, mode os.FileMode) error {
	fd, err := d.openat(rel, unix.O_PATH, 0)
	if err != nil {
		return wrap("chmod", d.Path(rel), err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &fs.PathError{Op: "chmod", Path: d.Path(rel), Err: err}
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return &fs.PathError{Op: "chmod", Path: d.Path(rel), Err: ErrSymlink}
	}
	if err := Fchmod(fd, mode); err != nil {
		return &fs.PathError{Op: "chmod", Path: d.Path(rel), Err: err}
	}
	return nil
}

// Owner is a file status's owner.
func Owner(st *unix.Stat_t) (uid, gid int) { return int(st.Uid), int(st.Gid) }

// IsNotExist reports a missing file, as os.IsNotExist but through wrapping.
func IsNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// Lchown gives rel below d to uid:gid, a symlink itself rather than its
// target.
func (d *Dir) Lchown(rel string, uid, gid int) error {
	fd, err := d.openat(rel, unix.O_PATH, 0)
	if err != nil {
		return wrap("chown", d.Path(rel), err)
	}
	defer unix.Close(fd)
	if err := Fchown(fd, uid, gid); err != nil {
		return &fs.PathError{Op: "chown", Path: d.Path(rel), Err: err}
	}
	return nil
}
