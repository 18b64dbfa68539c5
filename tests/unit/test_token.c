/* Unit tests for daemon/jwks.c and daemon/token.c with keys generated here (RSA 2048,
 * EC P-256 and P-384) and an attack corpus: each attack has its own refusal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <jwt.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "b64url.h"
#include "jwks.h"
#include "token.h"
#include "issuers.h"
#include <sys/stat.h>
#include <unistd.h>

#define ISS "https://token.actions.githubusercontent.com"
#define NOW 1800000000L

static EVP_PKEY *rsa, *p256, *p384;
static char *rsa_priv, *p256_priv, *p384_priv, *rsa_pub_pem;
static struct jwks keys;
static const char *const audiences[] = { "pgtether" };
static struct token_issuer issuer;

static char *pem_of(EVP_PKEY *k, int priv)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *out;
	long n;

	if (priv)
		PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
	else
		PEM_write_bio_PUBKEY(b, k);
	n = BIO_get_mem_data(b, &data);
	out = strndup(data, (size_t)n);
	BIO_free(b);
	return out;
}

static void b64(const uint8_t *in, size_t len, char *out)
{
	b64url_encode(in, len, out, 1024);
}

/* The JWK of a generated key; `bend` flips a bit of the EC y coordinate. */
static void jwk_of(EVP_PKEY *k, const char *kid, int bend, char *out, size_t cap)
{
	char a[1024], b[1024];

	if (EVP_PKEY_is_a(k, "RSA")) {
		BIGNUM *n = NULL, *e = NULL;
		uint8_t nb[512], eb[8];

		EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &n);
		EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_E, &e);
		b64(nb, (size_t)BN_bn2bin(n, nb), a);
		b64(eb, (size_t)BN_bn2bin(e, eb), b);
		snprintf(out, cap, "{\"kty\":\"RSA\",\"kid\":\"%s\",\"use\":\"sig\",\"n\":\"%s\",\"e\":\"%s\"}", kid, a, b);
		BN_free(n);
		BN_free(e);
	} else {
		uint8_t pt[200];
		size_t len = 0, size;
		char grp[32];

		EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, grp, sizeof(grp), NULL);
		EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt), &len);
		size = (len - 1) / 2;
		if (bend)
			pt[1 + size + size - 1] ^= 1;
		b64(pt + 1, size, a);
		b64(pt + 1 + size, size, b);
		snprintf(out, cap, "{\"kty\":\"EC\",\"kid\":\"%s\",\"crv\":\"%s\",\"x\":\"%s\",\"y\":\"%s\"}", kid,
			 size == 32 ? "P-256" : "P-384", a, b);
	}
}

static char *sign(jwt_alg_t alg, const char *key, const char *kid, const char *claims)
{
	jwt_t *jwt = NULL;
	char *tok;

	assert_int_equal(jwt_new(&jwt), 0);
	assert_int_equal(jwt_set_alg(jwt, alg, (const unsigned char *)key, (int)strlen(key)), 0);
	if (kid)
		jwt_add_header(jwt, "kid", kid);
	assert_int_equal(jwt_add_grants_json(jwt, claims), 0);
	tok = jwt_encode_str(jwt);
	jwt_free(jwt);
	assert_non_null(tok);
	return tok;
}

/* header.payload.signature from raw JSON texts and a signature string. */
static char *craft(const char *header, const char *payload, const char *sig)
{
	char h[1024], p[2048], *out = malloc(4096);

	b64((const uint8_t *)header, strlen(header), h);
	b64url_encode((const uint8_t *)payload, strlen(payload), p, sizeof(p));
	snprintf(out, 4096, "%s.%s.%s", h, p, sig);
	return out;
}

static enum token_result verify(const char *tok)
{
	const struct token_issuer *is = NULL;
	json_t *claims = NULL;
	enum token_result r = token_verify(&issuer, 1, tok, strlen(tok), NOW, &claims, &is);

	if (r == TOKEN_OK) {
		assert_ptr_equal(is, &issuer);
		assert_string_equal(json_string_value(json_object_get(claims, "sub")), "repo:acme/api:ref:refs/heads/main");
	} else {
		assert_null(claims);
	}
	json_decref(claims);
	return r;
}

