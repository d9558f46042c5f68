/* hostile.c: a reactor that attacks its host; every attack must fail
 * cleanly (docs/wasm-abi.md §7). Each recipe reports what leaked, if any. */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/stat.h>
#include <wasi/api.h>
#include "mini.h"

EXPORT("abi_describe") uint64_t abi_describe(void) {
	/* fill is described so that profiles can use it (the e2e reproduction
	 * of issue 18 #7); the other attacks are only called by the tests. */
	return ret(out("%s", "{\"abi\":1,\"module\":\"hostile\",\"version\":\"0\",\"recipes\":{"
		"\"fill\":{\"description\":\"Grow memory to the limit, touching every page.\",\"options\":{\"type\":\"object\"}}}}"));
}

/* slurp reads up to 4 KiB of path through libc; NULL when refused. */
static char *slurp(const char *path, int *err) {
	int fd = open(path, O_RDONLY);
	if (fd < 0) { *err = errno; return NULL; }
	char *buf = calloc(4096, 1);
	ssize_t n = read(fd, buf, 4095);
	close(fd);
	if (n <= 0) { *err = n < 0 ? errno : 0; free(buf); return NULL; }
	return buf;
}

/* raw_open opens rel from preopened descriptor dirfd with WASI directly,
 * bypassing wasi-libc's own path checks. */
static char *raw_open(int dirfd, const char *rel, int *err) {
	__wasi_fd_t fd;
	__wasi_errno_t e = __wasi_path_open(dirfd, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, rel, 0, __WASI_RIGHTS_FD_READ, 0, 0, &fd);
	if (e) { *err = e; return NULL; }
	char *buf = calloc(4096, 1);
	__wasi_iovec_t iov = {(uint8_t *)buf, 4095};
	__wasi_size_t n = 0;
	(void)__wasi_fd_read(fd, &iov, 1, &n);
	(void)__wasi_fd_close(fd);
	if (!n) { *err = 0; free(buf); return NULL; }
	return buf;
}

static char leaks[16384];
static char errs[4096];

static void attempt(const char *what, char *content, int err) {
	if (content) {
		strncat(leaks, what, sizeof leaks - strlen(leaks) - 1);
		strncat(leaks, ": ", sizeof leaks - strlen(leaks) - 1);
		strncat(leaks, content, sizeof leaks - strlen(leaks) - 1);
	} else {
		char b[256];
		snprintf(b, sizeof b, "%s=%d ", what, err);
		strncat(errs, b, sizeof errs - strlen(errs) - 1);
	}
}

static uint64_t report(void) {
	char *l = esc(leaks), *e = esc(errs);
	char *o = out("{\"leaked\":%s,\"errors\":%s}", l, e);
	leaks[0] = errs[0] = 0;
	return result(o, NULL);
}

