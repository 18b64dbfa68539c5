/*
 * Masks resolved against the catalog, and the statements that would leak past them
 * (see maskset.h).
 */
#include "maskset.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EQ " OPERATOR(pg_catalog.=) "
#define IS_REWRITE "d.classid" EQ "'pg_catalog.pg_rewrite'::pg_catalog.regclass"
#define ON_CLASS "d.refclassid" EQ "'pg_catalog.pg_class'::pg_catalog.regclass"

/* A namespace other than pg_catalog and the temporary ones (the session's own
 * pg_temp is searched for relations and types, never for functions or operators
 * unless a call names it, and a named schema other than pg_catalog is not built in). */
#define OWN(nsp) nsp " OPERATOR(pg_catalog.<>) 'pg_catalog'::pg_catalog.regnamespace" \
	" AND NOT pg_catalog.pg_is_other_temp_schema(" nsp ")" \
	" AND " nsp " OPERATOR(pg_catalog.<>) pg_catalog.pg_my_temp_schema()"
/* Owned by a superuser: trusted (DESIGN.md "Threat model"), and only a superuser can
 * replace it. What CREATE EXTENSION installs (citext's =, PostGIS's functions, even
 * in a trusted extension a database owner installs) is owned so. */
#define SUPER(role) "EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.oid" EQ role " AND r.rolsuper)"
#define SHADOW_STR(x) #x
#define SHADOW_XSTR(x) SHADOW_STR(x)
#define SHADOW_LIMIT SHADOW_XSTR(MASKSET_MAX_SHADOWS_PLUS_ONE)
#define MASKSET_MAX_SHADOWS_PLUS_ONE 1025
_Static_assert(MASKSET_MAX_SHADOWS_PLUS_ONE == MASKSET_MAX_SHADOWS + 1, "the query's LIMIT follows the limit");

