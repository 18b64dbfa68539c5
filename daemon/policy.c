/*
 * Policy files: parsing with file:line:col errors, and matching (see policy.h).
 */
#include "policy.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfgsrc.h"
#include "jsonpos.h"


static int check_keys(struct jsonpos_src *s, json_t *obj, const char *ptr, const char *const *allowed,
		      const char *const *later)
{
	const char *key;
	json_t *v;
	char sub[400];

	json_object_foreach(obj, key, v) {
		const char *const *k;

		if (strncmp(key, "//", 2) == 0)
			continue;
		for (k = allowed; *k && strcmp(*k, key); k++)
			;
		if (*k)
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", ptr, key);
		for (k = later; later && *k; k++)
			if (strcmp(*k, key) == 0)
				return jsonpos_fail(s, sub, "'%s' is not supported by this version of pgtetherd yet: a rule that relies on it would not be enforced", key);
		return jsonpos_fail(s, sub, "unknown key '%s'", key);
	}
	return 0;
}

static int str(struct jsonpos_src *s, json_t *obj, const char *key, const char *ptr, char **ret)
{
	json_t *v = json_object_get(obj, key);
	char sub[400];

	if (!v)
		return 0;
	snprintf(sub, sizeof(sub), "%s/%s", ptr, key);
	if (!json_is_string(v) || json_string_length(v) == 0 || strlen(json_string_value(v)) != json_string_length(v))
		return jsonpos_fail(s, sub, "'%s' must be a non-empty string", key);
	*ret = strdup(json_string_value(v));
	return *ret ? 0 : -ENOMEM;
}

/* A list of class names into bits. */
static int class_list(struct jsonpos_src *s, json_t *arr, const char *ptr, const char *rule, unsigned *ret)
{
	char sub[440];
	json_t *v;
	size_t i;

	if (!json_is_array(arr))
		return jsonpos_fail(s, ptr, "rule '%s': a list of statement classes is expected", rule);
	json_array_foreach(arr, i, v) {
		unsigned bit = json_is_string(v) ? sqlclass_from_name(json_string_value(v)) : 0;

		snprintf(sub, sizeof(sub), "%s/%zu", ptr, i);
		if (!bit)
			return jsonpos_fail(s, sub, "rule '%s': unknown statement class; the classes are read, write, ddl, drop, truncate, alter_role, grant, copy_in, copy_out, copy_program, dynamic, session, transaction, utility, dangerous_function", rule);
		*ret |= bit;
	}
	return 0;
}

/* A list of schema.table globs. */
static int table_list(struct jsonpos_src *s, json_t *arr, const char *ptr, const char *rule, char **ret, size_t *n)
{
	json_t *v;
	size_t i;

	if (!json_is_array(arr) || json_array_size(arr) > POLICY_MAX_TABLES)
		return jsonpos_fail(s, ptr, "rule '%s': a list of up to %d table globs (schema.table) is expected", rule, POLICY_MAX_TABLES);
	json_array_foreach(arr, i, v) {
		char sub[440];

		snprintf(sub, sizeof(sub), "%s/%zu", ptr, i);
		if (!json_is_string(v) || json_string_length(v) == 0)
			return jsonpos_fail(s, sub, "rule '%s': a table glob must be a non-empty string", rule);
		if (!(ret[*n] = strdup(json_string_value(v))))
			return -ENOMEM;
		(*n)++;
	}
	return 0;
}

static int parse_statements(struct jsonpos_src *s, json_t *obj, const char *ptr, struct policy_rule *r)
{
	struct policy_statements *st = &r->statements;
	char sub[440];
	json_t *v, *t;
	int e;

	if (!json_is_object(obj))
		return jsonpos_fail(s, ptr, "rule '%s': \"statements\" must be an object", r->name);
	if ((e = check_keys(s, obj, ptr, (const char *const[]){ "allow", "deny", "approve", "approval_timeout", "tables", NULL }, NULL)) < 0)
		return e;
	st->set = true;
	st->approval_timeout = POLICY_DEFAULT_APPROVAL_TIMEOUT;
	static const char *const keys[] = { "allow", "deny", "approve" };
	unsigned *bits[] = { &st->allow, &st->deny, &st->approve };

	for (int i = 0; i < 3; i++) {
		snprintf(sub, sizeof(sub), "%s/%s", ptr, keys[i]);
		if ((v = json_object_get(obj, keys[i])) && (e = class_list(s, v, sub, r->name, bits[i])) < 0)
			return e;
	}
	v = json_object_get(obj, "approval_timeout");
	if (v) {
		snprintf(sub, sizeof(sub), "%s/approval_timeout", ptr);
		if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 86400)
			return jsonpos_fail(s, sub, "rule '%s': approval_timeout must be a number of seconds from 1 to 86400", r->name);
		st->approval_timeout = (unsigned)json_integer_value(v);
	}
	t = json_object_get(obj, "tables");
	if (t) {
		snprintf(sub, sizeof(sub), "%s/tables", ptr);
		if (!json_is_object(t))
			return jsonpos_fail(s, sub, "rule '%s': \"tables\" must be { \"allow\": [...], \"deny\": [...] }", r->name);
		if ((e = check_keys(s, t, sub, (const char *const[]){ "allow", "deny", NULL }, NULL)) < 0)
			return e;
		char tsub[460];

		snprintf(tsub, sizeof(tsub), "%s/allow", sub);
		if ((v = json_object_get(t, "allow")) &&
		    (e = table_list(s, v, tsub, r->name, st->tables_allow, &st->n_tables_allow)) < 0)
			return e;
		snprintf(tsub, sizeof(tsub), "%s/deny", sub);
		if ((v = json_object_get(t, "deny")) &&
		    (e = table_list(s, v, tsub, r->name, st->tables_deny, &st->n_tables_deny)) < 0)
			return e;
	}
	return 0;
}

