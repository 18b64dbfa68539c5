/* Settings given at startup: which pass, and "options" read as the server reads it. */
#include "startopts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pgwire.h"

/*
 * Settings (PostgreSQL 15 names, all PGC_USERSET) that change neither privilege nor
 * how pgtether reads the session. Sorted for bsearch.
 */
static const char *const passed[] = {
	"client_min_messages",
	"constraint_exclusion",
	"cpu_index_tuple_cost",
	"cpu_operator_cost",
	"cpu_tuple_cost",
	"cursor_tuple_fraction",
	"datestyle",
	"default_statistics_target",
	"default_transaction_deferrable",
	"default_transaction_isolation",
	"effective_cache_size",
	"effective_io_concurrency",
	"enable_async_append",
	"enable_bitmapscan",
	"enable_gathermerge",
	"enable_hashagg",
	"enable_hashjoin",
	"enable_incremental_sort",
	"enable_indexonlyscan",
	"enable_indexscan",
	"enable_material",
	"enable_memoize",
	"enable_mergejoin",
	"enable_nestloop",
	"enable_parallel_append",
	"enable_parallel_hash",
	"enable_partition_pruning",
	"enable_partitionwise_aggregate",
	"enable_partitionwise_join",
	"enable_seqscan",
	"enable_sort",
	"enable_tidscan",
	"extra_float_digits",
	"from_collapse_limit",
	"geqo",
	"geqo_threshold",
	"hash_mem_multiplier",
	"idle_in_transaction_session_timeout",
	"idle_session_timeout",
	"intervalstyle",
	"jit",
	"join_collapse_limit",
	"lc_monetary",
	"lc_numeric",
	"lc_time",
	"lock_timeout",
	"maintenance_io_concurrency",
	"maintenance_work_mem",
	"max_parallel_maintenance_workers",
	"max_parallel_workers_per_gather",
	"min_parallel_index_scan_size",
	"min_parallel_table_scan_size",
	"parallel_setup_cost",
	"parallel_tuple_cost",
	"plan_cache_mode",
	"random_page_cost",
	"search_path",
	"seq_page_cost",
	"standard_conforming_strings",
	"statement_timeout",
	"synchronous_commit",
	"temp_buffers",
	"timezone",
	"work_mem",
};

/* Refused with a reason of their own; anything else not passed gets the general one. */
static const struct {
	const char *name;
	const char *why;
} refused[] = {
	{ "role", "it changes the role the session runs as" },
	{ "session_authorization", "it changes the role the session runs as" },
	{ "default_transaction_read_only", "pgtether sets it from the rule" },
	{ "transaction_read_only", "pgtether sets it from the rule" },
	{ "replication", "replication connections are not allowed through pgtether" },
	{ "session_preload_libraries", "it loads code into the server" },
	{ "local_preload_libraries", "it loads code into the server" },
	{ "client_encoding", "pgtether reads statements as UTF8 only" },
	{ "application_name", "pgtether names the session" },
};

static int cmp_name(const void *key, const void *elem)
{
	return strcasecmp(key, *(const char *const *)elem);
}

bool startopts_allowed(const char *name, char why[STARTOPTS_ERR])
{
	if (bsearch(name, passed, sizeof(passed) / sizeof(passed[0]), sizeof(passed[0]), cmp_name))
		return true;
	if (!strncasecmp(name, "pgtether.", 9)) {
		snprintf(why, STARTOPTS_ERR, "it is set by pgtether, not by the client");
		return false;
	}
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		if (!strcasecmp(name, refused[i].name)) {
			snprintf(why, STARTOPTS_ERR, "%s", refused[i].why);
			return false;
		}
	snprintf(why, STARTOPTS_ERR,
		 "pgtether passes at startup only settings that cannot change privilege or how it reads the session "
		 "(timeouts, search_path, client_min_messages, memory, planner and date/time settings); SET it after connecting");
	return false;
}

/* Whitespace between a list's names, as the server's scanner_isspace sees it. */
static bool list_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

/*
 * The names of search_path split as the server's SplitIdentifierString splits them
 * (a quoted name keeps its case, "" is a quote; an unquoted one is lowered in ASCII):
 * 1 when pg_catalog comes after a name other than pg_temp, 0 when not, -1 when the
 * server would refuse the list. Names longer than pg_catalog are never it, even cut
 * to NAMEDATALEN - 1.
 */
