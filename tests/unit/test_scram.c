/* Unit tests for daemon/scram.c: the RFC 7677 test vector, hostile servers, md5. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "scram.h"

/* RFC 7677 §3 */
#define NONCE "rOprNGfwEbeRWgbNEkqO"
#define SERVER_FIRST "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
#define CLIENT_FINAL "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define SERVER_FINAL "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

static void test_rfc7677_vector(void **state)
{
	struct scram_client c;
	char out[SCRAM_MAX_MESSAGE];

	(void)state;
	assert_int_equal(scram_client_first(&c, "user", NONCE, out, sizeof(out)), strlen("n,,n=user,r=" NONCE));
	assert_string_equal(out, "n,,n=user,r=" NONCE);
	assert_int_equal(scram_client_final(&c, "pencil", SERVER_FIRST, strlen(SERVER_FIRST), NULL, out, sizeof(out)),
			 strlen(CLIENT_FINAL));
	assert_string_equal(out, CLIENT_FINAL);
	assert_int_equal(scram_verify_server_final(&c, SERVER_FINAL, strlen(SERVER_FINAL)), 0);
	scram_client_release(&c);
}

static void test_keycache(void **state)
{
	struct scram_keycache cache = { 0 };
	struct scram_client c;
	char out[SCRAM_MAX_MESSAGE];

	(void)state;
	scram_client_first(&c, "user", NONCE, out, sizeof(out));
	assert_true(scram_client_final(&c, "pencil", SERVER_FIRST, strlen(SERVER_FIRST), &cache, out, sizeof(out)) > 0);
	assert_true(cache.e[0].valid);
	assert_int_equal(cache.e[0].ch.iterations, 4096);
	/* a cache hit must give the same proof: poison nothing, just reuse */
	scram_client_first(&c, "user", NONCE, out, sizeof(out));
	assert_true(scram_client_final(&c, "pencil", SERVER_FIRST, strlen(SERVER_FIRST), &cache, out, sizeof(out)) > 0);
	assert_string_equal(out, CLIENT_FINAL);
	/* the cache is what is used: a wrong cached key gives a wrong proof */
	cache.e[0].salted[0] ^= 1;
	scram_client_first(&c, "user", NONCE, out, sizeof(out));
	assert_true(scram_client_final(&c, "pencil", SERVER_FIRST, strlen(SERVER_FIRST), &cache, out, sizeof(out)) > 0);
	assert_string_not_equal(out, CLIENT_FINAL);
}

/* A worker taken over relays server-first, so it names any salt it likes: flipping
 * salts must not evict the real server's key, or every legitimate login pays PBKDF2
 * again (the cache held one entry: it did). */
static void test_keycache_flipping_salts(void **state)
{
	struct scram_keycache k;
	struct scram_challenge real, other;
	uint8_t key[SCRAM_KEY_LEN], got[SCRAM_KEY_LEN];

	(void)state;
	memset(&k, 0, sizeof(k));
	memset(&real, 0, sizeof(real));
	memcpy(real.salt, "real-salt", 9);
	real.salt_len = 9;
	real.iterations = 4096;
	memset(key, 0xab, sizeof(key));
	/* worker 1 logs in to the real server */
	scram_keycache_put(&k, &real, 1u << 1, key);
	assert_true(scram_keycache_get(&k, &real, 1, got));
	/* worker 0, taken over, asks for 1000 salts of its own, in turn */
	for (unsigned i = 0; i < 1000; i++) {
		uint8_t junk[SCRAM_KEY_LEN];

		memset(&other, 0, sizeof(other));
		other.salt_len = (size_t)snprintf((char *)other.salt, sizeof(other.salt), "flip-%u", i % 7);
		other.iterations = 1000000;
		if (!scram_keycache_get(&k, &other, 0, junk)) {
			memset(junk, (int)i, sizeof(junk));
			scram_keycache_put(&k, &other, 1u << 0, junk);
		}
		/* and hits the real salt too: that does not make it its own */
		if (i % 3 == 0)
			assert_true(scram_keycache_get(&k, &real, 0, junk));
	}
	memset(got, 0, sizeof(got));
	assert_true(scram_keycache_get(&k, &real, 1, got));
	assert_memory_equal(got, key, sizeof(key));
	/* the salts of one asker alone recycle each other: at most all slots but the real one */
	{
		unsigned flips = 0;

		for (unsigned i = 0; i < SCRAM_KEYCACHE_SLOTS; i++)
			flips += k.e[i].valid && k.e[i].askers == 1u;
		assert_int_equal(flips, SCRAM_KEYCACHE_SLOTS - 1);
	}
	/* full of others' entries: a newcomer evicts the least recently used one once,
	 * then recycles its own */
	memset(&k, 0, sizeof(k));
	for (unsigned i = 0; i < SCRAM_KEYCACHE_SLOTS; i++) {
		memset(&other, 0, sizeof(other));
		other.salt_len = (size_t)snprintf((char *)other.salt, sizeof(other.salt), "w-%u", i);
		other.iterations = 4096;
		scram_keycache_put(&k, &other, 1ull << i, key);
	}
	for (unsigned i = 0; i < 10; i++) {
		memset(&other, 0, sizeof(other));
		other.salt_len = (size_t)snprintf((char *)other.salt, sizeof(other.salt), "new-%u", i);
		other.iterations = 4096;
		scram_keycache_put(&k, &other, 1ull << 9, key);
	}
	for (unsigned i = 0; i < SCRAM_KEYCACHE_SLOTS; i++) {
		memset(&other, 0, sizeof(other));
		other.salt_len = (size_t)snprintf((char *)other.salt, sizeof(other.salt), "w-%u", i);
		other.iterations = 4096;
		assert_int_equal(scram_keycache_get(&k, &other, i, got), i != 0);
	}
}

