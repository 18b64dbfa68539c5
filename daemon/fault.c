/*
 * The table of the ways a session ends (fault.h): one entry per fault, the messages
 * next to it, so that what a client is told, what is logged and how the session ends
 * (or its login is refused) are read, and changed, in one place.
 */
#include "fault.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "scram.h"

/* A quoted fact (a name, a value the client sent) is cut to this many bytes, on a
 * UTF-8 character boundary, so the advice after it still fits in the message. */
#define FAULT_FACT_MAX 256

static const struct {
	const char *sqlstate;
	const char *reason;          /* NULL: the fault's detail is the reason */
	enum fault_end end;
} fault_table[FAULT_N] = {
	[FAULT_CLIENT_PROTOCOL] = { "08P01", "client protocol violation", FAULT_END_NOW },
	[FAULT_CLIENT_MESSAGE_TYPE] = { "08P01", "client protocol violation", FAULT_END_NOW },
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
	/* the parent's: 57P03 (cannot_connect_now), as a server still starting */
	[FAULT_NO_WORKER] = { "57P03", "no worker ready", FAULT_END_NOW },
	[FAULT_WORKER_ENDED] = { "57P01", "worker process ended", FAULT_END_NOW },

	/* logins: the client's startup broke a rule */
	[FAULT_STARTUP_INVALID] = { "08P01", "invalid startup packet", FAULT_END_REFUSE },
	[FAULT_STARTUP_PARAMS] = { "08P01", "invalid startup packet", FAULT_END_REFUSE },
	[FAULT_STARTUP_TOO_MANY_PARAMS] = { "08P01", "too many startup parameters", FAULT_END_REFUSE },
	[FAULT_STARTUP_SETTINGS_FULL] = { "08P01", "startup settings too many or too long", FAULT_END_REFUSE },
	[FAULT_STARTUP_NO_USER] = { "28000", "no user name in the startup packet", FAULT_END_REFUSE },
	[FAULT_STARTUP_EARLY_DATA] = { "08P01", "data before the SSL/GSS answer", FAULT_END_REFUSE },
	[FAULT_STARTUP_SSL_IN_TLS] = { "08P01", "SSLRequest inside TLS", FAULT_END_REFUSE },
	[FAULT_STARTUP_AUTH_EARLY_DATA] = { "08P01", "data before authentication completed", FAULT_END_REFUSE },
	[FAULT_STARTUP_NOT_PASSWORD] = { "08P01", "no password message for the identity token", FAULT_END_REFUSE },
	[FAULT_STARTUP_TOKEN_TOO_LONG] = { "08P01", "identity token too long", FAULT_END_REFUSE },
	[FAULT_STARTUP_TOO_LARGE] = { "08P01", "upstream startup packet too large", FAULT_END_REFUSE },
	/* logins: the configuration or the policy refuses */
	[FAULT_LOGIN_ENCODING] = { "22023", "client_encoding not supported", FAULT_END_REFUSE },
	[FAULT_LOGIN_SETTING] = { "08004", "startup setting not passed", FAULT_END_REFUSE },
	[FAULT_LOGIN_OPTIONS] = { "08004", "startup options not passed", FAULT_END_REFUSE },
	[FAULT_LOGIN_REPLICATION] = { "08004", "replication connection", FAULT_END_REFUSE },
	[FAULT_LOGIN_NO_UPSTREAM] = { "08004", "no upstream for the destination", FAULT_END_REFUSE },
	/* the SQLSTATE is the verdict's (fault_describe) */
	[FAULT_LOGIN_VERDICT] = { NULL, "refused by the parent", FAULT_END_REFUSE },
	[FAULT_LOGIN_CONFIG_CHANGED] = { "08004", "configuration changed during login", FAULT_END_REFUSE },
	[FAULT_LOGIN_ATTEST_TIMEOUT] = { "08004", "executable hash timed out", FAULT_END_REFUSE },
	/* logins: the upstream's login failed */
	[FAULT_UPSTREAM_UNREACHABLE] = { "08001", "upstream unreachable", FAULT_END_REFUSE },
	[FAULT_UPSTREAM_CONNECT_TIMEOUT] = { "08001", "upstream connect timed out", FAULT_END_REFUSE },
	[FAULT_UPSTREAM_LOGIN_TIMEOUT] = { "08001", "upstream login timed out", FAULT_END_REFUSE },
	[FAULT_UPSTREAM_TLS_SETUP] = { "08001", "upstream TLS not set up", FAULT_END_REFUSE },
	[FAULT_UPSTREAM_SSLREQ_SEND] = { "08006", "upstream send failed", FAULT_END_REFUSE },
	[FAULT_UPSTREAM_SSLREQ_CLOSED] = { "08006", "upstream closed during login", FAULT_END_REFUSE },
	[FAULT_UPSTREAM_SSL_EXTRA] = { "08P01", "upstream protocol violation", FAULT_END_REFUSE },
	[FAULT_UPSTREAM_NO_TLS] = { "08001", "upstream does not accept TLS", FAULT_END_REFUSE },
	[FAULT_UPSTREAM_TLS] = { "08001", "upstream TLS failed", FAULT_END_REFUSE },
	[FAULT_UPSTREAM_STARTUP_SEND] = { "08006", "upstream send failed", FAULT_END_REFUSE },
	[FAULT_UPSTREAM_LOGIN_SEND] = { "08006", "upstream send failed", FAULT_END_REFUSE },
	[FAULT_UPSTREAM_LOGIN_CLOSED] = { "08006", "upstream closed during login", FAULT_END_REFUSE },
	[FAULT_UPSTREAM_AUTH_MALFORMED] = { "08P01", "upstream protocol violation", FAULT_END_REFUSE },
	[FAULT_UPSTREAM_AUTH_TWICE] = { "08P01", "upstream protocol violation", FAULT_END_REFUSE },
	[FAULT_UPSTREAM_SCRAM_UNPROVEN] = { "28000", "upstream did not prove the password", FAULT_END_REFUSE },
	[FAULT_UPSTREAM_SCRAM_CHALLENGE] = { "28000", "upstream SCRAM challenge refused", FAULT_END_REFUSE },
	[FAULT_UPSTREAM_SCRAM_SIGNATURE] = { "28000", "upstream did not prove the password", FAULT_END_REFUSE },
	[FAULT_UPSTREAM_CLEARTEXT] = { "28000", "upstream asks for a cleartext password", FAULT_END_REFUSE },
	[FAULT_UPSTREAM_AUTH_METHOD] = { "28000", "upstream authentication method not supported", FAULT_END_REFUSE },
	[FAULT_UPSTREAM_AUTH_NOT_LISTED] = { "28000", "upstream authentication method not in auth_methods", FAULT_END_REFUSE },
	[FAULT_UPSTREAM_LOGIN_REFUSED] = { "28000", "upstream refused the login", FAULT_END_REFUSE },
	[FAULT_UPSTREAM_LOGIN_MESSAGE] = { "08P01", "upstream protocol violation", FAULT_END_REFUSE },
	[FAULT_UPSTREAM_KEYDATA] = { "08P01", "upstream protocol violation", FAULT_END_REFUSE },
	[FAULT_UPSTREAM_LOGIN_TOO_MUCH] = { "08P01", "upstream sent too much during login", FAULT_END_REFUSE },
	[FAULT_UPSTREAM_READY_ORDER] = { "08P01", "upstream protocol violation", FAULT_END_REFUSE },
	[FAULT_UPSTREAM_LOGIN_UNEXPECTED] = { "08P01", "upstream protocol violation", FAULT_END_REFUSE },
	[FAULT_UPSTREAM_LOGIN_OVERSIZED] = { "08P01", "upstream sent too much during login", FAULT_END_REFUSE },
	/* logins: resources */
	[FAULT_LOGIN_RECORDING] = { "53100", "recording cannot be written", FAULT_END_REFUSE },
	[FAULT_LOGIN_RANDOMNESS] = { "53000", "no randomness", FAULT_END_REFUSE },
	/* logins: the parent refuses (53300, too_many_connections, for its caps) */
	[FAULT_PARENT_ADDRESSES] = { "08004", "connection addresses unreadable", FAULT_END_REFUSE },
	[FAULT_PARENT_NOT_REDIRECTED] = { "08004", "not redirected", FAULT_END_REFUSE },
	[FAULT_PARENT_ORIGINS_FULL] = { "53300", "origins map full", FAULT_END_REFUSE },
	[FAULT_PARENT_MAX_LOGINS] = { "53300", "max_logins reached", FAULT_END_REFUSE },
	[FAULT_PARENT_CGROUP_LOGINS] = { "53300", "max_logins_per_cgroup reached", FAULT_END_REFUSE },
	[FAULT_PARENT_UNCONFIRMED] = { "08004", "socket identity unconfirmed", FAULT_END_REFUSE },
	[FAULT_PARENT_NO_UPSTREAM] = { "08004", "no upstream for the destination", FAULT_END_REFUSE },
	[FAULT_PARENT_ATTEST] = { "08004", "identity not established", FAULT_END_REFUSE },
	[FAULT_PARENT_ATTEST_CHANGED] = { "28000", "process changed since connect", FAULT_END_REFUSE },
	[FAULT_PARENT_PID_REUSED] = { "08004", "process gone, pid reused", FAULT_END_REFUSE },
	[FAULT_PARENT_FS_BUSY] = { "53300", "file-system threads busy", FAULT_END_REFUSE },
	[FAULT_PARENT_HASH_BUSY] = { "53300", "file-system threads busy (hashing)", FAULT_END_REFUSE },
	[FAULT_PARENT_EXE_NO_MEMORY] = { "53200", "out of memory", FAULT_END_REFUSE },
	[FAULT_PARENT_TOKEN_FILE_TIMEOUT] = { "08004", "token file read timed out", FAULT_END_REFUSE },
	[FAULT_PARENT_EXE_PATH_TIMEOUT] = { "08004", "executable path check timed out", FAULT_END_REFUSE },
	[FAULT_PARENT_HASH_TIMEOUT] = { "08004", "executable hash timed out", FAULT_END_REFUSE },
	[FAULT_PARENT_TOKEN_REFUSED] = { "28000", "identity token refused", FAULT_END_REFUSE },
	[FAULT_PARENT_DENY_RULE] = { "28000", "denied by policy rule", FAULT_END_REFUSE },
	[FAULT_PARENT_NO_RULE] = { "28000", "no policy rule allows", FAULT_END_REFUSE },
	[FAULT_PARENT_NO_CREDENTIAL] = { "28000", "no credential for the role", FAULT_END_REFUSE },
};

