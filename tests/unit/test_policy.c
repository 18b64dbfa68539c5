/* Unit tests for daemon/policy.c: parsing errors with positions, and decisions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "policy.h"

#define ISS "https://token.actions.githubusercontent.com"

static const char ci_rules[] =
	"{ \"rules\": [\n"
	"  { \"name\": \"ci-main\",\n"
	"    \"match\": { \"cgroup\": \"/ci/*\", \"issuer\": \"" ISS "\",\n"
	"               \"claims\": { \"sub\": \"repo:acme/api:ref:refs/heads/main\" } },\n"
	"    \"token\": { \"source\": \"file\", \"path\": \"/run/secrets/token\" },\n"
	"    \"upstream\": \"main\", \"role\": \"app_ro\" },\n"
	"  { \"name\": \"legacy\", \"match\": { \"cgroup\": \"/legacy\", \"uid\": 1001, \"exe\": \"/usr/bin/psql\" },\n"
	"    \"token\": { \"source\": \"none\" }, \"upstream\": \"main\" }\n"
	"] }\n";

static const char deny_rules[] =
	"{ \"rules\": [ { \"name\": \"no-forks\", \"effect\": \"deny\",\n"
	"  \"match\": { \"issuer\": \"" ISS "\", \"claims\": { \"repository_owner\": \"fork-*\" } } } ] }";

static void expect(const char *text, const char *msg)
{
	struct policy p = { NULL, 0 };
	char err[POLICY_ERR_LEN] = "";

	assert_int_equal(policy_parse(&p, "p.json", text, strlen(text), err), -EINVAL);
	assert_string_equal(err, msg);
	policy_release(&p);
}

static void test_parse_and_decide(void **state)
{
	struct policy p = { NULL, 0 };
	char err[POLICY_ERR_LEN] = "";
	const struct policy_rule *deny, *r;
	json_t *claims;

	(void)state;
	assert_int_equal(policy_parse(&p, "10-ci.json", ci_rules, strlen(ci_rules), err), 0);
	assert_int_equal(p.n, 2);
	assert_int_equal(p.rules[0].line, 2);
	assert_int_equal(p.rules[0].token, POLICY_TOKEN_FILE);

	claims = json_pack("{s:s, s:s}", "sub", "repo:acme/api:ref:refs/heads/main", "repository_owner", "acme");
	struct policy_facts f = { "/ci/job-7", 1001, "/usr/bin/psql", NULL, "app", "main", ISS, claims };

	r = policy_decide(&p, &f, &deny);
	assert_non_null(r);
	assert_string_equal(r->name, "ci-main");
	assert_string_equal(r->role, "app_ro");
	/* a rule grants its own upstream only */
	f.upstream = "reports";
	assert_null(policy_decide(&p, &f, &deny));
	f.upstream = "main";
	/* the same token from another cgroup: no rule */
	f.cgroup = "/agents/x";
	assert_null(policy_decide(&p, &f, &deny));
	assert_null(deny);
	/* one level only */
	f.cgroup = "/ci/job-7/sub";
	assert_null(policy_decide(&p, &f, &deny));
	/* right cgroup, no token */
	f.cgroup = "/ci/job-7";
	f.issuer = NULL;
	f.claims = NULL;
	assert_null(policy_decide(&p, &f, &deny));
	assert_true(policy_rule_fits_facts(&p.rules[0], &f)); /* and so the token is asked for */
	/* an array claim fits when one element does */
	f.issuer = ISS;
	f.claims = claims;
	json_object_set_new(claims, "sub", json_pack("[s, s]", "x", "repo:acme/api:ref:refs/heads/main"));
	assert_non_null(policy_decide(&p, &f, &deny));
	json_object_set_new(claims, "sub", json_pack("[s, i]", "x", 1));
	assert_null(policy_decide(&p, &f, &deny));
	/* a token for another branch */
	json_object_set_new(claims, "sub", json_string("repo:acme/api:ref:refs/heads/dev"));
	f.issuer = ISS;
	f.claims = claims;
	assert_null(policy_decide(&p, &f, &deny));
	/* legacy: kernel facts only, all of them */
	struct policy_facts g = { "/legacy", 1001, "/usr/bin/psql", NULL, "app", "main", NULL, NULL };
	r = policy_decide(&p, &g, &deny);
	assert_non_null(r);
	assert_string_equal(r->name, "legacy");
	g.uid = 0;
	assert_null(policy_decide(&p, &g, &deny));
	/* the same path, but only as the workload's own mount namespace names it */
	g.uid = 1001;
	g.exe_foreign = true;
	assert_null(policy_decide(&p, &g, &deny));
	assert_null(deny);
	{
		static const char deny_exe[] = "{ \"rules\": [ { \"name\": \"no-psql\", \"effect\": \"deny\",\n"
					       "  \"match\": { \"cgroup\": \"/legacy\", \"exe\": \"/usr/bin/psql\" } } ] }";
		struct policy q = { NULL, 0 };

		/* while a deny rule on the path still holds */
		assert_int_equal(policy_parse(&q, "91-deny.json", deny_exe, strlen(deny_exe), err), 0);
		assert_null(policy_decide(&q, &g, &deny));
		assert_non_null(deny);
		assert_string_equal(deny->name, "no-psql");
		policy_release(&q);
	}
	g.exe_foreign = false;

	/* deny beats allow, even from a later file */
	json_object_set_new(claims, "sub", json_string("repo:acme/api:ref:refs/heads/main"));
	json_object_set_new(claims, "repository_owner", json_string("fork-evil"));
	assert_int_equal(policy_parse(&p, "90-deny.json", deny_rules, strlen(deny_rules), err), 0);
	assert_null(policy_decide(&p, &f, &deny));
	assert_non_null(deny);
	assert_string_equal(deny->name, "no-forks");
	json_decref(claims);
	policy_release(&p);
}

