/* Unit tests for daemon/maskednames.c: which prepared statements of a masked session
 * are known to name no masked table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "maskednames.h"

static void test_known_names(void **state)
{
	struct maskednames m = { 0 };

	(void)state;
	assert_false(maskednames_clean(&m, "s1")); /* never seen: as if masked */
	assert_false(maskednames_clean(&m, ""));
	maskednames_note(&m, "s1", false);
	maskednames_note(&m, "s2", true);
	assert_true(maskednames_clean(&m, "s1"));
	assert_false(maskednames_clean(&m, "s2"));
	assert_false(maskednames_clean(&m, "s3"));
}

/* A second Parse of a name fails on the server, which keeps the first: once masked,
 * a named statement stays masked. The unnamed statement is replaced by each Parse. */
static void test_masked_stays(void **state)
{
	struct maskednames m = { 0 };

	(void)state;
	maskednames_note(&m, "s1", true);
	maskednames_note(&m, "s1", false);
	assert_false(maskednames_clean(&m, "s1"));
	maskednames_note(&m, "", true);
	assert_false(maskednames_clean(&m, ""));
	maskednames_note(&m, "", false);
	assert_true(maskednames_clean(&m, ""));
}

/* SQL PREPARE / DEALLOCATE change names pgtether does not follow: no named statement
 * is clean any more; the unnamed one is only ever made by Parse. */
static void test_lose(void **state)
{
	struct maskednames m = { 0 };

	(void)state;
	maskednames_note(&m, "s1", false);
	maskednames_note(&m, "", false);
	maskednames_lose(&m);
	assert_false(maskednames_clean(&m, "s1"));
	assert_true(maskednames_clean(&m, ""));
}

/* Past MASKEDNAMES_MAX names the oldest is forgotten: a clean one just becomes
 * unknown; a masked one makes every named statement count as masked. */
static void test_forgetting(void **state)
{
	struct maskednames m = { 0 };
	char name[16];

	(void)state;
	for (int i = 0; i <= MASKEDNAMES_MAX; i++) {
		snprintf(name, sizeof(name), "c%d", i);
		maskednames_note(&m, name, false);
	}
	assert_false(maskednames_clean(&m, "c0")); /* forgotten */
	assert_true(maskednames_clean(&m, "c1"));
	assert_true(maskednames_clean(&m, "c16"));
	assert_false(m.lost);

	memset(&m, 0, sizeof(m));
	maskednames_note(&m, "secret", true);
	for (int i = 1; i <= MASKEDNAMES_MAX; i++) {
		snprintf(name, sizeof(name), "c%d", i);
		maskednames_note(&m, name, false);
	}
	assert_true(m.lost);
	assert_false(maskednames_clean(&m, "secret")); /* could have been taken for clean */
	assert_false(maskednames_clean(&m, "c16"));
}

/* The server keys statement names by their first 63 bytes: a Parse of a longer name
 * that agrees that far fails ("already exists"), and a Bind of either runs the first.
 * Before, the longer name took a slot of its own, clean, that a Bind of the first name
 * could find before the masked one. */
static void test_long_name(void **state)
{
	struct maskednames m = { 0 };
	char name[100], longer[101], other[100];

	(void)state;
	memset(name, 'n', 63);
	name[63] = '\0';
	snprintf(longer, sizeof(longer), "%sx", name);
	for (int i = 0; i < MASKEDNAMES_MAX - 1; i++) {
		snprintf(other, sizeof(other), "c%d", i);
		maskednames_note(&m, other, false);
	}
	maskednames_note(&m, name, true);
	maskednames_note(&m, longer, false); /* the server: already exists */
	assert_false(maskednames_clean(&m, name));
	assert_false(maskednames_clean(&m, longer));
	assert_false(m.lost);
	/* a clean long name is one statement with its first 63 bytes */
	memset(&m, 0, sizeof(m));
	maskednames_note(&m, longer, false);
	assert_true(maskednames_clean(&m, longer));
	assert_true(maskednames_clean(&m, name));
}

static void test_bind(void **state)
{
	struct maskednames m = { 0 };
	static const uint8_t bind[] = "portal\0s1\0\0\0\0\0\0\0";
	static const uint8_t unnamed[] = "\0\0\0\0\0\0\0\0";
	static const uint8_t cut[] = { 'p', 0, 's', '1' }; /* statement name without its NUL */

	(void)state;
	maskednames_note(&m, "s1", false);
	maskednames_note(&m, "", true);
	assert_true(maskednames_bind_clean(&m, bind, sizeof(bind) - 1));
	assert_false(maskednames_bind_clean(&m, unnamed, sizeof(unnamed) - 1));
	assert_false(maskednames_bind_clean(&m, cut, sizeof(cut)));
	assert_false(maskednames_bind_clean(&m, bind, 3)); /* the portal name alone, cut */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_names),
		cmocka_unit_test(test_masked_stays),
		cmocka_unit_test(test_lose),
		cmocka_unit_test(test_forgetting),
		cmocka_unit_test(test_long_name),
		cmocka_unit_test(test_bind),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
