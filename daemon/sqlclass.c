/*
 * Statement classification on libpg_query's parse tree (see sqlclass.h).
 */
#include "sqlclass_int.h"

#include "sqlguard.h"

#include <errno.h>
#include <fnmatch.h>
#include <jansson.h>
#include <pg_query.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sqlclass_builtins.h"
#include <strings.h>

/* libpg_query's lexer settings (its scan.o, linked from the static archive: the shared
 * library does not export them). Per thread, so each parse sets its own. */
extern __thread bool standard_conforming_strings;

/* Statements longer than this are parsed on a thread with PARSE_STACK bytes of stack,
 * and so are those whose protobuf tree nests deeper than PARSE_INLINE_DEPTH: unpacking
 * takes about 1 KiB of stack per level (4 MiB for "SELECT - - ... x" in 4096 bytes;
 * the parse itself, 1 MiB; the JSON path took 512 KiB). */
#define PARSE_INLINE_MAX 4096
#define PARSE_INLINE_DEPTH 512
#define PARSE_STACK (256u << 20)

static const char *const names[SQL_CLASS_COUNT] = {
	"read", "write", "ddl", "drop", "truncate", "alter_role", "grant", "copy_in", "copy_out",
	"copy_program", "dynamic", "session", "transaction", "utility", "dangerous_function",
};

const char *const sqlclass_default_dangerous[] = {
	"pg_read_file", "pg_read_binary_file", "pg_ls_dir", "pg_stat_file", "pg_file_write",
	"lo_import", "lo_export", "lo_from_bytea", "lo_put", "dblink*", "pg_terminate_backend",
	"pg_cancel_backend", "pg_reload_conf", "pg_rotate_logfile", "pg_promote",
	"pg_switch_wal", "pg_create_restore_point", "pg_logical_emit_message",
	"pg_replication_origin_*", "pg_create_*_replication_slot", "pg_drop_replication_slot",
	"pg_execute_server_program", NULL,
};

const char *const sqlclass_carriers[] = {
	"pg_notify", "set_config", "setval", "pg_advisory*lock*", "pg_try_advisory*lock*",
	"lo_from_bytea", "lo_put", "lowrite", "lo_create", "lo_import", "lo_export", "pg_logical_emit_message",
	"pg_replication_origin_*", "pg_create_*_replication_slot", "pg_copy_*_replication_slot",
	"pg_create_restore_point", "pg_backup_start", "pg_start_backup", "dblink*", "pg_file_write", NULL,
};

static int builtin_cmp(const void *key, const void *elem)
{
	return strcmp(key, *(const char *const *)elem);
}

int sqlclass_builtin(const char *name)
{
	return bsearch(name, sqlclass_builtins, sizeof(sqlclass_builtins) / sizeof(sqlclass_builtins[0]),
		       sizeof(sqlclass_builtins[0]), builtin_cmp) != NULL;
}

const char *sqlclass_name(unsigned bit)
{
	for (unsigned i = 0; i < SQL_CLASS_COUNT; i++)
		if (bit == 1u << i)
			return names[i];
	return NULL;
}

unsigned sqlclass_from_name(const char *name)
{
	for (unsigned i = 0; i < SQL_CLASS_COUNT; i++)
		if (strcmp(names[i], name) == 0)
			return 1u << i;
	return 0;
}

void sqlclass_format(unsigned classes, char *out, size_t cap)
{
	size_t n = 0;

	out[0] = '\0';
	for (unsigned i = 0; i < SQL_CLASS_COUNT && n < cap; i++)
		if (classes & (1u << i)) {
			int w = snprintf(out + n, cap - n, "%s%s", n ? ", " : "", names[i]);

			if (w < 0)
				break;
			n += (size_t)w;
		}
}

/* Top-level statement node → its own class (nested nodes add more in walk()). */
static unsigned stmt_class(const char *type, struct pgtree *node)
{
	static const struct { const char *type; unsigned cls; } exact[] = {
		{ "SelectStmt", SQL_READ }, { "InsertStmt", SQL_WRITE }, { "UpdateStmt", SQL_WRITE },
		{ "DeleteStmt", SQL_WRITE }, { "MergeStmt", SQL_WRITE },
		{ "CreateTableAsStmt", SQL_WRITE | SQL_DDL }, { "RefreshMatViewStmt", SQL_WRITE },
		{ "DropStmt", SQL_DROP }, { "TruncateStmt", SQL_TRUNCATE },
		{ "CreateRoleStmt", SQL_ALTER_ROLE }, { "AlterRoleStmt", SQL_ALTER_ROLE },
		{ "AlterRoleSetStmt", SQL_ALTER_ROLE }, { "DropRoleStmt", SQL_ALTER_ROLE },
		{ "ReassignOwnedStmt", SQL_ALTER_ROLE }, { "DropOwnedStmt", SQL_ALTER_ROLE },
		{ "GrantStmt", SQL_GRANT }, { "GrantRoleStmt", SQL_GRANT },
		{ "AlterDefaultPrivilegesStmt", SQL_GRANT },
		{ "DoStmt", SQL_DYNAMIC }, { "CallStmt", SQL_DYNAMIC }, { "ExecuteStmt", SQL_DYNAMIC },
		{ "PrepareStmt", SQL_DYNAMIC }, { "DeallocateStmt", SQL_SESSION },
		{ "VariableSetStmt", SQL_SESSION }, { "VariableShowStmt", SQL_READ }, { "DiscardStmt", SQL_SESSION },
		{ "TransactionStmt", SQL_TRANSACTION },
		{ "ExplainStmt", 0 }, /* the classes of what it explains (ANALYZE runs it) */
		{ "DeclareCursorStmt", SQL_READ },
		/* FETCH, MOVE and CLOSE of a cursor: its rows were decided at DECLARE (and
		 * come with a RowDescription, so masks apply); pg_dump --inserts reads
		 * every table this way */
		{ "FetchStmt", SQL_READ }, { "ClosePortalStmt", SQL_READ },
		{ "DropdbStmt", SQL_DROP }, { "DropTableSpaceStmt", SQL_DROP },
		{ "DropSubscriptionStmt", SQL_DROP }, { "DropUserMappingStmt", SQL_DROP },
	};
	struct pgtree *v;

	for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++)
		if (strcmp(exact[i].type, type) == 0) {
			if (!strcmp(type, "SelectStmt") && pgtree_get(node, "intoClause"))
				return SQL_WRITE | SQL_DDL; /* SELECT ... INTO creates and fills a table */
			return exact[i].cls;
		}
	if (!strcmp(type, "LockStmt")) {
		/* ACCESS SHARE (1, storage/lockdefs.h) is the lock every SELECT takes: it
		 * conflicts only with ACCESS EXCLUSIVE, as a reading transaction does;
		 * pg_dump takes it on every table it dumps. Stronger modes can stall
		 * writers and stay utility. */
		if (pgtree_int(pgtree_get(node, "mode")) == 1)
			return SQL_READ;
		return SQL_UTILITY;
	}
	if (!strcmp(type, "CopyStmt")) {
		unsigned c = pgtree_is_true(pgtree_get(node, "is_from")) ? SQL_COPY_IN : SQL_COPY_OUT;

		v = pgtree_get(node, "filename");
		if (pgtree_is_true(pgtree_get(node, "is_program")) || pgtree_is_string(v))
			c |= SQL_COPY_PROGRAM; /* the server runs a program or opens a file */
		return c;
	}
	if (!strncmp(type, "Create", 6) || !strncmp(type, "Alter", 5) || !strcmp(type, "IndexStmt") ||
	    !strcmp(type, "ViewStmt") || !strcmp(type, "RenameStmt") || !strcmp(type, "CommentStmt") ||
	    !strcmp(type, "DefineStmt") || !strcmp(type, "CompositeTypeStmt") || !strcmp(type, "RuleStmt") ||
	    !strcmp(type, "SecLabelStmt") || !strcmp(type, "ImportForeignSchemaStmt") ||
	    !strcmp(type, "CreatedbStmt") || !strcmp(type, "AlterObjectSchemaStmt"))
		return SQL_DDL;
	return SQL_UTILITY;
}

