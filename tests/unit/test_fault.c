/* Unit tests for daemon/fault.c: the table of the ways a session ends, or its login is
 * refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "fault.h"

static const struct fault_facts facts = {
	.detail = "upstream error: Connection reset by peer", .rule = "ci-api", .client_encoding = "LATIN1",
	.max_message_bytes = 12345, .mask_refresh = 7, .memory_budget = 1048576,
	.upstream = "main", .role = "app_ro", .credentials_file = "/etc/pgtether/credentials.json",
	.address = "127.0.0.1:5432", .setting = "search_path", .value = "LATIN1", .sqlstate = "53300",
	.limit = 64, .limit_bytes = 2048, .tried = 2, .auth_code = 7, .msg_type = 'x',
};

/* Whether the message is the detail itself (the relay's withdrawal, the parent's verdict). */
static bool message_is_detail(int f)
{
	return f == FAULT_ACCESS_WITHDRAWN || f == FAULT_LOGIN_VERDICT;
}

/* Every fault says something a client can act on, with a real SQLSTATE, and a reason. */
static void test_every_fault(void **state)
{
	(void)state;
	for (int f = FAULT_NONE + 1; f < FAULT_N; f++) {
		struct fault_text t;

		assert_int_equal(fault_describe((enum fault_code)f, &facts, &t), 0);
		assert_non_null(t.reason);
		assert_true(t.reason[0] != '\0');
		if (t.end == FAULT_END_SILENT) {
			assert_null(t.sqlstate);
			continue;
		}
		assert_non_null(t.sqlstate);
		assert_int_equal(strlen(t.sqlstate), 5);
		for (int i = 0; i < 5; i++)
			assert_true(isdigit((unsigned char)t.sqlstate[i]) || isupper((unsigned char)t.sqlstate[i]));
		if (f == FAULT_UPSTREAM_LOGIN_REFUSED) /* "pgtether could not log in ..." */
			assert_memory_equal(t.msg, "pgtether could not ", 19);
		else if (!message_is_detail(f))
			assert_memory_equal(t.msg, "pgtether: ", 10);
		assert_true(t.msg[0] != '\0');
		assert_true(strlen(t.msg) < FAULT_MSG_MAX);
	}
}

/* Every login fault refuses, and says something even when no fact was given (a caller
 * that forgot one gets "" or "unknown" in its place, never a crash or NULL). */
static void test_every_login_fault(void **state)
{
	const struct fault_facts none = { 0 };

	(void)state;
	for (int f = FAULT_STARTUP_INVALID; f < FAULT_N; f++) {
		struct fault_text t;

		assert_int_equal(fault_describe((enum fault_code)f, &none, &t), 0);
		assert_int_equal(t.end, FAULT_END_REFUSE);
		assert_non_null(t.sqlstate);
		assert_int_equal(strlen(t.sqlstate), 5);
		assert_non_null(t.reason);
		assert_true(t.reason[0] != '\0');
		assert_true(t.msg[0] != '\0');
		/* a literal of the table: the recording keeps it after the facts are gone */
		fault_describe((enum fault_code)f, &facts, &t);
		assert_ptr_not_equal(t.reason, facts.detail);
	}
	/* the relay's faults a login may be refused by, too */
	for (int f = FAULT_NONE + 1; f < FAULT_STARTUP_INVALID; f++) {
		struct fault_text t;

		fault_describe((enum fault_code)f, &facts, &t);
		assert_int_not_equal(t.end, FAULT_END_REFUSE);
	}
}

static void test_out_of_range(void **state)
{
	struct fault_text t = { .reason = "untouched" };

	(void)state;
	assert_int_equal(fault_describe(FAULT_NONE, &facts, &t), -EINVAL);
	assert_int_equal(fault_describe(FAULT_N, &facts, &t), -EINVAL);
	assert_int_equal(fault_describe((enum fault_code)-3, &facts, &t), -EINVAL);
	assert_int_equal(fault_describe((enum fault_code)(FAULT_N + 1), &facts, &t), -EINVAL);
	assert_int_equal(fault_describe((enum fault_code)0x7fffffff, &facts, &t), -EINVAL);
	assert_string_equal(t.reason, "untouched");
}

