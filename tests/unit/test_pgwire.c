/* Unit tests for daemon/pgwire.c: startup-phase framing and ErrorResponse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pgwire.h"

static size_t put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
	return 4;
}

static void test_ssl_and_gss(void **state)
{
	uint8_t b[8];
	size_t n = 0;

	(void)state;
	put32(b, 8);
	put32(b + 4, PGWIRE_SSL_REQUEST_CODE);
	assert_int_equal(pgwire_startup_classify(b, 8, &n), PGWIRE_STARTUP_SSL);
	assert_int_equal(n, 8);
	put32(b + 4, PGWIRE_GSSENC_REQUEST_CODE);
	assert_int_equal(pgwire_startup_classify(b, 8, &n), PGWIRE_STARTUP_GSSENC);
	/* partial reads */
	for (size_t i = 0; i < 8; i++)
		assert_int_equal(pgwire_startup_classify(b, i, &n), PGWIRE_STARTUP_INCOMPLETE);
	/* an SSLRequest with a wrong length is not one */
	put32(b, 12);
	assert_int_equal(pgwire_startup_classify(b, 8, &n), PGWIRE_STARTUP_INVALID);
}

static void test_startup_message(void **state)
{
	uint8_t b[64];
	size_t len = 0, n = 0;
	static const char params[] = "user\0alice\0database\0app\0";

	(void)state;
	len += put32(b + len, 0); /* patched below */
	len += put32(b + len, PGWIRE_PROTOCOL_3_0);
	memcpy(b + len, params, sizeof(params));
	len += sizeof(params); /* includes the final NUL terminator of the list */
	put32(b, (uint32_t)len);
	assert_int_equal(pgwire_startup_classify(b, len, &n), PGWIRE_STARTUP_MESSAGE);
	assert_int_equal(n, len);
	assert_int_equal(pgwire_startup_classify(b, len - 1, &n), PGWIRE_STARTUP_INCOMPLETE);
	/* bytes after the packet (pipelined) do not change the answer */
	assert_int_equal(pgwire_startup_classify(b, sizeof(b), &n), PGWIRE_STARTUP_MESSAGE);
	assert_int_equal(n, len);
	/* protocol 2.0 is gone since PostgreSQL 14 */
	put32(b + 4, 2u << 16);
	assert_int_equal(pgwire_startup_classify(b, len, &n), PGWIRE_STARTUP_INVALID);
}

static void test_length_bounds(void **state)
{
	uint8_t b[8];
	size_t n = 0;

	(void)state;
	put32(b, 7);
	assert_int_equal(pgwire_startup_classify(b, 4, &n), PGWIRE_STARTUP_INVALID);
	/* a huge length is refused from the first four bytes, before any wait */
	put32(b, 0x7fffffff);
	assert_int_equal(pgwire_startup_classify(b, 4, &n), PGWIRE_STARTUP_INVALID);
	put32(b, PGWIRE_STARTUP_MAX + 1);
	assert_int_equal(pgwire_startup_classify(b, 4, &n), PGWIRE_STARTUP_INVALID);
	put32(b, 16);
	put32(b + 4, PGWIRE_CANCEL_REQUEST_CODE);
	assert_int_equal(pgwire_startup_classify(b, 8, &n), PGWIRE_STARTUP_INCOMPLETE);
	put32(b, 12);
	assert_int_equal(pgwire_startup_classify(b, 8, &n), PGWIRE_STARTUP_INVALID);
}

static void test_error_response(void **state)
{
	uint8_t out[256];
	size_t n;

	(void)state;
	n = pgwire_error_response(out, sizeof(out), "FATAL", "08004", "not redirected", "connect directly");
	static const char body[] = "SFATAL\0VFATAL\0C08004\0Mnot redirected\0Hconnect directly\0";
	assert_int_equal(n, 1 + 4 + sizeof(body)); /* sizeof includes the final terminator */
	assert_int_equal(out[0], 'E');
	assert_int_equal((out[1] << 24 | out[2] << 16 | out[3] << 8 | out[4]), n - 1);
	assert_memory_equal(out + 5, body, sizeof(body));

	/* a message longer than the buffer is cut, and the result is still well formed */
	char longmsg[400];
	memset(longmsg, 'x', sizeof(longmsg) - 1);
	longmsg[sizeof(longmsg) - 1] = '\0';
	n = pgwire_error_response(out, 64, "FATAL", "08004", longmsg, NULL);
	assert_true(n > 0 && n <= 64);
	assert_int_equal(out[n - 1], 0);
	assert_int_equal(out[n - 2], 0);
	assert_int_equal((out[1] << 24 | out[2] << 16 | out[3] << 8 | out[4]), n - 1);

	assert_int_equal(pgwire_error_response(out, 10, "FATAL", "08004", "m", NULL), 0);
}

