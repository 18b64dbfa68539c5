/*
 * The root parent's request channel (daemon/monitor.c, monitor_login.c): everything
 * a worker sends is untrusted input reaching root, since a worker parses what
 * workloads and servers send and may be taken over. The harness plays three workers
 * on real SOCK_SEQPACKET socketpairs, as test_monitor.c does, and feeds their packets
 * through monitor_worker_event (priv_recv, the per-packet copy, on_packet) with the
 * connection table in realistic states: sessions reading their startup packet,
 * waiting for the executable's hash, asked for a token, logging in upstream,
 * relaying, holding an approval, cancelling, and one waiting for a worker.
 *
 * Seams (fuzz-only, at link time: production code is unchanged): the kernel modules
 * (intercept, sockdiag) are tests/stubs/kernel.c, as for test_monitor.c; attest_read,
 * attest_read_token, the file-system threads (attest_fs: vouch, token file, hash), the
 * proof thread (scrampool), record_create, kill,
 * waitpid and connect are wrapped (-Wl,--wrap, Makefile). A worker the parent kills is reaped at once
 * through the real monitor_children (its sessions end), and its channel closes.
 *
 * Input: byte 0 sets the scene (bits 0-1 attestation result, 2 the upstream is tls
 * verify-full, 3 recordings fail, 4 the app's executable is hashed already, 5
 * recording_fail_mode open, 4-5 the token file's result, 6 the exe is foreign, 7
 * hashing fails); then steps, each a control byte c. c >> 4 & 3 == 2: an event of
 * the parent's own, no bytes follow (c & 3: 0 the file-system threads and the proof thread are done, 1 root approves
 * the first held request, 2 its own uid tries to, 3 it is denied). Otherwise a packet
 * from worker c & 3 (3: worker 0): a 2-byte length (LE) and that many bytes, the
 * header then the body; bit 2: with a /dev/null fd; bit 3: the header's len (and a
 * held_info's json_len) is left as sent, else fixed up; kind 3: 3 more bytes, r (LE)
 * and u: the packet's last u + 1 bytes are appended r times more (up to 1 MiB); bit
 * 6: the worker leaves its command channel unread after it.
 *
 * Promises checked (fuzz_check): a worker's packet changes or ends no session but
 * the one it names and owns (its stats aside, and the cancel it routes); states move
 * only forward; sessions of a reaped worker are gone; session counts, the login
 * counts and the list stay exact; no fd and no memory is left after an input; the
 * held password reaches a worker only as a cleartext login to a verify-full
 * upstream; upstream sockets connect only to the session's addresses; a routed
 * cancel goes to the worker of a relaying session with that key in that cgroup;
 * approvers see the parent's record of who asked.
 */
#include "fuzz.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <arpa/inet.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "intercept.h"
#include "log.h"
#include "monitor_int.h"
#include "record.h"
#include "session.h"

#define NW 3
#define FAKE_PID 0x40000000          /* above any pid_max: never a real process */
#define PASSWORD "pw-held-Secret-42"
/* a repeated body stops here: past the STATS cap (PRIV_STATS_MAX entries) and the
 * approval's depth, short of its PRIV_HELD_MAX_VALUES (test_monitor has that one):
 * every execution with a body this big is that much slower */
#define MAX_BODY (96u << 10)
#define MAX_CONNS 32
#define MAX_KEYS_THEN 256
#define FUZZ_FS_JOBS 16
/* the harness's own set-up and checks: no coverage of theirs steers the fuzzer (and
 * their loops cost nothing per comparison) */
#define HARNESS __attribute__((no_sanitize("coverage")))

static struct {
	struct monitor m;
	struct config cfg;
	struct intercept ic;
	int devnull;
	int wend[NW][2];                 /* the workers' ends: [0] command, [1] request */
	uint8_t *rbuf;                   /* what a worker reads */
	uint8_t *pkt;                    /* the packet being sent */
	unsigned scene;
	unsigned kills;                  /* workers killed, not yet reaped (bits) */
	unsigned reaped;
	uint64_t cur_conn;               /* the session of the packet in flight */
	struct {
		uint64_t job, tag;
		enum attest_fs_kind kind;
		struct attest_exe_key key;
		bool foreign;
		int fd;                  /* VOUCH: handed back with the result */
	} jobs[FUZZ_FS_JOBS];            /* the file-system threads' queue (LIFO) */
	size_t n_jobs;
	uint64_t next_fs_job;
	struct {
		uint64_t job;
		struct scram_challenge ch;
	} proofs[MON_PROOFS_MAX];        /* the proof thread's queue (its first one "runs") */
	size_t n_proofs;
	int fds_before;
	bool trace;                      /* FUZZ_MONITOR_TRACE=1: each step on stderr */
	bool input_has_pw;               /* the "worker" sent the password's text itself */
	/* The relaying sessions' keys after each packet whose commands were left in the
	 * queues (a backlog): a cancel routed then is read later, when its session may
	 * have ended (check_cancel). */
	struct {
		uint32_t pid, secret;
		uint64_t cgroup_id;
		unsigned w;
	} keys_then[MAX_KEYS_THEN];
	size_t n_keys_then;
	bool keys_then_full;
} F;

/* ---- the wrapped calls ------------------------------------------------------------ */
/* declared as the real ones are: a signature that changes breaks the build here */
__typeof__(attest_read) __wrap_attest_read;
__typeof__(attest_read_token) __wrap_attest_read_token;
__typeof__(attest_vouch_exe) __wrap_attest_vouch_exe;
__typeof__(attest_fs_submit) __wrap_attest_fs_submit;
__typeof__(attest_fs_cancel) __wrap_attest_fs_cancel;
__typeof__(attest_fs_collect) __wrap_attest_fs_collect;
__typeof__(record_create) __wrap_record_create;
__typeof__(kill) __wrap_kill, __real_kill;
__typeof__(waitpid) __wrap_waitpid, __real_waitpid;
__typeof__(connect) __wrap_connect;
__typeof__(scrampool_submit) __wrap_scrampool_submit;
__typeof__(scrampool_cancel) __wrap_scrampool_cancel;
__typeof__(scrampool_collect) __wrap_scrampool_collect;

