/*
 * The life of one redirected connection. See session.h for the story; the functions
 * below follow it in order: accept → origin → confirm → facts → upstream → relay →
 * close, with refuse as the one way out before the relay starts.
 */
#include "session.h"

#include <errno.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "pgwire.h"
#include "sockdiag.h"

static double elapsed_ms(const struct session *s)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - s->started.tv_sec) * 1e3 +
	       (double)(now.tv_nsec - s->started.tv_nsec) / 1e6;
}

static void log_identity(struct logline *l, const struct session *s)
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
	log_str(l, "cgroup", s->facts.cgroup);
	log_u64(l, "cgroup_id", s->origin.cgroup_id);
	log_str(l, "peer", addr_format(&s->peer, buf));
	log_str(l, "dst", addr_format(&s->dst, buf));
	log_str(l, "family", s->origin.family == AF_INET6 ? "ipv6" : "ipv4");
}

/* ---- epoll interest ---------------------------------------------------------- */

static void set_events(struct session_env *env, struct session_end *end, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = &end->ev };

	if (end->fd < 0 || end->events == events)
		return;
	epoll_ctl(env->epfd, EPOLL_CTL_MOD, end->fd, &ev);
	end->events = events;
}

static int watch(struct session_env *env, struct session_end *end, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = &end->ev };

	if (epoll_ctl(env->epfd, EPOLL_CTL_ADD, end->fd, &ev) == -1)
		return -errno;
	end->events = events;
	return 0;
}

/* ---- close ------------------------------------------------------------------- */

/*
 * Closes both sockets and takes the session off the live list. The memory waits on
 * the dead list until session_reap(): the other end of this session may still have
 * an event in the epoll batch being handled.
 */
static void session_free(struct session_env *env, struct session *s)
{
	if (s->client.fd >= 0)
		close(s->client.fd);  /* close() also removes it from the epoll set */
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
		free(s->c2u.data);
		free(s);
	}
}

static void session_close(struct session_env *env, struct session *s, const char *reason)
{
	struct logline l;

	if (s->state == SESSION_RELAYING) {
		log_begin(&l, LOG_LEVEL_INFO, "conn.close");
		log_identity(&l, s);
		log_u64(&l, "bytes_in", s->bytes_c2u);
		log_u64(&l, "bytes_out", s->bytes_u2c);
		log_u64(&l, "duration_ms", (unsigned long long)elapsed_ms(s));
		log_str(&l, "reason", reason);
		log_end(&l, LOG_LEVEL_INFO);
	}
	session_free(env, s);
}

/* ---- refuse ------------------------------------------------------------------ */

/*
 * Switches the session to answering the client's startup packets with a refusal.
 * The upstream, if any, is closed; bytes the client already sent are read next.
 */
static void refuse(struct session_env *env, struct session *s, const char *sqlstate,
		   const char *event, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void refuse(struct session_env *env, struct session *s, const char *sqlstate,
		   const char *event, const char *fmt, ...)
{
	struct logline l;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->refuse_msg, sizeof(s->refuse_msg), fmt, ap);
	va_end(ap);
	snprintf(s->refuse_sqlstate, sizeof(s->refuse_sqlstate), "%s", sqlstate);

	log_begin(&l, LOG_LEVEL_WARN, event);
	if (s->origin.tgid)
		log_identity(&l, s);
	else {
		char buf[ADDR_STRLEN];

		log_u64(&l, "id", s->id);
		log_str(&l, "peer", addr_format(&s->peer, buf));
	}
	log_str(&l, "msg", s->refuse_msg);
	log_end(&l, LOG_LEVEL_WARN);

	if (s->upstream.fd >= 0) {
		close(s->upstream.fd);
		s->upstream.fd = -1;
	}
	s->state = SESSION_REFUSING;
	s->c2u.off = s->c2u.len = 0;
	s->u2c.off = s->u2c.len = 0;
	clock_gettime(CLOCK_MONOTONIC, &s->started); /* the refusal gets its own timeout */
	set_events(env, &s->client, EPOLLIN);
}