/* An ErrorResponse of body[0..len) (fields and the final terminator). */
static size_t notice_of(uint8_t *out, char type, const char *body, size_t len)
{
	out[0] = (uint8_t)type;
	out[1] = (uint8_t)((len + 4) >> 24);
	out[2] = (uint8_t)((len + 4) >> 16);
	out[3] = (uint8_t)((len + 4) >> 8);
	out[4] = (uint8_t)(len + 4);
	memcpy(out + 5, body, len);
	return 5 + len;
}

static void test_add_hint(void **state)
{
	static const char plain[] = "SERROR\0VERROR\0C42501\0Mpermission denied for table t\0";
	static const char hinted[] = "SERROR\0C42501\0Hask the owner\0Mx\0";
	uint8_t in[300], out[300];
	size_t n = notice_of(in, 'E', plain, sizeof(plain)), m;

	(void)state;
	m = pgwire_add_hint(in, n, "ours", out, sizeof(out));
	assert_int_equal(out[0], 'E');
	assert_int_equal((size_t)(out[1] << 24 | out[2] << 16 | out[3] << 8 | out[4]), m - 1);
	assert_int_equal(m, n + 6);
	assert_string_equal(pgwire_notice_field(out, m, 'H'), "ours");
	assert_string_equal(pgwire_notice_field(out, m, 'M'), "permission denied for table t");
	/* the server's own hint is kept, ours after it; one H field */
	n = notice_of(in, 'N', hinted, sizeof(hinted));
	m = pgwire_add_hint(in, n, "ours", out, sizeof(out));
	assert_int_equal(out[0], 'N');
	assert_string_equal(pgwire_notice_field(out, m, 'H'), "ask the owner; ours");
	assert_string_equal(pgwire_notice_field(out, m, 'M'), "x");
	assert_int_equal(m, n + 6);
	/* not well formed or no room: 0 */
	assert_int_equal(pgwire_add_hint(in, n - 1, "ours", out, sizeof(out)), 0);
	assert_int_equal(pgwire_add_hint(in, n, "ours", out, n + 2), 0);
}