/* Facts by cgroup id: 77 the app's service, 78 CI's; scene bits 0-1 the result. */
enum attest_result __wrap_attest_read(const struct attest_origin *o, struct attest_facts *ret, int *ret_exe_fd,
				      char *why, size_t cap)
{
	memset(ret, 0, sizeof(*ret));
	ret->pid = o->pid;
	snprintf(ret->cgroup, sizeof(ret->cgroup), "%s", o->cgroup_id == 78 ? "/fuzz.slice/ci.service" : "/fuzz.slice/app.service");
	snprintf(ret->exe, sizeof(ret->exe), "%s", o->cgroup_id == 78 ? "/usr/bin/runner" : "/usr/bin/psql");
	ret->exe_foreign = (F.scene & 0x40) != 0;
	ret->exe_key.ino = o->cgroup_id;
	ret->exe_key.dev = 8;
	ret->creds.uid = o->uid;
	ret->creds.gid = o->gid;
	switch (F.scene & 3) {
	case 2:
		snprintf(why, cap, "its cgroup changed");
		return ATTEST_CHANGED;
	case 3:
		snprintf(why, cap, "it exited");
		return ATTEST_GONE;
	default:
		*ret_exe_fd = dup(F.devnull);
		return ATTEST_OK;
	}
}

/* Whether the path is vouched for: what the attest_read wrapper chose (scene bit
 * 0x40), as the parent asks once the facts are read. */
enum attest_result __wrap_attest_vouch_exe(const struct attest_facts *f, bool *ret_vouched, char *why, size_t cap)
{
	(void)why, (void)cap;
	*ret_vouched = !f->exe_foreign;
	return ATTEST_OK;
}

int __wrap_attest_read_token(pid_t pid, uint64_t connect_boot_ns, const struct attest_creds *who, const char *path,
			     char *buf, size_t cap, size_t *ret_len)
{
	(void)pid, (void)connect_boot_ns, (void)who, (void)path;
	switch (F.scene >> 4 & 3) {
	case 0:
		return -ESTALE;
	case 1:
		return -EACCES;
	default:
		*ret_len = (size_t)snprintf(buf, cap, "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.AAAA");
		return 0;
	}
}

/* The file-system threads, without threads: jobs wait until the harness says they
 * are done (event 0); a cancelled one is dropped as one not yet started. */
enum attest_result __wrap_attest_fs_submit(struct attest_fs *p, const struct attest_fs_job *j, uint64_t *ret_job)
{
	size_t n = F.n_jobs;

	(void)p;
	if (n == FUZZ_FS_JOBS || j->kind != ATTEST_FS_VOUCH) {
		if (j->fd >= 0)
			close(j->fd);
		if (n == FUZZ_FS_JOBS)
			return ATTEST_BUSY;
	}
	F.jobs[n].job = *ret_job = ++F.next_fs_job;
	F.jobs[n].tag = j->tag;
	F.jobs[n].kind = j->kind;
	F.jobs[n].key = j->facts.exe_key;
	F.jobs[n].foreign = j->facts.exe_foreign;
	F.jobs[n].fd = j->kind == ATTEST_FS_VOUCH ? j->fd : -1;
	F.n_jobs++;
	return ATTEST_OK;
}

void __wrap_attest_fs_cancel(struct attest_fs *p, uint64_t job)
{
	(void)p;
	for (size_t i = 0; i < F.n_jobs; i++)
		if (F.jobs[i].job == job) {
			if (F.jobs[i].fd >= 0)
				close(F.jobs[i].fd);
			memmove(&F.jobs[i], &F.jobs[i + 1], (F.n_jobs - i - 1) * sizeof(F.jobs[0]));
			F.n_jobs--;
			return;
		}
}

/* Results as the scene says: vouched unless bit 0x40, the token file by bits 4-5,
 * the hash fails with bit 0x80. */
int __wrap_attest_fs_collect(struct attest_fs *p, struct attest_fs_done *ret)
{
	size_t n;

	(void)p;
	if (!F.n_jobs)
		return 0;
	n = --F.n_jobs;
	memset(ret, 0, sizeof(*ret));
	ret->tag = F.jobs[n].tag;
	ret->job = F.jobs[n].job;
	ret->kind = F.jobs[n].kind;
	ret->fd = F.jobs[n].fd;
	switch (ret->kind) {
	case ATTEST_FS_VOUCH:
		ret->result = ATTEST_OK;
		ret->vouched = !F.jobs[n].foreign;
		break;
	case ATTEST_FS_TOKEN:
		snprintf(ret->path, sizeof(ret->path), "/run/fuzz/token");
		ret->token = malloc(128);
		ret->token_r = ret->token ? __wrap_attest_read_token(0, 0, NULL, ret->path, ret->token, 128, &ret->token_len)
					  : -ENOMEM;
		if (ret->token_r < 0) {
			free(ret->token);
			ret->token = NULL;
		}
		break;
	case ATTEST_FS_HASH:
		ret->exe_key = F.jobs[n].key;
		if (F.scene & 0x80) {
			ret->result = ATTEST_UNREADABLE;
			snprintf(ret->why, sizeof(ret->why), "exe_sha256: too large");
		} else {
			ret->result = ATTEST_OK;
			memset(ret->sha256, 'a', 64);
		}
		break;
	}
	return 1;
}

