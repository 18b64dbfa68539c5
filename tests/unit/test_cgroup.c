/* Unit tests for the pure parts of daemon/cgroup.c and daemon/attest.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <linux/capability.h>

#include "attest.h"
#include "cgroup.h"

static char *slurp(const char *name)
{
	char path[512];
	static char buf[8192];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/%s", FIXTURES, name);
	f = fopen(path, "r");
	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

static void test_mountinfo(void **state)
{
	char mp[256];

	(void)state;
	assert_int_equal(cgroup_mount_from_mountinfo(slurp("mountinfo-hybrid.txt"), mp, sizeof(mp)), 0);
	assert_string_equal(mp, "/sys/fs/cgroup/unified");
	assert_int_equal(cgroup_mount_from_mountinfo(slurp("mountinfo-escaped.txt"), mp, sizeof(mp)), 0);
	assert_string_equal(mp, "/mnt/my cgroups");
	/* a cgroup v1 mount named like cgroup2 is not the unified hierarchy */
	assert_int_equal(cgroup_mount_from_mountinfo(slurp("mountinfo-none.txt"), mp, sizeof(mp)), -ENOENT);
	assert_int_equal(cgroup_mount_from_mountinfo(slurp("mountinfo-hybrid.txt"), mp, 8), -ENAMETOOLONG);
	assert_int_equal(cgroup_mount_from_mountinfo("", mp, sizeof(mp)), -ENOENT);
}

static void test_escape_round_trip(void **state)
{
	static const char *const cases[][2] = {
		{ "/", "-" },
		{ "/ci", "ci" },
		{ "/ci/runner-1", "ci-runner\\x2d1" },
		{ "/system.slice/actions.runner.acme.service",
		  "system\\x2eslice-actions\\x2erunner\\x2eacme\\x2eservice" },
		{ "/.hidden/a b", "\\x2ehidden-a\\x20b" },
	};
	char esc[256], back[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(cgroup_escape(cases[i][0], esc, sizeof(esc)), 0);
		assert_string_equal(esc, cases[i][1]);
		assert_null(strchr(esc, '/'));
		assert_null(strchr(esc, '.')); /* bpffs refuses dots */
		assert_int_equal(cgroup_unescape(esc, back, sizeof(back)), 0);
		assert_string_equal(back, cases[i][0]);
	}
	assert_int_equal(cgroup_escape("/abcdef", esc, 4), -ENAMETOOLONG);
	assert_int_equal(cgroup_unescape("bad\\x4", back, sizeof(back)), -EINVAL);
}

static void test_proc_cgroup(void **state)
{
	char out[256];

	(void)state;
	assert_int_equal(cgroup_from_proc_text("9:name=systemd:/\n4:memory:/x\n0::/ci/job-7\n", out, sizeof(out)), 0);
	assert_string_equal(out, "/ci/job-7");
	assert_int_equal(cgroup_from_proc_text("0::/\n", out, sizeof(out)), 0);
	assert_string_equal(out, "/");
	assert_int_equal(cgroup_from_proc_text("4:memory:/x\n", out, sizeof(out)), -ENOENT);
}

/* The per-cgroup login cap counts a child cgroup under the attached one it is in. */
static void test_within(void **state)
{
	(void)state;
	assert_true(cgroup_within("/ci", "/ci"));
	assert_true(cgroup_within("/ci/job-7", "/ci"));
	assert_true(cgroup_within("/ci/job-7/x", "/ci/"));
	assert_false(cgroup_within("/ci2", "/ci"));
	assert_false(cgroup_within("/c", "/ci"));
	assert_false(cgroup_within("/other/ci", "/ci"));
	assert_true(cgroup_within("/anything", "/"));
	assert_false(cgroup_within("?", "/")); /* unknown is within nothing */
}

/* The id the connect hook records names the cgroup: by its process, or by a walk of
 * the subtree it is in when the process is gone (without open_by_handle_at). */
