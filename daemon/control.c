/*
 * Control socket server and client (see control.h for the protocol).
 */
#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <grp.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

static int make_addr(const char *path, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun->sun_path))
		return -ENAMETOOLONG;
	strcpy(sun->sun_path, path);
	return 0;
}

int control_group_gid(const char *group, gid_t *ret, char *err)
{
	struct group gr, *found = NULL;
	char buf[16384], *end;
	unsigned long n = strtoul(group, &end, 10);
	int r;

	if (group[0] && !*end) {
		*ret = (gid_t)n;
	} else {
		r = getgrnam_r(group, &gr, buf, sizeof(buf), &found);
		if (!found) {
			snprintf(err, CONTROL_ERR_LEN, "approvers_group '%s': %s", group,
				 r ? strerror(r) : "no such group (create it with groupadd, or fix pgtether.json)");
			return r ? -r : -ENOENT;
		}
		*ret = found->gr_gid;
	}
	if (*ret == 0) {
		snprintf(err, CONTROL_ERR_LEN, "approvers_group '%s' is group 0: every member of root's group would approve; use a group of its own", group);
		return -EINVAL;
	}
	return 0;
}

/* With approvers, only root may change what is in the socket's directory, or the
 * socket could be swapped for another's; the group must be able to reach it. */
static int check_dir(const char *dir, gid_t approvers, char *err)
{
	struct stat st;

	if (stat(dir, &st) == -1) {
		snprintf(err, CONTROL_ERR_LEN, "cannot stat %s: %s", dir, strerror(errno));
		return -errno;
	}
	if (st.st_uid != 0 || ((st.st_mode & 0022) && !(st.st_mode & S_ISVTX))) {
		snprintf(err, CONTROL_ERR_LEN, "%s, the control socket's directory, must be root's and writable by root alone (mode %04o, owner uid %u) when approvers_group is set",
			 dir, (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid);
		return -EPERM;
	}
	if (!(st.st_mode & S_IXOTH) && !(st.st_gid == approvers && (st.st_mode & S_IXGRP))) {
		snprintf(err, CONTROL_ERR_LEN, "%s, the control socket's directory, is not searchable by approvers_group (mode %04o): chmod o+x it, or chgrp it to the group and chmod g+x",
			 dir, (unsigned)(st.st_mode & 07777));
		return -EACCES;
	}
	return 0;
}

int control_listen(const char *path, gid_t approvers, char *err)
{
	struct sockaddr_un sun;
	char dir[PATH_MAX];
	char *slash;
	int fd, r;

	if ((r = make_addr(path, &sun)) < 0) {
		snprintf(err, CONTROL_ERR_LEN, "control socket path '%s' is too long", path);
		return r;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) == -1 && errno != EEXIST) {
			r = -errno;
			snprintf(err, CONTROL_ERR_LEN, "cannot create %s: %s", dir, strerror(errno));
			return r;
		}
		if (approvers != (gid_t)-1 && (r = check_dir(dir, approvers, err)) < 0)
			return r;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		r = -errno;
		snprintf(err, CONTROL_ERR_LEN, "socket: %s", strerror(errno));
		return r;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
		close(fd);
		snprintf(err, CONTROL_ERR_LEN, "another pgtetherd answers on %s; stop it first", path);
		return -EADDRINUSE;
	}
	close(fd);
	unlink(path); /* stale: nobody answered */

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		r = -errno;
		snprintf(err, CONTROL_ERR_LEN, "socket: %s", strerror(errno));
		return r;
	}
	/* 0600 from the start: no window where another user could connect. */
	mode_t old = umask(0177);

	r = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	/* then the approvers' group may connect, before anyone could (not listening yet).
	 * Without CAP_CHOWN (the shipped unit) root may give the socket only to a group
	 * it is a member of: SupplementaryGroups= in the unit. */
	if (r == 0 && approvers != (gid_t)-1 && (chown(path, 0, approvers) == -1 || chmod(path, 0660) == -1)) {
		r = -errno;
		snprintf(err, CONTROL_ERR_LEN, "cannot give %s to approvers_group (gid %u): %s%s", path, (unsigned)approvers,
			 strerror(errno), errno == EPERM ? " (under systemd, add SupplementaryGroups= with that group to pgtether.service)" : "");
		close(fd);
		unlink(path);
		return r;
	}
	if (r == -1 || listen(fd, 64) == -1) {
		r = -errno;
		snprintf(err, CONTROL_ERR_LEN, "cannot listen on %s: %s", path, strerror(errno));
		close(fd);
		return r;
	}
	return fd;
}

