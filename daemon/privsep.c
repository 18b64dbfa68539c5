/*
 * Packets between the parent and its workers: one header and body per
 * SOCK_SEQPACKET packet, at most one fd by SCM_RIGHTS (privsep.h).
 */
#include "privsep.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

int priv_send(int sock, uint32_t type, uint64_t conn, const void *body, size_t len, int fd)
{
	struct priv_hdr h = { type, (uint32_t)len, conn };
	struct iovec iov[2] = { { &h, sizeof(h) }, { (void *)body, len } };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = len ? 2 : 1 };

	if (len > PRIV_MAX_MSG - sizeof(h))
		return -EMSGSIZE;
	if (fd >= 0) {
		struct cmsghdr *c;

		memset(&u, 0, sizeof(u));
		m.msg_control = u.buf;
		m.msg_controllen = sizeof(u.buf);
		c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	for (;;) {
		ssize_t n = sendmsg(sock, &m, MSG_NOSIGNAL);

		if (n >= 0)
			return (size_t)n == sizeof(h) + len ? 0 : -EPROTO;
		if (errno != EINTR)
			return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	}
}

long priv_recv(int sock, uint8_t *buf, size_t cap, int *ret_fd)
{
	union {
		char buf[CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { buf, cap };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	struct priv_hdr h;
	int nfds = 0, fd = -1;
	bool bad = false;
	ssize_t n;

	*ret_fd = -1;
	do
		n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
			bad = true;
			continue;
		}
		for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
			int f;

			memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (nfds++ == 0)
				fd = f;
			else
				close(f);
		}
	}
	if (n == 0 && nfds == 0)
		return -EPIPE;
	if (!bad && nfds <= 1 && (m.msg_flags & MSG_CTRUNC) && !(m.msg_flags & MSG_TRUNC) && (size_t)n >= sizeof(h)) {
		/* the packet came whole, its fd did not (the receiver is out of fds) */
		if (fd >= 0)
			close(fd);
		return -EMFILE;
	}
	if (bad || nfds > 1 || (m.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || (size_t)n < sizeof(h)) {
		if (fd >= 0)
			close(fd);
		return -EPROTO;
	}
	memcpy(&h, buf, sizeof(h));
	if ((size_t)n != sizeof(h) + h.len) {
		if (fd >= 0)
			close(fd);
		return -EPROTO;
	}
	*ret_fd = fd;
	return (long)h.len;
}

bool priv_str_ok(const char *s, size_t cap)
{
	return memchr(s, '\0', cap) != NULL;
}

bool priv_json_bounded(const char *s, size_t len, unsigned max_depth, size_t max_values)
{
	return priv_json_count(s, len, max_depth, max_values) >= 0;
}

long priv_json_count(const char *s, size_t len, unsigned max_depth, size_t max_values)
{
	unsigned depth = 0;
	size_t values = 0;
	bool in_str = false;

	for (size_t i = 0; i < len; i++) {
		char ch = s[i];

		if (in_str) {
			if (ch == '\\')
				i++;
			else if (ch == '"')
				in_str = false;
			continue;
		}
		switch (ch) {
		case '"':
			in_str = true;
			break;
		case '[':
		case '{':
			if (++depth > max_depth || ++values > max_values)
				return -1;
			break;
		case ']':
		case '}':
			if (depth)
				depth--;
			break;
		case ',':
		case ':':
			if (++values > max_values)
				return -1;
			break;
		default:
			break;
		}
	}
	return (long)values;
}

const char *priv_type_name(uint32_t type)
{
	switch (type) {
	case PRIV_CONFIG: return "config";
	case PRIV_NEW_CONN: return "new_conn";
	case PRIV_NEED_TOKEN: return "need_token";
	case PRIV_VERDICT: return "verdict";
	case PRIV_DECIDE: return "decide";
	case PRIV_STOP: return "stop";
	case PRIV_REMASK: return "remask";
	case PRIV_DDL: return "ddl";
	case PRIV_IDENTIFY: return "identify";
	case PRIV_TOKEN: return "token";
	case PRIV_LOGGED_IN: return "logged_in";
	case PRIV_HELD_INFO: return "held_info";
	case PRIV_HELD_DONE: return "held_done";
	case PRIV_STATS: return "stats";
	case PRIV_CANCEL: return "cancel";
	case PRIV_ENDED: return "ended";
	case PRIV_READY: return "ready";
	case PRIV_SOCKET: return "socket";
	case PRIV_SCRAM: return "scram";
	case PRIV_MD5: return "md5";
	case PRIV_CLEARTEXT: return "cleartext";
	case PRIV_HELD: return "held";
	case PRIV_STARTUP: return "startup";
	case PRIV_CANCEL_SEND: return "cancel_send";
	case PRIV_REPLY: return "reply";
	default: return "unknown";
	}
}
