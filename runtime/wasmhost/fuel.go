package wasmhost

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"
)

// Fuel: how an untrusted module is stopped at its time limit
// (docs/adr/0013-fuel-counter-for-untrusted-modules.md).
//
// wazero's own mechanism (WithCloseOnContextDone) compiles a call out to Go
// into every loop header; on a guest that loops over its input that call is
// most of the cost of a recipe call (docs/benchmarks.md). Instead, the
// module is rewritten when it is loaded: a counter (a new mutable i32
// global) is decremented at the entry of every function and at the head of
// every loop, and when it reaches zero the guest calls slapnode.fuel, a
// host function that stops the call (sys.ExitError, as wazero does) once
// its context is done and otherwise refills the counter. Every unbounded
// execution path goes through a loop header or a function entry, so a
// guest cannot run more than fuelRefill of those without the host checking
// its deadline; between two of them it runs straight-line code of one
// function body.
//
// Rewriting walks every instruction of the module. A module using an
// instruction this rewriter does not know (a proposal it does not cover:
// GC, for instance) is not rewritten: it runs with wazero's check instead,
// as before (instrument returns errNotInstrumented).

// fuelRefill is how many function entries and loop iterations a guest
// runs between two checks of its deadline: a check costs a call out to Go
// (~0.1 µs), so at this rate it is lost in the noise, and even loops of
// long straight-line bodies come back to the host within milliseconds.
const fuelRefill = 10000

// fuelImport is the host function the instrumented code calls.
const fuelImport = "fuel"

var errNotInstrumented = errors.New("not instrumented")

// fuel is slapnode.fuel: () -> i32, the counter's next value.
func fuel(ctx context.Context, mod api.Module) uint32 {
	if err := ctx.Err(); err != nil {
		code := uint32(sys.ExitCodeContextCanceled)
		if errors.Is(err, context.DeadlineExceeded) {
			code = sys.ExitCodeDeadlineExceeded
		}
		// As wazero's own check does: close the instance (the session
		// discards it) and unwind the guest's stack.
		_ = mod.CloseWithExitCode(ctx, code)
		panic(sys.NewExitError(code))
	}
	return fuelRefill
}

// wasm section ids.
const (
	secCustom   = 0
	secType     = 1
	secImport   = 2
	secFunction = 3
	secTable    = 4
	secGlobal   = 6
	secExport   = 7
	secStart    = 8
	secElement  = 9
	secCode     = 10
	secData     = 11
)