/* Every view over the masked tables, however deep (views of views). */
static const char query_tail[] =
	"),\n"
	/* the named tables, and their partitions and inheritance children at any depth:
	 * a partition read directly names its own OID */
	"t(i, rel, c) AS (SELECT m.i, c.oid, m.c FROM m\n"
	"  JOIN pg_catalog.pg_namespace n ON (m.s IS NULL OR n.nspname" EQ "m.s)\n"
	"  JOIN pg_catalog.pg_class c ON c.relnamespace" EQ "n.oid AND c.relname" EQ "m.t\n"
	/* columns resolved before, by OID: a rename of their schema, table or column
	 * does not take them out of the masks */
	" UNION SELECT x.i, a.attrelid, a.attname::pg_catalog.text FROM x\n"
	"  JOIN pg_catalog.pg_attribute a ON a.attrelid" EQ "x.rel AND a.attnum" EQ "x.att AND NOT a.attisdropped\n"
	" UNION SELECT t.i, h.inhrelid, t.c FROM t JOIN pg_catalog.pg_inherits h ON h.inhparent" EQ "t.rel),\n"
	"base AS (SELECT t.i, a.attrelid AS rel, a.attnum AS att, a.attname AS col FROM t\n"
	"  JOIN pg_catalog.pg_attribute a ON a.attrelid" EQ "t.rel AND a.attname" EQ "t.c\n"
	"   AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped),\n"
	"v(rel) AS (SELECT w.ev_class FROM pg_catalog.pg_depend d\n"
	"  JOIN pg_catalog.pg_rewrite w ON w.oid" EQ "d.objid\n"
	"  WHERE " IS_REWRITE " AND " ON_CLASS "\n"
	"   AND EXISTS (SELECT 1 FROM base WHERE base.rel" EQ "d.refobjid)\n"
	"   AND w.ev_class OPERATOR(pg_catalog.<>) d.refobjid\n"
	" UNION SELECT w.ev_class FROM v JOIN pg_catalog.pg_depend d ON d.refobjid" EQ "v.rel\n"
	"  JOIN pg_catalog.pg_rewrite w ON w.oid" EQ "d.objid\n"
	"  WHERE " IS_REWRITE " AND " ON_CLASS " AND w.ev_class OPERATOR(pg_catalog.<>) d.refobjid),\n"
	/* the views of the planner's statistics and every view over them, however deep;
	 * by name, because PostgreSQL records no dependency on a pinned catalog such as
	 * pg_statistic (so a view read straight from it is not found: only superusers
	 * can read pg_statistic, and pgtether denies it by name) */
	"sv(rel) AS (SELECT 'pg_catalog.pg_stats'::pg_catalog.regclass::pg_catalog.oid\n"
	" UNION SELECT 'pg_catalog.pg_stats_ext'::pg_catalog.regclass::pg_catalog.oid\n"
	" UNION SELECT 'pg_catalog.pg_stats_ext_exprs'::pg_catalog.regclass::pg_catalog.oid\n"
	" UNION SELECT w.ev_class FROM sv JOIN pg_catalog.pg_depend d ON d.refobjid" EQ "sv.rel\n"
	"  JOIN pg_catalog.pg_rewrite w ON w.oid" EQ "d.objid\n"
	"  WHERE " IS_REWRITE " AND " ON_CLASS " AND w.ev_class OPERATOR(pg_catalog.<>) d.refobjid)\n"
	"SELECT pg_catalog.json_build_object('k', 'c', 'rel', rel::pg_catalog.int8, 'att', att, 'm', i, 'col', col,\n"
	"  'schema', n.nspname, 'name', c.relname)::pg_catalog.text\n"
	"FROM base JOIN pg_catalog.pg_class c ON c.oid" EQ "base.rel JOIN pg_catalog.pg_namespace n ON n.oid" EQ "c.relnamespace\n"
	"UNION ALL\n"
	"SELECT pg_catalog.json_build_object('k', 'v', 'rel', v.rel::pg_catalog.int8,\n"
	"  'schema', n.nspname, 'name', c.relname, 'def', pg_catalog.pg_get_viewdef(v.rel),\n"
	"  'cols', (SELECT pg_catalog.json_agg(a.attname ORDER BY a.attnum) FROM pg_catalog.pg_attribute a\n"
	"           WHERE a.attrelid" EQ "v.rel AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped),\n"
	"  'deps', (SELECT pg_catalog.json_agg(pg_catalog.json_build_array(d.refobjid::pg_catalog.int8, d.refobjsubid))\n"
	"           FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_rewrite w ON w.oid" EQ "d.objid\n"
	"           WHERE w.ev_class" EQ "v.rel AND " ON_CLASS " AND d.refobjid OPERATOR(pg_catalog.<>) v.rel))::pg_catalog.text\n"
	"FROM v JOIN pg_catalog.pg_class c ON c.oid" EQ "v.rel JOIN pg_catalog.pg_namespace n ON n.oid" EQ "c.relnamespace\n"
	"UNION ALL\n"
	"SELECT pg_catalog.json_build_object('k', 's', 'rel', sv.rel::pg_catalog.int8, 'schema', n.nspname,\n"
	"  'name', c.relname)::pg_catalog.text\n"
	"FROM sv JOIN pg_catalog.pg_class c ON c.oid" EQ "sv.rel JOIN pg_catalog.pg_namespace n ON n.oid" EQ "c.relnamespace\n"
	/* functions named like built-ins, and operators, that unqualified calls may
	 * resolve to (maskset.h); one more than the limit, to know it was passed */
	"UNION ALL\n"
	"(SELECT pg_catalog.json_build_object('k', 'f', 'name', p.proname)::pg_catalog.text\n"
	" FROM (SELECT DISTINCT p.proname FROM pg_catalog.pg_proc p WHERE " OWN("p.pronamespace") "\n"
	"  AND NOT " SUPER("p.proowner") "\n"
	"  AND EXISTS (SELECT 1 FROM pg_catalog.pg_proc b WHERE b.proname" EQ "p.proname\n"
	"   AND b.pronamespace" EQ "'pg_catalog'::pg_catalog.regnamespace)) p LIMIT " SHADOW_LIMIT ")\n"
	"UNION ALL\n"
	"(SELECT pg_catalog.json_build_object('k', 'o', 'name', o.oprname)::pg_catalog.text\n"
	" FROM (SELECT DISTINCT o.oprname FROM pg_catalog.pg_operator o WHERE " OWN("o.oprnamespace") "\n"
	"  AND NOT (" SUPER("o.oprowner") " AND EXISTS (SELECT 1 FROM pg_catalog.pg_proc f\n"
	"   WHERE f.oid" EQ "o.oprcode::pg_catalog.oid AND " SUPER("f.proowner") "))) o\n"
	" LIMIT " SHADOW_LIMIT ")";

