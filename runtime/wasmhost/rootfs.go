package wasmhost

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"github.com/tetratelabs/wazero/experimental/sysfs"
	"github.com/tetratelabs/wazero/sys"
	"golang.org/x/sys/unix"

	"github.com/slapnode/slapnode/internal/nofollow"
)

// rootFS is the guest's view of one granted directory. Every path operation
// goes through an *os.Root, so the kernel-backed confinement of os.Root (no
// "..", no absolute or escaping symlinks) applies even to symlinks the guest
// created itself; wazero's own DirFS forwards paths unchecked and is not a
// jail (see docs/adr/0001-wasm-fs-jail.md).
//
// The guest runs in the node's process, as root on a formatted node, while
// a writable mount is a partition directory whose user may plant links,
// hard links and FIFOs in it (docs/node.md §9). So on a writable mount:
//
//   - every change (open for writing, create, truncate, mkdir, remove,
//     rename, link, symlink, times) goes through internal/nofollow: no
//     symbolic link is followed, not even one that stays inside the mount
//     (it could lead to the mount itself, or be swapped after a check),
//     and the change acts on the descriptor it opened;
//   - a regular file with more than one link whose owner is not the
//     partition user (owner) is neither written nor read, unless this
//     session created it: its other name may be outside the mount (a
//     root file hard-linked there), and root writing through it would
//     change that file;
//
// On every mount, read-only ones included (a promise sees its partition
// read-only), only regular files and directories are opened: a FIFO would
// block the guest, and the apply or the daemon's promise runner with it
// (opens are non-blocking, then checked); a socket or device is nothing a
// recipe needs.
//
// Reads follow links that stay inside the mount: what they reach, the
// guest could name directly. Read-only mounts are never changed (EROFS).
//
// Stat, Lstat and opens for reading first try the whole name in one
// openat2 that refuses any link (statBeneath, openReadBeneath): os.Root
// walks it one directory at a time. os.Root answers whenever that try
// meets a link or fails otherwise than ENOENT, so results are the same.
type rootFS struct {
	experimentalsys.UnimplementedFS
	root     *os.Root
	rootFd   int           // root's descriptor, to resolve names in one openat2 (statBeneath)
	dir      *nofollow.Dir // the same directory, for changes; nil when read-only
	real     string        // the mount's real path, to place new symlinks
	readOnly bool
	owner    int              // the partition user (the session's credential), else the node's euid
	warn     func(msg string) // says why a file was refused (the guest sees only an errno)

	mu      sync.Mutex
	created map[fileID]bool // files this session created in the mount
}

// fileID names a file by device and inode.
type fileID struct{ dev, ino uint64 }

// newRootFS opens dir as a confined file system. The caller closes the
// returned root when the session ends. The owner of the files is the
// process's own user until the session sets it.
func newRootFS(dir string, readOnly bool) (*rootFS, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		r.Close()
		return nil, err
	}
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		r.Close()
		return nil, &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	f := &rootFS{root: r, rootFd: fd, real: real, readOnly: readOnly, owner: os.Geteuid()}
	if !readOnly {
		if f.dir, err = nofollow.Open(dir); err != nil {
			f.close()
			return nil, err
		}
	}
	return f, nil
}

func (f *rootFS) String() string { return f.root.Name() }

func (f *rootFS) close() error {
	if f.dir != nil {
		f.dir.Close()
	}
	unix.Close(f.rootFd)
	return f.root.Close()
}

// remember records a file this session created.
func (f *rootFS) remember(st *unix.Stat_t) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.created == nil {
		f.created = map[fileID]bool{}
	}
	f.created[fileID{st.Dev, st.Ino}] = true
}

