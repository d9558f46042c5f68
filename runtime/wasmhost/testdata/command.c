/* command.c: a WASI command recipe module (docs/wasm-abi.md §1.2). */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
	if (argc < 2) return 2;
	if (!strcmp(argv[1], "describe")) {
		fputs("{\"abi\":1,\"module\":\"ccmd\",\"version\":\"0.1\",\"recipes\":{\"hello\":{\"description\":\"Say hello.\",\"options\":{\"type\":\"object\"}}}}", stdout);
		return 0;
	}
	static char in[65536];
	size_t n = fread(in, 1, sizeof in - 1, stdin);
	in[n] = 0;
	fprintf(stderr, "command got %zu bytes for %s\n", n, argv[1]);
	if (strstr(in, "\"recipe\":\"crash\"")) {
		fputs("crashing as asked\n", stderr);
		return 7;
	}
	printf("{\"outputs\":{\"entry\":\"%s\",\"argv0\":\"%s\",\"input_bytes\":%zu},\"installed\":[],\"messages\":[],\"error\":\"\"}", argv[1], argv[0], n);
	return 0;
}
