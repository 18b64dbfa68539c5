/* Unit tests for daemon/record.c: a recording verifies; an edited, deleted, reordered
 * or appended record is found and named; a crash leaves an unsealed one that verifies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "record.h"

static char dir[64];

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	char *b = calloc(1, 1 << 16);

	assert_non_null(f);
	*len = fread(b, 1, (1 << 16) - 1, f);
	fclose(f);
	return b;
}

static void spill(const char *path, const char *text, size_t len)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	fclose(f);
}

/* The lines of a recording, to rearrange. */
static size_t split(char *text, char **lines)
{
	size_t n = 0;

	for (char *p = text, *nl; *p && (nl = strchr(p, '\n')); p = nl + 1) {
		*nl = '\0';
		lines[n++] = p;
	}
	return n;
}

static void join(const char *path, char **lines, size_t n)
{
	FILE *f = fopen(path, "w");

	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s\n", lines[i]);
	fclose(f);
}

static void expect_bad(const char *path, const char *msg)
{
	struct record_check c;
	char err[RECORD_ERR_LEN] = "";

	assert_int_equal(record_verify(path, &c, err), -EBADMSG);
	json_decref(c.header);
	if (strstr(err, msg) == NULL)
		fail_msg("expected '%s' in '%s'", msg, err);
}

static void test_chain(void **state)
{
	struct record_writer w;
	struct record_check c;
	char err[RECORD_ERR_LEN] = "", copy[128], *text, *lines[16], *orig;
	size_t len, n;

	(void)state;
	assert_int_equal(record_open(&w, dir, 1795000000, 7, json_pack("{s:s, s:i}", "cgroup", "/ci/job", "pid", 42), false, err), 0);
	assert_non_null(strstr(w.path, "/2026/11/18/20261118T"));
	assert_non_null(strstr(w.id, "-000007-"));
	assert_int_equal(record_add(&w, "statement", json_pack("{s:s, s:s}", "sql", "select 1", "verdict", "allow")), 0);
	assert_int_equal(record_add(&w, "statement", json_pack("{s:s, s:s}", "sql", "drop table t", "verdict", "deny")), 0);
	assert_int_equal(record_add(&w, "result", json_pack("{s:s}", "tag", "SELECT 1")), 0);
	assert_int_equal(record_flush(&w), 0);
	assert_int_equal(record_seal(&w, json_pack("{s:s}", "reason", "client closed")), 0);

	assert_int_equal(record_verify(w.path, &c, err), 0);
	assert_int_equal(c.records, 5);
	assert_true(c.sealed);
	assert_string_equal(json_string_value(json_object_get(c.header, "cgroup")), "/ci/job");
	assert_string_equal(json_string_value(json_object_get(c.header, "recording")), w.id);
	json_decref(c.header);

	orig = slurp(w.path, &len);
	snprintf(copy, sizeof(copy), "%s/copy.jsonl", dir);

	/* one byte edited in record 1: record 2 names the break */
	text = strdup(orig);
	*strstr(text, "select 1") = 'S';
	spill(copy, text, len);
	expect_bad(copy, "record 2 (line 3): the previous record was changed, removed or moved");
	free(text);

	/* a record deleted */
	text = strdup(orig);
	n = split(text, lines);
	assert_int_equal(n, 5);
	memmove(&lines[1], &lines[2], 3 * sizeof(lines[0]));
	join(copy, lines, 4);
	expect_bad(copy, "record 1 (line 2): out of sequence (seq 2)");
	free(text);

	/* two records swapped */
	text = strdup(orig);
	split(text, lines);
	char *t = lines[1];
	lines[1] = lines[2];
	lines[2] = t;
	join(copy, lines, 5);
	expect_bad(copy, "record 1 (line 2): out of sequence");
	free(text);

	/* a record appended after the seal */
	text = strdup(orig);
	n = split(text, lines);
	lines[n] = lines[1];
	join(copy, lines, n + 1);
	expect_bad(copy, "record 5 (line 6): a record after the seal");
	free(text);

	/* the seal removed: what is left verifies, unsealed */
	text = strdup(orig);
	n = split(text, lines);
	join(copy, lines, n - 1);
	assert_int_equal(record_verify(copy, &c, err), 0);
	assert_false(c.sealed);
	assert_int_equal(c.records, 4);
	json_decref(c.header);
	free(text);

	/* cut off mid-record */
	spill(copy, orig, len - 10);
	expect_bad(copy, "record 4 (line 5): cut off");
	free(orig);
	unlink(copy);
	unlink(w.path);
}

static void test_crash_and_errors(void **state)
{
	struct record_writer w;
	struct record_check c;
	char err[RECORD_ERR_LEN] = "";

	(void)state;
	assert_int_equal(record_open(&w, dir, 1795000000, 8, NULL, true, err), 0);
	assert_int_equal(record_add(&w, "statement", NULL), 0);
	assert_int_equal(record_flush(&w), 0);
	record_abandon(&w); /* the daemon died */
	assert_int_equal(record_verify(w.path, &c, err), 0);
	assert_false(c.sealed);
	assert_int_equal(c.records, 2);
	json_decref(c.header);
	unlink(w.path);

	/* a directory that cannot be created */
	assert_int_equal(record_open(&w, "/proc/pgtether-nope", 1795000000, 9, NULL, false, err), -ENOENT);
	assert_non_null(strstr(err, "cannot create /proc/pgtether-nope/2026/11/18"));
	assert_int_equal(record_verify("/nonexistent", &c, err), -ENOENT);
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/pgtether-record-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chain),
		cmocka_unit_test(test_crash_and_errors),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
