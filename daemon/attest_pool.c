/*
 * The parent's threads for what may wait on a workload's file systems (attest.h):
 * the executable hasher (open and read of /proc/PID/exe's file, which a FUSE mount the
 * workload serves can make wait as long as it likes) and the file-system threads
 * (token files and the executable's path, looked up below the workload's root). The
 * event loop only queues jobs and collects results through their eventfds.
 */
#include "attest.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* ---- the hasher ---------------------------------------------------------------- */

struct attest_hash_job {
	uint64_t tag;
	int fd;
	struct attest_exe_key key;
	bool has_who;
	struct attest_creds who;
};

struct attest_hasher {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	int efd;
	bool stop;
	/* jobs wait in todo; results in done; both bounded by ATTEST_HASH_QUEUE together */
	struct attest_hash_job todo[ATTEST_HASH_QUEUE];
	size_t todo_head, todo_n;
	struct attest_hash_done done[ATTEST_HASH_QUEUE];
	size_t done_head, done_n;
	size_t running;
};

static void *attest_hasher_main(void *arg)
{
	struct attest_hasher *h = arg;

	pthread_mutex_lock(&h->lock);
	for (;;) {
		struct attest_hash_job j;
		struct attest_hash_done d;
		uint64_t one = 1;

		while (!__atomic_load_n(&h->stop, __ATOMIC_RELAXED) && h->todo_n == 0)
			pthread_cond_wait(&h->wake, &h->lock);
		if (__atomic_load_n(&h->stop, __ATOMIC_RELAXED))
			break;
		j = h->todo[h->todo_head];
		h->todo_head = (h->todo_head + 1) % ATTEST_HASH_QUEUE;
		h->todo_n--;
		h->running++;
		pthread_mutex_unlock(&h->lock);

		memset(&d, 0, sizeof(d));
		d.tag = j.tag;
		d.key = j.key;
		d.result = attest_hash_fd(j.fd, &j.key, j.has_who ? &j.who : NULL, &h->stop, d.sha256, d.why, sizeof(d.why));
		close(j.fd);

		pthread_mutex_lock(&h->lock);
		h->running--;
		/* room is certain: submit counts running and done jobs against the bound */
		h->done[(h->done_head + h->done_n) % ATTEST_HASH_QUEUE] = d;
		h->done_n++;
		/* an eventfd write only fails when the counter would overflow: never here */
		if (write(h->efd, &one, sizeof(one)) != sizeof(one))
			continue;
	}
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

int attest_hasher_start(struct attest_hasher **ret)
{
	struct attest_hasher *h = calloc(1, sizeof(*h));
	int r;

	if (!h)
		return -ENOMEM;
	h->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (h->efd == -1) {
		r = -errno;
		free(h);
		return r;
	}
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->wake, NULL);
	if ((r = pthread_create(&h->thread, NULL, attest_hasher_main, h)) != 0) {
		pthread_mutex_destroy(&h->lock);
		pthread_cond_destroy(&h->wake);
		close(h->efd);
		free(h);
		return -r;
	}
	*ret = h;
	return 0;
}

int attest_hasher_fd(const struct attest_hasher *h)
{
	return h->efd;
}

enum attest_result attest_hasher_submit(struct attest_hasher *h, uint64_t tag, int fd,
					const struct attest_exe_key *key, const struct attest_creds *who)
{
	enum attest_result r = ATTEST_OK;

	pthread_mutex_lock(&h->lock);
	if (h->todo_n + h->running + h->done_n >= ATTEST_HASH_QUEUE) {
		r = ATTEST_BUSY;
	} else {
		struct attest_hash_job *j = &h->todo[(h->todo_head + h->todo_n) % ATTEST_HASH_QUEUE];

		*j = (struct attest_hash_job){ .tag = tag, .fd = fd, .key = *key, .has_who = who != NULL };
		if (who)
			j->who = *who;
		h->todo_n++;
		pthread_cond_signal(&h->wake);
	}
	pthread_mutex_unlock(&h->lock);
	if (r != ATTEST_OK)
		close(fd);
	return r;
}

