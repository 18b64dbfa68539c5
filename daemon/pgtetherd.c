/*
 * pgtetherd: loads and attaches the interception programs, then runs the one epoll
 * loop that accepts redirected connections, serves the control socket and handles
 * signals. Start-up order matters: the listener exists before any cgroup is attached,
 * so no workload is ever redirected to a port nobody listens on while we start.
 */
#include <dirent.h>
#include <fcntl.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "attest.h"
#include "cgroup.h"
#include "config.h"
#include "control.h"
#include "escape.h"

#include "intercept.h"
#include "log.h"
#include "notify.h"
#include "cfgsrc.h"
#include "monitor.h"
#include "sandbox.h"
#include "session.h"
#include "worker.h"
#include "tls.h"
#include "sockdiag.h"

struct daemon {
	struct config cfg;
	struct intercept ic;
	struct sockdiag sd;
	struct monitor mon;
	bool debug;
	char cgroup_mount[PATH_MAX];
	uint64_t own_cgroup_id;
	int epfd;
	struct ev_source ev_listener, ev_control, ev_signal, ev_timer, ev_proofs, ev_fs;
	int lfd, ctlfd, sigfd, tfd;
	gid_t approvers_gid;            /* approvers_group, or (gid_t)-1 */
	/* accept() failing for lack of fds or memory: the listener is out of the epoll
	 * set until the next timer tick, rather than waking the loop at once again */
	bool accept_paused;
	struct quota_episode accept_starved;
	int accept_errno;                /* of the episode's first failure */
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: pgtetherd [-c FILE] [-n] [-v]\n"
		"  -c FILE  configuration (default %s)\n"
		"  -n       check the configuration and exit\n"
		"  -v       debug logging\n",
		CONFIG_DEFAULT_PATH);
}

static int listen_on(const struct addr *a, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t len = addr_to_sockaddr(a, &ss);
	char buf[ADDR_STRLEN];
	int fd, one = 1;

	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    bind(fd, (struct sockaddr *)&ss, len) == -1 || listen(fd, 4096) == -1) {
		int r = -errno;

		snprintf(err, errlen, "cannot listen on %s: %s", addr_format(a, buf), strerror(errno));
		if (fd != -1)
			close(fd);
		return r;
	}
	return fd;
}

static int own_cgroup(struct daemon *d)
{
	char text[4096], path[PATH_MAX];
	FILE *f = fopen("/proc/self/cgroup", "re");
	size_t n;

	if (!f)
		return -errno;
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	if (cgroup_from_proc_text(text, path, sizeof(path)) < 0)
		return -ENOENT;
	return cgroup_id(d->cgroup_mount, path, &d->own_cgroup_id);
}

/* ---- control handlers --------------------------------------------------------- */

static int on_attach(void *arg, const char *cgroup, char *err)
{
	struct daemon *d = arg;
	char path[PATH_MAX];
	int r;

	if (config_cgroup_path(cgroup, path, sizeof(path)) < 0) {
		snprintf(err, CONTROL_ERR_LEN, "invalid cgroup path '%s': use an absolute path below the cgroup2 mount, e.g. /ci", cgroup);
		return -EINVAL;
	}
	r = intercept_attach(&d->ic, path, err);
	if (r == 0)
		log_info("attach", "attached to cgroup %s", path);
	return r;
}

static int on_detach(void *arg, const char *cgroup, char *err)
{
	struct daemon *d = arg;
	char path[PATH_MAX];
	int r;

	if (config_cgroup_path(cgroup, path, sizeof(path)) < 0) {
		snprintf(err, CONTROL_ERR_LEN, "invalid cgroup path '%s'", cgroup);
		return -EINVAL;
	}
	r = intercept_detach(&d->ic, path);
	if (r == -ENOENT)
		snprintf(err, CONTROL_ERR_LEN, "cgroup %s is not attached", path);
	else if (r == 0)
		log_info("detach", "detached from cgroup %s", path);
	return r;
}