/* scene bit 3: recording fails (fail mode per the config) */
int __wrap_record_create(struct record_writer *w, const char *dir, time_t started, uint64_t session, bool fsync_each,
			 char *err)
{
	(void)dir, (void)started, (void)fsync_each;
	memset(w, 0, sizeof(*w));
	w->fd = -1;
	if (F.scene & 8) {
		snprintf(err, RECORD_ERR_LEN, "no space left on device");
		return -ENOSPC;
	}
	w->fd = dup(F.devnull);
	snprintf(w->id, sizeof(w->id), "fuzz-%llu", (unsigned long long)session);
	snprintf(w->path, sizeof(w->path), "/fuzz/%s", w->id);
	return 0;
}

int __wrap_kill(pid_t pid, int sig)
{
	if (pid >= FAKE_PID && pid < FAKE_PID + NW) {
		fuzz_check(sig == SIGKILL);
		F.kills |= 1u << (pid - FAKE_PID);
		return 0;
	}
	return __real_kill(pid, sig);
}

pid_t __wrap_waitpid(pid_t pid, int *status, int options)
{
	if (pid == -1)
		for (unsigned i = 0; i < NW; i++)
			if (F.kills & ~F.reaped & (1u << i)) {
				F.reaped |= 1u << i;
				*status = SIGKILL; /* WIFSIGNALED, WTERMSIG == SIGKILL */
				return FAKE_PID + (pid_t)i;
			}
	return __real_waitpid(pid, status, options);
}

/* The socket goes only to an address of the session asking (monitor_login.c). */
int __wrap_connect(int fd, const struct sockaddr *sa, socklen_t len)
{
	struct addr to;
	bool ok = false;

	(void)fd, (void)len;
	fuzz_check(addr_from_sockaddr(sa, &to) == 0);
	for (struct mon_conn *c = F.m.head; c; c = c->next)
		if (c->id == F.cur_conn)
			for (size_t i = 0; i < c->n_addrs; i++)
				ok |= !memcmp(c->addrs[i].ip, to.ip, 16) && c->addrs[i].port == to.port;
	fuzz_check(ok);
	errno = EINPROGRESS;
	return -1;
}

static void open_channels(unsigned i);

/* The proof thread, without a thread: jobs wait until the harness says it is done
 * (event 0), and the salted password is a stand-in mixed from the challenge (PBKDF2
 * itself is scram.c's, and up to 0.6 s an execution). */
int __wrap_scrampool_submit(struct scrampool *p, uint64_t job, const char *password, const struct scram_challenge *ch)
{
	(void)p, (void)password;
	if (F.n_proofs == MON_PROOFS_MAX)
		return -EBUSY;
	F.proofs[F.n_proofs].job = job;
	F.proofs[F.n_proofs].ch = *ch;
	F.n_proofs++;
	return 0;
}

/* The first job is running: it gives its result anyway, as the thread's would. */
bool __wrap_scrampool_cancel(struct scrampool *p, uint64_t job)
{
	(void)p;
	for (size_t i = 1; i < F.n_proofs; i++)
		if (F.proofs[i].job == job) {
			memmove(&F.proofs[i], &F.proofs[i + 1], (F.n_proofs - i - 1) * sizeof(F.proofs[0]));
			F.n_proofs--;
			return true;
		}
	return false;
}

int __wrap_scrampool_collect(struct scrampool *p, struct scrampool_done *ret)
{
	const struct scram_challenge *ch = &F.proofs[0].ch;

	(void)p;
	if (!F.n_proofs)
		return 0;
	memset(ret, 0, sizeof(*ret));
	ret->job = F.proofs[0].job;
	for (size_t i = 0; i < SCRAM_KEY_LEN; i++)
		ret->salted[i] = (uint8_t)(i ^ ch->iterations ^ (ch->salt_len ? ch->salt[i % ch->salt_len] : 0));
	memmove(&F.proofs[0], &F.proofs[1], (F.n_proofs - 1) * sizeof(F.proofs[0]));
	F.n_proofs--;
	return 1;
}

/* ---- the parent's configuration, once ---------------------------------------------- */
static const char cfg_json[] =
	"{\"listen\": \"127.0.0.1:6432\", \"sessions_dir\": \"/fuzz/sessions\", \"upstreams\": {"
	"\"db\": {\"address\": \"127.0.0.2:5432\", \"aliases\": [\"127.0.0.9:5432\"], \"tls\": \"disable\", \"role\": \"app\"},"
	"\"ro\": {\"address\": \"127.0.0.3:5433\", \"tls\": \"disable\", \"role\": \"reader\"}}}";
