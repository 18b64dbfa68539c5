/*
 * The ways a relaying session ends, in one table: for each fault the SQLSTATE and
 * message the client gets, the reason the log and the recording get, and how it ends
 * (STYLE.md "One way to end a thing"). The relay's modules return a fault_code
 * instead of errno values borrowed to mean something private; session_fault()
 * (session.c) ends the session by it.
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
	FAULT_N
};

enum fault_end {
	FAULT_END_NOW,       /* a FATAL ErrorResponse at once, then close */
	FAULT_END_BOUNDARY,  /* a FATAL at the next server message boundary; drain, close */
	FAULT_END_SILENT,    /* close; the client gets no message */
};

/* What a message may quote. */
struct fault_facts {
	const char *detail;          /* the fault's own words (see enum fault_code), or NULL */
	const char *rule;            /* the session's rule */
	const char *client_encoding; /* as the server reported it */
	unsigned max_message_bytes;
	unsigned mask_refresh;       /* seconds */
	size_t memory_budget;        /* bytes */
	bool at_login;               /* before the client's first ReadyForQuery */
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
