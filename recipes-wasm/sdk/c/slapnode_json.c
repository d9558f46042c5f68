/*
 * slapnode_json.c — arena, JSON reader and JSON writer of the slapnode C SDK.
 * See slapnode_json.h for the contract.
 */
#include "slapnode_json.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- arena --------------------------------------------------------------- */

/*
 * Every block carries a header linking it into one list, so a whole call's
 * allocations are released at once and sn_realloc can still move a block.
 * The union keeps the payload aligned for any type.
 */
typedef union block {
	struct {
		union block *prev, *next;
	} link;
	max_align_t align;
} block;

static block *arena;

static void *arena_link(block *b)
{
	b->link.prev = NULL;
	b->link.next = arena;
	if (arena)
		arena->link.prev = b;
	arena = b;
	return b + 1;
}

void *sn_alloc(size_t n)
{
	if (n > SIZE_MAX - sizeof(block))
		abort();
	block *b = calloc(1, sizeof(block) + n);
	if (!b)
		abort();
	return arena_link(b);
}

void *sn_realloc(void *p, size_t n)
{
	if (!p)
		return sn_alloc(n);
	if (n > SIZE_MAX - sizeof(block))
		abort();
	block *old = (block *)p - 1;
	block *prev = old->link.prev, *next = old->link.next;
	block *b = realloc(old, sizeof(block) + n);
	if (!b)
		abort();
	/* Relink in place: the neighbours still point at the old address. */
	if (prev)
		prev->link.next = b;
	else
		arena = b;
	if (next)
		next->link.prev = b;
	return b + 1;
}

char *sn_strdup(const char *s)
{
	size_t n = strlen(s);
	char *d = sn_alloc(n + 1);
	memcpy(d, s, n);
	return d;
}