// vet decides whether the guest may use a file it opened (see rootFS): a
// regular file or a directory, and, on a writable mount, not a hard link
// to a file of another owner that this session did not make.
func (f *rootFS) vet(name string, st *unix.Stat_t) experimentalsys.Errno {
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return 0
	case unix.S_IFREG:
	default:
		f.refuse("%s is not a regular file (mode %#o): refusing to open it", name, st.Mode)
		return experimentalsys.EPERM
	}
	if !f.readOnly && st.Nlink > 1 && int(st.Uid) != f.owner {
		f.mu.Lock()
		ours := f.created[fileID{st.Dev, st.Ino}]
		f.mu.Unlock()
		if !ours {
			f.refuse("%s is a hard link (%d links) to a file of uid %d: refusing to use it", name, st.Nlink, st.Uid)
			return experimentalsys.EPERM
		}
	}
	return 0
}

func (f *rootFS) refuse(format string, args ...any) {
	if f.warn != nil {
		args[0] = path.Join(f.root.Name(), args[0].(string))
		f.warn(fmt.Sprintf(format, args...))
	}
}

// nfErrno maps an error of internal/nofollow to a WASI errno: a link on
// the way is ELOOP (as O_NOFOLLOW reports it), an escape EPERM.
func nfErrno(err error) experimentalsys.Errno {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, nofollow.ErrSymlink):
		return experimentalsys.ELOOP
	case errors.Is(err, nofollow.ErrEscape), errors.Is(err, nofollow.ErrNotRegular):
		return experimentalsys.EPERM
	}
	return errno(err)
}

// rel turns the path wazero hands over (relative to the mount, already
// cleaned, maybe with a trailing slash) into an os.Root name.
func rel(p string) (name string, wantDir bool) {
	wantDir = strings.HasSuffix(p, "/")
	p = strings.TrimLeft(p, "/")
	p = path.Clean(p)
	if p == "" {
		p = "."
	}
	return p, wantDir
}

// errno maps errors of os.Root to WASI errno values. os.Root reports an
// escape attempt with an error that is not a syscall.Errno; the guest sees it
// as EPERM, like a WASI runtime refusing a capability.
func errno(err error) experimentalsys.Errno {
	if err == nil {
		return 0
	}
	var en syscall.Errno
	if errors.As(err, &en) || errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrExist) ||
		errors.Is(err, fs.ErrPermission) || errors.Is(err, fs.ErrClosed) || errors.Is(err, io.EOF) {
		return experimentalsys.UnwrapOSError(err)
	}
	return experimentalsys.EPERM
}

const writeFlags = experimentalsys.O_WRONLY | experimentalsys.O_RDWR | experimentalsys.O_CREAT |
	experimentalsys.O_TRUNC | experimentalsys.O_APPEND