int attest_hasher_collect(struct attest_hasher *h, struct attest_hash_done *ret)
{
	uint64_t count;
	int got = 0;

	/* EAGAIN: nothing counted since the last call; the queue is looked at anyway */
	if (read(h->efd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		return 0;
	pthread_mutex_lock(&h->lock);
	if (h->done_n) {
		*ret = h->done[h->done_head];
		h->done_head = (h->done_head + 1) % ATTEST_HASH_QUEUE;
		h->done_n--;
		got = 1;
	}
	pthread_mutex_unlock(&h->lock);
	return got;
}

bool attest_hasher_free(struct attest_hasher *h)
{
	bool busy;

	if (!h)
		return false;
	pthread_mutex_lock(&h->lock);
	__atomic_store_n(&h->stop, true, __ATOMIC_RELAXED);
	pthread_cond_signal(&h->wake);
	busy = h->running > 0;
	pthread_mutex_unlock(&h->lock);
	/* A hash ends within a second or two once stop is set (attest_hash_fd looks at
	 * it between reads), but a read a FUSE server never answers does not return:
	 * waiting for it would hang the daemon's exit. The thread keeps h. */
	for (int i = 0; busy && i < 20; i++) {
		usleep(100000);
		pthread_mutex_lock(&h->lock);
		busy = h->running > 0;
		pthread_mutex_unlock(&h->lock);
	}
	if (busy) {
		pthread_detach(h->thread);
		return true;
	}
	pthread_join(h->thread, NULL);
	for (size_t i = 0; i < h->todo_n; i++)
		close(h->todo[(h->todo_head + i) % ATTEST_HASH_QUEUE].fd);
	pthread_mutex_destroy(&h->lock);
	pthread_cond_destroy(&h->wake);
	close(h->efd);
	free(h);
	return false;
}

/* ---- the file-system threads ---------------------------------------------------- */

struct attest_fs_thread {
	struct attest_fs *pool;
	pthread_t thread;
	bool started, busy;
	uint64_t key;             /* the running job's, while busy */
};

/* A job waiting, or a result not collected: one allocation each, so the bound (a
 * login has one job at a time, and logins are capped by max_logins) costs only what
 * is in use. */
struct attest_fs_node {
	struct attest_fs_node *next;
	uint64_t job;
	union {
		struct attest_fs_job j;
		struct attest_fs_done d;
	} u;
};

struct attest_fs {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	int efd;
	bool stop;
	bool orphaned;            /* attest_fs_free left it to the last thread still in a job */
	unsigned alive;           /* threads not yet ended */
	uint64_t next_job;
	size_t max_jobs, n_jobs;  /* waiting, running and done, against max_jobs */
	struct attest_fs_thread t[ATTEST_FS_THREADS];
	/* waiting jobs in order of submission; one is taken out of the middle when those
	 * before it are of keys that have their share running */
	struct attest_fs_node *todo, **todo_tail;
	struct attest_fs_node *done, **done_tail;
	unsigned running;
};

static unsigned attest_fs_key_running(const struct attest_fs *p, uint64_t key)
{
	unsigned n = 0;

	for (size_t i = 0; i < ATTEST_FS_THREADS; i++)
		n += p->t[i].busy && p->t[i].key == key;
	return n;
}

/* Unlinks *pp from the todo list. */
static struct attest_fs_node *attest_fs_unlink(struct attest_fs *p, struct attest_fs_node **pp)
{
	struct attest_fs_node *n = *pp;

	*pp = n->next;
	if (p->todo_tail == &n->next)
		p->todo_tail = pp;
	n->next = NULL;
	return n;
}

/* The first waiting job whose key has fewer than its share running, unlinked, or NULL. */
static struct attest_fs_node *attest_fs_pick(struct attest_fs *p)
{
	for (struct attest_fs_node **pp = &p->todo; *pp; pp = &(*pp)->next)
		if (attest_fs_key_running(p, (*pp)->u.j.key) < ATTEST_FS_PER_KEY)
			return attest_fs_unlink(p, pp);
	return NULL;
}

static void attest_fs_node_free(struct attest_fs_node *n)
{
	explicit_bzero(n, sizeof(*n));
	free(n);
}

static void attest_fs_run(const struct attest_fs_job *j, struct attest_fs_done *d)
{
	if (j->kind == ATTEST_FS_VOUCH) {
		d->result = attest_vouch_exe(&j->facts, &d->vouched, d->why, sizeof(d->why));
		return;
	}
	snprintf(d->path, sizeof(d->path), "%s", j->path);
	d->token = malloc(j->token_cap);
	d->token_r = d->token ? attest_read_token(j->pid, j->connect_boot_ns, &j->facts.creds, j->path, d->token,
						  j->token_cap, &d->token_len)
			      : -ENOMEM;
	if (d->token_r < 0) {
		free(d->token); /* wiped by attest_read_token */
		d->token = NULL;
	}
}

void attest_fs_done_release(struct attest_fs_done *d)
{
	if (d->fd >= 0)
		close(d->fd);
	d->fd = -1;
	if (d->token) {
		explicit_bzero(d->token, d->token_len);
		free(d->token);
		d->token = NULL;
	}
}

static void attest_fs_destroy(struct attest_fs *p)
{
	while (p->done) {
		struct attest_fs_node *n = p->done;

		p->done = n->next;
		attest_fs_done_release(&n->u.d);
		attest_fs_node_free(n);
	}
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->wake);
	close(p->efd);
	free(p);
}

static void *attest_fs_main(void *arg)
{
	struct attest_fs_thread *t = arg;
	struct attest_fs *p = t->pool;
	bool last;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		struct attest_fs_node *n = NULL;
		struct attest_fs_job *j;
		struct attest_fs_done *d;
		uint64_t one = 1;

		while (!p->stop && !(n = attest_fs_pick(p)))
			pthread_cond_wait(&p->wake, &p->lock);
		if (p->stop)
			break;
		t->busy = true;
		t->key = n->u.j.key;
		p->running++;
		pthread_mutex_unlock(&p->lock);

		/* the node becomes the result: the job is read out of it first */
		j = malloc(sizeof(*j));
		d = &n->u.d;
		if (j) {
			*j = n->u.j;
			memset(d, 0, sizeof(*d));
			d->tag = j->tag;
			d->job = n->job;
			d->kind = j->kind;
			d->fd = j->fd;
			attest_fs_run(j, d);
			explicit_bzero(j, sizeof(*j));
			free(j);
		} else {
			int fd = n->u.j.fd;
			enum attest_fs_kind kind = n->u.j.kind;
			uint64_t tag = n->u.j.tag;

			memset(d, 0, sizeof(*d));
			d->tag = tag;
			d->job = n->job;
			d->kind = kind;
			d->fd = fd;
			d->result = ATTEST_UNREADABLE;
			d->token_r = -ENOMEM;
			snprintf(d->why, sizeof(d->why), "out of memory");
		}

		pthread_mutex_lock(&p->lock);
		t->busy = false;
		p->running--;
		/* its key may have another job waiting that this one held back */
		pthread_cond_broadcast(&p->wake);
		if (p->stop) {
			attest_fs_done_release(d);
			attest_fs_node_free(n);
			p->n_jobs--;
			break;
		}
		*p->done_tail = n;
		p->done_tail = &n->next;
		/* an eventfd write only fails when the counter would overflow: never here */
		if (write(p->efd, &one, sizeof(one)) != sizeof(one))
			continue;
	}
	p->alive--;
	last = p->orphaned && p->alive == 0;
	pthread_mutex_unlock(&p->lock);
	if (last)
		attest_fs_destroy(p);
	return NULL;
}