static void queue_to_client(struct session *s, const void *data, size_t n)
{
	if (n > SESSION_BUF - s->u2c.len)
		n = SESSION_BUF - s->u2c.len;
	memcpy(s->u2c.data + s->u2c.len, data, n);
	s->u2c.len += n;
}

/* Reads the client's startup packets; returns true when the session is finished. */
static bool refuse_step(struct session *s)
{
	enum pgwire_startup_kind kind;
	uint8_t msg[512];
	size_t plen = 0;
	ssize_t n;

	n = recv(s->client.fd, s->c2u.data + s->c2u.len, PGWIRE_STARTUP_MAX - s->c2u.len, 0);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
		return true;
	if (n > 0)
		s->c2u.len += (size_t)n;
	for (;;) {
		kind = pgwire_startup_classify(s->c2u.data, s->c2u.len, &plen);
		switch (kind) {
		case PGWIRE_STARTUP_INCOMPLETE:
			/* PGWIRE_STARTUP_MAX bounds the packet, so the buffer cannot fill up */
			return false;
		case PGWIRE_STARTUP_SSL:
		case PGWIRE_STARTUP_GSSENC:
			/* Not now: the refusal goes out in plaintext, as PostgreSQL's own does. */
			queue_to_client(s, "N", 1);
			memmove(s->c2u.data, s->c2u.data + plen, s->c2u.len - plen);
			s->c2u.len -= plen;
			continue;
		case PGWIRE_STARTUP_MESSAGE:
			n = (ssize_t)pgwire_error_response(msg, sizeof(msg), "FATAL", s->refuse_sqlstate,
							   s->refuse_msg, NULL);
			queue_to_client(s, msg, (size_t)n);
			s->c2u.eof = true;
			return false;
		case PGWIRE_STARTUP_CANCEL:
		case PGWIRE_STARTUP_INVALID:
			return true;
		}
	}
}

/* ---- relay ------------------------------------------------------------------- */

/* Sends what is pending in b to `to`. 0, or -errno of a broken socket. */
static int flush(struct session_buf *b, struct session_end *to)
{
	while (b->off < b->len) {
		ssize_t n = send(to->fd, b->data + b->off, b->len - b->off, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return 0;
			return -errno;
		}
		b->off += (size_t)n;
	}
	b->off = b->len = 0;
	if (b->eof && !b->shut) {
		shutdown(to->fd, SHUT_WR);
		b->shut = true;
	}
	return 0;
}

/* Reads once from `from` into b. 0, or -errno of a broken socket. */
static int fill(struct session_buf *b, struct session_end *from, uint64_t *count)
{
	ssize_t n;

	if (b->eof || b->len == SESSION_BUF)
		return 0;
	n = recv(from->fd, b->data + b->len, SESSION_BUF - b->len, 0);
	if (n > 0) {
		b->len += (size_t)n;
		*count += (uint64_t)n;
	} else if (n == 0) {
		b->eof = true;
	} else if (errno != EAGAIN && errno != EINTR) {
		return -errno;
	}
	return 0;
}

static uint32_t interest(const struct session_buf *in, const struct session_buf *out)
{
	uint32_t ev = 0;

	if (!in->eof && in->len < SESSION_BUF)
		ev |= EPOLLIN;
	if (out->len > out->off)
		ev |= EPOLLOUT;
	return ev;
}

