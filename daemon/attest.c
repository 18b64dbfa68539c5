/*
 * /proc readers for attest_facts. The cgroup path comes from /proc/PID/cgroup and
 * never from mountinfo, which a bind mount inside the workload could forge.
 */
#include "attest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

int attest_read(pid_t pid, struct attest_facts *ret)
{
	char path[64], buf[4096];
	int first = 0;
	ssize_t n;

	ret->pid = pid;
	ret->start_time = 0;
	strcpy(ret->exe, "?");
	strcpy(ret->cgroup, "?");

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	n = read_small(path, buf, sizeof(buf));
	if (n < 0 || attest_parse_starttime(buf, &ret->start_time) < 0)
		first = n < 0 ? (int)n : -EINVAL;

	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	n = readlink(path, ret->exe, sizeof(ret->exe) - 1);
	if (n >= 0) {
		ret->exe[n] = '\0';
	} else {
		if (!first)
			first = -errno;
		strcpy(ret->exe, "?");
	}

	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	n = read_small(path, buf, sizeof(buf));
	if (n < 0 || cgroup_from_proc_text(buf, ret->cgroup, sizeof(ret->cgroup)) < 0) {
		if (!first)
			first = n < 0 ? (int)n : -ENOENT;
		strcpy(ret->cgroup, "?");
	}
	return first;
}
