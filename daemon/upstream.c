/*
 * The upstream side of a session until its relay starts: connect to the upstream's
 * addresses in turn (SO_MARK'd, so the connect hook lets them through), SSLRequest and
 * TLS where configured, the startup packet, then the login with the held credential
 * (SCRAM-SHA-256, md5, or cleartext over verified TLS only) and the server's
 * messages up to its first ReadyForQuery. A cancel's connection uses the same
 * connect. Moved out of session.c (issue 13).
 */
#include "upstream.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "client_side.h"
#include "log.h"
#include "privsep.h"
#include "startopts.h"
#include "worker.h"

static void upstream_begin_login(struct session_env *env, struct session *s);

/* Sends a login message to the upstream (small; queued in c2u and flushed). */
static int upstream_send(struct session *s, const uint8_t *m, size_t n)
{
	if (n == 0 || n > sbuf_room(&s->c2u))
		return -ENOSPC;
	sbuf_put(&s->c2u, m, n);
	return sbuf_flush(&s->c2u, &s->upstream, NULL);
}

/* Whether the upstream's auth_methods lists method; when not, the session is refused
 * with what to change (the parent answers only for listed methods too). */
static bool method_listed(struct session_env *env, struct session *s, unsigned method)
{
	if (config_upstream_allows(env->cfg, s->upstream_name, method))
		return true;
	session_refuse(env, s, FAULT_UPSTREAM_AUTH_NOT_LISTED, &(struct fault_facts){ .detail = config_auth_name(method) });
	return false;
}

/* One authentication request from the upstream. 1 when logged in, 0 to go on,
 * or refuses the session and returns -1. */
