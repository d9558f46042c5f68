package supervisor

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"

	"github.com/slapnode/slapnode/internal/fsuser"
)

// rotator is an append-only log file rotated by size: when a write would
// take it past max bytes, path becomes path.1, path.1 becomes path.2… and
// only keep (Options.LogKeep) old files are kept. The supervisor owns the
// read end of every service's output pipe, so it rotates without
// signalling the service.
type rotator struct {
	mu     sync.Mutex
	path   string
	max    int64
	keep   int
	f      *os.File
	size   int64
	uid    int // owner of new files: the partition user, so it can read its logs
	gid    int
	groups []int // the partition user's supplementary groups
}

func openRotator(path string, max int64, keep int, cred *Credential) (*rotator, error) {
	r := &rotator{path: path, max: max, keep: keep, uid: -1, gid: -1}
	if cred != nil && os.Geteuid() == 0 {
		r.uid, r.gid = int(cred.Uid), int(cred.Gid)
		r.groups = make([]int, 0, len(cred.Groups))
		for _, g := range cred.Groups {
			r.groups = append(r.groups, int(g))
		}
	}
	err := asUser(r.uid, r.gid, r.groups, func() error {
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return fmt.Errorf("creating log directory: %w", err)
		}
		return r.openFile()
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// asUser runs fn with the filesystem identity of the partition user when
// the supervisor is root (internal/fsuser): the log lives in a directory
// the partition user controls, and a root daemon following a symlink
// planted there (var/log/web.log -> /etc/shadow, var/log -> a directory of
// group root) would append to, rotate or create files anywhere. As the
// user, the kernel refuses that, and new files and directories belong to
// the user.
func asUser(uid, gid int, groups []int, fn func() error) error {
	return fsuser.Do(uid, gid, groups, fn)
}

func (r *rotator) open() error {
	return asUser(r.uid, r.gid, r.groups, r.openFile)
}

// openFile opens the log; O_NOFOLLOW refuses a symlink in its place even in
// rootless mode, and only a regular file is taken: the open is
// non-blocking, since opening a FIFO the partition user put there for
// writing would wait for a reader (the service would never start, and
// stopping it would hang).
func (r *rotator) openFile() error {
	f, err := os.OpenFile(r.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0o640)
	if err != nil {
		if errors.Is(err, syscall.ENXIO) {
			err = fmt.Errorf("%s is not a regular file (a FIFO)", r.path)
		}
		return fmt.Errorf("opening log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("opening log: %w", err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return fmt.Errorf("opening log: %s is not a regular file", r.path)
	}
	r.f, r.size = f, st.Size()
	return nil
}

func (r *rotator) rotate() error {
	r.f.Close()
	r.f = nil
	return asUser(r.uid, r.gid, r.groups, r.rotateFiles)
}

func (r *rotator) rotateFiles() error {
	if r.keep <= 0 {
		if err := os.Remove(r.path); err != nil && !os.IsNotExist(err) {
			return err
		}
	} else {
		for i := r.keep - 1; i >= 1; i-- {
			_ = os.Rename(r.path+"."+strconv.Itoa(i), r.path+"."+strconv.Itoa(i+1))
		}
		if err := os.Rename(r.path, r.path+".1"); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	return r.openFile()
}

// Write splits p across rotations so that no file grows past max, cutting
// at a line end when one fits. It keeps going after a rotation problem
// (writing to the current file): the pump must keep draining the pipe, or
// the service would block on a full pipe.
func (r *rotator) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		if err := r.open(); err != nil {
			return 0, err
		}
	}
	written := 0
	for len(p) > 0 {
		chunk := p
		if r.max > 0 {
			room := r.max - r.size
			if room <= 0 && r.size > 0 {
				if err := r.rotate(); err != nil {
					return written, fmt.Errorf("rotating %s: %w", r.path, err)
				}
				room = r.max
			}
			if int64(len(chunk)) > room {
				chunk = chunk[:max(room, 1)]
				if i := bytes.LastIndexByte(chunk, '\n'); i >= 0 {
					chunk = chunk[:i+1]
				}
			}
		}
		n, err := r.f.Write(chunk)
		r.size += int64(n)
		written += n
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}

// Printf writes a supervisor note (start, exit, stop) into the log, so the
// log alone tells the service's story.
func (r *rotator) Printf(format string, args ...any) {
	fmt.Fprintf(r, "[slapnode] "+format+"\n", args...)
}

func (r *rotator) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}

// pump copies a service's output pipe into its log until every writer (the
// service and any child that inherited the pipe) has closed it.
func pump(rd *os.File, w io.Writer, done chan<- struct{}) {
	defer close(done)
	defer rd.Close()
	buf := make([]byte, 32*1024)
	for {
		n, err := rd.Read(buf)
		if n > 0 {
			_, _ = w.Write(buf[:n])
		}
		if err != nil {
			return
		}
	}
}
