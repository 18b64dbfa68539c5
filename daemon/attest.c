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
#include <sys/fsuid.h>
#include <sys/sysmacros.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <linux/nsfs.h>
#include <linux/openat2.h>
#include <sys/ioctl.h>

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


int attest_parse_status_ids(const char *text, uint32_t *ret_uid, uint32_t *ret_gid)
{
	static const char *const tags[2] = { "\nUid:", "\nGid:" };
	unsigned long v[2];

	for (int i = 0; i < 2; i++) {
		const char *p = strstr(text, tags[i]);
		char *end;

		if (!p)
			return -EINVAL;
		p += strlen(tags[i]);
		errno = 0;
		v[i] = strtoul(p, &end, 10);
		if (errno || end == p || v[i] > UINT32_MAX)
			return -EINVAL;
	}
	*ret_uid = (uint32_t)v[0];
	*ret_gid = (uint32_t)v[1];
	return 0;
}

int attest_parse_status_groups(const char *text, uint32_t *ret_groups, size_t cap, size_t *ret_n)
{
	const char *p = strstr(text, "\nGroups:"), *eol;
	size_t n = 0;

	if (!p)
		return -EINVAL;
	p += strlen("\nGroups:");
	eol = strchr(p, '\n');
	if (!eol)
		return -E2BIG; /* cut off: more groups than the text had room for */
	for (;;) {
		unsigned long v;
		char *end;

		while (p < eol && (*p == ' ' || *p == '\t'))
			p++;
		if (p == eol)
			break;
		if (*p < '0' || *p > '9')
			return -EINVAL;
		errno = 0;
		v = strtoul(p, &end, 10);
		if (errno || end > eol || v > UINT32_MAX)
			return -EINVAL;
		if (n == cap)
			return -E2BIG;
		ret_groups[n++] = (uint32_t)v;
		p = end;
	}
	*ret_n = n;
	return 0;
}

/* ---- a workload's file-system credentials, on this thread ---------------------- */

/* pgtetherd's own supplementary groups, restored after: root's few. */
#define ATTEST_SELF_GROUPS 32
/* the 32-bit gid_t call where the plain one is the old 16-bit one (i386, arm) */
#ifdef SYS_setgroups32
#define ATTEST_SYS_SETGROUPS SYS_setgroups32
#else
#define ATTEST_SYS_SETGROUPS SYS_setgroups
#endif

struct attest_fscreds_saved {
	uid_t fsuid;
	gid_t fsgid;
	int n_groups;
	gid_t groups[ATTEST_SELF_GROUPS];
};

static void attest_fscreds_leave(const struct attest_fscreds_saved *s)
{
	setfsuid(s->fsuid);
	setfsgid(s->fsgid);
	/* Cannot fail: CAP_SETGID stays effective whatever the fsuid (only the file
	 * capabilities follow it: CAP_DAC_*, CAP_FOWNER ... come back with fsuid 0), and
	 * setgroups did not fail a moment ago. A thread left with a workload's groups
	 * would go on opening files as that workload: stop rather than guess. */
	if (syscall(ATTEST_SYS_SETGROUPS, (size_t)s->n_groups, s->groups) == -1 || (uid_t)setfsuid((uid_t)-1) != s->fsuid ||
	    (gid_t)setfsgid((gid_t)-1) != s->fsgid)
		abort();
}

/*
 * Takes on who's file-system identity on the calling thread only, so that the kernel
 * judges the next opens as it would the workload's own: fsuid and fsgid (with a
 * non-zero fsuid the kernel also drops the file capabilities from this thread's
 * effective set) and the supplementary groups. The raw setgroups system call: glibc's
 * setgroups() changes every thread of the process. Needs CAP_SETUID and CAP_SETGID,
 * which the parent has to start its workers anyway. 0, -E2BIG (more groups than
 * kept) or -errno; on 0, attest_fscreds_leave(saved) must follow.
 */