/* "schema.table.column" of a rule's mask, as its anchors are keyed. */
static void mask_spec(const struct policy_mask *pm, char *out, size_t cap)
{
	snprintf(out, cap, "%s.%s.%s", pm->schema, pm->table, pm->name);
}

char *maskset_query(const struct policy_rule *r, const struct maskset *prev, int *err)
{
	static const char head[] = "/* pgtether: masked columns */ WITH RECURSIVE m(i, s, t, c) AS (";
	static const char none[] = "SELECT NULL::pg_catalog.int4, NULL::pg_catalog.text, NULL::pg_catalog.text, "
				   "NULL::pg_catalog.text WHERE false";
	static const char anchors[] = "),\nx(i, rel, att) AS (SELECT NULL::pg_catalog.int4, NULL::pg_catalog.oid, "
				      "NULL::pg_catalog.int2 WHERE false";
	static const char anchor_fmt[] = " UNION ALL VALUES (%zu, %u::pg_catalog.oid, %d::pg_catalog.int2)";
	size_t cap = sizeof(head) + sizeof(none) + sizeof(anchors) + sizeof(query_tail), n = 0, k = 0;
	char spec[200];
	char *q;

	*err = 0;
	for (size_t i = 0; i < r->n_masks; i++)
		if (r->masks[i].column) {
			cap += 24 + strlen(r->masks[i].schema) + strlen(r->masks[i].table) + strlen(r->masks[i].name);
			k++;
		}
	if (prev)
		cap += prev->n_anchors * (sizeof(anchor_fmt) + 3 * 20);
	/* name patterns need no columns from the catalog, but the views over the
	 * planner's statistics still matter */
	if (!r->n_masks)
		return NULL;
	if (!(q = malloc(cap))) {
		*err = -ENOMEM;
		return NULL;
	}
	n = (size_t)snprintf(q, cap, "%s%s", head, k ? "VALUES " : none);
	/* the names were checked at load: no quotes or backslashes. A table.column
	 * without its schema is masked in every schema (NULL): which one a session
	 * reaches depends on its search_path, which the workload can change. */
	for (size_t i = 0, j = 0; i < r->n_masks; i++)
		if (r->masks[i].column) {
			bool any = strchr(r->masks[i].column, '.') == strrchr(r->masks[i].column, '.');

			n += (size_t)snprintf(q + n, cap - n, "%s(%zu, %s%s%s, '%s', '%s')", j++ ? ", " : "", i,
					      any ? "NULL" : "'", any ? "" : r->masks[i].schema, any ? "" : "'",
					      r->masks[i].table, r->masks[i].name);
		}
	n += (size_t)snprintf(q + n, cap - n, "%s", anchors);
	/* matched by the mask's name, not its index: a reload may renumber the masks */
	for (size_t i = 0; prev && i < r->n_masks; i++) {
		if (!r->masks[i].column)
			continue;
		mask_spec(&r->masks[i], spec, sizeof(spec));
		for (size_t a = 0; a < prev->n_anchors; a++)
			if (!strcmp(prev->anchors[a].spec, spec))
				n += (size_t)snprintf(q + n, cap - n, anchor_fmt, i, prev->anchors[a].rel,
						      prev->anchors[a].att);
	}
	snprintf(q + n, cap - n, "%s", query_tail);
	return q;
}

