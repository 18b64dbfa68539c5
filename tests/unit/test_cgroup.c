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

static void test_attest_self(void **state)
{
	struct attest_cache cache;
	struct attest_facts f, g;

	(void)state;
	memset(&cache, 0, sizeof(cache));
	assert_int_equal(attest_read(getpid(), boot_ns(), &cache, &f), 0);
	assert_true(f.start_time > 0);
	assert_non_null(strstr(f.exe, "test_cgroup"));
	assert_int_equal(f.cgroup[0], '/');
	assert_int_equal(strlen(f.exe_sha256), 64);
	/* the second read comes from the cache and agrees */
	assert_int_equal(attest_read(getpid(), boot_ns(), &cache, &g), 0);
	assert_string_equal(f.exe_sha256, g.exe_sha256);
	assert_int_equal(cache.next, 1);
	/* an event from before this process started: its pid was reused */
	assert_int_equal(attest_read(getpid(), 1000, &cache, &f), -ESTALE);
	assert_string_equal(f.exe, "?");
	/* a pid that cannot exist */
	assert_int_equal(attest_read(0x3fffffff, boot_ns(), NULL, &f), -ESRCH);
	assert_string_equal(f.exe, "?");
	assert_string_equal(f.cgroup, "?");
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
		cmocka_unit_test(test_systemd_scope),
		cmocka_unit_test(test_starttime),
		cmocka_unit_test(test_attest_self),
		cmocka_unit_test(test_pid_reused),
	};

	return cmocka_run_group_tests_name("cgroup", tests, NULL, NULL);
}
