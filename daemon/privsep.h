/*
 * The messages between pgtetherd's privileged parent and its unprivileged workers
 * (DESIGN.md "Processes"; OpenSSH's monitor is the model). Each worker has two
 * SOCK_SEQPACKET socketpairs: on the command channel the parent sends (connections,
 * configuration, verdicts, decisions) and the worker reads in its event loop; on the
 * request channel the worker sends (identity questions, notices, and the few calls
 * it waits for: a socket, a login proof, a request number) and the parent answers
 * calls there, in order. Every message is one packet: a header and a fixed body of
 * its type (some end in a variable tail), at most one fd with it.
 *
 * The parent trusts nothing a worker says beyond the session it names: every
 * request is checked against that session's state (priv_allowed), a message out of
 * order ends the worker, and a string field must end inside its array.
 */
#ifndef PGTETHER_PRIVSEP_H
#define PGTETHER_PRIVSEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "attest.h"
#include "config.h"
#include "fault.h"
#include "intercept.h"
#include "scram.h"
#include "startopts.h"

#define PRIV_MAX_MSG (8u << 20)      /* a held statement of 1 MiB, escaped, fits */
#define PRIV_SOCKBUF (16 << 20)      /* SO_SNDBUFFORCE of both ends: one packet fits */
#define PRIV_FD_CMD 3                /* in the worker: the command channel */
#define PRIV_FD_REQ 4                /* ... and the request channel */
#define PRIV_CALL_TIMEOUT_MS 5000    /* a worker waits this long for a reply */
#define PRIV_MAX_WORKERS 64

enum priv_type {
	/* parent → worker, command channel */
	PRIV_CONFIG = 1,        /* fd: the configuration bundle (cfgsrc memfd) */
	PRIV_NEW_CONN,          /* fd: a client socket */
	PRIV_NEED_TOKEN,        /* the first rule wants the client's token (password message) */
	PRIV_VERDICT,           /* the identity decided; fd: the recording, if recorded */
	PRIV_DECIDE,            /* a person decided a held statement */
	PRIV_STOP,              /* end every session and exit */
	PRIV_REMASK,            /* DDL completed in another worker: masks are resolved again */

	/* worker → parent, request channel: notices */
	PRIV_IDENTIFY = 32,     /* the startup packet is read: who is this? */
	PRIV_TOKEN,             /* the client's token (answer to PRIV_NEED_TOKEN) */
	PRIV_LOGGED_IN,         /* the relay starts: the client's cancel key */
	PRIV_HELD_INFO,         /* what the approver is shown of the held statement */
	PRIV_HELD_DONE,         /* the held statement was decided, timed out or ended */
	PRIV_STATS,             /* byte counts and settings of relaying sessions */
	PRIV_CANCEL,            /* fd: a client socket that sent a CancelRequest */
	PRIV_ENDED,             /* the session is closed */
	PRIV_READY,             /* the worker loaded its configuration */
	PRIV_DDL,               /* a session completed DDL (the other workers re-resolve masks) */

	/* worker → parent, request channel: calls (answered with PRIV_REPLY) */
	PRIV_SOCKET = 64,       /* an upstream socket (SO_MARK'd), connecting to a struct addr */
	PRIV_SCRAM,             /* the SCRAM client-final message and server signature */
	PRIV_MD5,               /* the md5 response */
	PRIV_CLEARTEXT,         /* the password itself (cleartext over verified TLS) */
	PRIV_HELD,              /* a statement waits for approval: its request number */
	PRIV_STARTUP,           /* fd: the connected upstream socket (plain): the parent logs in on it */
	PRIV_CANCEL_SEND,       /* the CancelRequest, for the parent to write on the cancel's socket */

	PRIV_REPLY = 96,
};

struct priv_hdr {
	uint32_t type;
	uint32_t len;           /* of the body that follows */
	uint64_t conn;          /* the session (connection id), 0: none */
};

struct priv_new_conn {
	struct pgt_origin origin;
	bool have_origin;
	bool cancel;            /* a CancelRequest for a session of this worker */
	bool capped;            /* refused for a login cap */
	uint8_t cancel_pkt[16];
	struct addr peer, dst;
	char upstream[CONFIG_NAME_MAX + 1];
	char refuse_sqlstate[6]; /* "": not refused */
	char refuse_msg[FAULT_MSG_MAX];
	uint32_t refuse_fault;  /* the parent's fault (fault.h), for the worker's log */
};

struct priv_identify {
	char user[CONFIG_NAME_MAX + 1];
	char database[CONFIG_NAME_MAX + 1];
	bool client_tls;
};


