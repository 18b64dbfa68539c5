/* Unit tests for daemon/maskset.c: the catalog query, tracing masks through views
 * from rows as PostgreSQL returns them, and the statements that would leak. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "maskset.h"

static const char policy_text[] =
	"{ \"rules\": [ { \"name\": \"agent\", \"match\": { \"cgroup\": \"/ci\" }, \"token\": { \"source\": \"none\" },\n"
	"  \"upstream\": \"main\", \"mask\": [\n"
	"  { \"column\": \"users.email\", \"strategy\": \"email\" },\n"
	"  { \"column\": \"crm.people.phone\", \"strategy\": \"partial\", \"allow\": [\"copy\"] },\n"
	"  { \"column_name\": \"*ssn*\", \"strategy\": \"null\" } ] } ] }";

static void load(struct policy *p)
{
	char err[POLICY_ERR_LEN];

	memset(p, 0, sizeof(*p));
	if (policy_parse(p, "p.json", policy_text, strlen(policy_text), err) < 0)
		fail_msg("%s", err);
}

static void row(struct maskset *m, const struct policy_rule *r, const char *json)
{
	int rc = maskset_add_row(m, r, json, strlen(json));

	if (rc < 0)
		fail_msg("row %s: %d", json, rc);
}

static void test_query(void **state)
{
	struct policy p;
	int err;
	char *q;

	(void)state;
	load(&p);
	q = maskset_query(&p.rules[0], NULL, &err);
	assert_non_null(q);
	assert_non_null(strstr(q, "(0, NULL, 'users', 'email'), (1, 'crm', 'people', 'phone')"));
	assert_null(strstr(q, "ssn")); /* name patterns need no catalog */
	free(q);
	policy_release(&p);
	/* name patterns only: no columns to find, but the views over pg_stats */
	{
		static const char only[] =
			"{ \"rules\": [ { \"name\": \"n\", \"match\": { \"cgroup\": \"/ci\" }, \"token\": { \"source\": \"none\" },\n"
			"  \"upstream\": \"main\", \"mask\": [ { \"column_name\": \"*email*\", \"strategy\": \"null\" } ] } ] }";
		char perr[POLICY_ERR_LEN];

		memset(&p, 0, sizeof(p));
		assert_int_equal(policy_parse(&p, "n.json", only, strlen(only), perr), 0);
		q = maskset_query(&p.rules[0], NULL, &err);
		assert_non_null(q);
		assert_non_null(strstr(q, "m(i, s, t, c) AS (SELECT NULL::pg_catalog.int4"));
		assert_non_null(strstr(q, "'pg_catalog.pg_stats'::pg_catalog.regclass"));
		free(q);
		policy_release(&p);
	}
}