/* Appends to a list grown 64 entries at a time, up to max; the new entry, or NULL. */
static void *grow(void *list_p, size_t *n, size_t size, size_t max, int *rc)
{
	void **list = list_p;

	if (*n == max) {
		*rc = -E2BIG;
		return NULL;
	}
	if (*n % 64 == 0) {
		void *more = realloc(*list, (*n + 64) * size);

		if (!more) {
			*rc = -ENOMEM;
			return NULL;
		}
		*list = more;
	}
	return (char *)*list + (*n)++ * size;
}

/* Keeps (rel, att) as a column of mask i for the next resolution (see query_tail). */
static int add_anchor(struct maskset *m, const struct policy_rule *r, size_t i, uint32_t rel, int16_t att)
{
	struct maskset_anchor *a;
	int rc = 0;

	for (size_t k = 0; k < m->n_fresh; k++)
		if (m->fresh[k].rel == rel && m->fresh[k].att == att && m->fresh[k].mask == i)
			return 0;
	if (!(a = grow(&m->fresh, &m->n_fresh, sizeof(*a), MASKSET_MAX_COLS, &rc)))
		return rc;
	a->rel = rel;
	a->att = att;
	a->mask = (uint16_t)i;
	mask_spec(&r->masks[i], a->spec, sizeof(a->spec));
	return 0;
}

static int add_col(struct maskset *m, uint32_t rel, int16_t att, size_t mask, const char *schema, const char *table,
		   const char *column)
{
	struct maskset_col *c;

	if (maskset_find(m, rel, att) >= 0)
		return 0;
	if (m->n == MASKSET_MAX_COLS)
		return -E2BIG;
	if (m->n % 64 == 0) {
		struct maskset_col *more = realloc(m->cols, (m->n + 64) * sizeof(*more));

		if (!more)
			return -ENOMEM;
		m->cols = more;
	}
	c = &m->cols[m->n++];
	c->rel = rel;
	c->att = att;
	c->mask = (uint16_t)mask;
	snprintf(c->table, sizeof(c->table), "%s.%s", schema, table);
	snprintf(c->column, sizeof(c->column), "%s", column);
	return 0;
}

int maskset_add_row(struct maskset *m, const struct policy_rule *r, const char *json, size_t len)
{
	json_t *row = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL);
	const char *k = json_string_value(json_object_get(row, "k"));
	json_int_t rel = json_integer_value(json_object_get(row, "rel"));
	int rc = -EINVAL;

	if (!k || ((rel <= 0 || rel > UINT32_MAX) && strcmp(k, "f") && strcmp(k, "o"))) {
		json_decref(row);
		return -EINVAL;
	}
	if (!strcmp(k, "c")) {
		json_int_t att = json_integer_value(json_object_get(row, "att"));
		json_int_t i = json_integer_value(json_object_get(row, "m"));

		const char *schema = json_string_value(json_object_get(row, "schema"));
		const char *name = json_string_value(json_object_get(row, "name"));
		const char *col = json_string_value(json_object_get(row, "col"));

		/* the catalog's names now, which a rename may have made other than the rule's */
		if (att > 0 && att <= INT16_MAX && i >= 0 && (size_t)i < r->n_masks && r->masks[i].column &&
		    (rc = add_col(m, (uint32_t)rel, (int16_t)att, (size_t)i, schema ? schema : r->masks[i].schema,
				  name ? name : r->masks[i].table, col ? col : r->masks[i].name)) == 0)
			rc = add_anchor(m, r, (size_t)i, (uint32_t)rel, (int16_t)att);
	} else if (!strcmp(k, "s")) {
		const char *schema = json_string_value(json_object_get(row, "schema"));
		const char *name = json_string_value(json_object_get(row, "name"));
		struct maskset_stats *st;

		if (schema && name && (st = grow(&m->stats, &m->n_stats, sizeof(*st), MASKSET_MAX_VIEWS, &rc))) {
			st->rel = (uint32_t)rel;
			snprintf(st->table, sizeof(st->table), "%s.%s", schema, name);
			rc = 0;
		}
	} else if ((!strcmp(k, "f") || !strcmp(k, "o")) && json_is_string(json_object_get(row, "name"))) {
		struct maskset_shadow *sh;

		if ((sh = grow(&m->shadows, &m->n_shadows, sizeof(*sh), MASKSET_MAX_SHADOWS, &rc))) {
			sh->kind = k[0];
			snprintf(sh->name, sizeof(sh->name), "%s", json_string_value(json_object_get(row, "name")));
			rc = 0;
		}
	} else if (!strcmp(k, "v") && json_is_string(json_object_get(row, "def"))) {
		if (!m->views && !(m->views = json_array()))
			rc = -ENOMEM;
		else if (json_array_size(m->views) >= MASKSET_MAX_VIEWS)
			rc = -E2BIG;
		else
			rc = json_array_append(m->views, row) ? -ENOMEM : 0;
	}
	json_decref(row);
	return rc;
}

