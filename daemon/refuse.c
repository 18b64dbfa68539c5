/*
 * Ending a session the way PostgreSQL refuses a connection (session_int.h): a FATAL
 * ErrorResponse with the SQLSTATE and the message a developer can act on that the
 * fault table gives for the login fault (fault.h: the caller names the fault and the
 * facts it quotes, never a text of its own), after the client's startup packet when
 * it has not sent it yet (an SSLRequest answered 'N' first); refusals for a login cap
 * held briefly or answered at once. Moved out of session.c (issue 13).
 */
#include "session_int.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"

void session_queue_error(struct session *s, const char *severity, const char *sqlstate, const char *msg)
{
	uint8_t m[640];
	size_t n = pgwire_error_response(m, sizeof(m), severity, sqlstate, msg, NULL);

	/* what is held (a message not yet whole, not yet masked or checked) never goes
	 * out: the error follows the last message that may */
	s->u2c.len = s->u2c.ready;
	if (n && n <= sbuf_room(&s->u2c))
		sbuf_put(&s->u2c, m, n);
}

/* The words of login fault f for s: the facts of this refusal (ff, or none) with the
 * session's own (its upstream, role, rule, settings). */
static void refuse_text(struct session_env *env, const struct session *s, enum fault_code f,
			const struct fault_facts *ff, struct fault_text *ret)
{
	struct fault_facts x = ff ? *ff : (struct fault_facts){ 0 };

	x.rule = s->rule;
	x.client_encoding = s->client_encoding;
	x.max_message_bytes = env->cfg->max_message_bytes;
	x.mask_refresh = env->cfg->mask_refresh;
	x.memory_budget = env->cfg->memory_budget;
	x.upstream = s->upstream_name;
	x.role = s->role;
	x.credentials_file = env->cfg->credentials_file;
	if (fault_describe(f, &x, ret) < 0)
		fault_describe(FAULT_OUT_OF_MEMORY, &x, ret); /* not a fault: unreachable */
	if (ret->reason == x.detail)
		ret->reason = "refused"; /* a relay fault's detail: not kept past this call */
}

/*
 * Ends the session with the FATAL ErrorResponse of t. Before the client's
 * StartupMessage arrived it is read first (SSLRequest answered 'N'), as PostgreSQL
 * does; the upstream, if any, is closed at once. Logged as conn.refused unless the
 * caller logs (once per flood of the same refusal).
 */
static void refuse(struct session_env *env, struct session *s, const struct fault_text *t, bool logged)
{
	bool have_startup = s->state != SESSION_STARTUP;
	struct logline l;

	snprintf(s->refuse_msg, sizeof(s->refuse_msg), "%s", t->msg);
	snprintf(s->refuse_sqlstate, sizeof(s->refuse_sqlstate), "%s", t->sqlstate ? t->sqlstate : "08004");
	s->close_reason = t->reason; /* the recording's: a literal of the table */

	if (!logged) {
		log_begin(&l, LOG_LEVEL_WARN, "conn.refused");
		if (s->origin.tgid) {
			session_log_identity(&l, s);
		} else {
			char buf[ADDR_STRLEN];

			log_u64(&l, "id", s->id);
			log_str(&l, "peer", addr_format(&s->peer, buf));
		}
		log_str(&l, "sqlstate", s->refuse_sqlstate);
		log_str(&l, "reason", t->reason);
		log_str(&l, "msg", s->refuse_msg);
		log_end(&l, LOG_LEVEL_WARN);
	}

	if (s->upstream.fd >= 0) {
		tls_free(s->upstream.ssl);
		s->upstream.ssl = NULL;
		sbuf_close(env->epfd, &s->upstream);
	}
	s->state = SESSION_REFUSING;
	OPENSSL_cleanse(s->c2u.data, s->c2u.cap); /* login messages may hold the credential */
	s->c2u.off = s->c2u.ready = s->c2u.len = 0;
	clock_gettime(CLOCK_MONOTONIC, &s->started); /* the refusal gets its own timeout */
	if (have_startup) {
		session_queue_error(s, "FATAL", s->refuse_sqlstate, s->refuse_msg);
		s->in.eof = true; /* nothing more to read: flush, then close */
		sbuf_set_events(env->epfd, &s->client, EPOLLOUT);
	} else {
		sbuf_set_events(env->epfd, &s->client, EPOLLIN);
	}
}

