/* Unit tests for daemon/searchpath.c: what a statement names and sets, the answer
 * rows, and the table verdict on the session's search_path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pgwire.h"
#include "searchpath.h"

static const char rules[] =
	"{ \"rules\": [\n"
	"  { \"name\": \"pub\", \"match\": { \"cgroup\": \"/a\" }, \"token\": { \"source\": \"none\" }, \"upstream\": \"main\",\n"
	"    \"statements\": { \"allow\": [\"read\", \"write\", \"ddl\", \"session\", \"transaction\"],\n"
	"                    \"tables\": { \"allow\": [\"public.*\"] } } },\n"
	"  { \"name\": \"agent\", \"match\": { \"cgroup\": \"/b\" }, \"token\": { \"source\": \"none\" }, \"upstream\": \"main\",\n"
	"    \"statements\": { \"allow\": [\"read\", \"session\"], \"tables\": { \"deny\": [\"public.secrets\"] } } },\n"
	"  { \"name\": \"free\", \"match\": { \"cgroup\": \"/c\" }, \"token\": { \"source\": \"none\" }, \"upstream\": \"main\",\n"
	"    \"statements\": { \"allow\": [\"read\"] } }\n"
	"] }\n";

/* One DataRow body of three text fields (NULL for SQL NULL). */
static size_t row(uint8_t *out, const char *k, const char *v, const char *w)
{
	const char *f[3] = { k, v, w };
	size_t n = 2;

	out[0] = 0;
	out[1] = 3;
	for (int i = 0; i < 3; i++) {
		uint32_t len = f[i] ? (uint32_t)strlen(f[i]) : UINT32_MAX;

		pgwire_put32(out + n, len);
		n += 4;
		if (f[i]) {
			memcpy(out + n, f[i], len);
			n += len;
		}
	}
	return n;
}

static void add(struct searchpath_state *st, const char *k, const char *v, const char *w)
{
	uint8_t b[512];

	assert_int_equal(searchpath_add_row(st, b, row(b, k, v, w)), 0);
}

/* The server's answer for a session: path is "s1,s2,..." as current_schemas(true). */
static void answer(struct searchpath_state *st, const char *path, const char *creation, const char *temp)
{
	char buf[256], *save = NULL;

	memset(st, 0, sizeof(*st));
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *s = strtok_r(buf, ",", &save); s; s = strtok_r(NULL, ",", &save))
		add(st, "p", s, NULL);
	add(st, "c", creation, NULL);
	add(st, "t", temp, NULL);
	add(st, "u", "app", NULL);
	add(st, "r", "public", "secrets");
	add(st, "r", "evil", "secrets");
	add(st, "r", "public", "orders");
	add(st, "r", "evil", "orders");
	add(st, "x", "hidden", "orders"); /* no USAGE */
	add(st, "r", "pg_catalog", "pg_class");
	add(st, "r", "public", "items");
	if (temp)
		add(st, "r", temp, "items");
}

static const struct policy_rule *rule(const struct policy *p, const char *name)
{
	for (size_t i = 0; i < p->n; i++)
		if (!strcmp(p->rules[i].name, name))
			return &p->rules[i];
	fail();
	return NULL;
}

/* The verdict on sql under rule r with the answer st (NULL: none); why into why. */
static enum policy_verdict check(const struct policy_rule *r, const char *sql, const struct searchpath_state *st,
				 bool prepared, char *why)
{
	struct sqlclass_result c;
	struct searchpath_scan sc;
	enum policy_verdict v;

	assert_int_equal(sqlclass_classify(sql, NULL, &c), 0);
	assert_true(searchpath_needed(r, &c));
	assert_int_equal(searchpath_scan(sql, &sc), 0);
	why[0] = '\0';
	v = searchpath_check(r, &c, &sc, st, prepared, "pipelining", why, 400);
	searchpath_scan_release(&sc);
	sqlclass_release(&c);
	return v;
}