/* What the relay said before the table, word for word: clients and tests read these. */
static void test_messages_quote_their_facts(void **state)
{
	struct fault_text t;

	(void)state;
	fault_describe(FAULT_CLIENT_PROTOCOL, &facts, &t);
	assert_string_equal(t.sqlstate, "08P01");
	assert_int_equal(t.end, FAULT_END_NOW);
	assert_string_equal(t.msg, "pgtether: invalid message length from the client (below 4 or above max_message_bytes, 12345)");
	assert_string_equal(t.reason, "client protocol violation");

	fault_describe(FAULT_MASKS_STALE, &facts, &t);
	assert_string_equal(t.sqlstate, "55000");
	assert_non_null(strstr(t.msg, "for 21 s"));

	fault_describe(FAULT_MEMORY_BUDGET, &facts, &t);
	assert_string_equal(t.sqlstate, "53200");
	assert_non_null(strstr(t.msg, "(1048576 bytes, shared by all sessions)"));
	assert_string_equal(t.reason, "memory_budget exhausted");

	fault_describe(FAULT_READ_WRITE, &facts, &t);
	assert_string_equal(t.sqlstate, "0A000");
	assert_non_null(strstr(t.msg, "rule 'ci-api' is read-only"));

	fault_describe(FAULT_CLIENT_ENCODING, &facts, &t);
	assert_non_null(strstr(t.msg, "client_encoding \"LATIN1\""));

	fault_describe(FAULT_ROW_TOO_LARGE, &facts, &t);
	assert_string_equal(t.sqlstate, "54000");
	assert_int_equal(t.end, FAULT_END_BOUNDARY);

	fault_describe(FAULT_UPSTREAM_PROTOCOL, &facts, &t);
	assert_int_equal(t.end, FAULT_END_SILENT);
	assert_string_equal(t.msg, "");
}

/* A fault whose reason is its detail: the log says why the connection was lost. */
static void test_detail(void **state)
{
	struct fault_text t;
	struct fault_facts ff = facts;

	(void)state;
	fault_describe(FAULT_UPSTREAM_LOST, &ff, &t);
	assert_string_equal(t.sqlstate, "08006");
	assert_string_equal(t.msg, "pgtether: the connection to the database was lost (upstream error: Connection reset by peer)");
	assert_string_equal(t.reason, "upstream error: Connection reset by peer");
	ff.detail = NULL;
	fault_describe(FAULT_UPSTREAM_LOST, &ff, &t);
	assert_string_equal(t.reason, "unknown");
}

/* A lookup that fails at login fails the client's first ReadyForQuery (XX000); later,
 * in a session the client used, it is an admin shutdown drivers reconnect after. */
static void test_lookup_at_login(void **state)
{
	struct fault_text t;
	struct fault_facts ff = facts;

	(void)state;
	ff.detail = "the server said: permission denied";
	fault_describe(FAULT_MASK_LOOKUP, &ff, &t);
	assert_string_equal(t.sqlstate, "57P01");
	assert_string_equal(t.msg, "pgtether: rule 'ci-api' masks columns, and they cannot be looked up in the catalog: "
			    "the server said: permission denied");
	assert_string_equal(t.reason, "mask lookup failed");
	ff.at_login = true;
	fault_describe(FAULT_MASK_LOOKUP, &ff, &t);
	assert_string_equal(t.sqlstate, "XX000");
	fault_describe(FAULT_PATH_LOOKUP, &ff, &t);
	assert_string_equal(t.sqlstate, "XX000");
	assert_string_equal(t.reason, "search_path lookup failed");
}