static void reply(int fd, json_t *obj)
{
	char *text = json_dumps(obj, JSON_COMPACT);
	size_t len, off = 0;

	json_decref(obj);
	if (!text)
		return;
	len = strlen(text);
	text[len++] = '\n'; /* overwrites the NUL: text is not used as a string below */
	while (off < len) {
		ssize_t n = send(fd, text + off, len - off, MSG_NOSIGNAL);

		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			break;
		}
		off += (size_t)n;
	}
	free(text);
}

static json_t *error_reply(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static json_t *error_reply(const char *fmt, ...)
{
	char msg[CONTROL_ERR_LEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return json_pack("{s:b, s:s}", "ok", 0, "error", msg);
}

static json_t *dispatch(const struct control_handlers *h, json_t *req, const struct control_peer *peer)
{
	const char *cmd = json_string_value(json_object_get(req, "cmd"));
	char err[CONTROL_ERR_LEN] = "";
	int r;

	if (!cmd)
		return error_reply("request without \"cmd\"");
	if (!peer->root && strcmp(cmd, "approvals") && strcmp(cmd, "approve") && strcmp(cmd, "deny"))
		return error_reply("permission denied: members of approvers_group may list, approve and deny requests; '%.32s' is for root",
				   cmd);
	if (strcmp(cmd, "status") == 0) {
		json_t *st = h->status(h->arg);

		if (!st)
			return error_reply("out of memory");
		json_object_set_new(st, "ok", json_true());
		return st;
	}
	if (strcmp(cmd, "attach") == 0 || strcmp(cmd, "detach") == 0) {
		const char *cg = json_string_value(json_object_get(req, "cgroup"));
		bool attach = cmd[0] == 'a';

		if (!cg)
			return error_reply("%s needs \"cgroup\"", cmd);
		r = attach ? h->attach(h->arg, cg, err) : h->detach(h->arg, cg, err);
		if (r < 0)
			return error_reply("%s", err[0] ? err : strerror(-r));
		return json_pack("{s:b, s:b}", "ok", 1, "changed", r == 0);
	}
	if (strcmp(cmd, "approvals") == 0) {
		json_t *list = h->approvals(h->arg);

		return list ? json_pack("{s:b, s:o}", "ok", 1, "requests", list) : error_reply("out of memory");
	}
	if (strcmp(cmd, "approve") == 0 || strcmp(cmd, "deny") == 0) {
		json_t *id = json_object_get(req, "request");
		const char *reason = json_string_value(json_object_get(req, "reason"));

		if (!json_is_integer(id) || json_integer_value(id) <= 0)
			return error_reply("%s needs \"request\": a request number", cmd);
		if ((r = h->decide(h->arg, (uint64_t)json_integer_value(id), cmd[0] == 'a', reason, peer, err)) < 0)
			return error_reply("%s", err[0] ? err : strerror(-r));
		return json_pack("{s:b}", "ok", 1);
	}
	if (strcmp(cmd, "reload") == 0) {
		if ((r = h->reload(h->arg, err)) < 0)
			return error_reply("%s", err[0] ? err : strerror(-r));
		return json_pack("{s:b}", "ok", 1);
	}
	return error_reply("unknown command '%s'", cmd);
}

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77 /* Linux 6.5 */
#endif

/*
 * The login uid of the peer: read from /proc/PID while a pidfd pins the process
 * (SO_PEERPIDFD, the very process that connected; or pidfd_open on older kernels),
 * and trusted only if that process is still alive after the read, so a recycled PID
 * cannot lend its login uid.
 */
static uint32_t peer_loginuid(int fd, pid_t pid)
{
	socklen_t len = sizeof(int);
	char path[64], buf[16] = "";
	int pidfd = -1, f;
	ssize_t n;
	unsigned long v;
	char *end;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) == -1)
		pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		return CONTROL_NO_LOGINUID;
	snprintf(path, sizeof(path), "/proc/%d/loginuid", (int)pid);
	f = open(path, O_RDONLY | O_CLOEXEC);
	n = f >= 0 ? read(f, buf, sizeof(buf) - 1) : -1;
	if (f >= 0)
		close(f);
	if (syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) != 0)
		n = -1; /* gone: the PID may name another process now */
	close(pidfd);
	if (n <= 0)
		return CONTROL_NO_LOGINUID;
	buf[n] = '\0';
	v = strtoul(buf, &end, 10);
	return end != buf && v < CONTROL_NO_LOGINUID ? (uint32_t)v : CONTROL_NO_LOGINUID;
}

/* Whether the peer is in group gid: its gid, or one of its supplementary groups as
 * the kernel had them at connect() (SO_PEERGROUPS, Linux 4.13). */
