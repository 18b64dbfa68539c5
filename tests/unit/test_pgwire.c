/* Unit tests for daemon/pgwire.c: startup-phase framing and ErrorResponse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "pgwire.h"

static size_t put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
	return 4;
}

static void test_ssl_and_gss(void **state)
{
	uint8_t b[8];
	size_t n = 0;

	(void)state;
	put32(b, 8);
	put32(b + 4, PGWIRE_SSL_REQUEST_CODE);
	assert_int_equal(pgwire_startup_classify(b, 8, &n), PGWIRE_STARTUP_SSL);
	assert_int_equal(n, 8);
	put32(b + 4, PGWIRE_GSSENC_REQUEST_CODE);
	assert_int_equal(pgwire_startup_classify(b, 8, &n), PGWIRE_STARTUP_GSSENC);
	/* partial reads */
	for (size_t i = 0; i < 8; i++)
		assert_int_equal(pgwire_startup_classify(b, i, &n), PGWIRE_STARTUP_INCOMPLETE);
	/* an SSLRequest with a wrong length is not one */
	put32(b, 12);
	assert_int_equal(pgwire_startup_classify(b, 8, &n), PGWIRE_STARTUP_INVALID);
}

static void test_startup_message(void **state)
{
	uint8_t b[64];
	size_t len = 0, n = 0;
	static const char params[] = "user\0alice\0database\0app\0";

	(void)state;
	len += put32(b + len, 0); /* patched below */
	len += put32(b + len, PGWIRE_PROTOCOL_3_0);
	memcpy(b + len, params, sizeof(params));
	len += sizeof(params); /* includes the final NUL terminator of the list */
	put32(b, (uint32_t)len);
	assert_int_equal(pgwire_startup_classify(b, len, &n), PGWIRE_STARTUP_MESSAGE);
	assert_int_equal(n, len);
	assert_int_equal(pgwire_startup_classify(b, len - 1, &n), PGWIRE_STARTUP_INCOMPLETE);
	/* bytes after the packet (pipelined) do not change the answer */
	assert_int_equal(pgwire_startup_classify(b, sizeof(b), &n), PGWIRE_STARTUP_MESSAGE);
	assert_int_equal(n, len);
	/* protocol 2.0 is gone since PostgreSQL 14 */
	put32(b + 4, 2u << 16);
	assert_int_equal(pgwire_startup_classify(b, len, &n), PGWIRE_STARTUP_INVALID);
}

static void test_length_bounds(void **state)
{
	uint8_t b[8];
	size_t n = 0;

	(void)state;
	put32(b, 7);
	assert_int_equal(pgwire_startup_classify(b, 4, &n), PGWIRE_STARTUP_INVALID);
	/* a huge length is refused from the first four bytes, before any wait */
	put32(b, 0x7fffffff);
	assert_int_equal(pgwire_startup_classify(b, 4, &n), PGWIRE_STARTUP_INVALID);
	put32(b, PGWIRE_STARTUP_MAX + 1);
	assert_int_equal(pgwire_startup_classify(b, 4, &n), PGWIRE_STARTUP_INVALID);
	put32(b, 16);
	put32(b + 4, PGWIRE_CANCEL_REQUEST_CODE);
	assert_int_equal(pgwire_startup_classify(b, 8, &n), PGWIRE_STARTUP_INCOMPLETE);
	put32(b, 12);
	assert_int_equal(pgwire_startup_classify(b, 8, &n), PGWIRE_STARTUP_INVALID);
}

static void test_error_response(void **state)
{
	uint8_t out[256];
	size_t n;

	(void)state;
	n = pgwire_error_response(out, sizeof(out), "FATAL", "08004", "not redirected", "connect directly");
	static const char body[] = "SFATAL\0VFATAL\0C08004\0Mnot redirected\0Hconnect directly\0";
	assert_int_equal(n, 1 + 4 + sizeof(body)); /* sizeof includes the final terminator */
	assert_int_equal(out[0], 'E');
	assert_int_equal((out[1] << 24 | out[2] << 16 | out[3] << 8 | out[4]), n - 1);
	assert_memory_equal(out + 5, body, sizeof(body));

	/* a message longer than the buffer is cut, and the result is still well formed */
	char longmsg[400];
	memset(longmsg, 'x', sizeof(longmsg) - 1);
	longmsg[sizeof(longmsg) - 1] = '\0';
	n = pgwire_error_response(out, 64, "FATAL", "08004", longmsg, NULL);
	assert_true(n > 0 && n <= 64);
	assert_int_equal(out[n - 1], 0);
	assert_int_equal(out[n - 2], 0);
	assert_int_equal((out[1] << 24 | out[2] << 16 | out[3] << 8 | out[4]), n - 1);

	assert_int_equal(pgwire_error_response(out, 10, "FATAL", "08004", "m", NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ssl_and_gss),
		cmocka_unit_test(test_startup_message),
		cmocka_unit_test(test_length_bounds),
		cmocka_unit_test(test_error_response),
	};

	return cmocka_run_group_tests_name("pgwire", tests, NULL, NULL);
}
