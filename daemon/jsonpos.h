/*
 * Where in a JSON text a value sits, for error messages of the form file:line:col.
 * jansson reports positions only for syntax errors; a config or policy file that
 * parses but has an unknown key or a bad value needs the same precision, so this
 * walks the text once more to the member named by an RFC 6901 JSON Pointer.
 */
#ifndef PGTETHER_JSONPOS_H
#define PGTETHER_JSONPOS_H

#include <stddef.h>

/*
 * Finds `pointer` ("/upstreams/main/tls", "/targets/1"; "" is the whole document)
 * in text, which must be valid JSON (jansson parsed it already). For an object member
 * the position is that of its key; for an array element, of the element. Lines and
 * columns count from 1; columns count bytes. Returns 0, or -ENOENT with line and col
 * set to 1:1 so a caller can always print something.
 */
int jsonpos_find(const char *text, size_t len, const char *pointer, int *line, int *col);

#define JSONPOS_ERR_LEN 512

/* A JSON text under validation: what positioned messages are about. err holds
 * JSONPOS_ERR_LEN bytes. */
struct jsonpos_src {
	const char *name;
	const char *text;
	size_t len;
	char *err;
};

/* Writes "name:line:col: message" for the value at pointer into s->err; returns
 * -EINVAL, so a validator can `return jsonpos_fail(...)`. */
int jsonpos_fail(const struct jsonpos_src *s, const char *pointer, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
