/* Unit tests for daemon/sqlclass.c: the corpus in tests/fixtures/sql-corpus.sql, and
 * input too large or too deep to parse safely. */
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

/* "read, write" → bits; "error" → ~0u */
static unsigned parse_expect(const char *list)
{
	char buf[256], *save = NULL, *tok;
	unsigned bits = 0;

	snprintf(buf, sizeof(buf), "%s", list);
	if (strcmp(buf, "error") == 0)
		return ~0u;
	for (tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
		unsigned b = sqlclass_from_name(tok);

		if (!b)
			fail_msg("unknown class '%s' in the corpus", tok);
		bits |= b;
	}
	return bits;
}

static int check_case(const char *expect, const char *sql, int line)
{
	struct sqlclass_result r;
	unsigned want;
	char got[256];
	int rc;

	if (!strcmp(expect, "guarded") || !strcmp(expect, "encoding")) {
		/* guarded: denied whatever the rule allows (sqlguard.h); encoding: reads
		 * differently in a client-only encoding */
		bool enc = !strcmp(expect, "encoding");

		rc = sqlclass_classify(sql, sqlclass_default_dangerous, &r);
		if (enc ? rc != -EILSEQ : (rc != 0 || !r.guard[0])) {
			fprintf(stderr, "sql-corpus.sql:%d: expected %s, got rc %d guard '%s' error '%s' for: %s\n", line, expect,
				rc, r.guard, r.error, sql);
			sqlclass_release(&r);
			return 1;
		}
		sqlclass_release(&r);
		return 0;
	}
	want = parse_expect(expect);
	rc = sqlclass_classify(sql, sqlclass_default_dangerous, &r);
	if (rc == 0 && r.guard[0]) {
		fprintf(stderr, "sql-corpus.sql:%d: unexpectedly guarded (%s): %s\n", line, r.guard, sql);
		sqlclass_release(&r);
		return 1;
	}
	if (want == ~0u) {
		if (rc != -EINVAL || r.error[0] == '\0') {
			fprintf(stderr, "sql-corpus.sql:%d: expected a parse error for: %s\n", line, sql);
			sqlclass_release(&r);
			return 1;
		}
		sqlclass_release(&r);
		return 0;
	}
	sqlclass_format(r.classes, got, sizeof(got));
	if (rc != 0 || r.classes != want) {
		fprintf(stderr, "sql-corpus.sql:%d: expected [%s], got [%s] (rc %d %s) for: %s\n", line, expect, got, rc,
			r.error, sql);
		sqlclass_release(&r);
		return 1;
	}
	sqlclass_release(&r);
	return 0;
}

static void test_corpus(void **state)
{
	FILE *f = fopen(FIXTURES "/sql-corpus.sql", "r");
	char line[4096], expect[256] = "", sql[16384] = "";
	int lineno = 0, at = 0, cases = 0, failed = 0;

	(void)state;
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		if (strncmp(line, "-- expect: ", 11) == 0) {
			if (expect[0]) {
				failed += check_case(expect, sql, at);
				cases++;
			}
			snprintf(expect, sizeof(expect), "%s", line + 11);
			expect[strcspn(expect, "\n")] = '\0';
			sql[0] = '\0';
			at = lineno + 1;
		} else if (expect[0]) {
			strncat(sql, line, sizeof(sql) - strlen(sql) - 1);
		}
	}
	fclose(f);
	if (expect[0]) {
		failed += check_case(expect, sql, at);
		cases++;
	}
	fprintf(stderr, "%d corpus cases, %d failed\n", cases, failed);
	assert_true(cases >= 150);
	assert_int_equal(failed, 0);
}

static bool has(char *const *list, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i], name) == 0)
			return true;
	return false;
}