/* The length of fact x to quote: at most FAULT_FACT_MAX bytes, not ending inside a
 * UTF-8 character. */
static int fact_len(const char *x)
{
	size_t n = x ? strnlen(x, FAULT_FACT_MAX + 1) : 0;

	if (n > FAULT_FACT_MAX) {
		n = FAULT_FACT_MAX;
		while (n > 0 && ((unsigned char)x[n] & 0xc0) == 0x80)
			n--;
	}
	return (int)n;
}

/* A fact for "%.*s": its length, then itself ("" for NULL). */
#define FACT(x) fact_len(x), ((x) ? (x) : "")

/* Why a token file could not be read (err: attest_read_token's errno). */
static const char *token_file_why(int err)
{
	switch (err) {
	case EFBIG: return "too large";
	case EACCES: return "the workload itself may not read it";
	case E2BIG: return "its process is in more groups than pgtether takes on to read it as the workload";
	default: return strerror(err);
	}
}

/* The root parent's words (monitor.c, monitor_login.c), "" for a code not its own. */
static void parent_message(enum fault_code f, const struct fault_facts *ff, char *out, size_t cap)
{
	const char *detail = ff->detail ? ff->detail : "unknown";
	char tok[600] = "";

	switch (f) {
	case FAULT_NO_WORKER:
		snprintf(out, cap, "pgtether: no worker process is ready to serve this connection; try again");
		break;
	case FAULT_WORKER_ENDED:
		snprintf(out, cap, "pgtether: the worker process serving this session ended unexpectedly; reconnect");
		break;
	case FAULT_PARENT_ADDRESSES:
		snprintf(out, cap, "pgtether: cannot read the addresses of this connection");
		break;
	case FAULT_PARENT_NOT_REDIRECTED:
		snprintf(out, cap, "pgtether: this connection was not redirected by pgtether (%.*s connected to the listener "
			 "directly); connect to the database's own address instead", FACT(ff->address));
		break;
	case FAULT_PARENT_ORIGINS_FULL:
		snprintf(out, cap, "pgtether: the kernel's table of redirected connections (%u entries) was full when this "
			 "connection was made, so who opened it is unknown; try again", ff->limit);
		break;
	case FAULT_PARENT_MAX_LOGINS:
		snprintf(out, cap, "pgtether: too many connections still logging in (max_logins %u); try again later", ff->limit);
		break;
	case FAULT_PARENT_CGROUP_LOGINS:
		if (ff->cgroup)
			snprintf(out, cap, "pgtether: too many connections still logging in from cgroup %.*s and the cgroups below it "
				 "(max_logins_per_cgroup %u); finish or close the others first", FACT(ff->cgroup), ff->limit);
		else
			snprintf(out, cap, "pgtether: too many connections of no known cgroup still logging in "
				 "(max_logins_per_cgroup %u); try again later", ff->limit);
		break;
	case FAULT_PARENT_UNCONFIRMED:
		snprintf(out, cap, "pgtether: cannot confirm the identity of this connection (%s); try again",
			 ff->err ? strerror(ff->err) : "socket cookie mismatch");
		break;
	case FAULT_PARENT_NO_UPSTREAM:
		snprintf(out, cap, "pgtether: no upstream is configured for %.*s; add it to \"upstreams\" (address or aliases) in %.*s",
			 FACT(ff->address), FACT(ff->path));
		break;
	case FAULT_PARENT_ATTEST:
	case FAULT_PARENT_ATTEST_CHANGED:
		snprintf(out, cap, "pgtether: cannot establish who opened this connection: %s", detail);
		break;
	case FAULT_PARENT_PID_REUSED:
		snprintf(out, cap, "pgtether: the process that opened this connection is gone and its pid now belongs to another process; try again");
		break;
	case FAULT_PARENT_FS_BUSY:
		snprintf(out, cap, "pgtether: too many token files and executable paths are being read right now; try again");
		break;
	case FAULT_PARENT_HASH_BUSY:
		snprintf(out, cap, "pgtether: too many executables are being hashed right now; try again");
		break;
	case FAULT_PARENT_EXE_NO_MEMORY:
		snprintf(out, cap, "pgtether: out of memory to %s", ff->detail ? ff->detail : "check the executable's path");
		break;
	case FAULT_PARENT_TOKEN_FILE_TIMEOUT:
		snprintf(out, cap, "pgtether: cannot read the identity token file: reading the token file in the workload's mount "
			 "namespace did not finish in %u s (a filesystem on its path does not answer)", ff->timeout);
		break;
	case FAULT_PARENT_EXE_PATH_TIMEOUT:
		snprintf(out, cap, "pgtether: cannot establish who opened this connection: exe: checking the executable's path did "
			 "not finish in %u s (a filesystem on its path does not answer)", ff->timeout);
		break;
	case FAULT_PARENT_HASH_TIMEOUT:
		snprintf(out, cap, "pgtether: cannot establish who opened this connection: exe_sha256: hashing the executable did "
			 "not finish in %u s", ff->timeout);
		break;
	case FAULT_PARENT_TOKEN_REFUSED:
		snprintf(out, cap, "pgtether: the identity token (%.*s) was refused: %s", FACT(ff->token_source), detail);
		break;
	case FAULT_PARENT_DENY_RULE:
		snprintf(out, cap, "pgtether: this connection is denied by policy rule '%.*s' (%.*s:%u)", FACT(ff->rule),
			 FACT(ff->path), ff->line);
		break;
	case FAULT_PARENT_NO_RULE:
		if (ff->token_iss && ff->token_iss[0])
			snprintf(tok, sizeof(tok), ", token sub \"%.*s\" from %.*s", FACT(ff->token_sub), FACT(ff->token_iss));
		else if (ff->path)
			snprintf(tok, sizeof(tok), ", no token: the token file %.*s cannot be read in the workload's mount namespace: %s",
				 FACT(ff->path), token_file_why(ff->err));
		else if (ff->token_empty)
			snprintf(tok, sizeof(tok), ", no token: the client sent an empty password where its identity token was expected");
		snprintf(out, cap, "pgtether: no policy rule allows this connection (cgroup %.*s, uid %u, exe %.*s%s, upstream '%.*s', "
			 "database \"%.*s\"%s)", FACT(ff->cgroup), ff->uid, FACT(ff->exe),
			 ff->exe_foreign ? " as named in the workload's own mount namespace, which exe rules do not trust" : "",
			 FACT(ff->upstream), FACT(ff->database), tok);
		break;
	case FAULT_PARENT_NO_CREDENTIAL:
		snprintf(out, cap, "pgtether: no credential for role '%.*s' of upstream '%.*s'", FACT(ff->role), FACT(ff->upstream));
		break;
	default:
		out[0] = '\0';
		break;
	}
}

