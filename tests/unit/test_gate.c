/* Unit tests for daemon/gate.c: the verdict on one statement text from the rule and
 * the session's facts, as sessions and `pgtether explain` both reach it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gate.h"
#include "pgwire.h"

static const char rules[] =
	"{ \"rules\": [\n"
	"  { \"name\": \"free\", \"match\": { \"cgroup\": \"/free\" }, \"token\": { \"source\": \"none\" }, \"upstream\": \"main\" },\n"
	"  { \"name\": \"agent\", \"match\": { \"cgroup\": \"/agent\" }, \"token\": { \"source\": \"none\" }, \"upstream\": \"main\",\n"
	"    \"statements\": { \"allow\": [\"read\", \"session\", \"transaction\"], \"deny\": [\"drop\"],\n"
	"                    \"approve\": [\"write\"], \"approval_timeout\": 60,\n"
	"                    \"tables\": { \"deny\": [\"public.secrets\"] } } },\n"
	"  { \"name\": \"reader\", \"match\": { \"cgroup\": \"/reader\" }, \"token\": { \"source\": \"none\" }, \"upstream\": \"main\",\n"
	"    \"statements\": { \"allow\": [\"read\", \"session\", \"transaction\"] } },\n"
	"  { \"name\": \"held\", \"match\": { \"cgroup\": \"/held\" }, \"token\": { \"source\": \"none\" }, \"upstream\": \"main\",\n"
	"    \"statements\": { \"allow\": [\"read\", \"session\", \"dynamic\"], \"approve\": [\"write\"] } },\n"
	"  { \"name\": \"masked\", \"match\": { \"cgroup\": \"/masked\" }, \"token\": { \"source\": \"none\" }, \"upstream\": \"main\",\n"
	"    \"mask\": [ { \"column\": \"public.users.email\", \"strategy\": \"email\" } ] }\n"
	"] }\n";

static struct policy pol;

static const struct policy_rule *rule(const char *name)
{
	for (size_t i = 0; i < pol.n; i++)
		if (!strcmp(pol.rules[i].name, name))
			return &pol.rules[i];
	fail_msg("no rule %s", name);
	return NULL;
}

static int setup(void **state)
{
	char err[POLICY_ERR_LEN];

	(void)state;
	memset(&pol, 0, sizeof(pol));
	if (policy_parse(&pol, "p.json", rules, strlen(rules), err) < 0)
		fail_msg("%s", err);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	policy_release(&pol);
	return 0;
}

/* The facts of a session of rule name with nothing else known (explain's). */
static struct gate_facts facts(const char *name)
{
	struct gate_facts f = {
		.rule = rule(name),
		.rule_name = name,
		.dangerous = policy_dangerous(&pol),
		.max_statement_bytes = 65536,
		.max_shown = 1u << 20,
		.tx_status = 'I',
	};

	return f;
}

/* gate_check on sql; its client message in msg (when there is one). */
static enum policy_verdict check(const struct gate_facts *f, const char *sql, struct gate_result *g, char *msg)
{
	enum policy_verdict v = gate_check(f, sql, strlen(sql), g);

	msg[0] = 0;
	gate_message(g, msg, 400);
	return v;
}

static void test_before_the_rule(void **state)
{
	struct gate_facts f = facts("free");
	struct gate_result g;
	char msg[400];

	(void)state;
	/* a rule with nothing to check: a byte scan, no parse, even of what does not parse */
	assert_int_equal(check(&f, "select 1", &g, msg), POLICY_ALLOW);
	assert_null(g.c);
	assert_int_equal(g.classes, 0);
	gate_release(&g);
	assert_int_equal(check(&f, "selec 1 frm", &g, msg), POLICY_ALLOW);
	gate_release(&g);
	/* what no rule gives away: the guard's own text, classified */
	assert_int_equal(check(&f, "set pgtether.x = 1", &g, msg), POLICY_DENY);
	assert_true(g.guard);
	assert_string_equal(g.sqlstate, "42501");
	assert_non_null(strstr(msg, "pgtether"));
	assert_string_equal(msg, g.why);
	assert_non_null(g.c);
	gate_release(&g);
	/* the rule is gone */
	f.rule = NULL;
	f.rule_name = "old";
	assert_int_equal(check(&f, "select 1", &g, msg), POLICY_DENY);
	assert_string_equal(g.sqlstate, "42501");
	assert_string_equal(msg, "pgtether: the rule that allowed this session ('old') is gone");
	gate_release(&g);
	/* too long to check */
	f = facts("reader");
	f.max_statement_bytes = 8;
	assert_int_equal(check(&f, "select 12345", &g, msg), POLICY_DENY);
	assert_string_equal(g.sqlstate, "54000");
	assert_string_equal(msg, "pgtether: the statement is 12 bytes long; rule 'reader' checks statements of at most 8 bytes (max_statement_bytes)");
	gate_release(&g);
	/* does not parse, under a rule with statements */
	f = facts("reader");
	assert_int_equal(check(&f, "selec 1 frm", &g, msg), POLICY_DENY);
	assert_string_equal(g.sqlstate, "42601");
	assert_non_null(strstr(msg, "pgtether: the statement cannot be checked against rule 'reader', so it is denied: "));
	assert_null(g.c);
	gate_release(&g);
}

