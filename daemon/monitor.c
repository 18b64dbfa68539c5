/*
 * The parent's half of every connection (monitor.h). Workers are started with
 * fexecve of pgtetherd itself ("--worker"), so nothing of this process's memory
 * (the credentials, freed buffers that held them) is ever in theirs.
 */

#include "monitor_int.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup.h"
#include "escape.h"
#include "log.h"
#include "pgwire.h"
#include "policy.h"
#include "record.h"
#include "session.h"
#include "sockdiag.h"
#include "token.h"

#define MON_WORKER_QUICK_S 2       /* a worker that dies this soon after starting ... */
#define MON_WORKER_BACKOFF_S 5     /* ... three times in a row waits this long */


/* ---- workers ------------------------------------------------------------------ */

static int force_bufs(int fd)
{
	int n = PRIV_SOCKBUF;

	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &n, sizeof(n)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &n, sizeof(n)) == -1)
		return -errno;
	return 0;
}

static int worker_spawn(struct monitor *m, struct mon_worker *w)
{
	int cmd[2] = { -1, -1 }, req[2] = { -1, -1 };
	char idx[16], uid[16], gid[16];
	struct epoll_event e = { .events = EPOLLIN, .data.ptr = &w->ev };
	pid_t pid;
	int r;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, cmd) == -1 ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, req) == -1) {
		r = -errno;
		goto fail;
	}
	if ((r = force_bufs(cmd[0])) < 0 || (r = force_bufs(cmd[1])) < 0 || (r = force_bufs(req[0])) < 0 ||
	    (r = force_bufs(req[1])) < 0)
		goto fail;
	snprintf(idx, sizeof(idx), "%u", w->idx);
	snprintf(uid, sizeof(uid), "%u", (unsigned)m->wuid);
	snprintf(gid, sizeof(gid), "%u", (unsigned)m->wgid);
	pid = fork();
	if (pid == -1) {
		r = -errno;
		goto fail;
	}
	if (pid == 0) {
		char *argv[] = { "pgtetherd", "--worker", idx, uid, gid, m->debug ? "debug" : "info", m->cfg->path, NULL };
		extern char **environ;
		sigset_t none;

		/* the parent's blocked signals (signalfd) would stay blocked */
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (dup2(cmd[1], PRIV_FD_CMD) == -1 || dup2(req[1], PRIV_FD_REQ) == -1 || dup2(m->exe_fd, 5) == -1)
			_exit(127);
		/* everything else (listener, BPF maps, control socket) stays here */
		close_range(6, ~0u, 0);
		fexecve(5, argv, environ);
		_exit(127);
	}
	close(cmd[1]);
	close(req[1]);
	w->pid = pid;
	w->cmd = cmd[0];
	w->req = req[0];
	w->ready = false;
	w->sessions = 0;
	w->last_cmd = PRIV_CONFIG;
	clock_gettime(CLOCK_MONOTONIC, &w->started);
	fcntl(w->cmd, F_SETFL, O_NONBLOCK);
	fcntl(w->req, F_SETFL, O_NONBLOCK);
	w->ev.kind = EV_WORKER;
	w->m = m;
	if (epoll_ctl(m->epfd, EPOLL_CTL_ADD, w->req, &e) == -1 ||
	    priv_send(w->cmd, PRIV_CONFIG, m->gen, NULL, 0, m->bundle_fd) < 0) {
		r = -errno;
		kill(pid, SIGKILL);
		log_error("worker", "worker %u (pid %d) cannot be given its configuration: %s", w->idx, (int)pid, strerror(-r));
		return r;
	}
	log_info("worker", "started worker %u (pid %d, uid %u)", w->idx, (int)pid, (unsigned)m->wuid);
	return 0;
fail:
	for (int i = 0; i < 2; i++) {
		if (cmd[i] >= 0)
			close(cmd[i]);
		if (req[i] >= 0)
			close(req[i]);
	}
	log_error("worker", "cannot start worker %u: %s", w->idx, strerror(-r));
	return r;
}

/* The worker is broken (it spoke out of turn, or its queue is full): it is killed,
 * and monitor_children ends its sessions when it is reaped. */
void worker_kill(struct mon_worker *w, const char *why)
{
	if (w->pid <= 0)
		return;
	log_error("worker", "worker %u (pid %d): %s; killing it", w->idx, (int)w->pid, why);
	kill(w->pid, SIGKILL);
	w->ready = false; /* new connections wait for its successor, or go to the others */
}

int worker_send(struct mon_worker *w, uint32_t type, uint64_t conn, const void *body, size_t len, int fd)
{
	int r;

	if (w->pid <= 0)
		return -ESRCH;
	r = priv_send(w->cmd, type, conn, body, len, fd);
	w->last_cmd = r < 0 ? 0 : type;
	if (r < 0) {
		char why[96];

		snprintf(why, sizeof(why), "cannot send it a %s message: %s", priv_type_name(type), strerror(-r));
		worker_kill(w, why);
	}
	return r;
}

int reply(struct mon_worker *w, uint64_t conn, int result, const void *payload, size_t len, int fd)
{
	uint8_t *b = w->m->buf;      /* the request was copied out of it already */
	struct priv_reply rp = { result, (uint32_t)len };
	int r;

	memcpy(b, &rp, sizeof(rp));
	if (len)
		memcpy(b + sizeof(rp), payload, len);
	r = priv_send(w->req, PRIV_REPLY, conn, b, sizeof(rp) + len, fd);
	if (len)
		OPENSSL_cleanse(b + sizeof(rp), len); /* proofs and hashes */
	if (r < 0)
		worker_kill(w, "its request channel is full");
	return r;
}

