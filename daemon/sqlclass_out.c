/*
 * Where column values leave a statement without their identity (sqlclass.h:
 * "carriers", derived and computed columns, what goes into a table), the calls
 * resolved along the search_path, and the columns of a view's definition: the
 * parts of the classification masks rely on. Moved out of sqlclass.c (issue 13: no
 * file over ~1200 lines); the walk over libpg_query's tree (pgtree.h) is shared through
 * sqlclass_int.h.
 */
#include "sqlclass_int.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	if (!name || sqlclass_listed(list, *n, name))
		return;
	if (*n == SQLCLASS_MAX_NAMES)
		o->err = -E2BIG;
	else
		list[(*n)++] = name;
}

/* The output names of the select lists below node (a subquery's or CTE's). */
static bool derived_col(void *arg, const char *key, struct pgtree *v)
{
	struct outwalk *o = arg;

	if (!strcmp(key, "ResTarget"))
		note(o, o->derived_cols, &o->n_derived_cols, pgtree_str(pgtree_get(v, "name")));
	return true;
}

static void alias_cols(struct outwalk *o, struct pgtree *colnames)
{
	struct pgtree *c;
	size_t i;

	pgtree_foreach(colnames, i, c)
		note(o, o->derived_cols, &o->n_derived_cols, sqlclass_sval(c));
}

/* sqlclass_visit(node, collect_derived, outwalk): every name the statement introduces. */
static bool collect_derived(void *arg, const char *key, struct pgtree *v)
{
	struct outwalk *o = arg;
	struct pgtree *alias = pgtree_get(v, "alias");

	if (!strcmp(key, "RangeSubselect")) {
		note(o, o->derived_rels, &o->n_derived_rels,
		     pgtree_str(pgtree_get(pgtree_get(alias, "Alias"), "aliasname")) ?:
		     pgtree_str(pgtree_get(alias, "aliasname")));
		alias_cols(o, pgtree_get(alias, "colnames"));
		sqlclass_visit(pgtree_get(v, "subquery"), derived_col, o);
	} else if (!strcmp(key, "CommonTableExpr")) {
		note(o, o->derived_rels, &o->n_derived_rels, pgtree_str(pgtree_get(v, "ctename")));
		alias_cols(o, pgtree_get(v, "aliascolnames"));
		sqlclass_visit(pgtree_get(v, "ctequery"), derived_col, o);
	} else if (!strcmp(key, "RangeVar") || !strcmp(key, "RangeFunction")) {
		alias_cols(o, pgtree_get(alias, "colnames")); /* users u(a, b) */
	}
	return true;
}

/* Every relation of the statement by the name it goes by (alias, else its name):
 * sqlclass_visit(node, collect_rel, outwalk). */
