// Command wasmdata rewrites a WebAssembly module's data section so that
// active segments closer than a few bytes are one segment, the gap filled
// with the zeros memory holds there anyway.
//
// Go's linker starts a new data segment at every run of more than 8 zero
// bytes: the cookbook has about 100,000 segments, and wazero evaluates each
// one's offset and copies it into memory at every instantiation, which was
// half of a session's first call (6 of 12 ms, with 117,000 allocations on
// the host). Merged, the module has a few dozen segments and is 1 MB
// larger. The memory image after instantiation is unchanged (TestMerge).
//
// Usage: go run ./internal/wasmdata -in cookbook.wasm -out merged.wasm
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
)

// maxGap is the widest run of zeros merged into a segment: wider gaps are
// rare in Go's output (see the package comment) and cost module bytes.
const maxGap = 64

func main() {
	in := flag.String("in", "", "module to read")
	out := flag.String("out", "", "module to write")
	flag.Parse()
	if err := run(*in, *out); err != nil {
		fmt.Fprintln(os.Stderr, "wasmdata:", err)
		os.Exit(1)
	}
}

func run(in, out string) error {
	if in == "" || out == "" {
		return errors.New("usage: wasmdata -in module.wasm -out merged.wasm")
	}
	b, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	m, err := mergeData(b, maxGap)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	tmp := out + ".tmp"
	if err := os.WriteFile(tmp, m, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, out)
}

// segment is an active data segment of memory 0 at a constant offset.
type segment struct {
	offset uint32
	data   []byte
}

// mergeData returns module b with its data segments merged where at most
// gap zero bytes separate them. Every other section is copied as is. A
// module whose data section holds anything but active segments of memory
// 0 at i32.const offsets, or overlapping segments, is an error: it is not
// what Go's linker writes.
func mergeData(b []byte, gap uint32) ([]byte, error) {
	if len(b) < 8 || !bytes.Equal(b[:4], []byte("\x00asm")) {
		return nil, errors.New("not a WebAssembly module")
	}
	out := append([]byte(nil), b[:8]...)
	for i := 8; i < len(b); {
		id := b[i]
		n, j, err := uleb(b, i+1)
		if err != nil {
			return nil, err
		}
		end := j + int(n)
		if end > len(b) || end < j {
			return nil, fmt.Errorf("section %d at byte %d runs past the end", id, i)
		}
		switch id {
		case 12:
			// A data count section would have to change with the
			// segments; Go's linker writes none.
			return nil, errors.New("the module has a data count section")
		case 11:
			segs, err := readData(b[j:end])
			if err != nil {
				return nil, fmt.Errorf("data section: %w", err)
			}
			body := writeData(merge(segs, gap))
			out = append(out, 11)
			out = appendULEB(out, uint64(len(body)))
			out = append(out, body...)
		default:
			out = append(out, b[i:end]...)
		}
		i = end
	}
	return out, nil
}

func readData(b []byte) ([]segment, error) {
	count, i, err := uleb(b, 0)
	if err != nil {
		return nil, err
	}
	// Each segment takes at least five bytes: a larger count is a lie,
	// and would size the slice from it.
	if count > uint64(len(b)-i)/5 {
		return nil, fmt.Errorf("%d segments cannot fit in a section of %d bytes", count, len(b))
	}
	segs := make([]segment, 0, count)
	for range count {
		// Flag 0: active, memory 0, offset expression i32.const N; end.
		if i+2 > len(b) || b[i] != 0 || b[i+1] != 0x41 {
			return nil, fmt.Errorf("segment %d is not an active segment at an i32.const offset", len(segs))
		}
		off, k, err := sleb32(b, i+2)
		if err != nil {
			return nil, err
		}
		if k >= len(b) || b[k] != 0x0b {
			return nil, fmt.Errorf("segment %d: offset expression is not a single i32.const", len(segs))
		}
		n, k, err := uleb(b, k+1)
		if err != nil {
			return nil, err
		}
		if k+int(n) > len(b) || k+int(n) < k {
			return nil, fmt.Errorf("segment %d runs past the section", len(segs))
		}
		segs = append(segs, segment{offset: uint32(off), data: b[k : k+int(n)]})
		i = k + int(n)
	}
	if i != len(b) {
		return nil, errors.New("bytes after the last segment")
	}
	sort.SliceStable(segs, func(x, y int) bool { return segs[x].offset < segs[y].offset })
	for x := 1; x < len(segs); x++ {
		if prevEnd := uint64(segs[x-1].offset) + uint64(len(segs[x-1].data)); prevEnd > uint64(segs[x].offset) {
			return nil, fmt.Errorf("segments at %d and %d overlap", segs[x-1].offset, segs[x].offset)
		}
	}
	return segs, nil
}

// merge joins sorted, non-overlapping segments separated by at most gap bytes.
func merge(segs []segment, gap uint32) []segment {
	var out []segment
	owned := false // whether the last merged segment's data is our own buffer
	for _, s := range segs {
		if len(out) > 0 {
			last := &out[len(out)-1]
			end := last.offset + uint32(len(last.data))
			if s.offset-end <= gap {
				if !owned {
					// Copy once, then grow in place: never write into
					// the input module.
					last.data = append([]byte(nil), last.data...)
					owned = true
				}
				last.data = append(last.data, make([]byte, s.offset-end)...)
				last.data = append(last.data, s.data...)
				continue
			}
		}
		out = append(out, segment{offset: s.offset, data: s.data})
		owned = false
	}
	return out
}

func writeData(segs []segment) []byte {
	b := appendULEB(nil, uint64(len(segs)))
	for _, s := range segs {
		b = append(b, 0, 0x41)
		b = appendSLEB(b, int64(int32(s.offset)))
		b = append(b, 0x0b)
		b = appendULEB(b, uint64(len(s.data)))
		b = append(b, s.data...)
	}
	return b
}

func uleb(b []byte, i int) (uint64, int, error) {
	var v uint64
	for shift := uint(0); shift < 64; shift += 7 {
		if i >= len(b) {
			return 0, i, errors.New("truncated LEB128 number")
		}
		c := b[i]
		i++
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v, i, nil
		}
	}
	return 0, i, errors.New("LEB128 number too long")
}

// sleb32 reads a signed LEB128 i32 (an i32.const operand).
func sleb32(b []byte, i int) (int32, int, error) {
	var v int64
	shift := uint(0)
	for {
		if i >= len(b) || shift >= 35 {
			return 0, i, errors.New("bad i32.const operand")
		}
		c := b[i]
		i++
		v |= int64(c&0x7f) << shift
		shift += 7
		if c < 0x80 {
			if c&0x40 != 0 && shift < 64 {
				v |= -1 << shift
			}
			return int32(v), i, nil
		}
	}
}

func appendULEB(b []byte, v uint64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func appendSLEB(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}
