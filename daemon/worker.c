/*
 * The worker's process: its sandbox, its configuration from the parent, its loop
 * (worker.h).
 */

#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "cfgsrc.h"
#include "config.h"
#include "log.h"
#include "privsep.h"
#include "sandbox.h"
#include "session.h"
#include "tls.h"

static struct {
	unsigned idx;
	struct config cfg;
	bool have_cfg;
	struct session_env env;
	uint8_t *buf;                   /* PRIV_MAX_MSG: one packet */
	const char *path;
	int epfd;
} W;

int worker_notify(uint32_t type, uint64_t conn, const void *body, size_t len, int fd)
{
	int r = priv_send(PRIV_FD_REQ, type, conn, body, len, fd);

	if (r < 0 && r != -EAGAIN) {
		/* the parent is gone: nothing here can go on without it */
		log_error("worker", "worker %u: cannot reach the parent: %s; exiting", W.idx, strerror(-r));
		_exit(1);
	}
	return r;
}

int worker_call(uint32_t type, uint64_t conn, const void *body, size_t len, void *ret, size_t cap, size_t *ret_len,
		int *ret_fd)
{
	return worker_call_fd(type, conn, body, len, -1, ret, cap, ret_len, ret_fd);
}

int worker_call_fd(uint32_t type, uint64_t conn, const void *body, size_t len, int fd_out, void *ret, size_t cap,
		   size_t *ret_len, int *ret_fd)
{
	struct pollfd p = { PRIV_FD_REQ, POLLIN, 0 };
	struct priv_reply rp;
	struct priv_hdr h;
	int fd = -1, r;
	long n;

	if (ret_fd)
		*ret_fd = -1;
	if (ret_len)
		*ret_len = 0;
	if ((r = worker_notify(type, conn, body, len, fd_out)) < 0)
		return r;
	do
		r = poll(&p, 1, PRIV_CALL_TIMEOUT_MS);
	while (r < 0 && errno == EINTR);
	if (r == 0) {
		log_error("worker", "worker %u: the parent did not answer a %s call in %d ms; exiting", W.idx,
			  priv_type_name(type), PRIV_CALL_TIMEOUT_MS);
		_exit(1); /* replies would come out of step from here on */
	}
	n = priv_recv(PRIV_FD_REQ, W.buf, PRIV_MAX_MSG, &fd);
	if (n < 0) {
		log_error("worker", "worker %u: no reply from the parent: %s; exiting", W.idx, strerror((int)-n));
		_exit(1);
	}
	memcpy(&h, W.buf, sizeof(h));
	if (h.type != PRIV_REPLY || h.conn != conn || h.len < sizeof(rp)) {
		log_error("worker", "worker %u: a reply out of step from the parent; exiting", W.idx);
		_exit(1);
	}
	memcpy(&rp, W.buf + sizeof(h), sizeof(rp));
	if (rp.len != h.len - sizeof(rp) || rp.len > cap) {
		if (fd >= 0)
			close(fd);
		OPENSSL_cleanse(W.buf, sizeof(h) + h.len);
		return -EPROTO;
	}
	if (rp.len)
		memcpy(ret, W.buf + sizeof(h) + sizeof(rp), rp.len);
	OPENSSL_cleanse(W.buf + sizeof(h), h.len);
	if (ret_len)
		*ret_len = rp.len;
	if (ret_fd)
		*ret_fd = fd;
	else if (fd >= 0)
		close(fd);
	return rp.result;
}

