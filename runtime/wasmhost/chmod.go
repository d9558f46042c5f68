package wasmhost

import (
	"context"
	"io/fs"
	"path/filepath"
)

type chmodRequest struct {
	Path string `json:"path"`
	Mode uint32 `json:"mode"`
}

// chmod is slapnode.chmod: WASI preview 1 has no way to set permission bits,
// yet recipes write launchers and unpack configure scripts that must be
// executable. It acts only inside the session's read-write mounts, through
// the same os.Root as the guest's file system, and never sets the setuid,
// setgid or sticky bits. Like log, it needs no grant.
func (h *Host) chmod(ctx context.Context, st *callState, req []byte) any {
	var r chmodRequest
	if err := decode(req, &r); err != nil {
		return errorf("chmod: bad request: %v", err)
	}
	if r.Mode&^0o777 != 0 {
		return errorf("chmod %s: mode %#o: only permission bits (0777) may be set", r.Path, r.Mode)
	}
	if !filepath.IsAbs(r.Path) {
		return errorf("chmod %s: give an absolute path", r.Path)
	}
	if _, err := st.s.fs(); err != nil {
		return errorf("chmod %s: %v", r.Path, err)
	}
	p := filepath.Clean(r.Path)
	var best *rootFS
	for _, root := range st.s.roots {
		dir := root.root.Name()
		if within(dir, p) && (best == nil || len(dir) > len(best.root.Name())) {
			best = root
		}
	}
	if best == nil {
		return errorf("chmod %s: outside the directories this recipe is granted", r.Path)
	}
	if best.readOnly {
		return errorf("chmod %s: %s is mounted read-only", r.Path, best.root.Name())
	}
	name, err := filepath.Rel(best.root.Name(), p)
	if err != nil {
		return errorf("chmod %s: %v", r.Path, err)
	}
	if err := best.root.Chmod(name, fs.FileMode(r.Mode)); err != nil {
		return errorf("chmod %s: %v", r.Path, err)
	}
	return struct{}{}
}
