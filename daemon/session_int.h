/*
 * struct session and its states: private to the session's own modules (session.c and
 * the files it was split into: buffers (sbuf.c), recording (sessrec.c), cancel,
 * upstream login (upstream.c), the relay (relay.c) and its client and server sides
 * (client_side.c, server_side.c)). Nothing else includes this header; other code
 * asks session.h's functions instead (session_status() for `pgtether status`).
 */
#ifndef PGTETHER_SESSION_INT_H
#define PGTETHER_SESSION_INT_H

#include "fault.h"
#include "log.h"
#include "maskednames.h"
#include "session.h"
#include "startopts.h"
#include "taint.h"

enum session_state {
	SESSION_STARTUP,            /* reading the client's startup packet */
	SESSION_CLIENT_TLS,         /* TLS handshake with the client */
	SESSION_ATTESTING,          /* the executable is being hashed (attest_fs) */
	SESSION_CLIENT_AUTH,        /* asked the client for its identity token (password) */
	SESSION_CONNECTING,         /* TCP connect to the upstream */
	SESSION_UPSTREAM_SSLREQ,    /* SSLRequest sent upstream, awaiting 'S' or 'N' */
	SESSION_UPSTREAM_TLS,       /* TLS handshake with the upstream */
	SESSION_LOGIN,              /* logging in upstream with the held credential */
	SESSION_RELAYING,
	SESSION_REFUSING,           /* sending an ErrorResponse, then closing */
	SESSION_CANCELLING,         /* forwarding a CancelRequest upstream */
};

struct session {
	uint64_t id;
	struct session_env *env;         /* whose memory budget its buffers grow under */
	struct sbuf_account acct;        /* what its grown buffers hold of env->mem */
	bool capped;                     /* refused for a login cap: in env->capped */
	enum session_state state;
	struct session_end client, upstream;
	struct session_buf c2u, u2c;     /* to the upstream, to the client */
	struct session_buf in;           /* startup packet, then upstream login messages */
	struct pgt_origin origin;
	struct attest_facts facts;
	struct addr peer, dst, up_local;
	uint64_t bytes_c2u, bytes_u2c;
	struct timespec started;         /* CLOCK_MONOTONIC */
	time_t started_wall;

	/* identity: the policy rule that allowed the session and the token it verified */
	char rule[128];
	json_t *claims;                  /* the verified token's claims, for re-decisions */
	unsigned rule_gen;               /* env->gen when rule_idx was looked up */
	size_t rule_idx;
	const char *token_source;        /* "none", "password" or "file" */
	char *token_path;                /* "file": the file it was read from (the parent's) */
	char token_iss[256];             /* verified "iss", or empty */
	char token_sub[256];             /* its "sub" claim, or empty */
	char client_app[CONFIG_NAME_MAX + 1];
	char fwd_params[STARTOPTS_FWD_BYTES]; /* startup parameters passed on: name\0value\0... */
	size_t fwd_len;

	/* login */
	char upstream_name[CONFIG_NAME_MAX + 1];
	char role[CONFIG_NAME_MAX + 1];
	char database[CONFIG_NAME_MAX + 1];
	char client_user[CONFIG_NAME_MAX + 1];
	struct scram_client scram;
	bool authenticated;
	uint32_t key_pid, key_secret;    /* what the client got */
	uint32_t up_pid, up_secret;      /* the real backend's key */
	bool have_up_key;
	bool up_verified;                /* upstream TLS with verify-full */
	/* the settings statements are read with, as the server reports them in
	 * ParameterStatus (sqlclass reads a backslash both ways whatever they say) */
	char scs[8];                     /* standard_conforming_strings */
	char client_encoding[32];
	/* the upstream's own addresses (config_upstream_addrs), tried in turn; the
	 * destination the workload dialed (dst) only chose the upstream */
	struct addr up_addrs[CONFIG_MAX_RESOLVED];
	size_t n_up_addrs, up_try;       /* how many; the one connected or being tried */
	time_t up_try_since;             /* CLOCK_MONOTONIC s that attempt began */

