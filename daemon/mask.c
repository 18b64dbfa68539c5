/*
 * Column masking strategies on single values (see mask.h).
 */
/* The hash strategy runs HMAC-SHA-256 on SHA256_CTX states it keyed once: OpenSSL
 * 3.0's EVP digests allocate on every init, and masking must not allocate per value.
 * Those functions are deprecated in 3.0, not gone. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "mask.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "b64url.h"
#include "pgwire.h"

#define DEFAULT_REDACT "****"

static const struct { uint32_t array, elem; } arrays[] = {
	{ 1001, MASK_OID_BYTEA }, { 1003, MASK_OID_NAME }, { 1016, MASK_OID_INT8 }, { 1005, MASK_OID_INT2 },
	{ 1007, MASK_OID_INT4 }, { 1009, MASK_OID_TEXT }, { 199, MASK_OID_JSON }, { 1014, MASK_OID_BPCHAR },
	{ 1015, MASK_OID_VARCHAR }, { 1231, MASK_OID_NUMERIC }, { 2951, MASK_OID_UUID }, { 3807, MASK_OID_JSONB },
};

uint32_t mask_array_element(uint32_t array_type)
{
	for (size_t i = 0; i < sizeof(arrays) / sizeof(arrays[0]); i++)
		if (arrays[i].array == array_type)
			return arrays[i].elem;
	return 0;
}

static const char *const strategy_names[] = { "redact", "null", "partial", "hash", "email" };

int mask_strategy_from_name(const char *name)
{
	for (int i = 0; i < 5; i++)
		if (strcmp(strategy_names[i], name) == 0)
			return i;
	return -1;
}

const char *mask_strategy_name(enum mask_strategy s)
{
	return (unsigned)s < 5 ? strategy_names[s] : "?";
}

static bool text_type(uint32_t t)
{
	return t == MASK_OID_TEXT || t == MASK_OID_VARCHAR || t == MASK_OID_BPCHAR || t == MASK_OID_NAME;
}

static long put(uint8_t *out, size_t cap, const void *s, size_t n)
{
	if (n > cap)
		return -ENOSPC;
	memcpy(out, s, n);
	return (long)n;
}

/* The value of a hex digit, or -1. */
static int mask_hexval(uint8_t c)
{
	return isdigit(c) ? c - '0' : isxdigit(c) ? tolower(c) - 'a' + 10 : -1;
}

/* The value's bytes as hashed: the same value hashes alike in text and binary format
 * for text, integer, uuid and bytea types. */
static int canonical(uint32_t t, int format, const uint8_t *in, size_t len, uint8_t *buf, size_t cap, size_t *ret)
{
	if ((t == MASK_OID_INT2 || t == MASK_OID_INT4 || t == MASK_OID_INT8)) {
		int64_t v = 0;

		if (format == 1) {
			if (len != 2 && len != 4 && len != 8)
				return -EINVAL;
			for (size_t i = 0; i < len; i++)
				v = (int64_t)((uint64_t)v << 8 | in[i]);
			if (len < 8 && (in[0] & 0x80)) /* sign-extend */
				v -= (int64_t)1 << (8 * len);
		} else {
			char tmp[32];

			if (len == 0 || len >= sizeof(tmp))
				return -EINVAL;
			memcpy(tmp, in, len);
			tmp[len] = '\0';
			v = strtoll(tmp, NULL, 10);
		}
		for (int i = 0; i < 8; i++)
			buf[i] = (uint8_t)((uint64_t)v >> (56 - 8 * i));
		*ret = 8;
		return 0;
	}
	if (t == MASK_OID_UUID && format == 0) {
		size_t n = 0;

		for (size_t i = 0; i < len && n < 16; i++) {
			if (!isxdigit(in[i]))
				continue;
			if (i + 1 >= len || !isxdigit(in[i + 1]))
				return -EINVAL;
			buf[n++] = (uint8_t)(mask_hexval(in[i]) << 4 | mask_hexval(in[i + 1]));
			i++;
		}
		if (n != 16)
			return -EINVAL;
		*ret = 16;
		return 0;
	}
	if (t == MASK_OID_BYTEA && format == 0 && len >= 2 && in[0] == '\\' && in[1] == 'x') {
		size_t n = 0;

		/* the server's hex output (bytea_output = hex): pairs of hex digits; anything
		 * else is not a bytea value (the shift of a non-digit was undefined) */
		if (len % 2)
			return -EINVAL;
		for (size_t i = 2; i + 1 < len && n < cap; i += 2) {
			int hi = mask_hexval(in[i]), lo = mask_hexval(in[i + 1]);

			if (hi < 0 || lo < 0)
				return -EINVAL;
			buf[n++] = (uint8_t)(hi << 4 | lo);
		}
		*ret = n;
		return 0;
	}
	if (len > cap)
		return -ENOSPC;
	memcpy(buf, in, len);
	*ret = len;
	return 0;
}

