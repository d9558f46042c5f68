package profile

import (
	"os"
	"path/filepath"
	"testing"
)

// A profile's graph is built once per set of extra blocks: Check and Apply
// share it; other extra blocks get their own, with their own references.
func TestGraphBuiltOncePerExtra(t *testing.T) {
	path := filepath.Join(t.TempDir(), "instance.hcl")
	src := `part "a" {
  recipe = "cookbook:mkdirectory"
  path   = "x"
}
service "s" {
  command = [part.a.path]
}
`
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	p, diags := Load(path, Instance)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	g1, d1 := p.Graph(nil)
	g2, d2 := p.Graph(nil)
	if d1.HasErrors() || d2.HasErrors() || g1 != g2 {
		t.Fatalf("Graph(nil) twice: %p %v, %p %v; want the same graph", g1, d1, g2, d2)
	}
	extra := p.BlocksOf("service")
	g3, d3 := p.Graph(extra)
	if d3.HasErrors() || g3 == g1 {
		t.Fatalf("Graph(services) = %p %v; want a graph of its own", g3, d3)
	}
	if g4, _ := p.Graph(append([]*Block(nil), extra...)); g4 != g3 {
		t.Fatal("the same extra blocks in another slice built the graph again")
	}
	if g5, _ := p.Graph(nil); g5 == g3 || len(g5.Order) != len(g1.Order) {
		t.Fatalf("Graph(nil) after Graph(services): %p, %d nodes; want a graph without the services", g5, len(g5.Order))
	}
}