static void test_tables_and_functions(void **state)
{
	struct sqlclass_result r;

	(void)state;
	assert_int_equal(sqlclass_classify("WITH g AS (DELETE FROM audit.log RETURNING *) "
					   "SELECT pg_read_file('x'), * FROM public.users u JOIN orders o ON true, g",
					   sqlclass_default_dangerous, &r), 0);
	assert_int_equal(r.n_stmts, 1);
	assert_int_equal(r.n_tables, 4);
	assert_true(has(r.tables, r.n_tables, "audit.log"));
	assert_true(has(r.tables, r.n_tables, "public.users"));
	assert_true(has(r.tables, r.n_tables, "orders"));
	assert_true(has(r.tables, r.n_tables, "g")); /* a CTE name looks like a table */
	assert_int_equal(r.n_functions, 1);
	assert_string_equal(r.functions[0], "pg_read_file");
	sqlclass_release(&r);

	/* DROP names its tables as lists of strings */
	assert_int_equal(sqlclass_classify("DROP TABLE a, s.b; DROP FUNCTION f()", NULL, &r), 0);
	assert_int_equal(r.n_tables, 2);
	assert_true(has(r.tables, r.n_tables, "a"));
	assert_true(has(r.tables, r.n_tables, "s.b"));
	sqlclass_release(&r);

	/* per statement */
	assert_int_equal(sqlclass_classify("BEGIN; UPDATE t SET a = 1; COMMIT", NULL, &r), 0);
	assert_int_equal(r.n_stmts, 3);
	assert_int_equal(r.stmt_classes[0], SQL_TRANSACTION);
	assert_int_equal(r.stmt_classes[1], SQL_WRITE);
	assert_int_equal(r.stmt_classes[2], SQL_TRANSACTION);
	sqlclass_release(&r);

	/* an admin's own dangerous list */
	static const char *const mine[] = { "archive_*", NULL };
	assert_int_equal(sqlclass_classify("SELECT archive_everything(), pg_read_file('x')", mine, &r), 0);
	assert_int_equal(r.classes, SQL_READ | SQL_DANGEROUS_FUNCTION);
	assert_int_equal(r.n_functions, 1);
	assert_string_equal(r.functions[0], "archive_everything");
	sqlclass_release(&r);

	/* nothing to decide */
	assert_int_equal(sqlclass_classify("  ; -- only a comment", NULL, &r), 0);
	assert_int_equal(r.classes, 0);
	sqlclass_release(&r);
}

static void test_errors_and_depth(void **state)
{
	struct sqlclass_result r;
	size_t n = 100000, len = strlen("select 1") + n * strlen(" union select 1") + 1;
	char *sql = malloc(len), *p;

	(void)state;
	assert_int_equal(sqlclass_classify("SELECT 1 FROM", NULL, &r), -EINVAL);
	assert_string_equal(r.error, "syntax error at end of input");
	assert_int_equal(r.error_pos, 14);
	sqlclass_release(&r);

	/* a 100k-term UNION: too deep to check, refused, and no crash */
	assert_non_null(sql);
	p = sql + sprintf(sql, "select 1");
	for (size_t i = 0; i < n; i++)
		p += sprintf(p, " union select 1");
	assert_int_equal(sqlclass_classify(sql, NULL, &r), -EINVAL);
	assert_string_equal(r.error, "the statement is nested too deeply to be checked");
	sqlclass_release(&r);
	/* short texts whose trees nest too deep to unpack on the caller's stack are read
	 * on the parse thread's: classified as before, or refused past the JSON depth */
	for (size_t levels = 700; levels <= 1500; levels += 800) {
		p = sql + sprintf(sql, "SELECT ");
		for (size_t i = 0; i < levels; i++)
			p += sprintf(p, "- ");
		sprintf(p, "x");
		assert_true(strlen(sql) < 4096);
		if (levels == 700) {
			assert_int_equal(sqlclass_classify(sql, NULL, &r), 0);
			assert_int_equal(r.classes, SQL_READ);
		} else {
			assert_int_equal(sqlclass_classify(sql, NULL, &r), -EINVAL);
			assert_string_equal(r.error, "the statement is nested too deeply to be checked");
		}
		sqlclass_release(&r);
	}
	free(sql);
}

