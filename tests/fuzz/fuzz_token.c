/*
 * Identity tokens (token.c, jwks.c, b64url.c): a JWT verified against a JWKS.
 *
 * Input: byte 0 picks the mode, the rest splits at the first NUL into two parts.
 *   mode even: part one is a JWKS text, part two a token; the key set is parsed and
 *     the token verified against it (both chosen by the input: every parser before
 *     the signature check).
 *   mode odd: part one is a JOSE header, part two a claims set (JSON texts); the
 *     harness signs them with its own ES256 key, whose JWKS the issuer trusts, so the
 *     claim checks after the signature see arbitrary claims too.
 * Both parts also go through b64url_decode, and what decodes must encode back to
 * the same text (the decoder is strict: one text per byte string).
 */
#include "fuzz.h"

#include <errno.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include "b64url.h"
#include "jwks.h"
#include "token.h"

#define FUZZ_ISS "https://issuer.example"
#define FUZZ_NOW 1800000000

static EVP_PKEY *key;
static struct jwks own;
static const char *const audiences[] = { "pgtether", "other" };

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	uint8_t pt[200];
	char x[64], y[64], set[512], err[256];
	size_t len = 0;

	(void)argc;
	(void)argv;
	key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (!key || !EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt), &len) || len != 65)
		abort();
	b64url_encode(pt + 1, 32, x, sizeof(x));
	b64url_encode(pt + 33, 32, y, sizeof(y));
	snprintf(set, sizeof(set), "{\"keys\":[{\"kty\":\"EC\",\"kid\":\"k1\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}]}", x, y);
	if (jwks_parse(set, strlen(set), &own, err, sizeof(err)) < 0) {
		fprintf(stderr, "fuzz_token: %s\n", err);
		abort();
	}
	return 0;
}

static void verify(const struct jwks *keys, const char *tok, size_t len)
{
	struct token_issuer is = { FUZZ_ISS, audiences, 2, TOKEN_RS256 | TOKEN_RS384 | TOKEN_RS512 | TOKEN_ES256 | TOKEN_ES384,
				   keys, TOKEN_DEFAULT_LEEWAY, 0 };
	const struct token_issuer *which = NULL;
	json_t *claims = NULL;
	enum token_result r = token_verify(&is, 1, tok, len, FUZZ_NOW, &claims, &which);

	fuzz_check(token_strerror(r) != NULL);
	if (r == TOKEN_OK)
		fuzz_check(which == &is && json_is_object(claims));
	else
		fuzz_check(claims == NULL);
	json_decref(claims);
}

/* JWS ES256 signature (RFC 7518 §3.4: r and s, 32 bytes each) of in, base64url. */
static int sign_es256(const char *in, size_t len, char *out, size_t cap)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint8_t der[128], raw[64];
	const uint8_t *p = der;
	size_t dlen = sizeof(der);
	ECDSA_SIG *sig = NULL;
	int ok = md && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
		 EVP_DigestSign(md, der, &dlen, (const uint8_t *)in, len) == 1 &&
		 (sig = d2i_ECDSA_SIG(NULL, &p, (long)dlen)) &&
		 BN_bn2binpad(ECDSA_SIG_get0_r(sig), raw, 32) == 32 && BN_bn2binpad(ECDSA_SIG_get0_s(sig), raw + 32, 32) == 32;

	ECDSA_SIG_free(sig);
	EVP_MD_CTX_free(md);
	return ok && b64url_encode(raw, 64, out, cap) > 0 ? 0 : -1;
}

static void signed_claims(const uint8_t *h, size_t hlen, const uint8_t *c, size_t clen)
{
	size_t cap = 2 * (hlen + clen) + 256, n;
	char *tok = malloc(cap);
	long a, b;

	if (!tok)
		abort();
	a = b64url_encode(h, hlen, tok, cap);
	fuzz_check(a >= 0);
	tok[a] = '.';
	b = b64url_encode(c, clen, tok + a + 1, cap - (size_t)a - 1);
	fuzz_check(b >= 0);
	n = (size_t)a + 1 + (size_t)b;
	tok[n] = '.';
	if (sign_es256(tok, n, tok + n + 1, cap - n - 1) < 0)
		abort();
	verify(&own, tok, strlen(tok));
	free(tok);
}

static void b64_roundtrip(const uint8_t *in, size_t len)
{
	size_t cap = len + 4;
	uint8_t *dec = malloc(cap);
	char *enc = malloc(2 * len + 8);
	long n;

	if (!dec || !enc)
		abort();
	n = b64url_decode((const char *)in, len, dec, cap);
	fuzz_check(n == -EINVAL || (n >= 0 && (size_t)n <= len));
	if (n >= 0) {
		long e = b64url_encode(dec, (size_t)n, enc, 2 * len + 8);

		fuzz_check(e >= 0 && (size_t)e == len && memcmp(enc, in, len) == 0);
	}
	free(dec);
	free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *a, *b;
	size_t alen, blen;

	if (size < 1)
		return 0;
	fuzz_split(data + 1, size - 1, &a, &alen, &b, &blen);
	b64_roundtrip(a, alen);
	b64_roundtrip(b, blen);
	if (data[0] & 1) {
		signed_claims(a, alen, b, blen);
	} else {
		struct jwks keys = { NULL, 0 };
		char err[256];

		if (jwks_parse((const char *)a, alen, &keys, err, sizeof(err)) == 0) {
			fuzz_check(keys.n >= 1 && keys.n <= JWKS_MAX_KEYS);
			verify(&keys, (const char *)b, blen);
		} else {
			verify(&own, (const char *)b, blen);
		}
		jwks_release(&keys);
	}
	return 0;
}
