/*
 * Configuration sources (see cfgsrc.h): the disk, a recording of what a load read
 * from it, and a replay of that recording from a sealed memfd.
 *
 * The bundle is host-endian (parent and worker are one binary on one machine):
 *   header   magic "pgtcfgs\0", u32 version, u32 euid, u32 n_files, u32 n_dirs,
 *            u64 total length
 *   file     u32 path_len, u32 flags (1: secret), u32 mode, u32 uid, u32 gid, u32 0,
 *            i64 size, i64 mtime s, i64 mtime ns, u64 data_len, path NUL, data
 *   dir      u32 path_len, u32 flags (1: absent), u32 n_names, u32 0, path NUL,
 *            then per name u32 len, name NUL
 * Lengths exclude the NUL that follows every string. The files come first, then the
 * directories, and nothing after them.
 */
#include "cfgsrc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define CFGSRC_MAGIC "pgtcfgs"          /* with its NUL: 8 bytes */
#define CFGSRC_VERSION 1u
#define CFGSRC_HEADER_LEN 32
#define CFGSRC_FILE_LEN 56              /* a file record before its path */
#define CFGSRC_DIR_LEN 16               /* a directory record before its path */
#define CFGSRC_FLAG_SECRET 1u
#define CFGSRC_FLAG_ABSENT 1u

struct cfgsrc_file {
	char *path;
	char *data;                     /* NULL when secret */
	size_t len;
	bool secret;
	uint32_t mode, uid, gid;
	int64_t size, mtim_sec, mtim_nsec;
};

struct cfgsrc_dir {
	char *path;
	bool absent;                    /* the parent's listing found no directory */
	char **names;                   /* every entry but "." and "..", in alphasort order */
	size_t n;
};

struct cfgsrc {
	bool replay;
	uid_t euid;
	struct cfgsrc_file *files;
	size_t n_files;
	struct cfgsrc_dir *dirs;
	size_t n_dirs;
	size_t bytes;                   /* the serialized size of what is kept */
};

struct cfgsrc *cfgsrc_disk(void)
{
	struct cfgsrc *src = calloc(1, sizeof(*src));

	if (!src)
		return NULL;
	src->euid = geteuid();
	src->bytes = CFGSRC_HEADER_LEN;
	return src;
}

uid_t cfgsrc_euid(const struct cfgsrc *src)
{
	return src ? src->euid : geteuid();
}

bool cfgsrc_is_replay(const struct cfgsrc *src)
{
	return src && src->replay;
}

static void cfgsrc_file_release(struct cfgsrc_file *f)
{
	if (f->data) {
		explicit_bzero(f->data, f->len);
		free(f->data);
	}
	free(f->path);
	memset(f, 0, sizeof(*f));
}

void cfgsrc_names_free(char **names, size_t n)
{
	for (size_t i = 0; names && i < n; i++)
		free(names[i]);
	free(names);
}

static void cfgsrc_dir_release(struct cfgsrc_dir *d)
{
	cfgsrc_names_free(d->names, d->n);
	free(d->path);
	memset(d, 0, sizeof(*d));
}

void cfgsrc_free(struct cfgsrc *src)
{
	if (!src)
		return;
	for (size_t i = 0; i < src->n_files; i++)
		cfgsrc_file_release(&src->files[i]);
	for (size_t i = 0; i < src->n_dirs; i++)
		cfgsrc_dir_release(&src->dirs[i]);
	free(src->files);
	free(src->dirs);
	free(src);
}

static struct cfgsrc_file *cfgsrc_file_find(const struct cfgsrc *src, const char *path)
{
	for (size_t i = 0; i < src->n_files; i++)
		if (strcmp(src->files[i].path, path) == 0)
			return &src->files[i];
	return NULL;
}

static struct cfgsrc_dir *cfgsrc_dir_find(const struct cfgsrc *src, const char *path)
{
	for (size_t i = 0; i < src->n_dirs; i++)
		if (strcmp(src->dirs[i].path, path) == 0)
			return &src->dirs[i];
	return NULL;
}

