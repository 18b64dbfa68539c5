/*
 * The settings guard and the client-only encoding check (see sqlguard.h).
 */
#include "sqlguard.h"

#include "sqlclass.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- the byte scan ------------------------------------------------------------ */

static bool sqlguard_ident_byte(unsigned char c)
{
	return isalnum(c) || c == '_' || c == '$' || c >= 0x80;
}

static uint8_t sqlguard_lower(uint8_t c)
{
	return c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c;
}

bool sqlguard_may_touch(const char *sql, size_t len)
{
	/* Every way to a setting names it, set_config or pg_settings (in any case, or
	 * through a U& escape, the only way an identifier's letters can be spelled
	 * otherwise), or is code created here: FUNCTION, PROCEDURE or DO. A string's
	 * escapes (E'\x70gtether...') only matter inside set_config(...) or a
	 * comparison on pg_settings, which name themselves. Cost: a look at each byte
	 * and the next, and a compare where both start a word below (about 2 ns a
	 * byte); it is what every Query and Parse of a rule without statements pays. */
	static const char *const words[] = {
		"pgtether", "pg_settings", "procedure", "set_config", "client_encoding", "names", "function",
		/* what sqlclass_query_function names: they build SQL from text */
		"_to_xml", "ts_stat", "ts_rewrite", "crosstab", "connectby", "xpath_table", NULL,
	};
	const uint8_t *s = (const uint8_t *)sql;

	for (size_t i = 0; i + 1 < len; i++) {
		uint8_t c = sqlguard_lower(s[i]), d = sqlguard_lower(s[i + 1]);

		switch (c) {
		case 'p': if (d != 'g' && d != 'r') continue; break;
		case 's': if (d != 'e') continue; break;
		case 'c': if (d != 'l' && d != 'r' && d != 'o') continue; break;
		case 'x': if (d != 'p') continue; break;
		case 'n': if (d != 'a') continue; break;
		case 'f': if (d != 'u') continue; break;
		case '_': if (d != 't') continue; break;
		case 't': if (d != 's') continue; break;
		case 'u':
			if (d == '&')
				return true;
			continue;
		case 'd':
			/* DO, as a word */
			if (d == 'o' && (i == 0 || !sqlguard_ident_byte(s[i - 1])) &&
			    (i + 2 == len || !sqlguard_ident_byte(s[i + 2])))
				return true;
			continue;
		default:
			continue;
		}
		for (const char *const *w = words; *w; w++) {
			size_t n = strlen(*w);

			if ((uint8_t)(*w)[0] == c && len - i >= n && strncasecmp(sql + i, *w, n) == 0)
				return true;
		}
	}
	return false;
}

/* ---- client-only encodings -------------------------------------------------- */

/*
 * PostgreSQL converts a client's bytes to the server encoding before it lexes them:
 * a character of the client encoding whose trailing byte is ASCII turns that byte
 * into part of a non-ASCII character, and the lexer never sees it. The lead and
 * trailing byte ranges below are those PostgreSQL's verifiers (src/common/wchar.c)
 * and conversion tables accept; what falls outside makes the server reject the whole
 * message, so a text invalid in an encoding cannot be read in it.
 */
struct sqlguard_enc {
	const char *name;
	uint8_t lead_lo, lead_hi, lead2_lo, lead2_hi; /* second lead range, or 0 */
	uint8_t single_lo, single_hi;                  /* high bytes that stand alone, or 0 */
	uint8_t trail[4][2];                           /* trailing byte ranges */
	bool four;                                     /* GB18030's lead, digit, lead, digit */
};

static const struct sqlguard_enc sqlguard_encs[] = {
	{ "SJIS", 0x81, 0x9f, 0xe0, 0xfc, 0xa1, 0xdf, { { 0x40, 0x7e }, { 0x80, 0xfc } }, false },
	{ "BIG5", 0x81, 0xfe, 0, 0, 0, 0, { { 0x40, 0x7e }, { 0xa1, 0xfe } }, false },
	{ "GBK", 0x81, 0xfe, 0, 0, 0, 0, { { 0x40, 0x7e }, { 0x80, 0xfe } }, false },
	{ "UHC", 0x81, 0xfe, 0, 0, 0, 0, { { 0x41, 0x5a }, { 0x61, 0x7a }, { 0x81, 0xfe } }, false },
	{ "GB18030", 0x81, 0xfe, 0, 0, 0, 0, { { 0x40, 0x7e }, { 0x80, 0xfe } }, true },
};

