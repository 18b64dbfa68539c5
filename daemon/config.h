/*
 * The daemon's configuration, /etc/pgtether/pgtether.json (DESIGN.md "Public
 * interface"). A loaded config is an immutable snapshot: the daemon swaps it whole
 * and never edits one in place.
 */
#ifndef PGTETHER_CONFIG_H
#define PGTETHER_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"

#define CONFIG_DEFAULT_PATH "/etc/pgtether/pgtether.json"
#define CONFIG_MAX_BYTES (1u << 20)   /* a config bigger than 1 MiB is a mistake */
#define CONFIG_MAX_TARGETS 256
#define CONFIG_MAX_CGROUPS 256
#define CONFIG_ERR_LEN 512

enum config_fail_mode { CONFIG_FAIL_CLOSED, CONFIG_FAIL_OPEN };

struct config {
	char *path;                    /* file it was read from */
	struct addr listen;            /* IPv4: the BPF redirect rewrites to it */
	struct addr_target *targets;
	size_t n_targets;
	char **cgroups;                /* normalized paths below the cgroup2 mount */
	size_t n_cgroups;
	enum config_fail_mode fail_mode;
	char *bpffs_dir;
	char *control_socket;
	uint32_t socket_mark;          /* SO_MARK of upstream sockets (loop guard) */
};

/*
 * Reads and validates path into ret. On error returns a negative errno and writes
 * "path:line:col: message" into err (CONFIG_ERR_LEN bytes); ret is untouched.
 */
int config_load(const char *path, struct config *ret, char *err);

/* Parses an in-memory text; `name` is used in messages. Same contract as above. */
int config_parse(const char *name, const char *text, size_t len, struct config *ret, char *err);

/* Frees what config_load allocated; the struct itself is the caller's. */
void config_release(struct config *c);

/*
 * Checks and normalizes a cgroup path given by a person: absolute, no "." or ".."
 * components, no empty components; a trailing '/' is dropped; "/" stays "/".
 * Writes into ret (len bytes). 0 or -EINVAL.
 */
int config_cgroup_path(const char *in, char *ret, size_t len);

#endif
