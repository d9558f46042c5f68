/* hostile_exec.c: a reactor granted a harmless command (allow_exec =
 * ["true"]) that tries to make the host run code of its choosing through
 * the exec request: loader and interpreter variables in env, PATH, argv[0]
 * given as a path (issue 18 #5, docs/wasm-abi.md §6). Its one recipe,
 * "exec", sends the part's options as the exec request unchanged and
 * fails with the host's error, so a profile can replay any attempt. */
#include "mini.h"

IMPORT("exec") int32_t sn_exec(const char *p, int32_t n);

EXPORT("abi_describe") uint64_t abi_describe(void) {
	return ret(out("%s", "{\"abi\":1,\"module\":\"hostile_exec\",\"version\":\"0\",\"recipes\":{"
		"\"exec\":{\"description\":\"Send the options as an exec request.\",\"options\":{\"type\":\"object\"}}}}"));
}

EXPORT("recipe_install") uint64_t recipe_install(const char *p, int32_t n) {
	(void)n;
	char *opts = raw(p, "options");
	if (!opts) return result(NULL, "no options");
	int32_t len = sn_exec(opts, (int32_t)strlen(opts));
	if (len < 0) return result(NULL, "exec refused to read the request");
	char *resp = malloc(len + 1);
	sn_response(resp);
	resp[len] = 0;
	char *err = str(resp, "error");
	char *o = out("{\"response\":%s}", resp);
	if (err && *err) return result(o, err);
	return result(o, NULL);
}
