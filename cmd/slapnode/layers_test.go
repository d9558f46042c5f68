package main

import (
	"bufio"
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

// layerOf ranks a package of the module by the folder it sits in
// (docs/adr/0005-layout.md): cmd → node → partition → (hcl, runtime,
// schema) → internal. examples runs the whole stack, like cmd.
func layerOf(pkg string) (int, bool) {
	first, _, _ := strings.Cut(pkg, "/")
	switch first {
	case "cmd", "examples":
		return 4, true
	case "node":
		return 3, true
	case "partition":
		return 2, true
	case "hcl", "runtime", "schema":
		return 1, true
	case "internal":
		return 0, true
	}
	return 0, false
}

// TestLayers fails on any import, test imports included, from a package to
// one of a higher layer, and on a package outside the card's folders.
func TestLayers(t *testing.T) {
	const mod = "github.com/slapnode/slapnode/"
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}} {{join .TestImports " "}} {{join .XTestImports " "}}`, "./...")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		pkg := strings.TrimPrefix(f[0], mod)
		from, ok := layerOf(pkg)
		if !ok {
			t.Errorf("package %s is outside the card's folders (docs/adr/0005-layout.md)", pkg)
			continue
		}
		n++
		for _, imp := range f[1:] {
			if !strings.HasPrefix(imp, mod) {
				continue
			}
			imp = strings.TrimPrefix(imp, mod)
			if to, _ := layerOf(imp); to > from {
				t.Errorf("%s imports %s, a higher layer", pkg, imp)
			}
		}
	}
	if n < 20 {
		t.Fatalf("go list found only %d packages", n)
	}
}
