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

// BenchmarkMarshalOutput is the encoding of a template call's result.
func BenchmarkMarshalOutput(b *testing.B) {
	out := RecipeOutput{
		Outputs:   map[string]any{"location": "/srv/slapnode/software/a4cbc1d86d589db9c62fcbb795fca2fd/work/d0004/t0005.conf", "output": "/srv/slapnode/software/a4cbc1d86d589db9c62fcbb795fca2fd/work/d0004/t0005.conf"},
		Installed: []string{"/srv/slapnode/software/a4cbc1d86d589db9c62fcbb795fca2fd/work/d0004/t0005.conf"},
		Messages:  []string{"rendered /srv/slapnode/software/a4cbc1d86d589db9c62fcbb795fca2fd/work/d0004/t0005.conf (236 bytes)"},
	}
	b.ReportAllocs()
	for b.Loop() {
		marshalRecipeOutput(out)
	}
}