	/* relay */
	struct pgwire_scan cscan, sscan;
	size_t c_scan, s_scan;           /* scan positions in c2u and u2c */
	uint32_t c_drop;                 /* body bytes of a dropped client message to skip */
	bool want_status;                /* the next server byte is a ReadyForQuery status */
	uint8_t tx_status;               /* of the last ReadyForQuery: 'I', 'T' or 'E' */
	uint8_t last_server_type;
	bool u2c_torn;                   /* a fault stopped u2c inside a message: no error can follow */
	bool c_unsynced;                 /* extended-query messages sent since the last Sync */
	bool c_exec_open;                /* an Execute sent since the server last ended a statement */
	bool c_terminated;               /* the client sent Terminate ('X') upstream */
	unsigned refusals_owed;          /* 'F' entries in pending */
	unsigned negotiations;           /* SSLRequest/GSSENCRequest seen */
	uint8_t pending[SESSION_MAX_PENDING]; /* ring: 'S' server answer due, 'F' refusal */
	size_t pending_head, pending_count;

	bool client_direct_tls;          /* TLS from the first byte (sslnegotiation=direct) */

	/* statements denied by policy: sent upstream as a statement that fails to parse
	 * (so the server keeps its own transaction and pipeline state), whose error is
	 * replaced by the denial on the way back */
	struct { char sqlstate[6]; char msg[400]; } denials[SESSION_MAX_DENIALS];
	uint32_t denial_seq;
	unsigned sentinels_out;
	bool batch_denied;               /* a Parse of this extended-query batch was denied */

	/* a statement held for approval: c2u stops at it (c_scan) until a decision */
	uint64_t held_id;                /* request number, 0: nothing held */
	time_t held_since;
	unsigned held_timeout;           /* seconds */
	int held_decision;               /* 0 waiting, 1 approved, -1 denied */
	char held_why[300];
	char held_msg[400];              /* the denial, when denied */
	char *held_sql;                  /* what is held, whole, for pgtether approvals */
	size_t held_len;
	json_t *held_extra;              /* more for approvers: a Bind's parameters, what an EXECUTE runs */
	struct prepared_model stmts;     /* the session's prepared statements: approvals per execution */
	uint8_t notice[600];             /* a NoticeResponse owed to the client */
	size_t notice_len;

	/* masking: rows are rewritten by the description of the result they belong to */
	struct maskset masks;            /* the rule's masks, resolved in this database */
	unsigned mask_epoch;             /* env->mask_epoch the resolution is of */
	unsigned lookup_epoch;           /* ... and of the lookup out now */
	time_t refresh_due_since;        /* CLOCK_MONOTONIC s a due lookup first had to wait, or 0 */
	bool lookup_active;              /* our catalog query is out: its answer is ours */
	bool lookup_login;               /* its ReadyForQuery is the client's first */
	bool ddl_done;                   /* the server completed DDL: others re-resolve at idle */
	/* unqualified table names under table rules: asked of the server before each
	 * Query or Parse that has them (searchpath.h) */
	struct searchpath_state path;    /* the answer, for the message at c_scan */
	bool path_lookup;                /* the catalog query out is searchpath's */
	bool path_fresh;                 /* path answers for the next Query or Parse */
	bool path_parse;                 /* the statement checked now is a Parse's */
	bool path_waiting;               /* the message at c_scan waits for earlier answers */
	bool path_prepared;              /* SEARCHPATH_STATEMENT is prepared in the server */
	char *path_sql;                  /* the text path_sc scanned (a copy), or NULL */
	size_t path_sql_len;
	int path_sc_rc;                  /* what searchpath_scan returned for it */
	struct searchpath_scan path_sc;
	struct rowmask rows;             /* the last RowDescription's masks, rewritten rows */
	bool u2c_kept;                   /* u2c grew for rows that masks made longer */
	bool u2c_rescan;                 /* rows wait for room: scan again once u2c drained */
	bool rescanning;
	unsigned mask_gen;               /* env->gen the resolved masks' indexes are of */
	struct session_answer { uint32_t batch; uint8_t kind; } *describes; /* answers awaited (a ring) */
	size_t desc_head, desc_count, desc_cap;
	uint32_t c_batch, s_batch;       /* Queries and Syncs sent; ReadyForQuery received */
	/* masking: batches with a statement that touches a masked table or may run code
	 * pgtether cannot follow; their errors and notices reach the client in
	 * pgtether's words (the recording keeps the server's) */
	struct taint taint;
	uint64_t rows_masked;

