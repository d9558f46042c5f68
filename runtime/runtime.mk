# runtime.mk: test modules of runtime/wasmhost (the hostile-module suite and
# the positive C/WAT modules). `go test ./runtime/...` builds them itself
# with the same flags; these rules are for inspecting them or for
# benchmarks (SLAPNODE_BENCH_WASM=runtime/wasmhost/testdata/build/reactor.wasm).
# Nothing is appended to WASM_OUTPUTS: the slapnode binary embeds none of them.
RUNTIME_TESTDATA := runtime/wasmhost/testdata
RUNTIME_BUILD := $(RUNTIME_TESTDATA)/build
WASM_CC ?= clang
WASM_CFLAGS := --target=wasm32-wasi --sysroot=/usr -O2 -Wall -Wl,--strip-debug
WAT2WASM ?= wat2wasm

RUNTIME_TEST_MODULES := \
	$(RUNTIME_BUILD)/reactor.wasm $(RUNTIME_BUILD)/hostile.wasm $(RUNTIME_BUILD)/hostile_exec.wasm $(RUNTIME_BUILD)/command.wasm \
	$(patsubst $(RUNTIME_TESTDATA)/%.wat,$(RUNTIME_BUILD)/%.wasm,$(wildcard $(RUNTIME_TESTDATA)/*.wat))

.PHONY: runtime-testdata runtime-bench clean-runtime
runtime-testdata: $(RUNTIME_TEST_MODULES)

$(RUNTIME_BUILD)/reactor.wasm $(RUNTIME_BUILD)/hostile.wasm $(RUNTIME_BUILD)/hostile_exec.wasm: $(RUNTIME_BUILD)/%.wasm: $(RUNTIME_TESTDATA)/%.c $(RUNTIME_TESTDATA)/mini.h
	@mkdir -p $(@D)
	$(WASM_CC) $(WASM_CFLAGS) -mexec-model=reactor -o $@ $<

$(RUNTIME_BUILD)/command.wasm: $(RUNTIME_TESTDATA)/command.c
	@mkdir -p $(@D)
	$(WASM_CC) $(WASM_CFLAGS) -o $@ $<

$(RUNTIME_BUILD)/%.wasm: $(RUNTIME_TESTDATA)/%.wat
	@mkdir -p $(@D)
	$(WAT2WASM) -o $@ $<

# Per-call overhead of the C guests (figures in docs/benchmarks.md).
runtime-bench:
	$(GO) test ./runtime/wasmhost -run '^$$' -bench 'BenchmarkCallC|BenchmarkCallCommandC|BenchmarkFirstCallC|BenchmarkWazeroBaselineC' -benchtime 1s -count 3

clean-runtime:
	rm -rf $(RUNTIME_BUILD)
