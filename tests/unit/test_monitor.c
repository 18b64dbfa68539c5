/* The parent's side of the request channel (daemon/monitor.c, monitor_login.c) as a
 * compromised worker sees it: the test plays the worker on real SOCK_SEQPACKET
 * socketpairs, with a forked child standing in for its process (so "killed" is a
 * real SIGKILL the test reaps), and checks what the parent answers, keeps and kills. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "monitor_int.h"
#include "session.h"
#include "sockdiag.h"
#include "../stubs/stubs.h"

/* ---- a parent with two workers --------------------------------------------------- */
static struct {
	struct monitor m;
	struct config cfg;
	struct config_upstream up;
	struct config_role role;
	struct sockdiag sd;
	char password[32];
	int wend[2][2];     /* the test's ends: [i][0] command channel, [i][1] request channel */
} T;

static pid_t child(void)
{
	pid_t pid = fork();

	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (;;)
			pause();
	}
	return pid;
}

/* A stand-in process for worker i, with fresh channels (as worker_spawn makes). */
static void worker_up(unsigned i)
{
	struct mon_worker *w = &T.m.w[i];
	int cmd[2], req[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, cmd), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, req), 0);
	for (unsigned k = 0; k < 2; k++) {
		int sz = PRIV_SOCKBUF;

		/* as the parent sets them (monitor.c force_bufs); the test runs as root */
		setsockopt(cmd[k], SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz));
		setsockopt(cmd[k], SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz));
		setsockopt(req[k], SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz));
		setsockopt(req[k], SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz));
	}
	w->idx = i;
	w->m = &T.m;
	w->cmd = cmd[0];
	w->req = req[0];
	w->ready = true;
	w->pid = child();
	assert_true(w->pid > 0);
	T.wend[i][0] = cmd[1];
	T.wend[i][1] = req[1];
}

static void worker_down(unsigned i)
{
	if (T.m.w[i].pid > 0) {
		kill(T.m.w[i].pid, SIGKILL);
		waitpid(T.m.w[i].pid, NULL, 0);
		T.m.w[i].pid = 0;
	}
	if (T.m.w[i].cmd >= 0)
		close(T.m.w[i].cmd);
	if (T.m.w[i].req >= 0)
		close(T.m.w[i].req);
	T.m.w[i].cmd = T.m.w[i].req = -1;
	close(T.wend[i][0]);
	close(T.wend[i][1]);
}

static int setup(void **state)
{
	(void)state;
	memset(&T, 0, sizeof(T));
	snprintf(T.password, sizeof(T.password), "s3cret-held");
	T.role.name = "app";
	T.role.password = T.password;
	T.up.name = "db";
	T.up.tls = CONFIG_TLS_REQUIRE;
	T.up.auth_methods = CONFIG_AUTH_SCRAM | CONFIG_AUTH_MD5 | CONFIG_AUTH_PASSWORD;
	T.up.roles = &T.role;
	T.up.n_roles = 1;
	T.cfg.upstreams = &T.up;
	T.cfg.n_upstreams = 1;
	T.m.cfg = &T.cfg;
	T.m.sd = &T.sd; /* the stub's: it records what it is asked to abort */
	T.m.buf = malloc(PRIV_MAX_MSG);
	T.m.epfd = epoll_create1(EPOLL_CLOEXEC);
	T.m.n_workers = 2;
	assert_int_equal(scrampool_start(&T.m.proofs, MON_PROOFS_MAX), 0);
	for (unsigned i = 0; i < 2; i++)
		worker_up(i);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	for (unsigned i = 0; i < 2; i++)
		worker_down(i);
	while (T.m.head) {
		T.m.head->cfd = -1;
		conn_end(&T.m, T.m.head);
	}
	login_proofs_release(&T.m);
	scrampool_free(T.m.proofs);
	close(T.m.epfd);
	free(T.m.buf);
	return 0;
}

static struct mon_conn *conn(unsigned worker, uint64_t id, enum mon_state st)
{
	struct mon_conn *c = calloc(1, sizeof(*c));

	c->id = id;
	c->w = &T.m.w[worker];
	c->st = st;
	c->cfd = -1;
	c->have_origin = true;
	c->origin.uid = 1000;
	c->origin.tgid = 4242;
	c->origin.cgroup_id = 77;
	snprintf(c->upstream, sizeof(c->upstream), "db");
	snprintf(c->role, sizeof(c->role), "app");
	assert_int_equal(conn_link(&T.m, c), 0);
	T.m.w[worker].sessions++;
	return c;
}

/* The worker says something; the parent reads everything queued. */
static void say(unsigned worker, uint32_t type, uint64_t id, const void *body, size_t len)
{
	assert_int_equal(priv_send(T.wend[worker][1], type, id, body, len, -1), 0);
	monitor_worker_event(&T.m, &T.m.w[worker], EPOLLIN);
}

/* True when the parent killed the worker's process. */
static bool killed(unsigned worker)
{
	int status;

	/* SIGKILL is delivered soon, not at once */
	for (int i = 0; i < 30; i++, usleep(10000)) {
		if (waitpid(T.m.w[worker].pid, &status, WNOHANG) == T.m.w[worker].pid) {
			T.m.w[worker].pid = 0;
			return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
		}
	}
	return false;
}

/* The reply to a call: its result, the payload into out (cap bytes). */
static int answer(unsigned worker, void *out, size_t cap, size_t *len)
{
	static uint8_t b[1 << 16];
	struct priv_reply rp;
	struct priv_hdr h;
	int fd;
	long n = priv_recv(T.wend[worker][1], b, sizeof(b), &fd);

	assert_true(n >= (long)sizeof(rp));
	memcpy(&h, b, sizeof(h));
	assert_int_equal(h.type, PRIV_REPLY);
	memcpy(&rp, b + sizeof(h), sizeof(rp));
	*len = rp.len;
	if (rp.len && out)
		memcpy(out, b + sizeof(h) + sizeof(rp), rp.len < cap ? rp.len : cap);
	if (fd >= 0)
		close(fd);
	return rp.result;
}

/* ---- the tests ----------------------------------------------------------------------- */

/* The worker's own check (upstream.c) sends a password only to an upstream verified by
 * tls verify-full; a worker that skips it must not get the password from the parent. */
static void test_cleartext_only_verify_full(void **state)
{
	char pw[64] = "";
	size_t len = 0;
	int r;

	(void)state;
	conn(0, 5, MC_AUTHORIZED);
	say(0, PRIV_CLEARTEXT, 5, NULL, 0);
	r = answer(0, pw, sizeof(pw), &len);
	assert_true(r < 0);
	assert_int_equal(len, 0);
	assert_null(strstr(pw, "s3cret"));

	T.up.tls = CONFIG_TLS_VERIFY_FULL;
	conn(0, 6, MC_AUTHORIZED);
	say(0, PRIV_CLEARTEXT, 6, NULL, 0);
	r = answer(0, pw, sizeof(pw), &len);
	assert_int_equal(r, 0);
	assert_string_equal(pw, "s3cret-held");
	assert_false(killed(0));
}

/* Only the logins the upstream's auth_methods lists are answered: a worker taken
 * over that asks an upstream of SCRAM alone for an md5 hash (salted as it likes,
 * cheap to try passwords on) or the password gets neither. */