static int catalog_late(const char *p, char first_other[STARTOPTS_ERR / 4])
{
	bool other = false;

	while (list_space(*p))
		p++;
	if (!*p)
		return 0;
	for (;;) {
		char name[sizeof("pg_catalog")];
		size_t n = 0, len = 0;

		if (*p == '"') {
			for (p++;; p++) {
				if (!*p)
					return -1;
				if (*p == '"' && *++p != '"')
					break;
				if (n < sizeof(name) - 1)
					name[n++] = *p;
				len++;
			}
		} else {
			for (; *p && *p != ',' && !list_space(*p); p++, len++)
				if (n < sizeof(name) - 1)
					name[n++] = *p >= 'A' && *p <= 'Z' ? (char)(*p - 'A' + 'a') : *p;
			if (!len)
				return -1;
		}
		name[n] = '\0';
		if (len == n && !strcmp(name, "pg_catalog"))
			return other;
		if (len != n || strcmp(name, "pg_temp")) {
			if (!other)
				snprintf(first_other, STARTOPTS_ERR / 4, "%s%s", name, len != n ? "..." : "");
			other = true;
		}
		while (list_space(*p))
			p++;
		if (!*p)
			return 0;
		if (*p++ != ',')
			return -1;
		while (list_space(*p))
			p++;
	}
}

bool startopts_value_allowed(const char *name, const char *value, char why[STARTOPTS_ERR])
{
	char other[STARTOPTS_ERR / 4];
	int late;

	if (strcasecmp(name, "search_path"))
		return true;
	late = catalog_late(value, other);
	if (late < 0)
		snprintf(why, STARTOPTS_ERR, "pgtether cannot read it as a list of schema names");
	else if (late)
		snprintf(why, STARTOPTS_ERR,
			 "it lists pg_catalog after \"%s\", where a function or operator named like a built-in one "
			 "would be called instead of it; list pg_catalog first or leave it out", other);
	return late == 0;
}

/* Whitespace as the server's pg_split_opts sees it (isspace in the C locale). */
static bool opt_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* One "name=value" of -c or --: the name as the server looks it up ('-' → '_'). */
static int take_setting(char *arg, const char *sw, struct startopts_setting *out, char err[STARTOPTS_ERR])
{
	char *eq = strchr(arg, '=');

	if (!eq || eq == arg) {
		snprintf(err, STARTOPTS_ERR, "\"%s%s\" in \"options\" is not name=value", sw, arg);
		return -1;
	}
	*eq = '\0';
	for (char *p = arg; *p; p++)
		if (*p == '-')
			*p = '_';
	*out = (struct startopts_setting){ arg, eq + 1 };
	return 0;
}

int startopts_split(const char *options, char *buf, size_t cap, struct startopts_setting *out, size_t max,
		    char err[STARTOPTS_ERR])
{
	char *words[2 * STARTOPTS_MAX + 1];
	size_t n_words = 0, w = 0, pos = 0;
	int n = 0;

	if (strlen(options) + 1 > cap) {
		snprintf(err, STARTOPTS_ERR, "\"options\" is too long");
		return -1;
	}
	/* The server splits with isspace() in its own locale, where a byte above 0x7f
	 * may be a space (Latin-1's 0xa0): pgtether would see one setting where the
	 * server sees two. */
	for (const char *p = options; *p; p++)
		if ((unsigned char)*p > 0x7f) {
			snprintf(err, STARTOPTS_ERR,
				 "\"options\" holds a byte that is not ASCII; pass such a setting as its own startup parameter");
			return -1;
		}
	/* split: each word NUL-terminated in buf, backslash escapes kept out */
	for (const char *p = options;;) {
		while (opt_space(*p))
			p++;
		if (!*p)
			break;
		if (n_words == sizeof(words) / sizeof(words[0])) {
			snprintf(err, STARTOPTS_ERR, "\"options\" has more than %d settings", STARTOPTS_MAX);
			return -1;
		}
		words[n_words++] = buf + pos;
		for (; *p && !opt_space(*p); p++) {
			if (*p == '\\' && !*++p)
				break; /* a backslash at the end escapes nothing: dropped */
			buf[pos++] = *p;
		}
		buf[pos++] = '\0';
	}
	while (w < n_words) {
		char *word = words[w++];

		if ((size_t)n == max) {
			snprintf(err, STARTOPTS_ERR, "\"options\" has more than %zu settings", max);
			return -1;
		}
		if (!strncmp(word, "--", 2) && word[2]) {
			if (take_setting(word + 2, "--", &out[n], err) < 0)
				return -1;
		} else if (!strncmp(word, "-c", 2)) {
			char *arg = word[2] ? word + 2 : w < n_words ? words[w++] : NULL;

			if (!arg) {
				snprintf(err, STARTOPTS_ERR, "\"-c\" in \"options\" needs name=value");
				return -1;
			}
			if (take_setting(arg, "-c ", &out[n], err) < 0)
				return -1;
		} else {
			snprintf(err, STARTOPTS_ERR,
				 "the switch \"%s\" in \"options\" is not passed; only -c name=value and --name=value are", word);
			return -1;
		}
		n++;
	}
	return n;
}

