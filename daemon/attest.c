/*
 * /proc readers for attest_facts. The cgroup path comes from /proc/PID/cgroup and
 * never from mountinfo, which a bind mount inside the workload could forge.
 */
#include "attest.h"
#include "b64url.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <linux/openat2.h>

#include "cgroup.h"

static ssize_t read_small(const char *path, char *buf, size_t len)
{
	ssize_t n = 0, total = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd == -1)
		return -errno;
	while ((size_t)total + 1 < len && (n = read(fd, buf + total, len - 1 - (size_t)total)) > 0)
		total += n;
	if (n == -1) {
		n = -errno;
		close(fd);
		return n;
	}
	close(fd);
	buf[total] = '\0';
	return total;
}

int attest_parse_starttime(const char *stat_text, uint64_t *ret)
{
	const char *p = strrchr(stat_text, ')');
	unsigned long long v;
	char *end;

	if (!p)
		return -EINVAL;
	p++;
	/* after ')' come fields 3..; starttime is field 22, i.e. the 20th from here */
	for (int field = 3; field < 22; field++) {
		while (*p == ' ')
			p++;
		while (*p && *p != ' ')
			p++;
		if (!*p)
			return -EINVAL;
	}
	while (*p == ' ')
		p++;
	errno = 0;
	v = strtoull(p, &end, 10);
	if (errno || end == p)
		return -EINVAL;
	*ret = v;
	return 0;
}

int attest_pid_reused(uint64_t start_ticks, long hz, uint64_t event_boot_ns)
{
	/* start times have tick granularity: allow one tick of rounding */
	uint64_t start_ns = start_ticks * (1000000000ull / (uint64_t)hz);

	return start_ns > event_boot_ns + 1000000000ull / (uint64_t)hz;
}


/* SHA-256 of the file behind fd, through the cache. 0 or -errno. */
static int exe_hash(int fd, struct attest_cache *cache, char out[65])
{
	uint8_t buf[65536], md[32];
	unsigned int mdlen = sizeof(md);
	struct stat st;
	EVP_MD_CTX *ctx;
	ssize_t n;
	uint64_t mtime;

	if (fstat(fd, &st) == -1)
		return -errno;
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > ATTEST_HASH_MAX_BYTES)
		return -EFBIG;
	mtime = (uint64_t)st.st_mtim.tv_sec * 1000000000ull + (uint64_t)st.st_mtim.tv_nsec;
	for (unsigned i = 0; cache && i < ATTEST_CACHE; i++)
		if (cache->e[i].sha256[0] && cache->e[i].dev == st.st_dev && cache->e[i].ino == st.st_ino &&
		    cache->e[i].size == (uint64_t)st.st_size && cache->e[i].mtime_ns == mtime) {
			memcpy(out, cache->e[i].sha256, 65);
			return 0;
		}
	ctx = EVP_MD_CTX_new();
	if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(ctx);
		return -ENOMEM;
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		EVP_DigestUpdate(ctx, buf, (size_t)n);
	if (n < 0 || EVP_DigestFinal_ex(ctx, md, &mdlen) != 1) {
		EVP_MD_CTX_free(ctx);
		return n < 0 ? -errno : -EIO;
	}
	EVP_MD_CTX_free(ctx);
	hex_encode(md, sizeof(md), out);
	if (cache) {
		unsigned i = cache->next++ % ATTEST_CACHE;

		cache->e[i].dev = st.st_dev;
		cache->e[i].ino = st.st_ino;
		cache->e[i].size = (uint64_t)st.st_size;
		cache->e[i].mtime_ns = mtime;
		memcpy(cache->e[i].sha256, out, 65);
	}
	return 0;
}

static void clear(struct attest_facts *f)
{
	f->start_time = 0;
	strcpy(f->exe, "?");
	strcpy(f->exe_sha256, "?");
	strcpy(f->cgroup, "?");
}

int attest_read(pid_t pid, uint64_t connect_boot_ns, struct attest_cache *cache,
		struct attest_facts *ret)
{
	char path[64], buf[4096];
	int first = 0, pidfd, fd;
	ssize_t n;