static json_t *on_status(void *arg)
{
	struct daemon *d = arg;
	json_t *st, *att = json_array(), *conns;
	char buf[ADDR_STRLEN];

	for (size_t i = 0; i < d->ic.n_att; i++)
		json_array_append_new(att, json_pack("{s:s, s:I}", "cgroup", d->ic.att[i].path,
						     "cgroup_id", (json_int_t)d->ic.att[i].cgroup_id));
	conns = monitor_status(&d->mon);
	st = json_pack("{s:s, s:s, s:s, s:o, s:o, s:o}", "listen", addr_format(&d->cfg.listen, buf),
		       "fail_mode", d->cfg.fail_mode == CONFIG_FAIL_OPEN ? "open" : "closed",
		       "bpffs_dir", d->cfg.bpffs_dir, "attached", att, "connections", conns, "workers",
		       monitor_workers(&d->mon));
	return st;
}

static int reload(struct daemon *d, char *why);

static json_t *on_approvals(void *arg)
{
	struct daemon *d = arg;

	return monitor_approvals(&d->mon);
}

/* The approver: the control socket's peer, with its login uid (who ran sudo). */
static int on_decide(void *arg, uint64_t id, bool approve, const char *reason, const struct control_peer *peer,
		     char *err)
{
	struct daemon *d = arg;
	struct session_approver who = { (uint32_t)peer->uid, peer->loginuid, peer->root };
	char by[128];

	if (peer->loginuid != CONTROL_NO_LOGINUID)
		snprintf(by, sizeof(by), "uid %u (login uid %u, pid %d)", (unsigned)peer->uid, peer->loginuid, (int)peer->pid);
	else
		snprintf(by, sizeof(by), "uid %u (pid %d)", (unsigned)peer->uid, (int)peer->pid);
	return monitor_decide(&d->mon, id, approve, reason, by, &who, err, CONTROL_ERR_LEN);
}

/* pgtether reload: as SIGHUP, but the caller learns the outcome. */
static int on_reload(void *arg, char *err)
{
	char why[CONFIG_ERR_LEN];

	if (reload(arg, why) == 0)
		return 0;
	snprintf(err, CONTROL_ERR_LEN, "%s; the running configuration stays", why);
	return -EINVAL;
}

/* ---- start-up ----------------------------------------------------------------- */

static void on_adopt(const char *path, int removed, void *arg)
{
	(void)arg;
	if (removed)
		log_warn("adopt", "removed the pins of cgroup %s: it no longer exists or was recreated", path);
	else
		log_info("adopt", "re-adopted the pinned attachment of cgroup %s", path);
}

/* The targets trie and the config entry the programs read. */
static int write_maps(struct daemon *d, const struct config *cfg)
{
	struct pgt_config bc;
	int r;

	memset(&bc, 0, sizeof(bc));
	bc.flags = PGT_CONFIG_ACTIVE | (cfg->fail_mode == CONFIG_FAIL_OPEN ? PGT_CONFIG_FAIL_OPEN : 0);
	bc.mark = cfg->socket_mark;
	bc.daemon_cgroup_id = d->own_cgroup_id;
	memcpy(&bc.listen_ip4, cfg->listen.ip + 12, 4);
	bc.listen_port = cfg->listen.port;
	if ((r = intercept_set_targets(&d->ic, cfg->targets, cfg->n_targets)) < 0)
		return r;
	return intercept_set_config(&d->ic, &bc);
}

static bool listed(const struct config *cfg, const char *path)
{
	for (size_t i = 0; cfg && i < cfg->n_cgroups; i++)
		if (strcmp(cfg->cgroups[i], path) == 0)
			return true;
	return false;
}

/*
 * Attaches the cgroups `cfg` lists; with `old` (a reload), detaches those the old
 * configuration listed and the new one does not. Attachments made with
 * `pgtether attach` are left alone either way.
 */