static void test_scan(void **state)
{
	struct searchpath_scan sc;

	(void)state;
	assert_int_equal(searchpath_scan("SET LOCAL search_path = evil, 'Pub', \"$user\", pg_temp; "
					 "create temp table x (a int); prepare p as select * from t; "
					 "select 1 into y; create view s.v as select 1 from public.w; "
					 "set search_path to default; drop table a, b.c; begin; SET \"Search_Path\" = 'x'",
					 &sc), 0);
	assert_int_equal(sc.n_stmts, 9);
	assert_int_equal(sc.stmts[0].effect, SEARCHPATH_SETS);
	assert_int_equal(sc.stmts[0].n_path, 4);
	assert_string_equal(sc.stmts[0].path[0], "evil");
	assert_string_equal(sc.stmts[0].path[1], "Pub");
	assert_string_equal(sc.stmts[0].path[2], "$user");
	assert_string_equal(sc.stmts[0].path[3], "pg_temp");
	assert_int_equal(sc.stmts[1].effect, SEARCHPATH_UNKNOWN);
	assert_int_equal(sc.stmts[5].effect, SEARCHPATH_UNKNOWN); /* TO DEFAULT: the default is not known */
	assert_int_equal(sc.stmts[7].effect, SEARCHPATH_NONE);
	assert_int_equal(sc.stmts[8].effect, SEARCHPATH_SETS); /* GUC names are case-insensitive */
	assert_int_equal(sc.n_refs, 7);
	assert_string_equal(sc.refs[0].name, "x");
	assert_int_equal(sc.refs[0].how, SEARCHPATH_CREATE_TEMP);
	assert_string_equal(sc.refs[1].name, "t");
	assert_true(sc.refs[1].later);
	assert_int_equal(sc.refs[1].stmt, 2);
	assert_string_equal(sc.refs[2].name, "y");
	assert_int_equal(sc.refs[2].how, SEARCHPATH_CREATE);
	assert_string_equal(sc.refs[3].schema, "s");
	assert_int_equal(sc.refs[3].how, SEARCHPATH_CREATE);
	assert_string_equal(sc.refs[4].schema, "public");
	assert_string_equal(sc.refs[5].name, "a");
	assert_string_equal(sc.refs[6].schema, "b");
	assert_int_equal(sc.n_unqualified, 4);
	searchpath_scan_release(&sc);
	/* a number, or an empty name, is no modelled path */
	assert_int_equal(searchpath_scan("set search_path = 1; set search_path = ''", &sc), 0);
	assert_int_equal(sc.stmts[0].effect, SEARCHPATH_UNKNOWN);
	assert_int_equal(sc.stmts[1].effect, SEARCHPATH_UNKNOWN);
	searchpath_scan_release(&sc);
	assert_int_equal(searchpath_scan("selec 1", &sc), -EINVAL);
	searchpath_scan_release(&sc);
}

