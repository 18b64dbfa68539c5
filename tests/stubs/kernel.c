/*
 * What the root parent (daemon/monitor.c, monitor_login.c) calls in the kernel modules
 * (the BPF origins map, sock_diag), for tests that drive the parent over socketpairs
 * with no BPF loaded: tests/unit/test_monitor.c and tests/fuzz/fuzz_monitor.c. Never
 * reached there: their connections are made by the test, not accepted.
 */
#include <errno.h>
#include <stdint.h>

#include "intercept.h"
#include "sockdiag.h"

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
