/*
 * Unqualified table names resolved as the server resolves them: the statement's
 * names from its parse tree, the catalog query that asks the session's own
 * connection for its search_path and the relations of those names, and the table
 * verdict on the answer (see searchpath.h for the reasoning).
 */
#include "searchpath.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pgtree.h"
#include "pgwire.h"

/* ---- what a statement names ------------------------------------------------------ */

struct sp_walk {
	struct searchpath_scan *sc;
	unsigned stmt;
	int err;
};

static const char *sp_sval(struct pgtree *string_node)
{
	return pgtree_str(pgtree_get(pgtree_get(string_node, "String"), "sval"));
}

static void sp_add(struct sp_walk *w, const char *schema, const char *name, enum searchpath_how how, bool later)
{
	struct searchpath_scan *sc = w->sc;
	struct searchpath_ref *f;

	if (!name)
		return;
	if (strlen(name) >= SEARCHPATH_NAME || (schema && strlen(schema) >= SEARCHPATH_NAME)) {
		/* the server cuts such a name to 63 bytes: not what the rule would be asked */
		w->err = -ENAMETOOLONG;
		return;
	}
	for (size_t i = 0; i < sc->n_refs; i++) {
		f = &sc->refs[i];
		if (f->stmt == w->stmt && f->how == how && f->later == later && !strcmp(f->name, name) &&
		    !strcmp(f->schema, schema ? schema : ""))
			return;
	}
	if (sc->n_refs == SEARCHPATH_MAX_REFS) {
		w->err = -E2BIG;
		return;
	}
	f = &sc->refs[sc->n_refs++];
	snprintf(f->schema, sizeof(f->schema), "%s", schema ? schema : "");
	snprintf(f->name, sizeof(f->name), "%s", name);
	f->stmt = w->stmt;
	f->how = how;
	f->later = later;
	if (!schema)
		sc->n_unqualified++;
}

/* Where a RangeVar (found as the value of key inside an object found as parent)
 * names the relation a statement creates. */
static bool sp_creates(const char *parent, const char *key)
{
	return (!strcmp(key, "relation") && (!strcmp(parent, "CreateStmt") || !strcmp(parent, "base"))) ||
	       (!strcmp(key, "rel") && (!strcmp(parent, "intoClause") || !strcmp(parent, "into"))) ||
	       (!strcmp(key, "view") && !strcmp(parent, "ViewStmt")) ||
	       (!strcmp(key, "sequence") && !strcmp(parent, "CreateSeqStmt")) ||
	       (!strcmp(key, "typevar") && !strcmp(parent, "CompositeTypeStmt"));
}

/* The same objects sqlclass lists as tables (every object with a relname, and the
 * name lists of DROP), so every unqualified name it lists has a ref here. */
static void sp_visit(struct sp_walk *w, struct pgtree *node, const char *key, const char *parent, bool later)
{
	const char *k;
	struct pgtree *v;
	size_t i;

	if (pgtree_is_array(node)) {
		pgtree_foreach(node, i, v)
			sp_visit(w, v, key, parent, later);
		return;
	}
	if (!pgtree_is_object(node))
		return;
	if (pgtree_is_string(pgtree_get(node, "relname"))) {
		const char *schema = pgtree_str(pgtree_get(node, "schemaname"));
		const char *pers = pgtree_str(pgtree_get(node, "relpersistence"));
		enum searchpath_how how = SEARCHPATH_FIND;

		if (sp_creates(parent, key))
			how = pers && !strcmp(pers, "t") ? SEARCHPATH_CREATE_TEMP : SEARCHPATH_CREATE;
		sp_add(w, schema, pgtree_str(pgtree_get(node, "relname")), how, later);
	}
	if (!strcmp(key, "DropStmt")) {
		const char *t = pgtree_str(pgtree_get(node, "removeType"));
		struct pgtree *obj;

		if (t && (!strcmp(t, "OBJECT_TABLE") || !strcmp(t, "OBJECT_VIEW") || !strcmp(t, "OBJECT_MATVIEW") ||
			  !strcmp(t, "OBJECT_FOREIGN_TABLE") || !strcmp(t, "OBJECT_SEQUENCE")))
			pgtree_foreach(pgtree_get(node, "objects"), i, obj) {
				struct pgtree *items = pgtree_get(pgtree_get(obj, "List"), "items");
				size_t n = pgtree_size(items);

				if (n >= 1 && sp_sval(pgtree_at(items, n - 1)))
					sp_add(w, n >= 2 ? sp_sval(pgtree_at(items, n - 2)) : NULL,
					       sp_sval(pgtree_at(items, n - 1)), SEARCHPATH_FIND, later);
			}
	}
	pgtree_foreach_member(node, i, k, v)
		sp_visit(w, v, k, key, later || !strcmp(k, "PrepareStmt"));
}