static const char stmt_rules[] =
	"{ \"dangerous_functions\": [\"archive_*\"], \"rules\": [\n"
	"  { \"name\": \"agent\", \"match\": { \"cgroup\": \"/agents/*\" }, \"token\": { \"source\": \"none\" },\n"
	"    \"upstream\": \"main\",\n"
	"    \"statements\": { \"allow\": [\"read\", \"transaction\", \"session\"], \"deny\": [\"drop\"],\n"
	"                    \"approve\": [\"write\"], \"approval_timeout\": 60,\n"
	"                    \"tables\": { \"deny\": [\"public.secrets\", \"audit.*\"] } } },\n"
	"  { \"name\": \"ci\", \"match\": { \"cgroup\": \"/ci/*\" }, \"token\": { \"source\": \"none\" },\n"
	"    \"upstream\": \"main\", \"statements\": { \"allow\": [\"read\", \"write\"], \"tables\": { \"allow\": [\"app.*\"] } } },\n"
	"  { \"name\": \"human\", \"match\": { \"cgroup\": \"/humans/*\" }, \"token\": { \"source\": \"none\" },\n"
	"    \"upstream\": \"main\" },\n"
	"  { \"name\": \"dyn\", \"match\": { \"cgroup\": \"/dyn/*\" }, \"token\": { \"source\": \"none\" },\n"
	"    \"upstream\": \"main\", \"statements\": { \"allow\": [\"read\", \"dynamic\"], \"tables\": { \"allow\": [\"app.*\"] } } },\n"
	"  { \"name\": \"dyn-deny\", \"match\": { \"cgroup\": \"/dyn2/*\" }, \"token\": { \"source\": \"none\" },\n"
	"    \"upstream\": \"main\", \"statements\": { \"allow\": [\"read\", \"dynamic\"], \"tables\": { \"deny\": [\"public.secrets\"] } } }\n"
	"] }";

static enum policy_verdict verdict(const struct policy *p, size_t rule, const char *sql, char *why)
{
	struct sqlclass_result c;
	enum policy_verdict v;

	assert_int_equal(sqlclass_classify(sql, policy_dangerous(p), &c), 0);
	v = policy_statement_verdict(&p->rules[rule], &c, why, 256);
	sqlclass_release(&c);
	return v;
}

