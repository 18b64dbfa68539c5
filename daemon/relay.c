/*
 * The relay of a logged-in session: moves what each end sent to the other through
 * its half of the protocol (client_side.c, server_side.c), keeps epoll's interest to
 * what the buffers have room for, and ends the session by the fault a half returned
 * (session_fault) or when either end goes. A cancel under way holds the client's
 * next bytes back until the server has had the cancel (cancel.c). Private to the
 * session's modules (session_int.h).
 */
#include "session_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cancel.h"
#include "client_side.h"
#include "server_side.h"
#include "privsep.h"
#include "worker.h"

/* u2c keeps its grown room while masks make the rows longer (u2c_kept) */
static inline void buf_shrink(struct session *s, struct session_buf *b)
{
	if (b == &s->u2c && s->u2c_kept)
		return;
	sbuf_shrink(b, &s->acct);
}

/* The session's rule when rows are looked at (it masks, or records results), else NULL. */
const struct policy_rule *session_masking_rule(struct session_env *env, struct session *s)
{
	const struct policy_rule *r = s->rule[0] ? session_rule(env, s) : NULL;

	return r && (r->n_masks || (r->record_results && s->rec)) ? r : NULL;
}

/* While a cancel of s is under way at the server, what s's client sends next may
 * wait (cancel_gates): it reaches the server after the cancel did, so the cancel
 * cannot stop it. */
static bool c2u_gated(const struct session *s)
{
	return s->cancel && cancel_gates(s->cancel, s);
}

/* What the client of a session whose last words drain sends meanwhile is read and
 * dropped (close_after_drain says why). 0, or -1 when the client end is broken. */
static int drain_discard(struct session *s)
{
	for (int i = 0; i < 4 && !s->c2u.eof; i++) {
		ssize_t n = sbuf_recv(&s->client, s->c2u.data, s->c2u.cap);

		if (n == 0)
			s->c2u.eof = true;
		else if (n < 0)
			return n == -EAGAIN || n == -EINTR ? 0 : -1;
	}
	return 0;
}

/* A step of a session's drain (close_after_drain): the client gets what u2c holds,
 * then a FIN, and what it sends meanwhile is read and dropped, until it closes too. */
static void drain_step(struct session_env *env, struct session *s, uint32_t events)
{
	if ((events & EPOLLERR) || drain_discard(s) < 0 || sbuf_flush(&s->u2c, &s->client, &s->s_scan) < 0) {
		session_close(env, s, s->refuse_msg);
		return;
	}
	if (s->u2c.ready == s->u2c.off && !s->u2c.shut) {
		/* all of it went: bytes held back (a message the server does not finish
		 * now) never go */
		if (s->client.ssl)
			tls_shutdown(s->client.ssl);
		shutdown(s->client.fd, SHUT_WR);
		s->u2c.shut = true;
	}
	if (s->u2c.shut && s->c2u.eof) {
		session_close(env, s, s->refuse_msg);
		return;
	}
	sbuf_set_events(env->epfd, &s->client, (s->u2c.shut ? 0 : EPOLLOUT) | (s->c2u.eof ? 0 : EPOLLIN));
}

static uint32_t interest(const struct session_buf *in, size_t reserve, const struct session_buf *out)
{
	uint32_t ev = 0;

	if (!in->eof && sbuf_room(in) > reserve)
		ev |= EPOLLIN;
	if (out->ready > out->off)
		ev |= EPOLLOUT;
	return ev;
}

