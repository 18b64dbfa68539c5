/*
 * base64url without padding (RFC 4648 §5), as JOSE uses it (RFC 7515 §2). Strict:
 * only the URL-safe alphabet, no padding, no whitespace, no non-zero trailing bits.
 * And lowercase hex, for digests in logs and recordings.
 */
#ifndef PGTETHER_B64URL_H
#define PGTETHER_B64URL_H

#include <stddef.h>
#include <stdint.h>

/* Decodes in[0..len) into out (cap bytes). Returns the decoded length, or -EINVAL
 * for anything that is not canonical base64url, -ENOSPC when it does not fit. */
long b64url_decode(const char *in, size_t len, uint8_t *out, size_t cap);

/* Encodes without padding into out (cap bytes, NUL-terminated). Returns the length
 * or -ENOSPC. */
long b64url_encode(const uint8_t *in, size_t len, char *out, size_t cap);

/* Lowercase hex of d[0..n) into out (2n + 1 bytes). */
void hex_encode(const uint8_t *d, size_t n, char *out);

#endif