/* A detail longer than the message is cut, never overrun. */
static void test_long_detail(void **state)
{
	char big[2000];
	struct fault_text t;
	struct fault_facts ff = facts;

	(void)state;
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ff.detail = big;
	fault_describe(FAULT_ACCESS_WITHDRAWN, &ff, &t);
	assert_int_equal(strlen(t.msg), FAULT_MSG_MAX - 1);
}

/* The login's words as they were before the table, word for word: drivers, people and
 * the integration tests read them. */
static void test_login_messages(void **state)
{
	struct fault_text t;
	struct fault_facts ff = facts;

	(void)state;
	fault_describe(FAULT_UPSTREAM_LOGIN_REFUSED, &facts, &t);
	assert_string_equal(t.sqlstate, "28000");
	assert_string_equal(t.msg, "pgtether could not log in to upstream 'main' as role 'app_ro': "
			    "upstream error: Connection reset by peer (check /etc/pgtether/credentials.json)");
	assert_string_equal(t.reason, "upstream refused the login");

	fault_describe(FAULT_UPSTREAM_UNREACHABLE, &facts, &t);
	assert_string_equal(t.sqlstate, "08001");
	assert_string_equal(t.msg, "pgtether: cannot reach the database at 127.0.0.1:5432: upstream error: Connection reset by peer "
			    "(nor at the 2 address(es) of upstream 'main' before it)");
	ff.tried = 0;
	ff.detail = "Connection refused";
	fault_describe(FAULT_UPSTREAM_UNREACHABLE, &ff, &t);
	assert_string_equal(t.msg, "pgtether: cannot reach the database at 127.0.0.1:5432: Connection refused");
	fault_describe(FAULT_UPSTREAM_CONNECT_TIMEOUT, &ff, &t);
	assert_string_equal(t.msg, "pgtether: cannot reach the database at 127.0.0.1:5432: connection timed out");
	assert_string_equal(t.sqlstate, "08001");
	fault_describe(FAULT_UPSTREAM_LOGIN_TIMEOUT, &ff, &t);
	assert_string_equal(t.msg, "pgtether: cannot reach the database at 127.0.0.1:5432: login timed out");
	assert_string_equal(t.reason, "upstream login timed out");

	fault_describe(FAULT_STARTUP_SETTINGS_FULL, &facts, &t);
	assert_string_equal(t.sqlstate, "08P01");
	assert_string_equal(t.msg, "pgtether: the startup settings are too many or too long (at most 64, 2048 bytes)");
	fault_describe(FAULT_STARTUP_TOO_MANY_PARAMS, &facts, &t);
	assert_string_equal(t.msg, "pgtether: invalid startup packet (more than 64 parameters)");
	fault_describe(FAULT_STARTUP_PARAMS, &facts, &t);
	assert_string_equal(t.msg, "pgtether: invalid startup packet (malformed parameter list)");
	fault_describe(FAULT_STARTUP_NO_USER, &facts, &t);
	assert_string_equal(t.sqlstate, "28000");

	ff = facts;
	ff.detail = "it is set by pgtether, not by the client";
	fault_describe(FAULT_LOGIN_SETTING, &ff, &t);
	assert_string_equal(t.sqlstate, "08004");
	assert_string_equal(t.msg, "pgtether: the startup setting \"search_path\" is not passed: it is set by pgtether, not by the client");
	fault_describe(FAULT_LOGIN_ENCODING, &facts, &t);
	assert_string_equal(t.sqlstate, "22023");
	assert_string_equal(t.msg, "pgtether: client_encoding \"LATIN1\" is not supported; use UTF8 (PGCLIENTENCODING=UTF8)");
	fault_describe(FAULT_LOGIN_NO_UPSTREAM, &facts, &t);
	assert_string_equal(t.msg, "pgtether: no upstream is configured for 127.0.0.1:5432");
	ff.detail = "\"options\" is too long";
	fault_describe(FAULT_LOGIN_OPTIONS, &ff, &t);
	assert_string_equal(t.msg, "pgtether: \"options\" is too long");

	fault_describe(FAULT_UPSTREAM_SCRAM_CHALLENGE, &facts, &t);
	assert_string_equal(t.msg, "pgtether: the database at upstream 'main' sent an invalid SCRAM challenge "
			    "(pgtether takes 4096 to 1000000 iterations)");
	fault_describe(FAULT_UPSTREAM_AUTH_METHOD, &facts, &t);
	assert_string_equal(t.msg, "pgtether: upstream 'main' asks for an authentication method pgtether does not support "
			    "(code 7); use scram-sha-256 or md5");
	{
		struct fault_facts m = facts;

		m.detail = "md5";
		fault_describe(FAULT_UPSTREAM_AUTH_NOT_LISTED, &m, &t);
		assert_string_equal(t.msg, "pgtether: upstream 'main' asks for md5 authentication, which its \"auth_methods\" does not list; "
				    "use scram-sha-256 in pg_hba.conf, or list it in the upstream's auth_methods");
		assert_string_equal(t.sqlstate, "28000");
	}
	fault_describe(FAULT_UPSTREAM_TLS, &facts, &t);
	assert_string_equal(t.msg, "pgtether: TLS to upstream 'main' failed: upstream error: Connection reset by peer");
	fault_describe(FAULT_UPSTREAM_LOGIN_UNEXPECTED, &facts, &t);
	assert_string_equal(t.msg, "pgtether: upstream 'main' sent an unexpected 'x' message during login");
	ff.msg_type = 0x01; /* not printable */
	fault_describe(FAULT_UPSTREAM_LOGIN_UNEXPECTED, &ff, &t);
	assert_string_equal(t.msg, "pgtether: upstream 'main' sent an unexpected '?' message during login");
	ff.msg_type = 0xc3;
	fault_describe(FAULT_UPSTREAM_LOGIN_UNEXPECTED, &ff, &t);
	assert_string_equal(t.msg, "pgtether: upstream 'main' sent an unexpected '?' message during login");

	ff.detail = "sessions_dir is full";
	fault_describe(FAULT_LOGIN_RECORDING, &ff, &t);
	assert_string_equal(t.sqlstate, "53100");
	assert_string_equal(t.msg, "pgtether: this session cannot be recorded (sessions_dir is full); "
			    "sessions are refused until recordings can be written");
	fault_describe(FAULT_LOGIN_RANDOMNESS, &ff, &t);
	assert_string_equal(t.sqlstate, "53000");
	fault_describe(FAULT_OUT_OF_MEMORY, &ff, &t);
	assert_string_equal(t.msg, "pgtether: out of memory");
}