/* Writes a non-negative integer as a binary numeric (base-10000 digits). */
static long numeric_binary(uint64_t v, uint8_t *out, size_t cap)
{
	uint16_t d[8];
	int n = 0;

	do {
		d[n++] = (uint16_t)(v % 10000);
		v /= 10000;
	} while (v);
	if (cap < 8 + 2 * (size_t)n)
		return -ENOSPC;
	out[0] = 0;
	out[1] = (uint8_t)n;                 /* ndigits */
	out[2] = 0;
	out[3] = (uint8_t)(n - 1);           /* weight */
	out[4] = out[5] = 0;                 /* sign: positive */
	out[6] = out[7] = 0;                 /* dscale */
	for (int i = 0; i < n; i++) {
		out[8 + 2 * i] = (uint8_t)(d[n - 1 - i] >> 8);
		out[9 + 2 * i] = (uint8_t)d[n - 1 - i];
	}
	return 8 + 2 * n;
}

struct mask_hmac {
	SHA256_CTX inner, outer; /* after (key ^ ipad) and (key ^ opad) */
};

struct mask_hmac *mask_hmac_new(const uint8_t key[MASK_KEY_LEN])
{
	struct mask_hmac *h = malloc(sizeof(*h));
	uint8_t ipad[SHA256_CBLOCK], opad[SHA256_CBLOCK];

	if (!h)
		return NULL;
	/* RFC 2104 with a key shorter than the block: zero-padded, then XORed */
	memset(ipad, 0x36, sizeof(ipad));
	memset(opad, 0x5c, sizeof(opad));
	for (size_t i = 0; i < MASK_KEY_LEN; i++) {
		ipad[i] ^= key[i];
		opad[i] ^= key[i];
	}
	SHA256_Init(&h->inner);
	SHA256_Update(&h->inner, ipad, sizeof(ipad));
	SHA256_Init(&h->outer);
	SHA256_Update(&h->outer, opad, sizeof(opad));
	OPENSSL_cleanse(ipad, sizeof(ipad));
	OPENSSL_cleanse(opad, sizeof(opad));
	return h;
}

void mask_hmac_free(struct mask_hmac *h)
{
	if (h) {
		OPENSSL_cleanse(h, sizeof(*h));
		free(h);
	}
}

/* HMAC(key, tag || data) into out. */
static void hmac_sha256(const struct mask_hmac *k, uint8_t tag, const uint8_t *data, size_t len,
			uint8_t out[SHA256_DIGEST_LENGTH])
{
	SHA256_CTX c = k->inner;
	uint8_t inner[SHA256_DIGEST_LENGTH];

	SHA256_Update(&c, &tag, 1);
	SHA256_Update(&c, data, len);
	SHA256_Final(inner, &c);
	c = k->outer;
	SHA256_Update(&c, inner, sizeof(inner));
	SHA256_Final(out, &c);
	OPENSSL_cleanse(&c, sizeof(c));
}

