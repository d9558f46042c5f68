// Command hello-go is the smallest complete slapnode recipe module in Go: one
// recipe, "greet", that writes a greeting file, and one promise,
// "greeting_present", that checks it. It is the example of
// examples/custom-recipe-go and of docs/recipes.md.
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o hello.wasm .
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	recipe "github.com/slapnode/slapnode/recipes-wasm/sdk/go"
)

func init() {
	recipe.SetModule("hello", "1.0.0")
	recipe.Register("greet", recipe.Recipe{
		Description: "Write a greeting to a file.",
		Schema: `{"type":"object","required":["output"],"properties":{
			"output":{"type":"string"},
			"name":{"type":"string","default":"world"}}}`,
		Outputs: []string{"location", "greeting"},
		Install: greet,
	})
	recipe.RegisterPromise("greeting_present", recipe.Promise{
		Description: "The greeting file exists and greets.",
		Schema:      `{"type":"object","required":["path"],"properties":{"path":{"type":"string"}}}`,
		Check:       present,
	})
}

func greet(ctx recipe.Context, opts recipe.Options) (recipe.Result, error) {
	out, err := opts.String("output")
	if err != nil {
		return recipe.Result{}, err
	}
	if !filepath.IsAbs(out) {
		out = filepath.Join(ctx.Dir(), out)
	}
	name, err := opts.StringOr("name", "world")
	if err != nil {
		return recipe.Result{}, err
	}
	greeting := fmt.Sprintf("Hello, %s!\n", name)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return recipe.Result{}, err
	}
	if err := os.WriteFile(out, []byte(greeting), 0o644); err != nil {
		return recipe.Result{}, err
	}
	ctx.Log("greeted %s in %s", name, out)
	return recipe.Result{
		Outputs:   map[string]any{"location": out, "greeting": strings.TrimSpace(greeting)},
		Installed: []string{out},
	}, nil
}

func present(ctx recipe.Context, opts recipe.Options) (bool, string) {
	p, err := opts.String("path")
	if err != nil {
		return false, err.Error()
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return false, err.Error()
	}
	if !strings.HasPrefix(string(b), "Hello, ") {
		return false, p + " does not greet"
	}
	return true, p + " greets"
}

func main() {}
