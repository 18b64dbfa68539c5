/* Unit tests for daemon/prepared.c: a prepared name keeps the classes of every
 * statement ever prepared under it, a Bind in the batch of its Parse is exact, SQL
 * names are followed through EXECUTE, and names never seen are unknown. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prepared.h"

static void note(struct prepared_model *m, const char *name, const char *sql)
{
	struct sqlclass_result c;

	assert_int_equal(sqlclass_classify(sql, NULL, &c), 0);
	assert_int_equal(prepared_note(m, name, &c, sql, strlen(sql), true), 0);
	sqlclass_release(&c);
}

static unsigned classes(struct prepared_model *m, const char *name, bool bind, int want_rc)
{
	struct prepared_view v = { 0 };

	assert_int_equal(prepared_resolve(m, name, bind, &v), want_rc);
	return v.classes;
}

static void test_union_and_exact(void **state)
{
	struct prepared_model m;
	struct prepared_view v;
	char *text;
	size_t n;

	(void)state;
	prepared_init(&m);
	classes(&m, "s", true, -ENOENT);
	note(&m, "", "delete from t");
	/* the Bind of the same batch runs exactly that statement */
	assert_int_equal(classes(&m, "", true, 0), SQL_WRITE);
	prepared_end_batch(&m, false);
	note(&m, "", "select 1");
	assert_int_equal(classes(&m, "", true, 0), SQL_READ);
	prepared_end_batch(&m, false);
	/* a later batch: the Parse of select 1 may have been discarded */
	assert_int_equal(classes(&m, "", true, 0), SQL_READ | SQL_WRITE);
	/* and the approver is shown both */
	assert_int_equal(prepared_resolve(&m, "", true, &v), 0);
	assert_int_equal(v.n_texts, 2);
	assert_true(v.complete);
	text = prepared_view_text(&v, &n);
	assert_string_equal(text, "-- the server runs one of the 2 statements prepared under this name in this session:\n"
			    "delete from t\n-- or:\nselect 1");
	assert_int_equal(n, strlen(text));
	free(text);
	/* more texts than are kept: not shown, so not approvable */
	for (int i = 0; i < PREPARED_MAX_TEXTS; i++) {
		char sql[32];

		snprintf(sql, sizeof(sql), "select %d", i + 2);
		note(&m, "", sql);
	}
	prepared_end_batch(&m, false);
	assert_int_equal(prepared_resolve(&m, "", true, &v), 0);
	assert_false(v.complete);
	assert_null(prepared_view_text(&v, &n));
	/* a simple Query the server ran dropped the unnamed statement */
	prepared_end_batch(&m, true);
	classes(&m, "", true, -ENOENT);
	prepared_release(&m);
}

static void test_sql_names(void **state)
{
	struct prepared_model m;
	struct sqlclass_result c;
	char long1[80], long2[128];

	(void)state;
	prepared_init(&m);
	/* PREPARE's name as the parser gives it, folded; the union never forgets */
	assert_int_equal(sqlclass_classify("PREPARE Del AS delete from t; select 1", NULL, &c), 0);
	assert_int_equal(c.n_prepares, 1);
	assert_string_equal(c.prepares[0], "del");
	assert_int_equal(prepared_note(&m, c.prepares[0], &c, "x", 1, true), 0);
	sqlclass_release(&c);
	note(&m, "del", "PREPARE del AS select 1"); /* fails on the server: del exists */
	assert_true(classes(&m, "del", false, 0) & SQL_WRITE);
	/* EXECUTE is seen wherever it runs one */
	assert_int_equal(sqlclass_classify("explain analyze execute del; create table x as execute q2", NULL, &c), 0);
	assert_int_equal(c.n_executes, 2);
	sqlclass_release(&c);
	/* a protocol statement that EXECUTEs a name follows it at each Bind */
	note(&m, "q", "execute del");
	prepared_end_batch(&m, false);
	assert_true(classes(&m, "q", true, 0) & SQL_WRITE);
	note(&m, "r", "execute nosuch");
	classes(&m, "r", true, -ENOENT);
	/* names cut by the server agree with names cut by the parser */
	memset(long1, 'a', 70);
	long1[70] = '\0';
	snprintf(long2, sizeof(long2), "PREPARE %s AS delete from t", long1);
	assert_int_equal(sqlclass_classify(long2, NULL, &c), 0);
	assert_int_equal(strlen(c.prepares[0]), 63);
	assert_int_equal(prepared_note(&m, c.prepares[0], &c, long2, strlen(long2), true), 0);
	sqlclass_release(&c);
	long1[60] = 'b'; /* differs after the server's cut... */
	assert_true(classes(&m, long1, false, 0) & SQL_WRITE); /* ...and after ours */
	prepared_release(&m);
}

static void test_bounds(void **state)
{
	struct prepared_model m;
	struct sqlclass_result c;
	char name[32];
	int r = 0;

	(void)state;
	prepared_init(&m);
	assert_int_equal(sqlclass_classify("select 1", NULL, &c), 0);
	for (int i = 0; i <= PREPARED_MAX_NAMES && r == 0; i++) {
		snprintf(name, sizeof(name), "s%d", i);
		r = prepared_note(&m, name, &c, "select 1", 8, false);
	}
	assert_int_equal(r, -ENOSPC);
	classes(&m, name, true, -ENOENT);
	assert_int_equal(classes(&m, "s1", true, 0), SQL_READ);
	/* kept without its text (no approvals): known, but nothing to show */
	assert_null(prepared_view_text(&(struct prepared_view){ .complete = false }, &(size_t){ 0 }));
	sqlclass_release(&c);
	prepared_release(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_union_and_exact),
		cmocka_unit_test(test_sql_names),
		cmocka_unit_test(test_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