static int upstream_auth_request(struct session_env *env, struct session *s, const uint8_t *body, uint32_t len)
{
	char msg[SCRAM_MAX_MESSAGE], md5[36];
	uint8_t out[SCRAM_MAX_MESSAGE + 64];
	uint32_t code;
	int r;

	if (len < 4) {
		session_refuse(env, s, FAULT_UPSTREAM_AUTH_MALFORMED, NULL);
		return -1;
	}
	code = pgwire_get32(body);
	switch (code) {
	case 0: /* AuthenticationOk */
		if (s->scram.state == 1 || s->scram.state == 2) {
			/* a server that skips the SCRAM final message has not proven anything */
			session_refuse(env, s, FAULT_UPSTREAM_SCRAM_UNPROVEN, NULL);
			return -1;
		}
		s->authenticated = true;
		return 1;
	case 10: { /* AuthenticationSASL: NUL-terminated mechanism names */
		bool scram = false;

		for (const uint8_t *p = body + 4; p < body + len && *p; p += strlen((const char *)p) + 1) {
			if (!memchr(p, 0, (size_t)(body + len - p)))
				break;
			if (strcmp((const char *)p, "SCRAM-SHA-256") == 0)
				scram = true;
		}
		if (!scram)
			break;
		if (!method_listed(env, s, CONFIG_AUTH_SCRAM))
			return -1;
		r = scram_client_first(&s->scram, s->role, NULL, msg, sizeof(msg));
		if (r < 0 || upstream_send(s, out, pgwire_build_sasl_initial(out, sizeof(out), "SCRAM-SHA-256", (uint8_t *)msg, (size_t)r)) < 0)
			goto io;
		OPENSSL_cleanse(out, sizeof(out));
		return 0;
	}
	case 11: { /* AuthenticationSASLContinue */
		/* The parent holds the credential and answers as an oracle: the proof
		 * for this exchange and the signature the server must show (its cache
		 * of the salted password serves every session of the credential). */
		struct priv_scram q;
		struct priv_scram_reply rp;
		size_t got;

		memset(&q, 0, sizeof(q));
		r = -EPROTO;
		if (len - 4 < sizeof(q.server_first) && s->scram.state == 1) {
			snprintf(q.client_first_bare, sizeof(q.client_first_bare), "%s", s->scram.client_first_bare);
			memcpy(q.server_first, body + 4, len - 4);
			r = worker_call(PRIV_SCRAM, s->id, &q, sizeof(q), &rp, sizeof(rp), &got, NULL);
			if (r == 0 && (got != sizeof(rp) || !PRIV_STR_OK(rp.client_final)))
				r = -EPROTO;
		}
		if (r == 0) {
			memcpy(s->scram.server_signature, rp.server_signature, sizeof(rp.server_signature));
			s->scram.state = 2;
			r = (int)strlen(rp.client_final);
			memcpy(msg, rp.client_final, (size_t)r + 1);
		}
		OPENSSL_cleanse(&rp, sizeof(rp));
		if (r < 0) {
			session_refuse(env, s, FAULT_UPSTREAM_SCRAM_CHALLENGE, NULL);
			return -1;
		}
		r = upstream_send(s, out, pgwire_build_sasl_response(out, sizeof(out), (uint8_t *)msg, (size_t)r));
		OPENSSL_cleanse(msg, sizeof(msg));
		OPENSSL_cleanse(out, sizeof(out));
		if (r < 0)
			goto io;
		return 0;
	}
	case 12: /* AuthenticationSASLFinal */
		if (scram_verify_server_final(&s->scram, (const char *)body + 4, len - 4) < 0) {
			session_refuse(env, s, FAULT_UPSTREAM_SCRAM_SIGNATURE, NULL);
			return -1;
		}
		return 0;
	case 5: /* AuthenticationMD5Password */
		if (len < 8)
			break;
		if (!method_listed(env, s, CONFIG_AUTH_MD5))
			return -1;
		{
			size_t got;

			if (worker_call(PRIV_MD5, s->id, body + 4, 4, md5, sizeof(md5), &got, NULL) < 0 || got == 0 ||
			    md5[got - 1] != '\0')
				goto io;
		}
		r = upstream_send(s, out, pgwire_build_password(out, sizeof(out), md5));
		OPENSSL_cleanse(md5, sizeof(md5));
		OPENSSL_cleanse(out, sizeof(out));
		if (r < 0)
			goto io;
		return 0;
	case 3: /* AuthenticationCleartextPassword */
		/* only to a server whose certificate was verified: under "require" a man
		 * in the middle could ask for it */
		if (s->upstream.ssl && s->up_verified) {
			char pw[1024];
			size_t got;

			if (!method_listed(env, s, CONFIG_AUTH_PASSWORD))
				return -1;
			/* the one login in which the password itself is sent: the worker has it
			 * for the length of this call */
			r = worker_call(PRIV_CLEARTEXT, s->id, NULL, 0, pw, sizeof(pw), &got, NULL);
			if (r == 0 && (got == 0 || pw[got - 1] != '\0'))
				r = -EPROTO;
			if (r == 0)
				r = upstream_send(s, out, pgwire_build_password(out, sizeof(out), pw));
			OPENSSL_cleanse(pw, sizeof(pw));
			OPENSSL_cleanse(out, sizeof(out));
			if (r < 0)
				goto io;
			return 0;
		}
		session_refuse(env, s, FAULT_UPSTREAM_CLEARTEXT, NULL);
		return -1;
	}
	session_refuse(env, s, FAULT_UPSTREAM_AUTH_METHOD, &(struct fault_facts){ .auth_code = code });
	return -1;
io:
	session_refuse(env, s, FAULT_UPSTREAM_LOGIN_SEND, NULL);
	return -1;
}

/* The M field of an ErrorResponse body, for messages. */
const char *upstream_error_message(const uint8_t *body, uint32_t len, char *buf, size_t cap)
{
	const uint8_t *p = body, *end = body + len;

	snprintf(buf, cap, "(no message)");
	while (p < end && *p) {
		const uint8_t *z = memchr(p + 1, 0, (size_t)(end - p - 1));

		if (!z)
			break;
		if (*p == 'M') {
			snprintf(buf, cap, "%s", (const char *)p + 1);
			break;
		}
		p = z + 1;
	}
	return buf;
}