static bool sqlguard_in(uint8_t c, uint8_t lo, uint8_t hi)
{
	return lo && c >= lo && c <= hi;
}

/* An ASCII byte whose loss changes how the text lexes: not a letter, digit or '_',
 * which continue whatever a non-ASCII byte was part of (an identifier, a string,
 * a comment) in either reading. */
static bool sqlguard_significant(uint8_t c)
{
	return c < 0x80 && !isalnum(c) && c != '_';
}

/* Offset of the first significant ASCII byte taken by a character of e, or -1 when
 * none is; -2 when the text is not valid in e. */
static long sqlguard_taken(const struct sqlguard_enc *e, const uint8_t *s, size_t len)
{
	long taken = -1;
	size_t i = 0;

	while (i < len) {
		uint8_t c = s[i];
		bool trail_ok = false;

		if (c < 0x80 || sqlguard_in(c, e->single_lo, e->single_hi)) {
			i++;
			continue;
		}
		if (!sqlguard_in(c, e->lead_lo, e->lead_hi) && !sqlguard_in(c, e->lead2_lo, e->lead2_hi))
			return -2;
		if (e->four && i + 3 < len && s[i + 1] >= 0x30 && s[i + 1] <= 0x39) {
			if (s[i + 2] < 0x81 || s[i + 2] == 0xff || s[i + 3] < 0x30 || s[i + 3] > 0x39)
				return -2;
			i += 4; /* its ASCII bytes are digits: they change nothing */
			continue;
		}
		if (i + 1 >= len)
			return -2;
		for (size_t k = 0; k < 4; k++)
			trail_ok |= sqlguard_in(s[i + 1], e->trail[k][0], e->trail[k][1]);
		if (!trail_ok)
			return -2;
		if (taken < 0 && sqlguard_significant(s[i + 1]))
			taken = (long)(i + 1);
		i += 2;
	}
	return taken;
}

int sqlguard_encoding(const char *sql, size_t len, char *why, size_t cap)
{
	const uint8_t *s = (const uint8_t *)sql;
	size_t i = 0;

	while (i < len && s[i] < 0x80)
		i++;
	if (i == len)
		return 0; /* ASCII reads the same in every encoding PostgreSQL has */
	for (size_t k = 0; k < sizeof(sqlguard_encs) / sizeof(sqlguard_encs[0]); k++) {
		long at = sqlguard_taken(&sqlguard_encs[k], s, len);

		if (at >= 0) {
			snprintf(why, cap,
				 "its bytes read differently in client_encoding %s (a multi-byte character there takes the '%c' at byte %ld), and pgtether cannot rule out a change of client_encoding ahead of it",
				 sqlguard_encs[k].name, s[at], at + 1);
			return -EILSEQ;
		}
	}
	return 0;
}

/* ---- the tree ---------------------------------------------------------------- */

/* PL/pgSQL code reaches a setting only through SQL that names it (what
 * sqlguard_may_touch looks for) or through a dynamic EXECUTE: code with neither is
 * not parsed at all. That also keeps libpg_query's PL/pgSQL parser, which leaks a
 * byte for each record field assigned, away from ordinary functions. */
static bool sqlguard_pl_may_touch(const char *code)
{
	return sqlguard_may_touch(code, strlen(code)) || strcasestr(code, "execute");
}

struct sqlguard_walk {
	const char *sql;
	const unsigned *stmt_classes;
	unsigned cls;                   /* the current statement's */
	int depth;
	char *why;
	size_t cap;
	int hit;                        /* 1: refused; -ENOMEM */
	struct pgtree *row_call;        /* set_config of a sqlclass_settings_row statement */
	struct pgtree *row_rel;         /* and its pg_settings */
	const char *row_name;
};

