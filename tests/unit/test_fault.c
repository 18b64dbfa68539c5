/* Unit tests for daemon/fault.c: the table of the ways a relaying session ends. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <ctype.h>
#include <errno.h>
#include <string.h>

#include "fault.h"

static const struct fault_facts facts = {
	.detail = "upstream error: Connection reset by peer", .rule = "ci-api", .client_encoding = "LATIN1",
	.max_message_bytes = 12345, .mask_refresh = 7, .memory_budget = 1048576,
};

/* Every fault says something a client can act on, with a real SQLSTATE, and a reason. */
static void test_every_fault(void **state)
{
	(void)state;
	for (int f = FAULT_NONE + 1; f < FAULT_N; f++) {
		struct fault_text t;

		assert_int_equal(fault_describe((enum fault_code)f, &facts, &t), 0);
		assert_non_null(t.reason);
		assert_true(t.reason[0] != '\0');
		if (t.end == FAULT_END_SILENT) {
			assert_null(t.sqlstate);
			continue;
		}
		assert_non_null(t.sqlstate);
		assert_int_equal(strlen(t.sqlstate), 5);
		for (int i = 0; i < 5; i++)
			assert_true(isdigit((unsigned char)t.sqlstate[i]) || isupper((unsigned char)t.sqlstate[i]));
		if (f != FAULT_ACCESS_WITHDRAWN) /* its detail is the whole message */
			assert_memory_equal(t.msg, "pgtether: ", 10);
		assert_true(strlen(t.msg) < FAULT_MSG_MAX);
	}
}

static void test_out_of_range(void **state)
{
	struct fault_text t = { .reason = "untouched" };

	(void)state;
	assert_int_equal(fault_describe(FAULT_NONE, &facts, &t), -EINVAL);
	assert_int_equal(fault_describe(FAULT_N, &facts, &t), -EINVAL);
	assert_int_equal(fault_describe((enum fault_code)-3, &facts, &t), -EINVAL);
	assert_string_equal(t.reason, "untouched");
}

/* What the relay said before the table, word for word: clients and tests read these. */
static void test_messages_quote_their_facts(void **state)
{
	struct fault_text t;

	(void)state;
	fault_describe(FAULT_CLIENT_PROTOCOL, &facts, &t);
	assert_string_equal(t.sqlstate, "08P01");
	assert_int_equal(t.end, FAULT_END_NOW);
	assert_string_equal(t.msg, "pgtether: invalid message length from the client (below 4 or above max_message_bytes, 12345)");
	assert_string_equal(t.reason, "client protocol violation");

	fault_describe(FAULT_MASKS_STALE, &facts, &t);
	assert_string_equal(t.sqlstate, "55000");
	assert_non_null(strstr(t.msg, "for 21 s"));

	fault_describe(FAULT_MEMORY_BUDGET, &facts, &t);
	assert_string_equal(t.sqlstate, "53200");
	assert_non_null(strstr(t.msg, "(1048576 bytes, shared by all sessions)"));
	assert_string_equal(t.reason, "memory_budget exhausted");

	fault_describe(FAULT_READ_WRITE, &facts, &t);
	assert_string_equal(t.sqlstate, "0A000");
	assert_non_null(strstr(t.msg, "rule 'ci-api' is read-only"));

	fault_describe(FAULT_CLIENT_ENCODING, &facts, &t);
	assert_non_null(strstr(t.msg, "client_encoding \"LATIN1\""));

	fault_describe(FAULT_ROW_TOO_LARGE, &facts, &t);
	assert_string_equal(t.sqlstate, "54000");
	assert_int_equal(t.end, FAULT_END_BOUNDARY);

	fault_describe(FAULT_UPSTREAM_PROTOCOL, &facts, &t);
	assert_int_equal(t.end, FAULT_END_SILENT);
	assert_string_equal(t.msg, "");
}

/* A fault whose reason is its detail: the log says why the connection was lost. */
static void test_detail(void **state)
{
	struct fault_text t;
	struct fault_facts ff = facts;

	(void)state;
	fault_describe(FAULT_UPSTREAM_LOST, &ff, &t);
	assert_string_equal(t.sqlstate, "08006");
	assert_string_equal(t.msg, "pgtether: the connection to the database was lost (upstream error: Connection reset by peer)");
	assert_string_equal(t.reason, "upstream error: Connection reset by peer");
	ff.detail = NULL;
	fault_describe(FAULT_UPSTREAM_LOST, &ff, &t);
	assert_string_equal(t.reason, "unknown");
}

/* A lookup that fails at login fails the client's first ReadyForQuery (XX000); later,
 * in a session the client used, it is an admin shutdown drivers reconnect after. */
static void test_lookup_at_login(void **state)
{
	struct fault_text t;
	struct fault_facts ff = facts;

	(void)state;
	ff.detail = "the server said: permission denied";
	fault_describe(FAULT_MASK_LOOKUP, &ff, &t);
	assert_string_equal(t.sqlstate, "57P01");
	assert_string_equal(t.msg, "pgtether: rule 'ci-api' masks columns, and they cannot be looked up in the catalog: "
			    "the server said: permission denied");
	assert_string_equal(t.reason, "mask lookup failed");
	ff.at_login = true;
	fault_describe(FAULT_MASK_LOOKUP, &ff, &t);
	assert_string_equal(t.sqlstate, "XX000");
	fault_describe(FAULT_PATH_LOOKUP, &ff, &t);
	assert_string_equal(t.sqlstate, "XX000");
	assert_string_equal(t.reason, "search_path lookup failed");
}

/* A detail longer than the message is cut, never overrun. */
static void test_long_detail(void **state)
{
	char big[2000];
	struct fault_text t;
	struct fault_facts ff = facts;

	(void)state;
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ff.detail = big;
	fault_describe(FAULT_ACCESS_WITHDRAWN, &ff, &t);
	assert_int_equal(strlen(t.msg), FAULT_MSG_MAX - 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_fault),
		cmocka_unit_test(test_out_of_range),
		cmocka_unit_test(test_messages_quote_their_facts),
		cmocka_unit_test(test_detail),
		cmocka_unit_test(test_lookup_at_login),
		cmocka_unit_test(test_long_detail),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