	ret->pid = pid;
	clear(ret);
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		return -ESRCH;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	n = read_small(path, buf, sizeof(buf));
	if (n < 0 || attest_parse_starttime(buf, &ret->start_time) < 0) {
		close(pidfd);
		return -ESRCH;
	}
	if (attest_pid_reused(ret->start_time, sysconf(_SC_CLK_TCK), connect_boot_ns)) {
		close(pidfd);
		clear(ret);
		return -ESTALE;
	}

	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	n = readlink(path, ret->exe, sizeof(ret->exe) - 1);
	if (n >= 0) {
		ret->exe[n] = '\0';
	} else {
		first = -errno;
		strcpy(ret->exe, "?");
	}
	/* the file the process runs, even if its path was replaced since */
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		int r = exe_hash(fd, cache, ret->exe_sha256);

		if (r < 0 && !first)
			first = r;
		close(fd);
	} else if (!first) {
		first = -errno;
	}

	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	n = read_small(path, buf, sizeof(buf));
	if (n < 0 || cgroup_from_proc_text(buf, ret->cgroup, sizeof(ret->cgroup)) < 0) {
		if (!first)
			first = n < 0 ? (int)n : -ENOENT;
		strcpy(ret->cgroup, "?");
	}

	/* Still alive, so the pid was never free to be reused while we read. */
	if (syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) != 0) {
		close(pidfd);
		clear(ret);
		return -ESRCH;
	}
	close(pidfd);
	return first;
}

int attest_read_token(pid_t pid, uint64_t connect_boot_ns, uint32_t uid, uint32_t gid, const char *path,
		      char *buf, size_t cap, size_t *ret_len)
{
	struct open_how how = { .flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
	char p[64], stat_text[4096];
	int pidfd, rootfd = -1, pathfd = -1, fd = -1, r;
	uint64_t start;
	struct stat st;
	size_t n = 0;
	ssize_t got;

	if (cap < 2)
		return -EINVAL;
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		return -ESRCH;
	snprintf(p, sizeof(p), "/proc/%d/stat", (int)pid);
	if (read_small(p, stat_text, sizeof(stat_text)) < 0 || attest_parse_starttime(stat_text, &start) < 0) {
		r = -ESRCH;
		goto out;
	}
	if (attest_pid_reused(start, sysconf(_SC_CLK_TCK), connect_boot_ns)) {
		r = -ESTALE;
		goto out;
	}
	snprintf(p, sizeof(p), "/proc/%d/root", (int)pid);
	rootfd = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0) {
		r = -errno;
		goto out;
	}
	pathfd = (int)syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
	if (pathfd < 0) {
		r = -errno;
		goto out;
	}
	if (fstat(pathfd, &st) < 0) {
		r = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = -EINVAL;
		goto out;
	}
	/* what the workload could read itself (uid 0 reads anything) */
	if (uid != 0 && !((st.st_uid == uid && (st.st_mode & S_IRUSR)) ||
			  (st.st_uid != uid && st.st_gid == gid && (st.st_mode & S_IRGRP)) ||
			  (st.st_uid != uid && st.st_gid != gid && (st.st_mode & S_IROTH)))) {
		r = -EACCES;
		goto out;
	}
	if ((uint64_t)st.st_size >= cap) {
		r = -EFBIG;
		goto out;
	}
	/* reopened for reading only now that it is known to be a regular file */
	snprintf(p, sizeof(p), "/proc/self/fd/%d", pathfd);
	fd = open(p, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	while ((got = read(fd, buf + n, cap - 1 - n)) > 0) {
		n += (size_t)got;
		if (n == cap - 1) {
			char more;

			if ((got = read(fd, &more, 1)) > 0) {
				r = -EFBIG; /* grew since fstat */
				goto out;
			}
			break;
		}
	}
	if (got < 0) {
		r = -errno;
		goto out;
	}
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' || buf[n - 1] == '\t'))
		n--;
	buf[n] = '\0';
	/* still the same process: nothing else could have answered for it */
	r = syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) == 0 ? 0 : -ESRCH;
out:
	if (fd >= 0)
		close(fd);
	if (pathfd >= 0)
		close(pathfd);
	if (rootfd >= 0)
		close(rootfd);
	close(pidfd);
	if (r < 0)
		explicit_bzero(buf, cap);
	else
		*ret_len = n;
	return r;
}