static const char *sqlguard_sval(struct pgtree *string_node)
{
	return pgtree_str(pgtree_get(pgtree_get(string_node, "String"), "sval"));
}

__attribute__((format(printf, 2, 3)))
static void sqlguard_refuse(struct sqlguard_walk *g, const char *fmt, ...)
{
	va_list ap;

	if (g->hit)
		return;
	g->hit = 1;
	va_start(ap, fmt);
	vsnprintf(g->why, g->cap, fmt, ap);
	va_end(ap);
}

static bool sqlguard_is_pgtether(const char *name)
{
	return name && strncasecmp(name, "pgtether.", 9) == 0;
}

/* PostgreSQL's names for UTF8, compared as its clean_encoding_name does: letters
 * and digits only, any case. */
static bool sqlguard_is_utf8(const char *v)
{
	char clean[32];
	size_t n = 0;

	for (; v && *v && n + 1 < sizeof(clean); v++)
		if (isalnum((unsigned char)*v))
			clean[n++] = (char)tolower((unsigned char)*v);
	clean[n] = '\0';
	return v && !*v && (!strcmp(clean, "utf8") || !strcmp(clean, "unicode"));
}

/* A string constant, under any casts: its text, else NULL (computed). */
static const char *sqlguard_const_text(struct pgtree *node, bool *is_const)
{
	struct pgtree *c;

	while (pgtree_get(node, "TypeCast") || pgtree_get(node, "NamedArgExpr"))
		node = pgtree_get(pgtree_get(node, "TypeCast") ?: pgtree_get(node, "NamedArgExpr"), "arg");
	c = pgtree_get(node, "A_Const");
	*is_const = c != NULL;
	return pgtree_str(pgtree_get(pgtree_get(c, "sval"), "sval"));
}

/* Code the server runs later: a function body, a DO block, an EXECUTE string, a query
 * handed to query_to_xml. lenient: a text that does not parse is no query (a
 * ts_rewrite tsquery) rather than code that cannot be checked. */
static void sqlguard_nested(struct sqlguard_walk *g, const char *text, bool plpgsql_function, bool lenient)
{
	char why[SQLCLASS_ERR_LEN];
	int r;

	if (g->hit)
		return;
	if (g->depth + 1 > SQLGUARD_MAX_DEPTH) {
		sqlguard_refuse(g, "pgtether: its server-side code nests more than %d levels deep to be checked for pgtether.* settings", SQLGUARD_MAX_DEPTH);
		return;
	}
	r = sqlclass_guard_text(text, plpgsql_function, g->depth + 1, why, sizeof(why));
	if (r == -EINVAL && lenient)
		return;
	if (r == -EINVAL)
		sqlguard_refuse(g, "pgtether: server-side code in it does not parse, so it cannot be checked for pgtether.* settings");
	else if (r < 0)
		g->hit = r;
	else if (r > 0)
		sqlguard_refuse(g, "%s", why);
}

static void sqlguard_variable_set(struct sqlguard_walk *g, struct pgtree *v)
{
	const char *name = pgtree_str(pgtree_get(v, "name"));
	const char *kind = pgtree_str(pgtree_get(v, "kind"));

	if (sqlguard_is_pgtether(name)) {
		sqlguard_refuse(g, "pgtether: no statement may set or reset \"%s\": pgtether.* settings carry the identity pgtether gives this session", name);
		return;
	}
	if (name && !strcasecmp(name, "client_encoding") && kind && !strcmp(kind, "VAR_SET_VALUE")) {
		struct pgtree *args = pgtree_get(v, "args");
		bool is_const;
		const char *val = pgtree_size(args) == 1 ? sqlguard_const_text(pgtree_at(args, 0), &is_const) : NULL;

		if (!sqlguard_is_utf8(val))
			sqlguard_refuse(g, "pgtether: client_encoding can only be UTF8 through pgtether (it reads every statement as UTF8); \"%s\" is not",
					val ? val : "?");
	}
}

