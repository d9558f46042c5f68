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
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
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

// ModuleInPlace returns the bytes of the built-in module name where they lie
// in the binary's read-only data, without Module's copy: a 9.5 MB module
// then costs no heap, and Release can give its pages back once it is
// compiled. The bytes must never be written (the memory is read-only: a
// write faults). When the embedded file cannot be reached in place, it
// returns Module's copy.
func ModuleInPlace(name string) ([]byte, error) {
	if b, ok := inPlace("wasm/" + name + ".wasm"); ok {
		return b, nil
	}
	return Module(name)
}

// embeddedFile is embed.FS's file entry: the compiler lays embed.FS out as
// a pointer to a sorted slice of these (cmd/compile's WriteEmbed; the
// layout of Go 1.16 to this day).
type embeddedFile struct {
	name string
	data string
	hash [16]byte
}

// inPlace finds path in files and returns its data as a []byte aliasing
// the embedded string. It checks its reading of embed.FS against the
// package's own view (size, first and last bytes), so a changed layout
// falls back to copying rather than to wrong bytes.
func inPlace(path string) ([]byte, bool) {
	list := *(**[]embeddedFile)(unsafe.Pointer(&files))
	if list == nil {
		return nil, false
	}
	for _, f := range *list {
		if f.name != path {
			continue
		}
		fi, err := fs.Stat(files, path)
		if err != nil || fi.Size() != int64(len(f.data)) || len(f.data) == 0 {
			return nil, false
		}
		file, err := files.Open(path)
		if err != nil {
			return nil, false
		}
		defer file.Close()
		ra, ok := file.(interface {
			ReadAt([]byte, int64) (int, error)
		})
		if !ok {
			return nil, false
		}
		var head, tail [8]byte
		n := min(len(head), len(f.data))
		if _, err := ra.ReadAt(head[:n], 0); err != nil || string(head[:n]) != f.data[:n] {
			return nil, false
		}
		if _, err := ra.ReadAt(tail[:n], int64(len(f.data)-n)); err != nil || string(tail[:n]) != f.data[len(f.data)-n:] {
			return nil, false
		}
		return unsafe.Slice(unsafe.StringData(f.data), len(f.data)), true
	}
	return nil, false
}

// Release lets the kernel drop from memory the pages of the built-in module
// name that lie in the binary (they are read from the binary file again
// if touched): once a module is compiled, its bytes are not needed, and
// reading them made its 9.5 MB resident. A hint: errors are ignored.
func Release(name string) {
	b, ok := inPlace("wasm/" + name + ".wasm")
	if !ok {
		return
	}
	page := uintptr(os.Getpagesize())
	start := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	first := (start + page - 1) &^ (page - 1)
	last := (start + uintptr(len(b))) &^ (page - 1)
	if last <= first {
		return
	}
	whole := unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(b)), first-start)), last-first)
	_ = unix.Madvise(whole, unix.MADV_DONTNEED)
}
