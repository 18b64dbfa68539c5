/*
 * The JSON files (config.c, policy.c, issuers.c), from memory: an admin writes them,
 * but a parser that crashes on a typo takes the daemon down at reload, and
 * jansson's positions feed every message.
 *
 * Input: byte 0 picks the file, the rest splits at the first NUL.
 *   0: pgtether.json (part one), then credentials.json (part two) for it
 *   1: a policy.d file (part one), then a second one (part two) into the same policy
 *   2: an issuers.d file (part one) with its JWKS (part two)
 */
#include "fuzz.h"

#include "config.h"
#include "issuers.h"
#include "policy.h"

static void config(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	struct config c;
	char err[CONFIG_ERR_LEN];

	memset(&c, 0, sizeof(c));
	if (config_parse("fuzz.json", (const char *)a, alen, &c, err) < 0)
		return;
	(void)config_parse_credentials(&c, "credentials.json", (const char *)b, blen, err);
	(void)config_check_policy(&c, err);
	config_release(&c);
}

static void policy(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	struct policy p;
	char err[POLICY_ERR_LEN];

	memset(&p, 0, sizeof(p));
	if (policy_parse(&p, "10-a.json", (const char *)a, alen, err) == 0)
		(void)policy_parse(&p, "20-b.json", (const char *)b, blen, err);
	for (size_t i = 0; i < p.n; i++)
		(void)policy_read_only(&p.rules[i]);
	(void)policy_uses_hash(&p);
	fuzz_check(policy_dangerous(&p) != NULL);
	policy_release(&p);
}

static void issuer(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	struct issuers is;
	char err[ISSUERS_ERR_LEN];

	memset(&is, 0, sizeof(is));
	if (issuers_parse("fuzz.json", (const char *)a, alen, (const char *)b, blen, &is, err) == 0) {
		fuzz_check(is.n == 1 && is.v[0].keys && is.v[0].n_audiences >= 1);
		issuers_release(&is);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *a, *b;
	size_t alen, blen;

	if (size < 1)
		return 0;
	fuzz_split(data + 1, size - 1, &a, &alen, &b, &blen);
	switch (data[0] % 3) {
	case 0:
		config(a, alen, b, blen);
		break;
	case 1:
		policy(a, alen, b, blen);
		break;
	default:
		issuer(a, alen, b, blen);
		break;
	}
	return 0;
}
