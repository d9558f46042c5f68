//go:build !wasip1

package recipe

import (
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
func platformChmod([]byte) ([]byte, error)    { return nil, errNoHost }
