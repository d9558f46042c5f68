package wasmhost

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"github.com/tetratelabs/wazero/experimental/sysfs"
	"github.com/tetratelabs/wazero/sys"
	"golang.org/x/sys/unix"
)

// rootFS is the guest's view of one granted directory. Every path operation
// goes through an *os.Root, so the kernel-backed confinement of os.Root (no
// "..", no absolute or escaping symlinks) applies even to symlinks the guest
// created itself; wazero's own DirFS forwards paths unchecked and is not a
// jail (see docs/adr/0001-wasm-fs-jail.md).
type rootFS struct {
	experimentalsys.UnimplementedFS
	root     *os.Root
	real     string // the mount's real path, to place new symlinks
	readOnly bool
}

// newRootFS opens dir as a confined file system. The caller closes the
// returned root when the session ends.
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
	return &rootFS{root: r, real: real, readOnly: readOnly}, nil
}

func (f *rootFS) String() string { return f.root.Name() }

func (f *rootFS) close() error { return f.root.Close() }

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
		if fi, err := f.root.Lstat(name); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return nil, experimentalsys.ELOOP
		}
	}
	file, err := f.root.OpenFile(name, of, perm)
	if err != nil {
		return nil, errno(err)
	}
	of2 := &osFile{f: file, flag: flag, readOnly: f.readOnly}
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

func (f *rootFS) Lstat(p string) (sys.Stat_t, experimentalsys.Errno) {
	name, _ := rel(p)
	fi, err := f.root.Lstat(name)
	if err != nil {
		return sys.Stat_t{}, errno(err)
	}
	return sys.NewStat_t(fi), 0
}

func (f *rootFS) Stat(p string) (sys.Stat_t, experimentalsys.Errno) {
	name, _ := rel(p)
	fi, err := f.root.Stat(name)
	if err != nil {
		return sys.Stat_t{}, errno(err)
	}
	return sys.NewStat_t(fi), 0
}

func (f *rootFS) Mkdir(p string, perm fs.FileMode) experimentalsys.Errno {
	if f.readOnly {
		return experimentalsys.EROFS
	}
	name, _ := rel(p)
	return errno(f.root.Mkdir(name, perm))
}

func (f *rootFS) Chmod(p string, perm fs.FileMode) experimentalsys.Errno {
	if f.readOnly {
		return experimentalsys.EROFS
	}
	name, _ := rel(p)
	return errno(f.root.Chmod(name, perm))
}

func (f *rootFS) Rename(from, to string) experimentalsys.Errno {
	if f.readOnly {
		return experimentalsys.EROFS
	}
	a, _ := rel(from)
	b, _ := rel(to)
	return errno(f.root.Rename(a, b))
}

func (f *rootFS) Rmdir(p string) experimentalsys.Errno {
	if f.readOnly {
		return experimentalsys.EROFS
	}
	name, _ := rel(p)
	if name == "." {
		return experimentalsys.EPERM // never remove the mount itself
	}
	fi, err := f.root.Lstat(name)
	if err != nil {
		return errno(err)
	}
	if !fi.IsDir() {
		return experimentalsys.ENOTDIR
	}
	return errno(f.root.Remove(name))
}

func (f *rootFS) Unlink(p string) experimentalsys.Errno {
	if f.readOnly {
		return experimentalsys.EROFS
	}
	name, _ := rel(p)
	fi, err := f.root.Lstat(name)
	if err != nil {
		return errno(err)
	}
	if fi.IsDir() {
		return experimentalsys.EISDIR
	}
	return errno(f.root.Remove(name))
}

func (f *rootFS) Link(oldPath, newPath string) experimentalsys.Errno {
	if f.readOnly {
		return experimentalsys.EROFS
	}
	a, _ := rel(oldPath)
	b, _ := rel(newPath)
	return errno(f.root.Link(a, b))
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
	return errno(f.root.Symlink(target, name))
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
	// os.Root.Chtimes leaves a time unchanged when given the zero time.
	toTime := func(ns int64) time.Time {
		if ns == experimentalsys.UTIME_OMIT {
			return time.Time{}
		}
		return time.Unix(0, ns)
	}
	return errno(f.root.Chtimes(name, toTime(atim), toTime(mtim)))
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
	ts := [2]unix.Timespec{toTimespec(atim), toTimespec(mtim)}
	// utimensat(fd, NULL, ...) acts on the descriptor itself (Linux).
	_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, o.f.Fd(), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
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