// instrument returns wasm rewritten with a fuel counter, or
// errNotInstrumented (wrapped) when it cannot be (then the caller uses
// wazero's check), or another error for a module that imports slapnode.fuel
// itself.
func instrument(wasm []byte) ([]byte, error) {
	if len(wasm) < 8 || !bytes.Equal(wasm[:8], []byte("\x00asm\x01\x00\x00\x00")) {
		return nil, fmt.Errorf("%w: not a wasm 1 binary", errNotInstrumented)
	}
	type section struct {
		id   byte
		body []byte
	}
	var secs []section
	r := &reader{b: wasm, i: 8}
	for !r.done() {
		id := r.byte()
		n := r.u32()
		body := r.bytes(int(n))
		if r.err != nil {
			return nil, fmt.Errorf("%w: %v", errNotInstrumented, r.err)
		}
		secs = append(secs, section{id, body})
	}
	// First pass: what the rewrite needs to know.
	var nTypes, nFuncImports, nGlobalImports uint32
	for _, s := range secs {
		r := &reader{b: s.body}
		switch s.id {
		case secType:
			nTypes = r.u32()
		case secImport:
			n := r.u32()
			for k := uint32(0); k < n && r.err == nil; k++ {
				mod, name := r.name(), r.name()
				if mod == "slapnode" && name == fuelImport {
					return nil, errors.New("imports slapnode.fuel, which this host does not provide to modules")
				}
				switch kind := r.byte(); kind {
				case 0:
					r.u32()
					nFuncImports++
				case 1:
					r.refType()
					r.limits()
				case 2:
					r.limits()
				case 3:
					r.valType()
					r.byte()
					nGlobalImports++
				case 4:
					r.byte()
					r.u32()
				default:
					r.fail("import kind %#x", kind)
				}
			}
		case secTable:
			// A table with an initialiser expression (0x40 0x00) could
			// hold ref.func: not rewritten here.
			n := r.u32()
			for k := uint32(0); k < n && r.err == nil; k++ {
				if r.peek() == 0x40 {
					r.fail("table with an initialiser")
					break
				}
				r.refType()
				r.limits()
			}
		}
		if r.err != nil {
			return nil, fmt.Errorf("%w: %v", errNotInstrumented, r.err)
		}
	}
	// The counter and the import take the first index after the imported
	// globals and functions, and the module's own move up by one: an index
	// that was out of range in the module stays out of range, so no code
	// of the module can name the counter or the import.
	rw := &rewriter{fuelFunc: nFuncImports, fuelGlobal: nGlobalImports}

	var out bytes.Buffer
	out.Write(wasm[:8])
	emit := func(id byte, body []byte) {
		out.WriteByte(id)
		out.Write(uleb(uint64(len(body))))
		out.Write(body)
	}
	have := map[byte]bool{}
	for _, s := range secs {
		have[s.id] = true
	}
	fuelType := nTypes
	newType := []byte{0x60, 0x00, 0x01, 0x7f} // () -> i32
	newImport := append(append(wasmName("slapnode"), wasmName(fuelImport)...), append([]byte{0x00}, uleb(uint64(fuelType))...)...)
	newGlobal := append([]byte{0x7f, 0x01, 0x41}, append(sleb(fuelRefill), 0x0b)...)
	// Sections missing from the module are added in their place in the
	// order the binary format requires (type 1, import 2, global 6).
	order := func(id byte) int {
		// Custom sections keep their place; data count (12) and tag
		// (13) sit between others, as the format orders them.
		switch id {
		case 12:
			return 95 // before code (10)
		case 13:
			return 55 // after memory (5), before global (6)
		}
		return int(id) * 10
	}
	added := map[byte]bool{}
	addMissing := func(before int) {
		for _, id := range []byte{secType, secImport, secGlobal} {
			if !have[id] && !added[id] && order(id) < before {
				added[id] = true
				switch id {
				case secType:
					emit(secType, append(uleb(1), newType...))
				case secImport:
					emit(secImport, append(uleb(1), newImport...))
				case secGlobal:
					emit(secGlobal, append(uleb(1), newGlobal...))
				}
			}
		}
	}
	for _, s := range secs {
		if s.id != secCustom {
			addMissing(order(s.id))
		}
		var body []byte
		var err error
		switch s.id {
		case secType:
			body, err = appendToVector(s.body, newType)
		case secImport:
			body, err = appendToVector(s.body, newImport)
		case secGlobal:
			body, err = rw.globals(s.body, newGlobal)
		case secExport:
			body, err = rw.exports(s.body)
		case secStart:
			r := &reader{b: s.body}
			body = uleb(uint64(rw.fn(r.u32())))
			err = r.err
		case secElement:
			body, err = rw.elements(s.body)
		case secData:
			body, err = rw.data(s.body)
		case secCode:
			body, err = rw.code(s.body)
		case secCustom:
			r := &reader{b: s.body}
			if r.name() == "name" {
				// Debug names keyed by function index: shifted, or
				// dropped when they do not parse.
				if body, err = rw.names(s.body); err != nil {
					continue
				}
				break
			}
			body = s.body
		default:
			body = s.body
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errNotInstrumented, err)
		}
		emit(s.id, body)
	}
	addMissing(1 << 30)
	return out.Bytes(), nil
}

// rewriter shifts function indices past the new import and inserts the
// fuel check.
type rewriter struct {
	fuelFunc, fuelGlobal uint32
}

// fn maps a function index of the original module to the rewritten one.
func (rw *rewriter) fn(i uint32) uint32 {
	if i >= rw.fuelFunc {
		return i + 1
	}
	return i
}

// global maps a global index of the original module to the rewritten one.
func (rw *rewriter) global(i uint32) uint32 {
	if i >= rw.fuelGlobal {
		return i + 1
	}
	return i
}

// check is the code run at each function entry and loop header:
//
//	global.get $fuel  i32.eqz  if  call $fuel  global.set $fuel  end
//	global.get $fuel  i32.const 1  i32.sub  global.set $fuel
func (rw *rewriter) check() []byte {
	g, f := uleb(uint64(rw.fuelGlobal)), uleb(uint64(rw.fuelFunc))
	var b []byte
	b = append(append(append(b, 0x23), g...), 0x45, 0x04, 0x40, 0x10)
	b = append(append(append(b, f...), 0x24), g...)
	b = append(append(append(b, 0x0b, 0x23), g...), 0x41, 0x01, 0x6b, 0x24)
	return append(b, g...)
}

