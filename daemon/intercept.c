/*
 * Skeleton lifecycle for bpf/intercept.bpf.c: open → reuse pins → load → pin maps;
 * attach/adopt/detach of cgroup links; targets and config map updates.
 */
#include "intercept.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <linux/magic.h>

#include "cgroup.h"
#include "intercept.skel.h"

#define BPFFS_DEFAULT_MOUNT "/sys/fs/bpf"

static const char *const link_names[INTERCEPT_PROGS] = {
	"connect4", "connect6", "sockops", "getpeername4", "getpeername6"
};

static struct bpf_program *prog_of(struct intercept *ic, int i)
{
	switch (i) {
	case 0: return ic->skel->progs.pgt_connect4;
	case 1: return ic->skel->progs.pgt_connect6;
	case 3: return ic->skel->progs.pgt_getpeername4;
	case 4: return ic->skel->progs.pgt_getpeername6;
	default: return ic->skel->progs.pgt_sockops;
	}
}

static int is_bpffs(const char *path)
{
	struct statfs st;

	return statfs(path, &st) == 0 && st.f_type == BPF_FS_MAGIC;
}

/* bpffs is not mounted at boot on every host; mount it where tools expect it. */
static int ensure_bpffs(const char *dir, char *err)
{
	char parent[PATH_MAX];
	char *slash;

	snprintf(parent, sizeof(parent), "%s", dir);
	while ((slash = strrchr(parent, '/')) && slash != parent) {
		*slash = '\0';
		if (is_bpffs(parent))
			return 0;
	}
	if (strncmp(dir, BPFFS_DEFAULT_MOUNT "/", sizeof(BPFFS_DEFAULT_MOUNT)) != 0) {
		snprintf(err, INTERCEPT_ERR_LEN, "bpffs_dir '%s' is not on a bpf filesystem; mount one (mount -t bpf bpf DIR) or use a directory below %s",
			 dir, BPFFS_DEFAULT_MOUNT);
		return -ENOTDIR;
	}
	if (mount("bpf", BPFFS_DEFAULT_MOUNT, "bpf", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0700") == -1) {
		int r = -errno;

		snprintf(err, INTERCEPT_ERR_LEN, "cannot mount bpffs at %s: %s", BPFFS_DEFAULT_MOUNT, strerror(errno));
		return r;
	}
	return 0;
}

static int mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) == -1 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) == -1 && errno != EEXIST)
		return -errno;
	return 0;
}

/* Drops a pinned map whose shape differs from this build's: a pgtether upgrade that
 * changed a struct must not fail to start, and the old contents mean nothing to the
 * new programs. */
static void drop_incompatible_pin(struct bpf_map *map, const char *path)
{
	struct bpf_map_info info;
	__u32 len = sizeof(info);
	int fd = bpf_obj_get(path);

	if (fd < 0)
		return;
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len) < 0 ||
	    info.type != bpf_map__type(map) || info.key_size != bpf_map__key_size(map) ||
	    info.value_size != bpf_map__value_size(map) ||
	    info.max_entries != bpf_map__max_entries(map) || info.map_flags != bpf_map__map_flags(map))
		unlink(path);
	close(fd);
}

int intercept_open(struct intercept *ic, const char *bpffs_dir, const char *cgroup_mount, char *err)
{
	char path[PATH_MAX];
	struct bpf_map *map;
	int r;

	memset(ic, 0, sizeof(*ic));
	ic->origins_fd = -1;
	snprintf(ic->dir, sizeof(ic->dir), "%s", bpffs_dir);
	snprintf(ic->cgroup_mount, sizeof(ic->cgroup_mount), "%s", cgroup_mount);

	if ((r = ensure_bpffs(bpffs_dir, err)) < 0)
		return r;
	snprintf(path, sizeof(path), "%s/links", bpffs_dir);
	if ((r = mkdir_p(path, 0700)) < 0) {
		snprintf(err, INTERCEPT_ERR_LEN, "cannot create %s: %s", path, strerror(-r));
		return r;
	}

	ic->skel = intercept_bpf__open();
	if (!ic->skel) {
		r = -errno;
		snprintf(err, INTERCEPT_ERR_LEN, "cannot open the BPF object: %s", strerror(errno));
		return r;
	}
	bpf_object__for_each_map(map, ic->skel->obj) {
		snprintf(path, sizeof(path), "%s/%s", bpffs_dir, bpf_map__name(map));
		drop_incompatible_pin(map, path);
		if ((r = bpf_map__set_pin_path(map, path)) < 0) {
			snprintf(err, INTERCEPT_ERR_LEN, "cannot set pin path %s: %s", path, strerror(-r));
			goto cleanup;
		}
	}
	/* Loading reuses the compatible pinned maps and pins the new ones. */
	if ((r = intercept_bpf__load(ic->skel)) < 0) {
		snprintf(err, INTERCEPT_ERR_LEN, "cannot load the BPF programs: %s (the kernel log of the verifier is above; kernel with BTF and CAP_BPF+CAP_NET_ADMIN+CAP_SYS_ADMIN needed)",
			 strerror(-r));
		goto cleanup;
	}
	ic->origins_fd = bpf_map__fd(ic->skel->maps.pgt_origins);
	return 0;

cleanup:
	intercept_bpf__destroy(ic->skel);
	ic->skel = NULL;
	return r;
}