static void test_cache(void **state)
{
	struct sqlclass_cache *c = calloc(1, sizeof(*c));
	const struct sqlclass_result *r, *again;
	struct sqlclass_result tmp = { 0 };
	const char *q = "DELETE FROM t WHERE id = $1";

	(void)state;
	assert_int_equal(sqlclass_cached(c, q, strlen(q), NULL, &tmp, &r), 0);
	assert_int_equal(r->classes, SQL_WRITE);
	assert_int_equal(sqlclass_cached(c, q, strlen(q), NULL, &tmp, &again), 0);
	assert_ptr_equal(r, again);
	assert_int_equal(c->hits, 1);
	assert_int_equal(c->misses, 1);
	/* errors are kept too, with their message */
	assert_int_equal(sqlclass_cached(c, "SELEC 1", 7, NULL, &tmp, &r), -EINVAL);
	assert_int_equal(sqlclass_cached(c, "SELEC 1", 7, NULL, &tmp, &r), -EINVAL);
	assert_string_equal(r->error, "syntax error at or near \"SELEC\"");
	/* another text is another classification */
	assert_int_equal(sqlclass_cached(c, "SELECT 1", 8, NULL, &tmp, &r), 0);
	assert_int_equal(r->classes, SQL_READ);
	sqlclass_cache_clear(c);
	assert_int_equal(sqlclass_cached(c, q, strlen(q), NULL, &tmp, &r), 0);
	assert_int_equal(c->misses, 4);
	sqlclass_cache_clear(c);
	free(c);
}

/* "a,b" of a name list, in order */
static void join_names(char *const *list, size_t n, char *out, size_t cap)
{
	size_t k = 0;

	out[0] = '\0';
	for (size_t i = 0; i < n && k < cap; i++)
		k += (size_t)snprintf(out + k, cap - k, "%s%s", i ? "," : "", list[i]);
}

/* Where masked values could leave unseen: out_columns and whole_rows. */
static void test_output_references(void **state)
{
	static const struct { const char *sql, *out, *whole; } cases[] = {
		{ "SELECT * FROM users", "", "" },
		{ "SELECT id, email AS e FROM users", "", "" },
		{ "SELECT u.email FROM users u JOIN orders o ON o.uid = u.id WHERE u.email LIKE 'a%'", "", "" },
		{ "SELECT e FROM (SELECT email AS e FROM users) s", "", "" },
		{ "WITH x AS (SELECT email FROM users) SELECT * FROM x", "", "" },
		/* a CTE's body is walked: its withClause is not a wrapped node */
		{ "WITH x AS (SELECT lower(email) AS e FROM users) SELECT e FROM x", "email", "" },
		{ "WITH RECURSIVE x AS (SELECT email FROM users UNION ALL SELECT email FROM x) SELECT email FROM x",
		  "email", "" },
		{ "WITH x AS (SELECT upper(email) AS e FROM users) INSERT INTO t SELECT e FROM x", "email,e", "" },
		{ "INSERT INTO o VALUES (1) ON CONFLICT (id) DO UPDATE SET note = (SELECT email FROM users)", "email", "" },
		{ "EXPLAIN ANALYZE INSERT INTO t SELECT lower(email) FROM users", "email", "" },
		{ "EXPLAIN ANALYZE CREATE TABLE t AS SELECT email FROM users", "email", "" },
		{ "EXPLAIN (ANALYZE, VERBOSE) SELECT lower(email) FROM users", "", "" },
		{ "EXPLAIN ANALYZE SELECT lower(email) INTO TEMP t FROM users", "email", "" },
		{ "EXPLAIN ANALYZE WITH u AS (INSERT INTO t SELECT email FROM users RETURNING 1) SELECT 1", "email", "" },
		{ "SELECT upper(email) FROM users", "email", "" },
		{ "SELECT email::text FROM users", "email", "" },
		{ "SELECT (SELECT email FROM users LIMIT 1)", "email", "" },
		{ "SELECT email FROM users UNION SELECT 'x'", "email", "" },
		{ "SELECT row_to_json(u) FROM users u", "", "users" },
		{ "SELECT u FROM public.users u", "", "public.users" },
		{ "SELECT to_jsonb(u.*) FROM users u", "", "users" },
		{ "SELECT * FROM users UNION ALL SELECT * FROM users", "", "*" },
		{ "INSERT INTO copy SELECT email FROM users", "email", "" },
		{ "CREATE TABLE c AS SELECT id, email FROM users", "id,email", "" },
		{ "SELECT email INTO c FROM users", "email", "" },
		{ "UPDATE t SET a = email FROM users", "email", "" },
		{ "UPDATE users SET name = 'x' RETURNING email", "", "" },
		{ "CREATE VIEW v AS SELECT email FROM users", "email", "" },
		{ "COPY (SELECT email FROM users) TO STDOUT", "email", "" },
		{ "PREPARE p AS SELECT email FROM users", "", "" },
		{ "SELECT count(*) FROM users WHERE email = 'a'", "", "" },
		{ "SELECT id FROM users WHERE email::int = 1", "email", "" },
		{ "SELECT email FROM other FULL JOIN users USING (email)", "email", "" },
		{ "SELECT * FROM other NATURAL JOIN users", "", "*" },
		{ "SELECT id FROM users WHERE created > '2026-01-01'::date", "", "" }, /* a constant cast */
	};
	char out[512], whole[512];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sqlclass_result r;

		assert_int_equal(sqlclass_classify(cases[i].sql, sqlclass_default_dangerous, &r), 0);
		join_names(r.out_columns, r.n_out_columns, out, sizeof(out));
		join_names(r.whole_rows, r.n_whole_rows, whole, sizeof(whole));
		if (strcmp(out, cases[i].out) || strcmp(whole, cases[i].whole))
			fail_msg("%s: out [%s] whole [%s], expected [%s] [%s]", cases[i].sql, out, whole, cases[i].out,
				 cases[i].whole);
		sqlclass_release(&r);
	}
}