func (f *rootFS) OpenFile(p string, flag experimentalsys.Oflag, perm fs.FileMode) (experimentalsys.File, experimentalsys.Errno) {
	name, wantDir := rel(p)
	if f.readOnly && flag&writeFlags != 0 {
		return nil, experimentalsys.EROFS
	}
	var of int
	switch {
	case flag&experimentalsys.O_RDWR != 0:
		of = os.O_RDWR
	case flag&experimentalsys.O_WRONLY != 0:
		of = os.O_WRONLY
	default:
		of = os.O_RDONLY
	}
	for _, m := range []struct {
		w experimentalsys.Oflag
		o int
	}{
		{experimentalsys.O_APPEND, os.O_APPEND},
		{experimentalsys.O_CREAT, os.O_CREATE},
		{experimentalsys.O_EXCL, os.O_EXCL},
		{experimentalsys.O_TRUNC, os.O_TRUNC},
		{experimentalsys.O_SYNC, os.O_SYNC},
		{experimentalsys.O_DSYNC, syscall.O_DSYNC},
		{experimentalsys.O_NONBLOCK, syscall.O_NONBLOCK},
	} {
		if flag&m.w != 0 {
			of |= m.o
		}
	}
	if flag&experimentalsys.O_DIRECTORY != 0 {
		wantDir = true
		if of&(os.O_WRONLY|os.O_RDWR) != 0 {
			return nil, experimentalsys.EISDIR
		}
	}
	if flag&experimentalsys.O_NOFOLLOW != 0 {
		// os.Root follows a final symlink (inside the root); the guest asked
		// for the link itself, which WASI cannot open: refuse as POSIX does.
		if st, e := f.Lstat(name); e == 0 && st.Mode&fs.ModeSymlink != 0 {
			return nil, experimentalsys.ELOOP
		}
	}
	var file *os.File
	var st unix.Stat_t
	var e experimentalsys.Errno
	if !f.readOnly && of&(os.O_WRONLY|os.O_RDWR|os.O_CREATE|os.O_TRUNC|os.O_APPEND) != 0 {
		file, e = f.openWrite(name, of, perm, &st)
	} else {
		file, e = f.openRead(name, of, &st)
	}
	if e != 0 {
		return nil, e
	}
	// The status the open checked gives the device, inode and type (all
	// that cached() serves) without another fstat.
	cached := toStat(&st)
	of2 := &osFile{f: file, flag: flag, readOnly: f.readOnly, st: &cached}
	// Seek and Readdir come from wazero's adapter over this same descriptor:
	// it rewinds directories by reopening them, which reopenFS does through
	// the root. (Declaring Seek here would also trip go vet's stdmethods.)
	inner, e := (&sysfs.AdaptFS{FS: &reopenFS{root: f.root, first: file}}).OpenFile(name, experimentalsys.O_RDONLY, 0)
	if e != 0 {
		file.Close()
		return nil, e
	}
	of2.File = inner
	isDir, e := of2.IsDir()
	if e != 0 {
		file.Close()
		return nil, e
	}
	if wantDir && !isDir {
		file.Close()
		return nil, experimentalsys.ENOTDIR
	}
	return of2, 0
}

// openWrite opens name on a writable mount for a change: never through a
// link, the file checked by vet before anything is written, O_TRUNC
// applied only then (an open with O_TRUNC would cut the file before it
// could be checked).
func (f *rootFS) openWrite(name string, of int, perm fs.FileMode, st *unix.Stat_t) (*os.File, experimentalsys.Errno) {
	trunc := of&os.O_TRUNC != 0
	of &^= os.O_TRUNC
	for range 8 {
		var file *os.File
		var err error
		created := false
		switch {
		case of&os.O_CREATE != 0 && of&os.O_EXCL == 0:
			// Create it exclusively to know whether this call made it;
			// if it exists, open what is there (a link there is not
			// followed: O_EXCL and O_NOFOLLOW both refuse it).
			file, err = f.dir.OpenFile(name, of|os.O_EXCL, perm)
			if err == nil {
				created = true
			} else if errors.Is(err, fs.ErrExist) {
				file, err = f.dir.OpenFile(name, of&^os.O_CREATE, 0)
				if errors.Is(err, fs.ErrNotExist) {
					continue // removed meanwhile: create it
				}
			}
		default:
			file, err = f.dir.OpenFile(name, of, perm)
			created = err == nil && of&os.O_EXCL != 0
		}
		if err != nil {
			return nil, nfErrno(err)
		}
		if err := unix.Fstat(int(file.Fd()), st); err != nil {
			file.Close()
			return nil, errno(err)
		}
		if created {
			f.remember(st)
		} else if e := f.vet(name, st); e != 0 {
			file.Close()
			return nil, e
		}
		// An empty file needs no truncation, and ext4 flushes a file that
		// was truncated when it is closed (auto_da_alloc): ~50 µs a file.
		if trunc && st.Mode&unix.S_IFMT == unix.S_IFREG && st.Size > 0 {
			if err := file.Truncate(0); err != nil {
				file.Close()
				return nil, errno(err)
			}
		}
		return file, 0
	}
	return nil, experimentalsys.EAGAIN
}

