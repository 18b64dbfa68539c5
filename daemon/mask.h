/*
 * Column masking strategies (DESIGN.md "Masking"), applied to one field value as the
 * server sends it in a DataRow: text or binary format, by the column's type OID.
 * The result is always a valid value of the same type in the same format, or NULL,
 * so clients and drivers keep working:
 *
 *   redact   text types: a fixed text ("****" unless set); other types: NULL
 *   null     NULL, whatever the type
 *   partial  text types: every character but the last `keep` becomes '*'; others: NULL
 *   hash     keyed HMAC-SHA-256 of the value, shaped to the type: hex for text types,
 *            an integer for int2/int4/int8/numeric, a UUID for uuid, 32 bytes for
 *            bytea, a JSON string for json/jsonb. The same value and key give the
 *            same result (joins and GROUP BY still work); another key, another one.
 *   email    text types: the local part becomes "***", the domain stays; a value
 *            without '@' is redacted; other types: NULL
 *
 * Arrays of these types are masked element by element (NULL elements stay NULL), in
 * both formats. A text-format array with an element longer than
 * MASK_ARRAY_ELEMENT_MAX bytes (before or after masking) is not a value this module
 * can rewrite: -EINVAL, so the caller sends NULL for the whole array. NULL values stay NULL. Types not listed are masked to NULL.
 *
 * Pure: no allocation; the caller gives the output buffer.
 */
#ifndef PGTETHER_MASK_H
#define PGTETHER_MASK_H

#include <stddef.h>
#include <stdint.h>

enum mask_strategy { MASK_REDACT, MASK_NULL, MASK_PARTIAL, MASK_HASH, MASK_EMAIL };

#define MASK_KEY_LEN 32
#define MASK_NULL_VALUE (-1L)
/* Elements of text-format arrays are unquoted and masked in buffers of this size:
 * more than the tags and names such arrays hold, small enough for the stack. */
#define MASK_ARRAY_ELEMENT_MAX 512

struct mask_hmac;

struct mask_spec {
	enum mask_strategy strategy;
	unsigned keep;               /* partial: characters kept at the end */
	const char *redact_text;     /* redact: NULL for "****" */
	const uint8_t *key;          /* hash: MASK_KEY_LEN bytes */
	const struct mask_hmac *hmac; /* hash: mask_hmac_new(key), or NULL (slower: set up per value) */
};

/* HMAC-SHA-256 keyed once: the SHA-256 states after the key's inner and outer
 * blocks, copied for every value (no allocation per value); NULL when out of memory. */
struct mask_hmac *mask_hmac_new(const uint8_t key[MASK_KEY_LEN]);
void mask_hmac_free(struct mask_hmac *h);

/* Type OIDs of PostgreSQL's catalog that masks understand. */
enum {
	MASK_OID_BYTEA = 17, MASK_OID_NAME = 19, MASK_OID_INT8 = 20, MASK_OID_INT2 = 21, MASK_OID_INT4 = 23,
	MASK_OID_TEXT = 25, MASK_OID_JSON = 114, MASK_OID_BPCHAR = 1042, MASK_OID_VARCHAR = 1043,
	MASK_OID_NUMERIC = 1700, MASK_OID_UUID = 2950, MASK_OID_JSONB = 3802,
};

/*
 * Masks one value: in[0..len) of type `type` in `format` (0 text, 1 binary); len
 * MASK_NULL_VALUE for NULL. Writes the masked value into out (cap bytes) and returns
 * its length, MASK_NULL_VALUE for NULL, -ENOSPC when out is too small (a bigger
 * buffer will do), or -EINVAL for a value that is not valid for its type (a malformed
 * array): the caller then sends NULL rather than the value.
 */
long mask_value(const struct mask_spec *m, uint32_t type, int format, const uint8_t *in, long len, uint8_t *out,
		size_t cap);

/* The element type of an array type OID this module knows, or 0. */
uint32_t mask_array_element(uint32_t array_type);

/* "redact", "null", "partial", "hash", "email" → strategy; -1 for another name. */
int mask_strategy_from_name(const char *name);

/* The name of a strategy. */
const char *mask_strategy_name(enum mask_strategy s);

#endif
