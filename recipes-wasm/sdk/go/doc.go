// Package recipe is the Go SDK for slapnode recipes and promises: WebAssembly
// guests that implement docs/wasm-abi.md (ABI version 1).
//
// A module registers its recipes and promises from init functions:
//
//	func init() {
//		recipe.SetModule("hello", "1.0.0")
//		recipe.Register("greet", recipe.Recipe{
//			Description: "Write a greeting file.",
//			Schema:      `{"type":"object","required":["output"],"properties":{"output":{"type":"string"}}}`,
//			Install:     greet,
//		})
//	}
//
//	func greet(ctx recipe.Context, opts recipe.Options) (recipe.Result, error) { ... }
//
//	func main() {}
//
// and is built as a reactor:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o hello.wasm .
//
// Under GOOS=wasip1 the package provides the ABI exports (abi_version,
// abi_alloc, abi_describe, recipe_install, recipe_update, recipe_uninstall,
// promise_check) and wraps the host imports (module "slapnode") as methods of
// Context. On other platforms nothing is exported and Dispatch can be driven
// directly with any Host, which is how package recipetest runs recipes in
// ordinary go tests against a host that does the work locally.
package recipe