/* Columns passed to functions that carry their arguments out: carried and carrier. */
static void test_carried(void **state)
{
	static const struct { const char *sql, *carried, *carrier; } cases[] = {
		{ "SELECT 1 FROM users WHERE pg_notify('ch', email) IS NULL", "email", "pg_notify" },
		{ "SELECT 1 FROM users WHERE set_config('a.b', lower(u.email) || name, false) <> ''", "email,name", "set_config" },
		{ "SELECT 1 FROM users u WHERE pg_notify('c', u::text) IS NULL", "*", "pg_notify" },
		{ "SELECT 1 FROM (SELECT email AS x FROM users) s WHERE pg_notify('c', x) IS NULL", "*", "pg_notify" },
		{ "SELECT 1 FROM users WHERE pg_try_advisory_lock(id)", "id", "pg_try_advisory_lock" },
		{ "SELECT pg_notify('c', 'x'), upper(email) FROM users", "", "" },
		{ "SELECT 1 FROM users WHERE current_setting(email) IS NULL", "", "" },
		{ "VALUES (setval('s', (SELECT max(card) FROM users)))", "card", "setval" },
		{ "SELECT id FROM users WHERE log_value(email)", "email", "log_value" }, /* not built in */
		{ "SELECT id FROM users WHERE public.lower(email) = 'a'", "email", "lower" },
		{ "SELECT id FROM users WHERE lower(email) = 'a' AND pg_catalog.upper(name) = 'B'", "", "" },
	};
	char carried[512];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sqlclass_result r;

		assert_int_equal(sqlclass_classify(cases[i].sql, sqlclass_default_dangerous, &r), 0);
		join_names(r.carried, r.n_carried, carried, sizeof(carried));
		if (strcmp(carried, cases[i].carried) || strcmp(r.carrier, cases[i].carrier))
			fail_msg("%s: carried [%s] by [%s], expected [%s] [%s]", cases[i].sql, carried, r.carrier,
				 cases[i].carried, cases[i].carrier);
		sqlclass_release(&r);
	}
}

