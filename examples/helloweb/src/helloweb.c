/*
 * helloweb: a tiny HTTP/1.0 server, the software the helloweb example
 * release builds from source. It serves one file for every GET and answers
 * HEAD; it handles one connection at a time, which is all a demo needs.
 *
 * usage: helloweb -l ADDRESS -p PORT -f FILE
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static volatile sig_atomic_t stopping;

static void on_term(int sig) { (void)sig; stopping = 1; }

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

static void reply(int fd, const char *status, const char *body, size_t blen, int head) {
	char hdr[256];
	int n = snprintf(hdr, sizeof hdr,
	                 "HTTP/1.0 %s\r\nContent-Type: text/html; charset=utf-8\r\n"
	                 "Content-Length: %zu\r\nServer: helloweb\r\nConnection: close\r\n\r\n",
	                 status, blen);
	send_all(fd, hdr, (size_t)n);
	if (!head) send_all(fd, body, blen);
}

static void serve(int fd, const char *file) {
	char req[2048];
	ssize_t n = read(fd, req, sizeof req - 1);
	if (n <= 0) return;
	req[n] = 0;
	int head = strncmp(req, "HEAD ", 5) == 0;
	if (!head && strncmp(req, "GET ", 4) != 0) {
		const char *msg = "method not allowed\n";
		reply(fd, "405 Method Not Allowed", msg, strlen(msg), 0);
		return;
	}
	FILE *f = fopen(file, "rb");
	if (!f) {
		const char *msg = "page missing\n";
		reply(fd, "500 Internal Server Error", msg, strlen(msg), head);
		return;
	}
	static char body[1 << 16];
	size_t blen = fread(body, 1, sizeof body, f);
	fclose(f);
	reply(fd, "200 OK", body, blen, head);
}

int main(int argc, char **argv) {
	const char *addr = "127.0.0.1", *file = NULL;
	int port = 8080, opt;
	while ((opt = getopt(argc, argv, "l:p:f:")) != -1) {
		switch (opt) {
		case 'l': addr = optarg; break;
		case 'p': port = atoi(optarg); break;
		case 'f': file = optarg; break;
		default:
			fprintf(stderr, "usage: %s -l ADDRESS -p PORT -f FILE\n", argv[0]);
			return 2;
		}
	}
	if (!file || port <= 0 || port > 65535) {
		fprintf(stderr, "usage: %s -l ADDRESS -p PORT -f FILE\n", argv[0]);
		return 2;
	}
	struct sigaction sa = {0};
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	int v6 = strchr(addr, ':') != NULL;
	int s = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
	if (s < 0) { perror("socket"); return 1; }
	int one = 1;
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	int rc;
	if (v6) {
		struct sockaddr_in6 sa6 = {0};
		sa6.sin6_family = AF_INET6;
		sa6.sin6_port = htons((unsigned short)port);
		if (inet_pton(AF_INET6, addr, &sa6.sin6_addr) != 1) { fprintf(stderr, "bad address %s\n", addr); return 2; }
		rc = bind(s, (struct sockaddr *)&sa6, sizeof sa6);
	} else {
		struct sockaddr_in sa4 = {0};
		sa4.sin_family = AF_INET;
		sa4.sin_port = htons((unsigned short)port);
		if (inet_pton(AF_INET, addr, &sa4.sin_addr) != 1) { fprintf(stderr, "bad address %s\n", addr); return 2; }
		rc = bind(s, (struct sockaddr *)&sa4, sizeof sa4);
	}
	if (rc < 0 || listen(s, 16) < 0) {
		fprintf(stderr, "helloweb: cannot listen on %s port %d: %s\n", addr, port, strerror(errno));
		return 1;
	}
	fprintf(stderr, "helloweb: serving %s on %s port %d\n", file, addr, port);
	while (!stopping) {
		int c = accept(s, NULL, NULL);
		if (c < 0) {
			if (errno == EINTR) continue;
			perror("accept");
			return 1;
		}
		serve(c, file);
		close(c);
	}
	fprintf(stderr, "helloweb: stopping\n");
	close(s);
	return 0;
}
