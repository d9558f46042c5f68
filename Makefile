# slapnode build.
#
#   make build  build bin/slapnode and its compiled cookbook (lib/slapnode/wazero)
#   make install  install them under $(DESTDIR)$(PREFIX) (default /usr/local)
#   make demo   build the slapnode binary and apply the helloweb example on
#               the embedded default node (needs only Go and a C compiler)
#   make test   build everything and run every test (installs, as root, or
#               names the toolchains it needs: .ci/deps)
SHELL := /bin/bash
GO ?= go
BIN := bin/slapnode
# The built-in modules compiled to machine code, read by the slapnode beside
# it (../lib/slapnode/wazero from its directory: docs/wasm-abi.md §8).
INSTALL_CACHE := lib/slapnode/wazero
PREFIX ?= /usr/local
DESTDIR ?=
# The modules embedded in the binary: built from Go only.
BUILTIN_WASM := runtime/builtin/wasm/cookbook.wasm
# Every module of the repository (SDK examples in C and AssemblyScript, test
# modules): each component's rules append theirs.
WASM_OUTPUTS :=
export GOFLAGS ?=

.PHONY: all build install wasm demo demo-check deps test vet fmt clean
all: build

include recipes-wasm/cookbook.mk recipes-wasm/sdk.mk runtime/runtime.mk hcl/buildout/goldens.mk cmd/slapbench/bench.mk docs/docs.mk

wasm: $(WASM_OUTPUTS)

# The cookbook is compiled here, once, rather than at the first apply of
# every machine (3 s of CPU; 0.2 s to find it compiled already). An entry
# depends on the cookbook and on wazero's version: when either changed,
# the older entries go.
build: $(BUILTIN_WASM)
	$(GO) build -o $(BIN) ./cmd/slapnode
	@if [ $(BUILTIN_WASM) -nt $(INSTALL_CACHE) -o go.sum -nt $(INSTALL_CACHE) ]; then rm -rf $(INSTALL_CACHE); fi
	@# Not fatal: without it, the binary compiles the cookbook at a
	@# machine's first apply, as it always could.
	./$(BIN) -q cache compile --dir $(INSTALL_CACHE) && touch $(INSTALL_CACHE) || echo "make build: the cookbook was not compiled ahead (above: why); slapnode compiles it at each machine's first apply instead"

# The build's entries are copied, then checked by the installed binary (it
# finds them compiled; modes made 0755/0644). They are for the CPU of the
# machine that built them: a package built elsewhere gets entries that miss
# on other CPUs (those machines compile at their first apply, as without
# them); packagers may instead run `slapnode cache compile --dir
# $(PREFIX)/lib/slapnode/wazero` in a post-install step.
install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/slapnode
	rm -rf $(DESTDIR)$(PREFIX)/$(INSTALL_CACHE)
	install -d -m 0755 $(DESTDIR)$(PREFIX)/lib/slapnode $(DESTDIR)$(PREFIX)/$(INSTALL_CACHE)
	[ ! -d $(INSTALL_CACHE) ] || cp -R $(INSTALL_CACHE)/. $(DESTDIR)$(PREFIX)/$(INSTALL_CACHE)/
	$(DESTDIR)$(PREFIX)/bin/slapnode -q cache compile --dir $(DESTDIR)$(PREFIX)/$(INSTALL_CACHE)

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
	rm -rf bin lib $(WASM_OUTPUTS)