static void test_statements(void **state)
{
	struct policy p = { 0 };
	char err[POLICY_ERR_LEN] = "", why[256];

	(void)state;
	assert_int_equal(policy_parse(&p, "20-stmt.json", stmt_rules, strlen(stmt_rules), err), 0);
	assert_int_equal(p.rules[0].statements.approval_timeout, 60);
	assert_int_equal(verdict(&p, 0, "SELECT * FROM users", why), POLICY_ALLOW);
	assert_int_equal(verdict(&p, 0, "BEGIN; SELECT 1; COMMIT", why), POLICY_ALLOW);
	assert_int_equal(verdict(&p, 0, "DROP TABLE users", why), POLICY_DENY);
	assert_string_equal(why, "statement class drop is denied by rule 'agent'");
	/* one denied statement denies the whole message */
	assert_int_equal(verdict(&p, 0, "SELECT 1; DROP TABLE users", why), POLICY_DENY);
	assert_int_equal(verdict(&p, 0, "TRUNCATE users", why), POLICY_DENY);
	assert_string_equal(why, "statement class truncate is not allowed by rule 'agent'");
	assert_int_equal(verdict(&p, 0, "DELETE FROM users WHERE id = 1", why), POLICY_APPROVE);
	assert_string_equal(why, "statement class write needs approval under rule 'agent'");
	/* deny beats approve, tables too, qualified or not */
	assert_int_equal(verdict(&p, 0, "DELETE FROM users; DROP TABLE x", why), POLICY_DENY);
	assert_int_equal(verdict(&p, 0, "SELECT * FROM public.secrets", why), POLICY_DENY);
	assert_string_equal(why, "table public.secrets is denied by rule 'agent'");
	assert_int_equal(verdict(&p, 0, "SELECT * FROM secrets", why), POLICY_DENY);
	assert_int_equal(verdict(&p, 0, "WITH x AS (SELECT * FROM audit.log) SELECT * FROM x", why), POLICY_DENY);
	assert_string_equal(why, "table audit.log is denied by rule 'agent'");
	/* dangerous functions: the defaults and the file's own */
	assert_int_equal(verdict(&p, 0, "SELECT pg_read_file('/etc/passwd')", why), POLICY_DENY);
	assert_string_equal(why, "statement class dangerous_function is not allowed by rule 'agent'");
	assert_int_equal(verdict(&p, 0, "SELECT archive_all()", why), POLICY_DENY);
	/* an allow list of tables */
	assert_int_equal(verdict(&p, 1, "INSERT INTO app.jobs VALUES (1)", why), POLICY_ALLOW);
	assert_int_equal(verdict(&p, 1, "SELECT * FROM app.jobs j JOIN other.t USING (id)", why), POLICY_DENY);
	assert_string_equal(why, "table other.t is not among the tables rule 'ci' allows");
	assert_int_equal(verdict(&p, 1, "CREATE TABLE app.x (id int)", why), POLICY_DENY);
	/* no "statements": the role's own privileges are the limit */
	assert_int_equal(verdict(&p, 2, "DROP TABLE users", why), POLICY_ALLOW);
	/* SQL given as text may read any table: an allow list or a deny list of tables
	 * denies it even where the class dynamic is allowed */
	assert_int_equal(verdict(&p, 3, "SELECT * FROM app.jobs", why), POLICY_ALLOW);
	assert_int_equal(verdict(&p, 3, "SELECT query_to_xml('select * from other.t', true, false, '')", why), POLICY_DENY);
	assert_string_equal(why, "the statement runs SQL its text does not show (DO, CALL, CREATE FUNCTION, or a function "
				 "such as query_to_xml or ts_stat), so it may read any table, and rule 'dyn' limits tables");
	assert_int_equal(verdict(&p, 3, "SELECT ts_rewrite('a'::tsquery, 'select * from other.t')", why), POLICY_DENY);
	assert_int_equal(verdict(&p, 3, "SELECT * FROM ts_stat('select v from other.t')", why), POLICY_DENY);
	assert_int_equal(verdict(&p, 3, "SELECT table_to_xml('other.t'::regclass, true, false, '')", why), POLICY_DENY);
	assert_int_equal(verdict(&p, 3, "DO $$ BEGIN PERFORM 1; END $$", why), POLICY_DENY);
	assert_int_equal(verdict(&p, 3, "SELECT ts_rewrite('a'::tsquery, 'a'::tsquery, 'b'::tsquery)", why), POLICY_ALLOW);
	assert_int_equal(verdict(&p, 4, "SELECT pg_catalog.query_to_xml('select * from secrets', true, false, '')", why),
			 POLICY_DENY);
	assert_non_null(strstr(why, "rule 'dyn-deny' limits tables"));
	assert_int_equal(verdict(&p, 4, "SELECT * FROM users", why), POLICY_ALLOW);
	/* a rule without table lists decides by class alone */
	assert_int_equal(verdict(&p, 0, "SELECT query_to_xml('select 1', true, false, '')", why), POLICY_DENY);
	policy_release(&p);
}

