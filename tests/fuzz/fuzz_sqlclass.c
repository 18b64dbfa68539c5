/*
 * The SQL classifier and everything that reads a workload's statement text:
 * sqlclass_classify (both standard_conforming_strings readings of a backslash),
 * sqlguard's scan and encoding check, searchpath_scan, and the verdicts of a few rule
 * shapes (statement classes, table rules, masks) on what they found.
 *
 * Input: the statement text (a NUL ends it, as in a Query message).
 */
#include "fuzz.h"

#include <errno.h>

#include "maskset.h"
#include "policy.h"
#include "searchpath.h"
#include "sqlclass.h"
#include "sqlguard.h"

static const char rules_text[] =
	"{ \"rules\": [\n"
	" { \"name\": \"reader\", \"match\": { \"cgroup\": \"/ci\" }, \"token\": { \"source\": \"none\" },\n"
	"   \"upstream\": \"main\", \"statements\": { \"allow\": [\"read\", \"transaction\", \"session\"] } },\n"
	" { \"name\": \"tables\", \"match\": { \"cgroup\": \"/ci\" }, \"token\": { \"source\": \"none\" },\n"
	"   \"upstream\": \"main\", \"statements\": { \"allow\": [\"read\", \"write\"], \"approve\": [\"ddl\"],\n"
	"   \"tables\": { \"allow\": [\"public.*\"], \"deny\": [\"public.secrets\", \"auth.*\"] } } },\n"
	" { \"name\": \"masked\", \"match\": { \"cgroup\": \"/ci\" }, \"token\": { \"source\": \"none\" },\n"
	"   \"upstream\": \"main\", \"statements\": { \"allow\": [\"read\", \"write\", \"copy_out\"] },\n"
	"   \"mask\": [ { \"column\": \"users.email\", \"strategy\": \"email\" },\n"
	"              { \"column_name\": \"*ssn*\", \"strategy\": \"null\" } ] } ] }";

static struct policy policy;
static struct maskset masks;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char row[] = "{\"k\": \"c\", \"rel\": 16384, \"att\": 2, \"m\": 0}";
	char err[POLICY_ERR_LEN];

	(void)argc;
	(void)argv;
	if (policy_parse(&policy, "fuzz.json", rules_text, strlen(rules_text), err) < 0 || policy.n != 3) {
		fprintf(stderr, "fuzz_sqlclass: %s\n", err);
		abort();
	}
	if (maskset_add_row(&masks, &policy.rules[2], row, strlen(row)) < 0 || maskset_finish(&masks, &policy.rules[2]) < 0)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *sql = fuzz_cstr(data, size), why[512];
	size_t len = strlen(sql);
	struct sqlclass_result c;
	struct searchpath_scan sc;
	int rc, src;

	(void)sqlguard_may_touch(sql, len);
	(void)sqlguard_encoding(sql, len, why, sizeof(why));
	memset(&c, 0, sizeof(c));
	rc = sqlclass_classify(sql, policy_dangerous(&policy), &c);
	fuzz_check(rc == 0 || rc == -EINVAL || rc == -E2BIG || rc == -EILSEQ || rc == -ENOMEM);
	memset(&sc, 0, sizeof(sc));
	src = searchpath_scan(sql, &sc);
	fuzz_check(src == 0 || src == -EINVAL || src == -E2BIG || src == -ENOMEM);
	if (rc == 0) {
		char names[256];

		fuzz_check(c.n_tables <= SQLCLASS_MAX_NAMES && c.n_functions <= SQLCLASS_MAX_NAMES);
		for (size_t i = 0; i < c.n_stmts; i++)
			fuzz_check((c.stmt_classes[i] & ~c.classes) == 0);
		sqlclass_format(c.classes, names, sizeof(names));
		for (size_t i = 0; i < policy.n; i++) {
			const struct policy_rule *r = &policy.rules[i];

			(void)policy_statement_verdict(r, &c, why, sizeof(why));
			if (src == 0 && searchpath_needed(r, &c))
				(void)searchpath_check(r, &c, &sc, NULL, i == 1, "no answer", why, sizeof(why));
			if (r->n_masks) {
				(void)maskset_leak(&masks, r, &c, why, sizeof(why));
				(void)maskset_touches(&masks, r, &c);
			}
		}
	}
	searchpath_scan_release(&sc);
	sqlclass_release(&c);
	/* the texts pgtether reads as a server's: a view definition, SELECT 'constant' */
	if (size && data[0] == 'S') {
		struct sqlclass_view v;

		memset(&v, 0, sizeof(v));
		(void)sqlclass_view_columns(sql, &v);
		sqlclass_view_release(&v);
		free(sqlclass_constant_select(sql));
	}
	free(sql);
	return 0;
}