static void test_auth_methods_listed(void **state)
{
	char out[64] = "";
	struct priv_scram q;
	size_t len = 0;

	(void)state;
	T.up.tls = CONFIG_TLS_VERIFY_FULL;
	T.up.auth_methods = CONFIG_AUTH_SCRAM;
	conn(0, 7, MC_AUTHORIZED);
	say(0, PRIV_MD5, 7, "salt", 4);
	assert_int_equal(answer(0, out, sizeof(out), &len), -EPERM);
	assert_int_equal(len, 0);
	conn(0, 8, MC_AUTHORIZED);
	say(0, PRIV_CLEARTEXT, 8, NULL, 0);
	assert_int_equal(answer(0, out, sizeof(out), &len), -EPERM);
	assert_int_equal(len, 0);
	assert_null(strstr(out, "s3cret"));
	/* ... and SCRAM only where it is listed */
	T.up.auth_methods = CONFIG_AUTH_MD5;
	conn(0, 9, MC_AUTHORIZED);
	memset(&q, 0, sizeof(q));
	snprintf(q.client_first_bare, sizeof(q.client_first_bare), "n=,r=%0*d", SCRAM_NONCE_LEN, 1);
	snprintf(q.server_first, sizeof(q.server_first), "r=%0*d2,s=c2FsdA==,i=4096", SCRAM_NONCE_LEN, 1);
	say(0, PRIV_SCRAM, 9, &q, sizeof(q));
	assert_int_equal(answer(0, NULL, 0, &len), -EPERM);
	/* where md5 is listed it is answered */
	conn(0, 10, MC_AUTHORIZED);
	say(0, PRIV_MD5, 10, "salt", 4);
	assert_int_equal(answer(0, out, sizeof(out), &len), 0);
	assert_int_equal(strncmp(out, "md5", 3), 0);
	assert_false(killed(0));
}

/* A login its worker neither finishes nor ends (the worker's own timer ends it at
 * login_timeout, counted from when it got the connection) is let go of soon after:
 * its place under the login caps, the parent's copy of the client socket, the record
 * itself. A worker taken over cannot fill max_logins and turn away every login of the
 * host, nor keep records the caps no longer bound. */
static bool linked(uint64_t id)
{
	for (const struct mon_conn *c = T.m.head; c; c = c->next)
		if (c->id == id)
			return true;
	return false;
}

static void test_login_abandoned(void **state)
{
	struct mon_conn *c, *r;
	unsigned sessions;
	int sv[2];
	char b;

	(void)state;
	T.cfg.login_timeout = 30;
	c = conn(0, 11, MC_AUTHORIZED);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	c->cfd = sv[0];
	assert_int_equal(quota_login_begin(&T.m.logins, 10), 0);
	c->login_counted = true;
	sessions = T.m.w[0].sessions;
	assert_false(login_abandon(&T.m, c, 30 + MON_LOGIN_GRACE_S - 1));
	assert_true(c->login_counted);
	assert_true(login_abandon(&T.m, c, 30 + MON_LOGIN_GRACE_S));
	assert_false(linked(11));
	assert_int_equal(T.m.logins.total, 0);
	assert_int_equal(T.m.w[0].sessions, sessions - 1);
	assert_int_equal(read(sv[1], &b, 1), 0); /* the parent's copy is closed */
	close(sv[1]);
	/* what the worker says of it later is not heard */
	say(0, PRIV_IDENTIFY, 11, NULL, 0);
	assert_false(linked(11));
	/* a relay, or a cancel on its way, is no login */
	r = conn(0, 12, MC_RELAYING);
	assert_false(login_abandon(&T.m, r, 3600));
	r = conn(0, 13, MC_CANCELLING);
	assert_false(login_abandon(&T.m, r, 3600));
	assert_false(killed(0));
}

/* A proof for a session of another worker, or one out of turn, ends the worker. */
static void test_out_of_order_kills(void **state)
{
	struct priv_scram q;

	(void)state;
	memset(&q, 0, sizeof(q));
	conn(1, 9, MC_AUTHORIZED);
	conn(0, 10, MC_STARTUP);
	/* another worker's session: no answer but "no such session" */
	say(0, PRIV_MD5, 9, "salt", 4);
	{
		size_t len;

		assert_int_equal(answer(0, NULL, 0, &len), -ENOENT);
	}
	assert_false(killed(0));
	say(0, PRIV_SCRAM, 10, &q, sizeof(q));
	assert_true(killed(0));
}

/* A stats packet is at most PRIV_STATS_MAX entries (session_stats): a larger one
 * would make the parent walk its list of sessions that many times. */
static void test_stats_capped(void **state)
{
	size_t n = PRIV_STATS_MAX + 1;
	struct priv_stat *st = calloc(n, sizeof(*st));

	(void)state;
	say(0, PRIV_STATS, 0, st, PRIV_STATS_MAX * sizeof(*st));
	assert_false(killed(0));
	say(0, PRIV_STATS, 0, st, n * sizeof(*st));
	assert_true(killed(0));
	free(st);
}

/* A worker that reports DDL in a loop must not fill another worker's command channel
 * (which kills that worker and ends its sessions): a "re-resolve" still unread is not
 * sent again. */
static void test_ddl_flood_coalesced(void **state)
{
	unsigned queued = 0;
	long n;
	int fd;

	(void)state;
	conn(0, 3, MC_RELAYING);
	for (unsigned i = 0; i < 200000; i++) {
		if (priv_send(T.wend[0][1], PRIV_DDL, 3, NULL, 0, -1) == -EAGAIN)
			monitor_worker_event(&T.m, &T.m.w[0], EPOLLIN);
		else if (i % 200 == 0)
			monitor_worker_event(&T.m, &T.m.w[0], EPOLLIN);
	}
	monitor_worker_event(&T.m, &T.m.w[0], EPOLLIN);
	assert_false(killed(0));
	assert_false(killed(1));
	while ((n = priv_recv(T.wend[1][0], T.m.buf, PRIV_MAX_MSG, &fd)) >= 0)
		queued++;
	assert_int_equal(queued, 1);
	/* read: the next DDL is announced again */
	say(0, PRIV_DDL, 3, NULL, 0);
	assert_int_equal(priv_recv(T.wend[1][0], T.m.buf, PRIV_MAX_MSG, &fd), 0);
	/* DDL is reported for a relaying session of the worker that ran it */
	conn(0, 8, MC_STARTUP);
	say(0, PRIV_DDL, 8, NULL, 0);
	assert_true(killed(0));
}

/* What approvers are shown is bounded in shape (a small JSON text must not become
 * hundreds of MiB of jansson values in the root parent), and who made the request is
 * the parent's record, not the worker's word. */
static void test_held_info(void **state)
{
	struct priv_held h = { 30, 0 };
	static const char good[] = "{\"pid\":1,\"uid\":0,\"cgroup\":\"/x\",\"rule\":\"admins\",\"sub\":\"root@corp\","
				   "\"sql\":\"DROP TABLE t\",\"params\":[\"a\",\"b\"]}";
	size_t big = 1 << 20, len;
	uint64_t id;
	uint8_t *b = malloc(sizeof(h) + big);
	struct mon_conn *c;
	json_t *list, *a;

	(void)state;
	c = conn(0, 4, MC_RELAYING);
	snprintf(c->rule, sizeof(c->rule), "ci");
	snprintf(c->token_sub, sizeof(c->token_sub), "job-17");
	say(0, PRIV_HELD, 4, NULL, 0);
	assert_int_equal(answer(0, &id, sizeof(id), &len), 0);

	/* {"a":[[],[],...]}: 2^18 empty arrays in 1 MiB */
	{
		char *j = (char *)b + sizeof(h);
		size_t k = 0;

		k += (size_t)sprintf(j, "{\"a\":[[]");
		while (k + 8 < big) {
			memcpy(j + k, ",[]", 3);
			k += 3;
		}
		memcpy(j + k, "]}", 2);
		big = k + 2;
	}
	h.json_len = (uint32_t)big;
	memcpy(b, &h, sizeof(h));
	say(0, PRIV_HELD_INFO, 4, b, sizeof(h) + big);
	assert_null(c->held);

	/* the next request (one listing each) */
	say(0, PRIV_HELD_DONE, 4, NULL, 0);
	say(0, PRIV_HELD, 4, NULL, 0);
	assert_int_equal(answer(0, &id, sizeof(id), &len), 0);
	h.json_len = sizeof(good) - 1;
	memcpy(b, &h, sizeof(h));
	memcpy(b + sizeof(h), good, sizeof(good) - 1);
	say(0, PRIV_HELD_INFO, 4, b, sizeof(h) + h.json_len);
	assert_non_null(c->held);
	list = monitor_approvals(&T.m);
	assert_int_equal(json_array_size(list), 1);
	a = json_array_get(list, 0);
	assert_int_equal(json_integer_value(json_object_get(a, "uid")), 1000);
	assert_int_equal(json_integer_value(json_object_get(a, "pid")), 4242);
	/* the rule and the token's subject are the parent's too, not what the worker says */
	assert_string_equal(json_string_value(json_object_get(a, "rule")), "ci");
	assert_string_equal(json_string_value(json_object_get(a, "sub")), "job-17");
	json_decref(list);
	assert_false(killed(0));
	free(b);
}

