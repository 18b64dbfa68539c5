/* Unit tests for daemon/rowmask.c: RowDescriptions that pick masks by column
 * identity and by name, DataRows rewritten with fresh lengths, and rows that are not
 * what the description says. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgwire.h"
#include "rowmask.h"

static const char policy_text[] =
	"{ \"rules\": [ { \"name\": \"agent\", \"match\": { \"cgroup\": \"/ci\" }, \"token\": { \"source\": \"none\" },\n"
	"  \"upstream\": \"main\", \"mask\": [\n"
	"  { \"column\": \"users.email\", \"strategy\": \"email\" },\n"
	"  { \"column\": \"users.name\", \"strategy\": \"partial\", \"keep\": 2 },\n"
	"  { \"column_name\": \"*ssn*\", \"strategy\": \"null\" } ] } ] }";

struct fixture {
	struct policy p;
	struct maskset ms;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[POLICY_ERR_LEN];
	static const char row0[] = "{\"k\": \"c\", \"rel\": 16384, \"att\": 2, \"m\": 0}";
	static const char row1[] = "{\"k\": \"c\", \"rel\": 16384, \"att\": 3, \"m\": 1}";

	assert_non_null(f);
	if (policy_parse(&f->p, "p.json", policy_text, strlen(policy_text), err) < 0)
		fail_msg("%s", err);
	assert_int_equal(maskset_add_row(&f->ms, &f->p.rules[0], row0, strlen(row0)), 0);
	assert_int_equal(maskset_add_row(&f->ms, &f->p.rules[0], row1, strlen(row1)), 0);
	assert_int_equal(maskset_finish(&f->ms, &f->p.rules[0]), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	maskset_release(&f->ms);
	policy_release(&f->p);
	free(f);
	return 0;
}

/* A RowDescription body: n fields of (name, table OID, attnum), text format. */
struct field { const char *name; uint32_t rel; int16_t att; uint32_t type; };

static size_t desc(uint8_t *out, const struct field *fs, size_t n)
{
	size_t o = 2;

	out[0] = (uint8_t)(n >> 8);
	out[1] = (uint8_t)n;
	for (size_t i = 0; i < n; i++) {
		size_t nl = strlen(fs[i].name) + 1;

		memcpy(out + o, fs[i].name, nl);
		o += nl;
		pgwire_put32(out + o, fs[i].rel);
		out[o + 4] = (uint8_t)((uint16_t)fs[i].att >> 8);
		out[o + 5] = (uint8_t)fs[i].att;
		pgwire_put32(out + o + 6, fs[i].type);
		memset(out + o + 10, 0, 8); /* size, modifier, format 0 */
		o += 18;
	}
	return o;
}

/* A whole DataRow of text values (NULL for SQL NULL). */
static size_t datarow(uint8_t *out, const char *const *vals, size_t n)
{
	size_t o = PGWIRE_HEADER + 2;

	out[0] = 'D';
	out[5] = (uint8_t)(n >> 8);
	out[6] = (uint8_t)n;
	for (size_t i = 0; i < n; i++) {
		if (!vals[i]) {
			pgwire_put32(out + o, UINT32_MAX);
			o += 4;
			continue;
		}
		pgwire_put32(out + o, (uint32_t)strlen(vals[i]));
		memcpy(out + o + 4, vals[i], strlen(vals[i]));
		o += 4 + strlen(vals[i]);
	}
	pgwire_put32(out + 1, (uint32_t)(o - 1));
	return o;
}

/* Field i of the DataRow at m: its length, *ret its bytes. */
static int32_t field_at(const uint8_t *m, size_t i, const uint8_t **ret)
{
	const uint8_t *p = m + PGWIRE_HEADER + 2;
	int32_t len = 0;

	for (size_t k = 0; k <= i; k++) {
		len = (int32_t)pgwire_get32(p);
		*ret = p + 4;
		p += 4 + (len > 0 ? len : 0);
	}
	return len;
}

static const struct field users[] = {
	{ "id", 16384, 1, MASK_OID_INT4 },
	{ "email", 16384, 2, MASK_OID_TEXT },
	{ "name", 16384, 3, MASK_OID_TEXT },
	{ "user_ssn", 0, 0, MASK_OID_TEXT },    /* computed: found by name only */
};

static void test_describe_and_mask(void **state)
{
	struct fixture *f = *state;
	struct rowmask rm = { 0 };
	struct rowmask_keys k = { &f->p.rules[0], NULL, NULL };
	uint8_t body[512], m[512];
	const char *vals[] = { "7", "alice@example.com", "Alice", "123-45-6789" };
	const uint8_t *v;
	size_t o = 0, n = desc(body, users, 4), mlen;

	assert_int_equal(rowmask_describe(&rm, &f->p.rules[0], &f->ms, body, n), 0);
	assert_true(rm.have_desc);
	assert_true(rm.masked);
	assert_int_equal(rm.n_cols, 4);
	assert_int_equal(rm.cols[0].mask, -1);
	assert_int_equal(rm.cols[1].mask, 0);
	assert_int_equal(rm.cols[2].mask, 1);
	assert_int_equal(rm.cols[3].mask, 2);

	mlen = datarow(m, vals, 4);
	assert_int_equal(rowmask_row(&rm, &k, NULL, m, mlen, &o), 0);
	assert_int_equal(rm.row[0], 'D');
	assert_int_equal(1 + pgwire_get32(rm.row + 1), o);
	assert_int_equal(field_at(rm.row, 0, &v), 1);
	assert_memory_equal(v, "7", 1);
	assert_int_equal(field_at(rm.row, 1, &v), 15);
	assert_memory_equal(v, "***@example.com", 15);
	assert_int_equal(field_at(rm.row, 2, &v), 5);
	assert_memory_equal(v, "***ce", 5);
	assert_int_equal(field_at(rm.row, 3, &v), -1);

	/* a second row goes after the first */
	{
		size_t first = o;

		assert_int_equal(rowmask_row(&rm, &k, NULL, m, mlen, &o), 0);
		assert_int_equal(o, 2 * first);
		assert_memory_equal(rm.row, rm.row + first, first);
	}
	rowmask_forget(&rm);
	assert_false(rm.have_desc);
	assert_false(rm.masked);
	rowmask_release(&rm);
}