/* Upstream bytes during login: whole messages are taken from s->in. */
void upstream_login_step(struct session_env *env, struct session *s)
{
	ssize_t n = sbuf_fill(&s->in, &s->upstream, 0, NULL);
	size_t pos = 0;
	char buf[400];
	uint8_t m[64];

	if (n < 0 || (s->in.eof && s->in.len == 0)) {
		session_refuse(env, s, FAULT_UPSTREAM_LOGIN_CLOSED, NULL);
		return;
	}
	while (s->in.len - pos >= PGWIRE_HEADER) {
		uint8_t type = s->in.data[pos];
		uint32_t mlen = pgwire_get32(s->in.data + pos + 1);
		const uint8_t *body = s->in.data + pos + PGWIRE_HEADER;

		if (mlen < 4 || mlen > SESSION_BUF - PGWIRE_HEADER) {
			session_refuse(env, s, FAULT_UPSTREAM_LOGIN_MESSAGE, NULL);
			return;
		}
		if (s->in.len - pos < 1 + (size_t)mlen)
			break;
		pos += 1 + mlen;
		mlen -= 4;
		switch (type) {
		case 'R':
			if (s->authenticated) {
				session_refuse(env, s, FAULT_UPSTREAM_AUTH_TWICE, NULL);
				return;
			}
			if (upstream_auth_request(env, s, body, mlen) < 0)
				return;
			if (s->authenticated && sbuf_room(&s->u2c) >= 9)
				sbuf_put(&s->u2c, m, pgwire_build_auth_ok(m, sizeof(m)));
			break;
		case 'E':
			if (!s->authenticated) {
				/* Never the credential, only what the server said about it. */
				session_refuse(env, s, FAULT_UPSTREAM_LOGIN_REFUSED,
					       &(struct fault_facts){ .detail = upstream_error_message(body, mlen, buf, sizeof(buf)) });
				return;
			}
			/* After authentication: the server's own error (no such database, too
			 * many connections) is the client's to see, as it is. */
			if (1 + 4 + mlen <= sbuf_room(&s->u2c))
				sbuf_put(&s->u2c, s->in.data + pos - 1 - 4 - mlen, 1 + 4 + mlen);
			{
				struct logline l;

				/* the recording's end keeps the server's words too */
				snprintf(s->refuse_msg, sizeof(s->refuse_msg), "%s", upstream_error_message(body, mlen, buf, sizeof(buf)));
				s->close_reason = "upstream refused the session";
				log_begin(&l, LOG_LEVEL_WARN, "conn.refused");
				session_log_identity(&l, s);
				log_str(&l, "reason", s->close_reason);
				log_str(&l, "msg", s->refuse_msg);
				log_end(&l, LOG_LEVEL_WARN);
			}
			s->state = SESSION_REFUSING;
			s->in.eof = true;
			tls_free(s->upstream.ssl);
			s->upstream.ssl = NULL;
			sbuf_close(env->epfd, &s->upstream);
			sbuf_set_events(env->epfd, &s->client, EPOLLOUT);
			return;
		case 'K':
			if (mlen < 8) {
				session_refuse(env, s, FAULT_UPSTREAM_KEYDATA, NULL);
				return;
			}
			s->up_pid = pgwire_get32(body);
			s->up_secret = pgwire_get32(body + 4);
			s->have_up_key = true;
			if (sbuf_room(&s->u2c) >= 13)
				sbuf_put(&s->u2c, m, pgwire_build_backend_key_data(m, sizeof(m), s->key_pid, s->key_secret));
			break;
		case 'S':
		case 'N':
			if (!s->authenticated)
				break; /* notices before login are the server's business */
			if (type == 'S' && !session_param_status(env, s, body, mlen)) {
				enum fault_code f = session_param_fault(s);

				session_refuse(env, s, f == FAULT_UPSTREAM_PROTOCOL ? FAULT_UPSTREAM_LOGIN_MESSAGE : f, NULL);
				return;
			}
			if (1 + 4 + mlen > sbuf_room(&s->u2c)) {
				session_refuse(env, s, FAULT_UPSTREAM_LOGIN_TOO_MUCH, NULL);
				return;
			}
			sbuf_put(&s->u2c, s->in.data + pos - 1 - 4 - mlen, 1 + 4 + mlen);
			break;
		case 'Z':
			if (!s->authenticated || mlen != 1) {
				session_refuse(env, s, FAULT_UPSTREAM_READY_ORDER, NULL);
				return;
			}
			if (sbuf_room(&s->u2c) < 6) {
				session_refuse(env, s, FAULT_UPSTREAM_LOGIN_TOO_MUCH, NULL);
				return;
			}
			s->tx_status = body[0];
			if (!session_masking_rule(env, s))
				sbuf_put(&s->u2c, s->in.data + pos - 6, 6);
			session_start_relay(env, s); /* which looks the masks up first, if any */
			return;
		default:
			session_refuse(env, s, FAULT_UPSTREAM_LOGIN_UNEXPECTED, &(struct fault_facts){ .msg_type = type });
			return;
		}
	}
	memmove(s->in.data, s->in.data + pos, s->in.len - pos);
	s->in.len -= pos;
	if (s->in.eof) {
		session_refuse(env, s, FAULT_UPSTREAM_LOGIN_CLOSED, NULL);
		return;
	}
	if (sbuf_room(&s->in) == 0) {
		session_refuse(env, s, FAULT_UPSTREAM_LOGIN_OVERSIZED, NULL);
		return;
	}
	sbuf_flush(&s->u2c, &s->client, NULL);
	if (tls_pending(s->upstream.ssl))
		upstream_login_step(env, s);
}