// openRead opens name for reading: through the root (links inside the
// mount are followed), non-blocking so that a FIFO cannot hold the guest
// (a promise mounts its partition read-only, and the partition user may
// put a FIFO where it reads), then checked by vet.
func (f *rootFS) openRead(name string, of int, st *unix.Stat_t) (*os.File, experimentalsys.Errno) {
	if file, e, ok := f.openReadBeneath(name, of, st); ok {
		return file, e
	}
	file, err := f.root.OpenFile(name, of|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, errno(err)
	}
	if err := unix.Fstat(int(file.Fd()), st); err != nil {
		file.Close()
		return nil, errno(err)
	}
	if e := f.vet(name, st); e != 0 {
		file.Close()
		return nil, e
	}
	if of&syscall.O_NONBLOCK == 0 {
		if fl, err := unix.FcntlInt(file.Fd(), unix.F_GETFL, 0); err == nil {
			unix.FcntlInt(file.Fd(), unix.F_SETFL, fl&^unix.O_NONBLOCK)
		}
	}
	return file, 0
}

// openReadBeneath is openRead in one openat2 when no link is on the way
// (os.Root opens and closes every directory on the way, and registers the
// non-blocking descriptor with the poller, which refuses a regular file):
// a/b/f costs openat2, fstat, F_SETFL and os.NewFile's F_GETFL, 4 calls
// instead of 9. ok is false when os.Root must answer: a link on the way
// (it follows those inside the mount), a name leaving the mount, a kernel
// without openat2, any error but ENOENT.
func (f *rootFS) openReadBeneath(name string, of int, st *unix.Stat_t) (file *os.File, e experimentalsys.Errno, ok bool) {
	if noOpenat2.Load() || !filepath.IsLocal(name) {
		return nil, 0, false
	}
	how := unix.OpenHow{
		Flags:   uint64(of | unix.O_NONBLOCK | unix.O_NOFOLLOW | unix.O_CLOEXEC),
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	}
	fd, err := unix.Openat2(f.rootFd, name, &how)
	switch err {
	case nil:
	case unix.ENOENT:
		return nil, experimentalsys.ENOENT, true
	case unix.ENOSYS, unix.EPERM:
		noOpenat2Check(err)
		return nil, 0, false
	default:
		return nil, 0, false
	}
	if err := unix.Fstat(fd, st); err != nil {
		unix.Close(fd)
		return nil, errno(err), true
	}
	if e := f.vet(name, st); e != 0 {
		unix.Close(fd)
		return nil, e, true
	}
	if of&unix.O_NONBLOCK == 0 {
		// Cleared before os.NewFile looks: a non-blocking descriptor
		// would be offered to the poller. F_SETFL changes only the
		// status flags below, which the open set.
		unix.FcntlInt(uintptr(fd), unix.F_SETFL, of&(unix.O_APPEND|unix.O_DIRECT|unix.O_NOATIME))
	}
	return os.NewFile(uintptr(fd), path.Join(f.root.Name(), name)), 0, true
}

func (f *rootFS) Lstat(p string) (sys.Stat_t, experimentalsys.Errno) {
	name, _ := rel(p)
	if st, e, ok := f.statBeneath(name, false); ok {
		return st, e
	}
	fi, err := f.root.Lstat(name)
	if err != nil {
		return sys.Stat_t{}, errno(err)
	}
	return sys.NewStat_t(fi), 0
}

func (f *rootFS) Stat(p string) (sys.Stat_t, experimentalsys.Errno) {
	name, _ := rel(p)
	if st, e, ok := f.statBeneath(name, true); ok {
		return st, e
	}
	fi, err := f.root.Stat(name)
	if err != nil {
		return sys.Stat_t{}, errno(err)
	}
	return sys.NewStat_t(fi), 0
}

