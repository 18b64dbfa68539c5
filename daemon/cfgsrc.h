/*
 * The files one configuration load reads (issue 13, privilege separation). The root
 * parent loads from the disk through a recording source, which keeps a copy of
 * every file and directory listing the load used; cfgsrc_to_memfd() seals that copy
 * into a memfd, and an unprivileged worker, which cannot open /etc/pgtether, loads
 * the same configuration from it (cfgsrc_from_memfd()): the same bytes, stats and
 * listings in the same order, so the same rules in the same order. Files read as
 * secret (credentials_file) are never kept, only their stat: a worker that asks for
 * one gets -EACCES.
 *
 * The parent:  src = cfgsrc_disk(); config_load_src(path, src, 0, &cfg, err);
 *              tls_prepare_src(&cfg, src, err); cfgsrc_to_memfd(src, &fd, ...)
 * a worker:    src = cfgsrc_from_memfd(fd, ...);
 *              config_load_src(path, src, CONFIG_LOAD_WORKER, &cfg, err);
 *              tls_prepare_src(&cfg, src, err)
 * (tls_prepare_src before cfgsrc_to_memfd: the PEM files must be in the bundle.)
 *
 * Every function that takes a source accepts NULL: a plain read of the disk, exactly
 * what the loaders did before sources existed (the CLI and the tests use that).
 */
#ifndef PGTETHER_CFGSRC_H
#define PGTETHER_CFGSRC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

/* Bounds of a bundle, checked when recording and again when replaying: a
 * configuration is a few files of at most a MiB each, so these are far above any
 * real one and far below what would hurt a worker. */
#define CFGSRC_MAX_BYTES (64u << 20)    /* the serialized bundle, all in all */
#define CFGSRC_MAX_FILES 4096
#define CFGSRC_MAX_DIRS 256
#define CFGSRC_MAX_NAMES 4096           /* entries of one directory */

struct cfgsrc;

/* A recording source: reads the disk and keeps what it read. NULL when out of memory. */
struct cfgsrc *cfgsrc_disk(void);

/*
 * Reads the regular file path (opened O_NOFOLLOW) of at most max bytes into *ret
 * (NUL-terminated, malloc'd; the caller frees it, and wipes it when secret), its
 * length into *ret_len and its fstat into *ret_st (a replay fills st_mode, st_uid,
 * st_gid, st_size and st_mtim, and zeroes the rest). 0, or -errno with
 * "path: message" in err:
 *   -errno of open    "cannot open: <strerror>"
 *   -EINVAL           "not a regular file of at most MAX bytes"
 *   -ENOMEM, -EIO     out of memory, short read
 *   -E2BIG            a recording source holds CFGSRC_MAX_BYTES already
 *   -ENOENT           replay: the parent's load did not read path
 *   -EACCES           replay: path was read as secret ("held by the parent only")
 * A recording source serves a path it already holds from its copy, so a file read
 * twice in one load is the same bytes both times, as it is for the worker. Secret
 * sticks to a path: once read as secret, its bytes are never kept.
 */
int cfgsrc_read(struct cfgsrc *src, const char *path, size_t max, bool secret, char **ret, size_t *ret_len,
		struct stat *ret_st, char *err, size_t errlen);

/* cfgsrc_read that follows symbolic links (never secret), for the PEM files of
 * tls_prepare_src, which OpenSSL's *_file functions opened that way before: certbot's
 * live/ certificates and distributions' CA bundles are links. */
int cfgsrc_read_follow(struct cfgsrc *src, const char *path, size_t max, char **ret, size_t *ret_len,
		       struct stat *ret_st, char *err, size_t errlen);

/*
 * The entries of directory dir that wanted() accepts (it gets the bare name), in
 * alphasort order (byte order in the C locale the daemon runs in), into *ret_names
 * (*ret_n of them; free with cfgsrc_names_free). 0, or -errno with
 * "dir: cannot read: <strerror>" in err; -ENOENT when dir does not exist (the
 * loaders take that as an empty directory, and so does a replay when the parent
 * found none). A replay asked for a directory the parent never listed fails with
 * -ENODATA, not -ENOENT, so that a mismatch is never mistaken for "no rules".
 * A recording source keeps every name but "." and ".." (at most CFGSRC_MAX_NAMES)
 * and filters on the way out, so one directory may be listed with two filters.
 */
int cfgsrc_list(struct cfgsrc *src, const char *dir, int (*wanted)(const char *name), char ***ret_names,
		size_t *ret_n, char *err, size_t errlen);

void cfgsrc_names_free(char **names, size_t n);

/* The uid a file's owner is checked against ("owned by root"): geteuid() when src
 * is NULL or reads the disk, the recording process's when it replays. */
uid_t cfgsrc_euid(const struct cfgsrc *src);

/* True when src replays a bundle (reads nothing from the disk). */
bool cfgsrc_is_replay(const struct cfgsrc *src);

/*
 * Serializes what src keeps into a new memfd (MFD_CLOEXEC), sealed against any
 * change (F_SEAL_SEAL, SHRINK, GROW, WRITE), offset 0. 0 with *ret_fd, or -errno
 * with err.
 */
int cfgsrc_to_memfd(const struct cfgsrc *src, int *ret_fd, char *err, size_t errlen);

/*
 * A replay source from a memfd written by cfgsrc_to_memfd: it must be sealed
 * against writes, shrinking and growing, and hold a valid bundle (cfgsrc_parse).
 * The fd stays the caller's. NULL with err when it is not.
 */
struct cfgsrc *cfgsrc_from_memfd(int fd, char *err, size_t errlen);

/* A replay source from serialized bytes (what cfgsrc_from_memfd reads; the fuzzer's
 * entry). Every size, count and string is checked: NULL with err when one is wrong. */
struct cfgsrc *cfgsrc_parse(const void *data, size_t len, char *err, size_t errlen);

/* Frees src and wipes the bytes it kept (a mask key, a TLS key). NULL is fine. */
void cfgsrc_free(struct cfgsrc *src);

#endif