#define GOOD_CLAIMS "{\"iss\":\"" ISS "\",\"aud\":\"pgtether\",\"sub\":\"repo:acme/api:ref:refs/heads/main\",\"exp\":1800000600,\"iat\":1799999990,\"nbf\":1799999990}"

#define GOOD_CLAIMS_EVIL "{\"iss\":\"" ISS "\",\"aud\":\"pgtether\",\"sub\":\"repo:acme/api:ref:refs/heads/evil\",\"exp\":1800000600}"

static int setup(void **state)
{
	char set[8192], j1[2048], j2[1024], j3[1024];
	char err[256];

	(void)state;
	rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	rsa_priv = pem_of(rsa, 1);
	p256_priv = pem_of(p256, 1);
	p384_priv = pem_of(p384, 1);
	rsa_pub_pem = pem_of(rsa, 0);
	jwk_of(rsa, "r1", 0, j1, sizeof(j1));
	jwk_of(p256, "e256", 0, j2, sizeof(j2));
	jwk_of(p384, "e384", 0, j3, sizeof(j3));
	snprintf(set, sizeof(set), "{\"keys\":[%s,%s,%s]}", j1, j2, j3);
	if (jwks_parse(set, strlen(set), &keys, err, sizeof(err)) < 0) {
		fprintf(stderr, "jwks: %s\n", err);
		return -1;
	}
	issuer = (struct token_issuer){ ISS, audiences, 1, TOKEN_RS256 | TOKEN_ES256 | TOKEN_ES384, &keys, 60, 0 };
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	jwks_release(&keys);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(p256);
	EVP_PKEY_free(p384);
	free(rsa_priv);
	free(p256_priv);
	free(p384_priv);
	free(rsa_pub_pem);
	return 0;
}

static void test_valid_tokens(void **state)
{
	char *t;

	(void)state;
	assert_int_equal(keys.n, 3);
	t = sign(JWT_ALG_RS256, rsa_priv, "r1", GOOD_CLAIMS);
	assert_int_equal(verify(t), TOKEN_OK);
	free(t);
	t = sign(JWT_ALG_ES256, p256_priv, "e256", GOOD_CLAIMS);
	assert_int_equal(verify(t), TOKEN_OK);
	free(t);
	t = sign(JWT_ALG_ES384, p384_priv, "e384", GOOD_CLAIMS);
	assert_int_equal(verify(t), TOKEN_OK);
	free(t);
	/* aud as an array that includes ours */
	t = sign(JWT_ALG_RS256, rsa_priv, "r1", "{\"iss\":\"" ISS "\",\"aud\":[\"x\",\"pgtether\"],\"sub\":\"repo:acme/api:ref:refs/heads/main\",\"exp\":1800000600}");
	assert_int_equal(verify(t), TOKEN_OK);
	free(t);
	/* within the leeway on both ends */
	t = sign(JWT_ALG_RS256, rsa_priv, "r1", "{\"iss\":\"" ISS "\",\"aud\":\"pgtether\",\"sub\":\"repo:acme/api:ref:refs/heads/main\",\"exp\":1799999950,\"nbf\":1800000050}");
	assert_int_equal(verify(t), TOKEN_OK);
	free(t);
}

static void test_alg_none_any_case(void **state)
{
	static const char *const names[] = { "none", "None", "NONE", "nOnE" };
	char hdr[128], *t;

	(void)state;
	for (size_t i = 0; i < 4; i++) {
		snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\",\"kid\":\"r1\"}", names[i]);
		t = craft(hdr, GOOD_CLAIMS, "");
		assert_int_equal(verify(t), TOKEN_ALG_NONE);
		free(t);
	}
}

static void test_hs256_with_the_public_key_as_secret(void **state)
{
	char *t;

	(void)state;
	t = sign(JWT_ALG_HS256, rsa_pub_pem, "r1", GOOD_CLAIMS);
	assert_int_equal(verify(t), TOKEN_ALG_NOT_ALLOWED);
	free(t);
}

