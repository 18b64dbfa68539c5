/*
 * Unqualified table names, resolved the way the server will resolve them (DESIGN.md
 * "The session model"). A rule's table rules name schema.table; a statement that
 * names a table without its schema reaches whichever relation of that name comes
 * first on the session's effective search_path: the session's temporary schema
 * (searched first unless listed), pg_catalog (first unless listed), then the listed
 * schemas that exist and that the role may use. The path can be changed by SET, by
 * set_config(), by the role's or database's default, by functions; so pgtether does
 * not keep a model of it that could go stale, but asks the server, right before the
 * statement, on the session's own connection (searchpath_query), what the path is
 * and which schemas hold a relation of each name.
 *
 * How an answer is used (searchpath_check):
 *  - Statement 0 of a Query, and later statements preceded only by BEGIN and SET
 *    search_path with constants (whose effect is modelled), are resolved on that
 *    path. The verdict must hold for the relation found and for every relation of
 *    the same name behind it on the path: a relation the workload owns can be
 *    dropped by its own other session between the answer and the statement, and the
 *    name then reaches the next one. (A relation that appears meanwhile was created
 *    by a statement pgtether checked, or by server-side code, which table rules
 *    cannot follow anyway.)
 *  - Anything else (statements after one whose effect on the path is unknown, a
 *    Parse, whose statement may be bound after the path changed, the query of a
 *    PREPARE) must hold for every relation of that name in any schema.
 *  - A name that no relation has yet (a CTE, or created earlier in the same text) is
 *    taken in the schema a CREATE would use; where that cannot be known, denied.
 * The session's temporary schema is named "pg_temp" for the rules, whatever its
 * catalog name (pg_temp_3).
 */
#ifndef PGTETHER_SEARCHPATH_H
#define PGTETHER_SEARCHPATH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"
#include "sqlclass.h"

#define SEARCHPATH_MAX_REFS SQLCLASS_MAX_NAMES
#define SEARCHPATH_MAX_SCHEMAS 32      /* of one path; a longer one is not modelled */
#define SEARCHPATH_MAX_RELS 512        /* relations of the names asked for, all schemas */
#define SEARCHPATH_NAME 64             /* NAMEDATALEN: longer names are cut by the server */

enum searchpath_how {
	SEARCHPATH_FIND,                /* an existing relation is looked up */
	SEARCHPATH_CREATE,              /* created in the creation schema (or its own) */
	SEARCHPATH_CREATE_TEMP,         /* CREATE TEMP ...: in pg_temp */
};

struct searchpath_ref {
	char schema[SEARCHPATH_NAME];   /* "" when unqualified */
	char name[SEARCHPATH_NAME];
	unsigned stmt;                  /* index of the statement in the text */
	enum searchpath_how how;
	bool later;                     /* resolved when a prepared statement runs (PREPARE) */
};

/* A statement's effect on the path, for the statements after it in the same text. */
enum searchpath_effect {
	SEARCHPATH_NONE,                /* BEGIN, START TRANSACTION */
	SEARCHPATH_SETS,                /* SET [LOCAL] search_path to constants */
	SEARCHPATH_UNKNOWN,             /* anything else */
};

struct searchpath_stmt {
	enum searchpath_effect effect;
	char path[SEARCHPATH_MAX_SCHEMAS][SEARCHPATH_NAME]; /* SETS: the names as set */
	size_t n_path;
};

/* What a statement text names, from its parse tree. */
struct searchpath_scan {
	struct searchpath_ref refs[SEARCHPATH_MAX_REFS];
	size_t n_refs;
	struct searchpath_stmt *stmts;
	size_t n_stmts;
	size_t n_unqualified;           /* refs without a schema */
};

/*
 * Scans sql (NUL-terminated). 0, -EINVAL (does not parse), -E2BIG (more than
 * SEARCHPATH_MAX_REFS names) or -ENOMEM; release either way.
 */
int searchpath_scan(const char *sql, struct searchpath_scan *ret);

void searchpath_scan_release(struct searchpath_scan *sc);

/* What the server said, rows of searchpath_query. */
struct searchpath_state {
	char *path[SEARCHPATH_MAX_SCHEMAS]; /* current_schemas(true), in order */
	size_t n_path;
	bool path_cut;                  /* longer than SEARCHPATH_MAX_SCHEMAS */
	char *creation;                 /* the schema CREATE uses, or NULL (none, or pending temp) */
	char *temp;                     /* the session's temporary schema, or NULL */
	char *user;                     /* current_user, for "$user" */
	struct searchpath_rel { char *schema, *name; bool usable; } rels[SEARCHPATH_MAX_RELS];
	size_t n_rels;
	bool rels_cut;                  /* more than SEARCHPATH_MAX_RELS */
};

/*
 * The question for the names of sc, as extended-query messages: Close and Parse of
 * the catalog query as SEARCHPATH_STATEMENT (with_parse: not known to be prepared in
 * this session; prepared once, it is planned once), Close of SEARCHPATH_PORTAL, Bind of the names as its name[]
 * parameter to SEARCHPATH_PORTAL, Execute, Close of the portal, Sync. Every object
 * in the query is schema-qualified, so the session's own search_path cannot
 * redirect it. Returns the bytes (free them), *ret_len their length; NULL with
 * *err (-ENOMEM). The session prepares it again after anything that may have
 * closed it (a Close message, DEALLOCATE, DISCARD, DO). Server-side code could
 * replace it unseen (EXECUTE 'PREPARE ...' in a function), as it could read any
 * table itself: table rules do not follow server-side code.
 */
#define SEARCHPATH_STATEMENT "pgtether_searchpath"
#define SEARCHPATH_PORTAL "pgtether_searchpath"

uint8_t *searchpath_request(const struct searchpath_scan *sc, bool with_parse, size_t *ret_len, int *err);

/* Takes one DataRow body of its answer. 0, -EBADMSG (not understood) or -ENOMEM. */
int searchpath_add_row(struct searchpath_state *st, const uint8_t *body, size_t len);

void searchpath_state_release(struct searchpath_state *st);

/*
 * The table part of rule r's verdict on a statement classified as c and scanned as
 * sc, with st the server's answer (NULL: none could be had; then every unqualified
 * name is denied, why says so with `unknown_why`). prepared: the text is a Parse's.
 * Returns POLICY_ALLOW or POLICY_DENY (why says which name resolves where, naming
 * the rule, and what to do). Qualified names are left to policy_statement_verdict.
 */
enum policy_verdict searchpath_check(const struct policy_rule *r, const struct sqlclass_result *c,
				     const struct searchpath_scan *sc, const struct searchpath_state *st,
				     bool prepared, const char *unknown_why, char *why, size_t cap);

/* True when r has table rules and c names tables: the names are then scanned
 * (searchpath_scan) for those without a schema, and for a dot inside a quoted name,
 * which sqlclass's "schema.table" cannot show. */
bool searchpath_needed(const struct policy_rule *r, const struct sqlclass_result *c);

#endif