static const char cred_json[] = "{\"db\": {\"app\": \"" PASSWORD "\", \"admin\": \"" PASSWORD "\"}, \"ro\": {\"reader\": \"" PASSWORD "\"}}";
/* the rules naming a database first: the first rule that fits decides */
static const char policy_json[] =
	"{\"rules\": ["
	"{\"name\": \"no-postgres\", \"effect\": \"deny\", \"match\": {\"database\": \"postgres\"}},"
	"{\"name\": \"app-hash\", \"match\": {\"cgroup\": \"/fuzz.slice/app.service\", \"database\": \"hashed\","
	" \"exe_sha256\": \"" "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" "\"},"
	" \"token\": {\"source\": \"none\"}, \"upstream\": \"db\", \"role\": \"admin\"},"
	"{\"name\": \"file-token\", \"match\": {\"cgroup\": \"/fuzz.slice/app.service\", \"database\": \"filetok\", \"issuer\": \"https://issuer.fuzz\"},"
	" \"token\": {\"source\": \"file\", \"path\": \"/run/token\"}, \"upstream\": \"db\"},"
	"{\"name\": \"app\", \"match\": {\"cgroup\": \"/fuzz.slice/app.service\", \"uid\": 1000, \"exe\": \"/usr/bin/psql\"},"
	" \"token\": {\"source\": \"none\"}, \"upstream\": \"db\","
	" \"statements\": {\"allow\": [\"read\"], \"approve\": [\"write\"]}},"
	"{\"name\": \"ci\", \"match\": {\"cgroup\": \"/fuzz.slice/ci.service\", \"issuer\": \"https://issuer.fuzz\"},"
	" \"token\": {\"source\": \"password\"}, \"upstream\": \"ro\"}"
	"]}";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[CONFIG_ERR_LEN];
	FILE *quiet = fopen("/dev/null", "w");

	(void)argc, (void)argv;
	F.trace = getenv("FUZZ_MONITOR_TRACE") != NULL;
	/* above every level: the parent's log lines are not even formatted, but traced */
	log_setup(F.trace ? LOG_LEVEL_DEBUG : (enum log_level)(LOG_LEVEL_ERROR + 1), F.trace ? stderr : quiet);
	json_object_seed(1);
	if (config_parse("fuzz.json", cfg_json, strlen(cfg_json), &F.cfg, err) < 0 ||
	    config_parse_credentials(&F.cfg, "credentials.json", cred_json, strlen(cred_json), err) < 0 ||
	    policy_parse(&F.cfg.policy, "10-fuzz.json", policy_json, strlen(policy_json), err) < 0) {
		fprintf(stderr, "fuzz_monitor: %s\n", err);
		abort();
	}
	F.cfg.max_logins = 64;
	F.cfg.max_logins_per_cgroup = 64;
	F.devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	F.rbuf = malloc(PRIV_MAX_MSG);
	F.pkt = malloc(sizeof(struct priv_hdr) + MAX_BODY);
	F.m.buf = malloc(PRIV_MAX_MSG);
	F.m.epfd = epoll_create1(EPOLL_CLOEXEC);
	snprintf(F.ic.cgroup_mount, sizeof(F.ic.cgroup_mount), "/sys/fs/cgroup");
	if (F.devnull < 0 || !F.rbuf || !F.pkt || !F.m.buf || F.m.epfd < 0)
		abort();
	for (unsigned i = 0; i < NW; i++)
		open_channels(i);

	return 0;
}

/* ---- one input's scene ---------------------------------------------------------------- */
/* Open fds below 512, in one call: poll marks the others POLLNVAL. */
HARNESS static int count_fds(void)
{
	static struct pollfd p[512];
	int n = 0;

	for (int fd = 0; fd < 512; fd++)
		p[fd] = (struct pollfd){ .fd = fd };
	if (poll(p, 512, 0) < 0)
		abort();
	for (int fd = 0; fd < 512; fd++)
		n += !(p[fd].revents & POLLNVAL);
	return n;
}

HARNESS static void big_bufs(int fd)
{
	int n = PRIV_SOCKBUF;

	/* root (as the parent) forces them; otherwise what the limits allow */
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &n, sizeof(n)) == -1)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &n, sizeof(n));
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &n, sizeof(n)) == -1)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &n, sizeof(n));
}

/* Worker i's two socketpairs (kept from one input to the next while it lives: the
 * input ends with both drained). */
HARNESS static void open_channels(unsigned i)
{
	int cmd[2], req[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, cmd) == -1 ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, req) == -1)
		abort();
	for (unsigned k = 0; k < 2; k++) {
		big_bufs(cmd[k]);
		big_bufs(req[k]);
	}
	F.m.w[i].cmd = cmd[0];
	F.m.w[i].req = req[0];
	F.wend[i][0] = cmd[1];
	F.wend[i][1] = req[1];
}

HARNESS static struct mon_conn *add_conn(int worker, uint64_t id, enum mon_state st, uint64_t cgroup, uint32_t uid)
{
	struct mon_conn *c = calloc(1, sizeof(*c));
	struct monitor *m = &F.m;
	struct config_upstream *u = config_upstream_named(&F.cfg, cgroup == 78 ? "ro" : "db");
	const struct addr *a;

	if (!c)
		abort();
	c->id = id;
	c->st = st;
	c->cfd = dup(F.devnull);
	c->have_origin = true;
	c->origin.uid = uid;
	c->origin.gid = uid;
	c->origin.tgid = 4000 + (uint32_t)id;
	c->origin.cgroup_id = cgroup;
	c->origin.exe_ino = cgroup;
	snprintf(c->origin.comm, sizeof(c->origin.comm), "w%llu", (unsigned long long)id);
	c->dst = u->address;
	snprintf(c->upstream, sizeof(c->upstream), "%s", u->name);
	clock_gettime(CLOCK_MONOTONIC, &c->started);
	c->handed = c->started;
	if (st != MC_RELAYING && st != MC_CANCELLING) {
		fuzz_check(quota_login_begin(&m->logins, F.cfg.max_logins) == 0);
		c->login_counted = true;
		if (quota_login_key(&m->logins, cgroup, F.cfg.max_logins_per_cgroup, &(unsigned){ 0 }) == 0) {
			c->login_keyed = true;
			c->login_key = cgroup;
		}
	}
	if (st != MC_STARTUP) {
		c->facts.pid = (pid_t)c->origin.tgid;
		snprintf(c->facts.cgroup, sizeof(c->facts.cgroup), "%s",
			 cgroup == 78 ? "/fuzz.slice/ci.service" : "/fuzz.slice/app.service");
		snprintf(c->facts.exe, sizeof(c->facts.exe), "/usr/bin/psql");
		c->facts.exe_key.ino = cgroup;
		c->facts.exe_key.dev = 8;
		c->facts_read = true;
		snprintf(c->user, sizeof(c->user), "app");
		snprintf(c->database, sizeof(c->database), "app");
	}
	if (st == MC_AUTHORIZED || st == MC_RELAYING) {
		snprintf(c->rule, sizeof(c->rule), cgroup == 78 ? "ci" : "app");
		snprintf(c->role, sizeof(c->role), "%s", u->role);
		c->n_addrs = config_upstream_addrs(u, &a);
		memcpy(c->addrs, a, c->n_addrs * sizeof(*a));
		c->token_source = "none";
		memset(c->facts.exe_sha256, 'a', 64);
	}
	if (st == MC_RELAYING) {
		c->up_addr = c->addrs[0];
		c->have_key = true;
		c->key_pid = 100 + (uint32_t)id;
		c->key_secret = 200 + (uint32_t)id;
	}
	if (worker >= 0) {
		c->w = &m->w[worker];
		m->w[worker].sessions++;
	}
	fuzz_check(conn_link(m, c) == 0);
	return c;
}

