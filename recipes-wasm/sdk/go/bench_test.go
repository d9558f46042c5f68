package recipe

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// benchInput reads a call of cmd/slapbench/testdata (those of the
// converted 1000-part first-apply profile).
func benchInput(b *testing.B, name string) []byte {
	input, err := os.ReadFile(filepath.Join("..", "..", "..", "cmd", "slapbench", "testdata", "call-"+name+".json"))
	if err != nil {
		b.Fatal(err)
	}
	return bytes.ReplaceAll(input, []byte("@DIR@"), []byte("/srv/slapnode"))
}

// BenchmarkDecodeInput is the input decoding of a call with the context
// of the previous call (the memo hit of every call of an apply but the
// first).
func BenchmarkDecodeInput(b *testing.B) {
	for _, name := range []string{"mkdirectory", "template", "publish"} {
		b.Run(name, func(b *testing.B) {
			input := benchInput(b, name)
			var cache contextCache
			if _, err := decodeRecipeInput(input, &cache); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				decodeRecipeInput(input, &cache)
			}
		})
	}
}

// BenchmarkMarshalOutput is the encoding of the results of a
// mkdirectory and a template call of that profile.
func BenchmarkMarshalOutput(b *testing.B) {
	const dir = "/srv/slapnode/software/a4cbc1d86d589db9c62fcbb795fca2fd/work/d0004"
	for _, c := range []struct {
		name string
		out  RecipeOutput
	}{
		{"mkdirectory", RecipeOutput{
			Outputs:   map[string]any{"after": "bench-1-0", "id": "4", "label": "bench-4-1", "path": dir},
			Installed: []string{},
			Messages:  []string{"created 0 directories", "not absolute paths, so not created: after, id, label"},
		}},
		{"template", RecipeOutput{
			Outputs:   map[string]any{"location": dir + "/t0005.conf", "output": dir + "/t0005.conf"},
			Installed: []string{dir + "/t0005.conf"},
			Messages:  []string{"rendered " + dir + "/t0005.conf (236 bytes)"},
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				marshalRecipeOutput(c.out)
			}
		})
	}
}
