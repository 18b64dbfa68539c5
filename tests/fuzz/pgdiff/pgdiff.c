/*
 * The differential check of run.sh: every output of the JSON walkers (BASE's, under
 * old_* names) against the pgtree ones for one text, and the two trees themselves.
 */
#include "pgtree.h"
#include "searchpath.h"
#include "sqlclass.h"

#include <jansson.h>
#include <pg_query.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern __thread bool standard_conforming_strings;

int old_sqlclass_classify(const char *sql, const char *const *dangerous, struct sqlclass_result *ret);
void old_sqlclass_release(struct sqlclass_result *r);
int old_sqlclass_guard_text(const char *sql, bool plpgsql_function, int depth, char *why, size_t cap);
char *old_sqlclass_constant_select(const char *sql);
int old_sqlclass_view_columns(const char *def, struct sqlclass_view *ret);
void old_sqlclass_view_release(struct sqlclass_view *v);
void *old_sqlclass_parse_tree(const char *sql);
int old_searchpath_scan(const char *sql, struct searchpath_scan *ret);
void old_searchpath_scan_release(struct searchpath_scan *sc);

static FILE *rep;
static const char *cur;
static int ndiff;
unsigned long pgdiff_counts[8];

static void diff(const char *what, const char *a, const char *b)
{
	ndiff++;
	if (rep)
		fprintf(rep, "DIFF %s: old=[%s] new=[%s] in: %.300s\n", what, a ? a : "(null)", b ? b : "(null)", cur);
}

static void cmp_int(const char *what, long long a, long long b)
{
	char x[32], y[32];

	if (a == b)
		return;
	snprintf(x, sizeof(x), "%lld", a);
	snprintf(y, sizeof(y), "%lld", b);
	diff(what, x, y);
}

static void cmp_str(const char *what, const char *a, const char *b)
{
	if ((!a && !b) || (a && b && !strcmp(a, b)))
		return;
	diff(what, a, b);
}

static void cmp_list(const char *what, char *const *a, size_t na, char *const *b, size_t nb)
{
	cmp_int(what, (long long)na, (long long)nb);
	for (size_t i = 0; i < na && i < nb; i++)
		cmp_str(what, a[i], b[i]);
}

static void cmp_result(const struct sqlclass_result *a, const struct sqlclass_result *b)
{
	cmp_int("classes", a->classes, b->classes);
	cmp_int("n_stmts", (long long)a->n_stmts, (long long)b->n_stmts);
	for (size_t i = 0; i < a->n_stmts && i < b->n_stmts; i++)
		cmp_int("stmt_classes", a->stmt_classes[i], b->stmt_classes[i]);
	cmp_list("tables", a->tables, a->n_tables, b->tables, b->n_tables);
	cmp_list("functions", a->functions, a->n_functions, b->functions, b->n_functions);
	cmp_list("out_columns", a->out_columns, a->n_out_columns, b->out_columns, b->n_out_columns);
	cmp_list("whole_rows", a->whole_rows, a->n_whole_rows, b->whole_rows, b->n_whole_rows);
	cmp_list("schemas", a->schemas, a->n_schemas, b->schemas, b->n_schemas);
	cmp_list("prepares", a->prepares, a->n_prepares, b->prepares, b->n_prepares);
	cmp_list("executes", a->executes, a->n_executes, b->executes, b->n_executes);
	cmp_list("carried", a->carried, a->n_carried, b->carried, b->n_carried);
	cmp_int("runs_code", a->runs_code, b->runs_code);
	cmp_int("any_table", a->any_table, b->any_table);
	cmp_int("out_renamed", a->out_renamed, b->out_renamed);
	cmp_int("sets_read_write", a->sets_read_write, b->sets_read_write);
	cmp_str("carrier", a->carrier, b->carrier);
	cmp_int("calls_unknown", a->calls_unknown, b->calls_unknown);
	cmp_str("settings_row", a->settings_row, b->settings_row);
	cmp_int("n_calls", (long long)a->n_calls, (long long)b->n_calls);
	for (size_t i = 0; i < a->n_calls && i < b->n_calls; i++) {
		cmp_int("call.kind", a->calls[i].kind, b->calls[i].kind);
		cmp_str("call.name", a->calls[i].name, b->calls[i].name);
		cmp_str("call.column", a->calls[i].column, b->calls[i].column);
	}
	cmp_int("calls_overflow", a->calls_overflow, b->calls_overflow);
	cmp_str("guard", a->guard, b->guard);
	cmp_str("error", a->error, b->error);
	cmp_int("error_pos", a->error_pos, b->error_pos);
}