	struct record_writer *rec;       /* the session's recording, when recorded */
	struct timespec stmt_t0;         /* when the last statement was recorded (durations) */
	unsigned stmt_classes;           /* of the last statement checked (0: not parsed) */
	unsigned rows_to_record;         /* result rows the recording still takes ("results") */
	size_t row_bytes_left;
	struct maskednames maskednames;  /* prepared statements naming masked tables */
	const char *close_reason;
	uint8_t *base;                   /* the buffers' allocation (c2u may move out of it) */

	/* cancel */
	uint32_t cancel_pid, cancel_secret;
	uint64_t cancel_of;              /* the id of the session it cancels, for logs */
	struct session *cancel_for;      /* a cancel: the session it cancels */
	struct session *cancel;          /* a session: the cancel of it under way */
	struct session *cancel_next;     /* ... and one for its next query, waiting for that */
	bool cancel_held;                /* its client's next statement waits for the cancel */
	bool cancel_waiting;             /* waits for the bytes before it to go upstream */
	bool cancel_inflight;            /* forwarded, and the server has not closed yet */
	bool cancel_sent;                /* the CancelRequest went upstream: await its close */
	bool cancel_busy;                /* its session had a query outstanding when sent */
	bool cancel_answered;            /* its client was answered: the tries now are pgtether's */
	bool cancel_unsynced;            /* sent amid extended messages no Sync has followed */
	uint32_t cancel_rfq;             /* that session's rfq_count then */
	uint32_t cancel_ends;            /* ... and its ends_count */
	unsigned cancel_tries;
	struct timespec cancel_went;     /* CLOCK_MONOTONIC of its first try */
	bool cancel_timer;               /* upstream.fd is the timerfd of the next try */
	uint32_t rfq_count;              /* ReadyForQuery messages the server sent */
	uint32_t ends_count;             /* ... and CommandComplete, ErrorResponse, EmptyQueryResponse,
					  * PortalSuspended: a statement's end */

	char refuse_sqlstate[6];
	char refuse_msg[512];
	const char *closed_by;           /* which side closed first */
	bool dead;                       /* closed, waiting for session_reap() */
	bool handed_off;                 /* the parent took the connection (a cancel): no "ended" */
	bool draining;                   /* upstream gone; u2c still going to the client */
	bool read_write_seen;            /* the server reported it read-write after all */
	bool param_malformed;            /* a ParameterStatus not name\0value\0 exactly */
	bool role_hint;                  /* the client named a user other than the role: said in 42501 errors */
	bool read_only;                  /* logged in with default_transaction_read_only=on
					  * (policy_read_only of its rule at login) */
	time_t drain_started;
	struct session *prev, *next;
};

/* at most SESSION_MAX_PENDING batches are outstanding, and one open (taint.h) */
_Static_assert(TAINT_BATCHES >= 2 * SESSION_MAX_PENDING, "withheld batches would wrap onto live ones");

/* ---- shared by the session's modules (session.c) ---- */

/* Milliseconds since accept (CLOCK_MONOTONIC). */
double session_ms_since(const struct timespec *then); /* CLOCK_MONOTONIC */
double session_elapsed_ms(const struct session *s);

/* The session's policy rule in the running configuration, or NULL (reloaded away). */
const struct policy_rule *session_rule(struct session_env *env, struct session *s);

/* Whether prepared statement name is known to name no masked table. */
bool session_prepared_clean(const struct session *s, const char *name);

/* The parameters of a whole Bind body as JSON ("****" each when masked), the indexes
 * of values escaped for not being UTF-8 in *ret_escaped, its statement name in
 * *ret_stmt. NULL when the body is malformed or out of memory. */
/* Closes both sockets and takes the session off the live list; its memory waits on
 * the dead list until session_reap() (the other end may still have an event in the
 * epoll batch being handled). */
void session_free(struct session_env *env, struct session *s);

/* Moves what is readable and writable between the ends of a relaying session
 * (relay.c). */
void session_relay_event(struct session_env *env, struct session *s, struct session_end *end, uint32_t events);