/* Indexes resolved under another snapshot: masked fields become NULL, others stay. */
static void test_stale_rule(void **state)
{
	struct fixture *f = *state;
	struct rowmask rm = { 0 };
	struct rowmask_keys k = { NULL, NULL, NULL };
	uint8_t body[512], m[512];
	const char *vals[] = { "7", "alice@example.com", "Alice", NULL };
	const uint8_t *v;
	size_t o = 0, n = desc(body, users, 4);

	assert_int_equal(rowmask_describe(&rm, &f->p.rules[0], &f->ms, body, n), 0);
	assert_int_equal(rowmask_row(&rm, &k, NULL, m, datarow(m, vals, 4), &o), 0);
	assert_int_equal(field_at(rm.row, 0, &v), 1);
	assert_int_equal(field_at(rm.row, 1, &v), -1);
	assert_int_equal(field_at(rm.row, 2, &v), -1);
	assert_int_equal(field_at(rm.row, 3, &v), -1);
	rowmask_release(&rm);
}

static void test_no_rule_masks_nothing(void **state)
{
	struct fixture *f = *state;
	struct rowmask rm = { 0 };
	uint8_t body[512];

	assert_int_equal(rowmask_describe(&rm, NULL, &f->ms, body, desc(body, users, 4)), 0);
	assert_true(rm.have_desc);
	assert_false(rm.masked);
	rowmask_release(&rm);
}

static void test_malformed(void **state)
{
	struct fixture *f = *state;
	struct rowmask rm = { 0 };
	struct rowmask_keys k = { &f->p.rules[0], NULL, NULL };
	uint8_t body[512], m[512];
	const char *vals[] = { "7", "alice@example.com", "Alice", "x" };
	size_t o = 0, n = desc(body, users, 4), mlen;

	/* a description cut inside its last field */
	assert_int_equal(rowmask_describe(&rm, &f->p.rules[0], &f->ms, body, n - 1), -EPROTO);
	assert_int_equal(rowmask_describe(&rm, &f->p.rules[0], &f->ms, body, 1), -EPROTO);
	assert_int_equal(rowmask_describe(&rm, &f->p.rules[0], &f->ms, body, n), 0);

	/* another number of fields than described */
	mlen = datarow(m, vals, 3);
	assert_int_equal(rowmask_row(&rm, &k, NULL, m, mlen, &o), -EPROTO);
	/* a field longer than the row */
	mlen = datarow(m, vals, 4);
	pgwire_put32(m + PGWIRE_HEADER + 2, 1000);
	assert_int_equal(rowmask_row(&rm, &k, NULL, m, mlen, &o), -EPROTO);
	/* a length below -1 */
	pgwire_put32(m + PGWIRE_HEADER + 2, (uint32_t)-2);
	assert_int_equal(rowmask_row(&rm, &k, NULL, m, mlen, &o), -EPROTO);
	/* bytes after the last field */
	mlen = datarow(m, vals, 4);
	assert_int_equal(rowmask_row(&rm, &k, NULL, m, mlen + 1, &o), -EPROTO);
	/* shorter than a header */
	assert_int_equal(rowmask_row(&rm, &k, NULL, m, 3, &o), -EPROTO);
	assert_int_equal(o, 0);
	rowmask_release(&rm);
}

static int refuse(void *arg, size_t n)
{
	(void)n;
	++*(int *)arg;
	return -ENOMEM;
}

static void give(void *arg, size_t n)
{
	(void)arg;
	(void)n;
	fail_msg("nothing was taken");
}

/* The row buffer is charged to the caller's budget: refused, the row is refused. */
static void test_budget(void **state)
{
	struct fixture *f = *state;
	struct rowmask rm = { 0 };
	struct rowmask_keys k = { &f->p.rules[0], NULL, NULL };
	int asked = 0;
	struct rowmask_budget b = { refuse, give, &asked };
	uint8_t body[512], m[512];
	const char *vals[] = { "7", "a@b", "c", "d" };
	size_t o = 0;

	assert_int_equal(rowmask_describe(&rm, &f->p.rules[0], &f->ms, body, desc(body, users, 4)), 0);
	assert_int_equal(rowmask_row(&rm, &k, &b, m, datarow(m, vals, 4), &o), -ENOMEM);
	assert_int_equal(asked, 1);
	assert_null(rm.row);
	rowmask_release(&rm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_describe_and_mask, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_rule, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_rule_masks_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_budget, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