struct walk {
	struct sqlclass_result *r;
	const char *const *dangerous;
	unsigned cls;
	int err;
	struct pgtree *row_call;        /* set_config of a sqlclass_settings_row statement */
	const char *row_name;           /* the setting it sets */
};

bool sqlclass_listed(const char *const *list, size_t n, const char *name)
{
	for (size_t i = 0; name && i < n; i++)
		if (!strcmp(list[i], name))
			return true;
	return false;
}

void sqlclass_add_name(char **list, size_t *n, const char *schema, const char *name, int *err)
{
	char buf[256];

	snprintf(buf, sizeof(buf), "%s%s%s", schema ? schema : "", schema ? "." : "", name);
	if (sqlclass_listed((const char *const *)list, *n, buf))
		return;
	if (*n == SQLCLASS_MAX_NAMES) {
		*err = -E2BIG; /* what is not listed could not be checked */
		return;
	}
	if (!(list[*n] = strdup(buf)))
		*err = -ENOMEM;
	else
		(*n)++;
}

const char *sqlclass_sval(struct pgtree *string_node)
{
	return pgtree_str(pgtree_get(pgtree_get(string_node, "String"), "sval"));
}

/* Whether object o has no members but those listed (NULL-terminated). */
static bool only_keys(struct pgtree *o, const char *const *keys)
{
	size_t i;

	if (!pgtree_is_object(o))
		return false;
	for (i = 0; i < pgtree_members(o); i++) {
		const char *const *p = keys, *k = pgtree_key_at(o, i);

		while (*p && strcmp(*p, k))
			p++;
		if (!*p)
			return false;
	}
	return true;
}

/* A ColumnRef of the one column "name", and a string constant's text. */
static bool column_is_name(struct pgtree *node)
{
	struct pgtree *f = pgtree_get(pgtree_get(node, "ColumnRef"), "fields");

	return pgtree_size(f) == 1 && sqlclass_sval(pgtree_at(f, 0)) && !strcmp(sqlclass_sval(pgtree_at(f, 0)), "name");
}

static const char *string_const(struct pgtree *node)
{
	struct pgtree *c = pgtree_get(node, "A_Const");

	return only_keys(c, (const char *const[]){ "sval", "location", NULL }) ?
	       pgtree_str(pgtree_get(pgtree_get(c, "sval"), "sval")) : NULL;
}

const char *sqlclass_settings_row(struct pgtree *select, struct pgtree **ret_call)
{
	static const char *const select_keys[] = { "targetList", "fromClause", "whereClause", "limitOption", "op", NULL };
	struct pgtree *tl = pgtree_get(select, "targetList"), *from = pgtree_get(select, "fromClause");
	struct pgtree *where = pgtree_get(pgtree_get(select, "whereClause"), "A_Expr");
	struct pgtree *res = pgtree_get(pgtree_at(tl, 0), "ResTarget");
	struct pgtree *call = pgtree_get(res, "val"), *fc = pgtree_get(call, "FuncCall");
	struct pgtree *fn = pgtree_get(fc, "funcname"), *args = pgtree_get(fc, "args");
	struct pgtree *rel = pgtree_get(pgtree_at(from, 0), "RangeVar"), *op = pgtree_get(where, "name");
	struct pgtree *b = pgtree_get(pgtree_at(args, 2), "A_Const");
	size_t nfn = pgtree_size(fn);
	const char *fname = nfn ? sqlclass_sval(pgtree_at(fn, nfn - 1)) : NULL;
	const char *fschema = nfn == 2 ? sqlclass_sval(pgtree_at(fn, 0)) : NULL;

	/* nothing else may take part: no alias, DISTINCT, GROUP BY, second column,
	 * join, schema for pg_settings (pg_catalog's is what the session makes sure
	 * of), operator schema, ... */
	if (!only_keys(select, select_keys) ||
	    strcmp(pgtree_str(pgtree_get(select, "limitOption")) ?: "", "LIMIT_OPTION_DEFAULT") ||
	    strcmp(pgtree_str(pgtree_get(select, "op")) ?: "", "SETOP_NONE") ||
	    pgtree_size(tl) != 1 || !only_keys(res, (const char *const[]){ "val", "location", NULL }) ||
	    !only_keys(fc, (const char *const[]){ "funcname", "args", "funcformat", "location", NULL }) ||
	    !fname || strcmp(fname, "set_config") || (nfn == 2 && (!fschema || strcmp(fschema, "pg_catalog"))) || nfn > 2 ||
	    pgtree_size(args) != 3 || !column_is_name(pgtree_at(args, 0)) ||
	    !string_const(pgtree_at(args, 1)) ||
	    !only_keys(b, (const char *const[]){ "boolval", "location", NULL }) ||
	    pgtree_size(from) != 1 ||
	    !only_keys(rel, (const char *const[]){ "relname", "inh", "relpersistence", "location", NULL }) ||
	    strcmp(pgtree_str(pgtree_get(rel, "relname")) ?: "", "pg_settings") ||
	    !pgtree_is_true(pgtree_get(rel, "inh")) ||
	    !only_keys(where, (const char *const[]){ "kind", "name", "lexpr", "rexpr", "location", NULL }) ||
	    strcmp(pgtree_str(pgtree_get(where, "kind")) ?: "", "AEXPR_OP") ||
	    pgtree_size(op) != 1 || strcmp(sqlclass_sval(pgtree_at(op, 0)) ?: "", "=") ||
	    !column_is_name(pgtree_get(where, "lexpr")))
		return NULL;
	*ret_call = fc;
	return string_const(pgtree_get(where, "rexpr"));
}