static void relay_event(struct session_env *env, struct session *s, struct session_end *end,
			uint32_t events)
{
	bool from_client = end == &s->client;
	struct session_buf *in = from_client ? &s->c2u : &s->u2c;
	struct session_buf *out = from_client ? &s->u2c : &s->c2u;
	struct session_end *other = from_client ? &s->upstream : &s->client;
	const char *who = from_client ? "client" : "upstream";
	char reason[128];
	int r;

	if (events & EPOLLERR) {
		int err = 0;
		socklen_t len = sizeof(err);

		getsockopt(end->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		snprintf(reason, sizeof(reason), "%s error: %s", who, strerror(err ? err : EIO));
		session_close(env, s, reason);
		return;
	}
	if (events & (EPOLLIN | EPOLLHUP)) {
		r = fill(in, end, from_client ? &s->bytes_c2u : &s->bytes_u2c);
		if (r == 0 && in->eof && !out->eof && !s->closed_by)
			s->closed_by = from_client ? "client closed" : "upstream closed";
		if (r < 0 || (r = flush(in, other)) < 0) {
			snprintf(reason, sizeof(reason), "%s error: %s", who, strerror(-r));
			session_close(env, s, reason);
			return;
		}
	}
	if (events & EPOLLOUT) {
		if ((r = flush(out, end)) < 0) {
			snprintf(reason, sizeof(reason), "%s error: %s", who, strerror(-r));
			session_close(env, s, reason);
			return;
		}
	}
	if (s->c2u.shut && s->u2c.shut) {
		session_close(env, s, s->closed_by ? s->closed_by : "closed");
		return;
	}
	/* The peer is gone both ways while we still wait for it: nothing more can flow. */
	if ((events & EPOLLHUP) && in->eof && out->len == out->off) {
		session_close(env, s, from_client ? "client closed" : "upstream closed");
		return;
	}
	set_events(env, &s->client, interest(&s->c2u, &s->u2c));
	set_events(env, &s->upstream, interest(&s->u2c, &s->c2u));
}

/* ---- upstream ---------------------------------------------------------------- */

static void upstream_connected(struct session_env *env, struct session *s)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	struct logline l;
	char buf[ADDR_STRLEN];
	int err = 0, one = 1;

	len = sizeof(err);
	if (getsockopt(s->upstream.fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		err = errno;
	if (err) {
		refuse(env, s, "08001", "conn.refused",
		       "pgtether: cannot reach the database at %s: %s",
		       addr_format(&s->dst, buf), strerror(err));
		return;
	}
	setsockopt(s->upstream.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	len = sizeof(ss);
	if (getsockname(s->upstream.fd, (struct sockaddr *)&ss, &len) == 0)
		addr_from_sockaddr((struct sockaddr *)&ss, &s->up_local);
	s->state = SESSION_RELAYING;

	log_begin(&l, LOG_LEVEL_INFO, "conn.open");
	log_identity(&l, s);
	log_str(&l, "upstream_local", addr_format(&s->up_local, buf));
	log_end(&l, LOG_LEVEL_INFO);

	set_events(env, &s->upstream, EPOLLIN);
	set_events(env, &s->client, EPOLLIN);
}

static int upstream_connect(struct session_env *env, struct session *s)
{
	struct sockaddr_storage ss;
	socklen_t len = addr_to_sockaddr(&s->dst, &ss);
	uint32_t mark = env->cfg->socket_mark;
	int fd;

	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
	if (fd == -1)
		return -errno;
	/* The loop guard: the connect hook lets marked sockets through untouched. */
	if (setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) == -1) {
		int r = -errno;

		close(fd);
		return r;
	}
	s->upstream.fd = fd;
	if (connect(fd, (struct sockaddr *)&ss, len) == -1 && errno != EINPROGRESS)
		return -errno;
	return watch(env, &s->upstream, EPOLLOUT);
}

/* ---- accept ------------------------------------------------------------------ */

static struct session *session_new(struct session_env *env, int cfd)
{
	struct session *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->c2u.data = malloc(2 * SESSION_BUF);
	if (!s->c2u.data) {
		free(s);
		return NULL;
	}
	s->u2c.data = s->c2u.data + SESSION_BUF;
	s->id = ++env->next_id;
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

static void session_start(struct session_env *env, struct session *s)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	struct addr local;
	struct pgt_tuple t;
	uint64_t cookie;
	char buf[ADDR_STRLEN];
	int one = 1, r;

	if (getpeername(s->client.fd, (struct sockaddr *)&ss, &len) == -1 ||
	    addr_from_sockaddr((struct sockaddr *)&ss, &s->peer) < 0 ||
	    (len = sizeof(ss), getsockname(s->client.fd, (struct sockaddr *)&ss, &len)) == -1 ||
	    addr_from_sockaddr((struct sockaddr *)&ss, &local) < 0) {
		session_close(env, s, "cannot read socket addresses");
		return;
	}
	setsockopt(s->client.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (watch(env, &s->client, 0) < 0) {
		session_close(env, s, "epoll");
		return;
	}

	/* 1. The kernel's record of who connected, filed under this 4-tuple. */
	memset(&t, 0, sizeof(t));
	memcpy(t.saddr, s->peer.ip, 16);
	memcpy(t.daddr, local.ip, 16);
	t.sport = s->peer.port;
	t.dport = local.port;
	if (intercept_lookup(env->ic, &t, &s->origin) < 0) {
		refuse(env, s, "08004", "conn.refused",
		       "pgtether: this connection was not redirected by pgtether (%s connected to the listener directly); connect to the database's own address instead",
		       addr_format(&s->peer, buf));
		return;
	}
	memcpy(s->dst.ip, s->origin.dst_addr, 16);
	s->dst.port = s->origin.dst_port;
	attest_read((pid_t)s->origin.tgid, &s->facts);

	/* 2. The peer socket must be the one the hook saw: same 4-tuple, same cookie. */
	r = sockdiag_cookie(env->sd, &s->peer, &local, &cookie);
	if (r < 0 || cookie != s->origin.sock_cookie) {
		refuse(env, s, "08004", "conn.refused",
		       "pgtether: cannot confirm the identity of this connection (%s); try again",
		       r < 0 ? strerror(-r) : "socket cookie mismatch");
		return;
	}

	/* 3. Upstream: where the workload wanted to go, marked so it is never redirected. */
	s->state = SESSION_CONNECTING;
	if ((r = upstream_connect(env, s)) < 0)
		refuse(env, s, "08001", "conn.refused", "pgtether: cannot reach the database at %s: %s",
		       addr_format(&s->dst, buf), strerror(-r));
}

void session_accept(struct session_env *env, int lfd)
{
	for (;;) {
		int cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct session *s;

		if (cfd == -1) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN)
				log_error("accept", "accept failed: %s", strerror(errno));
			return;
		}
		s = session_new(env, cfd);
		if (!s) {
			log_error("accept", "out of memory: connection dropped");
			close(cfd);
			continue;
		}
		session_start(env, s);
	}
}

void session_event(struct session_env *env, struct session_end *end, uint32_t events)
{
	struct session *s = end->s;

	if (s->dead)
		return;
	switch (s->state) {
	case SESSION_CONNECTING:
		if (end == &s->upstream)
			upstream_connected(env, s);
		else if (events & (EPOLLHUP | EPOLLERR))
			session_free(env, s); /* the client gave up before the upstream answered */
		break;
	case SESSION_RELAYING:
		relay_event(env, s, end, events);
		break;
	case SESSION_REFUSING:
		if (end != &s->client)
			break;
		if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !s->c2u.eof && refuse_step(s)) {
			session_free(env, s);
			return;
		}
		if (flush(&s->u2c, &s->client) < 0 || (s->c2u.eof && s->u2c.len == 0)) {
			session_free(env, s);
			return;
		}
		set_events(env, &s->client, (s->c2u.eof ? 0 : EPOLLIN) | (s->u2c.len ? EPOLLOUT : 0));
		break;
	}
}

void session_tick(struct session_env *env)
{
	struct session *s = env->head, *next;
	struct timespec now;
	char buf[ADDR_STRLEN];

	clock_gettime(CLOCK_MONOTONIC, &now);
	for (; s; s = next) {
		time_t age = now.tv_sec - s->started.tv_sec;

		next = s->next;
		if (s->state == SESSION_CONNECTING && age >= SESSION_CONNECT_TIMEOUT_S)
			refuse(env, s, "08001", "conn.refused",
			       "pgtether: cannot reach the database at %s: connection timed out",
			       addr_format(&s->dst, buf));
		else if (s->state == SESSION_REFUSING && age >= SESSION_REFUSE_TIMEOUT_S)
			session_free(env, s);
	}
}

void session_close_all(struct session_env *env, const char *reason)
{
	while (env->head)
		session_close(env, env->head, reason);
	session_reap(env);
}