static int attest_fscreds_enter(const struct attest_creds *who, struct attest_fscreds_saved *saved)
{
	gid_t g[ATTEST_GROUPS_MAX];

	if (who->n_groups > ATTEST_GROUPS_MAX)
		return -E2BIG;
	saved->n_groups = getgroups(ATTEST_SELF_GROUPS, saved->groups);
	if (saved->n_groups == -1)
		return -errno;
	for (uint32_t i = 0; i < who->n_groups; i++)
		g[i] = (gid_t)who->groups[i];
	if (syscall(ATTEST_SYS_SETGROUPS, (size_t)who->n_groups, g) == -1)
		return -errno;
	saved->fsgid = (gid_t)setfsgid((gid_t)who->gid);
	saved->fsuid = (uid_t)setfsuid((uid_t)who->uid);
	/* setfsuid() reports no error: asked with an invalid id it returns the one in force */
	if ((gid_t)setfsgid((gid_t)-1) != (gid_t)who->gid || (uid_t)setfsuid((uid_t)-1) != (uid_t)who->uid) {
		attest_fscreds_leave(saved);
		return -EPERM;
	}
	return 0;
}

static void exe_key_of(const struct stat *st, struct attest_exe_key *k)
{
	k->dev = st->st_dev;
	k->ino = st->st_ino;
	k->size = (uint64_t)st->st_size;
	k->mtime_ns = (uint64_t)st->st_mtim.tv_sec * 1000000000ull + (uint64_t)st->st_mtim.tv_nsec;
	k->ctime_ns = (uint64_t)st->st_ctim.tv_sec * 1000000000ull + (uint64_t)st->st_ctim.tv_nsec;
}

bool attest_cache_get(const struct attest_cache *cache, const struct attest_exe_key *key, char out[65])
{
	for (unsigned i = 0; cache && i < ATTEST_CACHE; i++)
		if (cache->e[i].sha256[0] && memcmp(&cache->e[i].k, key, sizeof(*key)) == 0) {
			memcpy(out, cache->e[i].sha256, 65);
			return true;
		}
	return false;
}

void attest_cache_put(struct attest_cache *cache, const struct attest_exe_key *key, const char sha256[65])
{
	unsigned i = cache->next++ % ATTEST_CACHE;

	cache->e[i].k = *key;
	memcpy(cache->e[i].sha256, sha256, 65);
}

enum attest_result attest_hash_fd(int fd, const struct attest_exe_key *key, const struct attest_creds *who,
				  const bool *cancel, char out[65], char *why, size_t cap)
{
	enum attest_result r = ATTEST_UNREADABLE;
	uint8_t buf[65536], md[32];
	unsigned int mdlen = sizeof(md);
	struct attest_exe_key now;
	EVP_MD_CTX *ctx = NULL;
	struct stat st;
	char p[64];
	ssize_t n;
	int rfd;

	if (key->size > ATTEST_HASH_MAX_BYTES) {
		snprintf(why, cap, "exe_sha256: the executable is %llu bytes, more than the %llu pgtether hashes",
			 (unsigned long long)key->size, (unsigned long long)ATTEST_HASH_MAX_BYTES);
		return ATTEST_UNREADABLE;
	}
	/* Opened for reading only here, on a file-system thread (attest_pool.c): an
	 * executable on a FUSE mount the workload serves can make open() and read() wait
	 * as long as it likes. */
	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	rfd = open(p, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	/* Root without CAP_DAC_READ_SEARCH reads by the mode bits; a binary of the
	 * workload's own (mode 0700) is read as the workload, which may read it. */
	if (rfd == -1 && (errno == EACCES || errno == EPERM) && who) {
		struct attest_fscreds_saved saved;
		int e = attest_fscreds_enter(who, &saved);

		if (e == 0) {
			rfd = open(p, O_RDONLY | O_CLOEXEC | O_NOCTTY);
			e = rfd == -1 ? errno : 0;
			attest_fscreds_leave(&saved);
			if (e == EACCES || e == EPERM) {
				snprintf(why, cap, "exe_sha256: the executable cannot be hashed: neither root (by its mode) nor the workload's uid %u may read it",
					 who->uid);
				return ATTEST_UNREADABLE;
			}
		} else if (e == -E2BIG) {
			snprintf(why, cap, "exe_sha256: root may not read the executable and the workload is in more than %d groups, too many to read it as the workload",
				 ATTEST_GROUPS_MAX);
			return ATTEST_UNREADABLE;
		}
		errno = e < 0 ? -e : e;
	}
	if (rfd == -1) {
		snprintf(why, cap, "exe_sha256: cannot open the executable: %s", strerror(errno));
		return ATTEST_UNREADABLE;
	}
	ctx = EVP_MD_CTX_new();
	if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		snprintf(why, cap, "exe_sha256: out of memory");
		goto out;
	}
	/* pread from 0: the fd's offset is nobody else's, but this does not depend on it */
	for (off_t at = 0; (n = pread(rfd, buf, sizeof(buf), at)) > 0; at += n) {
		if ((uint64_t)at + (uint64_t)n > key->size)
			break; /* grew: caught by the check below */
		if (cancel && __atomic_load_n(cancel, __ATOMIC_RELAXED)) {
			snprintf(why, cap, "exe_sha256: pgtetherd is stopping");
			goto out;
		}
		EVP_DigestUpdate(ctx, buf, (size_t)n);
	}
	if (n < 0 || EVP_DigestFinal_ex(ctx, md, &mdlen) != 1) {
		snprintf(why, cap, "exe_sha256: cannot read the executable: %s", n < 0 ? strerror(errno) : "digest failed");
		goto out;
	}
	/* The hash is of the bytes the key describes only if nothing wrote the file while
	 * it was read: a write moves ctime, which no one but the clock's owner can set. */
	if (fstat(rfd, &st) == -1) {
		snprintf(why, cap, "exe_sha256: cannot stat the executable: %s", strerror(errno));
		goto out;
	}
	exe_key_of(&st, &now);
	if (memcmp(&now, key, sizeof(now)) != 0) {
		snprintf(why, cap, "exe_sha256: the executable was modified while pgtether hashed it");
		r = ATTEST_CHANGED;
		goto out;
	}
	hex_encode(md, sizeof(md), out);
	r = ATTEST_OK;
out:
	EVP_MD_CTX_free(ctx);
	close(rfd);
	return r;
}