/* The client's message for a refused login (FAULT_END_REFUSE), "" for a code that is
 * not one. Every fact is quoted with %s (or %.*s): a fact is never a format. */
static void login_message(enum fault_code f, const struct fault_facts *ff, char *out, size_t cap)
{
	const char *detail = ff->detail ? ff->detail : "unknown";
	unsigned char t = ff->msg_type >= 0x20 && ff->msg_type < 0x7f ? ff->msg_type : '?';

	switch (f) {
	case FAULT_STARTUP_INVALID:
		snprintf(out, cap, "pgtether: invalid startup packet");
		break;
	case FAULT_STARTUP_PARAMS:
		snprintf(out, cap, "pgtether: invalid startup packet (malformed parameter list)");
		break;
	case FAULT_STARTUP_TOO_MANY_PARAMS:
		snprintf(out, cap, "pgtether: invalid startup packet (more than %u parameters)", ff->limit);
		break;
	case FAULT_STARTUP_SETTINGS_FULL:
		snprintf(out, cap, "pgtether: the startup settings are too many or too long (at most %u, %zu bytes)", ff->limit,
			 ff->limit_bytes);
		break;
	case FAULT_STARTUP_NO_USER:
		snprintf(out, cap, "pgtether: no PostgreSQL user name specified in the startup packet");
		break;
	case FAULT_STARTUP_EARLY_DATA:
		snprintf(out, cap, "pgtether: data sent before the SSL/GSS negotiation answer");
		break;
	case FAULT_STARTUP_SSL_IN_TLS:
		snprintf(out, cap, "pgtether: SSLRequest inside TLS");
		break;
	case FAULT_STARTUP_AUTH_EARLY_DATA:
		snprintf(out, cap, "pgtether: data sent before authentication completed");
		break;
	case FAULT_STARTUP_NOT_PASSWORD:
		snprintf(out, cap, "pgtether: expected a password message (the identity token)");
		break;
	case FAULT_STARTUP_TOKEN_TOO_LONG:
		snprintf(out, cap, "pgtether: the password message is too long for an identity token");
		break;
	case FAULT_STARTUP_TOO_LARGE:
		snprintf(out, cap, "pgtether: the startup packet is too large");
		break;
	case FAULT_LOGIN_ENCODING:
		snprintf(out, cap, "pgtether: client_encoding \"%.*s\" is not supported; use UTF8 (PGCLIENTENCODING=UTF8)",
			 FACT(ff->value));
		break;
	case FAULT_LOGIN_SETTING:
		snprintf(out, cap, "pgtether: the startup setting \"%.*s\" is not passed: %s", FACT(ff->setting), detail);
		break;
	case FAULT_LOGIN_OPTIONS:
		snprintf(out, cap, "pgtether: %s", detail);
		break;
	case FAULT_LOGIN_REPLICATION:
		snprintf(out, cap, "pgtether: replication connections are not allowed through pgtether");
		break;
	case FAULT_LOGIN_NO_UPSTREAM:
		snprintf(out, cap, "pgtether: no upstream is configured for %.*s", FACT(ff->address));
		break;
	case FAULT_LOGIN_VERDICT:
		snprintf(out, cap, "%s", detail); /* the parent's words (monitor.c, monitor_login.c) */
		break;
	case FAULT_LOGIN_CONFIG_CHANGED:
		snprintf(out, cap, "pgtether: the configuration changed while this connection logged in; try again");
		break;
	case FAULT_LOGIN_ATTEST_TIMEOUT:
		snprintf(out, cap, "pgtether: cannot establish who opened this connection: exe_sha256: hashing the executable timed out");
		break;
	case FAULT_UPSTREAM_UNREACHABLE:
		if (ff->tried)
			snprintf(out, cap, "pgtether: cannot reach the database at %.*s: %s (nor at the %u address(es) of upstream '%.*s' before it)",
				 FACT(ff->address), detail, ff->tried, FACT(ff->upstream));
		else
			snprintf(out, cap, "pgtether: cannot reach the database at %.*s: %s", FACT(ff->address), detail);
		break;
	case FAULT_UPSTREAM_CONNECT_TIMEOUT:
		snprintf(out, cap, "pgtether: cannot reach the database at %.*s: connection timed out", FACT(ff->address));
		break;
	case FAULT_UPSTREAM_LOGIN_TIMEOUT:
		snprintf(out, cap, "pgtether: cannot reach the database at %.*s: login timed out", FACT(ff->address));
		break;
	case FAULT_UPSTREAM_TLS_SETUP:
		snprintf(out, cap, "pgtether: cannot set up TLS for upstream '%.*s'", FACT(ff->upstream));
		break;
	case FAULT_UPSTREAM_SSLREQ_SEND:
		snprintf(out, cap, "pgtether: cannot send SSLRequest to upstream '%.*s'", FACT(ff->upstream));
		break;
	case FAULT_UPSTREAM_SSLREQ_CLOSED:
		snprintf(out, cap, "pgtether: upstream '%.*s' closed the connection on SSLRequest", FACT(ff->upstream));
		break;
	case FAULT_UPSTREAM_SSL_EXTRA:
		snprintf(out, cap, "pgtether: upstream '%.*s' sent data after its SSL answer", FACT(ff->upstream));
		break;
	case FAULT_UPSTREAM_NO_TLS:
		snprintf(out, cap, "pgtether: upstream '%.*s' does not accept TLS, but its tls setting requires it; "
			 "enable ssl on the database or set tls to \"disable\"", FACT(ff->upstream));
		break;
	case FAULT_UPSTREAM_TLS:
		snprintf(out, cap, "pgtether: TLS to upstream '%.*s' failed: %s", FACT(ff->upstream), detail);
		break;
	case FAULT_UPSTREAM_STARTUP_SEND:
		snprintf(out, cap, "pgtether: cannot send the startup packet to upstream '%.*s'", FACT(ff->upstream));
		break;
	case FAULT_UPSTREAM_LOGIN_SEND:
		snprintf(out, cap, "pgtether: cannot send the login to upstream '%.*s'", FACT(ff->upstream));
		break;
	case FAULT_UPSTREAM_LOGIN_CLOSED:
		snprintf(out, cap, "pgtether: upstream '%.*s' closed the connection during login", FACT(ff->upstream));
		break;
	case FAULT_UPSTREAM_AUTH_MALFORMED:
		snprintf(out, cap, "pgtether: the database sent a malformed authentication request");
		break;
	case FAULT_UPSTREAM_AUTH_TWICE:
		snprintf(out, cap, "pgtether: upstream '%.*s' asked to authenticate twice", FACT(ff->upstream));
		break;
	case FAULT_UPSTREAM_SCRAM_UNPROVEN:
		snprintf(out, cap, "pgtether: the database at upstream '%.*s' ended SCRAM authentication without proving it knows the password",
			 FACT(ff->upstream));
		break;
	case FAULT_UPSTREAM_SCRAM_CHALLENGE:
		snprintf(out, cap, "pgtether: the database at upstream '%.*s' sent an invalid SCRAM challenge (pgtether takes %u to %u iterations)",
			 FACT(ff->upstream), SCRAM_MIN_ITERATIONS, SCRAM_MAX_ITERATIONS);
		break;
	case FAULT_UPSTREAM_SCRAM_SIGNATURE:
		snprintf(out, cap, "pgtether: the database at upstream '%.*s' could not prove it knows the password "
			 "(SCRAM server signature): is it the database you configured?", FACT(ff->upstream));
		break;
	case FAULT_UPSTREAM_CLEARTEXT:
		snprintf(out, cap, "pgtether: upstream '%.*s' asks for a cleartext password, which pgtether sends only over TLS with "
			 "verify-full; use scram-sha-256 in pg_hba.conf or tls verify-full for the upstream", FACT(ff->upstream));
		break;
	case FAULT_UPSTREAM_AUTH_METHOD:
		snprintf(out, cap, "pgtether: upstream '%.*s' asks for an authentication method pgtether does not support (code %u); "
			 "use scram-sha-256 or md5", FACT(ff->upstream), ff->auth_code);
		break;
	case FAULT_UPSTREAM_AUTH_NOT_LISTED:
		snprintf(out, cap, "pgtether: upstream '%.*s' asks for %.*s authentication, which its \"auth_methods\" does not list; "
			 "use scram-sha-256 in pg_hba.conf, or list it in the upstream's auth_methods", FACT(ff->upstream), FACT(ff->detail));
		break;
	case FAULT_UPSTREAM_LOGIN_REFUSED:
		/* never the credential, only what the server said about it */
		snprintf(out, cap, "pgtether could not log in to upstream '%.*s' as role '%.*s': %s (check %.*s)", FACT(ff->upstream),
			 FACT(ff->role), detail, FACT(ff->credentials_file));
		break;
	case FAULT_UPSTREAM_LOGIN_MESSAGE:
		snprintf(out, cap, "pgtether: upstream '%.*s' sent an invalid message during login", FACT(ff->upstream));
		break;
	case FAULT_UPSTREAM_KEYDATA:
		snprintf(out, cap, "pgtether: upstream '%.*s' sent a malformed BackendKeyData", FACT(ff->upstream));
		break;
	case FAULT_UPSTREAM_LOGIN_TOO_MUCH:
		snprintf(out, cap, "pgtether: upstream '%.*s' sent too much during login", FACT(ff->upstream));
		break;
	case FAULT_UPSTREAM_READY_ORDER:
		snprintf(out, cap, "pgtether: upstream '%.*s' sent ReadyForQuery out of order", FACT(ff->upstream));
		break;
	case FAULT_UPSTREAM_LOGIN_UNEXPECTED:
		snprintf(out, cap, "pgtether: upstream '%.*s' sent an unexpected '%c' message during login", FACT(ff->upstream), t);
		break;
	case FAULT_UPSTREAM_LOGIN_OVERSIZED:
		snprintf(out, cap, "pgtether: upstream '%.*s' sent an oversized login message", FACT(ff->upstream));
		break;
	case FAULT_LOGIN_RECORDING:
		snprintf(out, cap, "pgtether: this session cannot be recorded (%s); sessions are refused until recordings can be written",
			 detail);
		break;
	case FAULT_LOGIN_RANDOMNESS:
		snprintf(out, cap, "pgtether: no randomness for the cancel key");
		break;
	default:
		parent_message(f, ff, out, cap);
		break;
	}
}