/* A catalog name as a mask names it: 1 to 63 bytes, no quotes, backslashes or dots
 * (it goes into the catalog query as a literal). */
static bool ident_ok(const char *p, size_t n)
{
	if (n == 0 || n > 63)
		return false;
	for (size_t i = 0; i < n; i++)
		if (p[i] == '"' || p[i] == '\'' || p[i] == '\\' || p[i] == '.' || (unsigned char)p[i] < 0x20)
			return false;
	return true;
}

static int parse_mask(struct jsonpos_src *s, json_t *obj, const char *ptr, const char *rule, struct policy_mask *m)
{
	static const char *const keys[] = { "column", "column_name", "strategy", "keep", "text", "allow", NULL };
	static const struct { const char *name; unsigned bit; } allows[] = {
		{ "copy", POLICY_MASK_ALLOW_COPY }, { "whole_row", POLICY_MASK_ALLOW_WHOLE_ROW },
		{ "computed", POLICY_MASK_ALLOW_COMPUTED }, { "ddl", POLICY_MASK_ALLOW_DDL },
		{ "code", POLICY_MASK_ALLOW_CODE },
	};
	char *strategy = NULL, sub[480];
	json_t *v, *a;
	size_t i;
	int e, st;

	if (!json_is_object(obj))
		return jsonpos_fail(s, ptr, "rule '%s': a mask must be an object: { \"column\": \"schema.table.column\", \"strategy\": ... }", rule);
	if ((e = check_keys(s, obj, ptr, keys, NULL)) < 0 || (e = str(s, obj, "column", ptr, &m->column)) < 0 ||
	    (e = str(s, obj, "column_name", ptr, &m->column_name)) < 0 || (e = str(s, obj, "strategy", ptr, &strategy)) < 0 ||
	    (e = str(s, obj, "text", ptr, &m->text)) < 0) {
		free(strategy);
		return e;
	}
	if (!m->column == !m->column_name)
		return free(strategy), jsonpos_fail(s, ptr, "rule '%s': a mask names either \"column\" (schema.table.column) or \"column_name\" (a glob of result column names)", rule);
	if (m->column) {
		const char *c = m->column, *d1 = strchr(c, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
		bool ok;

		if (d2 && strchr(d2 + 1, '.'))
			d2 = NULL, d1 = NULL;
		if (d2)
			ok = ident_ok(c, (size_t)(d1 - c)) && ident_ok(d1 + 1, (size_t)(d2 - d1 - 1)) && ident_ok(d2 + 1, strlen(d2 + 1));
		else
			ok = d1 && ident_ok(c, (size_t)(d1 - c)) && ident_ok(d1 + 1, strlen(d1 + 1));
		snprintf(sub, sizeof(sub), "%s/column", ptr);
		if (!ok) {
			free(strategy);
			return jsonpos_fail(s, sub, "rule '%s': mask column '%s' must be schema.table.column or table.column (names as the catalog spells them, without quotes)", rule, c);
		}
		m->schema = d2 ? strndup(c, (size_t)(d1 - c)) : strdup("public");
		m->table = d2 ? strndup(d1 + 1, (size_t)(d2 - d1 - 1)) : strndup(c, (size_t)(d1 - c));
		m->name = strdup(d2 ? d2 + 1 : d1 + 1);
		if (!m->schema || !m->table || !m->name)
			return free(strategy), -ENOMEM;
	}
	snprintf(sub, sizeof(sub), "%s/strategy", ptr);
	st = strategy ? mask_strategy_from_name(strategy) : -1;
	free(strategy);
	if (st < 0)
		return jsonpos_fail(s, json_object_get(obj, "strategy") ? sub : ptr, "rule '%s': a mask needs \"strategy\": \"redact\", \"null\", \"partial\", \"hash\" or \"email\"", rule);
	m->strategy = (enum mask_strategy)st;
	if ((v = json_object_get(obj, "keep"))) {
		snprintf(sub, sizeof(sub), "%s/keep", ptr);
		if (m->strategy != MASK_PARTIAL || !json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 64)
			return jsonpos_fail(s, sub, "rule '%s': \"keep\" (0 to 64 characters) goes with strategy \"partial\"", rule);
		m->keep = (unsigned)json_integer_value(v);
	} else if (m->strategy == MASK_PARTIAL) {
		m->keep = 4;
	}
	if (m->text && (m->strategy != MASK_REDACT || strlen(m->text) > 200)) {
		snprintf(sub, sizeof(sub), "%s/text", ptr);
		return jsonpos_fail(s, sub, "rule '%s': \"text\" (at most 200 bytes) goes with strategy \"redact\"", rule);
	}
	if ((v = json_object_get(obj, "allow"))) {
		snprintf(sub, sizeof(sub), "%s/allow", ptr);
		if (!json_is_array(v))
			return jsonpos_fail(s, sub, "rule '%s': a mask's \"allow\" is a list of \"copy\", \"whole_row\", \"computed\", \"ddl\", \"code\"", rule);
		json_array_foreach(v, i, a) {
			size_t k;

			for (k = 0; k < sizeof(allows) / sizeof(allows[0]); k++)
				if (json_is_string(a) && !strcmp(json_string_value(a), allows[k].name))
					break;
			if (k == sizeof(allows) / sizeof(allows[0]))
				return jsonpos_fail(s, sub, "rule '%s': a mask's \"allow\" is a list of \"copy\", \"whole_row\", \"computed\", \"ddl\", \"code\"", rule);
			m->allow |= allows[k].bit;
		}
	}
	return 0;
}

static int parse_masks(struct jsonpos_src *s, json_t *arr, const char *ptr, struct policy_rule *r)
{
	char sub[460];
	json_t *v;
	size_t i;
	int e;

	if (!json_is_array(arr) || json_array_size(arr) == 0 || json_array_size(arr) > POLICY_MAX_MASKS)
		return jsonpos_fail(s, ptr, "rule '%s': \"mask\" must be a list of 1 to %d masks", r->name, POLICY_MAX_MASKS);
	if (!(r->masks = calloc(json_array_size(arr), sizeof(*r->masks))))
		return -ENOMEM;
	json_array_foreach(arr, i, v) {
		snprintf(sub, sizeof(sub), "%s/%zu", ptr, i);
		r->n_masks++;
		if ((e = parse_mask(s, v, sub, r->name, &r->masks[i])) < 0)
			return e;
	}
	return 0;
}

static int parse_record(struct jsonpos_src *s, json_t *obj, const char *ptr, struct policy_rule *r)
{
	json_t *v;
	int e;

	if (!json_is_object(obj))
		return jsonpos_fail(s, ptr, "rule '%s': \"record\" must be { \"results\": true | false }", r->name);
	if ((e = check_keys(s, obj, ptr, (const char *const[]){ "results", NULL }, NULL)) < 0)
		return e;
	v = json_object_get(obj, "results");
	if (v && !json_is_boolean(v))
		return jsonpos_fail(s, ptr, "rule '%s': \"results\" must be true or false", r->name);
	r->record_results = json_is_true(v);
	return 0;
}

static int parse_rule(struct jsonpos_src *s, json_t *obj, const char *ptr, struct policy_rule *r)
{
	static const char *const rule_keys[] = { "name", "effect", "match", "token", "upstream", "role", "statements",
						 "mask", "record", NULL };
	static const char *const match_keys[] = { "cgroup", "uid", "exe", "exe_sha256", "database", "issuer", "claims", NULL };
	json_t *m, *v, *t;
	char sub[400], *effect = NULL, *source = NULL;
	const char *key;
	int e;

	if (!json_is_object(obj))
		return jsonpos_fail(s, ptr, "a rule must be an object");
	if ((e = check_keys(s, obj, ptr, rule_keys, NULL)) < 0)
		return e;
	if ((e = str(s, obj, "name", ptr, &r->name)) < 0)
		return e;
	if (!r->name)
		return jsonpos_fail(s, ptr, "every rule needs a \"name\": it is what logs and refused clients see");
	if ((e = str(s, obj, "effect", ptr, &effect)) < 0)
		return e;
	if (effect && strcmp(effect, "allow") && strcmp(effect, "deny")) {
		free(effect);
		snprintf(sub, sizeof(sub), "%s/effect", ptr);
		return jsonpos_fail(s, sub, "rule '%s': effect must be \"allow\" or \"deny\"", r->name);
	}
	r->deny = effect && strcmp(effect, "deny") == 0;
	free(effect);

	snprintf(sub, sizeof(sub), "%s/match", ptr);
	m = json_object_get(obj, "match");
	if (!json_is_object(m))
		return jsonpos_fail(s, m ? sub : ptr, "rule '%s' needs \"match\": the identity it is for", r->name);
	if ((e = check_keys(s, m, sub, match_keys, NULL)) < 0 ||
	    (e = str(s, m, "cgroup", sub, &r->cgroup)) < 0 || (e = str(s, m, "exe", sub, &r->exe)) < 0 ||
	    (e = str(s, m, "exe_sha256", sub, &r->exe_sha256)) < 0 ||
	    (e = str(s, m, "database", sub, &r->database)) < 0 || (e = str(s, m, "issuer", sub, &r->issuer)) < 0)
		return e;
	v = json_object_get(m, "uid");
	if (v) {
		char u[420];

		snprintf(u, sizeof(u), "%s/uid", sub);
		if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 0xfffffffeLL)
			return jsonpos_fail(s, u, "rule '%s': uid must be a number", r->name);
		r->has_uid = true;
		r->uid = (uint32_t)json_integer_value(v);
	}
	v = json_object_get(m, "claims");
	if (v) {
		char c[420];

		snprintf(c, sizeof(c), "%s/claims", sub);
		if (!json_is_object(v) || json_object_size(v) == 0 || json_object_size(v) > POLICY_MAX_CLAIMS)
			return jsonpos_fail(s, c, "rule '%s': claims must map 1 to %d claim names to exact values or globs", r->name, POLICY_MAX_CLAIMS);
		if (!r->issuer)
			return jsonpos_fail(s, c, "rule '%s': claims mean nothing without the \"issuer\" that vouches for them", r->name);
		json_object_foreach(v, key, t) {
			if (!json_is_string(t))
				return jsonpos_fail(s, c, "rule '%s': claim '%s' must be a string (exact value or glob)", r->name, key);
			r->claims[r->n_claims].name = strdup(key);
			r->claims[r->n_claims].glob = strdup(json_string_value(t));
			if (!r->claims[r->n_claims].name || !r->claims[r->n_claims].glob)
				return -ENOMEM;
			r->n_claims++;
		}
	}
	if (!r->deny && !r->cgroup && !r->n_claims)
		return jsonpos_fail(s, sub, "rule '%s' allows without narrowing identity: give a \"cgroup\" glob or token \"claims\"", r->name);

	if (r->deny)
		return 0;
	snprintf(sub, sizeof(sub), "%s/token", ptr);
	t = json_object_get(obj, "token");
	if (!json_is_object(t))
		return jsonpos_fail(s, t ? sub : ptr, "rule '%s' needs \"token\": { \"source\": \"password\" | \"file\" | \"none\" }", r->name);
	if ((e = check_keys(s, t, sub, (const char *const[]){ "source", "path", NULL }, NULL)) < 0 ||
	    (e = str(s, t, "source", sub, &source)) < 0)
		return e;
	if (source && strcmp(source, "password") == 0) {
		r->token = POLICY_TOKEN_PASSWORD;
	} else if (source && strcmp(source, "file") == 0) {
		r->token = POLICY_TOKEN_FILE;
		if ((e = str(s, t, "path", sub, &r->token_path)) < 0) {
			free(source);
			return e;
		}
		if (!r->token_path || r->token_path[0] != '/') {
			free(source);
			return jsonpos_fail(s, sub, "rule '%s': a file token needs an absolute \"path\" (inside the workload's mount namespace)", r->name);
		}
	} else if (source && strcmp(source, "none") == 0) {
		r->token = POLICY_TOKEN_NONE;
	} else {
		free(source);
		return jsonpos_fail(s, sub, "rule '%s': token source must be \"password\", \"file\" or \"none\"", r->name);
	}
	free(source);
	if (r->token == POLICY_TOKEN_NONE && (r->issuer || r->n_claims))
		return jsonpos_fail(s, sub, "rule '%s' matches token claims but takes no token", r->name);
	if (r->token != POLICY_TOKEN_NONE && !r->issuer)
		return jsonpos_fail(s, sub, "rule '%s' takes a token but names no \"issuer\" to verify it with", r->name);
	if ((e = str(s, obj, "upstream", ptr, &r->upstream)) < 0 || (e = str(s, obj, "role", ptr, &r->role)) < 0)
		return e;
	if (!r->upstream)
		return jsonpos_fail(s, ptr, "rule '%s' needs \"upstream\": the database it grants", r->name);
	if ((t = json_object_get(obj, "statements"))) {
		snprintf(sub, sizeof(sub), "%s/statements", ptr);
		if ((e = parse_statements(s, t, sub, r)) < 0)
			return e;
	}
	if ((t = json_object_get(obj, "mask"))) {
		snprintf(sub, sizeof(sub), "%s/mask", ptr);
		if ((e = parse_masks(s, t, sub, r)) < 0)
			return e;
	}
	if ((t = json_object_get(obj, "record"))) {
		snprintf(sub, sizeof(sub), "%s/record", ptr);
		if ((e = parse_record(s, t, sub, r)) < 0)
			return e;
	}
	return 0;
}