/* BEGIN, or SET search_path to constants (each the schema name exactly: the server
 * quotes every item before it splits the list again), or unknown. */
static void sp_effect(const char *type, struct pgtree *st, struct searchpath_stmt *out)
{
	const char *kind = pgtree_str(pgtree_get(st, "kind"));
	const char *name = pgtree_str(pgtree_get(st, "name"));
	struct pgtree *args = pgtree_get(st, "args"), *a;
	size_t i;

	out->effect = SEARCHPATH_UNKNOWN;
	if (!strcmp(type, "TransactionStmt")) {
		if (kind && (!strcmp(kind, "TRANS_STMT_BEGIN") || !strcmp(kind, "TRANS_STMT_START")))
			out->effect = SEARCHPATH_NONE;
		return;
	}
	if (strcmp(type, "VariableSetStmt") || !kind || strcmp(kind, "VAR_SET_VALUE") || !name ||
	    strcasecmp(name, "search_path") || pgtree_size(args) == 0 ||
	    pgtree_size(args) > SEARCHPATH_MAX_SCHEMAS)
		return;
	pgtree_foreach(args, i, a) {
		const char *s = pgtree_str(pgtree_get(pgtree_get(pgtree_get(a, "A_Const"), "sval"), "sval"));

		if (!s || !s[0] || strlen(s) >= SEARCHPATH_NAME)
			return; /* a number, '' (an error on the server), a name it would cut */
		snprintf(out->path[i], sizeof(out->path[i]), "%s", s);
	}
	out->n_path = pgtree_size(args);
	out->effect = SEARCHPATH_SETS;
}

int searchpath_scan(const char *sql, struct searchpath_scan *ret)
{
	struct sp_walk w = { ret, 0, 0 };
	struct pgtree_doc *doc;
	struct pgtree *root, *stmts, *st;
	size_t i;

	memset(ret, 0, sizeof(*ret));
	if (!(doc = sqlclass_parse_tree(sql)))
		return -EINVAL;
	root = pgtree_doc_root(doc);
	stmts = pgtree_get(root, "stmts");
	ret->stmts = calloc(pgtree_size(stmts) + 1, sizeof(*ret->stmts));
	if (!ret->stmts) {
		pgtree_doc_free(doc);
		return -ENOMEM;
	}
	pgtree_foreach(stmts, i, st) {
		struct pgtree *node = pgtree_get(st, "stmt");
		const char *type = pgtree_is_object(node) ? pgtree_type(node) : NULL;

		w.stmt = (unsigned)i;
		if (type) {
			sp_effect(type, pgtree_get(node, type), &ret->stmts[i]);
			sp_visit(&w, node, "", "", false);
		} else {
			ret->stmts[i].effect = SEARCHPATH_UNKNOWN;
		}
		ret->n_stmts = i + 1;
	}
	pgtree_doc_free(doc);
	return w.err;
}

void searchpath_scan_release(struct searchpath_scan *sc)
{
	free(sc->stmts);
	sc->stmts = NULL;
	sc->n_stmts = sc->n_refs = sc->n_unqualified = 0;
}

/* ---- the question to the server ------------------------------------------------ */

#define SP_EQ " OPERATOR(pg_catalog.=) "

/* Everything qualified: the session's search_path is what is asked about, and a
 * schema of the workload's could otherwise put its own unnest() or = first. */