static void test_path_of_id(void **state)
{
	char mount[PATH_MAX], text[4096], own[PATH_MAX], parent[PATH_MAX], back[PATH_MAX];
	uint64_t id;
	FILE *f;
	size_t n;

	(void)state;
	if (cgroup_find_mount(mount, sizeof(mount)) < 0 || !(f = fopen("/proc/self/cgroup", "re")))
		skip();
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	assert_int_equal(cgroup_from_proc_text(text, own, sizeof(own)), 0);
	assert_int_equal(cgroup_id(mount, own, &id), 0);
	assert_int_equal(cgroup_path_of_pid(mount, getpid(), id, back, sizeof(back)), 0);
	assert_string_equal(back, own);
	/* the process is in another cgroup than that id */
	assert_int_equal(cgroup_path_of_pid(mount, getpid(), id + 1, back, sizeof(back)), -ESTALE);
	/* found below its parent, and as itself */
	assert_int_equal(cgroup_find_id(mount, own, id, back, sizeof(back)), 0);
	assert_string_equal(back, own);
	if (strcmp(own, "/") == 0)
		return;
	snprintf(parent, sizeof(parent), "%s", own);
	*strrchr(parent, '/') = '\0';
	if (!parent[0])
		strcpy(parent, "/");
	back[0] = '\0';
	n = (size_t)cgroup_find_id(mount, parent, id, back, sizeof(back));
	if ((int)n == -E2BIG)
		skip(); /* a host with more cgroups there than one walk looks at */
	assert_int_equal((int)n, 0);
	assert_string_equal(back, own);
	/* no such cgroup there (the walk of a subtree without it) */
	assert_int_equal(cgroup_find_id(mount, own, 1ull << 62, back, sizeof(back)), -ENOENT);
}

static void test_systemd_scope(void **state)
{
	char slice[64], unit[64];

	(void)state;
	assert_int_equal(cgroup_systemd_scope("/pgtether.slice/job-7.scope", slice, sizeof(slice), unit, sizeof(unit)), 0);
	assert_string_equal(slice, "pgtether.slice");
	assert_string_equal(unit, "job-7.scope");
	assert_int_equal(cgroup_systemd_scope("/a.slice/a-b.slice/x.scope", slice, sizeof(slice), unit, sizeof(unit)), 0);
	assert_string_equal(slice, "a-b.slice");
	assert_string_equal(unit, "x.scope");
	/* not systemd's shape: the caller writes cgroup.procs itself */
	assert_int_equal(cgroup_systemd_scope("/a.slice/b.slice/x.scope", slice, sizeof(slice), unit, sizeof(unit)), -EINVAL);
	assert_int_equal(cgroup_systemd_scope("/x.scope", slice, sizeof(slice), unit, sizeof(unit)), -EINVAL);
	assert_int_equal(cgroup_systemd_scope("/ci/job", slice, sizeof(slice), unit, sizeof(unit)), -EINVAL);
	assert_int_equal(cgroup_systemd_scope("/a.slice/x.service", slice, sizeof(slice), unit, sizeof(unit)), -EINVAL);
	assert_int_equal(cgroup_systemd_scope("/a.slice//x.scope", slice, sizeof(slice), unit, sizeof(unit)), -EINVAL);
	assert_int_equal(cgroup_systemd_scope("/a.slice/x.scope", slice, 4, unit, sizeof(unit)), -EINVAL);
}

static void test_starttime(void **state)
{
	uint64_t st = 0;
	/* comm with spaces and a ')' must not shift the fields */
	static const char stat[] =
		"4242 (evil) (x y) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 "
		"1000000 200 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0";

	(void)state;
	assert_int_equal(attest_parse_starttime(stat, &st), 0);
	assert_int_equal(st, 987654);
	assert_int_equal(attest_parse_starttime("4242 (x) S 1 2", &st), -EINVAL);
	assert_int_equal(attest_parse_starttime("no parens", &st), -EINVAL);
}

static uint64_t boot_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* What the connect hook would have recorded for this process now. */
static void self_origin(struct attest_origin *o, char *mount, size_t len)
{
	static char text[4096], cg[4096];
	struct stat st;
	FILE *f;
	size_t n;

	assert_int_equal(cgroup_find_mount(mount, len), 0);
	f = fopen("/proc/self/cgroup", "r");
	assert_non_null(f);
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	assert_int_equal(cgroup_from_proc_text(text, cg, sizeof(cg)), 0);
	memset(o, 0, sizeof(*o));
	assert_int_equal(cgroup_id(mount, cg, &o->cgroup_id), 0);
	assert_int_equal(stat("/proc/self/exe", &st), 0);
	o->pid = getpid();
	o->connect_boot_ns = boot_ns();
	o->uid = getuid();
	o->gid = getgid();
	o->exe_ino = st.st_ino;
	o->exe_dev = (uint32_t)(major(st.st_dev) << 20 | minor(st.st_dev));
	o->exe_ctime_ns = (uint64_t)st.st_ctim.tv_sec * 1000000000ull + (uint64_t)st.st_ctim.tv_nsec;
	o->cgroup_mount = mount;
}

