/*
 * Kernel facts about the process behind a connection, read from /proc/PID and checked
 * against what the BPF connect hook recorded: pid, uid, gid, cgroup id and the
 * executable's inode at connect(). This module adds what only /proc knows (the
 * executable's path and content hash, the cgroup's path) and refuses to guess: a fact
 * that cannot be read, or that no longer describes the process that connected (it
 * exited, its pid was reused, it moved to another cgroup, exec'd another binary or
 * changed its uid or gid), is an error naming that fact, never a "?" that a deny rule
 * would then fail to match.
 *
 * Hashing an executable can take seconds (a 2 GB binary), and what looks paths up
 * below a workload's root can wait on a FUSE server it runs: both run on the
 * file-system threads (attest_fs_*), so one workload's binary or mount never stalls
 * the event loop, nor (a share of the threads per workload) the others' logins.
 */
#ifndef PGTETHER_ATTEST_H
#define PGTETHER_ATTEST_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Executables above this are refused rather than hashed: the largest real binaries
 * (static toolchains, bundled runtimes) stay well below it, and it bounds the CPU one
 * connection can make a file-system thread spend (~1-2 s on one core with SHA extensions). */
#define ATTEST_HASH_MAX_BYTES (2ull << 30)
#define ATTEST_CACHE 64
#define ATTEST_WHY_LEN 256
/* Supplementary groups of a workload that pgtetherd can take on to open a file as it
 * would (struct attest_creds); a process in more is refused what needs them. Kept
 * small because every connection's facts hold them; real users are in a dozen. */
#define ATTEST_GROUPS_MAX 64

enum attest_result {
	ATTEST_OK = 0,
	ATTEST_GONE = -1,        /* the process that connected has exited */
	ATTEST_REUSED = -2,      /* its pid belongs to a process started after connect() */
	ATTEST_CHANGED = -3,     /* a fact differs from what the kernel recorded at connect() */
	ATTEST_UNREADABLE = -4,  /* a fact cannot be read */
	ATTEST_BUSY = -5,        /* the file-system threads' queue is full */
};

/* What the connect hook recorded (struct pgt_origin), to check /proc against. */
struct attest_origin {
	pid_t pid;                /* the connecting task's process (tgid) */
	uint64_t connect_boot_ns; /* CLOCK_BOOTTIME at connect() */
	uint32_t uid, gid;        /* real uid and gid of the connecting task */
	uint64_t cgroup_id;       /* its cgroup2 cgroup (the directory's inode) */
	uint64_t exe_ino;         /* mm->exe_file's inode number */
	uint32_t exe_dev;         /* ... and its superblock's dev_t, kernel encoding */
	uint64_t exe_ctime_ns;    /* ... and its ctime */
	const char *cgroup_mount; /* where cgroup2 is mounted for the daemon */
};

/* The executable's identity as the hash cache keys it: any write changes ctime. */
struct attest_exe_key {
	uint64_t dev, ino, size, mtime_ns, ctime_ns;
};

/*
 * The file-system identity of the workload: its real uid and gid (as at connect()) and
 * its supplementary groups (/proc/PID/status). pgtetherd opens the files it reads for
 * a workload (its token file, its executable when root may not read it, the path of
 * its executable inside its root) with these on the opening thread (setfsuid,
 * setfsgid, setgroups), so the kernel decides, with modes, ACLs and every directory
 * on the way, what the workload itself could open: no workload makes root read for it
 * what it could not read, and pgtetherd needs no CAP_DAC_READ_SEARCH.
 * n_groups > ATTEST_GROUPS_MAX: more groups than kept, so such opens are refused
 * (leaving a group out could grant what the group is denied, by an ACL or mode 0604).
 */
struct attest_creds {
	uint32_t uid, gid;
	uint32_t n_groups;
	uint32_t groups[ATTEST_GROUPS_MAX];
};

struct attest_facts {
	pid_t pid;
	uint64_t start_time;      /* field 22 of /proc/PID/stat, clock ticks since boot */
	char exe[PATH_MAX];
	/* exe is a path only the workload's own mount namespace gives that file (a bind
	 * mount in a user namespace it owns can put any binary at /usr/bin/psql there):
	 * no rule may allow by it */
	bool exe_foreign;
	char exe_sha256[65];      /* hex; "" until hashed */
	char cgroup[PATH_MAX];    /* below the cgroup2 mount, as /proc/PID/cgroup says */
	struct attest_exe_key exe_key;
	struct attest_creds creds; /* the connect hook's uid and gid, the groups of now */
};

/* SHA-256 of executables by attest_exe_key: hashing a 100 MB binary on every
 * connection would cost more than the connection. Used by the event loop only. */
struct attest_cache {
	struct {
		struct attest_exe_key k;
		char sha256[65];
	} e[ATTEST_CACHE];
	unsigned next;
};

