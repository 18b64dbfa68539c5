/*
 * pgtether.json: jansson with duplicate keys rejected, every unknown key rejected
 * with a did-you-mean, every error as file:line:col (positions from jsonpos, since
 * jansson only locates syntax errors). Validation is complete before anything is
 * returned: a config that loads is one the daemon can run.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/evp.h>

#include "cfgsrc.h"
#include "jsonpos.h"
#include "pgwire.h"

#define DEFAULT_LISTEN "127.0.0.1:6432"
#define DEFAULT_TARGET "*:5432"
#define DEFAULT_BPFFS_DIR "/sys/fs/bpf/pgtether"
#define DEFAULT_CONTROL_SOCKET "/run/pgtether/control.sock"
#define DEFAULT_SOCKET_MARK 0x70677465u /* "pgte" */
#define DEFAULT_LOGIN_TIMEOUT_S 30
#define DEFAULT_MASK_REFRESH_S 60
#define DEFAULT_MAX_STATEMENT (1u << 20)
/* Connections between accept and the relay, each holding two fds and 192 KiB: a
 * thousand is far above what a host's workloads start at the same moment, and far
 * below the unit's LimitNOFILE. One cgroup gets a quarter, so it takes three others
 * at their cap to fill the rest. */
#define DEFAULT_MAX_LOGINS 1024
#define DEFAULT_MAX_LOGINS_PER_CGROUP 256
/* What sessions may grow beyond their fixed buffers, together: long statements held
 * to be checked, rows held to be masked. Four of the largest rows (64 MiB each). */
#define DEFAULT_MEMORY_BUDGET (512ll << 20)

#define DEFAULT_CREDENTIALS_FILE "/etc/pgtether/credentials.json"
#define DEFAULT_POLICY_DIR "/etc/pgtether/policy.d"
#define DEFAULT_ISSUERS_DIR "/etc/pgtether/issuers.d"
#define DEFAULT_SESSIONS_DIR "/var/lib/pgtether/sessions"
#define DEFAULT_MASK_KEY_FILE "/etc/pgtether/mask.key"
#define DEFAULT_WORKER_USER "pgtether"

static const char *const known_keys[] = {
	"listen", "targets", "cgroups", "fail_mode", "bpffs_dir", "control_socket",
	"socket_mark", "upstreams", "credentials_file", "policy_dir", "issuers_dir", "max_message_bytes", "max_statement_bytes", "client_tls", "login_timeout", "sessions_dir",
	"recording_fail_mode", "recording_fsync", "mask_key_file", "mask_refresh", "approvers_group", "max_logins",
	"max_logins_per_cgroup", "memory_budget", "workers", "worker_user", NULL,
};

static const char *const upstream_keys[] = {
	"address", "aliases", "tls", "auth_methods", "ca_file", "role", NULL,
};


/* Edit distance, for "did you mean"; keys are short, so the O(n*m) table is fine. */
static size_t distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), row[64], prev, tmp;

	if (la >= 64 || lb >= 64)
		return 64;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		prev = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t best = prev + (a[i - 1] != b[j - 1]);

			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			tmp = row[j];
			row[j] = best;
			prev = tmp;
		}
	}
	return row[lb];
}

static const char *suggest(const char *key, const char *const *keys)
{
	const char *best = NULL;
	size_t best_d = 3; /* at most two edits away */

	for (const char *const *k = keys; *k; k++) {
		size_t d = distance(key, *k);

		if (d < best_d) {
			best_d = d;
			best = *k;
		}
	}
	return best;
}

static int unknown_key(struct jsonpos_src *p, const char *pointer, const char *key, const char *const *keys)
{
	if (suggest(key, keys))
		return jsonpos_fail(p, pointer, "unknown key '%s' (did you mean '%s'?)", key, suggest(key, keys));
	return jsonpos_fail(p, pointer, "unknown key '%s'", key);
}

/* Escapes a JSON object key for use in a JSON Pointer (RFC 6901). */
static void pointer_key(char *out, size_t len, const char *prefix, const char *key, const char *suffix)
{
	size_t o = (size_t)snprintf(out, len, "%s/", prefix);

	for (const char *k = key; *k && o + 3 < len; k++) {
		if (*k == '~' || *k == '/') {
			out[o++] = '~';
			out[o++] = *k == '~' ? '0' : '1';
		} else {
			out[o++] = *k;
		}
	}
	out[o < len ? o : len - 1] = '\0';
	if (suffix)
		snprintf(out + strlen(out), len - strlen(out), "%s", suffix);
}

static int get_string(struct jsonpos_src *p, json_t *root, const char *key, const char *def,
		      const char **ret)
{
	json_t *v = json_object_get(root, key);
	char pointer[64];

	if (!v) {
		*ret = def;
		return 0;
	}
	snprintf(pointer, sizeof(pointer), "/%s", key);
	if (!json_is_string(v))
		return jsonpos_fail(p, pointer, "'%s' must be a string", key);
	if (json_string_length(v) == 0 || strlen(json_string_value(v)) != json_string_length(v))
		return jsonpos_fail(p, pointer, "'%s' must be a non-empty string without NUL bytes", key);
	*ret = json_string_value(v);
	return 0;
}

static int check_abs_path(struct jsonpos_src *p, const char *key, const char *value)
{
	char pointer[64];

	snprintf(pointer, sizeof(pointer), "/%s", key);
	if (value[0] != '/')
		return jsonpos_fail(p, pointer, "'%s' must be an absolute path, got '%s'", key, value);
	if (strlen(value) >= 108 && strcmp(key, "control_socket") == 0)
		return jsonpos_fail(p, pointer, "'control_socket' is longer than a unix socket path may be (107 bytes)");
	return 0;
}

/*
 * approvers_group: the group (name, or number) whose members may list, approve and
 * deny held statements through the control socket, which then becomes theirs to
 * connect to (mode 0660). A name as useradd(8) accepts one: it goes to getgrnam.
 */
