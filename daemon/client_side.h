/*
 * The client's half of the relay (client_side.c): every message the client sends
 * after login passes client_side_filter before any byte of it goes upstream. Private
 * to the session's modules (session_int.h).
 */
#ifndef PGTETHER_CLIENT_SIDE_H
#define PGTETHER_CLIENT_SIDE_H

#include "session_int.h"

/*
 * Follows message boundaries in c2u from c_scan on and decides what of it may go
 * upstream (c2u.ready): statements are checked, held, denied or preceded by a lookup;
 * FunctionCall messages are dropped with their refusal queued in order. Bytes of a
 * header not yet complete are held back, so a message can still be removed whole.
 * FAULT_NONE, or the fault (fault.h) the session ends with (session_fault).
 */
enum fault_code client_side_filter(struct session_env *env, struct session *s);

/* Whether the server can be asked now what the session's names resolve to: nothing
 * is outstanding, so its answer is the state the next statement runs in. */
bool client_side_can_ask(const struct session *s);

/*
 * Puts the catalog query for the rule's masks into c2u at pos (a message boundary
 * before which everything is answered): its answer is taken by
 * server_side_lookup_scan, not relayed. Returns the bytes added, 0 when the rule
 * needs no catalog (resolved at once), or -ENOMEM.
 */
long client_side_lookup_insert(struct session_env *env, struct session *s, const struct policy_rule *r, size_t pos);

/* Holds the statement sql[0..len) now at c_scan for approval (why: the rule's words;
 * extra: more for approvers, taken) and queues the notice that tells the client how
 * to get it approved. */
void client_side_hold(struct session_env *env, struct session *s, const char *sql, size_t len, const char *why,
		      json_t *extra);

#endif