/* set_config(name, value, is_local), positional or named. */
static void sqlguard_set_config(struct sqlguard_walk *g, struct pgtree *args, const char *row_name)
{
	struct pgtree *name = pgtree_at(args, 0), *value = pgtree_at(args, 1), *a;
	const char *n, *val;
	bool is_const, val_const;
	size_t i;

	pgtree_foreach(args, i, a) {
		struct pgtree *na = pgtree_get(a, "NamedArgExpr");
		const char *an = pgtree_str(pgtree_get(na, "name"));

		if (!na)
			continue;
		if (an && !strcmp(an, "setting_name"))
			name = pgtree_get(na, "arg");
		else if (an && !strcmp(an, "new_value"))
			value = pgtree_get(na, "arg");
		else if (i == 0)
			name = NULL;
		if (i == 1 && an && strcmp(an, "new_value"))
			value = NULL;
	}
	/* pg_dump's set_config(name, ...) FROM pg_settings WHERE name = 'x' sets x, once
	 * the session has made sure pg_settings and = are pg_catalog's */
	n = row_name ? row_name : sqlguard_const_text(name, &is_const);
	if (!n) {
		sqlguard_refuse(g, "pgtether: set_config with a computed setting name is denied: it could set a pgtether.* setting");
		return;
	}
	if (sqlguard_is_pgtether(n)) {
		sqlguard_refuse(g, "pgtether: no statement may set \"%s\": pgtether.* settings carry the identity pgtether gives this session", n);
		return;
	}
	val = sqlguard_const_text(value, &val_const);
	if (!strcasecmp(n, "client_encoding") && !sqlguard_is_utf8(val))
		sqlguard_refuse(g, "pgtether: client_encoding can only be UTF8 through pgtether (it reads every statement as UTF8); \"%s\" is not",
				val ? val : "a computed value");
}

/* A constant handed to a function that builds SQL from it (query_to_xml's query,
 * xpath_table's criteria, crosstab's source): text that names nothing guarded cannot
 * reach a setting; other text must read as a statement or an expression that does not. */
static void sqlguard_fragment(struct sqlguard_walk *g, const char *text)
{
	char why[SQLCLASS_ERR_LEN];
	size_t n = strlen(text) + 8;
	char *sel;
	int r;

	if (g->hit || !sqlguard_may_touch(text, strlen(text)))
		return;
	if (g->depth + 1 > SQLGUARD_MAX_DEPTH) {
		sqlguard_refuse(g, "pgtether: its server-side code nests more than %d levels deep to be checked for pgtether.* settings", SQLGUARD_MAX_DEPTH);
		return;
	}
	r = sqlclass_guard_text(text, false, g->depth + 1, why, sizeof(why));
	if (r == -EINVAL) {
		if (!(sel = malloc(n))) {
			g->hit = -ENOMEM;
			return;
		}
		snprintf(sel, n, "SELECT %s", text);
		r = sqlclass_guard_text(sel, false, g->depth + 1, why, sizeof(why));
		free(sel);
	}
	if (r == 1)
		sqlguard_refuse(g, "%s", why);
	else if (r == -EINVAL)
		sqlguard_refuse(g, "pgtether: a function is given SQL text pgtether cannot read (\"%.60s\"), so it cannot be checked for pgtether.* settings", text);
	else if (r < 0)
		g->hit = r;
}

static bool sqlguard_member(void *arg, const char *key, struct pgtree *v);

/* sqlguard_member stops going deeper once something is refused. */
static void sqlguard_visit(struct sqlguard_walk *g, struct pgtree *node)
{
	if (!g->hit)
		sqlclass_visit(node, sqlguard_member, g);
}

