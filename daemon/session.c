/*
 * The life of one redirected connection. See session.h for the story; the functions
 * below follow it in order: accept → origin → confirm → facts → startup → upstream →
 * login → relay → close, with refuse as the way out at any point before the relay
 * and a FATAL ErrorResponse at a message boundary after it (session_fault, by the
 * table of faults in fault.c). The relay itself is relay.c, with the client's side
 * of the protocol in client_side.c and the server's in server_side.c.
 */
#include "session_int.h"

#include <errno.h>
#include <fnmatch.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "b64url.h"
#include "cancel.h"
#include "client_side.h"
#include "cgroup.h"
#include "escape.h"
#include "log.h"
#include "privsep.h"
#include "sessrec.h"
#include "sockdiag.h"
#include "startopts.h"
#include "upstream.h"
#include "worker.h"


double session_ms_since(const struct timespec *then)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - then->tv_sec) * 1e3 + (double)(now.tv_nsec - then->tv_nsec) / 1e6;
}

double session_elapsed_ms(const struct session *s)
{
	return session_ms_since(&s->started);
}

void session_log_identity(struct logline *l, const struct session *s)
{
	char buf[ADDR_STRLEN];
	char comm[PGT_COMM_LEN + 1];

	memcpy(comm, s->origin.comm, PGT_COMM_LEN);
	comm[PGT_COMM_LEN] = '\0';
	log_u64(l, "id", s->id);
	log_u64(l, "pid", s->origin.tgid);
	if (s->origin.tid != s->origin.tgid)
		log_u64(l, "tid", s->origin.tid);
	log_u64(l, "uid", s->origin.uid);
	log_u64(l, "gid", s->origin.gid);
	log_str(l, "comm", comm);
	log_str(l, "exe", s->facts.exe);
	log_str(l, "exe_sha256", s->facts.exe_sha256);
	log_str(l, "cgroup", s->facts.cgroup);
	log_u64(l, "cgroup_id", s->origin.cgroup_id);
	log_str(l, "peer", addr_format(&s->peer, buf));
	log_str(l, "dst", addr_format(&s->dst, buf));
	log_str(l, "family", s->origin.family == AF_INET6 ? "ipv6" : "ipv4");
	if (s->upstream_name[0]) {
		log_str(l, "upstream", s->upstream_name);
		log_str(l, "role", s->role);
		log_str(l, "database", s->database);
	}
	if (s->rule[0])
		log_str(l, "rule", s->rule);
	if (s->token_source)
		log_str(l, "token", s->token_source);
	if (s->token_iss[0]) {
		log_str(l, "iss", s->token_iss);
		log_str(l, "sub", s->token_sub);
	}
}

/* ---- close ------------------------------------------------------------------- */

/* The login caps count a session from accept until its relay starts or it ends. */

/*
 * Closes both sockets and takes the session off the live list. The memory waits on
 * the dead list until session_reap(): the other end of this session may still have
 * an event in the epoll batch being handled.
 */
void session_free(struct session_env *env, struct session *s)
{
	if (s->cancel_for) {
		struct session *t = s->cancel_for;

		s->cancel_for = NULL;
		if (t->cancel_next == s) {
			t->cancel_next = NULL;
		} else if (t->cancel == s) {
			/* the one waiting for this cancel's last try is t's cancel now */
			t->cancel = t->cancel_next;
			t->cancel_next = NULL;
			if (!t->dead)
				cancel_ungate(env, t);
		}
	}
	if (s->cancel_next) {
		s->cancel_next->cancel_for = NULL;
		session_free(env, s->cancel_next); /* it had not gone yet */
		s->cancel_next = NULL;
	}
	if (s->cancel) {
		/* the session a cancel is for ends: there is nothing left to cancel */
		s->cancel->cancel_for = NULL;
		if (s->cancel->cancel_waiting)
			session_free(env, s->cancel);
		s->cancel = NULL;
	}
	sessrec_seal(s);
	searchpath_state_release(&s->path);
	searchpath_scan_release(&s->path_sc);
	free(s->path_sql);
	free(s->token_path);
	s->token_path = NULL;
	tls_free(s->client.ssl);
	tls_free(s->upstream.ssl);
	s->client.ssl = s->upstream.ssl = NULL;
	sbuf_close(env->epfd, &s->client);
	sbuf_close(env->epfd, &s->upstream);
	if (s->prev)
		s->prev->next = s->next;
	else
		env->head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	env->n_live--;
	if (!s->handed_off)
		worker_notify(PRIV_ENDED, s->id, NULL, 0, -1);
	if (s->capped)
		env->capped--;
	s->dead = true;
	s->prev = NULL;
	s->next = env->dead;
	env->dead = s;
}

