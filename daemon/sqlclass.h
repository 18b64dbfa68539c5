/*
 * Statement classes from PostgreSQL's own parser (libpg_query, PostgreSQL 15 grammar),
 * never from regular expressions: every statement of a multi-statement string, DML
 * inside CTEs and SELECT ... INTO, DO / CALL / EXECUTE / PREPARE, COPY ... PROGRAM and
 * calls of dangerous functions are all seen. Text that does not parse (including
 * syntax newer than PostgreSQL 15) has no classes: callers deny it.
 *
 * The parse tree comes in libpg_query's protobuf form (pg_query_parse_protobuf) and is
 * read as its JSON form would be (pgtree.h), whose depth limit bounds the walk; long
 * statements are parsed on a thread with a large stack, because the parser's output
 * functions and the unpacking recurse once per nesting level.
 */
#ifndef PGTETHER_SQLCLASS_H
#define PGTETHER_SQLCLASS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sql_class {
	SQL_READ = 1u << 0,
	SQL_WRITE = 1u << 1,            /* INSERT, UPDATE, DELETE, MERGE; SELECT INTO; CREATE TABLE AS */
	SQL_DDL = 1u << 2,
	SQL_DROP = 1u << 3,
	SQL_TRUNCATE = 1u << 4,
	SQL_ALTER_ROLE = 1u << 5,       /* CREATE/ALTER/DROP ROLE, ALTER ROLE SET, REASSIGN/DROP OWNED */
	SQL_GRANT = 1u << 6,            /* GRANT, REVOKE, ALTER DEFAULT PRIVILEGES */
	SQL_COPY_IN = 1u << 7,
	SQL_COPY_OUT = 1u << 8,
	SQL_COPY_PROGRAM = 1u << 9,     /* COPY ... PROGRAM, and COPY to or from a server file */
	SQL_DYNAMIC = 1u << 10,         /* DO, CALL, EXECUTE, PREPARE, functions that run SQL text */
	SQL_SESSION = 1u << 11,         /* SET, RESET, SET ROLE, SET SESSION AUTHORIZATION, DISCARD */
	SQL_TRANSACTION = 1u << 12,
	SQL_UTILITY = 1u << 13,         /* everything else: VACUUM, LISTEN, SHOW, LOCK, ... */
	SQL_DANGEROUS_FUNCTION = 1u << 14, /* a call of a function in the dangerous list */
};
#define SQL_CLASS_COUNT 15

#define SQLCLASS_ERR_LEN 256
#define SQLCLASS_MAX_NAMES 64          /* tables and functions kept per statement text */

#define SQLCLASS_MAX_CALLS 256         /* (call, column) pairs kept per statement text */

struct sqlclass_call {
	char kind;                      /* 'f': a function, 'o': an operator */
	char name[64];
	char column[64];                /* a column in its arguments, "*" for one that cannot be
					 * told by name (a whole row, a renamed column), "" for
					 * the call itself */
};

