/*
 * Startup-phase framing and ErrorResponse, per the PostgreSQL protocol docs
 * ("Message Formats": SSLRequest, GSSENCRequest, CancelRequest, StartupMessage,
 * ErrorResponse; "Error and Notice Message Fields").
 */
#include "pgwire.h"

#include <string.h>

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

enum pgwire_startup_kind pgwire_startup_classify(const uint8_t *buf, size_t len, size_t *ret_len)
{
	uint32_t n, code;

	if (len < 4)
		return PGWIRE_STARTUP_INCOMPLETE;
	n = be32(buf);
	if (n < 8 || n > PGWIRE_STARTUP_MAX)
		return PGWIRE_STARTUP_INVALID;
	if (len < 8)
		return PGWIRE_STARTUP_INCOMPLETE;
	code = be32(buf + 4);
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
	put_be32(out + 1, (uint32_t)(pos - 1));
	return pos;
}
