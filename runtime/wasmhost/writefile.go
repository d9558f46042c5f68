package wasmhost

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"golang.org/x/sys/unix"
)

// writeFileHeader is the JSON line that starts a slapnode.write_file
// request; the file's bytes follow the newline, raw (a rendered template
// is not escaped into a JSON string and decoded again).
type writeFileHeader struct {
	Path string `json:"path"`
	Mode uint32 `json:"mode"`
	Size int64  `json:"size"`
}

// writeFileResponse is write_file's answer: {} on success; MissingDir says
// that the file's directory does not exist (the guest creates it, with the
// mode rules of its own mkdir, and asks again).
type writeFileResponse struct {
	Error      string `json:"error,omitempty"`
	MissingDir bool   `json:"missing_dir,omitempty"`
}

// writableMount finds the read-write mount of the session that holds the
// absolute path p, and p's name inside it, with slapnode.chmod's rules:
// never a read-only mount, never the mount's directory itself, never node
// state (.slapnode). op names the function in the messages.
func writableMount(st *callState, op, p string) (*rootFS, string, error) {
	if !filepath.IsAbs(p) {
		return nil, "", fmt.Errorf("%s %s: give an absolute path", op, p)
	}
	if _, err := st.s.fs(); err != nil {
		return nil, "", fmt.Errorf("%s %s: %v", op, p, err)
	}
	p = filepath.Clean(p)
	var best *rootFS
	for _, root := range st.s.roots {
		dir := root.root.Name()
		if within(dir, p) && (best == nil || len(dir) > len(best.root.Name())) {
			best = root
		}
	}
	if best == nil {
		return nil, "", fmt.Errorf("%s %s: outside the directories this recipe is granted", op, p)
	}
	if best.readOnly {
		return nil, "", fmt.Errorf("%s %s: %s is mounted read-only", op, p, best.root.Name())
	}
	name, err := filepath.Rel(best.root.Name(), p)
	if err != nil {
		return nil, "", fmt.Errorf("%s %s: %v", op, p, err)
	}
	if name == "." {
		return nil, "", fmt.Errorf("%s %s: the mount's directory itself keeps the mode the node gave it", op, p)
	}
	if first, _, _ := strings.Cut(filepath.ToSlash(name), "/"); first == ".slapnode" {
		return nil, "", fmt.Errorf("%s %s: the node's state is not the recipe's", op, p)
	}
	return best, name, nil
}

// writeFile is slapnode.write_file: a whole file written as a recipe
// writes a configuration file — into NAME.slapnode-tmp beside it, given
// its mode, then renamed over NAME — in one host call instead of the
// guest's stat, open, write, close, chmod and rename through WASI (each
// a crossing, a path resolution and, in a Go guest, its os package's
// work). It needs no grant, like chmod, and does nothing the guest could
// not do through WASI and chmod: only inside the call's read-write
// mounts, never through a link (the temporary file is opened as WASI's
// path_open opens one, rootFS.openWrite: no link followed, a FIFO never
// blocks, a hard link to another owner's file refused; the rename
// replaces whatever is at NAME, a link included, without following it),
// permission bits only with group and other write dropped (chmod's rule).
func (h *Host) writeFile(_ context.Context, st *callState, req []byte) any {
	head, data, ok := bytes.Cut(req, []byte("\n"))
	if !ok {
		return errorf("write_file: bad request: no newline after the JSON header")
	}
	var r writeFileHeader
	if err := decode(head, &r); err != nil {
		return errorf("write_file: bad request: %v", err)
	}
	if int64(len(data)) != r.Size {
		return errorf("write_file %s: the request carries %d bytes, its header says %d", r.Path, len(data), r.Size)
	}
	if r.Mode&^0o777 != 0 {
		return errorf("write_file %s: mode %#o: only permission bits (0777) may be set", r.Path, r.Mode)
	}
	root, name, err := writableMount(st, "write_file", r.Path)
	if err != nil {
		return writeFileResponse{Error: err.Error()}
	}
	tmp := name + ".slapnode-tmp"
	var fst unix.Stat_t
	f, e := root.openWrite(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600, &fst)
	if e != 0 {
		if e == experimentalsys.ENOENT {
			if _, err := root.dir.Lstat(filepath.Dir(name)); errors.Is(err, fs.ErrNotExist) {
				return writeFileResponse{Error: fmt.Sprintf("write_file %s: %s does not exist", r.Path, filepath.Dir(filepath.Clean(r.Path))), MissingDir: true}
			}
		}
		return errorf("write_file %s: %v", r.Path, e)
	}
	fail := func(err error) any {
		f.Close()
		root.dir.Remove(tmp)
		return errorf("write_file %s: %v", r.Path, err)
	}
	if err := f.Chmod(fs.FileMode(r.Mode &^ 0o022)); err != nil {
		return fail(err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		root.dir.Remove(tmp)
		return errorf("write_file %s: %v", r.Path, err)
	}
	if err := root.dir.Rename(tmp, name); err != nil {
		root.dir.Remove(tmp)
		return errorf("write_file %s: %v", r.Path, err)
	}
	return struct{}{}
}
