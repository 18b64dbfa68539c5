/*
 * Workload bytes made safe for two readers that must not be deceived.
 *
 * A person's terminal (escape_term): statement text, parameters, names and paths a
 * workload chose are shown with every byte that could move the cursor, recolour,
 * hide, reorder or fake a line escaped, so an approver sees what will run. C0
 * controls, DEL, C1 controls, invalid UTF-8, and the invisible or reordering code
 * points (bidi embeddings, overrides and isolates, zero-width characters, line and
 * paragraph separators, tag characters, BOM) become \xHH, \n, \t or \u{XXXX}; a
 * backslash becomes \\, so the shown text is unambiguous.
 *
 * JSON (escape_bytes, escape_json): JSON strings must be valid UTF-8, but a statement
 * need not be. escape_bytes writes every byte that is not part of a valid UTF-8
 * sequence as \xHH and a backslash as \\; escape_unbytes reverses it exactly. Text
 * that is valid UTF-8 is kept as it is (callers say when they escaped).
 */
#ifndef PGTETHER_ESCAPE_H
#define PGTETHER_ESCAPE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Whether s[0..len) is valid UTF-8 (RFC 3629: no overlong forms, no surrogates, at
 * most U+10FFFF) with no NUL byte. */
bool escape_is_utf8(const char *s, size_t len);

/* s[0..len) for a terminal, NUL-terminated (malloc'd; NULL on out of memory). */
char *escape_term(const char *s, size_t len);

/* s[0..len) with non-UTF-8 bytes as \xHH and '\' as \\ (malloc'd, valid UTF-8, no
 * NUL inside; a NUL byte becomes \x00). NULL on out of memory. */
char *escape_bytes(const char *s, size_t len);

/* The bytes escape_bytes made text of, into a malloc'd buffer (NUL-terminated too);
 * -EINVAL when text is not escape_bytes output, -ENOMEM. */
int escape_unbytes(const char *text, char **ret, size_t *ret_len);

/* A JSON string for s[0..len): s when it is valid UTF-8, else escape_bytes(s) and
 * *ret_escaped set (when not NULL). NULL on out of memory. */
json_t *escape_json(const char *s, size_t len, bool *ret_escaped);

/* escape_json(s, strlen(s), NULL) for names and paths: never NULL for a NULL s
 * (json null then). */
json_t *escape_json_str(const char *s);

#endif
