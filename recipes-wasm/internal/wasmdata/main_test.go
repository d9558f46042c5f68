package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// image is the memory the data section initialises, up to its last byte.
func image(t *testing.T, module []byte) (mem []byte, segments int, rest []byte) {
	t.Helper()
	for i := 8; i < len(module); {
		n, j, err := uleb(module, i+1)
		if err != nil {
			t.Fatal(err)
		}
		end := j + int(n)
		if module[i] == 11 {
			segs, err := readData(module[j:end])
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range segs {
				if need := int(s.offset) + len(s.data); need > 64<<20 {
					t.Skip("data beyond 64 MiB: not compared")
				} else if need > len(mem) {
					mem = append(mem, make([]byte, need-len(mem))...)
				}
				copy(mem[s.offset:], s.data)
			}
			segments = len(segs)
		} else {
			rest = append(rest, module[i:end]...)
		}
		i = end
	}
	return mem, segments, rest
}

func module(sections ...[]byte) []byte {
	b := []byte("\x00asm\x01\x00\x00\x00")
	for _, s := range sections {
		b = append(b, s...)
	}
	return b
}

func section(id byte, body []byte) []byte {
	return append(appendULEB([]byte{id}, uint64(len(body))), body...)
}

// TestMerge: the merged module initialises the same memory with fewer
// segments and keeps every other section byte for byte.
func TestMerge(t *testing.T) {
	segs := []segment{
		{offset: 0x10000, data: []byte("abc")},
		{offset: 0x10003 + 9, data: []byte("def")},    // 9 zeros between: merged
		{offset: 0x10000 + 4096, data: []byte("ghi")}, // far: a segment of its own
		{offset: 0x10000 + 4099, data: []byte("jkl")}, // adjacent, out of order below
		{offset: 1 << 20, data: []byte("high")},       // a three-byte signed offset
	}
	shuffled := []segment{segs[3], segs[0], segs[4], segs[1], segs[2]}
	in := module(section(1, []byte{1, 0x60, 0, 0}), section(0, []byte("\x04name\x00")), section(11, writeData(shuffled)), section(0, []byte("\x03end")))
	nIn, nOut, _ := mergeSame(t, in)
	if nIn != 5 || nOut != 3 {
		t.Errorf("segments %d → %d, want 5 → 3", nIn, nOut)
	}
}

// mergeSame merges in's data segments and checks that the result has the
// same memory image and the same other sections; it returns the segment
// counts before and after, and the merged module.
func mergeSame(t *testing.T, in []byte) (nIn, nOut int, out []byte) {
	t.Helper()
	out, err := mergeData(in, maxGap)
	if err != nil {
		t.Fatal(err)
	}
	memIn, nIn, restIn := image(t, in)
	memOut, nOut, restOut := image(t, out)
	if !bytes.Equal(memIn, memOut) || !bytes.Equal(restIn, restOut) {
		t.Fatal("the merged module differs in memory image or other sections")
	}
	return nIn, nOut, out
}

// TestMergeCookbook: on the built cookbook (make runtime/builtin/wasm/
// cookbook.wasm), the same memory image from far fewer segments.
func TestMergeCookbook(t *testing.T) {
	in, err := os.ReadFile(filepath.Join("..", "..", "..", "runtime", "builtin", "wasm", "cookbook.wasm"))
	if err != nil {
		t.Skip("the cookbook is not built here:", err)
	}
	nIn, nOut, out := mergeSame(t, in)
	if nOut > 1000 {
		t.Errorf("%d segments after merging", nOut)
	}
	t.Logf("%d → %d segments, %d → %d bytes", nIn, nOut, len(in), len(out))
	// Merging twice changes nothing.
	if again, err := mergeData(out, maxGap); err != nil || !bytes.Equal(again, out) {
		t.Errorf("not idempotent: %v", err)
	}
}

// TestMergeRefuses: what Go's linker does not write is an error, not a
// guess.
func TestMergeRefuses(t *testing.T) {
	overlap := writeData([]segment{{offset: 100, data: []byte("abcd")}, {offset: 102, data: []byte("x")}})
	passive := append(appendULEB(nil, 1), 1, 3, 'a', 'b', 'c')
	for name, m := range map[string][]byte{
		"overlap":    module(section(11, overlap)),
		"passive":    module(section(11, passive)),
		"data count": module(section(12, []byte{0}), section(11, writeData(nil))),
		"truncated":  module([]byte{11, 10, 1}),
		"not wasm":   []byte("hello world"),
	} {
		if _, err := mergeData(m, maxGap); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzMergeData: on any input mergeData either refuses or returns a module
// with the same memory image and the same other sections (mergeSame), and
// merging again changes nothing more.
func FuzzMergeData(f *testing.F) {
	f.Add(module(section(1, []byte{1, 0x60, 0, 0}), section(11, writeData([]segment{
		{offset: 16, data: []byte("abc")}, {offset: 22, data: []byte("def")}, {offset: 9000, data: []byte("g")},
	}))))
	f.Add(module(section(11, writeData(nil))))
	f.Add(module([]byte{11, 10, 1}))
	f.Fuzz(func(t *testing.T, in []byte) {
		if _, err := mergeData(in, maxGap); err != nil {
			return
		}
		_, nOut, out := mergeSame(t, in)
		_, again, _ := mergeSame(t, out)
		if again != nOut {
			t.Errorf("merging again: %d → %d segments", nOut, again)
		}
	})
}