/* Starts a connect to the upstream address up_try (closing the socket of the attempt
 * before it, if any); the end is watched for EPOLLOUT. 0 or -errno. */
static int upstream_connect_one(struct session_env *env, struct session *s)
{
	struct timespec now;
	int fd, r;

	sbuf_close(env->epfd, &s->upstream); /* the attempt before's, if any */
	clock_gettime(CLOCK_MONOTONIC, &now);
	s->up_try_since = now.tv_sec;
	/* The parent makes it and starts the connect: SO_MARK (the loop guard: the
	 * connect hook lets marked sockets through untouched) needs a capability workers
	 * do not have, and a marked socket goes only to the upstream's addresses. */
	r = worker_call(PRIV_SOCKET, s->id, &s->up_addrs[s->up_try], sizeof(s->up_addrs[0]), NULL, 0, NULL, &fd);
	if (r < 0)
		return r;
	if (fd < 0)
		return -EPROTO;
	s->upstream.fd = fd;
	if ((r = sbuf_watch(env->epfd, &s->upstream, EPOLLOUT)) < 0)
		return r;
	/* an SSL object made for the attempt before reads and writes this socket now */
	if (s->upstream.ssl && tls_set_fd(s->upstream.ssl, fd) < 0)
		return -ENOMEM;
	return 0;
}

/* Connects to the upstream's addresses from up_try on, until one connect is under
 * way (0), or none could start (-errno of the last). */
int upstream_connect(struct session_env *env, struct session *s)
{
	char buf[ADDR_STRLEN];
	int r = -EDESTADDRREQ;

	for (; s->up_try < s->n_up_addrs; s->up_try++) {
		if ((r = upstream_connect_one(env, s)) == 0)
			return 0;
		if (s->up_try + 1 < s->n_up_addrs)
			log_info("upstream", "id=%llu: upstream '%s' at %s: %s; trying its next address",
				 (unsigned long long)s->id, s->upstream_name, addr_format(&s->up_addrs[s->up_try], buf),
				 strerror(-r));
	}
	s->up_try = s->n_up_addrs - 1; /* the last one, for messages */
	return r;
}

/* The attempt at address up_try failed with err: go on with the next address, or
 * refuse the session naming the last address and its error. */
void upstream_next(struct session_env *env, struct session *s, int err)
{
	char buf[ADDR_STRLEN];
	int r;

	if (s->state == SESSION_CANCELLING && s->up_try + 1 >= s->n_up_addrs) {
		session_free(env, s); /* nobody to tell: a cancel has no answer */
		return;
	}
	if (s->up_try + 1 < s->n_up_addrs) {
		log_info("upstream", "id=%llu: upstream '%s' at %s: %s; trying its next address", (unsigned long long)s->id,
			 s->upstream_name, addr_format(&s->up_addrs[s->up_try], buf), strerror(err));
		s->up_try++;
		if ((r = upstream_connect(env, s)) == 0)
			return;
		err = -r;
	}
	session_refuse(env, s, FAULT_UPSTREAM_UNREACHABLE,
		       &(struct fault_facts){ .address = addr_format(&s->up_addrs[s->up_try], buf), .detail = strerror(err),
					      .tried = (unsigned)s->n_up_addrs - 1 });
}