static void attach_configured(struct daemon *d, const struct config *cfg, const struct config *old)
{
	char err[INTERCEPT_ERR_LEN];
	int r;

	for (size_t i = 0; old && i < old->n_cgroups; i++) {
		if (listed(cfg, old->cgroups[i]))
			continue;
		if (intercept_detach(&d->ic, old->cgroups[i]) == 0)
			log_info("detach", "detached from cgroup %s: no longer in %s", old->cgroups[i], cfg->path);
	}
	for (size_t i = 0; i < cfg->n_cgroups; i++) {
		r = intercept_attach(&d->ic, cfg->cgroups[i], err);
		if (r == 0)
			log_info("attach", "attached to cgroup %s", cfg->cgroups[i]);
		else if (r < 0)
			/* A runner's cgroup may not exist yet; `pgtether attach` adds it later. */
			log_error("attach", "%s; connections from it are not intercepted", err);
	}
}

static bool same_str(const char *a, const char *b)
{
	return strcmp(a, b) == 0;
}

/*
 * SIGHUP: read the file again and swap in the new snapshot whole, or keep the running
 * one and say why. Keys that the running daemon cannot change in place (the listener,
 * the pin directory, the control socket, the mark) make a reload refuse.
 */
/* Returns 0, or -1 with why (CONFIG_ERR_LEN bytes) when the running configuration stays. */
static int reload(struct daemon *d, char *why)
{
	char err[CONFIG_ERR_LEN];
	struct config next;
	const char *fixed = NULL;
	int r, bundle = -1;
	struct cfgsrc *src = cfgsrc_disk();

	notify_reloading();
	if (!src || config_load_src(d->cfg.path, src, 0, &next, err) < 0) {
		if (!src)
			snprintf(err, sizeof(err), "out of memory");
		log_error("reload", "%s; keeping the running configuration", err);
		snprintf(why, CONFIG_ERR_LEN, "%s", err);
		cfgsrc_free(src);
		notify_send("READY=1");
		return -1;
	}
	if (tls_prepare_src(&next, src, err) < 0 || cfgsrc_to_memfd(src, &bundle, err, sizeof(err)) < 0) {
		cfgsrc_free(src);
		log_error("reload", "%s: %s; keeping the running configuration", d->cfg.path, err);
		snprintf(why, CONFIG_ERR_LEN, "%s: %s", d->cfg.path, err);
		tls_release(&next);
		config_release(&next);
		notify_send("READY=1");
		return -1;
	}
	if (memcmp(&next.listen, &d->cfg.listen, sizeof(next.listen)) != 0)
		fixed = "listen";
	else if (!same_str(next.bpffs_dir, d->cfg.bpffs_dir))
		fixed = "bpffs_dir";
	else if (!same_str(next.control_socket, d->cfg.control_socket))
		fixed = "control_socket";
	else if (!same_str(next.approvers_group ? next.approvers_group : "", d->cfg.approvers_group ? d->cfg.approvers_group : ""))
		fixed = "approvers_group"; /* the socket's group is set when it is made */
	else if (next.socket_mark != d->cfg.socket_mark)
		fixed = "socket_mark";
	else if (next.workers != d->cfg.workers)
		fixed = "workers";
	else if (!same_str(next.worker_user, d->cfg.worker_user))
		fixed = "worker_user";
	cfgsrc_free(src);
	if (fixed) {
		close(bundle);
		log_error("reload", "%s: '%s' changed, which needs a restart of pgtetherd; keeping the running configuration",
			  d->cfg.path, fixed);
		snprintf(why, CONFIG_ERR_LEN, "%s: '%s' changed, which needs a restart of pgtetherd", d->cfg.path, fixed);
		tls_release(&next);
		config_release(&next);
		notify_send("READY=1");
		return -1;
	}
	if ((r = write_maps(d, &next)) < 0) {
		log_error("reload", "cannot write the BPF maps: %s; the running configuration stays in force", strerror(-r));
		snprintf(why, CONFIG_ERR_LEN, "cannot write the BPF maps: %s", strerror(-r));
		write_maps(d, &d->cfg);
		close(bundle);
		tls_release(&next);
		config_release(&next);
		notify_send("READY=1");
		return -1;
	}
	attach_configured(d, &next, &d->cfg);
	tls_release(&d->cfg);
	config_release(&d->cfg);
	d->cfg = next;
	monitor_reloaded(&d->mon, bundle); /* the workers swap to the same snapshot */
	log_info("reload", "reloaded %s: %zu target(s), %zu configured cgroup(s), fail_mode %s, %zu policy rule(s), %zu trusted issuer(s)",
		 d->cfg.path, d->cfg.n_targets, d->cfg.n_cgroups,
		 d->cfg.fail_mode == CONFIG_FAIL_OPEN ? "open" : "closed", d->cfg.policy.n, d->cfg.issuers.n);
	notify_send("READY=1");
	return 0;
}

