/*
 * The life of one redirected connection. See session.h for the story; the functions
 * below follow it in order: accept → origin → confirm → facts → startup → upstream →
 * login → relay → close, with refuse as the way out at any point before the relay
 * and a FATAL ErrorResponse at a message boundary after it.
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
#include "cgroup.h"
#include "escape.h"
#include "gate.h"
#include "log.h"
#include "privsep.h"
#include "sessrec.h"
#include "sockdiag.h"
#include "sqlguard.h"
#include "startopts.h"
#include "upstream.h"
#include "worker.h"

static uint64_t session_request_id(struct session_env *env, struct session *s);
static void session_held_announce(struct session_env *env, struct session *s);
static void ask_identity(struct session_env *env, struct session *s);
static void cancel_route(struct session_env *env, struct session *s, const uint8_t *pkt);

/* refuse() is session_refuse() for the functions being changed now (see the sbuf
 * wrappers below); code that moves out calls session_refuse(). */
#define refuse session_refuse

double session_elapsed_ms(const struct session *s)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - s->started.tv_sec) * 1e3 +
	       (double)(now.tv_nsec - s->started.tv_nsec) / 1e6;
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

/* ---- recording (sessrec.h) ------------------------------------------------------ */

/* The names statement gating, masking and startup call; they keep them until those
 * move into modules of their own (issue 13). */
static inline int rec_event(struct session_env *env, struct session *s, const char *type, json_t *fields, bool flush)
{
	return sessrec_event(env, s, type, fields, flush);
}

static inline int rec_statement(struct session_env *env, struct session *s, uint8_t type, const char *sql, size_t len,
				enum policy_verdict v, const char *sqlstate, const char *msg)
{
	return sessrec_statement(env, s, type, sql, len, v, sqlstate, msg);
}

static inline void rec_server_message(struct session_env *env, struct session *s, const uint8_t *m, size_t mlen)
{
	sessrec_server_message(env, s, m, mlen);
}

static inline void rec_bind(struct session_env *env, struct session *s, const struct policy_rule *masking,
			    const uint8_t *body, size_t blen)
{
	sessrec_bind(env, s, masking, body, blen);
}

static inline void rec_row(struct session_env *env, struct session *s, const uint8_t *m, size_t mlen)
{
	sessrec_row(env, s, m, mlen);
}

/* ---- buffers and I/O (sbuf.h) ---------------------------------------------------- */

/* The short names session.c has always called. The functions other work is changing
 * now (statement gating, masking, startup) keep them until they move into modules of
 * their own (issue 13); code that moves out calls sbuf_* itself. */
static inline void set_events(struct session_env *env, struct session_end *end, uint32_t events)
{
	sbuf_set_events(env->epfd, end, events);
}

static inline size_t room(const struct session_buf *b)
{
	return sbuf_room(b);
}

static inline void put(struct session_buf *b, const void *data, size_t n)
{
	sbuf_put(b, data, n);
}

static inline int flush(struct session_buf *b, struct session_end *to, size_t *scan_pos)
{
	return sbuf_flush(b, to, scan_pos);
}

static inline ssize_t fill(struct session_buf *b, struct session_end *from, size_t reserve, uint64_t *count)
{
	return sbuf_fill(b, from, reserve, count);
}

/* ---- close ------------------------------------------------------------------- */

/* The login caps count a session from accept until its relay starts or it ends. */
static void session_login_done(struct session_env *env, struct session *s)
{
	if (s->login_counted)
		quota_login_end(&env->logins, s->login_keyed, s->login_key);
	s->login_counted = s->login_keyed = false;
}

static void session_budget_message(struct session_env *env, char *m, size_t cap)
{
	snprintf(m, cap, "pgtether: out of memory: this session needs more room than is left of memory_budget "
		 "(%zu bytes, shared by all sessions) for a long statement or a row held to be masked; try again later or with less",
		 env->cfg->memory_budget);
}

/*
 * Closes both sockets and takes the session off the live list. The memory waits on
 * the dead list until session_reap(): the other end of this session may still have
 * an event in the epoll batch being handled.
 */
void session_free(struct session_env *env, struct session *s)
{
	if (s->cancel_for) {
		struct session *t = s->cancel_for;

		t->cancel = NULL;
		s->cancel_for = NULL;
		if (!t->dead && s->cancel_inflight)
			cancel_ungate(env, t);
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
	tls_free(s->client.ssl);
	tls_free(s->upstream.ssl);
	s->client.ssl = s->upstream.ssl = NULL;
	if (s->client.fd >= 0) {
		/* the parent holds the same socket: close() alone would leave it watched */
		epoll_ctl(env->epfd, EPOLL_CTL_DEL, s->client.fd, NULL);
		close(s->client.fd);
	}
	if (s->upstream.fd >= 0)
		close(s->upstream.fd);
	s->client.fd = s->upstream.fd = -1;
	if (s->prev)
		s->prev->next = s->next;
	else
		env->head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	env->n_live--;
	session_login_done(env, s);
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

static void session_close(struct session_env *env, struct session *s, const char *reason)
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

/* ---- refuse ------------------------------------------------------------------ */

static void queue_error(struct session *s, const char *severity, const char *sqlstate, const char *msg)
{
	uint8_t m[640];
	size_t n = pgwire_error_response(m, sizeof(m), severity, sqlstate, msg, NULL);

	/* what is held (a message not yet whole, not yet masked or checked) never goes
	 * out: the error follows the last message that may */
	s->u2c.len = s->u2c.ready;
	if (n && n <= room(&s->u2c))
		put(&s->u2c, m, n);
}

/*
 * Ends the session with a FATAL ErrorResponse. Before the client's StartupMessage
 * arrived it is read first (SSLRequest answered 'N'), as PostgreSQL does; the
 * upstream, if any, is closed at once.
 */
void session_refuse(struct session_env *env, struct session *s, const char *sqlstate, const char *event,
		    const char *fmt, ...)
{
	bool have_startup = s->state != SESSION_STARTUP;
	struct logline l;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->refuse_msg, sizeof(s->refuse_msg), fmt, ap);
	va_end(ap);
	snprintf(s->refuse_sqlstate, sizeof(s->refuse_sqlstate), "%s", sqlstate);

	if (event) { /* NULL: the caller logs (once per flood of the same refusal) */
		log_begin(&l, LOG_LEVEL_WARN, event);
		if (s->origin.tgid) {
			session_log_identity(&l, s);
		} else {
			char buf[ADDR_STRLEN];

			log_u64(&l, "id", s->id);
			log_str(&l, "peer", addr_format(&s->peer, buf));
		}
		log_str(&l, "sqlstate", sqlstate);
		log_str(&l, "msg", s->refuse_msg);
		log_end(&l, LOG_LEVEL_WARN);
	}

	if (s->upstream.fd >= 0) {
		tls_free(s->upstream.ssl);
		s->upstream.ssl = NULL;
		close(s->upstream.fd);
		s->upstream.fd = -1;
	}
	s->state = SESSION_REFUSING;
	OPENSSL_cleanse(s->c2u.data, s->c2u.cap); /* login messages may hold the credential */
	s->c2u.off = s->c2u.ready = s->c2u.len = 0;
	clock_gettime(CLOCK_MONOTONIC, &s->started); /* the refusal gets its own timeout */
	if (have_startup) {
		queue_error(s, "FATAL", s->refuse_sqlstate, s->refuse_msg);
		s->in.eof = true; /* nothing more to read: flush, then close */
		set_events(env, &s->client, EPOLLOUT);
	} else {
		set_events(env, &s->client, EPOLLIN);
	}
}

/* In REFUSING before the StartupMessage: reads it, answering SSL/GSS with 'N'.
 * Returns true when the session is finished. */
static bool refuse_step(struct session *s)
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
			if (++s->negotiations > 2 || room(&s->u2c) == 0)
				return true;
			put(&s->u2c, "N", 1);
			memmove(s->in.data, s->in.data + plen, s->in.len - plen);
			s->in.len -= plen;
			continue;
		case PGWIRE_STARTUP_MESSAGE:
			queue_error(s, "FATAL", s->refuse_sqlstate, s->refuse_msg);
			s->in.eof = true;
			return false;
		default:
			return true;
		}
	}
}

/* ---- relay ------------------------------------------------------------------- */

/*
 * The order of what the client is owed: 'Q' or 'S' when a forwarded Query or Sync
 * awaits the server's ReadyForQuery, 'F' for a refused message whose ErrorResponse goes out
 * after the answers to everything sent before it.
 */
static int pending_push(struct session *s, uint8_t what)
{
	if (s->pending_count == SESSION_MAX_PENDING)
		return -ENOBUFS;
	s->pending[(s->pending_head + s->pending_count++) % SESSION_MAX_PENDING] = what;
	return 0;
}

/* Whether a forwarded Query or Sync still awaits the server's ReadyForQuery. */
static bool awaits_server(const struct session *s)
{
	for (size_t i = 0; i < s->pending_count; i++)
		if (s->pending[(s->pending_head + i) % SESSION_MAX_PENDING] != 'F')
			return true;
	return false;
}

static const char fastpath_refusal[] =
	"pgtether: the fast-path function call interface (FunctionCall message) is not allowed: "
	"nothing the policy cannot see reaches the database; call the function in SQL instead";

/* Inserts the refusals now due into u2c at pos (a server message boundary). */
static size_t inject_due(struct session *s, size_t pos)
{
	uint8_t m[sizeof(fastpath_refusal) + 64];
	size_t total = 0;

	/* a notice may go between any two server messages */
	if (s->notice_len && s->notice_len <= room(&s->u2c)) {
		memmove(s->u2c.data + pos + s->notice_len, s->u2c.data + pos, s->u2c.len - pos);
		memcpy(s->u2c.data + pos, s->notice, s->notice_len);
		s->u2c.len += s->notice_len;
		pos += s->notice_len;
		total += s->notice_len;
		s->notice_len = 0;
	}
	while (s->pending_count && s->pending[s->pending_head] == 'F') {
		size_t n = pgwire_error_response(m, sizeof(m), "ERROR", "0A000", fastpath_refusal, NULL);

		n += pgwire_build_ready_for_query(m + n, sizeof(m) - n, (char)s->tx_status);
		if (n > room(&s->u2c))
			break; /* SESSION_INJECT_RESERVE makes this unreachable in practice */
		memmove(s->u2c.data + pos + n, s->u2c.data + pos, s->u2c.len - pos);
		memcpy(s->u2c.data + pos, m, n);
		s->u2c.len += n;
		pos += n;
		total += n;
		s->pending_head = (s->pending_head + 1) % SESSION_MAX_PENDING;
		s->pending_count--;
		s->refusals_owed--;
	}
	return total;
}

/* ---- statements and policy ------------------------------------------------------- */

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

/* Whether the server can be asked now what the session's names resolve to: nothing
 * is outstanding, so its answer is the state the next statement runs in. */
static bool path_can_ask(const struct session *s)
{
	return !s->c_unsynced && s->pending_count == 0 && s->tx_status != 'E' && !s->held_id &&
	       !s->want_status && pgwire_scan_at_boundary(&s->sscan);
}

/*
 * The scan of sql[0..len) (sql[len] is NUL), kept for the same text: a statement
 * that needs the server's answer is scanned once, not again for the question and
 * for its check. NULL when it cannot be scanned (*ret_rc says why).
 */
static const struct searchpath_scan *path_scan(struct session *s, const char *sql, size_t len, int *ret_rc)
{
	if (!s->path_sql || s->path_sql_len != len || memcmp(s->path_sql, sql, len)) {
		free(s->path_sql);
		searchpath_scan_release(&s->path_sc);
		s->path_sql = NULL;
		s->path_sc_rc = searchpath_scan(sql, &s->path_sc);
		if (s->path_sc_rc == 0 && !(s->path_sql = malloc(len + 1)))
			s->path_sc_rc = -ENOMEM;
		if (s->path_sql) {
			memcpy(s->path_sql, sql, len + 1);
			s->path_sql_len = len;
		}
	}
	*ret_rc = s->path_sc_rc;
	return s->path_sc_rc == 0 ? &s->path_sc : NULL;
}

/* gate_scan_fn for a session: its kept scan (path_scan). */
static const struct searchpath_scan *gate_session_scan(void *arg, const char *sql, size_t len, int *ret_rc)
{
	return path_scan(arg, sql, len, ret_rc);
}

/*
 * The verdict on the SQL text of one Query or Parse (sql[len] is its NUL), decided
 * by gate_check on the session's facts; here what follows from it for the session:
 * the names it prepares, the texts an approver is shown for its EXECUTEs, the
 * approval's timeout. A denial leaves its SQLSTATE and message in sqlstate and msg.
 */
static enum policy_verdict check_statement(struct session_env *env, struct session *s, const char *sql, size_t len,
					   const char *parse_name, char *sqlstate, char *msg, size_t cap, bool *touches_masked,
					   json_t **ret_extra)
{
	const struct policy_rule *r = session_rule(env, s);
	struct gate_facts f = {
		.rule = r,
		.rule_name = s->rule,
		.dangerous = policy_dangerous(&env->cfg->policy),
		.cache = env->sqlcache,
		.max_statement_bytes = env->cfg->max_statement_bytes,
		.max_shown = SESSION_MAX_SHOWN,
		.read_only = s->read_only,
		.masks = &s->masks,
		.stmts = &s->stmts,
		.path = s->path_fresh ? &s->path : NULL,
		.path_parse = s->path_parse,
		.tx_status = s->tx_status == 'E' ? 'E' : 'T',
		.scan = gate_session_scan,
		.scan_arg = s,
	};
	struct gate_result g;
	const struct sqlclass_result *c;
	enum policy_verdict v = gate_check(&f, sql, len, &g);

	c = g.c;
	s->stmt_classes = g.classes;
	if (g.sqlstate[0])
		strcpy(sqlstate, g.sqlstate);
	if (g.decided)
		*touches_masked = g.touches_masked;
	if (g.may_prepare) {
		/* what may now be prepared under a name (-ENOSPC: it stays unknown) */
		bool keep = r->statements.approve != 0;

		if (parse_name)
			prepared_note(&s->stmts, parse_name, c, sql, len, keep);
		for (size_t i = 0; i < c->n_prepares; i++)
			prepared_note(&s->stmts, c->prepares[i], c, sql, len, keep);
	}
	if (v == POLICY_APPROVE && c->n_executes && (*ret_extra = json_pack("{s:[]}", "prepared"))) {
		/* the approver sees what each EXECUTE runs too */
		for (size_t i = 0; i < c->n_executes; i++) {
			struct prepared_view pv;
			bool escaped = false;
			json_t *one;

			char *text = NULL;
			size_t text_len = 0;

			if (prepared_resolve(&s->stmts, c->executes[i], false, &pv) < 0 ||
			    !(text = prepared_view_text(&pv, &text_len))) {
				snprintf(msg, cap, "pgtether: %s, but what EXECUTE %s runs was not kept to be shown to an approver, so it is denied",
					 g.why, c->executes[i]);
				json_decref(*ret_extra);
				*ret_extra = NULL;
				gate_release(&g);
				return POLICY_DENY;
			}
			one = json_pack("{s:o, s:o, s:b}", "name", escape_json_str(c->executes[i]), "sql",
					escape_json(text, text_len, &escaped), "several", pv.n_texts > 1);
			free(text);
			if (one && escaped)
				json_object_set_new(one, "sql_escaped", json_true());
			json_array_append_new(json_object_get(*ret_extra, "prepared"), one);
		}
	}
	if (v == POLICY_APPROVE)
		s->held_timeout = r->statements.approval_timeout;
	gate_message(&g, msg, cap);
	gate_release(&g);
	return v;
}

