/*
 * hello: the program the slapos-hello fixture release builds with
 * configure && make && make install (slapos.recipe.cmmi). It answers every
 * HTTP request on ADDRESS:PORT with MESSAGE, one connection at a time.
 *
 * usage: hello ADDRESS PORT MESSAGE
 */
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void send_all(int fd, const char *buf, size_t len) {
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n <= 0) {
			if (n < 0 && errno == EINTR) continue;
			return;
		}
		buf += n;
		len -= (size_t)n;
	}
}

int main(int argc, char **argv) {
	if (argc != 4) {
		fprintf(stderr, "usage: %s ADDRESS PORT MESSAGE\n", argv[0]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	struct addrinfo hints = {0}, *ai;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
	int rc = getaddrinfo(argv[1], argv[2], &hints, &ai);
	if (rc != 0) {
		fprintf(stderr, "hello: %s:%s: %s\n", argv[1], argv[2], gai_strerror(rc));
		return 1;
	}
	int s = socket(ai->ai_family, SOCK_STREAM, 0);
	int one = 1;
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (s < 0 || bind(s, ai->ai_addr, ai->ai_addrlen) < 0 || listen(s, 16) < 0) {
		fprintf(stderr, "hello: listen on %s port %s: %s\n", argv[1], argv[2], strerror(errno));
		return 1;
	}
	fprintf(stderr, "hello: serving on %s port %s\n", argv[1], argv[2]);
	char body[4096];
	int blen = snprintf(body, sizeof body, "%s\n", argv[3]);
	if (blen < 0 || blen >= (int)sizeof body) blen = (int)sizeof body - 1;
	for (;;) {
		int c = accept(s, NULL, NULL);
		if (c < 0) {
			if (errno == EINTR) continue;
			return 1;
		}
		char req[2048];
		ssize_t n = read(c, req, sizeof req);
		if (n > 0) {
			char hdr[256];
			int h = snprintf(hdr, sizeof hdr,
			                 "HTTP/1.0 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
			                 "Content-Length: %d\r\nConnection: close\r\n\r\n", blen);
			send_all(c, hdr, (size_t)h);
			if (strncmp(req, "HEAD ", 5) != 0) send_all(c, body, (size_t)blen);
		}
		close(c);
	}
}