static bool peer_in_group(int fd, const struct ucred *cred, gid_t gid)
{
	gid_t groups[256];
	socklen_t len = sizeof(groups);

	if (cred->gid == gid)
		return true;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) == -1)
		return false; /* ERANGE: more than 256 groups; not an approver then */
	for (size_t i = 0; i < len / sizeof(gid_t); i++)
		if (groups[i] == gid)
			return true;
	return false;
}

static void serve_one(int fd, const struct control_handlers *h)
{
	struct timeval tv = { 2, 0 };
	struct control_peer peer = { 0 };
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	char *buf, *nl = NULL;
	size_t len = 0;
	json_error_t jerr;
	json_t *req;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == -1) {
		reply(fd, error_reply("permission denied: who is asking cannot be told (SO_PEERCRED)"));
		return;
	}
	peer.pid = cred.pid;
	peer.uid = cred.uid;
	peer.root = cred.uid == 0;
	peer.approver = !peer.root && h->have_approvers && peer_in_group(fd, &cred, h->approvers_gid);
	if (!peer.root && !peer.approver) {
		reply(fd, error_reply(h->have_approvers ? "permission denied: the control socket is for root and members of approvers_group"
							: "permission denied: the control socket is for root only"));
		return;
	}
	peer.loginuid = peer_loginuid(fd, cred.pid);
	buf = malloc(CONTROL_MAX_REQUEST + 1);
	if (!buf)
		return;
	while (!nl && len < CONTROL_MAX_REQUEST) {
		ssize_t n = recv(fd, buf + len, CONTROL_MAX_REQUEST - len, 0);

		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			break;
		}
		buf[len + (size_t)n] = '\0';
		nl = memchr(buf + len, '\n', (size_t)n);
		len += (size_t)n;
	}
	if (!nl) {
		reply(fd, error_reply("request incomplete or larger than %u bytes", CONTROL_MAX_REQUEST));
		free(buf);
		return;
	}
	req = json_loadb(buf, (size_t)(nl - buf), JSON_REJECT_DUPLICATES, &jerr);
	free(buf);
	if (!req || !json_is_object(req)) {
		reply(fd, error_reply("malformed request: %s", req ? "not an object" : jerr.text));
		json_decref(req);
		return;
	}
	reply(fd, dispatch(h, req, &peer));
	json_decref(req);
}

void control_serve(int lfd, const struct control_handlers *h)
{
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd == -1) {
			if (errno == EINTR)
				continue;
			return; /* EAGAIN: nothing pending */
		}
		serve_one(fd, h);
		close(fd);
	}
}

int control_call(const char *path, json_t *req, json_t **ret, char *err)
{
	struct sockaddr_un sun;
	size_t len = 0, cap = 0;
	char *text, *buf = NULL;
	json_error_t jerr;
	int fd, r = 0;

	if ((r = make_addr(path, &sun)) < 0) {
		snprintf(err, CONTROL_ERR_LEN, "control socket path '%s' is too long", path);
		return r;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		r = -errno;
		snprintf(err, CONTROL_ERR_LEN, "cannot connect to %s: %s (is pgtetherd running? pass -c FILE or --socket PATH)",
			 path, strerror(errno));
		if (fd != -1)
			close(fd);
		return r;
	}
	text = json_dumps(req, JSON_COMPACT);
	if (!text) {
		close(fd);
		snprintf(err, CONTROL_ERR_LEN, "out of memory");
		return -ENOMEM;
	}
	if (dprintf(fd, "%s\n", text) < 0) {
		r = -errno;
		snprintf(err, CONTROL_ERR_LEN, "cannot write to %s: %s", path, strerror(errno));
	}
	free(text);
	while (r == 0) {
		ssize_t n;

		if (cap - len < 4096) {
			char *bigger;

			if (cap >= CONTROL_MAX_REPLY) {
				r = -E2BIG;
				snprintf(err, CONTROL_ERR_LEN, "reply from %s is larger than %u bytes", path, CONTROL_MAX_REPLY);
				break;
			}
			bigger = realloc(buf, cap + 65536);
			if (!bigger) {
				r = -ENOMEM;
				snprintf(err, CONTROL_ERR_LEN, "out of memory");
				break;
			}
			buf = bigger;
			cap += 65536;
		}
		n = recv(fd, buf + len, cap - len - 1, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (r == 0) {
		*ret = json_loadb(buf ? buf : "", len, JSON_DISABLE_EOF_CHECK, &jerr);
		if (!*ret || !json_is_object(*ret)) {
			json_decref(*ret);
			r = -EPROTO;
			snprintf(err, CONTROL_ERR_LEN, "malformed reply from %s: %s", path, jerr.text);
		}
	}
	free(buf);
	return r;
}
