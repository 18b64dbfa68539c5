/*
 * JSON Web Key Sets (RFC 7517) of trusted token issuers, turned into OpenSSL 3
 * public keys with EVP_PKEY_fromdata: RSA (n, e; at least 2048 bits) and EC on P-256
 * and P-384 (x, y; the point must be on the curve). A key set is refused whole when
 * any key is malformed, carries private material, or repeats a kid: an issuer's file
 * that is wrong must not half-work.
 */
#ifndef PGTETHER_JWKS_H
#define PGTETHER_JWKS_H

#include <stddef.h>

#define JWKS_MAX_BYTES (256 * 1024)
#define JWKS_MAX_KEYS 64
#define JWKS_KID_MAX 128

struct evp_pkey_st;

enum jwks_kty { JWKS_RSA, JWKS_EC_P256, JWKS_EC_P384 };

struct jwks_key {
	char kid[JWKS_KID_MAX + 1];
	enum jwks_kty kty;
	char alg[16];                /* the key's "alg", or "" when it names none */
	struct evp_pkey_st *pkey;
	char *pem;                   /* SubjectPublicKeyInfo PEM, for libjwt */
	size_t pem_len;
};

struct jwks {
	struct jwks_key *keys;
	size_t n;
};

/* Parses a JWKS text. 0, or -EINVAL with a sentence in err (errlen bytes). */
int jwks_parse(const char *text, size_t len, struct jwks *ret, char *err, size_t errlen);

/* The key with this kid, or NULL. */
const struct jwks_key *jwks_find(const struct jwks *j, const char *kid);

void jwks_release(struct jwks *j);

#endif