static const char sp_query_head[] =
	"SELECT q.k, q.v, q.w FROM (\n"
	" SELECT 1 AS o, p.i AS i, 'p'::pg_catalog.text AS k, p.s::pg_catalog.text AS v, NULL::pg_catalog.text AS w\n"
	"  FROM pg_catalog.unnest(pg_catalog.current_schemas(true)) WITH ORDINALITY AS p(s, i)\n"
	" UNION ALL SELECT 2, 0, 'c', (pg_catalog.current_schemas(false))[1]::pg_catalog.text, NULL\n"
	" UNION ALL SELECT 3, 0, 't', (SELECT t.nspname::pg_catalog.text FROM pg_catalog.pg_namespace t\n"
	"  WHERE t.oid" SP_EQ "pg_catalog.pg_my_temp_schema()), NULL\n"
	" UNION ALL SELECT 4, 0, 'u', CURRENT_USER::pg_catalog.text, NULL\n"
	" UNION ALL SELECT 5, 0, CASE WHEN pg_catalog.has_schema_privilege(n.oid, 'USAGE') THEN 'r' ELSE 'x' END,\n"
	"  n.nspname::pg_catalog.text, c.relname::pg_catalog.text\n"
	"  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid" SP_EQ "c.relnamespace\n"
	"  WHERE NOT pg_catalog.pg_is_other_temp_schema(n.oid) AND c.relname" SP_EQ "ANY ($1::pg_catalog.name[])\n"
	") q ORDER BY q.o, q.i";

/* A message of type t with body[0..n) at out (room checked by the caller). */
static size_t sp_msg(uint8_t *out, char t, const void *body, size_t n)
{
	out[0] = (uint8_t)t;
	pgwire_put32(out + 1, (uint32_t)(4 + n));
	if (n)
		memcpy(out + PGWIRE_HEADER, body, n);
	return PGWIRE_HEADER + n;
}

uint8_t *searchpath_request(const struct searchpath_scan *sc, bool with_parse, size_t *ret_len, int *err)
{
	static const char stmt[] = SEARCHPATH_STATEMENT, portal[] = SEARCHPATH_PORTAL;
	/* the names as a name[] literal, {"a","b\"c"}: a parameter, so nothing in them
	 * is SQL, whatever standard_conforming_strings is */
	size_t cap = 256 + sizeof(sp_query_head) + 3 * sizeof(stmt) + 4 * sizeof(portal) +
		     sc->n_refs * (2 * SEARCHPATH_NAME + 4);
	uint8_t *out = malloc(cap), *body = malloc(cap);
	size_t n = 0, b = 0, arr, listed = 0;

	if (!out || !body) {
		free(out);
		free(body);
		*err = -ENOMEM;
		return NULL;
	}
	if (with_parse) {
		/* closing a statement that does not exist is no error: whatever the
		 * client did with its prepared statements, this Parse succeeds */
		body[0] = 'S';
		memcpy(body + 1, stmt, sizeof(stmt));
		n += sp_msg(out + n, 'C', body, 1 + sizeof(stmt));
		memcpy(body, stmt, sizeof(stmt));
		memcpy(body + sizeof(stmt), sp_query_head, sizeof(sp_query_head));
		b = sizeof(stmt) + sizeof(sp_query_head);
		body[b++] = 0;
		body[b++] = 0; /* no parameter types: $1 is cast */
		n += sp_msg(out + n, 'P', body, b);
	}
	/* a portal (or a cursor, DECLARE ... WITH HOLD) the client left under the name
	 * would make the Bind fail */
	body[0] = 'P';
	memcpy(body + 1, portal, sizeof(portal));
	n += sp_msg(out + n, 'C', body, 1 + sizeof(portal));
	b = 0;
	memcpy(body + b, portal, sizeof(portal));
	b += sizeof(portal);
	memcpy(body + b, stmt, sizeof(stmt));
	b += sizeof(stmt);
	body[b++] = 0;
	body[b++] = 0; /* parameters in text */
	body[b++] = 0;
	body[b++] = 1;
	arr = b;
	b += 4;
	body[b++] = '{';
	for (size_t i = 0; i < sc->n_refs; i++) {
		bool dup = false;

		for (size_t k = 0; k < i && !dup; k++)
			dup = !strcmp(sc->refs[k].name, sc->refs[i].name);
		if (dup)
			continue;
		if (listed++)
			body[b++] = ',';
		body[b++] = '"';
		for (const char *p = sc->refs[i].name; *p; p++) {
			if (*p == '"' || *p == '\\')
				body[b++] = '\\';
			body[b++] = (uint8_t)*p;
		}
		body[b++] = '"';
	}
	body[b++] = '}';
	pgwire_put32(body + arr, (uint32_t)(b - arr - 4));
	body[b++] = 0;
	body[b++] = 0; /* results in text */
	n += sp_msg(out + n, 'B', body, b);
	b = 0;
	memcpy(body, portal, sizeof(portal));
	b = sizeof(portal);
	memset(body + b, 0, 4); /* every row */
	n += sp_msg(out + n, 'E', body, b + 4);
	body[0] = 'P';
	memcpy(body + 1, portal, sizeof(portal));
	n += sp_msg(out + n, 'C', body, 1 + sizeof(portal)); /* an open transaction would keep it */
	n += sp_msg(out + n, 'S', NULL, 0);
	free(body);
	*ret_len = n;
	return out;
}