/*
 * The masked columns a view may read: every masked column of each relation it
 * depends on (indexes into m->cols, up to max). PostgreSQL records a view's column
 * references but not its whole-row ones (row_to_json(u)), so a relation counts as a
 * whole; the view's definition then says, by name, which column carries which.
 */
static size_t view_sources(const struct maskset *m, json_t *deps, size_t *out, size_t max)
{
	json_t *d;
	size_t i, n = 0;

	json_array_foreach(deps, i, d) {
		json_int_t rel = json_integer_value(json_array_get(d, 0));

		for (size_t c = 0; c < m->n && n < max; c++) {
			size_t k;

			if (m->cols[c].rel != rel)
				continue;
			for (k = 0; k < n && out[k] != c; k++)
				;
			if (k == n)
				out[n++] = c;
		}
	}
	return n;
}

/* The source (index into m->cols) whose column is named name, or -1. */
static int source_named(const struct maskset *m, const size_t *src, size_t n, const char *name)
{
	for (size_t i = 0; name && i < n; i++)
		if (!strcmp(m->cols[src[i]].column, name))
			return (int)src[i];
	return -1;
}

/* One pass over the views: masks for the columns of those that read masked ones. */
static int trace_views(struct maskset *m, bool *changed)
{
	json_t *v;
	size_t i;
	int rc;

	json_array_foreach(m->views, i, v) {
		json_int_t rel = json_integer_value(json_object_get(v, "rel"));
		json_t *cols = json_object_get(v, "cols");
		const char *schema = json_string_value(json_object_get(v, "schema"));
		const char *name = json_string_value(json_object_get(v, "name"));
		size_t src[64], n = view_sources(m, json_object_get(v, "deps"), src, 64);
		struct sqlclass_view sv;

		if (!n || !schema || !name)
			continue;
		rc = sqlclass_view_columns(json_string_value(json_object_get(v, "def")), &sv);
		if (rc == -ENOMEM)
			return rc;
		for (size_t c = 0; c < json_array_size(cols); c++) {
			const char *col = json_string_value(json_array_get(cols, c));
			int from = -1;

			if (!col || maskset_find(m, (uint32_t)rel, (int16_t)(c + 1)) >= 0)
				continue;
			if (rc < 0 || sv.complex || sv.n != json_array_size(cols)) {
				from = (int)src[0]; /* cannot be traced: every column */
			} else if (sv.cols[c].direct) {
				from = source_named(m, src, n, sv.cols[c].direct);
			} else {
				for (size_t k = 0; from < 0 && k < sv.cols[c].n_refs; k++)
					from = source_named(m, src, n, sv.cols[c].refs[k]);
				if (from < 0 && sv.cols[c].whole)
					from = (int)src[0];
			}
			if (from < 0)
				continue;
			if ((rc = add_col(m, (uint32_t)rel, (int16_t)(c + 1), m->cols[from].mask, schema, name, col)) < 0) {
				sqlclass_view_release(&sv);
				return rc;
			}
			*changed = true;
		}
		sqlclass_view_release(&sv);
	}
	return 0;
}

