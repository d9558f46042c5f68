package wasmhost

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"slices"
	"strconv"
	"testing"
)

// TestRecipetestEnvRuleInSync: recipes-wasm's native test host
// (recipetest, its own module, which cannot import this package) applies
// the exec environment rule with its own copy of these lists; they must
// be the same, or recipe tests pass what the node refuses.
func TestRecipetestEnvRuleInSync(t *testing.T) {
	const file = "../../recipes-wasm/sdk/go/recipetest/execenv.go"
	if _, err := os.Stat(file); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	lists := map[string][]string{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.VAR {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			if len(vs.Values) != 1 {
				continue
			}
			lit, ok := vs.Values[0].(*ast.CompositeLit)
			if !ok {
				continue
			}
			var out []string
			for _, e := range lit.Elts {
				if kv, ok := e.(*ast.KeyValueExpr); ok {
					e = kv.Key // a set: map[string]bool{"X": true}
				}
				if b, ok := e.(*ast.BasicLit); ok && b.Kind == token.STRING {
					v, _ := strconv.Unquote(b.Value)
					out = append(out, v)
				}
			}
			lists[vs.Names[0].Name] = out
		}
	}
	keys := func(m map[string]bool) []string {
		var k []string
		for x := range m {
			k = append(k, x)
		}
		return k
	}
	for name, ours := range map[string][]string{
		"defaultEnv": defaultEnv, "hookEnv": hookEnv, "pathEnv": keys(pathEnv), "switchEnv": keys(switchEnv),
	} {
		theirs := lists[name]
		a, b := slices.Clone(ours), slices.Clone(theirs)
		slices.Sort(a)
		slices.Sort(b)
		if !slices.Equal(a, b) {
			t.Errorf("%s differs between runtime/wasmhost/execenv.go and %s:\n host:       %q\n recipetest: %q", name, file, a, b)
		}
	}
}