static bool collect_rel(void *arg, const char *key, struct pgtree *v)
{
	struct outwalk *o = arg;

	if (!strcmp(key, "RangeVar") && pgtree_is_object(v) && o->n_rels == SQLCLASS_MAX_NAMES) {
		o->err = -E2BIG;
	} else if (!strcmp(key, "RangeVar") && pgtree_is_object(v)) {
		const char *rel = pgtree_str(pgtree_get(v, "relname"));
		const char *schema = pgtree_str(pgtree_get(v, "schemaname"));
		const char *alias = pgtree_str(pgtree_get(pgtree_get(v, "alias"), "aliasname"));

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
static void column_ref(struct outwalk *o, struct pgtree *cref, bool kept)
{
	struct pgtree *fields = pgtree_get(cref, "fields");
	size_t n = pgtree_size(fields);
	struct pgtree *last = pgtree_at(fields, n ? n - 1 : 0);
	const char *name, *rel;

	if (!n)
		return;
	if (pgtree_get(last, "A_Star")) {
		/* SELECT * and u.* expand into columns that keep their identity */
		if (kept)
			return;
		name = n >= 2 ? sqlclass_sval(pgtree_at(fields, n - 2)) : "*";
		rel = sqlclass_listed(o->derived_rels, o->n_derived_rels, name) ? "*" : rel_named(o, name);
		sqlclass_add_name(o->r->whole_rows, &o->r->n_whole_rows, NULL, rel ? rel : name ? name : "*", &o->err);
		return;
	}
	name = sqlclass_sval(last);
	if (!name)
		return;
	if (n == 1 && sqlclass_listed(o->derived_rels, o->n_derived_rels, name)) {
		/* a whole row of a subquery or CTE: of whatever it reads */
		sqlclass_add_name(o->r->whole_rows, &o->r->n_whole_rows, NULL, "*", &o->err);
		return;
	}
	if (n == 1 && (rel = rel_named(o, name))) {
		sqlclass_add_name(o->r->whole_rows, &o->r->n_whole_rows, NULL, rel, &o->err); /* u in row_to_json(u) */
		return;
	}
	if (kept)
		return;
	sqlclass_add_name(o->r->out_columns, &o->r->n_out_columns, NULL, name, &o->err);
	if (sqlclass_listed(o->derived_cols, o->n_derived_cols, name))
		o->r->out_renamed = 1; /* upper(x) of (SELECT email AS x ...) */
}

/* An expression whose value leaves: every column it names loses its identity. */
static bool expr_member(void *o, const char *key, struct pgtree *v)
{
	if (strcmp(key, "ColumnRef"))
		return true;
	column_ref(o, v, false);
	return false;
}

static void expr_out(struct outwalk *o, struct pgtree *node)
{
	sqlclass_visit(node, expr_member, o);
}

/* Casts anywhere: "invalid input syntax for type integer: <the value>". */
static bool cast_member(void *o, const char *key, struct pgtree *v)
{
	if (!strcmp(key, "TypeCast"))
		expr_out(o, pgtree_get(v, "arg"));
	return true;
}

/* A column reference in an argument of a carrier: its name, or "*" for what cannot be
 * traced by name (a whole row, a column the statement renames). */
static const char *traced_column(const struct outwalk *o, struct pgtree *ref)
{
	struct pgtree *fields = pgtree_get(ref, "fields");
	size_t n = pgtree_size(fields);
	const char *name = n ? sqlclass_sval(pgtree_at(fields, n - 1)) : NULL;

	if (!name || (n == 1 && (sqlclass_listed(o->derived_rels, o->n_derived_rels, name) || rel_named(o, name))) ||
	    sqlclass_listed(o->derived_cols, o->n_derived_cols, name))
		return "*";
	return name;
}

static bool carried_member(void *arg, const char *key, struct pgtree *v)
{
	struct outwalk *o = arg;

	if (strcmp(key, "ColumnRef"))
		return true;
	sqlclass_add_name(o->r->carried, &o->r->n_carried, NULL, traced_column(o, v), &o->err);
	return false;
}

/* Calls of carriers anywhere: pg_notify('ch', email) in a WHERE clause. A function
 * that is not built in is one too: its code may store, send or RAISE its argument. */
static bool carrier_member(void *arg, const char *key, struct pgtree *v)
{
	struct outwalk *o = arg;
	struct pgtree *fn = pgtree_get(v, "funcname");
	size_t n = pgtree_size(fn), before = o->r->n_carried;
	const char *name = n ? sqlclass_sval(pgtree_at(fn, n - 1)) : NULL;
	const char *schema = n > 1 ? sqlclass_sval(pgtree_at(fn, n - 2)) : NULL;
	bool carries = name && ((schema && strcmp(schema, "pg_catalog")) || !sqlclass_builtin(name));

	if (strcmp(key, "FuncCall") || !name)
		return true;
	for (const char *const *c = sqlclass_carriers; !carries && *c; c++)
		carries = fnmatch(*c, name, 0) == 0;
	if (carries) {
		sqlclass_visit(pgtree_get(v, "args"), carried_member, o);
		if (o->r->n_carried > before && !o->r->carrier[0])
			snprintf(o->r->carrier, sizeof(o->r->carrier), "%s", name);
	}
	return true; /* a carrier's argument may call another */
}

/* ---- calls resolved along the search_path ------------------------------------ */

/* Adds (kind, name, column) to the statement's resolved calls, once. */
void sqlclass_add_call(struct sqlclass_result *r, char kind, const char *name, const char *column, int *err)
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
static bool call_arg_member(void *arg, const char *key, struct pgtree *v)
{
	struct callwalk *cw = arg;
	struct outwalk *o = cw->o;

	if (strcmp(key, "ColumnRef"))
		return true;
	sqlclass_add_call(o->r, cw->kind, cw->name, traced_column(o, v), &o->err);
	return false;
}

/*
 * An operator call: name is the A_Expr's (or SubLink's, SortBy's) list of names. An
 * operator qualified with pg_catalog is PostgreSQL's; with another schema it is the
 * database's own, as a function of its own is (calls_unknown, its arguments carried);
 * unqualified, it is resolved along the search_path and listed. args: the nodes
 * whose columns are its operands.
 */
static void operator_call(struct outwalk *o, struct pgtree *opname, const char *op, struct pgtree *const *args, size_t n_args)
{
	size_t n = pgtree_size(opname);
	const char *name = op ? op : n ? sqlclass_sval(pgtree_at(opname, n - 1)) : NULL;
	const char *schema = !op && n > 1 ? sqlclass_sval(pgtree_at(opname, n - 2)) : NULL;
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
	sqlclass_add_call(o->r, 'o', name, "", &o->err);
	for (size_t i = 0; i < n_args; i++)
		sqlclass_visit(args[i], call_arg_member, &(struct callwalk){ o, 'o', name });
}

/* The columns a subquery's rows give an operator (x = ANY (SELECT email ...)). */
static struct pgtree *sublink_rows(struct pgtree *sub)
{
	struct pgtree *sel = pgtree_get(sub, "SelectStmt");
	const char *op = pgtree_str(pgtree_get(sel, "op"));

	/* a set operation's columns come from its arms: all of it */
	return op && strcmp(op, "SETOP_NONE") ? sub : pgtree_get(sel, "targetList");
}

/* sqlclass_visit(): every call that PostgreSQL resolves along the search_path and
 * this classification takes for a built-in (sqlclass_result.calls). */
static bool resolved_member(void *arg, const char *key, struct pgtree *v)
{
	struct outwalk *o = arg;

	if (!strcmp(key, "FuncCall")) {
		struct pgtree *fn = pgtree_get(v, "funcname");
		const char *name = pgtree_size(fn) == 1 ? sqlclass_sval(pgtree_at(fn, 0)) : NULL;

		/* a qualified name is looked up in its schema only; one not built in is
		 * calls_unknown already. WITHIN GROUP (ORDER BY x) passes x as an argument. */
		if (name && sqlclass_builtin(name)) {
			sqlclass_add_call(o->r, 'f', name, "", &o->err);
			sqlclass_visit(pgtree_get(v, "args"), call_arg_member, &(struct callwalk){ o, 'f', name });
			sqlclass_visit(pgtree_get(v, "agg_order"), call_arg_member,
				       &(struct callwalk){ o, 'f', name });
		}
	} else if (!strcmp(key, "A_Expr")) {
		const char *kind = pgtree_str(pgtree_get(v, "kind")) ?: "";
		struct pgtree *args[2] = { pgtree_get(v, "lexpr"), pgtree_get(v, "rexpr") };

		if (strstr(kind, "BETWEEN")) {
			/* x BETWEEN a AND b is x >= a AND x <= b; NOT BETWEEN, x < a OR x > b */
			static const char *const ops[] = { "<", "<=", ">", ">=" };

			for (size_t i = 0; i < 4; i++)
				operator_call(o, NULL, ops[i], args, 2);
		} else {
			/* IN, LIKE, IS DISTINCT FROM, NULLIF, ANY/ALL (array) name their operator */
			operator_call(o, pgtree_get(v, "name"), NULL, args, 2);
		}
	} else if (!strcmp(key, "SubLink")) {
		const char *type = pgtree_str(pgtree_get(v, "subLinkType")) ?: "";
		struct pgtree *args[2] = { pgtree_get(v, "testexpr"), sublink_rows(pgtree_get(v, "subselect")) };

		if (pgtree_get(v, "operName"))
			operator_call(o, pgtree_get(v, "operName"), NULL, args, 2);
		else if (!strcmp(type, "ANY_SUBLINK"))
			operator_call(o, NULL, "=", args, 2); /* x IN (SELECT ...) */
	} else if (!strcmp(key, "CaseExpr") && pgtree_get(v, "arg")) {
		/* CASE x WHEN a: x = a */
		struct pgtree *args[2] = { pgtree_get(v, "arg"), pgtree_get(v, "args") };

		operator_call(o, NULL, "=", args, 2);
	} else if (!strcmp(key, "JoinExpr")) {
		struct pgtree *args[1] = { pgtree_get(v, "usingClause") };
		struct pgtree *u;
		size_t i;

		/* JOIN ... USING (c) and NATURAL JOIN compare with an unqualified = */
		if (pgtree_is_true(pgtree_get(v, "isNatural"))) {
			sqlclass_add_call(o->r, 'o', "=", "*", &o->err);
		} else if (args[0]) {
			sqlclass_add_call(o->r, 'o', "=", "", &o->err);
			pgtree_foreach(args[0], i, u)
				if (sqlclass_sval(u))
					sqlclass_add_call(o->r, 'o', "=", sqlclass_sval(u), &o->err);
		}
	} else if (!strcmp(key, "SortBy") && pgtree_get(v, "useOp")) {
		struct pgtree *args[1] = { pgtree_get(v, "node") };

		operator_call(o, pgtree_get(v, "useOp"), NULL, args, 1);
	}
	return true;
}

static void target_list_out(struct outwalk *o, struct pgtree *list, bool kept)
{
	struct pgtree *rt;
	size_t i;

	pgtree_foreach(list, i, rt) {
		struct pgtree *val = pgtree_get(pgtree_get(rt, "ResTarget"), "val");
		struct pgtree *cref = pgtree_get(val, "ColumnRef");

		if (cref)
			column_ref(o, cref, kept);
		else
			expr_out(o, val);
	}
}

static void stmt_out(struct outwalk *o, struct pgtree *wrapped, bool kept);

static void with_out(struct outwalk *o, struct pgtree *with, bool kept)
{
	struct pgtree *cte, *w = pgtree_get(with, "WithClause");
	size_t i;

	/* a SelectStmt's or a write's withClause is a WithClause unwrapped (libpg_query
	 * wraps only fields typed Node *) */
	pgtree_foreach(pgtree_get(w ? w : with, "ctes"), i, cte)
		stmt_out(o, pgtree_get(pgtree_get(cte, "CommonTableExpr"), "ctequery"), kept);
}

static void select_out(struct outwalk *o, struct pgtree *sel, bool kept);

static void from_out(struct outwalk *o, struct pgtree *item, bool kept)
{
	struct pgtree *v;

	if ((v = pgtree_get(item, "RangeSubselect")))
		select_out(o, pgtree_get(pgtree_get(v, "subquery"), "SelectStmt"), kept);
	else if ((v = pgtree_get(item, "JoinExpr"))) {
		struct pgtree *u;
		size_t i;

		/* a column merged by USING or NATURAL comes from either side, or is a
		 * COALESCE of both (FULL JOIN): it cannot keep one identity */
		pgtree_foreach(pgtree_get(v, "usingClause"), i, u)
			if (sqlclass_sval(u))
				sqlclass_add_name(o->r->out_columns, &o->r->n_out_columns, NULL, sqlclass_sval(u), &o->err);
		if (pgtree_is_true(pgtree_get(v, "isNatural")))
			sqlclass_add_name(o->r->whole_rows, &o->r->n_whole_rows, NULL, "*", &o->err);
		from_out(o, pgtree_get(v, "larg"), kept);
		from_out(o, pgtree_get(v, "rarg"), kept);
	} else if ((v = pgtree_get(item, "RangeFunction")))
		expr_out(o, v);
}

/* A SELECT's list, FROM subqueries and CTEs keep column identity (kept); set
 * operations do not. */
static void select_out(struct outwalk *o, struct pgtree *sel, bool kept)
{
	const char *op = pgtree_str(pgtree_get(sel, "op"));
	struct pgtree *item;
	size_t i;

	if (!pgtree_is_object(sel))
		return;
	with_out(o, pgtree_get(sel, "withClause"), kept);
	if (op && strcmp(op, "SETOP_NONE")) {
		select_out(o, pgtree_get(sel, "larg"), false);
		select_out(o, pgtree_get(sel, "rarg"), false);
		return;
	}
	target_list_out(o, pgtree_get(sel, "targetList"), kept);
	expr_out(o, pgtree_get(sel, "valuesLists")); /* VALUES ((SELECT email ...)) */
	pgtree_foreach(pgtree_get(sel, "fromClause"), i, item)
		from_out(o, item, kept);
}

/* wrapped: { "SelectStmt": {...} } and the like. */
static void stmt_out(struct outwalk *o, struct pgtree *wrapped, bool kept)
{
	const char *type = pgtree_is_object(wrapped) ? pgtree_type(wrapped) : NULL;
	struct pgtree *b = type ? pgtree_get(wrapped, type) : NULL;

	if (!type)
		return;
	if (!strcmp(type, "SelectStmt")) {
		select_out(o, b, kept && !pgtree_get(b, "intoClause"));
	} else if (!strcmp(type, "InsertStmt") || !strcmp(type, "UpdateStmt") || !strcmp(type, "DeleteStmt")) {
		/* what goes into a table leaves the mask's sight; RETURNING keeps identity */
		with_out(o, pgtree_get(b, "withClause"), false);
		stmt_out(o, pgtree_get(b, "selectStmt"), false);
		if (!strcmp(type, "UpdateStmt"))
			target_list_out(o, pgtree_get(b, "targetList"), false);
		/* ON CONFLICT DO UPDATE SET note = (SELECT email ...) writes it too */
		target_list_out(o, pgtree_get(pgtree_get(b, "onConflictClause"), "targetList"), false);
		target_list_out(o, pgtree_get(b, "returningList"), true);
	} else if (!strcmp(type, "MergeStmt") || !strcmp(type, "RuleStmt")) {
		expr_out(o, b);
	} else if (!strcmp(type, "CreateTableAsStmt") || !strcmp(type, "ViewStmt") || !strcmp(type, "CopyStmt")) {
		stmt_out(o, pgtree_get(b, "query"), false);
	} else if (!strcmp(type, "DeclareCursorStmt") || !strcmp(type, "PrepareStmt")) {
		stmt_out(o, pgtree_get(b, "query"), kept);
	} else if (!strcmp(type, "ExplainStmt")) {
		/* ANALYZE runs what it explains, and shows none of its rows: only what that
		 * writes leaves (EXPLAIN ANALYZE INSERT INTO t SELECT lower(email) ...) */
		struct pgtree *q = pgtree_get(b, "query"), *sel = pgtree_get(q, "SelectStmt");

		if (sel && !pgtree_get(sel, "intoClause")) /* SELECT ... INTO fills a table */
			with_out(o, pgtree_get(sel, "withClause"), true);
		else
			stmt_out(o, q, kept);
	}
}

int sqlclass_out_statement(struct sqlclass_result *r, struct pgtree *node)
{
	struct outwalk o = { .r = r };

	sqlclass_visit(node, collect_rel, &o);
	sqlclass_visit(node, collect_derived, &o);
	stmt_out(&o, node, true);
	sqlclass_visit(node, cast_member, &o);
	sqlclass_visit(node, carrier_member, &o);
	sqlclass_visit(node, resolved_member, &o);
	return o.err;
}

struct view_walk {
	struct outwalk *o;
	struct sqlclass_view_col *c;
};

static bool view_ref(void *arg, const char *key, struct pgtree *v)
{
	struct view_walk *vw = arg;
	struct pgtree *fields = pgtree_get(v, "fields");
	size_t n = pgtree_size(fields);
	const char *name = n ? sqlclass_sval(pgtree_at(fields, n - 1)) : NULL;

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
	struct sqlclass_parse pr;
	struct pgtree *root, *sel, *rt, *item;
	const char *op;
	size_t i;
	int r;

	memset(ret, 0, sizeof(*ret));
	if ((r = sqlclass_parse_text(def, true, &pr)) < 0)
		return r;
	if (pr.syntax)
		return -EINVAL;
	root = pgtree_doc_root(pr.doc);
	sel = pgtree_get(pgtree_get(pgtree_at(pgtree_get(root, "stmts"), 0), "stmt"), "SelectStmt");
	if (!sel) {
		sqlclass_parse_release(&pr);
		return -EINVAL;
	}
	sqlclass_visit(sel, collect_rel, &o);
	op = pgtree_str(pgtree_get(sel, "op"));
	ret->complex = (op && strcmp(op, "SETOP_NONE")) || pgtree_get(sel, "withClause");
	pgtree_foreach(pgtree_get(sel, "fromClause"), i, item)
		if (!pgtree_get(item, "RangeVar") && !pgtree_get(item, "JoinExpr"))
			ret->complex = 1;
	if (ret->complex) {
		sqlclass_parse_release(&pr);
		return 0;
	}
	ret->cols = calloc(pgtree_size(pgtree_get(sel, "targetList")) + 1, sizeof(*ret->cols));
	if (!ret->cols) {
		sqlclass_parse_release(&pr);
		return -ENOMEM;
	}
	pgtree_foreach(pgtree_get(sel, "targetList"), i, rt) {
		struct sqlclass_view_col *c = &ret->cols[ret->n++];
		struct pgtree *val = pgtree_get(pgtree_get(rt, "ResTarget"), "val");
		struct pgtree *fields = pgtree_get(pgtree_get(val, "ColumnRef"), "fields");
		size_t n = pgtree_size(fields);
		const char *name = n ? sqlclass_sval(pgtree_at(fields, n - 1)) : NULL;

		if (name && !(n == 1 && rel_named(&o, name))) {
			if (!(c->direct = strdup(name)))
				o.err = -ENOMEM;
		} else {
			sqlclass_visit(val, view_ref, &(struct view_walk){ &o, c });
		}
	}
	sqlclass_parse_release(&pr);
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
