/*
 * Policy rules, identity half (DESIGN.md "Policy"): files in policy.d, read in lexical
 * order, each { "rules": [ ... ] }. A rule matches on kernel facts (cgroup glob, uid,
 * exe path or SHA-256), the database asked for, and the verified token (issuer and
 * claims, exact or glob); it allows (with the token source, upstream and role) or
 * denies. Default deny; a matching deny rule beats any allow rule, whatever the file
 * order; an allow rule must narrow identity (a cgroup glob or token claims), so no file
 * grants "everyone" by accident.
 *
 * Globs are fnmatch(3) patterns with FNM_PATHNAME for cgroups (a star matches one path
 * level); a cgroup glob ending in a slash and two stars also matches every cgroup
 * below, at any depth.
 * An allow rule applies only to connections to the upstream it names.
 * An allow rule may limit statements ("statements": classes allowed, denied or held
 * for approval, tables allowed or denied); without it every statement is allowed and
 * the database role's own privileges are the limit. A rule may mask columns ("mask":
 * by schema.table.column, or by output column name for derived columns) and ask
 * for result rows in the recording ("record": { "results": true }). A file may add
 * functions to the dangerous list ("dangerous_functions").
 */
#ifndef PGTETHER_POLICY_H
#define PGTETHER_POLICY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "jsonpos.h"
#include "mask.h"
#include "sqlclass.h"
#include <stdint.h>

#define POLICY_ERR_LEN JSONPOS_ERR_LEN
#define POLICY_MAX_RULES 1024
#define POLICY_MAX_CLAIMS 16

enum policy_token { POLICY_TOKEN_NONE, POLICY_TOKEN_PASSWORD, POLICY_TOKEN_FILE };

#define POLICY_DEFAULT_APPROVAL_TIMEOUT 300
#define POLICY_MAX_TABLES 64

struct policy_statements {
	bool set;                        /* "statements" given: only what it allows passes */
	unsigned allow, deny, approve;   /* sql_class bits */
	unsigned approval_timeout;       /* seconds */
	char *tables_allow[POLICY_MAX_TABLES];
	size_t n_tables_allow;
	char *tables_deny[POLICY_MAX_TABLES];
	size_t n_tables_deny;
};

#define POLICY_MAX_MASKS 64

/* What a mask lets through although the mask cannot follow it ("allow"). */
enum policy_mask_allow {
	POLICY_MASK_ALLOW_COPY = 1u << 0,      /* COPY ... TO of the table, or of a query over it */
	POLICY_MASK_ALLOW_WHOLE_ROW = 1u << 1, /* row_to_json(u), SELECT u FROM users u */
	POLICY_MASK_ALLOW_COMPUTED = 1u << 2,  /* upper(email), email::text, INSERT ... SELECT email */
	POLICY_MASK_ALLOW_DDL = 1u << 3,       /* ALTER/DROP/CREATE ... naming the table */
	POLICY_MASK_ALLOW_CODE = 1u << 4,      /* DO blocks and CALL (server-side code) */
};

struct policy_mask {
	char *column;                    /* "schema.table.column" as written (schema defaults
					  * to public), or NULL for a name pattern */
	char *schema, *table, *name;     /* its parts */
	char *column_name;               /* "column_name" glob of output columns, or NULL */
	enum mask_strategy strategy;
	unsigned keep;                   /* partial */
	char *text;                      /* redact: NULL for the default */
	unsigned allow;                  /* policy_mask_allow bits */
};

enum policy_verdict { POLICY_ALLOW, POLICY_DENY, POLICY_APPROVE };

struct policy_claim {
	char *name;
	char *glob;
};

struct policy_rule {
	char *name;
	char *file;
	int line;
	bool deny;
	/* match; NULL / false: not part of the match */
	char *cgroup;
	bool has_uid;
	uint32_t uid;
	char *exe;
	char *exe_sha256;
	char *database;
	char *issuer;
	struct policy_claim claims[POLICY_MAX_CLAIMS];
	size_t n_claims;
	/* decision (allow rules) */
	enum policy_token token;
	char *token_path;
	char *upstream;
	char *role;
	struct policy_statements statements;
	struct policy_mask *masks;
	size_t n_masks;
	bool record_results;             /* "record": { "results": true } */
};

