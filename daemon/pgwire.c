/*
 * Startup-phase framing and ErrorResponse, per the PostgreSQL protocol docs
 * ("Message Formats": SSLRequest, GSSENCRequest, CancelRequest, StartupMessage,
 * ErrorResponse; "Error and Notice Message Fields").
 */
#include "pgwire.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>


enum pgwire_startup_kind pgwire_startup_classify(const uint8_t *buf, size_t len, size_t *ret_len)
{
	uint32_t n, code;

	if (len < 4)
		return PGWIRE_STARTUP_INCOMPLETE;
	n = pgwire_get32(buf);
	if (n < 8 || n > PGWIRE_STARTUP_MAX)
		return PGWIRE_STARTUP_INVALID;
	if (len < 8)
		return PGWIRE_STARTUP_INCOMPLETE;
	code = pgwire_get32(buf + 4);
	switch (code) {
	case PGWIRE_SSL_REQUEST_CODE:
	case PGWIRE_GSSENC_REQUEST_CODE:
		if (n != 8)
			return PGWIRE_STARTUP_INVALID;
		*ret_len = 8;
		return code == PGWIRE_SSL_REQUEST_CODE ? PGWIRE_STARTUP_SSL : PGWIRE_STARTUP_GSSENC;
	case PGWIRE_CANCEL_REQUEST_CODE:
		if (n != 16)
			return PGWIRE_STARTUP_INVALID;
		break;
	default:
		if (code >> 16 != 3) /* protocol major version 3 only */
			return PGWIRE_STARTUP_INVALID;
	}
	if (len < n)
		return PGWIRE_STARTUP_INCOMPLETE;
	*ret_len = n;
	return code == PGWIRE_CANCEL_REQUEST_CODE ? PGWIRE_STARTUP_CANCEL : PGWIRE_STARTUP_MESSAGE;
}

/* Appends field type + NUL-terminated value, cutting the value to fit. */
static size_t put_field(uint8_t *out, size_t pos, size_t cap, char type, const char *value)
{
	size_t n = strlen(value);

	if (pos + 2 + 1 > cap) /* type, at least the NUL, and the final terminator */
		return pos;
	if (pos + 2 + n + 1 > cap)
		n = cap - pos - 3;
	out[pos++] = (uint8_t)type;
	memcpy(out + pos, value, n);
	pos += n;
	out[pos++] = 0;
	return pos;
}

size_t pgwire_error_response(uint8_t *out, size_t cap, const char *severity,
			     const char *sqlstate, const char *message, const char *hint)
{
	size_t pos = 5;

	if (cap < 5 + 2 * (2 + strlen(severity)) + 8 + 1 + 3)
		return 0;
	out[0] = 'E';
	pos = put_field(out, pos, cap, 'S', severity);
	pos = put_field(out, pos, cap, 'V', severity);
	pos = put_field(out, pos, cap, 'C', sqlstate);
	pos = put_field(out, pos, cap, 'M', message);
	if (hint)
		pos = put_field(out, pos, cap, 'H', hint);
	out[pos++] = 0;
	pgwire_put32(out + 1, (uint32_t)(pos - 1));
	return pos;
}

/* Whether msg[0..mlen) is a whole 'E' or 'N' whose fields all end inside it, the
 * last followed by the terminator. */
static bool notice_well_formed(const uint8_t *msg, size_t mlen)
{
	const uint8_t *p = msg + 5, *end = msg + mlen;

	if (mlen < 6 || (msg[0] != 'E' && msg[0] != 'N') || pgwire_get32(msg + 1) != mlen - 1 || end[-1] != 0)
		return false;
	while (p < end && *p) {
		const uint8_t *z = memchr(p + 1, 0, (size_t)(end - p - 1));

		if (!z)
			return false;
		p = z + 1;
	}
	return p == end - 1;
}

const char *pgwire_notice_field(const uint8_t *msg, size_t mlen, char code)
{
	const uint8_t *p = msg + 5;

	if (!notice_well_formed(msg, mlen))
		return NULL;
	for (; *p; p += strlen((const char *)p) + 1)
		if (*p == (uint8_t)code)
			return (const char *)p + 1;
	return NULL;
}