/* A listing for approvers is sent once per request; each worker's listings hold at
 * most its share of one `pgtether approvals` answer, and at most MON_HELD_BYTES_MAX
 * of them are parsed a minute: a worker taken over that sends more is ended, or its
 * requests are not listed, instead of filling the root parent's memory, keeping its
 * loop parsing, or crowding out the other workers' requests. */
static void held_listing(unsigned worker, uint64_t conn_id, const uint8_t *b, size_t n)
{
	uint64_t id;
	size_t len;

	say(worker, PRIV_HELD, conn_id, NULL, 0);
	assert_int_equal(answer(worker, &id, sizeof(id), &len), 0);
	say(worker, PRIV_HELD_INFO, conn_id, b, n);
}

static void test_held_listings_bounded(void **state)
{
	struct priv_held h = { 30, 0 };
	size_t big = 1u << 20, n = sizeof(h) + big, share = MON_HELD_BYTES_MAX / T.m.n_workers;
	unsigned fit = (unsigned)(share / (big + MON_HELD_OVERHEAD));
	static const char small[] = "{\"sql\":\"DROP TABLE t\"}";
	uint8_t *b = malloc(n), *sb = malloc(sizeof(h) + sizeof(small));
	struct mon_conn *c[64], *x;
	char *j = (char *)b + sizeof(h);

	(void)state;
	assert_true(fit + 1 < 64);
	/* {"sql":"xxx...x"}: one value, 1 MiB (a held statement is at most that, escaped more) */
	memset(j, 'x', big);
	memcpy(j, "{\"sql\":\"", 8);
	memcpy(j + big - 2, "\"}", 2);
	h.json_len = (uint32_t)big;
	memcpy(b, &h, sizeof(h));
	h.json_len = sizeof(small) - 1;
	memcpy(sb, &h, sizeof(h));
	memcpy(sb + sizeof(h), small, sizeof(small) - 1);
	for (unsigned i = 0; i <= fit; i++) {
		c[i] = conn(1, 40 + i, MC_RELAYING);
		held_listing(1, 40 + i, b, n);
		/* the last one would take worker 1's listings past its share */
		if (i < fit)
			assert_non_null(c[i]->held);
		else
			assert_null(c[i]->held);
	}
	assert_true(T.m.w[1].held_bytes <= share);
	/* worker 0's requests are listed all the same */
	x = conn(0, 60, MC_RELAYING);
	held_listing(0, 60, sb, sizeof(h) + h.json_len);
	assert_non_null(x->held);
	/* one request decided elsewhere (HELD_DONE): room again, and the next is listed */
	say(1, PRIV_HELD_DONE, 40, NULL, 0);
	assert_null(c[0]->held);
	held_listing(1, 40 + fit, b, n);
	assert_non_null(c[fit]->held);
	/* held, listed, done, again: at most MON_HELD_BYTES_MAX is parsed a minute */
	{
		unsigned listed = 0;

		for (unsigned k = 0; k < MON_HELD_BYTES_MAX / big + 2; k++) {
			say(1, PRIV_HELD_DONE, 41, NULL, 0);
			held_listing(1, 41, b, n);
			listed += c[1]->held != NULL;
		}
		assert_true(listed < MON_HELD_BYTES_MAX / big);
	}
	assert_false(killed(1));

	/* {"a":[{},{},...]}: 300 kB of text, but some 23 MB once parsed (jansson's
	 * values): charged for that, it is past worker 0's share */
	{
		size_t k = 100000, tl = 6 + 3 * k + 1;
		uint8_t *eb = malloc(sizeof(h) + tl);
		char *t = (char *)eb + sizeof(h);
		struct mon_conn *e = conn(0, 61, MC_RELAYING);

		memcpy(t, "{\"a\":[", 6);
		for (size_t i = 0; i < k; i++)
			memcpy(t + 6 + 3 * i, "{},", 3);
		t[6 + 3 * k - 1] = ']';
		t[6 + 3 * k] = '}';
		h.json_len = (uint32_t)tl;
		memcpy(eb, &h, sizeof(h));
		held_listing(0, 61, eb, sizeof(h) + tl);
		assert_null(e->held);
		assert_true(T.m.w[0].held_bytes <= share);
		assert_false(killed(0));
		free(eb);
		h.json_len = sizeof(small) - 1;
	}

	/* a second listing for the same request is not what a worker sends, even when
	 * the first was not listed */
	say(0, PRIV_HELD_INFO, 60, sb, sizeof(h) + h.json_len);
	assert_true(killed(0));
	free(b);
	free(sb);
}

/* A CancelRequest reaches the session whose key it names even when another session
 * (of another cgroup) happens to have the same key "pid". */
static void test_cancel_same_pid(void **state)
{
	struct priv_cancel q;
	struct mon_conn *a, *b, *cc;
	uint32_t pid = htonl(12345), secret = htonl(99);
	struct priv_hdr h;
	int fd;

	(void)state;
	b = conn(1, 21, MC_RELAYING);
	b->have_key = true;
	b->key_pid = 12345;
	b->key_secret = 99;
	a = conn(0, 20, MC_RELAYING); /* found first */
	a->have_key = true;
	a->key_pid = 12345;
	a->key_secret = 7;
	a->origin.cgroup_id = 78;
	cc = conn(0, 22, MC_STARTUP);
	{
		int sv[2];

		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
		cc->cfd = sv[0];
		close(sv[1]);
	}
	memset(&q, 0, sizeof(q));
	memcpy(q.pkt + 8, &pid, 4);
	memcpy(q.pkt + 12, &secret, 4);
	say(0, PRIV_CANCEL, 22, &q, sizeof(q));
	assert_ptr_equal(T.m.head, cc); /* not ended as an unknown key */
	assert_int_equal(cc->st, MC_CANCELLING);
	assert_ptr_equal(cc->w, &T.m.w[1]);
	assert_true(priv_recv(T.wend[1][0], T.m.buf, PRIV_MAX_MSG, &fd) == (long)sizeof(struct priv_new_conn));
	memcpy(&h, T.m.buf, sizeof(h));
	assert_int_equal(h.type, PRIV_NEW_CONN);
	assert_int_equal(h.conn, 22);
	if (fd >= 0)
		close(fd);
}

/* A session's cancel key is its own: a worker that hands a new session the key of a
 * live one (read from a CancelRequest for it) is ended, so the victim's later cancels
 * still reach the victim (on_cancel routes by key and cgroup, newest first). */
static void test_cancel_key_not_reused(void **state)
{
	struct priv_logged_in q = { .key_pid = 12345, .key_secret = 99, .up_idx = 0 };
	struct mon_conn *victim, *ok, *squat;

	(void)state;
	victim = conn(1, 30, MC_RELAYING);
	victim->have_key = true;
	victim->key_pid = 12345;
	victim->key_secret = 99;
	/* the same "pid" with another secret is two sessions' chance, and fine */
	ok = conn(0, 31, MC_AUTHORIZED);
	ok->n_addrs = 1;
	q.key_secret = 100;
	say(0, PRIV_LOGGED_IN, 31, &q, sizeof(q));
	assert_int_equal(ok->st, MC_RELAYING);
	assert_false(killed(0));
	squat = conn(0, 32, MC_AUTHORIZED);
	squat->n_addrs = 1;
	q.key_secret = 99;
	say(0, PRIV_LOGGED_IN, 32, &q, sizeof(q));
	assert_true(killed(0));
	assert_int_equal(victim->st, MC_RELAYING);
}

/* The parent's refusal of a fresh connection, read from whichever worker got it. */
static void accepted_refusal(struct priv_new_conn *nc)
{
	struct priv_hdr h;
	long n = -1;
	int fd = -1;

	for (unsigned i = 0; i < 2 && n < 0; i++)
		n = priv_recv(T.wend[i][0], T.m.buf, PRIV_MAX_MSG, &fd);
	assert_int_equal(n, (long)sizeof(*nc)); /* the body's length */
	memcpy(&h, T.m.buf, sizeof(h));
	assert_int_equal(h.type, PRIV_NEW_CONN);
	memcpy(nc, T.m.buf + sizeof(h), sizeof(*nc));
	assert_true(fd >= 0);
	close(fd);
}