static void test_query_and_rows(void **state)
{
	struct searchpath_scan sc;
	struct searchpath_state st = { 0 };
	uint8_t b[64];
	char *q;
	size_t len = 0, at;
	const char *lit;
	int err = 0;

	(void)state;
	assert_int_equal(searchpath_scan("select * from \"it's\", a, a, \"back\\slash\", \"q\"\"uote\"", &sc), 0);
	q = (char *)searchpath_request(&sc, true, &len, &err);
	assert_non_null(q);
	/* Close and Parse of the statement, every operator pg_catalog's */
	assert_int_equal(q[0], 'C');
	assert_int_equal(q[5], 'S');
	assert_string_equal(q + 6, SEARCHPATH_STATEMENT);
	q += 1 + pgwire_get32((uint8_t *)q + 1);
	len -= 6 + sizeof(SEARCHPATH_STATEMENT);
	assert_int_equal(q[0], 'P');
	assert_string_equal(q + 5, SEARCHPATH_STATEMENT);
	assert_non_null(strstr(q + 5 + sizeof(SEARCHPATH_STATEMENT), "ANY ($1::pg_catalog.name[])"));
	assert_null(strstr(q + 5 + sizeof(SEARCHPATH_STATEMENT), " = "));
	at = 1 + pgwire_get32((uint8_t *)q + 1);
	assert_int_equal(q[at], 'C'); /* of the portal */
	assert_int_equal(q[at + 5], 'P');
	at += 1 + pgwire_get32((uint8_t *)q + at + 1);
	/* Bind with the names, each once, as a name[] literal */
	assert_int_equal(q[at], 'B');
	lit = "{\"it's\",\"a\",\"back\\\\slash\",\"q\\\"uote\"}";
	assert_non_null(memmem(q + at, len - at, lit, strlen(lit)));
	at += 1 + pgwire_get32((uint8_t *)q + at + 1);
	assert_int_equal(q[at], 'E');
	at += 1 + pgwire_get32((uint8_t *)q + at + 1);
	assert_int_equal(q[at], 'C');
	at += 1 + pgwire_get32((uint8_t *)q + at + 1);
	assert_int_equal(q[at], 'S');
	assert_int_equal(at + 5, len);
	free(q - 6 - sizeof(SEARCHPATH_STATEMENT));
	/* prepared already: no Parse */
	q = (char *)searchpath_request(&sc, false, &len, &err);
	assert_int_equal(q[0], 'C');
	assert_int_equal(q[5], 'P');
	assert_int_equal(q[1 + pgwire_get32((uint8_t *)q + 1)], 'B');
	free(q);
	searchpath_scan_release(&sc);
	/* rows: a NULL creation schema, and what is not a row of ours */
	add(&st, "c", NULL, NULL);
	assert_null(st.creation);
	assert_int_equal(searchpath_add_row(&st, b, row(b, "z", "x", NULL)), -EBADMSG);
	assert_int_equal(searchpath_add_row(&st, b, row(b, "r", "x", NULL)), -EBADMSG);
	assert_int_equal(searchpath_add_row(&st, b, 3), -EBADMSG);
	b[1] = 2;
	assert_int_equal(searchpath_add_row(&st, b, 20), -EBADMSG);
	searchpath_state_release(&st);
}

