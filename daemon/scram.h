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
/* A hostile server, or a worker taken over, must not pin a core for long: 10^6 is
 * some 0.6 s (PostgreSQL's default is 4096). The parent computes PBKDF2 on its proof
 * thread (scrampool.h), one worker's at a time, so this bounds how long one asker
 * holds it, and so what another worker's proof may wait behind (5 s at most,
 * PRIV_CALL_TIMEOUT_MS). */
#define SCRAM_MAX_ITERATIONS 1000000u
/* ... nor get a cheap proof: a worker taken over could ask the parent for one with a
 * salt of its choice and one iteration, and guess the password offline from the
 * server signature that comes back. PostgreSQL 15 always uses 4096 (16's
 * scram_iterations may be set lower: such a server is refused with a clear error). */
#define SCRAM_MIN_ITERATIONS 4096u
#define SCRAM_NONCE_LEN 24              /* base64 of 18 random bytes */
#define SCRAM_MAX_MESSAGE 1024

/* What server-first-message asks for: the salted password depends on these alone. */
struct scram_challenge {
	uint8_t salt[SCRAM_MAX_SALT];
	size_t salt_len;
	uint32_t iterations;
};

/*
 * Salted passwords of one credential, for a few (salt, iterations). Several, not one:
 * a worker taken over can name any salt (it relays server-first), and with a single
 * entry alternating two salts would evict the real server's key on every call, making
 * every legitimate login pay PBKDF2 again. Which entry goes on a miss is chosen so
 * that one asker cannot evict what others use (scram_keycache_put). askers is a bit
 * set of small integers the caller assigns (the parent: worker indexes).
 */
#define SCRAM_KEYCACHE_SLOTS 4
struct scram_keycache {
	struct scram_keycache_entry {
		bool valid;
		struct scram_challenge ch;
		uint8_t salted[SCRAM_KEY_LEN];
		uint64_t askers;        /* bit i: asker i used this entry */
		uint64_t used;          /* clock at the last use (least recently used goes) */
	} e[SCRAM_KEYCACHE_SLOTS];
	uint64_t clock;
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
 * cache may be NULL; when it holds salt and iterations PBKDF2 is skipped, and on a
 * miss it is refilled (as asker 0). Returns the length, -EPROTO for a malformed or
 * hostile server message (nonce not ours, iteration count out of
 * SCRAM_MIN..MAX_ITERATIONS, salt too long), or another negative errno.
 * It is scram_parse_server_first, scram_salted_password and scram_client_final_salted
 * in one: the parent runs the middle one on its proof thread (scrampool.h).
 */
int scram_client_final(struct scram_client *c, const char *password, const char *server_first,
		       size_t len, struct scram_keycache *cache, char *out, size_t cap);

/* The checks of scram_client_final on server-first (c in state 1): 0 and *ret, or
 * -EPROTO. Cheap. */
int scram_parse_server_first(const struct scram_client *c, const char *server_first, size_t len,
			     struct scram_challenge *ret);

/* RFC 5802 Hi(password, salt, i): PBKDF2-HMAC-SHA-256, the one expensive step (up to
 * SCRAM_MAX_ITERATIONS, ~0.6 s). Touches nothing but its arguments: safe on any
 * thread. 0 or -EIO. */
int scram_salted_password(const char *password, const struct scram_challenge *ch, uint8_t ret[SCRAM_KEY_LEN]);

/* client-final-message from the salted password for server_first (which must pass
 * scram_parse_server_first); keeps the server signature to expect in c. Cheap (four
 * HMACs and a hash). Returns the length or a negative errno. */
int scram_client_final_salted(struct scram_client *c, const uint8_t salted[SCRAM_KEY_LEN], const char *server_first,
			      size_t len, char *out, size_t cap);

/* The salted password for ch, when cached: true and *ret filled; asker is added to
 * the entry's askers. */
bool scram_keycache_get(struct scram_keycache *k, const struct scram_challenge *ch, unsigned asker,
			uint8_t ret[SCRAM_KEY_LEN]);

/*
 * Keeps salted for ch, asked for by askers (a bit set). The entry replaced is, in this
 * order: ch's own, an empty one, the least recently used of those only these askers
 * ever used, the least recently used of all. So an asker that flips salts recycles
 * its own entry and, at most once, evicts an entry of others; an entry another asker
 * also used survives any number of its misses.
 */
void scram_keycache_put(struct scram_keycache *k, const struct scram_challenge *ch, uint64_t askers,
			const uint8_t salted[SCRAM_KEY_LEN]);

/* Checks server-final-message ("v=SIGNATURE"); constant-time comparison. 0,
 * -EACCES when the server could not prove it knows the password (or sent "e=..."),
 * -EPROTO when malformed. */
int scram_verify_server_final(struct scram_client *c, const char *server_final, size_t len);

/* Wipes the client's secrets. */
void scram_client_release(struct scram_client *c);

/* md5 method: "md5" + hex(md5(hex(md5(password + user)) + salt)), 35 chars + NUL. */
int scram_md5_response(const char *user, const char *password, const uint8_t salt[4], char out[36]);

#endif
