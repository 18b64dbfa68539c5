/*
 * SCRAM-SHA-256 client (RFC 5802 §3 and §5, RFC 7677) and the md5 password method
 * (PostgreSQL docs, "Password Authentication"). Secrets on the stack are wiped
 * before returning.
 */
#include "scram.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int b64_encode(const uint8_t *in, size_t len, char *out, size_t cap)
{
	if (4 * ((len + 2) / 3) + 1 > cap)
		return -ENOSPC;
	return EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

/* Strict base64 decode: length multiple of 4, padding only at the end. */
static int b64_decode(const char *in, size_t len, uint8_t *out, size_t cap)
{
	uint8_t tmp[SCRAM_MAX_MESSAGE];
	int n, pad = 0;

	if (len == 0 || len % 4 || len / 4 * 3 > sizeof(tmp))
		return -EPROTO;
	if (in[len - 1] == '=')
		pad++;
	if (in[len - 2] == '=')
		pad++;
	n = EVP_DecodeBlock(tmp, (const unsigned char *)in, (int)len);
	if (n < 0 || n - pad < 0 || (size_t)(n - pad) > cap)
		return -EPROTO;
	memcpy(out, tmp, (size_t)(n - pad));
	OPENSSL_cleanse(tmp, sizeof(tmp));
	return n - pad;
}

static int hmac(const uint8_t *key, size_t klen, const void *msg, size_t mlen, uint8_t out[SCRAM_KEY_LEN])
{
	unsigned int olen = SCRAM_KEY_LEN;

	return HMAC(EVP_sha256(), key, (int)klen, msg, mlen, out, &olen) ? 0 : -EIO;
}

int scram_client_first(struct scram_client *c, const char *user, const char *nonce,
		       char *out, size_t cap)
{
	uint8_t raw[18];
	int n;

	memset(c, 0, sizeof(*c));
	if (nonce) {
		if (strlen(nonce) > SCRAM_NONCE_LEN || strpbrk(nonce, ","))
			return -EINVAL;
		strcpy(c->nonce, nonce);
	} else {
		if (RAND_bytes(raw, sizeof(raw)) != 1)
			return -EIO;
		b64_encode(raw, sizeof(raw), c->nonce, sizeof(c->nonce));
	}
	/* PostgreSQL takes the user from the startup packet; a name with ',' or '='
	 * would need SASLprep escaping, so such a name is sent empty as libpq does. */
	if (strpbrk(user, ",="))
		user = "";
	n = snprintf(c->client_first_bare, sizeof(c->client_first_bare), "n=%s,r=%s", user, c->nonce);
	if (n < 0 || (size_t)n >= sizeof(c->client_first_bare))
		return -ENAMETOOLONG;
	n = snprintf(out, cap, "n,,%s", c->client_first_bare);
	if (n < 0 || (size_t)n >= cap)
		return -ENOSPC;
	c->state = 1;
	return n;
}

/* Finds "k=" attribute k in a comma-separated message; returns its value and length. */
static const char *attr(const char *msg, size_t len, char k, size_t *ret_len)
{
	const char *p = msg, *end = msg + len;

	while (p < end) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		const char *stop = comma ? comma : end;

		if (stop - p >= 2 && p[0] == k && p[1] == '=') {
			*ret_len = (size_t)(stop - p - 2);
			return p + 2;
		}
		p = stop + 1;
	}
	return NULL;
}

int scram_parse_server_first(const struct scram_client *c, const char *server_first, size_t len,
			     struct scram_challenge *ret)
{
	const char *r, *s, *i;
	size_t rl, sl, il, nl = strlen(c->nonce);
	unsigned long iterations;
	char num[16], *end;
	int salt_len;

	if (c->state != 1 || len >= SCRAM_MAX_MESSAGE || memchr(server_first, 0, len))
		return -EPROTO;
	r = attr(server_first, len, 'r', &rl);
	s = attr(server_first, len, 's', &sl);
	i = attr(server_first, len, 'i', &il);
	/* the server's nonce must extend ours, or this is somebody else's exchange */
	if (!r || !s || !i || rl <= nl || memcmp(r, c->nonce, nl) != 0 || il == 0 || il >= sizeof(num))
		return -EPROTO;
	memcpy(num, i, il);
	num[il] = '\0';
	if (num[0] < '1' || num[0] > '9')
		return -EPROTO;
	errno = 0;
	iterations = strtoul(num, &end, 10);
	if (errno || *end || iterations < SCRAM_MIN_ITERATIONS || iterations > SCRAM_MAX_ITERATIONS)
		return -EPROTO;
	memset(ret, 0, sizeof(*ret));
	salt_len = b64_decode(s, sl, ret->salt, sizeof(ret->salt));
	if (salt_len <= 0)
		return -EPROTO;
	ret->salt_len = (size_t)salt_len;
	ret->iterations = (uint32_t)iterations;
	return 0;
}

