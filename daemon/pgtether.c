/*
 * pgtether: the admin CLI. Everything but `run`'s own cgroup placement goes through
 * the daemon's control socket; the CLI never touches BPF objects itself, so there is
 * one writer of the pins.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pg_query.h>

#include "cgroup.h"
#include "config.h"
#include "control.h"
#include "escape.h"
#include "gate.h"
#include "issuers.h"
#include "maskset.h"
#include "policy.h"
#include "record.h"
#include "session.h"
#include "sqlclass.h"

#include <fnmatch.h>
#include <ftw.h>
#include <time.h>

static void usage(FILE *out)
{
	fprintf(out,
		"usage: pgtether [-c FILE | --socket PATH] COMMAND [ARGS]\n"
		"\n"
		"commands:\n"
		"  attach CGROUP                    intercept connections made in CGROUP\n"
		"  detach CGROUP                    stop intercepting CGROUP at once\n"
		"  status [--json]                  attached cgroups and live connections\n"
		"  run --cgroup CGROUP -- CMD ARGS  run CMD inside CGROUP (created if needed, attached)\n"
		"  reload                           apply changed configuration, rules and issuers now\n"
		"  approvals [--json]               statements held for approval\n"
		"  approve N | deny N [--reason T]  decide request N (not as the uid that asked)\n"
		"  check [DIR]                      check the policy files of DIR (default: policy_dir)\n"
		"  explain --cgroup CGROUP [--uid UID] [--exe PATH] [--issuer ISS] [--claims JSON]\n"
		"          [--database DB] [--upstream NAME] SQL\n"
		"                                   which rule decides, and the verdict per statement\n"
		"  sessions [--since DAY] [--cgroup GLOB] [--sub GLOB]   recorded sessions\n"
		"  verify ID... | --all             check recordings' hash chains\n"
		"  replay ID [--speed N]            print a recorded session as it happened\n"
		"\n"
		"CGROUP is a path below the cgroup2 mount, e.g. /ci/runner-1.\n"
		"The daemon is found through -c FILE (its control_socket), --socket PATH,\n"
		"or %s.\n",
		CONFIG_DEFAULT_PATH);
}

static int socket_path(const char *config_path, const char *sock, char *ret, size_t len)
{
	struct config cfg;
	char err[CONFIG_ERR_LEN];

	if (sock) {
		snprintf(ret, len, "%s", sock);
		return 0;
	}
	if (!config_path && access(CONFIG_DEFAULT_PATH, F_OK) == 0)
		config_path = CONFIG_DEFAULT_PATH;
	if (!config_path) {
		snprintf(ret, len, "/run/pgtether/control.sock");
		return 0;
	}
	if (config_load_file(config_path, &cfg, err) < 0) {
		fprintf(stderr, "pgtether: %s\n", err);
		return -EINVAL;
	}
	snprintf(ret, len, "%s", cfg.control_socket);
	config_release(&cfg);
	return 0;
}

/*
 * Workload text for the terminal: every string a workload could choose (statement,
 * parameters, names, paths, claims, errors) goes through escape_term, so no byte of
 * it can move the cursor, recolour, reorder or hide what an admin reads. A field K
 * with "K_escaped": true holds escape_bytes text (not UTF-8): its bytes are shown.
 * The strings live until tfree(); a CLI run prints a bounded number per line.
 */
static char **tpool;
static size_t ntpool, tcap;

static void tfree(void)
{
	for (size_t i = 0; i < ntpool; i++)
		free(tpool[i]);
	ntpool = 0;
}

/* s (len bytes) shown safely; "?" when out of memory. */
static const char *tn(const char *s, size_t len)
{
	char *e, **more;

	if (ntpool == tcap) {
		if (!(more = realloc(tpool, (tcap + 64) * sizeof(*more))))
			return "?";
		tpool = more;
		tcap += 64;
	}
	if (!(e = escape_term(s, len)))
		return "?";
	tpool[ntpool++] = e;
	return e;
}

static const char *tstr(const char *s)
{
	return s ? tn(s, strlen(s)) : "-";
}

/* A string of a JSON value, shown safely: escaped says it is escape_bytes text. */
static const char *tv(json_t *v, bool escaped)
{
	const char *s = json_string_value(v);
	char *raw;
	size_t n;
	const char *r;

	if (!s)
		return "-";
	if (!escaped || escape_unbytes(s, &raw, &n) < 0)
		return tstr(s);
	r = tn(raw, n);
	free(raw);
	return r;
}

/* o[k] shown safely ("-" when absent), honouring "k_escaped". */
static const char *tj(json_t *o, const char *k)
{
	char ek[64];

	snprintf(ek, sizeof(ek), "%s_escaped", k);
	return tv(json_object_get(o, k), json_is_true(json_object_get(o, ek)));
}

