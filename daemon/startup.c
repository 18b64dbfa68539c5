/*
 * A connection's first bytes, in a worker (session_int.h): SSLRequest and
 * GSSENCRequest (answered 'N', or TLS when client_tls is configured, also direct
 * TLS), a CancelRequest (handed to the parent, which finds the session it names),
 * the StartupMessage (its parameters and "options" checked and kept to pass on),
 * then the identity question to the parent and, when the rule takes it from the
 * client, the token in a password message. Moved out of session.c (issue 13).
 */
#include "session_int.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "cancel.h"
#include "privsep.h"
#include "sbuf.h"
#include "startopts.h"
#include "worker.h"

static void ask_identity(struct session_env *env, struct session *s);
static void cancel_route(struct session_env *env, struct session *s, const uint8_t *pkt);

static bool falsy(const char *v)
{
	return !strcasecmp(v, "false") || !strcasecmp(v, "off") || !strcasecmp(v, "no") ||
	       !strcmp(v, "0") || !*v;
}

/* Keeps a startup parameter to pass on once the identity is known. -E2BIG when it
 * would not fit: refused, never dropped (the recording says what was passed). */
static int fwd_add(struct session *s, const char *name, const char *value)
{
	size_t a = strlen(name) + 1, b = strlen(value) + 1, kept = 0;

	for (size_t at = 0; at < s->fwd_len; at++)
		kept += !s->fwd_params[at];
	if (s->fwd_len + a + b > sizeof(s->fwd_params) || kept / 2 >= SESSION_FWD_MAX)
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
			session_refuse(env, s, FAULT_LOGIN_ENCODING, &(struct fault_facts){ .value = value });
			return -1;
		}
		if (!*encoding_sent && fwd_add(s, "client_encoding", "UTF8") < 0)
			goto too_long;
		*encoding_sent = true;
		return 0;
	}
	if (!startopts_allowed(name, why) || !startopts_value_allowed(name, value, why)) {
		session_refuse(env, s, FAULT_LOGIN_SETTING, &(struct fault_facts){ .setting = name, .detail = why });
		return -1;
	}
	if (fwd_add(s, name, value) == 0)
		return 0;
too_long:
	session_refuse(env, s, FAULT_STARTUP_SETTINGS_FULL,
		       &(struct fault_facts){ .limit = SESSION_FWD_MAX, .limit_bytes = sizeof(s->fwd_params) });
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
		session_refuse(env, s, nin == -E2BIG ? FAULT_STARTUP_TOO_MANY_PARAMS : FAULT_STARTUP_PARAMS,
			       &(struct fault_facts){ .limit = sizeof(in) / sizeof(in[0]) });
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
				session_refuse(env, s, FAULT_LOGIN_REPLICATION, NULL);
				return;
			}
		}
	}
	/* The server applies "options" first, then the other parameters in order (the
	 * last of a name wins): they are passed on in that order. */
	if (options && (nopts = startopts_split(options, obuf, sizeof(obuf), opts, STARTOPTS_MAX, err)) < 0) {
		session_refuse(env, s, FAULT_LOGIN_OPTIONS, &(struct fault_facts){ .detail = err });
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
		session_refuse(env, s, FAULT_STARTUP_SETTINGS_FULL,
			       &(struct fault_facts){ .limit = SESSION_FWD_MAX - 1, .limit_bytes = sizeof(s->fwd_params) });
		return;
	}
	if (!user || !*user) {
		session_refuse(env, s, FAULT_STARTUP_NO_USER, NULL);
		return;
	}
	snprintf(s->client_user, sizeof(s->client_user), "%s", user);
	snprintf(s->client_app, sizeof(s->client_app), "%s", client_app ? client_app : "");

	/* the parent chose it by the destination the workload dialed (monitor.c) */
	u = config_upstream_named(env->cfg, s->upstream_name);
	if (!u) {
		session_refuse(env, s, FAULT_LOGIN_NO_UPSTREAM, &(struct fault_facts){ .address = addr_format(&s->dst, buf) });
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
		sbuf_put(&s->u2c, v, pos);
	}
	ask_identity(env, s);
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
	sbuf_set_events(env->epfd, &s->client, 0);
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

/* The client's answer to AuthenticationCleartextPassword: its identity token. */
void startup_token_step(struct session_env *env, struct session *s)
{
	ssize_t n = sbuf_fill(&s->in, &s->client, 0, NULL);
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
		session_refuse(env, s, s->in.data[0] != 'p' ? FAULT_STARTUP_NOT_PASSWORD : FAULT_STARTUP_TOKEN_TOO_LONG, NULL);
		return;
	}
	if (s->in.len < 1 + (size_t)len)
		return;
	if (s->in.len > 1 + (size_t)len || s->in.data[len] != '\0') {
		OPENSSL_cleanse(s->in.data, SESSION_BUF);
		session_refuse(env, s, FAULT_STARTUP_AUTH_EARLY_DATA, NULL);
		return;
	}
	tlen = strlen((char *)s->in.data + 5);
	/* the parent verifies it (an empty one: it says why the rules want one) */
	s->state = SESSION_ATTESTING;
	sbuf_set_events(env->epfd, &s->client, 0);
	worker_notify(PRIV_TOKEN, s->id, s->in.data + 5, tlen, -1);
	OPENSSL_cleanse(s->in.data, 1 + (size_t)len);
	s->in.len = 0;
}

/* The TLS handshake with the client (after SSLRequest, or direct). */
void startup_tls_step(struct session_env *env, struct session *s)
{
	char err[TLS_ERR_LEN];
	unsigned want = 0;
	int r = tls_handshake(s->client.ssl, &want, err, sizeof(err));

	if (r == 0) {
		s->client.want = 0;
		sbuf_set_events(env->epfd, &s->client, want);
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
	sbuf_set_events(env->epfd, &s->client, EPOLLIN);
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
	startup_tls_step(env, s);
}

/* Client bytes before the StartupMessage. */
void startup_step(struct session_env *env, struct session *s)
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
	n = sbuf_fill(&s->in, &s->client, SESSION_BUF - PGWIRE_STARTUP_MAX, NULL);

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
				session_refuse(env, s, FAULT_STARTUP_EARLY_DATA, NULL);
				return;
			}
			if (s->client.ssl) {
				s->state = SESSION_CONNECTING;
				session_refuse(env, s, FAULT_STARTUP_SSL_IN_TLS, NULL);
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
			sbuf_put(&s->u2c, "N", 1);
			sbuf_flush(&s->u2c, &s->client, NULL);
			return;
		case PGWIRE_STARTUP_CANCEL:
			cancel_route(env, s, s->in.data);
			return;
		case PGWIRE_STARTUP_MESSAGE:
			if (s->in.len > plen) {
				s->state = SESSION_CONNECTING;
				session_refuse(env, s, FAULT_STARTUP_AUTH_EARLY_DATA, NULL);
				return;
			}
			handle_startup(env, s, s->in.data, plen);
			s->in.len = 0;
			return;
		case PGWIRE_STARTUP_INVALID:
			/* Nothing a PostgreSQL client would send; answer as a server would. */
			s->state = SESSION_CONNECTING;
			session_refuse(env, s, FAULT_STARTUP_INVALID, NULL);
			return;
		}
	}
}
