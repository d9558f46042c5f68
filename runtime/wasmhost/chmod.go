package wasmhost

import (
	"context"
	"io/fs"

	"golang.org/x/sys/unix"

	"github.com/slapnode/slapnode/internal/nofollow"
)

type chmodRequest struct {
	Path string `json:"path"`
	Mode uint32 `json:"mode"`
}

// chmod is slapnode.chmod: WASI preview 1 has no way to set permission bits,
// yet recipes write launchers and unpack configure scripts that must be
// executable. Like log, it needs no grant, so it is narrow (issue 18 #9):
//
//   - only inside the session's read-write mounts, and never on a mount's
//     directory itself (a partition directory's mode is the node's) nor on
//     an older version's state (.slapnode);
//   - never through a symlink, the last component included: the mount is
//     a partition directory its user may have planted links in, and an
//     "inside" link (x -> .) would otherwise reach the mount itself;
//   - never on a hard link to a file of another owner than the one the
//     recipe works for (the partition's user, or the node's without a
//     credential): its other name may be outside the mount;
//   - permission bits only, and group and other write bits are dropped
//     (0777 gives 0755, 0666 gives 0644): nothing a recipe makes is
//     writable by other users. The setuid, setgid and sticky bits are
//     refused.
func (h *Host) chmod(ctx context.Context, st *callState, req []byte) any {
	var r chmodRequest
	if err := decode(req, &r); err != nil {
		return errorf("chmod: bad request: %v", err)
	}
	if r.Mode&^0o777 != 0 {
		return errorf("chmod %s: mode %#o: only permission bits (0777) may be set", r.Path, r.Mode)
	}
	best, name, err := writableMount(st, "chmod", r.Path)
	if err != nil {
		return errorResponse{Error: err.Error()}
	}
	// The mount's own handle, opened when the session began: no path
	// resolved again from the file system's root on every call.
	fd, err := best.dir.OpenPath(name)
	if err != nil {
		return errorf("chmod %s: %v", r.Path, err)
	}
	defer unix.Close(fd)
	var fst unix.Stat_t
	if err := unix.Fstat(fd, &fst); err != nil {
		return errorf("chmod %s: %v", r.Path, err)
	}
	owner := best.owner // the session's credential, else the node's euid
	switch {
	case fst.Mode&unix.S_IFMT == unix.S_IFLNK:
		return errorf("chmod %s: %v", r.Path, nofollow.ErrSymlink)
	case fst.Mode&unix.S_IFMT != unix.S_IFDIR && fst.Nlink > 1 && int(fst.Uid) != owner:
		return errorf("chmod %s: a hard link (%d links) to a file of uid %d: refusing to change it", r.Path, fst.Nlink, fst.Uid)
	}
	if err := nofollow.Fchmod(fd, fs.FileMode(r.Mode&^0o022)); err != nil {
		return errorf("chmod %s: %v", r.Path, err)
	}
	return struct{}{}
}
