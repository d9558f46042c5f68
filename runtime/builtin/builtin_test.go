package builtin

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"strings"
	"testing"
)

func TestModules(t *testing.T) {
	names := Names()
	if len(names) == 0 {
		if os.Getenv("SLAPNODE_REQUIRE_WASM") != "" {
			t.Fatal("built without its WebAssembly modules")
		}
		if _, err := Module("cookbook"); err == nil || !strings.Contains(err.Error(), "make") {
			t.Fatalf("missing modules: %v", err)
		}
		t.Skip("built without its WebAssembly modules (make wasm)")
	}
	b, err := Module("cookbook")
	if err != nil || !bytes.HasPrefix(b, []byte("\x00asm")) {
		t.Fatalf("cookbook: %v (%d bytes)", err, len(b))
	}
	if _, err := Module("nope"); err == nil || !strings.Contains(err.Error(), "cookbook") {
		t.Fatalf("unknown module: %v", err)
	}
}

// TestDigest: the digest recorded at build time is the embedded bytes'
// (make writes both; a module rebuilt by hand without its record is
// refused by Digest, not trusted).
func TestDigest(t *testing.T) {
	names := Names()
	if len(names) == 0 {
		t.Skip("built without its WebAssembly modules (make wasm)")
	}
	for _, n := range names {
		b, err := Module(n)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		d, ok := Digest(n)
		if !ok {
			if os.Getenv("SLAPNODE_REQUIRE_WASM") != "" {
				t.Fatalf("%s: no build-time digest beside it (make writes %s.wasm.sha256)", n, n)
			}
			continue
		}
		if d != hex.EncodeToString(sum[:]) {
			t.Fatalf("%s: recorded digest %s, bytes hash to %x", n, d, sum)
		}
	}
	if _, ok := Digest("nope"); ok {
		t.Fatal("digest of an unknown module")
	}
}

// TestModuleInPlace: the module seen in place is the module, byte for
// byte, and stays so after Release (its pages are read again from the
// binary).
func TestModuleInPlace(t *testing.T) {
	if len(Names()) == 0 {
		t.Skip("built without its WebAssembly modules (make wasm)")
	}
	want, err := Module("cookbook")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := inPlace("wasm/cookbook.wasm"); !ok {
		t.Fatal("the embedded cookbook cannot be reached in place")
	}
	for i := 0; i < 2; i++ {
		got, err := ModuleInPlace("cookbook")
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("in place: %d bytes, %v; want the %d bytes of Module", len(got), err, len(want))
		}
		Release("cookbook")
	}
	if _, err := ModuleInPlace("nope"); err == nil {
		t.Fatal("unknown module in place")
	}
}
