/*
 * slapnode.h — write slapnode recipes and promises in C.
 *
 * The slapnode ABI (docs/wasm-abi.md) is a handful of exported functions that
 * exchange JSON. This SDK implements all of it: a module declares its recipes
 * and promises in tables, names the entry points it exports, and writes plain C
 * handlers that read the parsed input and fill a result. A minimal recipe
 * (docs/sdk-c-assemblyscript.md has a complete one, with a promise):
 *
 *     #include "slapnode.h"
 *
 *     static int hello_install(const sn_json *in, sn_out *out)
 *     {
 *         const char *path = sn_get_string(in, "options.path", "");
 *         FILE *f = fopen(path, "w");
 *         if (!f)
 *             return sn_fail(out, "open %s: %s", path, strerror(errno));
 *         fputs("hello\n", f);
 *         fclose(f);
 *         sn_installed(out, path);
 *         sn_output_string(out, "path", path);
 *         return 0;
 *     }
 *
 *     static const sn_recipe recipes[] = {
 *         {.name = "hello", .install = hello_install,
 *          .options = "{\"type\":\"object\",\"required\":[\"path\"]}"},
 *         {0},
 *     };
 *     SLAPNODE_MODULE(.name = "hello", .version = "1.0.0", .recipes = recipes);
 *     SLAPNODE_EXPORT(recipe_install);
 *
 * Build (Debian clang 14 + wasi-libc):
 *     SDK=recipes-wasm/sdk/c
 *     clang --target=wasm32-wasi --sysroot=/usr -O2 -mexec-model=reactor \
 *         -Wl,--strip-debug -I$SDK hello.c $SDK/slapnode.c $SDK/slapnode_json.c \
 *         -o hello.wasm
 *
 * Files: the host mounts every granted directory at its host path, so the
 * paths in the input are opened as they are, with stdio or POSIX calls.
 *
 * Memory: the input tree, strings from sn_sprintf and everything the SDK
 * allocates live until the next ABI call starts; do not keep pointers to
 * them in globals. malloc/free remain available for longer-lived data.
 */
#ifndef SLAPNODE_H
#define SLAPNODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "slapnode_json.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SLAPNODE_ABI_VERSION 1

/* ---- recipes --------------------------------------------------------------- */

/* sn_out collects a recipe's result (ABI §4.2). */
typedef struct sn_out sn_out;

/*
 * A recipe handler receives the whole input document (ABI §4.1: "recipe",
 * "part", "phase", "options", "context", "previous") and returns 0 on success.
 * A non-zero return, or any sn_fail, makes the part fail.
 */
typedef int (*sn_recipe_fn)(const sn_json *in, sn_out *out);

typedef struct sn_recipe {
	const char *name;
	const char *description;
	/* JSON Schema of the options, as JSON text; NULL means any object. It is
	 * parsed when the host asks for the description: invalid JSON traps, so a
	 * typo is caught the first time the module is loaded. */
	const char *options;
	/* Output names known in advance (for `slapnode plan`), NULL-terminated;
	 * may be NULL. */
	const char *const *outputs;
	sn_recipe_fn install;
	/* update: run when only the options changed and the module exports
	 * recipe_update. NULL runs install again (buildout's `update = install`). */
	sn_recipe_fn update;
	/* uninstall: extra clean-up beyond the installed paths, which the host
	 * removes itself. NULL does nothing. Needs SLAPNODE_EXPORT(recipe_uninstall). */
	sn_recipe_fn uninstall;
} sn_recipe;

/* Outputs: published values, readable as part.NAME.KEY by other parts. */
void sn_output_string(sn_out *o, const char *name, const char *value);
void sn_output_int(sn_out *o, const char *name, int64_t value);
void sn_output_number(sn_out *o, const char *name, double value);
void sn_output_bool(sn_out *o, const char *name, bool value);
void sn_output_json(sn_out *o, const char *name, const sn_json *value);
/* sn_outputs gives the writer positioned inside the "outputs" object, for
 * values the helpers above do not cover: sn_w_key, then one value. */
