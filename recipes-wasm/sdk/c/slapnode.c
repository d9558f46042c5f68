/*
 * slapnode.c — the ABI plumbing of the slapnode C SDK (docs/wasm-abi.md).
 * See slapnode.h for the contract offered to recipe authors.
 */
#include "slapnode.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IMPORT(name) __attribute__((import_module("slapnode"), import_name(#name)))

IMPORT(log) void sn__imp_log(int32_t level, const char *ptr, uint32_t len);
IMPORT(response) void sn__imp_response(void *ptr);
IMPORT(download) int32_t sn__imp_download(const char *ptr, uint32_t len);
IMPORT(exec) int32_t sn__imp_exec(const char *ptr, uint32_t len);
IMPORT(tcp_probe) int32_t sn__imp_tcp_probe(const char *ptr, uint32_t len);
IMPORT(http_get) int32_t sn__imp_http_get(const char *ptr, uint32_t len);

void sn__w_splice(sn_writer *w, sn_writer *src); /* slapnode_json.c */

/* ---- buffers across the boundary ------------------------------------------- */

/*
 * The input buffer is malloc'd outside the arena: abi_alloc hands it out and
 * the host writes the input, then calls the entry point, which starts by
 * resetting the arena — the input must survive that, and only the next
 * abi_alloc releases it.
 */
static char *input_buf;

uint32_t sn__alloc(uint32_t n)
{
	sn_arena_reset();
	free(input_buf);
	input_buf = malloc(n ? n : 1);
	if (!input_buf)
		abort();
	return (uint32_t)(uintptr_t)input_buf;
}

static uint64_t pack(const char *p, size_t n)
{
	return (uint64_t)(uintptr_t)p << 32 | (uint32_t)n;
}

static uint64_t pack_writer(sn_writer *w)
{
	size_t n;
	const char *p = sn_w_text(w, &n);
	return pack(p, n);
}

/* ---- logging ---------------------------------------------------------------- */

static void vlog(int level, const char *fmt, va_list ap)
{
	char *s;
	va_list cp;
	va_copy(cp, ap);
	int n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0)
		return;
	s = sn_alloc((size_t)n + 1);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	sn__imp_log(level, s, (uint32_t)n);
}

void sn_log(int level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(level, fmt, ap);
	va_end(ap);
}

static char *vformat(const char *fmt, va_list ap)
{
	va_list cp;
	va_copy(cp, ap);
	int n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0)
		return sn_strdup(fmt);
	char *s = sn_alloc((size_t)n + 1);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	return s;
}

/* ---- the description (ABI §3) ------------------------------------------------ */

/* write_schema copies a schema given as text, trapping on invalid JSON so the
 * author sees the mistake the first time the host loads the module. */
static void write_schema(sn_writer *w, const char *kind, const char *name, const char *schema)
{
	if (!schema)
		schema = "{\"type\":\"object\"}";
	const char *err = NULL;
	const sn_json *v = sn_json_parse(schema, strlen(schema), &err);
	if (!v) {
		sn_log(SN_ERROR, "%s %s: options schema: %s", kind, name, err);
		abort();
	}
	sn_w_value(w, v);
}

uint64_t sn__describe(void)
{
	sn_arena_reset();
	const sn_module *m = sn__module();
	sn_writer w = {0};
	sn_w_begin_object(&w);
	sn_w_key(&w, "abi");
	sn_w_int(&w, SLAPNODE_ABI_VERSION);
	sn_w_key(&w, "module");
	sn_w_string(&w, m->name ? m->name : "");
	sn_w_key(&w, "version");
	sn_w_string(&w, m->version ? m->version : "");
	sn_w_key(&w, "recipes");
	sn_w_begin_object(&w);
	for (const sn_recipe *r = m->recipes; r && r->name; r++) {
		sn_w_key(&w, r->name);
		sn_w_begin_object(&w);
		sn_w_key(&w, "description");
		sn_w_string(&w, r->description ? r->description : "");
		sn_w_key(&w, "options");
		write_schema(&w, "recipe", r->name, r->options);
		if (r->outputs) {
			sn_w_key(&w, "outputs");
			sn_w_begin_array(&w);
			for (const char *const *o = r->outputs; *o; o++)
				sn_w_string(&w, *o);
			sn_w_end_array(&w);
		}
		sn_w_end_object(&w);
	}
	sn_w_end_object(&w);
	sn_w_key(&w, "promises");
	sn_w_begin_object(&w);
	for (const sn_promise *p = m->promises; p && p->name; p++) {
		sn_w_key(&w, p->name);
		sn_w_begin_object(&w);
		sn_w_key(&w, "description");
		sn_w_string(&w, p->description ? p->description : "");
		sn_w_key(&w, "options");
		write_schema(&w, "promise", p->name, p->options);
		sn_w_end_object(&w);
	}
	sn_w_end_object(&w);
	sn_w_end_object(&w);
	return pack_writer(&w);
}

/* ---- recipes (ABI §4) -------------------------------------------------------- */