/* The client's message for f. The formats are literals (-Wformat=2 checks them), so
 * they live in a switch rather than in the table. */
static void fault_message(enum fault_code f, const struct fault_facts *ff, char *out, size_t cap)
{
	const char *detail = ff->detail ? ff->detail : "unknown";

	switch (f) {
	case FAULT_CLIENT_PROTOCOL:
		snprintf(out, cap, "pgtether: invalid message length from the client (below 4 or above max_message_bytes, %u)",
			 ff->max_message_bytes);
		break;
	case FAULT_CLIENT_MESSAGE_TYPE:
		snprintf(out, cap, "pgtether: invalid frontend message type: after login a client sends only Query, Parse, Bind, "
			 "Describe, Execute, Close, Flush, Sync, FunctionCall, Terminate and COPY data");
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
		snprintf(out, cap, "pgtether: rule '%.*s' is read-only, and the database now runs this session read-write "
			 "(server-side code turned default_transaction_read_only off), so the session ends", FACT(ff->rule));
		break;
	case FAULT_CLIENT_ENCODING:
		snprintf(out, cap, "pgtether: the database now reads this session in client_encoding \"%.*s\"; "
			 "pgtether reads statements as UTF8 only, so the session ends", FACT(ff->client_encoding));
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
		snprintf(out, cap, "pgtether: rule '%.*s' masks columns, and they cannot be looked up in the catalog: %s",
			 FACT(ff->rule), detail);
		break;
	case FAULT_PATH_LOOKUP:
		snprintf(out, cap, "pgtether: rule '%.*s' has table rules, and this session's search_path cannot be asked for: %s",
			 FACT(ff->rule), detail);
		break;
	case FAULT_ACCESS_WITHDRAWN:
		snprintf(out, cap, "%s", detail);
		break;
	default:
		login_message(f, ff, out, cap);
		break;
	}
}