/* The parent names each refusal's fault (the worker logs its reason) and says it in
 * the table's words, as before the table: a login cap, then no kernel record. */
static void test_refusal_faults(void **state)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sin);
	struct priv_new_conn nc;
	char want[256], peer[ADDR_STRLEN];
	int lfd, cfd[3];

	(void)state;
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(lfd, 4), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sin, &sl), 0);
	for (unsigned k = 0; k < 3; k++) {
		cfd[k] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		assert_int_equal(connect(cfd[k], (struct sockaddr *)&sin, sizeof(sin)), 0);
		/* one at a time: each under its own configuration */
		if (k == 0) {
			T.cfg.max_logins = 0;
		} else if (k == 1) {
			T.cfg.max_logins = 8;
			T.cfg.max_logins_per_cgroup = 0;
		} else {
			T.cfg.max_logins_per_cgroup = 8;
		}
		assert_int_equal(monitor_accept(&T.m, lfd), 0);
		accepted_refusal(&nc);
		if (k == 0) {
			assert_int_equal(nc.refuse_fault, FAULT_PARENT_MAX_LOGINS);
			assert_true(nc.capped);
			assert_string_equal(nc.refuse_sqlstate, "53300");
			assert_string_equal(nc.refuse_msg, "pgtether: too many connections still logging in (max_logins 0); try again later");
		} else if (k == 1) {
			assert_int_equal(nc.refuse_fault, FAULT_PARENT_CGROUP_LOGINS);
			assert_true(nc.capped);
			assert_string_equal(nc.refuse_sqlstate, "53300");
			assert_string_equal(nc.refuse_msg, "pgtether: too many connections of no known cgroup still logging in "
					    "(max_logins_per_cgroup 0); try again later");
		} else {
			struct sockaddr_in me;
			struct addr a;

			sl = sizeof(me);
			assert_int_equal(getsockname(cfd[k], (struct sockaddr *)&me, &sl), 0);
			assert_int_equal(addr_from_sockaddr((struct sockaddr *)&me, &a), 0);
			snprintf(want, sizeof(want), "pgtether: this connection was not redirected by pgtether (%s connected to the "
				 "listener directly); connect to the database's own address instead", addr_format(&a, peer));
			assert_int_equal(nc.refuse_fault, FAULT_PARENT_NOT_REDIRECTED);
			assert_false(nc.capped);
			assert_string_equal(nc.refuse_sqlstate, "08004");
			assert_string_equal(nc.refuse_msg, want);
		}
		close(cfd[k]);
	}
	assert_null(T.m.head); /* a refusal is the worker's alone */
	close(lfd);
	free(T.m.logins.keys); /* monitor_free's */
}

/* Upstream sockets carry the mark that the connect hook (and any rule keyed on it)
 * lets through: the parent connects them itself, to the session's addresses only. */
static void test_socket_only_upstream(void **state)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sin);
	struct addr to, other;
	struct mon_conn *c;
	uint8_t b[256];
	struct priv_hdr h;
	struct priv_reply rp;
	int lfd, fd, acc;

	(void)state;
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(lfd, 4), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sin, &sl), 0);
	assert_int_equal(addr_from_sockaddr((struct sockaddr *)&sin, &to), 0);
	other = to;
	other.port = (uint16_t)(to.port + 1);
	c = conn(0, 30, MC_AUTHORIZED);
	c->addrs[0] = to;
	c->n_addrs = 1;

	say(0, PRIV_SOCKET, 30, &other, sizeof(other));
	assert_true(priv_recv(T.wend[0][1], b, sizeof(b), &fd) >= (long)sizeof(rp));
	memcpy(&rp, b + sizeof(h), sizeof(rp));
	assert_int_equal(rp.result, -EPERM);
	assert_int_equal(fd, -1);

	say(0, PRIV_SOCKET, 30, &to, sizeof(to));
	assert_true(priv_recv(T.wend[0][1], b, sizeof(b), &fd) >= (long)sizeof(rp));
	memcpy(&rp, b + sizeof(h), sizeof(rp));
	assert_int_equal(rp.result, 0);
	assert_true(fd >= 0);
	/* connecting already: the listener sees it without the worker calling connect() */
	acc = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(acc >= 0);
	close(acc);
	close(fd);
	close(lfd);
	assert_false(killed(0));
}

/* The proof thread computes one worker's proof at a time, with the iteration count
 * the server (or a worker) names: one must stay well inside the 5 s every other
 * worker's call may wait behind it (PRIV_CALL_TIMEOUT_MS). Refused at once. */
static void test_scram_iterations_bounded(void **state)
{
	struct priv_scram q;
	struct timespec a, b;
	size_t len;
	double secs;

	(void)state;
	conn(0, 40, MC_AUTHORIZED);
	memset(&q, 0, sizeof(q));
	snprintf(q.client_first_bare, sizeof(q.client_first_bare), "n=,r=abcdefghijklmnopqrstuvwx");
	snprintf(q.server_first, sizeof(q.server_first), "r=abcdefghijklmnopqrstuvwxSERVER,s=c2FsdHNhbHQ=,i=10000000");
	clock_gettime(CLOCK_MONOTONIC, &a);
	say(0, PRIV_SCRAM, 40, &q, sizeof(q));
	clock_gettime(CLOCK_MONOTONIC, &b);
	secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	assert_true(answer(0, NULL, 0, &len) < 0);
	assert_true(secs < 1.5);
	assert_false(killed(0));
}

/* ---- SCRAM proofs off the loop ------------------------------------------------------ */

#define NONCE24 "abcdefghijklmnopqrstuvwx"

static void scram_q(struct priv_scram *q, const char *salt_b64, unsigned iterations)
{
	memset(q, 0, sizeof(*q));
	snprintf(q->client_first_bare, sizeof(q->client_first_bare), "n=,r=" NONCE24);
	snprintf(q->server_first, sizeof(q->server_first), "r=" NONCE24 "SERVER,s=%s,i=%u", salt_b64, iterations);
}

/* True when a packet waits on the worker's request channel (an answer). */
static bool answered(unsigned worker)
{
	uint8_t b[64];

	return recv(T.wend[worker][1], b, sizeof(b), MSG_PEEK | MSG_DONTWAIT) > 0;
}

/* The reply's session. */
static uint64_t answer_conn(unsigned worker, int *result, struct priv_scram_reply *rp)
{
	static uint8_t b[1 << 16];
	struct priv_reply r;
	struct priv_hdr h;
	int fd;
	long n = priv_recv(T.wend[worker][1], b, sizeof(b), &fd);

	assert_true(n >= (long)sizeof(r));
	memcpy(&h, b, sizeof(h));
	assert_int_equal(h.type, PRIV_REPLY);
	memcpy(&r, b + sizeof(h), sizeof(r));
	*result = r.result;
	if (rp) {
		memset(rp, 0, sizeof(*rp));
		if (r.len == sizeof(*rp))
			memcpy(rp, b + sizeof(h) + sizeof(r), sizeof(*rp));
	}
	return h.conn;
}

/* The loop's part when the proof thread's eventfd wakes it, once. A guard against a
 * hang, not a timing check: a 10^6-iteration proof is ~0.6 s of a core, and a loaded
 * 2-core machine gave this process a sixth of one (10 s timed out there once). */
static void proofs_wait(void)
{
	struct pollfd p = { scrampool_fd(T.m.proofs), POLLIN, 0 };

	assert_int_equal(poll(&p, 1, 120000), 1);
	monitor_proofs_done(&T.m);
}

/* While a worker's 10^6-iteration proof is computed (~0.6 s), the parent answers the
 * others: here another worker's md5 call and a status request, answered while that
 * PBKDF2 has not finished. Before, the proof was computed in the loop: the first
 * worker's answer was already out, and everything else had waited for it. */