int scram_salted_password(const char *password, const struct scram_challenge *ch, uint8_t ret[SCRAM_KEY_LEN])
{
	/* RFC 5802: SaltedPassword := Hi(Normalize(password), salt, i). PostgreSQL falls
	 * back to the raw bytes when SASLprep fails; held passwords are admin-chosen
	 * ASCII in practice, so the raw bytes are used. */
	if (PKCS5_PBKDF2_HMAC(password, (int)strlen(password), ch->salt, (int)ch->salt_len, (int)ch->iterations,
			      EVP_sha256(), SCRAM_KEY_LEN, ret) != 1) {
		OPENSSL_cleanse(ret, SCRAM_KEY_LEN);
		return -EIO;
	}
	return 0;
}

int scram_client_final_salted(struct scram_client *c, const uint8_t salted[SCRAM_KEY_LEN], const char *server_first,
			      size_t len, char *out, size_t cap)
{
	uint8_t client_key[SCRAM_KEY_LEN], stored_key[SCRAM_KEY_LEN], server_key[SCRAM_KEY_LEN], sig[SCRAM_KEY_LEN];
	char without_proof[SCRAM_MAX_MESSAGE], auth[3 * SCRAM_MAX_MESSAGE], proof64[64];
	unsigned int hl = SCRAM_KEY_LEN;
	const char *r;
	size_t rl;
	int n, ret = -EPROTO;

	if (c->state != 1 || len >= SCRAM_MAX_MESSAGE || memchr(server_first, 0, len) ||
	    !(r = attr(server_first, len, 'r', &rl)))
		return -EPROTO;
	n = snprintf(without_proof, sizeof(without_proof), "c=biws,r=%.*s", (int)rl, r);
	if (n < 0 || (size_t)n >= sizeof(without_proof))
		goto out;
	n = snprintf(auth, sizeof(auth), "%s,%.*s,%s", c->client_first_bare, (int)len, server_first,
		     without_proof);
	if (n < 0 || (size_t)n >= sizeof(auth))
		goto out;
	if (hmac(salted, SCRAM_KEY_LEN, "Client Key", 10, client_key) < 0 ||
	    !EVP_Digest(client_key, sizeof(client_key), stored_key, &hl, EVP_sha256(), NULL) ||
	    hmac(stored_key, sizeof(stored_key), auth, (size_t)n, sig) < 0 ||
	    hmac(salted, SCRAM_KEY_LEN, "Server Key", 10, server_key) < 0 ||
	    hmac(server_key, sizeof(server_key), auth, (size_t)n, c->server_signature) < 0) {
		ret = -EIO;
		goto out;
	}
	for (size_t k = 0; k < SCRAM_KEY_LEN; k++)
		client_key[k] ^= sig[k]; /* ClientProof := ClientKey XOR ClientSignature */
	b64_encode(client_key, sizeof(client_key), proof64, sizeof(proof64));
	n = snprintf(out, cap, "%s,p=%s", without_proof, proof64);
	if (n < 0 || (size_t)n >= cap) {
		ret = -ENOSPC;
		goto out;
	}
	c->state = 2;
	ret = n;
out:
	OPENSSL_cleanse(client_key, sizeof(client_key));
	OPENSSL_cleanse(stored_key, sizeof(stored_key));
	OPENSSL_cleanse(server_key, sizeof(server_key));
	OPENSSL_cleanse(sig, sizeof(sig));
	OPENSSL_cleanse(proof64, sizeof(proof64));
	return ret;
}

int scram_client_final(struct scram_client *c, const char *password, const char *server_first,
		       size_t len, struct scram_keycache *cache, char *out, size_t cap)
{
	uint8_t salted[SCRAM_KEY_LEN];
	struct scram_challenge ch;
	int ret;

	if ((ret = scram_parse_server_first(c, server_first, len, &ch)) < 0)
		return ret;
	if (!cache || !scram_keycache_get(cache, &ch, 0, salted)) {
		if ((ret = scram_salted_password(password, &ch, salted)) < 0)
			return ret;
		if (cache)
			scram_keycache_put(cache, &ch, 1, salted);
	}
	ret = scram_client_final_salted(c, salted, server_first, len, out, cap);
	OPENSSL_cleanse(salted, sizeof(salted));
	return ret;
}