/*
 * Built-ins that change data although they are called from a SELECT: the functions
 * of PostgreSQL 15 that refuse to run in a read-only transaction
 * (PreventCommandIfReadOnly in sequence.c and be-fsstubs.c). They are writes.
 */
static const char *const writes_data[] = {
	"nextval", "setval", "lo_creat", "lo_create", "lo_unlink", "lowrite", "lo_import",
	"lo_truncate", "lo_truncate64", "lo_from_bytea", "lo_put", NULL,
};

#define INV_WRITE 0x00020000 /* libpq/libpq-fs.h: lo_open's mode bit for writing */

/* An integer constant's value, in the JSON of PostgreSQL 15's A_Const (a zero is
 * written as an empty "ival" object). */
static bool int_const(struct pgtree *node, long *ret)
{
	struct pgtree *c = pgtree_get(node, "A_Const"), *iv = pgtree_get(c, "ival");

	if (!pgtree_is_object(iv))
		return false;
	*ret = (long)pgtree_int(pgtree_get(iv, "ival"));
	return true;
}

static bool writes_data_call(const char *name, struct pgtree *args)
{
	long mode;

	if (name && !strcmp(name, "lo_open")) /* writes unless its mode is a constant without INV_WRITE */
		return !(pgtree_size(args) == 2 && int_const(pgtree_at(args, 1), &mode) && !(mode & INV_WRITE));
	for (const char *const *f = writes_data; name && *f; f++)
		if (!strcmp(*f, name))
			return true;
	return false;
}

/* The settings that make a session or a transaction read-only. */
static bool read_only_setting(const char *name)
{
	return name && (!strcasecmp(name, "default_transaction_read_only") || !strcasecmp(name, "transaction_read_only"));
}

/* Whether a node may turn read-only off: a SET of one of those settings (RESET and
 * SET ... TO DEFAULT of the default go back to what the session started with; of
 * transaction_read_only, to off), a DO block, a transaction_read_only
 * option that is not a constant true (BEGIN READ WRITE, SET TRANSACTION READ WRITE,
 * SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE), or set_config() of one of
 * them or of a name computed at run time. */
static bool sets_read_write(const char *key, struct pgtree *v, const char *func, struct pgtree *args, const char *row_name)
{
	long on;

	if (!strcmp(key, "VariableSetStmt")) {
		const char *name = pgtree_str(pgtree_get(v, "name"));
		const char *kind = pgtree_str(pgtree_get(v, "kind")) ?: "";

		/* PostgreSQL 15 lets RESET transaction_read_only and SET ... TO DEFAULT take
		 * it to its boot value, off, whatever default_transaction_read_only says
		 * (16 refuses them); RESET of the default goes back to the startup's on */
		return read_only_setting(name) &&
		       (!strcmp(kind, "VAR_SET_VALUE") ||
			(!strcasecmp(name, "transaction_read_only") &&
			 (!strcmp(kind, "VAR_RESET") || !strcmp(kind, "VAR_SET_DEFAULT"))));
	}
	/* A DO block's body may do any of this (RESET transaction_read_only, or
	 * set_config of the default and COMMIT) where no check sees it */
	if (!strcmp(key, "DoStmt"))
		return true;
	if (!strcmp(key, "DefElem") && !strcmp(pgtree_str(pgtree_get(v, "defname")) ?: "", "transaction_read_only"))
		return !(int_const(pgtree_get(v, "arg"), &on) && on == 1);
	if (func && !strcmp(func, "set_config")) {
		struct pgtree *c = pgtree_get(pgtree_at(args, 0), "A_Const");
		const char *name = pgtree_str(pgtree_get(pgtree_get(c, "sval"), "sval"));

		if (row_name)
			name = row_name; /* sqlclass_settings_row: the row's, once made sure of */
		return !name || read_only_setting(name);
	}
	return false;
}

void sqlclass_visit(struct pgtree *node, bool (*fn)(void *arg, const char *key, struct pgtree *v), void *arg)
{
	const char *key;
	struct pgtree *v;
	size_t i;

	if (pgtree_is_object(node)) {
		pgtree_foreach_member(node, i, key, v)
			if (fn(arg, key, v))
				sqlclass_visit(v, fn, arg);
	} else if (pgtree_is_array(node)) {
		pgtree_foreach(node, i, v)
			sqlclass_visit(v, fn, arg);
	}
}