sn_writer *sn_outputs(sn_out *o);
/* sn_installed records a path the host removes when the part is uninstalled. */
void sn_installed(sn_out *o, const char *path);
/* sn_message adds a line shown with -v and logged. */
void sn_message(sn_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* sn_fail sets the part's error (the last call wins) and returns -1, so a
 * handler can `return sn_fail(out, "...")`. */
int sn_fail(sn_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- promises -------------------------------------------------------------- */

/* sn_check collects a promise's result (ABI §5). */
typedef struct sn_check sn_check;

/* A promise handler returns whether the check passed and should say why with
 * sn_check_message. Input: "promise", "name", "options", "context". */
typedef bool (*sn_promise_fn)(const sn_json *in, sn_check *c);

typedef struct sn_promise {
	const char *name;
	const char *description;
	const char *options; /* JSON Schema text, as for recipes */
	sn_promise_fn check;
} sn_promise;

void sn_check_message(sn_check *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- the module ------------------------------------------------------------ */

/* Tables end with a zeroed entry ({0}); either may be NULL. */
typedef struct sn_module {
	const char *name;
	const char *version;
	const sn_recipe *recipes;
	const sn_promise *promises;
} sn_module;

/*
 * SLAPNODE_MODULE declares the module (designated initialisers of sn_module)
 * and exports abi_version, abi_alloc and abi_describe. Use it once.
 */
#define SLAPNODE_MODULE(...)                                                   \
	const sn_module *sn__module(void)                                      \
	{                                                                      \
		static const sn_module m = {__VA_ARGS__};                      \
		return &m;                                                     \
	}                                                                      \
	__attribute__((export_name("abi_version"))) int32_t abi_version(void) \
	{                                                                      \
		return SLAPNODE_ABI_VERSION;                                   \
	}                                                                      \
	__attribute__((export_name("abi_alloc"))) uint32_t abi_alloc(uint32_t n) \
	{                                                                      \
		return sn__alloc(n);                                           \
	}                                                                      \
	__attribute__((export_name("abi_describe"))) uint64_t abi_describe(void) \
	{                                                                      \
		return sn__describe();                                         \
	}                                                                      \
	struct sn__module_semicolon

/*
 * SLAPNODE_EXPORT(entry) exports one ABI entry point: recipe_install,
 * recipe_update, recipe_uninstall or promise_check. A module exports only the
 * ones it needs (ABI §1.1): the host uninstalls then installs when
 * recipe_update is absent.
 */
#define SLAPNODE_EXPORT(entry)                                                 \
	__attribute__((export_name(#entry))) uint64_t entry(uint32_t ptr, uint32_t len) \
	{                                                                      \
		return sn__##entry(ptr, len);                                  \
	}                                                                      \
	struct sn__export_semicolon_##entry

/* ---- host functions (ABI §6) ----------------------------------------------- */

enum { SN_DEBUG = 0, SN_INFO = 1, SN_WARN = 2, SN_ERROR = 3 };

/* sn_log writes one line to the host log; always available. */
void sn_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * The functions below import a host function only when the module calls them
 * (the linker drops the others), and the profile's module block must grant
 * it, or loading fails. Each returns the host's parsed JSON response; a
 * failure is always reported as a string member "error", also when the
 * response itself could not be read, so `sn_get_string(r, "error", "")` is
 * the one check to make.
 */
/* download: sum_kind is "sha256" or "md5"; → {"path","sha256","size"} */
const sn_json *sn_download(const char *url, const char *sum_kind, const char *sum);
/* exec: argv and env ("K=V") are NULL-terminated; dir may be NULL; a
 * timeout_ms of 0 keeps the host's default. → {"exit_code","output","error"} */
const sn_json *sn_exec(const char *const *argv, const char *dir,
		       const char *const *env, int64_t timeout_ms);
/* tcp_probe → {"ok"} or {"ok":false,"error"} */
const sn_json *sn_tcp_probe(const char *host, int port, int64_t timeout_ms);
/* http_get: max_bytes 0 keeps the host's default. → {"status","body","error"} */
const sn_json *sn_http_get(const char *url, int64_t timeout_ms, bool insecure,
			   int64_t max_bytes);
/* sn_host_call sends a prepared request to any import taking (ptr, len); the
 * typed functions above are built on it. */
const sn_json *sn_host_call(int32_t (*fn)(const char *, uint32_t),
			    const char *req, size_t len);

/* ---- internals used by the macros ------------------------------------------ */

const sn_module *sn__module(void);
uint32_t sn__alloc(uint32_t n);
uint64_t sn__describe(void);
uint64_t sn__recipe_install(uint32_t ptr, uint32_t len);
uint64_t sn__recipe_update(uint32_t ptr, uint32_t len);
uint64_t sn__recipe_uninstall(uint32_t ptr, uint32_t len);
uint64_t sn__promise_check(uint32_t ptr, uint32_t len);

#ifdef __cplusplus
}
#endif
#endif
