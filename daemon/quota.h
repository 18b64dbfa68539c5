/*
 * Bounds on what one workload can take from everyone: connections still logging in
 * (in total and per attached cgroup) and the memory sessions grow beyond their fixed
 * buffers (a daemon-wide budget). Pure counting, no sockets: session.c asks before it
 * takes and gives back when it is done, so the sums here are exactly what is held.
 *
 * An "episode" turns a flood of the same refusal into two log lines: one when it
 * starts, one with the count when it has been quiet for a second.
 */
#ifndef PGTETHER_QUOTA_H
#define PGTETHER_QUOTA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Buckets of the per-cgroup login count: one per attached cgroup with a login under
 * way (plus one for "unknown"), so far fewer than this in practice. */
#define QUOTA_MAX_KEYS 4096

struct quota_count {
	uint64_t key;                  /* cgroup id of the attached cgroup, 0: unknown */
	unsigned n;
};

struct quota_logins {
	unsigned total;                /* every connection from accept to the relay */
	struct quota_count *keys;     /* per attached cgroup: those whose origin is known */
	size_t n_keys, cap_keys;
};

/* Counts one more login in total. 0, or -EUSERS when max_total are under way. */
int quota_login_begin(struct quota_logins *l, unsigned max_total);

/* Counts a begun login under key. 0, -EDQUOT when max_per_key are under way for key,
 * or -ENOMEM (the count is unchanged on error). *ret_n gets key's count (with it). */
int quota_login_key(struct quota_logins *l, uint64_t key, unsigned max_per_key, unsigned *ret_n);

/* A login ended (relay started or connection closed): total, and key when keyed. */
void quota_login_end(struct quota_logins *l, bool keyed, uint64_t key);

/* Logins under way for key. */
unsigned quota_login_count(const struct quota_logins *l, uint64_t key);

void quota_logins_release(struct quota_logins *l);

struct quota_mem {
	size_t used;                   /* bytes sessions hold beyond their fixed buffers */
};

/* Takes n bytes of budget. 0, or -ENOMEM when used + n would pass budget. */
int quota_mem_take(struct quota_mem *m, size_t n, size_t budget);

/* Gives n bytes back (never more than are used). */
void quota_mem_give(struct quota_mem *m, size_t n);

struct quota_episode {
	bool on;
	uint64_t count;                /* hits since it started */
	time_t started, last;          /* CLOCK_MONOTONIC seconds */
};

/* A hit at now. True when it starts an episode: the caller logs it. */
bool quota_episode_hit(struct quota_episode *e, time_t now);

/* At now, when an episode is on and has been quiet for quiet_s seconds: ends it and
 * returns true with its count and length, for the closing log line. */
bool quota_episode_over(struct quota_episode *e, time_t now, time_t quiet_s, uint64_t *ret_count,
			 time_t *ret_seconds);

#endif