/*
 * Functions that run SQL given as text, or read relations an argument names: the
 * tables they read are nowhere in the statement. Derived from PostgreSQL 15: the
 * SQL-callable C functions of src/backend that hand a caller's string or relation
 * to SPI (utils/adt/xml.c: query_to_xml_internal, query_to_oid_list, cursor_to_xml's
 * SPI_cursor_find; tsvector_op.c ts_stat_sql; tsquery_rewrite.c), mapped to pg_proc
 * by prosrc, and those of contrib that do the same (tablefunc, xml2; dblink is in the
 * dangerous list) or read a relation's pages by its name (pageinspect's get_raw_page
 * and bt_page_items). tests/integration/145-dynamic-sql.bats keeps this list tied to
 * the live catalog. The *_to_xmlschema ones read only a relation's definition, but
 * of relations the text does not name, so they count too. sqlguard_may_touch's byte
 * scan must find each one that builds SQL from text (test_sqlguard checks).
 */
static const char *const query_functions[] = {
	"query_to_xml", "query_to_xmlschema", "query_to_xml_and_xmlschema",
	"cursor_to_xml", "cursor_to_xmlschema",
	"table_to_xml", "table_to_xmlschema", "table_to_xml_and_xmlschema",
	"schema_to_xml", "schema_to_xmlschema", "schema_to_xml_and_xmlschema",
	"database_to_xml", "database_to_xmlschema", "database_to_xml_and_xmlschema",
	"ts_stat", "ts_rewrite", /* ts_rewrite(tsquery, text); the 3-argument form runs nothing */
	"crosstab", "crosstab2", "crosstab3", "crosstab4", "connectby", "xpath_table", "get_raw_page", "bt_page_items",
	NULL,
};

static bool query_function(const char *name)
{
	for (const char *const *q = query_functions; name && *q; q++)
		if (!strcmp(*q, name))
			return true;
	return false;
}

bool sqlclass_query_function(const char *name, size_t nargs)
{
	return query_function(name) && (!name || strcmp(name, "ts_rewrite") || nargs != 3);
}

static void runs_query(struct walk *w)
{
	w->cls |= SQL_DYNAMIC;
	w->r->runs_code = 1;
	w->r->any_table = 1;
}

/* sqlclass_visit(): a name anywhere in CREATE OPERATOR / AGGREGATE / CAST and the like, which
 * bind a query function to an operator, an aggregate's state function or a cast, so
 * that it is called without a FuncCall of its name. */
static bool names_query_function(void *arg, const char *key, struct pgtree *v)
{
	if (!strcmp(key, "String") && query_function(pgtree_str(pgtree_get(v, "sval"))))
		runs_query(arg);
	return true;
}

/*
 * DDL that gives a function, aggregate or operator a name a later statement may call
 * unqualified: CREATE AGGREGATE / OPERATOR, ALTER FUNCTION ... RENAME, extensions
 * (whose scripts run code too). A masked session learns the names outside pg_catalog
 * with its masks, but only between statements outside a transaction: so these count
 * as server-side code (runs_code), as CREATE FUNCTION does.
 */
static bool defines_callable(const char *key, struct pgtree *v)
{
	const char *kind;

	if (!strcmp(key, "CreateExtensionStmt") || !strcmp(key, "AlterExtensionStmt") ||
	    !strcmp(key, "AlterExtensionContentsStmt"))
		return true;
	if (!strcmp(key, "DefineStmt")) {
		kind = pgtree_str(pgtree_get(v, "kind")) ?: "";
		return !strcmp(kind, "OBJECT_AGGREGATE") || !strcmp(kind, "OBJECT_OPERATOR");
	}
	if (!strcmp(key, "RenameStmt")) {
		kind = pgtree_str(pgtree_get(v, "renameType")) ?: "";
		return !strcmp(kind, "OBJECT_FUNCTION") || !strcmp(kind, "OBJECT_PROCEDURE") ||
		       !strcmp(kind, "OBJECT_ROUTINE") || !strcmp(kind, "OBJECT_AGGREGATE");
	}
	return false;
}