// statBeneath is Stat (follow) or Lstat of name when no symbolic link is
// on its way: one openat2 resolving every component beneath the mount's
// handle with RESOLVE_NO_SYMLINKS, then fstat, where os.Root opens and
// closes each directory on the way (a name three levels down: 5 calls,
// now 3; a missing one: 1; a name in the mount itself: fstatat, 1). ok
// is false when the answer must come from
// os.Root: a link on the way (os.Root follows those that stay inside the
// mount, and says EPERM for those that leave it), a name leaving the
// mount, a kernel without openat2, any error but ENOENT.
func (f *rootFS) statBeneath(name string, follow bool) (st sys.Stat_t, e experimentalsys.Errno, ok bool) {
	if !filepath.IsLocal(name) {
		return st, 0, false
	}
	var ust unix.Stat_t
	if !strings.Contains(name, "/") {
		// A name directly in the mount has no way to resolve: fstatat
		// alone, which never follows a link at the last component here.
		switch err := unix.Fstatat(f.rootFd, name, &ust, unix.AT_SYMLINK_NOFOLLOW); {
		case err == unix.ENOENT:
			return st, experimentalsys.ENOENT, true
		case err != nil, follow && ust.Mode&unix.S_IFMT == unix.S_IFLNK:
			return st, 0, false
		}
		return toStat(&ust), 0, true
	}
	if noOpenat2.Load() {
		return st, 0, false
	}
	flags := uint64(unix.O_PATH | unix.O_CLOEXEC)
	if !follow {
		flags |= unix.O_NOFOLLOW // the link itself, when the last component is one
	}
	how := unix.OpenHow{Flags: flags, Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS}
	fd, err := unix.Openat2(f.rootFd, name, &how)
	switch err {
	case nil:
	case unix.ENOENT:
		// Missing on a way that has no link: os.Root would say the same.
		return st, experimentalsys.ENOENT, true
	case unix.ENOSYS, unix.EPERM:
		noOpenat2Check(err)
		return st, 0, false
	default:
		return st, 0, false
	}
	err = unix.Fstat(fd, &ust)
	unix.Close(fd)
	if err != nil {
		return st, 0, false
	}
	return toStat(&ust), 0, true
}

// noOpenat2 is set when the kernel lacks openat2 (or a seccomp filter
// denies it): os.Root answers alone.
var noOpenat2 atomic.Bool

// noOpenat2Check sets noOpenat2 after openat2 failed with err: ENOSYS, or
// EPERM when an openat2 that any process may make fails too (an EPERM of
// the file itself leaves it unset).
func noOpenat2Check(err error) {
	if err == unix.EPERM {
		fd, err := unix.Openat2(unix.AT_FDCWD, "/", &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC})
		if err == nil {
			unix.Close(fd)
			return
		}
	}
	noOpenat2.Store(true)
}

// toStat is sys.NewStat_t of the os.FileInfo Go would make of st.
func toStat(st *unix.Stat_t) sys.Stat_t {
	mode := fs.FileMode(st.Mode & 0o777)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFBLK:
		mode |= fs.ModeDevice
	case unix.S_IFCHR:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFDIR:
		mode |= fs.ModeDir
	case unix.S_IFIFO:
		mode |= fs.ModeNamedPipe
	case unix.S_IFLNK:
		mode |= fs.ModeSymlink
	case unix.S_IFSOCK:
		mode |= fs.ModeSocket
	}
	if st.Mode&unix.S_ISGID != 0 {
		mode |= fs.ModeSetgid
	}
	if st.Mode&unix.S_ISUID != 0 {
		mode |= fs.ModeSetuid
	}
	if st.Mode&unix.S_ISVTX != 0 {
		mode |= fs.ModeSticky
	}
	return sys.Stat_t{
		Dev:   uint64(st.Dev),
		Ino:   sys.Inode(st.Ino),
		Mode:  mode,
		Nlink: uint64(st.Nlink),
		Size:  st.Size,
		Atim:  st.Atim.Sec*1e9 + st.Atim.Nsec,
		Mtim:  st.Mtim.Sec*1e9 + st.Mtim.Nsec,
		Ctim:  st.Ctim.Sec*1e9 + st.Ctim.Nsec,
	}
}

