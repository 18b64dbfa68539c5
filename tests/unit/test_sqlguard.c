/* Unit tests for daemon/sqlguard.c: the byte scan that lets rules without statement
 * checks skip the parse, the client-only encoding check, and the guard as
 * sqlclass_classify applies it (both readings of a backslash, the cache). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sqlclass.h"
#include "sqlguard.h"

static bool may(const char *sql)
{
	return sqlguard_may_touch(sql, strlen(sql));
}

static void test_may_touch(void **state)
{
	(void)state;
	/* what pgbench and ordinary clients send costs no parse */
	assert_false(may("UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = 2"));
	assert_false(may("SELECT abalance FROM pgbench_accounts WHERE aid = $1"));
	assert_false(may("INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 2, 3, 4, CURRENT_TIMESTAMP)"));
	assert_false(may("BEGIN"));
	assert_false(may("select * from docs where done"));
	assert_false(may("SET search_path = app"));
	/* every way to a guarded setting */
	assert_true(may("SET PGTETHER.identity = 1"));
	assert_true(may("SET \"PgTether\".\"identity\" = 1"));
	assert_true(may("SET U&\"\\0070gtether\".identity = 1"));
	assert_true(may("select SET_CONFIG(E'\\x70gtether.identity', 'x', false)"));
	assert_true(may("update PG_SETTINGS set setting = 1"));
	assert_true(may("SET client_encoding = sjis"));
	assert_true(may("SET NAMES sjis"));
	assert_true(may("DO 'begin null; end'"));
	assert_true(may(";DO $$ BEGIN NULL; END $$"));
	assert_true(may("CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'select 1'"));
	assert_true(may("create or replace procedure p() language sql as ''"));
	assert_true(may("select query_to_xml('select 1', true, true, '')"));
	assert_true(may("select ts_rewrite('a'::tsquery, 'select 1')"));
	/* every function that builds SQL from text (sqlclass_query_function) */
	{
		static const char *const q[] = {
			"query_to_xml", "query_to_xmlschema", "query_to_xml_and_xmlschema", "cursor_to_xml",
			"cursor_to_xmlschema", "table_to_xml", "table_to_xmlschema", "table_to_xml_and_xmlschema",
			"schema_to_xml", "schema_to_xmlschema", "schema_to_xml_and_xmlschema", "database_to_xml",
			"database_to_xmlschema", "database_to_xml_and_xmlschema", "ts_stat", "ts_rewrite", "crosstab",
			"crosstab2", "crosstab3", "crosstab4", "connectby", "xpath_table", NULL,
		};
		char sql[128];

		for (const char *const *n = q; *n; n++) {
			assert_true(sqlclass_query_function(*n, 2));
			snprintf(sql, sizeof(sql), "SELECT * FROM %s('x')", *n);
			if (!may(sql))
				fail_msg("%s builds SQL from text but the byte scan misses it", *n);
		}
	}
}

static int enc(const char *sql, char *why)
{
	return sqlguard_encoding(sql, strlen(sql), why, 256);
}

static void test_encoding(void **state)
{
	char why[256];

	(void)state;
	assert_int_equal(enc("SELECT 'a\\'", why), 0);                /* ASCII */
	assert_int_equal(enc("SELECT 'héllo wörld', '日本語'", why), 0); /* no ASCII byte taken */
	assert_int_equal(enc("SELECT 'é\\'", why), 0);                 /* C3 A9: pairs in all, or singles in SJIS */
	/* "Ä" is C3 84: in SJIS C3 stands alone and 84 takes the backslash */
	assert_int_equal(enc("SELECT E'Ä\\'; DROP TABLE t; --'", why), -EILSEQ);
	assert_non_null(strstr(why, "SJIS"));
	assert_non_null(strstr(why, "'\\'"));
	/* a taken byte that changes nothing: a letter */
	assert_int_equal(enc("SELECT 'Äa'", why), 0);
	/* where the text is invalid in an encoding, the server rejects it whole: 84 20
	 * is no SJIS character, so the later backslash does not count */
	assert_int_equal(enc("SELECT 'Ä \\'", why), 0);
	/* BIG5 pairs across UTF-8 characters: 中 is E4 B8 AD, and AD takes the '|' of
	 * the operator after the identifier (SJIS reads AD alone) */
	assert_int_equal(enc("SELECT x中|| 'a'", why), -EILSEQ);
	assert_non_null(strstr(why, "BIG5"));
}

static void test_guard_and_readings(void **state)
{
	struct sqlclass_cache *c = calloc(1, sizeof(*c));
	const struct sqlclass_result *r;
	struct sqlclass_result tmp, res;
	const char *attack = "SELECT 'a\\'' ; SET pgtether.identity = 'x' --'";
	int rc;

	(void)state;
	assert_non_null(c);
	/* read with standard_conforming_strings on it is one string; off, a SET */
	assert_int_equal(sqlclass_classify(attack, NULL, &res), 0);
	assert_non_null(strstr(res.guard, "pgtether.identity"));
	sqlclass_release(&res);
	/* the cached answer is the same, the second time from the cache */
	for (int i = 0; i < 2; i++) {
		rc = sqlclass_cached(c, attack, strlen(attack), NULL, &tmp, &r);
		assert_int_equal(rc, 0);
		assert_non_null(strstr(r->guard, "pgtether.identity"));
	}
	assert_int_equal(c->hits, 1);
	/* neither reading parses: denied */
	assert_int_equal(sqlclass_classify("SELECT 'a\\' ' FROM", NULL, &res), -EINVAL);
	sqlclass_release(&res);
	/* only the off reading parses: that one is classified */
	assert_int_equal(sqlclass_classify("SELECT 'a\\'' ; DROP TABLE t --'", NULL, &res), 0);
	assert_true(res.classes & SQL_DROP);
	assert_true(res.classes & SQL_READ);
	assert_int_equal(res.guard[0], '\0');
	sqlclass_release(&res);
	/* the off reading's tables are listed too */
	assert_int_equal(sqlclass_classify("SELECT 'a\\'' ; SELECT * FROM secrets --'", NULL, &res), 0);
	assert_int_equal(res.n_tables, 1);
	assert_string_equal(res.tables[0], "secrets");
	sqlclass_release(&res);
	sqlclass_cache_clear(c);
	free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_may_touch),
		cmocka_unit_test(test_encoding),
		cmocka_unit_test(test_guard_and_readings),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