static void test_withhold(void **state)
{
	/* a unique violation as PostgreSQL 15 sends it */
	static const char body[] = "SERROR\0VERROR\0C23505\0Mduplicate key value violates unique constraint \"c_email_key\"\0"
				   "DKey (email)=(alice@example.com) already exists.\0Hhint alice@example.com\0"
				   "Wcontext alice@example.com\0qselect 'alice@example.com'\0p3\0P12\0spublic\0tc\0cemail\0dtext\0"
				   "nc_email_key\0Fnbtinsert.c\0L664\0R_bt_check_unique\0Zfuture alice@example.com\0";
	static const char want[] = "SERROR\0VERROR\0C23505\0Mwithheld\0P12\0spublic\0tc\0cemail\0dtext\0nc_email_key\0";
	uint8_t in[600], out[600];
	size_t n = notice_of(in, 'E', body, sizeof(body)), m;

	(void)state;
	assert_string_equal(pgwire_notice_field(in, n, 'C'), "23505");
	assert_string_equal(pgwire_notice_field(in, n, 'n'), "c_email_key");
	assert_null(pgwire_notice_field(in, n, 'X'));
	m = pgwire_withhold(in, n, "withheld", out, sizeof(out));
	assert_int_equal(m, 5 + sizeof(want));
	assert_int_equal(out[0], 'E');
	assert_int_equal((size_t)(out[1] << 24 | out[2] << 16 | out[3] << 8 | out[4]), m - 1);
	assert_memory_equal(out + 5, want, sizeof(want));
	assert_null(memmem(out, m, "alice", 5));

	/* a notice keeps its type; one without a SQLSTATE still gets the message */
	n = notice_of(in, 'N', "SNOTICE\0Maudit alice@example.com\0", sizeof("SNOTICE\0Maudit alice@example.com\0"));
	m = pgwire_withhold(in, n, "w", out, sizeof(out));
	assert_int_equal(out[0], 'N');
	assert_memory_equal(out + 5, "SNOTICE\0Mw\0", sizeof("SNOTICE\0Mw\0"));
	assert_int_equal(m, 5 + sizeof("SNOTICE\0Mw\0"));

	/* not well formed, or no room: 0 */
	n = notice_of(in, 'E', "SERROR\0Mx", 9); /* no NUL after the last field */
	assert_int_equal(pgwire_withhold(in, n, "w", out, sizeof(out)), 0);
	assert_null(pgwire_notice_field(in, n, 'S'));
	n = notice_of(in, 'D', "SERROR\0\0", 8);
	assert_int_equal(pgwire_withhold(in, n, "w", out, sizeof(out)), 0);
	n = notice_of(in, 'E', body, sizeof(body));
	assert_int_equal(pgwire_withhold(in, n, "withheld", out, 20), 0);
	assert_int_equal(pgwire_withhold(in, n - 1, "withheld", out, sizeof(out)), 0);
}

static void test_notification_strip(void **state)
{
	static const uint8_t msg[] = "A\0\0\0\x1d\0\0\x30\x39" "ch\0" "alice@example.com"; /* NUL-terminated */
	static const uint8_t want[] = "A\0\0\0\x0c\0\0\x30\x39" "ch\0"; /* and an empty payload */
	uint8_t m[64];

	(void)state;
	memcpy(m, msg, sizeof(msg));
	assert_int_equal(pgwire_notification_strip(m, sizeof(msg)), sizeof(want));
	assert_memory_equal(m, want, sizeof(want));
	memcpy(m, msg, sizeof(msg));
	assert_int_equal(pgwire_notification_strip(m, sizeof(msg) - 1), 0); /* length field disagrees */
	m[0] = 'N';
	assert_int_equal(pgwire_notification_strip(m, sizeof(msg)), 0);
	memcpy(m, msg, sizeof(msg));
	m[11] = 'x'; /* no NUL after the channel: the payload's is the only one */
	assert_int_equal(pgwire_notification_strip(m, sizeof(msg)), 0);
}

/* A recorded server stream: what a backend sends after authentication, plus a row. */
static size_t record_stream(uint8_t *buf, size_t cap, struct pgwire_header *want, size_t *n_want)
{
	size_t len = 0, n;
	uint8_t row[300];

	n = pgwire_build_auth_ok(buf + len, cap - len);
	want[(*n_want)++] = (struct pgwire_header){ 'R', 4 };
	len += n;
	n = pgwire_build_parameter_status(buf + len, cap - len, "server_version", "15.18");
	want[(*n_want)++] = (struct pgwire_header){ 'S', (uint32_t)n - 5 };
	len += n;
	n = pgwire_build_parameter_status(buf + len, cap - len, "client_encoding", "UTF8");
	want[(*n_want)++] = (struct pgwire_header){ 'S', (uint32_t)n - 5 };
	len += n;
	n = pgwire_build_backend_key_data(buf + len, cap - len, 4242, 0xdeadbeef);
	want[(*n_want)++] = (struct pgwire_header){ 'K', 8 };
	len += n;
	n = pgwire_build_ready_for_query(buf + len, cap - len, 'I');
	want[(*n_want)++] = (struct pgwire_header){ 'Z', 1 };
	len += n;
	/* an empty-bodied message (e.g. Sync) and a bigger one */
	buf[len++] = 'S';
	buf[len++] = 0; buf[len++] = 0; buf[len++] = 0; buf[len++] = 4;
	want[(*n_want)++] = (struct pgwire_header){ 'S', 0 };
	memset(row, 'x', sizeof(row));
	buf[len++] = 'D';
	buf[len++] = 0; buf[len++] = 0; buf[len++] = (uint8_t)((sizeof(row) + 4) >> 8);
	buf[len++] = (uint8_t)(sizeof(row) + 4);
	memcpy(buf + len, row, sizeof(row));
	len += sizeof(row);
	want[(*n_want)++] = (struct pgwire_header){ 'D', sizeof(row) };
	return len;
}

