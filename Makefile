# slapnode build.
#
#   make demo   build the slapnode binary and apply the helloweb example on
#               the embedded default node (needs only Go and a C compiler)
#   make test   build everything and run every test (installs, as root, or
#               names the toolchains it needs: .ci/deps)
SHELL := /bin/bash
GO ?= go
BIN := bin/slapnode
# The modules embedded in the binary: built from Go only.
BUILTIN_WASM := runtime/builtin/wasm/cookbook.wasm
# Every module of the repository (SDK examples in C and AssemblyScript, test
# modules): each component's rules append theirs.
WASM_OUTPUTS :=
export GOFLAGS ?=

.PHONY: all build wasm demo demo-check deps test vet fmt clean
all: build

include recipes-wasm/cookbook.mk recipes-wasm/sdk.mk runtime/runtime.mk hcl/buildout/goldens.mk cmd/slapbench/bench.mk docs/docs.mk

wasm: $(WASM_OUTPUTS)

build: $(BUILTIN_WASM)
	$(GO) build -o $(BIN) ./cmd/slapnode

# What the demo needs besides Go: a C compiler (the example's server is
# built from source). One line says what is missing and how to install it.
demo-check:
	@command -v $(GO) >/dev/null 2>&1 || { echo "make demo: Go is not on PATH; install Go 1.26 from https://go.dev/dl/ (tar -C /usr/local -xzf go1.26.*.linux-amd64.tar.gz; export PATH=\$$PATH:/usr/local/go/bin)"; exit 1; }
	@command -v cc >/dev/null 2>&1 || { echo "make demo: no C compiler (cc) on PATH; install one with: sudo apt-get install -y gcc"; exit 1; }

demo: demo-check build
	./$(BIN) apply examples/helloweb/software.hcl

deps:
	@.ci/deps

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }

# SLAPNODE_REQUIRE_WASM turns "module not built" skips into failures: under
# make, everything is built first.
test: deps build wasm vet test-recipes-wasm
	@test -d ../shared/corpus/slapos -a -d ../shared/corpus/schema || echo "note: the SlapOS corpus (../shared/corpus/slapos and schema, beside the repository) is absent: its tests are skipped$$( [ "$$CI" = true ] && echo ', and fail under CI=true')"
	SLAPNODE_REQUIRE_WASM=1 $(GO) test -count=1 -timeout 40m ./...

clean:
	rm -rf bin $(WASM_OUTPUTS)