static int dangerous_list(struct policy *p, struct jsonpos_src *s, json_t *arr)
{
	json_t *v;
	size_t i;

	if (!json_is_array(arr))
		return jsonpos_fail(s, "/dangerous_functions", "\"dangerous_functions\" must be a list of function names or globs");
	json_array_foreach(arr, i, v) {
		char **more;
		char sub[64];

		snprintf(sub, sizeof(sub), "/dangerous_functions/%zu", i);
		if (!json_is_string(v) || json_string_length(v) == 0)
			return jsonpos_fail(s, sub, "a dangerous function must be a non-empty name or glob");
		if (!(more = realloc(p->extra_dangerous, (p->n_extra_dangerous + 1) * sizeof(*more))))
			return -ENOMEM;
		p->extra_dangerous = more;
		if (!(more[p->n_extra_dangerous] = strdup(json_string_value(v))))
			return -ENOMEM;
		p->n_extra_dangerous++;
	}
	free(p->dangerous);
	p->dangerous = NULL; /* rebuilt by policy_dangerous() */
	return 0;
}

int policy_parse(struct policy *p, const char *name, const char *text, size_t len, char *err)
{
	struct jsonpos_src s = { name, text, len, err };
	json_error_t jerr;
	json_t *root, *rules, *obj;
	size_t i;
	int r = 0;

	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		snprintf(err, POLICY_ERR_LEN, "%s:%d:%d: %s", name, jerr.line, jerr.column, jerr.text);
		return -EINVAL;
	}
	if (!json_is_object(root) ||
	    (r = check_keys(&s, root, "", (const char *const[]){ "rules", "dangerous_functions", NULL }, NULL)) < 0) {
		if (!r)
			r = jsonpos_fail(&s, "", "a policy file holds { \"rules\": [ ... ] }");
		goto out;
	}
	if (json_object_get(root, "dangerous_functions") &&
	    (r = dangerous_list(p, &s, json_object_get(root, "dangerous_functions"))) < 0)
		goto out;
	rules = json_object_get(root, "rules");
	if (!json_is_array(rules)) {
		r = jsonpos_fail(&s, rules ? "/rules" : "", "a policy file holds { \"rules\": [ ... ] }");
		goto out;
	}
	if (p->n + json_array_size(rules) > POLICY_MAX_RULES) {
		r = jsonpos_fail(&s, "/rules", "more than %d rules in all", POLICY_MAX_RULES);
		goto out;
	}
	json_array_foreach(rules, i, obj) {
		struct policy_rule *more = realloc(p->rules, (p->n + 1) * sizeof(*more));
		char ptr[64];
		int line, col;

		if (!more) {
			r = -ENOMEM;
			goto out;
		}
		p->rules = more;
		memset(&p->rules[p->n], 0, sizeof(p->rules[0]));
		snprintf(ptr, sizeof(ptr), "/rules/%zu", i);
		p->n++; /* counted before parsing, so a failure frees what was filled */
		if ((r = parse_rule(&s, obj, ptr, &p->rules[p->n - 1])) < 0)
			goto out;
		jsonpos_find(text, len, ptr, &line, &col);
		p->rules[p->n - 1].line = line;
		if (!(p->rules[p->n - 1].file = strdup(name))) {
			r = -ENOMEM;
			goto out;
		}
		for (size_t j = 0; j + 1 < p->n; j++)
			if (strcmp(p->rules[j].name, p->rules[p->n - 1].name) == 0) {
				char sub[80];

				snprintf(sub, sizeof(sub), "%s/name", ptr);
				r = jsonpos_fail(&s, sub, "rule name '%s' is used twice (first in %s:%d)", p->rules[j].name,
					 p->rules[j].file ? p->rules[j].file : name, p->rules[j].line);
				goto out;
			}
	}