/* The next ready worker in turn. Not the one with the fewest sessions: a worker taken
 * over that ends its own sessions at once would always have the fewest, and be given
 * every new connection of the host to read. In turn, it sees its share. */
struct mon_worker *pick_worker(struct monitor *m)
{
	for (unsigned i = 0; i < m->n_workers; i++) {
		struct mon_worker *w = &m->w[(m->next_worker + i) % m->n_workers];

		if (w->pid > 0 && w->ready) {
			m->next_worker = (w->idx + 1) % m->n_workers;
			return w;
		}
	}
	return NULL;
}

/* ---- connections ---------------------------------------------------------------- */

/* Every packet names its session by id, a STATS packet up to PRIV_STATS_MAX of them:
 * finding one is a look in its bucket, not a walk of every connection. Ids are
 * handed out in sequence, so their low bits spread them evenly. */
static size_t conn_bucket(const struct monitor *m, uint64_t id)
{
	return (size_t)id & (m->n_by_id - 1);
}

static struct mon_conn *conn_find(struct monitor *m, uint64_t id)
{
	if (!m->n_by_id)
		return NULL;
	for (struct mon_conn *c = m->by_id[conn_bucket(m, id)]; c; c = c->hnext)
		if (c->id == id)
			return c;
	return NULL;
}

/* Twice the buckets (at least one per connection), every connection in its new one. */
static int conn_index_grow(struct monitor *m)
{
	size_t n = m->n_by_id ? m->n_by_id * 2 : 64;
	struct mon_conn **b = calloc(n, sizeof(*b));

	if (!b)
		return -ENOMEM;
	free(m->by_id);
	m->by_id = b;
	m->n_by_id = n;
	for (struct mon_conn *c = m->head; c; c = c->next) {
		size_t i = conn_bucket(m, c->id);

		c->hnext = b[i];
		b[i] = c;
	}
	return 0;
}

int conn_link(struct monitor *m, struct mon_conn *c)
{
	size_t i;

	/* longer chains rather than a refused connection: only no index at all fails */
	if (m->n_conns >= m->n_by_id && conn_index_grow(m) < 0 && !m->n_by_id)
		return -ENOMEM;
	c->prev = NULL;
	c->next = m->head;
	if (m->head)
		m->head->prev = c;
	m->head = c;
	m->n_conns++;
	i = conn_bucket(m, c->id);
	c->hnext = m->by_id[i];
	m->by_id[i] = c;
	return 0;
}

void login_done(struct monitor *m, struct mon_conn *c)
{
	if (c->login_counted)
		quota_login_end(&m->logins, c->login_keyed, c->login_key);
	c->login_counted = c->login_keyed = false;
}

void conn_end(struct monitor *m, struct mon_conn *c)
{
	login_cancel_close(c);
	login_done(m, c);
	login_scram_end(m, c);
	login_fs_end(m, c);
	if (c->cfd >= 0)
		close(c->cfd);
	if (c->w && c->w->sessions)
		c->w->sessions--;
	json_decref(c->claims);
	held_unlist(c);
	free(c->pending);
	if (c->prev)
		c->prev->next = c->next;
	else
		m->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	for (struct mon_conn **p = m->n_by_id ? &m->by_id[conn_bucket(m, c->id)] : NULL; p && *p; p = &(*p)->hnext)
		if (*p == c) {
			*p = c->hnext;
			break;
		}
	if (!--m->n_conns) {
		free(m->by_id);
		m->by_id = NULL;
		m->n_by_id = 0;
	}
	free(c);
}

void conn_abort_upstream(struct monitor *m, struct mon_conn *c, uint64_t keep)
{
	size_t kept = 0;

	/* the worker alone has their fds: they are aborted by name */
	for (size_t i = 0; i < c->n_up_socks; i++) {
		const struct mon_upsock *u = &c->up_socks[i];
		int r;

		if (u->cookie == keep) {
			c->up_socks[kept++] = *u;
			continue;
		}
		r = m->sd && !m->no_destroy ? sockdiag_destroy(m->sd, &u->local, &u->remote, u->cookie) : 0;
		if (r == -EOPNOTSUPP) {
			m->no_destroy = true;
			log_error("upstream", "this kernel cannot abort sockets by name (CONFIG_INET_DIAG_DESTROY): a worker taken over could keep upstream connections of sessions the parent ended");
		} else if (r < 0 && r != -ENOENT)
			log_error("upstream", "id=%llu: cannot abort its upstream connection: %s", (unsigned long long)c->id,
				  strerror(-r));
	}
	c->n_up_socks = kept;
}

void conn_sever(struct monitor *m, struct mon_conn *c)
{
	/* the parent's copy of the client socket is the very socket the worker has:
	 * shut, it ends for both */
	if (c->cfd >= 0)
		shutdown(c->cfd, SHUT_RDWR);
	conn_abort_upstream(m, c, 0);
	conn_end(m, c);
}

/* The outermost attached cgroup the recorded cgroup is within (see session.c before
 * the split: counting by the cgroup's own id would let children multiply the cap). */
static const struct intercept_attachment *login_key(const struct monitor *m, const struct mon_conn *c)
{
	const struct intercept_attachment *best = NULL;
	const char *cg = NULL;
	char path[PATH_MAX];

	for (size_t i = 0; i < m->ic->n_att && !cg; i++)
		if (m->ic->att[i].cgroup_id == c->origin.cgroup_id)
			cg = m->ic->att[i].path;
	/* a child cgroup: by its process, or, when that has gone, below each attachment */
	if (!cg && cgroup_path_of_pid(m->ic->cgroup_mount, (pid_t)c->origin.tgid, c->origin.cgroup_id, path,
				      sizeof(path)) == 0)
		cg = path;
	for (size_t i = 0; i < m->ic->n_att && !cg; i++)
		if (cgroup_find_id(m->ic->cgroup_mount, m->ic->att[i].path, c->origin.cgroup_id, path, sizeof(path)) == 0)
			cg = path;
	for (size_t i = 0; cg && i < m->ic->n_att; i++) {
		const struct intercept_attachment *a = &m->ic->att[i];

		if (cgroup_within(cg, a->path) && (!best || strlen(a->path) < strlen(best->path)))
			best = a;
	}
	return best;
}

