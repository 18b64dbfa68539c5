/*
 * A position finder over already-validated JSON (RFC 8259). It does not build
 * anything: it skips values, counting lines and columns, and descends only along the
 * pointer. Depth is bounded by the pointer, not by the document, so hostile nesting
 * elsewhere in the file costs time linear in its size and no stack.
 */
#include "jsonpos.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cursor {
	const char *p, *end;
	int line, col;
};

static void adv(struct cursor *c)
{
	if (c->p >= c->end)
		return;
	if (*c->p == '\n') {
		c->line++;
		c->col = 1;
	} else {
		c->col++;
	}
	c->p++;
}

static void skip_ws(struct cursor *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
		adv(c);
}

/* Skips a string starting at '"'; copies its raw (still escaped) body to key if asked. */
static void skip_string(struct cursor *c, char *key, size_t keylen)
{
	size_t n = 0;

	adv(c); /* opening quote */
	while (c->p < c->end && *c->p != '"') {
		if (*c->p == '\\') {
			if (key && n + 1 < keylen)
				key[n++] = *c->p;
			adv(c);
		}
		if (key && n + 1 < keylen)
			key[n++] = *c->p;
		adv(c);
	}
	adv(c); /* closing quote */
	if (key)
		key[n] = '\0';
}

/* Skips any value without recursion: brackets are counted, strings skipped whole. */
static void skip_value(struct cursor *c)
{
	size_t depth = 0;

	skip_ws(c);
	do {
		if (c->p >= c->end)
			return;
		switch (*c->p) {
		case '"':
			skip_string(c, NULL, 0);
			break;
		case '{':
		case '[':
			depth++;
			adv(c);
			break;
		case '}':
		case ']':
			depth--;
			adv(c);
			break;
		default:
			if (depth == 0) {
				/* scalar: up to a delimiter */
				while (c->p < c->end && !strchr(",}] \t\r\n", *c->p))
					adv(c);
				return;
			}
			adv(c);
		}
	} while (depth > 0);
}

/* Next reference token of the pointer, unescaped (~1 → '/', ~0 → '~'). */
static const char *next_token(const char *ptr, char *tok, size_t toklen)
{
	size_t n = 0;

	ptr++; /* leading '/' */
	while (*ptr && *ptr != '/') {
		char ch = *ptr++;

		if (ch == '~' && (*ptr == '0' || *ptr == '1'))
			ch = *ptr++ == '0' ? '~' : '/';
		if (n + 1 < toklen)
			tok[n++] = ch;
	}
	tok[n] = '\0';
	return ptr;
}

/* Compares a raw JSON string body with a plain token, resolving simple escapes. */
static int key_equals(const char *raw, const char *tok)
{
	while (*raw && *tok) {
		char ch = *raw++;

		if (ch == '\\') {
			ch = *raw++;
			switch (ch) {
			case 'n': ch = '\n'; break;
			case 't': ch = '\t'; break;
			case 'r': ch = '\r'; break;
			case 'b': ch = '\b'; break;
			case 'f': ch = '\f'; break;
			case 'u': return 0; /* \u escapes in keys: not matched, position falls back */
			default: break;
			}
		}
		if (ch != *tok++)
			return 0;
	}
	return *raw == '\0' && *tok == '\0';
}

int jsonpos_find(const char *text, size_t len, const char *pointer, int *line, int *col)
{
	struct cursor c = { text, text + len, 1, 1 };
	char tok[256], key[256];

	*line = 1;
	*col = 1;
	skip_ws(&c);
	while (*pointer == '/') {
		pointer = next_token(pointer, tok, sizeof(tok));
		if (c.p >= c.end)
			return -ENOENT;
		if (*c.p == '{') {
			int found = 0;

			adv(&c);
			for (;;) {
				int kl, kc;

				skip_ws(&c);
				if (c.p >= c.end || *c.p != '"')
					return -ENOENT;
				kl = c.line;
				kc = c.col;
				skip_string(&c, key, sizeof(key));
				skip_ws(&c);
				adv(&c); /* ':' */
				skip_ws(&c);
				if (key_equals(key, tok)) {
					*line = kl;
					*col = kc;
					found = 1;
					break;
				}
				skip_value(&c);
				skip_ws(&c);
				if (c.p >= c.end || *c.p != ',')
					return -ENOENT;
				adv(&c);
			}
			if (!found)
				return -ENOENT;
		} else if (*c.p == '[') {
			char *end;
			unsigned long idx = strtoul(tok, &end, 10);

			if (*end || !*tok)
				return -ENOENT;
			adv(&c);
			for (unsigned long i = 0;; i++) {
				skip_ws(&c);
				if (c.p >= c.end || *c.p == ']')
					return -ENOENT;
				if (i == idx) {
					*line = c.line;
					*col = c.col;
					break;
				}
				skip_value(&c);
				skip_ws(&c);
				if (c.p >= c.end || *c.p != ',')
					return -ENOENT;
				adv(&c);
			}
		} else {
			return -ENOENT;
		}
	}
	if (*pointer)
		return -ENOENT;
	return 0;
}

int jsonpos_fail(const struct jsonpos_src *s, const char *pointer, const char *fmt, ...)
{
	char msg[JSONPOS_ERR_LEN];
	int line, col;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	jsonpos_find(s->text, s->len, pointer, &line, &col);
	snprintf(s->err, JSONPOS_ERR_LEN, "%s:%d:%d: %s", s->name, line, col, msg);
	return -EINVAL;
}