out:
	json_decref(root);
	return r;
}

/* A string claim fits its glob; an array claim (groups, aud) when one element does. */
static bool claim_fits(json_t *claims, const struct policy_claim *c)
{
	json_t *v = json_object_get(claims, c->name), *e;
	size_t i;

	if (json_is_string(v))
		return fnmatch(c->glob, json_string_value(v), 0) == 0;
	json_array_foreach(v, i, e)
		if (json_is_string(e) && fnmatch(c->glob, json_string_value(e), 0) == 0)
			return true;
	return false;
}

bool policy_cgroup_fits(const char *glob, const char *cgroup)
{
	size_t g = strlen(glob);
	char path[PATH_MAX], base[PATH_MAX];

	if (g < 3 || strcmp(glob + g - 3, "/**") != 0)
		return fnmatch(glob, cgroup, FNM_PATHNAME) == 0;
	/* "/a" + slash-star-star: /a itself and every cgroup below it, at any depth */
	if (g - 3 >= sizeof(base) || strlen(cgroup) >= sizeof(path))
		return false;
	memcpy(base, glob, g - 3);
	base[g - 3] = '\0';
	strcpy(path, cgroup);
	for (;;) {
		char *slash;

		if (fnmatch(base[0] ? base : "/", path, FNM_PATHNAME) == 0)
			return true;
		slash = strrchr(path, '/');
		if (!slash || slash == path)
			return !base[0]; /* slash-star-star alone: everything */
		*slash = '\0';
	}
}

