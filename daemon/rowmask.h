/*
 * Masking of result rows (DESIGN.md "Masking"), on the server's own messages: a
 * RowDescription ('T') says which result columns are masked and how (by the column's
 * table OID and attribute number, resolved through maskset, or by a rule's
 * column_name glob), and every DataRow ('D') after it is rewritten with each masked
 * field replaced by mask_value()'s result and fresh lengths.
 *
 * Pure: bytes of whole messages in, bytes out. The row buffer it grows is charged to
 * the caller's memory budget through the rowmask_budget hooks, so one session's huge
 * rows cannot starve the others. A zeroed struct rowmask is ready for use.
 */
#ifndef PGTETHER_ROWMASK_H
#define PGTETHER_ROWMASK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mask.h"
#include "maskset.h"
#include "policy.h"

#define ROWMASK_MAX_ROW (64u << 20)    /* a DataRow rewritten by masks is held whole */

/* One column of the last RowDescription. */
struct rowmask_col {
	int16_t mask;                  /* index into the rule's masks, or -1 */
	int16_t format;                /* 0 text, 1 binary */
	uint32_t type;                 /* type OID */
};

/*
 * Fields are read by the session (to record rows, to know whether rows need the slow
 * way) and written only here.
 */
struct rowmask {
	struct rowmask_col *cols;      /* of the last RowDescription */
	size_t n_cols, cap_cols;
	bool masked;                   /* some column of it is masked */
	bool have_desc;                /* a RowDescription applies to the rows coming */
	uint8_t *row;                  /* rewritten DataRows, from offset 0 */
	size_t row_cap;
};

/* Charging the row buffer: take returns 0 or -ENOMEM (budget spent). */
struct rowmask_budget {
	int (*take)(void *arg, size_t n);
	void (*give)(void *arg, size_t n);
	void *arg;
};

/* What masks the rows: the rule whose masks the column indexes point into (NULL when
 * those indexes were resolved under another snapshot: every masked field is then
 * NULL until the next RowDescription), and the key of "hash". */
struct rowmask_keys {
	const struct policy_rule *rule;
	const uint8_t *key;            /* MASK_KEY_LEN bytes, or NULL */
	const struct mask_hmac *hmac;
};

/*
 * Takes the body of a whole RowDescription (after the 5-byte header): which columns
 * are masked under rule r (NULL: none) with its masks resolved in ms. 0, -EPROTO
 * (malformed: the server's stream cannot be followed, and the columns are left half
 * overwritten) or -ENOMEM.
 */
int rowmask_describe(struct rowmask *rm, const struct policy_rule *r, const struct maskset *ms, const uint8_t *body,
		     size_t blen);

/* No description applies to the rows coming (NoData, a batch's end). */
void rowmask_forget(struct rowmask *rm);

/*
 * Appends the masked form of the whole DataRow m[0..mlen) (header included) to
 * rm->row at *o, and advances *o past it. 0, -EPROTO (not a row of the description),
 * -ENOMEM (memory or budget) or -E2BIG (past 2 * ROWMASK_MAX_ROW in one pass).
 */
int rowmask_row(struct rowmask *rm, const struct rowmask_keys *k, const struct rowmask_budget *b, const uint8_t *m,
		size_t mlen, size_t *o);

/* Frees the buffers; what they were charged is the caller's to give back. */
void rowmask_release(struct rowmask *rm);

#endif
