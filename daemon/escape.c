/*
 * Escaping of workload bytes for terminals and for JSON (see escape.h).
 */
#include "escape.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The length of the valid UTF-8 sequence at p (RFC 3629 §4), with its code point in
 * *cp; 0 when the byte at p starts none (stray continuation, overlong form,
 * surrogate, beyond U+10FFFF, cut off). */
static size_t utf8_next(const unsigned char *p, size_t n, uint32_t *cp)
{
	uint32_t c = p[0], min;
	size_t len;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2, c &= 0x1f, min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3, c &= 0x0f, min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4, c &= 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (p[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

bool escape_is_utf8(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, n;
	uint32_t cp;

	while (i < len) {
		if (!p[i] || !(n = utf8_next(p + i, len - i, &cp)))
			return false;
		i += n;
	}
	return true;
}

/* Code points a terminal shows as nothing, or that reorder or break what follows:
 * an approver must see them. */
static bool hidden(uint32_t c)
{
	return c < 0x20 || c == 0x7f || (c >= 0x80 && c <= 0x9f) || c == 0xad || c == 0x34f || c == 0x61c ||
	       c == 0x115f || c == 0x1160 || c == 0x17b4 || c == 0x17b5 || c == 0x180e ||
	       (c >= 0x200b && c <= 0x200f) ||  /* zero-width, LRM, RLM */
	       (c >= 0x2028 && c <= 0x202e) ||  /* line/paragraph separators, LRE RLE PDF LRO RLO */
	       (c >= 0x2060 && c <= 0x206f) ||  /* word joiner, invisible operators, LRI RLI FSI PDI */
	       c == 0x3164 || (c >= 0xfe00 && c <= 0xfe0f) || c == 0xfeff || c == 0xffa0 ||
	       (c >= 0xfff9 && c <= 0xfffb) || (c >= 0x1d173 && c <= 0x1d17a) ||
	       (c >= 0xe0000 && c <= 0xe0fff) ||  /* tags, variation selectors supplement */
	       (c >= 0xe000 && c <= 0xf8ff) || c >= 0xf0000; /* private use: anything */
}

struct out {
	char *buf;
	size_t len, cap;
};

static int put(struct out *o, const char *s, size_t n)
{
	if (o->len + n + 1 > o->cap) {
		size_t cap = (o->len + n + 1) * 2;
		char *b = realloc(o->buf, cap);

		if (!b)
			return -ENOMEM;
		o->buf = b;
		o->cap = cap;
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
	o->buf[o->len] = '\0';
	return 0;
}

static char *finish(struct out *o, int r)
{
	if (r < 0) {
		free(o->buf);
		return NULL;
	}
	return o->buf ? o->buf : strdup("");
}

char *escape_term(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	struct out o = { 0 };
	char e[16];
	size_t i = 0, n;
	uint32_t cp;
	int r = 0;

	while (i < len && r == 0) {
		n = utf8_next(p + i, len - i, &cp);
		if (!n) {
			snprintf(e, sizeof(e), "\\x%02x", p[i]);
			r = put(&o, e, strlen(e));
			i++;
			continue;
		}
		if (cp == '\\')
			r = put(&o, "\\\\", 2);
		else if (cp == '\n')
			r = put(&o, "\\n", 2);
		else if (cp == '\t')
			r = put(&o, "\\t", 2);
		else if (cp < 0x80 && hidden(cp))
			snprintf(e, sizeof(e), "\\x%02x", cp), r = put(&o, e, strlen(e));
		else if (hidden(cp))
			snprintf(e, sizeof(e), "\\u{%04X}", cp), r = put(&o, e, strlen(e));
		else
			r = put(&o, s + i, n);
		i += n;
	}
	return finish(&o, r);
}

char *escape_bytes(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	struct out o = { 0 };
	char e[8];
	size_t i = 0, n;
	uint32_t cp;
	int r = 0;

	while (i < len && r == 0) {
		n = p[i] ? utf8_next(p + i, len - i, &cp) : 0;
		if (!n) {
			snprintf(e, sizeof(e), "\\x%02x", p[i]);
			r = put(&o, e, 4);
			i++;
		} else if (cp == '\\') {
			r = put(&o, "\\\\", 2);
			i++;
		} else {
			r = put(&o, s + i, n);
			i += n;
		}
	}
	return finish(&o, r);
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

int escape_unbytes(const char *text, char **ret, size_t *ret_len)
{
	size_t n = strlen(text), k = 0;
	char *b = malloc(n + 1);

	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (text[i] != '\\') {
			b[k++] = text[i];
		} else if (i + 1 < n && text[i + 1] == '\\') {
			b[k++] = '\\';
			i++;
		} else if (i + 3 < n && text[i + 1] == 'x' && hexval(text[i + 2]) >= 0 && hexval(text[i + 3]) >= 0) {
			b[k++] = (char)(hexval(text[i + 2]) << 4 | hexval(text[i + 3]));
			i += 3;
		} else {
			free(b);
			return -EINVAL;
		}
	}
	b[k] = '\0';
	*ret = b;
	*ret_len = k;
	return 0;
}

json_t *escape_json(const char *s, size_t len, bool *ret_escaped)
{
	char *e;
	json_t *j;

	if (escape_is_utf8(s, len)) {
		if (ret_escaped)
			*ret_escaped = false;
		return json_stringn(s, len);
	}
	if (!(e = escape_bytes(s, len)))
		return NULL;
	j = json_string(e);
	free(e);
	if (ret_escaped && j)
		*ret_escaped = true;
	return j;
}

json_t *escape_json_str(const char *s)
{
	return s ? escape_json(s, strlen(s), NULL) : json_null();
}