/* ---- the answer -------------------------------------------------------------------- */

/* Field i of a DataRow body: *ret NULL for SQL NULL. 0 or -EBADMSG. */
static int sp_field(const uint8_t *body, size_t len, size_t *pos, char **ret)
{
	uint32_t flen;

	if (len - *pos < 4)
		return -EBADMSG;
	flen = pgwire_get32(body + *pos);
	*pos += 4;
	*ret = NULL;
	if (flen == UINT32_MAX)
		return 0;
	if (flen > len - *pos || flen >= SEARCHPATH_NAME * 4 || memchr(body + *pos, 0, flen))
		return -EBADMSG;
	if (!(*ret = strndup((const char *)body + *pos, flen)))
		return -ENOMEM;
	*pos += flen;
	return 0;
}

int searchpath_add_row(struct searchpath_state *st, const uint8_t *body, size_t len)
{
	char *k = NULL, *v = NULL, *w = NULL;
	size_t pos = 2;
	int rc;

	if (len < 2 || ((body[0] << 8) | body[1]) != 3)
		return -EBADMSG;
	if ((rc = sp_field(body, len, &pos, &k)) < 0 || (rc = sp_field(body, len, &pos, &v)) < 0 ||
	    (rc = sp_field(body, len, &pos, &w)) < 0)
		goto out;
	rc = -EBADMSG;
	if (!k || strlen(k) != 1)
		goto out;
	switch (k[0]) {
	case 'p':
		if (!v)
			goto out;
		if (st->n_path == SEARCHPATH_MAX_SCHEMAS) {
			st->path_cut = true;
			break;
		}
		st->path[st->n_path++] = v, v = NULL;
		break;
	case 'c':
		free(st->creation);
		st->creation = v, v = NULL;
		break;
	case 't':
		free(st->temp);
		st->temp = v, v = NULL;
		break;
	case 'u':
		free(st->user);
		st->user = v, v = NULL;
		break;
	case 'r':
	case 'x':
		if (!v || !w)
			goto out;
		if (st->n_rels == SEARCHPATH_MAX_RELS) {
			st->rels_cut = true;
			break;
		}
		st->rels[st->n_rels].schema = v, v = NULL;
		st->rels[st->n_rels].name = w, w = NULL;
		st->rels[st->n_rels++].usable = k[0] == 'r';
		break;
	default:
		goto out;
	}
	rc = 0;
out:
	free(k);
	free(v);
	free(w);
	return rc;
}

void searchpath_state_release(struct searchpath_state *st)
{
	for (size_t i = 0; i < st->n_path; i++)
		free(st->path[i]);
	for (size_t i = 0; i < st->n_rels; i++) {
		free(st->rels[i].schema);
		free(st->rels[i].name);
	}
	free(st->creation);
	free(st->temp);
	free(st->user);
	memset(st, 0, sizeof(*st));
}

/* ---- the verdict ------------------------------------------------------------------- */

bool searchpath_needed(const struct policy_rule *r, const struct sqlclass_result *c)
{
	return (r && r->statements.set && (r->statements.n_tables_allow || r->statements.n_tables_deny) && c->n_tables) ||
	       c->settings_row[0];
}

static bool sp_rel(const struct searchpath_state *st, const char *schema, const char *name, bool need_usable)
{
	for (size_t i = 0; i < st->n_rels; i++)
		if (!strcmp(st->rels[i].schema, schema) && !strcmp(st->rels[i].name, name))
			return !need_usable || st->rels[i].usable;
	return false;
}