static bool challenge_eq(const struct scram_challenge *a, const struct scram_challenge *b)
{
	return a->iterations == b->iterations && a->salt_len == b->salt_len && !memcmp(a->salt, b->salt, a->salt_len);
}

static uint64_t asker_bit(unsigned asker)
{
	return asker < 64 ? 1ull << asker : 0;
}

bool scram_keycache_get(struct scram_keycache *k, const struct scram_challenge *ch, unsigned asker,
			uint8_t ret[SCRAM_KEY_LEN])
{
	for (size_t i = 0; i < SCRAM_KEYCACHE_SLOTS; i++) {
		struct scram_keycache_entry *e = &k->e[i];

		if (e->valid && challenge_eq(&e->ch, ch)) {
			memcpy(ret, e->salted, SCRAM_KEY_LEN);
			e->askers |= asker_bit(asker);
			e->used = ++k->clock;
			return true;
		}
	}
	return false;
}

void scram_keycache_put(struct scram_keycache *k, const struct scram_challenge *ch, uint64_t askers,
			const uint8_t salted[SCRAM_KEY_LEN])
{
	struct scram_keycache_entry *same = NULL, *empty = NULL, *own = NULL, *any = NULL, *e;

	for (size_t i = 0; i < SCRAM_KEYCACHE_SLOTS; i++) {
		e = &k->e[i];
		if (!e->valid) {
			if (!empty)
				empty = e;
			continue;
		}
		if (challenge_eq(&e->ch, ch))
			same = e;
		/* used by these askers alone: theirs to recycle */
		if (!(e->askers & ~askers) && (!own || e->used < own->used))
			own = e;
		if (!any || e->used < any->used)
			any = e;
	}
	e = same ? same : empty ? empty : own ? own : any;
	if (e != same) {
		OPENSSL_cleanse(e, sizeof(*e));
		e->ch = *ch;
	}
	e->valid = true;
	memcpy(e->salted, salted, SCRAM_KEY_LEN);
	e->askers |= askers;
	e->used = ++k->clock;
}

int scram_verify_server_final(struct scram_client *c, const char *server_final, size_t len)
{
	uint8_t sig[SCRAM_KEY_LEN + 4];
	const char *v;
	size_t vl;
	int n;

	if (c->state != 2 || memchr(server_final, 0, len))
		return -EPROTO;
	if (attr(server_final, len, 'e', &vl))
		return -EACCES;
	v = attr(server_final, len, 'v', &vl);
	if (!v)
		return -EPROTO;
	n = b64_decode(v, vl, sig, sizeof(sig));
	if (n != SCRAM_KEY_LEN || CRYPTO_memcmp(sig, c->server_signature, SCRAM_KEY_LEN) != 0)
		return -EACCES;
	c->state = 3;
	return 0;
}

void scram_client_release(struct scram_client *c)
{
	OPENSSL_cleanse(c, sizeof(*c));
}

static void md5_hex(const void *data, size_t len, char out[33])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t d[16];
	unsigned int dl = sizeof(d);

	EVP_Digest(data, len, d, &dl, EVP_md5(), NULL);
	for (int k = 0; k < 16; k++) {
		out[2 * k] = hex[d[k] >> 4];
		out[2 * k + 1] = hex[d[k] & 15];
	}
	out[32] = '\0';
	OPENSSL_cleanse(d, sizeof(d));
}

int scram_md5_response(const char *user, const char *password, const uint8_t salt[4], char out[36])
{
	char buf[1024], inner[33];
	size_t pl = strlen(password), ul = strlen(user);

	if (pl + ul > sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, password, pl);
	memcpy(buf + pl, user, ul);
	md5_hex(buf, pl + ul, inner);
	memcpy(buf, inner, 32);
	memcpy(buf + 32, salt, 4);
	memcpy(out, "md5", 3);
	md5_hex(buf, 36, out + 3);
	OPENSSL_cleanse(buf, sizeof(buf));
	OPENSSL_cleanse(inner, sizeof(inner));
	return 0;
}