/* Refuses the session's login by fault f (fault.h: a FAULT_END_REFUSE one, or
 * FAULT_OUT_OF_MEMORY, FAULT_CLIENT_ENCODING, FAULT_READ_WRITE): the FATAL
 * ErrorResponse of its row, logged as conn.refused, the row's reason recorded. ff:
 * the facts of this refusal (detail, setting, address, limits), or NULL; the
 * session's own (upstream, role, rule) are added (refuse.c). */
void session_refuse(struct session_env *env, struct session *s, enum fault_code f, const struct fault_facts *ff);

/* Adds the session's identity (origin, kernel facts, rule, token) to a log line. */
void session_log_identity(struct logline *l, const struct session *s);

/* The session's rule when rows are looked at (it masks, or records results), else NULL. */
const struct policy_rule *session_masking_rule(struct session_env *env, struct session *s);

/* A ParameterStatus body from the server: false when the setting it reports is one
 * statements cannot be read under (session_param_fault says why). */
bool session_param_status(struct session_env *env, struct session *s, const uint8_t *body, size_t blen);
enum fault_code session_param_fault(const struct session *s);

/* Logged in upstream: the relay starts (after a lookup of the masks, if any). */
void session_start_relay(struct session_env *env, struct session *s);

json_t *session_bind_params(const uint8_t *body, size_t blen, bool masked, json_t **ret_escaped, const char **ret_stmt,
			    size_t *ret_stmt_len);

/* Ends the relaying session s by fault f (fault.h; detail: the fault's own words, or
 * NULL): the client is told at once, or at the next server message boundary after
 * what the server said before (the session drains), or nothing; then it closes with
 * the fault's reason. The one way a relaying session ends for a fault. */
void session_fault(struct session_env *env, struct session *s, enum fault_code f, const char *detail);

/* The words of fault f for session s, with its facts (rule, settings, limits). */
void session_fault_text(const struct session *s, enum fault_code f, const char *detail, struct fault_text *ret);

/* A session's buffer grows under the daemon-wide memory_budget (sbuf.h). */
static inline int session_buf_reserve(struct session *s, struct session_buf *b, size_t want)
{
	return sbuf_reserve(b, &s->acct, s->env->cfg->memory_budget, want);
}

/* Room for the message b[start..start+mlen) to be held whole (sbuf_hold_room). */
static inline int session_hold_room(struct session *s, struct session_buf *b, size_t start, size_t mlen, size_t reserve)
{
	return sbuf_hold_room(b, &s->acct, s->env->cfg->memory_budget, start, mlen, reserve);
}

/* Approvals go through the parent: a request number unique across workers, and what
 * `pgtether approvals` shows of the held statement (session.c). */
uint64_t session_request_id(struct session_env *env, struct session *s);
void session_held_announce(struct session_env *env, struct session *s);

/* A session for the connection cfd, on env's live list, its buffers allocated, in
 * SESSION_STARTUP; NULL when out of memory (session_adopt; tests/fuzz/session_fixture.c). */
struct session *session_new(struct session_env *env, int cfd);

/* The live session the parent calls id, or NULL. */
struct session *session_find(struct session_env *env, uint64_t id);

/* Startup parameters passed on, at most: connect_upstream adds its own after them. */
#define SESSION_FWD_MAX STARTOPTS_FWD_MAX

/* The first bytes of a connection (startup.c), by the session's state: STARTUP,
 * CLIENT_TLS, CLIENT_AUTH. */
void startup_step(struct session_env *env, struct session *s);
void startup_tls_step(struct session_env *env, struct session *s);
void startup_token_step(struct session_env *env, struct session *s);

/* refuse.c: a refusal's next bytes (true: done, close), a connection turned away at
 * once (fd taken), a refusal for a login cap (the session freed or refusing). */
bool session_refuse_step(struct session *s);
/* Queues a FATAL or ERROR for the client behind what may go out already. */
void session_queue_error(struct session *s, const char *severity, const char *sqlstate, const char *msg);
/* Ends a session without a fault to tell the client (an end closed or failed: reason
 * says which, for the log and the recording); logged when it was relaying (session.c). */
void session_close(struct session_env *env, struct session *s, const char *reason);
void session_turn_away(struct session_env *env, int fd, const char *sqlstate, const char *msg);
void session_refuse_capped(struct session_env *env, struct session *s, enum fault_code f, const struct fault_facts *ff);

#endif
