/* Unit tests for daemon/startopts.c: "options" is split as the server splits it, only
 * -c and -- switches are read, and only settings that cannot change privilege or how
 * pgtether reads the session pass. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "startopts.h"

static char buf[1024], err[STARTOPTS_ERR];
static struct startopts_setting set[STARTOPTS_MAX];

static int split(const char *options)
{
	err[0] = '\0';
	return startopts_split(options, buf, sizeof(buf), set, STARTOPTS_MAX, err);
}

static void test_split_forms(void **state)
{
	(void)state;
	assert_int_equal(split("-c search_path=app -c statement_timeout=4321"), 2);
	assert_string_equal(set[0].name, "search_path");
	assert_string_equal(set[0].value, "app");
	assert_string_equal(set[1].name, "statement_timeout");
	assert_string_equal(set[1].value, "4321");
	/* bundled value, long form with dashes, tabs and newlines between words */
	assert_int_equal(split("\t-clock_timeout=5s\n--idle-in-transaction-session-timeout=1min  "), 2);
	assert_string_equal(set[0].name, "lock_timeout");
	assert_string_equal(set[0].value, "5s");
	assert_string_equal(set[1].name, "idle_in_transaction_session_timeout");
	assert_string_equal(set[1].value, "1min");
	/* only the name's dashes become underscores; the value keeps its '=' */
	assert_int_equal(split("--search-path=a-b=c"), 1);
	assert_string_equal(set[0].name, "search_path");
	assert_string_equal(set[0].value, "a-b=c");
	assert_int_equal(split(""), 0);
	assert_int_equal(split("   "), 0);
}

static void test_split_escapes(void **state)
{
	(void)state;
	/* a backslash takes the next byte as it is: an escaped space joins words */
	assert_int_equal(split("-c search_path=\"my\\ schema\",public"), 1);
	assert_string_equal(set[0].value, "\"my schema\",public");
	assert_int_equal(split("-c application_name=a\\\\b"), 1);
	assert_string_equal(set[0].value, "a\\b");
	/* a trailing backslash escapes nothing and is dropped, as in the server */
	assert_int_equal(split("-c work_mem=64MB\\"), 1);
	assert_string_equal(set[0].value, "64MB");
	/* the escaped space cannot smuggle a second switch in or out */
	assert_int_equal(split("-c search_path=x\\ -crole=admin"), 1);
	assert_string_equal(set[0].value, "x -crole=admin");
}

static void test_split_refusals(void **state)
{
	(void)state;
	assert_int_equal(split("-c"), -1);
	assert_non_null(strstr(err, "needs name=value"));
	assert_int_equal(split("-c search_path"), -1);
	assert_non_null(strstr(err, "not name=value"));
	assert_int_equal(split("-c =x"), -1);
	assert_int_equal(split("-e"), -1);
	assert_non_null(strstr(err, "the switch \"-e\""));
	assert_int_equal(split("-ec search_path=x"), -1); /* bundled switches */
	assert_int_equal(split("-F"), -1);
	assert_int_equal(split("--"), -1);
	assert_int_equal(split("search_path=x"), -1);   /* not a switch: the server refuses too */
	/* bytes above 0x7f may be spaces in the server's locale */
	assert_int_equal(split("-c search_path=x\xa0-crole=admin"), -1);
	assert_non_null(strstr(err, "not ASCII"));
	/* the -c's argument is the next word even when it looks like a switch */
	assert_int_equal(split("-c -crole=admin"), 1);
	assert_string_equal(set[0].name, "_crole");
}

static void test_split_bounds(void **state)
{
	char many[STARTOPTS_MAX * 16 + 64] = "", small[8];
	struct startopts_setting two[2];

	(void)state;
	for (int i = 0; i <= STARTOPTS_MAX; i++)
		strcat(many, "-c work_mem=1 ");
	assert_int_equal(split(many), -1);
	assert_non_null(strstr(err, "more than"));
	assert_int_equal(startopts_split("-c a=b -c c=d -c e=f", buf, sizeof(buf), two, 2, err), -1);
	assert_int_equal(startopts_split("-c work_mem=1", small, sizeof(small), set, STARTOPTS_MAX, err), -1);
	assert_non_null(strstr(err, "too long"));
}

