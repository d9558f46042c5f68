/* guest.c: a promise module for the runner's tests (docs/wasm-abi.md §5):
 *   hang   never returns (the runner must kill it at its timeout);
 *   probe  TCP-probes options.target {"host","port"}, which is NOT one of
 *          its grants (only options host/port/url are);
 *   fetch  GETs options.target_url, likewise ungranted.
 * The result message is the host's raw answer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

#define EXPORT(n) __attribute__((export_name(n)))
#define IMPORT(n) __attribute__((import_module("slapnode"), import_name(n)))

IMPORT("response") void sn_response(char *p);
IMPORT("tcp_probe") int32_t sn_tcp_probe(const char *p, int32_t n);
IMPORT("http_get") int32_t sn_http_get(const char *p, int32_t n);

static char *in, *out;

EXPORT("abi_version") int32_t abi_version(void) { return 1; }

EXPORT("abi_alloc") char *abi_alloc(int32_t n) {
	free(in);
	in = calloc(n + 1, 1);
	return in;
}

static uint64_t ret(char *s) {
	free(out);
	out = s;
	return ((uint64_t)(uintptr_t)s << 32) | (uint64_t)strlen(s);
}

EXPORT("abi_describe") uint64_t abi_describe(void) {
	return ret(strdup("{\"abi\":1,\"module\":\"testguest\",\"version\":\"0\",\"recipes\":{},"
	                  "\"promises\":{\"hang\":{},\"probe\":{},\"fetch\":{}}}"));
}

/* call sends req to a host function and returns its answer. */
static char *call(int32_t (*fn)(const char *, int32_t), const char *req) {
	int32_t n = fn(req, (int32_t)strlen(req));
	if (n < 0) return strdup("{\"error\":\"bad request\"}");
	char *b = calloc(n + 1, 1);
	sn_response(b);
	return b;
}

/* after returns the text following key in s, or NULL. */
static const char *after(const char *s, const char *key) {
	const char *p = strstr(s, key);
	return p ? p + strlen(key) : NULL;
}

/* result builds {"ok":..,"message":<answer as a JSON string>}. */
static uint64_t result(int ok, const char *answer) {
	size_t n = strlen(answer);
	char *o = malloc(n * 2 + 64), *w = o;
	w += sprintf(w, "{\"ok\":%s,\"message\":\"", ok ? "true" : "false");
	for (const char *p = answer; *p; p++) {
		if (*p == '"' || *p == '\\') *w++ = '\\';
		*w++ = (*p == '\n') ? ' ' : *p;
	}
	strcpy(w, "\"}");
	return ret(o);
}

EXPORT("promise_check") uint64_t promise_check(char *p, int32_t n) {
	(void)p; (void)n;
	if (strstr(in, "\"promise\":\"hang\"")) {
		volatile uint64_t spin = 0;
		for (;;) spin++;
	}
	if (strstr(in, "\"promise\":\"probe\"")) {
		const char *t = after(in, "\"target\":");
		if (!t) return result(0, "no target");
		const char *e = strchr(t, '}');
		char req[256];
		snprintf(req, sizeof req, "%.*s,\"timeout_ms\":2000}", (int)(e - t), t);
		char *a = call(sn_tcp_probe, req);
		return result(strstr(a, "\"ok\":true") != NULL, a);
	}
	if (strstr(in, "\"promise\":\"fetch\"")) {
		const char *t = after(in, "\"target_url\":\"");
		if (!t) return result(0, "no target_url");
		const char *e = strchr(t, '"');
		char req[512];
		snprintf(req, sizeof req, "{\"url\":\"%.*s\",\"timeout_ms\":2000}", (int)(e - t), t);
		char *a = call(sn_http_get, req);
		return result(strstr(a, "\"status\":200") != NULL, a);
	}
	return result(0, "unknown promise");
}