static void test_scram_off_the_loop(void **state)
{
	struct priv_scram q;
	struct priv_scram_reply rp;
	char md5[64] = "";
	size_t len;
	json_t *st;
	int result;

	(void)state;
	conn(0, 40, MC_AUTHORIZED);
	conn(1, 41, MC_AUTHORIZED);
	scram_q(&q, "c2FsdHNhbHQ=", 1000000);
	say(0, PRIV_SCRAM, 40, &q, sizeof(q));
	assert_false(answered(0));
	say(1, PRIV_MD5, 41, "salt", 4);
	assert_int_equal(answer(1, md5, sizeof(md5), &len), 0);
	assert_int_equal(strncmp(md5, "md5", 3), 0);
	st = monitor_status(&T.m);
	assert_int_equal(json_array_size(st), 2);
	json_decref(st);
	/* still computing: no result counted yet, no answer */
	{
		struct pollfd p = { scrampool_fd(T.m.proofs), POLLIN, 0 };

		assert_int_equal(poll(&p, 1, 0), 0);
	}
	assert_false(answered(0));
	proofs_wait();
	assert_int_equal(answer_conn(0, &result, &rp), 40);
	assert_int_equal(result, 0);
	assert_non_null(strstr(rp.client_final, ",p="));
	assert_false(killed(0));
	assert_false(killed(1));
}

/* The answer from the proof thread, and one from the cache after it, are the proof
 * scram.c computes in one go (4096 iterations: PostgreSQL's). */
static void test_scram_answer_is_the_proof(void **state)
{
	struct priv_scram q;
	struct priv_scram_reply rp;
	struct scram_client sc;
	char expect[SCRAM_MAX_MESSAGE];
	int result;

	(void)state;
	scram_q(&q, "W22ZaJ0SNY7soEsUEjb6gQ==", 4096);
	scram_client_first(&sc, "", NONCE24, expect, sizeof(expect));
	assert_true(scram_client_final(&sc, T.password, q.server_first, strlen(q.server_first), NULL, expect,
				       sizeof(expect)) > 0);
	conn(0, 43, MC_AUTHORIZED);
	say(0, PRIV_SCRAM, 43, &q, sizeof(q));
	proofs_wait();
	assert_int_equal(answer_conn(0, &result, &rp), 43);
	assert_int_equal(result, 0);
	assert_string_equal(rp.client_final, expect);
	assert_memory_equal(rp.server_signature, sc.server_signature, SCRAM_KEY_LEN);
	/* cached now: answered at once, by the other worker too */
	conn(1, 44, MC_AUTHORIZED);
	say(1, PRIV_SCRAM, 44, &q, sizeof(q));
	assert_true(answered(1));
	assert_int_equal(answer_conn(1, &result, &rp), 44);
	assert_string_equal(rp.client_final, expect);
	assert_int_equal(scrampool_jobs(T.m.proofs), 0);
	scram_client_release(&sc);
}

/* A worker waits for each call's answer: another call while its proof is computed is
 * a worker taken over queueing work (or wanting answers out of order): it ends. */
static void test_scram_one_call_at_a_time(void **state)
{
	struct priv_scram q;

	(void)state;
	conn(0, 45, MC_AUTHORIZED);
	conn(0, 46, MC_AUTHORIZED);
	scram_q(&q, "c2FsdHNhbHQ=", 1000000);
	say(0, PRIV_SCRAM, 45, &q, sizeof(q));
	assert_false(answered(0));
	say(0, PRIV_MD5, 46, "salt", 4);
	assert_true(killed(0));
}

/* A session that ends while its proof waits or runs gets no answer, late or not; a
 * job nobody waits for is dropped before it starts; and a worker cannot queue more by
 * ending sessions: one job of its own in the pool at a time. */
static void test_scram_ended_no_late_answer(void **state)
{
	struct priv_scram q;
	int result;

	(void)state;
	conn(1, 50, MC_AUTHORIZED);
	conn(0, 51, MC_AUTHORIZED);
	conn(0, 52, MC_AUTHORIZED);
	conn(0, 53, MC_AUTHORIZED);
	scram_q(&q, "QUFBQQ==", 1000000);
	say(1, PRIV_SCRAM, 50, &q, sizeof(q)); /* the thread is busy with this one */
	scram_q(&q, "QkJCQg==", 1000000);
	say(0, PRIV_SCRAM, 51, &q, sizeof(q));
	say(0, PRIV_ENDED, 51, NULL, 0);       /* queued: dropped */
	assert_int_equal(scrampool_jobs(T.m.proofs), 1);
	assert_int_equal(T.m.w[0].proofs, 0);
	scram_q(&q, "Q0NDQw==", 1000000);
	say(0, PRIV_SCRAM, 52, &q, sizeof(q)); /* allowed: its first is gone */
	assert_false(killed(0));
	proofs_wait();                          /* 50 done; 52 runs (the thread takes it at once) */
	assert_int_equal(answer_conn(1, &result, NULL), 50);
	assert_int_equal(result, 0);
	say(0, PRIV_ENDED, 52, NULL, 0);       /* running: it finishes, unanswered */
	assert_int_equal(T.m.w[0].proofs, 1);
	proofs_wait();
	assert_false(answered(0));
	assert_int_equal(T.m.w[0].proofs, 0);
	/* its key was kept: the same salt is answered at once, for the session that asks */
	say(0, PRIV_SCRAM, 53, &q, sizeof(q));
	assert_int_equal(answer_conn(0, &result, NULL), 53);
	assert_int_equal(result, 0);
	assert_false(killed(0));
}

/* Ending a session while its proof runs, to ask for another: the worker ends. */
static void test_scram_abandon_and_ask_again_kills(void **state)
{
	struct priv_scram q;
	int result;

	(void)state;
	conn(1, 54, MC_AUTHORIZED);
	conn(0, 55, MC_AUTHORIZED);
	conn(0, 56, MC_AUTHORIZED);
	scram_q(&q, "QUFBQQ==", 1000000);
	say(1, PRIV_SCRAM, 54, &q, sizeof(q));
	scram_q(&q, "QkJCQg==", 1000000);
	say(0, PRIV_SCRAM, 55, &q, sizeof(q));
	proofs_wait();                          /* 54 answered, 55 running */
	assert_int_equal(answer_conn(1, &result, NULL), 54);
	say(0, PRIV_ENDED, 55, NULL, 0);
	scram_q(&q, "RERERA==", 1000000);
	say(0, PRIV_SCRAM, 56, &q, sizeof(q));
	assert_true(killed(0));
}

/* A worker that dies while its proof runs, replaced in the same slot: the new process
 * gets no answer meant for the old one, and its own first proof is not counted
 * against it. */
static void test_scram_worker_replaced(void **state)
{
	struct priv_scram q;
	char md5[64];
	size_t len;
	int result;
	pid_t pid;

	(void)state;
	conn(0, 60, MC_AUTHORIZED);
	scram_q(&q, "QUFBQQ==", 1000000);
	say(0, PRIV_SCRAM, 60, &q, sizeof(q));
	/* the worker dies; the parent reaps it (not restarting it: the test does) */
	kill(T.m.w[0].pid, SIGKILL);
	T.m.stopping = true;
	for (int i = 0; i < 300 && T.m.w[0].pid > 0; i++, usleep(10000))
		monitor_children(&T.m);
	T.m.stopping = false;
	assert_int_equal(T.m.w[0].pid, 0);
	assert_null(T.m.head);
	worker_down(0);
	worker_up(0);
	conn(0, 61, MC_AUTHORIZED);
	conn(0, 62, MC_AUTHORIZED);
	say(0, PRIV_MD5, 61, "salt", 4);
	assert_int_equal(answer(0, md5, sizeof(md5), &len), 0);
	scram_q(&q, "QkJCQg==", 4096);
	say(0, PRIV_SCRAM, 62, &q, sizeof(q));
	assert_false(killed(0));
	proofs_wait();                          /* the old process's job: nobody's now */
	if (!answered(0))
		proofs_wait();                  /* then the new one's */
	assert_int_equal(answer_conn(0, &result, NULL), 62);
	assert_int_equal(result, 0);
	assert_false(answered(0));
	pid = T.m.w[0].pid;
	assert_true(pid > 0);
}

