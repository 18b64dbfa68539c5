/*
 * The verdict on one statement text (gate.h): the order of the checks is the
 * contract. What no rule can give away comes first (a byte scan when the rule has
 * nothing else to check, then the guard over pgtether.* and client_encoding), then
 * the rule's classes and tables, where unqualified names are resolved on the
 * server's answer or denied without one, then what a read-only session must not
 * become and what would move a masked column out unseen.
 */
#include "gate.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "sqlguard.h"

enum policy_verdict gate_qualified_verdict(const struct policy_rule *r, const struct sqlclass_result *c, char *why,
					   size_t cap)
{
	struct sqlclass_result q = *c; /* shallow: only the qualified names, nothing to release */
	size_t k = 0;

	for (size_t i = 0; i < c->n_tables; i++)
		if (strchr(c->tables[i], '.'))
			q.tables[k++] = c->tables[i];
	q.n_tables = k;
	return policy_statement_verdict(r, &q, why, cap);
}

static const char *gate_unknown_why(char tx_status)
{
	if (tx_status == 'E')
		return "the transaction is aborted, so the search_path cannot be asked for (end it first)";
	if (!tx_status)
		return "pgtether explain has no server to ask for the search_path (a session asks it right before the statement)";
	return "the search_path cannot be asked for while earlier messages await their answers (pipelining)";
}

/*
 * Rule r's verdict on c, when r has table rules and c names tables: the qualified
 * names as policy_statement_verdict decides them, the others resolved on the
 * search_path the server reported just before (searchpath_check).
 */
static enum policy_verdict gate_path_verdict(const struct gate_facts *f, const struct sqlclass_result *c,
					     const char *sql, size_t len, char *why, size_t cap)
{
	const struct policy_rule *r = f->rule;
	const struct searchpath_scan *sc;
	struct searchpath_scan own;
	enum policy_verdict v;
	int rc;

	if ((v = gate_qualified_verdict(r, c, why, cap)) == POLICY_DENY)
		return v;
	if (f->scan) {
		sc = f->scan(f->scan_arg, sql, len, &rc);
	} else {
		memset(&own, 0, sizeof(own));
		rc = searchpath_scan(sql, &own);
		sc = rc == 0 ? &own : NULL;
	}
	if (!sc) {
		snprintf(why, cap, "the table names of the statement cannot be resolved (%s), so rule '%s' cannot decide them; qualify the table names",
			 strerror(-rc), r->name);
		v = POLICY_DENY;
	} else if (searchpath_check(r, c, sc, f->path, f->path_parse, gate_unknown_why(f->tx_status), why, cap) ==
		   POLICY_DENY) {
		v = POLICY_DENY;
	}
	if (!f->scan)
		searchpath_scan_release(&own);
	return v;
}

static enum policy_verdict gate_deny(struct gate_result *ret, const char *sqlstate)
{
	snprintf(ret->sqlstate, sizeof(ret->sqlstate), "%s", sqlstate);
	return ret->verdict = POLICY_DENY;
}

enum policy_verdict gate_check(const struct gate_facts *f, const char *sql, size_t len, struct gate_result *ret)
{
	const struct policy_rule *r = f->rule;
	const struct sqlclass_result *c;
	enum policy_verdict v;
	char why[300];
	int rc;