int maskset_finish(struct maskset *m, const struct policy_rule *r)
{
	bool changed = true;
	int rc = 0;

	(void)r;
	/* each pass reaches one level deeper into views of views */
	for (int pass = 0; m->views && changed && pass < 16; pass++) {
		changed = false;
		if ((rc = trace_views(m, &changed)) < 0)
			break;
	}
	json_decref(m->views);
	m->views = NULL;
	/* what this resolution found is what the next one looks for by OID; a column
	 * dropped since is gone from both */
	free(m->anchors);
	m->anchors = m->fresh;
	m->n_anchors = m->n_fresh;
	m->fresh = NULL;
	m->n_fresh = 0;
	return rc;
}

int maskset_find(const struct maskset *m, uint32_t rel, int16_t att)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->cols[i].rel == rel && m->cols[i].att == att)
			return m->cols[i].mask;
	return -1;
}

/*
 * Whether a relation as a statement names it is the masked relation "schema.table".
 * An unqualified name may be any schema's, depending on the session's search_path.
 */
static bool same_relation(const char *named, const char *qualified)
{
	const char *dot = strchr(qualified, '.');

	if (strchr(named, '.'))
		return !strcmp(named, qualified);
	return dot && !strcmp(named, dot + 1);
}

/* A masked column of a relation the statement names: the rule's own columns, then
 * those resolved in views. */
struct masked {
	char table[140];                 /* "schema.table" */
	const char *column;
	size_t mask;
};

static size_t masked_in(const struct maskset *m, const struct policy_rule *r, const struct sqlclass_result *c,
			struct masked *out, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < c->n_tables; i++) {
		for (size_t k = 0; k < r->n_masks && n < max; k++) {
			const struct policy_mask *pm = &r->masks[k];

			if (!pm->column)
				continue;
			snprintf(out[n].table, sizeof(out[n].table), "%s.%s", pm->schema, pm->table);
			if (same_relation(c->tables[i], out[n].table)) {
				out[n].column = pm->name;
				out[n++].mask = k;
			}
		}
		for (size_t k = 0; m && k < m->n && n < max; k++)
			if (same_relation(c->tables[i], m->cols[k].table)) {
				snprintf(out[n].table, sizeof(out[n].table), "%s", m->cols[k].table);
				out[n].column = m->cols[k].column;
				out[n++].mask = m->cols[k].mask;
			}
	}
	return n;
}

/*
 * The relations that show the planner's statistics: the most common values and
 * histogram bounds of every column the role may read, masked ones too. By name in
 * any schema (an unqualified name finds pg_catalog's first unless the search_path
 * says otherwise, and a same-named table elsewhere is denied with them); views over
 * them are found in the catalog (m->stats).
 */
static const char *const stats_relations[] = {
	"pg_stats", "pg_stats_ext", "pg_stats_ext_exprs", "pg_statistic", "pg_statistic_ext_data", NULL,
};

static const char *reads_statistics(const struct maskset *m, const struct sqlclass_result *c)
{
	for (size_t i = 0; i < c->n_tables; i++) {
		const char *dot = strrchr(c->tables[i], '.');
		const char *rel = dot ? dot + 1 : c->tables[i];

		for (const char *const *s = stats_relations; *s; s++)
			if (!strcmp(rel, *s))
				return c->tables[i];
		for (size_t k = 0; m && k < m->n_stats; k++)
			if (same_relation(c->tables[i], m->stats[k].table))
				return c->tables[i];
	}
	return NULL;
}

/* A masked column of a relation in schema, by the rule's names or the resolved
 * ones, into *ret; false if there is none. */
static bool schema_masked(const struct maskset *m, const struct policy_rule *r, const char *schema,
			  struct masked *ret)
{
	size_t len = strlen(schema);