static void sqlguard_function(struct sqlguard_walk *g, struct pgtree *v)
{
	struct pgtree *o, *fn = pgtree_get(v, "funcname");
	const char *lang = NULL, *last = sqlguard_sval(pgtree_at(fn, pgtree_size(fn) - 1));
	struct pgtree *as = NULL;
	size_t i;

	if (last && !strcasecmp(last, "current_setting")) {
		sqlguard_refuse(g, "pgtether: a function named %s would shadow how the database reads pgtether.identity", last);
		return;
	}
	pgtree_foreach(pgtree_get(v, "options"), i, o) {
		struct pgtree *d = pgtree_get(o, "DefElem");
		const char *name = pgtree_str(pgtree_get(d, "defname"));

		if (name && !strcmp(name, "language"))
			lang = sqlguard_sval(pgtree_get(d, "arg"));
		else if (name && !strcmp(name, "as"))
			as = pgtree_get(pgtree_get(d, "arg"), "List");
	}
	if (!as)
		return; /* a SQL-standard body (BEGIN ATOMIC, RETURN): it is in the tree */
	if (lang && !strcasecmp(lang, "sql")) {
		const char *body = sqlguard_sval(pgtree_at(pgtree_get(as, "items"), 0));

		if (body)
			sqlguard_nested(g, body, false, false);
	} else if (lang && !strcasecmp(lang, "plpgsql")) {
		/* PL/pgSQL needs the whole CREATE FUNCTION: its signature decides what
		 * the body may say (RETURN x, OUT parameters) */
		const char *body = sqlguard_sval(pgtree_at(pgtree_get(as, "items"), 0));

		if (!body || sqlguard_pl_may_touch(body))
			sqlguard_nested(g, g->sql, true, false);
	} else {
		sqlguard_refuse(g, "pgtether: it creates code in language \"%s\", which pgtether cannot check for pgtether.* settings",
				lang ? lang : "?");
	}
}

static void sqlguard_do(struct sqlguard_walk *g, struct pgtree *v)
{
	const char *code = NULL, *lang = "plpgsql";
	struct pgtree *a;
	size_t i;

	pgtree_foreach(pgtree_get(v, "args"), i, a) {
		struct pgtree *d = pgtree_get(a, "DefElem");
		const char *name = pgtree_str(pgtree_get(d, "defname"));

		if (name && !strcmp(name, "as"))
			code = sqlguard_sval(pgtree_get(d, "arg"));
		else if (name && !strcmp(name, "language"))
			lang = sqlguard_sval(pgtree_get(d, "arg"));
	}
	if (!lang || strcasecmp(lang, "plpgsql")) {
		sqlguard_refuse(g, "pgtether: a DO block in language \"%s\" cannot be checked for pgtether.* settings", lang ? lang : "?");
		return;
	}
	if (!code || !sqlguard_pl_may_touch(code))
		return;
	{
		/* as a function, so the PL/pgSQL parser reads it; a dollar tag the
		 * code does not contain */
		char tag[32];
		size_t n;
		char *fn;

		for (unsigned k = 0;; k++) {
			snprintf(tag, sizeof(tag), "$pgtether%u$", k);
			if (!strstr(code, tag))
				break;
		}
		n = strlen(code) + 2 * strlen(tag) + 96;
		if (!(fn = malloc(n))) {
			g->hit = -ENOMEM;
			return;
		}
		snprintf(fn, n, "CREATE FUNCTION pgtether_do() RETURNS void LANGUAGE plpgsql AS %s%s%s", tag, code, tag);
		sqlguard_nested(g, fn, true, false);
		free(fn);
	}
}

