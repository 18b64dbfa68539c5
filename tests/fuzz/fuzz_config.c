/*
 * The JSON files (config.c, policy.c, issuers.c), from memory: an admin writes them,
 * but a parser that crashes on a typo takes the daemon down at reload, and
 * jansson's positions feed every message.
 *
 * Input: byte 0 picks the file, the rest splits at the first NUL.
 *   0: pgtether.json (part one), then credentials.json (part two) for it
 *   1: a policy.d file (part one), then a second one (part two) into the same policy
 *   2: an issuers.d file (part one) with its JWKS (part two)
 *   3: a configuration bundle (cfgsrc.h, what a worker gets from the parent: the
 *      rest, whole), replayed into a worker's load of /fuzz/pgtether.json
 */
#include "fuzz.h"

#include "cfgsrc.h"
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

static void bundle(const uint8_t *data, size_t size)
{
	char err[CONFIG_ERR_LEN];
	struct cfgsrc *src = cfgsrc_parse(data, size, err, sizeof(err));
	struct config c;

	if (!src)
		return;
	fuzz_check(cfgsrc_is_replay(src));
	if (config_load_src("/fuzz/pgtether.json", src, CONFIG_LOAD_WORKER, &c, err) == 0) {
		/* a worker holds no password, whatever the bundle says */
		for (size_t i = 0; i < c.n_upstreams; i++)
			for (size_t k = 0; k < c.upstreams[i].n_roles; k++)
				fuzz_check(c.upstreams[i].roles[k].password == NULL);
		config_release(&c);
	}
	cfgsrc_free(src);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *a, *b;
	size_t alen, blen;

	if (size < 1)
		return 0;
	if (data[0] % 4 == 3) {
		bundle(data + 1, size - 1);
		return 0;
	}
	fuzz_split(data + 1, size - 1, &a, &alen, &b, &blen);
	switch (data[0] % 4) {
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