bool policy_rule_fits_facts(const struct policy_rule *r, const struct policy_facts *f)
{
	if (r->cgroup && (!f->cgroup || !policy_cgroup_fits(r->cgroup, f->cgroup)))
		return false;
	if (!r->deny && r->upstream && (!f->upstream || strcmp(r->upstream, f->upstream) != 0))
		return false;
	if (r->has_uid && r->uid != f->uid)
		return false;
	if (r->exe && (!f->exe || (!r->deny && f->exe_foreign) || strcmp(r->exe, f->exe) != 0))
		return false;
	if (r->exe_sha256 && (!f->exe_sha256 || strcasecmp(r->exe_sha256, f->exe_sha256) != 0))
		return false;
	if (r->database && (!f->database || fnmatch(r->database, f->database, 0) != 0))
		return false;
	return true;
}

enum policy_token policy_token_named(const char *source)
{
	if (source && !strcmp(source, "password"))
		return POLICY_TOKEN_PASSWORD;
	return source && !strcmp(source, "file") ? POLICY_TOKEN_FILE : POLICY_TOKEN_NONE;
}

static bool fits(const struct policy_rule *r, const struct policy_facts *f)
{
	if (!policy_rule_fits_facts(r, f))
		return false;
	/* deny rules whatever the source: a token sent another way must not dodge one */
	if (!r->deny && f->token_known && r->token != POLICY_TOKEN_NONE &&
	    (r->token != f->token ||
	     (r->token == POLICY_TOKEN_FILE && (!f->token_path || strcmp(r->token_path, f->token_path) != 0))))
		return false;
	if (r->issuer && (!f->issuer || strcmp(r->issuer, f->issuer) != 0))
		return false;
	for (size_t i = 0; i < r->n_claims; i++)
		if (!f->claims || !claim_fits(f->claims, &r->claims[i]))
			return false;
	return true;
}

