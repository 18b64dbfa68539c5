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

struct attest_facts {
	pid_t pid;
	uint64_t start_time;      /* field 22 of /proc/PID/stat, clock ticks since boot */
	char exe[PATH_MAX];
	char cgroup[PATH_MAX];    /* below the cgroup2 mount, as /proc/PID/cgroup says */
};

/* Fills ret for pid. Returns 0 when every fact was read, else the first -errno
 * (fields not read are "?"). */
int attest_read(pid_t pid, struct attest_facts *ret);

/* Field 22 (starttime) of a /proc/PID/stat text; the comm field may hold spaces and
 * parentheses, so parsing starts after the last ')'. 0 or -EINVAL. */
int attest_parse_starttime(const char *stat_text, uint64_t *ret);

#endif