/* ---- the trees themselves ---- */

static json_t *to_json(const struct pgtree *v)
{
	json_t *o;

	switch (v->kind) {
	case PGTREE_OBJECT:
		o = json_object();
		for (size_t i = 0; i < pgtree_members(v); i++)
			json_object_set_new(o, pgtree_key_at(v, i), to_json(pgtree_value_at(v, i)));
		return o;
	case PGTREE_ARRAY:
		o = json_array();
		for (size_t i = 0; i < pgtree_size(v); i++)
			json_array_append_new(o, to_json(pgtree_at(v, i)));
		return o;
	case PGTREE_STRING:
		return json_string(v->u.s);
	case PGTREE_INTEGER:
		return json_integer(v->u.i);
	case PGTREE_REAL:
		return json_real(v->u.d);
	case PGTREE_TRUE:
		return json_true();
	case PGTREE_FALSE:
		return json_false();
	}
	return NULL;
}

static int same_order(json_t *a, json_t *b)
{
	if (json_is_object(a)) {
		void *ia = json_object_iter(a), *ib = json_object_iter(b);

		while (ia && ib) {
			if (strcmp(json_object_iter_key(ia), json_object_iter_key(ib)) ||
			    !same_order(json_object_iter_value(ia), json_object_iter_value(ib)))
				return 0;
			ia = json_object_iter_next(a, ia);
			ib = json_object_iter_next(b, ib);
		}
		return !ia && !ib;
	}
	if (json_is_array(a))
		for (size_t i = 0; i < json_array_size(a); i++)
			if (!same_order(json_array_get(a, i), json_array_get(b, i)))
				return 0;
	return 1;
}

/* Both forms of one reading, compared as trees. Runs inline: callers keep texts short
 * or accept the big stack (the fuzzer's inputs are bounded). */
static void cmp_tree(const char *sql, bool scs)
{
	PgQueryParseResult pr;
	PgQueryProtobufParseResult pb;

	standard_conforming_strings = scs;
	pr = pg_query_parse(sql);
	pb = pg_query_parse_protobuf(sql);
	if (!!pr.error != !!pb.error) {
		diff("tree.error", pr.error ? pr.error->message : "", pb.error ? pb.error->message : "");
	} else if (!pr.error) {
		json_error_t je;
		json_t *j = json_loads(pr.parse_tree, 0, &je);
		struct pgtree_doc *d = NULL;
		int r = pgtree_doc_from_protobuf(pb.parse_tree.data, pb.parse_tree.len, sql, &d);

		if (!j || r) {
			if (!j != !!r)
				diff("tree.load", j ? "ok" : je.text, r ? "refused" : "ok");
			else
				pgdiff_counts[2]++;
		} else {
			json_t *t = to_json(pgtree_doc_root(d));

			if (!json_equal(j, t) || !same_order(j, t)) {
				char *a = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
				char *b = json_dumps(t, JSON_COMPACT | JSON_PRESERVE_ORDER);

				diff("tree", a, b);
				free(a);
				free(b);
			} else {
				pgdiff_counts[1]++;
			}
			json_decref(t);
		}
		json_decref(j);
		pgtree_doc_free(d);
	}
	pg_query_free_parse_result(pr);
	pg_query_free_protobuf_parse_result(pb);
	standard_conforming_strings = true;
}

