/*
 * What a workload's bytes become before a person or a JSON reader sees them
 * (escape.c), and the model of its prepared statements (prepared.c).
 *
 * Input: byte 0 picks the mode.
 *   even: the rest is text: escaped for a terminal (no control byte may remain) and
 *     for JSON (valid UTF-8 that unescapes to the same bytes).
 *   odd: the rest is a program of Parse / PREPARE / EXECUTE / Sync / Bind steps on
 *     names taken from it, each answered by prepared_resolve.
 */
#include "fuzz.h"

#include <errno.h>

#include "escape.h"
#include "prepared.h"
#include "sqlclass.h"

static void text(const uint8_t *d, size_t n)
{
	char *t = escape_term((const char *)d, n), *b, *back = NULL;
	size_t blen = 0;
	json_t *j;
	bool esc = false;

	fuzz_check(t != NULL);
	for (const unsigned char *p = (const unsigned char *)t; *p; p++)
		fuzz_check(*p >= 0x20 && *p != 0x7f);
	fuzz_check(escape_is_utf8(t, strlen(t)));
	free(t);
	b = escape_bytes((const char *)d, n);
	fuzz_check(b != NULL && escape_is_utf8(b, strlen(b)));
	fuzz_check(escape_unbytes(b, &back, &blen) == 0 && blen == n && memcmp(back, d, n) == 0);
	free(back);
	free(b);
	j = escape_json((const char *)d, n, &esc);
	fuzz_check(j != NULL && json_is_string(j));
	fuzz_check(esc == !escape_is_utf8((const char *)d, n));
	json_decref(j);
}

/* The next name of the program: up to 70 bytes (past PREPARED_KEY) up to a NUL. */
static char *next_name(const uint8_t **p, const uint8_t *end, char *buf)
{
	size_t n = 0;

	while (*p < end && **p && n < 70)
		buf[n++] = (char)*(*p)++;
	if (*p < end)
		(*p)++;
	buf[n] = '\0';
	return buf;
}

static void program(const uint8_t *d, size_t n)
{
	struct prepared_model m;
	const uint8_t *p = d, *end = d + n;

	prepared_init(&m);
	while (p < end) {
		uint8_t op = *p++;
		char name[71], other[71];
		struct sqlclass_result c;
		struct prepared_view v;
		int rc;

		switch (op % 4) {
		case 0: /* Parse or PREPARE of a statement of some classes, EXECUTEing a name */
			memset(&c, 0, sizeof(c));
			next_name(&p, end, name);
			c.classes = (unsigned)op << 4;
			if (op & 8) {
				c.executes[0] = next_name(&p, end, other);
				c.n_executes = 1;
			}
			rc = prepared_note(&m, name, &c, name, strlen(name), op & 4);
			fuzz_check(rc == 0 || rc == -ENOSPC || rc == -ENOMEM);
			break;
		case 1:
			prepared_end_batch(&m, op & 4);
			break;
		default:
			next_name(&p, end, name);
			rc = prepared_resolve(&m, name, op % 4 == 2, &v);
			fuzz_check(rc == 0 || rc == -ENOENT || rc == -ELOOP);
			if (rc == 0) {
				size_t len;
				char *t = prepared_view_text(&v, &len);

				fuzz_check(v.n_texts <= PREPARED_MAX_TEXTS);
				fuzz_check(!t || (v.complete && strlen(t) == len));
				free(t);
			}
			break;
		}
	}
	prepared_release(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 1)
		program(data + 1, size - 1);
	else
		text(data + 1, size - 1);
	return 0;
}