static void test_verdicts(void **state)
{
	struct policy p = { NULL, 0 };
	struct searchpath_state plain, evil, temp, hidden;
	char err[POLICY_ERR_LEN], why[400];
	const struct policy_rule *pub, *agent;
	struct sqlclass_result c;

	(void)state;
	assert_int_equal(policy_parse(&p, "p.json", rules, strlen(rules), err), 0);
	pub = rule(&p, "pub");
	agent = rule(&p, "agent");
	answer(&plain, "pg_catalog,public", "public", NULL);
	answer(&evil, "pg_catalog,evil,public", "evil", NULL);
	answer(&temp, "pg_temp_3,pg_catalog,public", "public", "pg_temp_3");
	answer(&hidden, "pg_catalog,public", "public", NULL); /* "hidden, public": hidden skipped */

	/* the default path: public's, as before */
	assert_int_equal(check(pub, "select * from orders", &plain, false, why), POLICY_ALLOW);
	assert_int_equal(check(agent, "select * from secrets", &plain, false, why), POLICY_DENY);
	assert_string_equal(why, "table secrets resolves to public.secrets on this session's search_path, and table public.secrets is denied by rule 'agent'");
	/* evil first */
	assert_int_equal(check(pub, "select * from secrets", &evil, false, why), POLICY_DENY);
	assert_string_equal(why, "table secrets resolves to evil.secrets on this session's search_path, and table evil.secrets is not among the tables rule 'pub' allows");
	assert_int_equal(check(agent, "select * from orders", &evil, false, why), POLICY_ALLOW);
	/* the denied relation behind the one found counts too */
	assert_int_equal(check(agent, "select * from secrets", &evil, false, why), POLICY_DENY);
	assert_string_equal(why, "table secrets resolves to evil.secrets on this session's search_path, but public.secrets comes after it should that one go, and table public.secrets is denied by rule 'agent'; qualify the table name");
	/* SET in the same text: its path is modelled */
	assert_int_equal(check(pub, "set search_path = evil, public; select * from orders", &plain, false, why), POLICY_DENY);
	assert_string_equal(why, "table orders resolves to evil.orders on this session's search_path, and table evil.orders is not among the tables rule 'pub' allows");
	assert_int_equal(check(agent, "begin; set local search_path = evil; select * from secrets", &plain, false, why), POLICY_ALLOW);
	assert_int_equal(check(pub, "set search_path = public, evil; select * from orders", &evil, false, why), POLICY_DENY); /* evil behind */
	assert_int_equal(check(agent, "set search_path = '$user', public; select * from secrets", &evil, false, why), POLICY_DENY);
	/* pg_catalog first unless listed, and after evil when listed after it */
	assert_int_equal(check(pub, "select * from pg_class", &plain, false, why), POLICY_DENY);
	assert_string_equal(why, "table pg_class resolves to pg_catalog.pg_class on this session's search_path, and table pg_catalog.pg_class is not among the tables rule 'pub' allows");
	/* after a statement whose effect is unknown: every relation of the name */
	assert_int_equal(check(pub, "select set_config('search_path', 'public', false); select * from orders", &plain, false, why), POLICY_DENY);
	assert_int_equal(check(pub, "reset search_path; select * from items", &plain, false, why), POLICY_ALLOW);
	assert_int_equal(check(pub, "commit; select * from orders", &plain, false, why), POLICY_DENY);
	/* a schema without USAGE is skipped on the path, as the server skips it */
	assert_int_equal(check(pub, "select * from orders", &hidden, false, why), POLICY_ALLOW);
	assert_int_equal(check(pub, "set search_path = hidden, public; select * from orders", &plain, false, why), POLICY_ALLOW);
	/* ... but counts for a statement whose path is not known */
	assert_int_equal(check(pub, "select 1; select * from orders", &hidden, false, why), POLICY_DENY);
	/* the temporary schema first, named pg_temp */
	assert_int_equal(check(pub, "select * from items", &temp, false, why), POLICY_DENY);
	assert_string_equal(why, "table items resolves to pg_temp.items on this session's search_path, and table pg_temp.items is not among the tables rule 'pub' allows");
	assert_int_equal(check(pub, "set search_path = public, pg_temp; select * from items", &temp, false, why), POLICY_DENY);
	assert_int_equal(check(pub, "set search_path = public; select * from items", &plain, false, why), POLICY_ALLOW);
	/* creation */
	assert_int_equal(check(pub, "create table t (a int)", &plain, false, why), POLICY_ALLOW);
	assert_int_equal(check(pub, "create table t (a int)", &evil, false, why), POLICY_DENY);
	assert_int_equal(check(pub, "create temp table items (a int)", &plain, false, why), POLICY_DENY);
	assert_string_equal(why, "table items names no schema and is taken as in the schema it would be created in, and table pg_temp.items is not among the tables rule 'pub' allows");
	assert_int_equal(check(pub, "set search_path = public; create table t (a int)", &plain, false, why), POLICY_DENY);
	assert_int_equal(check(pub, "create table t (a int); insert into t values (1)", &plain, false, why), POLICY_ALLOW);
	assert_int_equal(check(pub, "create table public.t (a int); insert into t values (1)", &plain, false, why), POLICY_ALLOW);
	/* a CTE, or a relation nobody has: taken in the creation schema */
	assert_int_equal(check(pub, "with w as (select 1) select * from w", &evil, false, why), POLICY_DENY);
	assert_int_equal(check(pub, "with w as (select 1) select * from w", &plain, false, why), POLICY_ALLOW);
	/* Parse and PREPARE: every relation of the name, whatever the path now */
	assert_int_equal(check(agent, "select * from secrets", &evil, true, why), POLICY_DENY);
	assert_string_equal(why, "table secrets names no schema and may reach another schema's relation of that name by the time it runs (a prepared statement is resolved when it is executed), and table public.secrets is denied by rule 'agent'; qualify the table name");
	assert_int_equal(check(agent, "prepare p as select * from secrets", &evil, false, why), POLICY_DENY);
	assert_int_equal(check(pub, "select * from items", &plain, true, why), POLICY_ALLOW);
	/* no answer */
	assert_int_equal(check(pub, "select * from items", NULL, false, why), POLICY_DENY);
	assert_string_equal(why, "table items names no schema and rule 'pub' has table rules, but pipelining; qualify the table name");
	/* rules without table rules, and qualified names, need nothing */
	assert_int_equal(sqlclass_classify("select * from orders", NULL, &c), 0);
	assert_false(searchpath_needed(rule(&p, "free"), &c));
	sqlclass_release(&c);
	assert_int_equal(check(pub, "select * from public.orders", NULL, false, why), POLICY_ALLOW);
	/* a dot inside a quoted name is no schema */
	assert_int_equal(check(pub, "select * from \"public.orders\"", &evil, false, why), POLICY_DENY);
	assert_string_equal(why, "a schema or table name with a dot in it (\"public.orders\") cannot be told from a qualified name, so rule 'pub' cannot decide it");
	assert_int_equal(check(pub, "select * from \"public.x\".y", &plain, false, why), POLICY_DENY);

	searchpath_state_release(&plain);
	searchpath_state_release(&evil);
	searchpath_state_release(&temp);
	searchpath_state_release(&hidden);
	policy_release(&p);
}