static void clear(struct attest_facts *f)
{
	memset(&f->exe_key, 0, sizeof(f->exe_key));
	f->exe_foreign = false;
	f->start_time = 0;
	strcpy(f->exe, "?");
	f->exe_sha256[0] = '\0';
	strcpy(f->cgroup, "?");
}

/* The kernel's dev_t (MAJOR << 20 | MINOR, what the BPF hook reads from s_dev) as
 * user space's st_dev. */
static dev_t kernel_dev(uint32_t kdev)
{
	return makedev(kdev >> 20, kdev & 0xfffff);
}

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/*
 * Whether the path /proc gave for the executable st is one a rule may trust: it names
 * that very file in pgtetherd's own mount namespace, or inside the process's root
 * when the process's mount namespace belongs to the initial user namespace (a
 * container runtime's mounts, which the workload cannot change). A mount namespace
 * of a user namespace the workload created is its own to remount, and the path of a
 * file on such a mount is whatever it chose: /proc/PID/exe reads "/usr/bin/psql" for
 * its own binary bind-mounted there. The same holds for a binary opened there and
 * passed to a process outside by SCM_RIGHTS for fexecve().
 */
static bool exe_path_vouched(pid_t pid, const char *exe, const struct stat *st, const struct attest_creds *who)
{
	struct open_how how = { .flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
	struct attest_fscreds_saved saved;
	struct stat here, own;
	char p[64];
	int rootfd, fd, nsfd, ufd;
	bool ok = false;

	if (exe[0] != '/')
		return false;
	if (stat(exe, &here) == 0 && same_file(&here, st))
		return true;
	snprintf(p, sizeof(p), "/proc/%d/ns/mnt", (int)pid);
	nsfd = open(p, O_RDONLY | O_CLOEXEC);
	if (nsfd < 0)
		return false;
	ufd = ioctl(nsfd, NS_GET_USERNS);
	close(nsfd);
	if (ufd < 0)
		return false;
	ok = fstat(ufd, &here) == 0 && stat("/proc/self/ns/user", &own) == 0 && same_file(&here, &own);
	close(ufd);
	if (!ok)
		return false;
	snprintf(p, sizeof(p), "/proc/%d/root", (int)pid);
	rootfd = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return false;
	/* looked up as the workload, which exec'd it by a path it could search: root
	 * without CAP_DAC_READ_SEARCH may not search a home directory of mode 0700 */
	fd = -1;
	if (attest_fscreds_enter(who, &saved) == 0) {
		fd = (int)syscall(SYS_openat2, rootfd, exe, &how, sizeof(how));
		attest_fscreds_leave(&saved);
	}
	close(rootfd);
	if (fd < 0)
		return false;
	ok = fstat(fd, &here) == 0 && same_file(&here, st);
	close(fd);
	return ok;
}

/* fstat() of fd from the attributes the kernel holds, without asking a network or
 * FUSE filesystem's server (AT_STATX_DONT_SYNC). 0 or -1 with errno. */
static int stat_nosync(int fd, struct stat *ret)
{
	struct statx x;

	if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_BASIC_STATS, &x) == -1)
		return -1;
	memset(ret, 0, sizeof(*ret));
	ret->st_dev = makedev(x.stx_dev_major, x.stx_dev_minor);
	ret->st_ino = x.stx_ino;
	ret->st_mode = x.stx_mode;
	ret->st_size = (off_t)x.stx_size;
	ret->st_mtim.tv_sec = x.stx_mtime.tv_sec;
	ret->st_mtim.tv_nsec = x.stx_mtime.tv_nsec;
	ret->st_ctim.tv_sec = x.stx_ctime.tv_sec;
	ret->st_ctim.tv_nsec = x.stx_ctime.tv_nsec;
	return 0;
}