/* Calls of functions that are not PostgreSQL's own. */
static void test_calls_unknown(void **state)
{
	static const struct { const char *sql; int unknown; } cases[] = {
		{ "SELECT count(*), lower(email), extract(year from now()) FROM users", 0 },
		{ "SELECT pg_catalog.upper(trim(both ' ' from email)) FROM users WHERE position('@' in email) > 0", 0 },
		{ "SELECT * FROM generate_series(1, 3)", 0 },
		{ "SELECT leak(42)", 1 },
		{ "SELECT 1 FROM users WHERE audit_email(email)", 1 },
		{ "SELECT public.lower('x')", 1 },  /* not pg_catalog's */
		{ "SELECT * FROM my_srf()", 1 },
		{ "SELECT 1", 0 },
	};

	(void)state;
	assert_true(sqlclass_builtin("current_setting"));
	assert_false(sqlclass_builtin("leak"));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sqlclass_result r;

		assert_int_equal(sqlclass_classify(cases[i].sql, sqlclass_default_dangerous, &r), 0);
		if (r.calls_unknown != cases[i].unknown)
			fail_msg("%s: calls_unknown %d, expected %d", cases[i].sql, r.calls_unknown, cases[i].unknown);
		sqlclass_release(&r);
	}
}

/* Whether r lists the resolved call (kind, name, column). */
static bool has_call(const struct sqlclass_result *r, char kind, const char *name, const char *column)
{
	for (size_t i = 0; i < r->n_calls; i++)
		if (r->calls[i].kind == kind && !strcmp(r->calls[i].name, name) && !strcmp(r->calls[i].column, column))
			return true;
	return false;
}

/* Calls PostgreSQL resolves along the search_path, which a masked session checks
 * against the database's own functions and operators outside pg_catalog. */
static void test_resolved_calls(void **state)
{
	struct sqlclass_result r;

	(void)state;
	assert_int_equal(sqlclass_classify("SELECT id FROM t WHERE lower(note) IS NOT NULL AND pg_catalog.upper(email) <> ''"
					   " AND name BETWEEN 'a' AND 'b' AND x LIKE 'y%'", NULL, &r), 0);
	assert_true(has_call(&r, 'f', "lower", "note"));
	assert_true(has_call(&r, 'f', "lower", ""));
	assert_false(has_call(&r, 'f', "upper", "email")); /* qualified: pg_catalog's only */
	assert_true(has_call(&r, 'o', "<>", "")); /* the operator itself, with an unqualified call as operand */
	assert_true(has_call(&r, 'o', "<=", "name") && has_call(&r, 'o', ">", "name"));
	assert_true(has_call(&r, 'o', "~~", "x"));
	assert_false(has_call(&r, 'f', "leak", "")); /* not built in: calls_unknown instead */
	assert_int_equal(r.calls_unknown, 0);
	sqlclass_release(&r);

	assert_int_equal(sqlclass_classify("SELECT CASE note WHEN '{a}' THEN 1 END FROM t JOIN u USING (k)"
					   " WHERE 'x' IN (SELECT note FROM t) AND v = ANY (SELECT w FROM s)"
					   " ORDER BY z USING <", NULL, &r), 0);
	assert_true(has_call(&r, 'o', "=", "note") && has_call(&r, 'o', "=", "k") && has_call(&r, 'o', "=", "v") &&
		    has_call(&r, 'o', "=", "w"));
	assert_true(has_call(&r, 'o', "<", "z"));
	sqlclass_release(&r);

	/* an operator of a schema other than pg_catalog is the database's own */
	assert_int_equal(sqlclass_classify("SELECT id FROM t WHERE note OPERATOR(app.=) '{x}'", NULL, &r), 0);
	assert_int_equal(r.calls_unknown, 1);
	assert_int_equal(r.n_carried, 1);
	assert_string_equal(r.carried[0], "note");
	assert_string_equal(r.carrier, "OPERATOR(app.=)");
	sqlclass_release(&r);
	assert_int_equal(sqlclass_classify("SELECT id FROM t WHERE note OPERATOR(pg_catalog.=) '{x}'", NULL, &r), 0);
	assert_int_equal(r.calls_unknown, 0);
	assert_int_equal(r.n_calls, 0);
	sqlclass_release(&r);

	/* NATURAL JOIN compares columns no name tells */
	assert_int_equal(sqlclass_classify("SELECT 1 FROM t NATURAL JOIN u", NULL, &r), 0);
	assert_true(has_call(&r, 'o', "=", "*"));
	sqlclass_release(&r);

	/* DDL that names a function or operator a later call may reach runs code */
	static const char *const defines[] = {
		"CREATE OPERATOR app.= (leftarg = text[], rightarg = text[], function = app.eq)",
		"CREATE AGGREGATE app.max(text[]) (sfunc = app.f, stype = text[])",
		"ALTER FUNCTION app.f(text[]) RENAME TO lower",
		"CREATE EXTENSION citext",
	};
	for (size_t i = 0; i < sizeof(defines) / sizeof(defines[0]); i++) {
		assert_int_equal(sqlclass_classify(defines[i], NULL, &r), 0);
		if (!r.runs_code)
			fail_msg("%s: runs_code 0", defines[i]);
		sqlclass_release(&r);
	}
	assert_int_equal(sqlclass_classify("ALTER TABLE t RENAME TO lower", NULL, &r), 0);
	assert_int_equal(r.runs_code, 0);
	sqlclass_release(&r);
}

