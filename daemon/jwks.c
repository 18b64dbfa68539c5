/*
 * JWKS → EVP_PKEY (RFC 7517, RFC 7518 §6.2 and §6.3).
 */
#include "jwks.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "b64url.h"

static int fail(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* Decodes a base64url member of a JWK into buf; returns its length or < 0. */
static long member(json_t *jwk, const char *name, uint8_t *buf, size_t cap)
{
	json_t *v = json_object_get(jwk, name);

	if (!json_is_string(v))
		return -ENOENT;
	return b64url_decode(json_string_value(v), json_string_length(v), buf, cap);
}

static struct evp_pkey_st *from_params(const char *type, OSSL_PARAM *params)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	EVP_PKEY *pkey = NULL;

	if (!ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		pkey = NULL;
	EVP_PKEY_CTX_free(ctx);
	return pkey;
}

static int rsa_key(json_t *jwk, struct jwks_key *k, char *err, size_t errlen)
{
	uint8_t n[1024], e[16];
	long nl = member(jwk, "n", n, sizeof(n)), el = member(jwk, "e", e, sizeof(e));
	OSSL_PARAM_BLD *bld;
	OSSL_PARAM *params;
	BIGNUM *bn = NULL, *be = NULL;

	if (nl <= 0 || el <= 0)
		return fail(err, errlen, "key '%s': RSA needs base64url \"n\" and \"e\"", k->kid);
	bn = BN_bin2bn(n, (int)nl, NULL);
	if (bn && BN_num_bits(bn) < 2048) {
		/* counted in bits of the number: leading zero bytes do not make a key longer */
		int bits = BN_num_bits(bn);

		BN_free(bn);
		return fail(err, errlen, "key '%s': RSA modulus of %d bits; at least 2048 are required", k->kid, bits);
	}
	be = BN_bin2bn(e, (int)el, NULL);
	bld = OSSL_PARAM_BLD_new();
	if (!bn || !be || !bld || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) || !(params = OSSL_PARAM_BLD_to_param(bld))) {
		BN_free(bn);
		BN_free(be);
		OSSL_PARAM_BLD_free(bld);
		return -ENOMEM;
	}
	k->pkey = from_params("RSA", params);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn);
	BN_free(be);
	if (!k->pkey)
		return fail(err, errlen, "key '%s': not a valid RSA public key", k->kid);
	k->kty = JWKS_RSA;
	return 0;
}

static int ec_key(json_t *jwk, struct jwks_key *k, char *err, size_t errlen)
{
	const char *crv = json_string_value(json_object_get(jwk, "crv"));
	uint8_t x[66], y[66], point[1 + 2 * 48];
	size_t size;
	long xl, yl;
	OSSL_PARAM params[3];
	const char *group;

	if (crv && strcmp(crv, "P-256") == 0) {
		size = 32;
		group = "prime256v1";
		k->kty = JWKS_EC_P256;
	} else if (crv && strcmp(crv, "P-384") == 0) {
		size = 48;
		group = "secp384r1";
		k->kty = JWKS_EC_P384;
	} else {
		return fail(err, errlen, "key '%s': EC curve '%s' is not supported (P-256, P-384)", k->kid, crv ? crv : "(none)");
	}
	xl = member(jwk, "x", x, sizeof(x));
	yl = member(jwk, "y", y, sizeof(y));
	if (xl != (long)size || yl != (long)size)
		return fail(err, errlen, "key '%s': EC \"x\" and \"y\" must be %zu bytes each for %s", k->kid, size, crv);
	point[0] = 0x04; /* uncompressed */
	memcpy(point + 1, x, size);
	memcpy(point + 1 + size, y, size);
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)group, 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, 1 + 2 * size);
	params[2] = OSSL_PARAM_construct_end();
	k->pkey = from_params("EC", params);
	if (k->pkey) {
		/* an invalid-curve point is the classic way to leak an ECDH key; for
		 * signatures it is at best garbage: refuse it either way */
		EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
		int ok = ctx && EVP_PKEY_public_check(ctx) == 1;

		EVP_PKEY_CTX_free(ctx);
		if (!ok) {
			EVP_PKEY_free(k->pkey);
			k->pkey = NULL;
		}
	}
	if (!k->pkey)
		return fail(err, errlen, "key '%s': the EC point is not on %s", k->kid, crv);
	return 0;
}