static void on_object(struct walk *w, const char *key, struct pgtree *v)
{
	if (!strcmp(key, "InsertStmt") || !strcmp(key, "UpdateStmt") || !strcmp(key, "DeleteStmt") ||
	    !strcmp(key, "MergeStmt"))
		w->cls |= SQL_WRITE; /* DML anywhere: CTEs, rules, PREPARE, EXPLAIN */
	if ((!strcmp(key, "UpdateStmt") && pgtree_get(v, "fromClause")) ||
	    (!strcmp(key, "DeleteStmt") && pgtree_get(v, "usingClause")) || !strcmp(key, "MergeStmt"))
		w->cls |= SQL_READ; /* rows of other tables decide what is written */
	if (!strcmp(key, "GrantStmt") || !strcmp(key, "GrantRoleStmt"))
		w->cls |= SQL_GRANT; /* CREATE SCHEMA s GRANT ALL ON public.t TO public grants on any table */
	else if ((!strcmp(key, "SelectStmt") && pgtree_get(v, "intoClause")) || !strcmp(key, "CreateTableAsStmt"))
		w->cls |= SQL_WRITE | SQL_DDL; /* EXPLAIN ANALYZE CREATE TABLE / MATERIALIZED VIEW ... AS creates it */
	else if (!strcmp(key, "SelectStmt") && !(pgtree_get(v, "valuesLists") && !pgtree_get(v, "targetList")))
		w->cls |= SQL_READ; /* a bare VALUES list (INSERT ... VALUES) reads nothing */
	else if (!strcmp(key, "FuncCall")) {
		struct pgtree *fn = pgtree_get(v, "funcname");
		size_t n = pgtree_size(fn);
		const char *name = n ? sqlclass_sval(pgtree_at(fn, n - 1)) : NULL;
		const char *schema = n > 1 ? sqlclass_sval(pgtree_at(fn, n - 2)) : NULL;

		if (!name || (schema && strcmp(schema, "pg_catalog")) || !sqlclass_builtin(name))
			w->r->calls_unknown = 1; /* a function of the database's own */

		if (name && !strcmp(name, "set_config"))
			w->cls |= SQL_SESSION; /* what SET does (pg_dump's search_path); pgtether.*,
						* client_encoding and read-only are guarded apart */
		if (writes_data_call(name, pgtree_get(v, "args")))
			w->cls |= SQL_WRITE; /* SELECT nextval('s'), lo_create(0) */
		if (sets_read_write(key, v, name, pgtree_get(v, "args"), v == w->row_call ? w->row_name : NULL))
			w->r->sets_read_write = 1;
		/* query_to_xml('select email from users', ...), in any schema spelling */
		if (query_function(name) && (strcmp(name, "ts_rewrite") || pgtree_size(pgtree_get(v, "args")) != 3))
			runs_query(w);
		for (const char *const *d = w->dangerous; name && d && *d; d++)
			if (fnmatch(*d, name, 0) == 0) {
				w->cls |= SQL_DANGEROUS_FUNCTION;
				sqlclass_add_name(w->r->functions, &w->r->n_functions, schema, name, &w->err);
				break;
			}
	}
	if ((!strcmp(key, "VariableSetStmt") || !strcmp(key, "DefElem") || !strcmp(key, "DoStmt")) &&
	    sets_read_write(key, v, NULL, NULL, NULL))
		w->r->sets_read_write = 1;
	if (!strcmp(key, "DefineStmt") || !strcmp(key, "CreateCastStmt") || !strcmp(key, "CreateOpClassStmt") ||
	    !strcmp(key, "AlterOpFamilyStmt") || !strcmp(key, "CreateTransformStmt") || !strcmp(key, "AlterOperatorStmt"))
		sqlclass_visit(v, names_query_function, w);
	if (defines_callable(key, v))
		w->r->runs_code = 1;
	if (!strcmp(key, "RenameStmt") && pgtree_is_string(pgtree_get(v, "subname")) &&
	    !strcmp(pgtree_str(pgtree_get(v, "renameType")) ?: "", "OBJECT_SCHEMA"))
		/* every relation in it changes its name without being named */
		sqlclass_add_name(w->r->schemas, &w->r->n_schemas, NULL, pgtree_str(pgtree_get(v, "subname")),
			 &w->err);
	if (!strcmp(key, "DropStmt")) {
		/* DROP TABLE/VIEW/...: the names are lists of strings, not RangeVars */
		const char *t = pgtree_str(pgtree_get(v, "removeType"));
		struct pgtree *obj;
		size_t i;

		if (t && (!strcmp(t, "OBJECT_TABLE") || !strcmp(t, "OBJECT_VIEW") || !strcmp(t, "OBJECT_MATVIEW") ||
			  !strcmp(t, "OBJECT_FOREIGN_TABLE") || !strcmp(t, "OBJECT_SEQUENCE")))
			pgtree_foreach(pgtree_get(v, "objects"), i, obj) {
				struct pgtree *items = pgtree_get(pgtree_get(obj, "List"), "items");
				size_t n = pgtree_size(items);

				if (n >= 1 && sqlclass_sval(pgtree_at(items, n - 1)))
					sqlclass_add_name(w->r->tables, &w->r->n_tables, n >= 2 ? sqlclass_sval(pgtree_at(items, n - 2)) : NULL,
						 sqlclass_sval(pgtree_at(items, n - 1)), &w->err);
			}
	}
	if (pgtree_is_object(v) && pgtree_is_string(pgtree_get(v, "relname")))
		sqlclass_add_name(w->r->tables, &w->r->n_tables, pgtree_str(pgtree_get(v, "schemaname")),
			 pgtree_str(pgtree_get(v, "relname")), &w->err);
	/* the session's prepared statements: what runs at an EXECUTE is decided by what
	 * was prepared under its name (EXPLAIN ANALYZE and CREATE TABLE AS run one too) */
	if ((!strcmp(key, "PrepareStmt") || !strcmp(key, "ExecuteStmt")) && pgtree_is_string(pgtree_get(v, "name"))) {
		if (key[0] == 'P')
			sqlclass_add_name(w->r->prepares, &w->r->n_prepares, NULL, pgtree_str(pgtree_get(v, "name")), &w->err);
		else
			sqlclass_add_name(w->r->executes, &w->r->n_executes, NULL, pgtree_str(pgtree_get(v, "name")), &w->err);
	}
}

static bool walk_member(void *w, const char *key, struct pgtree *v)
{
	on_object(w, key, v);
	return true;
}

struct parse_job {
	const char *sql;
	bool scs;                       /* standard_conforming_strings for this parse */
	bool plpgsql;                   /* pg_query_parse_plpgsql instead */
	bool inline_run;                /* on the caller's stack: at most PARSE_INLINE_DEPTH */
	bool deeper;                    /* so not read: again on the big stack */
	struct sqlclass_parse *res;
	PgQueryPlpgsqlParseResult pl;
};

/*
 * libpg_query 15-4.0.0's pg_query_parse_plpgsql() keeps the stderr text that its
 * inner pg_query_raw_parse() strdup()s and frees it only on full success: every text
 * whose PL/pgSQL body does not compile (DO $$#x$$) or that has no function at all
 * leaks a malloc chunk (32 bytes), so a workload sending distinct such texts grows
 * the daemon without bound (found by tests/fuzz/fuzz_sqlclass). The link wraps that
 * inner call (-Wl,--wrap=pg_query_raw_parse, Makefile): the stderr text is freed at
 * once (the library is built with DEBUG, so it is always empty) and NULL is handed
 * on, which every caller frees as a no-op. pg_query_parse() calls the function
 * inside its own object file and is not wrapped. The struct is the library's
 * PgQueryInternalParsetreeAndError (pg_query_internal.h, not installed).
 */
struct sqlclass_raw_parse {
	void *tree;
	char *stderr_buffer;
	PgQueryError *error;
};

struct sqlclass_raw_parse __real_pg_query_raw_parse(const char *input, int parser_options);
struct sqlclass_raw_parse __wrap_pg_query_raw_parse(const char *input, int parser_options);

struct sqlclass_raw_parse __wrap_pg_query_raw_parse(const char *input, int parser_options)
{
	struct sqlclass_raw_parse r = __real_pg_query_raw_parse(input, parser_options);

	free(r.stderr_buffer);
	r.stderr_buffer = NULL;
	return r;
}

