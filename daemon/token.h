/*
 * Verification of workload identity tokens (JWT, RFC 7519; JWS, RFC 7515) from
 * trusted issuers: SPIFFE JWT-SVIDs, GitHub Actions and GitLab CI OIDC tokens,
 * Kubernetes service-account tokens.
 *
 * Debian's libjwt 1.10 checks signatures only, and unsafely if misused (a NULL key
 * accepts alg "none"; an HS256 token verifies against an RSA public key PEM used as
 * its secret). So this module decides everything before and after it: it parses the
 * header itself (duplicate keys, "crit" and unexpected "typ" refused), takes the
 * issuer from the exact "iss", allows only that issuer's algorithms (RS*, ES*; never
 * none or HS*), picks the key by "kid", always passes a key, checks jwt_get_alg()
 * afterwards, and checks every claim in its own code (exp required, nbf and iat with
 * bounded leeway, aud).
 */
#ifndef PGTETHER_TOKEN_H
#define PGTETHER_TOKEN_H

#include <jansson.h>
#include <stddef.h>
#include <time.h>

#include "jwks.h"

#define TOKEN_DEFAULT_MAX_BYTES 16384
#define TOKEN_DEFAULT_LEEWAY 60
#define TOKEN_MAX_LEEWAY 300

/* token_issuer.algorithms bits */
enum token_alg {
	TOKEN_RS256 = 1 << 0, TOKEN_RS384 = 1 << 1, TOKEN_RS512 = 1 << 2,
	TOKEN_ES256 = 1 << 3, TOKEN_ES384 = 1 << 4,
};

struct token_issuer {
	const char *issuer;          /* exact "iss" */
	const char *const *audiences;
	size_t n_audiences;
	unsigned algorithms;         /* TOKEN_* bits */
	const struct jwks *keys;
	long leeway;                 /* seconds, at most TOKEN_MAX_LEEWAY */
	size_t max_bytes;            /* 0: TOKEN_DEFAULT_MAX_BYTES */
};

/* Why a token was refused: each attack has its own name in the log. */
enum token_result {
	TOKEN_OK = 0,
	TOKEN_MALFORMED = -1,        /* not three base64url parts of JSON objects */
	TOKEN_TOO_LARGE = -2,
	TOKEN_DUPLICATE_KEYS = -3,   /* in the header or the claims */
	TOKEN_ALG_NONE = -4,
	TOKEN_ALG_NOT_ALLOWED = -5,  /* HS*, or not among the issuer's algorithms */
	TOKEN_CRIT = -6,
	TOKEN_TYP = -7,
	TOKEN_UNKNOWN_ISSUER = -8,
	TOKEN_UNKNOWN_KID = -9,
	TOKEN_KEY_MISMATCH = -10,    /* the key's type, curve or alg does not fit alg */
	TOKEN_BAD_SIGNATURE = -11,
	TOKEN_NO_EXP = -12,
	TOKEN_EXPIRED = -13,
	TOKEN_NOT_YET_VALID = -14,   /* nbf in the future */
	TOKEN_ISSUED_IN_FUTURE = -15,
	TOKEN_WRONG_AUDIENCE = -16,
};

/* A short reason for logs and client errors; never includes the token. */
const char *token_strerror(enum token_result r);

/*
 * Verifies token[0..len) against the issuers at time now. On TOKEN_OK, *ret_claims
 * holds the payload (a new reference) and *ret_issuer the issuer that signed it.
 * The copies of the token made here are wiped before returning.
 */
enum token_result token_verify(const struct token_issuer *issuers, size_t n_issuers,
			       const char *token, size_t len, time_t now,
			       json_t **ret_claims, const struct token_issuer **ret_issuer);

#endif