/* The configuration the parent read (a bundle of its files, no credentials). */
static int load_config(int fd, uint64_t gen)
{
	char err[CONFIG_ERR_LEN];
	struct cfgsrc *src;
	struct config next;
	int r;

	src = cfgsrc_from_memfd(fd, err, sizeof(err));
	if (!src) {
		log_error("worker", "worker %u: the configuration from the parent: %s", W.idx, err);
		return -EINVAL;
	}
	memset(&next, 0, sizeof(next));
	r = config_load_src(W.path, src, CONFIG_LOAD_WORKER, &next, err);
	if (r == 0 && (r = tls_prepare_src(&next, src, err)) < 0)
		config_release(&next);
	cfgsrc_free(src);
	if (r < 0) {
		log_error("worker", "worker %u: the configuration from the parent does not load: %s", W.idx, err);
		return r;
	}
	if (W.have_cfg) {
		tls_release(&W.cfg);
		config_release(&W.cfg);
	}
	W.cfg = next;
	W.have_cfg = true;
	W.env.cfg = &W.cfg;
	W.env.gen = (unsigned)gen;
	return 0;
}

/* The command channel: everything the parent sent so far, in order. */
static void commands(void)
{
	for (;;) {
		struct priv_hdr h;
		int fd = -1;
		long n = priv_recv(PRIV_FD_CMD, W.buf, PRIV_MAX_MSG, &fd);
		const uint8_t *body = W.buf + sizeof(h);

		if (n == -EAGAIN)
			return;
		if (n == -EMFILE) {
			/* a connection that this worker has no fd left for: the parent closes it */
			memcpy(&h, W.buf, sizeof(h));
			log_error("worker", "worker %u: out of file descriptors: connection %llu dropped", W.idx,
				  (unsigned long long)h.conn);
			if (h.type == PRIV_NEW_CONN)
				worker_notify(PRIV_ENDED, h.conn, NULL, 0, -1);
			continue;
		}
		if (n < 0) {
			/* the parent died (a stop says PRIV_STOP first): the daemon crashed, and
			 * its sessions end as in a crash, their recordings unsealed */
			_exit(1);
		}
		memcpy(&h, W.buf, sizeof(h));
		switch (h.type) {
		case PRIV_CONFIG:
			if (fd < 0 || load_config(fd, h.conn) < 0)
				_exit(1); /* the parent starts another */
			close(fd);
			session_policy_reloaded(&W.env);
			break;
		case PRIV_NEW_CONN:
			if (fd < 0 || h.len != sizeof(struct priv_new_conn))
				break;
			session_adopt(&W.env, fd, h.conn, (const struct priv_new_conn *)body);
			fd = -1;
			break;
		case PRIV_NEED_TOKEN:
			session_need_token(&W.env, h.conn);
			break;
		case PRIV_VERDICT:
			if (h.len >= sizeof(struct priv_verdict)) {
				session_verdict(&W.env, h.conn, (const struct priv_verdict *)body,
						(const char *)body + sizeof(struct priv_verdict), h.len - sizeof(struct priv_verdict), fd);
				fd = -1;
			}
			break;
		case PRIV_DECIDE:
			if (h.len == sizeof(struct priv_decide))
				session_decided(&W.env, h.conn, (const struct priv_decide *)body);
			break;
		case PRIV_REMASK:
			W.env.mask_epoch++;
			break;
		case PRIV_STOP:
			session_close_all(&W.env, "daemon stopping");
			if (W.env.sqlcache)
				log_info("stop", "worker %u: statement classifications: %llu parsed, %llu from the cache", W.idx,
					 (unsigned long long)W.env.sqlcache->misses, (unsigned long long)W.env.sqlcache->hits);
			_exit(0); /* nothing else to release: the process ends */
		default:
			log_warn("worker", "worker %u: an unknown command %u from the parent was ignored", W.idx, h.type);
		}
		if (fd >= 0)
			close(fd);
	}
}