func (rw *rewriter) exports(body []byte) ([]byte, error) {
	r := &reader{b: body}
	n := r.u32()
	out := uleb(uint64(n))
	for k := uint32(0); k < n && r.err == nil; k++ {
		out = append(out, wasmName(r.name())...)
		kind := r.byte()
		idx := r.u32()
		switch kind {
		case 0:
			idx = rw.fn(idx)
		case 3:
			idx = rw.global(idx)
		}
		out = append(append(out, kind), uleb(uint64(idx))...)
	}
	return out, r.end()
}

// globals rewrites the global section with the counter first.
func (rw *rewriter) globals(body, counter []byte) ([]byte, error) {
	r := &reader{b: body}
	n := r.u32()
	out := append(uleb(uint64(n)+1), counter...)
	for k := uint32(0); k < n && r.err == nil; k++ {
		start := r.i
		r.valType()
		r.byte()
		out = append(out, body[start:r.i]...)
		out = rw.constExpr(r, out)
	}
	return out, r.end()
}

// constExpr copies a constant expression, shifting ref.func.
func (rw *rewriter) constExpr(r *reader, out []byte) []byte {
	for r.err == nil {
		start := r.i
		op := r.byte()
		switch op {
		case 0x0b: // end
			return append(out, op)
		case 0x41:
			r.sleb(32)
		case 0x42:
			r.sleb(64)
		case 0x43:
			r.bytes(4)
		case 0x44:
			r.bytes(8)
		case 0x23: // global.get
			idx := r.u32()
			out = append(append(out, op), uleb(uint64(rw.global(idx)))...)
			continue
		case 0xd0: // ref.null
			r.heapType()
		case 0xd2: // ref.func
			idx := r.u32()
			out = append(append(out, op), uleb(uint64(rw.fn(idx)))...)
			continue
		case 0x6a, 0x6b, 0x6c, 0x7c, 0x7d, 0x7e: // extended constant expressions
		case 0xfd: // v128.const
			if sub := r.u32(); sub != 12 {
				r.fail("constant expression opcode 0xfd %d", sub)
			}
			r.bytes(16)
		default:
			r.fail("constant expression opcode %#x", op)
		}
		out = append(out, r.b[start:r.i]...)
	}
	return out
}

func (rw *rewriter) elements(body []byte) ([]byte, error) {
	r := &reader{b: body}
	n := r.u32()
	out := uleb(uint64(n))
	for k := uint32(0); k < n && r.err == nil; k++ {
		flags := r.u32()
		out = append(out, uleb(uint64(flags))...)
		if flags > 7 {
			r.fail("element segment flags %d", flags)
			break
		}
		if flags&2 != 0 && flags&1 == 0 { // explicit table index
			out = append(out, uleb(uint64(r.u32()))...)
		}
		if flags&1 == 0 { // active: offset
			out = rw.constExpr(r, out)
		}
		if flags&3 != 0 { // elemkind or reftype
			start := r.i
			if flags&4 != 0 {
				r.refType()
			} else {
				r.byte()
			}
			out = append(out, r.b[start:r.i]...)
		}
		m := r.u32()
		out = append(out, uleb(uint64(m))...)
		for j := uint32(0); j < m && r.err == nil; j++ {
			if flags&4 != 0 {
				out = rw.constExpr(r, out)
			} else {
				out = append(out, uleb(uint64(rw.fn(r.u32())))...)
			}
		}
	}
	return out, r.end()
}

func (rw *rewriter) code(body []byte) ([]byte, error) {
	r := &reader{b: body}
	n := r.u32()
	out := uleb(uint64(n))
	check := rw.check()
	var fn []byte
	for k := uint32(0); k < n && r.err == nil; k++ {
		size := r.u32()
		f := &reader{b: r.bytes(int(size))}
		if r.err != nil {
			break
		}
		fn = fn[:0]
		locals := f.u32()
		for j := uint32(0); j < locals && f.err == nil; j++ {
			f.u32()
			f.valType()
		}
		fn = append(fn, f.b[:f.i]...)
		fn = append(fn, check...)
		fn = rw.instructions(f, fn, check)
		if f.err != nil {
			return nil, fmt.Errorf("function %d: %v", k, f.err)
		}
		out = append(out, uleb(uint64(len(fn)))...)
		out = append(out, fn...)
	}
	return out, r.end()
}

