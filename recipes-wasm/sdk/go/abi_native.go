//go:build !wasip1

package recipe

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Outside WebAssembly there is no slapnode import module: host functions
// work only through an explicit Host (see package recipetest).
var errNoHost = errors.New("no slapnode host: outside WebAssembly, run recipes through Dispatch with a Host (package recipetest provides one)")

func platformLog(level Level, message string) {
	fmt.Fprintf(os.Stderr, "[%d] %s\n", level, message)
}

func platformDownload([]byte) ([]byte, error) { return nil, errNoHost }
func platformExec([]byte) ([]byte, error)     { return nil, errNoHost }
func platformTCPProbe([]byte) ([]byte, error) { return nil, errNoHost }
func platformHTTPGet([]byte) ([]byte, error)  { return nil, errNoHost }

// platformChmod outside WebAssembly is the operating system's chmod: a
// native build has a real file system (tests without a Host use it).
func platformChmod(req []byte) ([]byte, error) {
	var r chmodRequest
	if err := json.Unmarshal(req, &r); err != nil {
		return nil, err
	}
	if err := os.Chmod(r.Path, os.FileMode(r.Mode)); err != nil {
		return json.Marshal(map[string]string{"error": err.Error()})
	}
	return []byte("{}"), nil
}

// platformWriteFile outside WebAssembly writes the file itself, as the
// host does (tests without a Host use it): a temporary file beside it,
// its mode, a rename.
func platformWriteFile(req []byte) ([]byte, error) {
	head, data, ok := bytes.Cut(req, []byte("\n"))
	if !ok {
		return nil, errors.New("write_file: no newline after the JSON header")
	}
	var r struct {
		Path string `json:"path"`
		Mode uint32 `json:"mode"`
	}
	if err := json.Unmarshal(head, &r); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Dir(r.Path)); errors.Is(err, fs.ErrNotExist) {
		return json.Marshal(map[string]any{"error": err.Error(), "missing_dir": true})
	}
	tmp := r.Path + ".slapnode-tmp"
	err := os.WriteFile(tmp, data, 0o600)
	if err == nil {
		err = os.Chmod(tmp, os.FileMode(r.Mode&^0o022))
	}
	if err == nil {
		err = os.Rename(tmp, r.Path)
	}
	if err != nil {
		os.Remove(tmp)
		return json.Marshal(map[string]string{"error": err.Error()})
	}
	return []byte("{}"), nil
}

// platformMkdir outside WebAssembly makes the directories itself, as the
// host does (tests without a Host use it).
func platformMkdir(req []byte) ([]byte, error) {
	var r struct {
		Path string `json:"path"`
		Mode uint32 `json:"mode"`
	}
	if err := json.Unmarshal(req, &r); err != nil {
		return nil, err
	}
	n, err := makeDirs(r.Path, os.FileMode(r.Mode&^0o022))
	if err != nil {
		return json.Marshal(map[string]string{"error": err.Error()})
	}
	return json.Marshal(map[string]int{"created": n})
}
