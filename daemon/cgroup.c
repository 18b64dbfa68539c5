/*
 * cgroup2 helpers. The mountinfo and /proc/PID/cgroup parsers are pure; the rest
 * are thin syscalls with errors returned as -errno.
 */
#include "cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <dirent.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Copies a mountinfo field, decoding \ooo escapes (space, tab, newline, backslash). */
static int copy_field(const char *s, size_t n, char *ret, size_t len)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		char ch = s[i];

		if (ch == '\\' && i + 3 < n &&
		    s[i + 1] >= '0' && s[i + 1] <= '3' && s[i + 2] >= '0' && s[i + 2] <= '7' &&
		    s[i + 3] >= '0' && s[i + 3] <= '7') {
			ch = (char)((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
			i += 3;
		}
		if (o + 1 >= len)
			return -ENAMETOOLONG;
		ret[o++] = ch;
	}
	ret[o] = '\0';
	return 0;
}

int cgroup_mount_from_mountinfo(const char *text, char *ret, size_t len)
{
	const char *line = text;

	while (line && *line) {
		const char *eol = strchr(line, '\n');
		const char *end = eol ? eol : line + strlen(line);
		const char *f[10], *sep, *p = line;
		int nf = 0;

		/* Fields: id parent maj:min root mountpoint options [optional...] - fstype source super */
		while (p < end && nf < 5) {
			f[nf++] = p;
			while (p < end && *p != ' ')
				p++;
			while (p < end && *p == ' ')
				p++;
		}
		sep = NULL;
		for (const char *q = p; q + 2 < end + 1; q++)
			if (q[0] == '-' && (q == line || q[-1] == ' ') && (q + 1 == end || q[1] == ' ')) {
				sep = q;
				break;
			}
		if (nf == 5 && sep && (size_t)(end - sep) > 9 && strncmp(sep + 2, "cgroup2 ", 8) == 0) {
			const char *mp = f[4];
			size_t mlen = (size_t)(strchr(mp, ' ') - mp);

			return copy_field(mp, mlen, ret, len);
		}
		line = eol ? eol + 1 : NULL;
	}
	return -ENOENT;
}

int cgroup_find_mount(char *ret, size_t len)
{
	char *text = NULL;
	size_t cap = 0, n = 0;
	FILE *f;
	int r;

	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return -errno;
	for (;;) {
		size_t got;

		if (cap - n < 4096) {
			char *bigger = realloc(text, cap + 65536);

			if (!bigger) {
				free(text);
				fclose(f);
				return -ENOMEM;
			}
			text = bigger;
			cap += 65536;
		}
		got = fread(text + n, 1, cap - n - 1, f);
		n += got;
		if (got == 0)
			break;
	}
	fclose(f);
	text[n] = '\0';
	r = cgroup_mount_from_mountinfo(text, ret, len);
	free(text);
	return r;
}

static int is_plain(unsigned char ch)
{
	/* no '.': bpffs refuses names that contain one (EPERM) */
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '_';
}

