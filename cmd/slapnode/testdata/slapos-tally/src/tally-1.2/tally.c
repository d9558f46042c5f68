/*
 * tally: the program of the slapos-tally fixture release. It counts the
 * HTTP requests it answers on ADDRESS:PORT (IPv4 or IPv6), keeping the
 * count in STATEFILE, and answers each with "GREETING #COUNT"; GREETING
 * is $TALLY_GREETING, else "tally".
 *
 * usage: tally ADDRESS PORT STATEFILE
 */
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *greeting(void) {
	const char *g = getenv("TALLY_GREETING");
	return g && *g ? g : "tally";
}

static long load(const char *path) {
	long n = 0;
	FILE *f = fopen(path, "r");
	if (f) {
		if (fscanf(f, "%ld", &n) != 1) n = 0;
		fclose(f);
	}
	return n;
}

static void save(const char *path, long n) {
	FILE *f = fopen(path, "w");
	if (f) {
		fprintf(f, "%ld\n", n);
		fclose(f);
	}
}

int main(int argc, char **argv) {
	if (argc != 4) {
		fprintf(stderr, "usage: %s ADDRESS PORT STATEFILE\n", argv[0]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	struct addrinfo hints = {0}, *ai;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
	int rc = getaddrinfo(argv[1], argv[2], &hints, &ai);
	if (rc != 0) {
		fprintf(stderr, "tally: %s:%s: %s\n", argv[1], argv[2], gai_strerror(rc));
		return 1;
	}
	int s = socket(ai->ai_family, SOCK_STREAM, 0);
	int one = 1;
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (s < 0 || bind(s, ai->ai_addr, ai->ai_addrlen) < 0 || listen(s, 16) < 0) {
		fprintf(stderr, "tally: listen on %s port %s: %s\n", argv[1], argv[2], strerror(errno));
		return 1;
	}
	long n = load(argv[3]);
	fprintf(stderr, "tally: counting from %ld on %s port %s\n", n, argv[1], argv[2]);
	for (;;) {
		int c = accept(s, NULL, NULL);
		if (c < 0) {
			if (errno == EINTR) continue;
			return 1;
		}
		char req[2048];
		if (read(c, req, sizeof req) < 0) {
			close(c);
			continue;
		}
		save(argv[3], ++n);
		char body[512], resp[768];
		snprintf(body, sizeof body, "%s #%ld\n", greeting(), n);
		int len = snprintf(resp, sizeof resp,
			"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
			strlen(body), body);
		if (write(c, resp, (size_t)len) < 0) fprintf(stderr, "tally: write: %s\n", strerror(errno));
		close(c);
	}
}