/*
 * Replaces the Query or Parse at data[start..start+mlen) of c2u with one whose SQL
 * fails to parse on the server, carrying the denial's number; the server then answers
 * as for any failed statement (ErrorResponse, discards to Sync, keeps its transaction
 * state) and server_scan swaps that error for the denial. 0 or -ENOBUFS.
 */
static int substitute_sentinel(struct session_env *env, struct session *s, size_t start, size_t mlen,
			       const char *sqlstate, const char *msg)
{
	struct session_buf *b = &s->c2u;
	uint8_t m[256];
	char sql[96];
	size_t n = 0, name_len = 0;
	uint32_t slot;

	/* After the first error of an extended-query batch the server discards all up
	 * to Sync: a later denied Parse of the batch is never answered, and needs no
	 * room of its own (a pipeline of a hundred denied inserts is one error). */
	bool bind = b->data[start] == 'B';
	bool answered = !((b->data[start] == 'P' || bind) && s->batch_denied);

	if (answered && s->sentinels_out >= SESSION_MAX_DENIALS)
		return -ENOBUFS;
	slot = s->denial_seq % SESSION_MAX_DENIALS;
	if (answered) {
		snprintf(s->denials[slot].sqlstate, sizeof(s->denials[slot].sqlstate), "%s", sqlstate);
		snprintf(s->denials[slot].msg, sizeof(s->denials[slot].msg), "%s", msg);
	}
	snprintf(sql, sizeof(sql), "%s%u", env->sentinel_tag, answered ? s->denial_seq++ : s->denial_seq - 1);
	m[n++] = bind ? 'P' : b->data[start];
	n += 4;
	if (bind) {
		/* a denied Bind becomes a Parse that fails under a name nobody uses: the
		 * server answers it as a failed Bind and creates nothing, not even the
		 * unnamed statement is touched */
		name_len = strlen(sql);
		memcpy(m + n, sql, name_len);
		n += name_len;
		m[n++] = '\0';
	} else if (m[0] == 'P') {
		/* keep the statement name: the server must not create it either */
		name_len = strnlen((char *)b->data + start + 5, mlen - 5);
		if (name_len >= 128)
			name_len = 0;
		memcpy(m + n, b->data + start + 5, name_len);
		n += name_len;
		m[n++] = '\0';
	}
	memcpy(m + n, sql, strlen(sql) + 1);
	n += strlen(sql) + 1;
	if (m[0] == 'P') {
		m[n++] = 0; /* no parameter types */
		m[n++] = 0;
	}
	pgwire_put32(m + 1, (uint32_t)(n - 1));
	/* n is below mlen for any Query/Parse long enough to need a check, but not always */
	if (n > mlen && n - mlen > room(b))
		return -ENOBUFS;
	memmove(b->data + start + n, b->data + start + mlen, b->len - start - mlen);
	memcpy(b->data + start, m, n);
	b->len = b->len - mlen + n;
	if (answered)
		s->sentinels_out++;
	if (m[0] == 'P')
		s->batch_denied = true;
	return (int)n;
}

/* Holds the statement now at c_scan for approval and tells the client how to get it. */
static void hold(struct session_env *env, struct session *s, const char *sql, size_t len, const char *why,
		 json_t *extra)
{
	char text[500];
	struct logline l;

	s->held_id = session_request_id(env, s);
	s->held_since = time(NULL);
	s->held_decision = 0;
	snprintf(s->held_why, sizeof(s->held_why), "%s", why);
	/* whole: the approver sees everything that runs (check_statement bounds it) */
	free(s->held_sql);
	s->held_sql = malloc(len + 1);
	s->held_len = s->held_sql ? len : 0;
	if (s->held_sql) {
		memcpy(s->held_sql, sql, len);
		s->held_sql[len] = '\0';
	}
	json_decref(s->held_extra);
	s->held_extra = extra;
	snprintf(text, sizeof(text), "pgtether: statement held for approval as request %llu (%s): pgtether approve %llu",
		 (unsigned long long)s->held_id, why, (unsigned long long)s->held_id);
	s->notice_len = pgwire_error_response(s->notice, sizeof(s->notice), "NOTICE", "01000", text, NULL);
	if (s->notice_len)
		s->notice[0] = 'N';
	log_begin(&l, LOG_LEVEL_WARN, "approval.request");
	log_u64(&l, "request", s->held_id);
	log_u64(&l, "id", s->id);
	log_u64(&l, "pid", s->origin.tgid);
	log_u64(&l, "uid", s->origin.uid);
	log_str(&l, "cgroup", s->facts.cgroup);
	log_str(&l, "rule", s->rule);
	if (s->token_sub[0])
		log_str(&l, "sub", s->token_sub);
	log_str(&l, "why", why);
	log_u64(&l, "timeout_s", s->held_timeout);
	log_end(&l, LOG_LEVEL_WARN);
	session_held_announce(env, s);
}

/* The decision on the held statement, now that there is one: it runs (allow) or
 * fails with the approver's reason; nothing is held any more. */
static enum policy_verdict held_outcome(struct session *s, char *sqlstate, char *msg, size_t cap)
{
	enum policy_verdict v = s->held_decision > 0 ? POLICY_ALLOW : POLICY_DENY;

	strcpy(sqlstate, "42501");
	snprintf(msg, cap, "%s", s->held_msg);
	s->held_id = 0;
	s->held_decision = 0;
	free(s->held_sql);
	s->held_sql = NULL;
	s->held_len = 0;
	json_decref(s->held_extra);
	s->held_extra = NULL;
	return v;
}

/* Whether Binds are decided: only a rule that holds statements for approval needs
 * it (each execution of a statement is approved on its own). */
static bool bind_checked(struct session_env *env, struct session *s)
{
	const struct policy_rule *r = s->rule[0] ? session_rule(env, s) : NULL;

	return r && r->statements.set && r->statements.approve;
}

/*
 * The parameters of a whole Bind body as JSON: text format as text (escape_bytes
 * when not UTF-8, its index then in *ret_escaped), binary as "\x" and hex, NULL as
 * null; "****" for each when masked. Its statement name in *ret_stmt. NULL when the
 * body is malformed or out of memory.
 */
json_t *session_bind_params(const uint8_t *body, size_t blen, bool masked, json_t **ret_escaped, const char **ret_stmt,
			    size_t *ret_stmt_len)
{
	const uint8_t *p = body, *end = body + blen, *fmts;
	size_t portal = strnlen((const char *)p, blen), stmt_len;
	const char *stmt;
	unsigned nfmt, nparams;
	json_t *params, *escaped;

	if (portal >= blen)
		return NULL;
	stmt = (const char *)p + portal + 1;
	stmt_len = strnlen(stmt, (size_t)(end - (const uint8_t *)stmt));
	p = (const uint8_t *)stmt + stmt_len + 1;
	if (p + 2 > end)
		return NULL;
	nfmt = (unsigned)(p[0] << 8 | p[1]);
	fmts = p + 2;
	p += 2 + 2 * (size_t)nfmt;
	if (p + 2 > end)
		return NULL;
	nparams = (unsigned)(p[0] << 8 | p[1]);
	p += 2;
	if (!(params = json_array()) || !(escaped = json_array())) {
		json_decref(params);
		return NULL;
	}
	for (unsigned i = 0; i < nparams; i++) {
		int32_t len;
		int fmt = nfmt == 0 ? 0 : (fmts[2 * (nfmt == 1 ? 0 : i) + 1] != 0);
		bool esc = false;
		json_t *v;

		if (p + 4 > end || (nfmt > 1 && i >= nfmt))
			break;
		len = (int32_t)pgwire_get32(p);
		p += 4;
		if (len > end - p)
			break;
		if (len < 0) {
			v = json_null();
		} else if (masked) {
			v = json_string("****");
		} else if (fmt == 0) {
			v = escape_json((const char *)p, (size_t)len, &esc);
		} else {
			char *hex = malloc(2 * (size_t)len + 3);

			if (hex) {
				hex[0] = '\\';
				hex[1] = 'x';
				hex_encode(p, (size_t)len, hex + 2);
			}
			v = hex ? json_string(hex) : NULL;
			free(hex);
		}
		json_array_append_new(params, v);
		if (esc)
			json_array_append_new(escaped, json_integer(i));
		if (len > 0)
			p += len;
	}
	*ret_escaped = escaped;
	*ret_stmt = stmt;
	*ret_stmt_len = stmt_len;
	return params;
}

/*
 * The verdict on one execution of a prepared statement: the Bind at body. A
 * statement that needs approval is held here, with its text and parameters, each
 * time; one pgtether cannot follow is denied (the rule holds statements for
 * approval: bind_checked).
 */
static enum policy_verdict check_bind(struct session_env *env, struct session *s, const uint8_t *body, size_t blen,
				      char *sqlstate, char *msg, size_t cap)
{
	const struct policy_rule *r = session_rule(env, s);
	struct sqlclass_result c = { 0 };
	struct prepared_view pv = { 0 };
	json_t *params = NULL, *escaped = NULL, *extra;
	const char *stmt = "";
	size_t stmt_len = 0, text_len = 0;
	char why[300], *text = NULL;
	enum policy_verdict v;
	int rc;

	strcpy(sqlstate, "42501");
	/* the statement name first: the parameters are read only for an approver (no
	 * allocation per execution otherwise) */
	size_t portal = strnlen((const char *)body, blen);

	if (portal < blen) {
		stmt = (const char *)body + portal + 1;
		stmt_len = strnlen(stmt, blen - portal - 1);
	}
	if (portal >= blen || portal + 1 + stmt_len >= blen) {
		snprintf(msg, cap, "pgtether: a Bind message that cannot be read is denied");
		return POLICY_DENY;
	}
	rc = prepared_resolve(&s->stmts, stmt, true, &pv);
	if (rc < 0) {
		snprintf(msg, cap, "pgtether: statement \"%.64s\": %s, and rule '%s' holds statements for approval, so its execution is denied",
			 stmt, rc == -ENOENT ? "pgtether did not see it prepared in this session" : "what it runs cannot be followed",
			 r->name);
		v = POLICY_DENY;
	} else {
		c.classes = pv.classes;
		v = policy_statement_verdict(r, &c, why, sizeof(why));
		if (v == POLICY_DENY)
			snprintf(msg, cap, "pgtether: %s", why);
		else if (v == POLICY_APPROVE && !(text = prepared_view_text(&pv, &text_len))) {
			/* the approver would not see all it may run */
			snprintf(msg, cap, "pgtether: %s, but not every statement prepared under its name in this session was kept to be shown to an approver, so it is denied", why);
			v = POLICY_DENY;
		}
	}
	if (v == POLICY_APPROVE && !(params = session_bind_params(body, blen, false, &escaped, &stmt, &stmt_len))) {
		snprintf(msg, cap, "pgtether: a Bind message whose parameters cannot be read is denied");
		v = POLICY_DENY;
	}
	if (v == POLICY_APPROVE) {
		s->stmt_classes = c.classes;
		s->held_timeout = r->statements.approval_timeout;
		snprintf(msg, cap, "%s%s", why, pv.n_texts > 1 ? " (one of several statements prepared under its name)" : "");
		extra = json_pack("{s:o, s:o, s:o}", "statement", escape_json(stmt, stmt_len, NULL), "params", params,
				  "params_escaped", escaped);
		hold(env, s, text, text_len, msg, extra);
	}
	if (v != POLICY_ALLOW && rec_statement(env, s, 'B', text ? text : "", text_len, v, sqlstate, msg) < 0 && v == POLICY_APPROVE) {
		/* not recorded: not run */
		s->held_id = 0;
		s->notice_len = 0;
		snprintf(msg, cap, "pgtether: the statement cannot be recorded, so it is not run");
		strcpy(sqlstate, "53100");
		v = POLICY_DENY;
	}
	free(text);
	return v;
}

/* A session's buffers grow under the daemon-wide memory_budget (sbuf.h). */
static inline int session_mem_take(struct session *s, size_t n)
{
	return sbuf_mem_take(&s->acct, s->env->cfg->memory_budget, n);
}

static inline void session_mem_give(struct session *s, size_t n)
{
	sbuf_mem_give(&s->acct, n);
}

static inline int buf_reserve(struct session *s, struct session_buf *b, size_t want)
{
	return sbuf_reserve(b, &s->acct, s->env->cfg->memory_budget, want);
}

/* u2c keeps its grown room while masks make the rows longer (u2c_kept) */
static inline void buf_shrink(struct session *s, struct session_buf *b)
{
	if (b == &s->u2c && s->u2c_kept)
		return;
	sbuf_shrink(b, &s->acct);
}

static inline int hold_room(struct session *s, struct session_buf *b, size_t start, size_t mlen, size_t reserve)
{
	return sbuf_hold_room(b, &s->acct, s->env->cfg->memory_budget, start, mlen, reserve);
}

static int c2u_reserve(struct session *s, size_t start, size_t mlen)
{
	return hold_room(s, &s->c2u, start, mlen, 0);
}

/* ---- masking ----------------------------------------------------------------------- */

static size_t notification_text(struct session_env *env, struct session *s, size_t start, size_t mlen);
static void end_relay(struct session_env *env, struct session *s, const char *sqlstate, const char *msg,
		      const char *why);

/* The session's rule when rows are looked at (it masks, or records results), else NULL. */
const struct policy_rule *session_masking_rule(struct session_env *env, struct session *s)
{
	const struct policy_rule *r = s->rule[0] ? session_rule(env, s) : NULL;

	return r && (r->n_masks || (r->record_results && s->rec)) ? r : NULL;
}

/* the name statement gating and masking call (see the sbuf wrappers) */
static inline const struct policy_rule *masking_rule(struct session_env *env, struct session *s)
{
	return session_masking_rule(env, s);
}

/*
 * Room kept free in u2c when reading from the upstream. Rows that masks make longer
 * are rewritten in place, so a masked session reads into half the buffer only: the
 * rows it holds can grow into the other half without the buffer growing.
 */
static size_t u2c_reserve(struct session_env *env, struct session *s)
{
	const struct policy_rule *r = masking_rule(env, s);

	if (r && r->n_masks && !s->lookup_active && s->u2c.cap / 2 > SESSION_INJECT_RESERVE)
		return s->u2c.cap / 2;
	return SESSION_INJECT_RESERVE;
}

/*
 * Puts the catalog query for the rule's masks into c2u at pos (a message boundary
 * before which everything is answered): its answer is taken by lookup_scan, not
 * relayed. Returns the bytes added, 0 when the rule needs no catalog (resolved at
 * once), or -ENOMEM.
 */
static long lookup_insert(struct session_env *env, struct session *s, const struct policy_rule *r, size_t pos)
{
	struct session_buf *b = &s->c2u;
	int err;
	char *q = maskset_query(r, &s->masks, &err);
	size_t qlen, n;

	maskset_reset(&s->masks);
	if (!q) {
		s->mask_epoch = env->mask_epoch;
		s->mask_gen = env->gen;
		return err;
	}
	qlen = strlen(q) + 1;
	n = PGWIRE_HEADER + qlen;
	if (buf_reserve(s, b, b->len + n) < 0) {
		free(q);
		return -ENOMEM;
	}
	memmove(b->data + pos + n, b->data + pos, b->len - pos);
	b->data[pos] = 'Q';
	pgwire_put32(b->data + pos + 1, (uint32_t)(4 + qlen));
	memcpy(b->data + pos + PGWIRE_HEADER, q, qlen);
	b->len += n;
	free(q);
	s->lookup_active = true;
	s->lookup_epoch = env->mask_epoch;
	s->refresh_due_since = 0;
	return (long)n;
}

/*
 * Whether the Query or Parse sql[0..len) needs the server's search_path first (its
 * rule has table rules, it names a table without a schema, and no class denies it
 * anyway): PATH_ASK when the server can be asked now, PATH_WAIT when it can once
 * the answers to what went before are in (every earlier message ends in a Sync or
 * is a Query, so they will come), else PATH_NO (check_statement then denies the
 * names it cannot resolve). Rules without table rules stop at the first test.
 */