/*
 * Every session holds up to two fds, so the soft RLIMIT_NOFILE (1024 by default)
 * would be reached long before max_logins: raise it to the hard limit (the unit's
 * LimitNOFILE) and say what it is. Not fatal: the caps and the accept back-off keep
 * a low limit from doing more than refusing connections.
 */
static void raise_fd_limit(const struct config *cfg)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1) {
		log_warn("start", "cannot read RLIMIT_NOFILE: %s", strerror(errno));
		return;
	}
	if (rl.rlim_cur < rl.rlim_max) {
		struct rlimit want = { rl.rlim_max, rl.rlim_max };

		if (setrlimit(RLIMIT_NOFILE, &want) == 0)
			rl = want;
		else
			log_warn("start", "cannot raise the file descriptor limit from %llu to %llu: %s",
				 (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max, strerror(errno));
	}
	log_info("start", "file descriptor limit %llu (max_logins %u, max_logins_per_cgroup %u, memory_budget %zu)",
		 (unsigned long long)rl.rlim_cur, cfg->max_logins, cfg->max_logins_per_cgroup, cfg->memory_budget);
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < 2ull * cfg->max_logins + 64)
		log_warn("start", "the file descriptor limit %llu is below what max_logins %u connections still logging in "
			 "can hold (two each): raise LimitNOFILE or lower max_logins",
			 (unsigned long long)rl.rlim_cur, cfg->max_logins);
}

/*
 * accept4() failed with EMFILE, ENFILE, ENOBUFS or ENOMEM. The connection stays in
 * the listen queue and the listener stays readable: watching it would wake the loop
 * at once, for ever. Take it out of the epoll set until the next tick (at most a
 * second) and log once per episode; connections wait in the queue meanwhile, and
 * login_timeout frees the fds of those that never finish logging in.
 */
static void accept_pause(struct daemon *d, int err)
{
	struct epoll_event e = { .events = 0, .data.ptr = &d->ev_listener };
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (quota_episode_hit(&d->accept_starved, now.tv_sec)) {
		d->accept_errno = err;
		log_error("accept", "cannot accept connections: %s (%zu sessions open); pausing the listener, "
			  "retrying every second; raise LimitNOFILE or lower max_logins",
			  strerror(err), d->mon.n_conns);
	}
	if (epoll_ctl(d->epfd, EPOLL_CTL_MOD, d->lfd, &e) == -1)
		log_error("accept", "cannot pause the listener: %s", strerror(errno));
	d->accept_paused = true;
}

/* From the timer: the listener is watched again; the episode ends once accepts work. */
static void accept_resume(struct daemon *d)
{
	struct epoll_event e = { .events = EPOLLIN, .data.ptr = &d->ev_listener };
	struct timespec now;
	uint64_t count;
	time_t secs;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (d->accept_paused) {
		if (epoll_ctl(d->epfd, EPOLL_CTL_MOD, d->lfd, &e) == -1)
			log_error("accept", "cannot watch the listener again: %s", strerror(errno));
		d->accept_paused = false;
	} else if (quota_episode_over(&d->accept_starved, now.tv_sec, 1, &count, &secs)) {
		log_info("accept", "accepting connections again after %lld s: %llu pause(s) for %s",
			 (long long)secs, (unsigned long long)count, strerror(d->accept_errno));
	}
}