static void test_views(void **state)
{
	struct maskset m = { 0 };
	struct policy p;
	const struct policy_rule *r;

	(void)state;
	load(&p);
	r = &p.rules[0];
	row(&m, r, "{\"k\": \"c\", \"rel\": 16384, \"att\": 2, \"m\": 0}");
	/* a view of a view first: rows come in any order */
	row(&m, r, "{\"k\": \"v\", \"rel\": 16400, \"schema\": \"public\", \"name\": \"vv\", \"cols\": [\"c\"],"
		   " \"deps\": [[16390, 2]], \"def\": \" SELECT v.contact AS c FROM v;\"}");
	row(&m, r, "{\"k\": \"v\", \"rel\": 16390, \"schema\": \"public\", \"name\": \"v\","
		   " \"cols\": [\"id\", \"contact\", \"l\", \"n\"], \"deps\": [[16384, 1], [16384, 2], [16384, 3]],"
		   " \"def\": \" SELECT users.id, users.email AS contact, lower(users.email) AS l, users.name AS n FROM users;\"}");
	/* a whole-row reference is not among a view's recorded dependencies */
	row(&m, r, "{\"k\": \"v\", \"rel\": 16396, \"schema\": \"public\", \"name\": \"api\", \"cols\": [\"id\", \"doc\"],"
		   " \"deps\": [[16384, 1]], \"def\": \" SELECT u.id, row_to_json(u.*) AS doc FROM users u;\"}");
	row(&m, r, "{\"k\": \"v\", \"rel\": 16395, \"schema\": \"public\", \"name\": \"u\", \"cols\": [\"a\", \"b\"],"
		   " \"deps\": [[16384, 2]], \"def\": \" SELECT users.email AS a, 1 AS b FROM users UNION SELECT 'x', 2;\"}");
	{
		static const char bad[] = "{\"k\": \"c\", \"rel\": 1, \"att\": 1, \"m\": 7}";

		assert_int_equal(maskset_add_row(&m, r, bad, strlen(bad)), -EINVAL);
	}
	assert_int_equal(maskset_add_row(&m, r, "not json", 8), -EINVAL);
	assert_int_equal(maskset_finish(&m, r), 0);
	assert_int_equal(maskset_find(&m, 16384, 2), 0);
	assert_int_equal(maskset_find(&m, 16384, 1), -1);
	assert_int_equal(maskset_find(&m, 16390, 1), -1);  /* id passes an unmasked column on */
	assert_int_equal(maskset_find(&m, 16390, 2), 0);   /* email AS contact */
	assert_int_equal(maskset_find(&m, 16390, 3), 0);   /* lower(email) */
	assert_int_equal(maskset_find(&m, 16390, 4), -1);
	assert_int_equal(maskset_find(&m, 16400, 1), 0);   /* through two views */
	assert_int_equal(maskset_find(&m, 16396, 1), -1);
	assert_int_equal(maskset_find(&m, 16396, 2), 0);   /* row_to_json(u.*) */
	assert_int_equal(maskset_find(&m, 16395, 1), 0);   /* a UNION: every column */
	assert_int_equal(maskset_find(&m, 16395, 2), 0);
	maskset_release(&m);
	policy_release(&p);
}

static int leaks(const struct maskset *m, const struct policy_rule *r, const char *sql, char *why)
{
	struct sqlclass_result c;
	int rc;

	assert_int_equal(sqlclass_classify(sql, sqlclass_default_dangerous, &c), 0);
	why[0] = '\0';
	rc = maskset_leak(m, r, &c, why, 400);
	sqlclass_release(&c);
	return rc;
}