static void test_attest_self(void **state)
{
	struct attest_origin o, bad;
	struct attest_facts f;
	struct attest_cache cache;
	char mount[4096], why[ATTEST_WHY_LEN], sha[65], again[65];
	int fd = -1;

	(void)state;
	self_origin(&o, mount, sizeof(mount));
	assert_int_equal(attest_read(&o, &f, &fd, why, sizeof(why)), ATTEST_OK);
	assert_true(fd >= 0);
	assert_true(f.start_time > 0);
	assert_non_null(strstr(f.exe, "test_cgroup"));
	assert_true(f.exe_foreign); /* until vouched for: */
	{
		bool vouched = false;
		struct attest_facts other = f;

		assert_int_equal(attest_vouch_exe(&f, &vouched, why, sizeof(why)), ATTEST_OK);
		assert_true(vouched);
		/* another process's start time: not the one read, never vouched for */
		other.start_time++;
		assert_int_equal(attest_vouch_exe(&other, &vouched, why, sizeof(why)), ATTEST_GONE);
	}
	assert_int_equal(f.cgroup[0], '/');
	assert_int_equal(attest_hash_fd(fd, &f.exe_key, NULL, NULL, sha, why, sizeof(why)), ATTEST_OK);
	assert_int_equal(strlen(sha), 64);
	close(fd);
	memset(&cache, 0, sizeof(cache));
	assert_false(attest_cache_get(&cache, &f.exe_key, again));
	attest_cache_put(&cache, &f.exe_key, sha);
	assert_true(attest_cache_get(&cache, &f.exe_key, again));
	assert_string_equal(again, sha);

	/* each fact the kernel recorded at connect() must still hold */
	bad = o;
	bad.cgroup_id++;
	assert_int_equal(attest_read(&bad, &f, NULL, why, sizeof(why)), ATTEST_CHANGED);
	assert_memory_equal(why, "cgroup: ", 8);
	bad = o;
	bad.exe_ino++;
	assert_int_equal(attest_read(&bad, &f, NULL, why, sizeof(why)), ATTEST_CHANGED);
	assert_memory_equal(why, "exe: ", 5);
	bad = o;
	bad.exe_dev ^= 1;
	assert_int_equal(attest_read(&bad, &f, NULL, why, sizeof(why)), ATTEST_CHANGED);
	bad = o;
	bad.exe_ctime_ns--; /* rewritten in place since */
	assert_int_equal(attest_read(&bad, &f, NULL, why, sizeof(why)), ATTEST_CHANGED);
	assert_non_null(strstr(why, "modified or replaced"));
	bad = o;
	bad.exe_ino = 0; /* the hook found no executable */
	assert_int_equal(attest_read(&bad, &f, NULL, why, sizeof(why)), ATTEST_CHANGED);
	bad = o;
	bad.uid++;
	assert_int_equal(attest_read(&bad, &f, NULL, why, sizeof(why)), ATTEST_CHANGED);
	assert_memory_equal(why, "uid: ", 5);
	bad = o;
	bad.gid++;
	assert_int_equal(attest_read(&bad, &f, NULL, why, sizeof(why)), ATTEST_CHANGED);
	assert_memory_equal(why, "gid: ", 5);
	/* an event from before this process started: its pid was reused */
	bad = o;
	bad.connect_boot_ns = 1000;
	assert_int_equal(attest_read(&bad, &f, NULL, why, sizeof(why)), ATTEST_REUSED);
	/* a pid that cannot exist */
	bad = o;
	bad.pid = 0x3fffffff;
	assert_int_equal(attest_read(&bad, &f, NULL, why, sizeof(why)), ATTEST_GONE);
	assert_string_equal(f.exe, "?");
	assert_string_equal(f.cgroup, "?");
}

