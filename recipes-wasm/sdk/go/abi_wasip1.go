//go:build wasip1

package recipe

import (
	"fmt"
	"runtime"
	"unsafe"
)

// Buffers handed to the host live in globals: the host writes the input into
// inBuf after abi_alloc and reads the result from outBuf after the call
// returns, so both must stay reachable (and therefore unmoved and unfreed by
// Go's non-moving GC) until the next call into the guest replaces them.
var (
	inBuf  []byte
	outBuf []byte
)

//go:wasmexport abi_version
func abiVersion() int32 { return ABIVersion }

// maxReused bounds the buffers kept from one call to the next, so that
// one large input or output does not stay allocated for the instance's
// life.
const maxReused = 64 << 10

//go:wasmexport abi_alloc
func abiAlloc(n int32) unsafe.Pointer {
	if n < 1 {
		// A valid, distinct pointer even for an empty input.
		n = 1
	}
	// The last input is reused: nothing refers to it once its call
	// returned (Dispatch decodes from a copy, see input), and the host
	// calls abi_alloc only between calls.
	if int(n) <= cap(inBuf) && cap(inBuf) <= maxReused {
		inBuf = inBuf[:n]
	} else {
		inBuf = make([]byte, n)
	}
	return unsafe.Pointer(&inBuf[0])
}

// pack returns b as the packed pointer/length of docs/wasm-abi.md §2.
func pack(b []byte) uint64 {
	outBuf = b
	if len(b) == 0 {
		return 0
	}
	return uint64(uintptr(unsafe.Pointer(&outBuf[0])))<<32 | uint64(len(b))
}

// input is the call's input in the host-written buffer (inBuf), not a
// copy: the host writes it only after abi_alloc, which no call makes while
// another runs (host functions answer through slapnode.response, docs/
// wasm-abi.md §6), and Dispatch decodes it whole, from one copy of it
// that its strings share, before a recipe runs.
func input(ptr unsafe.Pointer, n uint32) []byte {
	if n == 0 || ptr == nil {
		return nil
	}
	return unsafe.Slice((*byte)(ptr), n)
}

//go:wasmexport abi_describe
func abiDescribe() uint64 { return pack(defaultRegistry.Describe()) }

// The exports pass a nil Host: Context then uses the platform bindings
// below (platformLog, platformDownload, …), each referenced only by the
// Context method that needs it.

//go:wasmexport recipe_install
func recipeInstall(ptr unsafe.Pointer, n uint32) uint64 {
	return dispatch(EntryInstall, ptr, n)
}

//go:wasmexport recipe_update
func recipeUpdate(ptr unsafe.Pointer, n uint32) uint64 {
	return dispatch(EntryUpdate, ptr, n)
}

//go:wasmexport recipe_uninstall
func recipeUninstall(ptr unsafe.Pointer, n uint32) uint64 {
	return dispatch(EntryUninstall, ptr, n)
}

//go:wasmexport promise_check
func promiseCheck(ptr unsafe.Pointer, n uint32) uint64 {
	return dispatch(EntryCheck, ptr, n)
}

// dispatch runs an entry point and writes its output over the previous
// one, which the host copied before this call (docs/wasm-abi.md §2).
func dispatch(entry string, ptr unsafe.Pointer, n uint32) uint64 {
	var dst []byte
	if cap(outBuf) <= maxReused {
		dst = outBuf[:0]
	}
	return pack(defaultRegistry.appendDispatch(dst, entry, input(ptr, n), nil))
}

//go:wasmimport slapnode log
func hostLog(level int32, ptr unsafe.Pointer, n uint32)

//go:wasmimport slapnode response
func hostResponse(ptr unsafe.Pointer)

//go:wasmimport slapnode download
func hostDownload(ptr unsafe.Pointer, n uint32) int32

//go:wasmimport slapnode exec
func hostExec(ptr unsafe.Pointer, n uint32) int32

//go:wasmimport slapnode tcp_probe
func hostTCPProbe(ptr unsafe.Pointer, n uint32) int32

//go:wasmimport slapnode http_get
func hostHTTPGet(ptr unsafe.Pointer, n uint32) int32

//go:wasmimport slapnode chmod
func hostChmod(ptr unsafe.Pointer, n uint32) int32

//go:wasmimport slapnode write_file
func hostWriteFile(ptr unsafe.Pointer, n uint32) int32

//go:wasmimport slapnode mkdir
func hostMkdir(ptr unsafe.Pointer, n uint32) int32

func platformLog(level Level, message string) {
	if message == "" {
		return
	}
	b := []byte(message)
	hostLog(int32(level), unsafe.Pointer(&b[0]), uint32(len(b)))
	runtime.KeepAlive(b)
}

func platformDownload(req []byte) ([]byte, error)  { return exchange(hostDownload, req) }
func platformExec(req []byte) ([]byte, error)      { return exchange(hostExec, req) }
func platformTCPProbe(req []byte) ([]byte, error)  { return exchange(hostTCPProbe, req) }
func platformHTTPGet(req []byte) ([]byte, error)   { return exchange(hostHTTPGet, req) }
func platformChmod(req []byte) ([]byte, error)     { return exchange(hostChmod, req) }
func platformWriteFile(req []byte) ([]byte, error) { return exchange(hostWriteFile, req) }
func platformMkdir(req []byte) ([]byte, error)     { return exchange(hostMkdir, req) }

// exchange performs the two-step call of docs/wasm-abi.md §6: the import
// returns the response length, then response copies the response into a
// buffer the guest allocated, so the host never calls back into the guest.
func exchange(fn func(unsafe.Pointer, uint32) int32, request []byte) ([]byte, error) {
	if len(request) == 0 {
		request = []byte("{}")
	}
	n := fn(unsafe.Pointer(&request[0]), uint32(len(request)))
	runtime.KeepAlive(request)
	if n < 0 {
		return nil, fmt.Errorf("the host could not read the request (code %d)", n)
	}
	if n == 0 {
		return nil, fmt.Errorf("the host returned an empty response")
	}
	resp := make([]byte, n)
	hostResponse(unsafe.Pointer(&resp[0]))
	return resp, nil
}
