/*
 * What the root parent (daemon/monitor.c, monitor_login.c) calls in the kernel modules
 * (the BPF origins map, sock_diag), for tests that drive the parent over socketpairs
 * with no BPF loaded: tests/unit/test_monitor.c and tests/fuzz/fuzz_monitor.c. Never
 * reached there: their connections are made by the test, not accepted; but for
 * sockdiag_destroy, which records what it was asked (stubs.h).
 */
#include <errno.h>
#include <stdint.h>

#include <stddef.h>

#include "intercept.h"
#include "sockdiag.h"
#include "stubs.h"

int intercept_take(struct intercept *ic, const struct pgt_tuple *t, struct pgt_origin *o)
{
	(void)ic, (void)t, (void)o;
	return -ENOENT;
}
int intercept_origins_full(struct intercept *ic, uint64_t *full)
{
	(void)ic;
	*full = 0;
	return 0;
}
size_t intercept_expire(struct intercept *ic, uint64_t open_cutoff_ns, uint64_t closed_cutoff_ns, size_t *ret_closed)
{
	(void)ic, (void)open_cutoff_ns, (void)closed_cutoff_ns;
	*ret_closed = 0;
	return 0;
}
int sockdiag_cookie(struct sockdiag *sd, const struct addr *peer, const struct addr *local, uint64_t *cookie)
{
	(void)sd, (void)peer, (void)local;
	*cookie = 0;
	return -ENOSYS;
}

/* What the parent asked to abort, for tests to compare with the sockets it made. */
struct stub_destroyed stub_destroyed[64];
size_t stub_n_destroyed;

int sockdiag_destroy(struct sockdiag *sd, const struct addr *local, const struct addr *remote, uint64_t cookie)
{
	(void)sd;
	if (stub_n_destroyed < sizeof(stub_destroyed) / sizeof(stub_destroyed[0]))
		stub_destroyed[stub_n_destroyed++] = (struct stub_destroyed){ *local, *remote, cookie };
	return -ENOENT;
}
