/* sock_diag exact lookups and aborts (daemon/sockdiag.c) on real loopback TCP sockets:
 * the cookie found by 4-tuple is the socket's own (SO_COOKIE), and an abort by 4-tuple
 * and cookie resets the connection for both ends wherever the fds are, while a wrong
 * cookie (another socket that took the 4-tuple) is left alone. Needs root
 * (CAP_NET_ADMIN for SOCK_DESTROY). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "sockdiag.h"

struct pair {
	int lfd, cli, acc;
	struct addr local, remote; /* the client's ends */
	uint64_t cookie;           /* the client socket's */
};

static void connect_pair(struct pair *p, int family)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	socklen_t cl = sizeof(p->cookie);

	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = in6addr_loopback;
	}
	p->lfd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(p->lfd >= 0);
	assert_int_equal(bind(p->lfd, (struct sockaddr *)&ss, family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6)), 0);
	assert_int_equal(listen(p->lfd, 4), 0);
	assert_int_equal(getsockname(p->lfd, (struct sockaddr *)&ss, &sl), 0);
	assert_int_equal(addr_from_sockaddr((struct sockaddr *)&ss, &p->remote), 0);
	p->cli = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(p->cli, (struct sockaddr *)&ss, sl), 0);
	p->acc = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(p->acc >= 0);
	sl = sizeof(ss);
	assert_int_equal(getsockname(p->cli, (struct sockaddr *)&ss, &sl), 0);
	assert_int_equal(addr_from_sockaddr((struct sockaddr *)&ss, &p->local), 0);
	assert_int_equal(getsockopt(p->cli, SOL_SOCKET, SO_COOKIE, &p->cookie, &cl), 0);
}

static void close_pair(struct pair *p)
{
	close(p->cli);
	close(p->acc);
	close(p->lfd);
}

/* What a read of fd says within 200 ms: bytes, 0 at end of stream, or -errno. */
static int read_result(int fd)
{
	struct pollfd pf = { .fd = fd, .events = POLLIN };
	char b;
	ssize_t n;

	if (poll(&pf, 1, 200) != 1)
		return -ETIMEDOUT;
	n = read(fd, &b, 1);
	return n < 0 ? -errno : (int)n;
}

static void abort_by_name(int family)
{
	struct sockdiag sd;
	struct pair p;
	uint64_t cookie = 0;
	int dup_cli;

	assert_int_equal(sockdiag_open(&sd), 0);
	connect_pair(&p, family);
	assert_int_equal(sockdiag_cookie(&sd, &p.local, &p.remote, &cookie), 0);
	assert_true(cookie == p.cookie);
	dup_cli = dup(p.cli); /* another process's fd of it, as a worker's is */

	/* another socket's cookie: not this one */
	assert_int_equal(sockdiag_destroy(&sd, &p.local, &p.remote, p.cookie + 1), -ENOENT);
	assert_int_equal(read_result(p.acc), -ETIMEDOUT);

	assert_int_equal(sockdiag_destroy(&sd, &p.local, &p.remote, p.cookie), 0);
	assert_int_equal(read_result(p.acc), -ECONNRESET);  /* the server's end is reset */
	assert_int_equal(read_result(dup_cli), -ECONNABORTED); /* every fd of it is done */
	assert_int_equal(sockdiag_destroy(&sd, &p.local, &p.remote, p.cookie), -ENOENT);
	assert_int_equal(sockdiag_cookie(&sd, &p.local, &p.remote, &cookie), -ENOENT);
	close(dup_cli);
	close_pair(&p);
	sockdiag_close(&sd);
}

static void test_abort_v4(void **state)
{
	(void)state;
	abort_by_name(AF_INET);
}

static void test_abort_v6(void **state)
{
	(void)state;
	abort_by_name(AF_INET6);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_abort_v4),
		cmocka_unit_test(test_abort_v6),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
