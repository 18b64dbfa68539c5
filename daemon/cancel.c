/*
 * Cancel: a CancelRequest names a session by the key pgtetherd gave its client; the
 * real key goes to the server that runs that session's backend, once what the
 * client sent before it is there (PostgreSQL drops a cancel that reaches an idle
 * backend), and again while the backend had not yet seen the query. Moved out of
 * session.c (issue 13).
 */
#include "cancel.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "upstream.h"

/* Everything t's client sent is with the server (none of it partial, held, or
 * queued behind pgtether's own catalog query, which a cancel would hit instead). */
static bool cancel_can_go(const struct session *t)
{
	return t->c2u.off == t->c2u.ready && t->c2u.ready == t->c2u.len && !t->lookup_active;
}

/* A CancelRequest: find the session it names (same key, same workload cgroup) and
 * forward the real key to its upstream. Unknown keys are dropped silently, as
 * PostgreSQL does. */
void cancel_request(struct session_env *env, struct session *s, const uint8_t *pkt)
{
	uint32_t pid = pgwire_get32(pkt + 8), secret = pgwire_get32(pkt + 12);
	struct session *t;

	/* the whole key: "pids" are random, two sessions may share one */
	for (t = env->head; t; t = t->next)
		if (t != s && t->state == SESSION_RELAYING && t->have_up_key && t->key_pid == pid &&
		    CRYPTO_memcmp(&t->key_secret, &secret, sizeof(secret)) == 0 && t->origin.cgroup_id == s->origin.cgroup_id)
			break;
	if (!t) {
		log_warn("cancel", "id=%llu: a CancelRequest with an unknown key was ignored", (unsigned long long)s->id);
		session_free(env, s);
		return;
	}
	if (t->held_id && !t->held_decision) {
		/* what the client cancels waits for approval here, not in the database */
		char err[160];

		session_free(env, s);
		session_decide(env, t->held_id, false, NULL, "a cancel request from the client", NULL, err, sizeof(err));
		return;
	}
	s->cancel_pid = t->up_pid;
	s->cancel_secret = t->up_secret;
	s->cancel_of = t->id;
	/* the server that runs the backend: the address t is connected to, alone */
	s->up_addrs[0] = t->up_addrs[t->up_try];
	s->n_up_addrs = 1;
	s->up_try = 0;
	s->state = SESSION_CANCELLING;
	sbuf_set_events(env->epfd, &s->client, 0);
	/*
	 * PostgreSQL drops a cancel that reaches an idle backend, and the client sent
	 * what it cancels before it opened this connection: those bytes must reach the
	 * server first. Take what t's client has sent already; what of it cannot be
	 * written upstream yet, the cancel waits for (cancel_release).
	 */
	if (!t->c2u.eof)
		session_relay_event(env, t, &t->client, EPOLLIN);
	if (t->dead || t->state != SESSION_RELAYING || t->draining) {
		session_free(env, s);
		return;
	}
	if (t->cancel && (t->cancel_next || (!t->cancel_held && !cancel_over(t->cancel, t)))) {
		/* one under way (or waiting) already does what this one asks */
		session_free(env, s);
		return;
	}
	s->cancel_for = t;
	if (t->cancel) {
		/* The one under way was for a query that has ended (its client was
		 * answered at its first try and went on), or the client's next
		 * statement waits for it: this one is for what comes next, and goes
		 * once that one's last try is closed (session_free), so that no try of
		 * that one can land on what this one does not cancel. */
		t->cancel_next = s;
		s->cancel_waiting = true;
		return;
	}
	t->cancel = s;
	if (!cancel_can_go(t)) {
		s->cancel_waiting = true;
		return;
	}
	cancel_forward(env, s);
}

/* The cancel c goes to the backend's server now. */
void cancel_forward(struct session_env *env, struct session *c)
{
	struct session *t = c->cancel_for;
	char buf[ADDR_STRLEN];

	c->cancel_waiting = false;
	c->cancel_sent = false;
	c->cancel_inflight = true;
	/* amid extended messages no Sync followed, only an Execute the server has not
	 * ended yet is a query outstanding: a backend idle after its last one drops a
	 * cancel, and tries for nothing would hold the client's next statement */
	c->cancel_busy = t && (t->pending_count > 0 || (t->c_unsynced && t->c_exec_open));
	c->cancel_unsynced = t && t->c_unsynced;
	c->cancel_rfq = t ? t->rfq_count : 0;
	c->cancel_ends = t ? t->ends_count : 0;
	c->up_try = 0;
	if (c->cancel_tries == 0)
		clock_gettime(CLOCK_MONOTONIC, &c->cancel_went); /* a cancel that waited gets its whole while */
	if (c->cancel_tries++ == 0)
		log_info("cancel", "id=%llu forwards a cancel of session %llu to %s", (unsigned long long)c->id,
			 (unsigned long long)c->cancel_of, addr_format(&c->up_addrs[0], buf));
	if (upstream_connect(env, c) < 0)
		session_free(env, c);
}

/* After t sent client bytes upstream: a cancel that waited for them goes now. */
void cancel_release(struct session_env *env, struct session *t)
{
	if (cancel_can_go(t))
		cancel_forward(env, t->cancel);
}

/* What waited for t's cancel goes on: a statement its client sent while the tries
 * went, the bytes a try held, and then a cancel that waited for these. */
