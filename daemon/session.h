/*
 * One redirected connection, from accept() to close. Reading session.c top to bottom
 * tells its story: look up the origin the kernel recorded, confirm the peer socket
 * with sock_diag, read the kernel facts of the process, read the client's startup
 * packet, choose the upstream by the destination the workload dialed, log in there
 * with the credential pgtetherd holds (the workload's own password is never asked
 * for, never sent), then relay messages both ways.
 *
 * The client side sees a PostgreSQL server: SSLRequest and GSSENCRequest get 'N',
 * the StartupMessage gets AuthenticationOk, the server's ParameterStatus messages,
 * pgtetherd's own BackendKeyData (a CancelRequest with it is forwarded upstream with
 * the real key) and ReadyForQuery. A connection that cannot go on is refused the way
 * PostgreSQL refuses one: an ErrorResponse with a SQLSTATE and a message a developer
 * can act on.
 *
 * Sessions live on one epoll loop. Each owns three fixed buffers allocated at accept;
 * nothing is allocated per message.
 */
#ifndef PGTETHER_SESSION_H
#define PGTETHER_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "addr.h"
#include "attest.h"
#include "config.h"
#include "intercept.h"
#include "maskset.h"
#include "pgwire.h"
#include "prepared.h"
#include "quota.h"
#include "record.h"
#include "rowmask.h"
#include "sbuf.h"
#include "sqlclass.h"
#include "scram.h"
#include "searchpath.h"
#include "tls.h"

#define SESSION_BUF SBUF_SIZE       /* each of a session's fixed buffers (sbuf.h) */
#define SESSION_INJECT_RESERVE 1024    /* room kept in u2c for messages pgtether adds */
#define SESSION_REFUSE_TIMEOUT_S 10
#define SESSION_MAX_PENDING 4096       /* client sync points awaiting a ReadyForQuery */
#define SESSION_TOKEN_MAX (SESSION_BUF - 8) /* identity tokens; issuers set lower caps */
#define SESSION_MAX_DENIALS 8          /* denied statements awaiting their answer */
#define SESSION_MAX_SHOWN (1u << 20)   /* longest statement held for approval: all of it is
					* shown to the approver (escaped, it fits a control reply) */
#define SESSION_MAX_MASKED_ROW ROWMASK_MAX_ROW /* a DataRow rewritten by masks is held whole */
#define SESSION_MAX_DESCRIBES 65536    /* Queries and Describes awaiting answers while masking */
/* An origin record not taken by accept this long after connect() belongs to a client
 * socket whose handshake the listener's full queue dropped: connect() itself may
 * retry its SYN for about two minutes (tcp_syn_retries 6), so well past that. */
#define SESSION_ORIGIN_STALE_S 300
/* ... and one whose client socket closed before its connection was accepted (marked
 * by the BPF close callback): a cancel sent and closed at once is accepted well
 * within this while pgtetherd runs; past it the client is long gone. */
#define SESSION_ORIGIN_CLOSED_S 30
/* Refusals for a login cap wait for the client's startup packet (to answer its
 * SSLRequest with 'N': libpq shows no error sent in answer to that) this many at
 * once, this long; more are answered at once and closed. */
#define SESSION_MAX_CAPPED 16
#define SESSION_CAPPED_TIMEOUT_S 2
#define SESSION_ORIGINS_CHECK_S 10
#define SESSION_CANCEL_WAIT_S 2        /* a cancel waits this long for the bytes before it to go */
#define SESSION_PARENT_SLACK_S 2       /* past login_timeout, for the parent's verdict on an attesting login */
#define SESSION_CANCEL_RETRY_MS 20     /* a cancel the backend did not act on goes again, */
#define SESSION_CANCEL_RETRY_MAX_MS 500 /* ... spaced twice as far each time up to this, */
#define SESSION_CANCEL_RETRY_FOR_MS 8000 /* ... this long after its first try, at most
					  * (below SESSION_REFUSE_TIMEOUT_S, which ends any cancel) */

struct sockdiag;

struct session;

struct session_env {
	struct config *cfg;              /* the worker's current snapshot */
	int epfd;
	bool worker;                     /* in a worker process (always, but for tests) */
	struct session *head;            /* live sessions */
	struct session *dead;            /* closed, freed by session_reap() */
	size_t n_live;
	unsigned gen;                    /* the parent's generation of cfg */
	struct sqlclass_cache *sqlcache; /* classifications by statement text (NULL: none) */
	char sentinel_tag[40];           /* "pgtether_denied_<random>_": marks denied statements */
	unsigned mask_epoch;             /* bumped by reloads, completed DDL and every
					  * SESSION_MASK_REFRESH_S: re-resolve masks */
	time_t mask_refreshed;
	struct quota_mem mem;            /* memory_budget (each worker's own) */
	unsigned capped;                 /* sessions refusing for a login cap now */
};

struct priv_new_conn;
struct priv_verdict;
struct priv_decide;

/* A connection the parent accepted (fd taken), with what it knows of it. */
void session_adopt(struct session_env *env, int fd, uint64_t id, const struct priv_new_conn *nc);

/* The parent wants the client's token: it is asked for (AuthenticationCleartextPassword). */
void session_need_token(struct session_env *env, uint64_t id);

/* The parent's decision on session id; recfd (taken, may be -1) is its recording. */
void session_verdict(struct session_env *env, uint64_t id, const struct priv_verdict *v, const char *claims,
		     size_t claims_len, int recfd);

/* A person decided session id's held statement (through the parent). */
void session_decided(struct session_env *env, uint64_t id, const struct priv_decide *d);

/* Handles epoll events for one end of a session (may close the session). */
void session_event(struct session_env *env, struct session_end *end, uint32_t events);

/* Once a second: the relaying sessions' counters and settings, to the parent. */
void session_stats(struct session_env *env);

/* Frees the sessions closed since the last call; call after each epoll batch. */
void session_reap(struct session_env *env);

/* Once a second: times out upstream logins and refusals, ends log episodes. */
void session_tick(struct session_env *env);

/* A person deciding a request through the control socket. */
struct session_approver {
	uint32_t uid;
	uint32_t loginuid;           /* UINT32_MAX: none */
	bool root;                   /* root decides any request */
};

/*
 * Decides request id: the held statement runs (approve) or fails with reason. by
 * names who decided for logs and the client; who is the person (NULL: the client's
 * cancel, or the timeout); the parent checked that they may (monitor_decide: nobody
 * but root approves a request of their own uid, or of the uid they logged in as).
 * 0, or -ENOENT with err.
 */
int session_decide(struct session_env *env, uint64_t id, bool approve, const char *reason, const char *by,
		   const struct session_approver *who, char *err, size_t errlen);

/* After a reload: sessions whose identity no rule allows any more (or allows as
 * another role or upstream) are ended with a FATAL error. */
void session_policy_reloaded(struct session_env *env);

/* Closes every session (daemon shutdown), logging each with the reason. */
void session_close_all(struct session_env *env, const char *reason);

#endif