/* More names than can be listed: the statement cannot be checked, so it is denied. */
static void test_too_many_names(void **state)
{
	char sql[8192];
	size_t n = 0;
	struct sqlclass_result r;

	(void)state;
	n += (size_t)snprintf(sql + n, sizeof(sql) - n, "SELECT 1 FROM ");
	for (int i = 0; i < 70; i++)
		n += (size_t)snprintf(sql + n, sizeof(sql) - n, "%st%d", i ? ", " : "", i);
	snprintf(sql + n, sizeof(sql) - n, ", users");
	assert_int_equal(sqlclass_classify(sql, sqlclass_default_dangerous, &r), -E2BIG);
	assert_string_equal(r.error, "it names more than 64 tables, functions or columns, more than can be checked");
	sqlclass_release(&r);
}

/* What may make a read-only session's transaction read-write (sets_read_write). */
static void test_sets_read_write(void **state)
{
	static const char *const yes[] = {
		"SET default_transaction_read_only = off", "BEGIN READ WRITE", "RESET transaction_read_only",
		"SET LOCAL transaction_read_only TO DEFAULT", "SET \"transaction_read_only\" = DEFAULT",
		"DO $$BEGIN NULL; END$$", "SELECT go_rw(); COMMIT; SELECT 1", "SELECT 1; END; SELECT 2",
		"SELECT set_config('transaction_read_only', 'off', false)",
		"SELECT set_config(name, 'off', false) FROM pg_settings WHERE name = 'default_transaction_read_only'", NULL,
	};
	static const char *const no[] = {
		"RESET default_transaction_read_only", "SET default_transaction_read_only TO DEFAULT", "RESET ALL",
		"BEGIN READ ONLY", "BEGIN; SELECT 1; COMMIT", "SELECT 1; ROLLBACK; SELECT 2", "SET transaction_isolation TO DEFAULT",
		/* pg_dump's; the session makes sure the row's name is the setting's */
		"SELECT set_config(name, 'view, foreign-table', false) FROM pg_settings WHERE name = 'restrict_nonsystem_relation_kind'",
		NULL,
	};
	struct sqlclass_result r;

	(void)state;
	for (const char *const *q = yes; *q; q++) {
		assert_int_equal(sqlclass_classify(*q, sqlclass_default_dangerous, &r), 0);
		if (!r.sets_read_write)
			fail_msg("%s: not read-write", *q);
		sqlclass_release(&r);
	}
	for (const char *const *q = no; *q; q++) {
		assert_int_equal(sqlclass_classify(*q, sqlclass_default_dangerous, &r), 0);
		if (r.sets_read_write)
			fail_msg("%s: read-write", *q);
		sqlclass_release(&r);
	}
}

/* pg_dump's set_config(name, ...) FROM pg_settings WHERE name = '...': the name it
 * sets, only for exactly that shape. */
