/*
 * The client's first packet and the framing of every message after it (pgwire.c):
 * what a workload sends before and after startup, and the server's ErrorResponse,
 * NoticeResponse and NotificationResponse as the session rewrites them (fields
 * withheld, a hint added).
 *
 * Input: byte 0 picks the chunk size the stream arrives in (partial reads), the rest
 * is the stream. The startup packet is classified and its parameters parsed (the
 * "options" value split into settings, each name checked, as startopts.c does); then the
 * same bytes are scanned as typed messages in chunks, and each whole message is
 * handed to what reads it.
 */
#include "fuzz.h"

#include <errno.h>

#include "pgwire.h"
#include "startopts.h"

#define FUZZ_MAX_PARAMS 64

static void startup(const uint8_t *d, size_t n)
{
	struct pgwire_param params[FUZZ_MAX_PARAMS];
	uint8_t out[PGWIRE_STARTUP_MAX + 64];
	char why[STARTOPTS_ERR];
	size_t len = 0;
	enum pgwire_startup_kind k = pgwire_startup_classify(d, n, &len);
	int np;

	if (k == PGWIRE_STARTUP_INCOMPLETE || k == PGWIRE_STARTUP_INVALID)
		return;
	fuzz_check(len >= 8 && len <= PGWIRE_STARTUP_MAX && len <= n);
	if (k != PGWIRE_STARTUP_MESSAGE)
		return;
	np = pgwire_startup_params(d, len, params, FUZZ_MAX_PARAMS);
	fuzz_check(np == -EPROTO || np == -E2BIG || (np >= 0 && np <= FUZZ_MAX_PARAMS));
	for (int i = 0; i < np; i++) {
		char key[64];

		fuzz_check(params[i].name >= (const char *)d && params[i].value < (const char *)d + len);
		pgwire_encoding_key(params[i].value, key, sizeof(key));
		(void)startopts_allowed(params[i].name, why);
		if (!strcmp(params[i].name, "options")) {
			struct startopts_setting set[STARTOPTS_MAX];
			size_t vl = strlen(params[i].value);
			char *buf = malloc(vl + 1);
			int ns;

			if (!buf)
				abort();
			ns = startopts_split(params[i].value, buf, vl + 1, set, STARTOPTS_MAX, why);
			fuzz_check(ns >= -1 && ns <= STARTOPTS_MAX);
			for (int j = 0; j < ns; j++) {
				fuzz_check(set[j].name >= buf && set[j].name < buf + vl + 1);
				(void)startopts_allowed(set[j].name, why);
			}
			free(buf);
		}
		(void)pgwire_build_parameter_status(out, sizeof(out), params[i].name, params[i].value);
	}
	if (np > 0) {
		size_t b = pgwire_build_startup(out, sizeof(out), params, (size_t)np);

		fuzz_check(b <= sizeof(out));
		if (b) {
			/* what we build from what we parsed parses again, to the same */
			struct pgwire_param again[FUZZ_MAX_PARAMS];
			size_t blen;

			fuzz_check(pgwire_startup_classify(out, b, &blen) == PGWIRE_STARTUP_MESSAGE && blen == b);
			fuzz_check(pgwire_startup_params(out, b, again, FUZZ_MAX_PARAMS) == np);
			for (int i = 0; i < np; i++)
				fuzz_check(!strcmp(again[i].name, params[i].name) && !strcmp(again[i].value, params[i].value));
		}
	}
}

/* A whole typed message m[0..mlen) (header included). */
static void message(const uint8_t *m, size_t mlen)
{
	static uint8_t out[1 << 16], copy[1 << 16];
	size_t n;

	if (mlen > sizeof(copy))
		return;
	switch (m[0]) {
	case 'E':
	case 'N':
		for (const char *c = "SVCMDHPpqWstcdnFLR"; *c; c++) {
			const char *v = pgwire_notice_field(m, mlen, *c);

			fuzz_check(!v || (v > (const char *)m && v < (const char *)m + mlen));
		}
		n = pgwire_withhold(m, mlen, "withheld", out, sizeof(out));
		fuzz_check(n <= sizeof(out));
		if (n) {
			fuzz_check(out[0] == m[0] && 1 + (size_t)pgwire_get32(out + 1) == n);
			fuzz_check(pgwire_notice_field(out, n, 'M') != NULL);
			fuzz_check(pgwire_notice_field(out, n, 'D') == NULL);
		}
		n = pgwire_add_hint(m, mlen, "pgtether logged in as role \"app\"", out, sizeof(out));
		fuzz_check(n <= sizeof(out));
		if (n) {
			const char *h = pgwire_notice_field(out, n, 'H');

			fuzz_check(out[0] == m[0] && 1 + (size_t)pgwire_get32(out + 1) == n);
			fuzz_check(h && strstr(h, "pgtether logged in as role \"app\"") != NULL);
		}
		break;
	case 'A':
		memcpy(copy, m, mlen);
		n = pgwire_notification_strip(copy, mlen);
		fuzz_check(n <= mlen);
		if (n)
			fuzz_check(1 + (size_t)pgwire_get32(copy + 1) == n);
		break;
	default:
		break;
	}
}

static void stream(const uint8_t *d, size_t n, size_t chunk)
{
	struct pgwire_scan s = { .max_len = 1u << 20 };
	size_t at = 0;

	while (at < n) {
		size_t len = n - at < chunk ? n - at : chunk;

		while (len) {
			struct pgwire_header h;
			int found = 0;
			long used = pgwire_scan_next(&s, d + at, len, &h, &found);

			if (used == -EPROTO)
				return;
			fuzz_check(used > 0 && (size_t)used <= len);
			at += (size_t)used;
			len -= (size_t)used;
			if (found) {
				fuzz_check(h.body_len + 4 <= s.max_len);
				/* the header just ended at `at`: the message is whole here when
				 * its body is too */
				if (n - at >= h.body_len)
					message(d + at - PGWIRE_HEADER, PGWIRE_HEADER + h.body_len);
			}
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t chunk;

	if (size < 1)
		return 0;
	chunk = 1 + data[0] % 64;
	startup(data + 1, size - 1);
	stream(data + 1, size - 1, chunk);
	return 0;
}