/* What the loaders did before sources: open, fstat, one read of st_size bytes. */
static int cfgsrc_disk_read(const char *path, size_t max, bool follow, char **ret, size_t *ret_len,
			    struct stat *ret_st, char *err, size_t errlen)
{
	struct stat st;
	char *text;
	ssize_t n;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW));
	if (fd == -1) {
		r = -errno;
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return r;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) || st.st_size < 0 || (uintmax_t)st.st_size > max) {
		snprintf(err, errlen, "%s: not a regular file of at most %zu bytes", path, max);
		close(fd);
		return -EINVAL;
	}
	text = malloc((size_t)st.st_size + 1);
	if (!text) {
		close(fd);
		snprintf(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	n = read(fd, text, (size_t)st.st_size);
	close(fd);
	if (n != st.st_size) {
		snprintf(err, errlen, "%s: short read", path);
		explicit_bzero(text, (size_t)st.st_size);
		free(text);
		return -EIO;
	}
	text[n] = '\0';
	*ret = text;
	*ret_len = (size_t)n;
	*ret_st = st;
	return 0;
}

static size_t cfgsrc_file_bytes(const struct cfgsrc_file *f)
{
	return CFGSRC_FILE_LEN + strlen(f->path) + 1 + (f->secret ? 0 : f->len);
}

/* A kept file, as a read returns it. */
static int cfgsrc_serve(const struct cfgsrc_file *f, size_t max, char **ret, size_t *ret_len, struct stat *ret_st,
			char *err, size_t errlen)
{
	struct stat st;
	char *text;

	if (f->len > max) {
		snprintf(err, errlen, "%s: not a regular file of at most %zu bytes", f->path, max);
		return -EINVAL;
	}
	text = malloc(f->len + 1);
	if (!text) {
		snprintf(err, errlen, "%s: out of memory", f->path);
		return -ENOMEM;
	}
	if (f->len)
		memcpy(text, f->data, f->len);
	text[f->len] = '\0';
	memset(&st, 0, sizeof(st));
	st.st_mode = f->mode;
	st.st_uid = f->uid;
	st.st_gid = f->gid;
	st.st_size = (off_t)f->size;
	st.st_mtim.tv_sec = (time_t)f->mtim_sec;
	st.st_mtim.tv_nsec = (long)f->mtim_nsec;
	*ret = text;
	*ret_len = f->len;
	*ret_st = st;
	return 0;
}

/* Keeps a file just read from the disk (its stat alone when secret). */
static int cfgsrc_keep(struct cfgsrc *src, const char *path, const char *text, size_t len, const struct stat *st,
		       bool secret, char *err, size_t errlen)
{
	struct cfgsrc_file f = { 0 }, *more;

	f.secret = secret;
	f.len = secret ? 0 : len;
	f.mode = (uint32_t)st->st_mode;
	f.uid = (uint32_t)st->st_uid;
	f.gid = (uint32_t)st->st_gid;
	f.size = (int64_t)st->st_size;
	f.mtim_sec = (int64_t)st->st_mtim.tv_sec;
	f.mtim_nsec = (int64_t)st->st_mtim.tv_nsec;
	if (src->n_files >= CFGSRC_MAX_FILES ||
	    src->bytes + CFGSRC_FILE_LEN + strlen(path) + 1 + f.len > CFGSRC_MAX_BYTES) {
		snprintf(err, errlen, "%s: the configuration's files exceed %u files or %u bytes together", path,
			 CFGSRC_MAX_FILES, CFGSRC_MAX_BYTES);
		return -E2BIG;
	}
	more = realloc(src->files, (src->n_files + 1) * sizeof(*more));
	if (!more)
		goto oom;
	src->files = more;
	if (!(f.path = strdup(path)) || (!secret && !(f.data = malloc(len ? len : 1)))) {
		free(f.path);
		goto oom;
	}
	if (!secret && len)
		memcpy(f.data, text, len);
	src->files[src->n_files++] = f;
	src->bytes += cfgsrc_file_bytes(&f);
	return 0;
oom:
	snprintf(err, errlen, "%s: out of memory", path);
	return -ENOMEM;
}

static int cfgsrc_read_any(struct cfgsrc *src, const char *path, size_t max, bool secret, bool follow, char **ret,
			   size_t *ret_len, struct stat *ret_st, char *err, size_t errlen)
{
	struct cfgsrc_file *f;
	struct stat st;
	char *text;
	size_t len;
	int r;

	if (!src)
		return cfgsrc_disk_read(path, max, follow, ret, ret_len, ret_st, err, errlen);
	f = cfgsrc_file_find(src, path);
	if (src->replay) {
		if (!f) {
			snprintf(err, errlen, "%s: cannot open: not in the configuration the parent read (a worker reads no file itself)", path);
			return -ENOENT;
		}
		if (f->secret) {
			snprintf(err, errlen, "%s: cannot open: held by the parent only", path);
			return -EACCES;
		}
		return cfgsrc_serve(f, max, ret, ret_len, ret_st, err, errlen);
	}
	if (f && !f->secret) {
		if ((r = cfgsrc_serve(f, max, ret, ret_len, ret_st, err, errlen)) < 0 || !secret)
			return r;
		/* read as secret now: its bytes must not reach a worker after all */
		src->bytes -= f->len;
		explicit_bzero(f->data, f->len);
		free(f->data);
		f->data = NULL;
		f->len = 0;
		f->secret = true;
		return 0;
	}
	if ((r = cfgsrc_disk_read(path, max, follow, &text, &len, &st, err, errlen)) < 0)
		return r;
	if (!f && (r = cfgsrc_keep(src, path, text, len, &st, secret, err, errlen)) < 0) {
		explicit_bzero(text, len);
		free(text);
		return r;
	}
	*ret = text;
	*ret_len = len;
	*ret_st = st;
	return 0;
}

int cfgsrc_read(struct cfgsrc *src, const char *path, size_t max, bool secret, char **ret, size_t *ret_len,
		struct stat *ret_st, char *err, size_t errlen)
{
	return cfgsrc_read_any(src, path, max, secret, false, ret, ret_len, ret_st, err, errlen);
}

int cfgsrc_read_follow(struct cfgsrc *src, const char *path, size_t max, char **ret, size_t *ret_len,
		       struct stat *ret_st, char *err, size_t errlen)
{
	return cfgsrc_read_any(src, path, max, false, true, ret, ret_len, ret_st, err, errlen);
}

static int cfgsrc_filter(char *const *all, size_t n, int (*wanted)(const char *), char ***ret_names, size_t *ret_n,
			 const char *dir, char *err, size_t errlen)
{
	char **names = calloc(n + 1, sizeof(*names));
	size_t k = 0;

	if (!names)
		goto oom;
	for (size_t i = 0; i < n; i++) {
		if (wanted && !wanted(all[i]))
			continue;
		if (!(names[k] = strdup(all[i]))) {
			cfgsrc_names_free(names, k);
			goto oom;
		}
		k++;
	}
	*ret_names = names;
	*ret_n = k;
	return 0;
oom:
	snprintf(err, errlen, "%s: out of memory", dir);
	return -ENOMEM;
}

static bool cfgsrc_dot(const char *name)
{
	return strcmp(name, ".") == 0 || strcmp(name, "..") == 0;
}

/* Keeps a listing (or the absence of the directory) in src. */
static int cfgsrc_keep_dir(struct cfgsrc *src, const char *dir, struct dirent **ents, int n, char *err, size_t errlen)
{
	struct cfgsrc_dir d = { 0 }, *more;
	size_t bytes = CFGSRC_DIR_LEN + strlen(dir) + 1;

	d.absent = n < 0;
	if (n > 0 && !(d.names = calloc((size_t)n, sizeof(*d.names))))
		goto oom;
	for (int i = 0; i < n; i++) {
		if (cfgsrc_dot(ents[i]->d_name))
			continue;
		if (d.n >= CFGSRC_MAX_NAMES) {
			cfgsrc_dir_release(&d);
			snprintf(err, errlen, "%s: cannot read: more than %u entries", dir, CFGSRC_MAX_NAMES);
			return -E2BIG;
		}
		if (!(d.names[d.n] = strdup(ents[i]->d_name))) {
			cfgsrc_dir_release(&d);
			goto oom;
		}
		bytes += 4 + strlen(d.names[d.n]) + 1;
		d.n++;
	}
	if (src->n_dirs >= CFGSRC_MAX_DIRS || src->bytes + bytes > CFGSRC_MAX_BYTES) {
		cfgsrc_dir_release(&d);
		snprintf(err, errlen, "%s: the configuration's directories exceed %u or %u bytes together", dir,
			 CFGSRC_MAX_DIRS, CFGSRC_MAX_BYTES);
		return -E2BIG;
	}
	more = realloc(src->dirs, (src->n_dirs + 1) * sizeof(*more));
	if (!more || !(d.path = strdup(dir))) {
		if (more)
			src->dirs = more;
		cfgsrc_dir_release(&d);
		goto oom;
	}
	src->dirs = more;
	src->dirs[src->n_dirs++] = d;
	src->bytes += bytes;
	return 0;
oom:
	snprintf(err, errlen, "%s: out of memory", dir);
	return -ENOMEM;
}

static int cfgsrc_from_dir(const struct cfgsrc_dir *d, int (*wanted)(const char *), char ***ret_names, size_t *ret_n,
			   char *err, size_t errlen)
{
	if (d->absent) {
		snprintf(err, errlen, "%s: cannot read: %s", d->path, strerror(ENOENT));
		return -ENOENT;
	}
	return cfgsrc_filter(d->names, d->n, wanted, ret_names, ret_n, d->path, err, errlen);
}

int cfgsrc_list(struct cfgsrc *src, const char *dir, int (*wanted)(const char *name), char ***ret_names,
		size_t *ret_n, char *err, size_t errlen)
{
	struct dirent **ents = NULL;
	struct cfgsrc_dir *d;
	char **all;
	size_t k = 0;
	int n, r;

	if (src && (d = cfgsrc_dir_find(src, dir)))
		return cfgsrc_from_dir(d, wanted, ret_names, ret_n, err, errlen);
	if (src && src->replay) {
		snprintf(err, errlen, "%s: cannot read: not in the configuration the parent read (a worker reads no directory itself)", dir);
		return -ENODATA;
	}
	/* alphasort is strcoll; the daemon runs in the C locale, so that is byte order.
	 * Sorting all names and then filtering gives what a filtered scandir gave. */
	n = scandir(dir, &ents, NULL, alphasort);
	if (n < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: cannot read: %s", dir, strerror(errno));
		if (src && r == -ENOENT && (n = cfgsrc_keep_dir(src, dir, NULL, -1, err, errlen)) < 0)
			return n;
		return r;
	}
	if (src) {
		r = cfgsrc_keep_dir(src, dir, ents, n, err, errlen);
		if (r == 0)
			r = cfgsrc_from_dir(&src->dirs[src->n_dirs - 1], wanted, ret_names, ret_n, err, errlen);
		goto out;
	}
	all = calloc((size_t)n + 1, sizeof(*all));
	if (!all) {
		snprintf(err, errlen, "%s: out of memory", dir);
		r = -ENOMEM;
		goto out;
	}
	for (int i = 0; i < n; i++)
		if (!cfgsrc_dot(ents[i]->d_name))
			all[k++] = ents[i]->d_name;
	r = cfgsrc_filter(all, k, wanted, ret_names, ret_n, dir, err, errlen);
	free(all);
out:
	for (int i = 0; i < n; i++)
		free(ents[i]);
	free(ents);
	return r;
}

/* ---- serializing ------------------------------------------------------------ */

static uint8_t *cfgsrc_put(uint8_t *p, const void *v, size_t n)
{
	memcpy(p, v, n);
	return p + n;
}

static uint8_t *cfgsrc_put32(uint8_t *p, uint32_t v)
{
	return cfgsrc_put(p, &v, sizeof(v));
}

static uint8_t *cfgsrc_put64(uint8_t *p, uint64_t v)
{
	return cfgsrc_put(p, &v, sizeof(v));
}

static uint8_t *cfgsrc_put_str(uint8_t *p, const char *s)
{
	return cfgsrc_put(p, s, strlen(s) + 1);
}

/* The bundle of src into a new buffer of src->bytes; NULL when out of memory. */
static uint8_t *cfgsrc_serialize(const struct cfgsrc *src)
{
	uint8_t *buf = malloc(src->bytes), *p = buf;

	if (!buf)
		return NULL;
	p = cfgsrc_put(p, CFGSRC_MAGIC, sizeof(CFGSRC_MAGIC));
	p = cfgsrc_put32(p, CFGSRC_VERSION);
	p = cfgsrc_put32(p, (uint32_t)src->euid);
	p = cfgsrc_put32(p, (uint32_t)src->n_files);
	p = cfgsrc_put32(p, (uint32_t)src->n_dirs);
	p = cfgsrc_put64(p, src->bytes);
	for (size_t i = 0; i < src->n_files; i++) {
		const struct cfgsrc_file *f = &src->files[i];

		p = cfgsrc_put32(p, (uint32_t)strlen(f->path));
		p = cfgsrc_put32(p, f->secret ? CFGSRC_FLAG_SECRET : 0);
		p = cfgsrc_put32(p, f->mode);
		p = cfgsrc_put32(p, f->uid);
		p = cfgsrc_put32(p, f->gid);
		p = cfgsrc_put32(p, 0);
		p = cfgsrc_put64(p, (uint64_t)f->size);
		p = cfgsrc_put64(p, (uint64_t)f->mtim_sec);
		p = cfgsrc_put64(p, (uint64_t)f->mtim_nsec);
		p = cfgsrc_put64(p, f->secret ? 0 : f->len);
		p = cfgsrc_put_str(p, f->path);
		if (!f->secret && f->len)
			p = cfgsrc_put(p, f->data, f->len);
	}
	for (size_t i = 0; i < src->n_dirs; i++) {
		const struct cfgsrc_dir *d = &src->dirs[i];

		p = cfgsrc_put32(p, (uint32_t)strlen(d->path));
		p = cfgsrc_put32(p, d->absent ? CFGSRC_FLAG_ABSENT : 0);
		p = cfgsrc_put32(p, (uint32_t)d->n);
		p = cfgsrc_put32(p, 0);
		p = cfgsrc_put_str(p, d->path);
		for (size_t k = 0; k < d->n; k++) {
			p = cfgsrc_put32(p, (uint32_t)strlen(d->names[k]));
			p = cfgsrc_put_str(p, d->names[k]);
		}
	}
	return buf;
}

int cfgsrc_to_memfd(const struct cfgsrc *src, int *ret_fd, char *err, size_t errlen)
{
	uint8_t *buf;
	size_t off = 0;
	int fd, r;

	if (!src || src->replay) {
		snprintf(err, errlen, "configuration bundle: only a recording source can be serialized");
		return -EINVAL;
	}
	if (!(buf = cfgsrc_serialize(src))) {
		snprintf(err, errlen, "configuration bundle: out of memory");
		return -ENOMEM;
	}
	fd = memfd_create("pgtether-config", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd == -1) {
		r = -errno;
		snprintf(err, errlen, "configuration bundle: memfd_create: %s", strerror(errno));
		goto out;
	}
	while (off < src->bytes) {
		ssize_t n = write(fd, buf + off, src->bytes - off);

		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n == -1 ? -errno : -EIO;
			snprintf(err, errlen, "configuration bundle: write: %s", strerror(-r));
			goto fail;
		}
		off += (size_t)n;
	}
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) == -1 ||
	    lseek(fd, 0, SEEK_SET) == -1) {
		r = -errno;
		snprintf(err, errlen, "configuration bundle: cannot seal: %s", strerror(errno));
		goto fail;
	}
	*ret_fd = fd;
	r = 0;
	goto out;