/* Five of [0-9A-Z], as every SQLSTATE is. */
static bool sqlstate_ok(const char *x)
{
	if (!x || strlen(x) != 5)
		return false;
	for (int i = 0; i < 5; i++)
		if (!((x[i] >= '0' && x[i] <= '9') || (x[i] >= 'A' && x[i] <= 'Z')))
			return false;
	return true;
}

/* A fault the parent may refuse a login by: one with a reason of its own. */
static bool verdict_ok(enum fault_code v)
{
	return (int)v > FAULT_NONE && v < FAULT_N && v != FAULT_LOGIN_VERDICT && fault_table[v].end == FAULT_END_REFUSE &&
	       fault_table[v].reason;
}

/* A message snprintf cut at the end of msg (FAULT_MSG_MAX - 1 bytes) loses the last
 * character's bytes that did not fit: so does the message, which goes to the client
 * as UTF-8 (a detail longer than the message is cut so, as a fact is). */
static void msg_trim(char *msg)
{
	size_t n = strlen(msg), lead = n, need;
	unsigned char c;

	if (n < FAULT_MSG_MAX - 1)
		return;
	while (lead > 0 && n - lead < 4 && ((unsigned char)msg[lead - 1] & 0xc0) == 0x80)
		lead--;
	if (lead == 0)
		return;
	c = (unsigned char)msg[lead - 1];
	need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
	if (n - (lead - 1) < need)
		msg[lead - 1] = '\0';
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
	/* the parent's verdict names its own (28000 identity, 53300 a cap, ...); what a
	 * worker cannot read as one is a refusal all the same */
	if (f == FAULT_LOGIN_VERDICT)
		ret->sqlstate = sqlstate_ok(ff->sqlstate) ? ff->sqlstate : "08004";
	ret->reason = fault_table[f].reason ? fault_table[f].reason : ff->detail ? ff->detail : "unknown";
	/* ... and its fault, whose reason the worker's log line and recording give */
	if (f == FAULT_LOGIN_VERDICT && verdict_ok(ff->verdict))
		ret->reason = fault_table[ff->verdict].reason;
	fault_message(f, ff, ret->msg, sizeof(ret->msg));
	msg_trim(ret->msg);
	return 0;
}
