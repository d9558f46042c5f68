package builtin

import (
	"bytes"
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