/* The process is gone when its pidfd says so (ESRCH); a zombie has no executable left
 * either. EPERM is a process that is there: signalling one of another uid needs
 * CAP_KILL, which the shipped unit does not grant. */
static bool pid_alive(int pidfd)
{
	return syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) == 0 || errno == EPERM;
}

enum attest_result attest_read(const struct attest_origin *o, struct attest_facts *ret, int *ret_exe_fd,
			       char *why, size_t cap)
{
	char path[64], buf[4096];
	enum attest_result r = ATTEST_UNREADABLE;
	int pidfd, fd = -1;
	uint32_t uid, gid;
	uint64_t cgid;
	struct stat st;
	ssize_t n;

	ret->pid = o->pid;
	clear(ret);
	pidfd = (int)syscall(SYS_pidfd_open, o->pid, 0);
	if (pidfd < 0 && errno != ESRCH) {
		snprintf(why, cap, "cannot pin the process that opened this connection (pid %d): %s", (int)o->pid,
			 strerror(errno));
		return ATTEST_UNREADABLE;
	}
	if (pidfd < 0) {
		snprintf(why, cap, "the process that opened this connection (pid %d) has exited; its kernel facts cannot be read",
			 (int)o->pid);
		return ATTEST_GONE;
	}

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)o->pid);
	n = read_small(path, buf, sizeof(buf));
	if (n < 0 || attest_parse_starttime(buf, &ret->start_time) < 0) {
		snprintf(why, cap, "the process that opened this connection (pid %d) has exited", (int)o->pid);
		r = ATTEST_GONE;
		goto out;
	}
	if (attest_pid_reused(ret->start_time, sysconf(_SC_CLK_TCK), o->connect_boot_ns)) {
		snprintf(why, cap, "the process that opened this connection is gone and its pid %d now belongs to another process",
			 (int)o->pid);
		r = ATTEST_REUSED;
		goto out;
	}

	/* exe: the file it runs now, then compared with the one it ran at connect(). O_PATH
	 * and a statx that asks no server: nothing here waits for a FUSE mount the
	 * workload serves (a file-system thread opens it for reading). */
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)o->pid);
	fd = open(path, O_PATH | O_CLOEXEC);
	if (fd == -1 || stat_nosync(fd, &st) == -1) {
		int e = errno;

		/* a zombie (exited, not yet reaped) has no executable any more: ENOENT */
		if (e == ENOENT || !pid_alive(pidfd)) {
			snprintf(why, cap, "exe: the process that opened this connection (pid %d) has exited", (int)o->pid);
			r = ATTEST_GONE;
		} else {
			snprintf(why, cap, "exe: cannot open /proc/%d/exe: %s", (int)o->pid, strerror(e));
		}
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(why, cap, "exe: /proc/%d/exe is not a regular file", (int)o->pid);
		goto out;
	}
	if (o->exe_ino == 0 || st.st_ino != o->exe_ino) {
		snprintf(why, cap, "exe: the process (pid %d) runs another executable than the one that opened this connection (it exec'd since)",
			 (int)o->pid);
		r = ATTEST_CHANGED;
		goto out;
	}
	if (st.st_dev != kernel_dev(o->exe_dev)) {
		/* btrfs reports a subvolume's own device to stat(), not the superblock's */
		snprintf(why, cap, "exe: the executable's device as stat() reports it (%u:%u) is not its filesystem's (%u:%u); pgtether cannot tell such executables (btrfs subvolumes) from others yet",
			 major(st.st_dev), minor(st.st_dev), o->exe_dev >> 20, o->exe_dev & 0xfffff);
		r = ATTEST_CHANGED;
		goto out;
	}
	exe_key_of(&st, &ret->exe_key);
	/* Same inode, other bytes: the connecting binary was rewritten once nothing ran
	 * it (a forked child kept the socket, the connector exec'd away, rewrote it and
	 * exec'd it again), so its hash now says nothing about what connected. */
	if (ret->exe_key.ctime_ns != o->exe_ctime_ns) {
		snprintf(why, cap, "exe: the executable of the process (pid %d) was modified or replaced after it opened this connection",
			 (int)o->pid);
		r = ATTEST_CHANGED;
		goto out;
	}
	/* the path of the file opened, not a second readlink of /proc/PID/exe, which an
	 * exec in between would answer for another file */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, ret->exe, sizeof(ret->exe) - 1);
	if (n < 0 || (size_t)n >= sizeof(ret->exe) - 1) {
		snprintf(why, cap, "exe: cannot read the executable's path: %s", n < 0 ? strerror(errno) : "too long");
		strcpy(ret->exe, "?");
		goto out;
	}
	ret->exe[n] = '\0';

	/* cgroup: the path must name the cgroup the kernel saw at connect() (its id is the
	 * directory's inode), so a process that moved since is not judged by its new one */
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)o->pid);
	n = read_small(path, buf, sizeof(buf));
	if (n < 0 || cgroup_from_proc_text(buf, ret->cgroup, sizeof(ret->cgroup)) < 0) {
		snprintf(why, cap, "cgroup: cannot read /proc/%d/cgroup: %s", (int)o->pid,
			 n < 0 ? strerror((int)-n) : "no cgroup2 line");
		strcpy(ret->cgroup, "?");
		if (!pid_alive(pidfd))
			r = ATTEST_GONE;
		goto out;
	}
	if (cgroup_id(o->cgroup_mount, ret->cgroup, &cgid) < 0 || cgid != o->cgroup_id) {
		snprintf(why, cap, "cgroup: the process (pid %d) is now in cgroup %s, not in the cgroup it opened this connection from (id %llu)",
			 (int)o->pid, ret->cgroup, (unsigned long long)o->cgroup_id);
		r = ATTEST_CHANGED;
		goto out;
	}

	/* uid, gid: the policy judges the ones of connect(); a process whose ids changed
	 * since (setuid, a setuid binary) is another principal */
	snprintf(path, sizeof(path), "/proc/%d/status", (int)o->pid);
	n = read_small(path, buf, sizeof(buf));
	if (n < 0 || attest_parse_status_ids(buf, &uid, &gid) < 0) {
		snprintf(why, cap, "uid: cannot read /proc/%d/status: %s", (int)o->pid, n < 0 ? strerror((int)-n) : "no Uid/Gid lines");
		if (!pid_alive(pidfd))
			r = ATTEST_GONE;
		goto out;
	}
	if (uid != o->uid || gid != o->gid) {
		snprintf(why, cap, "%s: the process (pid %d) now runs as uid %u gid %u, not as uid %u gid %u as when it opened this connection",
			 uid != o->uid ? "uid" : "gid", (int)o->pid, uid, gid, o->uid, o->gid);
		r = ATTEST_CHANGED;
		goto out;
	}
	ret->creds.uid = uid;
	ret->creds.gid = gid;
	{
		size_t ng = 0;

		/* too many to keep: files are not opened as it (attest_creds) */
		ret->creds.n_groups = attest_parse_status_groups(buf, ret->creds.groups, ATTEST_GROUPS_MAX, &ng) == 0
					      ? (uint32_t)ng : ATTEST_GROUPS_MAX + 1;
	}
	/* untrusted until attest_vouch_exe says otherwise: it looks paths up, which may
	 * wait for a filesystem the workload serves, so it is not done here */
	ret->exe_foreign = true;

	/* Still alive, so the pid was never free to be reused while we read. */
	if (!pid_alive(pidfd)) {
		snprintf(why, cap, "the process that opened this connection (pid %d) exited while pgtether read it", (int)o->pid);
		r = ATTEST_GONE;
		goto out;
	}
	r = ATTEST_OK;