static void test_classes_and_read_only(void **state)
{
	struct gate_facts f = facts("agent");
	struct gate_result g;
	char msg[400];

	(void)state;
	assert_int_equal(check(&f, "select 1", &g, msg), POLICY_ALLOW);
	assert_true(g.decided);
	assert_true(g.may_prepare);
	assert_int_equal(g.classes, SQL_READ);
	gate_release(&g);
	assert_int_equal(check(&f, "drop table public.items", &g, msg), POLICY_DENY);
	assert_string_equal(msg, "pgtether: statement class drop is denied by rule 'agent'");
	assert_false(g.may_prepare);
	gate_release(&g);
	assert_int_equal(check(&f, "delete from public.items", &g, msg), POLICY_APPROVE);
	assert_string_equal(msg, "statement class write needs approval under rule 'agent'");
	assert_true(g.may_prepare);
	gate_release(&g);
	/* more than an approver is shown: denied, though what it prepares is noted */
	f.max_shown = 10;
	assert_int_equal(check(&f, "delete from public.items", &g, msg), POLICY_DENY);
	assert_string_equal(msg, "pgtether: the statement is 24 bytes long, more than an approver is shown (10), so it is denied (statement class write needs approval under rule 'agent')");
	assert_true(g.may_prepare);
	gate_release(&g);
	/* a read-only session must not become read-write */
	f = facts("reader");
	assert_int_equal(check(&f, "set default_transaction_read_only = off", &g, msg), POLICY_ALLOW);
	gate_release(&g);
	f.read_only = true;
	assert_int_equal(check(&f, "set default_transaction_read_only = off", &g, msg), POLICY_DENY);
	assert_string_equal(msg, "pgtether: rule 'reader' is read-only and its session is run read-only: the statement would make it read-write");
	gate_release(&g);
}

static void test_execute(void **state)
{
	struct gate_facts f = facts("held");
	struct prepared_model m;
	struct sqlclass_result c;
	struct gate_result g;
	char msg[400];
	const char *del = "delete from public.items";
	enum policy_verdict v;

	(void)state;
	/* nothing was prepared: a rule that holds statements cannot show what runs */
	assert_int_equal(check(&f, "execute p", &g, msg), POLICY_DENY);
	assert_string_equal(msg, "pgtether: EXECUTE p: pgtether did not see that statement prepared in this session, and rule 'held' holds statements for approval, so it is denied");
	assert_null(g.c);
	gate_release(&g);
	/* decided as what was prepared under the name */
	prepared_init(&m);
	assert_int_equal(sqlclass_classify(del, NULL, &c), 0);
	assert_int_equal(prepared_note(&m, "p", &c, del, strlen(del), true), 0);
	sqlclass_release(&c);
	f.stmts = &m;
	v = check(&f, "execute p", &g, msg);
	assert_int_equal(v, POLICY_APPROVE);
	assert_string_equal(msg, "statement class write needs approval under rule 'held'");
	assert_true(g.classes & SQL_WRITE);
	assert_int_equal(g.c->n_executes, 1);
	gate_release(&g);
	prepared_release(&m);
}

/* One DataRow body of three text fields (NULL for SQL NULL), as searchpath_query answers. */
static void add(struct searchpath_state *st, const char *k, const char *v, const char *w)
{
	const char *fld[3] = { k, v, w };
	uint8_t b[512];
	size_t n = 2;

	b[0] = 0;
	b[1] = 3;
	for (int i = 0; i < 3; i++) {
		uint32_t len = fld[i] ? (uint32_t)strlen(fld[i]) : UINT32_MAX;

		pgwire_put32(b + n, len);
		n += 4;
		if (fld[i]) {
			memcpy(b + n, fld[i], len);
			n += len;
		}
	}
	assert_int_equal(searchpath_add_row(st, b, n), 0);
}