static long hash_value(const struct mask_spec *m, uint32_t t, int format, const uint8_t *in, size_t len, uint8_t *out,
		       size_t cap)
{
	uint8_t canon[4096], *c = canon, h[32];
	size_t clen = 0;
	char hx[65];
	uint64_t v;
	int r;

	if (!m->key)
		return -EINVAL;
	if (len > sizeof(canon)) {
		c = (uint8_t *)in; /* long values are hashed as sent */
		clen = len;
	} else if ((r = canonical(t, format, in, len, canon, sizeof(canon), &clen)) < 0) {
		return r;
	}
	{
		/* the type family goes into the MAC: 5 the integer and "5" the text differ */
		uint8_t tag = text_type(t) ? 't' : (t == MASK_OID_INT2 || t == MASK_OID_INT4 || t == MASK_OID_INT8) ? 'i' : (uint8_t)t;
		struct mask_hmac *own = m->hmac ? NULL : mask_hmac_new(m->key);

		if (!m->hmac && !own)
			return -ENOMEM;
		hmac_sha256(m->hmac ? m->hmac : own, tag, c, clen, h);
		mask_hmac_free(own);
	}
	v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | h[i];
	hex_encode(h, 16, hx);
	if (text_type(t))
		return put(out, cap, hx, 32);
	switch (t) {
	case MASK_OID_INT2:
	case MASK_OID_INT4:
	case MASK_OID_INT8: {
		unsigned bytes = t == MASK_OID_INT2 ? 2 : t == MASK_OID_INT4 ? 4 : 8;
		uint64_t x = v & ((bytes == 8 ? ~0ull : ((1ull << (8 * bytes)) - 1)) >> 1);
		char dec[24];

		if (format == 0)
			return put(out, cap, dec, (size_t)snprintf(dec, sizeof(dec), "%llu", (unsigned long long)x));
		if (cap < bytes)
			return -ENOSPC;
		for (unsigned i = 0; i < bytes; i++)
			out[i] = (uint8_t)(x >> (8 * (bytes - 1 - i)));
		return bytes;
	}
	case MASK_OID_NUMERIC: {
		char dec[24];

		v &= 0x7fffffffffffffffull;
		if (format == 0)
			return put(out, cap, dec, (size_t)snprintf(dec, sizeof(dec), "%llu", (unsigned long long)v));
		return numeric_binary(v, out, cap);
	}
	case MASK_OID_UUID: {
		char u[37];

		if (format == 1)
			return put(out, cap, h, 16);
		snprintf(u, sizeof(u), "%.8s-%.4s-%.4s-%.4s-%.12s", hx, hx + 8, hx + 12, hx + 16, hx + 20);
		return put(out, cap, u, 36);
	}
	case MASK_OID_BYTEA: {
		char b[67] = "\\x";

		if (format == 1)
			return put(out, cap, h, 32);
		hex_encode(h, 32, b + 2);
		return put(out, cap, b, 66);
	}
	case MASK_OID_JSON:
	case MASK_OID_JSONB: {
		char j[40];
		size_t n = (size_t)snprintf(j + 1, sizeof(j) - 1, "\"%s\"", hx);

		if (t == MASK_OID_JSONB && format == 1) {
			j[0] = 1; /* jsonb binary: version 1, then the text */
			return put(out, cap, j, n + 1);
		}
		return put(out, cap, j + 1, n);
	}
	}
	return MASK_NULL_VALUE;
}

/* partial: all but the last `keep` characters (UTF-8) become '*'. */
static long partial(unsigned keep, const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
	size_t chars = 0, seen = 0, n = 0;

	for (size_t i = 0; i < len; i++)
		chars += (in[i] & 0xc0) != 0x80;
	for (size_t i = 0; i < len; i++) {
		bool start = (in[i] & 0xc0) != 0x80;

		if (start)
			seen++;
		if (seen + keep <= chars) {
			if (start) {
				if (n >= cap)
					return -ENOSPC;
				out[n++] = '*';
			}
		} else {
			if (n >= cap)
				return -ENOSPC;
			out[n++] = in[i];
		}
	}
	return (long)n;
}

