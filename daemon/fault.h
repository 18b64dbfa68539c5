/*
 * The ways a session ends, in one table: for each fault the SQLSTATE and message the
 * client gets, the reason the log and the recording get, and how it ends (STYLE.md
 * "One way to end a thing"). The relay's modules return a fault_code instead of errno
 * values borrowed to mean something private, and session_fault() (relay.c) ends a
 * relaying session by it; a login is refused by one with session_refuse() (refuse.c).
 * The root parent's refusals are rows here too: it describes them (monitor.c,
 * monitor_login.c) and its verdict carries the code, the SQLSTATE and the message,
 * which the worker passes on (FAULT_LOGIN_VERDICT) logging the code's reason.
 * No caller writes a SQLSTATE or a message of its own: it names the fault and the
 * facts the message quotes.
 *
 * Pure: the facts a message quotes are passed in.
 */
#ifndef PGTETHER_FAULT_H
#define PGTETHER_FAULT_H

#include <stdbool.h>
#include <stddef.h>

enum fault_code {
	FAULT_NONE = 0,
	/* the client broke a rule of the relay: told at once */
	FAULT_CLIENT_PROTOCOL,      /* a message of invalid length */
	FAULT_CLIENT_MESSAGE_TYPE,  /* a type no client sends after login */
	FAULT_CLIENT_STRING,        /* a Query or Parse whose name or SQL has no NUL */
	FAULT_CLIENT_EXECUTE,       /* an Execute pgtether must read, malformed */
	FAULT_CLIENT_FUNCTION_CALL, /* FunctionCall inside a batch, or too many owed */
	FAULT_PIPELINE_FULL,        /* too many sync points or denials awaiting answers */
	FAULT_STATEMENT_TOO_LONG,   /* longer than max_statement_bytes: cannot be checked */
	FAULT_OUT_OF_MEMORY,
	FAULT_MEMORY_BUDGET,        /* memory_budget is used up (an out of memory) */
	FAULT_MASKS_STALE,          /* masks due to be looked up again for 3 × mask_refresh */
	FAULT_READ_WRITE,           /* a read-only rule's session was made read-write */
	FAULT_CLIENT_ENCODING,      /* the server reads the session in another encoding */
	/* the server's side: said at a message boundary, after what the server said */
	FAULT_ROWS_UNDESCRIBED,     /* DataRows without a RowDescription: cannot be masked */
	FAULT_ROW_TOO_LARGE,        /* a row too large to hold whole for masking */
	FAULT_UPSTREAM_LOST,        /* detail: why (also the reason) */
	FAULT_MASK_LOOKUP,          /* detail: why the masks cannot be looked up */
	FAULT_PATH_LOOKUP,          /* detail: why the search_path cannot be asked for */
	FAULT_ACCESS_WITHDRAWN,     /* detail: the message (a policy reload decided) */
	/* nothing can be said to the client */
	FAULT_UPSTREAM_PROTOCOL,    /* the server's stream is not PostgreSQL's */
	/* the root parent's own, written to the client's socket by it (monitor.c) */
	FAULT_NO_WORKER,            /* no worker is ready: written before a byte is read */
	FAULT_WORKER_ENDED,         /* the worker serving the session died */