EXPORT("recipe_install") uint64_t recipe_install(const char *p, int32_t n) {
	(void)n;
	char *recipe = str(p, "recipe");
	char *opts = raw(p, "options");
	char *dir = str(opts, "dir");
	char path[1024];
	int err = 0;
	if (!strcmp(recipe, "shadow")) {
		attempt("/etc/shadow", slurp("/etc/shadow", &err), err);
		attempt("/etc/passwd", slurp("/etc/passwd", &err), err);
		for (int fd = 3; fd < 8; fd++) {
			snprintf(path, sizeof path, "fd%d:../../../../../../etc/passwd", fd);
			attempt(path, raw_open(fd, "../../../../../../etc/passwd", &err), err);
		}
		return report();
	}
	if (!strcmp(recipe, "walk")) {
		const char *up = "";
		for (int i = 1; i < 12; i++) {
			char rel[256] = "";
			for (int j = 0; j < i; j++) strcat(rel, "../");
			strcat(rel, "etc/passwd");
			snprintf(path, sizeof path, "%s/%s", dir, rel);
			attempt(path, slurp(path, &err), err);
			attempt(rel, raw_open(3, rel, &err), err);
		}
		(void)up;
		/* escape through the secret file next to the mount */
		snprintf(path, sizeof path, "%s/../secret.txt", dir);
		attempt(path, slurp(path, &err), err);
		attempt("../secret.txt", raw_open(3, "../secret.txt", &err), err);
		attempt("sub/../../secret.txt", raw_open(3, "sub/../../secret.txt", &err), err);
		return report();
	}
	if (!strcmp(recipe, "symlink_abs") || !strcmp(recipe, "symlink_rel")) {
		int abs = !strcmp(recipe, "symlink_abs");
		const char *target = abs ? "/etc" : "../../../../../../../../etc";
		snprintf(path, sizeof path, "%s/link", dir);
		if (symlink(target, path)) {
			snprintf(path, sizeof path, "symlink(%s)", target);
			attempt(path, NULL, errno);
		} else {
			attempt("symlink created", "", 0);
		}
		snprintf(path, sizeof path, "%s/link/passwd", dir);
		attempt(path, slurp(path, &err), err);
		/* sideways: a relative target that leaves the mount then comes back */
		snprintf(path, sizeof path, "%s/side", dir);
		if (symlink("../secret.txt", path)) attempt("symlink(../secret.txt)", NULL, errno);
		else attempt("symlink(../secret.txt) created", "", 0);
		snprintf(path, sizeof path, "%s/side", dir);
		attempt(path, slurp(path, &err), err);
		return report();
	}
	if (!strcmp(recipe, "planted")) {
		/* links the host (or an earlier process) planted in the mount */
		snprintf(path, sizeof path, "%s/planted_abs/passwd", dir);
		attempt(path, slurp(path, &err), err);
		snprintf(path, sizeof path, "%s/planted_rel", dir);
		attempt(path, slurp(path, &err), err);
		attempt("planted_rel (raw)", raw_open(3, "planted_rel", &err), err);
		return report();
	}
	if (!strcmp(recipe, "write_ro")) {
		snprintf(path, sizeof path, "%s/new.txt", dir);
		int fd = open(path, O_WRONLY | O_CREAT, 0644);
		if (fd >= 0) { write(fd, "x", 1); close(fd); attempt("created", "", 0); }
		else attempt("create", NULL, errno);
		snprintf(path, sizeof path, "%s/existing.txt", dir);
		fd = open(path, O_WRONLY | O_TRUNC);
		if (fd >= 0) { close(fd); attempt("truncated", "", 0); }
		else attempt("truncate", NULL, errno);
		if (unlink(path) == 0) attempt("unlinked", "", 0);
		else attempt("unlink", NULL, errno);
		snprintf(path, sizeof path, "%s/newdir", dir);
		if (mkdir(path, 0755) == 0) attempt("mkdir", "", 0);
		else attempt("mkdir", NULL, errno);
		return report();
	}
	if (!strcmp(recipe, "alloc")) {
		for (;;) {
			if (__builtin_wasm_memory_grow(0, 16) == (size_t)-1) {
				/* a hostile guest keeps trying; make the failure a trap */
				__builtin_trap();
			}
		}
	}
	if (!strcmp(recipe, "fill")) {
		/* Grow by "step" pages (default 16: 1 MiB) until the host refuses,
		 * writing every 4 KiB so that the host must really back each page;
		 * then return normally, keeping the memory: the instance stays
		 * alive in its session with its memory at the limit. */
		char *s = raw(opts, "step");
		long step = s ? atol(s[0] == '"' ? s + 1 : s) : 16;
		if (step <= 0) step = 16;
		long pages = 0;
		for (;;) {
			size_t old = __builtin_wasm_memory_grow(0, step);
			if (old == (size_t)-1) break;
			for (size_t a = old * 65536; a < (old + step) * 65536; a += 4096)
				*(volatile char *)a = 1;
			pages = (long)(old + step);
		}
		return ret(out("{\"outputs\":{\"pages\":%ld},\"installed\":[],\"messages\":[],\"error\":\"\"}", pages));
	}
	if (!strcmp(recipe, "loop")) {
		volatile unsigned long i = 0;
		for (;;) i++;
	}
	if (!strcmp(recipe, "badjson")) return ret(out("%s", "{\"outputs\": {not json"));
	if (!strcmp(recipe, "badptr")) return ((uint64_t)0xfffff000u << 32) | 4096u;
	if (!strcmp(recipe, "huge")) return ((uint64_t)16 << 32) | (5u << 20);
	if (!strcmp(recipe, "badlog")) {
		sn_log(1, (const char *)0xfffffff0u, 64);
		return result(NULL, NULL);
	}
	return result(NULL, "unknown recipe");
}
