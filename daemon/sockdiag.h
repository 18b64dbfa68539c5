/*
 * NETLINK_SOCK_DIAG through libnl: the socket cookie of one TCP socket, found by its
 * exact 4-tuple (inet_diag, SOCK_DIAG_BY_FAMILY without NLM_F_DUMP, so the kernel
 * looks it up in its hash instead of walking every socket).
 *
 * The daemon uses it to confirm that the peer of an accepted connection is the very
 * socket the connect hook recorded: the origins map is keyed by 4-tuple, and the
 * cookie is what proves the entry is not a stale one from an earlier socket.
 */
#ifndef PGTETHER_SOCKDIAG_H
#define PGTETHER_SOCKDIAG_H

#include <stdint.h>

#include "addr.h"

struct nl_sock;

struct sockdiag {
	struct nl_sock *nl;
};

/* 0 or -errno. */
int sockdiag_open(struct sockdiag *sd);

/* The cookie of the TCP socket whose local end is `local` and remote end `remote`.
 * 0, -ENOENT when no such socket exists, or another -errno. */
int sockdiag_cookie(struct sockdiag *sd, const struct addr *local, const struct addr *remote,
		    uint64_t *ret);

/* Aborts the TCP socket local-remote whose cookie is `cookie` (SOCK_DESTROY: its
 * peer gets a reset, its owner ECONNABORTED), wherever its fds are. 0, -ENOENT when
 * there is no such socket (closed already, or another socket now has the 4-tuple),
 * or another -errno. */
int sockdiag_destroy(struct sockdiag *sd, const struct addr *local, const struct addr *remote, uint64_t cookie);

void sockdiag_close(struct sockdiag *sd);

#endif