/* A process that connected and exited is gone, zombie or reaped, never "?". */
static void test_attest_exited(void **state)
{
	struct attest_origin o;
	struct attest_facts f;
	char mount[4096], why[ATTEST_WHY_LEN];
	pid_t child;

	(void)state;
	self_origin(&o, mount, sizeof(mount));
	child = fork();
	assert_true(child >= 0);
	if (child == 0)
		_exit(0);
	o.pid = child;
	usleep(100000); /* a zombie now: exited, not reaped */
	assert_int_equal(attest_read(&o, &f, NULL, why, sizeof(why)), ATTEST_GONE);
	assert_non_null(strstr(why, "has exited"));
	assert_int_equal(waitpid(child, NULL, 0), child);
	assert_int_equal(attest_read(&o, &f, NULL, why, sizeof(why)), ATTEST_GONE);
}

static void test_status_ids(void **state)
{
	uint32_t uid = 0, gid = 0;

	(void)state;
	assert_int_equal(attest_parse_status_ids("Name:\tx\nUid:\t1001\t0\t0\t0\nGid:\t1002\t0\t0\t0\n", &uid, &gid), 0);
	assert_int_equal(uid, 1001);
	assert_int_equal(gid, 1002);
	assert_int_equal(attest_parse_status_ids("Name:\tx\nUid:\t1001\n", &uid, &gid), -EINVAL);
	assert_int_equal(attest_parse_status_ids("Name:\tx\nUid:\tx\nGid:\t1\n", &uid, &gid), -EINVAL);
}

