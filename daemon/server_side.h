/*
 * The server's half of the relay (server_side.c): every message the server sends
 * after login passes server_side_scan (or, while pgtether's own catalog query is
 * out, server_side_lookup_scan) before any byte of it goes to the client. Private to
 * the session's modules (session_int.h).
 */
#ifndef PGTETHER_SERVER_SIDE_H
#define PGTETHER_SERVER_SIDE_H

#include "session_int.h"

/*
 * Follows message boundaries in u2c from s_scan on and decides what of it may go to
 * the client (u2c.ready): notes each ReadyForQuery's transaction status, puts due
 * refusals right after it, turns the errors of substituted statements into their
 * denials, masks rows and withholds text in masked sessions. FAULT_NONE, or the
 * fault (fault.h) the session ends with (session_fault).
 */
enum fault_code server_side_scan(struct session_env *env, struct session *s);

/*
 * While the catalog query is out: takes its rows and drops its messages, but passes
 * on what the server says of its own accord (notices, parameter changes,
 * notifications). 1 when the answer is complete, 0 when more is to come, -1 when the
 * session ended (a lookup that fails ends it).
 */
int server_side_lookup_scan(struct session_env *env, struct session *s);

/*
 * Before the session's last words: u2c is made to end at a message boundary, so that
 * what follows starts a message. A message still coming in whose first bytes are
 * only in u2c (a row relayed as it comes, a ReadyForQuery without its status byte) is
 * taken back. false when its first bytes went to the client already: then nothing
 * may follow (the client would read it as the rest of that message).
 */
bool server_side_cut(struct session *s);

/* Room kept free in u2c when reading from the upstream (half of it while rows are
 * masked, so that they can grow in place). */
size_t server_side_reserve(struct session_env *env, struct session *s);

#endif