size_t pgwire_withhold(const uint8_t *msg, size_t mlen, const char *text, uint8_t *out, size_t cap)
{
	/* "Error and Notice Message Fields": the ones that carry no value */
	static const char keep[] = "SVCPstcdn";
	const uint8_t *p = msg + 5;
	size_t pos = 5;
	bool said = false;

	if (!notice_well_formed(msg, mlen) || cap < 5 + 2 + strlen(text) + 1)
		return 0;
	out[0] = msg[0];
	for (; *p; p += strlen((const char *)p) + 1) {
		size_t n = strlen((const char *)p) + 1;

		if (!strchr(keep, *p))
			continue;
		if (pos + n + 1 > cap)
			return 0;
		memcpy(out + pos, p, n);
		pos += n;
		if (*p == 'C' && !said) {
			if (pos + 2 + strlen(text) + 1 > cap)
				return 0;
			pos = put_field(out, pos, cap, 'M', text);
			said = true;
		}
	}
	if (!said) {
		if (pos + 2 + strlen(text) + 1 > cap)
			return 0;
		pos = put_field(out, pos, cap, 'M', text);
	}
	out[pos++] = 0;
	pgwire_put32(out + 1, (uint32_t)(pos - 1));
	return pos;
}

size_t pgwire_add_hint(const uint8_t *msg, size_t mlen, const char *hint, uint8_t *out, size_t cap)
{
	const uint8_t *p = msg + 5;
	const char *theirs = pgwire_notice_field(msg, mlen, 'H');
	size_t pos = 5, hl = strlen(hint);

	if (!notice_well_formed(msg, mlen) || cap < mlen + hl + 4)
		return 0;
	out[0] = msg[0];
	for (; *p; p += strlen((const char *)p) + 1)
		if (*p != 'H') {
			size_t n = strlen((const char *)p) + 1;

			memcpy(out + pos, p, n);
			pos += n;
		}
	out[pos++] = 'H';
	if (theirs) {
		size_t tl = strlen(theirs);

		memcpy(out + pos, theirs, tl);
		memcpy(out + pos + tl, "; ", 2);
		pos += tl + 2;
	}
	memcpy(out + pos, hint, hl + 1);
	pos += hl + 1;
	out[pos++] = 0;
	pgwire_put32(out + 1, (uint32_t)(pos - 1));
	return pos;
}

size_t pgwire_notification_strip(uint8_t *msg, size_t mlen)
{
	/* 'A', length, int32 pid, channel\0, payload\0 */
	const uint8_t *chan = msg + 9, *z;
	size_t n;

	if (mlen < 11 || msg[0] != 'A' || pgwire_get32(msg + 1) != mlen - 1 || msg[mlen - 1] != 0 ||
	    !(z = memchr(chan, 0, mlen - 9)) || z + 1 >= msg + mlen || memchr(z + 1, 0, (size_t)(msg + mlen - z - 1)) != msg + mlen - 1)
		return 0;
	n = (size_t)(z + 1 - msg);
	msg[n++] = 0;
	pgwire_put32(msg + 1, (uint32_t)(n - 1));
	return n;
}

/* ---- typed messages ---------------------------------------------------------- */

long pgwire_scan_next(struct pgwire_scan *s, const uint8_t *chunk, size_t len,
		      struct pgwire_header *ret, int *found)
{
	uint32_t max = s->max_len ? s->max_len : PGWIRE_DEFAULT_MAX_MESSAGE;
	size_t used = 0;
	uint32_t n;

	*found = 0;
	if (len == 0)
		return 0;
	if (s->remaining) {
		used = len < s->remaining ? len : s->remaining;
		s->remaining -= (uint32_t)used;
		return (long)used;
	}
	while (used < len && s->have < PGWIRE_HEADER)
		s->hdr[s->have++] = chunk[used++];
	if (s->have < PGWIRE_HEADER)
		return (long)used;
	n = pgwire_get32(s->hdr + 1);
	if (n < 4 || n > max)
		return -EPROTO;
	ret->type = s->hdr[0];
	ret->body_len = n - 4;
	s->body_len = n - 4;
	s->remaining = n - 4;
	s->have = 0;
	*found = 1;
	return (long)used;
}

int pgwire_scan_at_boundary(const struct pgwire_scan *s)
{
	return s->have == 0 && s->remaining == 0;
}