/* A bool the worker sends is one byte it chose: anything but 0 or 1 is a packet no
 * worker makes (loading it as a bool is undefined behaviour in root), found by
 * fuzz_monitor. */
static void test_identify_bool_checked(void **state)
{
	struct priv_identify q;
	uint8_t b[sizeof(q)];

	(void)state;
	conn(0, 50, MC_STARTUP);
	memset(&q, 0, sizeof(q));
	snprintf(q.user, sizeof(q.user), "app");
	snprintf(q.database, sizeof(q.database), "app");
	memcpy(b, &q, sizeof(q));
	b[offsetof(struct priv_identify, client_tls)] = 64;
	say(0, PRIV_IDENTIFY, 50, b, sizeof(b));
	assert_true(killed(0));
}

/* Sessions are found by id through buckets (monitor.c conn_find): ids sharing a bucket,
 * the index growing, and sessions ended in the middle of a chain. */
static void test_conn_index(void **state)
{
	enum { N = 300 };
	struct mon_conn *c[N + 1];
	size_t len;

	(void)state;
	for (uint64_t id = 1; id <= N; id++)
		c[id] = conn(0, id * 64 + 7, MC_RELAYING); /* all in one bucket until it grows */
	for (uint64_t id = 1; id <= N; id += 3)
		say(0, PRIV_ENDED, id * 64 + 7, NULL, 0);
	for (uint64_t id = 1; id <= N; id++) {
		say(0, PRIV_HELD, id * 64 + 7, NULL, 0); /* an ended one: ENOENT */
		if (id % 3 != 1) {
			assert_int_equal(answer(0, NULL, 0, &len), 0);
			assert_true(c[id]->held_id != 0);
		} else {
			assert_int_equal(answer(0, NULL, 0, &len), -ENOENT);
		}
	}
	assert_false(killed(0));
	assert_int_equal(T.m.n_conns, N - (N + 2) / 3);
	while (T.m.head) {
		T.m.head->cfd = -1;
		conn_end(&T.m, T.m.head);
	}
	assert_null(T.m.by_id); /* the last one gone: nothing held */
}

/* A STATS packet names up to PRIV_STATS_MAX sessions: with thousands of sessions each
 * must not be a walk of all of them (8 packets of 1024 over 8192 sessions were 67 M
 * list steps in the root parent's loop, seconds under ASan). Checked by the shape of
 * the index every lookup goes through, not by a clock: every bucket's chain is short,
 * and every session is found in its bucket. */
static void test_stats_many_sessions(void **state)
{
	enum { N = 8192 };
	struct priv_stat *st = calloc(PRIV_STATS_MAX, sizeof(*st));
	struct mon_conn *first = NULL;
	size_t longest = 0, indexed = 0;

	(void)state;
	for (uint64_t id = 1; id <= N; id++) {
		struct mon_conn *c = conn(0, id, MC_RELAYING);

		if (id == 1)
			first = c;
	}
	assert_true(T.m.n_by_id >= N);
	for (size_t b = 0; b < T.m.n_by_id; b++) {
		size_t len = 0;

		for (struct mon_conn *c = T.m.by_id[b]; c; c = c->hnext, len++)
			assert_int_equal((size_t)c->id & (T.m.n_by_id - 1), b);
		longest = len > longest ? len : longest;
		indexed += len;
	}
	assert_int_equal(indexed, N);
	assert_true(longest <= 2);
	for (unsigned k = 0; k < 8; k++) {
		/* the oldest sessions: the end of the list */
		for (unsigned i = 0; i < PRIV_STATS_MAX; i++) {
			st[i].conn = 1 + i;
			st[i].bytes_in = 1000 + k;
		}
		say(0, PRIV_STATS, 0, st, PRIV_STATS_MAX * sizeof(*st));
	}
	assert_int_equal(first->bytes_in, 1007);
	assert_false(killed(0));
	free(st);
}

/* ---- a worker's word is not the end of a session ---------------------------------- */

/* A listener on loopback and c (AUTHORIZED, its only address the listener's). */
static int upstream_listener(struct mon_conn *c)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sin);
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_int_equal(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(lfd, 4), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sin, &sl), 0);
	assert_int_equal(addr_from_sockaddr((struct sockaddr *)&sin, &c->addrs[0]), 0);
	c->n_addrs = 1;
	return lfd;
}

/* The worker's call for an upstream socket: the fd it gets (-1: none) and the result. */
static int ask_socket(unsigned worker, struct mon_conn *c, int *fd)
{
	uint8_t b[256];
	struct priv_reply rp;

	say(worker, PRIV_SOCKET, c->id, &c->addrs[0], sizeof(c->addrs[0]));
	assert_true(priv_recv(T.wend[worker][1], b, sizeof(b), fd) >= (long)sizeof(rp));
	memcpy(&rp, b + sizeof(struct priv_hdr), sizeof(rp));
	return rp.result;
}

/* Whether fd reads end of stream within 200 ms. */
static bool reads_eof(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char b;

	return poll(&p, 1, 200) == 1 && read(fd, &b, 1) == 0;
}

/* A worker that says a session ENDED while it relays on would keep a session the
 * parent no longer sees: not in status, not decided again at a reload, not counted.
 * ENDED ends it: the client socket is shut (the worker's fd of it too: same socket)
 * and the upstream connection the worker alone holds is aborted by its kernel name. */
static void test_ended_severs(void **state)
{
	struct priv_logged_in q = { 0x1234, 0x5678, 0 };
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct mon_conn *c;
	struct addr local, to;
	uint64_t cookie;
	socklen_t cl = sizeof(cookie);
	int sv[2], lfd, up, acc, wcfd;

	(void)state;
	c = conn(0, 60, MC_AUTHORIZED);
	lfd = upstream_listener(c);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	c->cfd = sv[0];
	wcfd = dup(sv[0]); /* the worker's copy of the client socket */
	assert_int_equal(ask_socket(0, c, &up), 0);
	assert_true(up >= 0);
	acc = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(acc >= 0);
	/* the parent knows it by what the kernel calls it */
	assert_int_equal(getsockname(up, (struct sockaddr *)&ss, &sl), 0);
	assert_int_equal(addr_from_sockaddr((struct sockaddr *)&ss, &local), 0);
	assert_int_equal(getsockopt(up, SOL_SOCKET, SO_COOKIE, &cookie, &cl), 0);
	assert_int_equal(c->n_up_socks, 1);
	assert_memory_equal(&c->up_socks[0].local, &local, sizeof(local));
	assert_true(c->up_socks[0].cookie == cookie);
	say(0, PRIV_LOGGED_IN, 60, &q, sizeof(q));
	assert_int_equal(c->st, MC_RELAYING);

	to = c->addrs[0];
	stub_n_destroyed = 0;
	say(0, PRIV_ENDED, 60, NULL, 0);
	assert_false(linked(60));
	assert_true(reads_eof(sv[1])); /* though the worker still has it open */
	assert_int_equal(stub_n_destroyed, 1);
	assert_memory_equal(&stub_destroyed[0].local, &local, sizeof(local));
	assert_memory_equal(&stub_destroyed[0].remote, &to, sizeof(to));
	assert_true(stub_destroyed[0].cookie == cookie);
	assert_false(killed(0));
	close(wcfd);
	close(sv[1]);
	close(up);
	close(acc);
	close(lfd);
}

/* A login has one socket per address and none after its proof: every socket that
 * could carry the login is one the parent can abort. */
static void test_login_sockets_bounded(void **state)
{
	struct mon_conn *c;
	int lfd, fd, acc;

	(void)state;
	c = conn(0, 61, MC_AUTHORIZED);
	lfd = upstream_listener(c);
	assert_int_equal(ask_socket(0, c, &fd), 0);
	close(fd);
	assert_int_equal(ask_socket(0, c, &fd), -EINVAL); /* its one address, twice */
	assert_int_equal(fd, -1);
	assert_int_equal(c->n_up_socks, 1);
	assert_false(killed(0));
	acc = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	close(acc);
	c->login_asked = true;
	say(0, PRIV_SOCKET, 61, &c->addrs[0], sizeof(c->addrs[0]));
	assert_true(killed(0));
	close(lfd);
}

