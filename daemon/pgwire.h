/*
 * PostgreSQL frontend/backend protocol 3.0 (PostgreSQL docs, "Frontend/Backend
 * Protocol", "Message Formats"): startup-phase framing, a streaming scanner of typed
 * messages for either direction, and builders of the messages pgtether sends itself.
 * Pure: bytes in, bytes out; nothing here allocates.
 */
#ifndef PGTETHER_PGWIRE_H
#define PGTETHER_PGWIRE_H

#include <stddef.h>
#include <stdint.h>

/* Protocol integers are big-endian. */
static inline uint32_t pgwire_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void pgwire_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

#define PGWIRE_STARTUP_MAX 10240       /* PostgreSQL's own MAX_STARTUP_PACKET_LENGTH */
#define PGWIRE_CANCEL_REQUEST_CODE 80877102
#define PGWIRE_SSL_REQUEST_CODE    80877103
#define PGWIRE_GSSENC_REQUEST_CODE 80877104
#define PGWIRE_PROTOCOL_3_0        196608  /* 3 << 16 */

enum pgwire_startup_kind {
	PGWIRE_STARTUP_INCOMPLETE = 0,  /* need more bytes */
	PGWIRE_STARTUP_SSL,
	PGWIRE_STARTUP_GSSENC,
	PGWIRE_STARTUP_CANCEL,
	PGWIRE_STARTUP_MESSAGE,         /* StartupMessage, any protocol version */
	PGWIRE_STARTUP_INVALID,         /* length out of bounds or unknown code */
};

/*
 * Classifies the first untyped packet of a connection from buf[0..len). On a
 * complete packet *ret_len is its length. A length outside 8..PGWIRE_STARTUP_MAX is
 * INVALID before the rest arrives, so a peer cannot make us wait for 2 GB.
 */
enum pgwire_startup_kind pgwire_startup_classify(const uint8_t *buf, size_t len, size_t *ret_len);

/*
 * Writes an ErrorResponse ('E') with fields S, V (severity), C (SQLSTATE), M and,
 * when not NULL, H (hint). Strings longer than fit are cut. Returns the message
 * length, or 0 when cap cannot hold even the fixed part.
 */
size_t pgwire_error_response(uint8_t *out, size_t cap, const char *severity,
			     const char *sqlstate, const char *message, const char *hint);

/*
 * A whole ErrorResponse or NoticeResponse msg[0..mlen) (header included) with hint
 * added to its H field (after the server's own hint, "; " between) into out[0..cap).
 * Returns the new length, or 0 when msg is not well formed or out is too small.
 */
size_t pgwire_add_hint(const uint8_t *msg, size_t mlen, const char *hint, uint8_t *out, size_t cap);

/*
 * The value of field `code` of a whole ErrorResponse or NoticeResponse msg[0..mlen)
 * (header included), NUL-terminated inside msg, or NULL when it has none or is not
 * well formed.
 */
const char *pgwire_notice_field(const uint8_t *msg, size_t mlen, char code);

/*
 * Writes into out the server's ErrorResponse or NoticeResponse msg[0..mlen) (header
 * included) with `text` as its message and only the fields no value can be in: S and
 * V (severity), C (SQLSTATE), P (a position in the client's own statement), s t c d n
 * (catalog names: schema, table, column, type, constraint), kept in the server's
 * order. Everything else goes (M, D, H, W, q, p, F, L, R and fields not yet defined),
 * since the server fills them from values: "Key (email)=(...)", "Failing row
 * contains (...)", a PL/pgSQL RAISE, a COPY line. Returns the new length, 0 when msg is
 * not a well-formed message of either kind or out cannot hold the result.
 */
size_t pgwire_withhold(const uint8_t *msg, size_t mlen, const char *text, uint8_t *out, size_t cap);

/*
 * Empties the payload of the whole NotificationResponse msg[0..mlen) (header
 * included) in place, keeping the sender's pid and the channel. Returns its new
 * length, or 0 when it is not a well-formed NotificationResponse.
 */
