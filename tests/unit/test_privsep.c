/* Packets between the parent and its workers (daemon/privsep.c), over a real
 * SOCK_SEQPACKET socketpair: bodies and fds arrive whole, and a packet the parent
 * must not trust (short, lying about its length, two fds, too large) is refused. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "privsep.h"

static uint8_t buf[1 << 16];

static int pair(int sv[2])
{
	return socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv);
}

static void test_body_and_fd(void **state)
{
	struct priv_identify q = { "app", "db", true };
	struct priv_hdr h;
	struct stat a, b;
	int sv[2], p[2], fd;
	long n;

	(void)state;
	assert_int_equal(pair(sv), 0);
	assert_int_equal(pipe(p), 0);
	assert_int_equal(priv_send(sv[0], PRIV_IDENTIFY, 42, &q, sizeof(q), p[0]), 0);
	n = priv_recv(sv[1], buf, sizeof(buf), &fd);
	assert_int_equal(n, (long)sizeof(q));
	memcpy(&h, buf, sizeof(h));
	assert_int_equal(h.type, PRIV_IDENTIFY);
	assert_int_equal(h.conn, 42);
	assert_memory_equal(buf + sizeof(h), &q, sizeof(q));
	/* the same pipe, a new descriptor of it */
	assert_true(fd >= 0 && fd != p[0]);
	assert_int_equal(fstat(fd, &a), 0);
	assert_int_equal(fstat(p[0], &b), 0);
	assert_int_equal(a.st_ino, b.st_ino);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	close(fd);
	/* no body, no fd */
	assert_int_equal(priv_send(sv[0], PRIV_READY, 0, NULL, 0, -1), 0);
	assert_int_equal(priv_recv(sv[1], buf, sizeof(buf), &fd), 0);
	assert_int_equal(fd, -1);
	close(p[0]);
	close(p[1]);
	close(sv[0]);
	close(sv[1]);
}

static void test_refused(void **state)
{
	struct priv_hdr h = { PRIV_TOKEN, 100, 7 };
	uint8_t raw[64];
	int sv[2], fd;

	(void)state;
	assert_int_equal(pair(sv), 0);
	/* shorter than a header */
	assert_int_equal(send(sv[0], "abc", 3, 0), 3);
	assert_int_equal(priv_recv(sv[1], buf, sizeof(buf), &fd), -EPROTO);
	/* a header that claims more body than came */
	memcpy(raw, &h, sizeof(h));
	assert_int_equal(send(sv[0], raw, sizeof(h) + 10, 0), (ssize_t)(sizeof(h) + 10));
	assert_int_equal(priv_recv(sv[1], buf, sizeof(buf), &fd), -EPROTO);
	/* more than the receiver's buffer: truncated, refused */
	{
		static uint8_t big[4096];

		assert_int_equal(priv_send(sv[0], PRIV_TOKEN, 1, big, sizeof(big), -1), 0);
		assert_int_equal(priv_recv(sv[1], buf, 1024, &fd), -EPROTO);
	}
	/* two fds: refused, both closed */
	{
		int p[2], fds[2];
		union {
			char b[CMSG_SPACE(2 * sizeof(int))];
			struct cmsghdr align;
		} u;
		struct priv_hdr e = { PRIV_READY, 0, 0 };
		struct iovec iov = { &e, sizeof(e) };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof(u.b) };
		struct cmsghdr *c;

		assert_int_equal(pipe(p), 0);
		fds[0] = p[0];
		fds[1] = p[1];
		memset(&u, 0, sizeof(u));
		c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(fds));
		memcpy(CMSG_DATA(c), fds, sizeof(fds));
		assert_true(sendmsg(sv[0], &m, 0) > 0);
		assert_int_equal(priv_recv(sv[1], buf, sizeof(buf), &fd), -EPROTO);
		assert_int_equal(fd, -1);
		close(p[0]);
		close(p[1]);
	}
	/* a body over the limit is not sent */
	assert_int_equal(priv_send(sv[0], PRIV_TOKEN, 1, buf, PRIV_MAX_MSG, -1), -EMSGSIZE);
	/* the peer gone: end of stream */
	close(sv[0]);
	assert_int_equal(priv_recv(sv[1], buf, sizeof(buf), &fd), -EPIPE);
	close(sv[1]);
}

static void test_strings(void **state)
{
	char f[4] = { 'a', 'b', 'c', 'd' };

	(void)state;
	assert_false(PRIV_STR_OK(f));
	f[3] = '\0';
	assert_true(PRIV_STR_OK(f));
	assert_string_equal(priv_type_name(PRIV_SCRAM), "scram");
	assert_string_equal(priv_type_name(12345), "unknown");
}

/* What approvers are shown is bounded before it is parsed; strings and escapes in
 * them do not count. */
static void test_json_bounded(void **state)
{
	static const char ok[] = "{\"sql\":\"[[[[[[,,,:::\\\"]]]\",\"params\":[\"a\",null,\"b\"],\"prepared\":[{\"name\":\"x\"}]}";
	static const char deep[] = "{\"a\":[[[[1]]]]}";

	(void)state;
	assert_true(priv_json_bounded(ok, strlen(ok), 3, 100));
	assert_false(priv_json_bounded(ok, strlen(ok), 2, 100));
	assert_false(priv_json_bounded(ok, strlen(ok), 3, 11));
	assert_true(priv_json_bounded(ok, strlen(ok), 3, 12));
	assert_false(priv_json_bounded(deep, strlen(deep), 4, 100));
	assert_true(priv_json_bounded(deep, strlen(deep), 5, 100));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_bounded),
		cmocka_unit_test(test_body_and_fd),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_strings),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
