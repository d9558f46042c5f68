/*
 * slapnode_json.h — the small JSON reader and writer of the slapnode C SDK.
 *
 * Everything that crosses the slapnode ABI is UTF-8 JSON (docs/wasm-abi.md §2),
 * so a recipe needs to read one document (its input) and write one (its output).
 * This file does only that, safely: the reader bounds every access, limits
 * nesting, checks escapes and numbers; the writer escapes strings, replaces
 * invalid UTF-8 and never emits NaN or infinities.
 *
 * Memory: every allocation made here comes from a per-call arena that the SDK
 * frees when the next ABI call starts (see slapnode.h). Nothing returned by
 * these functions needs freeing, and nothing may be kept across calls.
 * Allocation failure traps (abort): the host discards a trapped instance, which
 * is the only sane reaction to an out-of-memory guest.
 */
#ifndef SLAPNODE_JSON_H
#define SLAPNODE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- per-call arena ---------------------------------------------------- */

/* sn_alloc returns n zeroed bytes that live until the current call ends. */
void *sn_alloc(size_t n);
/* sn_realloc resizes a block from sn_alloc (p may be NULL). */
void *sn_realloc(void *p, size_t n);
/* sn_strdup and sn_sprintf return arena copies. */
char *sn_strdup(const char *s);
char *sn_sprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* sn_arena_reset frees everything; the SDK calls it at the start of each call. */
void sn_arena_reset(void);

/* ---- reader -------------------------------------------------------------- */

typedef enum {
	SN_MISSING = 0, /* the value does not exist (a NULL sn_json) */
	SN_NULL,
	SN_BOOL,
	SN_NUMBER,
	SN_STRING,
	SN_ARRAY,
	SN_OBJECT,
} sn_type;

typedef struct sn_json sn_json;

/* Maximum nesting depth the parser accepts; deeper documents are rejected
 * rather than risking the guest's small stack. */
#define SN_JSON_MAX_DEPTH 128

/*
 * sn_json_parse parses len bytes of text. On error it returns NULL and, when
 * err is not NULL, sets *err to a message naming the byte offset.
 */
const sn_json *sn_json_parse(const char *text, size_t len, const char **err);

/*
 * sn_get follows a dot-separated path from v: "context.partition.path".
 * A segment that is all digits indexes an array ("installed.0"). An empty
 * path returns v. Any missing step returns NULL, as does a segment longer
 * than 255 bytes. Use sn_member for keys that contain dots.
 */
const sn_json *sn_get(const sn_json *v, const char *path);
const sn_json *sn_member(const sn_json *obj, const char *key);
const sn_json *sn_index(const sn_json *arr, size_t i);

/* Typed getters: the value at path when it exists with that type, else def.
 * sn_get_int accepts only numbers that are integers within int64 range. */
const char *sn_get_string(const sn_json *v, const char *path, const char *def);
double sn_get_number(const sn_json *v, const char *path, double def);
int64_t sn_get_int(const sn_json *v, const char *path, int64_t def);
bool sn_get_bool(const sn_json *v, const char *path, bool def);

/* Inspecting one value (all accept NULL). */
sn_type sn_type_of(const sn_json *v);
/* sn_str returns a string's bytes (NUL-terminated; *len, when given, counts
 * bytes, which matters if the string contains \u0000), or NULL. */
const char *sn_str(const sn_json *v, size_t *len);
double sn_num(const sn_json *v);
bool sn_bool(const sn_json *v);
/* Arrays and objects: sn_count elements; iterate with sn_first/sn_next; an
 * object member's name is sn_key. */
size_t sn_count(const sn_json *v);
const sn_json *sn_first(const sn_json *v);
const sn_json *sn_next(const sn_json *v);
const char *sn_key(const sn_json *member);

/* ---- writer -------------------------------------------------------------- */

/* Deeper than the reader accepts, so any parsed value can be written back,
 * even nested inside the few levels of a result. */
#define SN_WRITER_MAX_DEPTH (SN_JSON_MAX_DEPTH + 8)

/*
 * sn_writer builds one JSON document; commas are inserted automatically.
 * Inside an object call sn_w_key before each value. Misuse (a value without a
 * key in an object, unbalanced ends, nesting deeper than SN_WRITER_MAX_DEPTH)
 * is a programming error and traps. Initialise with `sn_writer w = {0};`.
 */
typedef struct sn_writer {
	char *buf;
	size_t len, cap;
	int depth;
	bool need_comma[SN_WRITER_MAX_DEPTH + 1];
	bool in_object[SN_WRITER_MAX_DEPTH + 1];
	bool after_key;
} sn_writer;

void sn_w_begin_object(sn_writer *w);
void sn_w_end_object(sn_writer *w);
void sn_w_begin_array(sn_writer *w);
void sn_w_end_array(sn_writer *w);
void sn_w_key(sn_writer *w, const char *key);
void sn_w_string(sn_writer *w, const char *s);
void sn_w_string_n(sn_writer *w, const char *s, size_t n);
void sn_w_number(sn_writer *w, double d); /* NaN and infinities become null */
void sn_w_int(sn_writer *w, int64_t i);
void sn_w_bool(sn_writer *w, bool b);
void sn_w_null(sn_writer *w);
/* sn_w_value writes a parsed value (a NULL value writes null). */
void sn_w_value(sn_writer *w, const sn_json *v);
/* sn_w_text returns the document so far, NUL-terminated (*len when given). */
const char *sn_w_text(sn_writer *w, size_t *len);

#ifdef __cplusplus
}
#endif
#endif
