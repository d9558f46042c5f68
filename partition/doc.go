// Package partition is slapnode's apply engine: buildout's model done right.
//
// A profile's parts form a graph (package profile); each part is a recipe
// call (package runtime/wasmhost) with resolved options, and its signature is
// the hash of those options and of the recipe module. An apply compares every
// signature with the state the previous apply left: unchanged parts are
// skipped and keep their outputs (unless a path they installed is gone:
// installed.go), changed parts are uninstalled and installed again (and
// their dependents when their outputs change), parts no longer in the
// profile are uninstalled in reverse install order. The state is an
// append-only, checksummed journal (state.go), so an apply killed at any point
// converges on the next run.
//
// On top of the engine, Software installs a software release into
// <root>/software/<md5(url)> and Instance instantiates one partition. A
// recheck of a complete, unchanged software release is answered from a
// cache of what its evaluation produced, without parsing it (recheck.go).
package partition
