/*
 * The masks of one session, resolved against its database (DESIGN.md "Masking").
 *
 * A rule names masked columns as schema.table.column; RowDescription names result
 * columns by table OID and attribute number. maskset_query() is the catalog query
 * that joins the two, run on the session's own upstream connection: it returns the
 * (OID, attnum) of every masked column, and every view that reads one, however deep,
 * with its definition. A view column that passes a masked column on, or is computed
 * from one, gets that column's mask; a view whose columns cannot be traced by name
 * (set operations, subqueries, CTEs) is masked in every column.
 *
 * maskset_leak() closes what RowDescription cannot show: a statement that would move
 * a masked column out in a form no mask can find (COPY TO, whole-row values, columns
 * computed from it, copies into other tables, an argument of a function that carries
 * it elsewhere, such as pg_notify or set_config) is denied, unless the mask allows it.
 *
 * The query qualifies every function and operator with pg_catalog, so a search_path
 * the workload set cannot change what it means.
 *
 * The answer also names the functions and operators outside pg_catalog (and outside
 * temporary schemas, never searched for unqualified calls) that share a name with a
 * built-in, and every operator name outside pg_catalog. PostgreSQL resolves lower(x)
 * or a = b by name and argument types along the whole search_path: app.lower(text[])
 * wins for a text[] argument, and any schema before pg_catalog wins outright. So a
 * call of such a name counts as not built in whatever the search_path: its columns
 * are carried (maskset_leak), its errors withheld (maskset_touches).
 */
#ifndef PGTETHER_MASKSET_H
#define PGTETHER_MASKSET_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"
#include "sqlclass.h"

#define MASKSET_MAX_COLS 4096          /* resolved columns per session */
#define MASKSET_MAX_VIEWS 256
/* Names of functions and operators outside pg_catalog that a call taken for a
 * built-in may resolve to (a database with PostGIS has some 700 functions and 30
 * operator names outside pg_catalog, most not named like built-ins): past this the
 * session is refused, since a name left out would count as PostgreSQL's. */
#define MASKSET_MAX_SHADOWS 1024

struct maskset_col {
	uint32_t rel;                  /* table or view OID */
	int16_t att;                   /* attribute number */
	uint16_t mask;                 /* index into the rule's masks */
	char table[130];               /* "schema.table" */
	char column[64];
};

/* A column a mask resolved to, kept by OID for the next resolution. */
struct maskset_anchor {
	uint32_t rel;
	int16_t att;
	uint16_t mask;
	char spec[200];                /* the mask's "schema.table.column" in the rule */
};

/* A view over the planner's statistics (pg_stats, or a view over it). */
struct maskset_stats {
	uint32_t rel;
	char table[130];               /* "schema.view" */
};

/* A function (kind 'f', a name also in pg_catalog) or operator ('o') of that name
 * outside pg_catalog: the database's own, which an unqualified call may resolve to. */
struct maskset_shadow {
	char kind;
	char name[64];
};

struct maskset {
	struct maskset_col *cols;
	size_t n;
	json_t *views;                 /* view rows until maskset_finish() */
	unsigned epoch;                /* of the resolution (the session's business) */
	/* The columns earlier resolutions found: the next one finds them again by OID,
	 * so that renaming a masked column, its table or its schema (in the session, or
	 * by anyone between two lookups) does not take it out of the masks. */
	struct maskset_anchor *anchors, *fresh;
	size_t n_anchors, n_fresh;
	struct maskset_stats *stats;
	size_t n_stats;
	struct maskset_shadow *shadows;
	size_t n_shadows;
};

/*
 * The catalog query for the rule's masks by column (malloc'd, NUL-terminated), or
 * NULL when the rule has no masks or memory is short (*err set to -ENOMEM then).
 * A rule with name patterns only still looks up the views over the statistics. prev (or NULL): the session's last resolution, whose
 * columns are looked for again by OID, under whatever names they have now. The
 * answer also names every view over the planner's statistics.
 */
char *maskset_query(const struct policy_rule *r, const struct maskset *prev, int *err);

/*
 * Takes one row of the query's answer (its one text column, json[0..len)). 0, or
 * -EINVAL for a row that is not what the query returns, -E2BIG past the limits.
 */
int maskset_add_row(struct maskset *m, const struct policy_rule *r, const char *json, size_t len);

/* After the last row: traces masked columns through the views. 0 or -errno. */
int maskset_finish(struct maskset *m, const struct policy_rule *r);

/* The index of the mask on column att of relation rel, or -1. */
int maskset_find(const struct maskset *m, uint32_t rel, int16_t att);

/*
 * Whether statements classified as c would move a column the rule masks out unseen,
 * or read the planner's statistics (pg_stats and views over it: they show masked
 * columns' values). 0: no; 1: yes, and why says which mask and how (for a 42501
 * denial).
 */
int maskset_leak(const struct maskset *m, const struct policy_rule *r, const struct sqlclass_result *c, char *why,
		 size_t cap);

/* Whether statements classified as c name a relation with a masked column (any
 * relation, when the rule has a column_name mask) or call a function that is not
 * built in (or may resolve to one outside pg_catalog): what the server says to them
 * is withheld from a masked session. */
bool maskset_touches(const struct maskset *m, const struct policy_rule *r, const struct sqlclass_result *c);

/* Forgets what was resolved (a new resolution starts from empty). */
void maskset_reset(struct maskset *m);

void maskset_release(struct maskset *m);

#endif