void session_relay_event(struct session_env *env, struct session *s, struct session_end *end, uint32_t events)
{
	bool from_client = end == &s->client;
	struct session_buf *in = from_client ? &s->c2u : &s->u2c;
	struct session_buf *out = from_client ? &s->u2c : &s->c2u;
	struct session_end *other = from_client ? &s->upstream : &s->client;
	const char *who = from_client ? "client" : "upstream";
	char reason[160];
	enum fault_code f;
	bool kick = false;
	ssize_t n;
	int r = 0;

	if (s->draining) {
		/* the upstream closed when the drain began: nothing of it ends the drain */
		if (from_client)
			drain_step(env, s, events);
		return;
	}

	if (events & EPOLLERR) {
		int err = 0;
		socklen_t len = sizeof(err);

		getsockopt(end->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		snprintf(reason, sizeof(reason), "%s error: %s", who, strerror(err ? err : EIO));
		if (from_client)
			session_close(env, s, reason);
		else
			session_fault(env, s, FAULT_UPSTREAM_LOST, reason);
		return;
	}
	if (events & (EPOLLIN | EPOLLHUP)) {
		n = sbuf_fill(in, end, from_client ? 0 : server_side_reserve(env, s),
			      from_client ? &s->bytes_c2u : &s->bytes_u2c);
		if (n < 0) {
			snprintf(reason, sizeof(reason), "%s error: %s", who, strerror((int)-n));
			if (from_client)
				session_close(env, s, reason);
			else
				session_fault(env, s, FAULT_UPSTREAM_LOST, reason);
			return;
		}
		if (in->eof && !out->eof && !s->closed_by)
			s->closed_by = from_client ? "client closed" : "upstream closed";
		if (from_client && in->eof)
			s->c_drop = 0; /* nothing more comes: a held partial header is dropped below */
		if (!from_client && in->eof && !s->c2u.eof && s->c_terminated && s->c2u.ready == s->c2u.off) {
			/* the client said Terminate and the server did: no error is owed */
			session_close(env, s, "client terminated");
			return;
		}
		if (!from_client && in->eof && !s->c2u.eof) {
			session_fault(env, s, FAULT_UPSTREAM_LOST, "upstream closed");
			return;
		}
		if (!from_client && s->lookup_active) {
			int l = server_side_lookup_scan(env, s);

			if (l < 0)
				return; /* the session ended */
			kick = l > 0;
		}
		f = from_client ? client_side_filter(env, s) : server_side_scan(env, s);
		if (!from_client && f == FAULT_NONE && s->path_waiting && client_side_can_ask(s)) {
			/* a statement waits for the search_path: it can be asked now */
			s->path_waiting = false;
			kick = true;
		} else if (!from_client && f == FAULT_NONE && s->path_waiting && !s->pending_count) {
			s->path_waiting = false; /* an aborted transaction: check_statement denies */
			kick = true;
		}
		if (f != FAULT_NONE) {
			session_fault(env, s, f, NULL);
			return;
		}
		if ((!from_client || !c2u_gated(s)) && (r = sbuf_flush(in, other, from_client ? &s->c_scan : &s->s_scan)) < 0) {
			snprintf(reason, sizeof(reason), "%s error: %s", from_client ? "upstream" : "client", strerror(-r));
			session_close(env, s, reason);
			return;
		}
		buf_shrink(s, from_client ? &s->c2u : &s->u2c);
		if (from_client && (s->notice_len || (s->pending_count && s->pending[s->pending_head] == 'F'))) {
			/* a refusal with nothing before it: the client is owed it now */
			if ((f = server_side_scan(env, s)) != FAULT_NONE) {
				session_fault(env, s, f, NULL);
				return;
			}
			sbuf_flush(&s->u2c, &s->client, &s->s_scan);
		}
	}
	if (events & EPOLLOUT) {
		if ((from_client || !c2u_gated(s)) && (r = sbuf_flush(out, end, from_client ? &s->s_scan : &s->c_scan)) < 0) {
			snprintf(reason, sizeof(reason), "%s error: %s", who, strerror(-r));
			session_close(env, s, reason);
			return;
		}
		if (from_client && s->refusals_owed) {
			/* room again: refusals that waited for it can go out (masked rows
			 * that waited for room are taken here too, and what follows them:
			 * a fault server_side_scan returns is not found by a later scan) */
			if ((f = server_side_scan(env, s)) != FAULT_NONE) {
				session_fault(env, s, f, NULL);
				return;
			}
			sbuf_flush(&s->u2c, &s->client, &s->s_scan);
		}
	}
	/* A client that said Terminate ended the session, whichever end's EOF the loop
	 * happens to see first (psql closes right after it; the server closes on it). */
	if (s->c2u.shut && s->u2c.shut) {
		session_close(env, s, s->c_terminated ? "client terminated" : s->closed_by ? s->closed_by : "closed");
		return;
	}
	if ((events & EPOLLHUP) && in->eof && out->ready == out->off) {
		session_close(env, s, s->c_terminated ? "client terminated" : from_client ? "client closed" : "upstream closed");
		return;
	}
	sbuf_set_events(env->epfd, &s->client, interest(&s->c2u, 0, &s->u2c));
	sbuf_set_events(env->epfd, &s->upstream, interest(&s->u2c, server_side_reserve(env, s), &s->c2u) & ~(c2u_gated(s) ? EPOLLOUT : 0));
	if (s->cancel && s->cancel->cancel_waiting)
		cancel_release(env, s);
	if (kick) {
		/* the masks are known: what the client sent meanwhile goes on */
		session_relay_event(env, s, &s->client, EPOLLIN);
		return;
	}
	if (s->u2c_rescan && !s->rescanning && s->u2c.ready == s->u2c.off) {
		/* masked rows waited for room, and the client has read what was before
		 * them: take them now, as if the server had just sent them */
		s->rescanning = true;
		while (s->u2c_rescan && s->u2c.ready == s->u2c.off && !s->dead && !s->draining) {
			s->u2c_rescan = false;
			session_relay_event(env, s, &s->upstream, EPOLLIN);
		}
		s->rescanning = false;
		return;
	}
	/* Bytes TLS already decrypted raise no epoll event: take them now. */
	if (tls_pending(s->client.ssl) && sbuf_room(&s->c2u) > 0 && !s->c2u.eof)
		session_relay_event(env, s, &s->client, EPOLLIN);
	else if (tls_pending(s->upstream.ssl) && sbuf_room(&s->u2c) > server_side_reserve(env, s) && !s->u2c.eof)
		session_relay_event(env, s, &s->upstream, EPOLLIN);
}

/* ---- a reload: the sessions past their verdict decided again ----------------- */

static void session_facts(const struct session *s, struct policy_facts *f)
{
	*f = (struct policy_facts){
		.cgroup = s->facts.cgroup, .uid = s->origin.uid, .exe = s->facts.exe,
		.exe_sha256 = s->facts.exe_sha256, .database = s->database, .upstream = s->upstream_name,
		.exe_foreign = s->facts.exe_foreign, .token_known = true, .token = policy_token_named(s->token_source),
		.token_path = s->token_path,
	};
}

void session_policy_reloaded(struct session_env *env)
{
	struct session *s, *next;

	/* env->gen is the parent's, set with the new snapshot (worker.c) */
	env->mask_epoch++; /* masks may have changed: sessions resolve theirs again */
	if (env->sqlcache)
		sqlclass_cache_clear(env->sqlcache); /* the dangerous functions may have changed */
	for (s = env->head; s; s = next) {
		const struct policy_rule *rule;
		struct config_upstream *u;
		struct policy_facts f;
		char msg[512];

		next = s->next;
		/* past the verdict: relaying, or logging in upstream under it */
		if (s->state < SESSION_CONNECTING || s->state > SESSION_RELAYING || s->draining || !s->rule[0])
			continue;
		session_facts(s, &f);
		if (s->token_iss[0]) {
			f.issuer = s->token_iss;
			f.claims = s->claims;
		}
		u = config_upstream_named(env->cfg, s->upstream_name);
		rule = policy_decide_again(&env->cfg->policy, &f, u ? u->role : NULL, s->role, s->read_only, s->rule, msg,
					   sizeof(msg));
		if (rule) {
			/* the parent follows the rename by its own decision */
			if (strcmp(rule->name, s->rule) != 0) {
				log_info("policy", "id=%llu: session now under rule '%s' (was '%s')", (unsigned long long)s->id,
					 rule->name, s->rule);
				snprintf(s->rule, sizeof(s->rule), "%s", rule->name);
			}
			s->rule_gen = env->gen;
			s->rule_idx = (size_t)(rule - env->cfg->policy.rules);
			continue;
		}
		log_warn("policy", "id=%llu cgroup=%s: %s", (unsigned long long)s->id, s->facts.cgroup, msg);
		if (s->state == SESSION_RELAYING)
			session_fault(env, s, FAULT_ACCESS_WITHDRAWN, msg);
		else
			session_refuse(env, s, FAULT_ACCESS_WITHDRAWN, &(struct fault_facts){ .detail = msg });
	}
}

/* ---- the end of a relay: a fault, the server gone, a reload ------------------- */

/* The session's last words are queued in u2c: a slow client still gets them and what
 * the server said before (its own FATAL, final rows). The upstream closes now. The
 * client end drains, is shut for writing once u2c is empty (drain_step), and closes
 * when the client does, or after SESSION_REFUSE_TIMEOUT_S: closed while the client
 * still sends, a socket resets the connection, and the client's kernel drops what it
 * had not read yet (those rows, the FATAL), even when pgtether's buffers were empty. */
static void close_after_drain(struct session_env *env, struct session *s, const char *why)
{
	tls_free(s->upstream.ssl);
	s->upstream.ssl = NULL;
	sbuf_close(env->epfd, &s->upstream);
	snprintf(s->refuse_msg, sizeof(s->refuse_msg), "%s", why);
	if (s->held_id && !s->held_decision) {
		/* what it held never runs now: no approver is shown it, nor may decide it
		 * (session_decide), and it times out no more */
		worker_notify(PRIV_HELD_DONE, s->id, NULL, 0, -1);
		s->held_decision = -1;
	}
	/* nothing in u2c is scanned again: its last words (the FATAL) are past s_scan,
	 * which the flushes move back as they go */
	if (s->s_scan < s->u2c.ready)
		s->s_scan = s->u2c.ready;
	s->draining = true;
	s->drain_started = time(NULL);
	drain_step(env, s, 0);
}

/* The client broke a rule of the relay: it is told why, at once, and the session ends.
 * Not in the middle of a server message whose first bytes went out already (a long
 * row relayed as it comes): the client would read the error as that message's data,
 * so then it only sees the connection close (the log says why). One whose bytes are
 * all still here is taken back (server_side_cut). */
static void client_fatal(struct session_env *env, struct session *s, const char *sqlstate, const char *msg,
			 const char *why)
{
	if (server_side_cut(s))
		session_queue_error(s, "FATAL", sqlstate, msg);
	close_after_drain(env, s, why);
}

/* The relay cannot go on: tell the client with a FATAL error when that can be said at
 * a message boundary (server_side_cut), unless the server's own FATAL said it. */
static void end_relay(struct session_env *env, struct session *s, const char *sqlstate, const char *msg,
		      const char *why)
{
	if (server_side_cut(s) && s->last_server_type != 'E')
		session_queue_error(s, "FATAL", sqlstate, msg);
	close_after_drain(env, s, why);
}

void session_fault_text(const struct session *s, enum fault_code f, const char *detail, struct fault_text *ret)
{
	const struct fault_facts ff = {
		.detail = detail, .rule = s->rule, .client_encoding = s->client_encoding,
		.max_message_bytes = s->env->cfg->max_message_bytes, .mask_refresh = s->env->cfg->mask_refresh,
		.memory_budget = s->env->cfg->memory_budget, .at_login = s->lookup_login,
	};

	if (fault_describe(f, &ff, ret) < 0)
		fault_describe(FAULT_OUT_OF_MEMORY, &ff, ret); /* not a fault: unreachable */
}

void session_fault(struct session_env *env, struct session *s, enum fault_code f, const char *detail)
{
	struct fault_text t;

	if (f == FAULT_OUT_OF_MEMORY && s->acct.refused)
		f = FAULT_MEMORY_BUDGET; /* not the host's memory: the budget all sessions share */
	session_fault_text(s, f, detail, &t);
	switch (t.end) {
	case FAULT_END_NOW:
	case FAULT_END_REFUSE: /* a login's fault in a relaying session: told at once */
		client_fatal(env, s, t.sqlstate, t.msg, t.reason);
		break;
	case FAULT_END_BOUNDARY:
		end_relay(env, s, t.sqlstate, t.msg, t.reason);
		break;
	case FAULT_END_SILENT:
		session_close(env, s, t.reason);
		break;
	}
}