int intercept_set_config(struct intercept *ic, const struct pgt_config *cfg)
{
	__u32 zero = 0;

	if (bpf_map_update_elem(bpf_map__fd(ic->skel->maps.pgt_config), &zero, cfg, BPF_ANY) < 0)
		return -errno;
	return 0;
}

static void target_key(const struct addr_target *t, struct pgt_target_key *k)
{
	memset(k, 0, sizeof(*k));
	k->prefixlen = 16 + t->prefix;
	k->port[0] = (__u8)(t->port >> 8);
	k->port[1] = (__u8)(t->port & 0xff);
	memcpy(k->addr, t->ip, 16);
}

int intercept_set_targets(struct intercept *ic, const struct addr_target *t, size_t n)
{
	int fd = bpf_map__fd(ic->skel->maps.pgt_targets);
	struct pgt_target_key k, next, stale[64];
	__u32 one = 1;
	size_t n_stale;
	int r;

	for (size_t i = 0; i < n; i++) {
		target_key(&t[i], &k);
		if (bpf_map_update_elem(fd, &k, &one, BPF_ANY) < 0)
			return -errno;
	}
	/* Removing while iterating restarts the walk; collect a batch, delete, repeat. */
	do {
		void *prev = NULL;

		n_stale = 0;
		while (n_stale < 64 && bpf_map_get_next_key(fd, prev, &next) == 0) {
			int keep = 0;

			for (size_t i = 0; i < n && !keep; i++) {
				target_key(&t[i], &k);
				keep = memcmp(&k, &next, sizeof(k)) == 0;
			}
			if (!keep)
				stale[n_stale++] = next;
			k = next;
			prev = &k;
		}
		for (size_t i = 0; i < n_stale; i++)
			if (bpf_map_delete_elem(fd, &stale[i]) < 0 && errno != ENOENT)
				return -errno;
		r = 0;
	} while (n_stale == 64);
	return r;
}

static struct intercept_attachment *find_att(struct intercept *ic, const char *path)
{
	for (size_t i = 0; i < ic->n_att; i++)
		if (strcmp(ic->att[i].path, path) == 0)
			return &ic->att[i];
	return NULL;
}

static struct intercept_attachment *add_att(struct intercept *ic)
{
	if (ic->n_att == ic->cap_att) {
		size_t cap = ic->cap_att ? ic->cap_att * 2 : 16;
		struct intercept_attachment *a = realloc(ic->att, cap * sizeof(*a));

		if (!a)
			return NULL;
		ic->att = a;
		ic->cap_att = cap;
	}
	memset(&ic->att[ic->n_att], 0, sizeof(ic->att[0]));
	return &ic->att[ic->n_att++];
}

static void link_dir(struct intercept *ic, const char *escaped, char *ret, size_t len)
{
	snprintf(ret, len, "%s/links/%s", ic->dir, escaped);
}

/* Unpins and destroys the links of a (possibly partial) attachment and removes its
 * pin directory. detach_now forces the kernel detach even if someone else holds a
 * reference to the link. */
static void drop_links(struct intercept *ic, struct bpf_link **links, const char *escaped, int detach_now)
{
	char dir[PATH_MAX], file[PATH_MAX + 16];

	link_dir(ic, escaped, dir, sizeof(dir));
	for (int i = 0; i < INTERCEPT_PROGS; i++) {
		snprintf(file, sizeof(file), "%s/%s", dir, link_names[i]);
		unlink(file);
		if (!links[i])
			continue;
		if (detach_now)
			bpf_link__detach(links[i]);
		bpf_link__destroy(links[i]);
		links[i] = NULL;
	}
	rmdir(dir);
}