fail:
	close(fd);
out:
	/* a mask key and a TLS key are in it */
	explicit_bzero(buf, src->bytes);
	free(buf);
	return r;
}

/* ---- replaying ---------------------------------------------------------------- */

struct cfgsrc_cursor {
	const uint8_t *p;
	size_t left;
};

static bool cfgsrc_get(struct cfgsrc_cursor *c, void *out, size_t n)
{
	if (c->left < n)
		return false;
	memcpy(out, c->p, n);
	c->p += n;
	c->left -= n;
	return true;
}

/* A string of len bytes and its NUL, with no NUL inside, copied out; NULL when the
 * bytes are not that (or out of memory, which *oom says). */
static char *cfgsrc_get_str(struct cfgsrc_cursor *c, uint32_t len, bool *oom)
{
	char *s;

	if (c->left < (size_t)len + 1 || c->p[len] != '\0' || memchr(c->p, '\0', len))
		return NULL;
	if (!(s = malloc((size_t)len + 1))) {
		*oom = true;
		return NULL;
	}
	memcpy(s, c->p, (size_t)len + 1);
	c->p += (size_t)len + 1;
	c->left -= (size_t)len + 1;
	return s;
}

static const char *cfgsrc_parse_file(struct cfgsrc_cursor *c, struct cfgsrc *src, bool *oom)
{
	struct cfgsrc_file f = { 0 };
	uint32_t path_len, flags, pad;
	uint64_t data_len;

	if (!cfgsrc_get(c, &path_len, 4) || !cfgsrc_get(c, &flags, 4) || !cfgsrc_get(c, &f.mode, 4) ||
	    !cfgsrc_get(c, &f.uid, 4) || !cfgsrc_get(c, &f.gid, 4) || !cfgsrc_get(c, &pad, 4) ||
	    !cfgsrc_get(c, &f.size, 8) || !cfgsrc_get(c, &f.mtim_sec, 8) || !cfgsrc_get(c, &f.mtim_nsec, 8) ||
	    !cfgsrc_get(c, &data_len, 8))
		return "a file record is cut short";
	if (path_len == 0 || path_len >= PATH_MAX || (flags & ~CFGSRC_FLAG_SECRET) || pad)
		return "a file record has a bad path length or flags";
	f.secret = flags & CFGSRC_FLAG_SECRET;
	if (!S_ISREG(f.mode) || f.size < 0 || f.mtim_nsec < 0 || f.mtim_nsec >= 1000000000)
		return "a file record has a bad stat";
	if (f.secret ? data_len != 0 : data_len != (uint64_t)f.size)
		return "a file record's length does not match its stat";
	if (!(f.path = cfgsrc_get_str(c, path_len, oom)))
		return "a file record's path is not a string of its length";
	if (f.path[0] != '/' || cfgsrc_file_find(src, f.path)) {
		free(f.path);
		return "a file record's path is not absolute, or held twice";
	}
	if (data_len > c->left) {
		free(f.path);
		return "a file record's data is cut short";
	}
	f.len = (size_t)data_len;
	if (!f.secret) {
		if (!(f.data = malloc(f.len ? f.len : 1))) {
			free(f.path);
			*oom = true;
			return "out of memory";
		}
		memcpy(f.data, c->p, f.len);
		c->p += f.len;
		c->left -= f.len;
	}
	src->files[src->n_files++] = f;
	return NULL;
}

