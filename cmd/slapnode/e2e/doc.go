// Package e2e holds slapnode's end-to-end tests: they build the real
// slapnode binary (with its built-in WebAssembly modules, which `make`
// builds first) and run it on real profiles, real files and real processes,
// as a user would.
package e2e
