/*
 * PostgreSQL frontend/backend protocol 3.0 (PostgreSQL docs, "Frontend/Backend
 * Protocol", "Message Formats"): the startup-phase framing pgtether needs to refuse
 * a connection properly, and the ErrorResponse builder. Pure: bytes in, bytes out.
 */
#ifndef PGTETHER_PGWIRE_H
#define PGTETHER_PGWIRE_H

#include <stddef.h>
#include <stdint.h>

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

#endif
