/*
 * The parent, as the session code of a fuzz harness sees it: worker.c's two calls
 * (worker.h), linked instead of worker.o. Notices are taken and dropped; a call is
 * answered as monitor.c answers it. What the real worker would do with a message the
 * channel cannot carry is to exit (every session of the worker ends with it), so
 * that is a broken promise here.
 */
#include "fuzz.h"

#include <errno.h>

#include "privsep.h"
#include "worker.h"

static uint64_t next_request;

int worker_notify(uint32_t type, uint64_t conn, const void *body, size_t len, int fd)
{
	(void)type;
	(void)conn;
	(void)body;
	/* priv_send refuses it with -EMSGSIZE, and worker_notify then exits */
	fuzz_check(len <= PRIV_MAX_MSG - sizeof(struct priv_hdr));
	fuzz_check(fd < 0);
	return 0;
}

int worker_call(uint32_t type, uint64_t conn, const void *body, size_t len, void *ret, size_t cap, size_t *ret_len,
		int *ret_fd)
{
	(void)conn;
	(void)body;
	fuzz_check(len <= PRIV_MAX_MSG - sizeof(struct priv_hdr));
	if (ret_fd)
		*ret_fd = -1;
	if (ret_len)
		*ret_len = 0;
	if (type == PRIV_HELD && cap >= sizeof(uint64_t)) {
		/* monitor.c: a request number unique across workers */
		uint64_t id = ++next_request;

		memcpy(ret, &id, sizeof(id));
		if (ret_len)
			*ret_len = sizeof(id);
		return 0;
	}
	return -ENOSYS; /* nothing else is called once a session relays */
}

int worker_call_fd(uint32_t type, uint64_t conn, const void *body, size_t len, int fd_out, void *ret, size_t cap,
		   size_t *ret_len, int *ret_fd)
{
	fuzz_check(fd_out >= 0);
	return worker_call(type, conn, body, len, ret, cap, ret_len, ret_fd);
}