static void test_leaks(void **state)
{
	struct maskset m = { 0 };
	struct policy p;
	const struct policy_rule *r;
	char why[400];

	(void)state;
	load(&p);
	r = &p.rules[0];
	row(&m, r, "{\"k\": \"c\", \"rel\": 16384, \"att\": 2, \"m\": 0}");
	row(&m, r, "{\"k\": \"v\", \"rel\": 16390, \"schema\": \"public\", \"name\": \"v\", \"cols\": [\"contact\"],"
		   " \"deps\": [[16384, 2]], \"def\": \" SELECT users.email AS contact FROM users;\"}");
	assert_int_equal(maskset_finish(&m, r), 0);

	assert_int_equal(leaks(&m, r, "SELECT * FROM users", why), 0);
	assert_int_equal(leaks(&m, r, "SELECT email AS e, id FROM public.users WHERE email LIKE '%@x'", why), 0);
	assert_int_equal(leaks(&m, r, "SELECT upper(name) FROM users", why), 0);
	assert_int_equal(leaks(&m, r, "SELECT upper(email) FROM orders", why), 0); /* not the masked table */
	assert_int_equal(leaks(&m, r, "COPY users TO STDOUT", why), 1);
	assert_string_equal(why, "rule 'agent' masks public.users.email, and COPY would move it out unmasked "
				 "(a mask's \"allow\": [\"copy\"] would permit it)");
	assert_int_equal(leaks(&m, r, "COPY (SELECT id FROM users) TO STDOUT", why), 1);
	assert_int_equal(leaks(&m, r, "COPY crm.people TO STDOUT", why), 0); /* allowed by its mask */
	assert_int_equal(leaks(&m, r, "SELECT row_to_json(u) FROM users u", why), 1);
	assert_non_null(strstr(why, "whole-row"));
	assert_int_equal(leaks(&m, r, "SELECT upper(email) FROM users", why), 1);
	assert_non_null(strstr(why, "computed"));
	assert_int_equal(leaks(&m, r, "INSERT INTO stash SELECT email FROM users", why), 1);
	assert_int_equal(leaks(&m, r, "SELECT upper(contact) FROM v", why), 1);  /* through the view */
	assert_string_equal(why, "rule 'agent' masks public.v.contact, and a value computed or copied from it would "
				 "leave unmasked (a mask's \"allow\": [\"computed\"] would permit it)");
	assert_int_equal(leaks(&m, r, "ALTER TABLE users RENAME COLUMN email TO e", why), 1);
	assert_non_null(strstr(why, "\"ddl\""));
	assert_int_equal(leaks(&m, r, "SELECT id FROM users WHERE email::int = 1", why), 1);  /* the error would say it */
	assert_int_equal(leaks(&m, r, "DO $$ BEGIN RAISE NOTICE '%', (SELECT email FROM users LIMIT 1); END $$", why), 1);
	assert_string_equal(why, "rule 'agent' masks public.users.email, and a DO block, procedure or function that "
				 "runs queries of its own could read it unmasked (a mask's \"allow\": [\"code\"] would permit it)");
	assert_int_equal(leaks(&m, r, "SELECT query_to_xml('select email from users', true, false, '')", why), 1);
	assert_int_equal(leaks(&m, r, "CREATE FUNCTION f() RETURNS SETOF text LANGUAGE sql AS 'select email from users'", why), 1);
	/* renamed inside the statement, then computed */
	assert_int_equal(leaks(&m, r, "SELECT upper(x) FROM (SELECT email AS x FROM users) s", why), 1);
	assert_non_null(strstr(why, "a column the statement renames"));
	assert_int_equal(leaks(&m, r, "WITH c(x) AS (SELECT email FROM users) SELECT upper(x) FROM c", why), 1);
	assert_int_equal(leaks(&m, r, "SELECT string_agg(x, ',') FROM users u(id, x)", why), 1);
	assert_int_equal(leaks(&m, r, "SELECT s FROM (SELECT email FROM users) s", why), 1);
	assert_int_equal(leaks(&m, r, "WITH c AS (SELECT email FROM users) SELECT to_json(c) FROM c", why), 1);
	assert_int_equal(leaks(&m, r, "SELECT x FROM (SELECT email AS x FROM users) s", why), 0); /* kept: masked by OID */
	/* VALUES */
	assert_int_equal(leaks(&m, r, "INSERT INTO t VALUES ((SELECT email FROM users LIMIT 1))", why), 1);
	assert_int_equal(leaks(&m, r, "SELECT * FROM users u, LATERAL (VALUES (u.email)) v(x)", why), 1);
	/* an unqualified name may be another schema's under the session's search_path */
	assert_int_equal(leaks(&m, r, "SELECT upper(phone) FROM people", why), 1);
	assert_string_equal(why, "rule 'agent' masks crm.people.phone, and a value computed or copied from it would "
				 "leave unmasked (a mask's \"allow\": [\"computed\"] would permit it)");
	assert_int_equal(leaks(&m, r, "SELECT upper(phone) FROM other.people", why), 0);
	/* renaming a schema renames its masked tables without naming them */
	assert_int_equal(leaks(&m, r, "ALTER SCHEMA public RENAME TO p; SELECT upper(email) FROM p.users", why), 1);
	assert_string_equal(why, "rule 'agent' masks public.users.email, and renaming schema public would change what "
				 "the mask is on (a mask's \"allow\": [\"ddl\"] would permit it)");
	assert_int_equal(leaks(&m, r, "ALTER SCHEMA crm RENAME TO crm2", why), 1);
	assert_int_equal(leaks(&m, r, "ALTER SCHEMA other RENAME TO x", why), 0);
	assert_int_equal(leaks(&m, r, "ALTER SCHEMA crm OWNER TO app", why), 0);
	/* functions that carry an argument out of the statement, anywhere in it */
	assert_int_equal(leaks(&m, r, "SELECT 1 FROM users WHERE pg_notify('ch', email) IS NULL", why), 1);
	assert_string_equal(why, "rule 'agent' masks public.users.email, and pg_notify() would carry it out of the "
				 "statement unmasked (a mask's \"allow\": [\"computed\"] would permit it)");
	assert_int_equal(leaks(&m, r, "SELECT 1 FROM users WHERE id = 1 AND set_config('x.y', email, false) <> ''", why), 1);
	assert_int_equal(leaks(&m, r, "SELECT 1 FROM users u JOIN orders o ON pg_catalog.set_config(setting_name => 'a.b', "
				      "new_value => u.email, is_local => true) IS NOT NULL", why), 1);
	assert_int_equal(leaks(&m, r, "SELECT id FROM users ORDER BY pg_advisory_xact_lock(hashtext(email))", why), 1);
	assert_int_equal(leaks(&m, r, "SELECT 1 FROM users WHERE lo_from_bytea(0, convert_to(email, 'UTF8')) > 0", why), 1);
	assert_int_equal(leaks(&m, r, "SELECT 1 WHERE setval('s', (SELECT length(email) FROM users LIMIT 1)) > 0", why), 1);
	assert_int_equal(leaks(&m, r, "SELECT 1 FROM (SELECT email AS x FROM users) s WHERE pg_notify('c', x) IS NULL", why), 1);
	assert_int_equal(leaks(&m, r, "SELECT 1 FROM users u WHERE pg_notify('c', u::text) IS NULL", why), 1);
	assert_int_equal(leaks(&m, r, "SELECT 1 FROM users u WHERE pg_notify('c', concat(u)) IS NULL", why), 1);
	assert_int_equal(leaks(&m, r, "SELECT id FROM users WHERE log_value(email)", why), 1); /* the database's own */
	assert_string_equal(why, "rule 'agent' masks public.users.email, and log_value() would carry it out of the "
				 "statement unmasked (a mask's \"allow\": [\"computed\"] would permit it)");
	assert_int_equal(leaks(&m, r, "SELECT id FROM users WHERE lower(email) = 'a@x'", why), 0); /* built in */
	assert_int_equal(leaks(&m, r, "SELECT id FROM users WHERE pg_notify('c', name) IS NULL", why), 0); /* not masked */
	assert_int_equal(leaks(&m, r, "SELECT pg_notify('c', 'literal'), set_config('x.y', 'v', false)", why), 0);
	assert_int_equal(leaks(&m, r, "SELECT id FROM users WHERE current_setting('x.y') = email", why), 0); /* reads only */
	/* what the server says is withheld: a masked table's, or any table's under a
	 * column_name mask; a statement that names none keeps the server's words */
	{
		struct sqlclass_result c;

		assert_int_equal(sqlclass_classify("SELECT 1 FROM orders WHERE current_setting(note) IS NULL",
						   sqlclass_default_dangerous, &c), 0);
		assert_true(maskset_touches(&m, r, &c)); /* orders may have an ssn column */
		sqlclass_release(&c);
		assert_int_equal(sqlclass_classify("SELECT current_setting('x')", sqlclass_default_dangerous, &c), 0);
		assert_false(maskset_touches(&m, r, &c));
		sqlclass_release(&c);
		assert_int_equal(sqlclass_classify("SELECT leak_email(42)", sqlclass_default_dangerous, &c), 0);
		assert_true(maskset_touches(&m, r, &c)); /* its code may read users.email */
		sqlclass_release(&c);
	}
	/* unresolved (the table does not exist yet): the rule's names still count */
	maskset_reset(&m);
	assert_int_equal(leaks(&m, r, "SELECT row_to_json(users) FROM users", why), 1);
	maskset_release(&m);
	policy_release(&p);
}