/* The schema as the rules name it: the session's temporary schema is pg_temp. */
static const char *sp_rule_schema(const struct searchpath_state *st, const char *schema)
{
	return st->temp && !strcmp(schema, st->temp) ? "pg_temp" : schema;
}

/* The effective path after a SET search_path of the constants in set: the
 * temporary schema first unless listed, pg_catalog first unless listed, then the
 * listed ones ("$user" is current_user's schema, "pg_temp" the session's own).
 * Names go into out (pointers into set and st). Whether a listed schema exists and
 * may be used is left to the relations found in it. */
/* Whether the statements before ref's leave the path known (BEGIN, SET search_path to
 * constants), and the last such SET in *set (NULL: the session's path). */
static bool sp_known_before(const struct searchpath_scan *sc, const struct searchpath_ref *f,
			    const struct searchpath_stmt **set)
{
	for (size_t k = 0; k < f->stmt && k < sc->n_stmts; k++) {
		if (sc->stmts[k].effect == SEARCHPATH_UNKNOWN)
			return false;
		if (sc->stmts[k].effect == SEARCHPATH_SETS)
			*set = &sc->stmts[k];
	}
	return true;
}

static size_t sp_model_path(const struct searchpath_state *st, const struct searchpath_stmt *set,
			    const char *out[SEARCHPATH_MAX_SCHEMAS + 2])
{
	bool temp_listed = false, catalog_listed = false;
	size_t n = 0;

	for (size_t i = 0; i < set->n_path; i++) {
		const char *s = set->path[i];

		temp_listed |= !strcmp(s, "pg_temp") || (st->temp && !strcmp(s, st->temp));
		catalog_listed |= !strcmp(s, "pg_catalog");
	}
	if (st->temp && !temp_listed)
		out[n++] = st->temp;
	if (!catalog_listed)
		out[n++] = "pg_catalog";
	for (size_t i = 0; i < set->n_path; i++) {
		const char *s = set->path[i];

		if (!strcmp(s, "$user"))
			s = st->user;
		else if (!strcmp(s, "pg_temp"))
			s = st->temp;
		if (s)
			out[n++] = s;
	}
	return n;
}

/* One candidate S.N against the rule: 0 when allowed, else why is set. */
static int sp_try(const struct policy_rule *r, const struct searchpath_state *st, const char *schema,
		  const char *name, char *reason, size_t rcap)
{
	char q[2 * SEARCHPATH_NAME + 2];

	snprintf(q, sizeof(q), "%s.%s", sp_rule_schema(st, schema), name);
	return policy_table_verdict(r, q, reason, rcap) == POLICY_DENY ? -1 : 0;
}

/*
 * sqlclass_settings_row's statement sets the setting it names only when its
 * unqualified pg_settings is pg_catalog's and its = is pg_catalog's: on the path the
 * server reported, pg_catalog comes before every schema but the session's temporary
 * one (which is never searched for operators or functions), and that one has no
 * relation named pg_settings. Else a relation of the workload's (or an = that is
 * always true) could feed set_config any name, a pgtether.* one among them.
 */