/* The parent refuses the fresh connection (nc) by fault f (fault.h): its worker
 * says so, in the table's words for the facts ff. */
static void refusal(struct priv_new_conn *nc, enum fault_code f, const struct fault_facts *ff)
{
	struct fault_text t;

	if (fault_describe(f, ff, &t) < 0)
		fault_describe(f = FAULT_OUT_OF_MEMORY, ff, &t); /* not a fault: unreachable */
	snprintf(nc->refuse_sqlstate, sizeof(nc->refuse_sqlstate), "%s", t.sqlstate);
	snprintf(nc->refuse_msg, sizeof(nc->refuse_msg), "%s", t.msg);
	nc->refuse_fault = f;
}

/* Over max_logins_per_cgroup: the refusal to give (nc), true. */
static bool login_capped(struct monitor *m, struct mon_conn *c, struct priv_new_conn *nc)
{
	const struct intercept_attachment *a = c->have_origin ? login_key(m, c) : NULL;
	uint64_t key = a ? a->cgroup_id : 0;
	unsigned n;

	if (quota_login_key(&m->logins, key, m->cfg->max_logins_per_cgroup, &n) == 0) {
		c->login_keyed = true;
		c->login_key = key;
		return false;
	}
	login_done(m, c);
	nc->capped = true;
	refusal(nc, FAULT_PARENT_CGROUP_LOGINS,
		&(struct fault_facts){ .cgroup = a ? a->path : NULL, .limit = m->cfg->max_logins_per_cgroup });
	return true;
}

/* What the parent knows of a fresh connection, before a worker reads a byte of it:
 * the kernel's record, the login caps, the sock_diag cookie, the upstream. */
static void conn_facts(struct monitor *m, struct mon_conn *c, struct priv_new_conn *nc)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	struct addr local;
	struct pgt_tuple t;
	struct config_upstream *u;
	uint64_t cookie;
	char buf[ADDR_STRLEN];
	int one = 1, r;

	if (getpeername(c->cfd, (struct sockaddr *)&ss, &len) == -1 ||
	    addr_from_sockaddr((struct sockaddr *)&ss, &c->peer) < 0 ||
	    (len = sizeof(ss), getsockname(c->cfd, (struct sockaddr *)&ss, &len)) == -1 ||
	    addr_from_sockaddr((struct sockaddr *)&ss, &local) < 0) {
		refusal(nc, FAULT_PARENT_ADDRESSES, &(struct fault_facts){ 0 });
		return;
	}
	setsockopt(c->cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	nc->peer = c->peer;
	memset(&t, 0, sizeof(t));
	memcpy(t.saddr, c->peer.ip, 16);
	memcpy(t.daddr, local.ip, 16);
	t.sport = c->peer.port;
	t.dport = local.port;
	if (intercept_take(m->ic, &t, &c->origin) < 0) {
		uint64_t full;

		if (login_capped(m, c, nc))
			return;
		if (intercept_origins_full(m->ic, &full) == 0 && full > m->origins_full_seen)
			refusal(nc, FAULT_PARENT_ORIGINS_FULL, &(struct fault_facts){ .limit = PGT_MAX_ORIGINS });
		else
			refusal(nc, FAULT_PARENT_NOT_REDIRECTED, &(struct fault_facts){ .address = addr_format(&c->peer, buf) });
		return;
	}
	c->have_origin = nc->have_origin = true;
	nc->origin = c->origin;
	memcpy(c->dst.ip, c->origin.dst_addr, 16);
	c->dst.port = c->origin.dst_port;
	nc->dst = c->dst;
	if (login_capped(m, c, nc))
		return;
	r = sockdiag_cookie(m->sd, &c->peer, &local, &cookie);
	if (r < 0 || cookie != c->origin.sock_cookie) {
		refusal(nc, FAULT_PARENT_UNCONFIRMED, &(struct fault_facts){ .err = r < 0 ? -r : 0 });
		return;
	}
	u = config_upstream_for(m->cfg, &c->dst);
	if (!u) {
		refusal(nc, FAULT_PARENT_NO_UPSTREAM,
			&(struct fault_facts){ .address = addr_format(&c->dst, buf), .path = m->cfg->path });
		return;
	}
	snprintf(c->upstream, sizeof(c->upstream), "%s", u->name);
	snprintf(nc->upstream, sizeof(nc->upstream), "%s", u->name);
}

/* The FATAL of the parent's fault f (FAULT_NO_WORKER, FAULT_WORKER_ENDED), on the
 * parent's copy of the client's socket. */