void upstream_connected(struct session_env *env, struct session *s)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int err = 0, one = 1;

	len = sizeof(err);
	if (getsockopt(s->upstream.fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		err = errno;
	if (err) {
		upstream_next(env, s, err);
		return;
	}
	setsockopt(s->upstream.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	len = sizeof(ss);
	if (getsockname(s->upstream.fd, (struct sockaddr *)&ss, &len) == 0)
		addr_from_sockaddr((struct sockaddr *)&ss, &s->up_local);

	if (s->state == SESSION_CANCELLING) {
		uint8_t m[16];

		/* the parent writes it: a cancel's socket carries nothing else first */
		pgwire_build_cancel_request(m, sizeof(m), s->cancel_pid, s->cancel_secret);
		if (worker_call(PRIV_CANCEL_SEND, s->id, m, sizeof(m), NULL, 0, NULL, NULL) < 0) {
			session_free(env, s);
			return;
		}
		/* PostgreSQL closes once it has signalled the backend, and libpq, pgx and
		 * JDBC wait for that close before they send anything more: a client told
		 * too early could have its next statement cancelled instead. So the
		 * client's connection closes when the server's does (cancel_done). */
		s->cancel_sent = true;
		sbuf_set_events(env->epfd, &s->upstream, EPOLLIN);
		return;
	}
	if (s->upstream.ssl) {
		/* SSLRequest first, in the clear; the answer is one byte */
		uint8_t req[8] = { 0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f };

		if (send(s->upstream.fd, req, sizeof(req), MSG_NOSIGNAL) != (ssize_t)sizeof(req)) {
			session_refuse(env, s, FAULT_UPSTREAM_SSLREQ_SEND, NULL);
			return;
		}
		s->state = SESSION_UPSTREAM_SSLREQ;
		sbuf_set_events(env->epfd, &s->upstream, EPOLLIN);
		return;
	}
	upstream_begin_login(env, s);
}

/* The upstream's answer to our SSLRequest. */
void upstream_sslreq_step(struct session_env *env, struct session *s)
{
	uint8_t answer[2];
	ssize_t n = recv(s->upstream.fd, answer, sizeof(answer), 0);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		session_refuse(env, s, FAULT_UPSTREAM_SSLREQ_CLOSED, NULL);
		return;
	}
	if (n > 1) {
		/* bytes before the handshake could be injected by a man in the middle and
		 * then read as if protected (CVE-2021-23222) */
		session_refuse(env, s, FAULT_UPSTREAM_SSL_EXTRA, NULL);
		return;
	}
	if (answer[0] != 'S') {
		session_refuse(env, s, FAULT_UPSTREAM_NO_TLS, NULL);
		return;
	}
	s->state = SESSION_UPSTREAM_TLS;
	upstream_tls_step(env, s);
}

void upstream_tls_step(struct session_env *env, struct session *s)
{
	char err[TLS_ERR_LEN];
	unsigned want = 0;
	int r = tls_handshake(s->upstream.ssl, &want, err, sizeof(err));

	if (r < 0) {
		session_refuse(env, s, FAULT_UPSTREAM_TLS, &(struct fault_facts){ .detail = err });
		return;
	}
	if (r == 0) {
		s->upstream.want = 0;
		sbuf_set_events(env->epfd, &s->upstream, want);
		return;
	}
	upstream_begin_login(env, s);
}

/* A plain upstream: the parent writes the StartupMessage on the connected socket,
 * from its own facts (the database, role and identity are not the worker's word)
 * and the client's settings, which it checks again. 0 or -errno. */
static int startup_by_parent(struct session *s)
{
	struct priv_startup q;

	memset(&q, 0, sizeof(q));
	snprintf(q.client_app, sizeof(q.client_app), "%s", s->client_app);
	memcpy(q.fwd_params, s->fwd_params, s->fwd_len);
	q.fwd_len = (uint32_t)s->fwd_len;
	return worker_call_fd(PRIV_STARTUP, s->id, &q, sizeof(q), s->upstream.fd, NULL, 0, NULL, NULL);
}

/* Connected (and encrypted, where configured): send the startup packet. */
static void upstream_begin_login(struct session_env *env, struct session *s)
{
	s->state = SESSION_LOGIN;
	s->upstream.want = 0;
	if (!s->upstream.ssl && startup_by_parent(s) < 0) {
		session_refuse(env, s, FAULT_UPSTREAM_STARTUP_SEND, NULL);
		return;
	}
	if (sbuf_flush(&s->c2u, &s->upstream, NULL) < 0) {
		session_refuse(env, s, FAULT_UPSTREAM_STARTUP_SEND, NULL);
		return;
	}
	s->in.off = s->in.ready = s->in.len = 0;
	s->in.eof = false;
	sbuf_set_events(env->epfd, &s->upstream, EPOLLIN | (s->c2u.ready > s->c2u.off ? EPOLLOUT : 0));
}

/* ---- the start: the StartupMessage upstream, the first connect; the end: the relay begins ---- */

/* What it logs in with upstream (startopts.h): the parent's facts, as the verdict
 * gave them to the worker. */
static void upstream_login_facts(struct session_env *env, struct session *s, struct startopts_login *l)
{
	*l = (struct startopts_login){
		.role = s->role, .database = s->database, .client_app = s->client_app, .cgroup = s->facts.cgroup,
		.exe = s->facts.exe, .rule = s->rule, .comm = s->origin.comm, .token_iss = s->token_iss,
		.token_sub = s->token_sub, .uid = s->origin.uid, .gid = s->origin.gid, .pid = s->origin.tgid,
		.read_only = s->read_only, .fwd = s->fwd_params, .fwd_len = s->fwd_len,
	};
	(void)env;
}

/* Allowed: build the upstream's StartupMessage (TLS: the parent writes it to a plain
 * upstream, upstream_begin_login) and connect. */
void upstream_start(struct session_env *env, struct session *s)
{
	struct config_upstream *u = config_upstream_named(env->cfg, s->upstream_name);
	struct startopts_login l;
	int r;

	/* The server refuses, in a read-only session, the writes pgtether cannot see:
	 * a function that writes, called from a SELECT; a DO block. The client cannot
	 * turn it off: check_statement denies what would (sets_read_write). */
	s->read_only = session_rule(env, s) && policy_read_only(session_rule(env, s));
	if (u->tls != CONFIG_TLS_DISABLE) {
		uint8_t m[PGWIRE_STARTUP_MAX];
		size_t n;

		upstream_login_facts(env, s, &l);
		n = startopts_upstream_startup(m, sizeof(m), &l);
		if (n == 0 || n > sbuf_room(&s->c2u)) {
			session_refuse(env, s, FAULT_STARTUP_TOO_LARGE, NULL);
			return;
		}
		sbuf_put(&s->c2u, m, n);
	}

	if (RAND_bytes((uint8_t *)&s->key_pid, sizeof(s->key_pid)) != 1 ||
	    RAND_bytes((uint8_t *)&s->key_secret, sizeof(s->key_secret)) != 1) {
		session_refuse(env, s, FAULT_LOGIN_RANDOMNESS, NULL);
		return;
	}
	s->key_pid = (s->key_pid & 0x3fffffff) | 1; /* a positive, non-zero "pid" */
	s->state = SESSION_CONNECTING;
	sbuf_set_events(env->epfd, &s->client, 0);
	s->up_try = 0; /* the addresses came with the verdict */
	if ((r = upstream_connect(env, s)) < 0) {
		upstream_next(env, s, -r);
		return;
	}
	/* The SSL object holds a reference to the context: a reload in between
	 * cannot pull it away. */
	s->up_verified = u->tls == CONFIG_TLS_VERIFY_FULL;
	if (u->tls != CONFIG_TLS_DISABLE && !(s->upstream.ssl = tls_upstream_new(u, s->upstream.fd)))
		session_refuse(env, s, FAULT_UPSTREAM_TLS_SETUP, NULL);
}

void session_start_relay(struct session_env *env, struct session *s)
{
	const struct policy_rule *mr;
	struct logline l;
	char buf[ADDR_STRLEN];

	s->state = SESSION_RELAYING;
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
	if ((mr = session_masking_rule(env, s))) {
		/* the client's first ReadyForQuery waits for the answer of the catalog query */
		long n = client_side_lookup_insert(env, s, mr, 0);

		if (n > 0) {
			s->lookup_login = true;
			s->c2u.ready = s->c_scan = (size_t)n;
		} else if (n == 0) {
			uint8_t z[8];

			sbuf_put(&s->u2c, z, pgwire_build_ready_for_query(z, sizeof(z), (char)s->tx_status));
			s->s_scan = s->u2c.len;
		} else {
			session_refuse(env, s, FAULT_OUT_OF_MEMORY, NULL);
			return;
		}
	}
	sbuf_set_events(env->epfd, &s->client, EPOLLIN | (s->u2c.ready > s->u2c.off ? EPOLLOUT : 0));
	sbuf_set_events(env->epfd, &s->upstream, EPOLLIN | (s->c2u.ready > s->c2u.off ? EPOLLOUT : 0));
	/* a TLS client may have sent its first query already; no epoll event will say so */
	if (tls_pending(s->client.ssl))
		session_relay_event(env, s, &s->client, EPOLLIN);
}