static bool sqlguard_member(void *arg, const char *key, struct pgtree *v)
{
	struct sqlguard_walk *g = arg;

	if (g->hit)
		return false;
	if (!strcmp(key, "VariableSetStmt") || !strcmp(key, "setstmt")) {
		/* setstmt: ALTER ROLE / DATABASE / SYSTEM ... SET */
		sqlguard_variable_set(g, v);
	} else if (!strcmp(key, "FuncCall")) {
		struct pgtree *fn = pgtree_get(v, "funcname"), *a;
		const char *name = sqlguard_sval(pgtree_at(fn, pgtree_size(fn) - 1));
		const char *key2;
		size_t i;

		if (name && !strcasecmp(name, "set_config"))
			sqlguard_set_config(g, pgtree_get(v, "args"), v == g->row_call ? g->row_name : NULL);
		if (sqlclass_query_function(name, pgtree_size(pgtree_get(v, "args"))))
			pgtree_foreach(pgtree_get(v, "args"), i, a) {
				bool is_const;
				const char *q = sqlguard_const_text(a, &is_const);

				if (!is_const)
					sqlguard_refuse(g, "pgtether: %s is given a computed argument, from which it builds SQL pgtether cannot check for pgtether.* settings", name);
				else if (q)
					sqlguard_fragment(g, q);
			}
		/* the name itself is checked here: a String "set_config" elsewhere is
		 * a reference that is not a call (an aggregate's sfunc, an operator) */
		pgtree_foreach_member(v, i, key2, a)
			if (strcmp(key2, "funcname"))
				sqlguard_visit(g, a);
		return false;
	} else if (!strcmp(key, "String")) {
		const char *s = pgtree_str(pgtree_get(v, "sval"));

		if (s && !strcasecmp(s, "set_config"))
			sqlguard_refuse(g, "pgtether: it refers to set_config other than in a call pgtether can check");
	} else if (pgtree_is_object(v) && pgtree_is_string(pgtree_get(v, "relname"))) {
		/* a RangeVar, named or as a statement's "relation" */
		const char *rel = pgtree_str(pgtree_get(v, "relname"));

		/* pg_settings' rules call set_config for UPDATE; a view over it passes
		 * that on */
		if (rel && !strcasecmp(rel, "pg_settings") && v != g->row_rel &&
		    (g->cls & ~(unsigned)(SQL_READ | SQL_COPY_OUT | SQL_UTILITY | SQL_TRANSACTION)))
			sqlguard_refuse(g, "pgtether: statements that write %s or build on it are denied: it sets settings, pgtether.* among them",
					"pg_settings");
	} else if (!strcmp(key, "CreateFunctionStmt")) {
		sqlguard_function(g, v);
	} else if (!strcmp(key, "DoStmt")) {
		sqlguard_do(g, v);
	}
	return true;
}

int sqlguard_tree(struct pgtree *root, const char *sql, const unsigned *stmt_classes, int depth, char *why, size_t cap)
{
	struct sqlguard_walk g = { sql, stmt_classes, 0, depth, why, cap, 0 };
	struct pgtree *st;
	size_t i;

	pgtree_foreach(pgtree_get(root, "stmts"), i, st) {
		g.cls = stmt_classes ? stmt_classes[i] : ~0u;
		g.row_call = g.row_rel = NULL;
		if (depth == 0) {
			/* a client's statement (the session makes sure of it before it runs;
			 * in server-side code the shape would run on a path nobody checks) */
			struct pgtree *sel = pgtree_get(pgtree_get(st, "stmt"), "SelectStmt");

			if (sel && (g.row_name = sqlclass_settings_row(sel, &g.row_call)))
				g.row_rel = pgtree_get(pgtree_at(pgtree_get(sel, "fromClause"), 0), "RangeVar");
			else
				g.row_call = NULL;
		}
		sqlguard_visit(&g, pgtree_get(st, "stmt"));
		if (g.hit)
			break;
	}
	return g.hit;
}

/* ---- PL/pgSQL ------------------------------------------------------------------- */

/* An expression of PL/pgSQL as a query: "SELECT 1", "x + 1", "x := x + 1",
 * "a[i] := v". The server runs each as SQL; NULL when it is none of these. */
