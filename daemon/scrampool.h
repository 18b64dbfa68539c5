/*
 * The parent's proof thread: PBKDF2 for SCRAM logins (scram_salted_password), off the
 * event loop. Up to 10^6 iterations is some 0.6 s; computed in the loop, a worker
 * taken over could ask for one per session it holds and stall every other worker's
 * logins, accepts, cancels and status for that long each. The loop only parses
 * server-first, looks in the credential's cache and builds client-final from the
 * salted key (monitor_login.c); a miss is a job here, and the loop watches
 * scrampool_fd (an eventfd) for results, as it does the file-system threads'.
 *
 * One thread: what it costs the host is one core at most, whatever workers ask. Jobs
 * run in the order they came (the loop lets each worker have at most one in the pool,
 * so a worker's job waits behind at most one of every other worker's).
 */
#ifndef PGTETHER_SCRAMPOOL_H
#define PGTETHER_SCRAMPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scram.h"

struct scrampool;

struct scrampool_done {
	uint64_t job;               /* the submitter's number for it */
	int result;                 /* 0 or -errno */
	uint8_t salted[SCRAM_KEY_LEN]; /* the caller wipes it (OPENSSL_cleanse) */
};

/* One thread, at most cap jobs waiting, running or with a result not collected.
 * 0 or -errno. */
int scrampool_start(struct scrampool **ret, size_t cap);
int scrampool_fd(const struct scrampool *p);

/* Queues Hi(password, ch) as job (a number the caller never reuses). The password is
 * copied, and the copy wiped when the job is done or cancelled. 0, -EBUSY (cap jobs
 * in the pool) or -ENOMEM. */
int scrampool_submit(struct scrampool *p, uint64_t job, const char *password, const struct scram_challenge *ch);

/* Drops job if it has not started: true. A job running (or done) still gives its
 * result, which the caller then ignores. */
bool scrampool_cancel(struct scrampool *p, uint64_t job);

/* 1 and *ret filled when a result waited, else 0. Clears the eventfd's count first:
 * call until it returns 0. */
int scrampool_collect(struct scrampool *p, struct scrampool_done *ret);

/* Jobs in the pool (waiting, running, done but not collected). */
size_t scrampool_jobs(struct scrampool *p);

/* Stops the thread (after the job it is in) and frees everything, wiping passwords
 * and keys; NULL is fine. */
void scrampool_free(struct scrampool *p);

#endif
