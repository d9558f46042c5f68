/* mini.h: just enough of the slapnode ABI (docs/wasm-abi.md) in C for the
 * wasmhost tests. Not an SDK: the JSON helpers only handle the flat inputs
 * the tests send (strings with \" and \\ escapes, nested objects/arrays). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXPORT(n) __attribute__((export_name(n)))
#define IMPORT(n) __attribute__((import_module("slapnode"), import_name(n)))

IMPORT("log") void sn_log(int32_t level, const char *p, int32_t n);
IMPORT("response") void sn_response(char *p);

static char *inbuf;
static char *outbuf;

EXPORT("abi_version") int32_t abi_version(void) { return 1; }

/* abi_alloc keeps one byte more than asked for and zeroes it: the host
 * writes exactly n bytes, so the input is then a C string. */
EXPORT("abi_alloc") char *abi_alloc(int32_t n) {
	free(inbuf);
	inbuf = malloc(n + 1);
	inbuf[n] = 0;
	return inbuf;
}

/* ret hands a malloc'd string back as a packed pointer/length. */
static uint64_t ret(char *s) {
	free(outbuf);
	outbuf = s;
	return ((uint64_t)(uintptr_t)s << 32) | (uint64_t)strlen(s);
}

__attribute__((unused)) static void logs(int level, const char *s) { sn_log(level, s, (int32_t)strlen(s)); }

/* skip_value returns the end of the JSON value starting at p. */
static const char *skip_value(const char *p) {
	if (*p == '"') {
		for (p++; *p && *p != '"'; p++)
			if (*p == '\\' && p[1]) p++;
		return *p ? p + 1 : p;
	}
	if (*p == '{' || *p == '[') {
		int depth = 0;
		for (; *p; p++) {
			if (*p == '"') { p = skip_value(p) - 1; continue; }
			if (*p == '{' || *p == '[') depth++;
			if (*p == '}' || *p == ']') { if (--depth == 0) return p + 1; }
		}
		return p;
	}
	while (*p && *p != ',' && *p != '}' && *p != ']') p++;
	return p;
}

/* find returns the value of "key" in the first object level of json j. */
static const char *find(const char *j, const char *key) {
	size_t kl = strlen(key);
	const char *p = j;
	while (*p && *p != '{') p++;
	if (!*p) return NULL;
	p++;
	for (;;) {
		while (*p == ' ' || *p == ',' || *p == '\n') p++;
		if (*p != '"') return NULL;
		const char *k = p + 1;
		const char *ke = skip_value(p);
		p = ke;
		while (*p == ' ' || *p == ':') p++;
		if ((size_t)(ke - 1 - k) == kl && strncmp(k, key, kl) == 0) return p;
		p = skip_value(p);
	}
}

/* raw returns a malloc'd copy of the raw JSON value of key, or NULL. */
static char *raw(const char *j, const char *key) {
	const char *v = j ? find(j, key) : NULL;
	if (!v) return NULL;
	const char *e = skip_value(v);
	char *s = malloc(e - v + 1);
	memcpy(s, v, e - v);
	s[e - v] = 0;
	return s;
}

/* str returns a malloc'd unescaped string value of key, or NULL. */
static char *str(const char *j, const char *key) {
	const char *v = j ? find(j, key) : NULL;
	if (!v || *v != '"') return NULL;
	char *s = malloc(strlen(v) + 1), *o = s;
	for (v++; *v && *v != '"'; v++) {
		if (*v == '\\' && v[1]) {
			v++;
			*o++ = *v == 'n' ? '\n' : *v;
		} else {
			*o++ = *v;
		}
	}
	*o = 0;
	return s;
}

/* esc returns a malloc'd JSON string literal for s. */
static char *esc(const char *s) {
	char *o = malloc(strlen(s) * 6 + 3), *w = o;
	*w++ = '"';
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') { *w++ = '\\'; *w++ = c; }
		else if (c < 0x20) w += sprintf(w, "\\u%04x", c);
		else *w++ = c;
	}
	*w++ = '"';
	*w = 0;
	return o;
}

/* out formats into a malloc'd string. */
#define out(...) ({ int _n = snprintf(NULL, 0, __VA_ARGS__); char *_s = malloc(_n + 1); snprintf(_s, _n + 1, __VA_ARGS__); _s; })

/* result builds the recipe output of docs/wasm-abi.md §4.2. */
static uint64_t result(const char *outputs, const char *error) {
	char *e = esc(error ? error : "");
	uint64_t r = ret(out("{\"outputs\":%s,\"installed\":[],\"messages\":[],\"error\":%s}", outputs ? outputs : "{}", e));
	free(e);
	return r;
}