/*
 * Outputs and installed paths are written as the handler reports them, each
 * into its own writer; the final document is assembled when it returns.
 */
struct sn_out {
	sn_writer outputs, installed, messages;
	const char *error;
};

sn_writer *sn_outputs(sn_out *o) { return &o->outputs; }

void sn_output_string(sn_out *o, const char *name, const char *value)
{
	sn_w_key(&o->outputs, name);
	sn_w_string(&o->outputs, value);
}

void sn_output_int(sn_out *o, const char *name, int64_t value)
{
	sn_w_key(&o->outputs, name);
	sn_w_int(&o->outputs, value);
}

void sn_output_number(sn_out *o, const char *name, double value)
{
	sn_w_key(&o->outputs, name);
	sn_w_number(&o->outputs, value);
}

void sn_output_bool(sn_out *o, const char *name, bool value)
{
	sn_w_key(&o->outputs, name);
	sn_w_bool(&o->outputs, value);
}

void sn_output_json(sn_out *o, const char *name, const sn_json *value)
{
	sn_w_key(&o->outputs, name);
	sn_w_value(&o->outputs, value);
}

void sn_installed(sn_out *o, const char *path) { sn_w_string(&o->installed, path); }

void sn_message(sn_out *o, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	sn_w_string(&o->messages, vformat(fmt, ap));
	va_end(ap);
}

int sn_fail(sn_out *o, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	o->error = vformat(fmt, ap);
	va_end(ap);
	return -1;
}

static void out_init(sn_out *o)
{
	memset(o, 0, sizeof *o);
	sn_w_begin_object(&o->outputs);
	sn_w_begin_array(&o->installed);
	sn_w_begin_array(&o->messages);
}

/* splice appends a finished sub-document as the value of key. */
static void splice(sn_writer *doc, const char *key, sn_writer *part, bool object)
{
	if (object)
		sn_w_end_object(part);
	else
		sn_w_end_array(part);
	sn_w_key(doc, key);
	sn__w_splice(doc, part);
}

static uint64_t out_finish(sn_out *o)
{
	sn_writer doc = {0};
	sn_w_begin_object(&doc);
	splice(&doc, "outputs", &o->outputs, true);
	splice(&doc, "installed", &o->installed, false);
	splice(&doc, "messages", &o->messages, false);
	sn_w_key(&doc, "error");
	sn_w_string(&doc, o->error ? o->error : "");
	sn_w_end_object(&doc);
	return pack_writer(&doc);
}

static uint64_t recipe_fail(const char *msg)
{
	sn_out o;
	out_init(&o);
	sn_fail(&o, "%s", msg);
	return out_finish(&o);
}

static const sn_json *parse_input(uint32_t ptr, uint32_t len, const char **err)
{
	return sn_json_parse((const char *)(uintptr_t)ptr, len, err);
}

static uint64_t run_recipe(const char *entry, uint32_t ptr, uint32_t len)
{
	sn_arena_reset();
	const char *err = NULL;
	const sn_json *in = parse_input(ptr, len, &err);
	if (!in)
		return recipe_fail(sn_sprintf("%s: input: %s", entry, err));
	const char *name = sn_get_string(in, "recipe", "");
	const sn_recipe *r = sn__module()->recipes;
	while (r && r->name && strcmp(r->name, name) != 0)
		r++;
	if (!r || !r->name)
		return recipe_fail(sn_sprintf("module %s has no recipe \"%s\"",
					      sn__module()->name, name));
	sn_recipe_fn fn = r->install;
	if (strcmp(entry, "recipe_update") == 0 && r->update)
		fn = r->update;
	if (strcmp(entry, "recipe_uninstall") == 0)
		fn = r->uninstall;

	sn_out o;
	out_init(&o);
	if (fn) {
		int rc = fn(in, &o);
		if (rc != 0 && !o.error)
			sn_fail(&o, "recipe %s failed (code %d)", r->name, rc);
	}
	return out_finish(&o);
}

uint64_t sn__recipe_install(uint32_t ptr, uint32_t len)
{
	return run_recipe("recipe_install", ptr, len);
}

uint64_t sn__recipe_update(uint32_t ptr, uint32_t len)
{
	return run_recipe("recipe_update", ptr, len);
}

uint64_t sn__recipe_uninstall(uint32_t ptr, uint32_t len)
{
	return run_recipe("recipe_uninstall", ptr, len);
}

/* ---- promises (ABI §5) ------------------------------------------------------- */

struct sn_check {
	const char *message;
};

void sn_check_message(sn_check *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	c->message = vformat(fmt, ap);
	va_end(ap);
}

static uint64_t check_result(bool ok, const char *message)
{
	sn_writer w = {0};
	sn_w_begin_object(&w);
	sn_w_key(&w, "ok");
	sn_w_bool(&w, ok);
	sn_w_key(&w, "message");
	sn_w_string(&w, message ? message : "");
	sn_w_end_object(&w);
	return pack_writer(&w);
}