static void test_status_groups(void **state)
{
	uint32_t g[3];
	size_t n = 99;

	(void)state;
	assert_int_equal(attest_parse_status_groups("Gid:\t1\t1\t1\t1\nGroups:\t4 24 1000 \nNStgid:\t1\n", g, 3, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(g[0], 4);
	assert_int_equal(g[2], 1000);
	assert_int_equal(attest_parse_status_groups("x\nGroups:\t\nNStgid:\t1\n", g, 3, &n), 0);
	assert_int_equal(n, 0);
	/* more than kept, or cut off by the buffer it was read into: not a shorter list */
	assert_int_equal(attest_parse_status_groups("x\nGroups:\t1 2 3 4\n", g, 3, &n), -E2BIG);
	assert_int_equal(attest_parse_status_groups("x\nGroups:\t1 2", g, 3, &n), -E2BIG);
	assert_int_equal(attest_parse_status_groups("x\nGroups:\t1 -2\n", g, 3, &n), -EINVAL);
	assert_int_equal(attest_parse_status_groups("x\nUid:\t1\n", g, 3, &n), -EINVAL);
}

/* Drops the file capabilities (CAP_DAC_*, CAP_FOWNER) from this thread's effective and
 * permitted sets, as under the shipped unit, where root reads only by mode bits. */
static void drop_file_caps(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct d[2];
	static const int caps[] = { CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER };

	assert_int_equal(syscall(SYS_capget, &h, d), 0);
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		d[CAP_TO_INDEX(caps[i])].effective &= ~CAP_TO_MASK(caps[i]);
		d[CAP_TO_INDEX(caps[i])].permitted &= ~CAP_TO_MASK(caps[i]);
	}
	assert_int_equal(syscall(SYS_capset, &h, d), 0);
}

struct as_workload_result {
	int hash_root, hash_owner, hash_other, tok_own, tok_hidden, tok_group, tok_nogroup;
	char why_other[ATTEST_WHY_LEN];
	uid_t fsuid_after;
};

/* On a thread of its own: the capabilities it drops are its own only. */
static void *as_workload_thread(void *arg)
{
	struct as_workload_result *res = arg;
	char dir[] = "/tmp/pgtether-test-fscreds-XXXXXX", p[PATH_MAX + 64], sha[65], tok[64];
	struct attest_creds owner = { .uid = 65534, .gid = 65534 }, other = { .uid = 4321, .gid = 4321 };
	struct attest_exe_key key;
	struct stat st;
	size_t len;
	int fd;

	if (!mkdtemp(dir))
		return NULL;
	chmod(dir, 0755);
	/* an executable of the workload's own, mode 0700 */
	snprintf(p, sizeof(p), "%s/exe", dir);
	fd = open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0700);
	if (fd < 0 || write(fd, "abc", 3) != 3 || fchown(fd, 65534, 65534) != 0 || fstat(fd, &st) != 0)
		return NULL;
	close(fd);
	/* its token, mode 0600; one behind a directory only root may search; one for a group */
	snprintf(p, sizeof(p), "%s/token", dir);
	fd = open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, "tok\n", 4) != 4 || fchown(fd, 65534, 65534) != 0)
		return NULL;
	close(fd);
	snprintf(p, sizeof(p), "%s/root-only", dir);
	if (mkdir(p, 0700) != 0)
		return NULL;
	snprintf(p, sizeof(p), "%s/root-only/token", dir);
	fd = open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, "hidden", 6) != 6)
		return NULL;
	close(fd);
	snprintf(p, sizeof(p), "%s/group-token", dir);
	fd = open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0640);
	if (fd < 0 || write(fd, "grp", 3) != 3 || fchown(fd, 0, 4242) != 0)
		return NULL;
	close(fd);

	drop_file_caps();
	memset(&key, 0, sizeof(key));
	key.dev = st.st_dev;
	key.ino = st.st_ino;
	key.size = (uint64_t)st.st_size;
	key.mtime_ns = (uint64_t)st.st_mtim.tv_sec * 1000000000ull + (uint64_t)st.st_mtim.tv_nsec;
	key.ctime_ns = (uint64_t)st.st_ctim.tv_sec * 1000000000ull + (uint64_t)st.st_ctim.tv_nsec;
	snprintf(p, sizeof(p), "%s/exe", dir);
	fd = open(p, O_PATH | O_CLOEXEC);
	res->hash_root = attest_hash_fd(fd, &key, NULL, NULL, sha, res->why_other, sizeof(res->why_other));
	res->hash_owner = attest_hash_fd(fd, &key, &owner, NULL, sha, res->why_other, sizeof(res->why_other));
	res->hash_other = attest_hash_fd(fd, &key, &other, NULL, sha, res->why_other, sizeof(res->why_other));
	close(fd);

	/* this very process stands for the workload; its root is / */
	snprintf(p, sizeof(p), "%s/token", dir);
	res->tok_own = attest_read_token(getpid(), boot_ns(), &owner, p, tok, sizeof(tok), &len);
	snprintf(p, sizeof(p), "%s/root-only/token", dir);
	res->tok_hidden = attest_read_token(getpid(), boot_ns(), &owner, p, tok, sizeof(tok), &len);
	snprintf(p, sizeof(p), "%s/group-token", dir);
	owner.n_groups = 1;
	owner.groups[0] = 4242;
	res->tok_group = attest_read_token(getpid(), boot_ns(), &owner, p, tok, sizeof(tok), &len);
	owner.n_groups = ATTEST_GROUPS_MAX + 1;
	res->tok_nogroup = attest_read_token(getpid(), boot_ns(), &owner, p, tok, sizeof(tok), &len);
	res->fsuid_after = (uid_t)syscall(SYS_setfsuid, -1);

	snprintf(p, sizeof(p), "rm -rf '%s'", dir);
	if (system(p) != 0)
		return NULL;
	return res;
}

/* Files read for a workload are opened as the workload: its own (mode 0600 or 0700)
 * without CAP_DAC_READ_SEARCH, and never one it could not open (a directory it may
 * not search, another user's executable) whatever root may. */
static void test_as_workload(void **state)
{
	struct as_workload_result res;
	pthread_t t;
	void *ok = NULL;

	(void)state;
	if (geteuid() != 0)
		skip();
	memset(&res, 0, sizeof(res));
	assert_int_equal(pthread_create(&t, NULL, as_workload_thread, &res), 0);
	assert_int_equal(pthread_join(t, &ok), 0);
	assert_non_null(ok);
	assert_int_equal(res.hash_root, ATTEST_UNREADABLE);
	assert_int_equal(res.hash_owner, ATTEST_OK);
	assert_int_equal(res.hash_other, ATTEST_UNREADABLE);
	assert_non_null(strstr(res.why_other, "nor the workload's uid 4321 may read it"));
	assert_int_equal(res.tok_own, 0);
	assert_int_equal(res.tok_hidden, -EACCES);
	assert_int_equal(res.tok_group, 0);
	assert_int_equal(res.tok_nogroup, -E2BIG);
	assert_int_equal(res.fsuid_after, 0);
}

