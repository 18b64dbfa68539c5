/*
 * JWT verification on top of libjwt 1.10 with the guard rails of token.h.
 */
#include "token.h"

#include <jwt.h>
#include <openssl/crypto.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "b64url.h"

static const struct {
	const char *name;
	unsigned bit;
	jwt_alg_t lib;
} algs[] = {
	{ "RS256", TOKEN_RS256, JWT_ALG_RS256 }, { "RS384", TOKEN_RS384, JWT_ALG_RS384 },
	{ "RS512", TOKEN_RS512, JWT_ALG_RS512 }, { "ES256", TOKEN_ES256, JWT_ALG_ES256 },
	{ "ES384", TOKEN_ES384, JWT_ALG_ES384 },
};

const char *token_strerror(enum token_result r)
{
	switch (r) {
	case TOKEN_OK: return "valid";
	case TOKEN_MALFORMED: return "malformed token";
	case TOKEN_TOO_LARGE: return "token too large";
	case TOKEN_DUPLICATE_KEYS: return "duplicate keys in the token";
	case TOKEN_ALG_NONE: return "unsigned token (alg none)";
	case TOKEN_ALG_NOT_ALLOWED: return "signature algorithm not allowed for this issuer";
	case TOKEN_CRIT: return "token has critical header parameters (crit)";
	case TOKEN_TYP: return "token type is not JWT";
	case TOKEN_UNKNOWN_ISSUER: return "token issuer is not trusted";
	case TOKEN_UNKNOWN_KID: return "token signed by an unknown key (kid)";
	case TOKEN_KEY_MISMATCH: return "token key does not fit its algorithm";
	case TOKEN_BAD_SIGNATURE: return "token signature is invalid";
	case TOKEN_NO_EXP: return "token has no expiry (exp)";
	case TOKEN_EXPIRED: return "token expired";
	case TOKEN_NOT_YET_VALID: return "token not yet valid (nbf)";
	case TOKEN_ISSUED_IN_FUTURE: return "token issued in the future (iat)";
	case TOKEN_WRONG_AUDIENCE: return "token audience does not include pgtether's";
	}
	return "invalid token";
}

/* base64url JSON object → jansson, duplicates refused. */
static enum token_result decode_part(const char *p, size_t len, json_t **ret)
{
	uint8_t *buf = malloc(len + 1);
	json_error_t jerr;
	long n;

