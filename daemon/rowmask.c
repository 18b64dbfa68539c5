/*
 * Masking of result rows (see rowmask.h). Moved out of session.c unchanged in
 * behaviour; the session keeps what depends on its buffers (how many rewritten rows
 * fit before the client's reader) and the recording.
 */
#include "rowmask.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "pgwire.h"

/* Fixed part of one RowDescription field after its name: table OID (4), attribute
 * number (2), type OID (4), type size (2), type modifier (4), format code (2). */
#define ROWMASK_FIELD_FIXED 18
#define ROWMASK_ROW_START 65536        /* first size of the row buffer */
#define ROWMASK_MASKED_SLACK 256       /* room a masked value gets before asking for more */

int rowmask_describe(struct rowmask *rm, const struct policy_rule *r, const struct maskset *ms, const uint8_t *body,
		     size_t blen)
{
	const uint8_t *p = body + 2, *end = body + blen;
	size_t n;

	if (blen < 2)
		return -EPROTO;
	n = (size_t)(body[0] << 8 | body[1]);
	if (n > rm->cap_cols) {
		struct rowmask_col *c = realloc(rm->cols, n * sizeof(*c));

		if (!c)
			return -ENOMEM;
		rm->cols = c;
		rm->cap_cols = n;
	}
	rm->masked = false;
	for (size_t i = 0; i < n; i++) {
		const char *name = (const char *)p;
		size_t nl = strnlen(name, (size_t)(end - p));
		int mask = -1;

		if (p + nl + 1 + ROWMASK_FIELD_FIXED > end)
			return -EPROTO;
		p += nl + 1;
		uint32_t rel = pgwire_get32(p);
		int16_t att = (int16_t)(p[4] << 8 | p[5]);

		if (rel && r)
			mask = maskset_find(ms, rel, att);
		for (size_t k = 0; r && mask < 0 && k < r->n_masks; k++)
			if (r->masks[k].column_name && fnmatch(r->masks[k].column_name, name, 0) == 0)
				mask = (int)k;
		rm->cols[i] = (struct rowmask_col){ (int16_t)mask, (int16_t)(p[16] << 8 | p[17]), pgwire_get32(p + 6) };
		rm->masked |= mask >= 0;
		p += ROWMASK_FIELD_FIXED;
	}
	rm->n_cols = n;
	rm->have_desc = true;
	return 0;
}

void rowmask_forget(struct rowmask *rm)
{
	rm->have_desc = false;
	rm->masked = false;
}

/* rm->row holding at least need bytes. 0, -ENOMEM or -E2BIG. */
static int rowmask_room(struct rowmask *rm, const struct rowmask_budget *b, size_t need)
{
	size_t cap = rm->row_cap ? rm->row_cap : ROWMASK_ROW_START;
	uint8_t *d;

	if (need <= rm->row_cap)
		return 0;
	if (need > 2 * (size_t)ROWMASK_MAX_ROW)
		return -E2BIG;
	while (cap < need)
		cap *= 2;
	if (b && b->take(b->arg, cap - rm->row_cap) < 0)
		return -ENOMEM;
	if (!(d = realloc(rm->row, cap))) {
		if (b)
			b->give(b->arg, cap - rm->row_cap);
		return -ENOMEM;
	}
	rm->row = d;
	rm->row_cap = cap;
	return 0;
}

int rowmask_row(struct rowmask *rm, const struct rowmask_keys *k, const struct rowmask_budget *b, const uint8_t *m,
		size_t mlen, size_t *o)
{
	const uint8_t *p = m + PGWIRE_HEADER + 2, *end = m + mlen;
	const struct policy_rule *r = k->rule;
	size_t at = *o, w;
	int rc;

	if (mlen < PGWIRE_HEADER + 2 || (size_t)(m[5] << 8 | m[6]) != rm->n_cols)
		return -EPROTO;
	if ((rc = rowmask_room(rm, b, at + mlen)) < 0)
		return rc;
	memcpy(rm->row + at, m, PGWIRE_HEADER + 2);
	w = at + PGWIRE_HEADER + 2;
	for (size_t i = 0; i < rm->n_cols; i++) {
		int32_t flen;
		const uint8_t *val;

		if (end - p < 4)
			return -EPROTO;
		flen = (int32_t)pgwire_get32(p);
		p += 4;
		if (flen < -1 || flen > end - p)
			return -EPROTO;
		val = p;
		if (flen > 0)
			p += flen;
		if (rm->cols[i].mask < 0) {
			size_t n = 4 + (flen > 0 ? (size_t)flen : 0);

			if ((rc = rowmask_room(rm, b, w + n + (size_t)(end - p))) < 0)
				return rc;
			memcpy(rm->row + w, val - 4, n);
			w += n;
			continue;
		}
		size_t mi = (size_t)rm->cols[i].mask;
		/* indexes resolved under another snapshot may point at another mask:
		 * until resolved again, NULL */
		const struct policy_mask *pm = r && mi < r->n_masks ? &r->masks[mi] : NULL;
		struct mask_spec spec = { pm ? pm->strategy : MASK_NULL, pm ? pm->keep : 0, pm ? pm->text : NULL,
					  k->key, k->hmac };
		long out;

		for (;;) {
			if ((rc = rowmask_room(rm, b, w + 4 + ROWMASK_MASKED_SLACK + (size_t)(end - p))) < 0)
				return rc;
			out = mask_value(&spec, rm->cols[i].type, rm->cols[i].format, val, flen, rm->row + w + 4,
					 rm->row_cap - w - 4 - (size_t)(end - p));
			if (out != -ENOSPC)
				break;
			if ((rc = rowmask_room(rm, b, rm->row_cap * 2)) < 0)
				return rc;
		}
		if (out < 0 && out != MASK_NULL_VALUE)
			out = MASK_NULL_VALUE; /* not a valid value of its type: NULL rather than it */
		pgwire_put32(rm->row + w, (uint32_t)(int32_t)out);
		w += 4 + (out > 0 ? (size_t)out : 0);
	}
	if (p != end)
		return -EPROTO;
	pgwire_put32(rm->row + at + 1, (uint32_t)(w - at - 1));
	*o = w;
	return 0;
}

void rowmask_release(struct rowmask *rm)
{
	free(rm->cols);
	free(rm->row);
	memset(rm, 0, sizeof(*rm));
}