void session_refuse(struct session_env *env, struct session *s, enum fault_code f, const struct fault_facts *ff)
{
	struct fault_text t;

	refuse_text(env, s, f, ff, &t);
	refuse(env, s, &t, false);
}

/* In REFUSING before the StartupMessage: reads it, answering SSL/GSS with 'N'.
 * Returns true when the session is finished. */
bool session_refuse_step(struct session *s)
{
	ssize_t n;
	size_t plen = 0;

	n = sbuf_recv(&s->client, s->in.data + s->in.len, PGWIRE_STARTUP_MAX - s->in.len);
	if (n == 0 || (n < 0 && n != -EAGAIN && n != -EINTR))
		return true;
	if (n > 0)
		s->in.len += (size_t)n;
	for (;;) {
		switch (pgwire_startup_classify(s->in.data, s->in.len, &plen)) {
		case PGWIRE_STARTUP_INCOMPLETE:
			return false; /* PGWIRE_STARTUP_MAX bounds the packet */
		case PGWIRE_STARTUP_SSL:
		case PGWIRE_STARTUP_GSSENC:
			/* PostgreSQL allows one SSL and one GSS negotiation; more is abuse,
			 * and every answer takes buffer space */
			if (++s->negotiations > 2 || sbuf_room(&s->u2c) == 0)
				return true;
			sbuf_put(&s->u2c, "N", 1);
			memmove(s->in.data, s->in.data + plen, s->in.len - plen);
			s->in.len -= plen;
			continue;
		case PGWIRE_STARTUP_MESSAGE:
			session_queue_error(s, "FATAL", s->refuse_sqlstate, s->refuse_msg);
			s->in.eof = true;
			return false;
		default:
			return true;
		}
	}
}

/*
 * A connection over a login cap, when SESSION_MAX_CAPPED refusals are under way
 * already: answered at once, without a session. What the client sent already is
 * read first, so the close sends a FIN rather than a reset that could discard the
 * error; an SSLRequest among it gets 'N' before the error. Held for no time, so a
 * flood of them cannot pile up file descriptors.
 */
void session_turn_away(struct session_env *env, int fd, const char *sqlstate, const char *msg)
{
	uint8_t m[641], junk[4096];
	size_t n, plen;
	ssize_t got = recv(fd, junk, sizeof(junk), MSG_DONTWAIT);
	enum pgwire_startup_kind k = got > 0 ? pgwire_startup_classify(junk, (size_t)got, &plen) : PGWIRE_STARTUP_INCOMPLETE;
	bool negotiating = k == PGWIRE_STARTUP_SSL || k == PGWIRE_STARTUP_GSSENC;

	m[0] = 'N';
	n = pgwire_error_response(m + 1, sizeof(m) - 1, "FATAL", sqlstate, msg, NULL);
	while (got > 0 && recv(fd, junk, sizeof(junk), MSG_DONTWAIT) > 0)
		; /* bounded by the socket's receive buffer */
	if (n && send(fd, negotiating ? m : m + 1, negotiating ? n + 1 : n, MSG_DONTWAIT | MSG_NOSIGNAL) == -1) {
		/* a fresh socket's send buffer takes 641 bytes; a peer already gone gets nothing */
	}
	shutdown(fd, SHUT_WR);
	epoll_ctl(env->epfd, EPOLL_CTL_DEL, fd, NULL); /* the parent holds the same socket */
	close(fd);
}

/*
 * Refuses s for a login cap: as any refusal (the startup packet is read, SSLRequest
 * answered 'N', then the FATAL), but no longer counted as a login, and only while
 * fewer than SESSION_MAX_CAPPED such refusals are under way, for at most
 * SESSION_CAPPED_TIMEOUT_S; beyond that, answered at once and closed. Frees s or
 * hands it to the refusal.
 */
void session_refuse_capped(struct session_env *env, struct session *s, enum fault_code f, const struct fault_facts *ff)
{
	struct fault_text t;

	refuse_text(env, s, f, ff, &t);
	if (env->capped < SESSION_MAX_CAPPED) {
		s->capped = true;
		env->capped++;
		s->state = SESSION_STARTUP; /* nothing read yet: refuse() reads the startup packet */
		refuse(env, s, &t, true); /* the parent logs a flood of them (conn.capped) */
		return;
	}
	{
		int fd = s->client.fd;

		s->client.fd = -1;
		session_free(env, s);
		session_turn_away(env, fd, t.sqlstate, t.msg);
	}
}