const struct policy_rule *policy_decide(const struct policy *p, const struct policy_facts *f,
					const struct policy_rule **ret_deny)
{
	const struct policy_rule *allow = NULL;

	*ret_deny = NULL;
	for (size_t i = 0; i < p->n; i++) {
		const struct policy_rule *r = &p->rules[i];

		if (!fits(r, f))
			continue;
		if (r->deny) {
			*ret_deny = r; /* deny beats allow, wherever it stands */
			return NULL;
		}
		if (!allow)
			allow = r;
	}
	return allow;
}

const struct policy_rule *policy_decide_again(const struct policy *p, const struct policy_facts *f,
					      const char *default_role, const char *role, bool read_only,
					      const char *was, char *why, size_t cap)
{
	const struct policy_rule *deny, *rule = policy_decide(p, f, &deny);
	const char *now_role = rule && default_role ? (rule->role ? rule->role : default_role) : NULL;

	if (now_role && strcmp(now_role, role) == 0 && policy_read_only(rule) == read_only)
		return rule;
	if (deny)
		snprintf(why, cap, "pgtether: access withdrawn by a policy reload: denied by rule '%s' (%s:%d)", deny->name,
			 deny->file, deny->line);
	else if (now_role && strcmp(now_role, role) == 0)
		snprintf(why, cap, "pgtether: session ended by a policy reload: rule '%s' is now %s; reconnect", rule->name,
			 read_only ? "read-write" : "read-only");
	else if (rule)
		snprintf(why, cap, "pgtether: access withdrawn by a policy reload: rule '%s' now grants role '%s', not '%s'",
			 rule->name, now_role ? now_role : "?", role);
	else
		snprintf(why, cap, "pgtether: access withdrawn by a policy reload: no rule allows this session any more (it was allowed by '%s')",
			 was);
	return NULL;
}