/* An array of values (parameters, a row) as ["a",null,"\\x00"]: strings shown
 * safely; the indices listed in `escaped` hold escape_bytes text. */
static void print_values(json_t *arr, json_t *escaped)
{
	json_t *v, *e;
	size_t i, k;

	putchar('[');
	json_array_foreach(arr, i, v) {
		bool esc = false;

		json_array_foreach(escaped, k, e)
			esc |= json_integer_value(e) == (json_int_t)i;
		if (i)
			putchar(',');
		if (json_is_string(v))
			printf("\"%s\"", tv(v, esc));
		else if (json_is_null(v))
			fputs("null", stdout);
		else {
			char *d = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_ENSURE_ASCII);

			fputs(d ? tstr(d) : "?", stdout);
			free(d);
		}
	}
	putchar(']');
}

/* Sends req (taking its reference); prints the error and returns NULL on failure. */
static json_t *call_req(const char *sock, json_t *req)
{
	const char *cmd = json_string_value(json_object_get(req, "cmd"));
	char err[CONTROL_ERR_LEN];
	json_t *rep = NULL;
	int r;

	r = control_call(sock, req, &rep, err);
	if (r < 0) {
		fprintf(stderr, "pgtether: %s\n", err);
		rep = NULL;
	} else if (!json_is_true(json_object_get(rep, "ok"))) {
		fprintf(stderr, "pgtether: %s: %s\n", cmd, tj(rep, "error"));
		tfree();
		json_decref(rep);
		rep = NULL;
	}
	json_decref(req); /* cmd points into it: released last */
	return rep;
}

/* Sends {"cmd":cmd[,"cgroup":cg]}. */
static json_t *call(const char *sock, const char *cmd, const char *cg)
{
	return call_req(sock, cg ? json_pack("{s:s, s:s}", "cmd", cmd, "cgroup", cg) : json_pack("{s:s}", "cmd", cmd));
}