enum path_due { PATH_NO, PATH_ASK, PATH_WAIT };

static enum path_due path_due(struct session_env *env, struct session *s, const char *sql, size_t len)
{
	const struct policy_rule *r = session_rule(env, s);
	struct sqlclass_result tmp = { 0 };
	const struct sqlclass_result *c = &tmp;
	char why[300];
	bool due;
	int rc;

	if (!r || ((!r->statements.set || (!r->statements.n_tables_allow && !r->statements.n_tables_deny)) &&
		   !sqlguard_may_touch(sql, len)) ||
	    s->path_fresh || len > env->cfg->max_statement_bytes || s->c_unsynced || s->held_id)
		return PATH_NO; /* (pg_settings, for sqlclass_settings_row, is a word the scan finds) */
	if (!path_can_ask(s) && s->pending_count == 0)
		return PATH_NO; /* an aborted transaction: nothing will change that first */
	if (env->sqlcache)
		rc = sqlclass_cached(env->sqlcache, sql, len, policy_dangerous(&env->cfg->policy), &tmp, &c);
	else
		rc = sqlclass_classify(sql, policy_dangerous(&env->cfg->policy), &tmp);
	/* denied whatever the names resolve to (a class): no need to ask */
	due = rc == 0 && searchpath_needed(r, c) && gate_qualified_verdict(r, c, why, sizeof(why)) != POLICY_DENY;
	sqlclass_release(&tmp);
	if (due) {
		const struct searchpath_scan *sc = path_scan(s, sql, len, &rc);

		due = sc && sc->n_unqualified > 0;
	}
	return !due ? PATH_NO : path_can_ask(s) ? PATH_ASK : PATH_WAIT;
}

/*
 * Puts the search_path lookup for sql's names into c2u at pos, before the message
 * that names them (extended-query messages ending in Sync: pos is a point with
 * nothing outstanding); its answer is taken by lookup_scan. The catalog query is
 * prepared once per session, so it is planned once, not per statement. Returns the
 * bytes added, 0 when sql cannot be scanned (check_statement then denies), or
 * -ENOMEM.
 */
static long path_insert(struct session *s, const char *sql, size_t len, size_t pos)
{
	struct session_buf *b = &s->c2u;
	const struct searchpath_scan *sc;
	int err = 0;
	uint8_t *q = NULL;
	size_t n = 0;

	if ((sc = path_scan(s, sql, len, &err)))
		q = searchpath_request(sc, !s->path_prepared, &n, &err);
	else
		err = 0;
	if (!q)
		return err;
	if (buf_reserve(s, b, b->len + n) < 0) {
		free(q);
		return -ENOMEM;
	}
	memmove(b->data + pos + n, b->data + pos, b->len - pos);
	memcpy(b->data + pos, q, n);
	b->len += n;
	free(q);
	searchpath_state_release(&s->path);
	s->lookup_active = true;
	s->path_lookup = true;
	s->path_prepared = true; /* or the lookup fails, and the session ends */
	return (long)n;
}

/*
 * The masks are due to be looked up again, but the session has had no moment with
 * nothing outstanding to do it: true once that has lasted 3 × mask_refresh. A client
 * that never waits (or a pipeline the server discarded part of, whose answers never
 * come) would otherwise keep masks that miss newer views, or, after a reload, NULLs.
 */
static bool mask_refresh_overdue(struct session_env *env, struct session *s)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (!s->refresh_due_since) {
		s->refresh_due_since = now.tv_sec ? now.tv_sec : 1;
		return false;
	}
	return now.tv_sec - s->refresh_due_since >= 3 * (time_t)env->cfg->mask_refresh;
}

/* The lookup failed: masks (or where names lead) cannot be known, so the session
 * cannot go on. */
static void lookup_failed(struct session_env *env, struct session *s, const char *why)
{
	const char *reason = s->path_lookup ? "search_path lookup failed" : "mask lookup failed";
	char msg[600];

	if (s->path_lookup)
		snprintf(msg, sizeof(msg), "pgtether: rule '%s' has table rules, and this session's search_path cannot be asked for: %s",
			 s->rule, why);
	else
		snprintf(msg, sizeof(msg), "pgtether: rule '%s' masks columns, and they cannot be looked up in the catalog: %s",
			 s->rule, why);
	log_error(s->path_lookup ? "searchpath" : "mask", "id=%llu: %s", (unsigned long long)s->id, msg);
	s->lookup_active = false;
	s->path_lookup = false;
	end_relay(env, s, s->lookup_login ? "XX000" : "57P01", msg, reason);
}

/*
 * Server → pgtether while the catalog query is out: takes its rows, and drops its
 * messages, but passes on what the server says of its own accord (notices,
 * parameter changes, notifications). Returns 1 when the answer is complete, 0 when
 * more is to come, -1 when the session ended.
 */
static int lookup_scan(struct session_env *env, struct session *s)
{
	const struct policy_rule *r = masking_rule(env, s);
	struct session_buf *b = &s->u2c;
	size_t pos = s->s_scan;
	int rc;

	while (b->len - pos >= PGWIRE_HEADER) {
		uint8_t type = b->data[pos];
		uint32_t len = pgwire_get32(b->data + pos + 1);
		size_t mlen = 1 + (size_t)len;
		const uint8_t *body = b->data + pos + PGWIRE_HEADER;

		if (len < 4 || len > (16u << 20)) {
			lookup_failed(env, s, "the server's answer is malformed or too large");
			return -1;
		}
		if (b->len - pos < mlen) {
			if (hold_room(s, b, pos, mlen, SESSION_INJECT_RESERVE) < 0) {
				lookup_failed(env, s, s->acct.refused ? "memory_budget exhausted" : "out of memory");
				return -1;
			}
			break;
		}
		if (type == 'N' || type == 'S' || type == 'A') {
			/* the client's */
			pos += type == 'A' && r && r->n_masks ? notification_text(env, s, pos, mlen) : mlen;
			continue;
		}
		if (type == 'E') {
			char m[400], said[300];

			snprintf(m, sizeof(m), "the server said: %s", upstream_error_message(body, len - 4, said, sizeof(said)));
			lookup_failed(env, s, m);
			return -1;
		}
		if (type == 'D' && s->path_lookup) {
			if ((rc = searchpath_add_row(&s->path, body, len - 4)) < 0) {
				lookup_failed(env, s, "a row of the answer is not understood");
				return -1;
			}
		} else if (type == 'D') {
			uint32_t flen = len >= 10 ? pgwire_get32(body + 2) : 0;

			rc = -EINVAL;
			if (!r || len < 10 || flen > len - 10 ||
			    (rc = maskset_add_row(&s->masks, r, (const char *)body + 6, flen)) < 0) {
				char lim[300];

				/* fail closed: what is past a limit would go unmasked or count as built in */
				snprintf(lim, sizeof(lim), "the answer is over pgtether's limits (%d masked columns, %d views, "
					 "%d names of functions and operators outside pg_catalog that calls may resolve to)",
					 MASKSET_MAX_COLS, MASKSET_MAX_VIEWS, MASKSET_MAX_SHADOWS);
				lookup_failed(env, s, !r ? "the rule is gone" : rc == -E2BIG ? lim : "a row of the answer is not understood");
				return -1;
			}
		}
		if (type == 'Z' && s->lookup_login) {
			s->tx_status = body[0];
			pos += mlen; /* the client's first ReadyForQuery */
		} else {
			memmove(b->data + pos, b->data + pos + mlen, b->len - pos - mlen);
			b->len -= mlen;
		}
		if (type == 'Z' && s->path_lookup) {
			s->s_scan = b->ready = pos;
			s->lookup_active = false;
			s->path_lookup = false;
			s->path_fresh = true;
			return 1;
		}
		if (type == 'Z') {
			s->s_scan = b->ready = pos;
			s->lookup_active = false;
			if (r && (rc = maskset_finish(&s->masks, r)) < 0) {
				lookup_failed(env, s, strerror(-rc));
				return -1;
			}
			s->mask_epoch = s->lookup_epoch;
			s->mask_gen = env->gen;
			s->lookup_login = false;
			log_msg(LOG_LEVEL_DEBUG, "mask", "id=%llu: %zu masked columns resolved", (unsigned long long)s->id, s->masks.n);
			return 1;
		}
	}
	s->s_scan = b->ready = pos;
	return 0;
}

/* Whether a Parse's statement names a masked table, by statement name: its Bind
 * parameters are then recorded masked, and what the server says to it withheld. A
 * named statement stays masked once it was: a second Parse of the name fails on the
 * server, which keeps the first. */
static void remember_prepared(struct session *s, const char *name, bool masked)
{
	unsigned i;

	for (i = 0; i < 16; i++)
		if (s->prepared[i].used && !strcmp(s->prepared[i].name, name))
			break;
	if (i == 16) {
		i = s->prepared_next++ % 16;
		if (s->prepared[i].used && s->prepared[i].masked && s->prepared[i].name[0])
			s->prepared_lost = true; /* its name could now be taken for clean */
	} else if (name[0] && s->prepared[i].masked) {
		masked = true;
	}
	snprintf(s->prepared[i].name, sizeof(s->prepared[i].name), "%s", name);
	s->prepared[i].used = true;
	s->prepared[i].masked = masked;
}

/* Whether statement `name` (a Bind's) is known to name no masked table. */
bool session_prepared_clean(const struct session *s, const char *name)
{
	if (name[0] && s->prepared_lost)
		return false;
	for (unsigned i = 0; i < 16; i++)
		if (s->prepared[i].used && !strcmp(s->prepared[i].name, name))
			return !s->prepared[i].masked;
	return false; /* not known (a long name is never found): as if it did */
}

/* Whether the whole Bind body[0..len) binds a statement known to name no masked table. */
static bool bind_clean(const struct session *s, const uint8_t *body, size_t len)
{
	size_t portal = strnlen((const char *)body, len);

	if (portal >= len || !memchr(body + portal + 1, 0, len - portal - 1))
		return false;
	return session_prepared_clean(s, (const char *)body + portal + 1);
}

/* The session's memory budget, for the row buffer of rowmask. */
static int session_rowmask_take(void *arg, size_t n)
{
	return session_mem_take(arg, n);
}

static void session_rowmask_give(void *arg, size_t n)
{
	session_mem_give(arg, n);
}

/*
 * Masks the DataRows from u2c[start] on (the first one whole), as many as are whole
 * in the buffer, in one pass: they are rewritten into s->rows.row and put back in one
 * move. Returns the length they have now (*used: the length they had), or -errno.
 */
static long mask_rows(struct session_env *env, struct session *s, const struct policy_rule *r, size_t start,
		      size_t *used)
{
	struct session_buf *b = &s->u2c;
	size_t p = start, o = 0;
	const struct rowmask_budget budget = { session_rowmask_take, session_rowmask_give, s };
	/* indexes resolved under another snapshot may point at another mask */
	const struct rowmask_keys keys = { s->mask_gen == env->gen ? r : NULL, env->cfg->mask_key, env->cfg->mask_hmac };
	int rc;

	while (b->len - p >= PGWIRE_HEADER && b->data[p] == 'D') {
		size_t mlen = 1 + (size_t)pgwire_get32(b->data + p + 1), was = o;

		if (b->len - p < mlen)
			break;
		if ((rc = rowmask_row(&s->rows, &keys, &budget, b->data + p, mlen, &o)) < 0)
			return rc;
		/* rows that grew must still fit, with SESSION_INJECT_RESERVE kept free for
		 * what pgtether inserts: a row that does not fit waits until what is
		 * before it has gone out, and only a row first in the buffer that cannot
		 * fit even then makes the buffer bigger (for the rest of the session) */
		if (o > p + mlen - start && o - (p + mlen - start) + SESSION_INJECT_RESERVE > room(b)) {
			if (p > start) {
				o = was;
				break;
			}
			if (start > b->off)
				return -EAGAIN; /* after what is before it has gone out */
			if (b->len + (o - mlen) > 2 * (size_t)SESSION_MAX_MASKED_ROW)
				return -E2BIG;
			if (buf_reserve(s, b, b->len + (o - mlen) + SESSION_INJECT_RESERVE + 1) < 0)
				return -ENOMEM;
			s->u2c_kept = true;
		}
		/* recorded once it goes: a row that waits is masked again later */
		if (s->rows_to_record)
			rec_row(env, s, s->rows.row + was, o - was);
		p += mlen;
		s->rows_masked++;
	}
	memmove(b->data + start + o, b->data + p, b->len - p);
	memcpy(b->data + start, s->rows.row, o);
	b->len = b->len - (p - start) + o;
	*used = p - start;
	return (long)o;
}

/* Notes what the server will answer in order: a Query ('Q', answered by
 * RowDescriptions of its own), a Describe of the client's ('d') or of pgtether's
 * ('i'), each with the number of the ReadyForQuery that ends its batch. */
static int expect_answer(struct session *s, uint8_t kind)
{
	if (s->desc_count == s->desc_cap) {
		size_t cap = s->desc_cap ? 2 * s->desc_cap : 64;
		struct session_answer *d;

		if (cap > SESSION_MAX_DESCRIBES)
			return -ENOBUFS;
		if (!(d = malloc(cap * sizeof(*d))))
			return -ENOMEM;
		for (size_t i = 0; i < s->desc_count; i++) /* unrolled from the old ring */
			d[i] = s->describes[(s->desc_head + i) % s->desc_cap];
		free(s->describes);
		s->describes = d;
		s->desc_cap = cap;
		s->desc_head = 0;
	}
	s->describes[(s->desc_head + s->desc_count++) % s->desc_cap] = (struct session_answer){ s->c_batch, kind };
	return 0;
}

/* A Query or Sync passed on: the end of a batch, answered by one ReadyForQuery. */
static int sync_point(struct session *s, const struct policy_rule *masking, uint8_t type)
{
	int r;

	if (masking && type == 'Q' && (r = expect_answer(s, 'Q')) < 0)
		return r;
	s->c_batch++;
	return 0;
}

/* A RowDescription or NoData: true when it answers a Describe pgtether added. */
static bool describe_answer_ours(struct session *s)
{
	uint8_t kind;

	if (!s->desc_count || s->describes[s->desc_head].batch != s->s_batch)
		return false;
	kind = s->describes[s->desc_head].kind;
	if (kind == 'Q')
		return false; /* a Query's own result */
	s->desc_head = (s->desc_head + 1) % s->desc_cap;
	s->desc_count--;
	return kind == 'i';
}

/*
 * Statements whose server text a masked session withholds even when they name no
 * masked table: writes and DDL fire triggers and event triggers, EXECUTE and CALL
 * run what was prepared or defined elsewhere, and any of that code can read a masked
 * column and quote it in a RAISE or an error.
 */
#define SESSION_TAINT_CLASSES (SQL_WRITE | SQL_COPY_IN | SQL_TRUNCATE | SQL_DDL | SQL_DROP | SQL_GRANT | SQL_DYNAMIC)

/* What the server says in answer to the batch being sent now (c_batch) is withheld. */
static void taint_batch(struct session *s)
{
	uint32_t b = s->c_batch % SESSION_TAINT_BATCHES;

	s->tainted[b / 64] |= UINT64_C(1) << (b % 64);
}

/* Whether what the server says now (in answer to batch s_batch) is withheld: its
 * batch is tainted, or an earlier one of the same transaction was (a deferred
 * constraint fails at COMMIT, a cursor is fetched later), or the count is not
 * trusted. */
static bool answer_tainted(const struct session *s)
{
	uint32_t b = s->s_batch % SESSION_TAINT_BATCHES;

	if (s->tx_tainted || s->c_batch - s->s_batch >= SESSION_TAINT_BATCHES)
		return true;
	return (s->tainted[b / 64] >> (b % 64)) & 1;
}