static int policy_wanted(const char *name)
{
	size_t n = strlen(name);

	return name[0] != '.' && n > 5 && name[n - 1] != '~' && strcmp(name + n - 5, ".json") == 0;
}

/* Reads and parses one policy file into p. 0 or -errno with err. */
static int load_file(struct policy *p, struct cfgsrc *src, const char *path, char *err)
{
	struct stat st;
	size_t len;
	char *text;
	int r;

	r = cfgsrc_read(src, path, 1 << 20, false, &text, &len, &st, err, POLICY_ERR_LEN);
	if (r == -EINVAL) {
		snprintf(err, POLICY_ERR_LEN, "%s: a policy file must be a regular file of at most 1 MiB, owned by root and not writable by group or others",
			 path);
		return -EPERM;
	}
	if (r < 0)
		return r;
	if (st.st_uid != 0 || (st.st_mode & 022)) {
		snprintf(err, POLICY_ERR_LEN, "%s: a policy file must be a regular file of at most 1 MiB, owned by root and not writable by group or others (owner %u, mode %04o)",
			 path, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
		free(text);
		return -EPERM;
	}
	r = policy_parse(p, path, text, len, err);
	free(text);
	return r;
}

/* Every file of dir, in order, into p; report gets each error (NULL: stop at the first,
 * which is then in err). Returns the number of files that failed, or -errno. */
static int load_files(const char *dir, struct cfgsrc *src, struct policy *p, void (*report)(const char *, void *),
		      void *arg, char *err)
{
	char **names = NULL;
	size_t n = 0;
	int r, failed = 0;

	r = cfgsrc_list(src, dir, policy_wanted, &names, &n, err, POLICY_ERR_LEN);
	if (r == -ENOENT)
		return 0; /* no directory: no rules, so every connection is refused */
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		char path[PATH_MAX];

		if (failed && !report)
			break;
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (load_file(p, src, path, err) < 0) {
			failed++;
			if (report)
				report(err, arg);
		}
	}
	cfgsrc_names_free(names, n);
	return failed;
}

int policy_load_dir_src(const char *dir, struct cfgsrc *src, struct policy *ret, char *err)
{
	struct policy p = { 0 };
	int r = load_files(dir, src, &p, NULL, NULL, err);

	if (r != 0) {
		policy_release(&p);
		return r < 0 ? r : -EINVAL;
	}
	*ret = p;
	return 0;
}

int policy_load_dir(const char *dir, struct policy *ret, char *err)
{
	return policy_load_dir_src(dir, NULL, ret, err);
}

int policy_check_dir(const char *dir, struct policy *ret, void (*report)(const char *err, void *arg), void *arg)
{
	char err[POLICY_ERR_LEN];
	int r;

	memset(ret, 0, sizeof(*ret));
	r = load_files(dir, NULL, ret, report, arg, err);
	if (r < 0) {
		report(err, arg);
		return 1;
	}
	return r;
}

void policy_release(struct policy *p)
{
	for (size_t i = 0; i < p->n; i++) {
		struct policy_rule *r = &p->rules[i];

		free(r->name);
		free(r->file);
		free(r->cgroup);
		free(r->exe);
		free(r->exe_sha256);
		free(r->database);
		free(r->issuer);
		for (size_t c = 0; c < r->n_claims; c++) {
			free(r->claims[c].name);
			free(r->claims[c].glob);
		}
		free(r->token_path);
		free(r->upstream);
		free(r->role);
		for (size_t t = 0; t < r->statements.n_tables_allow; t++)
			free(r->statements.tables_allow[t]);
		for (size_t t = 0; t < r->statements.n_tables_deny; t++)
			free(r->statements.tables_deny[t]);
		for (size_t m = 0; m < r->n_masks; m++) {
			free(r->masks[m].column);
			free(r->masks[m].schema);
			free(r->masks[m].table);
			free(r->masks[m].name);
			free(r->masks[m].column_name);
			free(r->masks[m].text);
		}
		free(r->masks);
	}
	free(p->rules);
	for (size_t i = 0; i < p->n_extra_dangerous; i++)
		free(p->extra_dangerous[i]);
	free(p->extra_dangerous);
	free(p->dangerous);
	memset(p, 0, sizeof(*p));
}