/* The tree is read from libpg_query's protobuf form (pgtree.h), here: unpacking it
 * recurses as the parser's output does, on the same stack. */
static void parse_run(struct parse_job *j)
{
	PgQueryProtobufParseResult pr;

	standard_conforming_strings = j->scs;
	if (j->plpgsql) {
		j->pl = pg_query_parse_plpgsql(j->sql);
		return;
	}
	pr = pg_query_parse_protobuf(j->sql);
	if (pr.error) {
		j->res->syntax = true;
		snprintf(j->res->message, sizeof(j->res->message), "%s", pr.error->message);
		j->res->cursorpos = pr.error->cursorpos;
	} else {
		size_t depth;

		if (j->inline_run && (pgtree_protobuf_depth(pr.parse_tree.data, pr.parse_tree.len, &depth) < 0 ||
				      depth > PARSE_INLINE_DEPTH))
			j->deeper = true;
		else
			j->res->tree_err = pgtree_doc_from_protobuf(pr.parse_tree.data, pr.parse_tree.len, j->sql,
								    &j->res->doc);
	}
	pg_query_free_protobuf_parse_result(pr);
}

static void *parse_thread(void *arg)
{
	parse_run(arg); /* the thread's memory context goes when it exits */
	return NULL;
}

/* The parser, its protobuf output and the unpacking recurse per nesting level: long
 * text gets a big stack. */
static int parse_job(struct parse_job *j)
{
	pthread_attr_t attr;
	pthread_t t;
	int r;

	if (strlen(j->sql) <= PARSE_INLINE_MAX) {
		j->inline_run = true;
		parse_run(j);
		standard_conforming_strings = true;
		if (!j->deeper)
			return 0;
		j->inline_run = false;
		memset(j->res, 0, sizeof(*j->res));
	}
	if ((r = pthread_attr_init(&attr)) != 0)
		return -r;
	r = pthread_attr_setstacksize(&attr, PARSE_STACK);
	if (r == 0)
		r = pthread_create(&t, &attr, parse_thread, j);
	pthread_attr_destroy(&attr);
	if (r != 0)
		return -r;
	pthread_join(t, NULL);
	return 0;
}

int sqlclass_parse_text(const char *sql, bool scs, struct sqlclass_parse *ret)
{
	struct parse_job j = { .sql = sql, .scs = scs, .res = ret };

	memset(ret, 0, sizeof(*ret));
	return parse_job(&j);
}

void sqlclass_parse_release(struct sqlclass_parse *p)
{
	pgtree_doc_free(p->doc);
	p->doc = NULL;
}

/* One reading of sql: with standard_conforming_strings = scs. *syntax is set when the
 * text does not parse in this reading (and only then). depth: see sqlguard_tree. */
static int classify_reading(const char *sql, bool scs, int depth, const char *const *dangerous,
			    struct sqlclass_result *ret, bool *syntax)
{
	struct walk w = { ret, dangerous, 0, 0 };
	struct sqlclass_parse pr;
	struct pgtree *root, *stmts, *st;
	size_t i;
	int r;

	memset(ret, 0, sizeof(*ret));
	*syntax = false;
	if ((r = sqlclass_parse_text(sql, scs, &pr)) < 0) {
		snprintf(ret->error, sizeof(ret->error), "cannot start the parser: %s", strerror(-r));
		return r;
	}
	if (pr.syntax) {
		snprintf(ret->error, sizeof(ret->error), "%s", pr.message);
		ret->error_pos = pr.cursorpos;
		*syntax = true;
		return -EINVAL;
	}
	if (pr.tree_err == -ENOMEM) {
		snprintf(ret->error, sizeof(ret->error), "out of memory");
		return -ENOMEM;
	}
	if (!pr.doc) {
		/* too deep, or not UTF-8: what json_loads refused on the JSON path */
		snprintf(ret->error, sizeof(ret->error), "the statement is nested too deeply to be checked");
		return -EINVAL;
	}
	root = pgtree_doc_root(pr.doc);
	stmts = pgtree_get(root, "stmts");
	ret->stmt_classes = calloc(pgtree_size(stmts) + 1, sizeof(*ret->stmt_classes));
	if (!ret->stmt_classes) {
		sqlclass_parse_release(&pr);
		return -ENOMEM;
	}
	pgtree_foreach(stmts, i, st) {
		struct pgtree *node = pgtree_get(st, "stmt");
		const char *type = pgtree_is_object(node) ? pgtree_type(node) : NULL;

		if (!type)
			continue;
		w.cls = stmt_class(type, pgtree_get(node, type));
		w.row_call = NULL;
		if (depth == 0 && !strcmp(type, "SelectStmt")) {
			/* a client's statement, which the session makes sure of before it
			 * runs; in server-side code it runs on a path nobody checks */
			struct pgtree *call;
			const char *row = sqlclass_settings_row(pgtree_get(node, type), &call);

			if (row) {
				w.row_call = call;
				w.row_name = row;
				snprintf(ret->settings_row, sizeof(ret->settings_row), "%s", row);
			}
		}
		on_object(&w, type, pgtree_get(node, type));
		sqlclass_visit(pgtree_get(node, type), walk_member, &w);
		{
			int err = sqlclass_out_statement(ret, node);

			if (!strcmp(type, "DoStmt") || !strcmp(type, "CallStmt") || !strcmp(type, "CreateFunctionStmt"))
				ret->runs_code = ret->any_table = 1;
			if (err)
				w.err = err;
		}
		if (!strcmp(type, "ExplainStmt") && !w.cls)
			w.cls = SQL_UTILITY;
		/* A statement after a COMMIT (or PREPARE TRANSACTION) of the same text runs
		 * in a new transaction, read-write if server-side code of an earlier one
		 * set default_transaction_read_only off: the server reports that only
		 * once the whole text has run */
		if (!strcmp(type, "TransactionStmt") && i + 1 < pgtree_size(stmts)) {
			const char *k = pgtree_str(pgtree_get(pgtree_get(node, type), "kind")) ?: "";

			if (!strcmp(k, "TRANS_STMT_COMMIT") || !strcmp(k, "TRANS_STMT_PREPARE"))
				ret->sets_read_write = 1;
		}
		ret->stmt_classes[ret->n_stmts++] = w.cls;
		ret->classes |= w.cls;
	}
	/* whatever the rule allows: pgtether.* and client_encoding (sqlguard.h) */
	if ((r = sqlguard_tree(root, sql, ret->stmt_classes, depth, ret->guard, sizeof(ret->guard))) < 0)
		w.err = r;
	sqlclass_parse_release(&pr);
	if (w.err == -E2BIG)
		snprintf(ret->error, sizeof(ret->error), "it names more than %d tables, functions or columns, more than can be checked",
			 SQLCLASS_MAX_NAMES);
	if (w.err)
		return w.err;
	if (ret->n_stmts == 0)
		ret->classes = 0; /* an empty query: nothing to decide */
	return 0;
}