static long email(const struct mask_spec *m, const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
	const uint8_t *at = NULL;

	for (size_t i = 0; i < len; i++)
		if (in[i] == '@')
			at = in + i;
	if (!at) {
		const char *r = m->redact_text ? m->redact_text : DEFAULT_REDACT;

		return put(out, cap, r, strlen(r));
	}
	if (cap < 3 + (size_t)(in + len - at))
		return -ENOSPC;
	memcpy(out, "***", 3);
	memcpy(out + 3, at, (size_t)(in + len - at));
	return (long)(3 + (in + len - at));
}

static long scalar(const struct mask_spec *m, uint32_t t, int format, const uint8_t *in, long len, uint8_t *out,
		   size_t cap)
{
	const char *r = m->redact_text ? m->redact_text : DEFAULT_REDACT;

	if (len < 0 || m->strategy == MASK_NULL)
		return MASK_NULL_VALUE;
	switch (m->strategy) {
	case MASK_HASH:
		return hash_value(m, t, format, in, (size_t)len, out, cap);
	case MASK_REDACT:
		return text_type(t) ? put(out, cap, r, strlen(r)) : MASK_NULL_VALUE;
	case MASK_PARTIAL:
		return text_type(t) ? partial(m->keep, in, (size_t)len, out, cap) : MASK_NULL_VALUE;
	case MASK_EMAIL:
		return text_type(t) ? email(m, in, (size_t)len, out, cap) : MASK_NULL_VALUE;
	default:
		return MASK_NULL_VALUE;
	}
}

/* ---- arrays --------------------------------------------------------------------- */

static long array_binary(const struct mask_spec *m, uint32_t elem, const uint8_t *in, size_t len, uint8_t *out,
			 size_t cap)
{
	uint32_t ndim, nitems = 1;
	size_t pos, n, flag_at;
	bool any_null = false;

	if (len < 12 || (ndim = pgwire_get32(in)) > 6 || len < 12 + 8 * (size_t)ndim)
		return -EINVAL;
	if (pgwire_get32(in + 8) != elem)
		return -EINVAL;
	for (uint32_t d = 0; d < ndim; d++) {
		uint32_t size = pgwire_get32(in + 12 + 8 * d);

		if (size > (1u << 27) || (uint64_t)nitems * size > (1u << 27))
			return -EINVAL;
		nitems *= size;
	}
	if (ndim == 0)
		nitems = 0;
	pos = n = 12 + 8 * (size_t)ndim;
	if (cap < n)
		return -ENOSPC;
	memcpy(out, in, n);
	flag_at = 4;
	for (uint32_t i = 0; i < nitems; i++) {
		long el, r;

		if (pos + 4 > len)
			return -EINVAL;
		el = (int32_t)pgwire_get32(in + pos);
		pos += 4;
		if (el >= 0 && (size_t)el > len - pos)
			return -EINVAL;
		if (cap < n + 4)
			return -ENOSPC;
		r = scalar(m, elem, 1, in + pos, el, out + n + 4, cap - n - 4);
		if (r == -ENOSPC || r == -EINVAL || r == -EIO)
			return r;
		pgwire_put32(out + n, (uint32_t)(int32_t)r);
		n += 4 + (r > 0 ? (size_t)r : 0);
		any_null |= r < 0;
		if (el > 0)
			pos += (size_t)el;
	}
	if (pos != len)
		return -EINVAL;
	pgwire_put32(out + flag_at, any_null ? 1 : 0);
	return (long)n;
}

/* Text arrays: {a,"b c",NULL,{nested}}; every masked element is written quoted. */
struct tarr {
	const struct mask_spec *m;
	uint32_t elem;
	const uint8_t *in;
	size_t len, pos;
	uint8_t *out;
	size_t cap, n;
};

static int emit(struct tarr *a, const void *s, size_t n)
{
	if (a->n + n > a->cap)
		return -ENOSPC;
	memcpy(a->out + a->n, s, n);
	a->n += n;
	return 0;
}

