/*
 * The cgroup2 hierarchy: where it is mounted, what a path's id is, creating a cgroup
 * and placing a process in it, and the escaped names used for pins in bpffs.
 *
 * Paths are always given relative to the cgroup2 mount ("/ci/runner-1"), as
 * /proc/PID/cgroup prints them; the mount itself is found in mountinfo, never
 * assumed (hybrid hosts mount it at /sys/fs/cgroup/unified).
 */
#ifndef PGTETHER_CGROUP_H
#define PGTETHER_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Finds the mount point of the first cgroup2 filesystem in a mountinfo text
 * (proc(5)). Octal escapes (\040) are decoded. 0, -ENOENT or -ENAMETOOLONG.
 */
int cgroup_mount_from_mountinfo(const char *text, char *ret, size_t len);

/* The same, reading /proc/self/mountinfo. */
int cgroup_find_mount(char *ret, size_t len);

/*
 * Escapes a cgroup path into one bpffs file name, much as systemd-escape --path does:
 * "/" → "-", '/' → '-', '-' and bytes outside [A-Za-z0-9_] → \xNN. Unlike systemd,
 * '.' is escaped too: bpffs refuses names containing a dot. Reversible with
 * cgroup_unescape(). 0 or -ENAMETOOLONG.
 */
int cgroup_escape(const char *path, char *ret, size_t len);
int cgroup_unescape(const char *name, char *ret, size_t len);

/* The cgroup id of mount+path (its inode number, what bpf_get_current_cgroup_id()
 * returns). 0 or -errno. */
int cgroup_id(const char *mount, const char *path, uint64_t *ret);

/* Creates mount+path and missing parents (mode 0755). 0 or -errno. */
int cgroup_create(const char *mount, const char *path);

/* Moves pid into mount+path by writing cgroup.procs. 0 or -errno. */
int cgroup_enter(const char *mount, const char *path, pid_t pid);

/*
 * When systemd manages the tree, a cgroup it can create for us is a scope inside
 * slices: "/pgtether.slice/job-7.scope", "/a.slice/a-b.slice/x.scope" (slice names
 * nest by prefix, systemd.slice(5)). Splits such a path into the innermost slice
 * and the scope unit name, for systemd-run --scope --slice=... --unit=....
 * 0, or -EINVAL when the path is not of that form.
 */
int cgroup_systemd_scope(const char *path, char *slice, size_t slice_len, char *unit, size_t unit_len);

/* The path of cgroup id by the process pid that was in it (/proc/PID/cgroup), when
 * that process is in it still. 0, -ESTALE (it is elsewhere now, or its pid another's)
 * or -errno. */
int cgroup_path_of_pid(const char *mount, pid_t pid, uint64_t id, char *ret, size_t len);

/*
 * The path of cgroup id when no process is left to ask: found by a walk of under's
 * subtree (a cgroup2 directory's inode number is its id). Bounded (1024 directories,
 * 32 levels): 0, -ENOENT (not there, or in a directory root may not search), -E2BIG
 * (not within the bound) or -errno. Not open_by_handle_at(2), which would find any
 * cgroup at once but needs CAP_DAC_READ_SEARCH, which pgtetherd does without.
 */
int cgroup_find_id(const char *mount, const char *under, uint64_t id, char *ret, size_t len);

/* Whether path is ancestor or below it ("/ci/job-7" is within "/ci", "/ci2" is not;
 * everything is within "/"). Both as /proc/PID/cgroup prints them. */
bool cgroup_within(const char *path, const char *ancestor);

/* The cgroup2 path of a /proc/PID/cgroup text (the "0::" line). 0 or -ENOENT. */
int cgroup_from_proc_text(const char *text, char *ret, size_t len);

#endif
