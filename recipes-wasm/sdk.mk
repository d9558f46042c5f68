# sdk.mk — the C and AssemblyScript recipe SDKs (recipes-wasm/sdk/{c,assemblyscript})
# and their examples. Each example's .wasm is written next to its profiles, which
# load it with `module "motd" { source = "motd.wasm" }`.
#
# C: Debian clang 14 + wasi-libc (+ libclang-rt-14-dev-wasm32 for the builtins).
# Debian installs wasi-libc under /usr (include/wasm32-wasi, lib/wasm32-wasi);
# wasi-sdk and other distributions use /usr/share/wasi-sysroot.
WASM_CC ?= $(firstword $(shell command -v clang clang-14 2>/dev/null) clang)
WASI_SYSROOT ?= $(firstword $(wildcard /usr/share/wasi-sysroot) /usr)
# clang runs `wasm-ld` from PATH; Debian may only have the versioned name.
SDK_WASM_LD := $(if $(shell command -v wasm-ld 2>/dev/null),,$(shell command -v wasm-ld-14 2>/dev/null))
SDK_C_DIR := recipes-wasm/sdk/c
SDK_C_SRCS := $(SDK_C_DIR)/slapnode.c $(SDK_C_DIR)/slapnode_json.c
SDK_C_HDRS := $(SDK_C_DIR)/slapnode.h $(SDK_C_DIR)/slapnode_json.h
# --strip-debug drops Debian libc's DWARF (~200 KB) but keeps the name
# section, so traps still show function names.
SDK_CFLAGS := --target=wasm32-wasi --sysroot=$(WASI_SYSROOT) -O2 -mexec-model=reactor \
	-std=c11 -Wall -Wextra -Werror -I$(SDK_C_DIR) \
	$(if $(SDK_WASM_LD),-fuse-ld=$(SDK_WASM_LD)) -Wl,--strip-debug

# AssemblyScript: the compiler comes from npm, pinned by the SDK's package-lock.json.
SDK_AS_DIR := recipes-wasm/sdk/assemblyscript
SDK_AS_SRCS := $(wildcard $(SDK_AS_DIR)/assembly/*.ts)
SDK_ASC := $(SDK_AS_DIR)/node_modules/.bin/asc
# --runtime incremental: the GC runs between calls, so a reactor serving many
# parts does not grow without bound. abort is routed to slapnode.log + trap.
SDK_ASCFLAGS := -O3 --runtime incremental --noAssert \
	--use abort=$(SDK_AS_DIR)/assembly/index/abort

SDK_C_EXAMPLE := examples/custom-recipe-c/motd.wasm
SDK_AS_EXAMPLE := examples/custom-recipe-as/motd.wasm
# Test-only modules (examples/customrecipe/testdata): hostcalls exercises every
# host function; hello is the example printed in docs/sdk-c-assemblyscript.md.
SDK_TESTDATA := examples/customrecipe/testdata
SDK_C_TESTMODS := $(SDK_TESTDATA)/hostcalls-c.wasm $(SDK_TESTDATA)/hello-c.wasm
SDK_AS_TESTMODS := $(SDK_TESTDATA)/hostcalls-as.wasm $(SDK_TESTDATA)/hello-as.wasm

WASM_OUTPUTS += $(SDK_C_EXAMPLE) $(SDK_AS_EXAMPLE) $(SDK_C_TESTMODS) $(SDK_AS_TESTMODS)

$(SDK_C_EXAMPLE): examples/custom-recipe-c/motd.c $(SDK_C_SRCS) $(SDK_C_HDRS) recipes-wasm/sdk.mk
	$(WASM_CC) $(SDK_CFLAGS) -o $@ $< $(SDK_C_SRCS)

$(SDK_C_TESTMODS): $(SDK_TESTDATA)/%-c.wasm: $(SDK_TESTDATA)/%.c $(SDK_C_SRCS) $(SDK_C_HDRS) recipes-wasm/sdk.mk
	$(WASM_CC) $(SDK_CFLAGS) -o $@ $< $(SDK_C_SRCS)

# npm ci runs only when node_modules is older than the lock file (or missing).
$(SDK_ASC): $(SDK_AS_DIR)/package.json $(SDK_AS_DIR)/package-lock.json
	cd $(SDK_AS_DIR) && npm ci --no-audit --no-fund
	touch $@

$(SDK_AS_EXAMPLE): examples/custom-recipe-as/motd.ts $(SDK_AS_SRCS) $(SDK_ASC) recipes-wasm/sdk.mk
	$(SDK_ASC) $< $(SDK_ASCFLAGS) -o $@

$(SDK_AS_TESTMODS): $(SDK_TESTDATA)/%-as.wasm: $(SDK_TESTDATA)/%.ts $(SDK_AS_SRCS) $(SDK_ASC) recipes-wasm/sdk.mk
	$(SDK_ASC) $< $(SDK_ASCFLAGS) -o $@