	/* A login refused (FAULT_END_REFUSE); FAULT_OUT_OF_MEMORY, FAULT_CLIENT_ENCODING
	 * and FAULT_READ_WRITE refuse one too. The client's startup broke a rule: */
	FAULT_STARTUP_INVALID,        /* nothing a PostgreSQL client sends first */
	FAULT_STARTUP_PARAMS,         /* the StartupMessage's parameter list is malformed */
	FAULT_STARTUP_TOO_MANY_PARAMS, /* more than limit parameters */
	FAULT_STARTUP_SETTINGS_FULL,  /* more settings to pass on than limit, limit_bytes */
	FAULT_STARTUP_NO_USER,
	FAULT_STARTUP_EARLY_DATA,     /* bytes after an SSLRequest/GSSENCRequest, before the answer */
	FAULT_STARTUP_SSL_IN_TLS,
	FAULT_STARTUP_AUTH_EARLY_DATA, /* bytes after a message the client must wait after */
	FAULT_STARTUP_NOT_PASSWORD,   /* asked for the identity token, got another message */
	FAULT_STARTUP_TOKEN_TOO_LONG,
	FAULT_STARTUP_TOO_LARGE,      /* the startup packet for the upstream would not fit */
	/* the configuration or the policy refuses what the startup asks: */
	FAULT_LOGIN_ENCODING,         /* value: the client_encoding asked for */
	FAULT_LOGIN_SETTING,          /* setting: its name; detail: why it is not passed */
	FAULT_LOGIN_OPTIONS,          /* detail: what is wrong with "options" (startopts.h) */
	FAULT_LOGIN_REPLICATION,
	FAULT_LOGIN_NO_UPSTREAM,      /* address: the destination the workload dialed */
	FAULT_LOGIN_VERDICT,          /* the parent's refusal: sqlstate, detail and verdict (its code) are its verdict's */
	FAULT_LOGIN_CONFIG_CHANGED,   /* reloaded between the verdict and its arrival */
	FAULT_LOGIN_ATTEST_TIMEOUT,   /* the executable's hash took longer than login_timeout */
	/* the upstream's login failed (upstream: its name): */
	FAULT_UPSTREAM_UNREACHABLE,   /* address, detail: the error; tried: addresses before it */
	FAULT_UPSTREAM_CONNECT_TIMEOUT, /* address */
	FAULT_UPSTREAM_LOGIN_TIMEOUT, /* address */
	FAULT_UPSTREAM_TLS_SETUP,
	FAULT_UPSTREAM_SSLREQ_SEND,
	FAULT_UPSTREAM_SSLREQ_CLOSED,
	FAULT_UPSTREAM_SSL_EXTRA,     /* bytes after its 'S' or 'N' (CVE-2021-23222) */
	FAULT_UPSTREAM_NO_TLS,        /* answered 'N' to a tls setting that requires TLS */
	FAULT_UPSTREAM_TLS,           /* detail: the handshake's error */
	FAULT_UPSTREAM_STARTUP_SEND,
	FAULT_UPSTREAM_LOGIN_SEND,
	FAULT_UPSTREAM_LOGIN_CLOSED,
	FAULT_UPSTREAM_AUTH_MALFORMED,
	FAULT_UPSTREAM_AUTH_TWICE,
	FAULT_UPSTREAM_SCRAM_UNPROVEN, /* AuthenticationOk before the SCRAM final message */
	FAULT_UPSTREAM_SCRAM_CHALLENGE, /* iterations out of SCRAM_MIN/MAX_ITERATIONS, or malformed */
	FAULT_UPSTREAM_SCRAM_SIGNATURE, /* the server signature is not the one expected */
	FAULT_UPSTREAM_CLEARTEXT,     /* a cleartext password asked for without verify-full */
	FAULT_UPSTREAM_AUTH_METHOD,   /* auth_code: a method pgtether does not take */
	FAULT_UPSTREAM_AUTH_NOT_LISTED, /* detail: a method the upstream's auth_methods leaves out */
	FAULT_UPSTREAM_LOGIN_REFUSED, /* role, credentials_file; detail: the server's message */
	FAULT_UPSTREAM_LOGIN_MESSAGE, /* a message of invalid length during login */
	FAULT_UPSTREAM_KEYDATA,       /* a malformed BackendKeyData */
	FAULT_UPSTREAM_LOGIN_TOO_MUCH, /* more than the client's buffer takes during login */
	FAULT_UPSTREAM_READY_ORDER,   /* ReadyForQuery before authentication, or malformed */
	FAULT_UPSTREAM_LOGIN_UNEXPECTED, /* msg_type: a message not of a login */
	FAULT_UPSTREAM_LOGIN_OVERSIZED, /* a login message larger than the session's buffer */
	/* resources: */
	FAULT_LOGIN_RECORDING,        /* detail: why the recording cannot be written */
	FAULT_LOGIN_RANDOMNESS,       /* no random bytes for the cancel key */
	/* the root parent refuses (monitor.c, monitor_login.c; it may name
	 * FAULT_LOGIN_RECORDING too): its verdict carries the code, the SQLSTATE and the
	 * message it described, and the worker refuses with FAULT_LOGIN_VERDICT */
	FAULT_PARENT_ADDRESSES,       /* the connection's addresses cannot be read */
	FAULT_PARENT_NOT_REDIRECTED,  /* address: the peer, which connected to the listener itself */
	FAULT_PARENT_ORIGINS_FULL,    /* limit: the kernel's table of redirected connections */
	FAULT_PARENT_MAX_LOGINS,      /* limit: max_logins */
	FAULT_PARENT_CGROUP_LOGINS,   /* limit: max_logins_per_cgroup; cgroup: the attachment (NULL: none known) */
	FAULT_PARENT_UNCONFIRMED,     /* err: sock_diag's errno (0: the socket cookie differs) */
	FAULT_PARENT_NO_UPSTREAM,     /* address: the destination; path: the configuration file */
	FAULT_PARENT_ATTEST,          /* detail: why who opened the connection is not known */
	FAULT_PARENT_ATTEST_CHANGED,  /* detail: what changed since connect() (ATTEST_CHANGED) */
	FAULT_PARENT_PID_REUSED,      /* the process is gone, its pid another's */
	FAULT_PARENT_FS_BUSY,         /* the file-system threads' queue is full */
	FAULT_PARENT_HASH_BUSY,       /* the file-system threads' queue is full of hashes */
	FAULT_PARENT_EXE_NO_MEMORY,   /* detail: what there is no memory for (default: to
				       * check the executable's path) */
	FAULT_PARENT_TOKEN_FILE_TIMEOUT, /* timeout: login_timeout */
	FAULT_PARENT_EXE_PATH_TIMEOUT, /* timeout */
	FAULT_PARENT_HASH_TIMEOUT,    /* timeout */
	FAULT_PARENT_TOKEN_REFUSED,   /* token_source; detail: token_strerror() */
	FAULT_PARENT_DENY_RULE,       /* rule; path, line: where it is written */
	FAULT_PARENT_NO_RULE,         /* cgroup, uid, exe, exe_foreign, upstream, database; the token:
				       * token_iss, token_sub, or why there is none (path and err: a
				       * token file unread; token_empty) */
	FAULT_PARENT_NO_CREDENTIAL,   /* role, upstream */
	FAULT_N
};