struct sqlclass_result {
	unsigned classes;               /* union over every statement */
	unsigned *stmt_classes;         /* per statement */
	size_t n_stmts;
	char *tables[SQLCLASS_MAX_NAMES]; /* "schema.table", or "table" when unqualified */
	size_t n_tables;
	char *functions[SQLCLASS_MAX_NAMES]; /* dangerous functions called */
	size_t n_functions;
	/* Where column values leave without their column identity, so a mask cannot
	 * find them in RowDescription: a column named in an expression of a select
	 * list (upper(email), email::text, a scalar subquery, a UNION arm), or copied
	 * into a table (INSERT ... SELECT, CREATE TABLE AS, SET a = b, CREATE VIEW).
	 * Plain column references of a SELECT's own list (and of its FROM subqueries,
	 * CTEs and RETURNING) keep their identity and are not listed. A column cast
	 * anywhere (even in WHERE) is listed: a failed cast puts the value in the error. */
	char *out_columns[SQLCLASS_MAX_NAMES]; /* column names */
	size_t n_out_columns;
	char *whole_rows[SQLCLASS_MAX_NAMES];  /* relations taken as whole-row values
						* (row_to_json(u), SELECT u FROM users u);
						* "*" for every relation of the statement */
	size_t n_whole_rows;
	char *schemas[SQLCLASS_MAX_NAMES]; /* schemas renamed (ALTER SCHEMA ... RENAME):
					    * each of their relations gets a new name */
	size_t n_schemas;
	char *prepares[SQLCLASS_MAX_NAMES];  /* names of SQL PREPAREs, as the server keeps them */
	size_t n_prepares;
	char *executes[SQLCLASS_MAX_NAMES];  /* names of prepared statements EXECUTEd */
	size_t n_executes;
	int runs_code;                  /* DO, CALL, CREATE FUNCTION, query_to_xml(...):
					 * server-side code no check can follow */
	int any_table;                  /* it may read or write tables it does not name:
					 * SQL given as text (query_to_xml, ts_stat, ts_rewrite,
					 * table_to_xml(regclass), ...), DO, CALL, CREATE FUNCTION */
	int out_renamed;                /* a leaving expression names a column renamed inside
					 * the statement (a subquery's or CTE's alias) */
	int sets_read_write;            /* may make the transaction or the session read-write:
					 * SET [default_]transaction_read_only, BEGIN / SET
					 * TRANSACTION / SET SESSION CHARACTERISTICS ... READ
					 * WRITE, set_config() of those or of a computed name,
					 * RESET transaction_read_only, DO, a statement after
					 * a COMMIT of the same text */
	/* Columns passed, anywhere in the statement (WHERE, JOIN ON, ORDER BY, VALUES, a
	 * subquery), to a function that carries its argument out by a channel other than
	 * the result: pg_notify, set_config, setval, advisory locks, large objects, ...
	 * (sqlclass_carriers), and any function that is not built in (its code may keep
	 * or send what it is given). "*": one the statement renames, or a whole row. */
	char *carried[SQLCLASS_MAX_NAMES];
	size_t n_carried;
	char carrier[64];               /* the first such function called with a column */
	int calls_unknown;              /* calls a function that is not one of PostgreSQL's
					 * built-ins (sqlclass_builtin): its code may read a
					 * masked column and say it in a notice or error */
	char settings_row[64];          /* non-empty: a statement is pg_dump's "SELECT
					 * set_config(name, 'v', false) FROM pg_settings WHERE
					 * name = 'x'" (sqlclass_settings_row): it sets x, but only
					 * if pg_settings and = are pg_catalog's; the session must
					 * make sure of that on the server (searchpath_check) */
	/* Calls PostgreSQL resolves by name and argument types along the search_path,
	 * which this classification takes for built-ins: unqualified calls of built-in
	 * function names, and every operator not qualified with a schema (WHERE a = b,
	 * IN, LIKE, BETWEEN, CASE x WHEN, JOIN ... USING, ORDER BY ... USING). A function
	 * or operator of that name outside pg_catalog may win (a better match of the
	 * argument types, or a search_path before pg_catalog): a masked session then
	 * counts the call as not built in (maskset_leak, maskset_touches). One entry per
	 * column named in its arguments, and one with column "" for the call itself. */
	struct sqlclass_call *calls;
	size_t n_calls;
	int calls_overflow;             /* more than SQLCLASS_MAX_CALLS: not all are listed */
	char guard[SQLCLASS_ERR_LEN];   /* non-empty: a statement touches pgtether.* or
					 * client_encoding (sqlguard.h), denied whatever
					 * the rule allows; the denial's message */
	char error[SQLCLASS_ERR_LEN];   /* why there are no classes */
	int error_pos;                  /* 1-based character of a syntax error, or 0 */
};

/* Whether name is a function of PostgreSQL 15's pg_catalog (daemon/sqlclass_builtins.h). */
int sqlclass_builtin(const char *name);

/* The functions denied unless a rule allows "dangerous_function". Admins add more. */
extern const char *const sqlclass_default_dangerous[];

/* Functions (globs of the last part of the name, PostgreSQL 15's catalog) whose
 * arguments leave the statement through another channel: NotificationResponse to
 * every listener, settings (current_setting, pg_settings, pg_stat_activity),
 * sequences, advisory lock keys (pg_locks), large objects, WAL messages, replication
 * slots and origins, backup labels, other servers (dblink). */
extern const char *const sqlclass_carriers[];

/*
 * Classifies the statements of sql (NUL-terminated). dangerous: NULL-terminated globs
 * of function names (the last part of a qualified name is matched). 0 with *ret filled;
 * -EINVAL when sql does not parse or is nested too deeply, -E2BIG when it names more
 * than SQLCLASS_MAX_NAMES tables, functions or columns to check, -EILSEQ when its
 * bytes read differently in a client-only encoding (ret->error says why); -ENOMEM.
 * ret must be released either way.
 *
 * A text with a backslash is read both with standard_conforming_strings on and off,
 * and the result is the union of the readings that parse: the server's setting can
 * change where pgtether cannot see it in time (a pipelined SET, a function). The
 * result depends on the text alone, so the cache below stays right.
 */
int sqlclass_classify(const char *sql, const char *const *dangerous, struct sqlclass_result *ret);

void sqlclass_release(struct sqlclass_result *r);

/*
 * For sqlguard: the guard over server-side code. sql is SQL text, or (plpgsql_function)
 * text with CREATE FUNCTION ... LANGUAGE plpgsql statements whose bodies are checked;
 * both readings of a backslash. 1 with why filled when it touches a guarded setting,
 * 0 when not, -EINVAL when no reading parses, -ENOMEM.
 */