char *pgwire_encoding_key(const char *value, char *out, size_t cap)
{
	size_t n = 0;

	for (; *value; value++) {
		unsigned char ch = (unsigned char)*value;

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')))
			continue;
		if (n + 1 >= cap)
			return NULL;
		out[n++] = (char)(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
	}
	if (cap == 0)
		return NULL;
	out[n] = '\0';
	return out;
}

int pgwire_startup_params(const uint8_t *pkt, size_t len, struct pgwire_param *params, size_t max)
{
	size_t pos = 8;
	int n = 0;

	if (len < 9 || pkt[len - 1] != 0)
		return -EPROTO;
	while (pos < len - 1) {
		const uint8_t *name = pkt + pos, *value, *end;

		end = memchr(name, 0, len - 1 - pos);
		if (!end || end == name)
			return -EPROTO;
		value = end + 1;
		if (value >= pkt + len - 1)
			return -EPROTO; /* a name without a value */
		end = memchr(value, 0, (size_t)(pkt + len - 1 - value));
		if (!end)
			return -EPROTO;
		if ((size_t)n == max)
			return -E2BIG;
		params[n].name = (const char *)name;
		params[n].value = (const char *)value;
		n++;
		pos = (size_t)(end - pkt) + 1;
	}
	return n;
}

/* Writes the type and a length placeholder; returns the body offset. */
static size_t begin(uint8_t *out, char type)
{
	out[0] = (uint8_t)type;
	return 5;
}

static size_t finish(uint8_t *out, size_t pos)
{
	pgwire_put32(out + 1, (uint32_t)(pos - 1));
	return pos;
}

size_t pgwire_build_startup(uint8_t *out, size_t cap, const struct pgwire_param *params, size_t n)
{
	size_t need = 8 + 1, pos = 8;

	for (size_t i = 0; i < n; i++)
		need += strlen(params[i].name) + 1 + strlen(params[i].value) + 1;
	if (need > cap || need > PGWIRE_STARTUP_MAX)
		return 0;
	pgwire_put32(out, (uint32_t)need);
	pgwire_put32(out + 4, PGWIRE_PROTOCOL_3_0);
	for (size_t i = 0; i < n; i++) {
		size_t a = strlen(params[i].name) + 1, b = strlen(params[i].value) + 1;

		memcpy(out + pos, params[i].name, a);
		pos += a;
		memcpy(out + pos, params[i].value, b);
		pos += b;
	}
	out[pos++] = 0;
	return pos;
}

size_t pgwire_build_auth_ok(uint8_t *out, size_t cap)
{
	if (cap < 9)
		return 0;
	begin(out, 'R');
	pgwire_put32(out + 5, 0);
	return finish(out, 9);
}

size_t pgwire_build_parameter_status(uint8_t *out, size_t cap, const char *name, const char *value)
{
	size_t a = strlen(name) + 1, b = strlen(value) + 1, pos;

	if (5 + a + b > cap)
		return 0;
	pos = begin(out, 'S');
	memcpy(out + pos, name, a);
	pos += a;
	memcpy(out + pos, value, b);
	return finish(out, pos + b);
}

size_t pgwire_build_backend_key_data(uint8_t *out, size_t cap, uint32_t pid, uint32_t secret)
{
	if (cap < 13)
		return 0;
	begin(out, 'K');
	pgwire_put32(out + 5, pid);
	pgwire_put32(out + 9, secret);
	return finish(out, 13);
}

size_t pgwire_build_ready_for_query(uint8_t *out, size_t cap, char status)
{
	if (cap < 6)
		return 0;
	begin(out, 'Z');
	out[5] = (uint8_t)status;
	return finish(out, 6);
}

size_t pgwire_build_cancel_request(uint8_t *out, size_t cap, uint32_t pid, uint32_t secret)
{
	if (cap < 16)
		return 0;
	pgwire_put32(out, 16);
	pgwire_put32(out + 4, PGWIRE_CANCEL_REQUEST_CODE);
	pgwire_put32(out + 8, pid);
	pgwire_put32(out + 12, secret);
	return 16;
}

size_t pgwire_build_password(uint8_t *out, size_t cap, const char *password)
{
	size_t n = strlen(password) + 1;

	if (5 + n > cap)
		return 0;
	begin(out, 'p');
	memcpy(out + 5, password, n);
	return finish(out, 5 + n);
}

size_t pgwire_build_sasl_initial(uint8_t *out, size_t cap, const char *mechanism,
				 const uint8_t *data, size_t data_len)
{
	size_t m = strlen(mechanism) + 1, pos;

	if (5 + m + 4 + data_len > cap || data_len > 0x7fffffff)
		return 0;
	pos = begin(out, 'p');
	memcpy(out + pos, mechanism, m);
	pos += m;
	pgwire_put32(out + pos, (uint32_t)data_len);
	pos += 4;
	memcpy(out + pos, data, data_len);
	return finish(out, pos + data_len);
}

size_t pgwire_build_sasl_response(uint8_t *out, size_t cap, const uint8_t *data, size_t data_len)
{
	if (5 + data_len > cap)
		return 0;
	begin(out, 'p');
	memcpy(out + 5, data, data_len);
	return finish(out, 5 + data_len);
}