/*
 * Reads the facts of o->pid and checks them against o. The pid is pinned with
 * pidfd_open() and checked to be alive after the reads, so the facts belong to the
 * process pinned. The executable is the file opened through /proc/PID/exe, and its
 * path is that open file's own, so path, inode and hash all describe one file.
 * On ATTEST_OK, *ret_exe_fd (when not NULL) is that file (an O_PATH fd), for
 * hashing: the caller closes it. Otherwise why says which fact and why, for the
 * client, and the facts read so far are left in ret.
 */
enum attest_result attest_read(const struct attest_origin *o, struct attest_facts *ret, int *ret_exe_fd,
			       char *why, size_t cap);

/* Copies the cached hash of key into out: true when there was one. */
bool attest_cache_get(const struct attest_cache *cache, const struct attest_exe_key *key, char out[65]);
void attest_cache_put(struct attest_cache *cache, const struct attest_exe_key *key, const char sha256[65]);

/*
 * SHA-256 of the file behind fd (which may be O_PATH: it is opened again for reading;
 * blocking: a file-system thread calls it, ATTEST_FS_HASH), which must
 * still be what key describes, before and after the read: ATTEST_CHANGED when it was
 * written meanwhile, ATTEST_UNREADABLE when it is too large or cannot be read, or
 * when *cancel (may be NULL) turned true. It is opened as pgtetherd (root without
 * CAP_DAC_*: by its mode bits) and, when that is refused and who is not NULL, as the
 * workload who runs it (a binary of its own, mode 0700): one neither may read (an
 * execute-only binary of another user) is ATTEST_UNREADABLE.
 */
enum attest_result attest_hash_fd(int fd, const struct attest_exe_key *key, const struct attest_creds *who,
				  const bool *cancel, char out[65], char *why, size_t cap);

/*
 * Whether the path attest_read gave for f's executable is one a rule may trust (f->exe
 * names that very file in pgtetherd's own mount namespace, or inside the process's
 * root when that mount namespace is not the workload's own to change): *ret_vouched.
 * attest_read leaves exe_foreign true; this call settles it. It looks the path up,
 * which can wait forever for a FUSE server the workload runs: the loop leaves it to
 * the file-system threads (attest_fs_*). ATTEST_OK, or ATTEST_GONE when the process
 * (pinned meanwhile, checked by its start time) exited, with why.
 */
enum attest_result attest_vouch_exe(const struct attest_facts *f, bool *ret_vouched, char *why, size_t cap);

/*
 * The file-system threads: what the parent must look up below a workload's root or at
 * a path the workload chose (the token file; the executable's path, attest_vouch_exe),
 * and what it reads of the executable's file (its hash, attest_hash_fd), can wait as long as a FUSE server the workload runs likes (a rootless container may
 * mount one in its own namespaces; fusermount mounts one on the host), and no thread
 * blocked there can be cancelled. So these run on ATTEST_FS_THREADS threads of their
 * own, never on the loop; a job that never ends keeps its thread, and a workload
 * (a key: the outermost attached cgroup it logs in from) keeps at most
 * ATTEST_FS_PER_KEY of them, its further jobs waiting behind its own, so one attached
 * workload cannot take every thread from the others.
 */
#define ATTEST_FS_THREADS 8
#define ATTEST_FS_PER_KEY 2
#define ATTEST_FS_STOP_GRACE_MS 500 /* at a stop, for jobs that see their cancel (hashes) */
/* Jobs waiting, running or done and not collected, in pgtetherd; more is ATTEST_BUSY.
 * Above max_logins' largest value: a login has one job at a time, so only jobs still
 * running for connections that ended make up the difference (at most one a thread). */
#define ATTEST_FS_QUEUE (65536 + ATTEST_FS_THREADS)

enum attest_fs_kind {
	ATTEST_FS_VOUCH,  /* attest_vouch_exe(facts) */
	ATTEST_FS_TOKEN,  /* attest_read_token(pid, connect_boot_ns, who, path) */
	ATTEST_FS_HASH,   /* attest_hash_fd(fd, facts.exe_key, facts.creds): the executable's
			   * open and read may wait on a FUSE server as a lookup may */
};

struct attest_fs_job {
	enum attest_fs_kind kind;
	uint64_t tag;             /* the submitter's (a connection id) */
	uint64_t key;             /* whose share of the threads it takes (ATTEST_FS_PER_KEY) */
	pid_t pid;
	uint64_t connect_boot_ns;
	struct attest_facts facts; /* VOUCH: the facts read; TOKEN: facts.creds only; HASH:
				    * facts.exe_key and facts.creds */
	char path[PATH_MAX];      /* TOKEN: the token file's path */
	size_t token_cap;         /* TOKEN: the buffer's size */
	int fd;                   /* VOUCH: the executable's O_PATH fd, only carried to the
				   * result (for hashing) and closed when the job is dropped;
				   * HASH: the one hashed (closed when done); -1: none */
};