static int add_watch(int epfd, int fd, struct ev_source *ev)
{
	struct epoll_event e = { .events = EPOLLIN, .data.ptr = ev };

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e);
}

static int start(struct daemon *d, int bundle)
{
	char err[INTERCEPT_ERR_LEN];
	struct itimerspec its = { { 1, 0 }, { 1, 0 } };
	struct timespec listen_at;
	sigset_t mask;
	int r;

	if ((r = cgroup_find_mount(d->cgroup_mount, sizeof(d->cgroup_mount))) < 0) {
		log_error("start", "no cgroup2 filesystem in /proc/self/mountinfo: pgtether needs the unified hierarchy (mount -t cgroup2 none /sys/fs/cgroup/unified)");
		return r;
	}
	if ((r = own_cgroup(d)) < 0) {
		log_error("start", "cannot find the daemon's own cgroup: %s", strerror(-r));
		return r;
	}
	/* no connection made before this can wait in the listen queue about to exist */
	if (clock_gettime(CLOCK_BOOTTIME, &listen_at) < 0)
		return -errno;
	d->lfd = listen_on(&d->cfg.listen, err, sizeof(err));
	if (d->lfd < 0) {
		log_error("start", "%s", err);
		return d->lfd;
	}
	if ((r = sockdiag_open(&d->sd)) < 0) {
		log_error("start", "cannot open NETLINK_SOCK_DIAG: %s", strerror(-r));
		return r;
	}
	d->approvers_gid = (gid_t)-1;
	if (d->cfg.approvers_group && (r = control_group_gid(d->cfg.approvers_group, &d->approvers_gid, err)) < 0) {
		log_error("start", "%s", err);
		return r;
	}
	d->ctlfd = control_listen(d->cfg.control_socket, d->approvers_gid, err);
	if (d->ctlfd < 0) {
		log_error("start", "%s", err);
		return d->ctlfd;
	}
	if ((r = intercept_open(&d->ic, d->cfg.bpffs_dir, d->cgroup_mount, err)) < 0) {
		log_error("start", "%s", err);
		return r;
	}
	if ((r = write_maps(d, &d->cfg)) < 0) {
		log_error("start", "cannot write the BPF maps: %s", strerror(-r));
		return r;
	}
	/* Records an earlier daemon left (pinned with the map) of connections its
	 * listener never accepted can never be taken: the listener is gone. */
	{
		uint64_t before = (uint64_t)listen_at.tv_sec * 1000000000ull + (uint64_t)listen_at.tv_nsec;
		size_t closed, open = intercept_expire(&d->ic, before, before, &closed);

		if (open + closed)
			log_info("origins", "deleted %zu origin record(s) an earlier pgtetherd's listener never accepted",
				 open + closed);
	}
	/* the count is pinned with the map: what an earlier daemon saw is not news */
	if (intercept_origins_full(&d->ic, &d->mon.origins_full_seen) < 0)
		d->mon.origins_full_seen = 0;
	if ((r = intercept_adopt(&d->ic, on_adopt, NULL, err)) < 0)
		log_error("adopt", "%s", err);
	attach_configured(d, &d->cfg, NULL);

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	d->sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	d->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	d->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (d->sigfd == -1 || d->tfd == -1 || d->epfd == -1 ||
	    timerfd_settime(d->tfd, 0, &its, NULL) == -1) {
		log_error("start", "cannot set up the event loop: %s", strerror(errno));
		return -errno;
	}
	d->ev_listener.kind = EV_LISTENER;
	d->ev_control.kind = EV_CONTROL;
	d->ev_signal.kind = EV_SIGNAL;
	d->ev_timer.kind = EV_TIMER;
	d->ev_proofs.kind = EV_PROOFS;
	d->ev_fs.kind = EV_FS;
	if ((r = attest_fs_start(&d->mon.fs, ATTEST_FS_QUEUE)) < 0) {
		log_error("start", "cannot start the file-system threads: %s", strerror(-r));
		return r;
	}
	if ((r = scrampool_start(&d->mon.proofs, MON_PROOFS_MAX)) < 0) {
		log_error("start", "cannot start the SCRAM proof thread: %s", strerror(-r));
		return r;
	}
	if (add_watch(d->epfd, scrampool_fd(d->mon.proofs), &d->ev_proofs) == -1 ||
	    add_watch(d->epfd, attest_fs_fd(d->mon.fs), &d->ev_fs) == -1 ||
	    add_watch(d->epfd, d->lfd, &d->ev_listener) == -1 ||
	    add_watch(d->epfd, d->ctlfd, &d->ev_control) == -1 ||
	    add_watch(d->epfd, d->sigfd, &d->ev_signal) == -1 ||
	    add_watch(d->epfd, d->tfd, &d->ev_timer) == -1) {
		log_error("start", "epoll: %s", strerror(errno));
		return -errno;
	}
	d->mon.ic = &d->ic;
	d->mon.sd = &d->sd;
	d->mon.cfg = &d->cfg;
	d->mon.epfd = d->epfd;
	d->mon.debug = d->debug;
	{
		const char *user = d->cfg.worker_user;

		if ((r = sandbox_user(user, &d->mon.wuid, &d->mon.wgid, err, sizeof(err))) < 0) {
			log_error("start", "%s", err);
			return r;
		}
	}
	d->mon.exe_fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (d->mon.exe_fd < 0) {
		log_error("start", "cannot open the daemon's own executable to start workers: %s", strerror(errno));
		return -errno;
	}
	if ((r = monitor_start(&d->mon, bundle)) < 0)
		return r;
	return 0;
}