static void test_claims(void **state)
{
	char *t;

	(void)state;
	t = sign(JWT_ALG_RS256, rsa_priv, "r1", "{\"iss\":\"" ISS "\",\"aud\":\"pgtether\",\"sub\":\"s\",\"exp\":1799999900}");
	assert_int_equal(verify(t), TOKEN_EXPIRED);
	free(t);
	t = sign(JWT_ALG_RS256, rsa_priv, "r1", "{\"iss\":\"" ISS "\",\"aud\":\"pgtether\",\"sub\":\"s\",\"exp\":1800000600,\"nbf\":1800000100}");
	assert_int_equal(verify(t), TOKEN_NOT_YET_VALID);
	free(t);
	t = sign(JWT_ALG_RS256, rsa_priv, "r1", "{\"iss\":\"" ISS "\",\"aud\":\"pgtether\",\"sub\":\"s\",\"exp\":1800000600,\"iat\":1800000500}");
	assert_int_equal(verify(t), TOKEN_ISSUED_IN_FUTURE);
	free(t);
	t = sign(JWT_ALG_RS256, rsa_priv, "r1", "{\"iss\":\"" ISS "\",\"aud\":\"pgtether\",\"sub\":\"s\"}");
	assert_int_equal(verify(t), TOKEN_NO_EXP);
	free(t);
	t = sign(JWT_ALG_RS256, rsa_priv, "r1", "{\"iss\":\"https://evil.example\",\"aud\":\"pgtether\",\"sub\":\"s\",\"exp\":1800000600}");
	assert_int_equal(verify(t), TOKEN_UNKNOWN_ISSUER);
	free(t);
	/* iss must match exactly: a trailing slash is another issuer */
	t = sign(JWT_ALG_RS256, rsa_priv, "r1", "{\"iss\":\"" ISS "/\",\"aud\":\"pgtether\",\"sub\":\"s\",\"exp\":1800000600}");
	assert_int_equal(verify(t), TOKEN_UNKNOWN_ISSUER);
	free(t);
	t = sign(JWT_ALG_RS256, rsa_priv, "r1", "{\"iss\":\"" ISS "\",\"aud\":\"other\",\"sub\":\"s\",\"exp\":1800000600}");
	assert_int_equal(verify(t), TOKEN_WRONG_AUDIENCE);
	free(t);
	t = sign(JWT_ALG_RS256, rsa_priv, "r1", "{\"iss\":\"" ISS "\",\"aud\":[\"a\",\"b\"],\"sub\":\"s\",\"exp\":1800000600}");
	assert_int_equal(verify(t), TOKEN_WRONG_AUDIENCE);
	free(t);
	/* times no clock reaches: not NumericDates (converting 1.7e97 to an integer, or
	 * adding the leeway to the largest one, was undefined; found by fuzz_token) */
	t = sign(JWT_ALG_RS256, rsa_priv, "r1", "{\"iss\":\"" ISS "\",\"aud\":\"pgtether\",\"sub\":\"s\",\"exp\":1.7e97}");
	assert_int_equal(verify(t), TOKEN_NO_EXP);
	free(t);
	t = sign(JWT_ALG_RS256, rsa_priv, "r1", "{\"iss\":\"" ISS "\",\"aud\":\"pgtether\",\"sub\":\"s\",\"exp\":9223372036854775807}");
	assert_int_equal(verify(t), TOKEN_NO_EXP);
	free(t);
	t = sign(JWT_ALG_RS256, rsa_priv, "r1", "{\"iss\":\"" ISS "\",\"aud\":\"pgtether\",\"sub\":\"s\",\"exp\":1800000600,\"nbf\":-1.7e97}");
	assert_int_equal(verify(t), TOKEN_NOT_YET_VALID);
	free(t);
	t = sign(JWT_ALG_RS256, rsa_priv, "r1", "{\"iss\":\"" ISS "\",\"aud\":\"pgtether\",\"sub\":\"repo:acme/api:ref:refs/heads/main\",\"exp\":1800000600.5,\"iat\":1799999990.25}");
	assert_int_equal(verify(t), TOKEN_OK);
	free(t);
}