func (f *rootFS) Mkdir(p string, perm fs.FileMode) experimentalsys.Errno {
	if f.readOnly {
		return experimentalsys.EROFS
	}
	name, _ := rel(p)
	if name == "." {
		return experimentalsys.EEXIST
	}
	// WASI has no mode for a new directory and wazero always asks 0700:
	// the commands a recipe runs as the partition user (or the software
	// tree's readers) could not enter what the recipe made as root. Make
	// it as a process with umask 022 would; a partition directory (0750)
	// still keeps other users out.
	if perm == 0o700 {
		perm = 0o755
	}
	return nfErrno(f.dir.Mkdir(name, perm))
}

func (f *rootFS) Chmod(p string, perm fs.FileMode) experimentalsys.Errno {
	if f.readOnly {
		return experimentalsys.EROFS
	}
	name, _ := rel(p)
	if name == "." {
		return experimentalsys.EPERM // the mount keeps the mode the node gave it
	}
	// As the chmod host call (chmod.go): never through a link, never on
	// another owner's hard link, no write bit for group and others.
	fd, err := f.dir.OpenPath(name)
	if err != nil {
		return nfErrno(err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return errno(err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return experimentalsys.ELOOP
	}
	if e := f.vet(name, &st); e != 0 {
		return e
	}
	return errno(nofollow.Fchmod(fd, perm.Perm()&^0o022))
}

func (f *rootFS) Rename(from, to string) experimentalsys.Errno {
	if f.readOnly {
		return experimentalsys.EROFS
	}
	a, _ := rel(from)
	b, _ := rel(to)
	if a == "." || b == "." {
		return experimentalsys.EINVAL
	}
	return nfErrno(f.dir.Rename(a, b))
}

func (f *rootFS) Rmdir(p string) experimentalsys.Errno {
	if f.readOnly {
		return experimentalsys.EROFS
	}
	name, _ := rel(p)
	if name == "." {
		return experimentalsys.EPERM // never remove the mount itself
	}
	fi, err := f.dir.Lstat(name)
	if err != nil {
		return nfErrno(err)
	}
	if !fi.IsDir() {
		return experimentalsys.ENOTDIR
	}
	return nfErrno(f.dir.Remove(name))
}

func (f *rootFS) Unlink(p string) experimentalsys.Errno {
	if f.readOnly {
		return experimentalsys.EROFS
	}
	name, _ := rel(p)
	if name == "." {
		return experimentalsys.EISDIR
	}
	fi, err := f.dir.Lstat(name)
	if err != nil {
		return nfErrno(err)
	}
	if fi.IsDir() {
		return experimentalsys.EISDIR
	}
	return nfErrno(f.dir.Remove(name))
}

func (f *rootFS) Link(oldPath, newPath string) experimentalsys.Errno {
	if f.readOnly {
		return experimentalsys.EROFS
	}
	a, _ := rel(oldPath)
	b, _ := rel(newPath)
	if a == "." || b == "." {
		return experimentalsys.EPERM
	}
	return nfErrno(f.dir.Link(a, b))
}

// Symlink refuses targets that are absolute or that leave the mount when
// resolved from the link's directory. os.Root would refuse to follow them
// anyway, but such a link would still escape for any process outside the
// sandbox (a service, the node itself) that later follows it.
func (f *rootFS) Symlink(target, link string) experimentalsys.Errno {
	if f.readOnly {
		return experimentalsys.EROFS
	}
	name, _ := rel(link)
	if target == "" || path.IsAbs(target) {
		return experimentalsys.EPERM
	}
	resolved := path.Join(f.physicalDir(path.Dir(name)), target)
	if resolved == ".." || strings.HasPrefix(resolved, "../") {
		return experimentalsys.EPERM
	}
	if name == "." {
		return experimentalsys.EEXIST
	}
	return nfErrno(f.dir.Symlink(target, name))
}

// physicalDir returns where dir really is inside the mount: through a
// symlink ("s" -> ".") a lexically deep directory may be the mount itself,
// and a target of ".." from there would leave it. When the kernel cannot
// tell (no /proc), the lexical path is the answer.
func (f *rootFS) physicalDir(dir string) string {
	d, err := f.root.Open(dir)
	if err != nil {
		return dir
	}
	defer d.Close()
	p, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(d.Fd())))
	if err != nil {
		return dir
	}
	r, err := filepath.Rel(f.real, p)
	if err != nil || !filepath.IsLocal(r) {
		return dir
	}
	return filepath.ToSlash(r)
}