HARNESS static void scene(void)
{
	struct monitor *m = &F.m;
	struct mon_conn *c;

	F.kills = F.reaped = 0;
	F.n_jobs = 0;
	m->cfg = &F.cfg;
	m->ic = &F.ic;
	m->fs = (struct attest_fs *)&F; /* never dereferenced: the calls are wrapped */
	m->proofs = (struct scrampool *)&F;
	m->next_job = 0;
	F.n_proofs = 0;
	fuzz_check(!m->proof_jobs);
	memset(&m->exe_cache, 0, sizeof(m->exe_cache));
	memset(&m->logins, 0, sizeof(m->logins));
	m->n_workers = NW;
	m->next_worker = 0;
	m->next_request = 0;
	m->next_id = 100;
	m->stopping = false;
	m->gen = 1;
	m->bundle_fd = -1;
	F.cfg.upstreams[0].tls = F.scene & 4 ? CONFIG_TLS_VERIFY_FULL : CONFIG_TLS_DISABLE;
	/* db answers every login it may ("password" needs verify-full); ro SCRAM alone */
	F.cfg.upstreams[0].auth_methods = CONFIG_AUTH_SCRAM | CONFIG_AUTH_MD5 | (F.scene & 4 ? CONFIG_AUTH_PASSWORD : 0);
	F.cfg.recording_fail_open = (F.scene & 0x20) != 0;
	for (size_t i = 0; i < F.cfg.n_upstreams; i++)
		for (size_t k = 0; k < F.cfg.upstreams[i].n_roles; k++)
			memset(&F.cfg.upstreams[i].roles[k].keycache, 0, sizeof(F.cfg.upstreams[i].roles[k].keycache));
	for (unsigned i = 0; i < NW; i++) {
		struct mon_worker *w = &m->w[i];
		int cmd = w->cmd, req = w->req;

		memset(w, 0, sizeof(*w));
		w->idx = i;
		w->m = m;
		w->pid = FAKE_PID + (pid_t)i;
		w->cmd = cmd;
		w->req = req;
		w->ready = i < 2;        /* worker 2 is starting: its READY dispatches */
		w->last_cmd = PRIV_CONFIG;
		w->ev.kind = EV_WORKER;
		clock_gettime(CLOCK_MONOTONIC, &w->started);
	}
	/* worker 0 */
	add_conn(0, 1, MC_STARTUP, 77, 1000);
	add_conn(0, 2, MC_STARTUP, 78, 1001);
	add_conn(0, 3, MC_TOKEN, 78, 1001);
	add_conn(0, 4, MC_AUTHORIZED, 77, 1000);
	add_conn(0, 5, MC_RELAYING, 77, 1000);
	c = add_conn(0, 6, MC_RELAYING, 77, 1000);
	c->held_id = ++m->next_request;
	c->held_since = time(NULL);
	/* as on_held_info keeps it: who asked is the parent's record */
	c->held = json_pack("{s:s, s:i, s:[s], s:I, s:I}", "sql", "DELETE FROM t", "timeout_s", 30, "params", "1", "pid",
			    (json_int_t)c->origin.tgid, "uid", (json_int_t)c->origin.uid);
	c = add_conn(0, 7, MC_ATTESTING, 77, 1000);
	c->facts.exe_sha256[0] = '\0';
	F.jobs[F.n_jobs] = (__typeof__(F.jobs[0])){ .job = ++F.next_fs_job, .tag = 7, .kind = ATTEST_FS_HASH,
						   .key = c->facts.exe_key, .fd = -1 };
	c->fs_job = F.jobs[F.n_jobs].job;
	c->fs_kind = ATTEST_FS_HASH;
	F.n_jobs++;
	/* worker 1 */
	add_conn(1, 8, MC_RELAYING, 77, 1000);
	add_conn(1, 9, MC_STARTUP, 77, 1000);
	add_conn(1, 10, MC_AUTHORIZED, 78, 1001);
	c = add_conn(1, 11, MC_CANCELLING, 77, 1000);
	c->addrs[0] = F.cfg.upstreams[0].address;
	c->n_addrs = 1;
	add_conn(1, 12, MC_RELAYING, 78, 1001);
	/* waiting for a ready worker */
	c = add_conn(-1, 13, MC_STARTUP, 77, 1000);
	c->pending = calloc(1, sizeof(*c->pending));
	if (!c->pending)
		abort();
	c->pending->have_origin = true;
	c->pending->origin = c->origin;
	if (F.scene & 0x10) {
		/* the app's executable was hashed already */
		struct attest_exe_key k = { .dev = 8, .ino = 77 };
		char sha[65];

		memset(sha, 'a', 64);
		sha[64] = '\0';
		attest_cache_put(&m->exe_cache, &k, sha);
	}
}

