// Command cookbook is slapnode's built-in recipe module ("cookbook"): the
// recipes and promise checks SlapOS profiles use most, as one WebAssembly
// reactor embedded in the slapnode binary (runtime/builtin/wasm).
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o cookbook.wasm .
// Its recipes and their options are documented in docs/recipes.md.
package main

import (
	"github.com/slapnode/slapnode/recipes-wasm/cookbook/promises"
	"github.com/slapnode/slapnode/recipes-wasm/cookbook/recipes/build"
	"github.com/slapnode/slapnode/recipes-wasm/cookbook/recipes/download"
	"github.com/slapnode/slapnode/recipes-wasm/cookbook/recipes/egg"
	"github.com/slapnode/slapnode/recipes-wasm/cookbook/recipes/files"
	"github.com/slapnode/slapnode/recipes-wasm/cookbook/recipes/gitclone"
	"github.com/slapnode/slapnode/recipes-wasm/cookbook/recipes/instance"
	"github.com/slapnode/slapnode/recipes-wasm/cookbook/recipes/template"
	"github.com/slapnode/slapnode/recipes-wasm/cookbook/recipes/values"
	"github.com/slapnode/slapnode/recipes-wasm/cookbook/recipes/wrapper"
	recipe "github.com/slapnode/slapnode/recipes-wasm/sdk/go"
)

// Version is the cookbook's version in its description.
const Version = "1.0.0"

// The ABI exports come from package recipe; a reactor runs its package
// initialisers (this registration) from _initialize, never main.
func init() {
	register(recipe.Default())
}

func register(g *recipe.Registry) {
	g.SetModule("cookbook", Version)
	files.Register(g)
	template.Register(g)
	wrapper.Register(g)
	download.Register(g)
	build.Register(g)
	gitclone.Register(g)
	egg.Register(g)
	instance.Register(g)
	values.Register(g)
	promises.Register(g)
}

func main() {}