static void wait_readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	assert_int_equal(poll(&p, 1, 10000), 1);
}

static void file_key(int fd, struct attest_exe_key *key)
{
	struct stat st;

	assert_int_equal(fstat(fd, &st), 0);
	memset(key, 0, sizeof(*key));
	key->dev = st.st_dev;
	key->ino = st.st_ino;
	key->size = (uint64_t)st.st_size;
	key->mtime_ns = (uint64_t)st.st_mtim.tv_sec * 1000000000ull + (uint64_t)st.st_mtim.tv_nsec;
	key->ctime_ns = (uint64_t)st.st_ctim.tv_sec * 1000000000ull + (uint64_t)st.st_ctim.tv_nsec;
}

/* The executable's hash, as a job of the file-system threads (ATTEST_FS_HASH). */
static void test_hasher(void **state)
{
	struct attest_fs *p = NULL;
	struct attest_fs_job *j = calloc(1, sizeof(*j));
	struct attest_fs_done *d = calloc(1, sizeof(*d));
	struct attest_exe_key key;
	char path[] = "/tmp/pgtether-test-hash-XXXXXX", why[ATTEST_WHY_LEN];
	uint64_t job = 0;
	int fd;

	(void)state;
	assert_non_null(j);
	assert_non_null(d);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "abc", 3), 3);
	file_key(fd, &key);

	assert_int_equal(attest_fs_start(&p, 16), 0);
	j->kind = ATTEST_FS_HASH;
	j->tag = 7;
	j->key = 1;
	j->facts.exe_key = key;
	j->fd = dup(fd);
	assert_int_equal(attest_fs_submit(p, j, &job), ATTEST_OK);
	wait_readable(attest_fs_fd(p));
	assert_int_equal(attest_fs_collect(p, d), 1);
	assert_int_equal(d->tag, 7);
	assert_int_equal(d->job, job);
	assert_int_equal(d->kind, ATTEST_FS_HASH);
	assert_int_equal(d->result, ATTEST_OK);
	assert_int_equal(d->fd, -1); /* closed by the thread */
	assert_memory_equal(&d->exe_key, &key, sizeof(key));
	assert_string_equal(d->sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	attest_fs_done_release(d);
	assert_int_equal(attest_fs_collect(p, d), 0);
	assert_int_equal(attest_fs_free(p), 0);

	/* written after its key was taken: the hash would be of other bytes */
	usleep(10000);
	assert_int_equal(pwrite(fd, "x", 1, 0), 1);
	assert_int_equal(attest_hash_fd(fd, &key, NULL, NULL, d->sha256, why, sizeof(why)), ATTEST_CHANGED);
	/* too large to hash (by its key): refused, not read */
	key.size = ATTEST_HASH_MAX_BYTES + 1;
	assert_int_equal(attest_hash_fd(fd, &key, NULL, NULL, d->sha256, why, sizeof(why)), ATTEST_UNREADABLE);
	assert_non_null(strstr(why, "more than"));
	close(fd);
	unlink(path);
	free(j);
	free(d);
}

/* An executable whose open never returns (here a FIFO's O_PATH fd: opening it for
 * reading waits for a writer, as a FUSE server that never answers makes it wait)
 * holds only its workload's share of the threads: another workload's hash is done
 * at once, the stuck workload's further jobs wait behind its own, a cancelled one
 * never runs, and the pool stops without waiting for the stuck ones. */