/* The parent's verdict: its words and its SQLSTATE, when that is one. */
static void test_verdict(void **state)
{
	static const char *bad[] = { NULL, "", "5330", "533000", "53x00", "53 00", "\xc3\xa9" "000" };
	struct fault_text t;
	struct fault_facts ff = facts;

	(void)state;
	ff.detail = "pgtether: too many connections still logging in (max_logins_per_cgroup 4); try again later";
	fault_describe(FAULT_LOGIN_VERDICT, &ff, &t);
	assert_string_equal(t.sqlstate, "53300");
	assert_string_equal(t.msg, ff.detail);
	assert_int_equal(t.end, FAULT_END_REFUSE);
	ff.sqlstate = "28000";
	fault_describe(FAULT_LOGIN_VERDICT, &ff, &t);
	assert_string_equal(t.sqlstate, "28000");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ff.sqlstate = bad[i];
		fault_describe(FAULT_LOGIN_VERDICT, &ff, &t);
		assert_string_equal(t.sqlstate, "08004");
	}
	/* the reason is its fault's, when that is one a login is refused by */
	ff.verdict = FAULT_PARENT_CGROUP_LOGINS;
	fault_describe(FAULT_LOGIN_VERDICT, &ff, &t);
	assert_string_equal(t.reason, "max_logins_per_cgroup reached");
	assert_string_equal(t.msg, ff.detail);
	{
		static const int odd[] = { FAULT_NONE, FAULT_LOGIN_VERDICT, FAULT_CLIENT_PROTOCOL, FAULT_WORKER_ENDED, FAULT_N,
					   -1, 0x7fffffff };

		for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
			ff.verdict = (enum fault_code)odd[i];
			fault_describe(FAULT_LOGIN_VERDICT, &ff, &t);
			assert_string_equal(t.reason, "refused by the parent");
		}
	}
}

