/*
 * The server-side messages of a masked session (rowmask.c over pgwire's framing):
 * RowDescriptions that pick masks by column identity and by name, and DataRows
 * rewritten with every mask kind, as a server's stream arrives. The server is
 * trusted, but a row's values are whatever a workload stored.
 *
 * Input: byte 0 sets the memory budget (small ones make the row buffer refuse to
 * grow), then a stream of typed messages. Every rewritten row is read back: it must
 * be a well-formed DataRow of the described width, with the unmasked fields as the
 * server sent them.
 */
#include "fuzz.h"

#include <errno.h>

#include "pgwire.h"
#include "rowmask.h"

static const char policy_text[] =
	"{ \"rules\": [ { \"name\": \"m\", \"match\": { \"cgroup\": \"/ci\" }, \"token\": { \"source\": \"none\" },\n"
	"  \"upstream\": \"main\", \"mask\": [\n"
	"  { \"column\": \"users.email\", \"strategy\": \"email\" },\n"
	"  { \"column\": \"users.name\", \"strategy\": \"partial\", \"keep\": 2 },\n"
	"  { \"column\": \"users.id\", \"strategy\": \"hash\" },\n"
	"  { \"column\": \"users.note\", \"strategy\": \"redact\", \"text\": \"[gone]\" },\n"
	"  { \"column_name\": \"*ssn*\", \"strategy\": \"null\" },\n"
	"  { \"column_name\": \"h_*\", \"strategy\": \"hash\" } ] } ] }";

static uint8_t key[MASK_KEY_LEN] = "fedcba9876543210fedcba9876543210";
static struct mask_hmac *hmac;
static struct policy policy;
static struct maskset masks;

struct budget {
	size_t left;
	size_t held;
};

static int take(void *arg, size_t n)
{
	struct budget *b = arg;

	if (n > b->left)
		return -ENOMEM;
	b->left -= n;
	b->held += n;
	return 0;
}

static void give(void *arg, size_t n)
{
	struct budget *b = arg;

	fuzz_check(n <= b->held);
	b->left += n;
	b->held -= n;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char *const rows[] = {
		"{\"k\": \"c\", \"rel\": 16384, \"att\": 1, \"m\": 2}",
		"{\"k\": \"c\", \"rel\": 16384, \"att\": 2, \"m\": 0}",
		"{\"k\": \"c\", \"rel\": 16384, \"att\": 3, \"m\": 1}",
		"{\"k\": \"c\", \"rel\": 16384, \"att\": 4, \"m\": 3}",
	};
	char err[POLICY_ERR_LEN];

	(void)argc;
	(void)argv;
	hmac = mask_hmac_new(key);
	if (!hmac || policy_parse(&policy, "m.json", policy_text, strlen(policy_text), err) < 0)
		abort();
	for (size_t i = 0; i < 4; i++)
		if (maskset_add_row(&masks, &policy.rules[0], rows[i], strlen(rows[i])) < 0)
			abort();
	if (maskset_finish(&masks, &policy.rules[0]) < 0)
		abort();
	return 0;
}

/* Reads back the rewritten row out[0..olen) made of m[0..mlen). */
static void check_row(const struct rowmask *rm, const uint8_t *m, size_t mlen, const uint8_t *out, size_t olen)
{
	const uint8_t *p = out + PGWIRE_HEADER + 2, *end = out + olen, *q = m + PGWIRE_HEADER + 2;

	fuzz_check(olen >= PGWIRE_HEADER + 2 && out[0] == 'D' && 1 + (size_t)pgwire_get32(out + 1) == olen);
	fuzz_check((size_t)(out[5] << 8 | out[6]) == rm->n_cols);
	for (size_t i = 0; i < rm->n_cols; i++) {
		int32_t len, was;

		fuzz_check(end - p >= 4);
		len = (int32_t)pgwire_get32(p);
		was = (int32_t)pgwire_get32(q);
		p += 4;
		q += 4;
		fuzz_check(len >= -1 && len <= end - p);
		if (rm->cols[i].mask < 0)
			fuzz_check(len == was && (len <= 0 || memcmp(p, q, (size_t)len) == 0));
		if (was == -1)
			fuzz_check(len == -1); /* NULL stays NULL */
		p += len > 0 ? len : 0;
		q += was > 0 ? was : 0;
	}
	fuzz_check(p == end && q == m + mlen);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rowmask rm = { 0 };
	struct budget money;
	struct rowmask_budget b = { take, give, &money };
	struct rowmask_keys k = { &policy.rules[0], key, hmac };
	size_t at = 1, o = 0;

	if (size < 1)
		return 0;
	money = (struct budget){ (size_t)data[0] << 12, 0 };
	if (data[0] & 1)
		k.hmac = NULL;
	if (data[0] == 0xff)
		k.rule = NULL; /* masks resolved under another snapshot */
	while (size - at >= PGWIRE_HEADER) {
		uint8_t type = data[at];
		uint32_t n = pgwire_get32(data + at + 1);
		size_t mlen;
		int rc;

		if (n < 4 || n > size - at - 1)
			break;
		mlen = 1 + (size_t)n;
		switch (type) {
		case 'T':
			rc = rowmask_describe(&rm, &policy.rules[0], &masks, data + at + PGWIRE_HEADER, mlen - PGWIRE_HEADER);
			fuzz_check(rc == 0 || rc == -EPROTO);
			if (rc < 0)
				goto out; /* the session ends */
			break;
		case 'D':
			if (!rm.have_desc)
				goto out; /* rows nothing described: the session ends */
			{
				size_t was = o;

				rc = rowmask_row(&rm, &k, &b, data + at, mlen, &o);
				fuzz_check(rc == 0 || rc == -EPROTO || rc == -ENOMEM || rc == -E2BIG);
				if (rc < 0)
					goto out;
				fuzz_check(o > was && o <= rm.row_cap);
				check_row(&rm, data + at, mlen, rm.row + was, o - was);
			}
			if (o > 4096)
				o = 0; /* the rows went out to the client */
			break;
		case 'n':
		case 'Z':
			rowmask_forget(&rm);
			break;
		default:
			break;
		}
		at += mlen;
	}
out:
	fuzz_check(money.held == rm.row_cap);
	rowmask_release(&rm);
	return 0;
}