/* Returns when a terminating signal arrives. */
static void run(struct daemon *d)
{
	const struct control_handlers h = { d, d->approvers_gid != (gid_t)-1, d->approvers_gid, on_attach, on_detach,
					    on_status, on_reload, on_approvals, on_decide };
	struct epoll_event events[256];

	for (;;) {
		int n = epoll_wait(d->epfd, events, 256, -1);

		if (n == -1) {
			if (errno == EINTR)
				continue;
			log_error("loop", "epoll_wait: %s", strerror(errno));
			return;
		}
		for (int i = 0; i < n; i++) {
			struct ev_source *ev = events[i].data.ptr;

			switch (ev->kind) {
			case EV_LISTENER: {
				int r = monitor_accept(&d->mon, d->lfd);

				if (r < 0)
					accept_pause(d, -r);
				break;
			}
			case EV_CONTROL:
				control_serve(d->ctlfd, &h);
				break;
			case EV_TIMER: {
				uint64_t ticks;

				if (read(d->tfd, &ticks, sizeof(ticks)) > 0) {
					monitor_tick(&d->mon);
					accept_resume(d);
				}
				break;
			}
			case EV_SIGNAL: {
				struct signalfd_siginfo si;

				while (read(d->sigfd, &si, sizeof(si)) == sizeof(si)) {
					if (si.ssi_signo == SIGCHLD) {
						monitor_children(&d->mon);
						continue;
					}
					if (si.ssi_signo == SIGHUP) {
						char why[CONFIG_ERR_LEN];

						reload(d, why);
						continue;
					}
					log_info("stop", "signal %s: stopping; attachments stay pinned (fail_mode %s)",
						 strsignal((int)si.ssi_signo),
						 d->cfg.fail_mode == CONFIG_FAIL_OPEN ? "open" : "closed");
					return;
				}
				break;
			}
			case EV_PROOFS:
				monitor_proofs_done(&d->mon);
				break;
			case EV_FS:
				monitor_fs_done(&d->mon);
				break;
			case EV_WORKER: {
				struct mon_worker *w = (struct mon_worker *)ev;

				monitor_worker_event(&d->mon, w, events[i].events);
				break;
			}
			default:
				break;
			}
		}
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", no_argument, NULL, 'n' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = CONFIG_DEFAULT_PATH;
	struct daemon d;
	char err[CONFIG_ERR_LEN];
	int check = 0, c, r, bundle = -1;
	unsigned stuck = 0;
	struct cfgsrc *src;

	if (argc > 1 && strcmp(argv[1], "--worker") == 0)
		return worker_main(argc, argv);
	memset(&d, 0, sizeof(d));
	d.lfd = d.ctlfd = d.sigfd = d.tfd = d.epfd = -1;
	log_setup(LOG_LEVEL_INFO, stderr);
	while ((c = getopt_long(argc, argv, "c:nvh", opts, NULL)) != -1) {
		switch (c) {
		case 'c': path = optarg; break;
		case 'n': check = 1; break;
		case 'v': log_setup(LOG_LEVEL_DEBUG, stderr); d.debug = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	/* every file this load reads is kept for the workers (not the credentials) */
	src = cfgsrc_disk();
	if (!src || config_load_src(path, src, 0, &d.cfg, err) < 0) {
		fprintf(stderr, "pgtetherd: %s\n", src ? err : "out of memory");
		cfgsrc_free(src);
		return 1;
	}
	if (tls_prepare_src(&d.cfg, src, err) < 0) {
		fprintf(stderr, "pgtetherd: %s: %s\n", path, err);
		cfgsrc_free(src);
		tls_release(&d.cfg);
		config_release(&d.cfg);
		return 1;
	}
	if (!check && cfgsrc_to_memfd(src, &bundle, err, sizeof(err)) < 0) {
		fprintf(stderr, "pgtetherd: %s\n", err);
		cfgsrc_free(src);
		tls_release(&d.cfg);
		config_release(&d.cfg);
		return 1;
	}
	cfgsrc_free(src);
	if (check) {
		tls_release(&d.cfg);
		printf("pgtetherd: configuration %s is valid (%zu policy rule(s) from %s, %zu trusted issuer(s))\n", path,
		       d.cfg.policy.n, d.cfg.policy_dir, d.cfg.issuers.n);
		config_release(&d.cfg);
		return 0;
	}

	raise_fd_limit(&d.cfg);
	d.mon.bundle_fd = -1;
	r = start(&d, bundle);
	if (r == 0) {
		char buf[ADDR_STRLEN];

		log_info("ready", "listening on %s, %zu cgroup(s) attached, fail_mode %s, %zu policy rule(s) from %s, %zu trusted issuer(s)",
			 addr_format(&d.cfg.listen, buf), d.ic.n_att,
			 d.cfg.fail_mode == CONFIG_FAIL_OPEN ? "open" : "closed", d.cfg.policy.n, d.cfg.policy_dir,
			 d.cfg.issuers.n);
		if (d.cfg.policy.n == 0)
			log_warn("policy", "%s holds no policy rules: every intercepted connection is refused (default deny)",
				 d.cfg.policy_dir);
		/* Only now: the listener is up and every configured cgroup is attached, so a
		 * service ordered after pgtether finds interception live. */
		notify_send("READY=1");
		run(&d);
		notify_send("STOPPING=1");
	}
	monitor_stop(&d.mon); /* the workers end their sessions, each client told why */
	stuck = attest_fs_free(d.mon.fs);
	scrampool_free(d.mon.proofs);
	if (d.lfd >= 0)
		close(d.lfd);
	if (d.ctlfd >= 0) {
		close(d.ctlfd);
		unlink(d.cfg.control_socket);
	}
	if (d.sigfd >= 0)
		close(d.sigfd);
	if (d.tfd >= 0)
		close(d.tfd);
	if (d.epfd >= 0)
		close(d.epfd);
	intercept_close(&d.ic);
	sockdiag_close(&d.sd);
	tls_release(&d.cfg);
	config_release(&d.cfg);
	/* A thread still waiting in a file system (a FUSE server that never answers) is
	 * ended by the kernel at _exit(); exit() would run the atexit handlers first, and
	 * a sanitizer's leak check there stops every thread and waits for one that cannot
	 * stop. */
	if (stuck) {
		log_warn("stop", "%u thread(s) still wait for a filesystem that does not answer (a FUSE server?); not waiting for them",
			 stuck);
		_exit(r == 0 ? 0 : 1);
	}
	return r == 0 ? 0 : 1;
}
