/*
 * hostcalls.c — a test module for the C SDK (not an example): it drives every
 * host function and the JSON reader/writer from options, so the Go test in
 * examples/customrecipe can check the SDK's side of each exchange.
 */
#include <string.h>

#include "slapnode.h"

static const char *type_name(sn_type t)
{
	static const char *const names[] = {"missing", "null", "bool", "number",
					    "string", "array", "object"};
	return names[t];
}

/* call: options {"import": NAME, ...arguments}; outputs {"response": ...}. */
static int call(const sn_json *in, sn_out *out)
{
	const sn_json *o = sn_get(in, "options");
	const char *imp = sn_get_string(o, "import", "");
	const sn_json *r;
	if (strcmp(imp, "download") == 0) {
		r = sn_download(sn_get_string(o, "url", ""), "sha256", sn_get_string(o, "sha256", ""));
	} else if (strcmp(imp, "exec") == 0) {
		const sn_json *a = sn_get(o, "argv");
		const char **argv = sn_alloc((sn_count(a) + 1) * sizeof *argv);
		size_t i = 0;
		for (const sn_json *x = sn_first(a); x; x = sn_next(x))
			argv[i++] = sn_str(x, NULL);
		const char *env[] = {"GREETING=hi there", NULL};
		r = sn_exec(argv, sn_get_string(o, "dir", NULL), env, 1234);
	} else if (strcmp(imp, "tcp_probe") == 0) {
		r = sn_tcp_probe(sn_get_string(o, "host", ""), (int)sn_get_int(o, "port", 0), 2000);
	} else if (strcmp(imp, "http_get") == 0) {
		r = sn_http_get(sn_get_string(o, "url", ""), 5000, false, 100);
	} else {
		return sn_fail(out, "unknown import \"%s\"", imp);
	}
	sn_output_json(out, "response", r);
	const char *err = sn_get_string(r, "error", "");
	if (err[0])
		sn_message(out, "host said: %s", err);
	return 0;
}

/* echo: copies the options through the reader and writer, and reports what
 * the typed getters see at each of options.paths. */
static int echo(const sn_json *in, sn_out *out)
{
	const sn_json *o = sn_get(in, "options");
	sn_output_json(out, "options", o);
	sn_writer *w = sn_outputs(out);
	sn_w_key(w, "probe");
	sn_w_begin_object(w);
	for (const sn_json *p = sn_first(sn_get(o, "paths")); p; p = sn_next(p)) {
		const char *path = sn_str(p, NULL);
		const sn_json *v = sn_get(o, path);
		sn_w_key(w, path);
		sn_w_begin_object(w);
		sn_w_key(w, "type");
		sn_w_string(w, type_name(sn_type_of(v)));
		sn_w_key(w, "count");
		sn_w_int(w, (int64_t)sn_count(v));
		sn_w_key(w, "int");
		sn_w_int(w, sn_get_int(o, path, -1));
		/* sn_str rather than sn_get_string: the length keeps a \u0000. */
		size_t n;
		const char *s = sn_str(v, &n);
		sn_w_key(w, "string");
		if (s)
			sn_w_string_n(w, s, n);
		else
			sn_w_null(w);
		sn_w_end_object(w);
	}
	sn_w_end_object(w);
	/* Writer edge cases: invalid UTF-8, control characters, non-finite numbers. */
	sn_output_string(out, "bad_utf8", "a\xff" "b\xc3");
	sn_output_string(out, "controls", "tab\tnl\nbell\a");
	sn_output_number(out, "nan", 0.0 / 0.0);
	sn_output_number(out, "half", 0.5);
	sn_output_bool(out, "yes", true);
	sn_installed(out, "/nowhere/echo");
	sn_log(SN_WARN, "echo %s", sn_get_string(in, "part", ""));
	return 0;
}

/* fail: fails with options.message, or with a bare code when it is absent. */
static int fail(const sn_json *in, sn_out *out)
{
	const char *msg = sn_get_string(in, "options.message", NULL);
	sn_message(out, "about to fail");
	if (msg)
		return sn_fail(out, "%s", msg);
	return 7;
}

static int forget(const sn_json *in, sn_out *out)
{
	sn_message(out, "uninstalled %s", sn_get_string(in, "part", ""));
	return 0;
}

static bool always(const sn_json *in, sn_check *c)
{
	sn_check_message(c, "checked %s", sn_get_string(in, "name", ""));
	return sn_get_bool(in, "options.ok", false);
}

static const sn_recipe recipes[] = {
	{.name = "call", .install = call},
	{.name = "echo", .install = echo, .uninstall = forget},
	{.name = "fail", .install = fail,
	 .options = "{\"type\":\"object\",\"properties\":{\"message\":{\"type\":\"string\"}}}"},
	{0},
};

static const sn_promise promises[] = {
	{.name = "always", .check = always},
	{0},
};

SLAPNODE_MODULE(.name = "hostcalls-c", .version = "0.0.1", .recipes = recipes,
		.promises = promises);
SLAPNODE_EXPORT(recipe_install);
SLAPNODE_EXPORT(recipe_uninstall);
SLAPNODE_EXPORT(promise_check);