struct attest_fs_done {
	uint64_t tag, job;
	enum attest_fs_kind kind;
	enum attest_result result; /* VOUCH, HASH */
	bool vouched;              /* VOUCH, on ATTEST_OK */
	int token_r;               /* TOKEN: what attest_read_token returned */
	char *token;               /* TOKEN, on 0: token_len bytes, the caller's to wipe and free */
	size_t token_len;
	int fd;                    /* VOUCH: the job's fd, now the caller's (or -1) */
	char path[PATH_MAX];       /* TOKEN: the job's path */
	struct attest_exe_key exe_key; /* HASH: the job's */
	char sha256[65];           /* HASH, on ATTEST_OK */
	char why[ATTEST_WHY_LEN];
};

struct attest_fs;

/* At most max_jobs jobs waiting, running or done (each allocated when submitted).
 * 0 or -errno. */
int attest_fs_start(struct attest_fs **ret, size_t max_jobs);
/* An eventfd, readable when a result waits. */
int attest_fs_fd(const struct attest_fs *p);
/* j is copied and its fd taken (closed at once on ATTEST_BUSY); its number (never 0,
 * never reused) in *ret_job. ATTEST_OK or ATTEST_BUSY. */
enum attest_result attest_fs_submit(struct attest_fs *p, const struct attest_fs_job *j, uint64_t *ret_job);
/* job is forgotten: not run (its fd closed) when it has not started; a running hash
 * stops at its next read; a running one's result still comes, for the caller to drop
 * (it knows no job of that number): attest_fs_done_release. */
void attest_fs_cancel(struct attest_fs *p, uint64_t job);
/* 1 and *ret filled when a result was waiting, else 0: call until 0. */
int attest_fs_collect(struct attest_fs *p, struct attest_fs_done *ret);
/* What a result holds (the token, wiped; the fd): for one the caller drops. */
void attest_fs_done_release(struct attest_fs_done *d);
/* Jobs running now (stuck ones included). */
unsigned attest_fs_running(struct attest_fs *p);
/* Stops the threads and frees everything: a thread still in a job after
 * ATTEST_FS_STOP_GRACE_MS (its cancel set) is left to end alone (it frees what it
 * shares when it is the last); their number is returned, for
 * the caller to _exit() rather than wait at exit for threads that may never come
 * back. NULL is fine (0). */
unsigned attest_fs_free(struct attest_fs *p);

/*
 * Reads the identity token file `path` as the process pid (the one that called
 * connect() at connect_boot_ns) sees it: resolved inside its own root and mount
 * namespace through /proc/PID/root, with symlinks kept inside that root and magic
 * links refused, while the pid is pinned. The path is resolved and the file opened
 * with the workload's own file-system credentials (who), so it opens only what the
 * workload itself could: no workload can point pgtetherd at a file only root, or
 * another user, may read, through a symlink or a directory it may not search. It must
 * be a regular file of fewer than cap bytes. Trailing whitespace is dropped and buf
 * NUL-terminated. 0; -ESTALE (reused pid), -ESRCH (gone), -EACCES, -E2BIG (more
 * groups than ATTEST_GROUPS_MAX), -EFBIG, -EINVAL (not a regular file) or another
 * -errno. buf is wiped on failure.
 */
int attest_read_token(pid_t pid, uint64_t connect_boot_ns, const struct attest_creds *who, const char *path,
		      char *buf, size_t cap, size_t *ret_len);

/* True when a process started at start_ticks (clock ticks since boot, tick Hz) cannot
 * be the one that acted at event_boot_ns. */
int attest_pid_reused(uint64_t start_ticks, long hz, uint64_t event_boot_ns);

/* The real uid and gid (first fields of the "Uid:" and "Gid:" lines) of a
 * /proc/PID/status text. 0 or -EINVAL. */
int attest_parse_status_ids(const char *status_text, uint32_t *ret_uid, uint32_t *ret_gid);

/* The supplementary groups (the "Groups:" line) of a /proc/PID/status text, at most
 * cap of them: 0 and *ret_n; -E2BIG when there are more (or the line is cut off, as
 * in a text read into a buffer too small), -EINVAL without a whole line. */
int attest_parse_status_groups(const char *status_text, uint32_t *ret_groups, size_t cap, size_t *ret_n);

/* Field 22 (starttime) of a /proc/PID/stat text; the comm field may hold spaces and
 * parentheses, so parsing starts after the last ')'. 0 or -EINVAL. */
int attest_parse_starttime(const char *stat_text, uint64_t *ret);

#endif