out:
	close(pidfd);
	if (r == ATTEST_OK && ret_exe_fd) {
		*ret_exe_fd = fd;
		fd = -1;
	}
	if (fd >= 0)
		close(fd);
	return r;
}

enum attest_result attest_vouch_exe(const struct attest_facts *f, bool *ret_vouched, char *why, size_t cap)
{
	struct stat st = { .st_dev = (dev_t)f->exe_key.dev, .st_ino = (ino_t)f->exe_key.ino };
	char path[64], buf[4096];
	uint64_t start;
	bool vouched;
	int pidfd;

	/* pinned, and the very process attest_read read (its start time), so the root
	 * and mount namespace looked at are that process's and not a pid's next owner's */
	pidfd = (int)syscall(SYS_pidfd_open, f->pid, 0);
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)f->pid);
	if (pidfd < 0 || read_small(path, buf, sizeof(buf)) < 0 || attest_parse_starttime(buf, &start) < 0 ||
	    start != f->start_time) {
		snprintf(why, cap, "the process that opened this connection (pid %d) exited while pgtether read it", (int)f->pid);
		if (pidfd >= 0)
			close(pidfd);
		return ATTEST_GONE;
	}
	vouched = exe_path_vouched(f->pid, f->exe, &st, &f->creds);
	if (!pid_alive(pidfd)) {
		snprintf(why, cap, "the process that opened this connection (pid %d) exited while pgtether read it", (int)f->pid);
		close(pidfd);
		return ATTEST_GONE;
	}
	close(pidfd);
	*ret_vouched = vouched;
	return ATTEST_OK;
}