/* Feeds the stream in the given pieces; checks every header comes out once, in order. */
static void feed(const uint8_t *buf, size_t len, const size_t *cuts, size_t n_cuts,
		 const struct pgwire_header *want, size_t n_want)
{
	struct pgwire_scan sc = { 0 };
	struct pgwire_header h;
	size_t got = 0, start = 0;

	for (size_t c = 0; c <= n_cuts; c++) {
		size_t end = c < n_cuts ? cuts[c] : len;

		while (start < end) {
			int found;
			long used = pgwire_scan_next(&sc, buf + start, end - start, &h, &found);

			assert_true(used > 0);
			start += (size_t)used;
			if (found) {
				assert_true(got < n_want);
				assert_int_equal(h.type, want[got].type);
				assert_int_equal(h.body_len, want[got].body_len);
				got++;
			}
		}
	}
	assert_int_equal(got, n_want);
	assert_true(pgwire_scan_at_boundary(&sc));
}

static void test_scan_every_split_point(void **state)
{
	uint8_t buf[1024];
	struct pgwire_header want[16];
	size_t n_want = 0, len, cuts[2];

	(void)state;
	len = record_stream(buf, sizeof(buf), want, &n_want);
	feed(buf, len, NULL, 0, want, n_want);
	for (size_t k = 0; k <= len; k++) {
		cuts[0] = k;
		feed(buf, len, cuts, 1, want, n_want);
		/* and three pieces: k and k+3, so header halves meet body halves */
		if (k + 3 <= len) {
			cuts[1] = k + 3;
			feed(buf, len, cuts, 2, want, n_want);
		}
	}
	/* byte by byte */
	size_t *all = calloc(len, sizeof(*all));
	for (size_t k = 0; k < len; k++)
		all[k] = k;
	feed(buf, len, all, len, want, n_want);
	free(all);
}

static void test_scan_rejects_bad_lengths(void **state)
{
	struct pgwire_scan sc = { 0 };
	struct pgwire_header h;
	int found;
	const uint8_t short_len[] = { 'Q', 0, 0, 0, 3 };
	const uint8_t huge[] = { 'D', 0x7f, 0xff, 0xff, 0xff };
	const uint8_t over_cap[] = { 'Q', 0, 0, 0x10, 0x01 };

	(void)state;
	assert_int_equal(pgwire_scan_next(&sc, short_len, sizeof(short_len), &h, &found), -EPROTO);
	memset(&sc, 0, sizeof(sc));
	assert_int_equal(pgwire_scan_next(&sc, huge, sizeof(huge), &h, &found), -EPROTO);
	memset(&sc, 0, sizeof(sc));
	sc.max_len = 4096;
	assert_int_equal(pgwire_scan_next(&sc, over_cap, sizeof(over_cap), &h, &found), -EPROTO);
	/* exactly at the cap is fine */
	memset(&sc, 0, sizeof(sc));
	sc.max_len = 4097;
	assert_int_equal(pgwire_scan_next(&sc, over_cap, sizeof(over_cap), &h, &found), 5);
	assert_true(found);
	assert_int_equal(h.body_len, 4093);
	assert_false(pgwire_scan_at_boundary(&sc));
}

