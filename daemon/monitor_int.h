/*
 * Private to the parent's modules: monitor.c (connections, workers, messages) and
 * monitor_login.c (attestation, the token, the decision, the proof).
 */
#ifndef PGTETHER_MONITOR_INT_H
#define PGTETHER_MONITOR_INT_H

#include <limits.h>

#include "control.h"
#include "monitor.h"

#define MON_MAX_SOCKETS 512        /* upstream sockets of one connection (cancel retries) */
#define MON_LOGIN_GRACE_S 5        /* after login_timeout: a worker's own timer has ended the login */
#define MON_WITHDRAW_GRACE_S 2     /* after a reload: a worker has ended what it withdrew */
#define MON_HELD_BYTES_MAX (CONTROL_MAX_REPLY / 2) /* all workers' held listings, their text and
					    * what parsing it takes (PRIV_JSON_VALUE_COST): room in
					    * an approvals answer for what the parent adds */
#define MON_HELD_OVERHEAD (2 * PATH_MAX + 1024) /* ... which is charged with each: cgroup, exe, ids */

/* A command to w; a failure kills w (its sessions end when it is reaped). */
int worker_send(struct mon_worker *w, uint32_t type, uint64_t conn, const void *body, size_t len, int fd);

/* The reply to w's call about conn. */
int reply(struct mon_worker *w, uint64_t conn, int result, const void *payload, size_t len, int fd);

void worker_kill(struct mon_worker *w, const char *why);

/* The worker a new connection goes to (ready ones, in turn), or NULL. */
struct mon_worker *pick_worker(struct monitor *m);

/* c no longer counts under max_logins (and max_logins_per_cgroup). */
void login_done(struct monitor *m, struct mon_conn *c);

/* monitor_held.c: c's held statement is no longer listed for approvers; HELD_INFO:
 * what approvers are shown of it (-EPROTO: a second one for the same request). */
void held_unlist(struct mon_conn *c);
int held_info(struct monitor *m, struct mon_conn *c, const uint8_t *body, size_t len);

/* Adds c (its id set) to m's connections. 0, or -ENOMEM (c is not added). */
int conn_link(struct monitor *m, struct mon_conn *c);

/* Forgets c, closing the parent's copy of its socket. */
void conn_end(struct monitor *m, struct mon_conn *c);

/* Aborts c's upstream connections (sockdiag_destroy), whatever its worker does, but
 * the one whose cookie is keep (0: none), which stays recorded. */
void conn_abort_upstream(struct monitor *m, struct mon_conn *c, uint64_t keep);

/* Ends c whatever its worker does: its client socket is shut and its upstream
 * connections aborted (sockdiag_destroy), then conn_end. */
void conn_sever(struct monitor *m, struct mon_conn *c);

/* IDENTIFY: reads the kernel facts, then hashes the executable or goes on to the
 * token and the decision (the verdict goes to c's worker). */
void login_attest(struct monitor *m, struct mon_conn *c);

/* c ends: its job on the file-system threads, if any, is forgotten. */
void login_fs_end(struct monitor *m, struct mon_conn *c);

/* c has been logging in for login_timeout (seconds since accept, age): when it waits
 * for the file-system threads (or another login's hash), it is refused saying for what. */
void login_overdue(struct monitor *m, struct mon_conn *c, time_t age);
/* Ends (conn_end) c when its worker has had it for age seconds, past login_timeout
 * and MON_LOGIN_GRACE_S, and it is still no relay; true when it did. */
bool login_abandon(struct monitor *m, struct mon_conn *c, time_t age);

/* A reload: the sessions past their verdict are decided again by the parent (their
 * rule follows a rename; one whose access is gone is marked withdrawn_at). */
void login_reloaded(struct monitor *m);

/* c was withdrawn by a reload `since` seconds ago: past MON_WITHDRAW_GRACE_S its
 * upstream connections are aborted, past SESSION_REFUSE_TIMEOUT_S +
 * MON_LOGIN_GRACE_S it is ended (conn_sever; true) if its worker has not. */
bool login_withdrawn_overdue(struct monitor *m, struct mon_conn *c, time_t since);

/* TOKEN: the client's token (NULL: it sent an empty one). */
void login_token(struct monitor *m, struct mon_conn *c, const char *token, size_t len);

/* Calls of a worker logging in c upstream: 0, the worker's fault (-EPROTO), or
 * what reply() returned. */
int login_scram(struct monitor *m, struct mon_conn *c, const struct priv_scram *q);
int login_md5(struct monitor *m, struct mon_conn *c, const uint8_t *salt, size_t len);
int login_cleartext(struct monitor *m, struct mon_conn *c);
int login_socket(struct monitor *m, struct mon_conn *c, const uint8_t *body, size_t len);
/* CANCEL_SEND: writes the CancelRequest (len bytes at pkt) on c's cancel socket.
 * A cancel's socket carries nothing else first: one its worker wrote to itself could
 * carry a login of the worker's choosing, with a proof asked for another session. */
int login_cancel_send(struct monitor *m, struct mon_conn *c, const uint8_t *pkt, size_t len);
/* c's copy of its cancel socket (if any) is closed. */
void login_cancel_close(struct mon_conn *c);

/* STARTUP: writes the StartupMessage on fd, c's connected socket to a plain upstream,
 * from the parent's facts; c's other sockets are aborted. */
int login_startup(struct monitor *m, struct mon_conn *c, const uint8_t *body, size_t len, int fd);

/* c ends: its SCRAM call (if one waits) is forgotten, and the proof job with it when
 * no other session waits for that job and it has not started. */
void login_scram_end(struct monitor *m, struct mon_conn *c);

/* Frees what is left of the proof jobs' records (the loop is stopping). */
void login_proofs_release(struct monitor *m);

#endif