// data rewrites the offsets of active data segments (global.get).
func (rw *rewriter) data(body []byte) ([]byte, error) {
	r := &reader{b: body}
	n := r.u32()
	out := uleb(uint64(n))
	for k := uint32(0); k < n && r.err == nil; k++ {
		flags := r.u32()
		out = append(out, uleb(uint64(flags))...)
		switch flags {
		case 0:
			out = rw.constExpr(r, out)
		case 1:
		case 2:
			out = append(out, uleb(uint64(r.u32()))...)
			out = rw.constExpr(r, out)
		default:
			r.fail("data segment flags %d", flags)
		}
		size := r.u32()
		out = append(append(out, uleb(uint64(size))...), r.bytes(int(size))...)
	}
	return out, r.end()
}

// instructions copies a function body, shifting function indices and
// adding check after each loop's block type.
func (rw *rewriter) instructions(r *reader, out, check []byte) []byte {
	for !r.done() && r.err == nil {
		start := r.i
		op := r.byte()
		switch op {
		case 0x10, 0x12, 0xd2: // call, return_call, ref.func
			idx := r.u32()
			out = append(append(out, op), uleb(uint64(rw.fn(idx)))...)
			continue
		case 0x23, 0x24: // global.get, global.set
			idx := r.u32()
			out = append(append(out, op), uleb(uint64(rw.global(idx)))...)
			continue
		case 0x03: // loop
			r.blockType()
			out = append(out, r.b[start:r.i]...)
			out = append(out, check...)
			continue
		case 0x02, 0x04, 0x06: // block, if, try
			r.blockType()
		case 0x07, 0x08, 0x09, 0x18, 0x0c, 0x0d, 0xd4, 0xd6, 0x14, 0x15, // tag, label and type indices
			0x20, 0x21, 0x22, 0x25, 0x26, 0x3f, 0x40:
			r.u32()
		case 0x0e: // br_table
			m := r.u32()
			for j := uint32(0); j <= m && r.err == nil; j++ {
				r.u32()
			}
		case 0x11, 0x13: // call_indirect, return_call_indirect
			r.u32()
			r.u32()
		case 0x1c: // select t*
			m := r.u32()
			for j := uint32(0); j < m && r.err == nil; j++ {
				r.valType()
			}
		case 0x1f: // try_table
			r.blockType()
			m := r.u32()
			for j := uint32(0); j < m && r.err == nil; j++ {
				if kind := r.byte(); kind < 2 {
					r.u32()
				}
				r.u32()
			}
		case 0x41:
			r.sleb(32)
		case 0x42:
			r.sleb(64)
		case 0x43:
			r.bytes(4)
		case 0x44:
			r.bytes(8)
		case 0xd0:
			r.heapType()
		case 0xfc:
			switch sub := r.u32(); {
			case sub <= 7:
			case sub == 8, sub == 12, sub == 10, sub == 14:
				r.u32()
				r.u32()
			case sub == 9, sub == 11, sub == 13, sub >= 15 && sub <= 17:
				r.u32()
			default:
				r.fail("opcode 0xfc %d", sub)
			}
		case 0xfd:
			switch sub := r.u32(); {
			case sub <= 11, sub == 92, sub == 93:
				r.memarg()
			case sub == 12, sub == 13:
				r.bytes(16)
			case sub >= 21 && sub <= 34:
				r.byte()
			case sub >= 84 && sub <= 91:
				r.memarg()
				r.byte()
			case sub > 0x113:
				r.fail("opcode 0xfd %d", sub)
			}
		case 0xfe:
			if sub := r.u32(); sub == 3 {
				r.byte()
			} else if sub <= 0x4e {
				r.memarg()
			} else {
				r.fail("opcode 0xfe %d", sub)
			}
		default:
			switch {
			case op >= 0x28 && op <= 0x3e:
				r.memarg()
			case op <= 0x01, op == 0x05, op == 0x0a, op == 0x0b, op == 0x0f, op == 0x19,
				op == 0x1a, op == 0x1b, op >= 0x45 && op <= 0xc4, op == 0xd1, op == 0xd3, op == 0xd5:
			default:
				r.fail("opcode %#x", op)
			}
		}
		out = append(out, r.b[start:r.i]...)
	}
	return out
}