static void test_hash_stuck(void **state)
{
	struct attest_fs *p = NULL;
	struct attest_fs_job *j = calloc(1, sizeof(*j));
	struct attest_fs_done *d = calloc(1, sizeof(*d));
	char dir[] = "/tmp/pgtether-test-hashfifo-XXXXXX", fifo[64], path[64];
	struct pollfd pf;
	uint64_t job[4] = { 0 }, other = 0;
	int fd, ffd, wfd;

	(void)state;
	assert_non_null(j);
	assert_non_null(d);
	assert_non_null(mkdtemp(dir));
	snprintf(fifo, sizeof(fifo), "%s/exe", dir);
	snprintf(path, sizeof(path), "%s/ok", dir);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	ffd = open(fifo, O_PATH | O_CLOEXEC);
	assert_true(ffd >= 0);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0700);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "abc", 3), 3);

	assert_int_equal(attest_fs_start(&p, 16), 0);
	j->kind = ATTEST_FS_HASH;
	j->key = 1; /* the stuck workload: four logins */
	file_key(ffd, &j->facts.exe_key);
	for (int i = 0; i < 4; i++) {
		j->tag = (uint64_t)i;
		j->fd = dup(ffd);
		assert_int_equal(attest_fs_submit(p, j, &job[i]), ATTEST_OK);
	}
	for (int i = 0; i < 50 && attest_fs_running(p) < 2; i++)
		usleep(10000);
	assert_int_equal(attest_fs_running(p), 2);
	attest_fs_cancel(p, job[3]); /* waiting: never runs */
	j->key = 2; /* another workload */
	j->tag = 9;
	file_key(fd, &j->facts.exe_key);
	j->fd = dup(fd);
	assert_int_equal(attest_fs_submit(p, j, &other), ATTEST_OK);
	pf = (struct pollfd){ .fd = attest_fs_fd(p), .events = POLLIN };
	assert_int_equal(poll(&pf, 1, 2000), 1);
	assert_int_equal(attest_fs_collect(p, d), 1);
	assert_int_equal(d->job, other);
	assert_int_equal(d->result, ATTEST_OK);
	assert_string_equal(d->sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	attest_fs_done_release(d);
	assert_int_equal(attest_fs_collect(p, d), 0);
	assert_int_equal(attest_fs_running(p), 2); /* the third waits behind them */
	/* stopping does not wait for the two stuck in open() */
	assert_int_equal(attest_fs_free(p), 2);
	/* a writer lets their open return (EOF: the threads see the stop, and the last
	 * frees the pool) */
	wfd = open(fifo, O_WRONLY | O_CLOEXEC);
	assert_true(wfd >= 0);
	usleep(200000);
	close(wfd);
	usleep(200000);
	close(ffd);
	close(fd);
	unlink(fifo);
	unlink(path);
	rmdir(dir);
	free(j);
	free(d);
}

/* A stop while a hash is merely slow (a large executable) does not count it as stuck:
 * the hash sees its cancel between two reads, and the stop waits that long for it
 * (before, every running hash was left behind, and the daemon took the _exit path of
 * a file system that never answers). */
static void test_hash_slow_stop(void **state)
{
	struct attest_fs *p = NULL;
	struct attest_fs_job *j = calloc(1, sizeof(*j));
	char path[] = "/tmp/pgtether-test-bigexe-XXXXXX";
	uint64_t job = 0;
	int fd;

	(void)state;
	assert_non_null(j);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	/* sparse: 1.5 GiB of zeros to read, a second or more of SHA-256 */
	assert_int_equal(ftruncate(fd, 3l << 29), 0);
	assert_int_equal(attest_fs_start(&p, 16), 0);
	j->kind = ATTEST_FS_HASH;
	j->key = 1;
	j->tag = 1;
	file_key(fd, &j->facts.exe_key);
	j->fd = dup(fd);
	assert_int_equal(attest_fs_submit(p, j, &job), ATTEST_OK);
	for (int i = 0; i < 100 && attest_fs_running(p) < 1; i++)
		usleep(10000);
	assert_int_equal(attest_fs_running(p), 1);
	assert_int_equal(attest_fs_free(p), 0);
	close(fd);
	free(j);
}

/* The file-system threads: a token file and the executable's path, off the caller's
 * thread, each result under its own job number; the queue bounded. */