	for (size_t k = 0; k < r->n_masks; k++)
		if (r->masks[k].column && !strcmp(r->masks[k].schema, schema)) {
			snprintf(ret->table, sizeof(ret->table), "%s.%s", r->masks[k].schema, r->masks[k].table);
			ret->column = r->masks[k].name;
			ret->mask = k;
			return true;
		}
	for (size_t k = 0; m && k < m->n; k++)
		if (!strncmp(m->cols[k].table, schema, len) && m->cols[k].table[len] == '.') {
			snprintf(ret->table, sizeof(ret->table), "%s", m->cols[k].table);
			ret->column = m->cols[k].column;
			ret->mask = m->cols[k].mask;
			return true;
		}
	return false;
}

/* Whether the database has a function or operator named like call outside pg_catalog
 * (a call of the name may resolve to it). */
static bool shadowed(const struct maskset *m, const struct sqlclass_call *call)
{
	for (size_t i = 0; m && i < m->n_shadows; i++)
		if (m->shadows[i].kind == call->kind && !strcmp(m->shadows[i].name, call->name))
			return true;
	return false;
}

/* A call of c taken for a built-in that may resolve to the database's own function
 * or operator, with column (a masked column's name) in its arguments; NULL if none.
 * *all is set when c lists too many calls to tell. */
static const struct sqlclass_call *shadowed_call(const struct maskset *m, const struct sqlclass_result *c,
						 const char *column, bool *all)
{
	*all = c->calls_overflow && m && m->n_shadows;
	for (size_t i = 0; !*all && i < c->n_calls; i++)
		if (c->calls[i].column[0] && (!column || !strcmp(c->calls[i].column, "*") || !strcmp(c->calls[i].column, column)) &&
		    shadowed(m, &c->calls[i]))
			return &c->calls[i];
	return NULL;
}

