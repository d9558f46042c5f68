/*
 * memo: the program of the slapos-memo fixture release. It reads a
 * configuration file (memo.conf.example) and answers every HTTP request
 * on IP:PORT, and every connection to its unix socket, with its title;
 * GET /version answers the version and the banner chosen at configure
 * time.
 *
 * usage: memo CONFIG
 */
#include "config.h"
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef MEMO_STRICT
#error "memo is built with CFLAGS=-DMEMO_STRICT (the part's environment)"
#endif

static char ip[256], port[16], title[1024], sock[108];

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

static void trim(char *s) {
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\r')) s[--n] = 0;
}

static int read_config(const char *path) {
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "memo: %s: %s\n", path, strerror(errno));
		return -1;
	}
	char line[2048];
	while (fgets(line, sizeof line, f)) {
		char *eq = strchr(line, '=');
		if (line[0] == '#' || !eq) continue;
		*eq = 0;
		char *key = line, *val = eq + 1;
		trim(key);
		while (*val == ' ') val++;
		trim(val);
		if (!strcmp(key, "ip")) snprintf(ip, sizeof ip, "%s", val);
		else if (!strcmp(key, "port")) snprintf(port, sizeof port, "%s", val);
		else if (!strcmp(key, "title")) snprintf(title, sizeof title, "%s", val);
		else if (!strcmp(key, "socket")) snprintf(sock, sizeof sock, "%s", val);
	}
	fclose(f);
	if (!ip[0] || !port[0]) {
		fprintf(stderr, "memo: %s: ip and port are required\n", path);
		return -1;
	}
	return 0;
}

static void answer_http(int c) {
	char req[2048], body[1200], resp[1600];
	ssize_t n = read(c, req, sizeof req - 1);
	req[n > 0 ? n : 0] = 0;
	if (!strncmp(req, "GET /version ", 12))
		snprintf(body, sizeof body, "memo %s (%s)\n", MEMO_VERSION, MEMO_BANNER);
	else
		snprintf(body, sizeof body, "%s\n", title);
	int len = snprintf(resp, sizeof resp,
		"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
		strlen(body), body);
	send_all(c, resp, (size_t)len);
}

int main(int argc, char **argv) {
	if (argc != 2) {
		fprintf(stderr, "usage: %s CONFIG\n", argv[0]);
		return 2;
	}
	if (read_config(argv[1]) < 0) return 1;
	signal(SIGPIPE, SIG_IGN);
	struct addrinfo hints = {0}, *ai;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
	int rc = getaddrinfo(ip, port, &hints, &ai);
	if (rc != 0) {
		fprintf(stderr, "memo: %s:%s: %s\n", ip, port, gai_strerror(rc));
		return 1;
	}
	int one = 1;
	struct pollfd fds[2];
	int nfds = 0;
	int s = socket(ai->ai_family, SOCK_STREAM, 0);
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (s < 0 || bind(s, ai->ai_addr, ai->ai_addrlen) < 0 || listen(s, 16) < 0) {
		fprintf(stderr, "memo: listen on %s port %s: %s\n", ip, port, strerror(errno));
		return 1;
	}
	fds[nfds++] = (struct pollfd){.fd = s, .events = POLLIN};
#if MEMO_UNIX_SOCKET
	if (sock[0]) {
		struct sockaddr_un sun = {.sun_family = AF_UNIX};
		snprintf(sun.sun_path, sizeof sun.sun_path, "%s", sock);
		unlink(sock);
		int u = socket(AF_UNIX, SOCK_STREAM, 0);
		if (u < 0 || bind(u, (struct sockaddr *)&sun, sizeof sun) < 0 || listen(u, 16) < 0) {
			fprintf(stderr, "memo: listen on %s: %s\n", sock, strerror(errno));
			return 1;
		}
		fds[nfds++] = (struct pollfd){.fd = u, .events = POLLIN};
	}
#endif
	fprintf(stderr, "memo: serving \"%s\" on %s port %s\n", title, ip, port);
	for (;;) {
		if (poll(fds, (nfds_t)nfds, -1) < 0) {
			if (errno == EINTR) continue;
			return 1;
		}
		for (int i = 0; i < nfds; i++) {
			if (!(fds[i].revents & POLLIN)) continue;
			int c = accept(fds[i].fd, NULL, NULL);
			if (c < 0) continue;
			if (i == 0) {
				answer_http(c);
			} else {
				char line[1200];
				int len = snprintf(line, sizeof line, "%s\n", title);
				send_all(c, line, (size_t)len);
			}
			close(c);
		}
	}
}