static void say_fatal(int cfd, enum fault_code f)
{
	struct fault_text t;
	uint8_t e[FAULT_MSG_MAX + 64];
	size_t n;

	if (fault_describe(f, &(struct fault_facts){ 0 }, &t) < 0)
		return;
	n = pgwire_error_response(e, sizeof(e), "FATAL", t.sqlstate, t.msg, NULL);
	if (n && send(cfd, e, n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
		/* the client is gone: nothing more to do for it */
	}
}

/* Written before any byte was read: a client reads it after its startup packet. */
static void no_worker(int cfd)
{
	say_fatal(cfd, FAULT_NO_WORKER);
}

static bool workers_starting(const struct monitor *m)
{
	for (unsigned i = 0; i < m->n_workers; i++)
		if (m->w[i].pid > 0 && !m->w[i].ready)
			return true;
	return false;
}

/* A worker is ready: the connections that waited for one go to it. */
static void conn_dispatch(struct monitor *m)
{
	for (struct mon_conn *c = m->head, *next; c; c = next) {
		struct mon_worker *w;

		next = c->next;
		if (!c->pending || !(w = pick_worker(m)))
			continue;
		if (worker_send(w, PRIV_NEW_CONN, c->id, c->pending, sizeof(*c->pending), c->cfd) < 0)
			continue;
		free(c->pending);
		c->pending = NULL;
		c->w = w;
		clock_gettime(CLOCK_MONOTONIC, &c->handed);
		w->sessions++;
		if (c->st == MC_REFUSED)
			conn_end(m, c);
	}
}

/* Refusals for a login cap are logged once per flood: the first, then the count
 * (monitor_tick). */
static void capped_note(struct monitor *m, const char *sqlstate, const char *msg)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (quota_episode_hit(&m->turned_away, now.tv_sec)) {
		log_warn("conn.capped", "%s (SQLSTATE %s); more refused for this reason are counted, not logged one by one",
			 msg, sqlstate);
		snprintf(m->turned_away_why, sizeof(m->turned_away_why), "%s", msg);
	}
}

static void conn_accepted(struct monitor *m, int cfd)
{
	struct mon_conn *c = calloc(1, sizeof(*c));
	struct priv_new_conn nc;
	struct mon_worker *w;

	if (!c) {
		log_error("accept", "out of memory: connection dropped");
		close(cfd);
		return;
	}
	memset(&nc, 0, sizeof(nc));
	c->cfd = cfd;
	c->id = ++m->next_id;
	c->st = MC_STARTUP;
	clock_gettime(CLOCK_MONOTONIC, &c->started);
	if (quota_login_begin(&m->logins, m->cfg->max_logins) < 0) {
		nc.capped = true;
		refusal(&nc, FAULT_PARENT_MAX_LOGINS, &(struct fault_facts){ .limit = m->cfg->max_logins });
	} else {
		c->login_counted = true;
		conn_facts(m, c, &nc);
	}
	if (nc.refuse_sqlstate[0]) {
		c->st = MC_REFUSED;
		login_done(m, c);
		if (nc.capped)
			capped_note(m, nc.refuse_sqlstate, nc.refuse_msg);
	}
	if (conn_link(m, c) < 0) {
		log_error("accept", "out of memory: connection dropped");
		login_done(m, c);
		close(cfd);
		free(c);
		return;
	}
	w = pick_worker(m);
	if (!w && workers_starting(m)) {
		/* every worker is (re)starting: the connection waits for one (conn_dispatch) */
		c->pending = malloc(sizeof(nc));
		if (c->pending) {
			memcpy(c->pending, &nc, sizeof(nc));
			return;
		}
	}
	if (!w || worker_send(w, PRIV_NEW_CONN, c->id, &nc, sizeof(nc), cfd) < 0) {
		no_worker(cfd);
		c->w = NULL;
		conn_end(m, c);
		return;
	}
	c->w = w;
	c->handed = c->started;
	w->sessions++;
	/* a refusal is the worker's alone: nothing to say for it if that worker dies,
	 * and a flood of them must not hold the parent's fds */
	if (c->st == MC_REFUSED)
		conn_end(m, c);
}

int monitor_accept(struct monitor *m, int lfd)
{
	for (;;) {
		int cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (cfd == -1) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
				return -errno;
			if (errno != EAGAIN)
				log_error("accept", "accept failed: %s", strerror(errno));
			return 0;
		}
		conn_accepted(m, cfd);
	}
}

/* ---- cancel, approvals, stats ---------------------------------------------------- */

/* A CancelRequest read by c's worker: the session it names (same key, same workload
 * cgroup) gets it in its own worker, with c's socket; unknown keys are dropped
 * silently, as PostgreSQL does. */
static void on_cancel(struct monitor *m, struct mon_conn *c, const struct priv_cancel *q)
{
	uint32_t pid, secret;
	struct priv_new_conn nc;
	struct mon_conn *t;

	memcpy(&pid, q->pkt + 8, 4);
	memcpy(&secret, q->pkt + 12, 4);
	pid = ntohl(pid);
	secret = ntohl(secret);
	/* the whole key: "pids" are random, two sessions may share one */
	for (t = m->head; t; t = t->next)
		if (t != c && t->st == MC_RELAYING && t->have_key && t->key_pid == pid &&
		    CRYPTO_memcmp(&t->key_secret, &secret, sizeof(secret)) == 0 && c->have_origin &&
		    t->origin.cgroup_id == c->origin.cgroup_id)
			break;
	if (!t) {
		log_warn("cancel", "id=%llu: a CancelRequest with an unknown key was ignored", (unsigned long long)c->id);
		conn_end(m, c);
		return;
	}
	memset(&nc, 0, sizeof(nc));
	nc.origin = c->origin;
	nc.have_origin = c->have_origin;
	nc.peer = c->peer;
	nc.dst = c->dst;
	nc.cancel = true;
	memcpy(nc.cancel_pkt, q->pkt, sizeof(nc.cancel_pkt));
	snprintf(nc.upstream, sizeof(nc.upstream), "%s", t->upstream);
	/* its sockets go where t's relay is connected, alone (cancel.c) */
	snprintf(c->upstream, sizeof(c->upstream), "%s", t->upstream);
	if (c->w && c->w->sessions)
		c->w->sessions--;
	c->w = t->w;
	c->w->sessions++;
	c->st = MC_CANCELLING;
	c->sockets = 0;
	c->addrs[0] = t->up_addr; /* the server that runs the backend, alone */
	c->n_addrs = 1;
	if (worker_send(c->w, PRIV_NEW_CONN, c->id, &nc, sizeof(nc), c->cfd) < 0) {
		conn_end(m, c);
		return;
	}
	/* A cancel has no answer for the parent to give: the worker's copy is the only
	 * one, so its close after the first try reaches the client (cancel.c). Nor is
	 * it a login any more: its tries (up to 8 s) hold no login cap's place. */
	close(c->cfd);
	c->cfd = -1;
	login_done(m, c);
}