static void test_search_path(void **state)
{
	struct gate_facts f = facts("agent");
	struct searchpath_state st;
	struct gate_result g;
	char msg[400];

	(void)state;
	/* qualified names need no answer */
	assert_int_equal(check(&f, "select * from public.items", &g, msg), POLICY_ALLOW);
	gate_release(&g);
	assert_int_equal(check(&f, "select * from public.secrets", &g, msg), POLICY_DENY);
	assert_string_equal(msg, "pgtether: table public.secrets is denied by rule 'agent'");
	gate_release(&g);
	/* unqualified ones without an answer: denied, saying why there is none */
	assert_int_equal(check(&f, "select * from items", &g, msg), POLICY_DENY);
	assert_non_null(strstr(msg, "while earlier messages await their answers (pipelining)"));
	gate_release(&g);
	f.tx_status = 'E';
	assert_int_equal(check(&f, "select * from items", &g, msg), POLICY_DENY);
	assert_non_null(strstr(msg, "the transaction is aborted, so the search_path cannot be asked for (end it first)"));
	gate_release(&g);
	f.tx_status = 0;
	assert_int_equal(check(&f, "select * from items", &g, msg), POLICY_DENY);
	assert_non_null(strstr(msg, "pgtether explain has no server to ask for the search_path"));
	gate_release(&g);
	/* with the server's answer: resolved on it */
	memset(&st, 0, sizeof(st));
	add(&st, "p", "pg_catalog", NULL);
	add(&st, "p", "public", NULL);
	add(&st, "c", "public", NULL);
	add(&st, "t", NULL, NULL);
	add(&st, "u", "app", NULL);
	add(&st, "r", "public", "items");
	add(&st, "r", "public", "secrets");
	f.path = &st;
	assert_int_equal(check(&f, "select * from items", &g, msg), POLICY_ALLOW);
	gate_release(&g);
	assert_int_equal(check(&f, "select * from secrets", &g, msg), POLICY_DENY);
	assert_string_equal(msg, "pgtether: table secrets resolves to public.secrets on this session's search_path, and table public.secrets is denied by rule 'agent'");
	gate_release(&g);
	searchpath_state_release(&st);
}

static void test_cache(void **state)
{
	struct sqlclass_cache *cache = calloc(1, sizeof(*cache));
	struct gate_facts f = facts("agent");
	struct gate_result g;
	char msg[400];

	(void)state;
	assert_non_null(cache);
	f.cache = cache;
	/* the second time from the cache, with the same verdict */
	for (int i = 0; i < 2; i++) {
		assert_int_equal(check(&f, "drop table public.items", &g, msg), POLICY_DENY);
		assert_string_equal(msg, "pgtether: statement class drop is denied by rule 'agent'");
		gate_release(&g);
	}
	assert_int_equal(cache->hits, 1);
	assert_int_equal(check(&f, "selec 1", &g, msg), POLICY_DENY);
	assert_string_equal(g.sqlstate, "42601");
	gate_release(&g);
	sqlclass_cache_clear(cache);
	free(cache);
}

/* A session's kept scan, here one that cannot be had. */
static const struct searchpath_scan *no_scan(void *arg, const char *sql, size_t len, int *ret_rc)
{
	(void)sql;
	(void)len;
	++*(int *)arg;
	*ret_rc = -E2BIG;
	return NULL;
}

static void test_scan_callback(void **state)
{
	struct gate_facts f = facts("agent");
	struct gate_result g;
	char msg[400];
	int calls = 0;

	(void)state;
	f.scan = no_scan;
	f.scan_arg = &calls;
	/* qualified names that deny already: the text is not scanned */
	assert_int_equal(check(&f, "select * from public.secrets, items", &g, msg), POLICY_DENY);
	assert_int_equal(calls, 0);
	gate_release(&g);
	assert_int_equal(check(&f, "select * from items", &g, msg), POLICY_DENY);
	assert_int_equal(calls, 1);
	assert_string_equal(msg, "pgtether: the table names of the statement cannot be resolved (Argument list too long), so rule 'agent' cannot decide them; qualify the table names");
	gate_release(&g);
}

static void test_masks(void **state)
{
	struct gate_facts f = facts("masked");
	struct gate_result g;
	char msg[400];

	(void)state;
	assert_int_equal(check(&f, "select email from public.users", &g, msg), POLICY_ALLOW);
	assert_true(g.touches_masked);
	gate_release(&g);
	assert_int_equal(check(&f, "select 1", &g, msg), POLICY_ALLOW);
	assert_false(g.touches_masked);
	gate_release(&g);
	assert_int_equal(check(&f, "copy public.users to stdout", &g, msg), POLICY_DENY);
	assert_non_null(strstr(msg, "pgtether: rule 'masked' masks public.users.email, and COPY would move it out unmasked"));
	gate_release(&g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_before_the_rule),
		cmocka_unit_test(test_classes_and_read_only),
		cmocka_unit_test(test_execute),
		cmocka_unit_test(test_search_path),
		cmocka_unit_test(test_cache),
		cmocka_unit_test(test_scan_callback),
		cmocka_unit_test(test_masks),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