static char *sqlguard_pl_query(const char *q, int form)
{
	size_t n = strlen(q) + 16;
	char *out = malloc(n);
	const char *p = q;

	if (!out)
		return NULL;
	if (form == 0) {
		snprintf(out, n, "%s", q);
	} else if (form == 1) {
		snprintf(out, n, "SELECT %s", q);
	} else {
		/* an assignment's target: a name with dots and subscripts, whose
		 * subscripts are expressions too */
		size_t o;

		while (*p && (sqlguard_ident_byte((unsigned char)*p) || *p == '.' || *p == '"' || *p == ' '))
			p++;
		o = (size_t)snprintf(out, n, "SELECT ");
		if (*p == '[') {
			/* a[i][j:k] := v → SELECT v, i, j, k */
			const char *assign = strstr(p, ":=");
			const char *eq = assign ? assign + 2 : strchr(p, '=');

			if (!eq) {
				free(out);
				return NULL;
			}
			o += (size_t)snprintf(out + o, n - o, "%s", eq + (assign ? 0 : 1));
			for (const char *s = p; s < (assign ? assign : eq); s++)
				if (o + 2 < n)
					out[o++] = (*s == '[' || *s == ']' || *s == ':') ? ',' : *s;
			out[o] = '\0';
			/* "v, , i, , j" → parse fails on empty items: squeeze them */
			for (char *s = out; (s = strstr(s, ",,")); )
				memmove(s, s + 1, strlen(s));
			o = strlen(out);
			while (o && (out[o - 1] == ',' || out[o - 1] == ' '))
				out[--o] = '\0';
			return out;
		}
		if (p[0] == ':' && p[1] == '=')
			p += 2;
		else if (p[0] == '=')
			p += 1;
		else {
			free(out);
			return NULL;
		}
		snprintf(out + o, n - o, "%s", p);
	}
	return out;
}

static void sqlguard_pl_expr(struct sqlguard_walk *g, json_t *expr, bool dynamic)
{
	const char *q = json_string_value(json_object_get(json_object_get(expr, "PLpgSQL_expr"), "query"));
	char why[SQLCLASS_ERR_LEN];
	int r = -EINVAL;

	if (!q || g->hit)
		return;
	for (int form = 0; form < 3 && r == -EINVAL; form++) {
		char *text = sqlguard_pl_query(q, form);

		if (!text)
			continue;
		r = sqlclass_guard_text(text, false, g->depth + 1, why, sizeof(why));
		if (r == 1)
			sqlguard_refuse(g, "%s", why);
		else if (r == -ENOMEM)
			g->hit = r;
		free(text);
	}
	if (r == -EINVAL) {
		sqlguard_refuse(g, "pgtether: PL/pgSQL expression \"%.60s\" cannot be read, so the code cannot be checked for pgtether.* settings", q);
		return;
	}
	if (dynamic && !g->hit) {
		/* EXECUTE <expr>: a constant is a statement to check, anything else a
		 * statement nobody can know before it runs */
		char *sel = sqlguard_pl_query(q, 1);
		const char *text = sel ? sqlclass_constant_select(sel) : NULL;

		if (!sel)
			g->hit = -ENOMEM;
		else if (!text)
			sqlguard_refuse(g, "pgtether: code that EXECUTEs a computed string is denied: pgtether cannot know it does not set pgtether.* settings (%.60s)", q);
		else
			sqlguard_nested(g, text, false, false);
		free((char *)text);
		free(sel);
	}
}

static void sqlguard_pl_visit(struct sqlguard_walk *g, json_t *node, bool dynamic)
{
	const char *key;
	json_t *v;
	size_t i;

	if (g->hit)
		return;
	if (json_is_object(node)) {
		json_object_foreach(node, key, v) {
			if (!strcmp(key, "PLpgSQL_expr")) {
				sqlguard_pl_expr(g, node, dynamic);
				continue;
			}
			if (!strcmp(key, "PLpgSQL_stmt_dynexecute") || !strcmp(key, "PLpgSQL_stmt_dynfors")) {
				json_t *m;
				const char *k2;

				json_object_foreach(v, k2, m)
					sqlguard_pl_visit(g, m, !strcmp(k2, "query"));
				continue;
			}
			sqlguard_pl_visit(g, v, !strcmp(key, "dynquery"));
		}
	} else if (json_is_array(node)) {
		json_array_foreach(node, i, v)
			sqlguard_pl_visit(g, v, false);
	}
}

int sqlguard_plpgsql(json_t *funcs, int depth, char *why, size_t cap)
{
	struct sqlguard_walk g = { NULL, NULL, ~0u, depth, why, cap, 0 };

	sqlguard_pl_visit(&g, funcs, false);
	return g.hit;
}
