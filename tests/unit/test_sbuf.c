/* Session buffers (daemon/sbuf.c): what may go out, what is held, growth under the
 * memory budget and the way back, driven over a socketpair. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "sbuf.h"
#include "tls.h"

struct fixture {
	uint8_t home[SBUF_SIZE];
	struct session_buf b;
	struct session_end a, z;     /* the two ends of one socketpair */
	struct quota_mem pool;
	struct sbuf_account acct;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	int sv[2];

	if (!f || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == -1)
		return -1;
	f->b.data = f->b.home = f->home;
	f->b.cap = SBUF_SIZE;
	f->a.fd = sv[0];
	f->z.fd = sv[1];
	f->acct.pool = &f->pool;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	sbuf_release(&f->b);
	close(f->a.fd);
	close(f->z.fd);
	free(f);
	return 0;
}

/* put makes bytes ready; held bytes (ready..len) never go out; flush compacts them to
 * the front and moves the scan position with them */
static void test_put_flush_held(void **state)
{
	struct fixture *f = *state;
	uint8_t got[64];
	size_t scan;

	sbuf_put(&f->b, "hello", 5);
	assert_int_equal(f->b.ready, 5);
	assert_int_equal(sbuf_room(&f->b), SBUF_SIZE - 5);
	memcpy(f->b.data + f->b.len, "held", 4); /* read, not yet checked */
	f->b.len += 4;
	scan = 7;
	assert_int_equal(sbuf_flush(&f->b, &f->a, &scan), 0);
	assert_int_equal(recv(f->z.fd, got, sizeof(got), 0), 5);
	assert_memory_equal(got, "hello", 5);
	assert_int_equal(f->b.off, 0);
	assert_int_equal(f->b.ready, 0);
	assert_int_equal(f->b.len, 4);
	assert_memory_equal(f->b.data, "held", 4);
	assert_int_equal(scan, 2);
	/* nothing ready: nothing sent */
	assert_int_equal(sbuf_flush(&f->b, &f->a, NULL), 0);
	assert_int_equal(recv(f->z.fd, got, sizeof(got), 0), -1);
	assert_int_equal(errno, EAGAIN);
}