static void test_cgroup_globs(void **state)
{
	(void)state;
	assert_true(policy_cgroup_fits("/ci/*", "/ci/job-1"));
	assert_false(policy_cgroup_fits("/ci/*", "/ci/job-1/step"));
	assert_false(policy_cgroup_fits("/ci/*", "/ci"));
	assert_true(policy_cgroup_fits("/ci/**", "/ci"));
	assert_true(policy_cgroup_fits("/ci/**", "/ci/job-1"));
	assert_true(policy_cgroup_fits("/ci/**", "/ci/job-1/step/x"));
	assert_false(policy_cgroup_fits("/ci/**", "/cix/job-1"));
	assert_false(policy_cgroup_fits("/ci/**", "/agents/ci"));
	assert_true(policy_cgroup_fits("/system.slice/*-runner.service/**", "/system.slice/gitlab-runner.service/job/1"));
	assert_false(policy_cgroup_fits("/system.slice/*-runner.service/**", "/system.slice/nginx.service"));
	assert_true(policy_cgroup_fits("/**", "/anything/at/all"));
}

static void test_masks(void **state)
{
	static const char text[] =
		"{ \"rules\": [ { \"name\": \"r\", \"match\": { \"cgroup\": \"/ci\" }, \"token\": { \"source\": \"none\" },\n"
		"  \"upstream\": \"main\", \"record\": { \"results\": true }, \"mask\": [\n"
		"  { \"column\": \"users.email\", \"strategy\": \"email\" },\n"
		"  { \"column\": \"crm.people.phone\", \"strategy\": \"partial\", \"keep\": 2, \"allow\": [\"copy\", \"ddl\"] },\n"
		"  { \"column_name\": \"*ssn*\", \"strategy\": \"redact\", \"text\": \"[ssn]\" } ] } ] }";
	struct policy p = { 0 };
	char err[POLICY_ERR_LEN];
	const struct policy_rule *r;

	(void)state;
	assert_int_equal(policy_parse(&p, "p.json", text, strlen(text), err), 0);
	r = &p.rules[0];
	assert_true(r->record_results);
	assert_int_equal(r->n_masks, 3);
	assert_string_equal(r->masks[0].schema, "public");
	assert_string_equal(r->masks[0].table, "users");
	assert_string_equal(r->masks[0].name, "email");
	assert_int_equal(r->masks[0].strategy, MASK_EMAIL);
	assert_string_equal(r->masks[1].schema, "crm");
	assert_int_equal(r->masks[1].keep, 2);
	assert_int_equal(r->masks[1].allow, POLICY_MASK_ALLOW_COPY | POLICY_MASK_ALLOW_DDL);
	assert_null(r->masks[2].column);
	assert_string_equal(r->masks[2].column_name, "*ssn*");
	assert_string_equal(r->masks[2].text, "[ssn]");
	assert_false(policy_uses_hash(&p));
	policy_release(&p);
}

