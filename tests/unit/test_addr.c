/* Unit tests for daemon/addr.c: listener, target and peer address forms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "addr.h"

static void test_parse_v4_and_v6(void **state)
{
	struct addr a;
	char buf[ADDR_STRLEN];

	(void)state;
	assert_int_equal(addr_parse("127.0.0.1:6432", &a), 0);
	assert_true(addr_is_v4(a.ip));
	assert_int_equal(a.port, 6432);
	assert_string_equal(addr_format(&a, buf), "127.0.0.1:6432");

	assert_int_equal(addr_parse("[::1]:5432", &a), 0);
	assert_false(addr_is_v4(a.ip));
	assert_string_equal(addr_format(&a, buf), "[::1]:5432");

	/* an IPv4-mapped IPv6 literal is IPv4 in this representation */
	assert_int_equal(addr_parse("[::ffff:127.0.0.2]:5432", &a), 0);
	assert_true(addr_is_v4(a.ip));
	assert_string_equal(addr_format(&a, buf), "127.0.0.2:5432");
}

static void test_parse_rejects(void **state)
{
	static const char *const bad[] = {
		"127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:54x",
		"::1:5432", "[::1]5432", "[::1", "localhost:5432", ":5432", "127.0.0.256:1",
		"[127.0.0.1:5432", "127.0.0.1:-1",
	};
	struct addr a;

	(void)state;
	memset(&a, 0xaa, sizeof(a));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct addr before = a;

		assert_int_equal(addr_parse(bad[i], &a), -EINVAL);
		assert_memory_equal(&a, &before, sizeof(a)); /* untouched on failure */
	}
}

static void test_targets(void **state)
{
	struct addr_target t;
	char buf[ADDR_STRLEN];

	(void)state;
	assert_int_equal(addr_parse_target("*:5432", &t), 0);
	assert_int_equal(t.prefix, 0);
	assert_int_equal(t.port, 5432);
	assert_string_equal(addr_format_target(&t, buf), "*:5432");

	assert_int_equal(addr_parse_target("127.0.0.2:5432", &t), 0);
	assert_int_equal(t.prefix, 128);
	assert_string_equal(addr_format_target(&t, buf), "127.0.0.2:5432");

	assert_int_equal(addr_parse_target("127.0.0.0/8:5433", &t), 0);
	assert_int_equal(t.prefix, 96 + 8);
	assert_int_equal(t.port, 5433);
	assert_string_equal(addr_format_target(&t, buf), "127.0.0.0/8:5433");

	assert_int_equal(addr_parse_target("[::1]:5432", &t), 0);
	assert_int_equal(t.prefix, 128);
	assert_string_equal(addr_format_target(&t, buf), "[::1]:5432");

	assert_int_equal(addr_parse_target("[::/0]:5432", &t), 0);
	assert_int_equal(t.prefix, 0);
}

static void test_targets_reject(void **state)
{
	static const char *const bad[] = {
		"*:0", "*:", "*", "127.0.0.1/8:5432" /* host bits */, "127.0.0.0/33:5432",
		"[::1/129]:5432", "127.0.0.0/:5432", "127.0.0.0/x:5432", "db.example:5432",
	};
	struct addr_target t;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(addr_parse_target(bad[i], &t), -EINVAL);
}

static void test_sockaddr_round_trip(void **state)
{
	struct sockaddr_storage ss;
	struct addr a, b;

	(void)state;
	assert_int_equal(addr_parse("127.0.0.3:7000", &a), 0);
	assert_int_equal(addr_to_sockaddr(&a, &ss), sizeof(struct sockaddr_in));
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(addr_from_sockaddr((struct sockaddr *)&ss, &b), 0);
	assert_memory_equal(&a, &b, sizeof(a));

	assert_int_equal(addr_parse("[::1]:7001", &a), 0);
	assert_int_equal(addr_to_sockaddr(&a, &ss), sizeof(struct sockaddr_in6));
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_int_equal(addr_from_sockaddr((struct sockaddr *)&ss, &b), 0);
	assert_memory_equal(&a, &b, sizeof(a));

	ss.ss_family = AF_UNIX;
	assert_int_equal(addr_from_sockaddr((struct sockaddr *)&ss, &b), -EAFNOSUPPORT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_v4_and_v6),
		cmocka_unit_test(test_parse_rejects),
		cmocka_unit_test(test_targets),
		cmocka_unit_test(test_targets_reject),
		cmocka_unit_test(test_sockaddr_round_trip),
	};

	return cmocka_run_group_tests_name("addr", tests, NULL, NULL);
}
