/*
 * User-space half of bpf/intercept.{h,bpf.c}: the skeleton's lifecycle, the pinned
 * maps and links under the bpffs directory, and the map operations the daemon needs.
 *
 * Pins (bpffs_dir = /sys/fs/bpf/pgtether by default):
 *   bpffs_dir/pgt_config, pgt_targets, pgt_pending, pgt_origins   maps
 *   bpffs_dir/links/<escaped cgroup path>/{connect4,connect6,sockops,getpeername4,getpeername6}
 * The links keep the programs attached while no daemon runs: that is what makes the
 * interception fail closed, since the redirect then reaches a port nobody listens on.
 * A daemon that starts finds the pins, swaps its freshly loaded programs into the
 * existing links (bpf_link_update) and reuses compatible maps: never a second
 * attachment.
 */
#ifndef PGTETHER_INTERCEPT_H
#define PGTETHER_INTERCEPT_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include <linux/types.h>

#include "../bpf/intercept.h"

#define INTERCEPT_ERR_LEN 512
#define INTERCEPT_PROGS 5

struct intercept_bpf;
struct bpf_link;

/* The links themselves live in their pins, not in fds of the daemon: an attached
 * cgroup costs no file descriptor (INTERCEPT_PROGS of them per cgroup would make the
 * daemon's limit a limit on how many cgroups it can attach). */
struct intercept_attachment {
	char path[PATH_MAX];               /* below the cgroup2 mount */
	uint64_t cgroup_id;
};

struct intercept {
	struct intercept_bpf *skel;
	char dir[PATH_MAX];
	char cgroup_mount[PATH_MAX];
	struct intercept_attachment *att;
	size_t n_att, cap_att;
	int origins_fd;
};

/*
 * Mounts bpffs at /sys/fs/bpf when bpffs_dir lies below it and nothing is mounted,
 * creates bpffs_dir, loads the programs (reusing compatible pinned maps, replacing
 * incompatible ones) and pins the maps. Nothing is attached yet. On error returns
 * -errno with a sentence in err; ic is left released.
 */
int intercept_open(struct intercept *ic, const char *bpffs_dir, const char *cgroup_mount, char *err);

/* Writes the config entry the programs read (listener, mark, daemon cgroup, flags). */
int intercept_set_config(struct intercept *ic, const struct pgt_config *cfg);

/* Makes the targets trie hold exactly these targets: new ones are inserted before
 * stale ones are removed, so no moment exists where a target is missing. */
int intercept_set_targets(struct intercept *ic, const struct addr_target *t, size_t n);

/*
 * Re-adopts every pinned attachment: each link gets the newly loaded program; links
 * whose cgroup is gone or was recreated (a different id) are unpinned. Calls
 * report(path, removed, arg) for each. Returns 0 or the first -errno.
 */
int intercept_adopt(struct intercept *ic, void (*report)(const char *path, int removed, void *arg),
		    void *arg, char *err);

/* Attaches the three programs to a cgroup (normalized path) and pins the links.
 * Returns 0, 1 when it was attached already, or -errno with err filled. */
int intercept_attach(struct intercept *ic, const char *path, char *err);

/* Detaches at once (BPF_LINK_DETACH, whoever else holds the link) and unpins.
 * 0, or -ENOENT when not attached. */
int intercept_detach(struct intercept *ic, const char *path);

/* Takes the origin record of a live redirected connection out of the map: it is read
 * once, at accept, so held connections never fill the map. 0 or -ENOENT. */
int intercept_take(struct intercept *ic, const struct pgt_tuple *t, struct pgt_origin *ret);

/* How many established redirected connections found the origins map full (and so
 * were refused) since the programs were loaded. 0 or -errno. */
int intercept_origins_full(struct intercept *ic, uint64_t *ret);

/* Deletes origin records the daemon never took (CLOCK_BOOTTIME cut-offs): of
 * connections established before open_cutoff_ns (handshakes the listener's full queue
 * dropped leave a client socket established with nobody on the other side), and of
 * client sockets closed before closed_cutoff_ns (clients that gave up before their
 * connection was accepted; *ret_closed counts those). Returns how many of the first
 * kind were deleted (bounded by PGT_MAX_ORIGINS records looked at per call). */
size_t intercept_expire(struct intercept *ic, uint64_t open_cutoff_ns, uint64_t closed_cutoff_ns, size_t *ret_closed);

/* Closes fds and frees memory; pins and attachments stay (that is the point). */
void intercept_close(struct intercept *ic);

#endif
