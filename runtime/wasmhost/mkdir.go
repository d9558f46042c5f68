package wasmhost

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

type mkdirRequest struct {
	Path string `json:"path"`
	Mode uint32 `json:"mode"`
}

// mkdirResponse is slapnode.mkdir's answer: how many directories it made.
// Fallback says the path is not in one of the call's read-write mounts:
// the guest then looks for itself (an existing directory of a read-only
// mount is no error), as through WASI.
type mkdirResponse struct {
	Created  int    `json:"created"`
	Error    string `json:"error,omitempty"`
	Fallback bool   `json:"fallback,omitempty"`
}

// mkdir is slapnode.mkdir: a directory and its missing parents made in one
// host call, as SlapOS's mkdirectory makes them (os.makedirs(path, mode):
// the parents with the usual 0755, the directory itself with mode) —
// through WASI a guest can neither give a new directory its mode nor make
// one without a stat per component first. chmod's rules: only inside the
// call's read-write mounts, never through a link (nofollow: an existing
// component that is a link is refused), group and other write bits
// dropped (0777 gives 0755). Needs no grant. An existing directory is left
// as it is, its mode included.
func (h *Host) mkdir(_ context.Context, st *callState, req []byte) any {
	var r mkdirRequest
	if err := decode(req, &r); err != nil {
		return errorf("mkdir: bad request: %v", err)
	}
	if r.Mode&^0o777 != 0 {
		return errorf("mkdir %s: mode %#o: only permission bits (0777) may be set", r.Path, r.Mode)
	}
	root, name, err := writableMount(st, "mkdir", r.Path)
	if err != nil {
		return mkdirResponse{Error: err.Error(), Fallback: true}
	}
	comps := strings.Split(filepath.ToSlash(name), "/")
	// The deepest component that exists: from the directory up, since a
	// recipe's parents exist far more often than not.
	have := len(comps)
	for ; have > 0; have-- {
		fi, err := root.dir.Lstat(path.Join(comps[:have]...))
		if err == nil {
			if !fi.IsDir() {
				return errorf("mkdir %s: %s exists and is not a directory", r.Path, filepath.Join(root.root.Name(), path.Join(comps[:have]...)))
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return errorf("mkdir %s: %v", r.Path, err)
		}
	}
	created := 0
	for i := have + 1; i <= len(comps); i++ {
		rel := path.Join(comps[:i]...)
		perm := os.FileMode(0o755)
		if i == len(comps) {
			perm = 0o700 // never wider than asked while it is made
		}
		err := root.dir.Mkdir(rel, perm)
		if errors.Is(err, fs.ErrExist) {
			continue // made meanwhile by someone else: left as it is
		}
		if err != nil {
			return errorf("mkdir %s: %v", r.Path, err)
		}
		created++
		if i == len(comps) {
			if err := root.dir.Chmod(rel, os.FileMode(r.Mode&^0o022)); err != nil {
				return errorf("mkdir %s: %v", r.Path, err)
			}
		}
	}
	return mkdirResponse{Created: created}
}
