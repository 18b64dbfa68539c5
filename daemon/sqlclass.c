/*
 * Statement classification on libpg_query's parse tree (see sqlclass.h).
 */
#include "sqlclass.h"

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

/* Statements longer than this are parsed on a thread with PARSE_STACK bytes of stack. */
#define PARSE_INLINE_MAX 4096
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
static unsigned stmt_class(const char *type, json_t *node)
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
	json_t *v;

	for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++)
		if (strcmp(exact[i].type, type) == 0) {
			if (!strcmp(type, "SelectStmt") && json_object_get(node, "intoClause"))
				return SQL_WRITE | SQL_DDL; /* SELECT ... INTO creates and fills a table */
			return exact[i].cls;
		}
	if (!strcmp(type, "LockStmt")) {
		/* ACCESS SHARE (1, storage/lockdefs.h) is the lock every SELECT takes: it
		 * conflicts only with ACCESS EXCLUSIVE, as a reading transaction does;
		 * pg_dump takes it on every table it dumps. Stronger modes can stall
		 * writers and stay utility. */
		if (json_integer_value(json_object_get(node, "mode")) == 1)
			return SQL_READ;
		return SQL_UTILITY;
	}
	if (!strcmp(type, "CopyStmt")) {
		unsigned c = json_is_true(json_object_get(node, "is_from")) ? SQL_COPY_IN : SQL_COPY_OUT;

		v = json_object_get(node, "filename");
		if (json_is_true(json_object_get(node, "is_program")) || json_is_string(v))
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
	json_t *row_call;               /* set_config of a sqlclass_settings_row statement */
	const char *row_name;           /* the setting it sets */
};

static bool listed(const char *const *list, size_t n, const char *name)
{
	for (size_t i = 0; name && i < n; i++)
		if (!strcmp(list[i], name))
			return true;
	return false;
}