/* Adds b's findings to a's: the union of two readings. */
static int merge_readings(struct sqlclass_result *a, struct sqlclass_result *b)
{
	int err = 0;

	a->classes |= b->classes;
	for (size_t i = 0; i < a->n_stmts && i < b->n_stmts; i++)
		a->stmt_classes[i] |= b->stmt_classes[i];
	for (size_t i = 0; i < b->n_tables; i++)
		sqlclass_add_name(a->tables, &a->n_tables, NULL, b->tables[i], &err);
	for (size_t i = 0; i < b->n_functions; i++)
		sqlclass_add_name(a->functions, &a->n_functions, NULL, b->functions[i], &err);
	for (size_t i = 0; i < b->n_out_columns; i++)
		sqlclass_add_name(a->out_columns, &a->n_out_columns, NULL, b->out_columns[i], &err);
	for (size_t i = 0; i < b->n_whole_rows; i++)
		sqlclass_add_name(a->whole_rows, &a->n_whole_rows, NULL, b->whole_rows[i], &err);
	for (size_t i = 0; i < b->n_carried; i++)
		sqlclass_add_name(a->carried, &a->n_carried, NULL, b->carried[i], &err);
	if (!a->carrier[0])
		memcpy(a->carrier, b->carrier, sizeof(a->carrier));
	a->calls_unknown |= b->calls_unknown;
	for (size_t i = 0; i < b->n_calls && !err; i++)
		sqlclass_add_call(a, b->calls[i].kind, b->calls[i].name, b->calls[i].column, &err);
	a->calls_overflow |= b->calls_overflow;
	a->runs_code |= b->runs_code;
	a->out_renamed |= b->out_renamed;
	a->sets_read_write |= b->sets_read_write;
	a->any_table |= b->any_table;
	if (!a->guard[0])
		memcpy(a->guard, b->guard, sizeof(a->guard));
	if (!a->settings_row[0])
		memcpy(a->settings_row, b->settings_row, sizeof(a->settings_row));
	if (err == -E2BIG)
		snprintf(a->error, sizeof(a->error), "it names more than %d tables, functions or columns, more than can be checked",
			 SQLCLASS_MAX_NAMES);
	return err;
}

/*
 * Both readings of a text with a backslash. The server reads '...' strings with its
 * standard_conforming_strings, which a pipelined statement or a function can change
 * before pgtether sees ParameterStatus: so a text is classified as the union of the
 * readings that parse (one that does not parse is not run by a server reading it
 * so). Text without a backslash reads the same either way and is parsed once.
 */
static int classify_text(const char *sql, int depth, const char *const *dangerous, struct sqlclass_result *ret)
{
	struct sqlclass_result off;
	bool syn_on, syn_off;
	int r_on, r_off;

	r_on = classify_reading(sql, true, depth, dangerous, ret, &syn_on);
	if (!strchr(sql, '\\') || r_on == -ENOMEM || (r_on < 0 && !syn_on))
		return r_on;
	r_off = classify_reading(sql, false, depth, dangerous, &off, &syn_off);
	if (r_off < 0 && syn_off) {
		sqlclass_release(&off);
		return r_on; /* only the standard reading parses (or neither) */
	}
	if (r_on < 0) {
		/* only standard_conforming_strings = off parses: that reading it is */
		sqlclass_release(ret);
		*ret = off;
		return r_off;
	}
	if (r_off < 0) {
		memcpy(ret->error, off.error, sizeof(ret->error));
		sqlclass_release(&off);
		return r_off;
	}
	r_on = merge_readings(ret, &off);
	sqlclass_release(&off);
	return r_on;
}

int sqlclass_classify(const char *sql, const char *const *dangerous, struct sqlclass_result *ret)
{
	char why[SQLCLASS_ERR_LEN];

	if (sqlguard_encoding(sql, strlen(sql), why, sizeof(why)) < 0) {
		memset(ret, 0, sizeof(*ret));
		snprintf(ret->error, sizeof(ret->error), "%s", why);
		return -EILSEQ;
	}
	return classify_text(sql, 0, dangerous, ret);
}

int sqlclass_guard_text(const char *sql, bool plpgsql_function, int depth, char *why, size_t cap)
{
	int r = -EINVAL;

	if (!plpgsql_function) {
		struct sqlclass_result res;

		r = classify_text(sql, depth, NULL, &res);
		if (res.guard[0]) {
			snprintf(why, cap, "%s", res.guard);
			r = 1;
		} else if (r == -EINVAL && !res.error_pos && res.error[0] && strstr(res.error, "nested too deeply")) {
			snprintf(why, cap, "pgtether: server-side code in it cannot be checked: %s", res.error);
			r = 1;
		} else if (r != -EINVAL && r != -ENOMEM) {
			r = 0; /* too many names does not matter here */
		}
		sqlclass_release(&res);
		return r;
	}
	for (int scs = 1; scs >= 0; scs--) {
		struct parse_job j = { .sql = sql, .scs = scs, .plpgsql = true };
		json_error_t jerr;
		json_t *funcs; /* pg_query_parse_plpgsql has no protobuf form (libpg_query 15) */
		int g;

		if (!scs && !strchr(sql, '\\'))
			break;
		if ((g = parse_job(&j)) < 0)
			return g;
		if (j.pl.error) {
			pg_query_free_plpgsql_parse_result(j.pl);
			continue;
		}
		funcs = json_loads(j.pl.plpgsql_funcs, 0, &jerr);
		pg_query_free_plpgsql_parse_result(j.pl);
		if (!funcs) {
			snprintf(why, cap, "pgtether: PL/pgSQL code in it is nested too deeply to be checked for pgtether.* settings");
			return 1;
		}
		g = sqlguard_plpgsql(funcs, depth, why, cap);
		json_decref(funcs);
		if (g != 0)
			return g;
		r = 0;
	}
	return r;
}

