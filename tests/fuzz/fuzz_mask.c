/*
 * The mask encoders (mask.c) over arbitrary values of every type they know, in both
 * formats, and the rows of maskset's catalog answer (maskset.c).
 *
 * Input: byte 0 the strategy (and whether the value is a catalog row instead), byte 1
 * `keep`, byte 2 the type, byte 3 the format and the output room; the rest is the
 * value (or the row's JSON).
 */
#include "fuzz.h"

#include <errno.h>

#include "mask.h"
#include "maskset.h"
#include "policy.h"

static const uint32_t types[] = {
	MASK_OID_BYTEA, MASK_OID_NAME, MASK_OID_INT8, MASK_OID_INT2, MASK_OID_INT4, MASK_OID_TEXT, MASK_OID_JSON,
	MASK_OID_BPCHAR, MASK_OID_VARCHAR, MASK_OID_NUMERIC, MASK_OID_UUID, MASK_OID_JSONB,
	1001, 1005, 1007, 1009, 1014, 1015, 1016, 1231, 2951, 199, 3807, 1003, /* arrays */
	16, 701, 1184, 0, /* types no mask knows */
};

static const char policy_text[] =
	"{ \"rules\": [ { \"name\": \"m\", \"match\": { \"cgroup\": \"/ci\" }, \"token\": { \"source\": \"none\" },\n"
	"  \"upstream\": \"main\", \"mask\": [\n"
	"  { \"column\": \"users.email\", \"strategy\": \"email\" },\n"
	"  { \"column\": \"crm.people.phone\", \"strategy\": \"partial\", \"allow\": [\"copy\"] },\n"
	"  { \"column_name\": \"*ssn*\", \"strategy\": \"null\" } ] } ] }";

static uint8_t key[MASK_KEY_LEN] = "0123456789abcdef0123456789abcdef";
static struct mask_hmac *hmac;
static struct policy policy;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[POLICY_ERR_LEN];

	(void)argc;
	(void)argv;
	hmac = mask_hmac_new(key);
	if (!hmac || policy_parse(&policy, "m.json", policy_text, strlen(policy_text), err) < 0)
		abort();
	return 0;
}

static void catalog_rows(const uint8_t *d, size_t n)
{
	struct maskset m;
	const struct policy_rule *r = &policy.rules[0];
	const uint8_t *p = d, *end = d + n;

	memset(&m, 0, sizeof(m));
	/* one row per line, as the catalog query's answer comes in DataRows */
	while (p < end) {
		const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);

		if (maskset_add_row(&m, r, (const char *)p, len) < 0)
			break;
		p += len + 1;
	}
	if (maskset_finish(&m, r) == 0)
		for (size_t i = 0; i < m.n; i++)
			fuzz_check(maskset_find(&m, m.cols[i].rel, m.cols[i].att) >= 0);
	maskset_release(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[1 << 18], again[1 << 18];
	struct mask_spec spec;
	uint32_t type;
	int format;
	size_t cap;
	long len, n;

	if (size < 4)
		return 0;
	if (data[0] >= 0xf0) {
		catalog_rows(data + 4, size - 4);
		return 0;
	}
	spec = (struct mask_spec){ (enum mask_strategy)(data[0] % 5), data[1] % 16, (data[0] & 0x80) ? "[hidden]" : NULL,
				   key, (data[0] & 0x40) ? hmac : NULL };
	type = types[data[2] % (sizeof(types) / sizeof(types[0]))];
	format = data[3] & 1;
	/* a small room first, as a row's buffer may have: -ENOSPC asks for a bigger one */
	cap = (size_t)(data[3] >> 1) * 4;
	len = (data[2] & 0x80) ? MASK_NULL_VALUE : (long)(size - 4);
	fuzz_check(mask_array_element(type) == 0 || mask_array_element(type) != type);
	for (;;) {
		n = mask_value(&spec, type, format, data + 4, len, out, cap);
		if (n != -ENOSPC)
			break;
		fuzz_check(cap < sizeof(out));
		cap = cap ? 2 * cap : 64;
		if (cap > sizeof(out))
			cap = sizeof(out);
	}
	fuzz_check(n == MASK_NULL_VALUE || n == -EINVAL || (n >= 0 && (size_t)n <= cap));
	if (len == MASK_NULL_VALUE)
		fuzz_check(n == MASK_NULL_VALUE);
	/* the same value and key give the same result */
	if (n >= 0) {
		long m = mask_value(&spec, type, format, data + 4, len, again, sizeof(again));

		fuzz_check(m == n && memcmp(out, again, (size_t)n) == 0);
	}
	return 0;
}