int attest_fs_start(struct attest_fs **ret, size_t max_jobs)
{
	struct attest_fs *p = calloc(1, sizeof(*p));
	sigset_t all, old;
	int r = 0;

	if (!p)
		return -ENOMEM;
	p->max_jobs = max_jobs;
	p->todo_tail = &p->todo;
	p->done_tail = &p->done;
	p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (p->efd == -1) {
		r = -errno;
		free(p);
		return r;
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->wake, NULL);
	/* no signal for them: one would interrupt a FUSE request (and send the server an
	 * INTERRUPT) for nothing; the loop takes signals by its signalfd */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (size_t i = 0; i < ATTEST_FS_THREADS && r == 0; i++) {
		p->t[i].pool = p;
		pthread_mutex_lock(&p->lock);
		if ((r = -pthread_create(&p->t[i].thread, NULL, attest_fs_main, &p->t[i])) == 0) {
			p->t[i].started = true;
			p->alive++;
		}
		pthread_mutex_unlock(&p->lock);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r < 0) {
		attest_fs_free(p);
		return r;
	}
	*ret = p;
	return 0;
}

int attest_fs_fd(const struct attest_fs *p)
{
	return p->efd;
}

enum attest_result attest_fs_submit(struct attest_fs *p, const struct attest_fs_job *j, uint64_t *ret_job)
{
	struct attest_fs_node *n = calloc(1, sizeof(*n));
	enum attest_result r = ATTEST_OK;