/* followed by claims_len bytes of JSON (the verified claims) */
struct priv_verdict {
	bool ok;
	bool recorded;          /* the fd is the recording file */
	bool ready_facts;       /* facts were read (refusals before attestation: not) */
	char sqlstate[6];
	char msg[FAULT_MSG_MAX];  /* what fault_describe() said for fault */
	uint32_t fault;          /* a refusal's (fault.h), for the worker's log */
	char rule[128];
	uint32_t rule_idx, gen;
	char role[CONFIG_NAME_MAX + 1];
	char token_source[16];
	char token_path[PATH_MAX];   /* "file": the file it was read from */
	char token_iss[256], token_sub[256];
	struct attest_facts facts;
	uint32_t n_addrs;
	struct addr addrs[CONFIG_MAX_RESOLVED];
	char rec_id[64];
	char rec_path[PATH_MAX];
	uint32_t claims_len;
};

struct priv_decide {
	uint64_t request;
	bool approve;
	bool have_who;
	bool who_root;
	uint32_t who_uid, who_loginuid;
	char by[128];
	char reason[512];
};

struct priv_logged_in {
	uint32_t key_pid, key_secret;
	uint32_t up_idx;        /* which of the verdict's addresses it is connected to */
};

struct priv_stat {
	uint64_t conn;
	uint64_t bytes_in, bytes_out;
	char client_encoding[32];
	char scs[8];
};
#define PRIV_STATS_MAX 1024          /* per packet */

struct priv_cancel {
	uint8_t pkt[16];
};

/* What the parent needs of the client's startup to write the server's (startopts.h);
 * the database, role and identity are its own. */
struct priv_startup {
	char client_app[CONFIG_NAME_MAX + 1];
	uint32_t fwd_len;
	char fwd_params[STARTOPTS_FWD_BYTES];
};

struct priv_scram {
	char client_first_bare[SCRAM_MAX_MESSAGE];
	char server_first[SCRAM_MAX_MESSAGE];
};

struct priv_scram_reply {
	char client_final[SCRAM_MAX_MESSAGE];
	uint8_t server_signature[SCRAM_KEY_LEN];
};

/* followed by the approval's JSON object (what `pgtether approvals` shows) */
struct priv_held {
	uint32_t timeout_s;
	uint32_t json_len;
};

struct priv_reply {
	int32_t result;         /* 0 or -errno */
	uint32_t len;           /* of the payload after it */
};

/*
 * Sends one packet (header, body of len bytes, fd if >= 0). Blocking or not as the
 * socket is. 0 or -errno (-EAGAIN: the peer's queue is full).
 */
int priv_send(int sock, uint32_t type, uint64_t conn, const void *body, size_t len, int fd);

/*
 * Receives one packet into buf (cap bytes, at least sizeof(struct priv_hdr)): the
 * header is at buf, the body after it. *ret_fd is the fd that came with it, or -1.
 * Returns the body length, 0 for a packet with no body, -EAGAIN, -EPIPE at end of
 * stream, -EPROTO for a packet that is truncated, malformed or carries more than
 * one fd (they are closed), -EMFILE for a whole packet whose fd could not be
 * received (the header is in buf: the caller can say which one it lost).
 */
long priv_recv(int sock, uint8_t *buf, size_t cap, int *ret_fd);

/* True when the NUL-terminated string field s (cap bytes) ends inside it. */
bool priv_str_ok(const char *s, size_t cap);
#define PRIV_STR_OK(f) priv_str_ok((f), sizeof(f))

/*
 * True when the JSON text s (len bytes) nests at most max_depth arrays and objects
 * and has at most max_values of them and separators (',' and ':') outside strings:
 * a bound on what parsing it allocates, checked before a byte is parsed (2 bytes of
 * "[]," are some 100 bytes of jansson values). Not a validation: the parser still
 * rejects what is not JSON.
 */
bool priv_json_bounded(const char *s, size_t len, unsigned max_depth, size_t max_values);
/* The same count: how many arrays, objects and separators, or -1 past a bound. What
 * parsing costs follows it: jansson takes up to ~120 bytes per one counted (an empty
 * object, 3 bytes of text and 2 counted, is ~230), besides the strings' own bytes. */
long priv_json_count(const char *s, size_t len, unsigned max_depth, size_t max_values);
#define PRIV_JSON_VALUE_COST 128
#define PRIV_HELD_MAX_DEPTH 4        /* the approval object, its lists, their objects */
#define PRIV_HELD_MAX_VALUES (4u * 65536u) /* a Bind's 65535 parameters, escaped flags */

/* The name of a message type, for logs. */
const char *priv_type_name(uint32_t type);

#endif
