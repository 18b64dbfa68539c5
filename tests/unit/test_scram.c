/* Unit tests for daemon/scram.c: the RFC 7677 test vector, hostile servers, md5. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
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
	assert_true(cache.valid);
	assert_int_equal(cache.iterations, 4096);
	/* a cache hit must give the same proof: poison nothing, just reuse */
	scram_client_first(&c, "user", NONCE, out, sizeof(out));
	assert_true(scram_client_final(&c, "pencil", SERVER_FIRST, strlen(SERVER_FIRST), &cache, out, sizeof(out)) > 0);
	assert_string_equal(out, CLIENT_FINAL);
	/* the cache is what is used: a wrong cached key gives a wrong proof */
	cache.salted[0] ^= 1;
	scram_client_first(&c, "user", NONCE, out, sizeof(out));
	assert_true(scram_client_final(&c, "pencil", SERVER_FIRST, strlen(SERVER_FIRST), &cache, out, sizeof(out)) > 0);
	assert_string_not_equal(out, CLIENT_FINAL);
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
		cmocka_unit_test(test_hostile_server_first),
		cmocka_unit_test(test_server_final_checks),
		cmocka_unit_test(test_user_with_separators_is_sent_empty),
		cmocka_unit_test(test_md5),
	};

	return cmocka_run_group_tests_name("scram", tests, NULL, NULL);
}