int sqlclass_guard_text(const char *sql, bool plpgsql_function, int depth, char *why, size_t cap);

/* Whether a call of name with nargs arguments builds SQL from them (query_to_xml,
 * ts_stat, crosstab, xpath_table, ...: the list runs_code and any_table come from). */
bool sqlclass_query_function(const char *name, size_t nargs);

/* "SELECT <a string constant>": that string (malloc'd), the same in both readings;
 * NULL for anything else. */
char *sqlclass_constant_select(const char *sql);

/*
 * The output columns of a view, from its definition (pg_get_viewdef): for masks on
 * the columns a view passes on. Column i is `direct` when it is a plain column
 * reference (its name), else the names it is computed from (refs) and whether it
 * takes whole rows. A view with set operations, subqueries in FROM or CTEs is
 * `complex`: its columns cannot be traced by name.
 */
#define SQLCLASS_VIEW_REFS 16

struct sqlclass_view_col {
	char *direct;
	char *refs[SQLCLASS_VIEW_REFS];
	size_t n_refs;
	int whole;                      /* a whole-row or * reference, or too many refs */
};

struct sqlclass_view {
	struct sqlclass_view_col *cols;
	size_t n;
	int complex;
};

/* 0, -EINVAL (does not parse, or not a SELECT) or -ENOMEM; release either way. */
int sqlclass_view_columns(const char *def, struct sqlclass_view *ret);

void sqlclass_view_release(struct sqlclass_view *v);

/*
 * A cache of classifications by statement text: drivers send the same text again and
 * again (an unnamed Parse per execution), and a classification costs a parse. Direct
 * mapped, SQLCLASS_CACHE_SLOTS entries of texts up to SQLCLASS_CACHE_TEXT bytes;
 * clear it whenever the dangerous list may have changed.
 */
#define SQLCLASS_CACHE_SLOTS 512
#define SQLCLASS_CACHE_TEXT 2048

struct sqlclass_cache {
	struct sqlclass_cache_entry {
		uint64_t hash;
		char *text;              /* NULL: empty slot */
		size_t len;
		int rc;                  /* what sqlclass_classify returned */
		struct sqlclass_result res;
	} slot[SQLCLASS_CACHE_SLOTS];
	uint64_t hits, misses;
};

/*
 * The classification of sql[0..len) (sql[len] is NUL): from the cache, or computed
 * and kept. *ret points into the cache (or to tmp, for texts too long to keep, which
 * the caller then releases) and stays valid until the next call. Returns what
 * sqlclass_classify returns.
 */
int sqlclass_cached(struct sqlclass_cache *c, const char *sql, size_t len, const char *const *dangerous,
		    struct sqlclass_result *tmp, const struct sqlclass_result **ret);

void sqlclass_cache_clear(struct sqlclass_cache *c);

/* Calls fn(arg, key, value) for the members of every object in the parse tree below
 * node (pgtree.h), in order; fn returns whether to go on into that value. */
struct pgtree;
struct pgtree_doc;
void sqlclass_visit(struct pgtree *node, bool (*fn)(void *arg, const char *key, struct pgtree *v), void *arg);

/*
 * pg_dump's way to set a setting only where the server has it (its
 * restrict_nonsystem_relation_kind, PostgreSQL 15.8 and later):
 *   SELECT set_config(name, 'view, foreign-table', false) FROM pg_settings
 *   WHERE name = 'restrict_nonsystem_relation_kind'
 * For a SelectStmt node of exactly that shape (a string constant as the value, a
 * boolean constant, nothing else in the statement), the setting name it compares
 * with, and in *ret_call the FuncCall node of set_config; else NULL. The name is
 * the setting set only when pg_settings is pg_catalog.pg_settings (not shadowed by
 * a temporary relation) and = is pg_catalog's (no schema ahead of pg_catalog on the
 * search_path): what the session asks the server right before (searchpath_check).
 * A pgtether.* setting is never a row of pg_catalog.pg_settings (placeholders are
 * not shown), but the name is checked as if it were set by a constant anyway.
 */
const char *sqlclass_settings_row(struct pgtree *select, struct pgtree **ret_call);

/* The parse tree of sql (the caller frees it with pgtree_doc_free); NULL when it
 * does not parse, memory ran out, or (a backslash) its readings with
 * standard_conforming_strings on and off both parse and differ. */
struct pgtree_doc *sqlclass_parse_tree(const char *sql);

/* "read", "write", ... for one class bit; NULL for none. */
const char *sqlclass_name(unsigned bit);

/* The class bit of a name, or 0. */
unsigned sqlclass_from_name(const char *name);

/* "read, write" for a set of classes, into out. */
void sqlclass_format(unsigned classes, char *out, size_t cap);

#endif