static int on_stats(struct monitor *m, struct mon_worker *w, const uint8_t *body, size_t len)
{
	size_t n = len / sizeof(struct priv_stat);

	/* session_stats sends at most PRIV_STATS_MAX: each entry is a walk of the list */
	if (len % sizeof(struct priv_stat) || n > PRIV_STATS_MAX)
		return -EPROTO;
	for (size_t i = 0; i < n; i++) {
		struct priv_stat st;
		struct mon_conn *c;

		memcpy(&st, body + i * sizeof(st), sizeof(st));
		c = conn_find(m, st.conn);
		if (!c || c->w != w || !PRIV_STR_OK(st.client_encoding) || !PRIV_STR_OK(st.scs))
			continue;
		c->bytes_in = st.bytes_in;
		c->bytes_out = st.bytes_out;
		memcpy(c->client_encoding, st.client_encoding, sizeof(c->client_encoding));
		memcpy(c->scs, st.scs, sizeof(c->scs));
	}
	return 0;
}

/* The last command w was sent is a remask it has not read yet: that one still comes
 * after any DDL now, so another is not needed (a worker reporting DDL in a loop would
 * otherwise fill the others' command channels, and a full channel kills them). */
static bool remask_unread(const struct mon_worker *w)
{
	int queued = 0;

	return w->last_cmd == PRIV_REMASK && ioctl(w->cmd, SIOCOUTQ, &queued) == 0 && queued > 0;
}

/* ---- the request channel ---------------------------------------------------------------- */

/* Whether a session has the cancel key (pid, secret) already. A worker draws each key
 * at random (upstream.c); one that took a victim's key from a CancelRequest it read
 * and gave it to a session of its own in the victim's cgroup would have the victim's
 * later cancels routed to it (on_cancel) and dropped. */
static bool key_taken(const struct monitor *m, uint32_t pid, uint32_t secret)
{
	for (const struct mon_conn *t = m->head; t; t = t->next)
		if (t->have_key && t->key_pid == pid && t->key_secret == secret)
			return true;
	return false;
}

