/*
 * Cancel of a session's running query (cancel.c). A cancel is itself a struct
 * session in SESSION_CANCELLING: its upstream end is the connection to the backend's
 * server (or, between tries, a timerfd). Private to the session's modules.
 */
#ifndef PGTETHER_CANCEL_H
#define PGTETHER_CANCEL_H

#include "session_int.h"

/* s is a new connection whose startup packet pkt (16 bytes) is a CancelRequest: find
 * the session it names (same key, same workload cgroup) and forward its real key, now
 * or once the bytes before it went upstream. Unknown keys are dropped silently, as
 * PostgreSQL does; s is freed, or becomes the cancel of that session. */
void cancel_request(struct session_env *env, struct session *s, const uint8_t *pkt);

/* The cancel c goes to the backend's server now (again). */
void cancel_forward(struct session_env *env, struct session *c);

/* After t sent client bytes upstream: a cancel that waited for them goes now. */
void cancel_release(struct session_env *env, struct session *t);

/* What waited for t's cancel goes on (see cancel.c). */
void cancel_ungate(struct session_env *env, struct session *t);

/* Whether the cancel c, whose connection the server closed, must go again: the
 * backend may not have seen the query yet (see cancel.c). */
bool cancel_again(const struct session *c);

/* Whether the query the cancel c of t was sent for has ended (see cancel.c). */
bool cancel_over(const struct session *c, const struct session *t);

/* Whether the bytes t's client sent wait for its cancel c now (see cancel.c). */
bool cancel_gates(const struct session *c, const struct session *t);

/* Whether t's client's next statement waits for t's cancel (see cancel.c). */
bool cancel_holds(const struct session *t);

/* t's server ended a statement or said ReadyForQuery (see cancel.c). */
void cancel_server_ended(struct session *t);

/* The server closed c's connection: c goes again (now or a little later), or it is
 * done and freed. */
void cancel_done(struct session_env *env, struct session *c);

#endif