static int parse_approvers_group(struct jsonpos_src *p, json_t *root, struct config *c)
{
	json_t *v = json_object_get(root, "approvers_group");
	const char *g;
	size_t n;

	if (!v || json_is_null(v))
		return 0;
	g = json_string_value(v);
	n = g ? strlen(g) : 0;
	if (!g || n == 0 || n > 32 || n != json_string_length(v) || strspn(g, "abcdefghijklmnopqrstuvwxyz"
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != n || g[0] == '-')
		return jsonpos_fail(p, "/approvers_group", "'approvers_group' must be a group name or number (up to 32 of a-z, 0-9, '_', '.', '-'), e.g. \"pgtether-approvers\"");
	if (strspn(g, "0123456789") == n && strtoull(g, NULL, 10) == 0)
		return jsonpos_fail(p, "/approvers_group", "'approvers_group' must not be group 0 (root's group): root approves anyway, and members of group 0 would all become approvers");
	return (c->approvers_group = strdup(g)) ? 0 : -ENOMEM;
}

/*
 * workers: how many unprivileged processes serve sessions, 1 to CONFIG_MAX_WORKERS,
 * by default one per online CPU. worker_user: the system user they run as, a name or
 * number as useradd(8) accepts it; resolved by the daemon at start, since a worker
 * as root would undo the separation, root is refused here already.
 */
unsigned config_workers(const struct config *c)
{
	long cpus;

	if (c->workers)
		return c->workers;
	/* glibc reads /sys for it: the parent asks, never a sandboxed worker */
	cpus = sysconf(_SC_NPROCESSORS_ONLN);
	return cpus < 1 ? 1 : cpus > CONFIG_MAX_WORKERS ? CONFIG_MAX_WORKERS : (unsigned)cpus;
}

static int parse_workers(struct jsonpos_src *p, json_t *root, struct config *c)
{
	json_t *v = json_object_get(root, "workers"), *u = json_object_get(root, "worker_user");
	const char *g = DEFAULT_WORKER_USER;
	size_t n;

	if (v && (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > CONFIG_MAX_WORKERS))
		return jsonpos_fail(p, "/workers", "'workers' must be an integer from 1 to %d (default: the number of online CPUs)",
				    CONFIG_MAX_WORKERS);
	c->workers = v ? (unsigned)json_integer_value(v) : 0; /* 0: config_workers() counts the CPUs */
	if (u) {
		g = json_string_value(u);
		n = g ? strlen(g) : 0;
		if (!g || n == 0 || n > 32 || n != json_string_length(u) ||
		    strspn(g, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != n || g[0] == '-')
			return jsonpos_fail(p, "/worker_user", "'worker_user' must be a user name or number (up to 32 of a-z, 0-9, '_', '.', '-'), e.g. \"pgtether\"");
		if (strcmp(g, "root") == 0 || (strspn(g, "0123456789") == n && strtoull(g, NULL, 10) == 0))
			return jsonpos_fail(p, "/worker_user", "'worker_user' must not be root: workers parse what workloads send, and run unprivileged so that a flaw there is not root's");
	}
	return (c->worker_user = strdup(g)) ? 0 : -ENOMEM;
}

int config_cgroup_path(const char *in, char *ret, size_t len)
{
	size_t n = strlen(in);
	const char *seg;

	if (in[0] != '/' || n >= len)
		return -EINVAL;
	while (n > 1 && in[n - 1] == '/')
		n--;
	for (seg = in + 1; seg < in + n;) {
		const char *slash = memchr(seg, '/', (size_t)(in + n - seg));
		size_t sl = slash ? (size_t)(slash - seg) : (size_t)(in + n - seg);

		if (sl == 0 || (sl == 1 && seg[0] == '.') || (sl == 2 && seg[0] == '.' && seg[1] == '.'))
			return -EINVAL;
		if (memchr(seg, '\n', sl))
			return -EINVAL;
		seg += sl + 1;
	}
	memcpy(ret, in, n);
	ret[n] = '\0';
	return 0;
}

static int parse_targets(struct jsonpos_src *p, json_t *root, struct config *c)
{
	json_t *arr = json_object_get(root, "targets"), *v;
	char pointer[64], buf[ADDR_STRLEN];
	size_t i;

	if (!arr) {
		c->targets = calloc(1, sizeof(*c->targets));
		if (!c->targets)
			return -ENOMEM;
		addr_parse_target(DEFAULT_TARGET, &c->targets[0]);
		c->n_targets = 1;
		return 0;
	}
	if (!json_is_array(arr) || json_array_size(arr) == 0)
		return jsonpos_fail(p, "/targets", "'targets' must be a non-empty array of \"ADDRESS:PORT\" strings, e.g. [\"*:5432\"]");
	if (json_array_size(arr) > CONFIG_MAX_TARGETS)
		return jsonpos_fail(p, "/targets", "'targets' has %zu entries; at most %u are allowed",
			    json_array_size(arr), CONFIG_MAX_TARGETS);
	c->targets = calloc(json_array_size(arr), sizeof(*c->targets));
	if (!c->targets)
		return -ENOMEM;
	json_array_foreach(arr, i, v) {
		snprintf(pointer, sizeof(pointer), "/targets/%zu", i);
		if (!json_is_string(v))
			return jsonpos_fail(p, pointer, "a target must be a string like \"*:5432\" or \"127.0.0.2:5432\"");
		if (addr_parse_target(json_string_value(v), &c->targets[i]) < 0)
			return jsonpos_fail(p, pointer, "invalid target '%s' (expected \"*:PORT\", \"ADDR:PORT\", \"ADDR/PREFIX:PORT\" or \"[IPV6]:PORT\", address without host bits beyond the prefix)",
				    json_string_value(v));
		if (c->targets[i].port == c->listen.port &&
		    (c->targets[i].prefix == 0 || memcmp(c->targets[i].ip, c->listen.ip, 16) == 0))
			return jsonpos_fail(p, pointer, "target '%s' includes the listener %s itself: connections would loop",
				    json_string_value(v), addr_format(&c->listen, buf));
		c->n_targets++;
	}
	return 0;
}

static int parse_cgroups(struct jsonpos_src *p, json_t *root, struct config *c)
{
	json_t *arr = json_object_get(root, "cgroups"), *v;
	char pointer[64], norm[4096];
	size_t i;

	if (!arr)
		return 0;
	if (!json_is_array(arr))
		return jsonpos_fail(p, "/cgroups", "'cgroups' must be an array of paths below the cgroup2 mount, e.g. [\"/ci\"]");
	if (json_array_size(arr) > CONFIG_MAX_CGROUPS)
		return jsonpos_fail(p, "/cgroups", "'cgroups' has %zu entries; at most %u are allowed",
			    json_array_size(arr), CONFIG_MAX_CGROUPS);
	c->cgroups = calloc(json_array_size(arr) + 1, sizeof(*c->cgroups));
	if (!c->cgroups)
		return -ENOMEM;
	json_array_foreach(arr, i, v) {
		snprintf(pointer, sizeof(pointer), "/cgroups/%zu", i);
		if (!json_is_string(v) || config_cgroup_path(json_string_value(v), norm, sizeof(norm)) < 0)
			return jsonpos_fail(p, pointer, "a cgroup must be an absolute path below the cgroup2 mount like \"/ci\", without '.', '..' or empty parts");
		for (size_t j = 0; j < c->n_cgroups; j++)
			if (strcmp(c->cgroups[j], norm) == 0)
				return jsonpos_fail(p, pointer, "cgroup '%s' is listed twice", norm);
		c->cgroups[c->n_cgroups] = strdup(norm);
		if (!c->cgroups[c->n_cgroups])
			return -ENOMEM;
		c->n_cgroups++;
	}
	return 0;
}

static int parse_upstream(struct jsonpos_src *p, const char *name, json_t *obj, struct config_upstream *u)
{
	char ptr[512], sub[600];
	const char *key;
	json_t *v;
	size_t i;

	pointer_key(ptr, sizeof(ptr), "/upstreams", name, NULL);
	if (!json_is_object(obj))
		return jsonpos_fail(p, ptr, "upstream '%s' must be an object with \"address\", \"tls\" and \"role\"", name);
	if (strlen(name) > CONFIG_NAME_MAX || strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") != strlen(name))
		return jsonpos_fail(p, ptr, "upstream name '%s' must be 1 to %d letters, digits, '_', '-' or '.'", name, CONFIG_NAME_MAX);
	json_object_foreach(obj, key, v) {
		const char *const *k;

		if (strncmp(key, "//", 2) == 0)
			continue;
		for (k = upstream_keys; *k && strcmp(*k, key) != 0; k++)
			;
		if (!*k) {
			snprintf(sub, sizeof(sub), "%s/%s", ptr, key);
			return unknown_key(p, sub, key, upstream_keys);
		}
	}
	if (!(u->name = strdup(name)))
		return -ENOMEM;

	snprintf(sub, sizeof(sub), "%s/address", ptr);
	v = json_object_get(obj, "address");
	if (!v)
		return jsonpos_fail(p, ptr, "upstream '%s' needs \"address\": \"IP:PORT\"", name);
	if (!json_is_string(v))
		return jsonpos_fail(p, sub, "upstream '%s': address must be a string \"HOST:PORT\"", name);
	if (addr_parse(json_string_value(v), &u->address) < 0) {
		/* a host name: checked here, resolved by config_resolve() */
		const char *a = json_string_value(v), *colon = strrchr(a, ':');
		size_t hl = colon ? (size_t)(colon - a) : 0;
		char *end;
		unsigned long port = colon ? strtoul(colon + 1, &end, 10) : 0;

		if (!colon || hl == 0 || hl > 253 || !colon[1] || *end || port == 0 || port > 65535 ||
		    strspn(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") != hl)
			return jsonpos_fail(p, sub, "upstream '%s': address must be \"HOST:PORT\", \"IP:PORT\" or \"[IPV6]:PORT\", got '%s'", name, a);
		if (!(u->host = strndup(a, hl)))
			return -ENOMEM;
		u->named = true;
		u->address.port = (uint16_t)port;
	} else {
		char host[ADDR_STRLEN], *colon;

		addr_format(&u->address, host);
		colon = strrchr(host, ':');
		*colon = '\0';
		if (!(u->host = strdup(host[0] == '[' ? host + 1 : host)))
			return -ENOMEM;
		if (u->host[0] && u->host[strlen(u->host) - 1] == ']')
			u->host[strlen(u->host) - 1] = '\0';
	}

	v = json_object_get(obj, "aliases");
	if (v) {
		snprintf(sub, sizeof(sub), "%s/aliases", ptr);
		if (!json_is_array(v) || json_array_size(v) > CONFIG_MAX_ALIASES)
			return jsonpos_fail(p, sub, "upstream '%s': aliases must be an array of at most %d \"IP:PORT\" strings", name, CONFIG_MAX_ALIASES);
		u->aliases = calloc(json_array_size(v) + 1, sizeof(*u->aliases));
		if (!u->aliases)
			return -ENOMEM;
		for (i = 0; i < json_array_size(v); i++) {
			json_t *a = json_array_get(v, i);

			snprintf(sub, sizeof(sub), "%s/aliases/%zu", ptr, i);
			if (!json_is_string(a) || addr_parse(json_string_value(a), &u->aliases[i]) < 0)
				return jsonpos_fail(p, sub, "upstream '%s': an alias must be a literal \"IP:PORT\" or \"[IPV6]:PORT\"", name);
			u->n_aliases++;
		}
	}

	snprintf(sub, sizeof(sub), "%s/tls", ptr);
	v = json_object_get(obj, "tls");
	if (!v || !json_is_string(v))
		return jsonpos_fail(p, v ? sub : ptr, "upstream '%s' needs \"tls\": \"disable\", \"require\" or \"verify-full\"", name);
	if (strcmp(json_string_value(v), "disable") == 0)
		u->tls = CONFIG_TLS_DISABLE;
	else if (strcmp(json_string_value(v), "require") == 0)
		u->tls = CONFIG_TLS_REQUIRE;
	else if (strcmp(json_string_value(v), "verify-full") == 0)
		u->tls = CONFIG_TLS_VERIFY_FULL;
	else
		return jsonpos_fail(p, sub, "upstream '%s': tls must be \"disable\", \"require\" or \"verify-full\", got '%s'", name, json_string_value(v));

	u->auth_methods = CONFIG_AUTH_SCRAM;
	v = json_object_get(obj, "auth_methods");
	if (v) {
		snprintf(sub, sizeof(sub), "%s/auth_methods", ptr);
		if (!json_is_array(v) || json_array_size(v) == 0)
			return jsonpos_fail(p, sub, "upstream '%s': auth_methods must be a list of \"scram-sha-256\", \"md5\" and \"password\"", name);
		u->auth_methods = 0;
		for (i = 0; i < json_array_size(v); i++) {
			const char *meth = json_string_value(json_array_get(v, i));
			unsigned bit = 0;

			for (unsigned b = CONFIG_AUTH_SCRAM; b <= CONFIG_AUTH_PASSWORD && meth; b <<= 1)
				if (!strcmp(meth, config_auth_name(b)))
					bit = b;
			snprintf(sub, sizeof(sub), "%s/auth_methods/%zu", ptr, i);
			if (!bit)
				return jsonpos_fail(p, sub, "upstream '%s': auth_methods takes \"scram-sha-256\", \"md5\" and \"password\"", name);
			if (u->auth_methods & bit)
				return jsonpos_fail(p, sub, "upstream '%s': auth_methods lists \"%s\" twice", name, meth);
			u->auth_methods |= bit;
		}
		snprintf(sub, sizeof(sub), "%s/auth_methods", ptr);
		if ((u->auth_methods & CONFIG_AUTH_PASSWORD) && u->tls != CONFIG_TLS_VERIFY_FULL)
			return jsonpos_fail(p, sub, "upstream '%s': auth_methods lists \"password\", which pgtether sends only over tls \"verify-full\"", name);
	}

	v = json_object_get(obj, "ca_file");
	if (v) {
		snprintf(sub, sizeof(sub), "%s/ca_file", ptr);
		if (!json_is_string(v) || json_string_value(v)[0] != '/')
			return jsonpos_fail(p, sub, "upstream '%s': ca_file must be an absolute path", name);
		if (!(u->ca_file = strdup(json_string_value(v))))
			return -ENOMEM;
	}

	snprintf(sub, sizeof(sub), "%s/role", ptr);
	v = json_object_get(obj, "role");
	if (!v || !json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > CONFIG_NAME_MAX ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return jsonpos_fail(p, v ? sub : ptr, "upstream '%s' needs \"role\": the database role pgtetherd logs in as (1 to %d bytes)", name, CONFIG_NAME_MAX);
	if (!(u->role = strdup(json_string_value(v))))
		return -ENOMEM;

	return 0;
}

static int parse_upstreams(struct jsonpos_src *p, json_t *root, struct config *c)
{
	json_t *obj = json_object_get(root, "upstreams"), *v;
	char buf[ADDR_STRLEN], ptr[512];
	const char *name;
	int r;

	if (!obj)
		return 0;
	if (!json_is_object(obj))
		return jsonpos_fail(p, "/upstreams", "'upstreams' must be an object: name -> { \"address\", \"tls\", \"role\" }");
	if (json_object_size(obj) > CONFIG_MAX_UPSTREAMS)
		return jsonpos_fail(p, "/upstreams", "'upstreams' has %zu entries; at most %d are allowed", json_object_size(obj), CONFIG_MAX_UPSTREAMS);
	c->upstreams = calloc(json_object_size(obj) + 1, sizeof(*c->upstreams));
	if (!c->upstreams)
		return -ENOMEM;
	json_object_foreach(obj, name, v) {
		struct config_upstream *u = &c->upstreams[c->n_upstreams];

		if (strncmp(name, "//", 2) == 0)
			continue;
		c->n_upstreams++;
		if ((r = parse_upstream(p, name, v, u)) < 0)
			return r;
		/* the same address in two upstreams would make the choice arbitrary */
		for (size_t j = 0; j + 1 < c->n_upstreams; j++) {
			const struct addr *mine[CONFIG_MAX_ALIASES + 1];
			size_t n = 0;

			if (!u->named) /* a name's addresses are known only once resolved */
				mine[n++] = &u->address;
			for (size_t a = 0; a < u->n_aliases; a++)
				mine[n++] = &u->aliases[a];
			for (size_t m = 0; m < n; m++)
				if (config_upstream_for(&(struct config){ .upstreams = &c->upstreams[j], .n_upstreams = 1 }, mine[m])) {
					pointer_key(ptr, sizeof(ptr), "/upstreams", name, NULL);
					return jsonpos_fail(p, ptr, "upstream '%s' shares the address %s with upstream '%s'",
						    name, addr_format(mine[m], buf), c->upstreams[j].name);
				}
		}
	}
	return 0;
}

int config_resolve(struct config *c, char *err)
{
	for (size_t i = 0; i < c->n_upstreams; i++) {
		struct config_upstream *u = &c->upstreams[i];
		struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
		struct addrinfo *res, *ai;
		char port[8];
		size_t n = 0;
		int r;

		if (!u->named)
			continue; /* a literal address: nothing to resolve */
		snprintf(port, sizeof(port), "%u", u->address.port);
		r = getaddrinfo(u->host, port, &hints, &res);
		if (r != 0) {
			snprintf(err, CONFIG_ERR_LEN, "%s: upstream '%s': cannot resolve '%s': %s", c->path, u->name,
				 u->host, gai_strerror(r));
			return -EHOSTUNREACH;
		}
		for (ai = res; ai && n < CONFIG_MAX_RESOLVED; ai = ai->ai_next)
			n++;
		free(u->resolved);
		u->resolved = calloc(n, sizeof(*u->resolved));
		if (!u->resolved) {
			freeaddrinfo(res);
			return -ENOMEM;
		}
		u->n_resolved = 0;
		for (ai = res; ai && u->n_resolved < n; ai = ai->ai_next)
			if (addr_from_sockaddr(ai->ai_addr, &u->resolved[u->n_resolved]) == 0)
				u->n_resolved++;
		freeaddrinfo(res);
		if (u->n_resolved)
			u->address = u->resolved[0];
	}
	return 0;
}

struct config_upstream *config_upstream_for(const struct config *c, const struct addr *dst)
{
	for (size_t i = 0; i < c->n_upstreams; i++) {
		struct config_upstream *u = &c->upstreams[i];

		if (memcmp(&u->address, dst, sizeof(*dst)) == 0)
			return u;
		for (size_t a = 0; a < u->n_resolved; a++)
			if (memcmp(&u->resolved[a], dst, sizeof(*dst)) == 0)
				return u;
		for (size_t a = 0; a < u->n_aliases; a++)
			if (memcmp(&u->aliases[a], dst, sizeof(*dst)) == 0)
				return u;
	}
	return NULL;
}

size_t config_upstream_addrs(const struct config_upstream *u, const struct addr **ret)
{
	if (u->named && u->n_resolved) {
		*ret = u->resolved;
		return u->n_resolved;
	}
	*ret = &u->address;
	return 1;
}

static void release_roles(struct config_upstream *u)
{
	for (size_t i = 0; i < u->n_roles; i++) {
		struct config_role *cr = &u->roles[i];

		if (cr->password) {
			explicit_bzero(cr->password, strlen(cr->password));
			free(cr->password);
		}
		explicit_bzero(&cr->keycache, sizeof(cr->keycache));
		free(cr->name);
	}
	free(u->roles);
	u->roles = NULL;
	u->n_roles = 0;
}

struct config_role *config_role_for(const struct config_upstream *u, const char *name)
{
	for (size_t i = 0; i < u->n_roles; i++)
		if (strcmp(u->roles[i].name, name) == 0)
			return &u->roles[i];
	return NULL;
}

const char *config_auth_name(unsigned method)
{
	switch (method) {
	case CONFIG_AUTH_SCRAM: return "scram-sha-256";
	case CONFIG_AUTH_MD5: return "md5";
	case CONFIG_AUTH_PASSWORD: return "password";
	}
	return "?";
}

struct config_upstream *config_upstream_named(const struct config *c, const char *name)
{
	for (size_t i = 0; i < c->n_upstreams; i++)
		if (strcmp(c->upstreams[i].name, name) == 0)
			return &c->upstreams[i];
	return NULL;
}

bool config_upstream_allows(const struct config *c, const char *name, unsigned method)
{
	const struct config_upstream *u = config_upstream_named(c, name);

	return u && (u->auth_methods & method);
}

int config_check_policy(const struct config *c, char *err)
{
	for (size_t i = 0; i < c->policy.n; i++) {
		const struct policy_rule *r = &c->policy.rules[i];
		const struct config_upstream *u;
		bool known = false;

		if (r->deny)
			continue;
		u = config_upstream_named(c, r->upstream);
		if (!u) {
			snprintf(err, CONFIG_ERR_LEN, "%s:%d: rule '%s': no upstream '%s' in %s", r->file, r->line, r->name,
				 r->upstream, c->path);
			return -EINVAL;
		}
		if (!config_role_for(u, r->role ? r->role : u->role)) {
			snprintf(err, CONFIG_ERR_LEN, "%s:%d: rule '%s': no credential for role '%s' of upstream '%s' in %s",
				 r->file, r->line, r->name, r->role ? r->role : u->role, u->name, c->credentials_file);
			return -EINVAL;
		}
		for (size_t k = 0; r->issuer && k < c->issuers.n; k++)
			known |= strcmp(c->issuers.v[k].issuer, r->issuer) == 0;
		if (r->issuer && !known) {
			snprintf(err, CONFIG_ERR_LEN, "%s:%d: rule '%s': issuer '%s' is not trusted: no file in %s names it",
				 r->file, r->line, r->name, r->issuer, c->issuers_dir);
			return -EINVAL;
		}
	}
	return 0;
}

int config_parse_credentials(struct config *c, const char *name, const char *text, size_t len, char *err)
{
	struct jsonpos_src p = { name, text, len, err };
	json_error_t jerr;
	json_t *root, *roles, *pw;
	char ptr[512];
	const char *key;
	json_t *v;
	int r = 0;

	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		/* jansson's message quotes the text near the error: a password, here */
		snprintf(err, CONFIG_ERR_LEN, "%s:%d:%d: invalid JSON (details withheld: the file holds secrets)",
			 name, jerr.line, jerr.column);
		return -EINVAL;
	}
	if (!json_is_object(root)) {
		r = jsonpos_fail(&p, "", "credentials must be an object: upstream -> role -> password");
		goto out;
	}
	json_object_foreach(root, key, v) {
		if (strncmp(key, "//", 2) == 0)
			continue;
		pointer_key(ptr, sizeof(ptr), "", key, NULL);
		if (!json_is_object(v)) {
			r = jsonpos_fail(&p, ptr, "'%s' must be an object: role -> password", key);
			goto out;
		}
	}
	for (size_t i = 0; i < c->n_upstreams; i++) {
		struct config_upstream *u = &c->upstreams[i];
		const char *role;

		roles = json_object_get(root, u->name);
		pointer_key(ptr, sizeof(ptr), "", u->name, NULL);
		if (!roles || !json_object_get(roles, u->role)) {
			r = jsonpos_fail(&p, roles ? ptr : "", "no password for role '%s' of upstream '%s'", u->role, u->name);
			goto out;
		}
		release_roles(u);
		if (json_object_size(roles) > CONFIG_MAX_ROLES) {
			r = jsonpos_fail(&p, ptr, "more than %d roles for upstream '%s'", CONFIG_MAX_ROLES, u->name);
			goto out;
		}
		u->roles = calloc(json_object_size(roles), sizeof(*u->roles));
		if (!u->roles) {
			r = -ENOMEM;
			goto out;
		}
		json_object_foreach(roles, role, pw) {
			struct config_role *cr;

			if (strncmp(role, "//", 2) == 0)
				continue;
			pointer_key(ptr, sizeof(ptr), "", u->name, NULL);
			pointer_key(ptr + strlen(ptr), sizeof(ptr) - strlen(ptr), "", role, NULL);
			if (strlen(role) == 0 || strlen(role) > CONFIG_NAME_MAX) {
				r = jsonpos_fail(&p, ptr, "role names of upstream '%s' must be 1 to %d bytes", u->name, CONFIG_NAME_MAX);
				goto out;
			}
			if (!json_is_string(pw) || json_string_length(pw) == 0 ||
			    strlen(json_string_value(pw)) != json_string_length(pw)) {
				r = jsonpos_fail(&p, ptr, "the password of role '%s' of upstream '%s' must be a non-empty string", role, u->name);
				goto out;
			}
			cr = &u->roles[u->n_roles++];
			if (!(cr->name = strdup(role)) || !(cr->password = strdup(json_string_value(pw)))) {
				r = -ENOMEM;
				goto out;
			}
		}
	}
out:
	/* jansson keeps its copies of the strings until decref; they are not wiped, a
	 * limit of the library that is noted in config.h's neighbour, the README */
	json_decref(root);
	return r;
}

/* An absolute path under key (or the default), copied into *ret. */
static int path_key(struct jsonpos_src *p, json_t *root, const char *key, const char *def, char **ret)
{
	const char *s;
	int r;

	if ((r = get_string(p, root, key, def, &s)) < 0 || (r = check_abs_path(p, key, s)) < 0)
		return r;
	*ret = strdup(s);
	return *ret ? 0 : -ENOMEM;
}

/* An integer key of the root object, lo to hi, or dflt when absent; what says what
 * it is in the error ("an integer", "a number of seconds"). 0, or the error's -EINVAL. */
static int int_key(struct jsonpos_src *p, json_t *root, const char *key, const char *what, json_int_t lo,
		   json_int_t hi, json_int_t dflt, json_int_t *out)
{
	json_t *v = json_object_get(root, key);
	char pointer[64];

	*out = dflt;
	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
		snprintf(pointer, sizeof(pointer), "/%s", key);
		return jsonpos_fail(p, pointer, "'%s' must be %s from %lld to %lld", key, what, (long long)lo,
				    (long long)hi);
	}
	*out = json_integer_value(v);
	return 0;
}

static int parse_root(struct jsonpos_src *p, json_t *root, struct config *c)
{
	const char *key, *s;
	json_t *v;
	json_int_t n;
	int r;

	if (!json_is_object(root))
		return jsonpos_fail(p, "", "the configuration must be a JSON object");
	json_object_foreach(root, key, v) {
		const char *const *k;
		char pointer[300];

		if (strncmp(key, "//", 2) == 0) /* a comment: "//listen": "why this port" */
			continue;
		for (k = known_keys; *k && strcmp(*k, key) != 0; k++)
			;
		if (*k)
			continue;
		snprintf(pointer, sizeof(pointer), "/%s", key);
		return unknown_key(p, pointer, key, known_keys);
	}

	if ((r = get_string(p, root, "listen", DEFAULT_LISTEN, &s)) < 0)
		return r;
	if (addr_parse(s, &c->listen) < 0)
		return jsonpos_fail(p, "/listen", "invalid listen address '%s' (expected \"IPV4:PORT\", e.g. \"127.0.0.1:6432\")", s);
	if (!addr_is_v4(c->listen.ip))
		return jsonpos_fail(p, "/listen", "listen address '%s' must be IPv4: the redirect reaches it from IPv6 sockets as ::ffff:%s", s, "a.b.c.d");
	if ((r = parse_targets(p, root, c)) < 0 || (r = parse_cgroups(p, root, c)) < 0)
		return r;

	if ((r = get_string(p, root, "fail_mode", "closed", &s)) < 0)
		return r;
	if (strcmp(s, "closed") == 0)
		c->fail_mode = CONFIG_FAIL_CLOSED;
	else if (strcmp(s, "open") == 0)
		c->fail_mode = CONFIG_FAIL_OPEN;
	else
		return jsonpos_fail(p, "/fail_mode", "'fail_mode' must be \"closed\" or \"open\", got '%s'", s);

	if ((r = path_key(p, root, "bpffs_dir", DEFAULT_BPFFS_DIR, &c->bpffs_dir)) < 0 ||
	    (r = path_key(p, root, "control_socket", DEFAULT_CONTROL_SOCKET, &c->control_socket)) < 0 ||
	    (r = path_key(p, root, "credentials_file", DEFAULT_CREDENTIALS_FILE, &c->credentials_file)) < 0 ||
	    (r = path_key(p, root, "policy_dir", DEFAULT_POLICY_DIR, &c->policy_dir)) < 0 ||
	    (r = path_key(p, root, "issuers_dir", DEFAULT_ISSUERS_DIR, &c->issuers_dir)) < 0 ||
	    (r = path_key(p, root, "mask_key_file", DEFAULT_MASK_KEY_FILE, &c->mask_key_file)) < 0)
		return r;
	v = json_object_get(root, "sessions_dir");
	if (!json_is_null(v) && (r = path_key(p, root, "sessions_dir", DEFAULT_SESSIONS_DIR, &c->sessions_dir)) < 0)
		return r; /* null: sessions are not recorded */
	v = json_object_get(root, "recording_fail_mode");
	if (v && (!json_is_string(v) || (strcmp(json_string_value(v), "closed") && strcmp(json_string_value(v), "open"))))
		return jsonpos_fail(p, "/recording_fail_mode", "'recording_fail_mode' must be \"closed\" (refuse what cannot be recorded) or \"open\"");
	c->recording_fail_open = v && strcmp(json_string_value(v), "open") == 0;
	v = json_object_get(root, "recording_fsync");
	if (v && !json_is_boolean(v))
		return jsonpos_fail(p, "/recording_fsync", "'recording_fsync' must be true or false");
	c->recording_fsync = json_is_true(v);
	if ((r = parse_upstreams(p, root, c)) < 0)
		return r;
	if ((r = parse_approvers_group(p, root, c)) < 0 || (r = parse_workers(p, root, c)) < 0)
		return r;

	v = json_object_get(root, "client_tls");
	if (v) {
		json_t *cert = json_object_get(v, "cert"), *keyfile = json_object_get(v, "key");
		const char *k;
		json_t *x;

		if (!json_is_object(v) || !json_is_string(cert) || !json_is_string(keyfile) ||
		    json_string_value(cert)[0] != '/' || json_string_value(keyfile)[0] != '/')
			return jsonpos_fail(p, "/client_tls", "'client_tls' must be { \"cert\": \"/path/cert.pem\", \"key\": \"/path/key.pem\" } with absolute paths");
		json_object_foreach(v, k, x) {
			if (strcmp(k, "cert") && strcmp(k, "key") && strncmp(k, "//", 2)) {
				char ptr[300];

				pointer_key(ptr, sizeof(ptr), "/client_tls", k, NULL);
				return unknown_key(p, ptr, k, (const char *const[]){ "cert", "key", NULL });
			}
		}
		if (!(c->client_tls_cert = strdup(json_string_value(cert))) ||
		    !(c->client_tls_key = strdup(json_string_value(keyfile))))
			return -ENOMEM;
	}

	if ((r = int_key(p, root, "max_message_bytes", "an integer", 65536, PGWIRE_DEFAULT_MAX_MESSAGE,
			 PGWIRE_DEFAULT_MAX_MESSAGE, &n)) < 0)
		return r;
	c->max_message_bytes = (uint32_t)n;
	if ((r = int_key(p, root, "max_statement_bytes", "an integer", 1024, 64 << 20, DEFAULT_MAX_STATEMENT, &n)) < 0)
		return r;
	c->max_statement_bytes = (uint32_t)n;
	if ((r = int_key(p, root, "login_timeout", "a number of seconds", 1, 600, DEFAULT_LOGIN_TIMEOUT_S, &n)) < 0)
		return r;
	c->login_timeout = (unsigned)n;
	if ((r = int_key(p, root, "mask_refresh", "a number of seconds", 1, 3600, DEFAULT_MASK_REFRESH_S, &n)) < 0)
		return r;
	c->mask_refresh = (unsigned)n;
	if ((r = int_key(p, root, "socket_mark", "an integer", 1, 0xffffffffLL, DEFAULT_SOCKET_MARK, &n)) < 0)
		return r;
	c->socket_mark = (uint32_t)n;
	if ((r = int_key(p, root, "max_logins", "an integer", 1, 65536, DEFAULT_MAX_LOGINS, &n)) < 0)
		return r;
	c->max_logins = (unsigned)n;
	if ((r = int_key(p, root, "max_logins_per_cgroup", "an integer", 1, 65536,
			 n < DEFAULT_MAX_LOGINS_PER_CGROUP ? n : DEFAULT_MAX_LOGINS_PER_CGROUP, &n)) < 0)
		return r;
	if (n > (json_int_t)c->max_logins)
		/* it could never be reached: max_logins refuses first, for every cgroup */
		return jsonpos_fail(p, "/max_logins_per_cgroup", "'max_logins_per_cgroup' (%lld) must not exceed 'max_logins' (%u)",
				    (long long)n, c->max_logins);
	c->max_logins_per_cgroup = (unsigned)n;
	if ((r = int_key(p, root, "memory_budget", "a number of bytes", 1 << 20, 1ll << 40, DEFAULT_MEMORY_BUDGET, &n)) < 0)
		return r;
	c->memory_budget = (size_t)n;
	return 0;
}

int config_parse(const char *name, const char *text, size_t len, struct config *ret, char *err)
{
	struct jsonpos_src p = { name, text, len, err };
	struct config c;
	json_error_t jerr;
	json_t *root;
	int r;

	memset(&c, 0, sizeof(c));
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		snprintf(err, CONFIG_ERR_LEN, "%s:%d:%d: %s", name, jerr.line, jerr.column, jerr.text);
		return -EINVAL;
	}
	r = parse_root(&p, root, &c);
	json_decref(root);
	if (r == 0 && !(c.path = strdup(name)))
		r = -ENOMEM;
	if (r < 0) {
		if (r == -ENOMEM)
			snprintf(err, CONFIG_ERR_LEN, "%s: out of memory", name);
		config_release(&c);
		return r;
	}
	*ret = c;
	return 0;
}

/* Reads a whole regular file of at most CONFIG_MAX_BYTES; NUL-terminates it. */
static int read_file(struct cfgsrc *src, const char *path, bool secret, char **ret, size_t *ret_len, struct stat *st,
		     char *err)
{
	return cfgsrc_read(src, path, CONFIG_MAX_BYTES, secret, ret, ret_len, st, err, CONFIG_ERR_LEN);
}

static int load_credentials(struct config *c, struct cfgsrc *src, char *err)
{
	uid_t euid = cfgsrc_euid(src);
	struct stat st;
	size_t len;
	char *text;
	int r;

	if (c->n_upstreams == 0)
		return 0;
	/* The held credentials: root's alone, or they are not held at all. Secret: a
	 * recording source keeps their stat, never their bytes. */
	if ((r = read_file(src, c->credentials_file, true, &text, &len, &st, err)) < 0)
		return r;
	if (st.st_uid != euid || (st.st_mode & 077)) {
		snprintf(err, CONFIG_ERR_LEN, "%s: credentials must be owned by uid %u and readable by nobody else (mode %04o); run: chown %u %s && chmod 0600 %s",
			 c->credentials_file, (unsigned)euid, (unsigned)(st.st_mode & 07777),
			 (unsigned)euid, c->credentials_file, c->credentials_file);
		r = -EPERM;
	} else {
		r = config_parse_credentials(c, c->credentials_file, text, len, err);
	}
	explicit_bzero(text, len);
	free(text);
	return r;
}

int config_load_credentials(struct config *c, char *err)
{
	return load_credentials(c, NULL, err);
}

/* Adds role name to u (without a password) unless u holds it already. */
static int add_worker_role(struct config_upstream *u, const char *name, char *err)
{
	struct config_role *more;

	if (config_role_for(u, name))
		return 0;
	if (u->n_roles >= CONFIG_MAX_ROLES) {
		snprintf(err, CONFIG_ERR_LEN, "upstream '%s': more than %d roles", u->name, CONFIG_MAX_ROLES);
		return -EINVAL;
	}
	more = realloc(u->roles, (u->n_roles + 1) * sizeof(*more));
	if (!more)
		return -ENOMEM;
	u->roles = more;
	memset(&u->roles[u->n_roles], 0, sizeof(*u->roles));
	if (!(u->roles[u->n_roles].name = strdup(name)))
		return -ENOMEM;
	u->n_roles++;
	return 0;
}

/*
 * A worker's roles: the names of those a session can log in as (each upstream's
 * own, and every role an allow rule grants), with no password. The parent checked
 * the same rules against credentials_file; the worker never sees it.
 */
static int worker_roles(struct config *c, char *err)
{
	int r;

	for (size_t i = 0; i < c->n_upstreams; i++)
		if ((r = add_worker_role(&c->upstreams[i], c->upstreams[i].role, err)) < 0)
			return r;
	for (size_t i = 0; i < c->policy.n; i++) {
		const struct policy_rule *rule = &c->policy.rules[i];
		struct config_upstream *u;

		if (rule->deny || !rule->role || !(u = config_upstream_named(c, rule->upstream)))
			continue; /* config_check_policy reports a missing upstream */
		if ((r = add_worker_role(u, rule->role, err)) < 0)
			return r;
	}
	return 0;
}

static int load_mask_key(struct config *c, struct cfgsrc *src, char *err)
{
	uid_t euid = cfgsrc_euid(src);
	struct stat st;
	size_t len;
	char *text;
	unsigned int n = 0;
	int r;

	if (!policy_uses_hash(&c->policy))
		return 0;
	if ((r = read_file(src, c->mask_key_file, false, &text, &len, &st, err)) < 0) {
		size_t k = strlen(err);

		snprintf(err + k, CONFIG_ERR_LEN - k, " (a rule masks with \"hash\"; make a key with: head -c 32 /dev/urandom > %s && chmod 0600 %s)",
			 c->mask_key_file, c->mask_key_file);
		return r;
	}
	if (st.st_uid != euid || (st.st_mode & 077)) {
		snprintf(err, CONFIG_ERR_LEN, "%s: the mask key must be owned by uid %u and readable by nobody else (mode %04o); run: chmod 0600 %s",
			 c->mask_key_file, (unsigned)euid, (unsigned)(st.st_mode & 07777), c->mask_key_file);
		r = -EPERM;
	} else if (len < 32) {
		snprintf(err, CONFIG_ERR_LEN, "%s: the mask key has %zu bytes; it needs at least 32 (head -c 32 /dev/urandom)",
			 c->mask_key_file, len);
		r = -EINVAL;
	} else if (!EVP_Digest(text, len, c->mask_key, &n, EVP_sha256(), NULL) || n != MASK_KEY_LEN) {
		snprintf(err, CONFIG_ERR_LEN, "%s: cannot derive the mask key", c->mask_key_file);
		r = -EIO;
	} else if (!(c->mask_hmac = mask_hmac_new(c->mask_key))) {
		snprintf(err, CONFIG_ERR_LEN, "%s: cannot set up HMAC-SHA-256 with the mask key", c->mask_key_file);
		r = -EIO;
	} else {
		c->have_mask_key = true;
	}
	explicit_bzero(text, len);
	free(text);
	return r;
}

int config_load_mask_key(struct config *c, char *err)
{
	return load_mask_key(c, NULL, err);
}

static int load_file(const char *path, struct cfgsrc *src, struct config *ret, char *err)
{
	struct stat st;
	size_t len;
	char *text;
	int r;

	if ((r = read_file(src, path, false, &text, &len, &st, err)) < 0)
		return r;
	r = config_parse(path, text, len, ret, err);
	free(text);
	return r;
}

int config_load_file(const char *path, struct config *ret, char *err)
{
	return load_file(path, NULL, ret, err);
}

int config_load_src(const char *path, struct cfgsrc *src, unsigned flags, struct config *ret, char *err)
{
	bool worker = flags & CONFIG_LOAD_WORKER;
	struct config c;
	int r;

	if (flags & ~CONFIG_LOAD_WORKER) {
		snprintf(err, CONFIG_ERR_LEN, "%s: unknown load flags %#x", path, flags);
		return -EINVAL;
	}
	if ((r = load_file(path, src, &c, err)) < 0)
		return r;
	/* a worker resolves nothing: the parent sends the addresses of each connection */
	if (!worker && (r = config_resolve(&c, err)) < 0)
		goto fail;
	/* Issuers and rules are part of the snapshot: a reload swaps all or nothing. */
	if ((r = issuers_load_dir_src(c.issuers_dir, src, &c.issuers, err)) < 0 ||
	    (r = policy_load_dir_src(c.policy_dir, src, &c.policy, err)) < 0)
		goto fail;
	if ((r = worker ? worker_roles(&c, err) : load_credentials(&c, src, err)) < 0 ||
	    (r = load_mask_key(&c, src, err)) < 0)
		goto fail;
	if ((r = config_check_policy(&c, err)) < 0)
		goto fail;
	*ret = c;
	return 0;
fail:
	config_release(&c);
	return r;
}

int config_load(const char *path, struct config *ret, char *err)
{
	return config_load_src(path, NULL, 0, ret, err);
}

void config_release(struct config *c)
{
	if (c->cgroups)
		for (size_t i = 0; i < c->n_cgroups; i++)
			free(c->cgroups[i]);
	free(c->cgroups);
	free(c->targets);
	free(c->bpffs_dir);
	free(c->control_socket);
	free(c->approvers_group);
	free(c->worker_user);
	free(c->credentials_file);
	free(c->policy_dir);
	free(c->issuers_dir);
	free(c->sessions_dir);
	free(c->mask_key_file);
	OPENSSL_cleanse(c->mask_key, sizeof(c->mask_key));
	mask_hmac_free(c->mask_hmac);
	policy_release(&c->policy);
	issuers_release(&c->issuers);
	free(c->client_tls_cert);
	free(c->client_tls_key);
	for (size_t i = 0; c->upstreams && i < c->n_upstreams; i++) {
		struct config_upstream *u = &c->upstreams[i];

		release_roles(u);
		free(u->name);
		free(u->host);
		free(u->resolved);
		free(u->aliases);
		free(u->ca_file);
		free(u->role);
	}
	free(c->upstreams);
	free(c->path);
	memset(c, 0, sizeof(*c));
}