static int cmd_approvals(const char *sock, int as_json)
{
	json_t *rep = call(sock, "approvals", NULL), *v, *p;
	size_t i, k;

	if (!rep)
		return 1;
	if (as_json) {
		/* ASCII: a bidi override or C1 control stays a \u escape on a terminal too */
		json_dumpf(json_object_get(rep, "requests"), stdout, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
		putchar('\n');
		json_decref(rep);
		return 0;
	}
	printf("requests (%zu):\n", json_array_size(json_object_get(rep, "requests")));
	json_array_foreach(json_object_get(rep, "requests"), i, v) {
		json_t *sub = json_object_get(v, "sub");

		printf("  request %lld: pid %lld uid %lld cgroup %s exe %s%s%s, rule '%s', waiting %lld of %lld s\n"
		       "    %s\n    %s\n",
		       json_integer_value(json_object_get(v, "request")), json_integer_value(json_object_get(v, "pid")),
		       json_integer_value(json_object_get(v, "uid")), tj(v, "cgroup"), tj(v, "exe"), sub ? " sub " : "",
		       sub ? tj(v, "sub") : "", tj(v, "rule"), json_integer_value(json_object_get(v, "waiting_s")),
		       json_integer_value(json_object_get(v, "timeout_s")), tj(v, "why"), tj(v, "sql"));
		if (json_object_get(v, "statement")) {
			/* one execution of a prepared statement: its text above, its values here */
			printf("    execution of prepared statement \"%s\" with parameters ", tj(v, "statement"));
			print_values(json_object_get(v, "params"), json_object_get(v, "params_escaped"));
			putchar('\n');
		}
		json_array_foreach(json_object_get(v, "prepared"), k, p) {
			printf("    EXECUTE %s runs%s: %s\n", tj(p, "name"),
			       json_is_true(json_object_get(p, "several")) ? " (the last of several prepared under that name)" : "",
			       tj(p, "sql"));
		}
		tfree();
	}
	json_decref(rep);
	return 0;
}

static int cmd_decide(const char *sock, const char *cmd, const char *id, const char *reason)
{
	char *end;
	unsigned long long n = strtoull(id, &end, 10);
	json_t *req, *rep;

	if (*end || n == 0) {
		fprintf(stderr, "pgtether: %s: '%s' is not a request number (see pgtether approvals)\n", cmd, id);
		return 2;
	}
	req = json_pack("{s:s, s:I}", "cmd", cmd, "request", (json_int_t)n);
	if (reason)
		json_object_set_new(req, "reason", json_string(reason));
	if (!(rep = call_req(sock, req)))
		return 1;
	json_decref(rep);
	printf("pgtether: request %llu %s\n", n, cmd[0] == 'a' ? "approved" : "denied");
	return 0;
}

static int cmd_attach(const char *sock, int attach, const char *cg)
{
	json_t *rep = call(sock, attach ? "attach" : "detach", cg);

	if (!rep)
		return 1;
	if (attach)
		printf(json_is_true(json_object_get(rep, "changed")) ? "attached %s\n" : "%s was attached already\n", cg);
	else
		printf("detached %s\n", cg);
	json_decref(rep);
	return 0;
}

static int cmd_status(const char *sock, int as_json)
{
	json_t *rep = call(sock, "status", NULL), *v;
	size_t i;

	if (!rep)
		return 1;
	json_object_del(rep, "ok");
	if (as_json) {
		json_dumpf(rep, stdout, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
		putchar('\n');
		json_decref(rep);
		return 0;
	}
	printf("listen     %s   fail_mode %s   pins %s\n",
	       json_string_value(json_object_get(rep, "listen")),
	       json_string_value(json_object_get(rep, "fail_mode")),
	       json_string_value(json_object_get(rep, "bpffs_dir")));
	printf("attached cgroups (%zu):\n", json_array_size(json_object_get(rep, "attached")));
	json_array_foreach(json_object_get(rep, "attached"), i, v) {
		printf("  %s\n", tj(v, "cgroup"));
		tfree();
	}
	printf("connections (%zu):\n", json_array_size(json_object_get(rep, "connections")));
	if (json_array_size(json_object_get(rep, "connections")))
		printf("  %-6s %-8s %-6s %-24s %-22s %-10s %-10s %-32s %-16s %s\n", "ID", "PID", "UID", "CGROUP",
		       "DST", "IN", "OUT", "EXE", "RULE", "SUB");
	json_array_foreach(json_object_get(rep, "connections"), i, v) {
		printf("  %-6lld %-8lld %-6lld %-24s %-22s %-10lld %-10lld %-32s %-16s %s\n",
		       json_integer_value(json_object_get(v, "id")),
		       json_integer_value(json_object_get(v, "pid")),
		       json_integer_value(json_object_get(v, "uid")),
		       tj(v, "cgroup"), tj(v, "dst"),
		       json_integer_value(json_object_get(v, "bytes_in")),
		       json_integer_value(json_object_get(v, "bytes_out")),
		       tj(v, "exe"), tj(v, "rule"), tj(v, "sub"));
		tfree();
	}
	json_decref(rep);
	return 0;
}

static int exec_cmd(char **argv)
{
	execvp(argv[0], argv);
	fprintf(stderr, "pgtether: run: cannot run '%s': %s\n", argv[0], strerror(errno));
	return errno == ENOENT ? 127 : 126;
}

/*
 * When systemd manages the tree and the cgroup is a scope in slices, systemd must
 * create it (it would otherwise treat the directory as foreign and may remove it):
 * re-run ourselves under `systemd-run --scope`, and inside the scope only attach and
 * exec (--in-scope).
 */
static int run_in_systemd_scope(const char *sock, const char *path, const char *slice,
				const char *unit, char **argv)
{
	char self[PATH_MAX], slice_arg[PATH_MAX + 16], unit_arg[PATH_MAX + 16];
	const char *fixed[] = { "systemd-run", "--scope", "--quiet", "--collect", slice_arg, unit_arg,
				"--", self, "--socket", sock, "run", "--cgroup", path, "--in-scope", "--" };
	size_t nfixed = sizeof(fixed) / sizeof(fixed[0]), n = 0;
	ssize_t len;
	char **args;

	len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (len < 0) {
		fprintf(stderr, "pgtether: run: cannot find my own executable: %s\n", strerror(errno));
		return 1;
	}
	self[len] = '\0';
	snprintf(slice_arg, sizeof(slice_arg), "--slice=%s", slice);
	snprintf(unit_arg, sizeof(unit_arg), "--unit=%s", unit);
	while (argv[n])
		n++;
	args = calloc(nfixed + n + 1, sizeof(*args));
	if (!args)
		return 1;
	memcpy(args, fixed, sizeof(fixed));
	memcpy(args + nfixed, argv, n * sizeof(*args));
	execvp(args[0], args);
	fprintf(stderr, "pgtether: run: cannot run systemd-run for scope %s: %s\n", unit, strerror(errno));
	free(args);
	return 1;
}

/* Like systemd-run --scope or cgexec: place ourselves, then exec, so CMD's exit
 * status and signals are ours without a supervising parent. */
static int cmd_run(const char *sock, const char *cg, int in_scope, char **argv)
{
	char mount[PATH_MAX], path[PATH_MAX], slice[PATH_MAX], unit[PATH_MAX], own[PATH_MAX];
	json_t *rep;
	int r;

	if (config_cgroup_path(cg, path, sizeof(path)) < 0 || strcmp(path, "/") == 0) {
		fprintf(stderr, "pgtether: run: invalid cgroup '%s': use an absolute path below the cgroup2 mount, e.g. /ci/job-1\n", cg);
		return 2;
	}
	if (in_scope) {
		FILE *f = fopen("/proc/self/cgroup", "re");
		char text[4096];
		size_t n = f ? fread(text, 1, sizeof(text) - 1, f) : 0;

		if (f)
			fclose(f);
		text[n] = '\0';
		if (cgroup_from_proc_text(text, own, sizeof(own)) < 0 || strcmp(own, path) != 0) {
			fprintf(stderr, "pgtether: run: expected to run in cgroup %s, but this process is in %s\n",
				path, own);
			return 1;
		}
	} else if (access("/run/systemd/system", F_OK) == 0 &&
		   cgroup_systemd_scope(path, slice, sizeof(slice), unit, sizeof(unit)) == 0) {
		return run_in_systemd_scope(sock, path, slice, unit, argv);
	} else {
		if ((r = cgroup_find_mount(mount, sizeof(mount))) < 0) {
			fprintf(stderr, "pgtether: run: no cgroup2 filesystem mounted\n");
			return 1;
		}
		if ((r = cgroup_create(mount, path)) < 0) {
			fprintf(stderr, "pgtether: run: cannot create cgroup %s%s: %s\n", mount, path, strerror(-r));
			return 1;
		}
	}
	/* Attached before CMD runs: its first connection is already intercepted. */
	rep = call(sock, "attach", path);
	if (!rep)
		return 1;
	json_decref(rep);
	if (!in_scope && (r = cgroup_enter(mount, path, getpid())) < 0) {
		fprintf(stderr, "pgtether: run: cannot enter cgroup %s: %s\n", path, strerror(-r));
		return 1;
	}
	return exec_cmd(argv);
}

static int cmd_reload(const char *sock)
{
	json_t *rep = call(sock, "reload", NULL);

	if (!rep)
		return 1;
	json_decref(rep);
	printf("pgtether: reloaded\n");
	return 0;
}

/* The configuration the policy commands read: -c FILE, the default file, or defaults. */
static int policy_config(const char *config_path, struct config *cfg)
{
	char err[CONFIG_ERR_LEN];

	if (!config_path && access(CONFIG_DEFAULT_PATH, F_OK) == 0)
		config_path = CONFIG_DEFAULT_PATH;
	if (config_path ? config_load_file(config_path, cfg, err) < 0 : config_parse("defaults", "{}", 2, cfg, err) < 0) {
		fprintf(stderr, "pgtether: %s\n", err);
		return -1;
	}
	return 0;
}

static void print_error(const char *err, void *arg)
{
	(*(int *)arg)++;
	printf("%s\n", err);
}

/* pgtether check [DIR]: every file's errors, then whether the rules fit the config. */
static int cmd_check(const char *config_path, const char *dir)
{
	char err[CONFIG_ERR_LEN];
	struct config cfg;
	struct policy p;
	int errors = 0, bad;

	if (policy_config(config_path, &cfg) < 0)
		return 1;
	if (!dir)
		dir = cfg.policy_dir;
	bad = policy_check_dir(dir, &p, print_error, &errors);
	cfg.policy = p;
	if (!bad) {
		/* what the rules name must exist: upstreams, roles with a credential, issuers */
		if (issuers_load_dir(cfg.issuers_dir, &cfg.issuers, err) < 0 || config_load_credentials(&cfg, err) < 0 ||
		    config_check_policy(&cfg, err) < 0)
			print_error(err, &errors);
	}
	if (errors)
		printf("pgtether: %s: %d error(s)\n", dir, errors);
	else
		printf("pgtether: %s: %zu rule(s), valid\n", dir, cfg.policy.n);
	config_release(&cfg);
	return errors ? 1 : 0;
}

/* pgtether explain: the rule for an identity, and the verdict on each statement. */
static int cmd_explain(const char *config_path, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "cgroup", required_argument, NULL, 'g' }, { "uid", required_argument, NULL, 'u' },
		{ "exe", required_argument, NULL, 'e' }, { "issuer", required_argument, NULL, 'i' },
		{ "claims", required_argument, NULL, 'l' }, { "database", required_argument, NULL, 'd' },
		{ "upstream", required_argument, NULL, 'p' }, { NULL, 0, NULL, 0 },
	};
	struct policy_facts f = { .database = "postgres" };
	const struct policy_rule *rule, *deny;
	char err[CONFIG_ERR_LEN];
	struct config cfg;
	json_error_t jerr;
	json_t *claims = NULL;
	int c, denied = 0;
	const char *sql;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'g': f.cgroup = optarg; break;
		case 'u': f.uid = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'e': f.exe = optarg; break;
		case 'i': f.issuer = optarg; break;
		case 'd': f.database = optarg; break;
		case 'p': f.upstream = optarg; break;
		case 'l':
			json_decref(claims);
			claims = json_loads(optarg, JSON_REJECT_DUPLICATES, &jerr);
			if (!json_is_object(claims)) {
				fprintf(stderr, "pgtether: explain: --claims must be a JSON object: %s\n", claims ? "not an object" : jerr.text);
				json_decref(claims);
				return 2;
			}
			break;
		default: return 2;
		}
	}
	if (!f.cgroup || optind != argc - 1) {
		fprintf(stderr, "usage: pgtether explain --cgroup CGROUP [--uid UID] [--exe PATH] [--issuer ISS] [--claims JSON] [--database DB] [--upstream NAME] SQL\n");
		json_decref(claims);
		return 2;
	}
	sql = argv[optind];
	f.claims = claims;
	if (policy_config(config_path, &cfg) < 0 || policy_load_dir(cfg.policy_dir, &cfg.policy, err) < 0) {
		if (err[0])
			fprintf(stderr, "pgtether: %s\n", err);
		json_decref(claims);
		return 1;
	}
	if (!f.upstream && cfg.n_upstreams == 1)
		f.upstream = cfg.upstreams[0].name;
	rule = policy_decide(&cfg.policy, &f, &deny);
	if (!rule) {
		if (deny)
			printf("connection: denied by rule '%s' (%s:%d)\n", deny->name, deny->file, deny->line);
		else
			printf("connection: no rule allows it (default deny)%s\n",
			       f.upstream ? "" : "; several upstreams: give --upstream");
		config_release(&cfg);
		json_decref(claims);
		return 1;
	}
	printf("connection: rule '%s' (%s:%d), upstream '%s', role '%s', token %s\n", rule->name, rule->file, rule->line,
	       rule->upstream, rule->role ? rule->role : "(the upstream's)",
	       rule->token == POLICY_TOKEN_PASSWORD ? "as password" : rule->token == POLICY_TOKEN_FILE ? rule->token_path : "none");
	for (size_t m = 0; m < rule->n_masks; m++)
		printf("mask: %s%s %s\n", rule->masks[m].column ? rule->masks[m].column : "columns named ",
		       rule->masks[m].column ? "" : rule->masks[m].column_name, mask_strategy_name(rule->masks[m].strategy));

	PgQuerySplitResult split = pg_query_split_with_parser(sql);
	int n = split.error ? 1 : split.n_stmts;

	/* a session's facts as far as they are known without one: nothing prepared, no
	 * masks resolved (the rule's own columns), no server to ask for the search_path */
	struct gate_facts gf = {
		.rule = rule,
		.rule_name = rule->name,
		.dangerous = policy_dangerous(&cfg.policy),
		.max_statement_bytes = cfg.max_statement_bytes,
		.max_shown = SESSION_MAX_SHOWN,
		.read_only = policy_read_only(rule),
	};

	for (int i = 0; i < n; i++) {
		char *one = split.error ? strdup(sql) : strndup(sql + split.stmts[i]->stmt_location, (size_t)split.stmts[i]->stmt_len);
		struct gate_result g;
		enum policy_verdict v;
		char names[256];

		if (!one)
			break;
		printf("statement %d: %s\n", i + 1, one + strspn(one, " \t\n"));
		v = gate_check(&gf, one, strlen(one), &g);
		if (g.c && !g.guard) {
			sqlclass_format(g.classes, names, sizeof(names));
			printf("  classes: %s\n", names[0] ? names : "(none)");
			for (size_t t = 0; t < g.c->n_tables; t++)
				printf("  table: %s\n", g.c->tables[t]);
		}
		printf("  verdict: %s%s%s%s\n", v == POLICY_ALLOW ? "allow" : v == POLICY_DENY ? "deny" : "approval",
		       g.guard ? " (whatever the rule allows)" : "", g.why[0] ? ": " : "", g.why);
		denied |= v != POLICY_ALLOW;
		if (v != POLICY_DENY && g.c && g.c->settings_row[0])
			printf("  in a session: it sets %s, and runs only as a Query's first statement once the server shows that pg_settings and = are pg_catalog's\n",
			       g.c->settings_row);
		gate_release(&g);
		free(one);
	}
	pg_query_free_split_result(split);
	config_release(&cfg);
	json_decref(claims);
	return denied;
}