/* A ReadyForQuery ends a batch: what of it was not answered (skipped after an error)
 * never will be. */
static void batch_answered(struct session *s)
{
	uint32_t b = s->s_batch % SESSION_TAINT_BATCHES;

	while (s->desc_count && s->describes[s->desc_head].batch == s->s_batch) {
		s->desc_head = (s->desc_head + 1) % s->desc_cap;
		s->desc_count--;
	}
	s->tx_tainted = s->tx_status != 'I' && answer_tainted(s);
	s->tainted[b / 64] &= ~(UINT64_C(1) << (b % 64));
	s->s_batch++;
	rowmask_forget(&s->rows);
}

/*
 * A whole ErrorResponse or NoticeResponse at u2c[start..start+mlen) of a masking
 * session: its DETAIL goes ("Failing row contains (...)", "Key (email)=(...)" would
 * show masked values), and so does the message of a data exception (class 22: "invalid
 * input syntax for type integer: \"<the value>\""). Returns the message's length now,
 * or -ENOMEM.
 */
static long withhold_detail(struct session *s, size_t start, size_t mlen)
{
	struct session_buf *b = &s->u2c;
	uint8_t *p = b->data + start + PGWIRE_HEADER, *end = b->data + start + mlen;
	const char *sev = NULL, *code = NULL;
	uint8_t m[400];
	char text[160];
	size_t n;

	while (p < end && *p) {
		size_t flen = strnlen((const char *)p, (size_t)(end - p)) + 1;

		if (p + flen > end)
			break;
		if (*p == 'V' || (*p == 'S' && !sev))
			sev = (const char *)p + 1;
		else if (*p == 'C')
			code = (const char *)p + 1;
		if (*p == 'D') {
			memmove(p, p + flen, b->len - (size_t)(p + flen - b->data));
			b->len -= flen;
			end -= flen;
			mlen -= flen;
			pgwire_put32(b->data + start + 1, (uint32_t)(mlen - 1));
			continue;
		}
		p += flen;
	}
	if (b->data[start] != 'E' || !code || strncmp(code, "22", 2) != 0)
		return (long)mlen;
	snprintf(text, sizeof(text), "pgtether: data exception %s (the server's message is withheld: it could quote a masked value)",
		 code);
	n = pgwire_error_response(m, sizeof(m), sev ? sev : "ERROR", code, text, NULL);
	if (n > mlen && buf_reserve(s, b, b->len + (n - mlen) + SESSION_INJECT_RESERVE) < 0)
		return -ENOMEM;
	memmove(b->data + start + n, b->data + start + mlen, b->len - start - mlen);
	memcpy(b->data + start, m, n);
	b->len = b->len - mlen + n;
	return (long)n;
}

/*
 * A whole ErrorResponse or NoticeResponse of the server at u2c[start..start+mlen) in
 * a session with masks. The recording gets it as the server sent it. The client gets,
 * in answer to a tainted batch, its severity, SQLSTATE and catalog names with
 * pgtether's words for a message (pgwire_withhold), and otherwise what
 * withhold_detail leaves. Returns its length now, or -ENOMEM.
 */
static long server_text(struct session_env *env, struct session *s, size_t start, size_t mlen)
{
	struct session_buf *b = &s->u2c;
	const uint8_t *m = b->data + start;
	const char *code, *con, *col;
	char text[400], codebuf[6], what[160] = "";
	uint8_t out[1024];
	size_t n;

	rec_server_message(env, s, m, mlen);
	if (!answer_tainted(s))
		return withhold_detail(s, start, mlen);
	code = pgwire_notice_field(m, mlen, 'C');
	snprintf(codebuf, sizeof(codebuf), "%s", code ? code : m[0] == 'E' ? "XX000" : "01000");
	if ((con = pgwire_notice_field(m, mlen, 'n')))
		snprintf(what, sizeof(what), " (constraint \"%.100s\")", con);
	else if ((col = pgwire_notice_field(m, mlen, 'c')))
		snprintf(what, sizeof(what), " (column \"%.100s\")", col);
	snprintf(text, sizeof(text),
		 "pgtether: the server's %s %s%s is withheld: the statement reads a masked table or runs code "
		 "pgtether cannot follow, so the text could quote a masked value%s",
		 m[0] == 'E' ? "error" : "notice", codebuf, what, s->rec ? " (the session's recording holds it)" : "");
	n = pgwire_withhold(m, mlen, text, out, sizeof(out));
	if (n == 0) {
		/* not well formed, or names too long to keep: the words alone */
		n = pgwire_error_response(out, sizeof(out), m[0] == 'E' ? "ERROR" : "NOTICE", codebuf, text, NULL);
		out[0] = m[0];
	}
	if (n > mlen && buf_reserve(s, b, b->len + (n - mlen) + SESSION_INJECT_RESERVE) < 0)
		return -ENOMEM;
	memmove(b->data + start + n, b->data + start + mlen, b->len - start - mlen);
	memcpy(b->data + start, out, n);
	b->len = b->len - mlen + n;
	return (long)n;
}

/*
 * A whole NotificationResponse at u2c[start..start+mlen) of a session with masks: its
 * payload is free text from any session of the database (pg_notify(ch, email) where
 * pgtether does not look), so the client gets the channel and the sender's pid only;
 * the recording gets the payload. Returns its length now.
 */
static size_t notification_text(struct session_env *env, struct session *s, size_t start, size_t mlen)
{
	struct session_buf *b = &s->u2c;
	uint8_t *m = b->data + start;
	const char *chan = (const char *)m + PGWIRE_HEADER + 4;
	size_t n;

	if (mlen < PGWIRE_HEADER + 4 + 2 || m[mlen - 1] != 0)
		return mlen; /* not one: the server's stream is trusted to be well formed */
	if (s->rec && memchr(chan, 0, mlen - PGWIRE_HEADER - 4) != (const void *)(m + mlen - 1))
		rec_event(env, s, "notification", json_pack("{s:s?, s:s?}", "channel", chan, "payload",
							      chan + strlen(chan) + 1), false);
	if (!(n = pgwire_notification_strip(m, mlen)))
		return mlen;
	memmove(b->data + start + n, b->data + start + mlen, b->len - start - mlen);
	b->len -= mlen - n;
	return n;
}

/*
 * A whole 'T', 'n' or masked 'D' at u2c[start..start+mlen) of a masking session:
 * RowDescriptions set how rows are masked, answers to Describes pgtether added are
 * dropped, rows are rewritten. Returns the bytes now there from start, or -errno.
 */
static long masked_message(struct session_env *env, struct session *s, const struct policy_rule *r, size_t start,
			   size_t mlen)
{
	struct session_buf *b = &s->u2c;
	uint8_t type = b->data[start];
	size_t used;
	long n;
	int rc;

	if (type == 'D') {
		n = mask_rows(env, s, r, start, &used);
		return n;
	}
	if (type == 'E' || type == 'N')
		return r && r->n_masks ? server_text(env, s, start, mlen) : (long)mlen;
	if (type == 'A')
		return (long)notification_text(env, s, start, mlen);
	if (type == 'T' && (rc = rowmask_describe(&s->rows, r, &s->masks, b->data + start + PGWIRE_HEADER, mlen - PGWIRE_HEADER)) < 0)
		return rc;
	if (type == 'n')
		rowmask_forget(&s->rows);
	if (!describe_answer_ours(s))
		return (long)mlen;
	memmove(b->data + start, b->data + start + mlen, b->len - start - mlen);
	b->len -= mlen;
	return 0;
}

/* client_filter stops at a message to read it again from its header later (when it
 * is whole, decided, or after what pgtether put before it): the position to stop at. */
static size_t rescan_from(struct session *s, size_t at)
{
	s->cscan.have = 0;
	s->cscan.remaining = 0;
	return at;
}

/*
 * Client → server: follows message boundaries in c2u from c_scan on; drops
 * FunctionCall messages (their refusal is queued in order) and counts sync points.
 * Bytes of a header not yet complete are held back, so a message can still be
 * removed whole. 0 or -EPROTO / -ENOBUFS.
 */
static int client_filter(struct session_env *env, struct session *s)
{
	struct session_buf *b = &s->c2u;
	size_t pos = s->c_scan;
	struct pgwire_header h;
	int found, r;

	const struct policy_rule *masking = masking_rule(env, s);

	if ((s->held_id && !s->held_decision) || s->lookup_active)
		return 0; /* nothing passes a statement held for approval, or our catalog query */
	while (pos < b->len) {
		if (s->c_drop) {
			size_t n = b->len - pos < s->c_drop ? b->len - pos : s->c_drop;

			memmove(b->data + pos, b->data + pos + n, b->len - pos - n);
			b->len -= n;
			s->c_drop -= (uint32_t)n;
			continue;
		}
		size_t start = pos - s->cscan.have;
		long used = pgwire_scan_next(&s->cscan, b->data + pos, b->len - pos, &h, &found);

		if (used < 0)
			return -EPROTO;
		pos += (size_t)used;
		if (!found)
			continue;
		if (h.type == 'X')
			s->c_terminated = true; /* the server closing next is its answer */
		if (s->read_only && !s->c_unsynced && awaits_server(s) &&
		    (h.type == 'Q' || h.type == 'P' || h.type == 'B' || h.type == 'E')) {
			/* A read-only session's next transaction starts only once the
			 * server has answered the last: its ParameterStatus of
			 * default_transaction_read_only=off (server-side code) comes just
			 * before that ReadyForQuery and ends the session
			 * (session_param_status); a pipelined Query would already run
			 * read-write. relay_event comes back once the answers are in. */
			s->path_waiting = true;
			s->cscan.have = 0;
			s->cscan.remaining = 0;
			pos = start;
			break;
		}
		/* Execute too: a portal bound before a reload that added a mask returns its
		 * later rows under the masks of now */
		if (masking && (h.type == 'Q' || h.type == 'P' || h.type == 'B' || h.type == 'E') &&
		    s->mask_epoch != env->mask_epoch) {
			if (!s->c_unsynced && s->pending_count == 0 && s->tx_status != 'E' && !s->held_id &&
			    !s->want_status && pgwire_scan_at_boundary(&s->sscan)) {
				/* the catalog changed (DDL, reload, mask_refresh): resolve the
				 * masks again first, now that the server has answered everything */
				long n = lookup_insert(env, s, masking, start);

				if (n < 0)
					return (int)n;
				if (n > 0) {
					pos = rescan_from(s, start + (size_t)n);
					break;
				}
			} else if (mask_refresh_overdue(env, s)) {
				return -ESTALE;
			}
		}
		if (masking && h.type == 'E') {
			/* every Execute gets a Describe of its portal first, so the rows it
			 * returns always come after the description masks need (drivers skip
			 * Describe for statements they prepared) */
			size_t mlen = PGWIRE_HEADER + (size_t)h.body_len, plen, dlen;

			if (h.body_len > 1024)
				return -EPROTO;
			if (b->len - start < mlen) {
				if ((r = c2u_reserve(s, start, mlen)) < 0)
					return r;
				pos = rescan_from(s, start);
				break;
			}
			plen = strnlen((const char *)b->data + start + PGWIRE_HEADER, h.body_len);
			if (plen + 5 != h.body_len)
				return -EPROTO;
			dlen = PGWIRE_HEADER + 1 + plen + 1;
			if (buf_reserve(s, b, b->len + dlen) < 0)
				return -ENOMEM;
			memmove(b->data + start + dlen, b->data + start, b->len - start);
			b->data[start] = 'D';
			pgwire_put32(b->data + start + 1, (uint32_t)(dlen - 1));
			b->data[start + PGWIRE_HEADER] = 'P';
			memcpy(b->data + start + PGWIRE_HEADER + 1, b->data + start + dlen + PGWIRE_HEADER, plen + 1);
			b->len += dlen;
			if ((r = expect_answer(s, 'i')) < 0)
				return r;
			s->cscan.remaining = 0;
			pos = start + dlen + mlen;
			s->c_unsynced = true;
			continue;
		}
		if (masking && h.type == 'D' && (r = expect_answer(s, 'd')) < 0)
			return r;
		if (h.type == 'F') {
			/* inside an extended-query batch not yet closed by Sync the refusal
			 * would have no place in the answers; and each refusal owed takes
			 * room kept in u2c, which holds four */
			if (s->c_unsynced || s->refusals_owed >= 4)
				return -EBADMSG;
			s->refusals_owed++;
			memmove(b->data + start, b->data + pos, b->len - pos);
			b->len -= pos - start;
			pos = start;
			s->c_drop = h.body_len;
			s->cscan.remaining = 0;
			if ((r = pending_push(s, 'F')) < 0)
				return r;
		} else if ((h.type == 'Q' || h.type == 'P') && s->rule[0]) {
			/* decided whole: wait until the message is all here */
			size_t mlen = PGWIRE_HEADER + (size_t)h.body_len;
			const char *sql;
			char sqlstate[6], msg[400];
			size_t sql_len;
			bool touches = masking != NULL; /* a held statement: as if it did */
			json_t *extra = NULL;

			if (b->len - start < mlen) {
				if (h.body_len > env->cfg->max_statement_bytes + 256u) {
					/* too long to hold for a check: refused without reading it */
					return -EMSGSIZE;
				}
				if ((r = c2u_reserve(s, start, mlen)) < 0)
					return r;
				pos = rescan_from(s, start);
				break;
			}
			sql = (const char *)b->data + start + PGWIRE_HEADER;
			if (h.type == 'P') {
				const char *z = memchr(sql, 0, h.body_len);

				if (!z)
					return -EPROTO; /* a statement name without its NUL */
				sql = z + 1;
			}
			sql_len = strnlen(sql, (size_t)((const char *)b->data + start + mlen - sql));
			if (sql + sql_len >= (const char *)b->data + start + mlen)
				return -EPROTO; /* no NUL inside the message */
			s->cscan.remaining = 0;
			enum policy_verdict v;

			if (s->held_id) {
				/* decided: the held statement runs or fails */
				v = held_outcome(s, sqlstate, msg, sizeof(msg));
			} else {
				/* names without a schema: ask the server for its search_path first */
				enum path_due due = path_due(env, s, sql, sql_len);
				long n = due == PATH_ASK ? path_insert(s, sql, sql_len, start) : 0;

				if (due == PATH_WAIT) {
					/* relay_event comes back once the answers are in */
					s->path_waiting = true;
					s->cscan.have = 0;
					pos = start;
					break;
				}
				if (n < 0)
					return (int)n;
				if (n > 0) {
					pos = rescan_from(s, start + (size_t)n);
					break;
				}
				s->path_parse = h.type == 'P';
				v = check_statement(env, s, sql, sql_len,
						    h.type == 'P' ? (const char *)b->data + start + PGWIRE_HEADER : NULL,
						    sqlstate, msg, sizeof(msg), &touches, &extra);
				s->path_fresh = false; /* an answer serves one message */
				if (s->path_prepared && ((s->stmt_classes & SQL_DYNAMIC) ||
							 ((s->stmt_classes & SQL_SESSION) && (strcasestr(sql, "dealloc") || strcasestr(sql, "discard")))))
					s->path_prepared = false; /* DEALLOCATE ALL, DISCARD ALL, code: prepare again */
			}
			if (masking && masking->n_masks && v != POLICY_DENY &&
			    (touches || (s->stmt_classes & SESSION_TAINT_CLASSES)))
				taint_batch(s);
			if (masking && (s->stmt_classes & SQL_DYNAMIC))
				s->prepared_lost = true; /* PREPARE and DEALLOCATE change named statements */
			if (h.type == 'P' && masking)
				remember_prepared(s, (const char *)b->data + start + PGWIRE_HEADER, touches);
			if (h.type == 'P' && v == POLICY_APPROVE)
				v = POLICY_ALLOW; /* a Parse runs nothing: each Bind of it is held (one approval, one execution) */
			if (v == POLICY_APPROVE)
				hold(env, s, sql, sql_len, msg, extra);
			else
				json_decref(extra);
			if (rec_statement(env, s, h.type, sql, sql_len, v, sqlstate, msg) < 0 && v != POLICY_DENY) {
				v = POLICY_DENY;
				strcpy(sqlstate, "53100");
				snprintf(msg, sizeof(msg), "pgtether: the statement cannot be recorded (%s), so it is not run",
					 s->rec && s->rec->error ? strerror(-s->rec->error) : "write failed");
				if (s->held_id) {
					s->held_id = 0;
					s->notice_len = 0;
				}
			}
			if (v == POLICY_APPROVE) {
				s->cscan.have = 0;
				pos = start;
				break;
			}
			if (v == POLICY_ALLOW) {
				pos = start + mlen;
			} else {
				struct logline l;

				log_begin(&l, LOG_LEVEL_WARN, "stmt.denied");
				log_u64(&l, "id", s->id);
				log_u64(&l, "pid", s->origin.tgid);
				log_str(&l, "cgroup", s->facts.cgroup);
				log_str(&l, "rule", s->rule);
				if (s->token_sub[0])
					log_str(&l, "sub", s->token_sub);
				log_str(&l, "message", h.type == 'Q' ? "query" : "parse");
				log_str(&l, "sqlstate", sqlstate);
				log_str(&l, "msg", msg);
				log_end(&l, LOG_LEVEL_WARN);
				if ((r = substitute_sentinel(env, s, start, mlen, sqlstate, msg)) < 0)
					return r;
				pos = start + (size_t)r;
			}
			if (h.type == 'Q') {
				prepared_end_batch(&s->stmts, !s->c_unsynced);
				s->c_unsynced = false;
				s->batch_denied = false;
				if ((r = pending_push(s, 'Q')) < 0 || (r = sync_point(s, masking, 'Q')) < 0)
					return r;
			} else {
				s->c_unsynced = true;
			}
		} else if (h.type == 'Q' || h.type == 'S') {
			prepared_end_batch(&s->stmts, h.type == 'Q' && !s->c_unsynced);
			s->c_unsynced = false;
			s->batch_denied = false;
			if ((r = pending_push(s, h.type)) < 0 || (r = sync_point(s, masking, h.type)) < 0)
				return r;
		} else if (h.type == 'B' && (s->rec || bind_checked(env, s) || (masking && masking->n_masks))) {
			size_t mlen = PGWIRE_HEADER + (size_t)h.body_len;
			bool check = bind_checked(env, s);

			s->c_unsynced = true;
			if (h.body_len > env->cfg->max_statement_bytes + 256u && !check) {
				if (masking && masking->n_masks)
					taint_batch(s); /* its statement is not read: as if it named a masked table */
				rec_event(env, s, "bind", json_pack("{s:I}", "bytes", (json_int_t)h.body_len), false);
				continue; /* too long to hold for the record: its size only */
			}
			if (h.body_len > env->cfg->max_statement_bytes + 256u)
				return -EMSGSIZE; /* too long to hold for a check */
			if (b->len - start < mlen) {
				if ((r = c2u_reserve(s, start, mlen)) < 0)
					return r;
				pos = rescan_from(s, start);
				break;
			}
			if (masking && masking->n_masks && !bind_clean(s, b->data + start + PGWIRE_HEADER, h.body_len))
				taint_batch(s);
			s->cscan.remaining = 0;
			if (check) {
				char sqlstate[6], msg[400];
				enum policy_verdict v = s->held_id ? held_outcome(s, sqlstate, msg, sizeof(msg))
								   : check_bind(env, s, b->data + start + PGWIRE_HEADER,
										h.body_len, sqlstate, msg, sizeof(msg));

				if (v == POLICY_APPROVE) {
					s->cscan.have = 0;
					pos = start;
					break;
				}
				if (v == POLICY_DENY) {
					if ((r = substitute_sentinel(env, s, start, mlen, sqlstate, msg)) < 0)
						return r;
					pos = start + (size_t)r;
					continue;
				}
			}
			if (s->rec)
				rec_bind(env, s, masking, b->data + start + PGWIRE_HEADER, h.body_len);
			pos = start + mlen;
		} else if (strchr("PBEDCH", h.type)) {
			s->c_unsynced = true;
			if (h.type == 'C')
				s->path_prepared = false; /* it may close the lookup's statement */
		}
	}
	s->c_scan = pos;
	b->ready = pos - s->cscan.have;
	if (b->eof) {
		/* the client is gone: a header it never finished will never be sent */
		b->len = b->ready;
		s->c_scan = b->len;
		s->cscan.have = 0;
	}
	return 0;
}