int worker_main(int argc, char **argv)
{
	struct epoll_event e;
	struct ev_source ev_cmd = { EV_COMMAND }, ev_timer = { EV_TIMER };
	struct itimerspec its = { { 1, 0 }, { 1, 0 } };
	char err[256];
	uid_t uid;
	gid_t gid;
	int tfd;

	if (argc != 7) {
		fprintf(stderr, "pgtetherd: --worker is started by pgtetherd itself\n");
		return 2;
	}
	W.idx = (unsigned)strtoul(argv[2], NULL, 10);
	uid = (uid_t)strtoul(argv[3], NULL, 10);
	gid = (gid_t)strtoul(argv[4], NULL, 10);
	log_setup(argv[5][0] == 'd' ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO, stderr);
	W.path = argv[6];
	/* Before anything is read: the sandbox (sandbox.h). */
	if (sandbox_preload(err, sizeof(err)) < 0 || sandbox_enter(uid, gid, err, sizeof(err)) < 0) {
		log_error("worker", "worker %u: %s", W.idx, err);
		return 1;
	}
	/* the parent's death ends the worker (sandbox_enter set PR_SET_PDEATHSIG) */
	if (getppid() == 1)
		return 1;
	W.buf = malloc(PRIV_MAX_MSG);
	W.epfd = epoll_create1(EPOLL_CLOEXEC);
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (!W.buf || W.epfd < 0 || tfd < 0 || timerfd_settime(tfd, 0, &its, NULL) < 0) {
		log_error("worker", "worker %u: cannot set up its loop: %s", W.idx, strerror(errno));
		return 1;
	}
	/* the first packet is the configuration */
	{
		struct pollfd p = { PRIV_FD_CMD, POLLIN, 0 };
		struct priv_hdr h;
		int fd = -1;
		long n;

		if (poll(&p, 1, 10000) != 1 || (n = priv_recv(PRIV_FD_CMD, W.buf, PRIV_MAX_MSG, &fd)) < 0)
			return 1;
		memcpy(&h, W.buf, sizeof(h));
		if (h.type != PRIV_CONFIG || fd < 0 || load_config(fd, h.conn) < 0)
			return 1;
		close(fd);
	}
	W.env.epfd = W.epfd;
	W.env.sqlcache = calloc(1, sizeof(*W.env.sqlcache));
	W.env.worker = true;
	{
		/* denied statements are sent upstream as this word plus a number: unguessable */
		unsigned char rnd[8];

		if (RAND_bytes(rnd, sizeof(rnd)) != 1)
			return 1;
		snprintf(W.env.sentinel_tag, sizeof(W.env.sentinel_tag), "pgtether_denied_%02x%02x%02x%02x%02x%02x%02x%02x_",
			 rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
	}
	e = (struct epoll_event){ .events = EPOLLIN, .data.ptr = &ev_cmd };
	if (epoll_ctl(W.epfd, EPOLL_CTL_ADD, PRIV_FD_CMD, &e) < 0)
		return 1;
	e = (struct epoll_event){ .events = EPOLLIN, .data.ptr = &ev_timer };
	if (epoll_ctl(W.epfd, EPOLL_CTL_ADD, tfd, &e) < 0)
		return 1;
	/* a non-blocking command channel: the loop reads it to the end */
	{
		int fl = fcntl(PRIV_FD_CMD, F_GETFL);

		fcntl(PRIV_FD_CMD, F_SETFL, fl | O_NONBLOCK);
	}
	worker_notify(PRIV_READY, 0, NULL, 0, -1);
	for (;;) {
		struct epoll_event events[256];
		int n = epoll_wait(W.epfd, events, 256, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_error("worker", "worker %u: epoll_wait: %s", W.idx, strerror(errno));
			return 1;
		}
		for (int i = 0; i < n; i++) {
			struct ev_source *ev = events[i].data.ptr;

			switch (ev->kind) {
			case EV_COMMAND:
				commands();
				break;
			case EV_TIMER: {
				uint64_t ticks;

				if (read(tfd, &ticks, sizeof(ticks)) > 0) {
					session_tick(&W.env);
					session_stats(&W.env);
				}
				break;
			}
			case EV_SESSION:
				session_event(&W.env, (struct session_end *)ev, events[i].events);
				break;
			default:
				break;
			}
		}
		session_reap(&W.env);
	}
}
