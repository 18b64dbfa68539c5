/*
 * A worker process (DESIGN.md "Processes"): started by the parent as
 * `pgtetherd --worker IDX UID GID LEVEL CONFIG`, it drops to the worker user (no
 * capabilities, NO_NEW_PRIVS, seccomp) before it reads a byte, takes its
 * configuration and connections from the parent, and runs the sessions' loop: the
 * client startup, TLS, classification, masking, recording writes, the relay. What
 * needs privilege or a secret it asks the parent for (privsep.h).
 */
#ifndef PGTETHER_WORKER_H
#define PGTETHER_WORKER_H

#include <stddef.h>
#include <stdint.h>

/* main() of `pgtetherd --worker ...`; returns the exit status. */
int worker_main(int argc, char **argv);

/* A notice to the parent (no answer). 0 or -errno. */
int worker_notify(uint32_t type, uint64_t conn, const void *body, size_t len, int fd);

/*
 * A call: sends the request and waits (PRIV_CALL_TIMEOUT_MS at most) for the
 * parent's reply, whose payload is copied into ret (cap bytes; *ret_len its length)
 * and whose fd, if any, goes to *ret_fd (NULL: closed). Returns the parent's result
 * (0 or -errno), or -ETIMEDOUT / -EPROTO / -EPIPE when the parent did not answer.
 */
int worker_call(uint32_t type, uint64_t conn, const void *body, size_t len, void *ret, size_t cap, size_t *ret_len,
		int *ret_fd);
/* The same, with fd_out (>= 0) passed along with the call. */
int worker_call_fd(uint32_t type, uint64_t conn, const void *body, size_t len, int fd_out, void *ret, size_t cap,
		   size_t *ret_len, int *ret_fd);

#endif