/* The planner's statistics show masked values: pg_stats by any spelling, and the
 * views over it the catalog query names. */
/* Functions and operators outside pg_catalog named like built-ins: calls of them count
 * as not built in (the answer's 'f' and 'o' rows). */
static void test_shadows(void **state)
{
	struct maskset m = { 0 };
	struct policy p;
	const struct policy_rule *r;
	struct sqlclass_result c;
	char why[400];
	int err;
	char *q;

	(void)state;
	load(&p);
	r = &p.rules[0];
	q = maskset_query(r, NULL, &err);
	assert_non_null(strstr(q, "'k', 'f'"));
	assert_non_null(strstr(q, "pg_catalog.pg_operator"));
	assert_non_null(strstr(q, "LIMIT 1025"));
	free(q);
	row(&m, r, "{\"k\": \"c\", \"rel\": 16384, \"att\": 2, \"m\": 0}");
	assert_int_equal(maskset_finish(&m, r), 0);
	/* none yet: lower(email) in WHERE is PostgreSQL's */
	assert_int_equal(leaks(&m, r, "SELECT id FROM users WHERE lower(email) = 'a'", why), 0);
	assert_int_equal(sqlclass_classify("SELECT lower('x')", NULL, &c), 0);
	assert_false(maskset_touches(&m, r, &c));
	sqlclass_release(&c);

	maskset_reset(&m);
	row(&m, r, "{\"k\": \"c\", \"rel\": 16384, \"att\": 2, \"m\": 0}");
	row(&m, r, "{\"k\": \"f\", \"name\": \"lower\"}");
	row(&m, r, "{\"k\": \"o\", \"name\": \"=\"}");
	assert_int_equal(maskset_finish(&m, r), 0);
	assert_int_equal(leaks(&m, r, "SELECT id FROM users WHERE lower(email) IS NOT NULL", why), 1);
	assert_string_equal(why, "rule 'agent' masks public.users.email, and lower() may resolve to the database's own "
				 "function outside pg_catalog, which would get it unmasked (a mask's \"allow\": "
				 "[\"computed\"] would permit it)");
	assert_int_equal(leaks(&m, r, "SELECT id FROM users WHERE email = 'a'", why), 1);
	assert_non_null(strstr(why, "operator = may resolve to the database's own operator"));
	assert_int_equal(leaks(&m, r, "SELECT id FROM users WHERE pg_catalog.lower(email) OPERATOR(pg_catalog.=) 'a'", why), 0);
	assert_int_equal(leaks(&m, r, "SELECT id FROM users WHERE email < 'a' AND upper(email) IS NOT NULL", why), 0);
	assert_int_equal(leaks(&m, r, "SELECT lower(name) FROM users WHERE id = 1", why), 0); /* not masked */
	/* its errors are withheld, whatever it is given */
	assert_int_equal(sqlclass_classify("SELECT lower('x')", NULL, &c), 0);
	assert_true(maskset_touches(&m, r, &c));
	sqlclass_release(&c);
	assert_int_equal(sqlclass_classify("SELECT upper('x')", NULL, &c), 0);
	assert_false(maskset_touches(&m, r, &c));
	sqlclass_release(&c);
	/* past the limit the session cannot be told which names are safe */
	maskset_reset(&m);
	for (int i = 0; i < MASKSET_MAX_SHADOWS; i++)
		row(&m, r, "{\"k\": \"o\", \"name\": \"=\"}");
	{
		static const char more[] = "{\"k\": \"o\", \"name\": \"=\"}", bad[] = "{\"k\": \"o\"}";

		assert_int_equal(maskset_add_row(&m, r, more, strlen(more)), -E2BIG);
		assert_int_equal(maskset_add_row(&m, r, bad, strlen(bad)), -EINVAL);
	}
	maskset_release(&m);
	policy_release(&p);
}