/*
 * path below rootfd, opened for reading as who would open it (attest_fscreds_enter),
 * and only once it is known to be a regular file: a FIFO or device there is never
 * opened. The fd, or -errno.
 */
static int attest_token_open(int rootfd, const char *path, const struct attest_creds *who, struct stat *ret_st)
{
	struct open_how how = { .flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
	struct attest_fscreds_saved saved;
	int pathfd, fd = -1, r;
	char p[64];

	if ((r = attest_fscreds_enter(who, &saved)) < 0)
		return r;
	pathfd = (int)syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
	if (pathfd < 0) {
		r = -errno;
	} else if (fstat(pathfd, ret_st) < 0) {
		r = -errno;
	} else if (!S_ISREG(ret_st->st_mode)) {
		r = -EINVAL;
	} else {
		snprintf(p, sizeof(p), "/proc/self/fd/%d", pathfd);
		fd = open(p, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
		r = fd < 0 ? -errno : fd;
	}
	attest_fscreds_leave(&saved);
	if (pathfd >= 0)
		close(pathfd);
	return r;
}

int attest_read_token(pid_t pid, uint64_t connect_boot_ns, const struct attest_creds *who, const char *path,
		      char *buf, size_t cap, size_t *ret_len)
{
	char p[64], stat_text[4096];
	int pidfd, rootfd = -1, fd = -1, r;
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
	/* the way in as pgtetherd (CAP_SYS_PTRACE), the path below it as the workload */
	snprintf(p, sizeof(p), "/proc/%d/root", (int)pid);
	rootfd = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0) {
		r = -errno;
		goto out;
	}
	/* what the workload could read itself, as the kernel decides it */
	fd = attest_token_open(rootfd, path, who, &st);
	if (fd < 0) {
		r = fd;
		goto out;
	}
	if ((uint64_t)st.st_size >= cap) {
		r = -EFBIG;
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
	r = pid_alive(pidfd) ? 0 : -ESRCH;
out:
	if (fd >= 0)
		close(fd);
	if (rootfd >= 0)
		close(rootfd);
	close(pidfd);
	if (r < 0)
		explicit_bzero(buf, cap);
	else
		*ret_len = n;
	return r;
}