// names rewrites the name custom section: function, local and label names
// are keyed by function index.
func (rw *rewriter) names(body []byte) ([]byte, error) {
	r := &reader{b: body}
	out := wasmName(r.name())
	for !r.done() && r.err == nil {
		id := r.byte()
		sub := &reader{b: r.bytes(int(r.u32()))}
		if r.err != nil {
			break
		}
		var nb []byte
		switch id {
		case 1, 7: // function and global names: vec(idx name)
			shift := rw.fn
			if id == 7 {
				shift = rw.global
			}
			n := sub.u32()
			nb = uleb(uint64(n))
			for k := uint32(0); k < n && sub.err == nil; k++ {
				nb = append(nb, uleb(uint64(shift(sub.u32())))...)
				nb = append(nb, wasmName(sub.name())...)
			}
		case 2, 3: // local and label names: vec(funcidx namemap)
			n := sub.u32()
			nb = uleb(uint64(n))
			for k := uint32(0); k < n && sub.err == nil; k++ {
				nb = append(nb, uleb(uint64(rw.fn(sub.u32())))...)
				start := sub.i
				m := sub.u32()
				for j := uint32(0); j < m && sub.err == nil; j++ {
					sub.u32()
					sub.name()
				}
				nb = append(nb, sub.b[start:sub.i]...)
			}
		default:
			nb = sub.b
			sub.i = len(sub.b)
		}
		if err := sub.end(); err != nil {
			return nil, err
		}
		out = append(append(append(out, id), uleb(uint64(len(nb)))...), nb...)
	}
	return out, r.end()
}

// appendToVector appends an encoded item to a section that is one vector.
func appendToVector(body, item []byte) ([]byte, error) {
	r := &reader{b: body}
	n := r.u32()
	if r.err != nil {
		return nil, r.err
	}
	out := uleb(uint64(n) + 1)
	out = append(out, body[r.i:]...)
	return append(out, item...), nil
}

// reader decodes the wasm binary format; the first error sticks.
type reader struct {
	b   []byte
	i   int
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf(format, args...)
	}
	r.i = len(r.b)
}

func (r *reader) done() bool { return r.i >= len(r.b) }

func (r *reader) end() error {
	if r.err == nil && r.i != len(r.b) {
		r.err = fmt.Errorf("%d bytes left over", len(r.b)-r.i)
	}
	return r.err
}

func (r *reader) peek() byte {
	if r.done() {
		r.fail("unexpected end")
		return 0
	}
	return r.b[r.i]
}

func (r *reader) byte() byte {
	if r.done() {
		r.fail("unexpected end")
		return 0
	}
	r.i++
	return r.b[r.i-1]
}

func (r *reader) bytes(n int) []byte {
	if n < 0 || r.i+n > len(r.b) {
		r.fail("unexpected end")
		return nil
	}
	r.i += n
	return r.b[r.i-n : r.i]
}

func (r *reader) uleb() uint64 {
	var v uint64
	for shift := 0; shift < 64; shift += 7 {
		c := r.byte()
		v |= uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			return v
		}
	}
	r.fail("LEB128 too long")
	return 0
}

func (r *reader) u32() uint32 {
	v := r.uleb()
	if v > 1<<32-1 {
		r.fail("u32 out of range")
	}
	return uint32(v)
}

// sleb skips a signed LEB128 of at most bits bits.
func (r *reader) sleb(bits int) {
	for n := 0; n <= (bits+6)/7; n++ {
		if r.byte()&0x80 == 0 {
			return
		}
	}
	r.fail("signed LEB128 too long")
}

func (r *reader) name() string { return string(r.bytes(int(r.u32()))) }

// valType skips a value type (number, vector or reference type).
func (r *reader) valType() {
	switch b := r.byte(); b {
	case 0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f, 0x69:
	case 0x63, 0x64:
		r.heapType()
	default:
		r.fail("value type %#x", b)
	}
}

func (r *reader) refType() {
	switch b := r.byte(); b {
	case 0x70, 0x6f, 0x69:
	case 0x63, 0x64:
		r.heapType()
	default:
		r.fail("reference type %#x", b)
	}
}

// heapType skips a heap type: an abstract one (one byte) or a type index
// (s33).
func (r *reader) heapType() { r.sleb(33) }

func (r *reader) blockType() {
	switch b := r.peek(); b {
	case 0x40, 0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f, 0x69:
		r.byte()
	case 0x63, 0x64:
		r.byte()
		r.heapType()
	default:
		r.sleb(33) // a type index
	}
}

func (r *reader) limits() {
	flags := r.byte()
	if flags > 7 {
		r.fail("limits flags %#x", flags)
		return
	}
	r.uleb()
	if flags&1 != 0 {
		r.uleb()
	}
}

func (r *reader) memarg() {
	align := r.u32()
	if align&0x40 != 0 { // multi-memory: a memory index follows
		r.u32()
	}
	r.uleb()
}

func uleb(v uint64) []byte {
	return binary.AppendUvarint(nil, v)
}

func sleb(v int64) []byte {
	var out []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(out, c)
		}
		out = append(out, c|0x80)
	}
}

func wasmName(s string) []byte {
	return append(uleb(uint64(len(s))), s...)
}
