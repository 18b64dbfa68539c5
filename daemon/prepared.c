/*
 * The session's prepared statements (see prepared.h).
 */
#include "prepared.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void prepared_init(struct prepared_model *m)
{
	memset(m, 0, sizeof(*m));
}

static void entry_clear(struct prepared_model *m, struct prepared_entry *e)
{
	for (size_t i = 0; i < e->n_execs; i++)
		free(e->execs[i]);
	e->n_execs = 0;
	e->execs_overflow = false;
	e->all = e->last = 0;
	e->known = false;
	e->several = false;
	m->text_bytes -= e->text_cap;
	free(e->text);
	e->text = NULL;
	e->text_len = e->text_cap = 0;
}

void prepared_release(struct prepared_model *m)
{
	for (size_t i = 0; i < m->cap; i++)
		if (m->e[i].used)
			entry_clear(m, &m->e[i]);
	free(m->e);
	prepared_init(m);
}

static void make_key(const char *name, char key[PREPARED_KEY + 1])
{
	size_t n = strnlen(name, PREPARED_KEY);

	memcpy(key, name, n);
	key[n] = '\0';
}

static uint64_t hash(const char *key)
{
	uint64_t h = 14695981039346656037ULL;

	for (; *key; key++)
		h = (h ^ (unsigned char)*key) * 1099511628211ULL;
	return h;
}

/* The slot of key, or the empty slot it would take (NULL: no table yet). */
static struct prepared_entry *slot(const struct prepared_model *m, const char *key)
{
	size_t i;

	if (!m->cap)
		return NULL;
	for (i = hash(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1))
		if (!m->e[i].used || !strcmp(m->e[i].key, key))
			return &m->e[i];
}

static int grow(struct prepared_model *m)
{
	size_t cap = m->cap ? m->cap * 2 : 16;
	struct prepared_entry *old = m->e, *e = calloc(cap, sizeof(*e));
	size_t old_cap = m->cap;

	if (!e)
		return -ENOMEM;
	m->e = e;
	m->cap = cap;
	for (size_t i = 0; i < old_cap; i++)
		if (old[i].used)
			*slot(m, old[i].key) = old[i];
	free(old);
	return 0;
}

int prepared_note(struct prepared_model *m, const char *name, const struct sqlclass_result *c, const char *text,
		  size_t len)
{
	char key[PREPARED_KEY + 1];
	struct prepared_entry *e;
	int r;

	make_key(name, key);
	e = slot(m, key);
	if (!e || !e->used) {
		if (m->n >= PREPARED_MAX_NAMES)
			return -ENOSPC;
		if ((m->n + 1) * 10 > m->cap * 7) {
			if ((r = grow(m)) < 0)
				return r;
		}
		e = slot(m, key);
		memset(e, 0, sizeof(*e));
		memcpy(e->key, key, sizeof(key));
		e->used = true;
		m->n++;
	}
	if (e->known && e->text && (e->text_len != len || memcmp(e->text, text, len)))
		e->several = true;
	e->known = true;
	e->all |= c->classes;
	e->last = c->classes;
	e->last_batch = m->batch;
	for (size_t i = 0; i < c->n_executes; i++) {
		bool have = false;

		for (size_t k = 0; k < e->n_execs && !have; k++)
			have = !strcmp(e->execs[k], c->executes[i]);
		if (have)
			continue;
		if (e->n_execs == PREPARED_MAX_EXECS || !(e->execs[e->n_execs] = strdup(c->executes[i])))
			e->execs_overflow = true; /* its executions cannot be followed: see resolve */
		else
			e->n_execs++;
	}
	if (len + 1 > e->text_cap) {
		char *t = NULL;

		if (m->text_bytes - e->text_cap + len + 1 <= PREPARED_MAX_TEXT)
			t = realloc(e->text, len + 1);
		if (!t) {
			/* not kept: an execution that needs approval cannot be shown, and is denied */
			m->text_bytes -= e->text_cap;
			free(e->text);
			e->text = NULL;
			e->text_len = e->text_cap = 0;
			return 0;
		}
		m->text_bytes += len + 1 - e->text_cap;
		e->text = t;
		e->text_cap = len + 1;
	}
	memcpy(e->text, text, len);
	e->text[len] = '\0';
	e->text_len = len;
	return 0;
}

void prepared_end_batch(struct prepared_model *m, bool drop_unnamed)
{
	struct prepared_entry *e;

	m->batch++;
	if (drop_unnamed && (e = slot(m, "")) && e->used && e->known)
		entry_clear(m, e);
}

static int resolve(const struct prepared_model *m, const char *name, bool bind, int depth, struct prepared_view *ret)
{
	char key[PREPARED_KEY + 1];
	const struct prepared_entry *e;
	struct prepared_view sub;
	bool exact;
	int r;

	if (depth > PREPARED_MAX_DEPTH)
		return -ELOOP;
	make_key(name, key);
	e = slot(m, key);
	if (!e || !e->used || !e->known)
		return -ENOENT;
	if (e->execs_overflow)
		return -ELOOP;
	exact = bind && e->last_batch == m->batch;
	ret->classes |= exact ? e->last : e->all;
	if (depth == 0) {
		ret->text = e->text;
		ret->text_len = e->text_len;
		ret->several = !exact && e->several;
	}
	for (size_t i = 0; i < e->n_execs; i++) {
		memset(&sub, 0, sizeof(sub));
		if ((r = resolve(m, e->execs[i], false, depth + 1, &sub)) < 0)
			return r;
		ret->classes |= sub.classes;
	}
	return 0;
}

int prepared_resolve(const struct prepared_model *m, const char *name, bool bind, struct prepared_view *ret)
{
	struct prepared_view v = { 0 };
	int r = resolve(m, name, bind, 0, &v);

	if (r == 0)
		*ret = v;
	return r;
}