static int to_pem(struct jwks_key *k)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data;
	long n;

	if (!bio || PEM_write_bio_PUBKEY(bio, k->pkey) != 1) {
		BIO_free(bio);
		return -ENOMEM;
	}
	n = BIO_get_mem_data(bio, &data);
	k->pem = malloc((size_t)n + 1);
	if (!k->pem) {
		BIO_free(bio);
		return -ENOMEM;
	}
	memcpy(k->pem, data, (size_t)n);
	k->pem[n] = '\0';
	k->pem_len = (size_t)n;
	BIO_free(bio);
	return 0;
}

int jwks_parse(const char *text, size_t len, struct jwks *ret, char *err, size_t errlen)
{
	struct jwks j = { NULL, 0 };
	json_error_t jerr;
	json_t *root, *keys, *jwk;
	size_t i;
	int r = 0;

	if (len > JWKS_MAX_BYTES)
		return fail(err, errlen, "the key set is larger than %d bytes", JWKS_MAX_BYTES);
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return fail(err, errlen, "%d:%d: %s", jerr.line, jerr.column, jerr.text);
	keys = json_object_get(root, "keys");
	if (!json_is_array(keys) || json_array_size(keys) == 0 || json_array_size(keys) > JWKS_MAX_KEYS) {
		r = fail(err, errlen, "a key set needs \"keys\": an array of 1 to %d keys", JWKS_MAX_KEYS);
		goto out;
	}
	j.keys = calloc(json_array_size(keys), sizeof(*j.keys));
	if (!j.keys) {
		r = -ENOMEM;
		goto out;
	}
	json_array_foreach(keys, i, jwk) {
		struct jwks_key *k = &j.keys[j.n];
		const char *kty = json_string_value(json_object_get(jwk, "kty"));
		const char *kid = json_string_value(json_object_get(jwk, "kid"));
		const char *use = json_string_value(json_object_get(jwk, "use"));
		const char *alg = json_string_value(json_object_get(jwk, "alg"));

		if (!json_is_object(jwk) || !kid || !*kid || strlen(kid) > JWKS_KID_MAX) {
			r = fail(err, errlen, "key %zu: every key needs a \"kid\" of 1 to %d characters", i, JWKS_KID_MAX);
			goto out;
		}
		snprintf(k->kid, sizeof(k->kid), "%s", kid);
		if (jwks_find(&j, kid)) {
			r = fail(err, errlen, "key '%s' appears twice: a token could not say which one signed it", kid);
			goto out;
		}
		if (json_object_get(jwk, "d") || json_object_get(jwk, "p") || json_object_get(jwk, "q")) {
			r = fail(err, errlen, "key '%s' holds private key material: publish public keys only", kid);
			goto out;
		}
		if (use && strcmp(use, "sig") != 0) {
			r = fail(err, errlen, "key '%s' is for \"%s\", not for signatures", kid, use);
			goto out;
		}
		if (alg && strlen(alg) >= sizeof(k->alg)) {
			r = fail(err, errlen, "key '%s': unknown alg", kid);
			goto out;
		}
		snprintf(k->alg, sizeof(k->alg), "%s", alg ? alg : "");
		if (kty && strcmp(kty, "RSA") == 0)
			r = rsa_key(jwk, k, err, errlen);
		else if (kty && strcmp(kty, "EC") == 0)
			r = ec_key(jwk, k, err, errlen);
		else
			r = fail(err, errlen, "key '%s': key type '%s' is not supported (RSA, EC)", kid, kty ? kty : "(none)");
		if (r < 0)
			goto out;
		j.n++;
		if ((r = to_pem(k)) < 0)
			goto out;
	}
out:
	json_decref(root);
	if (r < 0) {
		jwks_release(&j);
		return r;
	}
	*ret = j;
	return 0;
}

const struct jwks_key *jwks_find(const struct jwks *j, const char *kid)
{
	for (size_t i = 0; i < j->n; i++)
		if (strcmp(j->keys[i].kid, kid) == 0)
			return &j->keys[i];
	return NULL;
}

void jwks_release(struct jwks *j)
{
	for (size_t i = 0; j->keys && i < j->n; i++) {
		EVP_PKEY_free(j->keys[i].pkey);
		free(j->keys[i].pem);
		j->keys[i].pkey = NULL;
		j->keys[i].pem = NULL;
	}
	free(j->keys);
	j->keys = NULL;
	j->n = 0;
}
