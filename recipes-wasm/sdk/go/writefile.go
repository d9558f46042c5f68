package recipe

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// WriteFile writes data to path with mode, as a recipe writes a
// configuration file: the host writes it into path.slapnode-tmp beside it,
// sets its mode and renames it over path, so a service reading the file
// never sees it half written, and a write interrupted by a kill leaves a
// temporary file the next write of the same path replaces. Missing parent
// directories are created (0755).
//
// It is one host call, slapnode.write_file (docs/wasm-abi.md §6), instead
// of the stat, open, write, close, chmod and rename a guest makes through
// WASI: in a Go guest each of those runs its os package's work and crosses
// into the host, several hundred microseconds for a small file. Like
// Chmod it needs no grant and acts only inside the call's read-write
// mounts; group and other write bits are dropped (0666 gives 0644).
func (c Context) WriteFile(path string, data []byte, mode os.FileMode) error {
	if mode&(os.ModeSetuid|os.ModeSetgid|os.ModeSticky) != 0 {
		return fmt.Errorf("writing %s: mode %v: recipes may only set permission bits (0777)", path, mode)
	}
	if len(data) > writeFileMaxInline {
		// A host call's request is bounded (1 MiB, docs/wasm-abi.md §6):
		// a larger file is written through WASI, as before slapnode.write_file.
		return c.writeFileWASI(path, data, mode)
	}
	req := append(appendString(append(make([]byte, 0, 48+len(path)+len(data)), `{"path":`...), path), `,"mode":`...)
	req = strconv.AppendUint(req, uint64(mode.Perm()), 10)
	req = append(strconv.AppendInt(append(req, `,"size":`...), int64(len(data)), 10), "}\n"...)
	req = append(req, data...)
	for attempt := 0; ; attempt++ {
		raw, err := c.callRaw("write_file", platformWriteFile, req)
		if err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
		msg, missingDir, err := decodeWriteFileResponse(raw)
		if err != nil {
			return fmt.Errorf("writing %s: host function write_file answered malformed JSON (%v): %.200s", path, err, raw)
		}
		if msg == "" {
			return nil
		}
		if !missingDir || attempt > 0 {
			return fmt.Errorf("writing %s: %s", path, strings.TrimPrefix(msg, "write_file "+path+": "))
		}
		// The first write into a new directory: make it as the guest
		// makes directories, then ask again.
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return fmt.Errorf("creating the directory of %s: %w", path, err)
		}
	}
}

// writeFileMaxInline is the largest file WriteFile hands the host in one
// request: the host refuses requests over 1 MiB, header included.
const writeFileMaxInline = 1<<20 - 64<<10

// writeFileWASI is WriteFile through WASI: the temporary file written by
// the guest, its mode set by slapnode.chmod, then renamed.
func (c Context) writeFileWASI(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("creating the directory of %s: %w", path, err)
	}
	tmp := path + ".slapnode-tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := c.Chmod(mode, tmp); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