/* ---- recordings ----------------------------------------------------------------- */

/* The file of recording id (YYYYmmddTHHMMSSZ-...) below dir, or id itself when it is a path. */
static void recording_path(const char *dir, const char *id, char *out, size_t cap)
{
	if (strchr(id, '/'))
		snprintf(out, cap, "%s", id);
	else
		snprintf(out, cap, "%s/%.4s/%.2s/%.2s/%s.jsonl", dir, id, id + 4, id + 6, id);
}

static char **found_paths;
static size_t n_found;

static int collect(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	size_t n = strlen(path);
	char **more;

	(void)st;
	(void)ftw;
	if (flag != FTW_F || n < 7 || strcmp(path + n - 6, ".jsonl") != 0)
		return 0;
	if (!(more = realloc(found_paths, (n_found + 1) * sizeof(*more))))
		return -1;
	found_paths = more;
	return (found_paths[n_found++] = strdup(path)) ? 0 : -1;
}

static int by_name(const void *a, const void *b)
{
	const char *x = strrchr(*(char *const *)a, '/'), *y = strrchr(*(char *const *)b, '/');

	return strcmp(x, y);
}

/* Every recording below dir, oldest first (names start with their UTC start time). */
static int list_recordings(const char *dir)
{
	n_found = 0;
	if (nftw(dir, collect, 16, FTW_PHYS) < 0 && errno != ENOENT) {
		fprintf(stderr, "pgtether: cannot read %s: %s\n", dir, strerror(errno));
		return -1;
	}
	if (n_found)
		qsort(found_paths, n_found, sizeof(*found_paths), by_name);
	return 0;
}