char *sqlclass_constant_select(const char *sql)
{
	char *out = NULL;

	for (int scs = 1; scs >= 0; scs--) {
		struct sqlclass_parse pr;
		struct pgtree *root, *sel, *tl, *val;
		const char *text;

		if (!scs && !strchr(sql, '\\'))
			break;
		if (sqlclass_parse_text(sql, scs, &pr) < 0)
			break;
		root = pgtree_doc_root(pr.doc);
		sel = pgtree_get(pgtree_get(pgtree_at(pgtree_get(root, "stmts"), 0), "stmt"), "SelectStmt");
		tl = pgtree_get(sel, "targetList");
		val = pgtree_get(pgtree_get(pgtree_at(tl, 0), "ResTarget"), "val");
		while (pgtree_get(val, "TypeCast"))
			val = pgtree_get(pgtree_get(val, "TypeCast"), "arg");
		text = pgtree_str(pgtree_get(pgtree_get(pgtree_get(val, "A_Const"), "sval"), "sval"));
		if (!root) {
			continue; /* this reading does not parse: the server reading so fails too */
		} else if (pgtree_size(pgtree_get(root, "stmts")) != 1 || pgtree_size(tl) != 1 || !text ||
			   pgtree_get(sel, "fromClause") || (out && strcmp(out, text))) {
			free(out);
			out = NULL;
			sqlclass_parse_release(&pr);
			return NULL; /* computed, or a different string in the other reading */
		} else if (!out && !(out = strdup(text))) {
			sqlclass_parse_release(&pr);
			return NULL;
		}
		sqlclass_parse_release(&pr);
	}
	return out;
}

void sqlclass_release(struct sqlclass_result *r)
{
	for (size_t i = 0; i < r->n_tables; i++)
		free(r->tables[i]);
	for (size_t i = 0; i < r->n_functions; i++)
		free(r->functions[i]);
	for (size_t i = 0; i < r->n_out_columns; i++)
		free(r->out_columns[i]);
	for (size_t i = 0; i < r->n_whole_rows; i++)
		free(r->whole_rows[i]);
	for (size_t i = 0; i < r->n_schemas; i++)
		free(r->schemas[i]);
	r->n_schemas = 0;
	for (size_t i = 0; i < r->n_prepares; i++)
		free(r->prepares[i]);
	for (size_t i = 0; i < r->n_executes; i++)
		free(r->executes[i]);
	r->n_prepares = r->n_executes = 0;
	for (size_t i = 0; i < r->n_carried; i++)
		free(r->carried[i]);
	r->n_out_columns = r->n_whole_rows = r->n_carried = 0;
	r->carrier[0] = r->settings_row[0] = '\0';
	r->runs_code = r->out_renamed = r->sets_read_write = r->any_table = r->calls_unknown = 0;
	free(r->calls);
	r->calls = NULL;
	r->n_calls = 0;
	r->calls_overflow = 0;
	free(r->stmt_classes);
	r->stmt_classes = NULL;
	r->n_tables = r->n_functions = r->n_stmts = 0;
}


static uint64_t fnv1a(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < n; i++) {
		h ^= (uint8_t)s[i];
		h *= 1099511628211ull;
	}
	return h;
}

int sqlclass_cached(struct sqlclass_cache *c, const char *sql, size_t len, const char *const *dangerous,
		    struct sqlclass_result *tmp, const struct sqlclass_result **ret)
{
	uint64_t h;
	struct sqlclass_cache_entry *e;
	int rc;

	if (len > SQLCLASS_CACHE_TEXT) {
		rc = sqlclass_classify(sql, dangerous, tmp);
		*ret = tmp;
		return rc;
	}
	h = fnv1a(sql, len);
	e = &c->slot[h % SQLCLASS_CACHE_SLOTS];
	if (e->text && e->hash == h && e->len == len && memcmp(e->text, sql, len) == 0) {
		c->hits++;
		*ret = &e->res;
		return e->rc;
	}
	c->misses++;
	free(e->text);
	e->text = NULL;
	sqlclass_release(&e->res);
	rc = sqlclass_classify(sql, dangerous, &e->res);
	if (rc != -ENOMEM && (e->text = malloc(len + 1))) {
		memcpy(e->text, sql, len + 1);
		e->hash = h;
		e->len = len;
		e->rc = rc;
	}
	*ret = &e->res;
	return rc;
}

void sqlclass_cache_clear(struct sqlclass_cache *c)
{
	for (size_t i = 0; i < SQLCLASS_CACHE_SLOTS; i++) {
		free(c->slot[i].text);
		c->slot[i].text = NULL;
		sqlclass_release(&c->slot[i].res);
	}
}

/* One reading's tree, or NULL. */
static struct pgtree_doc *parse_tree_reading(const char *sql, bool scs)
{
	struct sqlclass_parse pr;

	if (sqlclass_parse_text(sql, scs, &pr) < 0)
		return NULL;
	return pr.doc;
}

struct pgtree_doc *sqlclass_parse_tree(const char *sql)
{
	struct pgtree_doc *on = parse_tree_reading(sql, true), *off;

	if (!strchr(sql, '\\'))
		return on;
	/* a backslash: the server may read it either way (see sqlclass_classify); one
	 * tree serves only when the readings that parse agree */
	off = parse_tree_reading(sql, false);
	if (on && off && !pgtree_equal(pgtree_doc_root(on), pgtree_doc_root(off))) {
		pgtree_doc_free(on);
		pgtree_doc_free(off);
		return NULL;
	}
	if (!on)
		return off;
	pgtree_doc_free(off);
	return on;
}