int cgroup_escape(const char *path, char *ret, size_t len)
{
	size_t o = 0;
	const char *p = path;

	while (*p == '/')
		p++;
	if (!*p) {
		if (len < 2)
			return -ENAMETOOLONG;
		strcpy(ret, "-");
		return 0;
	}
	for (; *p; p++) {
		unsigned char ch = (unsigned char)*p;
		char esc[5];
		size_t n;

		if (ch == '/') {
			esc[0] = '-';
			n = 1;
		} else if (is_plain(ch)) {
			esc[0] = (char)ch;
			n = 1;
		} else {
			snprintf(esc, sizeof(esc), "\\x%02x", ch);
			n = 4;
		}
		if (o + n + 1 > len)
			return -ENAMETOOLONG;
		memcpy(ret + o, esc, n);
		o += n;
	}
	ret[o] = '\0';
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int cgroup_unescape(const char *name, char *ret, size_t len)
{
	size_t o = 0;

	if (strcmp(name, "-") == 0) {
		if (len < 2)
			return -ENAMETOOLONG;
		strcpy(ret, "/");
		return 0;
	}
	if (len < 2)
		return -ENAMETOOLONG;
	ret[o++] = '/';
	for (const char *p = name; *p; p++) {
		char ch = *p;

		if (ch == '-') {
			ch = '/';
		} else if (ch == '\\') {
			if (p[1] != 'x' || hexval(p[2]) < 0 || hexval(p[3]) < 0)
				return -EINVAL;
			ch = (char)(hexval(p[2]) * 16 + hexval(p[3]));
			p += 3;
		}
		if (o + 2 > len)
			return -ENAMETOOLONG;
		ret[o++] = ch;
	}
	ret[o] = '\0';
	return 0;
}

static int full_path(const char *mount, const char *path, char *ret, size_t len)
{
	int n = snprintf(ret, len, "%s%s", mount, strcmp(path, "/") == 0 ? "" : path);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int cgroup_id(const char *mount, const char *path, uint64_t *ret)
{
	char full[PATH_MAX];
	struct stat st;
	int r;

	if ((r = full_path(mount, path, full, sizeof(full))) < 0)
		return r;
	if (stat(full, &st) == -1)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	*ret = (uint64_t)st.st_ino;
	return 0;
}

int cgroup_create(const char *mount, const char *path)
{
	char full[PATH_MAX];
	int r;

	if ((r = full_path(mount, path, full, sizeof(full))) < 0)
		return r;
	/* mkdir -p, below the mount only */
	for (char *p = full + strlen(mount) + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(full, 0755) == -1 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(full, 0755) == -1 && errno != EEXIST)
		return -errno;
	return 0;
}

int cgroup_enter(const char *mount, const char *path, pid_t pid)
{
	char full[PATH_MAX], num[32];
	int fd, n, r = 0;

	if ((r = full_path(mount, path, full, sizeof(full))) < 0)
		return r;
	if (strlen(full) + sizeof("/cgroup.procs") > sizeof(full))
		return -ENAMETOOLONG;
	strcat(full, "/cgroup.procs");
	fd = open(full, O_WRONLY | O_CLOEXEC);
	if (fd == -1)
		return -errno;
	n = snprintf(num, sizeof(num), "%d\n", (int)pid);
	if (write(fd, num, (size_t)n) != n)
		r = -errno;
	close(fd);
	return r;
}

int cgroup_from_proc_text(const char *text, char *ret, size_t len)
{
	const char *line = text;

	while (line && *line) {
		const char *eol = strchr(line, '\n');
		size_t n = eol ? (size_t)(eol - line) : strlen(line);

		if (n >= 3 && strncmp(line, "0::", 3) == 0) {
			if (n - 3 + 1 > len)
				return -ENAMETOOLONG;
			memcpy(ret, line + 3, n - 3);
			ret[n - 3] = '\0';
			return 0;
		}
		line = eol ? eol + 1 : NULL;
	}
	return -ENOENT;
}

int cgroup_path_of_pid(const char *mount, pid_t pid, uint64_t id, char *ret, size_t len)
{
	char p[64], text[4096], path[PATH_MAX];
	ssize_t n, total = 0;
	uint64_t now;
	int fd, r;

	snprintf(p, sizeof(p), "/proc/%d/cgroup", (int)pid);
	if ((fd = open(p, O_RDONLY | O_CLOEXEC)) == -1)
		return -errno;
	while ((size_t)total + 1 < sizeof(text) && (n = read(fd, text + total, sizeof(text) - 1 - (size_t)total)) > 0)
		total += n;
	close(fd);
	text[total] = '\0';
	if ((r = cgroup_from_proc_text(text, path, sizeof(path))) < 0)
		return r;
	/* the process may have moved, or its pid gone to another: the id says */
	if ((r = cgroup_id(mount, path, &now)) < 0)
		return r;
	if (now != id)
		return -ESTALE;
	if (snprintf(ret, len, "%s", path) >= (int)len)
		return -ENAMETOOLONG;
	return 0;
}

/*
 * Directories one cgroup_find_id opens at most, and how deep it looks. It runs on the
 * parent's event loop, for a connection whose process is gone, and a workload that
 * may create cgroups below its own could otherwise make each such connection cost a
 * walk of thousands: at ~10 us a directory, at most ~10 ms.
 */
#define CGROUP_FIND_DIRS 1024
#define CGROUP_FIND_DEPTH 32

/* Looks below the directory dfd (taken, closed) whose path is path[0..at). */
static int cgroup_find_below(int dfd, uint64_t id, char *path, size_t len, size_t at, unsigned depth, unsigned *budget)
{
	struct dirent *e;
	int r = -ENOENT;
	DIR *d;

	if (!(d = fdopendir(dfd))) {
		close(dfd);
		return -ENOENT;
	}
	while (r == -ENOENT && (e = readdir(d))) {
		size_t nl = strlen(e->d_name);
		struct stat st;
		int cfd;

		/* cgroup2 (kernfs) fills d_type, and d_ino is the cgroup id */
		if (e->d_type != DT_DIR || !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || at + 1 + nl + 1 > len)
			continue;
		path[at] = '/';
		memcpy(path + at + 1, e->d_name, nl + 1);
		if ((uint64_t)e->d_ino == id && fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISDIR(st.st_mode) && (uint64_t)st.st_ino == id) {
			r = 0;
			break;
		}
		if (depth + 1 >= CGROUP_FIND_DEPTH)
			continue;
		if (*budget == 0) {
			r = -E2BIG;
			break;
		}
		(*budget)--;
		/* one we may not search (mode 0700, another user's) is not there for us */
		cfd = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (cfd >= 0)
			r = cgroup_find_below(cfd, id, path, len, at + 1 + nl, depth + 1, budget);
	}
	closedir(d);
	if (r < 0)
		path[at] = '\0';
	return r;
}

int cgroup_find_id(const char *mount, const char *under, uint64_t id, char *ret, size_t len)
{
	char full[PATH_MAX], path[PATH_MAX];
	unsigned budget = CGROUP_FIND_DIRS;
	size_t at = strlen(under);
	uint64_t own;
	int fd, r;

	if ((r = full_path(mount, under, full, sizeof(full))) < 0)
		return r;
	if (at + 1 > sizeof(path))
		return -ENAMETOOLONG;
	memcpy(path, under, at + 1);
	if (cgroup_id(mount, under, &own) < 0 || own != id) {
		if ((fd = open(full, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
			return -errno;
		/* "/" is the empty prefix of its children's paths */
		if (strcmp(under, "/") == 0)
			path[at = 0] = '\0';
		if ((r = cgroup_find_below(fd, id, path, sizeof(path), at, 0, &budget)) < 0)
			return r;
	}
	if (snprintf(ret, len, "%s", path) >= (int)len)
		return -ENAMETOOLONG;
	return 0;
}

bool cgroup_within(const char *path, const char *ancestor)
{
	size_t n = strlen(ancestor);

	while (n > 0 && ancestor[n - 1] == '/')
		n--; /* "/" and "/ci/" */
	return path[0] == '/' && strncmp(path, ancestor, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static int ends_with(const char *s, size_t n, const char *suffix)
{
	size_t k = strlen(suffix);

	return n > k && memcmp(s + n - k, suffix, k) == 0;
}

int cgroup_systemd_scope(const char *path, char *slice, size_t slice_len, char *unit, size_t unit_len)
{
	const char *comp = path + 1, *prev = NULL;
	size_t prev_len = 0, n_slices = 0;

	if (path[0] != '/')
		return -EINVAL;
	for (;;) {
		const char *slash = strchr(comp, '/');
		size_t n = slash ? (size_t)(slash - comp) : strlen(comp);

		if (n == 0)
			return -EINVAL;
		if (!slash) {
			/* the last component: the scope itself, inside at least one slice */
			if (!ends_with(comp, n, ".scope") || n_slices == 0 || n + 1 > unit_len ||
			    prev_len + 1 > slice_len)
				return -EINVAL;
			memcpy(unit, comp, n);
			unit[n] = '\0';
			memcpy(slice, prev, prev_len);
			slice[prev_len] = '\0';
			return 0;
		}
		if (!ends_with(comp, n, ".slice"))
			return -EINVAL;
		/* "a-b.slice" may only sit inside "a.slice" */
		if (prev) {
			size_t base = prev_len - strlen(".slice");

			if (n <= base + 1 || memcmp(comp, prev, base) != 0 || comp[base] != '-')
				return -EINVAL;
		}
		prev = comp;
		prev_len = n;
		n_slices++;
		comp = slash + 1;
	}
}
