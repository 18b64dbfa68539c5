/*
 * The worker's sandbox (issue 13, privilege separation): an unprivileged system user,
 * no capabilities, no new privileges, not dumpable, no core files, and a seccomp
 * allow-list that kills the process on any other system call. A worker calls
 * sandbox_user() and sandbox_preload() and then sandbox_enter() before it reads a
 * single byte of input; after that it can only use the fds it already holds or is
 * given over its socketpair: no open, socket, accept, exec, fork, ptrace or bpf.
 * Threads may be started (pthread_create: clone with exactly glibc's thread flags;
 * clone3 fails with ENOSYS); they share the credentials and the filter.
 */
#ifndef PGTETHER_SANDBOX_H
#define PGTETHER_SANDBOX_H

#include <stddef.h>
#include <sys/types.h>

/* The user `make install` creates for the workers. */
#define SANDBOX_DEFAULT_USER "pgtether"

/* Resolves the worker user NAME (or a uid in decimal; one without a passwd entry gets
 * the group of the same number) from the password database. 0 with the uid and gid
 * set (the user's primary group); -ENOENT when there is no such user, -EPERM when it is
 * uid 0 or its group is gid 0, another -errno when the lookup failed: err then says
 * what to do (`make install` creates the user; worker_user names another). */
int sandbox_user(const char *name, uid_t *ret_uid, gid_t *ret_gid, char *err, size_t errlen);

/* Does what must happen while files can still be opened, so that nothing opens one
 * lazily inside the sandbox: OpenSSL's initialisation (its configuration file, error
 * strings, the random generator's first seeding), the time zone, and under a
 * sanitizer build the symbolizer (reads the binary's debug information) and the
 * leak check (its end-of-process run needs clone and ptrace; it runs now instead).
 * Not covered: GCC's libubsan initialises on its first report and reads
 * /proc/self/exe then, so a UBSan finding in a sandboxed process ends it by SIGSYS
 * before anything is printed (ASan reports come out whole).
 * 0 or -errno with err set. Idempotent. */
int sandbox_preload(char *err, size_t errlen);

/* Drops the process, which must be single-threaded and have CAP_SETUID/CAP_SETGID
 * (root), to UID/GID for good and installs the filter. In this order, because each step
 * needs the privilege the next takes away: ambient and bounding capability sets
 * cleared (the bounding set when CAP_SETPCAP is held), supplementary groups dropped,
 * real/effective/saved gid then uid set, then checked (ids, groups, no capability
 * left, uid 0 cannot be regained), NO_NEW_PRIVS, not dumpable, RLIMIT_CORE 0, seccomp.
 * uid 0 and gid 0 are refused. 0, or -errno with err set; on failure the process may be
 * half-dropped and must exit. */
int sandbox_enter(uid_t uid, gid_t gid, char *err, size_t errlen);

#endif