/* ---- promises --------------------------------------------------------------------------- */
struct snap {
	uint64_t id;
	struct mon_worker *w;
	enum mon_state st;
	uint64_t held_id, bytes_in;
	bool have_key, pending;
	uint32_t key_pid;
	char rule[128];
};
static struct snap before[MAX_CONNS];
static size_t n_before;

HARNESS static void take_snap(void)
{
	n_before = 0;
	for (struct mon_conn *c = F.m.head; c; c = c->next) {
		struct snap *s = &before[n_before++];

		fuzz_check(n_before <= MAX_CONNS);
		s->id = c->id;
		s->w = c->w;
		s->st = c->st;
		s->held_id = c->held_id;
		s->bytes_in = c->bytes_in;
		s->have_key = c->have_key;
		s->key_pid = c->key_pid;
		s->pending = c->pending != NULL;
		memcpy(s->rule, c->rule, sizeof(s->rule));
	}
}

HARNESS static struct mon_conn *find(uint64_t id)
{
	for (struct mon_conn *c = F.m.head; c; c = c->next)
		if (c->id == id)
			return c;
	return NULL;
}

HARNESS static bool forward(enum mon_state a, enum mon_state b)
{
	if (a == b)
		return true;
	switch (a) {
	case MC_STARTUP:
		return b == MC_ATTESTING || b == MC_TOKEN || b == MC_AUTHORIZED || b == MC_REFUSED || b == MC_CANCELLING;
	case MC_ATTESTING:
		return b == MC_TOKEN || b == MC_AUTHORIZED || b == MC_REFUSED;
	case MC_TOKEN:
		return b == MC_AUTHORIZED || b == MC_REFUSED;
	case MC_AUTHORIZED:
		return b == MC_RELAYING;
	default:
		return false;
	}
}

/* The table is consistent: links, counts, sessions per worker, login counts. */
HARNESS static void check_table(void)
{
	struct monitor *m = &F.m;
	unsigned per_w[NW] = { 0 }, counted = 0;
	size_t n = 0;

	for (struct mon_conn *c = m->head, *prev = NULL; c; prev = c, c = c->next) {
		fuzz_check(c->prev == prev);
		n++;
		counted += c->login_counted;
		fuzz_check(!c->login_keyed || c->login_counted);
		if (c->w) {
			fuzz_check(c->w >= m->w && c->w < m->w + NW);
			fuzz_check(c->w->pid > 0); /* a reaped worker's sessions are gone */
			per_w[c->w - m->w]++;
		}
		fuzz_check(c->n_addrs <= CONFIG_MAX_RESOLVED);
		fuzz_check(memchr(c->rule, '\0', sizeof(c->rule)) && memchr(c->user, '\0', sizeof(c->user)) &&
			   memchr(c->database, '\0', sizeof(c->database)) &&
			   memchr(c->client_encoding, '\0', sizeof(c->client_encoding)) && memchr(c->scs, '\0', sizeof(c->scs)));
		fuzz_check(!c->held || c->held_id);
	}
	fuzz_check(n == m->n_conns);
	n = 0;
	for (size_t b = 0; b < m->n_by_id; b++)
		for (struct mon_conn *c = m->by_id[b]; c; c = c->hnext) {
			fuzz_check((c->id & (m->n_by_id - 1)) == b);
			n++;
		}
	fuzz_check(n == m->n_conns && m->n_by_id >= m->n_conns);
	fuzz_check(counted == m->logins.total);
	for (unsigned i = 0; i < NW; i++)
		if (m->w[i].pid > 0)
			fuzz_check(m->w[i].sessions == per_w[i]);
	for (size_t k = 0; k < m->logins.n_keys; k++) {
		unsigned keyed = 0;

		for (struct mon_conn *c = m->head; c; c = c->next)
			keyed += c->login_keyed && c->login_key == m->logins.keys[k].key;
		fuzz_check(keyed == m->logins.keys[k].n);
	}
}

/* After w's packet about conn: only that session of w changed (stats: w's own). */
HARNESS static void check_isolation(unsigned w, uint32_t type, uint64_t conn)
{
	struct mon_worker *sender = &F.m.w[w];

	for (size_t i = 0; i < n_before; i++) {
		struct snap *s = &before[i];
		struct mon_conn *c = find(s->id);
		bool named = s->id == conn && s->w == sender;

		if (named && c) {
			fuzz_check(forward(s->st, c->st));
			continue;
		}
		if (named || (s->w && s->w->pid == 0))
			continue;                   /* ended by its worker, or by its worker's death */
		if (s->w == sender && type == PRIV_STATS && c) {
			fuzz_check(c->st == s->st && c->w == s->w);
			continue;
		}
		if (type == PRIV_READY && s->pending)
			continue;                   /* dispatched to a worker (or not) */
		fuzz_check(c != NULL);
		fuzz_check(c->w == s->w && c->st == s->st && c->held_id == s->held_id && c->bytes_in == s->bytes_in &&
			   c->have_key == s->have_key && c->key_pid == s->key_pid && !strcmp(c->rule, s->rule));
	}
	for (struct mon_conn *c = F.m.head; c; c = c->next) {
		bool known = false;

		for (size_t i = 0; i < n_before; i++)
			known |= before[i].id == c->id;
		fuzz_check(known);
	}
}