static void free_recordings(void)
{
	for (size_t i = 0; i < n_found; i++)
		free(found_paths[i]);
	free(found_paths);
	found_paths = NULL;
	n_found = 0;
}

static int verify_one(const char *path)
{
	struct record_check c;
	char err[RECORD_ERR_LEN];
	const char *id = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	int r = record_verify(path, &c, err);

	if (r == 0)
		printf("%.*s: ok, %llu records, %s\n", (int)(strlen(id) - 6), id, (unsigned long long)c.records,
		       c.sealed ? "sealed" : "unsealed (the session was cut off before its end)");
	else
		printf("%.*s: BROKEN: %s\n", (int)(strlen(id) > 6 ? strlen(id) - 6 : strlen(id)), id, err);
	json_decref(c.header);
	return r == 0 ? 0 : 1;
}

static int cmd_verify(const char *config_path, int argc, char **argv)
{
	struct config cfg;
	char path[PATH_MAX];
	int bad = 0;

	if (argc < 1) {
		fprintf(stderr, "usage: pgtether verify ID... | --all\n");
		return 2;
	}
	if (policy_config(config_path, &cfg) < 0)
		return 1;
	if (!cfg.sessions_dir) {
		fprintf(stderr, "pgtether: sessions are not recorded (sessions_dir is null)\n");
		config_release(&cfg);
		return 1;
	}
	if (argc == 1 && strcmp(argv[0], "--all") == 0) {
		if (list_recordings(cfg.sessions_dir) < 0) {
			config_release(&cfg);
			return 1;
		}
		for (size_t i = 0; i < n_found; i++)
			bad |= verify_one(found_paths[i]);
		if (!n_found)
			printf("no recordings in %s\n", cfg.sessions_dir);
		free_recordings();
	} else {
		for (int i = 0; i < argc; i++) {
			recording_path(cfg.sessions_dir, argv[i], path, sizeof(path));
			bad |= verify_one(path);
		}
	}
	config_release(&cfg);
	return bad;
}

