/*
 * The verdict on one statement text: from the rule, the text and the few facts of a
 * session that matter (is it run read-only, which masks resolved to which columns,
 * what is prepared under which name, the server's search_path answer if one could be
 * had, the transaction state) to allow / approval / deny with a SQLSTATE and a
 * message. The session (session.c) and `pgtether explain` both decide through
 * gate_check, so what explain says is what a session does; what only a session can
 * do (asking the server, recording, holding for approval, replacing a denied
 * statement) stays in session.c.
 *
 * Pure: no socket, no global; the facts are passed in and nothing of them changes.
 */
#ifndef PGTETHER_GATE_H
#define PGTETHER_GATE_H
#include <stdbool.h>
#include <stddef.h>
#include "maskset.h"
#include "policy.h"
#include "prepared.h"
#include "searchpath.h"
#include "sqlclass.h"

#define GATE_WHY 400 /* a reason: names a rule, a table or a mask, and what to do */

/*
 * The scan of sql[0..len) (sql[len] is NUL) for its unqualified names, or NULL with
 * *ret_rc (a negative errno) when it cannot be scanned. A session keeps the scan it
 * made to ask the server, so the same text is not scanned twice.
 */
typedef const struct searchpath_scan *gate_scan_fn(void *arg, const char *sql, size_t len, int *ret_rc);

struct gate_facts {
	const struct policy_rule *rule;   /* NULL: the rule that allowed the session is gone */
	const char *rule_name;            /* the session's rule, named when it is gone */
	const char *const *dangerous;     /* policy_dangerous() */
	struct sqlclass_cache *cache;     /* NULL: each text is classified anew */
	size_t max_statement_bytes;       /* longer texts are denied (54000) */
	size_t max_shown;                 /* longest text an approver is shown; longer: denied */
	bool read_only;                   /* the session runs read-only (the rule is read-only) */
	const struct maskset *masks;      /* the masks resolved on the server; NULL: the rule's own columns */
	const struct prepared_model *stmts; /* what EXECUTE may run; NULL: nothing was prepared */
	/* the server's search_path answer for this text (NULL: none could be had) and
	 * whether the text is a Parse's (searchpath_check) */
	const struct searchpath_state *path;
	bool path_parse;
	/* why there is no answer: 'E' the transaction is aborted, 'I'/'T' earlier
	 * messages await their answers, 0 there is no server (pgtether explain) */
	char tx_status;
	gate_scan_fn *scan;               /* NULL: gate_check scans the text itself */
	void *scan_arg;
};

/* A verdict. c points into the struct itself (do not copy it); gate_release it. */
struct gate_result {
	enum policy_verdict verdict;
	char sqlstate[6];                 /* of a denial */
	char why[GATE_WHY];               /* the reason, without "pgtether: " */
	bool guard;                       /* denied whatever the rule allows (sqlguard) */
	/* NULL when the text was not classified: allowed by a byte scan alone, or denied
	 * before (rule gone, too long, does not parse, an EXECUTE that cannot be followed) */
	const struct sqlclass_result *c;
	unsigned classes;                 /* c's classes with what each EXECUTE runs; 0 without c */
	bool decided;                     /* the rule's statements and masks were consulted */
	bool touches_masked;              /* decided, and maskset_touches */
	/* the rule did not deny it (a denial for the approver's limit came after): the
	 * names it prepares may now hold it (prepared_note) */
	bool may_prepare;
	struct sqlclass_result own, merged; /* storage behind c */
};

/*
 * The verdict of f->rule on the statement text sql[0..len) (sql[len] is NUL) in a
 * session with facts f. Fills *ret (release it either way). Returns ret->verdict.
 */
enum policy_verdict gate_check(const struct gate_facts *f, const char *sql, size_t len, struct gate_result *ret);

/* The message a client is sent for ret: "pgtether: why" for a denial, why for an
 * approval (the approver's reason), the guard's own text for a guard denial. */
void gate_message(const struct gate_result *ret, char *msg, size_t cap);

void gate_release(struct gate_result *ret);

/* Rule r's verdict on c as far as it does not depend on where unqualified names
 * lead (policy_statement_verdict on the qualified names only): a session asks the
 * server for its search_path only when this does not deny already. */
enum policy_verdict gate_qualified_verdict(const struct policy_rule *r, const struct sqlclass_result *c, char *why,
					   size_t cap);
#endif