static const char *cfgsrc_parse_dir(struct cfgsrc_cursor *c, struct cfgsrc *src, bool *oom)
{
	struct cfgsrc_dir *d = &src->dirs[src->n_dirs];
	uint32_t path_len, flags, n, pad;

	memset(d, 0, sizeof(*d));
	if (!cfgsrc_get(c, &path_len, 4) || !cfgsrc_get(c, &flags, 4) || !cfgsrc_get(c, &n, 4) ||
	    !cfgsrc_get(c, &pad, 4))
		return "a directory record is cut short";
	if (path_len == 0 || path_len >= PATH_MAX || (flags & ~CFGSRC_FLAG_ABSENT) || pad || n > CFGSRC_MAX_NAMES ||
	    ((flags & CFGSRC_FLAG_ABSENT) && n))
		return "a directory record has a bad path length, flags or count";
	/* every name takes at least 6 bytes: a count beyond what is left is a lie */
	if ((size_t)n * 6 > c->left)
		return "a directory record's names are cut short";
	d->absent = flags & CFGSRC_FLAG_ABSENT;
	if (!(d->path = cfgsrc_get_str(c, path_len, oom)))
		return "a directory record's path is not a string of its length";
	if (d->path[0] != '/' || cfgsrc_dir_find(src, d->path)) {
		free(d->path);
		return "a directory record's path is not absolute, or held twice";
	}
	src->n_dirs++; /* from here on cfgsrc_free frees it */
	if (n && !(d->names = calloc(n, sizeof(*d->names)))) {
		*oom = true;
		return "out of memory";
	}
	for (uint32_t k = 0; k < n; k++) {
		uint32_t len;
		char *name;

		if (!cfgsrc_get(c, &len, 4) || len == 0 || len > NAME_MAX)
			return "a directory entry has a bad length";
		if (!(name = cfgsrc_get_str(c, len, oom)))
			return "a directory entry is not a string of its length";
		d->names[d->n++] = name;
		if (strchr(name, '/') || cfgsrc_dot(name))
			return "a directory entry is not a name";
	}
	return NULL;
}