/* The root parent's refusals (monitor.c, monitor_login.c), word for word as they were
 * before the table (clients and the integration tests read them), each with its
 * SQLSTATE and a reason of its own. */
static void test_parent_messages(void **state)
{
	static const struct {
		enum fault_code f;
		const char *sqlstate, *reason, *msg;
	} want[] = {
		{ FAULT_PARENT_NOT_REDIRECTED, "08004", "not redirected",
		  "pgtether: this connection was not redirected by pgtether (127.0.0.1:5432 connected to the listener directly); "
		  "connect to the database's own address instead" },
		{ FAULT_PARENT_ORIGINS_FULL, "53300", "origins map full",
		  "pgtether: the kernel's table of redirected connections (64 entries) was full when this connection was made, "
		  "so who opened it is unknown; try again" },
		{ FAULT_PARENT_MAX_LOGINS, "53300", "max_logins reached",
		  "pgtether: too many connections still logging in (max_logins 64); try again later" },
		{ FAULT_PARENT_CGROUP_LOGINS, "53300", "max_logins_per_cgroup reached",
		  "pgtether: too many connections still logging in from cgroup /sys/fs/cgroup/ci and the cgroups below it "
		  "(max_logins_per_cgroup 64); finish or close the others first" },
		{ FAULT_PARENT_UNCONFIRMED, "08004", "socket identity unconfirmed",
		  "pgtether: cannot confirm the identity of this connection (No such file or directory); try again" },
		{ FAULT_PARENT_NO_UPSTREAM, "08004", "no upstream for the destination",
		  "pgtether: no upstream is configured for 127.0.0.1:5432; add it to \"upstreams\" (address or aliases) in "
		  "/etc/pgtether/policy.d/ci.policy" },
		{ FAULT_PARENT_ATTEST, "08004", "identity not established",
		  "pgtether: cannot establish who opened this connection: upstream error: Connection reset by peer" },
		{ FAULT_PARENT_ATTEST_CHANGED, "28000", "process changed since connect",
		  "pgtether: cannot establish who opened this connection: upstream error: Connection reset by peer" },
		{ FAULT_PARENT_HASH_BUSY, "53300", "file-system threads busy (hashing)",
		  "pgtether: too many executables are being hashed right now; try again" },
		{ FAULT_PARENT_TOKEN_FILE_TIMEOUT, "08004", "token file read timed out",
		  "pgtether: cannot read the identity token file: reading the token file in the workload's mount namespace did "
		  "not finish in 10 s (a filesystem on its path does not answer)" },
		{ FAULT_PARENT_HASH_TIMEOUT, "08004", "executable hash timed out",
		  "pgtether: cannot establish who opened this connection: exe_sha256: hashing the executable did not finish in 10 s" },
		{ FAULT_PARENT_TOKEN_REFUSED, "28000", "identity token refused",
		  "pgtether: the identity token (file) was refused: upstream error: Connection reset by peer" },
		{ FAULT_PARENT_DENY_RULE, "28000", "denied by policy rule",
		  "pgtether: this connection is denied by policy rule 'ci-api' (/etc/pgtether/policy.d/ci.policy:12)" },
		{ FAULT_PARENT_NO_RULE, "28000", "no policy rule allows",
		  "pgtether: no policy rule allows this connection (cgroup /sys/fs/cgroup/ci, uid 1000, exe /usr/bin/psql as named "
		  "in the workload's own mount namespace, which exe rules do not trust, upstream 'main', database \"app\", "
		  "token sub \"svc\" from https://issuer.example)" },
		{ FAULT_PARENT_NO_CREDENTIAL, "28000", "no credential for the role",
		  "pgtether: no credential for role 'app_ro' of upstream 'main'" },
		{ FAULT_LOGIN_RECORDING, "53100", "recording cannot be written",
		  "pgtether: this session cannot be recorded (upstream error: Connection reset by peer); sessions are refused "
		  "until recordings can be written" },
		{ FAULT_NO_WORKER, "57P03", "no worker ready",
		  "pgtether: no worker process is ready to serve this connection; try again" },
		{ FAULT_WORKER_ENDED, "57P01", "worker process ended",
		  "pgtether: the worker process serving this session ended unexpectedly; reconnect" },
	};
	struct fault_facts ff = facts;
	struct fault_text t;

	(void)state;
	ff.cgroup = "/sys/fs/cgroup/ci";
	ff.exe = "/usr/bin/psql";
	ff.exe_foreign = true;
	ff.uid = 1000;
	ff.database = "app";
	ff.token_source = "file";
	ff.token_iss = "https://issuer.example";
	ff.token_sub = "svc";
	ff.path = "/etc/pgtether/policy.d/ci.policy";
	ff.line = 12;
	ff.err = ENOENT;
	ff.timeout = 10;
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		assert_int_equal(fault_describe(want[i].f, &ff, &t), 0);
		assert_string_equal(t.sqlstate, want[i].sqlstate);
		assert_string_equal(t.reason, want[i].reason);
		assert_string_equal(t.msg, want[i].msg);
		assert_int_equal(t.end, want[i].f == FAULT_NO_WORKER || want[i].f == FAULT_WORKER_ENDED ? FAULT_END_NOW
												  : FAULT_END_REFUSE);
	}

	/* the variants: no cgroup known, a cookie that differs, an exe the rules trust and
	 * why there is no token */
	ff.cgroup = NULL;
	fault_describe(FAULT_PARENT_CGROUP_LOGINS, &ff, &t);
	assert_string_equal(t.msg, "pgtether: too many connections of no known cgroup still logging in "
			    "(max_logins_per_cgroup 64); try again later");
	ff.err = 0;
	fault_describe(FAULT_PARENT_UNCONFIRMED, &ff, &t);
	assert_string_equal(t.msg, "pgtether: cannot confirm the identity of this connection (socket cookie mismatch); try again");
	ff = (struct fault_facts){ .cgroup = "/sys/fs/cgroup/ci", .uid = 0, .exe = "/usr/bin/psql", .upstream = "main",
				   .database = "app", .path = "/run/token", .err = EACCES };
	fault_describe(FAULT_PARENT_NO_RULE, &ff, &t);
	assert_string_equal(t.msg, "pgtether: no policy rule allows this connection (cgroup /sys/fs/cgroup/ci, uid 0, exe /usr/bin/psql, "
			    "upstream 'main', database \"app\", no token: the token file /run/token cannot be read in the "
			    "workload's mount namespace: the workload itself may not read it)");
	ff.err = EFBIG;
	fault_describe(FAULT_PARENT_NO_RULE, &ff, &t);
	assert_non_null(strstr(t.msg, "namespace: too large)"));
	ff.err = ENAMETOOLONG;
	fault_describe(FAULT_PARENT_NO_RULE, &ff, &t);
	assert_non_null(strstr(t.msg, "namespace: File name too long)"));
	ff.path = NULL;
	ff.token_empty = true;
	fault_describe(FAULT_PARENT_NO_RULE, &ff, &t);
	assert_string_equal(t.msg, "pgtether: no policy rule allows this connection (cgroup /sys/fs/cgroup/ci, uid 0, exe /usr/bin/psql, "
			    "upstream 'main', database \"app\", no token: the client sent an empty password where its "
			    "identity token was expected)");
	ff.token_empty = false;
	fault_describe(FAULT_PARENT_NO_RULE, &ff, &t);
	assert_string_equal(t.msg, "pgtether: no policy rule allows this connection (cgroup /sys/fs/cgroup/ci, uid 0, exe /usr/bin/psql, "
			    "upstream 'main', database \"app\")");
}