func (f *rootFS) Readlink(p string) (string, experimentalsys.Errno) {
	name, _ := rel(p)
	s, err := f.root.Readlink(name)
	return s, errno(err)
}

func (f *rootFS) Utimens(p string, atim, mtim int64) experimentalsys.Errno {
	if f.readOnly {
		return experimentalsys.EROFS
	}
	name, _ := rel(p)
	// On the descriptor of the file itself, opened without following a
	// link and checked as an open for writing is.
	file, err := f.dir.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		return nfErrno(err)
	}
	defer file.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(file.Fd()), &st); err != nil {
		return errno(err)
	}
	if e := f.vet(name, &st); e != 0 {
		return e
	}
	return futimens(file, atim, mtim)
}

// osFile adapts an *os.File opened through os.Root to wazero's sys.File.
// Operations on an open descriptor cannot escape: the confinement happened
// when the file was opened.
type osFile struct {
	experimentalsys.File // wazero's adapter: provides Seek and Readdir
	f                    *os.File
	flag                 experimentalsys.Oflag
	readOnly             bool // opened through a read-only mount
	closed               bool
	st                   *sys.Stat_t
}

func (o *osFile) Stat() (sys.Stat_t, experimentalsys.Errno) {
	if o.closed {
		return sys.Stat_t{}, experimentalsys.EBADF
	}
	fi, err := o.f.Stat()
	if err != nil {
		return sys.Stat_t{}, errno(err)
	}
	st := sys.NewStat_t(fi)
	o.st = &st
	return st, 0
}

func (o *osFile) cached() (*sys.Stat_t, experimentalsys.Errno) {
	if o.st == nil {
		if _, e := o.Stat(); e != 0 {
			return nil, e
		}
	}
	return o.st, 0
}

func (o *osFile) Dev() (uint64, experimentalsys.Errno) {
	st, e := o.cached()
	if e != 0 {
		return 0, e
	}
	return st.Dev, 0
}

func (o *osFile) Ino() (sys.Inode, experimentalsys.Errno) {
	st, e := o.cached()
	if e != 0 {
		return 0, e
	}
	return st.Ino, 0
}

func (o *osFile) IsDir() (bool, experimentalsys.Errno) {
	st, e := o.cached()
	if e != 0 {
		return false, e
	}
	return st.Mode.IsDir(), 0
}

func (o *osFile) IsAppend() bool { return o.flag&experimentalsys.O_APPEND != 0 }

func (o *osFile) SetAppend(enable bool) experimentalsys.Errno {
	if o.closed {
		return experimentalsys.EBADF
	}
	fd := int(o.f.Fd())
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		return errno(err)
	}
	if enable {
		fl |= unix.O_APPEND
		o.flag |= experimentalsys.O_APPEND
	} else {
		fl &^= unix.O_APPEND
		o.flag &^= experimentalsys.O_APPEND
	}
	_, err = unix.FcntlInt(uintptr(fd), unix.F_SETFL, fl)
	return errno(err)
}