static void test_fs_threads(void **state)
{
	struct attest_fs *p = NULL;
	struct attest_fs_job *j = calloc(1, sizeof(*j));
	struct attest_fs_done *d = calloc(1, sizeof(*d));
	struct attest_origin o;
	char dir[] = "/tmp/pgtether-test-fsjob-XXXXXX", mount[4096], why[ATTEST_WHY_LEN];
	uint64_t job1 = 0, job2 = 0, n = 0;
	int fd = -1, busy = 0, got = 0;
	FILE *f;

	(void)state;
	assert_non_null(j);
	assert_non_null(d);
	assert_non_null(mkdtemp(dir));
	snprintf(j->path, sizeof(j->path), "%s/token", dir);
	f = fopen(j->path, "w");
	assert_non_null(f);
	fputs("tok-abc\n", f);
	fclose(f);
	assert_int_equal(attest_fs_start(&p, 16), 0);
	assert_int_equal(attest_fs_collect(p, d), 0);

	j->kind = ATTEST_FS_TOKEN;
	j->tag = 5;
	j->pid = getpid();
	j->connect_boot_ns = boot_ns();
	j->facts.creds = (struct attest_creds){ .uid = getuid(), .gid = getgid() };
	j->token_cap = 64;
	j->fd = -1;
	assert_int_equal(attest_fs_submit(p, j, &job1), ATTEST_OK);
	wait_readable(attest_fs_fd(p));
	assert_int_equal(attest_fs_collect(p, d), 1);
	assert_int_equal(d->tag, 5);
	assert_int_equal(d->job, job1);
	assert_int_equal(d->kind, ATTEST_FS_TOKEN);
	assert_int_equal(d->token_r, 0);
	assert_int_equal(d->token_len, 7);
	assert_memory_equal(d->token, "tok-abc", 7);
	assert_string_equal(d->path, j->path);
	attest_fs_done_release(d);

	/* the executable's path: vouched for (pgtetherd's own mount namespace), and the
	 * fd it carries comes back */
	self_origin(&o, mount, sizeof(mount));
	assert_int_equal(attest_read(&o, &j->facts, &fd, why, sizeof(why)), ATTEST_OK);
	assert_true(j->facts.exe_foreign);
	j->kind = ATTEST_FS_VOUCH;
	j->tag = 6;
	j->fd = fd;
	assert_int_equal(attest_fs_submit(p, j, &job2), ATTEST_OK);
	assert_true(job2 > job1);
	wait_readable(attest_fs_fd(p));
	assert_int_equal(attest_fs_collect(p, d), 1);
	assert_int_equal(d->job, job2);
	assert_int_equal(d->result, ATTEST_OK);
	assert_true(d->vouched);
	assert_int_equal(d->fd, fd);
	attest_fs_done_release(d);

	/* results not collected count against the bound: more is refused */
	j->kind = ATTEST_FS_TOKEN;
	j->fd = -1;
	for (int i = 0; i < 16 + 4; i++)
		busy += attest_fs_submit(p, j, &n) == ATTEST_BUSY;
	assert_true(busy >= 4);
	while (got < 16 + 4 - busy) {
		wait_readable(attest_fs_fd(p));
		while (attest_fs_collect(p, d)) {
			assert_int_equal(d->token_r, 0);
			attest_fs_done_release(d);
			got++;
		}
	}
	assert_int_equal(attest_fs_running(p), 0);
	assert_int_equal(attest_fs_free(p), 0);
	assert_int_equal(attest_fs_free(NULL), 0);
	unlink(j->path);
	rmdir(dir);
	free(j);
	free(d);
}

static void test_pid_reused(void **state)
{
	(void)state;
	/* started at 10.00 s; connect at 10.005 s: the same process (tick rounding) */
	assert_false(attest_pid_reused(1000, 100, 10005000000ull));
	assert_false(attest_pid_reused(1000, 100, 10000000000ull + 10000000ull));
	/* started at 12 s, connect at 10 s: another process */
	assert_true(attest_pid_reused(1200, 100, 10000000000ull));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mountinfo),
		cmocka_unit_test(test_escape_round_trip),
		cmocka_unit_test(test_proc_cgroup),
		cmocka_unit_test(test_within),
		cmocka_unit_test(test_path_of_id),
		cmocka_unit_test(test_systemd_scope),
		cmocka_unit_test(test_starttime),
		cmocka_unit_test(test_attest_self),
		cmocka_unit_test(test_attest_exited),
		cmocka_unit_test(test_status_ids),
		cmocka_unit_test(test_status_groups),
		cmocka_unit_test(test_as_workload),
		cmocka_unit_test(test_hasher),
		cmocka_unit_test(test_hash_stuck),
		cmocka_unit_test(test_hash_slow_stop),
		cmocka_unit_test(test_fs_threads),
		cmocka_unit_test(test_pid_reused),
	};

	return cmocka_run_group_tests_name("cgroup", tests, NULL, NULL);
}