/* A worker that closes its request channel and lives can be asked nothing more of its
 * sessions: it is killed, and gets no new connection meanwhile. */
static void test_request_channel_closed(void **state)
{
	(void)state;
	shutdown(T.wend[1][1], SHUT_RDWR); /* its stand-in process has a copy of this end */
	monitor_worker_event(&T.m, &T.m.w[1], EPOLLIN | EPOLLHUP);
	assert_false(T.m.w[1].ready);
	assert_true(pick_worker(&T.m) == &T.m.w[0]);
	assert_true(killed(1));
}

/* New connections go to the workers in turn: a worker that keeps its own count low
 * (ending its sessions at once) does not draw every new connection to itself. */
static void test_workers_in_turn(void **state)
{
	unsigned got[2] = { 0, 0 };

	(void)state;
	T.m.w[0].sessions = 0;
	T.m.w[1].sessions = 100;
	for (int i = 0; i < 10; i++)
		got[pick_worker(&T.m)->idx]++;
	assert_int_equal(got[0], 5);
	assert_int_equal(got[1], 5);
}

/* A reload is decided again by the parent, with its own facts: the rule a session is
 * under follows a rename, and a session whose access is gone is ended even when its
 * worker (taken over) goes on: its upstream connections after MON_WITHDRAW_GRACE_S,
 * the rest once an honest worker would have let the client read why. */
static void test_reload_decided_by_parent(void **state)
{
	static const char renamed[] = "{\"rules\": [{\"name\": \"ci-new\", \"match\": {\"cgroup\": \"/ci\"},"
		" \"token\": {\"source\": \"none\"}, \"upstream\": \"db\"}]}";
	static const char denied[] = "{\"rules\": [{\"name\": \"no-ci\", \"effect\": \"deny\", \"match\": {\"cgroup\": \"/ci\"}},"
		" {\"name\": \"ci-new\", \"match\": {\"cgroup\": \"/ci\"}, \"token\": {\"source\": \"none\"}, \"upstream\": \"db\"}]}";
	char err[POLICY_ERR_LEN];
	struct mon_conn *c, *l;
	int sv[2];

	(void)state;
	T.up.role = "app";
	c = conn(0, 70, MC_RELAYING);
	l = conn(1, 71, MC_AUTHORIZED); /* logging in upstream under the old snapshot */
	snprintf(c->facts.cgroup, sizeof(c->facts.cgroup), "/ci");
	snprintf(l->facts.cgroup, sizeof(l->facts.cgroup), "/ci");
	snprintf(c->rule, sizeof(c->rule), "ci");
	snprintf(l->rule, sizeof(l->rule), "ci");
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	c->cfd = sv[0];
	c->n_up_socks = 1;
	c->up_socks[0].cookie = 99;

	assert_int_equal(policy_parse(&T.cfg.policy, "10-ci.json", renamed, strlen(renamed), err), 0);
	login_reloaded(&T.m);
	assert_string_equal(c->rule, "ci-new");
	assert_string_equal(l->rule, "ci-new");
	assert_true(c->withdrawn_at == 0 && l->withdrawn_at == 0);
	/* the same rule read-only now: not the session it logged in as */
	c->read_only = true;
	login_reloaded(&T.m);
	assert_true(c->withdrawn_at != 0);
	assert_true(l->withdrawn_at == 0);
	policy_release(&T.cfg.policy);

	assert_int_equal(policy_parse(&T.cfg.policy, "10-ci.json", denied, strlen(denied), err), 0);
	login_reloaded(&T.m);
	assert_true(l->withdrawn_at != 0);
	stub_n_destroyed = 0;
	assert_false(login_withdrawn_overdue(&T.m, c, MON_WITHDRAW_GRACE_S - 1));
	assert_int_equal(stub_n_destroyed, 0);
	assert_false(login_withdrawn_overdue(&T.m, c, MON_WITHDRAW_GRACE_S));
	assert_int_equal(stub_n_destroyed, 1); /* the server connection, at once */
	assert_true(stub_destroyed[0].cookie == 99);
	assert_true(linked(70)); /* the client may still be reading why */
	assert_false(login_withdrawn_overdue(&T.m, c, SESSION_REFUSE_TIMEOUT_S + MON_LOGIN_GRACE_S - 1));
	assert_int_equal(stub_n_destroyed, 1);
	assert_true(login_withdrawn_overdue(&T.m, c, SESSION_REFUSE_TIMEOUT_S + MON_LOGIN_GRACE_S));
	assert_false(linked(70));
	assert_true(reads_eof(sv[1]));
	close(sv[1]);
	assert_true(login_withdrawn_overdue(&T.m, l, SESSION_REFUSE_TIMEOUT_S + MON_LOGIN_GRACE_S));
	assert_false(linked(71));
	policy_release(&T.cfg.policy);
	assert_false(killed(0));
}

/* ---- a plain upstream's startup is the parent's ------------------------------------ */

/* The worker's call with an fd (the test keeps its own). */
static void say_fd(unsigned worker, uint32_t type, uint64_t id, const void *body, size_t len, int fd)
{
	assert_int_equal(priv_send(T.wend[worker][1], type, id, body, len, fd), 0);
	monitor_worker_event(&T.m, &T.m.w[worker], EPOLLIN);
}

/* A plain upstream's login c (its listener *lfd, the server's end *acc) with its
 * socket connected (*up, the worker's). */
static struct mon_conn *plain_login(uint64_t id, int *lfd, int *up, int *acc)
{
	struct pollfd p;
	struct mon_conn *c;

