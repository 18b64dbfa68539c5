/* Unit tests for daemon/scrampool.c: the proof thread's results are scram.c's, its
 * bound holds, and a job not started can be dropped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <poll.h>
#include <string.h>

#include "scrampool.h"

static void challenge(struct scram_challenge *ch, const char *salt, uint32_t iterations)
{
	memset(ch, 0, sizeof(*ch));
	ch->salt_len = strlen(salt);
	memcpy(ch->salt, salt, ch->salt_len);
	ch->iterations = iterations;
}

static int collect_wait(struct scrampool *p, struct scrampool_done *d)
{
	struct pollfd f = { scrampool_fd(p), POLLIN, 0 };

	/* 120 s at most: a guard against a hang on a loaded machine, not a timing check */
	for (int i = 0; i < 1200; i++) {
		if (scrampool_collect(p, d))
			return 1;
		poll(&f, 1, 100);
	}
	return 0;
}

static void test_results_and_bound(void **state)
{
	struct scrampool *p;
	struct scram_challenge slow, fast;
	struct scrampool_done d;
	uint8_t expect[SCRAM_KEY_LEN];

	(void)state;
	assert_int_equal(scrampool_start(&p, 3), 0);
	challenge(&slow, "slow-salt", 1000000);
	challenge(&fast, "fast-salt", 4096);
	assert_int_equal(scram_salted_password("pw", &fast, expect), 0);
	assert_int_equal(scrampool_submit(p, 1, "pw", &slow), 0);
	assert_int_equal(scrampool_submit(p, 2, "pw", &fast), 0);
	assert_int_equal(scrampool_submit(p, 3, "pw", &fast), 0);
	/* running, waiting or done but not collected: all count */
	assert_int_equal(scrampool_submit(p, 4, "pw", &fast), -EBUSY);
	assert_int_equal(scrampool_jobs(p), 3);
	/* 2 has not started (1 runs for ~0.6 s): dropped, its place free again */
	assert_true(scrampool_cancel(p, 2));
	assert_false(scrampool_cancel(p, 2));
	assert_int_equal(scrampool_submit(p, 5, "pw", &fast), 0);
	/* in order, 2 never */
	assert_int_equal(collect_wait(p, &d), 1);
	assert_int_equal(d.job, 1);
	assert_int_equal(d.result, 0);
	assert_int_equal(collect_wait(p, &d), 1);
	assert_int_equal(d.job, 3);
	assert_memory_equal(d.salted, expect, SCRAM_KEY_LEN);
	assert_int_equal(collect_wait(p, &d), 1);
	assert_int_equal(d.job, 5);
	assert_memory_equal(d.salted, expect, SCRAM_KEY_LEN);
	assert_int_equal(scrampool_jobs(p), 0);
	assert_int_equal(scrampool_collect(p, &d), 0);
	/* freed with a job queued and one running: both wiped, nothing leaks (ASan) */
	assert_int_equal(scrampool_submit(p, 6, "pw", &slow), 0);
	assert_int_equal(scrampool_submit(p, 7, "pw", &slow), 0);
	scrampool_free(p);
	scrampool_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_results_and_bound),
	};

	return cmocka_run_group_tests_name("scrampool", tests, NULL, NULL);
}
