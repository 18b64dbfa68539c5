/*
 * inet_diag exact lookups over libnl's core socket API. libnl-idiag exists but only
 * dumps whole tables; one exact request per accepted connection keeps the cost
 * constant however many sockets the host has.
 */
#include "sockdiag.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <linux/inet_diag.h>
#include <linux/sock_diag.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>

struct reply {
	uint64_t cookie;
	int found;
};

static int on_valid(struct nl_msg *msg, void *arg)
{
	struct nlmsghdr *h = nlmsg_hdr(msg);
	struct reply *rep = arg;
	struct inet_diag_msg *d;

	if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY || nlmsg_datalen(h) < (int)sizeof(*d))
		return NL_SKIP;
	d = nlmsg_data(h);
	rep->cookie = (uint64_t)d->id.idiag_cookie[0] | (uint64_t)d->id.idiag_cookie[1] << 32;
	rep->found = 1;
	return NL_STOP;
}

int sockdiag_open(struct sockdiag *sd)
{
	int r;

	sd->nl = nl_socket_alloc();
	if (!sd->nl)
		return -ENOMEM;
	/* One request, one answer: no ACK to wait for. */
	nl_socket_disable_auto_ack(sd->nl);
	if ((r = nl_connect(sd->nl, NETLINK_SOCK_DIAG)) < 0) {
		nl_socket_free(sd->nl);
		sd->nl = NULL;
		return -EPROTONOSUPPORT;
	}
	return 0;
}

static void put_ip(__be32 out[4], const struct addr *a)
{
	if (addr_is_v4(a->ip)) {
		memset(out, 0, 16);
		memcpy(&out[0], a->ip + 12, 4);
	} else {
		memcpy(out, a->ip, 16);
	}
}

/* Sends one request for the TCP socket local-remote (cookie: INET_DIAG_NOCOOKIE, or
 * the one it must have) of type (SOCK_DIAG_BY_FAMILY, SOCK_DESTROY), with flags. */
static int request(struct sockdiag *sd, int type, int flags, const struct addr *local, const struct addr *remote,
		   uint64_t cookie)
{
	struct inet_diag_req_v2 req;
	struct nl_msg *msg;
	int r;

	memset(&req, 0, sizeof(req));
	req.sdiag_family = addr_is_v4(local->ip) ? AF_INET : AF_INET6;
	req.sdiag_protocol = IPPROTO_TCP;
	req.idiag_states = ~0u;
	req.id.idiag_sport = htons(local->port);
	req.id.idiag_dport = htons(remote->port);
	put_ip(req.id.idiag_src, local);
	put_ip(req.id.idiag_dst, remote);
	req.id.idiag_cookie[0] = (uint32_t)cookie;
	req.id.idiag_cookie[1] = (uint32_t)(cookie >> 32);

	msg = nlmsg_alloc_simple(type, NLM_F_REQUEST | flags);
	if (!msg)
		return -ENOMEM;
	if (nlmsg_append(msg, &req, sizeof(req), NLMSG_ALIGNTO) < 0) {
		nlmsg_free(msg);
		return -ENOMEM;
	}
	r = nl_send_auto(sd->nl, msg);
	nlmsg_free(msg);
	return r < 0 ? -EIO : 0;
}

int sockdiag_cookie(struct sockdiag *sd, const struct addr *local, const struct addr *remote,
		    uint64_t *ret)
{
	const uint64_t none = (uint64_t)INET_DIAG_NOCOOKIE << 32 | INET_DIAG_NOCOOKIE;
	struct reply rep = { 0, 0 };
	int r;

	if ((r = request(sd, SOCK_DIAG_BY_FAMILY, 0, local, remote, none)) < 0)
		return r;
	nl_socket_modify_cb(sd->nl, NL_CB_VALID, NL_CB_CUSTOM, on_valid, &rep);
	r = nl_recvmsgs_default(sd->nl);
	if (rep.found) {
		*ret = rep.cookie;
		return 0;
	}
	/* The kernel answers a lookup miss with NLMSG_ERROR ENOENT. */
	return r == -NLE_OBJ_NOTFOUND || r == 0 ? -ENOENT : -EIO;
}

int sockdiag_destroy(struct sockdiag *sd, const struct addr *local, const struct addr *remote, uint64_t cookie)
{
	struct reply rep = { 0, 0 };
	int r;

	/* a destroy that works has no answer but the ACK asked for */
	if ((r = request(sd, SOCK_DESTROY, NLM_F_ACK, local, remote, cookie)) < 0)
		return r;
	nl_socket_modify_cb(sd->nl, NL_CB_VALID, NL_CB_CUSTOM, on_valid, &rep);
	r = nl_wait_for_ack(sd->nl);
	if (r == 0)
		return 0;
	if (r == -NLE_OBJ_NOTFOUND)
		return -ENOENT;
	return r == -NLE_PERM ? -EPERM : r == -NLE_OPNOTSUPP ? -EOPNOTSUPP : -EIO;
}

void sockdiag_close(struct sockdiag *sd)
{
	if (sd->nl)
		nl_socket_free(sd->nl);
	sd->nl = NULL;
}