/* Every fault of the parent has its own reason (what conn.refused logs) and refuses a
 * login; the worker logs it for a verdict that names it. */
static void test_parent_rows(void **state)
{
	struct fault_text t, v;

	(void)state;
	for (int f = FAULT_PARENT_ADDRESSES; f < FAULT_N; f++) {
		struct fault_facts ff = facts;

		assert_int_equal(fault_describe((enum fault_code)f, &facts, &t), 0);
		assert_int_equal(t.end, FAULT_END_REFUSE);
		assert_string_not_equal(t.reason, "refused by the parent");
		for (int g = FAULT_PARENT_ADDRESSES; g < f; g++) {
			fault_describe((enum fault_code)g, &facts, &v);
			assert_string_not_equal(t.reason, v.reason);
		}
		ff.sqlstate = t.sqlstate;
		ff.detail = t.msg;
		ff.verdict = (enum fault_code)f;
		fault_describe(FAULT_LOGIN_VERDICT, &ff, &v);
		assert_string_equal(v.sqlstate, t.sqlstate);
		assert_string_equal(v.msg, t.msg);
		assert_ptr_equal(v.reason, t.reason);
	}
}

/* A fact longer than FAULT_FACT_MAX (a client_encoding the client made up) is cut on
 * a character boundary, so the advice after it still reaches the client; a detail
 * too long for the message is cut with the message, never overrun. */