/* After a packet whose commands stay queued: the keys a cancel routed by it may name. */
HARNESS static void keys_remember(void)
{
	for (struct mon_conn *t = F.m.head; t; t = t->next) {
		if (t->st != MC_RELAYING || !t->have_key || !t->w)
			continue;
		if (F.n_keys_then == MAX_KEYS_THEN) {
			F.keys_then_full = true;
			return;
		}
		F.keys_then[F.n_keys_then].pid = t->key_pid;
		F.keys_then[F.n_keys_then].secret = t->key_secret;
		F.keys_then[F.n_keys_then].cgroup_id = t->origin.cgroup_id;
		F.keys_then[F.n_keys_then].w = (unsigned)(t->w - F.m.w);
		F.n_keys_then++;
	}
}

/* A NEW_CONN for a cancel goes to the worker of a relaying session with its key, in
 * the cgroup the canceller came from: one there now, or, for a cancel read from a
 * backlog, one there when a packet left it queued (it may have ended since). */
HARNESS static void check_cancel(unsigned w, const struct priv_new_conn *nc)
{
	uint32_t pid, secret;
	bool found = false;

	memcpy(&pid, nc->cancel_pkt + 8, 4);
	memcpy(&secret, nc->cancel_pkt + 12, 4);
	pid = ntohl(pid);
	secret = ntohl(secret);
	for (struct mon_conn *t = F.m.head; t; t = t->next)
		found |= t->w == &F.m.w[w] && t->st == MC_RELAYING && t->have_key && t->key_pid == pid &&
			 t->key_secret == secret && t->origin.cgroup_id == nc->origin.cgroup_id;
	for (size_t i = 0; i < F.n_keys_then; i++)
		found |= F.keys_then[i].w == w && F.keys_then[i].pid == pid && F.keys_then[i].secret == secret &&
			 F.keys_then[i].cgroup_id == nc->origin.cgroup_id;
	fuzz_check(found || F.keys_then_full);
}

/* What the worker reads: replies (the held password only for cleartext to a
 * verify-full upstream that lists "password") and commands. */
HARNESS static void drain(unsigned w, bool replies, bool commands)
{
	while (replies) {
		int fd = -1;
		long n = priv_recv(F.wend[w][1], F.rbuf, PRIV_MAX_MSG, &fd);
		struct priv_hdr h;

		if (n < 0)
			break;
		memcpy(&h, F.rbuf, sizeof(h));
		fuzz_check(h.type == PRIV_REPLY && (size_t)n >= sizeof(struct priv_reply));
		if (!F.input_has_pw && memmem(F.rbuf + sizeof(h), (size_t)n, PASSWORD, strlen(PASSWORD))) {
			struct mon_conn *c = find(h.conn);
			struct config_upstream *u = c ? config_upstream_named(&F.cfg, c->upstream) : NULL;

			fuzz_check(u && u->tls == CONFIG_TLS_VERIFY_FULL && (u->auth_methods & CONFIG_AUTH_PASSWORD) && c->w == &F.m.w[w]);
		}
		if (fd >= 0)
			close(fd);
	}
	while (commands) {
		int fd = -1;
		long n = priv_recv(F.wend[w][0], F.rbuf, PRIV_MAX_MSG, &fd);
		struct priv_hdr h;

		if (n < 0)
			break;
		memcpy(&h, F.rbuf, sizeof(h));
		if (h.type == PRIV_NEW_CONN) {
			struct priv_new_conn nc;

			fuzz_check((size_t)n == sizeof(nc) && fd >= 0);
			memcpy(&nc, F.rbuf + sizeof(h), sizeof(nc));
			if (nc.cancel)
				check_cancel(w, &nc);
		}
		if (h.type == PRIV_VERDICT) {
			struct priv_verdict v;

			fuzz_check((size_t)n >= sizeof(v));
			memcpy(&v, F.rbuf + sizeof(h), sizeof(v));
			fuzz_check(sizeof(v) + v.claims_len == (size_t)n);
			fuzz_check(!v.recorded || fd >= 0);
			/* (a refusal quotes the database name the worker gave) */
			fuzz_check(F.input_has_pw || !memmem(F.rbuf + sizeof(h), (size_t)n, PASSWORD, strlen(PASSWORD)));
		}
		if (fd >= 0)
			close(fd);
	}
}

/* The parent reaps a worker it killed (its sessions end, its channels close). */
HARNESS static void reap(void)
{
	if (!(F.kills & ~F.reaped))
		return;
	F.m.stopping = true; /* no respawn (a fork) */
	monitor_children(&F.m);
	F.m.stopping = false;
}