static enum policy_verdict sp_settings_row(const struct policy_rule *r, const struct searchpath_scan *sc,
					   const struct searchpath_state *st, bool prepared, const char *unknown_why, char *why, size_t cap)
{
	size_t seen = 0;

	for (size_t i = 0; i < sc->n_refs; i++) {
		const struct searchpath_ref *f = &sc->refs[i];
		const struct searchpath_stmt *set = NULL;
		const char *path[SEARCHPATH_MAX_SCHEMAS + 2];
		size_t n_path = 0;
		bool exact = !prepared && !f->later, catalog = false;

		if (f->schema[0] || strcmp(f->name, "pg_settings"))
			continue;
		seen++;
		if (!st) {
			snprintf(why, cap, "set_config(name, ...) FROM pg_settings sets the setting of the row only if pg_settings and = are pg_catalog's, and %s, so rule '%s' cannot let it run",
				 unknown_why, r ? r->name : "?");
			return POLICY_DENY;
		}
		if (exact)
			exact = sp_known_before(sc, f, &set);
		if (!exact) {
			snprintf(why, cap, "set_config(name, ...) FROM pg_settings sets the setting of the row only if pg_settings and = are pg_catalog's, which pgtether can make sure of only for a simple Query's first statement (%s)",
				 prepared ? "this is a prepared statement" : "an earlier statement of this query may change the search_path");
			return POLICY_DENY;
		}
		if (set)
			n_path = sp_model_path(st, set, path);
		else
			for (size_t k = 0; k < st->n_path; k++)
				path[n_path++] = st->path[k];
		for (size_t k = 0; k < n_path && !catalog; k++) {
			if (!strcmp(path[k], "pg_catalog")) {
				catalog = true;
			} else if (!st->temp || strcmp(path[k], st->temp) || st->rels_cut || sp_rel(st, path[k], "pg_settings", false)) {
				snprintf(why, cap, "set_config(name, ...) FROM pg_settings would not read pg_catalog's pg_settings with pg_catalog's = (schema %s comes first on this session's search_path), so it could set any setting, pgtether.* among them",
					 sp_rule_schema(st, path[k]));
				return POLICY_DENY;
			}
		}
		if (!catalog) {
			snprintf(why, cap, "set_config(name, ...) FROM pg_settings: pg_catalog is not on the search_path the server reported, so it cannot be made sure of");
			return POLICY_DENY;
		}
	}
	if (!seen) {
		snprintf(why, cap, "set_config(name, ...) FROM pg_settings cannot be resolved on this session's search_path, so it is denied");
		return POLICY_DENY;
	}
	return POLICY_ALLOW;
}

