// Package builtin holds the WebAssembly modules embedded in the slapnode
// binary (the cookbook and the built-in promises), addressed in profiles as
// "builtin:NAME".
//
// The .wasm files are build outputs (make wasm), not sources: a binary built
// without them still works, and says how to build them when one is asked for.
package builtin

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"
)

//go:embed wasm
var files embed.FS

// Module returns the bytes of the built-in module name ("cookbook").
func Module(name string) ([]byte, error) {
	b, err := files.ReadFile("wasm/" + name + ".wasm")
	if err != nil {
		if known := Names(); len(known) == 0 {
			return nil, fmt.Errorf("built-in module %q is not in this slapnode binary: it was built without its WebAssembly modules (run 'make' to build them)", name)
		}
		return nil, fmt.Errorf("unknown built-in module %q (built in: %s)", name, strings.Join(Names(), ", "))
	}
	return b, nil
}

// Names lists the built-in modules present in this binary.
func Names() []string {
	var names []string
	entries, _ := fs.ReadDir(files, "wasm")
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".wasm"); ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}