static const char *jstr(json_t *o, const char *k)
{
	const char *v = json_string_value(json_object_get(o, k));

	return v ? v : "-";
}

static int cmd_sessions(const char *config_path, int argc, char **argv)
{
	const char *cg = NULL, *sub = NULL, *since = NULL;
	struct config cfg;

	for (int i = 0; i < argc; i++) {
		if (i + 1 < argc && strcmp(argv[i], "--cgroup") == 0)
			cg = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--sub") == 0)
			sub = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--since") == 0)
			since = argv[++i];
		else {
			fprintf(stderr, "usage: pgtether sessions [--since YYYY-MM-DD] [--cgroup GLOB] [--sub GLOB]\n");
			return 2;
		}
	}
	if (policy_config(config_path, &cfg) < 0)
		return 1;
	if (!cfg.sessions_dir || list_recordings(cfg.sessions_dir) < 0) {
		config_release(&cfg);
		return 1;
	}
	printf("%-34s %-20s %-8s %-28s %-16s %s\n", "ID", "STARTED (UTC)", "PID", "CGROUP", "RULE", "SUB");
	for (size_t i = 0; i < n_found; i++) {
		FILE *f = fopen(found_paths[i], "re");
		char *line = NULL, when[32], day[11];
		size_t cap = 0;
		json_t *h = NULL, *claims;
		time_t t;
		struct tm tm;

		if (f && getline(&line, &cap, f) > 0)
			h = json_loads(line, 0, NULL);
		free(line);
		if (f)
			fclose(f);
		if (!h)
			continue;
		t = (time_t)json_number_value(json_object_get(h, "ts"));
		gmtime_r(&t, &tm);
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
		strftime(day, sizeof(day), "%Y-%m-%d", &tm);
		claims = json_object_get(h, "claims");
		if ((!cg || fnmatch(cg, jstr(h, "cgroup"), 0) == 0) && (!since || strcmp(day, since) >= 0) &&
		    (!sub || fnmatch(sub, jstr(claims, "sub"), 0) == 0))
			printf("%-34s %-20s %-8lld %-28s %-16s %s\n", tj(h, "recording"), when,
			       json_integer_value(json_object_get(h, "pid")), tj(h, "cgroup"), tj(h, "rule"), tj(claims, "sub"));
		tfree();
		json_decref(h);
	}
	free_recordings();
	config_release(&cfg);
	return 0;
}

