/*
 * motd.c — a slapnode recipe and promise written in C with the C SDK
 * (recipes-wasm/sdk/c). Built into motd.wasm next to this file by `make wasm`.
 *
 * Recipe motd:motd writes a message-of-the-day file from its options and
 * publishes where it wrote it; promise motd:motd_present checks the file is
 * still there and still says what it should.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "slapnode.h"

static const char motd_schema[] =
	"{"
	"\"type\": \"object\","
	"\"required\": [\"path\", \"message\"],"
	"\"additionalProperties\": false,"
	"\"properties\": {"
	"  \"path\":      {\"type\": \"string\", \"description\": \"absolute path of the file to write\"},"
	"  \"message\":   {\"type\": \"string\"},"
	"  \"signature\": {\"type\": \"string\", \"default\": \"\", \"description\": \"appended as '-- signature'\"},"
	"  \"banner\":    {\"type\": \"boolean\", \"default\": false, \"description\": \"start with a line naming the partition\"}"
	"}}";

static const char present_schema[] =
	"{"
	"\"type\": \"object\","
	"\"required\": [\"path\"],"
	"\"properties\": {"
	"  \"path\":     {\"type\": \"string\"},"
	"  \"contains\": {\"type\": \"string\", \"default\": \"\"}"
	"}}";

/* count_lines counts newline-terminated lines, the last one even unterminated. */
static int64_t count_lines(const char *s, size_t n)
{
	int64_t lines = 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] == '\n')
			lines++;
	if (n > 0 && s[n - 1] != '\n')
		lines++;
	return lines;
}

/* write_file replaces path atomically: a reader never sees half a file. */
static int write_file(sn_out *out, const char *path, const char *data, size_t n)
{
	const char *tmp = sn_sprintf("%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (!f)
		return sn_fail(out, "create %s: %s", tmp, strerror(errno));
	size_t w = fwrite(data, 1, n, f);
	int closed = fclose(f);
	if (w != n || closed != 0) {
		int e = errno;
		unlink(tmp);
		return sn_fail(out, "write %s: %s", tmp, strerror(e));
	}
	if (rename(tmp, path) != 0) {
		int e = errno;
		unlink(tmp);
		return sn_fail(out, "rename %s to %s: %s", tmp, path, strerror(e));
	}
	return 0;
}

static int motd_install(const sn_json *in, sn_out *out)
{
	const char *path = sn_get_string(in, "options.path", "");
	const char *message = sn_get_string(in, "options.message", "");
	const char *signature = sn_get_string(in, "options.signature", "");
	if (path[0] != '/')
		return sn_fail(out, "path must be absolute, got \"%s\"", path);

	const char *body = message;
	if (sn_get_bool(in, "options.banner", false)) {
		/* A software part has no partition: name the kind instead. */
		const char *who = sn_get_string(in, "context.partition.id",
						sn_get_string(in, "context.kind", "node"));
		body = sn_sprintf("=== %s ===\n%s", who, body);
	}
	size_t n = strlen(body);
	if (n == 0 || body[n - 1] != '\n')
		body = sn_sprintf("%s\n", body);
	if (signature[0])
		body = sn_sprintf("%s-- %s\n", body, signature);
	n = strlen(body);

	if (write_file(out, path, body, n) != 0)
		return -1;
	sn_installed(out, path);
	sn_output_string(out, "path", path);
	sn_output_int(out, "bytes", (int64_t)n);
	sn_output_int(out, "lines", count_lines(body, n));
	sn_message(out, "wrote %zu bytes to %s", n, path);
	sn_log(SN_DEBUG, "part %s: motd written", sn_get_string(in, "part", "?"));
	return 0;
}

/* motd_update rewrites the file; when the path changed the old file is no
 * longer ours to keep, and the host only removes installed paths on
 * uninstall, so the recipe removes it. */
static int motd_update(const sn_json *in, sn_out *out)
{
	const char *old = sn_get_string(in, "previous.outputs.path", NULL);
	const char *path = sn_get_string(in, "options.path", "");
	if (motd_install(in, out) != 0)
		return -1;
	if (old && strcmp(old, path) != 0) {
		if (unlink(old) != 0 && errno != ENOENT)
			return sn_fail(out, "remove previous %s: %s", old, strerror(errno));
		sn_message(out, "removed previous %s", old);
	}
	return 0;
}

static bool motd_present(const sn_json *in, sn_check *c)
{
	const char *path = sn_get_string(in, "options.path", "");
	const char *want = sn_get_string(in, "options.contains", "");
	FILE *f = fopen(path, "r");
	if (!f) {
		sn_check_message(c, "%s: %s", path, strerror(errno));
		return false;
	}
	/* A motd is small; reading a bounded prefix keeps a huge file harmless. */
	static char buf[64 * 1024];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	if (want[0] && !strstr(buf, want)) {
		sn_check_message(c, "%s does not contain \"%s\"", path, want);
		return false;
	}
	sn_check_message(c, "%s is present (%zu bytes)", path, n);
	return true;
}

static const sn_recipe recipes[] = {
	{
		.name = "motd",
		.description = "Write a message-of-the-day file.",
		.options = motd_schema,
		.outputs = (const char *const[]){"path", "bytes", "lines", NULL},
		.install = motd_install,
		.update = motd_update,
	},
	{0},
};

static const sn_promise promises[] = {
	{
		.name = "motd_present",
		.description = "The motd file exists and contains a given text.",
		.options = present_schema,
		.check = motd_present,
	},
	{0},
};

SLAPNODE_MODULE(.name = "motd", .version = "1.0.0", .recipes = recipes, .promises = promises);
SLAPNODE_EXPORT(recipe_install);
SLAPNODE_EXPORT(recipe_update);
SLAPNODE_EXPORT(promise_check);