uint64_t sn__promise_check(uint32_t ptr, uint32_t len)
{
	sn_arena_reset();
	const char *err = NULL;
	const sn_json *in = parse_input(ptr, len, &err);
	if (!in)
		return check_result(false, sn_sprintf("promise_check: input: %s", err));
	const char *name = sn_get_string(in, "promise", "");
	const sn_promise *p = sn__module()->promises;
	while (p && p->name && strcmp(p->name, name) != 0)
		p++;
	if (!p || !p->name || !p->check)
		return check_result(false, sn_sprintf("module %s has no promise \"%s\"",
						      sn__module()->name, name));
	sn_check c = {0};
	bool ok = p->check(in, &c);
	return check_result(ok, c.message);
}

/* ---- host functions (ABI §6) ------------------------------------------------- */

/* error_response gives protocol failures the same shape as host-reported
 * ones, so callers make a single check. */
static const sn_json *error_response(const char *msg)
{
	sn_writer w = {0};
	sn_w_begin_object(&w);
	sn_w_key(&w, "error");
	sn_w_string(&w, msg);
	sn_w_end_object(&w);
	size_t n;
	const char *t = sn_w_text(&w, &n);
	return sn_json_parse(t, n, NULL);
}

const sn_json *sn_host_call(int32_t (*fn)(const char *, uint32_t), const char *req, size_t len)
{
	/* Step one: the host runs the request and keeps the response, telling
	 * us its size; step two: we lend it a buffer of that size. */
	int32_t n = fn(req, (uint32_t)len);
	if (n < 0)
		return error_response("host refused the request buffer");
	char *buf = sn_alloc((size_t)n + 1);
	sn__imp_response(buf);
	const char *err = NULL;
	const sn_json *r = sn_json_parse(buf, (size_t)n, &err);
	if (!r)
		return error_response(sn_sprintf("host response: %s", err));
	if (sn_type_of(r) != SN_OBJECT)
		return error_response("host response is not an object");
	return r;
}

static const sn_json *call_writer(int32_t (*fn)(const char *, uint32_t), sn_writer *w)
{
	size_t n;
	const char *t = sn_w_text(w, &n);
	return sn_host_call(fn, t, n);
}

const sn_json *sn_download(const char *url, const char *sum_kind, const char *sum)
{
	sn_writer w = {0};
	sn_w_begin_object(&w);
	sn_w_key(&w, "url");
	sn_w_string(&w, url);
	sn_w_key(&w, sum_kind ? sum_kind : "sha256");
	sn_w_string(&w, sum);
	sn_w_end_object(&w);
	return call_writer(sn__imp_download, &w);
}

const sn_json *sn_exec(const char *const *argv, const char *dir, const char *const *env,
		       int64_t timeout_ms)
{
	sn_writer w = {0};
	sn_w_begin_object(&w);
	sn_w_key(&w, "argv");
	sn_w_begin_array(&w);
	for (; argv && *argv; argv++)
		sn_w_string(&w, *argv);
	sn_w_end_array(&w);
	if (dir) {
		sn_w_key(&w, "dir");
		sn_w_string(&w, dir);
	}
	if (env && *env) {
		sn_w_key(&w, "env");
		sn_w_begin_object(&w);
		for (; *env; env++) {
			const char *eq = strchr(*env, '=');
			if (!eq)
				return error_response(sn_sprintf("exec: env entry %s has no '='", *env));
			char *k = sn_alloc((size_t)(eq - *env) + 1);
			memcpy(k, *env, (size_t)(eq - *env));
			sn_w_key(&w, k);
			sn_w_string(&w, eq + 1);
		}
		sn_w_end_object(&w);
	}
	if (timeout_ms > 0) {
		sn_w_key(&w, "timeout_ms");
		sn_w_int(&w, timeout_ms);
	}
	sn_w_end_object(&w);
	return call_writer(sn__imp_exec, &w);
}

const sn_json *sn_tcp_probe(const char *host, int port, int64_t timeout_ms)
{
	sn_writer w = {0};
	sn_w_begin_object(&w);
	sn_w_key(&w, "host");
	sn_w_string(&w, host);
	sn_w_key(&w, "port");
	sn_w_int(&w, port);
	if (timeout_ms > 0) {
		sn_w_key(&w, "timeout_ms");
		sn_w_int(&w, timeout_ms);
	}
	sn_w_end_object(&w);
	return call_writer(sn__imp_tcp_probe, &w);
}

const sn_json *sn_http_get(const char *url, int64_t timeout_ms, bool insecure, int64_t max_bytes)
{
	sn_writer w = {0};
	sn_w_begin_object(&w);
	sn_w_key(&w, "url");
	sn_w_string(&w, url);
	if (timeout_ms > 0) {
		sn_w_key(&w, "timeout_ms");
		sn_w_int(&w, timeout_ms);
	}
	sn_w_key(&w, "insecure");
	sn_w_bool(&w, insecure);
	if (max_bytes > 0) {
		sn_w_key(&w, "max_bytes");
		sn_w_int(&w, max_bytes);
	}
	sn_w_end_object(&w);
	return call_writer(sn__imp_http_get, &w);
}