static void test_statistics(void **state)
{
	struct maskset m = { 0 };
	struct policy p;
	const struct policy_rule *r;
	char why[400];

	(void)state;
	load(&p);
	r = &p.rules[0];
	row(&m, r, "{\"k\": \"c\", \"rel\": 16384, \"att\": 2, \"m\": 0}");
	row(&m, r, "{\"k\": \"s\", \"rel\": 12053, \"schema\": \"pg_catalog\", \"name\": \"pg_stats\"}");
	row(&m, r, "{\"k\": \"s\", \"rel\": 16500, \"schema\": \"ops\", \"name\": \"col_stats\"}");
	assert_int_equal(maskset_finish(&m, r), 0);
	assert_int_equal(leaks(&m, r, "SELECT most_common_vals FROM pg_stats WHERE attname = 'email'", why), 1);
	assert_string_equal(why, "rule 'agent' masks columns, and pg_stats shows the planner's statistics of columns, "
				 "masked ones too (their most common values and histogram bounds), so a masked session "
				 "may not read it");
	assert_int_equal(leaks(&m, r, "SELECT * FROM pg_catalog.pg_stats", why), 1);
	assert_int_equal(leaks(&m, r, "SELECT * FROM \"pg_catalog\".\"pg_stats\"", why), 1);
	assert_int_equal(leaks(&m, r, "SELECT * FROM PG_CATALOG.PG_STATS", why), 1);
	assert_int_equal(leaks(&m, r, "TABLE pg_stats_ext", why), 1);
	assert_int_equal(leaks(&m, r, "SELECT 1 WHERE EXISTS (SELECT 1 FROM pg_stats_ext_exprs)", why), 1);
	assert_int_equal(leaks(&m, r, "SELECT stavalues1 FROM pg_statistic", why), 1);
	assert_int_equal(leaks(&m, r, "SELECT stxdmcv FROM pg_catalog.pg_statistic_ext_data", why), 1);
	assert_int_equal(leaks(&m, r, "SELECT * FROM ops.col_stats", why), 1); /* a view over pg_stats */
	assert_int_equal(leaks(&m, r, "SELECT * FROM col_stats", why), 1);     /* on the search_path */
	assert_int_equal(leaks(&m, r, "CREATE VIEW mine AS SELECT histogram_bounds::text FROM pg_stats", why), 1);
	assert_int_equal(leaks(&m, r, "SELECT * FROM other.col_stats", why), 0);
	assert_int_equal(leaks(&m, r, "SELECT * FROM pg_stat_activity", why), 0);
	maskset_release(&m);
	policy_release(&p);
}