	memset(ret, 0, sizeof(*ret));
	ret->verdict = POLICY_ALLOW;
	/* Nothing to check but the settings no rule can give away (pgtether.*,
	 * client_encoding): text that cannot touch them costs a byte scan, no parse. */
	if (r && !r->statements.set && !r->n_masks && !sqlguard_may_touch(sql, len))
		return POLICY_ALLOW;
	snprintf(ret->sqlstate, sizeof(ret->sqlstate), "42501");
	if (!r) {
		snprintf(ret->why, sizeof(ret->why), "the rule that allowed this session ('%s') is gone", f->rule_name);
		return gate_deny(ret, "42501");
	}
	if (len > f->max_statement_bytes) {
		snprintf(ret->why, sizeof(ret->why), "the statement is %zu bytes long; rule '%s' checks statements of at most %zu bytes (max_statement_bytes)",
			 len, r->name, f->max_statement_bytes);
		return gate_deny(ret, "54000");
	}
	if (f->cache) {
		rc = sqlclass_cached(f->cache, sql, len, f->dangerous, &ret->own, &c);
	} else {
		rc = sqlclass_classify(sql, f->dangerous, &ret->own);
		c = &ret->own;
	}
	if (rc < 0) {
		snprintf(ret->why, sizeof(ret->why), "the statement cannot be checked against rule '%s', so it is denied: %s%s",
			 r->name, c->error[0] ? c->error : "out of memory", c->error_pos ? " (PostgreSQL 15 grammar)" : "");
		return gate_deny(ret, "42601");
	}
	if (c->n_executes) {
		/* an EXECUTE runs what was prepared under its name: decided as that */
		ret->merged = *c; /* shallow: only its classes change */
		for (size_t i = 0; i < c->n_executes; i++) {
			struct prepared_view pv;

			rc = f->stmts ? prepared_resolve(f->stmts, c->executes[i], false, &pv) : -ENOENT;
			if (rc < 0 && r->statements.approve) {
				snprintf(ret->why, sizeof(ret->why), "EXECUTE %s: %s, and rule '%s' holds statements for approval, so it is denied",
					 c->executes[i], rc == -ENOENT ? "pgtether did not see that statement prepared in this session"
					 : "what it runs cannot be followed", r->name);
				return gate_deny(ret, "42501");
			}
			ret->merged.classes |= rc == 0 ? pv.classes : 0;
		}
		c = &ret->merged;
	}
	ret->c = c;
	ret->classes = c->classes;
	if (c->guard[0]) {
		/* whatever the rule allows */
		snprintf(ret->why, sizeof(ret->why), "%s", c->guard);
		ret->guard = true;
		return gate_deny(ret, "42501");
	}
	if (!r->statements.set && !r->n_masks && !c->settings_row[0])
		return POLICY_ALLOW;
	why[0] = 0;
	if (searchpath_needed(r, c))
		v = gate_path_verdict(f, c, sql, len, why, sizeof(why));
	else
		v = policy_statement_verdict(r, c, why, sizeof(why));
	if (v != POLICY_DENY && f->read_only && c->sets_read_write) {
		snprintf(why, sizeof(why), "rule '%s' is read-only and its session is run read-only: the statement would make it read-write",
			 r->name);
		v = POLICY_DENY;
	}
	if (v != POLICY_DENY && r->n_masks && maskset_leak(f->masks, r, c, why, sizeof(why)))
		v = POLICY_DENY;
	ret->decided = true;
	ret->touches_masked = r->n_masks && maskset_touches(f->masks, r, c);
	ret->may_prepare = v != POLICY_DENY;
	snprintf(ret->why, sizeof(ret->why), "%s", why);
	if (v == POLICY_APPROVE && len > f->max_shown) {
		snprintf(ret->why, sizeof(ret->why), "the statement is %zu bytes long, more than an approver is shown (%zu), so it is denied (%s)",
			 len, f->max_shown, why);
		return gate_deny(ret, "42501");
	}
	ret->verdict = v;
	return v;
}

void gate_message(const struct gate_result *ret, char *msg, size_t cap)
{
	if (ret->verdict == POLICY_APPROVE || (ret->verdict == POLICY_DENY && ret->guard))
		snprintf(msg, cap, "%s", ret->why);
	else if (ret->verdict == POLICY_DENY)
		snprintf(msg, cap, "pgtether: %s", ret->why);
}

void gate_release(struct gate_result *ret)
{
	sqlclass_release(&ret->own);
	ret->c = NULL;
}
