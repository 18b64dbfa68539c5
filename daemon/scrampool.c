/*
 * The proof thread (scrampool.h): a queue of jobs, a queue of results, one thread
 * between them, an eventfd to wake the loop.
 */
#include "scrampool.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct scrampool_job {
	uint64_t job;
	char *password;             /* a copy, wiped and freed when done */
	struct scram_challenge ch;
};

struct scrampool {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	int efd;
	bool stop;
	size_t cap;
	/* jobs wait in todo, results in done; todo_n + running + done_n <= cap */
	struct scrampool_job *todo;
	size_t todo_head, todo_n;
	struct scrampool_done *done;
	size_t done_head, done_n;
	size_t running;
};

static void job_wipe(struct scrampool_job *j)
{
	if (j->password) {
		OPENSSL_cleanse(j->password, strlen(j->password));
		free(j->password);
	}
	OPENSSL_cleanse(j, sizeof(*j));
}

static void *scrampool_main(void *arg)
{
	struct scrampool *p = arg;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		struct scrampool_job j;
		struct scrampool_done d;
		uint64_t one = 1;

		while (!p->stop && p->todo_n == 0)
			pthread_cond_wait(&p->wake, &p->lock);
		if (p->stop)
			break;
		j = p->todo[p->todo_head];
		memset(&p->todo[p->todo_head], 0, sizeof(j));
		p->todo_head = (p->todo_head + 1) % p->cap;
		p->todo_n--;
		p->running++;
		pthread_mutex_unlock(&p->lock);

		memset(&d, 0, sizeof(d));
		d.job = j.job;
		d.result = scram_salted_password(j.password, &j.ch, d.salted);
		job_wipe(&j);

		pthread_mutex_lock(&p->lock);
		p->running--;
		/* room is certain: submit counts running and done jobs against cap */
		p->done[(p->done_head + p->done_n) % p->cap] = d;
		p->done_n++;
		OPENSSL_cleanse(&d, sizeof(d));
		/* an eventfd write only fails when the counter would overflow: never here */
		if (write(p->efd, &one, sizeof(one)) != sizeof(one))
			continue;
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int scrampool_start(struct scrampool **ret, size_t cap)
{
	struct scrampool *p;
	int r;

	if (cap == 0)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->cap = cap;
	p->efd = -1;
	p->todo = calloc(cap, sizeof(*p->todo));
	p->done = calloc(cap, sizeof(*p->done));
	if (!p->todo || !p->done) {
		r = -ENOMEM;
		goto fail;
	}
	p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (p->efd == -1) {
		r = -errno;
		goto fail;
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->wake, NULL);
	if ((r = pthread_create(&p->thread, NULL, scrampool_main, p)) != 0) {
		r = -r;
		pthread_mutex_destroy(&p->lock);
		pthread_cond_destroy(&p->wake);
		goto fail;
	}
	*ret = p;
	return 0;
fail:
	if (p->efd >= 0)
		close(p->efd);
	free(p->todo);
	free(p->done);
	free(p);
	return r;
}

int scrampool_fd(const struct scrampool *p)
{
	return p->efd;
}

int scrampool_submit(struct scrampool *p, uint64_t job, const char *password, const struct scram_challenge *ch)
{
	struct scrampool_job j = { job, strdup(password), *ch };
	int r = 0;

	if (!j.password)
		return -ENOMEM;
	pthread_mutex_lock(&p->lock);
	if (p->todo_n + p->running + p->done_n >= p->cap) {
		r = -EBUSY;
	} else {
		p->todo[(p->todo_head + p->todo_n) % p->cap] = j;
		p->todo_n++;
		pthread_cond_signal(&p->wake);
	}
	pthread_mutex_unlock(&p->lock);
	if (r < 0)
		job_wipe(&j);
	else
		OPENSSL_cleanse(&j, sizeof(j)); /* the queue holds the copy's pointer now */
	return r;
}

bool scrampool_cancel(struct scrampool *p, uint64_t job)
{
	bool found = false;

	pthread_mutex_lock(&p->lock);
	for (size_t i = 0; i < p->todo_n; i++) {
		struct scrampool_job *j = &p->todo[(p->todo_head + i) % p->cap];

		if (j->job != job)
			continue;
		job_wipe(j);
		/* close the gap: the later ones move up one place, order kept */
		for (size_t k = i; k + 1 < p->todo_n; k++)
			p->todo[(p->todo_head + k) % p->cap] = p->todo[(p->todo_head + k + 1) % p->cap];
		memset(&p->todo[(p->todo_head + p->todo_n - 1) % p->cap], 0, sizeof(*j));
		p->todo_n--;
		found = true;
		break;
	}
	pthread_mutex_unlock(&p->lock);
	return found;
}

int scrampool_collect(struct scrampool *p, struct scrampool_done *ret)
{
	uint64_t count;
	int got = 0;

	/* EAGAIN: nothing counted since the last call; the queue is looked at anyway */
	if (read(p->efd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		return 0;
	pthread_mutex_lock(&p->lock);
	if (p->done_n) {
		*ret = p->done[p->done_head];
		OPENSSL_cleanse(&p->done[p->done_head], sizeof(*ret));
		p->done_head = (p->done_head + 1) % p->cap;
		p->done_n--;
		got = 1;
	}
	pthread_mutex_unlock(&p->lock);
	return got;
}

size_t scrampool_jobs(struct scrampool *p)
{
	size_t n;

	pthread_mutex_lock(&p->lock);
	n = p->todo_n + p->running + p->done_n;
	pthread_mutex_unlock(&p->lock);
	return n;
}

void scrampool_free(struct scrampool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_signal(&p->wake);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->thread, NULL);
	for (size_t i = 0; i < p->todo_n; i++)
		job_wipe(&p->todo[(p->todo_head + i) % p->cap]);
	OPENSSL_cleanse(p->done, p->cap * sizeof(*p->done));
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->wake);
	close(p->efd);
	free(p->todo);
	free(p->done);
	free(p);
}