/*
 * The server's ErrorResponse at data[start..start+mlen) of u2c: when it is the
 * syntax error of a statement substituted for a denied one, it becomes the denial.
 * Returns the message's length after that.
 */
static size_t replace_sentinel_error(struct session_env *env, struct session *s, size_t start, size_t mlen,
				     bool *replaced)
{
	static const char near[] = "syntax error at or near \"";
	struct session_buf *b = &s->u2c;
	const uint8_t *p = b->data + start + PGWIRE_HEADER, *end = b->data + start + mlen;
	size_t tag = strlen(env->sentinel_tag);
	uint8_t m[640];
	size_t n;

	while (p < end && *p) {
		const uint8_t *v = p + 1;
		size_t vlen = strnlen((const char *)v, (size_t)(end - v));

		if (*p == 'M' && vlen > sizeof(near) - 1 + tag && memcmp(v, near, sizeof(near) - 1) == 0 &&
		    memcmp(v + sizeof(near) - 1, env->sentinel_tag, tag) == 0) {
			unsigned long seq = strtoul((const char *)v + sizeof(near) - 1 + tag, NULL, 10);
			unsigned slot = (unsigned)(seq % SESSION_MAX_DENIALS);

			n = pgwire_error_response(m, sizeof(m), "ERROR", s->denials[slot].sqlstate, s->denials[slot].msg, NULL);
			if (n == 0 || (n > mlen && n - mlen > room(b)))
				return mlen;
			memmove(b->data + start + n, b->data + start + mlen, b->len - start - mlen);
			memcpy(b->data + start, m, n);
			b->len = b->len - mlen + n;
			if (s->sentinels_out)
				s->sentinels_out--;
			*replaced = true;
			return n;
		}
		p = v + vlen + 1;
	}
	return mlen;
}

/*
 * The server's insufficient_privilege (42501) error at u2c[start..start+mlen) of a
 * session whose client named a user other than the role pgtether logged in as: the
 * difference is on purpose, and the error says so in its hint. Returns its length now.
 */
static size_t role_hint(struct session *s, size_t start, size_t mlen)
{
	struct session_buf *b = &s->u2c;
	const char *code = pgwire_notice_field(b->data + start, mlen, 'C');
	char hint[512];
	uint8_t out[2048];
	size_t n;

	if (!code || strcmp(code, "42501"))
		return mlen;
	snprintf(hint, sizeof(hint),
		 "pgtether logged this session in as role \"%s\", which rule '%s' grants, not as the user \"%s\" the client named",
		 s->role, s->rule, s->client_user);
	n = pgwire_add_hint(b->data + start, mlen, hint, out, sizeof(out));
	if (n == 0 || (n > mlen && buf_reserve(s, b, b->len + (n - mlen) + SESSION_INJECT_RESERVE) < 0))
		return mlen; /* the server's words alone */
	memmove(b->data + start + n, b->data + start + mlen, b->len - start - mlen);
	memcpy(b->data + start, out, n);
	b->len = b->len - mlen + n;
	return n;
}

/*
 * A ParameterStatus (body: name\0value\0, PostgreSQL protocol 55.7) of a setting
 * statements are read by, or of the read-only mode a read-only rule's session runs
 * in: kept in the session and recorded. false when the session must end, with
 * param_fault() saying why: client_encoding is not UTF8, which pgtether reads every
 * statement as, or a read-only session became read-write (server-side code, a DO
 * block, did what check_statement denies the client; PostgreSQL 14+ reports
 * default_transaction_read_only).
 */
bool session_param_status(struct session_env *env, struct session *s, const uint8_t *body, size_t blen)
{
	const char *name = (const char *)body, *value;
	size_t nl = strnlen(name, blen);
	char *keep;

	if (nl + 1 >= blen)
		return true;
	value = name + nl + 1;
	if (strnlen(value, blen - nl - 1) == blen - nl - 1)
		return true; /* no NUL: not a setting anyone reads */
	if (!strcmp(name, "default_transaction_read_only")) {
		if (s->read_only && strcmp(value, "on")) {
			s->read_write_seen = true;
			return false;
		}
		return true;
	}
	if (!strcmp(name, "standard_conforming_strings"))
		keep = s->scs;
	else if (!strcmp(name, "client_encoding"))
		keep = s->client_encoding;
	else
		return true;
	if (keep[0] && strcmp(keep, value) && s->rec)
		/* a change after login: a statement or a function set it */
		rec_event(env, s, "setting", json_pack("{s:s, s:s}", "name", name, "value", value), false);
	snprintf(keep, keep == s->scs ? sizeof(s->scs) : sizeof(s->client_encoding), "%s", value);
	return keep != s->client_encoding || !strcmp(value, "UTF8");
}

/* Why session_param_status said the session must end, for the client. */
void session_param_fault(const struct session *s, char *out, size_t cap)
{
	if (s->read_write_seen)
		snprintf(out, cap, "pgtether: rule '%s' is read-only, and the database now runs this session read-write "
			 "(server-side code turned default_transaction_read_only off), so the session ends", s->rule);
	else
		snprintf(out, cap, "pgtether: the database now reads this session in client_encoding \"%s\"; "
			 "pgtether reads statements as UTF8 only, so the session ends", s->client_encoding);
}

/*
 * Server → client: follows message boundaries in u2c from s_scan on, noting each
 * ReadyForQuery's transaction status and putting due refusals right after it, and
 * turning the errors of substituted statements into their denials.
 */
static int server_scan(struct session_env *env, struct session *s)
{
	struct session_buf *b = &s->u2c;
	size_t pos = s->s_scan, hold = SIZE_MAX;
	struct pgwire_header h;
	int found;

	const struct policy_rule *masking = masking_rule(env, s);

	if (s->lookup_active)
		return 0; /* lookup_scan's */
	/* refusals owed with nothing outstanding before them go out at a boundary */
	if (pgwire_scan_at_boundary(&s->sscan) && !s->want_status)
		pos += inject_due(s, pos);
	while (pos < b->len) {
		if (s->want_status) {
			s->tx_status = b->data[pos++];
			s->want_status = false;
			s->rfq_count++; /* what a cancel under way was for has ended */
			s->sscan.remaining = 0;
			batch_answered(s);
			if (s->pending_count && (s->pending[s->pending_head] == 'S' || s->pending[s->pending_head] == 'Q')) {
				s->pending_head = (s->pending_head + 1) % SESSION_MAX_PENDING;
				s->pending_count--;
			}
			if (s->ddl_done && s->tx_status == 'I') {
				env->mask_epoch++; /* masked sessions look again before their next statement */
				worker_notify(PRIV_DDL, s->id, NULL, 0, -1); /* ... in every worker */
				s->ddl_done = false;
			}
			if (s->pending_count == 0 && !s->c_unsynced)
				s->sentinels_out = 0; /* answered or discarded, every one */
			pos += inject_due(s, pos);
			continue;
		}
		/* where this message starts, if its header is still in the buffer: a header
		 * begun in an earlier read may have been sent already */
		size_t start = pos >= s->sscan.have ? pos - s->sscan.have : SIZE_MAX;
		bool whole_here = start != SIZE_MAX && start >= b->off;
		long used = pgwire_scan_next(&s->sscan, b->data + pos, b->len - pos, &h, &found);

		if (used < 0)
			return -EPROTO;
		pos += (size_t)used;
		if (found && h.type == 'S' && h.body_len < 1024 && whole_here) {
			/* a setting changed: read whole before it goes on */
			size_t mlen = PGWIRE_HEADER + h.body_len;

			s->sscan.remaining = 0;
			if (b->len - start < mlen) {
				s->sscan.have = 0;
				pos = hold = start;
				break;
			}
			s->last_server_type = h.type;
			if (!session_param_status(env, s, b->data + start + PGWIRE_HEADER, h.body_len))
				return -EILSEQ;
			pos = start + mlen;
			pos += inject_due(s, pos);
			continue;
		}
		if (found && h.type == 'E' && (s->sentinels_out || s->role_hint) && h.body_len < 1024 && whole_here) {
			size_t mlen = PGWIRE_HEADER + h.body_len;

			s->last_server_type = h.type;
			if (b->len - start < mlen) {
				/* held until whole: it may be a denial's */
				s->sscan.have = 0;
				s->sscan.remaining = 0;
				pos = hold = start;
				break;
			}
			s->sscan.remaining = 0;
			bool denial = false;
			size_t now = replace_sentinel_error(env, s, start, mlen, &denial);

			if (!denial) {
				/* the server's own */
				if (masking && masking->n_masks) {
					long w = server_text(env, s, start, mlen);

					if (w < 0)
						return (int)w;
					now = (size_t)w;
				} else {
					rec_server_message(env, s, b->data + start, now);
				}
				if (s->role_hint)
					now = role_hint(s, start, now);
			}
			pos = start + now;
			pos += inject_due(s, pos);
			continue;
		}
		if (found && (masking || s->desc_count) && whole_here &&
		    (h.type == 'T' || h.type == 'n' || (masking && (h.type == 'E' || h.type == 'N')) ||
		     (masking && masking->n_masks && h.type == 'A') ||
		     (masking && h.type == 'D' && (s->rows.masked || s->rows_to_record || !s->rows.have_desc)))) {
			size_t mlen = PGWIRE_HEADER + (size_t)h.body_len;
			long now;

			if (h.type == 'D' && !s->rows.have_desc) {
				if (!masking->n_masks)
					goto plain; /* recorded rows only: these are not */
				return -EBADE; /* rows nothing described: they cannot be masked */
			}
			if (b->len - start < mlen) {
				if (h.type == 'D' && mlen > SESSION_MAX_MASKED_ROW)
					return -E2BIG;
				/* reading stops at half the buffer (u2c_reserve): the row must
				 * fit in that half */
				if (hold_room(s, b, start, mlen, start + mlen + SESSION_INJECT_RESERVE) < 0)
					return -ENOMEM;
				s->sscan.have = 0;
				s->sscan.remaining = 0;
				pos = hold = start;
				break;
			}
			s->sscan.remaining = 0;
			if ((now = masked_message(env, s, masking, start, mlen)) == -EAGAIN) {
				/* no room for the masked rows before the client has read */
				s->sscan.have = 0;
				pos = hold = start;
				s->u2c_rescan = true;
				break;
			}
			if (now < 0)
				return (int)now;
			if (h.type == 'E' && !masking->n_masks)
				rec_server_message(env, s, b->data + start, (size_t)now); /* server_text's, when masking */
			s->last_server_type = h.type;
			pos = start + (size_t)now;
			pos += inject_due(s, pos);
			continue;
		}
plain:
		if (found && h.type == 'C' && whole_here && h.body_len >= 5 && b->len - start >= PGWIRE_HEADER + 5 &&
		    (!memcmp(b->data + start + PGWIRE_HEADER, "CREAT", 5) || !memcmp(b->data + start + PGWIRE_HEADER, "ALTER", 5) ||
		     !memcmp(b->data + start + PGWIRE_HEADER, "DROP ", 5)))
			s->ddl_done = true; /* the catalog changed: masks are resolved again */
		if (found && s->rec && (h.type == 'C' || h.type == 'E') && whole_here &&
		    b->len - start >= PGWIRE_HEADER + (size_t)h.body_len)
			rec_server_message(env, s, b->data + start, PGWIRE_HEADER + (size_t)h.body_len);
		if (found) {
			s->last_server_type = h.type;
			if (h.type == 'Z' && h.body_len == 1)
				s->want_status = true;
			else if (pgwire_scan_at_boundary(&s->sscan))
				pos += inject_due(s, pos);
		}
	}
	s->s_scan = pos;
	/* while a denial may come back, or rows may be masked, a header is not sent
	 * before it is known */
	b->ready = hold != SIZE_MAX ? hold : pos - s->sscan.have; /* a ParameterStatus header too */
	return 0;
}