	if (!buf)
		return TOKEN_MALFORMED;
	n = b64url_decode(p, len, buf, len);
	if (n <= 0) {
		free(buf);
		return TOKEN_MALFORMED;
	}
	*ret = json_loadb((const char *)buf, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
	OPENSSL_cleanse(buf, (size_t)n);
	free(buf);
	if (!*ret)
		return strstr(jerr.text, "duplicate") ? TOKEN_DUPLICATE_KEYS : TOKEN_MALFORMED;
	if (!json_is_object(*ret)) {
		json_decref(*ret);
		*ret = NULL;
		return TOKEN_MALFORMED;
	}
	return TOKEN_OK;
}

static bool key_fits(const struct jwks_key *k, unsigned bit, const char *alg)
{
	if (k->alg[0] && strcmp(k->alg, alg) != 0)
		return false;
	if (bit & (TOKEN_RS256 | TOKEN_RS384 | TOKEN_RS512))
		return k->kty == JWKS_RSA;
	if (bit == TOKEN_ES256)
		return k->kty == JWKS_EC_P256;
	return k->kty == JWKS_EC_P384;
}

/* A NumericDate (RFC 7519 §2): seconds, possibly fractional, within +-2^53 (the
 * integers JSON numbers hold exactly; far past any clock), so neither converting a
 * real nor adding the leeway can overflow. Anything else is not a time. */
#define TOKEN_NUMERIC_MAX (1LL << 53)

static bool numeric(json_t *v, long long *ret)
{
	if (json_is_integer(v)) {
		json_int_t i = json_integer_value(v);

		if (i < -TOKEN_NUMERIC_MAX || i > TOKEN_NUMERIC_MAX)
			return false;
		*ret = (long long)i;
		return true;
	}
	if (json_is_real(v)) {
		double d = json_real_value(v);

		/* written so that NaN fails too */
		if (!(d >= (double)-TOKEN_NUMERIC_MAX && d <= (double)TOKEN_NUMERIC_MAX))
			return false;
		*ret = (long long)d;
		return true;
	}
	return false;
}

static bool audience_ok(const struct token_issuer *is, json_t *aud)
{
	size_t i;
	json_t *v;

	if (json_is_string(aud)) {
		for (size_t a = 0; a < is->n_audiences; a++)
			if (strcmp(json_string_value(aud), is->audiences[a]) == 0)
				return true;
		return false;
	}
	if (!json_is_array(aud))
		return false;
	json_array_foreach(aud, i, v)
		if (json_is_string(v))
			for (size_t a = 0; a < is->n_audiences; a++)
				if (strcmp(json_string_value(v), is->audiences[a]) == 0)
					return true;
	return false;
}

static enum token_result check(const struct token_issuer *issuers, size_t n_issuers,
			       const char *token, size_t len, time_t now, json_t *header,
			       json_t *claims, const struct token_issuer **ret_issuer)
{
	const char *alg = json_string_value(json_object_get(header, "alg"));
	const char *typ = json_string_value(json_object_get(header, "typ"));
	const char *kid = json_string_value(json_object_get(header, "kid"));
	const char *iss = json_string_value(json_object_get(claims, "iss"));
	const struct token_issuer *is = NULL;
	const struct jwks_key *key = NULL;
	long long exp, nbf, iat;
	unsigned bit = 0;
	jwt_alg_t lib = JWT_ALG_NONE;
	jwt_t *jwt = NULL;
	int r;

	if (!alg)
		return TOKEN_MALFORMED;
	if (strcasecmp(alg, "none") == 0)
		return TOKEN_ALG_NONE;
	if (json_object_get(header, "crit"))
		return TOKEN_CRIT;
	if (json_object_get(header, "typ") && (!typ || (strcasecmp(typ, "JWT") && strcasecmp(typ, "at+jwt"))))
		return TOKEN_TYP;
	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
		if (strcmp(alg, algs[i].name) == 0) {
			bit = algs[i].bit;
			lib = algs[i].lib;
		}
	if (!bit)
		return TOKEN_ALG_NOT_ALLOWED; /* HS*, PS* (not in libjwt 1.10), anything else */
	if (!iss)
		return TOKEN_UNKNOWN_ISSUER;
	for (size_t i = 0; i < n_issuers && !is; i++)
		if (strcmp(issuers[i].issuer, iss) == 0)
			is = &issuers[i];
	if (!is)
		return TOKEN_UNKNOWN_ISSUER;
	if (len > (is->max_bytes ? is->max_bytes : TOKEN_DEFAULT_MAX_BYTES))
		return TOKEN_TOO_LARGE;
	if (!(is->algorithms & bit))
		return TOKEN_ALG_NOT_ALLOWED;
	if (kid)
		key = jwks_find(is->keys, kid);
	else if (is->keys->n == 1)
		key = &is->keys->keys[0];
	if (!key)
		return TOKEN_UNKNOWN_KID;
	if (!key_fits(key, bit, alg))
		return TOKEN_KEY_MISMATCH;

	/* libjwt: always with a key, and the algorithm it saw checked afterwards */
	r = jwt_decode(&jwt, token, (const unsigned char *)key->pem, (int)key->pem_len);
	if (r != 0 || !jwt || jwt_get_alg(jwt) != lib) {
		jwt_free(jwt);
		return TOKEN_BAD_SIGNATURE;
	}
	jwt_free(jwt);

	if (!numeric(json_object_get(claims, "exp"), &exp))
		return TOKEN_NO_EXP;
	if ((long long)now > exp + is->leeway)
		return TOKEN_EXPIRED;
	if (json_object_get(claims, "nbf") &&
	    (!numeric(json_object_get(claims, "nbf"), &nbf) || (long long)now + is->leeway < nbf))
		return TOKEN_NOT_YET_VALID;
	if (json_object_get(claims, "iat") &&
	    (!numeric(json_object_get(claims, "iat"), &iat) || iat > (long long)now + is->leeway))
		return TOKEN_ISSUED_IN_FUTURE;
	if (!audience_ok(is, json_object_get(claims, "aud")))
		return TOKEN_WRONG_AUDIENCE;
	*ret_issuer = is;
	return TOKEN_OK;
}

enum token_result token_verify(const struct token_issuer *issuers, size_t n_issuers,
			       const char *token, size_t len, time_t now,
			       json_t **ret_claims, const struct token_issuer **ret_issuer)
{
	const char *dot1, *dot2;
	json_t *header = NULL, *claims = NULL;
	enum token_result r;
	char *copy;

	/* before anything is decoded: no issuer allows more than its cap, and none more
	 * than the largest cap */
	size_t cap = TOKEN_DEFAULT_MAX_BYTES;

	for (size_t i = 0; i < n_issuers; i++)
		if (issuers[i].max_bytes > cap)
			cap = issuers[i].max_bytes;
	if (len > cap)
		return TOKEN_TOO_LARGE;
	if (len == 0 || memchr(token, 0, len))
		return TOKEN_MALFORMED;
	dot1 = memchr(token, '.', len);
	dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
	if (!dot1 || !dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)))
		return TOKEN_MALFORMED; /* three parts (an empty signature is judged by alg) */
	if ((r = decode_part(token, (size_t)(dot1 - token), &header)) != TOKEN_OK)
		return r;
	if ((r = decode_part(dot1 + 1, (size_t)(dot2 - dot1 - 1), &claims)) != TOKEN_OK) {
		json_decref(header);
		return r;
	}
	copy = strndup(token, len); /* libjwt wants a C string */
	if (!copy) {
		json_decref(header);
		json_decref(claims);
		return TOKEN_MALFORMED;
	}
	r = check(issuers, n_issuers, copy, len, now, header, claims, ret_issuer);
	OPENSSL_cleanse(copy, len);
	free(copy);
	json_decref(header);
	if (r != TOKEN_OK) {
		json_decref(claims);
		return r;
	}
	*ret_claims = claims;
	return TOKEN_OK;
}