struct cfgsrc *cfgsrc_parse(const void *data, size_t len, char *err, size_t errlen)
{
	struct cfgsrc_cursor c = { data, len };
	char magic[sizeof(CFGSRC_MAGIC)];
	uint32_t version, euid, n_files, n_dirs;
	uint64_t total;
	struct cfgsrc *src;
	const char *why = NULL;
	bool oom = false;

	if (len > CFGSRC_MAX_BYTES || !cfgsrc_get(&c, magic, sizeof(magic)) || !cfgsrc_get(&c, &version, 4) ||
	    !cfgsrc_get(&c, &euid, 4) || !cfgsrc_get(&c, &n_files, 4) || !cfgsrc_get(&c, &n_dirs, 4) ||
	    !cfgsrc_get(&c, &total, 8)) {
		snprintf(err, errlen, "configuration bundle: %zu bytes is not a bundle's size", len);
		return NULL;
	}
	if (memcmp(magic, CFGSRC_MAGIC, sizeof(magic)) != 0 || version != CFGSRC_VERSION) {
		snprintf(err, errlen, "configuration bundle: not a bundle of version %u", CFGSRC_VERSION);
		return NULL;
	}
	if (total != len || n_files > CFGSRC_MAX_FILES || n_dirs > CFGSRC_MAX_DIRS) {
		snprintf(err, errlen, "configuration bundle: bad length or counts (%llu bytes said, %zu read; %u files, %u directories)",
			 (unsigned long long)total, len, n_files, n_dirs);
		return NULL;
	}
	if (!(src = calloc(1, sizeof(*src))) || (n_files && !(src->files = calloc(n_files, sizeof(*src->files)))) ||
	    (n_dirs && !(src->dirs = calloc(n_dirs, sizeof(*src->dirs))))) {
		cfgsrc_free(src);
		snprintf(err, errlen, "configuration bundle: out of memory");
		return NULL;
	}
	src->replay = true;
	src->euid = (uid_t)euid;
	src->bytes = len;
	for (uint32_t i = 0; i < n_files && !why; i++)
		why = cfgsrc_parse_file(&c, src, &oom);
	for (uint32_t i = 0; i < n_dirs && !why; i++)
		why = cfgsrc_parse_dir(&c, src, &oom);
	if (!why && c.left)
		why = "bytes after the last record";
	if (why) {
		snprintf(err, errlen, "configuration bundle: %s", oom ? "out of memory" : why);
		cfgsrc_free(src);
		return NULL;
	}
	return src;
}

