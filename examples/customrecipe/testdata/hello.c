/* hello.c — a complete slapnode recipe and promise in C. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "slapnode.h"

/* install: write options.greeting into options.path. */
static int hello_install(const sn_json *in, sn_out *out)
{
	const char *path = sn_get_string(in, "options.path", "");
	const char *greeting = sn_get_string(in, "options.greeting", "hello");
	const char *who = sn_get_string(in, "context.partition.id", "software");

	FILE *f = fopen(path, "w");
	if (!f)
		return sn_fail(out, "open %s: %s", path, strerror(errno));
	fprintf(f, "%s from %s\n", greeting, who);
	if (fclose(f) != 0)
		return sn_fail(out, "write %s: %s", path, strerror(errno));

	sn_installed(out, path);              /* removed by the host on uninstall */
	sn_output_string(out, "path", path);  /* part.NAME.path for other parts */
	sn_message(out, "greeted %s", who);   /* shown with -v */
	return 0;
}

/* check: the file is still there. */
static bool hello_present(const sn_json *in, sn_check *c)
{
	const char *path = sn_get_string(in, "options.path", "");
	FILE *f = fopen(path, "r");
	if (!f) {
		sn_check_message(c, "%s: %s", path, strerror(errno));
		return false;
	}
	fclose(f);
	sn_check_message(c, "%s is there", path);
	return true;
}

static const sn_recipe recipes[] = {
	{
		.name = "hello",
		.description = "Write a greeting into a file.",
		.options = "{\"type\": \"object\", \"required\": [\"path\"],"
			   " \"properties\": {\"path\": {\"type\": \"string\"},"
			   " \"greeting\": {\"type\": \"string\", \"default\": \"hello\"}}}",
		.outputs = (const char *const[]){"path", NULL},
		.install = hello_install,
	},
	{0},
};

static const sn_promise promises[] = {
	{.name = "hello_present", .description = "The greeting file exists.",
	 .options = "{\"type\": \"object\", \"required\": [\"path\"]}", .check = hello_present},
	{0},
};

SLAPNODE_MODULE(.name = "hello", .version = "1.0.0", .recipes = recipes, .promises = promises);
SLAPNODE_EXPORT(recipe_install);
SLAPNODE_EXPORT(promise_check);