HARNESS static void send_packet(unsigned w, const uint8_t *p, size_t len, bool with_fd, bool cmd_backlog)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { (void *)p, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct priv_hdr h = { 0 };

	if (F.m.w[w].pid <= 0)
		return;                 /* killed: it says nothing more */
	if (with_fd) {
		struct cmsghdr *c;

		memset(&u, 0, sizeof(u));
		mh.msg_control = u.buf;
		mh.msg_controllen = sizeof(u.buf);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &F.devnull, sizeof(int));
	}
	if (sendmsg(F.wend[w][1], &mh, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		return;
	if (len >= sizeof(h))
		memcpy(&h, p, sizeof(h));
	F.cur_conn = h.conn;
	take_snap();
	monitor_worker_event(&F.m, &F.m.w[w], EPOLLIN);
	if (F.trace) {
		struct mon_conn *c = find(h.conn);

		fprintf(stderr, "worker %u: %s (%zu bytes) for %llu: %s, session %s (state %d)\n", w, priv_type_name(h.type),
			len, (unsigned long long)h.conn, F.kills & (1u << w) ? "KILLED" : "taken", c ? "kept" : "absent",
			c ? (int)c->st : -1);
	}
	reap();
	check_isolation(w, h.type, h.conn);
	check_table();
	if (cmd_backlog)
		keys_remember();
	for (unsigned i = 0; i < NW; i++)
		if (F.m.w[i].pid > 0)
			drain(i, i == w, !cmd_backlog); /* replies go to the caller alone */
}

/* Events of the parent's own: the file-system threads done, a person deciding the first request. */
HARNESS static void event(unsigned kind)
{
	struct mon_conn *c;
	char err[256];

	if (kind == 0) {
		/* the parent's threads are done: the file-system threads' results (and the
		 * token file a hash done asks for), then the proofs' */
		monitor_fs_done(&F.m);
		monitor_proofs_done(&F.m);
	} else {
		struct session_approver who = { .uid = kind == 2 ? 1000 : 0, .loginuid = UINT32_MAX, .root = kind == 1 };

		for (c = F.m.head; c && !c->held_id; c = c->next)
			;
		if (c)
			(void)monitor_decide(&F.m, c->held_id, kind != 3, "fuzz", "tester", &who, err, sizeof(err));
	}
	reap();
	check_table();
	for (unsigned i = 0; i < NW; i++)
		if (F.m.w[i].pid > 0)
			drain(i, false, true);
}

HARNESS static void finish(void)
{
	struct monitor *m = &F.m;
	json_t *j = monitor_status(m);

	json_decref(j);
	j = monitor_approvals(m);
	for (size_t i = 0; i < json_array_size(j); i++) {
		json_t *a = json_array_get(j, i);
		struct mon_conn *c = find((uint64_t)json_integer_value(json_object_get(a, "session")));

		/* who asked is the parent's record, not the worker's word */
		fuzz_check(c && c->held_id == (uint64_t)json_integer_value(json_object_get(a, "request")));
		fuzz_check(json_integer_value(json_object_get(a, "uid")) == (json_int_t)c->origin.uid);
		fuzz_check(json_integer_value(json_object_get(a, "pid")) == (json_int_t)c->origin.tgid);
	}
	json_decref(j);
	json_decref(monitor_workers(m));
	monitor_proofs_done(m);          /* what the thread still has */
	fuzz_check(!F.n_proofs && !m->proof_jobs);
	while (m->head)
		conn_end(m, m->head);
	/* every job was its login's, and went with it */
	fuzz_check(F.n_jobs == 0);
	fuzz_check(m->logins.total == 0);
	for (size_t k = 0; k < m->logins.n_keys; k++)
		fuzz_check(m->logins.keys[k].n == 0);
	quota_logins_release(&m->logins);
	for (unsigned i = 0; i < NW; i++) {
		if (m->w[i].pid > 0) {
			int fd;

			drain(i, true, true);
			fuzz_check(priv_recv(m->w[i].req, F.rbuf, PRIV_MAX_MSG, &fd) == -EAGAIN);
			continue;
		}
		/* reaped: the parent closed its ends; the next input gets a new worker */
		fuzz_check(m->w[i].cmd < 0 && m->w[i].req < 0);
		close(F.wend[i][0]);
		close(F.wend[i][1]);
		open_channels(i);
	}
}

HARNESS int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t i = 1;

	if (size < 1)
		return 0;
	F.fds_before = count_fds();
	/* what the worker sent itself may come back (a name quoted in a refusal) */
	F.input_has_pw = memmem(data, size, PASSWORD, strlen(PASSWORD)) != NULL;
	F.scene = data[0];
	F.n_keys_then = 0;
	F.keys_then_full = false;
	scene();
	check_table();
	while (i < size) {
		uint8_t c = data[i++];
		unsigned w = (c & 3) == 3 ? 0 : c & 3, kind = c >> 4 & 3;
		size_t len, rep = 0, unit = 0;
		struct priv_hdr h;

		if (kind == 2) {
			event((c & 3));
			continue;
		}
		if (i + 2 > size)
			break;
		len = (size_t)data[i] | (size_t)data[i + 1] << 8;
		i += 2;
		if (kind == 3 && i + 3 <= size) {
			rep = (size_t)data[i] | (size_t)data[i + 1] << 8;
			unit = (size_t)data[i + 2] + 1;
			i += 3;
		}
		if (len > size - i)
			len = size - i;
		memcpy(F.pkt, data + i, len);
		i += len;
		/* the last unit bytes again, rep times: big packets from small inputs */
		if (unit > len)
			unit = len;
		if (unit && rep) {
			uint8_t *tail = F.pkt + len - unit;
			size_t total = unit * (rep + 1), done = unit;

			if (total > sizeof(h) + MAX_BODY - (len - unit))
				total = sizeof(h) + MAX_BODY - (len - unit);
			while (done < total) {          /* doubling: tail[0..done) repeats unit */
				size_t n = done < total - done ? done : total - done;

				memcpy(tail + done, tail, n);
				done += n;
			}
			len += total - unit;
		}
		if (!(c & 8) && len >= sizeof(h)) {
			memcpy(&h, F.pkt, sizeof(h));
			h.len = (uint32_t)(len - sizeof(h));
			memcpy(F.pkt, &h, sizeof(h));
			if (h.type == PRIV_HELD_INFO && h.len >= sizeof(struct priv_held)) {
				struct priv_held ph;

				memcpy(&ph, F.pkt + sizeof(h), sizeof(ph));
				ph.json_len = h.len - (uint32_t)sizeof(ph);
				memcpy(F.pkt + sizeof(h), &ph, sizeof(ph));
			}
		}
		F.input_has_pw |= memmem(F.pkt, len, PASSWORD, strlen(PASSWORD)) != NULL; /* built by repeating */
		send_packet(w, F.pkt, len, c & 4, c & 0x40);
	}
	finish();
	fuzz_check(count_fds() == F.fds_before);
	return 0;
}