struct cfgsrc *cfgsrc_from_memfd(int fd, char *err, size_t errlen)
{
	const int need = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;
	struct cfgsrc *src;
	struct stat st;
	uint8_t *buf;
	size_t off = 0;
	int seals;

	/* sealed: what was checked is what is read, whoever else holds the fd */
	seals = fcntl(fd, F_GET_SEALS);
	if (seals == -1 || (seals & need) != need) {
		snprintf(err, errlen, "configuration bundle: the memfd is not sealed against writes%s%s",
			 seals == -1 ? ": " : "", seals == -1 ? strerror(errno) : "");
		return NULL;
	}
	if (fstat(fd, &st) == -1 || st.st_size < 0 || (uintmax_t)st.st_size > CFGSRC_MAX_BYTES) {
		snprintf(err, errlen, "configuration bundle: not a file of at most %u bytes", CFGSRC_MAX_BYTES);
		return NULL;
	}
	if (!(buf = malloc(st.st_size ? (size_t)st.st_size : 1))) {
		snprintf(err, errlen, "configuration bundle: out of memory");
		return NULL;
	}
	while (off < (size_t)st.st_size) {
		ssize_t n = pread(fd, buf + off, (size_t)st.st_size - off, (off_t)off);

		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, errlen, "configuration bundle: read: %s", n == 0 ? "short read" : strerror(errno));
			free(buf);
			return NULL;
		}
		off += (size_t)n;
	}
	src = cfgsrc_parse(buf, off, err, errlen);
	explicit_bzero(buf, off);
	free(buf);
	return src;
}