int intercept_attach(struct intercept *ic, const char *path, char *err)
{
	char escaped[NAME_MAX + 1], dir[PATH_MAX], file[PATH_MAX + 16], full[PATH_MAX];
	struct bpf_link *links[INTERCEPT_PROGS] = { NULL };
	struct intercept_attachment *a;
	uint64_t id;
	int cgfd, r;

	if (find_att(ic, path))
		return 1;
	if (cgroup_escape(path, escaped, sizeof(escaped)) < 0) {
		snprintf(err, INTERCEPT_ERR_LEN, "cgroup path '%s' is too long to pin", path);
		return -ENAMETOOLONG;
	}
	if ((r = cgroup_id(ic->cgroup_mount, path, &id)) < 0) {
		snprintf(err, INTERCEPT_ERR_LEN, "cgroup '%s' (%s%s): %s", path, ic->cgroup_mount,
			 path, strerror(-r));
		return r;
	}
	snprintf(full, sizeof(full), "%s%s", ic->cgroup_mount, path);
	cgfd = open(full, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cgfd == -1) {
		r = -errno;
		snprintf(err, INTERCEPT_ERR_LEN, "cannot open cgroup %s: %s", full, strerror(errno));
		return r;
	}
	link_dir(ic, escaped, dir, sizeof(dir));
	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		r = -errno;
		snprintf(err, INTERCEPT_ERR_LEN, "cannot create %s: %s", dir, strerror(errno));
		close(cgfd);
		return r;
	}
	for (int i = 0; i < INTERCEPT_PROGS; i++) {
		links[i] = bpf_program__attach_cgroup(prog_of(ic, i), cgfd);
		if (!links[i]) {
			r = -errno;
			snprintf(err, INTERCEPT_ERR_LEN, "cannot attach %s to cgroup %s: %s",
				 link_names[i], path, strerror(errno));
			goto fail;
		}
		snprintf(file, sizeof(file), "%s/%s", dir, link_names[i]);
		unlink(file); /* a stale pin from a half-finished earlier attach */
		if ((r = bpf_link__pin(links[i], file)) < 0) {
			snprintf(err, INTERCEPT_ERR_LEN, "cannot pin %s: %s", file, strerror(-r));
			goto fail;
		}
	}
	close(cgfd);
	a = add_att(ic);
	if (!a) {
		r = -ENOMEM;
		snprintf(err, INTERCEPT_ERR_LEN, "out of memory");
		goto fail_closed;
	}
	snprintf(a->path, sizeof(a->path), "%s", path);
	a->cgroup_id = id;
	for (int i = 0; i < INTERCEPT_PROGS; i++)
		bpf_link__destroy(links[i]); /* pinned: stays attached */
	return 0;

fail:
	close(cgfd);
fail_closed:
	drop_links(ic, links, escaped, 1);
	return r;
}

int intercept_detach(struct intercept *ic, const char *path)
{
	struct intercept_attachment *a = find_att(ic, path);
	struct bpf_link *links[INTERCEPT_PROGS] = { NULL };
	char escaped[NAME_MAX + 1], dir[PATH_MAX], file[PATH_MAX + 16];

	if (!a)
		return -ENOENT;
	if (cgroup_escape(path, escaped, sizeof(escaped)) == 0) {
		/* the pins are the links: opened to detach them now, then removed */
		link_dir(ic, escaped, dir, sizeof(dir));
		for (int i = 0; i < INTERCEPT_PROGS; i++) {
			snprintf(file, sizeof(file), "%s/%s", dir, link_names[i]);
			links[i] = bpf_link__open(file);
		}
		drop_links(ic, links, escaped, 1);
	}
	*a = ic->att[--ic->n_att];
	return 0;
}