static void test_settings_row(void **state)
{
	struct sqlclass_result r;

	(void)state;
	assert_int_equal(sqlclass_classify("SELECT set_config(name, 'view, foreign-table', false) FROM pg_settings "
					   "WHERE name = 'restrict_nonsystem_relation_kind'", sqlclass_default_dangerous, &r), 0);
	assert_string_equal(r.settings_row, "restrict_nonsystem_relation_kind");
	assert_int_equal(r.guard[0], 0);
	assert_int_equal(r.classes, SQL_READ | SQL_SESSION);
	sqlclass_release(&r);
	assert_int_equal(sqlclass_classify("SELECT set_config(name, 'x', false) FROM pg_settings WHERE name = 'a' OR true",
					   sqlclass_default_dangerous, &r), 0);
	assert_string_equal(r.settings_row, "");
	assert_int_not_equal(r.guard[0], 0);
	sqlclass_release(&r);
	assert_int_equal(sqlclass_classify("SELECT set_config(name, 'view', false) FROM pg_settings WHERE name = 'x'; "
					   "SELECT 1 FROM pg_settings", sqlclass_default_dangerous, &r), 0);
	assert_string_equal(r.settings_row, "x");
	assert_int_equal(r.guard[0], 0);
	sqlclass_release(&r);
}

/* View definitions as pg_get_viewdef prints them. */
static void test_view_columns(void **state)
{
	struct sqlclass_view v;

	(void)state;
	assert_int_equal(sqlclass_view_columns(" SELECT users.id,\n    users.email AS contact,\n    lower(users.email) AS l,\n"
					       "    row_to_json(u.*) AS j\n   FROM users u;", &v), 0);
	assert_false(v.complex);
	assert_int_equal(v.n, 4);
	assert_string_equal(v.cols[0].direct, "id");
	assert_string_equal(v.cols[1].direct, "email");
	assert_null(v.cols[2].direct);
	assert_int_equal(v.cols[2].n_refs, 1);
	assert_string_equal(v.cols[2].refs[0], "email");
	assert_int_equal(v.cols[3].whole, 1);
	sqlclass_view_release(&v);
	assert_int_equal(sqlclass_view_columns("SELECT email FROM users UNION SELECT 'x'", &v), 0);
	assert_true(v.complex);
	sqlclass_view_release(&v);
	assert_int_equal(sqlclass_view_columns("SELECT e FROM (SELECT email AS e FROM users) s", &v), 0);
	assert_true(v.complex);
	sqlclass_view_release(&v);
	assert_int_equal(sqlclass_view_columns("DELETE FROM users", &v), -EINVAL);
	sqlclass_view_release(&v);
}

/* PL/pgSQL bodies that do not compile, and texts with no function for the PL/pgSQL
 * parser: libpg_query 15-4.0.0 leaked its stderr text on both (LeakSanitizer fails
 * this binary at exit when it comes back); still denied as before. */
static void test_plpgsql_parse_does_not_leak(void **state)
{
	static const char *const texts[] = {
		"DO $$#BEGIN PERFORM set_config('pgtether.identity', 'x', false); END $$",
		"DO $$#option dump\nBEGIN PERFORM set_config('pgtether.identity', 'x', false); END $$",
		"CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN PERFORM set_config('pgtether.x', 'y', false) $$",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct sqlclass_result r = { 0 };

		sqlclass_classify(texts[i], sqlclass_default_dangerous, &r);
		assert_true(r.guard[0] != '\0');
		sqlclass_release(&r);
	}
}

static void test_names(void **state)
{
	char buf[128];

	(void)state;
	assert_int_equal(sqlclass_from_name("copy_program"), SQL_COPY_PROGRAM);
	assert_int_equal(sqlclass_from_name("nope"), 0);
	assert_string_equal(sqlclass_name(SQL_ALTER_ROLE), "alter_role");
	sqlclass_format(SQL_READ | SQL_DROP, buf, sizeof(buf));
	assert_string_equal(buf, "read, drop");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_corpus),
		cmocka_unit_test(test_tables_and_functions),
		cmocka_unit_test(test_errors_and_depth),
		cmocka_unit_test(test_cache),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_output_references),
		cmocka_unit_test(test_carried),
		cmocka_unit_test(test_calls_unknown),
		cmocka_unit_test(test_resolved_calls),
		cmocka_unit_test(test_view_columns),
		cmocka_unit_test(test_too_many_names),
		cmocka_unit_test(test_sets_read_write),
		cmocka_unit_test(test_settings_row),
		cmocka_unit_test(test_plpgsql_parse_does_not_leak),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