size_t pgwire_notification_strip(uint8_t *msg, size_t mlen);

/* ---- typed messages ------------------------------------------------------------
 * After the startup packet every message is: type (1 byte), length (4 bytes, big
 * endian, counting itself but not the type), body. */

#define PGWIRE_HEADER 5
#define PGWIRE_DEFAULT_MAX_MESSAGE (1u << 30)   /* PostgreSQL's own MaxAllocSize */

/*
 * Tracks message boundaries in a byte stream that arrives in arbitrary pieces, so
 * bodies can be forwarded as they arrive and never need buffering whole. Zero it and
 * set max_len (0 means PGWIRE_DEFAULT_MAX_MESSAGE) before the first call.
 */
struct pgwire_scan {
	uint32_t max_len;
	uint32_t remaining;     /* body bytes of the current message not yet consumed */
	uint32_t body_len;      /* the current message's, once its header is whole */
	uint8_t hdr[PGWIRE_HEADER];
	uint8_t have;           /* header bytes collected so far */
};

struct pgwire_header {
	uint8_t type;
	uint32_t body_len;      /* length field minus its own four bytes */
};

/*
 * Consumes chunk[0..len) up to and including the next message header that completes
 * in it, or all of it when none does; body bytes are consumed without a report.
 * Returns the number of bytes consumed (> 0 when len > 0) and sets *found when
 * *ret holds a header completed by this call. -EPROTO when a length field is below 4
 * or above max_len: the stream cannot be followed any further.
 */
long pgwire_scan_next(struct pgwire_scan *s, const uint8_t *chunk, size_t len,
		      struct pgwire_header *ret, int *found);

/* True between messages (no partial header or body pending). */
int pgwire_scan_at_boundary(const struct pgwire_scan *s);

/* A StartupMessage parameter (pointers into the caller's buffer). */
struct pgwire_param {
	const char *name;
	const char *value;
};

/*
 * Parses the parameters of a complete StartupMessage (as classified above): up to
 * max pairs into params. Returns the number of pairs, or -EPROTO when the list is
 * not NUL-terminated properly, -E2BIG when there are more than max.
 */
int pgwire_startup_params(const uint8_t *pkt, size_t len, struct pgwire_param *params, size_t max);

/*
 * The encoding a client_encoding value names, spelled as PostgreSQL compares them
 * (clean_encoding_name in its encnames.c: letters and digits only, lower case), so
 * "UTF8", "utf-8" and asyncpg's "'utf-8'" are one. Writes it into out (cap bytes);
 * returns out, or NULL when it does not fit.
 */
char *pgwire_encoding_key(const char *value, char *out, size_t cap);

/*
 * Builders. Each writes one complete message into out and returns its length, or 0
 * when cap is too small (nothing useful is written then).
 */
size_t pgwire_build_startup(uint8_t *out, size_t cap, const struct pgwire_param *params, size_t n);
size_t pgwire_build_auth_ok(uint8_t *out, size_t cap);
size_t pgwire_build_parameter_status(uint8_t *out, size_t cap, const char *name, const char *value);
size_t pgwire_build_backend_key_data(uint8_t *out, size_t cap, uint32_t pid, uint32_t secret);
size_t pgwire_build_ready_for_query(uint8_t *out, size_t cap, char status);
size_t pgwire_build_cancel_request(uint8_t *out, size_t cap, uint32_t pid, uint32_t secret);
/* PasswordMessage ('p') carrying a NUL-terminated password or md5 response. */
size_t pgwire_build_password(uint8_t *out, size_t cap, const char *password);
/* SASLInitialResponse ('p'): mechanism name, then the length-prefixed first message. */
size_t pgwire_build_sasl_initial(uint8_t *out, size_t cap, const char *mechanism,
				 const uint8_t *data, size_t data_len);
/* SASLResponse ('p'): the raw message. */
size_t pgwire_build_sasl_response(uint8_t *out, size_t cap, const uint8_t *data, size_t data_len);

#endif