static void test_parse_errors(void **state)
{
	(void)state;
	expect("{ \"rules\": [ { \"name\": \"everyone\", \"match\": { \"uid\": 0 },\n"
	       "  \"token\": { \"source\": \"none\" }, \"upstream\": \"main\" } ] }",
	       "p.json:1:36: rule 'everyone' allows without narrowing identity: give a \"cgroup\" glob or token \"claims\"");
	expect("{ \"rules\": [ { \"name\": \"r\", \"match\": { \"cgroup\": \"/ci\" }, \"rolle\": \"x\" } ] }",
	       "p.json:1:59: unknown key 'rolle'");
	/* masks */
#define MASKED(m) "{ \"rules\": [ { \"name\": \"r\", \"match\": { \"cgroup\": \"/ci\" }, \"token\": { \"source\": \"none\" },\n" \
	"  \"upstream\": \"main\", \"mask\": [" m "] } ] }"
	expect(MASKED(""), "p.json:2:23: rule 'r': \"mask\" must be a list of 1 to 64 masks");
	expect(MASKED("{ \"column\": \"users\", \"strategy\": \"null\" }"),
	       "p.json:2:34: rule 'r': mask column 'users' must be schema.table.column or table.column (names as the catalog spells them, without quotes)");
	expect(MASKED("{ \"column\": \"a.b.c.d\", \"strategy\": \"null\" }"),
	       "p.json:2:34: rule 'r': mask column 'a.b.c.d' must be schema.table.column or table.column (names as the catalog spells them, without quotes)");
	expect(MASKED("{ \"column\": \"users.email\", \"strategy\": \"scramble\" }"),
	       "p.json:2:59: rule 'r': a mask needs \"strategy\": \"redact\", \"null\", \"partial\", \"hash\" or \"email\"");
	expect(MASKED("{ \"column\": \"users.email\", \"strategy\": \"hash\", \"keep\": 3 }"),
	       "p.json:2:79: rule 'r': \"keep\" (0 to 64 characters) goes with strategy \"partial\"");
	expect(MASKED("{ \"column\": \"users.email\", \"column_name\": \"*mail\", \"strategy\": \"null\" }"),
	       "p.json:2:32: rule 'r': a mask names either \"column\" (schema.table.column) or \"column_name\" (a glob of result column names)");
	expect(MASKED("{ \"column\": \"users.email\", \"strategy\": \"null\", \"allow\": [\"joins\"] }"),
	       "p.json:2:79: rule 'r': a mask's \"allow\" is a list of \"copy\", \"whole_row\", \"computed\", \"ddl\", \"code\"");
	expect("{ \"rules\": [ { \"name\": \"r\", \"match\": { \"cgroup\": \"/ci\" }, \"token\": { \"source\": \"none\" },\n"
	       "  \"upstream\": \"main\", \"statements\": { \"allow\": [\"read\", \"writes\"] } } ] }",
	       "p.json:2:57: rule 'r': unknown statement class; the classes are read, write, ddl, drop, truncate, alter_role, grant, copy_in, copy_out, copy_program, dynamic, session, transaction, utility, dangerous_function");
	expect("{ \"rules\": [ { \"name\": \"r\", \"match\": { \"cgroup\": \"/ci\" }, \"token\": { \"source\": \"none\" },\n"
	       "  \"upstream\": \"main\", \"statements\": { \"allow\": [\"read\"], \"approval_timeout\": 0 } } ] }",
	       "p.json:2:58: rule 'r': approval_timeout must be a number of seconds from 1 to 86400");
	expect("{ \"dangerous_functions\": [\"\"], \"rules\": [] }", "p.json:1:27: a dangerous function must be a non-empty name or glob");
	expect("{ \"rules\": [ { \"name\": \"r\", \"match\": { \"cgroup\": \"/ci\", \"claims\": { \"sub\": \"x\" } },\n"
	       "  \"token\": { \"source\": \"file\", \"path\": \"/t\" }, \"upstream\": \"main\" } ] }",
	       "p.json:1:57: rule 'r': claims mean nothing without the \"issuer\" that vouches for them");
	expect("{ \"rules\": [ { \"name\": \"r\", \"match\": { \"cgroup\": \"/ci\" },\n"
	       "  \"token\": { \"source\": \"file\", \"path\": \"relative\" }, \"upstream\": \"main\" } ] }",
	       "p.json:2:3: rule 'r': a file token needs an absolute \"path\" (inside the workload's mount namespace)");
	expect("{ \"rules\": [ { \"name\": \"r\", \"match\": { \"cgroup\": \"/ci\" }, \"token\": { \"source\": \"none\" } } ] }",
	       "p.json:1:14: rule 'r' needs \"upstream\": the database it grants");
	expect("{ \"rules\": [ { \"name\": \"a\", \"effect\": \"deny\", \"match\": { \"cgroup\": \"/x\" } },\n"
	       " { \"name\": \"a\", \"effect\": \"deny\", \"match\": { \"cgroup\": \"/y\" } } ] }",
	       "p.json:2:4: rule name 'a' is used twice (first in p.json:1)");
	expect("{ \"rules\": [ { \"name\": \"a\", \"name\": \"b\" } ] }", "p.json:1:34: duplicate object key near '\"name\"'");
}

