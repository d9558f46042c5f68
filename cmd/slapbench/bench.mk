# bench.mk: `make bench` runs slapnode side by side with zc.buildout on the
# peer's generated profiles (N = 10, 100, 1000), then the Go benchmarks of
# the hot paths, and regenerates docs/benchmarks.md and docs/bench/*.png
# (method: cmd/slapbench/README.md). cmd/slapbench is its own Go module so that the plotting
# library (gonum.org/v1/plot) stays out of slapnode's go.mod.
# Nothing is appended to WASM_OUTPUTS.
#
#   make bench                               the full run (about 10 minutes)
#   make bench BENCH_ARGS='-quick -repeat 1' a quick look while developing
#   make bench-render                        re-render the page from docs/bench/results.json
BENCH_ARGS ?=
BENCH_SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: bench bench-deps bench-render bench-vet
# The C test guests of runtime/wasmhost (clang, wat2wasm) are optional: without
# them the trusted C-guest benchmark is listed as skipped.
bench: build bench-deps
	$(MAKE) runtime-testdata || echo "bench: runtime/wasmhost test modules not built; their benchmark will be skipped"
	cd cmd/slapbench && $(GO) run . -repo ../.. $(BENCH_ARGS)

# Debian's zc.buildout for /usr/bin/python3 (the peer's benchmark runs it).
bench-deps:
	@dpkg-query -W -f '$${Status}' python3-zc.buildout 2>/dev/null | grep -q 'ok installed' || { \
		echo "bench: installing python3-zc.buildout"; \
		$(BENCH_SUDO) apt-get update -qq && $(BENCH_SUDO) apt-get install -y -qq python3-zc.buildout; }

bench-render:
	cd cmd/slapbench && $(GO) run . -repo ../.. -render-only

bench-vet:
	cd cmd/slapbench && $(GO) vet ./... && test -z "$$(gofmt -l .)" && $(GO) test -count=1 ./...
