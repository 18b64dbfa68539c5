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
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jsonpos.h"

#define DEFAULT_LISTEN "127.0.0.1:6432"
#define DEFAULT_TARGET "*:5432"
#define DEFAULT_BPFFS_DIR "/sys/fs/bpf/pgtether"
#define DEFAULT_CONTROL_SOCKET "/run/pgtether/control.sock"
#define DEFAULT_SOCKET_MARK 0x70677465u /* "pgte" */

static const char *const known_keys[] = {
	"listen", "targets", "cgroups", "fail_mode", "bpffs_dir", "control_socket",
	"socket_mark", NULL,
};

struct parse {
	const char *name;
	const char *text;
	size_t len;
	char *err;
};

static int fail(struct parse *p, const char *pointer, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct parse *p, const char *pointer, const char *fmt, ...)
{
	char msg[CONFIG_ERR_LEN];
	int line, col;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	jsonpos_find(p->text, p->len, pointer, &line, &col);
	snprintf(p->err, CONFIG_ERR_LEN, "%s:%d:%d: %s", p->name, line, col, msg);
	return -EINVAL;
}

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

static const char *suggest(const char *key)
{
	const char *best = NULL;
	size_t best_d = 3; /* at most two edits away */

	for (const char *const *k = known_keys; *k; k++) {
		size_t d = distance(key, *k);

		if (d < best_d) {
			best_d = d;
			best = *k;
		}
	}
	return best;
}

static int get_string(struct parse *p, json_t *root, const char *key, const char *def,
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
		return fail(p, pointer, "'%s' must be a string", key);
	if (json_string_length(v) == 0 || strlen(json_string_value(v)) != json_string_length(v))
		return fail(p, pointer, "'%s' must be a non-empty string without NUL bytes", key);
	*ret = json_string_value(v);
	return 0;
}

static int check_abs_path(struct parse *p, const char *key, const char *value)
{
	char pointer[64];

	snprintf(pointer, sizeof(pointer), "/%s", key);
	if (value[0] != '/')
		return fail(p, pointer, "'%s' must be an absolute path, got '%s'", key, value);
	if (strlen(value) >= 108 && strcmp(key, "control_socket") == 0)
		return fail(p, pointer, "'control_socket' is longer than a unix socket path may be (107 bytes)");
	return 0;
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

static int parse_targets(struct parse *p, json_t *root, struct config *c)
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
		return fail(p, "/targets", "'targets' must be a non-empty array of \"ADDRESS:PORT\" strings, e.g. [\"*:5432\"]");
	if (json_array_size(arr) > CONFIG_MAX_TARGETS)
		return fail(p, "/targets", "'targets' has %zu entries; at most %u are allowed",
			    json_array_size(arr), CONFIG_MAX_TARGETS);
	c->targets = calloc(json_array_size(arr), sizeof(*c->targets));
	if (!c->targets)
		return -ENOMEM;
	json_array_foreach(arr, i, v) {
		snprintf(pointer, sizeof(pointer), "/targets/%zu", i);
		if (!json_is_string(v))
			return fail(p, pointer, "a target must be a string like \"*:5432\" or \"127.0.0.2:5432\"");
		if (addr_parse_target(json_string_value(v), &c->targets[i]) < 0)
			return fail(p, pointer, "invalid target '%s' (expected \"*:PORT\", \"ADDR:PORT\", \"ADDR/PREFIX:PORT\" or \"[IPV6]:PORT\", address without host bits beyond the prefix)",
				    json_string_value(v));
		if (c->targets[i].port == c->listen.port &&
		    (c->targets[i].prefix == 0 || memcmp(c->targets[i].ip, c->listen.ip, 16) == 0))
			return fail(p, pointer, "target '%s' includes the listener %s itself: connections would loop",
				    json_string_value(v), addr_format(&c->listen, buf));
		c->n_targets++;
	}
	return 0;
}

static int parse_cgroups(struct parse *p, json_t *root, struct config *c)
{
	json_t *arr = json_object_get(root, "cgroups"), *v;
	char pointer[64], norm[4096];
	size_t i;

	if (!arr)
		return 0;
	if (!json_is_array(arr))
		return fail(p, "/cgroups", "'cgroups' must be an array of paths below the cgroup2 mount, e.g. [\"/ci\"]");
	if (json_array_size(arr) > CONFIG_MAX_CGROUPS)
		return fail(p, "/cgroups", "'cgroups' has %zu entries; at most %u are allowed",
			    json_array_size(arr), CONFIG_MAX_CGROUPS);
	c->cgroups = calloc(json_array_size(arr) + 1, sizeof(*c->cgroups));
	if (!c->cgroups)
		return -ENOMEM;
	json_array_foreach(arr, i, v) {
		snprintf(pointer, sizeof(pointer), "/cgroups/%zu", i);
		if (!json_is_string(v) || config_cgroup_path(json_string_value(v), norm, sizeof(norm)) < 0)
			return fail(p, pointer, "a cgroup must be an absolute path below the cgroup2 mount like \"/ci\", without '.', '..' or empty parts");
		for (size_t j = 0; j < c->n_cgroups; j++)
			if (strcmp(c->cgroups[j], norm) == 0)
				return fail(p, pointer, "cgroup '%s' is listed twice", norm);
		c->cgroups[c->n_cgroups] = strdup(norm);
		if (!c->cgroups[c->n_cgroups])
			return -ENOMEM;
		c->n_cgroups++;
	}
	return 0;
}