void session_reap(struct session_env *env)
{
	while (env->dead) {
		struct session *s = env->dead;

		env->dead = s->next;
		scram_client_release(&s->scram);
		json_decref(s->claims);
		free(s->held_sql);
		json_decref(s->held_extra);
		prepared_release(&s->stmts);
		sbuf_release(&s->c2u);
		sbuf_release(&s->u2c);
		maskset_release(&s->masks);
		free(s->describes);
		rowmask_release(&s->rows);
		free(s->base);
		quota_mem_give(&env->mem, s->acct.held);
		free(s);
	}
}

void session_close(struct session_env *env, struct session *s, const char *reason)
{
	struct logline l;

	s->close_reason = reason;
	if (s->state == SESSION_RELAYING) {
		log_begin(&l, LOG_LEVEL_INFO, "conn.close");
		session_log_identity(&l, s);
		log_u64(&l, "bytes_in", s->bytes_c2u);
		log_u64(&l, "bytes_out", s->bytes_u2c);
		log_u64(&l, "duration_ms", (unsigned long long)session_elapsed_ms(s));
		if (s->rows_masked)
			log_u64(&l, "rows_masked", s->rows_masked);
		log_str(&l, "reason", reason);
		log_end(&l, LOG_LEVEL_INFO);
	}
	session_free(env, s);
}




/* ---- relay: relay.c moves the bytes through client_side.c and server_side.c; it
 * ends here, by a fault (fault.h) ------------------------------------------------- */

/* The rule that allowed the session, in the current snapshot (NULL: gone). */
const struct policy_rule *session_rule(struct session_env *env, struct session *s)
{
	const struct policy *p = &env->cfg->policy;

	if (s->rule_gen != env->gen) {
		s->rule_idx = p->n;
		for (size_t i = 0; i < p->n; i++)
			if (strcmp(p->rules[i].name, s->rule) == 0) {
				s->rule_idx = i;
				break;
			}
		s->rule_gen = env->gen;
	}
	return s->rule_idx < p->n ? &p->rules[s->rule_idx] : NULL;
}






/* ---- accept ------------------------------------------------------------------ */



struct session *session_new(struct session_env *env, int cfd)
{
	struct session *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->base = malloc(3 * SESSION_BUF);
	if (!s->base) {
		free(s);
		return NULL;
	}
	s->c2u.data = s->c2u.home = s->base;
	s->u2c.data = s->u2c.home = s->base + SESSION_BUF;
	s->in.data = s->in.home = s->base + 2 * SESSION_BUF;
	s->acct.pool = &env->mem;
	s->c2u.cap = s->u2c.cap = s->in.cap = SESSION_BUF;
	s->env = env;
	s->tx_status = 'I';
	strcpy(s->facts.exe, "?"); /* until session_attest reads them */
	strcpy(s->facts.cgroup, "?");
	s->client = (struct session_end){ { EV_SESSION }, s, cfd, 0 };
	s->upstream = (struct session_end){ { EV_SESSION }, s, -1, 0 };
	clock_gettime(CLOCK_MONOTONIC, &s->started);
	s->started_wall = time(NULL);
	s->next = env->head;
	if (env->head)
		env->head->prev = s;
	env->head = s;
	env->n_live++;
	return s;
}

/* ---- the parent's part: connections, identity, verdicts ------------------------- */

