package wasmhost

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// callState is what host functions know about the entry-point call in
// progress. It travels in the call's context because one host module serves
// every instance of a runtime.
type callState struct {
	h     *Host
	s     *Session // nil while a module is being described
	m     *Module
	entry string
	part  string
	net   []netPattern // module grants plus, for promises, their own

	mu      sync.Mutex
	logged  int
	capped  bool
	pending []byte // response of the last request, for slapnode.response
	fault   error  // guest misbehaviour found by a host function
}

type stateKey struct{}

func withState(ctx context.Context, st *callState) context.Context {
	return context.WithValue(ctx, stateKey{}, st)
}

func stateFrom(ctx context.Context) *callState {
	st, _ := ctx.Value(stateKey{}).(*callState)
	return st
}

// setFault records the first misbehaviour; the call then fails and its
// instance is discarded.
func (st *callState) setFault(err error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.fault == nil {
		st.fault = err
	}
}

func (st *callState) takeFault() error {
	if st == nil {
		return nil
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	err := st.fault
	st.fault = nil
	return err
}

var levelNames = [...]string{"DEBUG", "INFO", "WARN", "ERROR"}

// log applies the caps of docs/wasm-abi.md §6 and hands the line to the
// host's Logger and the session's Log.
func (st *callState) log(level int, msg string) {
	if level < 0 {
		level = 0
	}
	if level > 3 {
		level = 3
	}
	if len(msg) > MaxLogPerMessage {
		cut := MaxLogPerMessage
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut] + fmt.Sprintf(" [… %d bytes cut]", len(msg)-cut)
	}
	st.mu.Lock()
	if st.capped {
		st.mu.Unlock()
		return
	}
	st.logged += len(msg)
	if st.logged > MaxLogPerCall {
		st.capped = true
		level, msg = 2, fmt.Sprintf("log cap of %d MiB reached for this call; further messages dropped", MaxLogPerCall>>20)
	}
	st.mu.Unlock()
	if st.h.cfg.Logger != nil {
		st.h.cfg.Logger(st.m.Name, st.part, level, msg)
	}
	if st.s != nil && st.s.cfg.Log != nil {
		who := st.m.Name
		if st.part != "" {
			who += "/" + st.part
		}
		st.s.logMu.Lock()
		fmt.Fprintf(st.s.cfg.Log, "%s %s: %s\n", levelNames[level], who, msg)
		st.s.logMu.Unlock()
	}
}

// instantiateSlapnode links the host functions of docs/wasm-abi.md §6 into rt.
func (h *Host) instantiateSlapnode(ctx context.Context, rt wazero.Runtime) error {
	i32 := api.ValueTypeI32
	b := rt.NewHostModuleBuilder("slapnode")
	b.NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(hostLog), []api.ValueType{i32, i32, i32}, nil).
		WithParameterNames("level", "ptr", "len").Export("log")
	b.NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(hostResponse), []api.ValueType{i32}, nil).
		WithParameterNames("ptr").Export("response")
	for name, handler := range map[string]requestHandler{
		"download":   h.download,
		"exec":       h.exec,
		"tcp_probe":  h.tcpProbe,
		"http_get":   h.httpGet,
		"chmod":      h.chmod,
		"write_file": h.writeFile,
		"mkdir":      h.mkdir,
	} {
		b.NewFunctionBuilder().
			WithGoModuleFunction(request(name, handler), []api.ValueType{i32, i32}, []api.ValueType{i32}).
			WithParameterNames("ptr", "len").Export(name)
	}
	// Called by the code fuel.go adds to untrusted modules, not by guests
	// themselves: Load refuses modules that import it.
	b.NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, mod api.Module, stack []uint64) {
			stack[0] = api.EncodeU32(fuel(ctx, mod))
		}), nil, []api.ValueType{i32}).Export(fuelImport)
	if _, err := b.Instantiate(ctx); err != nil {
		return fmt.Errorf("wasmhost: instantiate slapnode host functions: %w", err)
	}
	return nil
}

func hostLog(ctx context.Context, mod api.Module, stack []uint64) {
	st := stateFrom(ctx)
	if st == nil {
		return
	}
	level := int(api.DecodeI32(stack[0]))
	ptr, n := api.DecodeU32(stack[1]), api.DecodeU32(stack[2])
	// Read at most what the caps let through, so a huge length costs nothing.
	want := n
	if want > MaxLogPerMessage+1 {
		want = MaxLogPerMessage + 1
	}
	b, ok := mod.Memory().Read(ptr, want)
	if !ok {
		st.setFault(fmt.Errorf("slapnode.log: message pointer %#x length %d lies outside the guest's memory", ptr, n))
		return
	}
	msg := string(b)
	if n > want {
		msg += fmt.Sprintf(" [… %d bytes cut]", n-want)
	}
	st.log(level, strings.TrimRight(msg, "\n"))
}

func hostResponse(ctx context.Context, mod api.Module, stack []uint64) {
	st := stateFrom(ctx)
	if st == nil {
		return
	}
	ptr := api.DecodeU32(stack[0])
	st.mu.Lock()
	resp := st.pending
	st.pending = nil
	st.mu.Unlock()
	if !mod.Memory().Write(ptr, resp) {
		st.setFault(fmt.Errorf("slapnode.response: buffer %#x of %d bytes lies outside the guest's memory", ptr, len(resp)))
	}
}

// requestHandler serves one JSON request and returns the value to encode
// as the response.
type requestHandler func(ctx context.Context, st *callState, req []byte) any

type errorResponse struct {
	Error string `json:"error"`
}

func errorf(format string, args ...any) errorResponse {
	return errorResponse{Error: fmt.Sprintf(format, args...)}
}

// request adapts a handler to the (ptr, len) -> i32 convention: the
// response waits in the call state for slapnode.response.
func request(name string, handler requestHandler) api.GoModuleFunc {
	return func(ctx context.Context, mod api.Module, stack []uint64) {
		st := stateFrom(ctx)
		ptr, n := api.DecodeU32(stack[0]), api.DecodeU32(stack[1])
		if st == nil {
			stack[0] = api.EncodeI32(-1)
			return
		}
		if n > maxRequest {
			st.setFault(fmt.Errorf("slapnode.%s: request of %d bytes exceeds %d KiB", name, n, maxRequest>>10))
			stack[0] = api.EncodeI32(-1)
			return
		}
		b, ok := mod.Memory().Read(ptr, n)
		if !ok {
			st.setFault(fmt.Errorf("slapnode.%s: request pointer %#x length %d lies outside the guest's memory", name, ptr, n))
			stack[0] = api.EncodeI32(-1)
			return
		}
		req := bytes.Clone(b)
		var resp any
		if st.s == nil {
			resp = errorf("slapnode.%s is not available while the module is being described", name)
		} else {
			resp = handler(ctx, st, req)
		}
		out, err := json.Marshal(resp)
		if err != nil {
			out, _ = json.Marshal(errorf("slapnode.%s: encode response: %v", name, err))
		}
		st.mu.Lock()
		st.pending = out
		st.mu.Unlock()
		stack[0] = api.EncodeI32(int32(len(out)))
	}
}

// decode parses a request. Unknown fields are ignored so that SDKs may
// send fields a later minor revision of the ABI reads.
func decode(req []byte, v any) error {
	return json.Unmarshal(req, v)
}