	T.up.tls = CONFIG_TLS_DISABLE;
	c = conn(0, id, MC_AUTHORIZED);
	snprintf(c->database, sizeof(c->database), "appdb");
	snprintf(c->rule, sizeof(c->rule), "ci");
	snprintf(c->facts.cgroup, sizeof(c->facts.cgroup), "/ci");
	*lfd = upstream_listener(c);
	assert_int_equal(ask_socket(0, c, up), 0);
	*acc = accept4(*lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(*acc >= 0);
	p = (struct pollfd){ .fd = *up, .events = POLLOUT };
	assert_int_equal(poll(&p, 1, 1000), 1);
	return c;
}

static void startup_q(struct priv_startup *q, const char *app, const char *fwd, size_t fwd_len)
{
	memset(q, 0, sizeof(*q));
	snprintf(q->client_app, sizeof(q->client_app), "%s", app);
	memcpy(q->fwd_params, fwd, fwd_len);
	q->fwd_len = (uint32_t)fwd_len;
}

/* Whether the packet the server got (n bytes at b) has name=value. */
static bool has_param(const uint8_t *b, size_t n, const char *name, const char *value)
{
	for (size_t at = 8; at < n;) {
		const char *k = (const char *)b + at, *v = k + strlen(k) + 1;

		if (!*k)
			break;
		if (!strcmp(k, name) && !strcmp(v, value))
			return true;
		at = (size_t)((const uint8_t *)v - b) + strlen(v) + 1;
	}
	return false;
}

/* The worker has the parent write the StartupMessage of a plain upstream: the
 * database, role and identity are the parent's (the database the rule was decided
 * for), the client's settings are checked again; the login's other sockets are
 * aborted, and no socket is handed out after it. */
static void test_startup_by_parent(void **state)
{
	static const char fwd[] = "client_encoding\0UTF8\0search_path\0public\0";
	struct priv_startup q;
	struct mon_conn *c;
	uint8_t b[4096];
	ssize_t n;
	size_t len;
	int lfd, up, acc, fd;

	(void)state;
	c = plain_login(80, &lfd, &up, &acc);
	c->up_socks[1] = c->up_socks[0]; /* as if an address tried before */
	c->up_socks[1].cookie++;
	c->n_up_socks = 2;
	startup_q(&q, "psql", fwd, sizeof(fwd) - 1);
	stub_n_destroyed = 0;
	say_fd(0, PRIV_STARTUP, 80, &q, sizeof(q), up);
	assert_int_equal(answer(0, NULL, 0, &len), 0);
	assert_true(c->startup_sent);
	n = recv(acc, b, sizeof(b), 0);
	assert_true(n > 8);
	assert_true(has_param(b, (size_t)n, "user", "app"));
	assert_true(has_param(b, (size_t)n, "database", "appdb"));
	assert_true(has_param(b, (size_t)n, "application_name", "pgtether:/ci:psql"));
	assert_true(has_param(b, (size_t)n, "search_path", "public"));
	assert_true(has_param(b, (size_t)n, "client_encoding", "UTF8"));
	assert_true(has_param(b, (size_t)n, "pgtether.identity", "cgroup=/ci;uid=1000;gid=0;pid=4242;exe=;comm=;rule=ci"));
	assert_int_equal(stub_n_destroyed, 1); /* the other one */
	assert_true(stub_destroyed[0].cookie == c->up_socks[0].cookie + 1);
	assert_int_equal(c->n_up_socks, 1);
	assert_false(killed(0));
	/* no more sockets for this login */
	say(0, PRIV_SOCKET, 80, &c->addrs[0], sizeof(c->addrs[0]));
	assert_true(killed(0));
	(void)fd;
	close(up);
	close(acc);
	close(lfd);
}

/* Every way around it ends the worker: a proof before the parent's startup, settings
 * the client could not have passed, a socket written to already, one not of the
 * login, a second startup. */
static void test_startup_refusals(void **state)
{
	static const char as_admin[] = "user\0postgres\0";
	static const char bad_path[] = "search_path\0evil, pg_catalog\0";
	static const char ok[] = "client_encoding\0UTF8\0";
	struct priv_scram sq;
	struct priv_startup q;
	struct mon_conn *c;
	size_t len;
	int lfd, up, acc, other[2];

	(void)state;
	c = plain_login(81, &lfd, &up, &acc);
	memset(&sq, 0, sizeof(sq));
	say(0, PRIV_SCRAM, 81, &sq, sizeof(sq));
	assert_true(killed(0));
	c->login_asked = false; /* marked as it was asked; the rest is about the startup */

	for (int i = 0; i < 2; i++) {
		worker_down(0);
		worker_up(0);
		startup_q(&q, "", i ? bad_path : as_admin, i ? sizeof(bad_path) - 1 : sizeof(as_admin) - 1);
		say_fd(0, PRIV_STARTUP, 81, &q, sizeof(q), up);
		assert_true(killed(0));
		assert_false(c->startup_sent);
	}

	worker_down(0);
	worker_up(0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, other), 0);
	startup_q(&q, "", ok, sizeof(ok) - 1);
	say_fd(0, PRIV_STARTUP, 81, &q, sizeof(q), other[0]); /* not its socket */
	assert_true(killed(0));
	close(other[0]);
	close(other[1]);

	worker_down(0);
	worker_up(0);
	assert_int_equal(send(up, "\0\0\0\x10", 4, 0), 4); /* its own startup first */
	say_fd(0, PRIV_STARTUP, 81, &q, sizeof(q), up);
	assert_true(killed(0));
	assert_false(c->startup_sent);
	close(up);
	close(acc);
	close(lfd);

	/* a second startup on a fresh login */
	worker_down(0);
	worker_up(0);
	c = plain_login(82, &lfd, &up, &acc);
	say_fd(0, PRIV_STARTUP, 82, &q, sizeof(q), up);
	assert_int_equal(answer(0, NULL, 0, &len), 0);
	say_fd(0, PRIV_STARTUP, 82, &q, sizeof(q), up);
	assert_true(killed(0));
	close(up);
	close(acc);
	close(lfd);
}

/* ---- a cancel's socket carries a CancelRequest, the parent's ------------------------ */

static const uint8_t cancel_pkt[16] = { 0, 0, 0, 16, 0x04, 0xd2, 0x16, 0x2e, 0, 0, 0, 7, 0, 0, 0, 9 };

/* A cancel c of worker 0 with its socket connected (*up, the worker's). */
static struct mon_conn *cancel_conn(uint64_t id, int *lfd, int *up, int *acc)
{
	struct pollfd p;
	struct mon_conn *c = conn(0, id, MC_CANCELLING);

	*lfd = upstream_listener(c);
	assert_int_equal(ask_socket(0, c, up), 0);
	*acc = accept4(*lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(*acc >= 0);
	p = (struct pollfd){ .fd = *up, .events = POLLOUT };
	assert_int_equal(poll(&p, 1, 1000), 1);
	assert_true(c->cancel_open);
	return c;
}

static void test_cancel_sent_by_parent(void **state)
{
	struct mon_conn *c;
	uint8_t b[32];
	size_t len;
	int lfd, up, acc, up2, acc2;

	(void)state;
	c = cancel_conn(90, &lfd, &up, &acc);
	/* a second try: the first socket can send nothing more */
	assert_int_equal(ask_socket(0, c, &up2), 0);
	acc2 = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(reads_eof(acc));
	assert_int_equal(send(up, "x", 1, MSG_NOSIGNAL), -1);
	assert_int_equal(T.m.w[0].cancels_open, 1);
	/* what is not a CancelRequest is not written */
	{
		uint8_t bad[16];

		memcpy(bad, cancel_pkt, 16);
		bad[7] ^= 1;
		say(0, PRIV_CANCEL_SEND, 90, bad, sizeof(bad));
		assert_true(killed(0));
		worker_down(0);
		worker_up(0);
	}
	{
		struct pollfd p = { .fd = up2, .events = POLLOUT };

		assert_int_equal(poll(&p, 1, 1000), 1);
	}
	say(0, PRIV_CANCEL_SEND, 90, cancel_pkt, sizeof(cancel_pkt));
	assert_int_equal(answer(0, NULL, 0, &len), 0);
	assert_int_equal(recv(acc2, b, sizeof(b), 0), 16);
	assert_memory_equal(b, cancel_pkt, 16);
	assert_false(c->cancel_open);
	assert_int_equal(T.m.w[0].cancels_open, 0);
	assert_false(killed(0));
	close(up);
	close(acc);
	close(up2);
	close(acc2);
	close(lfd);
}

/* A worker that writes on a cancel's socket itself (a startup of its choosing: a login
 * to any database) gets no proof for any session after that, nor its CancelRequest. */
static void test_cancel_socket_no_login(void **state)
{
	struct mon_conn *c, *a;
	uint8_t salt[4] = { 1, 2, 3, 4 };
	int lfd, up, acc;

	(void)state;
	c = cancel_conn(91, &lfd, &up, &acc);
	a = conn(0, 92, MC_AUTHORIZED); /* a TLS upstream (setup): its startup is the worker's */
	assert_int_equal(send(up, "\0\0\0\x08\0\x03\0\0", 8, MSG_NOSIGNAL), 8);
	say(0, PRIV_MD5, 92, salt, sizeof(salt));
	assert_true(killed(0));
	worker_down(0);
	worker_up(0);
	a->login_asked = false;
	say(0, PRIV_CANCEL_SEND, 91, cancel_pkt, sizeof(cancel_pkt));
	assert_true(killed(0));
	(void)c;
	close(up);
	close(acc);
	close(lfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_cleartext_only_verify_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_auth_methods_listed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_login_abandoned, setup, teardown),
		cmocka_unit_test_setup_teardown(test_out_of_order_kills, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stats_capped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ddl_flood_coalesced, setup, teardown),
		cmocka_unit_test_setup_teardown(test_held_info, setup, teardown),
		cmocka_unit_test_setup_teardown(test_held_listings_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_same_pid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_key_not_reused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_socket_only_upstream, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scram_iterations_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scram_off_the_loop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scram_answer_is_the_proof, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scram_one_call_at_a_time, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scram_ended_no_late_answer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scram_abandon_and_ask_again_kills, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scram_worker_replaced, setup, teardown),
		cmocka_unit_test_setup_teardown(test_identify_bool_checked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusal_faults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conn_index, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stats_many_sessions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ended_severs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_login_sockets_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_request_channel_closed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_workers_in_turn, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reload_decided_by_parent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_startup_by_parent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_startup_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_sent_by_parent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_socket_no_login, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