struct session *session_find(struct session_env *env, uint64_t id)
{
	for (struct session *s = env->head; s; s = s->next)
		if (s->id == id && !s->dead)
			return s;
	return NULL;
}

/* A connection the parent accepted: what it learned of it before a byte was read
 * (the kernel's record, sock_diag, caps, the upstream), or why it is refused. */
void session_adopt(struct session_env *env, int fd, uint64_t id, const struct priv_new_conn *nc)
{
	struct session *s = session_new(env, fd);

	if (!s) {
		close(fd);
		log_error("accept", "id=%llu: out of memory: connection dropped", (unsigned long long)id);
		worker_notify(PRIV_ENDED, id, NULL, 0, -1);
		return;
	}
	s->id = id;
	if (nc->have_origin)
		s->origin = nc->origin;
	s->peer = nc->peer;
	s->dst = nc->dst;
	if (PRIV_STR_OK(nc->upstream))
		snprintf(s->upstream_name, sizeof(s->upstream_name), "%s", nc->upstream);
	if (sbuf_watch(env->epfd, &s->client, EPOLLIN) < 0) {
		session_free(env, s);
		return;
	}
	if (nc->cancel) {
		cancel_request(env, s, nc->cancel_pkt);
		return;
	}
	if (nc->refuse_sqlstate[0] && PRIV_STR_OK(nc->refuse_sqlstate) && PRIV_STR_OK(nc->refuse_msg)) {
		/* the parent's refusal (a login cap, no kernel record, ...): its words */
		const struct fault_facts ff = { .sqlstate = nc->refuse_sqlstate, .detail = nc->refuse_msg,
						.verdict = (enum fault_code)nc->refuse_fault };

		if (nc->capped)
			session_refuse_capped(env, s, FAULT_LOGIN_VERDICT, &ff);
		else
			session_refuse(env, s, FAULT_LOGIN_VERDICT, &ff);
		return;
	}
	s->state = SESSION_STARTUP; /* next: the client's startup packet (startup_step) */
}



/* The first rule wants the client's token: AuthenticationCleartextPassword. */
void session_need_token(struct session_env *env, uint64_t id)
{
	static const uint8_t ask[9] = { 'R', 0, 0, 0, 8, 0, 0, 0, 3 };
	struct session *s = session_find(env, id);

	if (!s || s->state != SESSION_ATTESTING)
		return;
	sbuf_put(&s->u2c, ask, sizeof(ask));
	s->state = SESSION_CLIENT_AUTH;
	s->in.off = s->in.ready = s->in.len = 0;
	if (sbuf_flush(&s->u2c, &s->client, NULL) < 0) {
		session_free(env, s);
		return;
	}
	sbuf_set_events(env->epfd, &s->client, EPOLLIN | (s->u2c.ready > s->u2c.off ? EPOLLOUT : 0));
}

static const char *token_source_name(const char *v)
{
	return !strcmp(v, "password") ? "password" : !strcmp(v, "file") ? "file" : "none";
}

/* The parent's decision: refused, or allowed under a rule and role, with the
 * addresses to connect to and the recording file. */