/* While a cancel of s is under way at the server, what s's client sends next waits:
 * it reaches the server after the cancel did, so the cancel cannot stop it. */
static bool c2u_gated(const struct session *s)
{
	return s->cancel && s->cancel->cancel_inflight;
}

static uint32_t interest(const struct session_buf *in, size_t reserve, const struct session_buf *out)
{
	uint32_t ev = 0;

	if (!in->eof && room(in) > reserve)
		ev |= EPOLLIN;
	if (out->ready > out->off)
		ev |= EPOLLOUT;
	return ev;
}

/* The client broke a rule of the relay: it is told why, at once, and the session ends. */
static void client_fatal(struct session_env *env, struct session *s, const char *sqlstate, const char *msg,
			 const char *why)
{
	queue_error(s, "FATAL", sqlstate, msg);
	flush(&s->u2c, &s->client, &s->s_scan);
	session_close(env, s, why);
}

/* The upstream went away mid-session: tell the client with a FATAL error when that
 * can be said at a message boundary (a server's own FATAL already said it). */
static void end_relay(struct session_env *env, struct session *s, const char *sqlstate, const char *msg,
		      const char *why)
{
	if (pgwire_scan_at_boundary(&s->sscan) && !s->want_status && s->last_server_type != 'E')
		queue_error(s, "FATAL", sqlstate, msg);
	flush(&s->u2c, &s->client, &s->s_scan);
	if (s->u2c.ready > s->u2c.off) {
		/* a slow client still gets what the server said last (its own FATAL,
		 * final rows): drain, then close */
		tls_free(s->upstream.ssl);
		s->upstream.ssl = NULL;
		close(s->upstream.fd);
		s->upstream.fd = -1;
		snprintf(s->refuse_msg, sizeof(s->refuse_msg), "%s", why);
		s->draining = true;
		s->drain_started = time(NULL);
		set_events(env, &s->client, EPOLLOUT);
		return;
	}
	session_close(env, s, why);
}

static void upstream_lost(struct session_env *env, struct session *s, const char *why)
{
	char msg[256];

	snprintf(msg, sizeof(msg), "pgtether: the connection to the database was lost (%s)", why);
	end_relay(env, s, "08006", msg, why);
}

void session_relay_event(struct session_env *env, struct session *s, struct session_end *end, uint32_t events)
{
	bool from_client = end == &s->client;
	struct session_buf *in = from_client ? &s->c2u : &s->u2c;
	struct session_buf *out = from_client ? &s->u2c : &s->c2u;
	struct session_end *other = from_client ? &s->upstream : &s->client;
	const char *who = from_client ? "client" : "upstream";
	char reason[160];
	bool kick = false;
	ssize_t n;
	int r = 0;

	if (s->draining) {
		if (from_client && (events & EPOLLOUT) && flush(&s->u2c, &s->client, &s->s_scan) == 0 &&
		    s->u2c.ready > s->u2c.off)
			return;
		session_close(env, s, s->refuse_msg);
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
			upstream_lost(env, s, reason);
		return;
	}
	if (events & (EPOLLIN | EPOLLHUP)) {
		n = fill(in, end, from_client ? 0 : u2c_reserve(env, s),
			 from_client ? &s->bytes_c2u : &s->bytes_u2c);
		if (n < 0) {
			snprintf(reason, sizeof(reason), "%s error: %s", who, strerror((int)-n));
			if (from_client)
				session_close(env, s, reason);
			else
				upstream_lost(env, s, reason);
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
			upstream_lost(env, s, "upstream closed");
			return;
		}
		if (!from_client && s->lookup_active) {
			int l = lookup_scan(env, s);

			if (l < 0)
				return; /* the session ended */
			kick = l > 0;
		}
		r = from_client ? client_filter(env, s) : server_scan(env, s);
		if (!from_client && r == 0 && s->path_waiting && path_can_ask(s)) {
			/* a statement waits for the search_path: it can be asked now */
			s->path_waiting = false;
			kick = true;
		} else if (!from_client && r == 0 && s->path_waiting && !s->pending_count) {
			s->path_waiting = false; /* an aborted transaction: check_statement denies */
			kick = true;
		}
		if (r == -EPROTO && from_client) {
			char m[160];

			snprintf(m, sizeof(m), "pgtether: invalid message length from the client (below 4 or above max_message_bytes, %u)",
				 env->cfg->max_message_bytes);
			client_fatal(env, s, "08P01", m, "client protocol violation");
			return;
		}
		if (r == -EPROTO) {
			session_close(env, s, "upstream protocol violation");
			return;
		}
		if (r == -ENOBUFS) {
			client_fatal(env, s, "54000", "pgtether: too many pipelined queries or denied statements awaiting an answer",
				     "client pipelined too many unanswered or denied queries");
			return;
		}
		if (r == -EMSGSIZE || r == -ENOMEM) {
			char m[300];

			if (r == -ENOMEM && s->acct.refused)
				session_budget_message(env, m, sizeof(m));
			else
				snprintf(m, sizeof(m), "pgtether: %s", r == -ENOMEM ? "out of memory" :
					 "a statement longer than max_statement_bytes cannot be checked, so it is denied");
			client_fatal(env, s, r == -ENOMEM ? "53200" : "54000", m,
				     r != -ENOMEM ? "statement too long to check" :
				     s->acct.refused ? "memory_budget exhausted" : "out of memory");
			return;
		}
		if (r == -EBADE || r == -E2BIG) {
			char m[200];

			snprintf(m, sizeof(m), "pgtether: %s", r == -EBADE ? "rows came without a description, so they cannot be masked" :
				 "a row too large to mask (over 64 MiB)");
			end_relay(env, s, r == -E2BIG ? "54000" : "XX000", m, "row cannot be masked");
			return;
		}
		if (r == -ESTALE) {
			char m[300];

			snprintf(m, sizeof(m), "pgtether: this session's masks could not be looked up again for %u s: "
				 "it never waited for all its answers between statements; reconnect",
				 3 * env->cfg->mask_refresh);
			client_fatal(env, s, "55000", m, "masks could not be refreshed");
			return;
		}
		if (r == -EILSEQ) {
			char m[300];

			session_param_fault(s, m, sizeof(m));
			client_fatal(env, s, "0A000", m, s->read_write_seen ? "read-only session made read-write" : "client_encoding not UTF8");
			return;
		}
		if (r == -EBADMSG) {
			client_fatal(env, s, "08P01",
				     "pgtether: FunctionCall inside an unfinished extended-query batch, or too many pipelined FunctionCalls",
				     "client protocol violation");
			return;
		}
		if ((!from_client || !c2u_gated(s)) && (r = flush(in, other, from_client ? &s->c_scan : &s->s_scan)) < 0) {
			snprintf(reason, sizeof(reason), "%s error: %s", from_client ? "upstream" : "client", strerror(-r));
			session_close(env, s, reason);
			return;
		}
		buf_shrink(s, from_client ? &s->c2u : &s->u2c);
		if (from_client && (s->notice_len || (s->pending_count && s->pending[s->pending_head] == 'F'))) {
			/* a refusal with nothing before it: the client is owed it now */
			server_scan(env, s);
			flush(&s->u2c, &s->client, &s->s_scan);
		}
	}
	if (events & EPOLLOUT) {
		if ((from_client || !c2u_gated(s)) && (r = flush(out, end, from_client ? &s->s_scan : &s->c_scan)) < 0) {
			snprintf(reason, sizeof(reason), "%s error: %s", who, strerror(-r));
			session_close(env, s, reason);
			return;
		}
		if (from_client && s->refusals_owed) {
			/* room again: refusals that waited for it can go out */
			server_scan(env, s);
			flush(&s->u2c, &s->client, &s->s_scan);
		}
	}
	if (s->c2u.shut && s->u2c.shut) {
		session_close(env, s, s->closed_by ? s->closed_by : "closed");
		return;
	}
	if ((events & EPOLLHUP) && in->eof && out->ready == out->off) {
		session_close(env, s, from_client ? "client closed" : "upstream closed");
		return;
	}
	set_events(env, &s->client, interest(&s->c2u, 0, &s->u2c));
	set_events(env, &s->upstream, interest(&s->u2c, u2c_reserve(env, s), &s->c2u) & ~(c2u_gated(s) ? EPOLLOUT : 0));
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
	if (tls_pending(s->client.ssl) && room(&s->c2u) > 0 && !s->c2u.eof)
		session_relay_event(env, s, &s->client, EPOLLIN);
	else if (tls_pending(s->upstream.ssl) && room(&s->u2c) > u2c_reserve(env, s) && !s->u2c.eof)
		session_relay_event(env, s, &s->upstream, EPOLLIN);
}

/* ---- login ------------------------------------------------------------------- */

void session_start_relay(struct session_env *env, struct session *s)
{
	const struct policy_rule *mr;
	struct logline l;
	char buf[ADDR_STRLEN];

	s->state = SESSION_RELAYING;
	session_login_done(env, s);
	log_begin(&l, LOG_LEVEL_INFO, "conn.open");
	session_log_identity(&l, s);
	log_str(&l, "upstream_addr", addr_format(&s->up_addrs[s->up_try], buf));
	log_str(&l, "upstream_local", addr_format(&s->up_local, buf));
	log_u64(&l, "login_ms", (unsigned long long)session_elapsed_ms(s));
	if (s->rec)
		log_str(&l, "recording", s->rec->id);
	{
		char t[96];

		log_str(&l, "client_tls", s->client.ssl ? tls_describe(s->client.ssl, t, sizeof(t)) : "no");
		log_str(&l, "upstream_tls", s->upstream.ssl ? tls_describe(s->upstream.ssl, t, sizeof(t)) : "no");
	}
	log_end(&l, LOG_LEVEL_INFO);

	scram_client_release(&s->scram);
	{
		struct priv_logged_in q = { s->key_pid, s->key_secret, (uint32_t)s->up_try };

		worker_notify(PRIV_LOGGED_IN, s->id, &q, sizeof(q), -1); /* cancels name it so */
	}
	/* the login messages sent (password, md5 response, SCRAM proof) and received */
	OPENSSL_cleanse(s->c2u.data, s->c2u.cap);
	OPENSSL_cleanse(s->in.data, s->in.cap);

	s->c2u.off = s->c2u.ready = s->c2u.len = 0;
	s->cscan = (struct pgwire_scan){ .max_len = env->cfg->max_message_bytes };
	s->sscan = (struct pgwire_scan){ .max_len = env->cfg->max_message_bytes };
	s->c_scan = 0;
	s->s_scan = s->u2c.len; /* what is queued was composed here, at boundaries */
	if ((mr = masking_rule(env, s))) {
		/* the client's first ReadyForQuery waits for the answer of the catalog query */
		long n = lookup_insert(env, s, mr, 0);

		if (n > 0) {
			s->lookup_login = true;
			s->c2u.ready = s->c_scan = (size_t)n;
		} else if (n == 0) {
			uint8_t z[8];

			put(&s->u2c, z, pgwire_build_ready_for_query(z, sizeof(z), (char)s->tx_status));
			s->s_scan = s->u2c.len;
		} else {
			refuse(env, s, "53200", "conn.refused", "pgtether: out of memory");
			return;
		}
	}
	set_events(env, &s->client, EPOLLIN | (s->u2c.ready > s->u2c.off ? EPOLLOUT : 0));
	set_events(env, &s->upstream, EPOLLIN | (s->c2u.ready > s->c2u.off ? EPOLLOUT : 0));
	/* a TLS client may have sent its first query already; no epoll event will say so */
	if (tls_pending(s->client.ssl))
		session_relay_event(env, s, &s->client, EPOLLIN);
}

/* ---- startup ----------------------------------------------------------------- */

static bool falsy(const char *v)
{
	return !strcasecmp(v, "false") || !strcasecmp(v, "off") || !strcasecmp(v, "no") ||
	       !strcmp(v, "0") || !*v;
}

/* What the database sees as current_setting('pgtether.identity'). */
/* Both halves of the identity, for the database (pgtether.identity). */
static void identity_string(const struct session *s, char *out, size_t cap)
{
	int n = snprintf(out, cap, "cgroup=%s;uid=%u;gid=%u;pid=%u;exe=%s;comm=%.16s;rule=%s", s->facts.cgroup,
			 s->origin.uid, s->origin.gid, s->origin.tgid, s->facts.exe, s->origin.comm, s->rule);

	if (s->token_iss[0] && n > 0 && (size_t)n < cap)
		snprintf(out + n, cap - (size_t)n, ";iss=%s;sub=%s", s->token_iss, s->token_sub);
}

/* Startup parameters passed on, at most: connect_upstream adds its own after them. */
#define FWD_MAX 64

/* Keeps a startup parameter to pass on once the identity is known. -E2BIG when it
 * would not fit: refused, never dropped (the recording says what was passed). */
static int fwd_add(struct session *s, const char *name, const char *value)
{
	size_t a = strlen(name) + 1, b = strlen(value) + 1, kept = 0;

	for (size_t at = 0; at < s->fwd_len; at++)
		kept += !s->fwd_params[at];
	if (s->fwd_len + a + b > sizeof(s->fwd_params) || kept / 2 >= FWD_MAX)
		return -E2BIG;
	memcpy(s->fwd_params + s->fwd_len, name, a);
	memcpy(s->fwd_params + s->fwd_len + a, value, b);
	s->fwd_len += a + b;
	return 0;
}


/*
 * One setting the client gives at startup, as a parameter or inside "options"
 * (startopts.h): refused with the reason, passed on, or (client_encoding,
 * application_name) taken by pgtether. 0, or -1 after refusing the session.
 */
static int startup_setting(struct session_env *env, struct session *s, const char *name, const char *value,
			   const char **client_app, bool *encoding_sent)
{
	char why[STARTOPTS_ERR];

	if (!strcasecmp(name, "application_name")) {
		*client_app = value; /* prefixed with the identity (connect_upstream) */
		return 0;
	}
	if (!strcasecmp(name, "client_encoding")) {
		/* SQL_ASCII (psql under the C locale) is rewritten: UTF8 is a superset
		 * and the server tells the client with ParameterStatus. Others would
		 * make the bytes policy reads differ from the bytes the client meant. */
		char enc[16];

		/* spelled as the server compares them: asyncpg sends 'utf-8' */
		if (!pgwire_encoding_key(value, enc, sizeof(enc)) ||
		    (strcmp(enc, "utf8") && strcmp(enc, "unicode") && strcmp(enc, "sqlascii"))) {
			refuse(env, s, "22023", "conn.refused",
			       "pgtether: client_encoding \"%s\" is not supported; use UTF8 (PGCLIENTENCODING=UTF8)", value);
			return -1;
		}
		if (!*encoding_sent && fwd_add(s, "client_encoding", "UTF8") < 0)
			goto too_long;
		*encoding_sent = true;
		return 0;
	}
	if (!startopts_allowed(name, why) || !startopts_value_allowed(name, value, why)) {
		refuse(env, s, "08004", "conn.refused", "pgtether: the startup setting \"%s\" is not passed: %s", name, why);
		return -1;
	}
	if (fwd_add(s, name, value) == 0)
		return 0;
too_long:
	refuse(env, s, "08P01", "conn.refused", "pgtether: the startup settings are too many or too long (at most %d, %zu bytes)",
	       FWD_MAX, sizeof(s->fwd_params));
	return -1;
}

