/*
 * Counters behind the login caps, the memory budget and the log episodes (quota.h).
 * The per-cgroup counts are a small array searched linearly: it holds one entry per
 * attached cgroup that has a login under way, and an entry goes when its count does.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "quota.h"

int quota_login_begin(struct quota_logins *l, unsigned max_total)
{
	if (l->total >= max_total)
		return -EUSERS;
	l->total++;
	return 0;
}

static struct quota_count *quota_find(const struct quota_logins *l, uint64_t key)
{
	for (size_t i = 0; i < l->n_keys; i++)
		if (l->keys[i].key == key)
			return &l->keys[i];
	return NULL;
}

int quota_login_key(struct quota_logins *l, uint64_t key, unsigned max_per_key, unsigned *ret_n)
{
	struct quota_count *c = quota_find(l, key);

	if (c && c->n >= max_per_key) {
		*ret_n = c->n;
		return -EDQUOT;
	}
	if (!c) {
		if (max_per_key == 0) {
			*ret_n = 0;
			return -EDQUOT;
		}
		if (l->n_keys == l->cap_keys) {
			size_t cap = l->cap_keys ? 2 * l->cap_keys : 16;
			struct quota_count *d;

			if (cap > QUOTA_MAX_KEYS || !(d = realloc(l->keys, cap * sizeof(*d))))
				return -ENOMEM;
			l->keys = d;
			l->cap_keys = cap;
		}
		c = &l->keys[l->n_keys++];
		c->key = key;
		c->n = 0;
	}
	c->n++;
	*ret_n = c->n;
	return 0;
}

void quota_login_end(struct quota_logins *l, bool keyed, uint64_t key)
{
	struct quota_count *c;

	if (l->total)
		l->total--;
	if (!keyed || !(c = quota_find(l, key)))
		return;
	if (--c->n == 0)
		*c = l->keys[--l->n_keys];
}

unsigned quota_login_count(const struct quota_logins *l, uint64_t key)
{
	const struct quota_count *c = quota_find(l, key);

	return c ? c->n : 0;
}

void quota_logins_release(struct quota_logins *l)
{
	free(l->keys);
	memset(l, 0, sizeof(*l));
}

int quota_mem_take(struct quota_mem *m, size_t n, size_t budget)
{
	if (n > budget || m->used > budget - n)
		return -ENOMEM;
	m->used += n;
	return 0;
}

void quota_mem_give(struct quota_mem *m, size_t n)
{
	m->used = n > m->used ? 0 : m->used - n;
}

bool quota_episode_hit(struct quota_episode *e, time_t now)
{
	bool start = !e->on;

	if (start) {
		e->on = true;
		e->count = 0;
		e->started = now;
	}
	e->count++;
	e->last = now;
	return start;
}

bool quota_episode_over(struct quota_episode *e, time_t now, time_t quiet_s, uint64_t *ret_count,
			 time_t *ret_seconds)
{
	if (!e->on || now - e->last < quiet_s)
		return false;
	e->on = false;
	*ret_count = e->count;
	*ret_seconds = e->last - e->started;
	return true;
}
