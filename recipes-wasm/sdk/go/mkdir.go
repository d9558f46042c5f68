package recipe

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
)

// MkdirAll creates the directory path and its missing parents, as SlapOS's
// mkdirectory does (os.makedirs(path, mode)): the parents with mode 0755,
// path itself with mode, group and other write bits dropped (0777 gives
// 0755); an existing directory is left as it is. It returns how many
// directories it made.
//
// It is one host call, slapnode.mkdir (docs/wasm-abi.md §6): through WASI
// a guest can give a new directory no mode at all, and pays a stat per
// component. Like Chmod it needs no grant and acts only inside the call's
// read-write mounts; for a path elsewhere (an existing directory of a
// read-only mount) it looks through WASI, which can only find directories
// there or fail.
func (c Context) MkdirAll(path string, mode os.FileMode) (int, error) {
	if mode&(os.ModeSetuid|os.ModeSetgid|os.ModeSticky) != 0 {
		return 0, fmt.Errorf("creating %s: mode %v: recipes may only set permission bits (0777)", path, mode)
	}
	req := append(appendString(append(make([]byte, 0, 32+len(path)), `{"path":`...), path), `,"mode":`...)
	req = append(strconv.AppendUint(req, uint64(mode.Perm()), 10), '}')
	raw, err := c.callRaw("mkdir", platformMkdir, req)
	if err != nil {
		return 0, fmt.Errorf("creating %s: %w", path, err)
	}
	created, msg, fallback, err := decodeMkdirResponse(raw)
	if err != nil {
		return 0, fmt.Errorf("creating %s: host function mkdir answered malformed JSON (%v): %.200s", path, err, raw)
	}
	if fallback {
		return makeDirs(path, mode&^0o022)
	}
	if msg != "" {
		return 0, fmt.Errorf("creating %s: %s", path, msg)
	}
	return created, nil
}

// makeDirs is MkdirAll through the file system itself, and counts what it
// made: path with mode, its missing parents 0755. Outside WebAssembly it
// is the whole of MkdirAll (tests without a host); in WebAssembly only the
// fallback for a path outside the read-write mounts, where os.Chmod can
// set no mode (WASI has none) and the host gives new directories 0755.
func makeDirs(path string, mode os.FileMode) (int, error) {
	st, err := os.Stat(path)
	if err == nil {
		if !st.IsDir() {
			return 0, fmt.Errorf("%s exists and is not a directory", path)
		}
		return 0, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return 0, err
	}
	n := 0
	if parent := filepath.Dir(path); parent != path {
		if n, err = makeDirs(parent, 0o755); err != nil {
			return n, err
		}
	}
	if err := os.Mkdir(path, 0o700); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return n, nil
		}
		return n, fmt.Errorf("creating %s: %w", path, err)
	}
	return n + 1, os.Chmod(path, mode)
}