/* A column once resolved is looked for again by OID, under its names of now. */
static void test_anchors(void **state)
{
	struct maskset m = { 0 };
	struct policy p;
	const struct policy_rule *r;
	char why[400];
	int err;
	char *q;

	(void)state;
	load(&p);
	r = &p.rules[0];
	q = maskset_query(r, &m, &err);
	assert_non_null(strstr(q, "WHERE false),\nt(i, rel, c)")); /* nothing resolved yet */
	free(q);
	row(&m, r, "{\"k\": \"c\", \"rel\": 16384, \"att\": 2, \"m\": 0, \"col\": \"email\", \"schema\": \"public\", \"name\": \"users\"}");
	row(&m, r, "{\"k\": \"c\", \"rel\": 16700, \"att\": 3, \"m\": 1, \"col\": \"phone\", \"schema\": \"crm\", \"name\": \"people\"}");
	assert_int_equal(maskset_finish(&m, r), 0);
	q = maskset_query(r, &m, &err);
	maskset_reset(&m);
	assert_non_null(strstr(q, "UNION ALL VALUES (0, 16384::pg_catalog.oid, 2::pg_catalog.int2)"));
	assert_non_null(strstr(q, "UNION ALL VALUES (1, 16700::pg_catalog.oid, 3::pg_catalog.int2)"));
	free(q);
	/* renamed since (ALTER SCHEMA public RENAME TO old, ALTER TABLE ... RENAME COLUMN) */
	row(&m, r, "{\"k\": \"c\", \"rel\": 16384, \"att\": 2, \"m\": 0, \"col\": \"mail\", \"schema\": \"old\", \"name\": \"users\"}");
	assert_int_equal(maskset_finish(&m, r), 0);
	assert_int_equal(maskset_find(&m, 16384, 2), 0);
	assert_int_equal(leaks(&m, r, "SELECT upper(mail) FROM old.users", why), 1);
	assert_string_equal(why, "rule 'agent' masks old.users.mail, and a value computed or copied from it would leave "
				 "unmasked (a mask's \"allow\": [\"computed\"] would permit it)");
	/* crm.people.phone was not found again (dropped): no longer looked for */
	q = maskset_query(r, &m, &err);
	assert_non_null(strstr(q, "(0, 16384::pg_catalog.oid"));
	assert_null(strstr(q, "16700"));
	free(q);
	maskset_release(&m);
	policy_release(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_query),
		cmocka_unit_test(test_views),
		cmocka_unit_test(test_leaks),
		cmocka_unit_test(test_statistics),
		cmocka_unit_test(test_shadows),
		cmocka_unit_test(test_anchors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
