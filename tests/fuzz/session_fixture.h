/*
 * A relaying session of the real daemon code for the session harnesses (fuzz_client,
 * fuzz_server): a session_env with a policy parsed from text, one session set up as
 * upstream.c leaves it after login (session_start_relay: the masks looked up first),
 * its two ends socketpairs in the env's epoll set. The harness plays both peers: it
 * writes what the client or the server sends, runs the worker's loop (epoll_wait,
 * session_event) until nothing moves, and reads what pgtether sent each way, which
 * must be well-framed messages. Every input starts from a new session and ends with
 * it closed and reaped: nothing is left of it (memory, budget, fds).
 */
#ifndef PGTETHER_SESSION_FIXTURE_H
#define PGTETHER_SESSION_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The rules (fx_begin's flags & FX_RULE): */
enum {
	FX_RULE_TABLES,   /* classes, table rules (search_path lookups), approve ddl, masks, results recorded */
	FX_RULE_APPROVE,  /* read, approve write (Binds held too), a mask by column name */
	FX_RULE_READER,   /* read only (default_transaction_read_only) */
	FX_RULE_MASKS,    /* no statement rules: masks (column, name pattern, hash) alone */
};
#define FX_RULE      0x03u
#define FX_RECORDED  0x04u  /* recorded (into a memfd, verified at the end) */
#define FX_ROLE_HINT 0x08u  /* the client named another user than the role */
#define FX_DENY      0x10u  /* held statements: approved, denied, timed out in turn; this shifts the turn */
#define FX_CANNED    0x20u  /* a canned PostgreSQL answers everything sent upstream */
#define FX_LOOKUPS   0x40u  /* ... only pgtether's catalog queries (masks, search_path);
			     * neither: the harness is the server for those too */
#define FX_RELOAD    0x80u  /* (the harnesses') a reload halfway through the input */

/* Per process: the policy, the configuration, the epoll set, the log to /dev/null. */
void fx_init(void);

/* A new session under flags (above). */
void fx_begin(unsigned flags);

/* What the client sends, or the server: written to its socket, then the loop runs. */
void fx_client(const uint8_t *data, size_t len);
void fx_server(const uint8_t *data, size_t len);

/* The server closes its end (after what fx_server sent): when the relay was going
 * on and the client's stream ends at a message boundary, the last message the
 * client got is an ErrorResponse (the server's, or pgtether's FATAL). */
void fx_server_close(void);

/* A reload of the same policy (worker.c: a new generation): the session is decided
 * again and its masks resolved again before its next statement. */
void fx_reload(void);

/* Closes the session (if still open), reaps it and checks that nothing is left. */
void fx_end(void);

#endif
