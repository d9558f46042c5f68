# The built-in cookbook (recipes-wasm/cookbook) and the Go example recipe
# module, built from the recipes-wasm Go module as WASI reactors.
# Included by the top Makefile.

RECIPES_WASM_GO := $(GO)
# Sources of the guest module: everything but tests; examples are built
# by their own rule below.
COOKBOOK_SRCS := recipes-wasm/go.mod $(wildcard recipes-wasm/go.sum) \
	$(shell find recipes-wasm/sdk recipes-wasm/cookbook -name '*.go' ! -name '*_test.go' 2>/dev/null)
HELLO_GO_SRCS := $(filter-out %_test.go,$(wildcard recipes-wasm/examples/hello-go/*.go)) \
	$(shell find recipes-wasm/sdk -name '*.go' ! -name '*_test.go' 2>/dev/null) recipes-wasm/go.mod

# The module's sha256 and size are recorded beside it (embedded too, see
# runtime/builtin): a no-op re-apply then needs neither its bytes nor a
# hash of them. Its ~100,000 data segments (Go's linker splits the data at
# every run of zeros) are merged into a few dozen by internal/wasmdata:
# wazero applies each segment at every instantiation (a session's first
# call 12 -> 6 ms). The unmerged module is written outside runtime/builtin/
# wasm, which is embedded whole.
# -ldflags=-s leaves out the wasm name section (230 KB of function names,
# decoded by wazero at every load): only wazero's own trap stack traces use
# it; a Go panic or fatal error is still printed with its function names by
# the guest's runtime (from pclntab) to stderr, which the host logs.
runtime/builtin/wasm/cookbook.wasm: $(COOKBOOK_SRCS) recipes-wasm/internal/wasmdata/main.go
	cd recipes-wasm && GOOS=wasip1 GOARCH=wasm $(RECIPES_WASM_GO) build -buildmode=c-shared -trimpath -ldflags=-s -o cookbook.unmerged.wasm ./cookbook
	cd recipes-wasm && $(RECIPES_WASM_GO) run ./internal/wasmdata -in cookbook.unmerged.wasm -out ../$@ && rm -f cookbook.unmerged.wasm
	echo "$$(sha256sum < $@ | cut -d' ' -f1) $$(stat -c %s $@)" > $@.sha256.tmp && mv $@.sha256.tmp $@.sha256

# The Go example module lands next to the profile that loads it
# (examples/custom-recipe-go), like the C and AssemblyScript examples.
examples/custom-recipe-go/hello.wasm: $(HELLO_GO_SRCS)
	cd recipes-wasm && GOOS=wasip1 GOARCH=wasm $(RECIPES_WASM_GO) build -buildmode=c-shared -trimpath -o ../$@ ./examples/hello-go

.PHONY: test-recipes-wasm
# Native unit tests of the SDK, the cookbook and the examples.
test-recipes-wasm:
	cd recipes-wasm && $(RECIPES_WASM_GO) vet ./... && GOOS=wasip1 GOARCH=wasm $(RECIPES_WASM_GO) vet ./... && $(RECIPES_WASM_GO) test -count=1 ./...

WASM_OUTPUTS += $(BUILTIN_WASM) examples/custom-recipe-go/hello.wasm