void cancel_ungate(struct session_env *env, struct session *t)
{
	if (t->state != SESSION_RELAYING || t->dead)
		return;
	if (t->cancel_held && !cancel_holds(t)) {
		t->cancel_held = false;
		session_relay_event(env, t, &t->client, EPOLLIN); /* the held statement is taken again */
	} else if (t->c2u.ready > t->c2u.off) {
		session_relay_event(env, t, &t->upstream, EPOLLOUT);
	}
	if (!t->dead && t->cancel && t->cancel->cancel_waiting)
		cancel_release(env, t);
}

/* Whether the query the cancel c was sent for has ended since its last try went:
 * a ReadyForQuery, or amid extended messages with no Sync after them (pipelines
 * that flush), the end of a statement. */
bool cancel_over(const struct session *c, const struct session *t)
{
	if (!c->cancel_tries)
		return false; /* it has not gone yet: it is for what is outstanding now */
	return t->rfq_count != c->cancel_rfq || (c->cancel_unsynced && t->ends_count != c->cancel_ends);
}

/*
 * The server closed the cancel connection: it has signalled the backend. A backend
 * that was still reading the query (it had not been scheduled since the bytes
 * arrived) drops the signal, as an idle one does; while that query is outstanding,
 * the cancel goes again, spaced further each time, for SESSION_CANCEL_RETRY_FOR_MS.
 * Nothing sent after it can be hit: the client's next statement waits for the last
 * try (cancel_holds), and once the query has ended nothing goes while a try is out
 * (cancel_gates).
 */
bool cancel_again(const struct session *c)
{
	const struct session *t = c->cancel_for;

	return t && c->cancel_busy && !cancel_over(c, t) && session_ms_since(&c->cancel_went) < SESSION_CANCEL_RETRY_FOR_MS;
}

/*
 * Whether t's client's bytes wait for the cancel c: while its first try is out (the
 * client was told nothing yet; libpq, pgx and JDBC send nothing more meanwhile), and
 * while a later try is out once the query it is for has ended. The bytes of the
 * query itself (CopyData, a Sync) go on during the later tries: a COPY FROM STDIN
 * acts on a cancel only when its data comes.
 */
bool cancel_gates(const struct session *c, const struct session *t)
{
	return c->cancel_inflight && !c->cancel_timer && (c->cancel_tries <= 1 || cancel_over(c, t));
}

/* Whether t's client's next statement (anything but the COPY data, Sync or Flush of
 * the query under way) waits: its cancel's client was answered and the tries that
 * follow are pgtether's own, which must not land on a statement sent after it. */
bool cancel_holds(const struct session *t)
{
	return t->cancel && t->cancel->cancel_answered;
}

/* The next try, SESSION_CANCEL_RETRY_MS from now after the second, twice as far for
 * each try after it up to SESSION_CANCEL_RETRY_MAX_MS: a timerfd takes the place of the
 * closed upstream socket (cancel_forward replaces it). 0 or -errno. */
static int cancel_retry_later(struct session_env *env, struct session *c)
{
	unsigned doublings = c->cancel_tries - 2; /* the second try went at once */
	long ms = doublings < 8 ? (long)SESSION_CANCEL_RETRY_MS << doublings : SESSION_CANCEL_RETRY_MAX_MS;
	struct itimerspec its;
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC), r;

	if (ms > SESSION_CANCEL_RETRY_MAX_MS)
		ms = SESSION_CANCEL_RETRY_MAX_MS;
	its = (struct itimerspec){ .it_value = { ms / 1000, (ms % 1000) * 1000000L } };
	if (fd == -1)
		return -errno;
	if (timerfd_settime(fd, 0, &its, NULL) == -1) {
		close(fd);
		return -errno;
	}
	sbuf_close(env->epfd, &c->upstream);
	c->upstream.fd = fd;
	c->cancel_sent = false;
	if ((r = sbuf_watch(env->epfd, &c->upstream, EPOLLIN)) < 0) {
		close(fd);
		c->upstream.fd = -1;
		return r;
	}
	c->cancel_timer = true;
	return 0;
}

void cancel_done(struct session_env *env, struct session *c)
{
	struct session *t = c->cancel_for;

	if (cancel_again(c)) {
		/* PostgreSQL closes the client's connection once it has signalled the
		 * backend, and clients wait for that close (within a deadline: pgconn's is
		 * short): the client is answered now, the tries after this one are
		 * pgtether's own. */
		sbuf_close(env->epfd, &c->client);
		c->cancel_answered = true;
		/* the first again at once (the error may just be on its way), then spaced:
		 * a backend not scheduled for a while gets the while */
		if (c->cancel_tries < 2 || cancel_retry_later(env, c) < 0)
			cancel_forward(env, c);
		cancel_ungate(env, t); /* the query's own bytes go on during the tries */
		return;
	}
	if (c->cancel_tries > 1)
		log_info("cancel", "id=%llu: the cancel of session %llu took %u tries", (unsigned long long)c->id,
			 (unsigned long long)c->cancel_of, c->cancel_tries);
	session_free(env, c); /* and the client's connection closes: its cancel is done */
}

/* t's server ended a statement or said ReadyForQuery: a cancel waiting for its next
 * try whose query is over ends now rather than at the try, so that what t's client
 * sent next does not wait for that long. */
void cancel_server_ended(struct session *t)
{
	struct itimerspec now = { .it_value = { 0, 1 } };

	if (t->cancel && t->cancel->cancel_timer && cancel_over(t->cancel, t))
		timerfd_settime(t->cancel->upstream.fd, 0, &now, NULL);
}
