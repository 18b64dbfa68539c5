/* Unit tests for daemon/escape.c: what a terminal shows of workload text hides
 * nothing (controls, ESC sequences, bidi overrides, invalid UTF-8), and the JSON
 * escaping of bytes that are not UTF-8 is exact and reversible. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"

#define L(s) s, sizeof(s) - 1

static void term_is(const char *in, size_t len, const char *want)
{
	char *got = escape_term(in, len);

	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

static void test_term(void **state)
{
	(void)state;
	term_is(L("select 1"), "select 1");
	term_is(L("a\x1b[2Kb"), "a\\x1b[2Kb");                 /* erase line */
	term_is(L("x\r\ny\t"), "x\\x0d\\ny\\t");
	term_is(L("del\x7f"), "del\\x7f");
	term_is(L("c1\xc2\x9b" "31m"), "c1\\u{009B}31m");          /* C1 CSI as UTF-8 */
	term_is(L("raw\x9b"), "raw\\x9b");                       /* and as a raw byte */
	term_is(L("SELECT 1 -- \xe2\x80\xae;PORD"), "SELECT 1 -- \\u{202E};PORD"); /* RLO */
	term_is(L("\xe2\x81\xa6x\xe2\x81\xa9"), "\\u{2066}x\\u{2069}");          /* LRI .. PDI */
	term_is(L("zw\xe2\x80\x8bsp"), "zw\\u{200B}sp");
	term_is(L("ls\xe2\x80\xa8"), "ls\\u{2028}");
	term_is(L("tag\xf3\xa0\x80\x81"), "tag\\u{E0001}");
	term_is(L("bom\xef\xbb\xbf"), "bom\\u{FEFF}");
	term_is(L("a\\x1b"), "a\\\\x1b");                        /* a literal backslash is not an escape */
	term_is(L("\xc0\xaf"), "\\xc0\\xaf");                    /* overlong '/' */
	term_is(L("\xed\xa0\x80"), "\\xed\\xa0\\x80");           /* a surrogate */
	term_is(L("caf\xc3\xa9 \xe2\x82\xac"), "caf\xc3\xa9 \xe2\x82\xac"); /* ordinary text stays */
	term_is(L("n\0ul"), "n\\x00ul");
}

static void test_utf8(void **state)
{
	(void)state;
	assert_true(escape_is_utf8("caf\xc3\xa9", 5));
	assert_true(escape_is_utf8("\xf0\x9f\x98\x80", 4));
	assert_false(escape_is_utf8("\xff", 1));
	assert_false(escape_is_utf8("\xe2\x82", 2));              /* cut off */
	assert_false(escape_is_utf8("\xf4\x90\x80\x80", 4));      /* beyond U+10FFFF */
	assert_false(escape_is_utf8("a\0b", 3));
}

static void round_trip(const char *in, size_t len, const char *want)
{
	char *e = escape_bytes(in, len), *back;
	size_t n;

	assert_non_null(e);
	assert_string_equal(e, want);
	assert_true(escape_is_utf8(e, strlen(e)));
	assert_int_equal(escape_unbytes(e, &back, &n), 0);
	assert_int_equal(n, len);
	assert_memory_equal(back, in, len);
	free(back);
	free(e);
}

static void test_bytes(void **state)
{
	json_t *j;
	bool esc = false;
	char *b;
	size_t n;

	(void)state;
	round_trip(L("select '\xff\xfe'"), "select '\\xff\\xfe'");
	round_trip(L("e'\\n' \xe9t\xc3\xa9"), "e'\\\\n' \\xe9t\xc3\xa9");
	round_trip(L("\\x41\x80"), "\\\\x41\\x80");
	round_trip(L("a\0b"), "a\\x00b");
	round_trip(L(""), "");
	assert_int_equal(escape_unbytes("bad \\q", &b, &n), -EINVAL);
	assert_int_equal(escape_unbytes("cut \\x4", &b, &n), -EINVAL);
	j = escape_json("ok \\ text", 9, &esc);
	assert_string_equal(json_string_value(j), "ok \\ text");
	assert_false(esc);
	json_decref(j);
	j = escape_json("no\xff", 3, &esc);
	assert_string_equal(json_string_value(j), "no\\xff");
	assert_true(esc);
	json_decref(j);
	j = escape_json_str(NULL);
	assert_true(json_is_null(j));
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_term),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_bytes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