static int parse_root(struct parse *p, json_t *root, struct config *c)
{
	const char *key, *s;
	json_t *v;
	int r;

	if (!json_is_object(root))
		return fail(p, "", "the configuration must be a JSON object");
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
		if (suggest(key))
			return fail(p, pointer, "unknown key '%s' (did you mean '%s'?)", key, suggest(key));
		return fail(p, pointer, "unknown key '%s'", key);
	}

	if ((r = get_string(p, root, "listen", DEFAULT_LISTEN, &s)) < 0)
		return r;
	if (addr_parse(s, &c->listen) < 0)
		return fail(p, "/listen", "invalid listen address '%s' (expected \"IPV4:PORT\", e.g. \"127.0.0.1:6432\")", s);
	if (!addr_is_v4(c->listen.ip))
		return fail(p, "/listen", "listen address '%s' must be IPv4: the redirect reaches it from IPv6 sockets as ::ffff:%s", s, "a.b.c.d");
	if ((r = parse_targets(p, root, c)) < 0 || (r = parse_cgroups(p, root, c)) < 0)
		return r;

	if ((r = get_string(p, root, "fail_mode", "closed", &s)) < 0)
		return r;
	if (strcmp(s, "closed") == 0)
		c->fail_mode = CONFIG_FAIL_CLOSED;
	else if (strcmp(s, "open") == 0)
		c->fail_mode = CONFIG_FAIL_OPEN;
	else
		return fail(p, "/fail_mode", "'fail_mode' must be \"closed\" or \"open\", got '%s'", s);

	if ((r = get_string(p, root, "bpffs_dir", DEFAULT_BPFFS_DIR, &s)) < 0 ||
	    (r = check_abs_path(p, "bpffs_dir", s)) < 0)
		return r;
	if (!(c->bpffs_dir = strdup(s)))
		return -ENOMEM;
	if ((r = get_string(p, root, "control_socket", DEFAULT_CONTROL_SOCKET, &s)) < 0 ||
	    (r = check_abs_path(p, "control_socket", s)) < 0)
		return r;
	if (!(c->control_socket = strdup(s)))
		return -ENOMEM;

	c->socket_mark = DEFAULT_SOCKET_MARK;
	v = json_object_get(root, "socket_mark");
	if (v) {
		if (!json_is_integer(v) || json_integer_value(v) <= 0 || json_integer_value(v) > 0xffffffffLL)
			return fail(p, "/socket_mark", "'socket_mark' must be an integer from 1 to 4294967295");
		c->socket_mark = (uint32_t)json_integer_value(v);
	}
	return 0;
}

int config_parse(const char *name, const char *text, size_t len, struct config *ret, char *err)
{
	struct parse p = { name, text, len, err };
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

int config_load(const char *path, struct config *ret, char *err)
{
	struct stat st;
	char *text;
	ssize_t n;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1) {
		r = -errno;
		snprintf(err, CONFIG_ERR_LEN, "%s: cannot open: %s", path, strerror(errno));
		return r;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) || st.st_size > (off_t)CONFIG_MAX_BYTES) {
		snprintf(err, CONFIG_ERR_LEN, "%s: not a regular file of at most %u bytes", path, CONFIG_MAX_BYTES);
		close(fd);
		return -EINVAL;
	}
	text = malloc((size_t)st.st_size + 1);
	if (!text) {
		close(fd);
		snprintf(err, CONFIG_ERR_LEN, "%s: out of memory", path);
		return -ENOMEM;
	}
	n = read(fd, text, (size_t)st.st_size);
	close(fd);
	if (n != st.st_size) {
		snprintf(err, CONFIG_ERR_LEN, "%s: short read", path);
		free(text);
		return -EIO;
	}
	text[n] = '\0';
	r = config_parse(path, text, (size_t)n, ret, err);
	free(text);
	return r;
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
	free(c->path);
	memset(c, 0, sizeof(*c));
}