void session_verdict(struct session_env *env, uint64_t id, const struct priv_verdict *v, const char *claims,
		     size_t claims_len, int recfd)
{
	struct session *s = session_find(env, id);
	char why[RECORD_ERR_LEN];

	if (!s || s->state != SESSION_ATTESTING) {
		if (recfd >= 0)
			close(recfd);
		return;
	}
	if (v->ready_facts) {
		s->facts = v->facts;
		s->facts.exe[sizeof(s->facts.exe) - 1] = s->facts.cgroup[sizeof(s->facts.cgroup) - 1] = '\0';
		s->facts.exe_sha256[sizeof(s->facts.exe_sha256) - 1] = '\0';
	}
	snprintf(s->rule, sizeof(s->rule), "%.*s", (int)sizeof(v->rule) - 1, v->rule);
	s->token_source = token_source_name(v->token_source);
	free(s->token_path);
	s->token_path = !strcmp(s->token_source, "file") ? strndup(v->token_path, sizeof(v->token_path) - 1) : NULL;
	snprintf(s->token_iss, sizeof(s->token_iss), "%.*s", (int)sizeof(v->token_iss) - 1, v->token_iss);
	snprintf(s->token_sub, sizeof(s->token_sub), "%.*s", (int)sizeof(v->token_sub) - 1, v->token_sub);
	if (!v->ok) {
		char msg[sizeof(v->msg)], sqlstate[sizeof(v->sqlstate)];

		if (recfd >= 0)
			close(recfd);
		/* the parent's words (monitor_login.c), whose arrays need not end in a NUL */
		snprintf(msg, sizeof(msg), "%.*s", (int)sizeof(v->msg) - 1, v->msg);
		snprintf(sqlstate, sizeof(sqlstate), "%.*s", (int)sizeof(v->sqlstate) - 1, v->sqlstate);
		session_refuse(env, s, FAULT_LOGIN_VERDICT,
			       &(struct fault_facts){ .sqlstate = sqlstate, .detail = msg, .verdict = (enum fault_code)v->fault });
		return;
	}
	if (v->gen != env->gen || v->rule_idx >= env->cfg->policy.n || v->n_addrs < 1 || v->n_addrs > CONFIG_MAX_RESOLVED ||
	    claims_len != v->claims_len) {
		if (recfd >= 0)
			close(recfd);
		session_refuse(env, s, FAULT_LOGIN_CONFIG_CHANGED, NULL);
		return;
	}
	if (claims_len) {
		json_error_t e;

		s->claims = json_loadb(claims, claims_len, 0, &e); /* kept for a re-decision at reload */
	}
	s->rule_gen = env->gen;
	s->rule_idx = v->rule_idx;
	snprintf(s->role, sizeof(s->role), "%.*s", (int)sizeof(v->role) - 1, v->role);
	s->role_hint = strcmp(s->client_user, s->role) != 0;
	memcpy(s->up_addrs, v->addrs, v->n_addrs * sizeof(v->addrs[0]));
	s->n_up_addrs = v->n_addrs;
	if (v->recorded && recfd >= 0 && sessrec_open(env, s, recfd, v->rec_id, v->rec_path, why, sizeof(why)) < 0) {
		session_refuse(env, s, FAULT_LOGIN_RECORDING, &(struct fault_facts){ .detail = why });
		return;
	}
	upstream_start(env, s);
}


/* Once a second: what `pgtether status` shows of relaying sessions, to the parent. */
void session_stats(struct session_env *env)
{
	static struct priv_stat st[PRIV_STATS_MAX];
	size_t n = 0;

	for (struct session *s = env->head; s; s = s->next) {
		if (s->state != SESSION_RELAYING)
			continue;
		st[n] = (struct priv_stat){ .conn = s->id, .bytes_in = s->bytes_c2u, .bytes_out = s->bytes_u2c };
		memcpy(st[n].client_encoding, s->client_encoding, sizeof(st[n].client_encoding));
		memcpy(st[n].scs, s->scs, sizeof(st[n].scs));
		if (++n == PRIV_STATS_MAX) {
			worker_notify(PRIV_STATS, 0, st, n * sizeof(st[0]), -1);
			n = 0;
		}
	}
	if (n)
		worker_notify(PRIV_STATS, 0, st, n * sizeof(st[0]), -1);
}



