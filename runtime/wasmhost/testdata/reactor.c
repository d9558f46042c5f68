/* reactor.c: a well-behaved C reactor recipe/promise module for the
 * wasmhost tests; it exercises the file system grants and every host
 * function. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/stat.h>
#include "mini.h"

IMPORT("download") int32_t sn_download(const char *p, int32_t n);
IMPORT("exec") int32_t sn_exec(const char *p, int32_t n);
IMPORT("tcp_probe") int32_t sn_tcp_probe(const char *p, int32_t n);
IMPORT("http_get") int32_t sn_http_get(const char *p, int32_t n);
IMPORT("chmod") int32_t sn_chmod(const char *p, int32_t n);
IMPORT("write_file") int32_t sn_write_file(const char *p, int32_t n);
IMPORT("mkdir") int32_t sn_mkdir(const char *p, int32_t n);

static int calls;

static char *call(int32_t (*fn)(const char *, int32_t), const char *req) {
	int32_t n = fn(req, (int32_t)strlen(req));
	if (n < 0) return NULL;
	char *b = malloc(n + 1);
	sn_response(b);
	b[n] = 0;
	return b;
}

EXPORT("abi_describe") uint64_t abi_describe(void) {
	return ret(out("%s",
		"{\"abi\":1,\"module\":\"ctest\",\"version\":\"1.0.0\","
		"\"recipes\":{\"echo\":{\"description\":\"Echo.\",\"options\":{\"type\":\"object\"},\"outputs\":[\"calls\"]},"
		"\"write\":{\"description\":\"Write a file.\",\"options\":{\"type\":\"object\",\"required\":[\"path\"]}}},"
		"\"promises\":{\"probe\":{\"description\":\"TCP probe.\",\"options\":{\"type\":\"object\"}}}}"));
}

static uint64_t errno_result(int e, const char *extra) {
	char *o = out("{\"errno\":%d%s%s}", e, extra ? "," : "", extra ? extra : "");
	uint64_t r = result(o, NULL);
	free(o);
	return r;
}

/* dispatch runs one recipe. Only echo (the benchmarked path) frees what it
 * allocates; the other test recipes run a handful of times. */
static uint64_t dispatch(const char *in, const char *recipe, const char *opts) {
	if (!recipe) return result(NULL, "no recipe");
	if (!strcmp(recipe, "echo")) {
		logs(1, "echo called");
		printf("stdout line from echo\n");
		fflush(stdout);
		char *o = out("{\"recipe\":\"echo\",\"input_bytes\":%d,\"calls\":%d}", (int)strlen(in), calls);
		uint64_t r = result(o, NULL);
		free(o);
		return r;
	}
	if (!strcmp(recipe, "fail")) return result(NULL, "asked to fail");
	if (!strcmp(recipe, "write")) {
		char *path = str(opts, "path"), *content = str(opts, "content");
		FILE *f = fopen(path, "w");
		if (!f) return errno_result(errno, NULL);
		fputs(content ? content : "hello", f);
		int e = fclose(f) ? errno : 0;
		return errno_result(e, NULL);
	}
	if (!strcmp(recipe, "read")) {
		char *path = str(opts, "path");
		FILE *f = fopen(path, "r");
		if (!f) return errno_result(errno, NULL);
		char buf[4096];
		size_t n = fread(buf, 1, sizeof buf - 1, f);
		buf[n] = 0;
		fclose(f);
		char *e = esc(buf);
		char *x = out("\"content\":%s", e);
		return errno_result(0, x);
	}
	if (!strcmp(recipe, "mkdir")) {
		char *path = str(opts, "path");
		return errno_result(mkdir(path, 0755) ? errno : 0, NULL);
	}
	if (!strcmp(recipe, "symlink")) {
		char *target = str(opts, "target"), *link = str(opts, "link");
		return errno_result(symlink(target, link) ? errno : 0, NULL);
	}
	if (!strcmp(recipe, "readdir")) {
		char *path = str(opts, "path");
		DIR *d = opendir(path);
		if (!d) return errno_result(errno, NULL);
		char names[4096] = "";
		struct dirent *de;
		int rounds;
		/* list twice with a rewind in between: exercises Seek(0). */
		for (rounds = 0; rounds < 2; rounds++) {
			while ((de = readdir(d)) != NULL) {
				if (de->d_name[0] == '.') continue;
				strncat(names, de->d_name, sizeof names - strlen(names) - 2);
				strcat(names, " ");
			}
			rewinddir(d);
		}
		closedir(d);
		char *e = esc(names);
		char *x = out("\"names\":%s", e);
		return errno_result(0, x);
	}
	if (!strcmp(recipe, "seek")) {
		char *path = str(opts, "path");
		int fd = open(path, O_RDONLY);
		if (fd < 0) return errno_result(errno, NULL);
		off_t end = lseek(fd, 0, SEEK_END);
		lseek(fd, 1, SEEK_SET);
		char c = 0;
		read(fd, &c, 1);
		close(fd);
		char *x = out("\"size\":%ld,\"second\":\"%c\"", (long)end, c);
		return errno_result(0, x);
	}
	if (!strcmp(recipe, "host")) {
		char *fn = str(opts, "fn"), *req = raw(opts, "request");
		/* write_file's request is a JSON line then raw bytes: the test
		 * gives it as a string. */
		if (!strcmp(fn, "write_file")) req = str(opts, "request");
		int32_t (*f)(const char *, int32_t) =
			!strcmp(fn, "write_file") ? sn_write_file :
			!strcmp(fn, "mkdir") ? sn_mkdir :
			!strcmp(fn, "download") ? sn_download :
			!strcmp(fn, "exec") ? sn_exec :
			!strcmp(fn, "tcp_probe") ? sn_tcp_probe :
			!strcmp(fn, "chmod") ? sn_chmod : sn_http_get;
		char *resp = call(f, req);
		if (!resp) return result(NULL, "host function refused the request");
		char *o = out("{\"response\":%s}", resp);
		return result(o, NULL);
	}
	if (!strcmp(recipe, "log_flood")) {
		char *chunk = malloc(60000);
		memset(chunk, 'x', 59999);
		chunk[59999] = 0;
		for (int i = 0; i < 40; i++) logs(1, chunk); /* 2.4 MB > 1 MiB cap */
		return result(NULL, NULL);
	}
	return result(NULL, "unknown recipe");
}

static uint64_t run(const char *in) {
	char *recipe = str(in, "recipe");
	char *opts = raw(in, "options");
	calls++;
	uint64_t r = dispatch(in, recipe, opts);
	free(recipe);
	free(opts);
	return r;
}

EXPORT("recipe_install") uint64_t recipe_install(const char *p, int32_t n) {
	(void)n;
	return run(p);
}

EXPORT("recipe_uninstall") uint64_t recipe_uninstall(const char *p, int32_t n) {
	(void)n;
	return run(p);
}

/* promise_check probes the options' host/port with slapnode.tcp_probe. */
EXPORT("promise_check") uint64_t promise_check(const char *p, int32_t n) {
	(void)n;
	char *opts = raw(p, "options");
	char *resp = call(sn_tcp_probe, opts ? opts : "{}");
	if (!resp) return ret(out("{\"ok\":false,\"message\":\"refused\"}"));
	int ok = strstr(resp, "\"ok\":true") != NULL;
	char *e = esc(resp);
	return ret(out("{\"ok\":%s,\"message\":%s}", ok ? "true" : "false", e));
}
