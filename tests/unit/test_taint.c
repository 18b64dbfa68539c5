/* Unit tests for daemon/taint.c: which batches of a masked session have their server
 * text withheld. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "taint.h"

/* A marked batch is withheld when answered, the next one is not. */
static void test_one_batch(void **state)
{
	struct taint t = { 0 };

	(void)state;
	taint_mark(&t, 1);
	assert_false(taint_withheld(&t, 0, 2));
	taint_answered(&t, 0, 2, false);
	assert_true(taint_withheld(&t, 1, 2));
	taint_answered(&t, 1, 2, false);
	assert_false(taint_withheld(&t, 2, 3));
	/* its bit is cleared: the same number, TAINT_BATCHES later, starts clean */
	assert_false(taint_withheld(&t, 1 + TAINT_BATCHES, 2 + TAINT_BATCHES));
}

/* Inside a transaction a withheld batch withholds the rest of it (a deferred
 * constraint fails at COMMIT, a cursor is fetched later), until it is idle again. */
static void test_transaction(void **state)
{
	struct taint t = { 0 };

	(void)state;
	taint_mark(&t, 5);
	taint_answered(&t, 5, 8, true);
	assert_true(taint_withheld(&t, 6, 8));
	taint_answered(&t, 6, 8, true);
	assert_true(taint_withheld(&t, 7, 8));
	taint_answered(&t, 7, 8, false); /* COMMIT: idle */
	assert_false(taint_withheld(&t, 8, 9));
	/* an unmarked batch in a transaction withholds nothing */
	taint_answered(&t, 8, 9, true);
	assert_false(taint_withheld(&t, 9, 10));
}

/* More batches outstanding than bits: the count is not trusted, so all is withheld. */
static void test_too_many_outstanding(void **state)
{
	struct taint t = { 0 };

	(void)state;
	assert_false(taint_withheld(&t, 0, TAINT_BATCHES - 1));
	assert_true(taint_withheld(&t, 0, TAINT_BATCHES));
	assert_true(taint_withheld(&t, 10, 9)); /* answered before sent: wrapped, not trusted */
}

/* The numbers run free and wrap at 2^32: the bits follow them. */
static void test_wrap(void **state)
{
	struct taint t = { 0 };
	uint32_t last = UINT32_MAX;

	(void)state;
	taint_mark(&t, last);
	taint_mark(&t, last + 2); /* 1 */
	assert_true(taint_withheld(&t, last, last + 3));
	taint_answered(&t, last, last + 3, false);
	assert_false(taint_withheld(&t, last + 1, last + 3));
	taint_answered(&t, last + 1, last + 3, false);
	assert_true(taint_withheld(&t, last + 2, last + 3));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_batch),
		cmocka_unit_test(test_transaction),
		cmocka_unit_test(test_too_many_outstanding),
		cmocka_unit_test(test_wrap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