void session_event(struct session_env *env, struct session_end *end, uint32_t events)
{
	struct session *s = end->s;

	/* an end closed by an earlier event of the same epoll_wait batch (a drain's
	 * upstream) may still have an event in it: stale, it is not this end's */
	if (s->dead || end->fd < 0)
		return;
	switch (s->state) {
	case SESSION_STARTUP:
		if (end == &s->client) {
			if (events & EPOLLOUT)
				sbuf_flush(&s->u2c, &s->client, NULL);
			if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
				startup_step(env, s);
			if (!s->dead && s->state == SESSION_STARTUP)
				sbuf_set_events(env->epfd, &s->client, EPOLLIN | (s->u2c.ready > s->u2c.off ? EPOLLOUT : 0));
		}
		break;
	case SESSION_CLIENT_TLS:
		if (end == &s->client)
			startup_tls_step(env, s);
		break;
	case SESSION_CLIENT_AUTH:
		if (end != &s->client)
			break;
		if (events & EPOLLOUT)
			sbuf_flush(&s->u2c, &s->client, NULL);
		if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
			/* bytes TLS already decrypted raise no epoll event: take them too */
			do
				startup_token_step(env, s);
			while (!s->dead && s->state == SESSION_CLIENT_AUTH && tls_pending(s->client.ssl) &&
			       sbuf_room(&s->in) > 0);
		}
		if (!s->dead && s->state == SESSION_CLIENT_AUTH)
			sbuf_set_events(env->epfd, &s->client, EPOLLIN | (s->u2c.ready > s->u2c.off ? EPOLLOUT : 0));
		break;
	case SESSION_UPSTREAM_SSLREQ:
		if (end == &s->upstream)
			upstream_sslreq_step(env, s);
		else if (events & (EPOLLHUP | EPOLLERR))
			session_free(env, s);
		break;
	case SESSION_UPSTREAM_TLS:
		if (end == &s->upstream)
			upstream_tls_step(env, s);
		else if (events & (EPOLLHUP | EPOLLERR))
			session_free(env, s);
		break;
	case SESSION_CONNECTING:
		if (end == &s->upstream)
			upstream_connected(env, s);
		else if (events & (EPOLLHUP | EPOLLERR))
			session_free(env, s); /* the client gave up before the upstream answered */
		break;
	case SESSION_CANCELLING:
		if (end == &s->upstream && s->cancel_timer) {
			s->cancel_timer = false;
			if (cancel_again(s))
				cancel_forward(env, s);
			else
				cancel_done(env, s);
		} else if (end == &s->upstream && s->cancel_sent) {
			uint8_t b[64];
			ssize_t n = recv(s->upstream.fd, b, sizeof(b), 0);

			if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
				cancel_done(env, s);
		} else if (end == &s->upstream) {
			upstream_connected(env, s);
		} else if ((events & (EPOLLHUP | EPOLLERR)) && s->client.fd >= 0) {
			/* a client may hang up once its CancelRequest is sent, and PostgreSQL
			 * still cancels: so does pgtether */
			sbuf_close(env->epfd, &s->client);
		}
		break;
	case SESSION_LOGIN:
		if (end == &s->upstream) {
			if (events & EPOLLOUT)
				sbuf_flush(&s->c2u, &s->upstream, NULL);
			if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
				upstream_login_step(env, s);
			if (!s->dead && s->state == SESSION_LOGIN)
				sbuf_set_events(env->epfd, &s->upstream, EPOLLIN | (s->c2u.ready > s->c2u.off ? EPOLLOUT : 0));
		} else if (events & (EPOLLHUP | EPOLLERR)) {
			session_free(env, s);
		}
		break;
	case SESSION_ATTESTING:
		/* nothing is read meanwhile; HUP and ERR arrive even so */
		if (end == &s->client && (events & (EPOLLHUP | EPOLLERR)))
			session_free(env, s); /* the client gave up; the hash still fills the cache */
		break;
	case SESSION_RELAYING:
		session_relay_event(env, s, end, events);
		break;
	case SESSION_REFUSING:
		if (end != &s->client)
			break;
		if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !s->in.eof && session_refuse_step(s)) {
			session_free(env, s);
			return;
		}
		if (sbuf_flush(&s->u2c, &s->client, NULL) < 0 || (s->in.eof && s->u2c.len == 0)) {
			session_free(env, s);
			return;
		}
		sbuf_set_events(env->epfd, &s->client, (s->in.eof ? 0 : EPOLLIN) | (s->u2c.len ? EPOLLOUT : 0));
		break;
	}
}

/* Seconds one connect attempt may take when more addresses are left: login_timeout
 * shared among them, so every address gets its turn before the login times out. */
static time_t upstream_try_timeout(const struct session_env *env, const struct session *s)
{
	time_t t = (time_t)(env->cfg->login_timeout / s->n_up_addrs);

	return t > 0 ? t : 1;
}