/* pg_dump's set_config(name, ...) FROM pg_settings WHERE name = '...': under any rule,
 * only where pg_settings and = are pg_catalog's. */
static void test_settings_row(void **state)
{
	static const char row[] = "SELECT set_config(name, 'view', false) FROM pg_settings WHERE name = 'restrict_nonsystem_relation_kind'";
	struct policy p = { NULL, 0 };
	struct searchpath_state plain, temp, shadow, evil;
	char err[POLICY_ERR_LEN], why[400], sql[300];
	const struct policy_rule *free_rule;

	(void)state;
	assert_int_equal(policy_parse(&p, "p.json", rules, strlen(rules), err), 0);
	free_rule = rule(&p, "free");
	answer(&plain, "pg_catalog,public", "public", NULL);
	answer(&temp, "pg_temp_3,pg_catalog,public", "public", "pg_temp_3");
	answer(&shadow, "pg_temp_3,pg_catalog,public", "public", "pg_temp_3");
	add(&shadow, "r", "pg_temp_3", "pg_settings");
	answer(&evil, "evil,pg_catalog,public", "evil", NULL);
	add(&plain, "r", "pg_catalog", "pg_settings");

	assert_int_equal(check(free_rule, row, &plain, false, why), POLICY_ALLOW);
	assert_int_equal(check(free_rule, row, &temp, false, why), POLICY_ALLOW);
	assert_int_equal(check(free_rule, row, &shadow, false, why), POLICY_DENY);
	assert_non_null(strstr(why, "(schema pg_temp comes first on this session's search_path)"));
	assert_int_equal(check(free_rule, row, &evil, false, why), POLICY_DENY);
	assert_non_null(strstr(why, "(schema evil comes first"));
	assert_int_equal(check(free_rule, row, NULL, false, why), POLICY_DENY);
	assert_non_null(strstr(why, "pipelining"));
	assert_int_equal(check(free_rule, row, &plain, true, why), POLICY_DENY);
	assert_non_null(strstr(why, "a prepared statement"));
	/* a SET search_path of constants ahead of it is modelled; anything else is not */
	snprintf(sql, sizeof(sql), "SET search_path = evil, pg_catalog; %s", row);
	assert_int_equal(check(free_rule, sql, &plain, false, why), POLICY_DENY);
	assert_non_null(strstr(why, "schema evil comes first"));
	snprintf(sql, sizeof(sql), "BEGIN; SET search_path = public; %s", row);
	assert_int_equal(check(free_rule, sql, &plain, false, why), POLICY_ALLOW);
	snprintf(sql, sizeof(sql), "SET search_path = ''; %s", row); /* '' is not modelled */
	assert_int_equal(check(free_rule, sql, &plain, false, why), POLICY_DENY);
	snprintf(sql, sizeof(sql), "SELECT 1; %s", row);
	assert_int_equal(check(free_rule, sql, &plain, false, why), POLICY_DENY);
	assert_non_null(strstr(why, "an earlier statement of this query may change the search_path"));
	searchpath_state_release(&plain);
	searchpath_state_release(&temp);
	searchpath_state_release(&shadow);
	searchpath_state_release(&evil);
	policy_release(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scan),
		cmocka_unit_test(test_query_and_rows),
		cmocka_unit_test(test_verdicts),
		cmocka_unit_test(test_settings_row),
	};

	return cmocka_run_group_tests_name("searchpath", tests, NULL, NULL);
}