struct policy {
	struct policy_rule *rules;
	size_t n;
	char **extra_dangerous;          /* "dangerous_functions" of the files */
	size_t n_extra_dangerous;
	const char **dangerous;          /* defaults + extras, NULL-terminated */
};

/* What a rule is matched against. issuer/claims NULL: no verified token. */
struct policy_facts {
	const char *cgroup;
	uint32_t uid;
	const char *exe;
	const char *exe_sha256;
	const char *database;
	const char *upstream;
	const char *issuer;
	json_t *claims;
	bool exe_foreign;                /* exe is only the workload's own name for it: no
					  * allow rule matches by exe (deny rules still do) */
	/* How the token came: an allow rule that takes one matches only a token taken
	 * its way (the file at its path, or as the password), else a token a workload
	 * could send as a password would pass for one read from a file. token_known
	 * false (pgtether explain): not checked. */
	bool token_known;
	enum policy_token token;         /* POLICY_TOKEN_NONE: no token */
	const char *token_path;          /* POLICY_TOKEN_FILE: the file it was read from */
};

/* The token source named "password", "file" or anything else (none). */
enum policy_token policy_token_named(const char *source);

/* The cgroup glob rules use (see above). */
bool policy_cgroup_fits(const char *glob, const char *cgroup);

/* Appends the rules of one file's text; `name` is used in messages. 0 or -EINVAL with
 * "name:line:col: message" in err. */
int policy_parse(struct policy *p, const char *name, const char *text, size_t len, char *err);

/* Loads every *.json of dir (lexical order; '.'-names and '~' skipped; files must be
 * owned by root and not writable by group or others). 0 or -errno with err. */
int policy_load_dir(const char *dir, struct policy *ret, char *err);

/* The same through a configuration source (cfgsrc.h; NULL: the disk). */
struct cfgsrc;
int policy_load_dir_src(const char *dir, struct cfgsrc *src, struct policy *ret, char *err);

/*
 * `pgtether check`: loads every file of dir like policy_load_dir, but goes on after a
 * file with an error and reports each error. Returns the number of failed files; ret
 * holds the rules of the others (release it).
 */
int policy_check_dir(const char *dir, struct policy *ret, void (*report)(const char *err, void *arg), void *arg);

/* True when the rule's kernel-fact and database conditions hold (the token part
 * aside): which rules could apply, and so which token to ask for. */
bool policy_rule_fits_facts(const struct policy_rule *r, const struct policy_facts *f);

/*
 * The decision: NULL when denied (default deny, or *ret_deny set to the deny rule
 * that matched), else the first allow rule that matches completely.
 */
const struct policy_rule *policy_decide(const struct policy *p, const struct policy_facts *f,
					const struct policy_rule **ret_deny);

/*
 * A reload: the session allowed by rule `was`, logged in as role (read-only or not),
 * decided again. The rule it is under now, or NULL with why saying, as its client
 * is told, what took its access away (a deny rule, no rule, another role, read-only
 * changed). default_role: its upstream's (NULL: the upstream is gone).
 */
const struct policy_rule *policy_decide_again(const struct policy *p, const struct policy_facts *f,
					      const char *default_role, const char *role, bool read_only,
					      const char *was, char *why, size_t cap);

/*
 * Whether a rule lets its sessions change nothing: it has "statements" and allows or
 * approves no class that writes (write, ddl, drop, truncate, alter_role, grant,
 * copy_in). Such sessions are also run read-only by the server
 * (default_transaction_read_only), which then refuses what pgtether cannot see
 * writing: a function the role may execute, a DO block.
 */
bool policy_read_only(const struct policy_rule *r);

/*
 * What rule r says about statements classified as c: allow, deny (why says which
 * class or table, naming the rule) or hold for approval (why says which class).
 */
enum policy_verdict policy_statement_verdict(const struct policy_rule *r, const struct sqlclass_result *c,
					     char *why, size_t cap);

/* What rule r's table rules say of one table ("schema.table"; an unqualified name is
 * taken as public's): allow, or deny with why naming the rule. */
enum policy_verdict policy_table_verdict(const struct policy_rule *r, const char *table, char *why, size_t cap);

/* True when a rule masks with "hash" (a key file is then needed). */
bool policy_uses_hash(const struct policy *p);

/* The dangerous function globs in force: sqlclass's defaults plus the files' own. */
const char *const *policy_dangerous(const struct policy *p);

void policy_release(struct policy *p);

#endif
