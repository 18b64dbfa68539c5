/*
 * The table of the ways a relaying session ends (fault.h): one entry per fault, the
 * messages next to it, so that what a client is told, what is logged and how the
 * session ends are read, and changed, in one place.
 */
#include "fault.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const struct {
	const char *sqlstate;
	const char *reason;          /* NULL: the fault's detail is the reason */
	enum fault_end end;
} fault_table[FAULT_N] = {
	[FAULT_CLIENT_PROTOCOL] = { "08P01", "client protocol violation", FAULT_END_NOW },
	[FAULT_CLIENT_STRING] = { "08P01", "client protocol violation", FAULT_END_NOW },
	[FAULT_CLIENT_EXECUTE] = { "08P01", "client protocol violation", FAULT_END_NOW },
	[FAULT_CLIENT_FUNCTION_CALL] = { "08P01", "client protocol violation", FAULT_END_NOW },
	[FAULT_PIPELINE_FULL] = { "54000", "client pipelined too many unanswered or denied queries", FAULT_END_NOW },
	[FAULT_STATEMENT_TOO_LONG] = { "54000", "statement too long to check", FAULT_END_NOW },
	[FAULT_OUT_OF_MEMORY] = { "53200", "out of memory", FAULT_END_NOW },
	[FAULT_MEMORY_BUDGET] = { "53200", "memory_budget exhausted", FAULT_END_NOW },
	[FAULT_MASKS_STALE] = { "55000", "masks could not be refreshed", FAULT_END_NOW },
	[FAULT_READ_WRITE] = { "0A000", "read-only session made read-write", FAULT_END_NOW },
	[FAULT_CLIENT_ENCODING] = { "0A000", "client_encoding not UTF8", FAULT_END_NOW },
	[FAULT_ROWS_UNDESCRIBED] = { "XX000", "row cannot be masked", FAULT_END_BOUNDARY },
	[FAULT_ROW_TOO_LARGE] = { "54000", "row cannot be masked", FAULT_END_BOUNDARY },
	[FAULT_UPSTREAM_LOST] = { "08006", NULL, FAULT_END_BOUNDARY },
	/* 57P01 (admin_shutdown) in a session the client has used: drivers reconnect */
	[FAULT_MASK_LOOKUP] = { "57P01", "mask lookup failed", FAULT_END_BOUNDARY },
	[FAULT_PATH_LOOKUP] = { "57P01", "search_path lookup failed", FAULT_END_BOUNDARY },
	[FAULT_ACCESS_WITHDRAWN] = { "57P01", "access withdrawn", FAULT_END_BOUNDARY },
	[FAULT_UPSTREAM_PROTOCOL] = { NULL, "upstream protocol violation", FAULT_END_SILENT },
};

/* The client's message for f. The formats are literals (-Wformat=2 checks them), so
 * they live in a switch rather than in the table. */
static void fault_message(enum fault_code f, const struct fault_facts *ff, char *out, size_t cap)
{
	const char *detail = ff->detail ? ff->detail : "unknown";
	const char *rule = ff->rule ? ff->rule : "";

	switch (f) {
	case FAULT_CLIENT_PROTOCOL:
		snprintf(out, cap, "pgtether: invalid message length from the client (below 4 or above max_message_bytes, %u)",
			 ff->max_message_bytes);
		break;
	case FAULT_CLIENT_STRING:
		/* PostgreSQL's words for it ("invalid string in message"), and which */
		snprintf(out, cap, "pgtether: invalid string in a Query or Parse message from the client "
			 "(its statement name or SQL text does not end in a NUL byte)");
		break;
	case FAULT_CLIENT_EXECUTE:
		snprintf(out, cap, "pgtether: invalid Execute message from the client "
			 "(its portal name does not end in a NUL byte followed by the row count, or is over 1024 bytes)");
		break;
	case FAULT_CLIENT_FUNCTION_CALL:
		snprintf(out, cap, "pgtether: FunctionCall inside an unfinished extended-query batch, or too many pipelined FunctionCalls");
		break;
	case FAULT_PIPELINE_FULL:
		snprintf(out, cap, "pgtether: too many pipelined queries or denied statements awaiting an answer");
		break;
	case FAULT_STATEMENT_TOO_LONG:
		snprintf(out, cap, "pgtether: a statement longer than max_statement_bytes cannot be checked, so it is denied");
		break;
	case FAULT_OUT_OF_MEMORY:
		snprintf(out, cap, "pgtether: out of memory");
		break;
	case FAULT_MEMORY_BUDGET:
		snprintf(out, cap, "pgtether: out of memory: this session needs more room than is left of memory_budget "
			 "(%zu bytes, shared by all sessions) for a long statement or a row held to be masked; try again later or with less",
			 ff->memory_budget);
		break;
	case FAULT_MASKS_STALE:
		snprintf(out, cap, "pgtether: this session's masks could not be looked up again for %u s: "
			 "it never waited for all its answers between statements; reconnect", 3 * ff->mask_refresh);
		break;
	case FAULT_READ_WRITE:
		snprintf(out, cap, "pgtether: rule '%s' is read-only, and the database now runs this session read-write "
			 "(server-side code turned default_transaction_read_only off), so the session ends", rule);
		break;
	case FAULT_CLIENT_ENCODING:
		snprintf(out, cap, "pgtether: the database now reads this session in client_encoding \"%s\"; "
			 "pgtether reads statements as UTF8 only, so the session ends",
			 ff->client_encoding ? ff->client_encoding : "");
		break;
	case FAULT_ROWS_UNDESCRIBED:
		snprintf(out, cap, "pgtether: rows came without a description, so they cannot be masked");
		break;
	case FAULT_ROW_TOO_LARGE:
		snprintf(out, cap, "pgtether: a row too large to mask (over 64 MiB)");
		break;
	case FAULT_UPSTREAM_LOST:
		snprintf(out, cap, "pgtether: the connection to the database was lost (%s)", detail);
		break;
	case FAULT_MASK_LOOKUP:
		snprintf(out, cap, "pgtether: rule '%s' masks columns, and they cannot be looked up in the catalog: %s", rule, detail);
		break;
	case FAULT_PATH_LOOKUP:
		snprintf(out, cap, "pgtether: rule '%s' has table rules, and this session's search_path cannot be asked for: %s",
			 rule, detail);
		break;
	case FAULT_ACCESS_WITHDRAWN:
		snprintf(out, cap, "%s", detail);
		break;
	default:
		out[0] = '\0';
		break;
	}
}

int fault_describe(enum fault_code f, const struct fault_facts *ff, struct fault_text *ret)
{
	if ((int)f <= FAULT_NONE || f >= FAULT_N)
		return -EINVAL;
	ret->end = fault_table[f].end;
	ret->sqlstate = fault_table[f].sqlstate;
	/* a lookup at login fails the client's first ReadyForQuery: nothing to
	 * reconnect to, an internal error */
	if ((f == FAULT_MASK_LOOKUP || f == FAULT_PATH_LOOKUP) && ff->at_login)
		ret->sqlstate = "XX000";
	ret->reason = fault_table[f].reason ? fault_table[f].reason : ff->detail ? ff->detail : "unknown";
	fault_message(f, ff, ret->msg, sizeof(ret->msg));
	return 0;
}