static void test_allowed(void **state)
{
	char why[STARTOPTS_ERR];

	(void)state;
	assert_true(startopts_allowed("search_path", why));
	assert_true(startopts_allowed("statement_timeout", why));
	assert_true(startopts_allowed("Statement_Timeout", why)); /* names compare case-insensitively */
	assert_true(startopts_allowed("DateStyle", why));
	assert_true(startopts_allowed("TimeZone", why));
	assert_true(startopts_allowed("extra_float_digits", why));
	assert_true(startopts_allowed("work_mem", why));
	assert_true(startopts_allowed("client_min_messages", why));
	/* the list is searched by halves: entries from every part of it are found */
	static const char *const some[] = { "constraint_exclusion", "cursor_tuple_fraction", "default_transaction_deferrable",
					    "enable_async_append", "enable_partition_pruning", "enable_partitionwise_aggregate",
					    "enable_tidscan", "geqo", "geqo_threshold", "idle_session_timeout", "jit", "lc_time",
					    "maintenance_io_concurrency", "min_parallel_table_scan_size", "plan_cache_mode",
					    "standard_conforming_strings", "synchronous_commit", "timezone", "lock_timeout" };

	for (size_t i = 0; i < sizeof(some) / sizeof(some[0]); i++)
		assert_true(startopts_allowed(some[i], why));
	assert_false(startopts_allowed("role", why));
	assert_non_null(strstr(why, "role the session runs as"));
	assert_false(startopts_allowed("SESSION_AUTHORIZATION", why));
	assert_false(startopts_allowed("pgtether.identity", why));
	assert_non_null(strstr(why, "set by pgtether"));
	assert_false(startopts_allowed("PgTether.rule", why));
	assert_false(startopts_allowed("default_transaction_read_only", why));
	assert_false(startopts_allowed("session_replication_role", why));
	assert_non_null(strstr(why, "SET it after connecting"));
	assert_false(startopts_allowed("local_preload_libraries", why));
	assert_false(startopts_allowed("search_path ", why));
	assert_false(startopts_allowed("myapp.tenant", why));
	assert_false(startopts_allowed("", why));
}

/* search_path passes unless pg_catalog comes after a schema other than pg_temp,
 * the names read as the server's SplitIdentifierString reads them. */
static void test_search_path_value(void **state)
{
	static const char *const ok[] = {
		"app", "\"$user\", public", "", "  ", "pg_catalog, app", "PG_CATALOG,app", " \"pg_catalog\" , app",
		"pg_temp, pg_catalog, app", "pg_catalog,app,pg_catalog", "app, \"PG_CATALOG\"", "app, pg_catalogx",
		"app, \"pg_catalog \"", "\"a\"\"b\", pg_catalog_and_more_than_ten_bytes",
	};
	static const char *const refused[] = {
		"app, pg_catalog", "app,PG_Catalog", "\"$user\", public, pg_catalog", "\"a b\"\t,\n\"pg_catalog\"",
		"pg_temp, app, pg_catalog", "\"\", pg_catalog", "app,pg_temp,pg_catalog",
	};
	static const char *const unreadable[] = { "\"app", "app,", ",app", "app pg_catalog", "\"a\"b", "app,,x" };
	char why[STARTOPTS_ERR];

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		if (!startopts_value_allowed("search_path", ok[i], why))
			fail_msg("[%s] refused: %s", ok[i], why);
	}
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		if (startopts_value_allowed("Search_Path", refused[i], why))
			fail_msg("[%s] passed", refused[i]);
		assert_non_null(strstr(why, "lists pg_catalog after"));
	}
	for (size_t i = 0; i < sizeof(unreadable) / sizeof(unreadable[0]); i++) {
		if (startopts_value_allowed("search_path", unreadable[i], why))
			fail_msg("[%s] passed", unreadable[i]);
		assert_non_null(strstr(why, "cannot read it"));
	}
	assert_true(startopts_value_allowed("search_path", "\"$user\", public", why));
	assert_false(startopts_value_allowed("search_path", "app, pg_catalog", why));
	assert_non_null(strstr(why, "after \"app\""));
	assert_false(startopts_value_allowed("search_path", "a_schema_name_longer_than_ten, pg_catalog", why));
	assert_non_null(strstr(why, "after \"a_schema_n...\""));
	/* other settings' values are the server's to check */
	assert_true(startopts_value_allowed("work_mem", "app, pg_catalog", why));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split_forms),  cmocka_unit_test(test_split_escapes),
		cmocka_unit_test(test_split_refusals), cmocka_unit_test(test_split_bounds),
		cmocka_unit_test(test_allowed), cmocka_unit_test(test_search_path_value),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