/* One packet from w. -EPROTO: out of order or malformed (the worker is ended). */
static int on_packet(struct monitor *m, struct mon_worker *w, const struct priv_hdr *h, const uint8_t *body, int fd)
{
	struct mon_conn *c = h->conn ? conn_find(m, h->conn) : NULL;

	if (h->type == PRIV_READY) {
		w->ready = true;
		conn_dispatch(m);
		return 0;
	}
	if (h->type == PRIV_STATS)
		return on_stats(m, w, body, h->len);
	/* a worker's calls come one at a time (worker_call waits for each answer): one
	 * while its SCRAM answer is computed would be answered out of order */
	if (h->type >= PRIV_SOCKET && h->type < PRIV_REPLY && w->waiting)
		return -EPROTO;
	if (!c || c->w != w) {
		/* a connection the parent ended (its worker was told) may still speak once */
		if (h->type == PRIV_ENDED || h->type == PRIV_HELD_DONE || h->type == PRIV_DDL)
			return 0;
		if (h->type >= PRIV_SOCKET && h->type < PRIV_REPLY)
			return reply(w, h->conn, -ENOENT, NULL, 0, -1);
		return h->type == PRIV_CANCEL || h->type == PRIV_IDENTIFY || h->type == PRIV_TOKEN ||
		       h->type == PRIV_LOGGED_IN ? 0 : -EPROTO;
	}
	switch (h->type) {
	case PRIV_IDENTIFY: {
		struct priv_identify q;

		/* a bool's byte is the worker's: loaded as a bool, anything but 0 or 1 is
		 * undefined behaviour here */
		if (c->st != MC_STARTUP || h->len != sizeof(q) || body[offsetof(struct priv_identify, client_tls)] > 1)
			return -EPROTO;
		memcpy(&q, body, sizeof(q));
		if (!PRIV_STR_OK(q.user) || !PRIV_STR_OK(q.database))
			return -EPROTO;
		memcpy(c->user, q.user, sizeof(c->user));
		memcpy(c->database, q.database, sizeof(c->database));
		c->client_tls = q.client_tls;
		c->st = MC_ATTESTING;
		login_attest(m, c);
		return 0;
	}
	case PRIV_TOKEN:
		if (c->st != MC_TOKEN || h->len > SESSION_TOKEN_MAX || (h->len && memchr(body, '\0', h->len)))
			return -EPROTO;
		login_token(m, c, h->len ? (const char *)body : NULL, h->len);
		return 0;
	case PRIV_SOCKET:
		if (c->st != MC_AUTHORIZED && c->st != MC_CANCELLING)
			return -EPROTO;
		return login_socket(m, c, body, h->len);
	case PRIV_STARTUP:
		if (c->st != MC_AUTHORIZED)
			return -EPROTO;
		return login_startup(m, c, body, h->len, fd);
	case PRIV_CANCEL_SEND:
		if (c->st != MC_CANCELLING)
			return -EPROTO;
		return login_cancel_send(m, c, body, h->len);
	case PRIV_SCRAM:
		if (c->st != MC_AUTHORIZED || c->login_asked || h->len != sizeof(struct priv_scram))
			return -EPROTO;
		c->login_asked = true;
		return login_scram(m, c, (const struct priv_scram *)body);
	case PRIV_MD5:
		if (c->st != MC_AUTHORIZED || c->login_asked)
			return -EPROTO;
		c->login_asked = true;
		return login_md5(m, c, body, h->len);
	case PRIV_CLEARTEXT:
		if (c->st != MC_AUTHORIZED || c->login_asked)
			return -EPROTO;
		c->login_asked = true;
		return login_cleartext(m, c);
	case PRIV_LOGGED_IN: {
		struct priv_logged_in q;

		if (c->st != MC_AUTHORIZED || h->len != sizeof(q))
			return -EPROTO;
		memcpy(&q, body, sizeof(q));
		if (q.up_idx >= c->n_addrs)
			return -EPROTO;
		if (key_taken(m, q.key_pid, q.key_secret)) {
			log_warn("cancel", "id=%llu: worker %u gave it the cancel key of a live session (62 random bits: only a worker taken over repeats one)",
				 (unsigned long long)c->id, w->idx);
			return -EPROTO;
		}
		c->up_addr = c->addrs[q.up_idx];
		c->key_pid = q.key_pid;
		c->key_secret = q.key_secret;
		c->have_key = true;
		c->st = MC_RELAYING;
		login_done(m, c);
		return 0;
	}
	case PRIV_HELD: {
		uint64_t id;

		if (c->st != MC_RELAYING)
			return -EPROTO;
		id = ++m->next_request;
		c->held_id = id;
		c->held_since = time(NULL);
		c->held_info_seen = false;
		held_unlist(c);
		return reply(w, c->id, 0, &id, sizeof(id), -1);
	}
	case PRIV_HELD_INFO:
		if (c->st != MC_RELAYING || !c->held_id)
			return -EPROTO;
		return held_info(m, c, body, h->len);
	case PRIV_HELD_DONE:
		c->held_id = 0;
		held_unlist(c);
		return 0;
	case PRIV_CANCEL:
		if (c->st != MC_STARTUP || h->len != sizeof(struct priv_cancel))
			return -EPROTO;
		on_cancel(m, c, (const struct priv_cancel *)body);
		return 0;
	case PRIV_ENDED:
		/* an honest worker has closed both ends already; one taken over that says
		 * so and goes on relaying would keep a session nobody sees (status, reload,
		 * worker balance) */
		conn_sever(m, c);
		return 0;
	case PRIV_DDL:
		if (c->st != MC_RELAYING)
			return -EPROTO;
		for (unsigned i = 0; i < m->n_workers; i++)
			if (&m->w[i] != w && m->w[i].pid > 0 && m->w[i].ready && !remask_unread(&m->w[i]))
				worker_send(&m->w[i], PRIV_REMASK, 0, NULL, 0, -1);
		return 0;
	}
	(void)fd;
	return -EPROTO;
}

void monitor_worker_event(struct monitor *m, struct mon_worker *w, uint32_t events)
{
	for (unsigned i = 0; i < 256 && w->pid > 0; i++) {
		struct priv_hdr h;
		int fd = -1;
		long n = priv_recv(w->req, m->buf, PRIV_MAX_MSG, &fd);

		if (n == -EAGAIN)
			return;
		if (n < 0) {
			/* a worker closes its request channel only by exiting: one that closes
			 * it and lives could no longer be asked anything of its sessions */
			if (n != -EPIPE)
				worker_kill(w, "it sent a malformed packet");
			else if (!m->stopping)
				worker_kill(w, "it closed its request channel");
			epoll_ctl(m->epfd, EPOLL_CTL_DEL, w->req, NULL);
			return;
		}
		memcpy(&h, m->buf, sizeof(h));
		{
			/* calls reply through m->buf: the body is copied out first */
			uint8_t *body = NULL;
			int r;

			if (h.len) {
				body = malloc(h.len);
				if (!body) {
					worker_kill(w, "out of memory");
					return;
				}
				memcpy(body, m->buf + sizeof(h), h.len);
			}
			r = on_packet(m, w, &h, body, fd);
			if (body) {
				OPENSSL_cleanse(body, h.len);
				free(body);
			}
			if (fd >= 0)
				close(fd);
			if (r == -EPROTO) {
				char why[128];

				snprintf(why, sizeof(why), "a %s message out of order or malformed for session %llu",
					 priv_type_name(h.type), (unsigned long long)h.conn);
				worker_kill(w, why);
				return;
			}
		}
	}
	(void)events;
}

/* ---- a worker ended ----------------------------------------------------------------- */