char *sn_sprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return sn_strdup("");
	char *s = sn_alloc((size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return s;
}

void sn_arena_reset(void)
{
	while (arena) {
		block *next = arena->link.next;
		free(arena);
		arena = next;
	}
}

/* ---- reader -------------------------------------------------------------- */

struct sn_json {
	sn_type type;
	bool b;
	double n;
	const char *s; /* string value, NUL-terminated */
	size_t slen;
	const char *key; /* member name when the parent is an object */
	size_t count;
	sn_json *child, *next;
};

typedef struct parser {
	const char *p, *start, *end;
	const char *err;
	int depth;
} parser;

static bool fail(parser *ps, const char *what)
{
	if (!ps->err)
		ps->err = sn_sprintf("invalid JSON at byte %zu: %s",
				     (size_t)(ps->p - ps->start), what);
	return false;
}

static void skip_ws(parser *ps)
{
	while (ps->p < ps->end &&
	       (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

static bool literal(parser *ps, const char *word)
{
	size_t n = strlen(word);
	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
		return fail(ps, "unexpected token");
	ps->p += n;
	return true;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool hex4(parser *ps, unsigned *out)
{
	if (ps->end - ps->p < 4)
		return fail(ps, "short \\u escape");
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		int h = hexval(ps->p[i]);
		if (h < 0)
			return fail(ps, "bad \\u escape");
		v = v << 4 | (unsigned)h;
	}
	ps->p += 4;
	*out = v;
	return true;
}

static size_t put_utf8(char *d, unsigned cp)
{
	if (cp < 0x80) {
		d[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		d[0] = (char)(0xC0 | cp >> 6);
		d[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		d[0] = (char)(0xE0 | cp >> 12);
		d[1] = (char)(0x80 | (cp >> 6 & 0x3F));
		d[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	d[0] = (char)(0xF0 | cp >> 18);
	d[1] = (char)(0x80 | (cp >> 12 & 0x3F));
	d[2] = (char)(0x80 | (cp >> 6 & 0x3F));
	d[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* parse_string reads a string whose opening quote is at ps->p. The decoded
 * form is never longer than the source, so one allocation suffices. */
static bool parse_string(parser *ps, const char **out, size_t *outlen)
{
	ps->p++;
	const char *q = ps->p;
	while (q < ps->end && *q != '"') {
		if (*q == '\\')
			q++;
		q++;
	}
	if (q >= ps->end)
		return fail(ps, "unterminated string");
	char *d = sn_alloc((size_t)(q - ps->p) + 1);
	size_t n = 0;
	while (*ps->p != '"') {
		unsigned char c = (unsigned char)*ps->p;
		if (c < 0x20)
			return fail(ps, "control character in string");
		if (c != '\\') {
			d[n++] = (char)c;
			ps->p++;
			continue;
		}
		ps->p++;
		char e = *ps->p++;
		switch (e) {
		case '"': d[n++] = '"'; break;
		case '\\': d[n++] = '\\'; break;
		case '/': d[n++] = '/'; break;
		case 'b': d[n++] = '\b'; break;
		case 'f': d[n++] = '\f'; break;
		case 'n': d[n++] = '\n'; break;
		case 'r': d[n++] = '\r'; break;
		case 't': d[n++] = '\t'; break;
		case 'u': {
			unsigned cp;
			if (!hex4(ps, &cp))
				return false;
			if (cp >= 0xD800 && cp <= 0xDBFF && ps->end - ps->p >= 2 &&
			    ps->p[0] == '\\' && ps->p[1] == 'u') {
				const char *next = ps->p;
				unsigned lo;
				ps->p += 2;
				if (!hex4(ps, &lo))
					return false;
				if (lo >= 0xDC00 && lo <= 0xDFFF) {
					cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
				} else {
					ps->p = next; /* decode that escape on its own */
					cp = 0xFFFD;
				}
			} else if (cp >= 0xD800 && cp <= 0xDFFF) {
				/* A lone surrogate is valid JSON but not UTF-8: U+FFFD,
				 * as Go's encoding/json on the host side decodes it. */
				cp = 0xFFFD;
			}
			n += put_utf8(d + n, cp);
			break;
		}
		default:
			ps->p--;
			return fail(ps, "bad escape");
		}
	}
	ps->p++;
	d[n] = 0;
	*out = d;
	*outlen = n;
	return true;
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* parse_number checks the JSON grammar itself: strtod alone would accept
 * hex, "inf", leading '+' and other forms JSON forbids. */
static bool parse_number(parser *ps, sn_json *v)
{
	const char *s = ps->p, *q = ps->p;
	if (q < ps->end && *q == '-')
		q++;
	if (q < ps->end && *q == '0')
		q++;
	else if (q < ps->end && *q >= '1' && *q <= '9')
		while (q < ps->end && is_digit(*q))
			q++;
	else
		return fail(ps, "bad number");
	if (q < ps->end && *q == '.') {
		q++;
		if (q >= ps->end || !is_digit(*q))
			return fail(ps, "bad fraction");
		while (q < ps->end && is_digit(*q))
			q++;
	}
	if (q < ps->end && (*q == 'e' || *q == 'E')) {
		q++;
		if (q < ps->end && (*q == '+' || *q == '-'))
			q++;
		if (q >= ps->end || !is_digit(*q))
			return fail(ps, "bad exponent");
		while (q < ps->end && is_digit(*q))
			q++;
	}
	/* strtod needs a terminated copy: the input is not NUL-terminated. */
	size_t n = (size_t)(q - s);
	char tmp[64];
	char *buf = n < sizeof tmp ? tmp : sn_alloc(n + 1);
	memcpy(buf, s, n);
	buf[n] = 0;
	v->type = SN_NUMBER;
	v->n = strtod(buf, NULL);
	ps->p = q;
	return true;
}

static bool parse_value(parser *ps, sn_json *v);

static bool parse_container(parser *ps, sn_json *v, bool object)
{
	char close = object ? '}' : ']';
	if (++ps->depth > SN_JSON_MAX_DEPTH)
		return fail(ps, "nesting too deep");
	v->type = object ? SN_OBJECT : SN_ARRAY;
	ps->p++;
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == close) {
		ps->p++;
		ps->depth--;
		return true;
	}
	sn_json **tail = &v->child;
	for (;;) {
		sn_json *c = sn_alloc(sizeof *c);
		skip_ws(ps);
		if (object) {
			size_t klen;
			if (ps->p >= ps->end || *ps->p != '"')
				return fail(ps, "expected member name");
			if (!parse_string(ps, &c->key, &klen))
				return false;
			skip_ws(ps);
			if (ps->p >= ps->end || *ps->p != ':')
				return fail(ps, "expected ':'");
			ps->p++;
		}
		if (!parse_value(ps, c))
			return false;
		*tail = c;
		tail = &c->next;
		v->count++;
		skip_ws(ps);
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			continue;
		}
		if (ps->p < ps->end && *ps->p == close) {
			ps->p++;
			ps->depth--;
			return true;
		}
		return fail(ps, object ? "expected ',' or '}'" : "expected ',' or ']'");
	}
}

static bool parse_value(parser *ps, sn_json *v)
{
	skip_ws(ps);
	if (ps->p >= ps->end)
		return fail(ps, "unexpected end of input");
	switch (*ps->p) {
	case '{':
		return parse_container(ps, v, true);
	case '[':
		return parse_container(ps, v, false);
	case '"':
		v->type = SN_STRING;
		return parse_string(ps, &v->s, &v->slen);
	case 't':
		v->type = SN_BOOL;
		v->b = true;
		return literal(ps, "true");
	case 'f':
		v->type = SN_BOOL;
		return literal(ps, "false");
	case 'n':
		v->type = SN_NULL;
		return literal(ps, "null");
	default:
		return parse_number(ps, v);
	}
}

const sn_json *sn_json_parse(const char *text, size_t len, const char **err)
{
	parser ps = {.p = text, .start = text, .end = text + len};
	sn_json *root = sn_alloc(sizeof *root);
	if (parse_value(&ps, root)) {
		skip_ws(&ps);
		if (ps.p == ps.end)
			return root;
		fail(&ps, "trailing data");
	}
	if (err)
		*err = ps.err;
	return NULL;
}

const sn_json *sn_member(const sn_json *obj, const char *key)
{
	if (!obj || obj->type != SN_OBJECT || !key)
		return NULL;
	/* The last duplicate wins, as in Go's encoding/json which the host uses. */
	const sn_json *found = NULL;
	for (const sn_json *c = obj->child; c; c = c->next)
		if (strcmp(c->key, key) == 0)
			found = c;
	return found;
}

const sn_json *sn_index(const sn_json *arr, size_t i)
{
	if (!arr || arr->type != SN_ARRAY)
		return NULL;
	const sn_json *c = arr->child;
	while (c && i--)
		c = c->next;
	return c;
}

const sn_json *sn_get(const sn_json *v, const char *path)
{
	if (!path)
		return v;
	while (v && *path) {
		const char *dot = strchr(path, '.');
		size_t n = dot ? (size_t)(dot - path) : strlen(path);
		char seg[256];
		if (n >= sizeof seg)
			return NULL;
		memcpy(seg, path, n);
		seg[n] = 0;
		bool digits = n > 0;
		for (size_t i = 0; i < n; i++)
			digits = digits && is_digit(seg[i]);
		if (v->type == SN_ARRAY && digits)
			v = sn_index(v, (size_t)strtoul(seg, NULL, 10));
		else
			v = sn_member(v, seg);
		path += n;
		if (*path == '.')
			path++;
	}
	return v;
}

const char *sn_get_string(const sn_json *v, const char *path, const char *def)
{
	const sn_json *x = sn_get(v, path);
	return x && x->type == SN_STRING ? x->s : def;
}

double sn_get_number(const sn_json *v, const char *path, double def)
{
	const sn_json *x = sn_get(v, path);
	return x && x->type == SN_NUMBER ? x->n : def;
}

int64_t sn_get_int(const sn_json *v, const char *path, int64_t def)
{
	const sn_json *x = sn_get(v, path);
	/* 2^63 is exactly representable; anything at or beyond it does not fit. */
	if (!x || x->type != SN_NUMBER || x->n != floor(x->n) ||
	    x->n < -9223372036854775808.0 || x->n >= 9223372036854775808.0)
		return def;
	return (int64_t)x->n;
}

bool sn_get_bool(const sn_json *v, const char *path, bool def)
{
	const sn_json *x = sn_get(v, path);
	return x && x->type == SN_BOOL ? x->b : def;
}

sn_type sn_type_of(const sn_json *v) { return v ? v->type : SN_MISSING; }

const char *sn_str(const sn_json *v, size_t *len)
{
	if (!v || v->type != SN_STRING)
		return NULL;
	if (len)
		*len = v->slen;
	return v->s;
}

double sn_num(const sn_json *v) { return v && v->type == SN_NUMBER ? v->n : 0; }
bool sn_bool(const sn_json *v) { return v && v->type == SN_BOOL && v->b; }
size_t sn_count(const sn_json *v) { return v ? v->count : 0; }
const sn_json *sn_first(const sn_json *v) { return v ? v->child : NULL; }
const sn_json *sn_next(const sn_json *v) { return v ? v->next : NULL; }
const char *sn_key(const sn_json *member) { return member ? member->key : NULL; }

/* ---- writer -------------------------------------------------------------- */

static void w_put(sn_writer *w, const char *s, size_t n)
{
	if (w->cap - w->len <= n) {
		size_t cap = w->cap ? w->cap : 256;
		while (cap - w->len <= n) {
			if (cap > SIZE_MAX / 2)
				abort();
			cap *= 2;
		}
		w->buf = sn_realloc(w->buf, cap);
		w->cap = cap;
	}
	memcpy(w->buf + w->len, s, n);
	w->len += n;
	w->buf[w->len] = 0;
}

/* before_value places the comma and checks that object values have keys. */
static void before_value(sn_writer *w)
{
	if (w->in_object[w->depth]) {
		if (!w->after_key)
			abort();
		w->after_key = false;
		return;
	}
	if (w->need_comma[w->depth])
		w_put(w, ",", 1);
	w->need_comma[w->depth] = true;
}

static void begin(sn_writer *w, bool object)
{
	before_value(w);
	if (w->depth >= SN_WRITER_MAX_DEPTH)
		abort();
	w->depth++;
	w->need_comma[w->depth] = false;
	w->in_object[w->depth] = object;
	w_put(w, object ? "{" : "[", 1);
}

static void end(sn_writer *w, bool object)
{
	if (w->depth == 0 || w->in_object[w->depth] != object || w->after_key)
		abort();
	w->depth--;
	w_put(w, object ? "}" : "]", 1);
}

void sn_w_begin_object(sn_writer *w) { begin(w, true); }
void sn_w_end_object(sn_writer *w) { end(w, true); }
void sn_w_begin_array(sn_writer *w) { begin(w, false); }
void sn_w_end_array(sn_writer *w) { end(w, false); }

/* utf8_len returns the length of the valid UTF-8 sequence at s, or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	size_t len;
	unsigned cp, min;
	if (c < 0x80)
		return 1;
	if ((c & 0xE0) == 0xC0) {
		len = 2, cp = c & 0x1F, min = 0x80;
	} else if ((c & 0xF0) == 0xE0) {
		len = 3, cp = c & 0x0F, min = 0x800;
	} else if ((c & 0xF8) == 0xF0) {
		len = 4, cp = c & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3F);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return len;
}

static void w_quoted(sn_writer *w, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	w_put(w, "\"", 1);
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;
	while (i < n) {
		unsigned char c = u[i];
		if (c == '"' || c == '\\') {
			char e[2] = {'\\', (char)c};
			w_put(w, e, 2);
			i++;
		} else if (c < 0x20) {
			char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
			if (c == '\n')
				w_put(w, "\\n", 2);
			else if (c == '\t')
				w_put(w, "\\t", 2);
			else if (c == '\r')
				w_put(w, "\\r", 2);
			else
				w_put(w, e, 6);
			i++;
		} else {
			size_t l = utf8_len(u + i, n - i);
			if (l == 0) {
				/* The host parses our output as JSON, which must be UTF-8. */
				w_put(w, "\\ufffd", 6);
				i++;
			} else {
				w_put(w, s + i, l);
				i += l;
			}
		}
	}
	w_put(w, "\"", 1);
}

void sn_w_key(sn_writer *w, const char *key)
{
	if (!w->in_object[w->depth] || w->after_key)
		abort();
	if (w->need_comma[w->depth])
		w_put(w, ",", 1);
	w->need_comma[w->depth] = true;
	w_quoted(w, key, strlen(key));
	w_put(w, ":", 1);
	w->after_key = true;
}

void sn_w_string_n(sn_writer *w, const char *s, size_t n)
{
	before_value(w);
	w_quoted(w, s, n);
}

void sn_w_string(sn_writer *w, const char *s)
{
	if (!s) {
		sn_w_null(w);
		return;
	}
	sn_w_string_n(w, s, strlen(s));
}

void sn_w_number(sn_writer *w, double d)
{
	if (isnan(d) || isinf(d)) {
		sn_w_null(w);
		return;
	}
	before_value(w);
	char tmp[40];
	int n;
	if (d == floor(d) && fabs(d) < 1e17) {
		n = snprintf(tmp, sizeof tmp, "%.0f", d);
	} else {
		/* The shortest of %.15g..%.17g that reads back as d: 2.5e-08, not
		 * 2.4999999999999999e-08. %.17g always does. */
		for (int prec = 15;; prec++) {
			n = snprintf(tmp, sizeof tmp, "%.*g", prec, d);
			if (prec == 17 || strtod(tmp, NULL) == d)
				break;
		}
	}
	w_put(w, tmp, (size_t)n);
}

void sn_w_int(sn_writer *w, int64_t i)
{
	before_value(w);
	char tmp[24];
	int n = snprintf(tmp, sizeof tmp, "%lld", (long long)i);
	w_put(w, tmp, (size_t)n);
}

void sn_w_bool(sn_writer *w, bool b)
{
	before_value(w);
	w_put(w, b ? "true" : "false", b ? 4 : 5);
}

void sn_w_null(sn_writer *w)
{
	before_value(w);
	w_put(w, "null", 4);
}

void sn_w_value(sn_writer *w, const sn_json *v)
{
	switch (sn_type_of(v)) {
	case SN_MISSING:
	case SN_NULL:
		sn_w_null(w);
		break;
	case SN_BOOL:
		sn_w_bool(w, v->b);
		break;
	case SN_NUMBER:
		sn_w_number(w, v->n);
		break;
	case SN_STRING:
		sn_w_string_n(w, v->s, v->slen);
		break;
	case SN_ARRAY:
		sn_w_begin_array(w);
		for (const sn_json *c = v->child; c; c = c->next)
			sn_w_value(w, c);
		sn_w_end_array(w);
		break;
	case SN_OBJECT:
		sn_w_begin_object(w);
		for (const sn_json *c = v->child; c; c = c->next) {
			sn_w_key(w, c->key);
			sn_w_value(w, c);
		}
		sn_w_end_object(w);
		break;
	}
}

/* sn__w_splice appends the finished document of src as one value of w. It is
 * internal to the SDK (slapnode.c assembles results from parts with it):
 * src comes from a writer, so it is valid JSON by construction. */
void sn__w_splice(sn_writer *w, sn_writer *src)
{
	if (src->depth != 0)
		abort();
	before_value(w);
	w_put(w, src->buf ? src->buf : "null", src->buf ? src->len : 4);
}

const char *sn_w_text(sn_writer *w, size_t *len)
{
	if (!w->buf)
		w_put(w, "", 0);
	if (len)
		*len = w->len;
	return w->buf;
}
