package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	recipe "github.com/slapnode/slapnode/recipes-wasm/sdk/go"
)

// answerHost answers every host function as the host answers a call
// that succeeded without work (a directory that exists, a file written),
// so that BenchmarkDispatch measures the guest's own code: the same
// decoding, recipe and encoding the WebAssembly exports run.
type answerHost struct{}

func (answerHost) Log(recipe.Level, string) {}

func (answerHost) Call(function string, _ []byte) ([]byte, error) {
	if function == "mkdir" {
		return []byte(`{"created":0}`), nil
	}
	return []byte(`{}`), nil
}

// BenchmarkDispatch runs the calls of cmd/slapbench/testdata (those of
// the converted 1000-part first-apply profile, and publish) through the
// cookbook's registry natively: the profile for the guest's CPU per call
// (go test -bench Dispatch -cpuprofile), which runs 10-15x slower in
// WebAssembly (runtime/wasmhost's BenchmarkCallWasm).
func BenchmarkDispatch(b *testing.B) {
	for _, name := range []string{"mkdirectory", "template", "publish"} {
		b.Run(name, func(b *testing.B) {
			input, err := os.ReadFile(filepath.Join("..", "..", "cmd", "slapbench", "testdata", "call-"+name+".json"))
			if err != nil {
				b.Fatal(err)
			}
			input = bytes.ReplaceAll(input, []byte("@DIR@"), []byte("/srv/slapnode"))
			g := recipe.Default()
			if out := g.Dispatch(recipe.EntryInstall, input, answerHost{}); !bytes.Contains(out, []byte(`"error":""`)) {
				b.Fatalf("%s", out)
			}
			b.ReportAllocs()
			for b.Loop() {
				g.Dispatch(recipe.EntryInstall, input, answerHost{})
			}
		})
	}
}