int maskset_leak(const struct maskset *m, const struct policy_rule *r, const struct sqlclass_result *c, char *why,
		 size_t cap)
{
	struct masked found[128];
	size_t n = masked_in(m, r, c, found, 128);
	const char *stats = r->n_masks ? reads_statistics(m, c) : NULL;

	if (stats) {
		snprintf(why, cap, "rule '%s' masks columns, and %s shows the planner's statistics of columns, masked "
			 "ones too (their most common values and histogram bounds), so a masked session may not read it",
			 r->name, stats);
		return 1;
	}
	/* a statement checked after the rename in the same text or pipeline would still
	 * be checked against the old names */
	for (size_t i = 0; i < c->n_schemas; i++) {
		struct masked in;

		if (schema_masked(m, r, c->schemas[i], &in) && !(r->masks[in.mask].allow & POLICY_MASK_ALLOW_DDL)) {
			snprintf(why, cap, "rule '%s' masks %s.%s, and renaming schema %s would change what the mask is on "
				 "(a mask's \"allow\": [\"ddl\"] would permit it)", r->name, in.table, in.column,
				 c->schemas[i]);
			return 1;
		}
	}

	/* server-side code can read any masked column and say it in a notice or error */
	for (size_t k = 0; c->runs_code && k < r->n_masks; k++)
		if (r->masks[k].column && !(r->masks[k].allow & POLICY_MASK_ALLOW_CODE)) {
			snprintf(why, cap, "rule '%s' masks %s.%s.%s, and a DO block, procedure or function that runs "
				 "queries of its own could read it unmasked (a mask's \"allow\": [\"code\"] would permit it)",
				 r->name, r->masks[k].schema, r->masks[k].table, r->masks[k].name);
			return 1;
		}
	for (size_t i = 0; i < n; i++) {
		const struct policy_mask *pm = &r->masks[found[i].mask];
		const char *how = NULL, *allow = NULL;
		char carried[200];

		if ((c->classes & SQL_COPY_OUT) && !(pm->allow & POLICY_MASK_ALLOW_COPY)) {
			how = "COPY would move it out unmasked";
			allow = "copy";
		}
		for (size_t w = 0; !how && w < c->n_whole_rows; w++)
			if ((!strcmp(c->whole_rows[w], "*") || same_relation(c->whole_rows[w], found[i].table)) &&
			    !(pm->allow & POLICY_MASK_ALLOW_WHOLE_ROW)) {
				how = "a whole-row value of its table would carry it unmasked";
				allow = "whole_row";
			}
		for (size_t o = 0; !how && o < c->n_carried; o++)
			if ((!strcmp(c->carried[o], "*") || !strcmp(c->carried[o], found[i].column)) &&
			    !(pm->allow & POLICY_MASK_ALLOW_COMPUTED)) {
				snprintf(carried, sizeof(carried), "%s%s would carry it out of the statement unmasked",
					 c->carrier, strchr(c->carrier, '(') ? "" : "()"); /* OPERATOR(app.=) */
				how = carried;
				allow = "computed";
			}
		if (!how && !(pm->allow & POLICY_MASK_ALLOW_COMPUTED)) {
			bool all;
			const struct sqlclass_call *sc = shadowed_call(m, c, found[i].column, &all);

			if (all) {
				how = "the statement makes more calls than can be checked, and the database has functions or "
				      "operators named like PostgreSQL's outside pg_catalog";
				allow = "computed";
			} else if (sc) {
				snprintf(carried, sizeof(carried), "%s%s%s may resolve to the database's own %s outside pg_catalog, "
					 "which would get it unmasked", sc->kind == 'o' ? "operator " : "", sc->name,
					 sc->kind == 'o' ? "" : "()", sc->kind == 'o' ? "operator" : "function");
				how = carried;
				allow = "computed";
			}
		}
		for (size_t o = 0; !how && o < c->n_out_columns; o++)
			if (!strcmp(c->out_columns[o], found[i].column) && !(pm->allow & POLICY_MASK_ALLOW_COMPUTED)) {
				how = "a value computed or copied from it would leave unmasked";
				allow = "computed";
			}
		if (!how && c->out_renamed && !(pm->allow & POLICY_MASK_ALLOW_COMPUTED)) {
			how = "a value computed from a column the statement renames could be it, unmasked";
			allow = "computed";
		}
		if (!how && (c->classes & (SQL_DDL | SQL_DROP)) && !(pm->allow & POLICY_MASK_ALLOW_DDL)) {
			how = "the statement would change what the mask is on";
			allow = "ddl";
		}
		if (how) {
			snprintf(why, cap, "rule '%s' masks %s.%s, and %s (a mask's \"allow\": [\"%s\"] would permit it)",
				 r->name, found[i].table, found[i].column, how, allow);
			return 1;
		}
	}
	return 0;
}

bool maskset_touches(const struct maskset *m, const struct policy_rule *r, const struct sqlclass_result *c)
{
	struct masked one[1];

	/* a function of the database's own, or SQL given as text, may read any masked
	 * column; a column_name mask may be on a column of any table */
	bool all;

	if (c->calls_unknown || c->any_table)
		return true;
	/* lower(x) that may be the database's own lower(), whatever its arguments */
	for (size_t i = 0; m && m->n_shadows && i < c->n_calls; i++)
		if (shadowed(m, &c->calls[i]))
			return true;
	if (shadowed_call(m, c, NULL, &all) || all)
		return true;
	for (size_t k = 0; c->n_tables && k < r->n_masks; k++)
		if (r->masks[k].column_name)
			return true;
	return masked_in(m, r, c, one, 1) > 0;
}

void maskset_reset(struct maskset *m)
{
	m->n = 0;
	m->n_stats = 0;
	m->n_shadows = 0;
	m->n_fresh = 0; /* the anchors stay: the next resolution starts from them */
	json_decref(m->views);
	m->views = NULL;
}

void maskset_release(struct maskset *m)
{
	free(m->cols);
	free(m->anchors);
	free(m->fresh);
	free(m->stats);
	free(m->shadows);
	json_decref(m->views);
	memset(m, 0, sizeof(*m));
}