static void worker_gone(struct monitor *m, struct mon_worker *w, int status)
{
	char how[64];
	struct mon_conn *c, *next;
	struct timespec now;
	unsigned ended = 0;

	if (WIFSIGNALED(status))
		snprintf(how, sizeof(how), "killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		snprintf(how, sizeof(how), "exited with status %d", WEXITSTATUS(status));
	epoll_ctl(m->epfd, EPOLL_CTL_DEL, w->req, NULL);
	close(w->cmd);
	close(w->req);
	w->cmd = w->req = -1;
	for (c = m->head; c; c = next) {
		next = c->next;
		if (c->w != w)
			continue;
		/* plaintext: the client reads a FATAL error; TLS: nothing can be said */
		if (!c->client_tls && c->st != MC_CANCELLING && !m->stopping)
			say_fatal(c->cfd, FAULT_WORKER_ENDED);
		ended++;
		conn_end(m, c);
	}
	w->pid = 0;
	w->ready = false;
	w->sessions = 0;
	/* a proof job of this process still running counts against nobody now */
	w->lives++;
	w->proofs = 0;
	w->waiting = 0;
	if (m->stopping)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec - w->started.tv_sec < MON_WORKER_QUICK_S)
		w->quick_deaths++;
	else
		w->quick_deaths = 0;
	log_error("worker", "worker %u %s; %u of its session(s) ended%s", w->idx, how, ended,
		  w->quick_deaths >= 3 ? "; it keeps dying at start: the next try is in a few seconds" : "");
	w->respawn_at = w->quick_deaths >= 3 ? now.tv_sec + MON_WORKER_BACKOFF_S : 0;
	if (!w->respawn_at)
		worker_spawn(m, w);
}

void monitor_children(struct monitor *m)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		for (unsigned i = 0; i < m->n_workers; i++)
			if (m->w[i].pid == pid)
				worker_gone(m, &m->w[i], status);
}

/* ---- the parent's own loop ------------------------------------------------------------- */

int monitor_start(struct monitor *m, int bundle_fd)
{
	m->bundle_fd = bundle_fd;
	m->buf = malloc(PRIV_MAX_MSG);
	if (!m->buf)
		return -ENOMEM;
	m->n_workers = config_workers(m->cfg);
	if (m->n_workers > PRIV_MAX_WORKERS)
		m->n_workers = PRIV_MAX_WORKERS;
	for (unsigned i = 0; i < m->n_workers; i++) {
		int r;

		m->w[i].idx = i;
		m->w[i].cmd = m->w[i].req = -1;
		if ((r = worker_spawn(m, &m->w[i])) < 0)
			return r;
	}
	/* ready when they are: a service ordered after pgtether is served at once */
	for (int waited = 0;; waited += 10) {
		unsigned ready = 0;

		for (unsigned i = 0; i < m->n_workers; i++) {
			if (m->w[i].pid > 0 && !m->w[i].ready)
				monitor_worker_event(m, &m->w[i], EPOLLIN);
			ready += m->w[i].ready;
		}
		if (ready == m->n_workers)
			return 0;
		if (waited >= 20000) {
			log_error("start", "%u of %u workers did not start within 20 s", m->n_workers - ready, m->n_workers);
			return -ETIMEDOUT;
		}
		{
			int status;
			pid_t pid = waitpid(-1, &status, WNOHANG);

			if (pid > 0) {
				log_error("start", "a worker (pid %d) ended while starting (%s %d%s); see its messages above", (int)pid,
					  WIFSIGNALED(status) ? "signal" : "status",
					  WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status),
					  WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS ?
					  ", a system call its seccomp filter does not allow: the kernel's audit log names it" : "");
				for (unsigned i = 0; i < m->n_workers; i++)
					if (m->w[i].pid == pid)
						m->w[i].pid = 0; /* reaped: monitor_stop waits for the others */
				return -ECHILD;
			}
		}
		usleep(10000);
	}
}

void monitor_tick(struct monitor *m)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	for (unsigned i = 0; i < m->n_workers; i++) {
		struct mon_worker *w = &m->w[i];

		if (w->pid == 0 && !m->stopping && now.tv_sec >= w->respawn_at)
			worker_spawn(m, w);
		if (w->pid > 0 && w->ready && now.tv_sec - w->started.tv_sec >= MON_WORKER_QUICK_S)
			w->quick_deaths = 0; /* it lived: the next death is not a crash loop */
	}
	{
		uint64_t count;
		time_t secs;

		if (quota_episode_over(&m->turned_away, now.tv_sec, 2, &count, &secs))
			log_warn("conn.capped", "%llu connection(s) refused over %lld s by a login cap (the first: %s)",
				 (unsigned long long)count, (long long)secs, m->turned_away_why);
	}
	for (struct mon_conn *c = m->head, *next; c; c = next) {
		next = c->next;
		if (c->pending && now.tv_sec - c->started.tv_sec >= (time_t)m->cfg->login_timeout) {
			no_worker(c->cfd);
			conn_end(m, c);
		} else if (!login_abandon(m, c, now.tv_sec - c->handed.tv_sec) &&
			   !login_withdrawn_overdue(m, c, now.tv_sec - c->withdrawn_at)) {
			login_overdue(m, c, now.tv_sec - c->started.tv_sec);
		}
	}
	if (now.tv_sec >= m->origins_checked + SESSION_ORIGINS_CHECK_S) {
		struct timespec boot;
		uint64_t full;
		size_t n = 0, n_closed = 0;

		m->origins_checked = now.tv_sec;
		if (clock_gettime(CLOCK_BOOTTIME, &boot) == 0 && boot.tv_sec > SESSION_ORIGIN_STALE_S)
			n = intercept_expire(m->ic, (uint64_t)(boot.tv_sec - SESSION_ORIGIN_STALE_S) * 1000000000ull,
					     (uint64_t)(boot.tv_sec - SESSION_ORIGIN_CLOSED_S) * 1000000000ull, &n_closed);
		if (n)
			log_warn("origins", "deleted %zu origin record(s) of connections established over %d s ago and never accepted "
				 "(the listen queue was full)", n, SESSION_ORIGIN_STALE_S);
		if (n_closed)
			log_warn("origins", "deleted %zu origin record(s) of connections their clients closed over %d s ago and that "
				 "were never accepted (the listen queue was full)", n_closed, SESSION_ORIGIN_CLOSED_S);
		if (intercept_origins_full(m->ic, &full) == 0 && full > m->origins_full_seen) {
			log_error("origins", "%llu redirected connection(s) found the origins map full (%u entries) and were refused",
				  (unsigned long long)(full - m->origins_full_seen), PGT_MAX_ORIGINS);
			m->origins_full_seen = full;
		}
	}
}

