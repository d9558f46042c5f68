// Package builtin holds the WebAssembly modules embedded in the slapnode
// binary (the cookbook and the built-in promises), addressed in profiles as
// "builtin:NAME".
//
// The .wasm files are build outputs (make wasm), not sources: a binary built
// without them still works, and says how to build them when one is asked for.
//
// Each module's sha256 is computed when it is built (NAME.wasm.sha256, "HEX
// SIZE", written by recipes-wasm/cookbook.mk) and embedded beside it, so
// that a run that only needs the module's identity — a no-op re-apply
// comparing part signatures — neither reads nor hashes its megabytes.
package builtin

import (
	"embed"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
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

var digestLine = regexp.MustCompile(`^([0-9a-f]{64}) ([0-9]+)\n?$`)

// Digest returns the sha256 (hex) of the built-in module name as recorded
// when it was built, without reading the module. ok is false when there is
// no record, or when the record does not describe the embedded file (its
// size differs: the module was rebuilt without its record); callers then
// hash Module's bytes themselves. Loading a module compares the recorded
// digest with the bytes' (partition.Engine), and TestDigest checks it.
func Digest(name string) (digest string, ok bool) {
	rec, err := files.ReadFile("wasm/" + name + ".wasm.sha256")
	if err != nil {
		return "", false
	}
	m := digestLine.FindSubmatch(rec)
	if m == nil {
		return "", false
	}
	size, err := strconv.ParseInt(string(m[2]), 10, 64)
	if err != nil {
		return "", false
	}
	fi, err := fs.Stat(files, "wasm/"+name+".wasm")
	if err != nil || fi.Size() != size {
		return "", false
	}
	return string(m[1]), true
}