static void test_long_facts(void **state)
{
	char big[2001];
	struct fault_text t;
	struct fault_facts ff = facts;
	const char *q, *end;

	(void)state;
	for (size_t i = 0; i + 1 < sizeof(big); i += 2)
		memcpy(big + i, "\xc3\xa9", 2); /* é */
	big[sizeof(big) - 1] = '\0';
	ff.value = big;
	fault_describe(FAULT_LOGIN_ENCODING, &ff, &t);
	assert_true(strlen(t.msg) < FAULT_MSG_MAX);
	end = "\" is not supported; use UTF8 (PGCLIENTENCODING=UTF8)";
	assert_string_equal(t.msg + strlen(t.msg) - strlen(end), end);
	q = strchr(t.msg, '"') + 1;
	assert_true((size_t)(strstr(q, end) - q) <= 256);
	assert_int_equal((strstr(q, end) - q) % 2, 0); /* whole characters only */
	assert_true(strstr(q, end) - q >= 250);

	ff = facts;
	ff.upstream = big;
	fault_describe(FAULT_UPSTREAM_LOGIN_CLOSED, &ff, &t);
	assert_non_null(strstr(t.msg, "' closed the connection during login"));

	memset(big, 'x', sizeof(big) - 1);
	ff = facts;
	ff.detail = big;
	fault_describe(FAULT_UPSTREAM_LOGIN_REFUSED, &ff, &t);
	assert_int_equal(strlen(t.msg), FAULT_MSG_MAX - 1);
	fault_describe(FAULT_LOGIN_VERDICT, &ff, &t);
	assert_int_equal(strlen(t.msg), FAULT_MSG_MAX - 1);

	/* the parent's facts: a cgroup path of 1000 é is cut to whole characters, and
	 * the advice after it still comes */
	for (size_t i = 0; i + 1 < sizeof(big); i += 2)
		memcpy(big + i, "\xc3\xa9", 2);
	ff = facts;
	ff.cgroup = big;
	ff.limit = 4;
	fault_describe(FAULT_PARENT_CGROUP_LOGINS, &ff, &t);
	end = " and the cgroups below it (max_logins_per_cgroup 4); finish or close the others first";
	assert_string_equal(t.msg + strlen(t.msg) - strlen(end), end);
	q = t.msg + strlen("pgtether: too many connections still logging in from cgroup ");
	assert_true(strstr(q, end) - q <= 256 && strstr(q, end) - q >= 250);
	assert_int_equal((strstr(q, end) - q) % 2, 0);
	/* ... and a message cut at its end is cut between characters too: the parent's
	 * detail of 1000 é, at an odd offset ("...: " then é), ends in a whole one */
	ff.detail = big;
	fault_describe(FAULT_PARENT_ATTEST, &ff, &t);
	assert_true(strlen(t.msg) >= FAULT_MSG_MAX - 2 && strlen(t.msg) < FAULT_MSG_MAX);
	q = t.msg + strlen("pgtether: cannot establish who opened this connection: ");
	assert_int_equal(strlen(q) % 2, 0);
	{
		struct fault_text v; /* the worker passes it on whole */

		fault_describe(FAULT_LOGIN_VERDICT, &(struct fault_facts){ .detail = t.msg }, &v);
		assert_string_equal(v.msg, t.msg);
	}
	fault_describe(FAULT_PARENT_NO_RULE, &(struct fault_facts){ .cgroup = big, .exe = big, .upstream = big,
								  .database = big, .token_iss = big, .token_sub = big }, &t);
	assert_true(strlen(t.msg) < FAULT_MSG_MAX);
	for (const char *x = t.msg; *x; x++)
		if ((unsigned char)*x >= 0x80) /* é whole: a lead byte, then its continuation */
			assert_true((unsigned char)*x == 0xc3 ? (unsigned char)x[1] == 0xa9 : (unsigned char)x[-1] == 0xc3);
}