static int element(struct tarr *a, const uint8_t *v, long vlen)
{
	uint8_t buf[MASK_ARRAY_ELEMENT_MAX];
	long r = scalar(a->m, a->elem, 0, v, vlen, buf, sizeof(buf));
	int e;

	/* -ENOSPC here is this buffer's, not the caller's: more room would not help */
	if (r == -ENOSPC)
		return -EINVAL;
	if (r == -EINVAL || r == -EIO)
		return (int)r;
	if (r < 0)
		return emit(a, "NULL", 4);
	if ((e = emit(a, "\"", 1)) < 0)
		return e;
	for (long i = 0; i < r; i++) {
		if ((buf[i] == '"' || buf[i] == '\\') && (e = emit(a, "\\", 1)) < 0)
			return e;
		if ((e = emit(a, &buf[i], 1)) < 0)
			return e;
	}
	return emit(a, "\"", 1);
}

static int list(struct tarr *a, int depth)
{
	uint8_t val[MASK_ARRAY_ELEMENT_MAX];
	int e;

	if (depth > 6 || a->pos >= a->len || a->in[a->pos] != '{')
		return -EINVAL;
	a->pos++;
	if ((e = emit(a, "{", 1)) < 0)
		return e;
	while (a->pos < a->len && isspace(a->in[a->pos]))
		a->pos++;
	if (a->pos < a->len && a->in[a->pos] == '}') {
		a->pos++;
		return emit(a, "}", 1);
	}
	for (;;) {
		while (a->pos < a->len && isspace(a->in[a->pos]))
			a->pos++;
		if (a->pos >= a->len)
			return -EINVAL;
		if (a->in[a->pos] == '{') {
			if ((e = list(a, depth + 1)) < 0)
				return e;
		} else {
			size_t vn = 0;
			bool quoted = a->in[a->pos] == '"';

			if (quoted)
				a->pos++;
			while (a->pos < a->len) {
				uint8_t ch = a->in[a->pos];

				if (quoted ? ch == '"' : (ch == ',' || ch == '}'))
					break;
				if (ch == '\\' && ++a->pos >= a->len)
					return -EINVAL;
				if (vn == sizeof(val))
					return -EINVAL; /* see MASK_ARRAY_ELEMENT_MAX */
				val[vn++] = a->in[a->pos++];
			}
			if (quoted) {
				if (a->pos >= a->len)
					return -EINVAL;
				a->pos++; /* the closing quote */
			} else {
				while (vn && isspace(val[vn - 1]))
					vn--;
			}
			if ((e = element(a, val, !quoted && vn == 4 && strncasecmp((char *)val, "NULL", 4) == 0 ? MASK_NULL_VALUE : (long)vn)) < 0)
				return e;
		}
		while (a->pos < a->len && isspace(a->in[a->pos]))
			a->pos++;
		if (a->pos >= a->len)
			return -EINVAL;
		if (a->in[a->pos] == '}') {
			a->pos++;
			return emit(a, "}", 1);
		}
		if (a->in[a->pos] != ',')
			return -EINVAL;
		a->pos++;
		if ((e = emit(a, ",", 1)) < 0)
			return e;
	}
}

long mask_value(const struct mask_spec *m, uint32_t type, int format, const uint8_t *in, long len, uint8_t *out,
		size_t cap)
{
	uint32_t elem = mask_array_element(type);

	if (len < 0 || m->strategy == MASK_NULL)
		return MASK_NULL_VALUE;
	if (!elem)
		return scalar(m, type, format, in, len, out, cap);
	if (format == 1)
		return array_binary(m, elem, in, (size_t)len, out, cap);
	{
		struct tarr a = { m, elem, in, (size_t)len, 0, out, cap, 0 };
		int e = list(&a, 0);

		if (e < 0)
			return e;
		return a.pos == a.len ? (long)a.n : -EINVAL;
	}
}
