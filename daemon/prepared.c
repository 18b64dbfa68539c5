/*
 * The session's prepared statements (see prepared.h).
 */
#include "prepared.h"

#include <errno.h>
#include <stdio.h>
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
	for (size_t i = 0; i < e->n_texts; i++) {
		m->text_bytes -= e->text_lens[i] + 1;
		free(e->texts[i]);
		e->texts[i] = NULL;
	}
	e->n_texts = e->next_text = 0;
	e->last_text = -1;
	e->texts_lost = false;
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

static int note_text(struct prepared_model *m, struct prepared_entry *e, const char *text, size_t len);

int prepared_note(struct prepared_model *m, const char *name, const struct sqlclass_result *c, const char *text,
		  size_t len, bool keep_text)
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
		e->last_text = -1;
		memcpy(e->key, key, sizeof(key));
		e->used = true;
		m->n++;
	}
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
	if (!keep_text) {
		e->last_text = -1;
		e->texts_lost = true; /* what it is cannot be shown: not approvable */
		return 0;
	}
	return note_text(m, e, text, len);
}

/* Keeps text among e's texts (the oldest goes when there are too many). */
static int note_text(struct prepared_model *m, struct prepared_entry *e, const char *text, size_t len)
{
	size_t i;
	char *t;

	for (i = 0; i < e->n_texts; i++)
		if (e->text_lens[i] == len && !memcmp(e->texts[i], text, len)) {
			e->last_text = (int)i;
			return 0;
		}
	e->last_text = -1;
	if (e->n_texts == PREPARED_MAX_TEXTS) {
		/* the oldest goes: it may still be what runs, so the set is incomplete */
		i = e->next_text++ % PREPARED_MAX_TEXTS;
		m->text_bytes -= e->text_lens[i] + 1;
		free(e->texts[i]);
		e->texts[i] = NULL;
		e->text_lens[i] = 0;
		e->texts_lost = true;
	} else {
		i = e->n_texts;
	}
	if (m->text_bytes + len + 1 > PREPARED_MAX_TEXT || !(t = malloc(len + 1))) {
		e->texts_lost = true; /* not kept: an execution that needs approval is denied */
		if (i == e->n_texts)
			return 0;
		/* a freed slot in the middle: keep the array dense */
		e->n_texts--;
		e->texts[i] = e->texts[e->n_texts];
		e->text_lens[i] = e->text_lens[e->n_texts];
		e->texts[e->n_texts] = NULL;
		return 0;
	}
	memcpy(t, text, len);
	t[len] = '\0';
	e->texts[i] = t;
	e->text_lens[i] = len;
	if (i == e->n_texts)
		e->n_texts++;
	m->text_bytes += len + 1;
	e->last_text = (int)i;
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
	if (depth == 0 && exact) {
		ret->complete = e->last_text >= 0;
		if (ret->complete) {
			ret->texts[0] = e->texts[e->last_text];
			ret->text_lens[0] = e->text_lens[e->last_text];
			ret->n_texts = 1;
		}
	} else if (depth == 0) {
		ret->complete = !e->texts_lost && e->n_texts > 0;
		for (size_t i = 0; i < e->n_texts; i++) {
			ret->texts[i] = e->texts[i];
			ret->text_lens[i] = e->text_lens[i];
		}
		ret->n_texts = e->n_texts;
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

char *prepared_view_text(const struct prepared_view *v, size_t *ret_len)
{
	static const char head[] = "-- the server runs one of the %zu statements prepared under this name in this session:\n";
	static const char sep[] = "\n-- or:\n";
	size_t len = 0, n = 0;
	char *t;

	if (!v->complete || !v->n_texts)
		return NULL;
	if (v->n_texts > 1)
		len += sizeof(head) + 20 + (v->n_texts - 1) * (sizeof(sep) - 1);
	for (size_t i = 0; i < v->n_texts; i++)
		len += v->text_lens[i];
	if (!(t = malloc(len + 1)))
		return NULL;
	if (v->n_texts > 1)
		n = (size_t)snprintf(t, len + 1, head, v->n_texts);
	for (size_t i = 0; i < v->n_texts; i++) {
		if (i) {
			memcpy(t + n, sep, sizeof(sep) - 1);
			n += sizeof(sep) - 1;
		}
		memcpy(t + n, v->texts[i], v->text_lens[i]);
		n += v->text_lens[i];
	}
	t[n] = '\0';
	*ret_len = n;
	return t;
}