static void add_name(char **list, size_t *n, const char *schema, const char *name, int *err)
{
	char buf[256];

	snprintf(buf, sizeof(buf), "%s%s%s", schema ? schema : "", schema ? "." : "", name);
	if (listed((const char *const *)list, *n, buf))
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

static const char *sval(json_t *string_node)
{
	return json_string_value(json_object_get(json_object_get(string_node, "String"), "sval"));
}

/* Whether object o has no members but those listed (NULL-terminated). */
static bool only_keys(json_t *o, const char *const *keys)
{
	const char *k;
	json_t *v;

	if (!json_is_object(o))
		return false;
	json_object_foreach(o, k, v) {
		const char *const *p = keys;

		while (*p && strcmp(*p, k))
			p++;
		if (!*p)
			return false;
	}
	return true;
}

/* A ColumnRef of the one column "name", and a string constant's text. */
static bool column_is_name(json_t *node)
{
	json_t *f = json_object_get(json_object_get(node, "ColumnRef"), "fields");

	return json_array_size(f) == 1 && sval(json_array_get(f, 0)) && !strcmp(sval(json_array_get(f, 0)), "name");
}

static const char *string_const(json_t *node)
{
	json_t *c = json_object_get(node, "A_Const");

	return only_keys(c, (const char *const[]){ "sval", "location", NULL }) ?
	       json_string_value(json_object_get(json_object_get(c, "sval"), "sval")) : NULL;
}

const char *sqlclass_settings_row(json_t *select, json_t **ret_call)
{
	static const char *const select_keys[] = { "targetList", "fromClause", "whereClause", "limitOption", "op", NULL };
	json_t *tl = json_object_get(select, "targetList"), *from = json_object_get(select, "fromClause");
	json_t *where = json_object_get(json_object_get(select, "whereClause"), "A_Expr");
	json_t *res = json_object_get(json_array_get(tl, 0), "ResTarget");
	json_t *call = json_object_get(res, "val"), *fc = json_object_get(call, "FuncCall");
	json_t *fn = json_object_get(fc, "funcname"), *args = json_object_get(fc, "args");
	json_t *rel = json_object_get(json_array_get(from, 0), "RangeVar"), *op = json_object_get(where, "name");
	json_t *b = json_object_get(json_array_get(args, 2), "A_Const");
	size_t nfn = json_array_size(fn);
	const char *fname = nfn ? sval(json_array_get(fn, nfn - 1)) : NULL;
	const char *fschema = nfn == 2 ? sval(json_array_get(fn, 0)) : NULL;

	/* nothing else may take part: no alias, DISTINCT, GROUP BY, second column,
	 * join, schema for pg_settings (pg_catalog's is what the session makes sure
	 * of), operator schema, ... */
	if (!only_keys(select, select_keys) ||
	    strcmp(json_string_value(json_object_get(select, "limitOption")) ?: "", "LIMIT_OPTION_DEFAULT") ||
	    strcmp(json_string_value(json_object_get(select, "op")) ?: "", "SETOP_NONE") ||
	    json_array_size(tl) != 1 || !only_keys(res, (const char *const[]){ "val", "location", NULL }) ||
	    !only_keys(fc, (const char *const[]){ "funcname", "args", "funcformat", "location", NULL }) ||
	    !fname || strcmp(fname, "set_config") || (nfn == 2 && (!fschema || strcmp(fschema, "pg_catalog"))) || nfn > 2 ||
	    json_array_size(args) != 3 || !column_is_name(json_array_get(args, 0)) ||
	    !string_const(json_array_get(args, 1)) ||
	    !only_keys(b, (const char *const[]){ "boolval", "location", NULL }) ||
	    json_array_size(from) != 1 ||
	    !only_keys(rel, (const char *const[]){ "relname", "inh", "relpersistence", "location", NULL }) ||
	    strcmp(json_string_value(json_object_get(rel, "relname")) ?: "", "pg_settings") ||
	    !json_is_true(json_object_get(rel, "inh")) ||
	    !only_keys(where, (const char *const[]){ "kind", "name", "lexpr", "rexpr", "location", NULL }) ||
	    strcmp(json_string_value(json_object_get(where, "kind")) ?: "", "AEXPR_OP") ||
	    json_array_size(op) != 1 || strcmp(sval(json_array_get(op, 0)) ?: "", "=") ||
	    !column_is_name(json_object_get(where, "lexpr")))
		return NULL;
	*ret_call = fc;
	return string_const(json_object_get(where, "rexpr"));
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
static bool int_const(json_t *node, long *ret)
{
	json_t *c = json_object_get(node, "A_Const"), *iv = json_object_get(c, "ival");

	if (!json_is_object(iv))
		return false;
	*ret = (long)json_integer_value(json_object_get(iv, "ival"));
	return true;
}

static bool writes_data_call(const char *name, json_t *args)
{
	long mode;

	if (name && !strcmp(name, "lo_open")) /* writes unless its mode is a constant without INV_WRITE */
		return !(json_array_size(args) == 2 && int_const(json_array_get(args, 1), &mode) && !(mode & INV_WRITE));
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
static bool sets_read_write(const char *key, json_t *v, const char *func, json_t *args, const char *row_name)
{
	long on;

	if (!strcmp(key, "VariableSetStmt")) {
		const char *name = json_string_value(json_object_get(v, "name"));
		const char *kind = json_string_value(json_object_get(v, "kind")) ?: "";

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
	if (!strcmp(key, "DefElem") && !strcmp(json_string_value(json_object_get(v, "defname")) ?: "", "transaction_read_only"))
		return !(int_const(json_object_get(v, "arg"), &on) && on == 1);
	if (func && !strcmp(func, "set_config")) {
		json_t *c = json_object_get(json_array_get(args, 0), "A_Const");
		const char *name = json_string_value(json_object_get(json_object_get(c, "sval"), "sval"));

		if (row_name)
			name = row_name; /* sqlclass_settings_row: the row's, once made sure of */
		return !name || read_only_setting(name);
	}
	return false;
}

void sqlclass_visit(json_t *node, bool (*fn)(void *arg, const char *key, json_t *v), void *arg)
{
	const char *key;
	json_t *v;
	size_t i;

	if (json_is_object(node)) {
		json_object_foreach(node, key, v)
			if (fn(arg, key, v))
				sqlclass_visit(v, fn, arg);
	} else if (json_is_array(node)) {
		json_array_foreach(node, i, v)
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
static bool names_query_function(void *arg, const char *key, json_t *v)
{
	if (!strcmp(key, "String") && query_function(json_string_value(json_object_get(v, "sval"))))
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
static bool defines_callable(const char *key, json_t *v)
{
	const char *kind;

	if (!strcmp(key, "CreateExtensionStmt") || !strcmp(key, "AlterExtensionStmt") ||
	    !strcmp(key, "AlterExtensionContentsStmt"))
		return true;
	if (!strcmp(key, "DefineStmt")) {
		kind = json_string_value(json_object_get(v, "kind")) ?: "";
		return !strcmp(kind, "OBJECT_AGGREGATE") || !strcmp(kind, "OBJECT_OPERATOR");
	}
	if (!strcmp(key, "RenameStmt")) {
		kind = json_string_value(json_object_get(v, "renameType")) ?: "";
		return !strcmp(kind, "OBJECT_FUNCTION") || !strcmp(kind, "OBJECT_PROCEDURE") ||
		       !strcmp(kind, "OBJECT_ROUTINE") || !strcmp(kind, "OBJECT_AGGREGATE");
	}
	return false;
}

static void on_object(struct walk *w, const char *key, json_t *v)
{
	if (!strcmp(key, "InsertStmt") || !strcmp(key, "UpdateStmt") || !strcmp(key, "DeleteStmt") ||
	    !strcmp(key, "MergeStmt"))
		w->cls |= SQL_WRITE; /* DML anywhere: CTEs, rules, PREPARE, EXPLAIN */
	if ((!strcmp(key, "UpdateStmt") && json_object_get(v, "fromClause")) ||
	    (!strcmp(key, "DeleteStmt") && json_object_get(v, "usingClause")) || !strcmp(key, "MergeStmt"))
		w->cls |= SQL_READ; /* rows of other tables decide what is written */
	if (!strcmp(key, "GrantStmt") || !strcmp(key, "GrantRoleStmt"))
		w->cls |= SQL_GRANT; /* CREATE SCHEMA s GRANT ALL ON public.t TO public grants on any table */
	else if ((!strcmp(key, "SelectStmt") && json_object_get(v, "intoClause")) || !strcmp(key, "CreateTableAsStmt"))
		w->cls |= SQL_WRITE | SQL_DDL; /* EXPLAIN ANALYZE CREATE TABLE / MATERIALIZED VIEW ... AS creates it */
	else if (!strcmp(key, "SelectStmt") && !(json_object_get(v, "valuesLists") && !json_object_get(v, "targetList")))
		w->cls |= SQL_READ; /* a bare VALUES list (INSERT ... VALUES) reads nothing */
	else if (!strcmp(key, "FuncCall")) {
		json_t *fn = json_object_get(v, "funcname");
		size_t n = json_array_size(fn);
		const char *name = n ? sval(json_array_get(fn, n - 1)) : NULL;
		const char *schema = n > 1 ? sval(json_array_get(fn, n - 2)) : NULL;

		if (!name || (schema && strcmp(schema, "pg_catalog")) || !sqlclass_builtin(name))
			w->r->calls_unknown = 1; /* a function of the database's own */

		if (name && !strcmp(name, "set_config"))
			w->cls |= SQL_SESSION; /* what SET does (pg_dump's search_path); pgtether.*,
						* client_encoding and read-only are guarded apart */
		if (writes_data_call(name, json_object_get(v, "args")))
			w->cls |= SQL_WRITE; /* SELECT nextval('s'), lo_create(0) */
		if (sets_read_write(key, v, name, json_object_get(v, "args"), v == w->row_call ? w->row_name : NULL))
			w->r->sets_read_write = 1;
		/* query_to_xml('select email from users', ...), in any schema spelling */
		if (query_function(name) && (strcmp(name, "ts_rewrite") || json_array_size(json_object_get(v, "args")) != 3))
			runs_query(w);
		for (const char *const *d = w->dangerous; name && d && *d; d++)
			if (fnmatch(*d, name, 0) == 0) {
				w->cls |= SQL_DANGEROUS_FUNCTION;
				add_name(w->r->functions, &w->r->n_functions, schema, name, &w->err);
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
	if (!strcmp(key, "RenameStmt") && json_is_string(json_object_get(v, "subname")) &&
	    !strcmp(json_string_value(json_object_get(v, "renameType")) ?: "", "OBJECT_SCHEMA"))
		/* every relation in it changes its name without being named */
		add_name(w->r->schemas, &w->r->n_schemas, NULL, json_string_value(json_object_get(v, "subname")),
			 &w->err);
	if (!strcmp(key, "DropStmt")) {
		/* DROP TABLE/VIEW/...: the names are lists of strings, not RangeVars */
		const char *t = json_string_value(json_object_get(v, "removeType"));
		json_t *obj;
		size_t i;

		if (t && (!strcmp(t, "OBJECT_TABLE") || !strcmp(t, "OBJECT_VIEW") || !strcmp(t, "OBJECT_MATVIEW") ||
			  !strcmp(t, "OBJECT_FOREIGN_TABLE") || !strcmp(t, "OBJECT_SEQUENCE")))
			json_array_foreach(json_object_get(v, "objects"), i, obj) {
				json_t *items = json_object_get(json_object_get(obj, "List"), "items");
				size_t n = json_array_size(items);

				if (n >= 1 && sval(json_array_get(items, n - 1)))
					add_name(w->r->tables, &w->r->n_tables, n >= 2 ? sval(json_array_get(items, n - 2)) : NULL,
						 sval(json_array_get(items, n - 1)), &w->err);
			}
	}
	if (json_is_object(v) && json_is_string(json_object_get(v, "relname")))
		add_name(w->r->tables, &w->r->n_tables, json_string_value(json_object_get(v, "schemaname")),
			 json_string_value(json_object_get(v, "relname")), &w->err);
	/* the session's prepared statements: what runs at an EXECUTE is decided by what
	 * was prepared under its name (EXPLAIN ANALYZE and CREATE TABLE AS run one too) */
	if ((!strcmp(key, "PrepareStmt") || !strcmp(key, "ExecuteStmt")) && json_is_string(json_object_get(v, "name"))) {
		if (key[0] == 'P')
			add_name(w->r->prepares, &w->r->n_prepares, NULL, json_string_value(json_object_get(v, "name")), &w->err);
		else
			add_name(w->r->executes, &w->r->n_executes, NULL, json_string_value(json_object_get(v, "name")), &w->err);
	}
}

static bool walk_member(void *w, const char *key, json_t *v)
{
	on_object(w, key, v);
	return true;
}

/* ---- where column values leave without their identity ------------------------ */

struct outwalk {
	struct sqlclass_result *r;
	struct { const char *name; char qual[256]; } rels[SQLCLASS_MAX_NAMES];
	size_t n_rels;
	/* names the statement itself gives: subquery aliases and CTE names (derived
	 * relations), and the columns of subqueries, CTEs and alias lists */
	const char *derived_rels[SQLCLASS_MAX_NAMES], *derived_cols[SQLCLASS_MAX_NAMES];
	size_t n_derived_rels, n_derived_cols;
	int err;
};

static void note(struct outwalk *o, const char **list, size_t *n, const char *name)
{
	if (!name || listed(list, *n, name))
		return;
	if (*n == SQLCLASS_MAX_NAMES)
		o->err = -E2BIG;
	else
		list[(*n)++] = name;
}

/* The output names of the select lists below node (a subquery's or CTE's). */
static bool derived_col(void *arg, const char *key, json_t *v)
{
	struct outwalk *o = arg;

	if (!strcmp(key, "ResTarget"))
		note(o, o->derived_cols, &o->n_derived_cols, json_string_value(json_object_get(v, "name")));
	return true;
}

static void alias_cols(struct outwalk *o, json_t *colnames)
{
	json_t *c;
	size_t i;

	json_array_foreach(colnames, i, c)
		note(o, o->derived_cols, &o->n_derived_cols, sval(c));
}

/* sqlclass_visit(node, collect_derived, outwalk): every name the statement introduces. */
static bool collect_derived(void *arg, const char *key, json_t *v)
{
	struct outwalk *o = arg;
	json_t *alias = json_object_get(v, "alias");

	if (!strcmp(key, "RangeSubselect")) {
		note(o, o->derived_rels, &o->n_derived_rels,
		     json_string_value(json_object_get(json_object_get(alias, "Alias"), "aliasname")) ?:
		     json_string_value(json_object_get(alias, "aliasname")));
		alias_cols(o, json_object_get(alias, "colnames"));
		sqlclass_visit(json_object_get(v, "subquery"), derived_col, o);
	} else if (!strcmp(key, "CommonTableExpr")) {
		note(o, o->derived_rels, &o->n_derived_rels, json_string_value(json_object_get(v, "ctename")));
		alias_cols(o, json_object_get(v, "aliascolnames"));
		sqlclass_visit(json_object_get(v, "ctequery"), derived_col, o);
	} else if (!strcmp(key, "RangeVar") || !strcmp(key, "RangeFunction")) {
		alias_cols(o, json_object_get(alias, "colnames")); /* users u(a, b) */
	}
	return true;
}

/* Every relation of the statement by the name it goes by (alias, else its name):
 * sqlclass_visit(node, collect_rel, outwalk). */
static bool collect_rel(void *arg, const char *key, json_t *v)
{
	struct outwalk *o = arg;

	if (!strcmp(key, "RangeVar") && json_is_object(v) && o->n_rels == SQLCLASS_MAX_NAMES) {
		o->err = -E2BIG;
	} else if (!strcmp(key, "RangeVar") && json_is_object(v)) {
		const char *rel = json_string_value(json_object_get(v, "relname"));
		const char *schema = json_string_value(json_object_get(v, "schemaname"));
		const char *alias = json_string_value(json_object_get(json_object_get(v, "alias"), "aliasname"));

		if (rel) {
			o->rels[o->n_rels].name = alias ? alias : rel;
			snprintf(o->rels[o->n_rels].qual, sizeof(o->rels[0].qual), "%s%s%s", schema ? schema : "",
				 schema ? "." : "", rel);
			o->n_rels++;
		}
	}
	return true;
}

static const char *rel_named(const struct outwalk *o, const char *name)
{
	for (size_t i = 0; name && i < o->n_rels; i++)
		if (!strcmp(o->rels[i].name, name))
			return o->rels[i].qual;
	return NULL;
}

/* A ColumnRef: kept is true when its value leaves as a select-list column of its own. */
static void column_ref(struct outwalk *o, json_t *cref, bool kept)
{
	json_t *fields = json_object_get(cref, "fields");
	size_t n = json_array_size(fields);
	json_t *last = json_array_get(fields, n ? n - 1 : 0);
	const char *name, *rel;

	if (!n)
		return;
	if (json_object_get(last, "A_Star")) {
		/* SELECT * and u.* expand into columns that keep their identity */
		if (kept)
			return;
		name = n >= 2 ? sval(json_array_get(fields, n - 2)) : "*";
		rel = listed(o->derived_rels, o->n_derived_rels, name) ? "*" : rel_named(o, name);
		add_name(o->r->whole_rows, &o->r->n_whole_rows, NULL, rel ? rel : name ? name : "*", &o->err);
		return;
	}
	name = sval(last);
	if (!name)
		return;
	if (n == 1 && listed(o->derived_rels, o->n_derived_rels, name)) {
		/* a whole row of a subquery or CTE: of whatever it reads */
		add_name(o->r->whole_rows, &o->r->n_whole_rows, NULL, "*", &o->err);
		return;
	}
	if (n == 1 && (rel = rel_named(o, name))) {
		add_name(o->r->whole_rows, &o->r->n_whole_rows, NULL, rel, &o->err); /* u in row_to_json(u) */
		return;
	}
	if (kept)
		return;
	add_name(o->r->out_columns, &o->r->n_out_columns, NULL, name, &o->err);
	if (listed(o->derived_cols, o->n_derived_cols, name))
		o->r->out_renamed = 1; /* upper(x) of (SELECT email AS x ...) */
}

/* An expression whose value leaves: every column it names loses its identity. */
static bool expr_member(void *o, const char *key, json_t *v)
{
	if (strcmp(key, "ColumnRef"))
		return true;
	column_ref(o, v, false);
	return false;
}

static void expr_out(struct outwalk *o, json_t *node)
{
	sqlclass_visit(node, expr_member, o);
}

/* Casts anywhere: "invalid input syntax for type integer: <the value>". */
static bool cast_member(void *o, const char *key, json_t *v)
{
	if (!strcmp(key, "TypeCast"))
		expr_out(o, json_object_get(v, "arg"));
	return true;
}

/* A column reference in an argument of a carrier: its name, or "*" for what cannot be
 * traced by name (a whole row, a column the statement renames). */
static const char *traced_column(const struct outwalk *o, json_t *ref)
{
	json_t *fields = json_object_get(ref, "fields");
	size_t n = json_array_size(fields);
	const char *name = n ? sval(json_array_get(fields, n - 1)) : NULL;

	if (!name || (n == 1 && (listed(o->derived_rels, o->n_derived_rels, name) || rel_named(o, name))) ||
	    listed(o->derived_cols, o->n_derived_cols, name))
		return "*";
	return name;
}

static bool carried_member(void *arg, const char *key, json_t *v)
{
	struct outwalk *o = arg;

	if (strcmp(key, "ColumnRef"))
		return true;
	add_name(o->r->carried, &o->r->n_carried, NULL, traced_column(o, v), &o->err);
	return false;
}

/* Calls of carriers anywhere: pg_notify('ch', email) in a WHERE clause. A function
 * that is not built in is one too: its code may store, send or RAISE its argument. */
static bool carrier_member(void *arg, const char *key, json_t *v)
{
	struct outwalk *o = arg;
	json_t *fn = json_object_get(v, "funcname");
	size_t n = json_array_size(fn), before = o->r->n_carried;
	const char *name = n ? sval(json_array_get(fn, n - 1)) : NULL;
	const char *schema = n > 1 ? sval(json_array_get(fn, n - 2)) : NULL;
	bool carries = name && ((schema && strcmp(schema, "pg_catalog")) || !sqlclass_builtin(name));

	if (strcmp(key, "FuncCall") || !name)
		return true;
	for (const char *const *c = sqlclass_carriers; !carries && *c; c++)
		carries = fnmatch(*c, name, 0) == 0;
	if (carries) {
		sqlclass_visit(json_object_get(v, "args"), carried_member, o);
		if (o->r->n_carried > before && !o->r->carrier[0])
			snprintf(o->r->carrier, sizeof(o->r->carrier), "%s", name);
	}
	return true; /* a carrier's argument may call another */
}

/* ---- calls resolved along the search_path ------------------------------------ */

/* Adds (kind, name, column) to the statement's resolved calls, once. */
static void add_call(struct sqlclass_result *r, char kind, const char *name, const char *column, int *err)
{
	struct sqlclass_call *c;

	for (size_t i = 0; i < r->n_calls; i++)
		if (r->calls[i].kind == kind && !strcmp(r->calls[i].name, name) && !strcmp(r->calls[i].column, column))
			return;
	if (r->n_calls == SQLCLASS_MAX_CALLS) {
		r->calls_overflow = 1; /* a masked session whose database shadows a name denies it */
		return;
	}
	if (r->n_calls % 32 == 0) {
		struct sqlclass_call *more = realloc(r->calls, (r->n_calls + 32) * sizeof(*more));

		if (!more) {
			*err = -ENOMEM;
			return;
		}
		r->calls = more;
	}
	c = &r->calls[r->n_calls++];
	c->kind = kind;
	/* PostgreSQL truncates identifiers to NAMEDATALEN - 1 = 63 bytes as well */
	snprintf(c->name, sizeof(c->name), "%s", name);
	snprintf(c->column, sizeof(c->column), "%s", column);
}

struct callwalk {
	struct outwalk *o;
	char kind;
	const char *name;
};

/* A column reference in an argument of a resolved call (as carried_member names it). */
static bool call_arg_member(void *arg, const char *key, json_t *v)
{
	struct callwalk *cw = arg;
	struct outwalk *o = cw->o;

	if (strcmp(key, "ColumnRef"))
		return true;
	add_call(o->r, cw->kind, cw->name, traced_column(o, v), &o->err);
	return false;
}

/*
 * An operator call: name is the A_Expr's (or SubLink's, SortBy's) list of names. An
 * operator qualified with pg_catalog is PostgreSQL's; with another schema it is the
 * database's own, as a function of its own is (calls_unknown, its arguments carried);
 * unqualified, it is resolved along the search_path and listed. args: the nodes
 * whose columns are its operands.
 */
static void operator_call(struct outwalk *o, json_t *opname, const char *op, json_t *const *args, size_t n_args)
{
	size_t n = json_array_size(opname);
	const char *name = op ? op : n ? sval(json_array_get(opname, n - 1)) : NULL;
	const char *schema = !op && n > 1 ? sval(json_array_get(opname, n - 2)) : NULL;
	size_t before = o->r->n_carried;

	if (!name || (schema && !strcmp(schema, "pg_catalog")))
		return;
	if (schema || n > 2) {
		o->r->calls_unknown = 1;
		for (size_t i = 0; i < n_args; i++)
			sqlclass_visit(args[i], carried_member, o);
		if (o->r->n_carried > before && !o->r->carrier[0])
			snprintf(o->r->carrier, sizeof(o->r->carrier), "OPERATOR(%s.%s)", schema ? schema : "?", name);
		return;
	}
	add_call(o->r, 'o', name, "", &o->err);
	for (size_t i = 0; i < n_args; i++)
		sqlclass_visit(args[i], call_arg_member, &(struct callwalk){ o, 'o', name });
}

/* The columns a subquery's rows give an operator (x = ANY (SELECT email ...)). */
static json_t *sublink_rows(json_t *sub)
{
	json_t *sel = json_object_get(sub, "SelectStmt");
	const char *op = json_string_value(json_object_get(sel, "op"));

	/* a set operation's columns come from its arms: all of it */
	return op && strcmp(op, "SETOP_NONE") ? sub : json_object_get(sel, "targetList");
}

/* sqlclass_visit(): every call that PostgreSQL resolves along the search_path and
 * this classification takes for a built-in (sqlclass_result.calls). */
static bool resolved_member(void *arg, const char *key, json_t *v)
{
	struct outwalk *o = arg;

	if (!strcmp(key, "FuncCall")) {
		json_t *fn = json_object_get(v, "funcname");
		const char *name = json_array_size(fn) == 1 ? sval(json_array_get(fn, 0)) : NULL;

		/* a qualified name is looked up in its schema only; one not built in is
		 * calls_unknown already. WITHIN GROUP (ORDER BY x) passes x as an argument. */
		if (name && sqlclass_builtin(name)) {
			add_call(o->r, 'f', name, "", &o->err);
			sqlclass_visit(json_object_get(v, "args"), call_arg_member, &(struct callwalk){ o, 'f', name });
			sqlclass_visit(json_object_get(v, "agg_order"), call_arg_member,
				       &(struct callwalk){ o, 'f', name });
		}
	} else if (!strcmp(key, "A_Expr")) {
		const char *kind = json_string_value(json_object_get(v, "kind")) ?: "";
		json_t *args[2] = { json_object_get(v, "lexpr"), json_object_get(v, "rexpr") };

		if (strstr(kind, "BETWEEN")) {
			/* x BETWEEN a AND b is x >= a AND x <= b; NOT BETWEEN, x < a OR x > b */
			static const char *const ops[] = { "<", "<=", ">", ">=" };

			for (size_t i = 0; i < 4; i++)
				operator_call(o, NULL, ops[i], args, 2);
		} else {
			/* IN, LIKE, IS DISTINCT FROM, NULLIF, ANY/ALL (array) name their operator */
			operator_call(o, json_object_get(v, "name"), NULL, args, 2);
		}
	} else if (!strcmp(key, "SubLink")) {
		const char *type = json_string_value(json_object_get(v, "subLinkType")) ?: "";
		json_t *args[2] = { json_object_get(v, "testexpr"), sublink_rows(json_object_get(v, "subselect")) };

		if (json_object_get(v, "operName"))
			operator_call(o, json_object_get(v, "operName"), NULL, args, 2);
		else if (!strcmp(type, "ANY_SUBLINK"))
			operator_call(o, NULL, "=", args, 2); /* x IN (SELECT ...) */
	} else if (!strcmp(key, "CaseExpr") && json_object_get(v, "arg")) {
		/* CASE x WHEN a: x = a */
		json_t *args[2] = { json_object_get(v, "arg"), json_object_get(v, "args") };

		operator_call(o, NULL, "=", args, 2);
	} else if (!strcmp(key, "JoinExpr")) {
		json_t *args[1] = { json_object_get(v, "usingClause") };
		json_t *u;
		size_t i;

		/* JOIN ... USING (c) and NATURAL JOIN compare with an unqualified = */
		if (json_is_true(json_object_get(v, "isNatural"))) {
			add_call(o->r, 'o', "=", "*", &o->err);
		} else if (args[0]) {
			add_call(o->r, 'o', "=", "", &o->err);
			json_array_foreach(args[0], i, u)
				if (sval(u))
					add_call(o->r, 'o', "=", sval(u), &o->err);
		}
	} else if (!strcmp(key, "SortBy") && json_object_get(v, "useOp")) {
		json_t *args[1] = { json_object_get(v, "node") };

		operator_call(o, json_object_get(v, "useOp"), NULL, args, 1);
	}
	return true;
}

static void target_list_out(struct outwalk *o, json_t *list, bool kept)
{
	json_t *rt;
	size_t i;

	json_array_foreach(list, i, rt) {
		json_t *val = json_object_get(json_object_get(rt, "ResTarget"), "val");
		json_t *cref = json_object_get(val, "ColumnRef");

		if (cref)
			column_ref(o, cref, kept);
		else
			expr_out(o, val);
	}
}

static void stmt_out(struct outwalk *o, json_t *wrapped, bool kept);

static void with_out(struct outwalk *o, json_t *with, bool kept)
{
	json_t *cte, *w = json_object_get(with, "WithClause");
	size_t i;

	/* a SelectStmt's or a write's withClause is a WithClause unwrapped (libpg_query
	 * wraps only fields typed Node *) */
	json_array_foreach(json_object_get(w ? w : with, "ctes"), i, cte)
		stmt_out(o, json_object_get(json_object_get(cte, "CommonTableExpr"), "ctequery"), kept);
}

static void select_out(struct outwalk *o, json_t *sel, bool kept);

static void from_out(struct outwalk *o, json_t *item, bool kept)
{
	json_t *v;

	if ((v = json_object_get(item, "RangeSubselect")))
		select_out(o, json_object_get(json_object_get(v, "subquery"), "SelectStmt"), kept);
	else if ((v = json_object_get(item, "JoinExpr"))) {
		json_t *u;
		size_t i;

		/* a column merged by USING or NATURAL comes from either side, or is a
		 * COALESCE of both (FULL JOIN): it cannot keep one identity */
		json_array_foreach(json_object_get(v, "usingClause"), i, u)
			if (sval(u))
				add_name(o->r->out_columns, &o->r->n_out_columns, NULL, sval(u), &o->err);
		if (json_is_true(json_object_get(v, "isNatural")))
			add_name(o->r->whole_rows, &o->r->n_whole_rows, NULL, "*", &o->err);
		from_out(o, json_object_get(v, "larg"), kept);
		from_out(o, json_object_get(v, "rarg"), kept);
	} else if ((v = json_object_get(item, "RangeFunction")))
		expr_out(o, v);
}

/* A SELECT's list, FROM subqueries and CTEs keep column identity (kept); set
 * operations do not. */
static void select_out(struct outwalk *o, json_t *sel, bool kept)
{
	const char *op = json_string_value(json_object_get(sel, "op"));
	json_t *item;
	size_t i;

	if (!json_is_object(sel))
		return;
	with_out(o, json_object_get(sel, "withClause"), kept);
	if (op && strcmp(op, "SETOP_NONE")) {
		select_out(o, json_object_get(sel, "larg"), false);
		select_out(o, json_object_get(sel, "rarg"), false);
		return;
	}
	target_list_out(o, json_object_get(sel, "targetList"), kept);
	expr_out(o, json_object_get(sel, "valuesLists")); /* VALUES ((SELECT email ...)) */
	json_array_foreach(json_object_get(sel, "fromClause"), i, item)
		from_out(o, item, kept);
}

/* wrapped: { "SelectStmt": {...} } and the like. */
static void stmt_out(struct outwalk *o, json_t *wrapped, bool kept)
{
	const char *type = json_is_object(wrapped) ? json_object_iter_key(json_object_iter(wrapped)) : NULL;
	json_t *b = type ? json_object_get(wrapped, type) : NULL;

	if (!type)
		return;
	if (!strcmp(type, "SelectStmt")) {
		select_out(o, b, kept && !json_object_get(b, "intoClause"));
	} else if (!strcmp(type, "InsertStmt") || !strcmp(type, "UpdateStmt") || !strcmp(type, "DeleteStmt")) {
		/* what goes into a table leaves the mask's sight; RETURNING keeps identity */
		with_out(o, json_object_get(b, "withClause"), false);
		stmt_out(o, json_object_get(b, "selectStmt"), false);
		if (!strcmp(type, "UpdateStmt"))
			target_list_out(o, json_object_get(b, "targetList"), false);
		/* ON CONFLICT DO UPDATE SET note = (SELECT email ...) writes it too */
		target_list_out(o, json_object_get(json_object_get(b, "onConflictClause"), "targetList"), false);
		target_list_out(o, json_object_get(b, "returningList"), true);
	} else if (!strcmp(type, "MergeStmt") || !strcmp(type, "RuleStmt")) {
		expr_out(o, b);
	} else if (!strcmp(type, "CreateTableAsStmt") || !strcmp(type, "ViewStmt") || !strcmp(type, "CopyStmt")) {
		stmt_out(o, json_object_get(b, "query"), false);
	} else if (!strcmp(type, "DeclareCursorStmt") || !strcmp(type, "PrepareStmt")) {
		stmt_out(o, json_object_get(b, "query"), kept);
	} else if (!strcmp(type, "ExplainStmt")) {
		/* ANALYZE runs what it explains, and shows none of its rows: only what that
		 * writes leaves (EXPLAIN ANALYZE INSERT INTO t SELECT lower(email) ...) */
		json_t *q = json_object_get(b, "query"), *sel = json_object_get(q, "SelectStmt");

		if (sel && !json_object_get(sel, "intoClause")) /* SELECT ... INTO fills a table */
			with_out(o, json_object_get(sel, "withClause"), true);
		else
			stmt_out(o, q, kept);
	}
}

struct parse_job {
	const char *sql;
	bool scs;                       /* standard_conforming_strings for this parse */
	bool plpgsql;                   /* pg_query_parse_plpgsql instead */
	PgQueryParseResult res;
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

static void parse_run(struct parse_job *j)
{
	standard_conforming_strings = j->scs;
	if (j->plpgsql)
		j->pl = pg_query_parse_plpgsql(j->sql);
	else
		j->res = pg_query_parse(j->sql);
}

static void *parse_thread(void *arg)
{
	parse_run(arg); /* the thread's memory context goes when it exits */
	return NULL;
}

/* The parser and its JSON output recurse per nesting level: long text gets a big stack. */
static int parse_job(struct parse_job *j)
{
	pthread_attr_t attr;
	pthread_t t;
	int r;

	if (strlen(j->sql) <= PARSE_INLINE_MAX) {
		parse_run(j);
		standard_conforming_strings = true;
		return 0;
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

static int parse(const char *sql, bool scs, PgQueryParseResult *ret)
{
	struct parse_job j = { .sql = sql, .scs = scs };
	int r = parse_job(&j);

	*ret = j.res;
	return r;
}

/* One reading of sql: with standard_conforming_strings = scs. *syntax is set when the
 * text does not parse in this reading (and only then). depth: see sqlguard_tree. */
static int classify_reading(const char *sql, bool scs, int depth, const char *const *dangerous,
			    struct sqlclass_result *ret, bool *syntax)
{
	struct walk w = { ret, dangerous, 0, 0 };
	PgQueryParseResult pr;
	json_error_t jerr;
	json_t *root, *stmts, *st;
	size_t i;
	int r;

	memset(ret, 0, sizeof(*ret));
	*syntax = false;
	if ((r = parse(sql, scs, &pr)) < 0) {
		snprintf(ret->error, sizeof(ret->error), "cannot start the parser: %s", strerror(-r));
		return r;
	}
	if (pr.error) {
		snprintf(ret->error, sizeof(ret->error), "%s", pr.error->message);
		ret->error_pos = pr.error->cursorpos;
		pg_query_free_parse_result(pr);
		*syntax = true;
		return -EINVAL;
	}
	root = json_loads(pr.parse_tree, 0, &jerr);
	pg_query_free_parse_result(pr);
	if (!root) {
		snprintf(ret->error, sizeof(ret->error), "the statement is nested too deeply to be checked");
		return -EINVAL;
	}
	stmts = json_object_get(root, "stmts");
	ret->stmt_classes = calloc(json_array_size(stmts) + 1, sizeof(*ret->stmt_classes));
	if (!ret->stmt_classes) {
		json_decref(root);
		return -ENOMEM;
	}
	json_array_foreach(stmts, i, st) {
		json_t *node = json_object_get(st, "stmt");
		const char *type = json_is_object(node) ? json_object_iter_key(json_object_iter(node)) : NULL;

		if (!type)
			continue;
		w.cls = stmt_class(type, json_object_get(node, type));
		w.row_call = NULL;
		if (depth == 0 && !strcmp(type, "SelectStmt")) {
			/* a client's statement, which the session makes sure of before it
			 * runs; in server-side code it runs on a path nobody checks */
			json_t *call;
			const char *row = sqlclass_settings_row(json_object_get(node, type), &call);

			if (row) {
				w.row_call = call;
				w.row_name = row;
				snprintf(ret->settings_row, sizeof(ret->settings_row), "%s", row);
			}
		}
		on_object(&w, type, json_object_get(node, type));
		sqlclass_visit(json_object_get(node, type), walk_member, &w);
		{
			struct outwalk o = { .r = ret };

			sqlclass_visit(node, collect_rel, &o);
			sqlclass_visit(node, collect_derived, &o);
			stmt_out(&o, node, true);
			sqlclass_visit(node, cast_member, &o);
			sqlclass_visit(node, carrier_member, &o);
			sqlclass_visit(node, resolved_member, &o);
			if (!strcmp(type, "DoStmt") || !strcmp(type, "CallStmt") || !strcmp(type, "CreateFunctionStmt"))
				ret->runs_code = ret->any_table = 1;
			if (o.err)
				w.err = o.err;
		}
		if (!strcmp(type, "ExplainStmt") && !w.cls)
			w.cls = SQL_UTILITY;
		/* A statement after a COMMIT (or PREPARE TRANSACTION) of the same text runs
		 * in a new transaction, read-write if server-side code of an earlier one
		 * set default_transaction_read_only off: the server reports that only
		 * once the whole text has run */
		if (!strcmp(type, "TransactionStmt") && i + 1 < json_array_size(stmts)) {
			const char *k = json_string_value(json_object_get(json_object_get(node, type), "kind")) ?: "";

			if (!strcmp(k, "TRANS_STMT_COMMIT") || !strcmp(k, "TRANS_STMT_PREPARE"))
				ret->sets_read_write = 1;
		}
		ret->stmt_classes[ret->n_stmts++] = w.cls;
		ret->classes |= w.cls;
	}
	/* whatever the rule allows: pgtether.* and client_encoding (sqlguard.h) */
	if ((r = sqlguard_tree(root, sql, ret->stmt_classes, depth, ret->guard, sizeof(ret->guard))) < 0)
		w.err = r;
	json_decref(root);
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
		add_name(a->tables, &a->n_tables, NULL, b->tables[i], &err);
	for (size_t i = 0; i < b->n_functions; i++)
		add_name(a->functions, &a->n_functions, NULL, b->functions[i], &err);
	for (size_t i = 0; i < b->n_out_columns; i++)
		add_name(a->out_columns, &a->n_out_columns, NULL, b->out_columns[i], &err);
	for (size_t i = 0; i < b->n_whole_rows; i++)
		add_name(a->whole_rows, &a->n_whole_rows, NULL, b->whole_rows[i], &err);
	for (size_t i = 0; i < b->n_carried; i++)
		add_name(a->carried, &a->n_carried, NULL, b->carried[i], &err);
	if (!a->carrier[0])
		memcpy(a->carrier, b->carrier, sizeof(a->carrier));
	a->calls_unknown |= b->calls_unknown;
	for (size_t i = 0; i < b->n_calls && !err; i++)
		add_call(a, b->calls[i].kind, b->calls[i].name, b->calls[i].column, &err);
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
		json_t *funcs;
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
		PgQueryParseResult pr;
		json_error_t jerr;
		json_t *root, *sel, *tl, *val;
		const char *text;

		if (!scs && !strchr(sql, '\\'))
			break;
		if (parse(sql, scs, &pr) < 0)
			break;
		root = pr.error ? NULL : json_loads(pr.parse_tree, 0, &jerr);
		pg_query_free_parse_result(pr);
		sel = json_object_get(json_object_get(json_array_get(json_object_get(root, "stmts"), 0), "stmt"), "SelectStmt");
		tl = json_object_get(sel, "targetList");
		val = json_object_get(json_object_get(json_array_get(tl, 0), "ResTarget"), "val");
		while (json_object_get(val, "TypeCast"))
			val = json_object_get(json_object_get(val, "TypeCast"), "arg");
		text = json_string_value(json_object_get(json_object_get(json_object_get(val, "A_Const"), "sval"), "sval"));
		if (!root) {
			continue; /* this reading does not parse: the server reading so fails too */
		} else if (json_array_size(json_object_get(root, "stmts")) != 1 || json_array_size(tl) != 1 || !text ||
			   json_object_get(sel, "fromClause") || (out && strcmp(out, text))) {
			free(out);
			out = NULL;
			json_decref(root);
			return NULL; /* computed, or a different string in the other reading */
		} else if (!out && !(out = strdup(text))) {
			json_decref(root);
			return NULL;
		}
		json_decref(root);
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

struct view_walk {
	struct outwalk *o;
	struct sqlclass_view_col *c;
};

static bool view_ref(void *arg, const char *key, json_t *v)
{
	struct view_walk *vw = arg;
	json_t *fields = json_object_get(v, "fields");
	size_t n = json_array_size(fields);
	const char *name = n ? sval(json_array_get(fields, n - 1)) : NULL;

	if (strcmp(key, "ColumnRef"))
		return true;
	if (!name || (n == 1 && rel_named(vw->o, name)) || vw->c->n_refs == SQLCLASS_VIEW_REFS)
		vw->c->whole = 1;
	else if (!(vw->c->refs[vw->c->n_refs] = strdup(name)))
		vw->o->err = -ENOMEM;
	else
		vw->c->n_refs++;
	return false;
}

int sqlclass_view_columns(const char *def, struct sqlclass_view *ret)
{
	struct sqlclass_result scratch = { 0 };
	struct outwalk o = { .r = &scratch };
	PgQueryParseResult pr;
	json_error_t jerr;
	json_t *root, *sel, *rt, *item;
	const char *op;
	size_t i;
	int r;

	memset(ret, 0, sizeof(*ret));
	if ((r = parse(def, true, &pr)) < 0)
		return r;
	if (pr.error) {
		pg_query_free_parse_result(pr);
		return -EINVAL;
	}
	root = json_loads(pr.parse_tree, 0, &jerr);
	pg_query_free_parse_result(pr);
	sel = json_object_get(json_object_get(json_array_get(json_object_get(root, "stmts"), 0), "stmt"), "SelectStmt");
	if (!sel) {
		json_decref(root);
		return -EINVAL;
	}
	sqlclass_visit(sel, collect_rel, &o);
	op = json_string_value(json_object_get(sel, "op"));
	ret->complex = (op && strcmp(op, "SETOP_NONE")) || json_object_get(sel, "withClause");
	json_array_foreach(json_object_get(sel, "fromClause"), i, item)
		if (!json_object_get(item, "RangeVar") && !json_object_get(item, "JoinExpr"))
			ret->complex = 1;
	if (ret->complex) {
		json_decref(root);
		return 0;
	}
	ret->cols = calloc(json_array_size(json_object_get(sel, "targetList")) + 1, sizeof(*ret->cols));
	if (!ret->cols) {
		json_decref(root);
		return -ENOMEM;
	}
	json_array_foreach(json_object_get(sel, "targetList"), i, rt) {
		struct sqlclass_view_col *c = &ret->cols[ret->n++];
		json_t *val = json_object_get(json_object_get(rt, "ResTarget"), "val");
		json_t *fields = json_object_get(json_object_get(val, "ColumnRef"), "fields");
		size_t n = json_array_size(fields);
		const char *name = n ? sval(json_array_get(fields, n - 1)) : NULL;

		if (name && !(n == 1 && rel_named(&o, name))) {
			if (!(c->direct = strdup(name)))
				o.err = -ENOMEM;
		} else {
			sqlclass_visit(val, view_ref, &(struct view_walk){ &o, c });
		}
	}
	json_decref(root);
	return o.err;
}

void sqlclass_view_release(struct sqlclass_view *v)
{
	for (size_t i = 0; i < v->n; i++) {
		free(v->cols[i].direct);
		for (size_t k = 0; k < v->cols[i].n_refs; k++)
			free(v->cols[i].refs[k]);
	}
	free(v->cols);
	memset(v, 0, sizeof(*v));
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
static json_t *parse_tree_reading(const char *sql, bool scs)
{
	PgQueryParseResult pr;
	json_error_t jerr;
	json_t *root;

	if (parse(sql, scs, &pr) < 0)
		return NULL;
	root = pr.error ? NULL : json_loads(pr.parse_tree, 0, &jerr);
	pg_query_free_parse_result(pr);
	return root;
}

void *sqlclass_parse_tree(const char *sql)
{
	json_t *on = parse_tree_reading(sql, true), *off;

	if (!strchr(sql, '\\'))
		return on;
	/* a backslash: the server may read it either way (see sqlclass_classify); one
	 * tree serves only when the readings that parse agree */
	off = parse_tree_reading(sql, false);
	if (on && off && !json_equal(on, off)) {
		json_decref(on);
		json_decref(off);
		return NULL;
	}
	if (!on)
		return off;
	json_decref(off);
	return on;
}
