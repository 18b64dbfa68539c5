/* Login caps, the memory budget and log episodes (daemon/quota.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "quota.h"

static void test_login_caps(void **state)
{
	struct quota_logins l = { 0 };
	unsigned n;

	(void)state;
	/* the total counts from accept, before the cgroup is known */
	assert_int_equal(quota_login_begin(&l, 3), 0);
	assert_int_equal(quota_login_begin(&l, 3), 0);
	assert_int_equal(quota_login_begin(&l, 3), 0);
	assert_int_equal(quota_login_begin(&l, 3), -EUSERS);
	assert_int_equal(l.total, 3);
	/* per key: the cap of one cgroup leaves another alone */
	assert_int_equal(quota_login_key(&l, 7, 2, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(quota_login_key(&l, 7, 2, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(quota_login_key(&l, 7, 2, &n), -EDQUOT);
	assert_int_equal(n, 2);
	assert_int_equal(quota_login_count(&l, 7), 2);
	assert_int_equal(quota_login_key(&l, 9, 2, &n), 0);
	assert_int_equal(quota_login_count(&l, 9), 1);
	/* the refused one was begun but not keyed: it ends unkeyed */
	quota_login_end(&l, false, 7);
	assert_int_equal(l.total, 2);
	assert_int_equal(quota_login_count(&l, 7), 2);
	quota_login_end(&l, true, 7);
	assert_int_equal(quota_login_count(&l, 7), 1);
	assert_int_equal(quota_login_key(&l, 7, 2, &n), 0); /* room again */
	quota_login_end(&l, true, 9);
	assert_int_equal(quota_login_count(&l, 9), 0);
	assert_int_equal(l.n_keys, 1); /* an entry goes with its last login */
	quota_login_end(&l, true, 7);
	quota_login_end(&l, true, 7);
	assert_int_equal(l.n_keys, 0);
	assert_int_equal(l.total, 0);
	quota_login_end(&l, true, 7); /* more ends than begins never wrap */
	assert_int_equal(l.total, 0);
	quota_logins_release(&l);
}

static void test_many_keys(void **state)
{
	struct quota_logins l = { 0 };
	unsigned n;

	(void)state;
	for (uint64_t k = 1; k <= QUOTA_MAX_KEYS; k++) {
		assert_int_equal(quota_login_begin(&l, 1u << 20), 0);
		assert_int_equal(quota_login_key(&l, k, 1, &n), 0);
	}
	assert_int_equal(quota_login_key(&l, QUOTA_MAX_KEYS + 1, 1, &n), -ENOMEM);
	assert_int_equal(quota_login_count(&l, QUOTA_MAX_KEYS + 1), 0);
	assert_int_equal(quota_login_count(&l, 17), 1);
	quota_logins_release(&l);
}

static void test_memory_budget(void **state)
{
	struct quota_mem m = { 0 };

	(void)state;
	assert_int_equal(quota_mem_take(&m, 600, 1000), 0);
	assert_int_equal(quota_mem_take(&m, 401, 1000), -ENOMEM);
	assert_int_equal(m.used, 600);
	assert_int_equal(quota_mem_take(&m, 400, 1000), 0);
	assert_int_equal(quota_mem_take(&m, 1, 1000), -ENOMEM);
	assert_int_equal(quota_mem_take(&m, SIZE_MAX, 1000), -ENOMEM); /* no wrap */
	quota_mem_give(&m, 400);
	assert_int_equal(m.used, 600);
	/* a budget lowered by a reload below what is held: nothing more until it drains */
	assert_int_equal(quota_mem_take(&m, 1, 500), -ENOMEM);
	quota_mem_give(&m, 5000);
	assert_int_equal(m.used, 0);
}

static void test_episode(void **state)
{
	struct quota_episode e = { 0 };
	uint64_t count;
	time_t secs;

	(void)state;
	assert_false(quota_episode_over(&e, 100, 1, &count, &secs));
	assert_true(quota_episode_hit(&e, 100));   /* logged */
	assert_false(quota_episode_hit(&e, 100));  /* not logged */
	assert_false(quota_episode_hit(&e, 102));
	assert_false(quota_episode_over(&e, 102, 1, &count, &secs));
	assert_true(quota_episode_over(&e, 103, 1, &count, &secs));
	assert_int_equal(count, 3);
	assert_int_equal(secs, 2);
	assert_true(quota_episode_hit(&e, 200));   /* a new one */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_login_caps),
		cmocka_unit_test(test_many_keys),
		cmocka_unit_test(test_memory_budget),
		cmocka_unit_test(test_episode),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
