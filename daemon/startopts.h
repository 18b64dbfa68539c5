/*
 * Settings a client gives at startup: as startup parameters (pgx's RuntimeParams,
 * JDBC's currentSchema) or inside the "options" parameter (PGOPTIONS, libpq's
 * options=, node-postgres' options), in the server's own syntax.
 *
 * The server applies them before any statement, with the client's authority
 * (PGC_S_CLIENT), over the role's and database's defaults; no statement class, table
 * rule or approval sees them. So pgtether passes only settings that cannot change
 * privilege or how pgtether must read the session, whatever the rule: timeouts,
 * messages, memory, planner costs, presentation, and search_path (unqualified names
 * are resolved by asking the server, searchpath.h; pg_catalog must come first, see
 * startopts_value_allowed) and standard_conforming_strings
 * (texts with a backslash are read both ways, sqlguard.h). Every other setting is
 * refused by name, with the reason; the client can still SET it once connected,
 * where the rule's "session" class decides.
 *
 * "options" is split as the server splits it (pg_split_opts: whitespace separates,
 * a backslash takes the next byte as it is) and read as its switches: "-c
 * name=value", "-cname=value" and "--name=value", a '-' in the name meaning '_'.
 * The server's other switches (-B, -e, -F, -S, ...) are refused.
 */
#ifndef PGTETHER_STARTOPTS_H
#define PGTETHER_STARTOPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STARTOPTS_MAX 64               /* settings in one "options" value */
#define STARTOPTS_ERR 256

struct startopts_setting {
	const char *name;               /* as the server will look it up (see above) */
	const char *value;
};

/*
 * Splits options into settings. Names and values are written into buf[0..cap),
 * which must be at least strlen(options) + 1 bytes (a split never grows), and point
 * there. Returns the number of settings, or -1 with err saying which switch is
 * malformed or not passed.
 */
int startopts_split(const char *options, char *buf, size_t cap, struct startopts_setting *out, size_t max,
		    char err[STARTOPTS_ERR]);

/* Whether a setting named name (compared as the server compares setting names, ASCII
 * case-insensitively) may be passed at startup. False with why: the reason, for the
 * client's error. client_encoding, application_name and pgtether.* are the caller's:
 * they are refused here. */
bool startopts_allowed(const char *name, char why[STARTOPTS_ERR]);

/*
 * Whether the value of an allowed setting may be passed: false with why for a
 * search_path that lists pg_catalog after a schema other than pg_temp (read as the
 * server reads the list), or that the server could not read. pgtether takes an
 * unqualified function or operator name of PostgreSQL's own (lower, =) as the
 * built-in; a schema searched before pg_catalog could give it another. Every other
 * value passes.
 */
bool startopts_value_allowed(const char *name, const char *value, char why[STARTOPTS_ERR]);

/*
 * The StartupMessage pgtether sends the server. Built from the parent's facts by
 * the parent for plain upstreams (monitor_login.c: the worker cannot choose the
 * database, role or identity it logs in with), and by the worker inside TLS.
 */
#define STARTOPTS_FWD_BYTES 2048         /* settings passed on: name\0value\0... */
#define STARTOPTS_FWD_MAX 64             /* ... at most this many of them */

struct startopts_login {
	const char *role, *database;
	const char *client_app;          /* the client's application_name, "" for none */
	const char *cgroup, *exe, *rule;
	const char *comm;                /* at most 16 bytes, not NUL-terminated at 16 */
	const char *token_iss, *token_sub; /* "" for no token */
	unsigned uid, gid, pid;
	bool read_only;                  /* default_transaction_read_only=on */
	const char *fwd;                 /* the client's settings passed on (fwd_len bytes) */
	size_t fwd_len;
};

/* Writes the packet into out (cap bytes, PGWIRE_STARTUP_MAX will do): its length,
 * or 0 when it does not fit or fwd is not whole pairs. */
size_t startopts_upstream_startup(uint8_t *out, size_t cap, const struct startopts_login *l);

/* Whether fwd (len bytes) is what a worker may have the parent pass on: whole
 * name\0value\0 pairs, at most STARTOPTS_FWD_MAX, each allowed (startopts_allowed
 * and startopts_value_allowed) or client_encoding=UTF8. False with why. */
bool startopts_fwd_allowed(const char *fwd, size_t len, char why[STARTOPTS_ERR]);

#endif