/* a full socket is not an error: the rest waits, off marks what went */
static void test_flush_socket_full(void **state)
{
	struct fixture *f = *state;
	size_t sent = 0, total = 0;
	uint8_t got[4096];
	ssize_t n;

	int small = 4096;

	assert_int_equal(setsockopt(f->a.fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
	memset(f->b.data, 'x', SBUF_SIZE);
	f->b.len = f->b.ready = SBUF_SIZE;
	assert_int_equal(sbuf_flush(&f->b, &f->a, NULL), 0);
	/* part went, the rest waits where it is: compaction only once all ready bytes went */
	assert_true(f->b.off > 0 && f->b.off < SBUF_SIZE);
	assert_int_equal(f->b.len, SBUF_SIZE);
	for (int i = 0; i < 1024 && f->b.len; i++) {
		assert_int_equal(sbuf_flush(&f->b, &f->a, NULL), 0);
		total = SBUF_SIZE - f->b.len;
		while ((n = recv(f->z.fd, got, sizeof(got), 0)) > 0)
			sent += (size_t)n;
	}
	assert_int_equal(f->b.len, 0);
	assert_int_equal(sent, SBUF_SIZE);
	assert_int_equal(total, SBUF_SIZE);
}

/* fill keeps `reserve` bytes free, counts what it read, and marks EOF; the EOF is
 * passed on (shutdown) only once everything before it went */
static void test_fill_reserve_eof(void **state)
{
	struct fixture *f = *state;
	uint8_t big[SBUF_SIZE];
	uint64_t count = 0;
	uint8_t c;

	memset(big, 'y', sizeof(big));
	assert_int_equal(send(f->z.fd, "abc", 3, 0), 3);
	assert_int_equal(sbuf_fill(&f->b, &f->a, 0, &count), 3);
	assert_int_equal(count, 3);
	assert_int_equal(f->b.len, 3);
	assert_int_equal(f->b.ready, 0); /* read bytes are held until checked */
	/* nothing to read: 0, not an error */
	assert_int_equal(sbuf_fill(&f->b, &f->a, 0, NULL), 0);
	assert_false(f->b.eof);
	/* with only the reserve left, nothing is read */
	f->b.len = SBUF_SIZE - 10;
	assert_int_equal(send(f->z.fd, big, 100, 0), 100);
	assert_int_equal(sbuf_fill(&f->b, &f->a, 10, NULL), 0);
	assert_int_equal(sbuf_fill(&f->b, &f->a, 4, NULL), 6);
	assert_int_equal(f->b.len, SBUF_SIZE - 4);
	/* EOF */
	f->b.len = 0;
	while (sbuf_fill(&f->b, &f->a, 0, NULL) > 0)
		f->b.len = 0;
	shutdown(f->z.fd, SHUT_WR);
	assert_int_equal(sbuf_fill(&f->b, &f->a, 0, NULL), 0);
	assert_true(f->b.eof);
	sbuf_put(&f->b, "q", 1);
	assert_int_equal(sbuf_flush(&f->b, &f->a, NULL), 0);
	assert_true(f->b.shut);
	assert_int_equal(recv(f->z.fd, &c, 1, 0), 1);
	assert_int_equal(recv(f->z.fd, &c, 1, 0), 0); /* the EOF went on */
}

/* growth takes from the shared budget, keeps the contents, is refused past it (and
 * says so), and goes back when the held message has gone out */
static void test_reserve_shrink_budget(void **state)
{
	struct fixture *f = *state;
	size_t budget = 3 * SBUF_SIZE;

	sbuf_put(&f->b, "keep", 4);
	assert_int_equal(sbuf_reserve(&f->b, &f->acct, budget, 100), 0); /* fits: nothing taken */
	assert_ptr_equal(f->b.data, f->home);
	assert_int_equal(sbuf_reserve(&f->b, &f->acct, budget, 2 * SBUF_SIZE), 0);
	assert_ptr_not_equal(f->b.data, f->home);
	assert_int_equal(f->b.cap, 2 * SBUF_SIZE);
	assert_memory_equal(f->b.data, "keep", 4);
	assert_int_equal(f->acct.held, 2 * SBUF_SIZE);
	assert_int_equal(f->pool.used, 2 * SBUF_SIZE);
	/* a grown buffer growing again takes only the difference */
	assert_int_equal(sbuf_reserve(&f->b, &f->acct, budget, 3 * SBUF_SIZE), 0);
	assert_int_equal(f->acct.held, 3 * SBUF_SIZE);
	assert_false(f->acct.refused);
	/* past the budget: refused, unchanged */
	assert_int_equal(sbuf_reserve(&f->b, &f->acct, budget, 3 * SBUF_SIZE + 1), -ENOMEM);
	assert_true(f->acct.refused);
	assert_int_equal(f->b.cap, 3 * SBUF_SIZE);
	assert_memory_equal(f->b.data, "keep", 4);
	/* not back while part of a message is held */
	f->b.len = 6;
	sbuf_shrink(&f->b, &f->acct);
	assert_int_equal(f->b.cap, 3 * SBUF_SIZE);
	/* nor while more than the fixed part is in it */
	f->b.len = f->b.ready = SBUF_SIZE + 1;
	sbuf_shrink(&f->b, &f->acct);
	assert_int_equal(f->b.cap, 3 * SBUF_SIZE);
	f->b.len = f->b.ready = 4;
	sbuf_shrink(&f->b, &f->acct);
	assert_ptr_equal(f->b.data, f->home);
	assert_int_equal(f->b.cap, SBUF_SIZE);
	assert_memory_equal(f->b.data, "keep", 4);
	assert_int_equal(f->acct.held, 0);
	assert_int_equal(f->pool.used, 0);
}

/* a message that fits with the read reserve needs no room; one that does not gets
 * room for itself, the bytes before it and the reserve */
static void test_hold_room(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(sbuf_hold_room(&f->b, &f->acct, 1u << 30, 100, SBUF_SIZE - 1025, 1024), 0);
	assert_ptr_equal(f->b.data, f->home);
	assert_int_equal(sbuf_hold_room(&f->b, &f->acct, 1u << 30, 100, SBUF_SIZE, 1024), 0);
	assert_int_equal(f->b.cap, 100 + SBUF_SIZE + 1024 + 1);
	assert_int_equal(sbuf_hold_room(&f->b, &f->acct, 10, 0, 1u << 20, 0), -ENOMEM);
	f->b.len = f->b.ready = 0;
	sbuf_shrink(&f->b, &f->acct);
	assert_int_equal(f->pool.used, 0);
}

/* pgtether's client-side TLS (tls_prepare, tls_client_new) on f->a, with a throwaway
 * self-signed key, and a plain OpenSSL client on f->z; both handshaken. */
struct tls_pair {
	struct config c;
	char dir[64], cert[96], key[96];
	SSL_CTX *cc;
	SSL *cli;
};

static void tls_pair_open(struct fixture *f, struct tls_pair *t)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	char err[512];
	FILE *fp;
	int done = 0;

	memset(t, 0, sizeof(*t));
	snprintf(t->dir, sizeof(t->dir), "/tmp/test_sbuf.XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	snprintf(t->cert, sizeof(t->cert), "%s/cert.pem", t->dir);
	snprintf(t->key, sizeof(t->key), "%s/key.pem", t->dir);
	assert_non_null(k);
	assert_non_null(x);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, k);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC, (const unsigned char *)"t", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
	assert_non_null(fp = fopen(t->cert, "w"));
	assert_true(PEM_write_X509(fp, x) == 1);
	fclose(fp);
	assert_non_null(fp = fopen(t->key, "w"));
	assert_true(PEM_write_PrivateKey(fp, k, NULL, NULL, 0, NULL, NULL) == 1);
	fclose(fp);
	X509_free(x);
	EVP_PKEY_free(k);
	t->c.client_tls_cert = t->cert;
	t->c.client_tls_key = t->key;
	assert_int_equal(tls_prepare(&t->c, err), 0);
	assert_non_null(f->a.ssl = tls_client_new(&t->c, f->a.fd, 1));
	assert_non_null(t->cc = SSL_CTX_new(TLS_client_method()));
	assert_non_null(t->cli = SSL_new(t->cc));
	SSL_set_fd(t->cli, f->z.fd);
	SSL_set_connect_state(t->cli);
	for (int i = 0; i < 1000 && done != 3; i++) {
		if (!(done & 1) && SSL_do_handshake(f->a.ssl) == 1)
			done |= 1;
		if (!(done & 2) && SSL_do_handshake(t->cli) == 1)
			done |= 2;
	}
	assert_int_equal(done, 3);
}

static void tls_pair_close(struct fixture *f, struct tls_pair *t)
{
	tls_free(f->a.ssl);
	f->a.ssl = NULL;
	SSL_free(t->cli);
	SSL_CTX_free(t->cc);
	tls_release(&t->c);
	unlink(t->cert);
	unlink(t->key);
	rmdir(t->dir);
}

/* Fills the socket with 60000 bytes of 'o' until a TLS write waits for room. */
static void tls_fill(struct fixture *f, uint8_t *old, size_t n)
{
	int sz = 16384;

	setsockopt(f->a.fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	memset(old, 'o', n);
	sbuf_put(&f->b, old, n);
	assert_int_equal(sbuf_flush(&f->b, &f->a, NULL), 0);
	assert_true(f->b.off < f->b.ready); /* the socket is full */
}

/* Reads on t->cli what comes while f->b is flushed, until all of it went. */
static size_t tls_read_all(struct fixture *f, struct tls_pair *t, uint8_t *got, size_t cap)
{
	size_t have = 0;
	int n;

	for (int i = 0; i < 10000; i++) {
		while ((n = SSL_read(t->cli, got + have, (int)(cap - have))) > 0)
			have += (size_t)n;
		if (f->b.ready == f->b.off && i > 0)
			break;
		assert_int_equal(sbuf_flush(&f->b, &f->a, NULL), 0);
	}
	return have;
}

/* A TLS write that waits for room has had OpenSSL take bytes past off: it sent part
 * of them and sends the rest on the next try, whatever the buffer holds there by
 * then. What is taken back (a message pgtether will not finish) starts at
 * sbuf_sent(): the peer then reads the bytes before it and the new ones, nothing
 * else (taken back from off, it read the old bytes and then the middle of the new). */
static void test_tls_write_waiting(void **state)
{
	struct fixture *f = *state;
	static uint8_t old[60000], got[70000];
	struct tls_pair t;
	uint8_t fresh[300];
	size_t have, keep;

	tls_pair_open(f, &t);
	tls_fill(f, old, sizeof(old));
	keep = sbuf_sent(&f->b);
	f->b.ready = f->b.len = keep;
	memset(fresh, 'n', sizeof(fresh));
	sbuf_put(&f->b, fresh, sizeof(fresh));
	have = tls_read_all(f, &t, got, sizeof(got));
	assert_int_equal(have, keep + sizeof(fresh));
	assert_memory_equal(got, old, keep);
	assert_memory_equal(got + keep, fresh, sizeof(fresh));
	tls_pair_close(f, &t);
}

/* ... and the buffer may grow (a long masked row held) or go back into its fixed part
 * meanwhile: the retry's bytes are elsewhere, the same ones */
static void test_tls_write_moved(void **state)
{
	struct fixture *f = *state;
	static uint8_t old[60000], got[70000];
	struct tls_pair t;

	tls_pair_open(f, &t);
	tls_fill(f, old, sizeof(old));
	assert_int_equal(sbuf_reserve(&f->b, &f->acct, 1 << 30, 2 * SBUF_SIZE), 0);
	assert_int_equal(tls_read_all(f, &t, got, sizeof(got)), sizeof(old));
	assert_memory_equal(got, old, sizeof(old));
	sbuf_shrink(&f->b, &f->acct);
	tls_pair_close(f, &t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_put_flush_held, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flush_socket_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fill_reserve_eof, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reserve_shrink_budget, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hold_room, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tls_write_waiting, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tls_write_moved, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