	pthread_mutex_lock(&p->lock);
	if (!n || p->n_jobs >= p->max_jobs) {
		r = ATTEST_BUSY;
	} else {
		n->u.j = *j;
		n->job = ++p->next_job;
		*ret_job = n->job;
		*p->todo_tail = n;
		p->todo_tail = &n->next;
		p->n_jobs++;
		pthread_cond_broadcast(&p->wake);
		n = NULL;
	}
	pthread_mutex_unlock(&p->lock);
	if (r != ATTEST_OK) {
		if (j->fd >= 0)
			close(j->fd);
		free(n);
	}
	return r;
}

void attest_fs_cancel(struct attest_fs *p, uint64_t job)
{
	struct attest_fs_node *n = NULL;

	pthread_mutex_lock(&p->lock);
	for (struct attest_fs_node **pp = &p->todo; *pp; pp = &(*pp)->next)
		if ((*pp)->job == job) {
			n = attest_fs_unlink(p, pp);
			p->n_jobs--;
			break;
		}
	pthread_mutex_unlock(&p->lock);
	if (n) {
		if (n->u.j.fd >= 0)
			close(n->u.j.fd);
		attest_fs_node_free(n);
	}
}

int attest_fs_collect(struct attest_fs *p, struct attest_fs_done *ret)
{
	struct attest_fs_node *n;
	uint64_t count;

	/* EAGAIN: nothing counted since the last call; the queue is looked at anyway */
	if (read(p->efd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		return 0;
	pthread_mutex_lock(&p->lock);
	n = p->done;
	if (n) {
		p->done = n->next;
		if (!p->done)
			p->done_tail = &p->done;
		p->n_jobs--;
	}
	pthread_mutex_unlock(&p->lock);
	if (!n)
		return 0;
	*ret = n->u.d; /* the token and the fd are the caller's now */
	attest_fs_node_free(n);
	return 1;
}

unsigned attest_fs_running(struct attest_fs *p)
{
	unsigned n;

	pthread_mutex_lock(&p->lock);
	n = p->running;
	pthread_mutex_unlock(&p->lock);
	return n;
}

unsigned attest_fs_free(struct attest_fs *p)
{
	bool join[ATTEST_FS_THREADS];
	unsigned left = 0;

	if (!p)
		return 0;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->wake);
	/* a thread in a job may be in one that never ends (a FUSE request nobody
	 * answers, not even to a signal but SIGKILL): it is not waited for */
	for (size_t i = 0; i < ATTEST_FS_THREADS; i++) {
		join[i] = p->t[i].started && !p->t[i].busy;
		if (p->t[i].started && p->t[i].busy) {
			pthread_detach(p->t[i].thread);
			left++;
		}
	}
	while (p->todo) {
		struct attest_fs_node *n = attest_fs_unlink(p, &p->todo);

		if (n->u.j.fd >= 0)
			close(n->u.j.fd);
		attest_fs_node_free(n);
		p->n_jobs--;
	}
	pthread_mutex_unlock(&p->lock);
	for (size_t i = 0; i < ATTEST_FS_THREADS; i++)
		if (join[i])
			pthread_join(p->t[i].thread, NULL);
	pthread_mutex_lock(&p->lock);
	if (p->alive > 0) {
		p->orphaned = true; /* the last one frees it */
		pthread_mutex_unlock(&p->lock);
		return left;
	}
	pthread_mutex_unlock(&p->lock);
	attest_fs_destroy(p);
	return left;
}
