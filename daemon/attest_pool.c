/*
 * The parent's threads for what may wait on a workload's file systems (attest.h): the
 * file-system threads (token files and the executable's path, looked up below the
 * workload's root, and the executable's hash: open and read of /proc/PID/exe's file,
 * which a FUSE mount the workload serves can make wait as long as it likes). The event
 * loop only queues jobs and collects results through their eventfd.
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
#include <time.h>
#include <unistd.h>

/* ---- the file-system threads ---------------------------------------------------- */

struct attest_fs_thread {
	struct attest_fs *pool;
	pthread_t thread;
	bool started, busy;
	bool cancel;              /* the running job's result is nobody's (attest_hash_fd stops) */
	uint64_t key, job;        /* the running job's, while busy */
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

static void attest_fs_run(struct attest_fs_thread *t, const struct attest_fs_job *j, struct attest_fs_done *d)
{
	if (j->kind == ATTEST_FS_HASH) {
		d->exe_key = j->facts.exe_key;
		d->result = attest_hash_fd(j->fd, &j->facts.exe_key, &j->facts.creds, &t->cancel, d->sha256, d->why,
					   sizeof(d->why));
		close(d->fd); /* only the hash is wanted back */
		d->fd = -1;
		return;
	}
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
		t->job = n->job;
		__atomic_store_n(&t->cancel, false, __ATOMIC_RELAXED);
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
			attest_fs_run(t, j, d);
			explicit_bzero(j, sizeof(*j));
			free(j);
		} else {
			int fd = n->u.j.fd;
			enum attest_fs_kind kind = n->u.j.kind;
			uint64_t tag = n->u.j.tag;
			struct attest_exe_key exe_key = n->u.j.facts.exe_key;

			memset(d, 0, sizeof(*d));
			d->exe_key = exe_key;
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
	/* running: a hash stops at its next read (its result, still coming, is dropped) */
	for (size_t i = 0; !n && i < ATTEST_FS_THREADS; i++)
		if (p->t[i].busy && p->t[i].job == job)
			__atomic_store_n(&p->t[i].cancel, true, __ATOMIC_RELAXED);
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
	struct timespec deadline;
	unsigned left = 0;

	if (!p)
		return 0;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->wake);
	/* a hash in progress sees its cancel between two reads and ends at once: it is
	 * given ATTEST_FS_STOP_GRACE_MS (each job's end broadcasts wake) */
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_nsec += ATTEST_FS_STOP_GRACE_MS * 1000000L;
	deadline.tv_sec += deadline.tv_nsec / 1000000000L;
	deadline.tv_nsec %= 1000000000L;
	for (size_t i = 0; i < ATTEST_FS_THREADS; i++)
		if (p->t[i].started && p->t[i].busy)
			__atomic_store_n(&p->t[i].cancel, true, __ATOMIC_RELAXED);
	while (p->running > 0 && pthread_cond_timedwait(&p->wake, &p->lock, &deadline) == 0)
		;
	/* a thread still in a job may be in one that never ends (a FUSE request nobody
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