/* The client's StartupMessage: check its parameters and choose the upstream by the
 * destination; then the identity decides the rest (identify). */
static void handle_startup(struct session_env *env, struct session *s, const uint8_t *pkt, size_t plen)
{
	struct pgwire_param in[64];
	struct startopts_setting opts[STARTOPTS_MAX];
	char buf[ADDR_STRLEN], err[STARTOPTS_ERR], obuf[PGWIRE_STARTUP_MAX];
	const char *client_app = NULL, *user = NULL, *database = NULL, *options = NULL;
	uint32_t version = pgwire_get32(pkt + 4);
	struct config_upstream *u;
	bool encoding_sent = false;
	int nin, nopts = 0;

	s->state = SESSION_CONNECTING; /* from here on a refusal answers at once */
	nin = pgwire_startup_params(pkt, plen, in, sizeof(in) / sizeof(in[0]));
	if (nin < 0) {
		refuse(env, s, "08P01", "conn.refused", "pgtether: invalid startup packet (%s)",
		       nin == -E2BIG ? "more than 64 parameters" : "malformed parameter list");
		return;
	}
	for (int i = 0; i < nin; i++) {
		const char *k = in[i].name, *v = in[i].value;

		if (!strcmp(k, "user")) {
			user = v;
		} else if (!strcmp(k, "database")) {
			database = v;
		} else if (!strcmp(k, "options")) {
			options = v; /* the last one counts, as in the server */
		} else if (!strcmp(k, "replication")) {
			if (!falsy(v)) {
				refuse(env, s, "08004", "conn.refused", "pgtether: replication connections are not allowed through pgtether");
				return;
			}
		}
	}
	/* The server applies "options" first, then the other parameters in order (the
	 * last of a name wins): they are passed on in that order. */
	if (options && (nopts = startopts_split(options, obuf, sizeof(obuf), opts, STARTOPTS_MAX, err)) < 0) {
		refuse(env, s, "08004", "conn.refused", "pgtether: %s", err);
		return;
	}
	for (int i = 0; i < nopts; i++)
		if (startup_setting(env, s, opts[i].name, opts[i].value, &client_app, &encoding_sent) < 0)
			return;
	for (int i = 0; i < nin; i++) {
		const char *k = in[i].name;

		if (!strcmp(k, "user") || !strcmp(k, "database") || !strcmp(k, "options") || !strcmp(k, "replication") ||
		    !strncmp(k, "_pq_.", 5)) /* protocol extensions: none supported, declined below */
			continue;
		if (startup_setting(env, s, k, in[i].value, &client_app, &encoding_sent) < 0)
			return;
	}
	/* UTF8 even when the client names none: a role's or database's default
	 * client_encoding would otherwise apply, and the session would be refused */
	if (!encoding_sent && fwd_add(s, "client_encoding", "UTF8") < 0) {
		refuse(env, s, "08P01", "conn.refused", "pgtether: the startup settings are too many or too long (at most %d, %zu bytes)",
		       FWD_MAX - 1, sizeof(s->fwd_params));
		return;
	}
	if (!user || !*user) {
		refuse(env, s, "28000", "conn.refused", "pgtether: no PostgreSQL user name specified in the startup packet");
		return;
	}
	snprintf(s->client_user, sizeof(s->client_user), "%s", user);
	snprintf(s->client_app, sizeof(s->client_app), "%s", client_app ? client_app : "");

	/* the parent chose it by the destination the workload dialed (monitor.c) */
	u = config_upstream_named(env->cfg, s->upstream_name);
	if (!u) {
		refuse(env, s, "08004", "conn.refused", "pgtether: no upstream is configured for %s",
		       addr_format(&s->dst, buf));
		return;
	}
	snprintf(s->role, sizeof(s->role), "%s", u->role);
	snprintf(s->database, sizeof(s->database), "%s", database && *database ? database : user);

	/* Newer minor versions and _pq_ options are declined, as a 3.0 server does:
	 * NegotiateProtocolVersion with minor 0 and the options not recognized. */
	size_t n_pq = 0;

	for (int i = 0; i < nin; i++)
		n_pq += !strncmp(in[i].name, "_pq_.", 5);
	if ((version & 0xffff) != 0 || n_pq) {
		uint8_t v[1024];
		size_t pos = 5;

		v[0] = 'v';
		memset(v + pos, 0, 4); /* newest minor version supported: 0 */
		pos += 4;
		size_t count_at = pos, listed = 0;

		pos += 4;
		for (int i = 0; i < nin; i++) {
			size_t k = strlen(in[i].name) + 1;

			if (strncmp(in[i].name, "_pq_.", 5) == 0 && pos + k <= sizeof(v)) {
				memcpy(v + pos, in[i].name, k);
				pos += k;
				listed++;
			}
		}
		pgwire_put32(v + count_at, (uint32_t)listed);
		pgwire_put32(v + 1, (uint32_t)(pos - 1));
		put(&s->u2c, v, pos);
	}
	ask_identity(env, s);
}

/* Allowed: build the upstream's StartupMessage and connect. */
static void connect_upstream(struct session_env *env, struct session *s)
{
	struct pgwire_param outp[72];
	char app[128], identity[1024];
	struct config_upstream *u = config_upstream_named(env->cfg, s->upstream_name);
	uint8_t m[PGWIRE_STARTUP_MAX];
	size_t nout = 0, n;
	int r;

	for (size_t at = 0; at < s->fwd_len && nout < FWD_MAX;) {
		const char *k = s->fwd_params + at, *v = k + strlen(k) + 1;

		outp[nout++] = (struct pgwire_param){ k, v };
		at = (size_t)(v - s->fwd_params) + strlen(v) + 1;
	}
	if (s->client_app[0])
		snprintf(app, sizeof(app), "pgtether:%s:%s", s->facts.cgroup, s->client_app);
	else
		snprintf(app, sizeof(app), "pgtether:%s", s->facts.cgroup);
	/* PostgreSQL cuts application_name to NAMEDATALEN-1 bytes with a NOTICE the
	 * client would see; cut it here instead, on a UTF-8 character boundary. */
	if (strlen(app) > CONFIG_NAME_MAX) {
		size_t cut = CONFIG_NAME_MAX;

		while (cut > 0 && ((uint8_t)app[cut] & 0xc0) == 0x80)
			cut--;
		app[cut] = '\0';
	}
	identity_string(s, identity, sizeof(identity));
	outp[nout++] = (struct pgwire_param){ "user", s->role };
	outp[nout++] = (struct pgwire_param){ "database", s->database };
	outp[nout++] = (struct pgwire_param){ "application_name", app };
	outp[nout++] = (struct pgwire_param){ "pgtether.identity", identity };
	/* The server refuses, in a read-only session, the writes pgtether cannot see:
	 * a function that writes, called from a SELECT; a DO block. The client cannot
	 * turn it off: check_statement denies what would (sets_read_write). */
	if ((s->read_only = session_rule(env, s) && policy_read_only(session_rule(env, s))))
		outp[nout++] = (struct pgwire_param){ "default_transaction_read_only", "on" };
	n = pgwire_build_startup(m, sizeof(m), outp, nout);
	if (n == 0 || n > room(&s->c2u)) {
		refuse(env, s, "08P01", "conn.refused", "pgtether: the startup packet is too large");
		return;
	}
	put(&s->c2u, m, n);

	if (RAND_bytes((uint8_t *)&s->key_pid, sizeof(s->key_pid)) != 1 ||
	    RAND_bytes((uint8_t *)&s->key_secret, sizeof(s->key_secret)) != 1) {
		refuse(env, s, "53000", "conn.refused", "pgtether: no randomness for the cancel key");
		return;
	}
	s->key_pid = (s->key_pid & 0x3fffffff) | 1; /* a positive, non-zero "pid" */
	s->state = SESSION_CONNECTING;
	set_events(env, &s->client, 0);
	s->up_try = 0; /* the addresses came with the verdict */
	if ((r = upstream_connect(env, s)) < 0) {
		upstream_next(env, s, -r);
		return;
	}
	/* The SSL object holds a reference to the context: a reload in between
	 * cannot pull it away. */
	s->up_verified = u->tls == CONFIG_TLS_VERIFY_FULL;
	if (u->tls != CONFIG_TLS_DISABLE && !(s->upstream.ssl = tls_upstream_new(u, s->upstream.fd)))
		refuse(env, s, "08001", "conn.refused", "pgtether: cannot set up TLS for upstream '%s'", u->name);
}

/* ---- identity ------------------------------------------------------------------ */

/* The client's answer to AuthenticationCleartextPassword: its identity token. */
static void client_auth_step(struct session_env *env, struct session *s)
{
	ssize_t n = fill(&s->in, &s->client, 0, NULL);
	uint32_t len;
	size_t tlen;

	if (n < 0 || s->in.eof) {
		OPENSSL_cleanse(s->in.data, SESSION_BUF);
		session_free(env, s); /* e.g. psql without a password: it closes */
		return;
	}
	if (s->in.len < 5)
		return;
	len = pgwire_get32(s->in.data + 1);
	if (s->in.data[0] != 'p' || len < 5 || len > SESSION_TOKEN_MAX + 5) {
		OPENSSL_cleanse(s->in.data, SESSION_BUF);
		refuse(env, s, "08P01", "conn.refused", s->in.data[0] != 'p' ?
		       "pgtether: expected a password message (the identity token)" : "pgtether: the password message is too long for an identity token");
		return;
	}
	if (s->in.len < 1 + (size_t)len)
		return;
	if (s->in.len > 1 + (size_t)len || s->in.data[len] != '\0') {
		OPENSSL_cleanse(s->in.data, SESSION_BUF);
		refuse(env, s, "08P01", "conn.refused", "pgtether: data sent before authentication completed");
		return;
	}
	tlen = strlen((char *)s->in.data + 5);
	/* the parent verifies it (an empty one: it says why the rules want one) */
	s->state = SESSION_ATTESTING;
	set_events(env, &s->client, 0);
	worker_notify(PRIV_TOKEN, s->id, s->in.data + 5, tlen, -1);
	OPENSSL_cleanse(s->in.data, 1 + (size_t)len);
	s->in.len = 0;
}

static void startup_step(struct session_env *env, struct session *s);

/* The TLS handshake with the client (after SSLRequest, or direct). */
static void client_tls_step(struct session_env *env, struct session *s)
{
	char err[TLS_ERR_LEN];
	unsigned want = 0;
	int r = tls_handshake(s->client.ssl, &want, err, sizeof(err));

	if (r == 0) {
		s->client.want = 0;
		set_events(env, &s->client, want);
		return;
	}
	if (r < 0 || (s->client_direct_tls && !tls_alpn_is_postgresql(s->client.ssl))) {
		/* Nothing can be said to a client whose TLS failed: log and close. */
		log_warn("conn.refused", "id=%llu pid=%u: client TLS failed: %s", (unsigned long long)s->id,
			 s->origin.tgid, r < 0 ? err : "direct TLS without ALPN \"postgresql\"");
		session_free(env, s);
		return;
	}
	s->client.want = 0;
	s->state = SESSION_STARTUP;
	set_events(env, &s->client, EPOLLIN);
	if (tls_pending(s->client.ssl))
		startup_step(env, s);
}

static void start_client_tls(struct session_env *env, struct session *s, bool direct)
{
	s->client.ssl = tls_client_new(env->cfg, s->client.fd, direct);
	if (!s->client.ssl) {
		session_free(env, s);
		return;
	}
	s->client_direct_tls = direct;
	s->state = SESSION_CLIENT_TLS;
	client_tls_step(env, s);
}

/* Client bytes before the StartupMessage. */
static void startup_step(struct session_env *env, struct session *s)
{
	ssize_t n;
	size_t plen = 0;

	if (s->in.len == 0 && !s->client.ssl && env->cfg->client_ssl_ctx) {
		uint8_t first;

		/* PostgreSQL 17's direct TLS starts with a TLS handshake record */
		if (recv(s->client.fd, &first, 1, MSG_PEEK) == 1 && first == 0x16) {
			start_client_tls(env, s, true);
			return;
		}
	}
	n = fill(&s->in, &s->client, SESSION_BUF - PGWIRE_STARTUP_MAX, NULL);

	if (n < 0 || s->in.eof) {
		session_free(env, s);
		return;
	}
	for (;;) {
		switch (pgwire_startup_classify(s->in.data, s->in.len, &plen)) {
		case PGWIRE_STARTUP_INCOMPLETE:
			return;
		case PGWIRE_STARTUP_SSL:
		case PGWIRE_STARTUP_GSSENC:
			/* Loopback hop: no TLS. Bytes the client sent right behind the
			 * request, before our answer, are not trusted (CVE-2021-3935). */
			if (s->in.len > plen) {
				s->state = SESSION_CONNECTING; /* answer at once, read nothing more */
				refuse(env, s, "08P01", "conn.refused", "pgtether: data sent before the SSL/GSS negotiation answer");
				return;
			}
			if (s->client.ssl) {
				s->state = SESSION_CONNECTING;
				refuse(env, s, "08P01", "conn.refused", "pgtether: SSLRequest inside TLS");
				return;
			}
			s->in.len = 0;
			if (++s->negotiations > 2) {
				session_free(env, s);
				return;
			}
			if (env->cfg->client_ssl_ctx && s->in.data[7] == 0x2f) { /* SSLRequest */
				if (send(s->client.fd, "S", 1, MSG_NOSIGNAL) != 1) {
					session_free(env, s);
					return;
				}
				start_client_tls(env, s, false);
				return;
			}
			put(&s->u2c, "N", 1);
			flush(&s->u2c, &s->client, NULL);
			return;
		case PGWIRE_STARTUP_CANCEL:
			cancel_route(env, s, s->in.data);
			return;
		case PGWIRE_STARTUP_MESSAGE:
			if (s->in.len > plen) {
				s->state = SESSION_CONNECTING;
				refuse(env, s, "08P01", "conn.refused", "pgtether: data sent before authentication completed");
				return;
			}
			handle_startup(env, s, s->in.data, plen);
			s->in.len = 0;
			return;
		case PGWIRE_STARTUP_INVALID:
			/* Nothing a PostgreSQL client would send; answer as a server would. */
			s->state = SESSION_CONNECTING;
			refuse(env, s, "08P01", "conn.refused", "pgtether: invalid startup packet");
			return;
		}
	}
}

/* ---- accept ------------------------------------------------------------------ */

/*
 * A connection over a login cap, when SESSION_MAX_CAPPED refusals are under way
 * already: answered at once, without a session. What the client sent already is
 * read first, so the close sends a FIN rather than a reset that could discard the
 * error; an SSLRequest among it gets 'N' before the error. Held for no time, so a
 * flood of them cannot pile up file descriptors.
 */
static void session_turn_away(struct session_env *env, int fd, const char *sqlstate, const char *msg)
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
static void session_refuse_capped(struct session_env *env, struct session *s, const char *sqlstate, const char *msg)
{
	session_login_done(env, s); /* the parent logs the flood (monitor.c) */
	if (env->capped < SESSION_MAX_CAPPED) {
		s->capped = true;
		env->capped++;
		s->state = SESSION_STARTUP; /* nothing read yet: refuse() reads the startup packet */
		refuse(env, s, sqlstate, NULL, "%s", msg);
		return;
	}
	{
		int fd = s->client.fd;

		s->client.fd = -1;
		session_free(env, s);
		session_turn_away(env, fd, sqlstate, msg);
	}
}