bool policy_uses_hash(const struct policy *p)
{
	for (size_t i = 0; i < p->n; i++)
		for (size_t m = 0; m < p->rules[i].n_masks; m++)
			if (p->rules[i].masks[m].strategy == MASK_HASH)
				return true;
	return false;
}

const char *const *policy_dangerous(const struct policy *cp)
{
	struct policy *p = (struct policy *)cp; /* the list is a cache of what p holds */
	size_t n = 0, k = 0;

	if (p->dangerous)
		return p->dangerous;
	while (sqlclass_default_dangerous[n])
		n++;
	p->dangerous = calloc(n + p->n_extra_dangerous + 1, sizeof(*p->dangerous));
	if (!p->dangerous)
		return sqlclass_default_dangerous;
	for (size_t i = 0; i < n; i++)
		p->dangerous[k++] = sqlclass_default_dangerous[i];
	for (size_t i = 0; i < p->n_extra_dangerous; i++)
		p->dangerous[k++] = p->extra_dangerous[i];
	return p->dangerous;
}

/* An unqualified name is taken as public.NAME, where the default search_path finds it:
 * only where no session can tell (pgtether explain); a live session resolves names
 * on its own search_path first (searchpath.h). */
static bool table_fits(const char *glob, const char *table)
{
	char q[300];

	if (strchr(table, '.'))
		return fnmatch(glob, table, 0) == 0;
	snprintf(q, sizeof(q), "public.%s", table);
	return fnmatch(glob, q, 0) == 0;
}

bool policy_read_only(const struct policy_rule *r)
{
	const unsigned writes = SQL_WRITE | SQL_DDL | SQL_DROP | SQL_TRUNCATE | SQL_ALTER_ROLE | SQL_GRANT | SQL_COPY_IN;

	return r->statements.set && !((r->statements.allow | r->statements.approve) & writes);
}

enum policy_verdict policy_table_verdict(const struct policy_rule *r, const char *table, char *why, size_t cap)
{
	const struct policy_statements *st = &r->statements;
	bool listed = false;

	for (size_t k = 0; k < st->n_tables_deny; k++)
		if (table_fits(st->tables_deny[k], table)) {
			snprintf(why, cap, "table %s is denied by rule '%s'", table, r->name);
			return POLICY_DENY;
		}
	for (size_t k = 0; k < st->n_tables_allow && !listed; k++)
		listed = table_fits(st->tables_allow[k], table);
	if (st->n_tables_allow && !listed) {
		snprintf(why, cap, "table %s is not among the tables rule '%s' allows", table, r->name);
		return POLICY_DENY;
	}
	return POLICY_ALLOW;
}

enum policy_verdict policy_statement_verdict(const struct policy_rule *r, const struct sqlclass_result *c,
					     char *why, size_t cap)
{
	const struct policy_statements *st = &r->statements;
	unsigned bad;
	char names[256];

	why[0] = '\0';
	if (!st->set || c->classes == 0)
		return POLICY_ALLOW;
	if ((bad = c->classes & st->deny)) {
		sqlclass_format(bad, names, sizeof(names));
		snprintf(why, cap, "statement class %s is denied by rule '%s'", names, r->name);
		return POLICY_DENY;
	}
	if (c->any_table && (st->n_tables_allow || st->n_tables_deny)) {
		/* the tables it reads are not in the text: it may read any, a denied one too */
		snprintf(why, cap, "the statement runs SQL its text does not show (DO, CALL, CREATE FUNCTION, or a "
			 "function such as query_to_xml or ts_stat), so it may read any table, and rule '%s' limits tables",
			 r->name);
		return POLICY_DENY;
	}
	for (size_t i = 0; i < c->n_tables; i++)
		if (policy_table_verdict(r, c->tables[i], why, cap) == POLICY_DENY)
			return POLICY_DENY;
	if ((bad = c->classes & ~(st->allow | st->approve))) {
		sqlclass_format(bad, names, sizeof(names));
		snprintf(why, cap, "statement class %s is not allowed by rule '%s'", names, r->name);
		return POLICY_DENY;
	}
	if ((bad = c->classes & st->approve)) {
		sqlclass_format(bad, names, sizeof(names));
		snprintf(why, cap, "statement class %s needs approval under rule '%s'", names, r->name);
		return POLICY_APPROVE;
	}
	return POLICY_ALLOW;
}
