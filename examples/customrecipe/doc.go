// Package customrecipe tests the C and AssemblyScript recipe SDKs
// (recipes-wasm/sdk/c, recipes-wasm/sdk/assemblyscript) through their
// examples (examples/custom-recipe-c, examples/custom-recipe-as) and the
// test modules in testdata, which exercise every host function.
//
// The tests instantiate the modules directly with wazero and play the host's
// side of docs/wasm-abi.md themselves, so they check the guest side of the
// contract independently of runtime/wasmhost. The .wasm files are built by
// `make wasm`; without them the tests skip.
package customrecipe
