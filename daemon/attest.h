/*
 * Kernel facts about the process behind a connection, read from /proc/PID. The BPF
 * record gives pid, uid, gid, comm and cgroup id at connect() time; this module adds
 * what only /proc knows (executable path, cgroup path) and the process start time
 * that lets a later check detect a reused pid.
 *
 * Every field is best effort: a short-lived process may be gone by the time the
 * daemon looks, and its fields then read "?" with the error returned.
 */
#ifndef PGTETHER_ATTEST_H
#define PGTETHER_ATTEST_H

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>

#define ATTEST_HASH_MAX_BYTES (512u << 20)  /* executables above this are not hashed */
#define ATTEST_CACHE 64

struct attest_facts {
	pid_t pid;
	uint64_t start_time;      /* field 22 of /proc/PID/stat, clock ticks since boot */
	char exe[PATH_MAX];
	char exe_sha256[65];      /* hex, or "?" */
	char cgroup[PATH_MAX];    /* below the cgroup2 mount, as /proc/PID/cgroup says */
};

/* SHA-256 of executables by (device, inode, size, mtime): hashing a 100 MB binary on
 * every connection would cost more than the connection. */
struct attest_cache {
	struct {
		uint64_t dev, ino, size, mtime_ns;
		char sha256[65];
	} e[ATTEST_CACHE];
	unsigned next;
};

/*
 * Reads the facts of pid, the process that called connect() at connect_boot_ns
 * (CLOCK_BOOTTIME, from the BPF record). The pid is pinned with pidfd_open() first and
 * checked to be alive after the reads, so the facts belong to the process pinned; a
 * process that started after connect_boot_ns holds a reused pid and is not the one
 * that connected.
 * Returns 0 when every fact was read; -ESTALE for a reused pid (facts cleared to
 * "?"); -ESRCH when the process is gone (facts "?"); another -errno for a fact that
 * could not be read (that field "?"). cache may be NULL.
 */
int attest_read(pid_t pid, uint64_t connect_boot_ns, struct attest_cache *cache,
		struct attest_facts *ret);

/*
 * Reads the identity token file `path` as the process pid (the one that called
 * connect() at connect_boot_ns) sees it: resolved inside its own root and mount
 * namespace through /proc/PID/root, with symlinks kept inside that root and magic
 * links refused, while the pid is pinned. The file must be a regular file of fewer
 * than cap bytes that the workload itself (uid, gid) may read, so no workload can
 * point pgtetherd at a file only root may read. Trailing whitespace is dropped and
 * buf NUL-terminated. 0; -ESTALE (reused pid), -ESRCH (gone), -EACCES, -EFBIG,
 * -EINVAL (not a regular file) or another -errno. buf is wiped on failure.
 */
int attest_read_token(pid_t pid, uint64_t connect_boot_ns, uint32_t uid, uint32_t gid, const char *path,
		      char *buf, size_t cap, size_t *ret_len);

/* True when a process started at start_ticks (clock ticks since boot, tick Hz) cannot
 * be the one that acted at event_boot_ns. */
int attest_pid_reused(uint64_t start_ticks, long hz, uint64_t event_boot_ns);

/* Field 22 (starttime) of a /proc/PID/stat text; the comm field may hold spaces and
 * parentheses, so parsing starts after the last ')'. 0 or -EINVAL. */
int attest_parse_starttime(const char *stat_text, uint64_t *ret);

#endif