enum fault_end {
	FAULT_END_NOW,       /* a FATAL ErrorResponse at once, then close */
	FAULT_END_BOUNDARY,  /* a FATAL at the next server message boundary; drain, close */
	FAULT_END_SILENT,    /* close; the client gets no message */
	FAULT_END_REFUSE,    /* a login refused: a FATAL after the client's StartupMessage
			      * (read first when it has not come yet), then close */
};

/* What a message may quote. A NULL string reads as "" ("unknown" for detail); a name,
 * value or path is quoted up to 256 bytes (fault.c), a detail until the message is
 * full; either is cut on a UTF-8 character boundary. */
struct fault_facts {
	const char *detail;          /* the fault's own words (see enum fault_code), or NULL */
	const char *rule;            /* the session's rule */
	const char *client_encoding; /* as the server reported it */
	unsigned max_message_bytes;
	unsigned mask_refresh;       /* seconds */
	size_t memory_budget;        /* bytes */
	bool at_login;               /* before the client's first ReadyForQuery */
	/* a login's */
	const char *upstream;        /* the upstream's name */
	const char *role;            /* the role it logs in as */
	const char *credentials_file;
	const char *address;         /* an address, as addr_format() writes it */
	const char *setting;         /* a startup setting's name */
	const char *value;           /* a startup setting's value */
	const char *sqlstate;        /* FAULT_LOGIN_VERDICT: the parent's (08004 unless well formed) */
	enum fault_code verdict;     /* FAULT_LOGIN_VERDICT: the parent's fault, whose reason is logged */
	unsigned limit;              /* a count the client went over */
	size_t limit_bytes;          /* ... and a size */
	unsigned tried;              /* addresses of the upstream tried before this one */
	unsigned auth_code;          /* an authentication request's code */
	unsigned char msg_type;      /* a message's type byte ('?' when not printable) */
	/* the parent's */
	const char *cgroup;          /* a cgroup's path */
	const char *exe;             /* the executable's path */
	bool exe_foreign;            /* ... as named in the workload's own mount namespace */
	unsigned uid;
	const char *database;
	const char *token_source;    /* "file", "password" */
	const char *token_iss;       /* a verified token's issuer (NULL or "": none) */
	const char *token_sub;
	bool token_empty;            /* the client sent an empty password for its token */
	const char *path;            /* a file's: the configuration, a rule's, a token file */
	unsigned line;               /* a rule's line in path */
	int err;                     /* an errno value */
	unsigned timeout;            /* seconds */
};

#define FAULT_MSG_MAX 600

struct fault_text {
	const char *sqlstate;        /* NULL for FAULT_END_SILENT */
	const char *reason;          /* for the log and the recording, never NULL */
	enum fault_end end;
	char msg[FAULT_MSG_MAX];     /* for the client ("" for FAULT_END_SILENT) */
};

/* Fills *ret for fault f under the facts ff. 0, or -EINVAL for FAULT_NONE or a code
 * out of range (*ret untouched). */
int fault_describe(enum fault_code f, const struct fault_facts *ff, struct fault_text *ret);

#endif