/* Adopts one pinned directory; returns 1 when it was stale and removed. */
static int adopt_one(struct intercept *ic, const char *escaped, char *err)
{
	struct bpf_link *links[INTERCEPT_PROGS] = { NULL };
	char path[PATH_MAX], dir[PATH_MAX], file[PATH_MAX + 16];
	struct intercept_attachment *a;
	uint64_t id = 0;
	int stale = 0, missing = 0, r;

	if (cgroup_unescape(escaped, path, sizeof(path)) < 0 ||
	    cgroup_id(ic->cgroup_mount, path, &id) < 0)
		stale = 1;
	link_dir(ic, escaped, dir, sizeof(dir));
	for (int i = 0; i < INTERCEPT_PROGS; i++) {
		struct bpf_link_info info;
		__u32 len = sizeof(info);

		snprintf(file, sizeof(file), "%s/%s", dir, link_names[i]);
		links[i] = bpf_link__open(file);
		if (!links[i]) {
			missing = 1;
			continue;
		}
		memset(&info, 0, sizeof(info));
		if (bpf_obj_get_info_by_fd(bpf_link__fd(links[i]), &info, &len) < 0 ||
		    info.type != BPF_LINK_TYPE_CGROUP || info.cgroup.cgroup_id != id)
			stale = 1;
	}
	if (!stale && missing) {
		/* A half-pinned set, or one pinned by an older pgtetherd with fewer
		 * programs: a whole new set is attached first, and pinning it in place
		 * releases the old links, so the cgroup is never without its connect
		 * hooks. Closing ours leaves the pinned ones attached meanwhile. */
		for (int i = 0; i < INTERCEPT_PROGS; i++)
			bpf_link__destroy(links[i]);
		return intercept_attach(ic, path, err) < 0 ? -EIO : 0;
	}
	if (stale) {
		/* A cgroup that is gone or recreated: the caller re-attaches configured
		 * cgroups; a run-time attach of a vanished cgroup has nothing left to
		 * protect. */
		drop_links(ic, links, escaped, 1);
		return 1;
	}
	for (int i = 0; i < INTERCEPT_PROGS; i++) {
		if ((r = bpf_link__update_program(links[i], prog_of(ic, i))) < 0) {
			snprintf(err, INTERCEPT_ERR_LEN, "cannot update the program of %s/%s: %s",
				 dir, link_names[i], strerror(-r));
			for (int j = 0; j < INTERCEPT_PROGS; j++)
				bpf_link__destroy(links[j]);
			return r;
		}
	}
	a = add_att(ic);
	if (!a) {
		for (int j = 0; j < INTERCEPT_PROGS; j++)
			bpf_link__destroy(links[j]);
		return -ENOMEM;
	}
	snprintf(a->path, sizeof(a->path), "%s", path);
	a->cgroup_id = id;
	for (int i = 0; i < INTERCEPT_PROGS; i++)
		bpf_link__destroy(links[i]); /* pinned: stays attached */
	return 0;
}

int intercept_adopt(struct intercept *ic, void (*report)(const char *path, int removed, void *arg),
		    void *arg, char *err)
{
	char dir[PATH_MAX], path[PATH_MAX];
	struct dirent *de;
	int r, first = 0;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/links", ic->dir);
	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
			continue;
		r = adopt_one(ic, de->d_name, err);
		if (r < 0 && !first)
			first = r;
		if (r >= 0 && report && cgroup_unescape(de->d_name, path, sizeof(path)) == 0)
			report(path, r == 1, arg);
	}
	closedir(d);
	return first;
}

int intercept_take(struct intercept *ic, const struct pgt_tuple *t, struct pgt_origin *ret)
{
	/* BPF_MAP_LOOKUP_AND_DELETE_ELEM on a hash map needs Linux 5.14 */
	if (bpf_map_lookup_and_delete_elem(ic->origins_fd, t, ret) < 0)
		return -errno;
	return 0;
}

int intercept_origins_full(struct intercept *ic, uint64_t *ret)
{
	struct pgt_stats st;
	__u32 zero = 0;

	if (bpf_map_lookup_elem(bpf_map__fd(ic->skel->maps.pgt_stats), &zero, &st) < 0)
		return -errno;
	*ret = st.origins_full;
	return 0;
}

size_t intercept_expire(struct intercept *ic, uint64_t open_cutoff_ns, uint64_t closed_cutoff_ns, size_t *ret_closed)
{
	struct pgt_tuple key, next, stale[64];
	struct pgt_origin o;
	size_t n_stale, deleted = 0, seen = 0;
	bool closed[64];

	*ret_closed = 0;
	/* Deleting while walking restarts the walk: collect a batch, delete it, walk
	 * again from the start. `seen` bounds the work of one call. */
	do {
		void *prev = NULL;

		n_stale = 0;
		while (n_stale < 64 && seen < PGT_MAX_ORIGINS && bpf_map_get_next_key(ic->origins_fd, prev, &next) == 0) {
			seen++;
			key = next;
			prev = &key;
			if (bpf_map_lookup_elem(ic->origins_fd, &key, &o) < 0)
				continue;
			if (o.closed_ns && o.closed_ns < closed_cutoff_ns) {
				closed[n_stale] = true;
				stale[n_stale++] = key;
			} else if (o.connect_ns < open_cutoff_ns) {
				closed[n_stale] = false;
				stale[n_stale++] = key;
			}
		}
		for (size_t i = 0; i < n_stale; i++)
			if (bpf_map_delete_elem(ic->origins_fd, &stale[i]) == 0) {
				if (closed[i])
					(*ret_closed)++;
				else
					deleted++;
			}
	} while (n_stale == 64 && seen < PGT_MAX_ORIGINS);
	return deleted;
}

void intercept_close(struct intercept *ic)
{
	free(ic->att); /* the links stay attached: they are pinned */
	ic->att = NULL;
	ic->n_att = ic->cap_att = 0;
	intercept_bpf__destroy(ic->skel);
	ic->skel = NULL;
}