void monitor_reloaded(struct monitor *m, int bundle_fd)
{
	if (m->bundle_fd >= 0)
		close(m->bundle_fd);
	m->bundle_fd = bundle_fd;
	m->gen++;
	for (unsigned i = 0; i < m->n_workers; i++)
		if (m->w[i].pid > 0)
			worker_send(&m->w[i], PRIV_CONFIG, m->gen, NULL, 0, m->bundle_fd);
	login_reloaded(m); /* the parent's own decision, not the workers' word */
}

static const char *conn_state_name(enum mon_state st)
{
	switch (st) {
	case MC_STARTUP: return "startup";
	case MC_ATTESTING: return "attesting";
	case MC_TOKEN: return "authenticating";
	case MC_AUTHORIZED: return "login";
	case MC_RELAYING: return "relaying";
	default: return "refusing";
	}
}

json_t *monitor_status(struct monitor *m)
{
	json_t *conns = json_array();
	struct timespec now;
	char buf[ADDR_STRLEN];

	clock_gettime(CLOCK_MONOTONIC, &now);
	for (struct mon_conn *c = m->head; c; c = c->next) {
		char comm[PGT_COMM_LEN + 1];
		json_t *o;

		if (c->st == MC_REFUSED || c->st == MC_CANCELLING || !c->have_origin)
			continue;
		memcpy(comm, c->origin.comm, PGT_COMM_LEN);
		comm[PGT_COMM_LEN] = '\0';
		/* what the workload chose: valid UTF-8 for JSON (escape.h) */
		o = json_pack("{s:I, s:s, s:I, s:I, s:I, s:o, s:o, s:o, s:I, s:I}",
			      "id", (json_int_t)c->id, "state", conn_state_name(c->st),
			      "pid", (json_int_t)c->origin.tgid, "uid", (json_int_t)c->origin.uid,
			      "gid", (json_int_t)c->origin.gid, "comm", escape_json_str(comm),
			      "exe", escape_json_str(c->facts_read ? c->facts.exe : "?"),
			      "cgroup", escape_json_str(c->facts_read ? c->facts.cgroup : "?"),
			      "cgroup_id", (json_int_t)c->origin.cgroup_id, "worker", (json_int_t)(c->w ? c->w->pid : 0));
		if (!o)
			continue;
		json_object_set_new(o, "exe_sha256", json_string(c->facts.exe_sha256));
		json_object_set_new(o, "peer", json_string(addr_format(&c->peer, buf)));
		json_object_set_new(o, "dst", json_string(addr_format(&c->dst, buf)));
		if (c->upstream[0] && c->role[0]) {
			json_object_set_new(o, "upstream", json_string(c->upstream));
			json_object_set_new(o, "role", json_string(c->role));
			json_object_set_new(o, "database", escape_json_str(c->database));
		}
		if (c->rule[0])
			json_object_set_new(o, "rule", json_string(c->rule));
		if (c->rec_id[0])
			json_object_set_new(o, "recording", json_string(c->rec_id));
		if (c->token_source)
			json_object_set_new(o, "token", json_string(c->token_source));
		if (c->token_iss[0]) {
			json_object_set_new(o, "iss", escape_json_str(c->token_iss));
			json_object_set_new(o, "sub", escape_json_str(c->token_sub));
		}
		if (c->client_encoding[0])
			json_object_set_new(o, "client_encoding", json_string(c->client_encoding));
		if (c->scs[0])
			json_object_set_new(o, "standard_conforming_strings", json_string(c->scs));
		json_object_set_new(o, "bytes_in", json_integer((json_int_t)c->bytes_in));
		json_object_set_new(o, "bytes_out", json_integer((json_int_t)c->bytes_out));
		json_object_set_new(o, "age_s", json_integer(now.tv_sec - c->started.tv_sec));
		json_array_append_new(conns, o);
	}
	return conns;
}

json_t *monitor_workers(struct monitor *m)
{
	json_t *list = json_array();

	for (unsigned i = 0; i < m->n_workers; i++)
		if (m->w[i].pid > 0)
			json_array_append_new(list, json_pack("{s:I, s:I, s:I, s:b}", "index", (json_int_t)i, "pid",
							      (json_int_t)m->w[i].pid, "sessions", (json_int_t)m->w[i].sessions,
							      "ready", m->w[i].ready));
	return list;
}

void monitor_stop(struct monitor *m)
{
	struct timespec t0, now;

	m->stopping = true;
	for (unsigned i = 0; i < m->n_workers; i++)
		if (m->w[i].pid > 0 && priv_send(m->w[i].cmd, PRIV_STOP, 0, NULL, 0, -1) < 0)
			kill(m->w[i].pid, SIGKILL);
	/* they close their sessions (each client gets its error) and exit */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		unsigned left = 0;

		monitor_children(m);
		for (unsigned i = 0; i < m->n_workers; i++)
			left += m->w[i].pid > 0;
		if (!left)
			break;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - t0.tv_sec >= 3) {
			for (unsigned i = 0; i < m->n_workers; i++)
				if (m->w[i].pid > 0)
					kill(m->w[i].pid, SIGKILL);
		}
		usleep(10000);
	}
	while (m->head)
		conn_end(m, m->head);
	login_proofs_release(m);
	quota_logins_release(&m->logins);
	if (m->bundle_fd >= 0)
		close(m->bundle_fd);
	free(m->buf);
}
