/*
 * Connecting a session to its upstream and logging in there (upstream.c). Private
 * to the session's modules (session_int.h). Each step either moves the session to
 * its next state, or refuses it (session_refuse) with the reason; a cancel that
 * cannot connect is freed (it has nobody to answer).
 */
#ifndef PGTETHER_UPSTREAM_H
#define PGTETHER_UPSTREAM_H

#include "session_int.h"

/* Connects to the upstream's addresses from up_try on, until one connect is under
 * way (0), or none could start (-errno of the last). */
int upstream_connect(struct session_env *env, struct session *s);

/* The attempt at address up_try failed with err (a positive errno): go on with the
 * next address, or refuse the session naming the last address and its error. */
void upstream_next(struct session_env *env, struct session *s, int err);

/* The connect finished (EPOLLOUT): a cancel sends its CancelRequest, a session
 * its SSLRequest or its startup packet. */
void upstream_connected(struct session_env *env, struct session *s);

/* The upstream's answer to our SSLRequest (SESSION_UPSTREAM_SSLREQ). */
void upstream_sslreq_step(struct session_env *env, struct session *s);

/* The TLS handshake with the upstream goes on (SESSION_UPSTREAM_TLS). */
void upstream_tls_step(struct session_env *env, struct session *s);

/* Upstream bytes during login (SESSION_LOGIN): authentication, BackendKeyData,
 * ParameterStatus; the first ReadyForQuery starts the relay. */
void upstream_login_step(struct session_env *env, struct session *s);

/* The M field of an ErrorResponse body[0..len) into buf, for messages. */
const char *upstream_error_message(const uint8_t *body, uint32_t len, char *buf, size_t cap);

/* Allowed: builds the upstream's StartupMessage (the client's settings, the rule's
 * role, the identity for the database) and connects to the verdict's first address. */
void upstream_start(struct session_env *env, struct session *s);

#endif