static struct session *session_new(struct session_env *env, int cfd)
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
	s->id = ++env->next_id;
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

static struct session *session_find(struct session_env *env, uint64_t id)
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
		if (nc->capped)
			session_refuse_capped(env, s, nc->refuse_sqlstate, nc->refuse_msg);
		else
			refuse(env, s, nc->refuse_sqlstate, "conn.refused", "%s", nc->refuse_msg);
		return;
	}
	s->state = SESSION_STARTUP; /* next: the client's startup packet (startup_step) */
}

/* The startup packet is read: the parent attests, reads or asks for the token, and
 * decides (session_need_token, session_verdict). Nothing is read meanwhile. */
static void ask_identity(struct session_env *env, struct session *s)
{
	struct priv_identify q;

	memset(&q, 0, sizeof(q));
	snprintf(q.user, sizeof(q.user), "%s", s->client_user);
	snprintf(q.database, sizeof(q.database), "%s", s->database);
	q.client_tls = s->client.ssl != NULL;
	s->state = SESSION_ATTESTING;
	set_events(env, &s->client, 0);
	worker_notify(PRIV_IDENTIFY, s->id, &q, sizeof(q), -1);
}

/* A CancelRequest: the parent finds the session it names and hands this connection
 * to that session's worker (cancel.c runs there), or drops it. */
static void cancel_route(struct session_env *env, struct session *s, const uint8_t *pkt)
{
	struct priv_cancel q;

	memcpy(q.pkt, pkt, sizeof(q.pkt));
	worker_notify(PRIV_CANCEL, s->id, &q, sizeof(q), -1);
	s->handed_off = true; /* the parent holds the connection now */
	session_free(env, s);
}

/* The first rule wants the client's token: AuthenticationCleartextPassword. */
void session_need_token(struct session_env *env, uint64_t id)
{
	static const uint8_t ask[9] = { 'R', 0, 0, 0, 8, 0, 0, 0, 3 };
	struct session *s = session_find(env, id);

	if (!s || s->state != SESSION_ATTESTING)
		return;
	put(&s->u2c, ask, sizeof(ask));
	s->state = SESSION_CLIENT_AUTH;
	s->in.off = s->in.ready = s->in.len = 0;
	if (flush(&s->u2c, &s->client, NULL) < 0) {
		session_free(env, s);
		return;
	}
	set_events(env, &s->client, EPOLLIN | (s->u2c.ready > s->u2c.off ? EPOLLOUT : 0));
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
	snprintf(s->token_iss, sizeof(s->token_iss), "%.*s", (int)sizeof(v->token_iss) - 1, v->token_iss);
	snprintf(s->token_sub, sizeof(s->token_sub), "%.*s", (int)sizeof(v->token_sub) - 1, v->token_sub);
	if (!v->ok) {
		if (recfd >= 0)
			close(recfd);
		refuse(env, s, v->sqlstate, "conn.refused", "%.*s", (int)sizeof(v->msg) - 1, v->msg);
		return;
	}
	if (v->gen != env->gen || v->rule_idx >= env->cfg->policy.n || v->n_addrs < 1 || v->n_addrs > CONFIG_MAX_RESOLVED ||
	    claims_len != v->claims_len) {
		if (recfd >= 0)
			close(recfd);
		refuse(env, s, "08004", "conn.refused", "pgtether: the configuration changed while this connection logged in; try again");
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
		refuse(env, s, "53100", "conn.refused",
		       "pgtether: this session cannot be recorded (%s); sessions are refused until recordings can be written", why);
		return;
	}
	connect_upstream(env, s);
}

void session_decided(struct session_env *env, uint64_t id, const struct priv_decide *d)
{
	struct session *s = session_find(env, id);
	struct session_approver who = { d->who_uid, d->who_loginuid, d->who_root };
	char err[160];

	if (!s || !PRIV_STR_OK(d->by) || !PRIV_STR_OK(d->reason))
		return;
	session_decide(env, d->request, d->approve, d->reason, d->by[0] ? d->by : "an approver", d->have_who ? &who : NULL,
		       err, sizeof(err));
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

/* A request number for a held statement, from the parent (unique across workers). */
static uint64_t session_request_id(struct session_env *env, struct session *s)
{
	uint64_t id = 0;
	size_t n;

	(void)env;
	if (worker_call(PRIV_HELD, s->id, NULL, 0, &id, sizeof(id), &n, NULL) < 0 || n != sizeof(id))
		return 0;
	return id;
}

/* What the approver is shown: every string a workload chose, valid UTF-8 for JSON
 * (escaped when not); the CLI escapes them again for the terminal. */
static void session_held_announce(struct session_env *env, struct session *s)
{
	struct priv_held h = { s->held_timeout, 0 };
	bool escaped = false;
	char *text;
	uint8_t *b;
	json_t *a;

	(void)env;
	a = json_pack("{s:I, s:I, s:o, s:o, s:o, s:o, s:o, s:I}", "pid", (json_int_t)s->origin.tgid,
		      "uid", (json_int_t)s->origin.uid, "cgroup", escape_json_str(s->facts.cgroup),
		      "exe", escape_json_str(s->facts.exe), "rule", escape_json_str(s->rule), "why", escape_json_str(s->held_why),
		      "sql", escape_json(s->held_sql ? s->held_sql : "", s->held_len, &escaped),
		      "timeout_s", (json_int_t)s->held_timeout);
	if (!a)
		return;
	if (escaped)
		json_object_set_new(a, "sql_escaped", json_true());
	if (s->held_extra)
		json_object_update(a, s->held_extra);
	if (s->token_sub[0])
		json_object_set_new(a, "sub", escape_json_str(s->token_sub));
	text = json_dumps(a, JSON_COMPACT);
	json_decref(a);
	if (!text)
		return;
	h.json_len = (uint32_t)strlen(text);
	b = malloc(sizeof(h) + h.json_len);
	if (b) {
		memcpy(b, &h, sizeof(h));
		memcpy(b + sizeof(h), text, h.json_len);
		if (worker_notify(PRIV_HELD_INFO, s->id, b, sizeof(h) + h.json_len, -1) < 0)
			log_warn("approval.request", "id=%llu: request %llu is too large to list for approvers",
				 (unsigned long long)s->id, (unsigned long long)s->held_id);
		free(b);
	}
	free(text);
}

void session_event(struct session_env *env, struct session_end *end, uint32_t events)
{
	struct session *s = end->s;

	if (s->dead)
		return;
	switch (s->state) {
	case SESSION_STARTUP:
		if (end == &s->client) {
			if (events & EPOLLOUT)
				flush(&s->u2c, &s->client, NULL);
			if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
				startup_step(env, s);
			if (!s->dead && s->state == SESSION_STARTUP)
				set_events(env, &s->client, EPOLLIN | (s->u2c.ready > s->u2c.off ? EPOLLOUT : 0));
		}
		break;
	case SESSION_CLIENT_TLS:
		if (end == &s->client)
			client_tls_step(env, s);
		break;
	case SESSION_CLIENT_AUTH:
		if (end != &s->client)
			break;
		if (events & EPOLLOUT)
			flush(&s->u2c, &s->client, NULL);
		if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
			/* bytes TLS already decrypted raise no epoll event: take them too */
			do
				client_auth_step(env, s);
			while (!s->dead && s->state == SESSION_CLIENT_AUTH && tls_pending(s->client.ssl) &&
			       room(&s->in) > 0);
		}
		if (!s->dead && s->state == SESSION_CLIENT_AUTH)
			set_events(env, &s->client, EPOLLIN | (s->u2c.ready > s->u2c.off ? EPOLLOUT : 0));
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
			epoll_ctl(env->epfd, EPOLL_CTL_DEL, s->client.fd, NULL);
			close(s->client.fd);
			s->client.fd = -1;
		}
		break;
	case SESSION_LOGIN:
		if (end == &s->upstream) {
			if (events & EPOLLOUT)
				flush(&s->c2u, &s->upstream, NULL);
			if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
				upstream_login_step(env, s);
			if (!s->dead && s->state == SESSION_LOGIN)
				set_events(env, &s->upstream, EPOLLIN | (s->c2u.ready > s->c2u.off ? EPOLLOUT : 0));
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
		if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !s->in.eof && refuse_step(s)) {
			session_free(env, s);
			return;
		}
		if (flush(&s->u2c, &s->client, NULL) < 0 || (s->in.eof && s->u2c.len == 0)) {
			session_free(env, s);
			return;
		}
		set_events(env, &s->client, (s->in.eof ? 0 : EPOLLIN) | (s->u2c.len ? EPOLLOUT : 0));
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
	for (; s; s = next) {
		time_t age = now.tv_sec - s->started.tv_sec;

		next = s->next;
		if ((s->state == SESSION_CONNECTING || s->state == SESSION_LOGIN ||
		     s->state == SESSION_UPSTREAM_SSLREQ || s->state == SESSION_UPSTREAM_TLS) &&
		    age >= (time_t)env->cfg->login_timeout)
			refuse(env, s, "08001", "conn.refused",
			       "pgtether: cannot reach the database at %s: %s timed out",
			       addr_format(&s->up_addrs[s->up_try], buf), s->state == SESSION_LOGIN ? "login" : "connection");
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
		else if (s->state == SESSION_ATTESTING && age >= (time_t)env->cfg->login_timeout)
			refuse(env, s, "08004", "conn.refused",
			       "pgtether: cannot establish who opened this connection: exe_sha256: hashing the executable timed out");
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
		} else if (s->state == SESSION_CANCELLING && s->cancel_waiting && age >= SESSION_CANCEL_WAIT_S)
			cancel_forward(env, s); /* the bytes before it still wait for room upstream */
		else if ((s->state == SESSION_REFUSING || s->state == SESSION_CANCELLING) &&
			 age >= SESSION_REFUSE_TIMEOUT_S)
			session_free(env, s);
	}
}

int session_decide(struct session_env *env, uint64_t id, bool approve, const char *reason, const char *by,
		   const struct session_approver *who, char *err, size_t errlen)
{
	struct session *s;
	struct logline l;
	json_t *ev;

	for (s = env->head; s; s = s->next)
		if (s->held_id == id && !s->held_decision && s->state == SESSION_RELAYING)
			break;
	if (!s) {
		snprintf(err, errlen, "no statement waits as request %llu", (unsigned long long)id);
		return -ENOENT;
	}
	/* approvers are people other than the workload; denying is always allowed (the
	 * workload could cancel its own statement anyway) */
	if (who && approve && !who->root && (who->uid == s->origin.uid || (who->loginuid && who->loginuid == s->origin.uid))) {
		snprintf(err, errlen, "request %llu was made by uid %u, which cannot approve its own request%s",
			 (unsigned long long)id, s->origin.uid,
			 who->uid == s->origin.uid ? "" : " (you logged in as that uid)");
		return -EPERM;
	}
	s->held_decision = approve ? 1 : -1;
	if (!by)
		snprintf(s->held_msg, sizeof(s->held_msg), "pgtether: request %llu timed out after %u s without approval (%s)",
			 (unsigned long long)id, s->held_timeout, s->held_why);
	else if (!approve)
		snprintf(s->held_msg, sizeof(s->held_msg), "pgtether: request %llu was denied by %s%s%s", (unsigned long long)id,
			 by, reason && *reason ? ": " : "", reason && *reason ? reason : "");
	log_begin(&l, LOG_LEVEL_INFO, "approval.decision");
	log_u64(&l, "request", id);
	log_u64(&l, "id", s->id);
	log_str(&l, "cgroup", s->facts.cgroup);
	log_str(&l, "rule", s->rule);
	log_str(&l, "decision", !by ? "timeout" : approve ? "approved" : "denied");
	log_str(&l, "by", by ? by : "timeout");
	if (who) {
		log_u64(&l, "approver_uid", who->uid);
		if (who->loginuid != UINT32_MAX)
			log_u64(&l, "approver_loginuid", who->loginuid);
	}
	if (reason && *reason)
		log_str(&l, "reason", reason);
	log_end(&l, LOG_LEVEL_INFO);
	ev = json_pack("{s:I, s:s, s:s, s:o}", "request", (json_int_t)id, "decision",
		       !by ? "timeout" : approve ? "approved" : "denied", "by", by ? by : "timeout",
		       "reason", escape_json_str(reason ? reason : ""));
	if (ev && who) {
		json_object_set_new(ev, "approver_uid", json_integer(who->uid));
		json_object_set_new(ev, "approver_loginuid",
				    who->loginuid != UINT32_MAX ? json_integer(who->loginuid) : json_null());
	}
	rec_event(env, s, "approval", ev, true);
	worker_notify(PRIV_HELD_DONE, s->id, NULL, 0, -1); /* no longer listed for approvers */
	/* go on from the held statement, as if its bytes had just arrived */
	session_relay_event(env, s, &s->client, EPOLLIN);
	return 0;
}

static void session_facts(const struct session *s, struct policy_facts *f)
{
	*f = (struct policy_facts){
		.cgroup = s->facts.cgroup, .uid = s->origin.uid, .exe = s->facts.exe,
		.exe_sha256 = s->facts.exe_sha256, .database = s->database, .upstream = s->upstream_name,
		.exe_foreign = s->facts.exe_foreign,
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
		const struct policy_rule *rule, *deny;
		struct config_upstream *u;
		struct policy_facts f;
		char msg[512];

		next = s->next;
		if (s->state != SESSION_RELAYING || s->draining || !s->rule[0])
			continue;
		session_facts(s, &f);
		if (s->token_iss[0]) {
			f.issuer = s->token_iss;
			f.claims = s->claims;
		}
		rule = policy_decide(&env->cfg->policy, &f, &deny);
		u = config_upstream_named(env->cfg, s->upstream_name);
		if (rule && u && strcmp(rule->role ? rule->role : u->role, s->role) == 0 &&
		    policy_read_only(rule) == s->read_only) {
			if (strcmp(rule->name, s->rule) != 0) {
				log_info("policy", "id=%llu: session now under rule '%s' (was '%s')", (unsigned long long)s->id,
					 rule->name, s->rule);
				snprintf(s->rule, sizeof(s->rule), "%s", rule->name);
				{
					struct priv_rule q;

					memset(&q, 0, sizeof(q));
					snprintf(q.rule, sizeof(q.rule), "%s", rule->name);
					worker_notify(PRIV_RULE, s->id, &q, sizeof(q), -1);
				}
			}
			s->rule_gen = env->gen;
			s->rule_idx = (size_t)(rule - env->cfg->policy.rules);
			continue;
		}
		if (deny)
			snprintf(msg, sizeof(msg), "pgtether: access withdrawn by a policy reload: denied by rule '%s' (%s:%d)",
				 deny->name, deny->file, deny->line);
		else if (rule && u && strcmp(rule->role ? rule->role : u->role, s->role) == 0)
			snprintf(msg, sizeof(msg), "pgtether: session ended by a policy reload: rule '%s' is now %s; reconnect",
				 rule->name, s->read_only ? "read-write" : "read-only");
		else if (rule)
			snprintf(msg, sizeof(msg), "pgtether: access withdrawn by a policy reload: rule '%s' now grants role '%s', not '%s'",
				 rule->name, rule->role ? rule->role : u ? u->role : "?", s->role);
		else
			snprintf(msg, sizeof(msg), "pgtether: access withdrawn by a policy reload: no rule allows this session any more (it was allowed by '%s')",
				 s->rule);
		log_warn("policy", "id=%llu cgroup=%s: %s", (unsigned long long)s->id, s->facts.cgroup, msg);
		end_relay(env, s, "57P01", msg, "access withdrawn");
	}
}

void session_close_all(struct session_env *env, const char *reason)
{
	while (env->head)
		session_close(env, env->head, reason);
	session_reap(env);
}