/* An allow rule that takes a token matches only a token taken its way: one the client
 * sent as its password does not pass for one read from the rule's file (which only a
 * process of the workload's own mount namespace could have put there), nor one read
 * from another file. Deny rules match whatever the source. */
static void test_token_source(void **state)
{
	static const char rules[] = "{ \"rules\": [\n"
		"{ \"name\": \"ci-pw\", \"match\": { \"cgroup\": \"/ci/**\", \"issuer\": \"" ISS "\" }, \"token\": { \"source\": \"password\" }, \"upstream\": \"main\", \"role\": \"app_ro\" },\n"
		"{ \"name\": \"ci-file\", \"match\": { \"cgroup\": \"/ci/build\", \"issuer\": \"" ISS "\" }, \"token\": { \"source\": \"file\", \"path\": \"/run/jwt\" }, \"upstream\": \"main\", \"role\": \"admin\" },\n"
		"{ \"name\": \"no-x\", \"effect\": \"deny\", \"match\": { \"cgroup\": \"/ci/x\", \"issuer\": \"" ISS "\" } }\n"
		"] }";
	struct policy p = { NULL, 0 };
	char err[POLICY_ERR_LEN] = "";
	const struct policy_rule *deny, *r;
	json_t *claims = json_pack("{s:s}", "sub", "a");
	struct policy_facts f = { .cgroup = "/ci/build", .uid = 1001, .exe = "/usr/bin/psql", .database = "app",
				  .upstream = "main", .issuer = ISS, .claims = claims, .token_known = true };

	(void)state;
	assert_int_equal(policy_parse(&p, "10-t.json", rules, strlen(rules), err), 0);
	f.token = POLICY_TOKEN_PASSWORD;
	r = policy_decide(&p, &f, &deny);
	assert_non_null(r);
	assert_string_equal(r->name, "ci-pw"); /* not ci-file, though it is the same token */
	/* ci-pw out of the way (its glob now starts /zi/): a password token still is not ci-file's */
	p.rules[0].cgroup[1] = 'z';
	assert_null(policy_decide(&p, &f, &deny));
	f.token = POLICY_TOKEN_FILE;
	f.token_path = "/run/other";
	assert_null(policy_decide(&p, &f, &deny));
	f.token_path = "/run/jwt";
	r = policy_decide(&p, &f, &deny);
	assert_non_null(r);
	assert_string_equal(r->name, "ci-file");
	/* pgtether explain says no source: every rule's fits */
	f.token_known = false;
	f.token = POLICY_TOKEN_PASSWORD;
	assert_string_equal(policy_decide(&p, &f, &deny)->name, "ci-file");
	/* a deny rule, whatever the source */
	f.token_known = true;
	f.cgroup = "/ci/x";
	assert_null(policy_decide(&p, &f, &deny));
	assert_non_null(deny);
	assert_string_equal(deny->name, "no-x");
	policy_release(&p);
	json_decref(claims);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_and_decide),
		cmocka_unit_test(test_cgroup_globs),
		cmocka_unit_test(test_statements),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_masks),
		cmocka_unit_test(test_token_source),
	};

	return cmocka_run_group_tests_name("policy", tests, NULL, NULL);
}