/* The session as it happened: each record, after the pause it had (scaled by speed; 0: none). */
static int cmd_replay(const char *config_path, int argc, char **argv)
{
	double speed = 1, last = 0;
	char path[PATH_MAX], *line = NULL;
	struct config cfg;
	struct record_check c;
	char err[RECORD_ERR_LEN];
	size_t cap = 0;
	FILE *f;

	if (argc == 3 && strcmp(argv[1], "--speed") == 0)
		speed = strtod(argv[2], NULL);
	else if (argc != 1) {
		fprintf(stderr, "usage: pgtether replay ID [--speed N] (0: no pauses)\n");
		return 2;
	}
	if (policy_config(config_path, &cfg) < 0)
		return 1;
	recording_path(cfg.sessions_dir ? cfg.sessions_dir : ".", argv[0], path, sizeof(path));
	config_release(&cfg);
	if (record_verify(path, &c, err) < 0) {
		/* replay what there is, but say first that it cannot be trusted */
		printf("WARNING: %s\n", err);
	}
	json_decref(c.header);
	if (!(f = fopen(path, "re"))) {
		fprintf(stderr, "pgtether: %s: %s\n", path, strerror(errno));
		return 1;
	}
	while (getline(&line, &cap, f) > 0) {
		json_t *r = json_loads(line, 0, NULL);
		double ts = json_number_value(json_object_get(r, "ts"));
		const char *type = jstr(r, "type");
		char when[32];
		time_t t = (time_t)ts;
		struct tm tm;

		if (!r)
			continue;
		if (speed > 0 && last > 0 && ts > last) {
			double pause = (ts - last) / speed;
			struct timespec d = { (time_t)pause, (long)((pause - (double)(time_t)pause) * 1e9) };

			nanosleep(&d, NULL);
		}
		last = ts;
		gmtime_r(&t, &tm);
		strftime(when, sizeof(when), "%H:%M:%S", &tm);
		if (!strcmp(type, "header"))
			printf("%s.%03d session %lld: pid %lld uid %lld exe %s cgroup %s rule %s sub %s upstream %s role %s"
			       " (client: comm %s user %s database %s application_name %s)\n", when,
			       (int)((ts - (double)t) * 1000), json_integer_value(json_object_get(r, "session")),
			       json_integer_value(json_object_get(r, "pid")), json_integer_value(json_object_get(r, "uid")),
			       tj(r, "exe"), tj(r, "cgroup"), tj(r, "rule"), tj(json_object_get(r, "claims"), "sub"),
			       tj(r, "upstream"), tj(r, "role"), tj(r, "comm"), tj(r, "client_user"), tj(r, "database"),
			       tj(r, "application_name"));
		else if (!strcmp(type, "statement"))
			printf("%s.%03d %s %s: %s%s%s%s%s%s\n", when, (int)((ts - (double)t) * 1000), tj(r, "verdict"),
			       tj(r, "message"), tj(r, "sql"), json_object_get(r, "classes") ? "  [" : "",
			       json_object_get(r, "classes") ? tj(r, "classes") : "", json_object_get(r, "classes") ? "]" : "",
			       json_object_get(r, "msg") ? "  -- " : "", json_object_get(r, "msg") ? tj(r, "msg") : "");
		else if (!strcmp(type, "result"))
			printf("%s.%03d   -> %s (%.1f ms)\n", when, (int)((ts - (double)t) * 1000), tj(r, "tag"),
			       json_number_value(json_object_get(r, "ms")));
		else if (!strcmp(type, "bind") || !strcmp(type, "row")) {
			printf("%s.%03d   %s ", when, (int)((ts - (double)t) * 1000), type[0] == 'b' ? "bind" : "row ");
			if (json_object_get(r, "bytes"))
				printf("(%lld bytes, not recorded)", json_integer_value(json_object_get(r, "bytes")));
			else
				print_values(json_object_get(r, type[0] == 'b' ? "params" : "values"), json_object_get(r, "escaped"));
			putchar('\n');
		}
		else if (!strcmp(type, "error") || !strcmp(type, "notice")) {
			printf("%s.%03d   -> %s %s: %s\n", when, (int)((ts - (double)t) * 1000), type[0] == 'e' ? "ERROR" : "NOTICE",
			       tj(r, "sqlstate"), tj(r, "msg"));
			if (json_object_get(r, "detail"))
				printf("             DETAIL: %s\n", tj(r, "detail"));
		}
		else if (!strcmp(type, "approval"))
			printf("%s.%03d approval of request %lld: %s by %s\n", when, (int)((ts - (double)t) * 1000),
			       json_integer_value(json_object_get(r, "request")), tj(r, "decision"), tj(r, "by"));
		else if (!strcmp(type, "seal")) {
			printf("%s.%03d end: %s (%lld bytes in, %lld out)\n", when, (int)((ts - (double)t) * 1000), tj(r, "reason"),
			       json_integer_value(json_object_get(r, "bytes_in")), json_integer_value(json_object_get(r, "bytes_out")));
			if (json_object_get(r, "msg"))
				printf("             %s\n", tj(r, "msg"));
		}
		tfree();
		json_decref(r);
	}
	free(line);
	fclose(f);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "socket", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config_path = NULL, *sock_opt = NULL, *cmd;
	char sock[PATH_MAX];
	int c;

	while ((c = getopt_long(argc, argv, "+c:s:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config_path = optarg; break;
		case 's': sock_opt = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	cmd = argv[optind++];
	/* the policy commands read files; they need no daemon */
	if (strcmp(cmd, "check") == 0) {
		if (argc - optind > 1) {
			fprintf(stderr, "usage: pgtether check [DIR]\n");
			return 2;
		}
		return cmd_check(config_path, optind < argc ? argv[optind] : NULL);
	}
	if (strcmp(cmd, "explain") == 0)
		return cmd_explain(config_path, argc - optind + 1, argv + optind - 1);
	if (strcmp(cmd, "verify") == 0)
		return cmd_verify(config_path, argc - optind, argv + optind);
	if (strcmp(cmd, "sessions") == 0)
		return cmd_sessions(config_path, argc - optind, argv + optind);
	if (strcmp(cmd, "replay") == 0)
		return cmd_replay(config_path, argc - optind, argv + optind);
	if (socket_path(config_path, sock_opt, sock, sizeof(sock)) < 0)
		return 1;
	if (strcmp(cmd, "approvals") == 0) {
		int as_json = argc - optind == 1 && strcmp(argv[optind], "--json") == 0;

		if (argc - optind > as_json) {
			fprintf(stderr, "usage: pgtether approvals [--json]\n");
			return 2;
		}
		return cmd_approvals(sock, as_json);
	}
	if (strcmp(cmd, "approve") == 0 && argc - optind == 1)
		return cmd_decide(sock, cmd, argv[optind], NULL);
	if (strcmp(cmd, "deny") == 0 && (argc - optind == 1 || (argc - optind == 3 && strcmp(argv[optind + 1], "--reason") == 0)))
		return cmd_decide(sock, cmd, argv[optind], argc - optind == 3 ? argv[optind + 2] : NULL);
	if (strcmp(cmd, "approve") == 0 || strcmp(cmd, "deny") == 0) {
		fprintf(stderr, "usage: pgtether approve N | pgtether deny N [--reason TEXT]\n");
		return 2;
	}
	if (strcmp(cmd, "reload") == 0) {
		if (argc != optind) {
			fprintf(stderr, "usage: pgtether reload\n");
			return 2;
		}
		return cmd_reload(sock);
	}

	if (strcmp(cmd, "attach") == 0 || strcmp(cmd, "detach") == 0) {
		if (argc - optind != 1) {
			fprintf(stderr, "usage: pgtether %s CGROUP\n", cmd);
			return 2;
		}
		return cmd_attach(sock, cmd[0] == 'a', argv[optind]);
	}
	if (strcmp(cmd, "status") == 0) {
		int as_json = argc - optind == 1 && strcmp(argv[optind], "--json") == 0;

		if (argc - optind > as_json) {
			fprintf(stderr, "usage: pgtether status [--json]\n");
			return 2;
		}
		return cmd_status(sock, as_json);
	}
	if (strcmp(cmd, "run") == 0) {
		const char *cg = NULL;
		int in_scope = 0;

		if (optind < argc && strcmp(argv[optind], "--cgroup") == 0 && optind + 1 < argc) {
			cg = argv[optind + 1];
			optind += 2;
		} else if (optind < argc && strncmp(argv[optind], "--cgroup=", 9) == 0) {
			cg = argv[optind] + 9;
			optind++;
		}
		/* internal: the second half of a systemd-run --scope placement */
		if (optind < argc && strcmp(argv[optind], "--in-scope") == 0) {
			in_scope = 1;
			optind++;
		}
		if (optind < argc && strcmp(argv[optind], "--") == 0)
			optind++;
		if (!cg || optind >= argc) {
			fprintf(stderr, "usage: pgtether run --cgroup CGROUP -- CMD [ARGS...]\n");
			return 2;
		}
		return cmd_run(sock, cg, in_scope, argv + optind);
	}
	fprintf(stderr, "pgtether: unknown command '%s'\n", cmd);
	usage(stderr);
	return 2;
}
