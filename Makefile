# slapnode build. `make demo` builds everything and runs the helloweb example on
# the embedded default node; `make test` builds and runs every test.
SHELL := /bin/bash
GO ?= go
BIN := bin/slapnode
WASM_OUTPUTS :=
# Compilation cache key for wazero in tests (see docs/wasm-abi.md §8).
export GOFLAGS ?=

.PHONY: all build wasm demo test vet fmt clean
all: build

# Each component adds its build rules and appends its outputs to WASM_OUTPUTS.
include recipes-wasm/cookbook.mk recipes-wasm/sdk.mk runtime/runtime.mk hcl/buildout/goldens.mk cmd/slapbench/bench.mk

wasm: $(WASM_OUTPUTS)

build: wasm
	$(GO) build -o $(BIN) ./cmd/slapnode

demo: build
	./$(BIN) apply examples/helloweb/software.hcl

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }

# SLAPNODE_REQUIRE_WASM turns "module not built" skips into failures: under
# make, everything is built first.
test: build vet test-recipes-wasm
	SLAPNODE_REQUIRE_WASM=1 $(GO) test -count=1 -timeout 40m ./...

clean:
	rm -rf bin $(WASM_OUTPUTS)