static void test_hostile_server_first(void **state)
{
	static const char *const bad[] = {
		"r=someoneelse%abc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",      /* not our nonce */
		"r=" NONCE ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",             /* nonce not extended */
		"r=" NONCE "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0",
		"r=" NONCE "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=1",               /* a cheap proof to guess from */
		"r=" NONCE "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4095",
		"r=" NONCE "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4294967296",
		"r=" NONCE "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=99999999",        /* would pin a core */
		"r=" NONCE "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=-1",
		"r=" NONCE "x,s=***,i=4096",
		"r=" NONCE "x,i=4096",
		"r=" NONCE "x,s=W22ZaJ0SNY7soEsUEjb6gQ==",
	};
	struct scram_client c;
	char out[SCRAM_MAX_MESSAGE];

	(void)state;
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		scram_client_first(&c, "user", NONCE, out, sizeof(out));
		assert_int_equal(scram_client_final(&c, "pencil", bad[k], strlen(bad[k]), NULL, out, sizeof(out)), -EPROTO);
	}
}

static void test_server_final_checks(void **state)
{
	struct scram_client c;
	char out[SCRAM_MAX_MESSAGE];

	(void)state;
	scram_client_first(&c, "user", NONCE, out, sizeof(out));
	scram_client_final(&c, "pencil", SERVER_FIRST, strlen(SERVER_FIRST), NULL, out, sizeof(out));
	/* a server that does not know the password cannot produce the signature */
	assert_int_equal(scram_verify_server_final(&c, "v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", 46), -EACCES);
	assert_int_equal(scram_verify_server_final(&c, "e=invalid-proof", 15), -EACCES);
	assert_int_equal(scram_verify_server_final(&c, "x=1", 3), -EPROTO);
	/* out of order */
	scram_client_first(&c, "user", NONCE, out, sizeof(out));
	assert_int_equal(scram_verify_server_final(&c, SERVER_FINAL, strlen(SERVER_FINAL)), -EPROTO);
}

static void test_user_with_separators_is_sent_empty(void **state)
{
	struct scram_client c;
	char out[SCRAM_MAX_MESSAGE];

	(void)state;
	scram_client_first(&c, "a,b=c", NONCE, out, sizeof(out));
	assert_string_equal(out, "n,,n=,r=" NONCE);
	/* and a random nonce is 24 base64 characters */
	scram_client_first(&c, "u", NULL, out, sizeof(out));
	assert_int_equal(strlen(out), strlen("n,,n=u,r=") + SCRAM_NONCE_LEN);
}

static void test_md5(void **state)
{
	const uint8_t salt[4] = { 1, 2, 3, 4 };
	char out[36];

	(void)state;
	assert_int_equal(scram_md5_response("alice", "secret", salt, out), 0);
	/* computed independently: md5(md5hex("secret" "alice") . "\x01\x02\x03\x04") */
	assert_string_equal(out, "md598a0412b9c31436fc53776e863350083");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc7677_vector),
		cmocka_unit_test(test_keycache),
		cmocka_unit_test(test_keycache_flipping_salts),
		cmocka_unit_test(test_hostile_server_first),
		cmocka_unit_test(test_server_final_checks),
		cmocka_unit_test(test_user_with_separators_is_sent_empty),
		cmocka_unit_test(test_md5),
	};

	return cmocka_run_group_tests_name("scram", tests, NULL, NULL);
}
