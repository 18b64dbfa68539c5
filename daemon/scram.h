/*
 * The client side of the logins pgtetherd performs upstream with a credential it
 * holds: SCRAM-SHA-256 (RFC 5802 with the SHA-256 hash of RFC 7677, as PostgreSQL
 * uses it: no channel binding, "n,," GS2 header) and PostgreSQL's older md5 method.
 * Pure: messages in, messages out; OpenSSL does PBKDF2, HMAC and SHA-256.
 *
 * PBKDF2 with PostgreSQL's default 4096 iterations costs milliseconds; the salted
 * password depends only on (password, salt, iterations), so a scram_keycache kept
 * per credential lets every later login skip it.
 */
#ifndef PGTETHER_SCRAM_H
#define PGTETHER_SCRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SCRAM_KEY_LEN 32
#define SCRAM_MAX_SALT 64
/* A hostile server, or a worker taken over (the parent computes proofs in its loop,
 * monitor_login.c), must not pin a core: 10^6 is some 0.6 s, far inside the 5 s
 * that every other worker's call may wait (PostgreSQL's default is 4096). */
#define SCRAM_MAX_ITERATIONS 1000000u
/* ... nor get a cheap proof: a worker taken over could ask the parent for one with a
 * salt of its choice and one iteration, and guess the password offline from the
 * server signature that comes back. PostgreSQL 15 always uses 4096 (16's
 * scram_iterations may be set lower: such a server is refused with a clear error). */
#define SCRAM_MIN_ITERATIONS 4096u
#define SCRAM_NONCE_LEN 24              /* base64 of 18 random bytes */
#define SCRAM_MAX_MESSAGE 1024

/* Salted password for one (salt, iterations); valid says whether it holds one. */
struct scram_keycache {
	bool valid;
	uint8_t salt[SCRAM_MAX_SALT];
	size_t salt_len;
	uint32_t iterations;
	uint8_t salted[SCRAM_KEY_LEN];
};

struct scram_client {
	char client_first_bare[SCRAM_MAX_MESSAGE];
	char nonce[SCRAM_NONCE_LEN + 1];
	uint8_t server_signature[SCRAM_KEY_LEN];
	int state;              /* 0 new, 1 first sent, 2 final sent, 3 verified */
};

/*
 * Builds client-first-message ("n,,n=USER,r=NONCE") into out (cap bytes, NUL
 * terminated). nonce NULL draws a fresh one from the OpenSSL RNG (tests pass the RFC
 * vector's). Returns its length or a negative errno.
 */
int scram_client_first(struct scram_client *c, const char *user, const char *nonce,
		       char *out, size_t cap);

/*
 * Consumes server-first-message (r=, s=, i=), checks that the server nonce extends
 * ours, and builds client-final-message with the proof for password into out.
 * cache may be NULL; when it matches salt and iterations PBKDF2 is skipped, and on a
 * miss it is refilled. Returns the length, -EPROTO for a malformed or hostile server
 * message (nonce not ours, iteration count out of SCRAM_MIN..MAX_ITERATIONS, salt too
 * long), or another negative errno.
 */
int scram_client_final(struct scram_client *c, const char *password, const char *server_first,
		       size_t len, struct scram_keycache *cache, char *out, size_t cap);

/* Checks server-final-message ("v=SIGNATURE"); constant-time comparison. 0,
 * -EACCES when the server could not prove it knows the password (or sent "e=..."),
 * -EPROTO when malformed. */
int scram_verify_server_final(struct scram_client *c, const char *server_final, size_t len);

/* Wipes the client's secrets. */
void scram_client_release(struct scram_client *c);

/* md5 method: "md5" + hex(md5(hex(md5(password + user)) + salt)), 35 chars + NUL. */
int scram_md5_response(const char *user, const char *password, const uint8_t salt[4], char out[36]);

#endif