func (o *osFile) check(write bool) experimentalsys.Errno {
	if o.closed {
		return experimentalsys.EBADF
	}
	if isDir, _ := o.IsDir(); isDir {
		return experimentalsys.EISDIR
	}
	if write && o.flag&(experimentalsys.O_WRONLY|experimentalsys.O_RDWR) == 0 {
		return experimentalsys.EBADF
	}
	return 0
}

func (o *osFile) Read(buf []byte) (int, experimentalsys.Errno) {
	if e := o.check(false); e != 0 {
		return 0, e
	}
	if len(buf) == 0 {
		return 0, 0
	}
	n, err := o.f.Read(buf)
	return n, errno(err)
}

func (o *osFile) Pread(buf []byte, off int64) (int, experimentalsys.Errno) {
	if e := o.check(false); e != 0 {
		return 0, e
	}
	if off < 0 {
		return 0, experimentalsys.EINVAL
	}
	n, err := o.f.ReadAt(buf, off)
	return n, errno(err)
}

func (o *osFile) Write(buf []byte) (int, experimentalsys.Errno) {
	if e := o.check(true); e != 0 {
		return 0, e
	}
	if len(buf) == 0 {
		return 0, 0
	}
	n, err := o.f.Write(buf)
	return n, errno(err)
}

func (o *osFile) Pwrite(buf []byte, off int64) (int, experimentalsys.Errno) {
	if e := o.check(true); e != 0 {
		return 0, e
	}
	if off < 0 {
		return 0, experimentalsys.EINVAL
	}
	n, err := o.f.WriteAt(buf, off)
	return n, errno(err)
}

func (o *osFile) Truncate(size int64) experimentalsys.Errno {
	if e := o.check(true); e != 0 {
		return e
	}
	if size < 0 {
		return experimentalsys.EINVAL
	}
	return errno(o.f.Truncate(size))
}

func (o *osFile) Sync() experimentalsys.Errno {
	if o.closed {
		return experimentalsys.EBADF
	}
	return errno(o.f.Sync())
}

func (o *osFile) Datasync() experimentalsys.Errno {
	if o.closed {
		return experimentalsys.EBADF
	}
	return errno(unix.Fdatasync(int(o.f.Fd())))
}

func (o *osFile) Utimens(atim, mtim int64) experimentalsys.Errno {
	if o.closed {
		return experimentalsys.EBADF
	}
	if o.readOnly {
		// A descriptor from a read-only mount must not be a way to change it.
		return experimentalsys.EROFS
	}
	return futimens(o.f, atim, mtim)
}

// futimens sets the times of the file behind f's descriptor.
func futimens(f *os.File, atim, mtim int64) experimentalsys.Errno {
	ts := [2]unix.Timespec{toTimespec(atim), toTimespec(mtim)}
	// utimensat(fd, NULL, ...) acts on the descriptor itself (Linux).
	_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, f.Fd(), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
	if e != 0 {
		return errno(e)
	}
	return 0
}

func toTimespec(ns int64) unix.Timespec {
	if ns == experimentalsys.UTIME_OMIT {
		return unix.Timespec{Nsec: unix.UTIME_OMIT}
	}
	return unix.NsecToTimespec(ns)
}

func (o *osFile) Close() experimentalsys.Errno {
	if o.closed {
		return 0
	}
	o.closed = true
	// The adapter closes its current descriptor: o.f, or a directory it
	// reopened to rewind; closing o.f again is then harmless.
	e := o.File.Close()
	if err := o.f.Close(); err != nil && !errors.Is(err, os.ErrClosed) && e == 0 {
		e = errno(err)
	}
	return e
}

// reopenFS is the fs.FS behind wazero's adapter: its first Open hands over
// the descriptor rootFS opened; later ones (directory rewinds) reopen the
// same name through the root, so they stay confined.
type reopenFS struct {
	root  *os.Root
	first *os.File
}

func (r *reopenFS) Open(name string) (fs.File, error) {
	if f := r.first; f != nil {
		r.first = nil
		return f, nil
	}
	return r.root.Open(name)
}