enum policy_verdict searchpath_check(const struct policy_rule *r, const struct sqlclass_result *c,
				     const struct searchpath_scan *sc, const struct searchpath_state *st,
				     bool prepared, const char *unknown_why, char *why, size_t cap)
{
	char reason[300];

	if (c->settings_row[0] && sp_settings_row(r, sc, st, prepared, unknown_why, why, cap) == POLICY_DENY)
		return POLICY_DENY;
	if (!r || !r->statements.set || (!r->statements.n_tables_allow && !r->statements.n_tables_deny))
		return POLICY_ALLOW; /* only here for the settings row */

	/* every unqualified name sqlclass saw must be one this scan resolves */
	for (size_t i = 0; i < c->n_tables; i++) {
		bool found = strchr(c->tables[i], '.') != NULL;

		for (size_t k = 0; k < sc->n_refs && !found; k++)
			found = !sc->refs[k].schema[0] && !strcmp(sc->refs[k].name, c->tables[i]);
		if (!found) {
			snprintf(why, cap, "table %s names no schema and cannot be resolved on this session's search_path, so rule '%s' cannot decide it; qualify the table name",
				 c->tables[i], r->name);
			return POLICY_DENY;
		}
	}
	/* "public.x".y and "public.secrets" read as public.x.y and public.secrets to a
	 * glob, but are schema "public.x" and a relation of the search_path */
	for (size_t i = 0; i < sc->n_refs; i++)
		if (strchr(sc->refs[i].schema, '.') || strchr(sc->refs[i].name, '.')) {
			snprintf(why, cap, "a schema or table name with a dot in it (%s%s\"%s\") cannot be told from a qualified name, so rule '%s' cannot decide it",
				 sc->refs[i].schema[0] ? sc->refs[i].schema : "", sc->refs[i].schema[0] ? "." : "", sc->refs[i].name, r->name);
			return POLICY_DENY;
		}
	for (size_t i = 0; i < sc->n_refs; i++) {
		const struct searchpath_ref *f = &sc->refs[i];
		const struct searchpath_stmt *set = NULL;
		const char *path[SEARCHPATH_MAX_SCHEMAS + 2];
		size_t n_path = 0;
		bool exact = !prepared && !f->later;
		const char *first = NULL;

		if (f->schema[0])
			continue; /* policy_statement_verdict's */
		if (!st) {
			snprintf(why, cap, "table %s names no schema and rule '%s' has table rules, but %s; qualify the table name",
				 f->name, r->name, unknown_why);
			return POLICY_DENY;
		}
		if (exact)
			exact = sp_known_before(sc, f, &set);
		if (f->how == SEARCHPATH_CREATE_TEMP) {
			if (sp_try(r, st, "pg_temp", f->name, reason, sizeof(reason)) < 0)
				goto denied_create;
			continue;
		}
		if (exact && st->path_cut)
			exact = false;
		if (exact && set) {
			n_path = sp_model_path(st, set, path);
		} else if (exact) {
			for (size_t k = 0; k < st->n_path; k++)
				path[n_path++] = st->path[k];
		}
		if (f->how == SEARCHPATH_CREATE) {
			/* where CREATE puts it: known only on the path the server reported */
			if (!exact || set || !st->creation) {
				snprintf(why, cap, "table %s names no schema, and where it would be created cannot be known for certain (%s), so rule '%s' cannot decide it; qualify the table name",
					 f->name, prepared ? "a prepared statement runs on the search_path of when it is executed" :
					 !exact ? "an earlier statement of this query may change the search_path" :
					 set ? "this query sets the search_path first" : "no schema on the search_path can take it",
					 r->name);
				return POLICY_DENY;
			}
			if (sp_try(r, st, st->creation, f->name, reason, sizeof(reason)) < 0)
				goto denied_create;
			continue;
		}
		if (st->rels_cut) {
			snprintf(why, cap, "table %s names no schema, and more relations of the names asked for exist than pgtether keeps (%d), so rule '%s' cannot decide it; qualify the table name",
				 f->name, SEARCHPATH_MAX_RELS, r->name);
			return POLICY_DENY;
		}
		if (exact) {
			/* the relation found, and every one behind it: a relation the workload
			 * owns can vanish before the statement, and the name then reaches the
			 * next one */
			for (size_t k = 0; k < n_path; k++) {
				bool implicit = !strcmp(path[k], "pg_catalog") || (st->temp && !strcmp(path[k], st->temp));

				if (!sp_rel(st, path[k], f->name, !implicit))
					continue;
				if (!first)
					first = path[k];
				if (sp_try(r, st, path[k], f->name, reason, sizeof(reason)) < 0) {
					if (first == path[k])
						snprintf(why, cap, "table %s resolves to %s.%s on this session's search_path, and %s",
							 f->name, sp_rule_schema(st, first), f->name, reason);
					else
						snprintf(why, cap, "table %s resolves to %s.%s on this session's search_path, but %s.%s comes after it should that one go, and %s; qualify the table name",
							 f->name, sp_rule_schema(st, first), f->name, sp_rule_schema(st, path[k]), f->name, reason);
					return POLICY_DENY;
				}
			}
		} else {
			/* whatever the path is by then: every relation of that name, and
			 * those the same text creates */
			for (size_t k = 0; k < st->n_rels; k++) {
				if (strcmp(st->rels[k].name, f->name))
					continue;
				if (!first)
					first = st->rels[k].schema;
				if (sp_try(r, st, st->rels[k].schema, f->name, reason, sizeof(reason)) < 0)
					goto denied_any;
			}
			for (size_t k = 0; k < sc->n_refs; k++) {
				const struct searchpath_ref *g = &sc->refs[k];
				const char *schema = g->how == SEARCHPATH_CREATE_TEMP ? "pg_temp" : g->schema;

				if (g->how == SEARCHPATH_FIND || g->stmt >= f->stmt || !schema[0] || strcmp(g->name, f->name))
					continue;
				if (!first)
					first = schema;
				if (sp_try(r, st, schema, f->name, reason, sizeof(reason)) < 0)
					goto denied_any;
			}
		}
		if (!first) {
			/* no relation of that name (a CTE's, or none: the server will say so) */
			if (!st->creation) {
				snprintf(why, cap, "table %s names no schema, no relation has that name, and no schema on this session's search_path could take it, so rule '%s' cannot decide it; qualify the table name",
					 f->name, r->name);
				return POLICY_DENY;
			}
			if (sp_try(r, st, st->creation, f->name, reason, sizeof(reason)) < 0)
				goto denied_create;
		}
		continue;
denied_create:
		snprintf(why, cap, "table %s names no schema and is taken as in the schema it would be created in, and %s", f->name, reason);
		return POLICY_DENY;
denied_any:
		snprintf(why, cap, "table %s names no schema and may reach another schema's relation of that name by the time it runs (%s), and %s; qualify the table name",
			 f->name, prepared ? "a prepared statement is resolved when it is executed" :
			 f->later ? "PREPARE: resolved when it is executed" :
			 "an earlier statement of this query may change the search_path", reason);
		return POLICY_DENY;
	}
	return POLICY_ALLOW;
}