static void test_keys_and_signatures(void **state)
{
	char *t, *u;
	size_t n;

	(void)state;
	t = sign(JWT_ALG_RS256, rsa_priv, "nobody", GOOD_CLAIMS);
	assert_int_equal(verify(t), TOKEN_UNKNOWN_KID);
	free(t);
	/* an ES256 token naming the RSA key */
	t = sign(JWT_ALG_ES256, p256_priv, "r1", GOOD_CLAIMS);
	assert_int_equal(verify(t), TOKEN_KEY_MISMATCH);
	free(t);
	/* signed by a key that is not the one named */
	t = sign(JWT_ALG_ES256, p256_priv, "e384", GOOD_CLAIMS);
	assert_int_equal(verify(t), TOKEN_KEY_MISMATCH);
	free(t);

	t = sign(JWT_ALG_RS256, rsa_priv, "r1", GOOD_CLAIMS);
	n = strlen(t);
	/* tampered payload: other claims, still well-formed, under the old signature */
	{
		char claims[1024], *dot1 = strchr(t, '.'), *dot2 = strchr(dot1 + 1, '.');

		b64url_encode((const uint8_t *)GOOD_CLAIMS_EVIL, strlen(GOOD_CLAIMS_EVIL), claims, sizeof(claims));
		u = malloc(n + 1024);
		sprintf(u, "%.*s.%s%s", (int)(dot1 - t), t, claims, dot2);
		assert_int_equal(verify(u), TOKEN_BAD_SIGNATURE);
		free(u);
	}
	/* tampered signature */
	u = strdup(t);
	u[n - 5] = u[n - 5] == 'A' ? 'B' : 'A';
	assert_int_equal(verify(u), TOKEN_BAD_SIGNATURE);
	free(u);
	/* truncated */
	u = strndup(t, n - 12);
	assert_int_equal(verify(u), TOKEN_BAD_SIGNATURE);
	free(u);
	u = strndup(t, (size_t)(strchr(t, '.') - t) + 3);
	assert_int_equal(verify(u), TOKEN_MALFORMED);
	free(u);
	free(t);
}

static void test_shape_attacks(void **state)
{
	char *t, *big;

	(void)state;
	t = craft("{\"alg\":\"RS256\",\"kid\":\"r1\",\"crit\":[\"exp\"]}", GOOD_CLAIMS, "AAAA");
	assert_int_equal(verify(t), TOKEN_CRIT);
	free(t);
	t = craft("{\"alg\":\"RS256\",\"kid\":\"r1\",\"typ\":\"JWE\"}", GOOD_CLAIMS, "AAAA");
	assert_int_equal(verify(t), TOKEN_TYP);
	free(t);
	t = craft("{\"alg\":\"RS256\",\"kid\":\"r1\"}", "{\"iss\":\"" ISS "\",\"sub\":\"a\",\"sub\":\"b\",\"exp\":1800000600}", "AAAA");
	assert_int_equal(verify(t), TOKEN_DUPLICATE_KEYS);
	free(t);
	t = craft("{\"alg\":\"RS256\",\"alg\":\"none\"}", GOOD_CLAIMS, "AAAA");
	assert_int_equal(verify(t), TOKEN_DUPLICATE_KEYS);
	free(t);
	t = craft("{\"alg\":\"PS256\",\"kid\":\"r1\"}", GOOD_CLAIMS, "AAAA");
	assert_int_equal(verify(t), TOKEN_ALG_NOT_ALLOWED);
	free(t);
	big = malloc(TOKEN_DEFAULT_MAX_BYTES + 2);
	memset(big, 'A', TOKEN_DEFAULT_MAX_BYTES + 1);
	big[10] = '.';
	big[20] = '.';
	big[TOKEN_DEFAULT_MAX_BYTES + 1] = '\0';
	assert_int_equal(verify(big), TOKEN_TOO_LARGE);
	free(big);
	assert_int_equal(verify("not a token"), TOKEN_MALFORMED);
	assert_int_equal(verify("a.b.c.d"), TOKEN_MALFORMED);
	/* empty JSON objects, a signature outside the alphabet: no issuer, refused */
	assert_int_equal(verify("e30.e30.x+y"), TOKEN_MALFORMED);
}