void session_tick(struct session_env *env)
{
	struct session *s = env->head, *next;
	struct timespec now;
	char buf[ADDR_STRLEN];

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec - env->mask_refreshed >= (time_t)env->cfg->mask_refresh) {
		/* DDL outside pgtetherd (a migration recreating a table) is seen this soon */
		env->mask_epoch++;
		env->mask_refreshed = now.tv_sec;
	}
	/* an action below may end another session too (a cancel's end lets its session's
	 * held bytes go, and that session may end): a dead next is on the dead list, and
	 * the rest wait for the next tick */
	for (; s && !s->dead; s = next) {
		time_t age = now.tv_sec - (s->state == SESSION_CANCELLING && s->cancel_tries ? s->cancel_went.tv_sec :
					   s->started.tv_sec);

		next = s->next;
		if ((s->state == SESSION_CONNECTING || s->state == SESSION_LOGIN ||
		     s->state == SESSION_UPSTREAM_SSLREQ || s->state == SESSION_UPSTREAM_TLS) &&
		    age >= (time_t)env->cfg->login_timeout)
			session_refuse(env, s, s->state == SESSION_LOGIN ? FAULT_UPSTREAM_LOGIN_TIMEOUT : FAULT_UPSTREAM_CONNECT_TIMEOUT,
				       &(struct fault_facts){ .address = addr_format(&s->up_addrs[s->up_try], buf) });
		else if (s->state == SESSION_CONNECTING && s->up_try + 1 < s->n_up_addrs &&
			 now.tv_sec - s->up_try_since >= upstream_try_timeout(env, s))
			upstream_next(env, s, ETIMEDOUT); /* an address that drops SYNs leaves time for the next */
		else if (s->state == SESSION_RELAYING && s->held_id && !s->held_decision &&
			 time(NULL) - s->held_since >= (time_t)s->held_timeout) {
			char err[160];

			session_decide(env, s->held_id, false, NULL, NULL, NULL, err, sizeof(err));
		} else if (s->state == SESSION_RELAYING && s->draining &&
			 time(NULL) - s->drain_started >= SESSION_REFUSE_TIMEOUT_S)
			session_close(env, s, s->refuse_msg);
		else if (s->state == SESSION_ATTESTING && age >= (time_t)env->cfg->login_timeout + SESSION_PARENT_SLACK_S)
			/* the parent refuses first, at login_timeout, saying what it waits for
			 * (the hash, the token file, the executable's path): this is for when
			 * its verdict does not come */
			session_refuse(env, s, FAULT_LOGIN_ATTEST_TIMEOUT, NULL);
		else if ((s->state == SESSION_STARTUP || s->state == SESSION_CLIENT_TLS ||
			  s->state == SESSION_CLIENT_AUTH) &&
			 age >= (time_t)env->cfg->login_timeout)
			session_free(env, s); /* the client never finished its startup: nobody to answer */
		else if (s->state == SESSION_REFUSING && s->capped && age >= SESSION_CAPPED_TIMEOUT_S) {
			/* no startup packet came: the error goes out anyway, for when it reads */
			int fd = s->client.fd;

			s->client.fd = -1;
			session_free(env, s);
			session_turn_away(env, fd, s->refuse_sqlstate, s->refuse_msg);
		} else if (s->state == SESSION_CANCELLING && s->cancel_waiting && age >= SESSION_CANCEL_WAIT_S &&
			   !(s->cancel_for && s->cancel_for->cancel_next == s))
			cancel_forward(env, s); /* the bytes before it still wait for room upstream */
		else if ((s->state == SESSION_REFUSING || s->state == SESSION_CANCELLING) &&
			 age >= SESSION_REFUSE_TIMEOUT_S)
			session_free(env, s);
	}
}




void session_close_all(struct session_env *env, const char *reason)
{
	/* a draining session ended already, for the reason it keeps (close_after_drain):
	 * its conn.close line is the one record of that reason */
	while (env->head)
		session_close(env, env->head, env->head->draining ? env->head->refuse_msg : reason);
	session_reap(env);
}
