//go:build !wasip1

package recipe

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
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