/* What a client or a server sent is quoted, never read as a format. */
static void test_no_format_injection(void **state)
{
	struct fault_text t;
	struct fault_facts ff = facts;

	(void)state;
	ff.detail = "%s%s%n%x";
	ff.setting = "%n%s";
	fault_describe(FAULT_LOGIN_SETTING, &ff, &t);
	assert_string_equal(t.msg, "pgtether: the startup setting \"%n%s\" is not passed: %s%s%n%x");
	fault_describe(FAULT_LOGIN_VERDICT, &ff, &t);
	assert_string_equal(t.msg, "%s%s%n%x");
	fault_describe(FAULT_LOGIN_OPTIONS, &ff, &t);
	assert_string_equal(t.msg, "pgtether: %s%s%n%x");
	ff.role = "%p%p";
	fault_describe(FAULT_UPSTREAM_LOGIN_REFUSED, &ff, &t);
	assert_string_equal(t.msg, "pgtether could not log in to upstream 'main' as role '%p%p': %s%s%n%x "
			    "(check /etc/pgtether/credentials.json)");
	ff.value = "%s";
	fault_describe(FAULT_LOGIN_ENCODING, &ff, &t);
	assert_string_equal(t.msg, "pgtether: client_encoding \"%s\" is not supported; use UTF8 (PGCLIENTENCODING=UTF8)");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_fault),
		cmocka_unit_test(test_out_of_range),
		cmocka_unit_test(test_messages_quote_their_facts),
		cmocka_unit_test(test_detail),
		cmocka_unit_test(test_lookup_at_login),
		cmocka_unit_test(test_long_detail),
		cmocka_unit_test(test_every_login_fault),
		cmocka_unit_test(test_login_messages),
		cmocka_unit_test(test_verdict),
		cmocka_unit_test(test_parent_messages),
		cmocka_unit_test(test_parent_rows),
		cmocka_unit_test(test_long_facts),
		cmocka_unit_test(test_no_format_injection),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