/* The pairs of fwd (len bytes) into out (at most max), or -1 when it is not whole
 * NUL-terminated pairs or there are more. */
static int fwd_pairs(const char *fwd, size_t len, struct pgwire_param *out, size_t max)
{
	size_t n = 0;

	for (size_t at = 0; at < len;) {
		const char *k = fwd + at, *kend = memchr(k, '\0', len - at), *vend;

		if (!kend || n == max)
			return -1;
		at = (size_t)(kend - fwd) + 1;
		if (at >= len || !(vend = memchr(fwd + at, '\0', len - at)))
			return -1;
		out[n++] = (struct pgwire_param){ k, fwd + at };
		at = (size_t)(vend - fwd) + 1;
	}
	return (int)n;
}

bool startopts_fwd_allowed(const char *fwd, size_t len, char why[STARTOPTS_ERR])
{
	struct pgwire_param p[STARTOPTS_FWD_MAX];
	int n = fwd_pairs(fwd, len, p, STARTOPTS_FWD_MAX);

	if (n < 0) {
		snprintf(why, STARTOPTS_ERR, "not whole name=value pairs, or more than %d", STARTOPTS_FWD_MAX);
		return false;
	}
	for (int i = 0; i < n; i++) {
		if (!strcmp(p[i].name, "client_encoding")) {
			if (strcmp(p[i].value, "UTF8") == 0)
				continue;
			snprintf(why, STARTOPTS_ERR, "client_encoding is passed as UTF8 only");
			return false;
		}
		if (!startopts_allowed(p[i].name, why) || !startopts_value_allowed(p[i].name, p[i].value, why))
			return false;
	}
	return true;
}

size_t startopts_upstream_startup(uint8_t *out, size_t cap, const struct startopts_login *l)
{
	struct pgwire_param p[STARTOPTS_FWD_MAX + 5];
	char app[128], identity[1024];
	int n = fwd_pairs(l->fwd, l->fwd_len, p, STARTOPTS_FWD_MAX), k;

	if (n < 0)
		return 0;
	if (l->client_app[0])
		snprintf(app, sizeof(app), "pgtether:%s:%s", l->cgroup, l->client_app);
	else
		snprintf(app, sizeof(app), "pgtether:%s", l->cgroup);
	/* PostgreSQL cuts application_name to NAMEDATALEN-1 bytes with a NOTICE the
	 * client would see; cut it here instead, on a UTF-8 character boundary. */
	if (strlen(app) > 63) {
		size_t cut = 63;

		while (cut > 0 && ((uint8_t)app[cut] & 0xc0) == 0x80)
			cut--;
		app[cut] = '\0';
	}
	/* what the database sees as current_setting('pgtether.identity') */
	k = snprintf(identity, sizeof(identity), "cgroup=%s;uid=%u;gid=%u;pid=%u;exe=%s;comm=%.16s;rule=%s", l->cgroup,
		     l->uid, l->gid, l->pid, l->exe, l->comm, l->rule);
	if (l->token_iss[0] && k > 0 && (size_t)k < sizeof(identity))
		snprintf(identity + k, sizeof(identity) - (size_t)k, ";iss=%s;sub=%s", l->token_iss, l->token_sub);
	p[n++] = (struct pgwire_param){ "user", l->role };
	p[n++] = (struct pgwire_param){ "database", l->database };
	p[n++] = (struct pgwire_param){ "application_name", app };
	p[n++] = (struct pgwire_param){ "pgtether.identity", identity };
	/* The server refuses, in a read-only session, the writes pgtether cannot see:
	 * a function that writes, called from a SELECT; a DO block. */
	if (l->read_only)
		p[n++] = (struct pgwire_param){ "default_transaction_read_only", "on" };
	return pgwire_build_startup(out, cap, p, (size_t)n);
}