static void test_startup_params_round_trip(void **state)
{
	const struct pgwire_param in[] = {
		{ "user", "app" }, { "database", "shop" }, { "application_name", "" },
	};
	struct pgwire_param out[8];
	uint8_t buf[256];
	size_t len, plen = 0;

	(void)state;
	len = pgwire_build_startup(buf, sizeof(buf), in, 3);
	assert_true(len > 0);
	assert_int_equal(pgwire_startup_classify(buf, len, &plen), PGWIRE_STARTUP_MESSAGE);
	assert_int_equal(plen, len);
	assert_int_equal(pgwire_startup_params(buf, len, out, 8), 3);
	for (int i = 0; i < 3; i++) {
		assert_string_equal(out[i].name, in[i].name);
		assert_string_equal(out[i].value, in[i].value);
	}
	assert_int_equal(pgwire_startup_params(buf, len, out, 2), -E2BIG);
	/* a name without its value, and a missing final terminator */
	static const uint8_t lone[] = { 0, 0, 0, 14, 0, 3, 0, 0, 'u', 's', 'e', 'r', 0, 0 };
	assert_int_equal(pgwire_startup_params(lone, sizeof(lone), out, 8), -EPROTO);
	buf[len - 1] = 'x';
	assert_int_equal(pgwire_startup_params(buf, len, out, 8), -EPROTO);
	assert_int_equal(pgwire_build_startup(buf, 10, in, 3), 0);
}

static void test_encoding_key(void **state)
{
	char out[16];

	(void)state;
	assert_string_equal(pgwire_encoding_key("UTF8", out, sizeof(out)), "utf8");
	assert_string_equal(pgwire_encoding_key("utf-8", out, sizeof(out)), "utf8");
	assert_string_equal(pgwire_encoding_key("'utf-8'", out, sizeof(out)), "utf8"); /* asyncpg */
	assert_string_equal(pgwire_encoding_key("SQL_ASCII", out, sizeof(out)), "sqlascii");
	assert_string_equal(pgwire_encoding_key("LATIN1", out, sizeof(out)), "latin1");
	assert_string_equal(pgwire_encoding_key("", out, sizeof(out)), "");
	assert_null(pgwire_encoding_key("utf8utf8utf8utf8", out, sizeof(out))); /* no room for the NUL */
	assert_string_equal(pgwire_encoding_key("u-t-f-8-", out, 5), "utf8");
}

static void test_builders(void **state)
{
	uint8_t b[64];
	const uint8_t first[] = "n,,n=,r=abc";

	(void)state;
	assert_int_equal(pgwire_build_backend_key_data(b, sizeof(b), 1, 2), 13);
	assert_memory_equal(b, "K\0\0\0\x0c\0\0\0\x01\0\0\0\x02", 13);
	assert_int_equal(pgwire_build_ready_for_query(b, sizeof(b), 'T'), 6);
	assert_memory_equal(b, "Z\0\0\0\x05T", 6);
	assert_int_equal(pgwire_build_cancel_request(b, sizeof(b), 7, 9), 16);
	assert_memory_equal(b, "\0\0\0\x10\x04\xd2\x16\x2e\0\0\0\x07\0\0\0\x09", 16);
	assert_int_equal(pgwire_build_password(b, sizeof(b), "md5abc"), 12);
	assert_memory_equal(b, "p\0\0\0\x0bmd5abc", 12);
	assert_int_equal(pgwire_build_sasl_initial(b, sizeof(b), "SCRAM-SHA-256", first, sizeof(first) - 1),
			 5 + 14 + 4 + 11);
	assert_memory_equal(b + 5, "SCRAM-SHA-256\0\0\0\0\x0bn,,n=,r=abc", 14 + 4 + 11);
	assert_int_equal(pgwire_build_sasl_response(b, sizeof(b), first, 3), 8);
	assert_int_equal(pgwire_build_parameter_status(b, 8, "a", "bcdef"), 0);
	assert_int_equal(pgwire_build_auth_ok(b, 8), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ssl_and_gss),
		cmocka_unit_test(test_startup_message),
		cmocka_unit_test(test_length_bounds),
		cmocka_unit_test(test_error_response),
		cmocka_unit_test(test_withhold),
		cmocka_unit_test(test_notification_strip),
		cmocka_unit_test(test_scan_every_split_point),
		cmocka_unit_test(test_scan_rejects_bad_lengths),
		cmocka_unit_test(test_startup_params_round_trip),
		cmocka_unit_test(test_encoding_key),
		cmocka_unit_test(test_builders),
		cmocka_unit_test(test_add_hint),
	};

	return cmocka_run_group_tests_name("pgwire", tests, NULL, NULL);
}