/* Every output of both; the number of differences (reported to report). */
int pgdiff_one(const char *sql, FILE *report, bool trees)
{
	struct sqlclass_result a, b;
	struct sqlclass_view va, vb;
	struct searchpath_scan *sa = calloc(1, sizeof(*sa)), *sb = calloc(1, sizeof(*sb));
	char wa[SQLCLASS_ERR_LEN], wb[SQLCLASS_ERR_LEN];
	int ra, rb;
	char *ca, *cb;
	void *ta;
	struct pgtree_doc *tb;

	rep = report;
	cur = sql;
	ndiff = 0;
	pgdiff_counts[0]++;

	ra = old_sqlclass_classify(sql, sqlclass_default_dangerous, &a);
	rb = sqlclass_classify(sql, sqlclass_default_dangerous, &b);
	cmp_int("classify.rc", ra, rb);
	cmp_result(&a, &b);
	old_sqlclass_release(&a);
	sqlclass_release(&b);

	ra = old_sqlclass_classify(sql, NULL, &a);
	rb = sqlclass_classify(sql, NULL, &b);
	cmp_int("classify(NULL).rc", ra, rb);
	cmp_result(&a, &b);
	old_sqlclass_release(&a);
	sqlclass_release(&b);

	for (int pl = 0; pl < 1; pl++) { /* the PL/pgSQL form is reached from classify, as in the daemon */
		wa[0] = wb[0] = '\0';
		ra = old_sqlclass_guard_text(sql, pl, 0, wa, sizeof(wa));
		rb = sqlclass_guard_text(sql, pl, 0, wb, sizeof(wb));
		cmp_int(pl ? "guard_text(pl).rc" : "guard_text.rc", ra, rb);
		if (ra == 1 || rb == 1)
			cmp_str("guard_text.why", wa, wb);
	}

	ca = old_sqlclass_constant_select(sql);
	cb = sqlclass_constant_select(sql);
	cmp_str("constant_select", ca, cb);
	free(ca);
	free(cb);

	ra = old_sqlclass_view_columns(sql, &va);
	rb = sqlclass_view_columns(sql, &vb);
	cmp_int("view.rc", ra, rb);
	cmp_int("view.complex", va.complex, vb.complex);
	cmp_int("view.n", (long long)va.n, (long long)vb.n);
	for (size_t i = 0; i < va.n && i < vb.n; i++) {
		cmp_str("view.direct", va.cols[i].direct, vb.cols[i].direct);
		cmp_list("view.refs", va.cols[i].refs, va.cols[i].n_refs, vb.cols[i].refs, vb.cols[i].n_refs);
		cmp_int("view.whole", va.cols[i].whole, vb.cols[i].whole);
	}
	old_sqlclass_view_release(&va);
	sqlclass_view_release(&vb);

	ra = old_searchpath_scan(sql, sa);
	rb = searchpath_scan(sql, sb);
	cmp_int("searchpath.rc", ra, rb);
	cmp_int("searchpath.n_refs", (long long)sa->n_refs, (long long)sb->n_refs);
	cmp_int("searchpath.n_stmts", (long long)sa->n_stmts, (long long)sb->n_stmts);
	cmp_int("searchpath.n_unqualified", (long long)sa->n_unqualified, (long long)sb->n_unqualified);
	for (size_t i = 0; i < sa->n_refs && i < sb->n_refs; i++) {
		cmp_str("searchpath.ref.schema", sa->refs[i].schema, sb->refs[i].schema);
		cmp_str("searchpath.ref.name", sa->refs[i].name, sb->refs[i].name);
		cmp_int("searchpath.ref.stmt", sa->refs[i].stmt, sb->refs[i].stmt);
		cmp_int("searchpath.ref.how", sa->refs[i].how, sb->refs[i].how);
		cmp_int("searchpath.ref.later", sa->refs[i].later, sb->refs[i].later);
	}
	for (size_t i = 0; i < sa->n_stmts && i < sb->n_stmts; i++) {
		cmp_int("searchpath.stmt.effect", sa->stmts[i].effect, sb->stmts[i].effect);
		cmp_int("searchpath.stmt.n_path", (long long)sa->stmts[i].n_path, (long long)sb->stmts[i].n_path);
		for (size_t k = 0; k < sa->stmts[i].n_path && k < sb->stmts[i].n_path; k++)
			cmp_str("searchpath.stmt.path", sa->stmts[i].path[k], sb->stmts[i].path[k]);
	}
	old_searchpath_scan_release(sa);
	searchpath_scan_release(sb);
	free(sa);
	free(sb);

	ta = old_sqlclass_parse_tree(sql);
	tb = sqlclass_parse_tree(sql);
	cmp_int("parse_tree", ta != NULL, tb != NULL);
	json_decref(ta);
	pgtree_doc_free(tb);

	if (trees && strlen(sql) <= 4096) {
		cmp_tree(sql, true);
		if (strchr(sql, '\\'))
			cmp_tree(sql, false);
	}
	return ndiff;
}