static void test_jwks_refusals(void **state)
{
	char j[2048], set[4096], err[256];
	struct jwks k;

	(void)state;
	jwk_of(p256, "bent", 1, j, sizeof(j));
	snprintf(set, sizeof(set), "{\"keys\":[%s]}", j);
	assert_int_equal(jwks_parse(set, strlen(set), &k, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "key 'bent': the EC point is not on P-256");

	jwk_of(rsa, "dup", 0, j, sizeof(j));
	snprintf(set, sizeof(set), "{\"keys\":[%s,%s]}", j, j);
	assert_int_equal(jwks_parse(set, strlen(set), &k, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "key 'dup' appears twice: a token could not say which one signed it");

	static const char priv[] = "{\"keys\":[{\"kty\":\"EC\",\"kid\":\"p\",\"crv\":\"P-256\",\"x\":\"AA\",\"y\":\"AA\",\"d\":\"AA\"}]}";
	assert_int_equal(jwks_parse(priv, strlen(priv), &k, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "key 'p' holds private key material: publish public keys only");

	static const char small[] = "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"s\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}";
	assert_int_equal(jwks_parse(small, strlen(small), &k, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "key 's': RSA modulus of 17 bits; at least 2048 are required");

	static const char okp[] = "{\"keys\":[{\"kty\":\"OKP\",\"kid\":\"o\",\"crv\":\"Ed25519\",\"x\":\"AA\"}]}";
	assert_int_equal(jwks_parse(okp, strlen(okp), &k, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "key 'o': key type 'OKP' is not supported (RSA, EC)");
}

static void write_file(const char *dir, const char *name, const char *text, mode_t mode)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	chmod(path, mode);
}

static char issuers_tmp[64];

/* Removes the test's directory even when an assertion failed midway. */
static int remove_issuers_tmp(void **state)
{
	char cmd[128];

	(void)state;
	if (issuers_tmp[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", issuers_tmp);
		if (system(cmd) != 0)
			return -1;
	}
	return 0;
}

static void test_issuers_dir(void **state)
{
	char *dir = issuers_tmp, jwk[2048], set[4096], err[ISSUERS_ERR_LEN], *t;
	const struct token_issuer *is = NULL;
	struct issuers iss;
	json_t *claims = NULL;

	(void)state;
	strcpy(issuers_tmp, "/tmp/pgtether-issuers-XXXXXX");
	assert_non_null(mkdtemp(dir));
	jwk_of(rsa, "r1", 0, jwk, sizeof(jwk));
	snprintf(set, sizeof(set), "{\"keys\":[%s]}", jwk);
	write_file(dir, "github.jwks.json", set, 0644);
	write_file(dir, "10-github.json",
		   "{ \"issuer\": \"" ISS "\", \"audiences\": [\"pgtether\"],\n"
		   "  \"algorithms\": [\"RS256\"], \"jwks_file\": \"github.jwks.json\", \"leeway\": 30 }\n", 0644);
	write_file(dir, ".hidden.json", "garbage", 0644);
	write_file(dir, "20-old.json~", "garbage", 0644);
	if (issuers_load_dir(dir, &iss, err) != 0)
		fail_msg("%s", err);
	assert_int_equal(iss.n, 1);
	assert_int_equal(iss.v[0].leeway, 30);
	t = sign(JWT_ALG_RS256, rsa_priv, "r1", GOOD_CLAIMS);
	assert_int_equal(token_verify(iss.v, iss.n, t, strlen(t), NOW, &claims, &is), TOKEN_OK);
	assert_ptr_equal(is, &iss.v[0]);
	json_decref(claims);
	free(t);
	/* ES256 is not among this issuer's algorithms */
	t = sign(JWT_ALG_ES256, p256_priv, "r1", GOOD_CLAIMS);
	claims = NULL;
	assert_int_equal(token_verify(iss.v, iss.n, t, strlen(t), NOW, &claims, &is), TOKEN_ALG_NOT_ALLOWED);
	free(t);
	issuers_release(&iss);

	/* errors name the file, line and column */
	write_file(dir, "30-bad.json", "{ \"issuer\": \"https://x\",\n  \"algorithms\": [\"HS256\"] }", 0644);
	assert_int_equal(issuers_load_dir(dir, &iss, err), -EINVAL);
	assert_non_null(strstr(err, "30-bad.json:1:1: \"audiences\" must list 1 to 16 accepted \"aud\" values"));
	write_file(dir, "30-bad.json", "{ \"issuer\": \"https://x\", \"audiences\": [\"a\"],\n  \"algorithms\": [\"HS256\"], \"jwks_file\": \"github.jwks.json\" }", 0644);
	assert_int_equal(issuers_load_dir(dir, &iss, err), -EINVAL);
	assert_non_null(strstr(err, "30-bad.json:2:18: algorithm HS256 is not allowed"));
	write_file(dir, "30-bad.json", "{ \"issuer\": \"" ISS "\", \"audiences\": [\"a\"], \"algorithms\": [\"RS256\"], \"jwks_file\": \"github.jwks.json\" }", 0644);
	assert_int_equal(issuers_load_dir(dir, &iss, err), -EINVAL);
	assert_non_null(strstr(err, "issuer '" ISS "' is defined twice"));
	write_file(dir, "30-bad.json", "{ \"isuer\": 1 }", 0644);
	assert_int_equal(issuers_load_dir(dir, &iss, err), -EINVAL);
	assert_non_null(strstr(err, "30-bad.json:1:3: unknown key 'isuer'"));
	/* a key set anyone may write is a key set anyone may extend */
	unlink(strcat(strcpy(set, dir), "/30-bad.json"));
	chmod(strcat(strcpy(set, dir), "/github.jwks.json"), 0666);
	assert_int_equal(issuers_load_dir(dir, &iss, err), -EPERM);
	assert_non_null(strstr(err, "writable by group or others"));

	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	/* no directory: no issuers */
	assert_int_equal(issuers_load_dir(dir, &iss, err), 0);
	assert_int_equal(iss.n, 0);
	issuers_release(&iss);
}

/* One issuer file's text with its key set's text, from memory (the fuzzer's entry). */
static void test_issuers_parse(void **state)
{
	static const char text[] = "{ \"issuer\": \"" ISS "\", \"audiences\": [\"pgtether\", \"other\"],\n"
				   "  \"algorithms\": [\"RS256\"], \"jwks_file\": \"unused.jwks.json\" }";
	char jwk[2048], set[4096], err[ISSUERS_ERR_LEN], *t;
	const struct token_issuer *is = NULL;
	struct issuers iss;
	json_t *claims = NULL;

	(void)state;
	jwk_of(rsa, "r1", 0, jwk, sizeof(jwk));
	snprintf(set, sizeof(set), "{\"keys\":[%s]}", jwk);
	if (issuers_parse("mem.json", text, strlen(text), set, strlen(set), &iss, err) != 0)
		fail_msg("%s", err);
	assert_int_equal(iss.n, 1);
	assert_int_equal(iss.v[0].n_audiences, 2);
	t = sign(JWT_ALG_RS256, rsa_priv, "r1", GOOD_CLAIMS);
	assert_int_equal(token_verify(iss.v, iss.n, t, strlen(t), NOW, &claims, &is), TOKEN_OK);
	json_decref(claims);
	free(t);
	issuers_release(&iss);
	/* a bad key set or a bad file is an error with its place */
	assert_int_equal(issuers_parse("mem.json", text, strlen(text), "{}", 2, &iss, err), -EINVAL);
	assert_int_equal(issuers_parse("mem.json", "{\"issuer\": 1}", 13, set, strlen(set), &iss, err), -EINVAL);
	assert_non_null(strstr(err, "mem.json:1:"));
}

static void test_b64url(void **state)
{
	uint8_t out[16];
	char enc[32];

	(void)state;
	assert_int_equal(b64url_decode("AQAB", 4, out, sizeof(out)), 3);
	assert_memory_equal(out, "\x01\x00\x01", 3);
	assert_int_equal(b64url_decode("AQA", 3, out, sizeof(out)), 2);
	assert_int_equal(b64url_decode("AQ=", 3, out, sizeof(out)), -EINVAL); /* no padding */
	assert_int_equal(b64url_decode("A+B/", 4, out, sizeof(out)), -EINVAL); /* not url-safe */
	assert_int_equal(b64url_decode("AR", 2, out, sizeof(out)), -EINVAL); /* non-zero tail bits */
	assert_int_equal(b64url_decode("A", 1, out, sizeof(out)), -EINVAL);
	assert_int_equal(b64url_encode((const uint8_t *)"\xfb\xff", 2, enc, sizeof(enc)), 3);
	assert_string_equal(enc, "-_8");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_tokens),
		cmocka_unit_test(test_alg_none_any_case),
		cmocka_unit_test(test_hs256_with_the_public_key_as_secret),
		cmocka_unit_test(test_claims),
		cmocka_unit_test(test_keys_and_signatures),
		cmocka_unit_test(test_shape_attacks),
		cmocka_unit_test(test_jwks_refusals),
		cmocka_unit_test_teardown(test_issuers_dir, remove_issuers_tmp),
		cmocka_unit_test(test_issuers_parse),
		cmocka_unit_test(test_b64url),
	};

	return cmocka_run_group_tests_name("token", tests, setup, teardown);
}
