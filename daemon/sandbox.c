/*
 * The worker's sandbox: credentials dropped for good, then a classic-BPF seccomp
 * allow-list (no libseccomp: the dependency set is fixed). What a worker does after
 * sandbox_enter() is read and write the fds it holds, receive more over its socketpair
 * (upstream sockets arrive connecting, to the upstream's address: not connect()), wait in epoll, arm timerfds, and
 * allocate memory; everything else kills it (SECCOMP_RET_KILL_PROCESS), so a worker
 * taken over by a workload's bytes can reach no file, no socket and no process it was
 * not handed.
 *
 * The filter is built at run time, not as a static table, because tgkill is allowed
 * towards the worker's own pid only (abort() raises SIGABRT with it), and that pid is
 * known only then.
 */
#include "sandbox.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <fcntl.h>
#include <grp.h>
#include <jansson.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <pwd.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define SANDBOX_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANDBOX_ASAN 1
#endif
#endif
#ifdef SANDBOX_ASAN
#include <sanitizer/common_interface_defs.h>
#include <sanitizer/lsan_interface.h>
#endif

/* The syscall numbers below are this build's (<sys/syscall.h>), so the filter admits
 * exactly the architecture it was compiled for; anything else (x86_64's i386 and x32
 * entry points included) is killed before its number is looked at, because the same
 * number means another call there. */
#if defined(__x86_64__)
#define SANDBOX_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define SANDBOX_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

/* Room for the allow-list with its argument checks (about 130 instructions today);
 * the kernel's own limit is BPF_MAXINSNS (4096). */
#define SANDBOX_MAX_INSNS 512
#define SANDBOX_MAX_UID_LEN 256

int sandbox_user(const char *name, uid_t *ret_uid, gid_t *ret_gid, char *err, size_t errlen)
{
	struct passwd pw, *found = NULL;
	char buf[4096];
	bool numeric;
	int r;

	if (!name || !*name || strlen(name) >= SANDBOX_MAX_UID_LEN) {
		snprintf(err, errlen, "worker_user is empty or too long");
		return -EINVAL;
	}
	numeric = strspn(name, "0123456789") == strlen(name);
	if (numeric) {
		/* a number as useradd(8) takes it; without a passwd entry, its own group */
		unsigned long long id = strtoull(name, NULL, 10);

		if (id == 0 || id >= (uid_t)-1) {
			snprintf(err, errlen, "worker_user %s is not an unprivileged uid", name);
			return id == 0 ? -EPERM : -EINVAL;
		}
		r = getpwuid_r((uid_t)id, &pw, buf, sizeof(buf), &found);
		if (r == 0 && !found) {
			pw.pw_uid = (uid_t)id;
			pw.pw_gid = (gid_t)id;
			found = &pw;
		}
	} else {
		r = getpwnam_r(name, &pw, buf, sizeof(buf), &found);
	}
	if (r != 0) {
		snprintf(err, errlen, "cannot look up the worker user '%s': %s", name, strerror(r));
		return -r;
	}
	if (!found) {
		snprintf(err, errlen,
			 "the worker user '%s' does not exist: `make install` creates '%s', or set "
			 "worker_user in pgtether.json to an unprivileged system user",
			 name, SANDBOX_DEFAULT_USER);
		return -ENOENT;
	}
	if (pw.pw_uid == 0 || pw.pw_gid == 0) {
		snprintf(err, errlen,
			 "the worker user '%s' is uid %u gid %u: workers must not run as root or "
			 "in group 0; set worker_user to an unprivileged system user (`make "
			 "install` creates '%s')",
			 name, (unsigned)pw.pw_uid, (unsigned)pw.pw_gid, SANDBOX_DEFAULT_USER);
		return -EPERM;
	}
	*ret_uid = pw.pw_uid;
	*ret_gid = pw.pw_gid;
	return 0;
}

int sandbox_preload(char *err, size_t errlen)
{
	unsigned char seed[16];

	/* The configuration file is read here and never again; the providers the
	 * handshakes fetch from are built in. */
	if (OPENSSL_init_ssl(OPENSSL_INIT_LOAD_SSL_STRINGS | OPENSSL_INIT_LOAD_CRYPTO_STRINGS |
				     OPENSSL_INIT_LOAD_CONFIG,
			     NULL) != 1) {
		snprintf(err, errlen, "OpenSSL initialisation failed");
		return -EIO;
	}
	/* The first draw seeds the DRBG (getrandom, which stays allowed, but a failing
	 * one would fall back to opening /dev/urandom). */
	if (RAND_bytes(seed, sizeof(seed)) != 1) {
		snprintf(err, errlen, "OpenSSL's random generator could not be seeded");
		return -EIO;
	}
	explicit_bzero(seed, sizeof(seed));
	/* glibc reads /etc/localtime on the first time conversion, gmtime_r included. */
	tzset();
	/* jansson seeds its hash function from /dev/urandom when the first object is
	 * made (a no-op when that already happened) */
	json_object_seed(0);
#ifdef SANDBOX_ASAN
	{
		/* A report symbolizes its stack: GCC's runtime opens the binary and every
		 * loaded library (and /proc/self/maps) on the first symbolization and keeps
		 * what it read, so one symbolization now makes later reports work in the
		 * sandbox. */
		char where[256];

		__sanitizer_symbolize_pc(__builtin_return_address(0), "%F %L", where, sizeof(where));
		/* caches /proc/self/maps and the binary's name, which reports print */
		__sanitizer_sandbox_on_notify(NULL);
		/* The end-of-process leak check stops the world with clone and ptrace,
		 * which the filter kills; run it once now (it then does not run at exit). */
		__lsan_do_leak_check();
	}
#endif
	return 0;
}

/* ---- the filter ------------------------------------------------------------- */
#ifdef SANDBOX_AUDIT_ARCH

struct sandbox_prog {
	struct sock_filter insns[SANDBOX_MAX_INSNS];
	size_t n;
	bool overflow;
};

#define SANDBOX_ARG_LO(i) ((uint32_t)offsetof(struct seccomp_data, args[(i)]))

static void sandbox_emit(struct sandbox_prog *p, struct sock_filter insn)
{
	if (p->n >= SANDBOX_MAX_INSNS) {
		p->overflow = true;
		return;
	}
	p->insns[p->n++] = insn;
}

static void sandbox_stmt(struct sandbox_prog *p, uint16_t code, uint32_t k)
{
	sandbox_emit(p, (struct sock_filter)BPF_STMT(code, k));
}

static void sandbox_jump(struct sandbox_prog *p, uint16_t code, uint32_t k, uint8_t jt, uint8_t jf)
{
	sandbox_emit(p, (struct sock_filter)BPF_JUMP(code, k, jt, jf));
}

/* Every check below starts with the syscall number in A and ends, when it matched,
 * in a return: a block never falls through into the next check with an argument in A. */
static void sandbox_allow(struct sandbox_prog *p, long nr)
{
	sandbox_jump(p, BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)nr, 0, 1);
	sandbox_stmt(p, BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
}

/* NR is allowed when the low 32 bits of argument ARG are one of VALUES (ints and
 * unsigned ints: the kernel ignores the upper half). Anything else kills. */
static void sandbox_allow_arg_in(struct sandbox_prog *p, long nr, unsigned arg, const uint32_t *values,
				 size_t n)
{
	size_t len = 1 + 2 * n + 1, i;

	if (len > 255) {
		p->overflow = true;
		return;
	}
	sandbox_jump(p, BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)nr, 0, (uint8_t)len);
	sandbox_stmt(p, BPF_LD | BPF_W | BPF_ABS, SANDBOX_ARG_LO(arg));
	for (i = 0; i < n; i++) {
		sandbox_jump(p, BPF_JMP | BPF_JEQ | BPF_K, values[i], 0, 1);
		sandbox_stmt(p, BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	}
	sandbox_stmt(p, BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
}

/* NR is allowed when the (ARG_A, ARG_B) pair is one of PAIRS. */
static void sandbox_allow_pair_in(struct sandbox_prog *p, long nr, unsigned arg_a, unsigned arg_b,
				  const uint32_t (*pairs)[2], size_t n)
{
	size_t len = 5 * n + 1, i;

	if (len > 255) {
		p->overflow = true;
		return;
	}
	sandbox_jump(p, BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)nr, 0, (uint8_t)len);
	for (i = 0; i < n; i++) {
		sandbox_stmt(p, BPF_LD | BPF_W | BPF_ABS, SANDBOX_ARG_LO(arg_a));
		sandbox_jump(p, BPF_JMP | BPF_JEQ | BPF_K, pairs[i][0], 0, 3);
		sandbox_stmt(p, BPF_LD | BPF_W | BPF_ABS, SANDBOX_ARG_LO(arg_b));
		sandbox_jump(p, BPF_JMP | BPF_JEQ | BPF_K, pairs[i][1], 0, 1);
		sandbox_stmt(p, BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	}
	sandbox_stmt(p, BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
}

/* NR is allowed when no bit of MASK is set in argument ARG. */
static void sandbox_allow_arg_clear(struct sandbox_prog *p, long nr, unsigned arg, uint32_t mask)
{
	sandbox_jump(p, BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)nr, 0, 4);
	sandbox_stmt(p, BPF_LD | BPF_W | BPF_ABS, SANDBOX_ARG_LO(arg));
	sandbox_jump(p, BPF_JMP | BPF_JSET | BPF_K, mask, 0, 1);
	sandbox_stmt(p, BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
	sandbox_stmt(p, BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
}

/* NR fails with ERR instead of running (callers then take their fallback). */
static void sandbox_fail(struct sandbox_prog *p, long nr, uint32_t err)
{
	sandbox_jump(p, BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)nr, 0, 1);
	sandbox_stmt(p, BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (err & SECCOMP_RET_DATA));
}

/* NR is allowed when both halves of argument ARG are zero (a NULL pointer). */
static void sandbox_allow_arg_null(struct sandbox_prog *p, long nr, unsigned arg)
{
	sandbox_jump(p, BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)nr, 0, 6);
	sandbox_stmt(p, BPF_LD | BPF_W | BPF_ABS, SANDBOX_ARG_LO(arg));
	sandbox_jump(p, BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 3);
	sandbox_stmt(p, BPF_LD | BPF_W | BPF_ABS, SANDBOX_ARG_LO(arg) + 4);
	sandbox_jump(p, BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1);
	sandbox_stmt(p, BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	sandbox_stmt(p, BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
}

static void sandbox_build(struct sandbox_prog *p, pid_t self)
{
	/* Calls with no argument worth checking: I/O on fds already held (the client,
	 * the upstream, recording files, the socketpair with fds arriving by
	 * SCM_RIGHTS), the event loop, timers, memory, time, randomness, signals for
	 * the process itself, exit. */
	static const long plain[] = {
		SYS_read, SYS_write, SYS_readv, SYS_writev, SYS_pread64, SYS_pwrite64, SYS_lseek,
		SYS_recvfrom, SYS_recvmsg,
		/* the upstream socket arrives connecting (the parent set SO_MARK, which
		 * needs CAP_NET_ADMIN, and connected it to the upstream): no connect(),
		 * with which AF_UNSPEC then an address would aim it anywhere (nor
		 * sendto/sendmsg with MSG_FASTOPEN, below) */
		SYS_getsockopt, SYS_getpeername, SYS_getsockname, SYS_shutdown,
		SYS_close,
		SYS_epoll_create1, SYS_epoll_ctl, SYS_epoll_pwait, SYS_ppoll,
#ifdef SYS_poll
		SYS_poll,
#endif
#ifdef SYS_epoll_pwait2
		SYS_epoll_pwait2,
#endif
#ifdef SYS_epoll_wait
		SYS_epoll_wait,
#endif
		SYS_timerfd_create, SYS_timerfd_settime, SYS_timerfd_gettime, SYS_signalfd4,
		SYS_munmap, SYS_mremap, SYS_brk, SYS_madvise, SYS_futex,
		SYS_clock_gettime, SYS_clock_getres, SYS_clock_nanosleep, SYS_nanosleep,
		SYS_gettimeofday,
#ifdef SYS_time
		SYS_time,
#endif
		SYS_getrandom,
		/* glibc's fstat is newfstatat(fd, "", AT_EMPTY_PATH). A path given there
		 * is still looked up: the cost is that a worker can learn the metadata (not
		 * the contents) of paths its user may see, which BPF cannot tell apart. */
#ifdef SYS_fstat
		SYS_fstat,
#endif
		SYS_newfstatat,
		SYS_fsync, SYS_fdatasync, SYS_ftruncate,
		SYS_rt_sigreturn, SYS_rt_sigprocmask, SYS_rt_sigaction,
		/* the sanitizers run their handlers on an alternate stack */
		SYS_sigaltstack,
		SYS_getpid, SYS_gettid, SYS_getppid, SYS_getuid, SYS_geteuid, SYS_getgid, SYS_getegid,
		SYS_sched_yield, SYS_restart_syscall, SYS_exit, SYS_exit_group,
		/* what a new thread does at its start (glibc; pthread_getattr_np, which
		 * ASan calls for its stack bounds, reads the affinity) */
		SYS_set_robust_list, SYS_sched_getaffinity,
#ifdef SYS_rseq
		SYS_rseq,
#endif
	};
	/* Threads, not processes: sqlclass parses long statements on a thread with a
	 * big stack. clone3 passes its flags in memory, where BPF cannot look, so it
	 * fails with ENOSYS and glibc falls back to clone, whose flags are an argument:
	 * exactly glibc's pthread_create set (same memory, files, credentials and
	 * filter; no new namespace, no exit signal, so no new process). */
	static const uint32_t thread_flags[] = {
		CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM |
		CLONE_SETTLS | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID,
	};
	/* O_NONBLOCK on fds that arrive blocking, FD_CLOEXEC, and checking that the
	 * configuration memfd is sealed; no locks, no leases, no F_SETOWN (signals to
	 * another process), no duplication, no adding seals. */
	static const uint32_t fcntl_cmds[] = { F_GETFL, F_SETFL, F_GETFD, F_SETFD, F_GET_SEALS };
	/* Dying with the parent (the uid change clears it, so a worker sets it after
	 * the drop) and naming its thread; not PR_SET_DUMPABLE, PR_SET_SECCOMP,
	 * PR_SET_MM, PR_SET_PTRACER or anything else. */
	static const uint32_t prctl_opts[] = { PR_SET_PDEATHSIG, PR_SET_NAME };
	/* FIONBIO/FIONREAD for sockets; TCGETS is isatty(), which stdio may ask of
	 * stderr. Not TIOCSTI or any other terminal or device request. */
	static const uint32_t ioctl_cmds[] = { FIONBIO, FIONREAD, TCGETS };
	/* Options a relay sets on its own TCP connections. Not SO_MARK (needs
	 * CAP_NET_ADMIN anyway), SO_ATTACH_FILTER, TCP_ULP or the like: kernel code a
	 * worker has no use for. */
	static const uint32_t sockopts[][2] = {
		{ IPPROTO_TCP, TCP_NODELAY },	{ SOL_SOCKET, SO_KEEPALIVE },
		{ IPPROTO_TCP, TCP_KEEPIDLE },	{ IPPROTO_TCP, TCP_KEEPINTVL },
		{ IPPROTO_TCP, TCP_KEEPCNT },	{ IPPROTO_TCP, TCP_USER_TIMEOUT },
	};
	uint32_t pid = (uint32_t)self;
	size_t i;

	sandbox_stmt(p, BPF_LD | BPF_W | BPF_ABS, (uint32_t)offsetof(struct seccomp_data, arch));
	sandbox_jump(p, BPF_JMP | BPF_JEQ | BPF_K, SANDBOX_AUDIT_ARCH, 1, 0);
	sandbox_stmt(p, BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
	sandbox_stmt(p, BPF_LD | BPF_W | BPF_ABS, (uint32_t)offsetof(struct seccomp_data, nr));
#if defined(__x86_64__)
	/* x32 calls share AUDIT_ARCH_X86_64 and differ by this bit */
	sandbox_jump(p, BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, 0, 1);
	sandbox_stmt(p, BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
#endif
	for (i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
		sandbox_allow(p, plain[i]);
	/* No new executable memory: nothing is loaded or generated after the sandbox,
	 * so a PROT_EXEC mapping could only be an exploit's. */
	sandbox_allow_arg_clear(p, SYS_mmap, 2, PROT_EXEC);
	sandbox_allow_arg_clear(p, SYS_mprotect, 2, PROT_EXEC);
	/* MSG_FASTOPEN connects a TCP socket in the CLOSE state to the address given:
	 * an upstream socket the server refused, or one shut down while connecting,
	 * would be aimed anywhere with its mark. Nothing in a worker sends with it. */
	sandbox_allow_arg_clear(p, SYS_sendto, 3, MSG_FASTOPEN);
	sandbox_allow_arg_clear(p, SYS_sendmsg, 2, MSG_FASTOPEN);
	sandbox_allow_arg_in(p, SYS_fcntl, 1, fcntl_cmds, sizeof(fcntl_cmds) / sizeof(fcntl_cmds[0]));
	sandbox_allow_arg_in(p, SYS_ioctl, 1, ioctl_cmds, sizeof(ioctl_cmds) / sizeof(ioctl_cmds[0]));
	sandbox_allow_arg_in(p, SYS_prctl, 0, prctl_opts, sizeof(prctl_opts) / sizeof(prctl_opts[0]));
	sandbox_allow_arg_in(p, SYS_clone, 0, thread_flags, 1);
#ifdef SYS_clone3
	sandbox_fail(p, SYS_clone3, ENOSYS);
#endif
	sandbox_allow_pair_in(p, SYS_setsockopt, 1, 2, sockopts, sizeof(sockopts) / sizeof(sockopts[0]));
	/* abort() and the sanitizers signal the process itself; no other process */
	sandbox_allow_arg_in(p, SYS_tgkill, 0, &pid, 1);
	/* reading limits (the sanitizers' stack bounds), never setting them */
	sandbox_allow_arg_null(p, SYS_prlimit64, 2);
#ifdef SYS_getrlimit
	sandbox_allow(p, SYS_getrlimit);
#endif
	sandbox_stmt(p, BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
}

static int sandbox_caps(uint32_t *ret_eff, uint32_t *ret_prm, uint32_t *ret_inh)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

	memset(data, 0, sizeof(data));
	if (syscall(SYS_capget, &hdr, data) == -1)
		return -errno;
	*ret_eff = data[0].effective | data[1].effective;
	*ret_prm = data[0].permitted | data[1].permitted;
	*ret_inh = data[0].inheritable | data[1].inheritable;
	return 0;
}

/* Clears the ambient set and, when the process may (CAP_SETPCAP), the bounding set.
 * Without CAP_SETPCAP (a service manager may not grant it) the bounding set stays as
 * inherited: with no capability left, NO_NEW_PRIVS and no execve, nothing could be
 * gained from it anyway. */
static int sandbox_drop_capsets(char *err, size_t errlen)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
	int cap;

	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) == -1 && errno != EINVAL) {
		snprintf(err, errlen, "cannot clear the ambient capabilities: %s", strerror(errno));
		return -errno;
	}
	memset(data, 0, sizeof(data));
	if (syscall(SYS_capget, &hdr, data) == -1) {
		snprintf(err, errlen, "capget: %s", strerror(errno));
		return -errno;
	}
	if (!(data[CAP_TO_INDEX(CAP_SETPCAP)].effective & CAP_TO_MASK(CAP_SETPCAP)))
		return 0;
	for (cap = 0; cap < 64; cap++) {
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == -1) {
			if (errno == EINVAL)
				break; /* past the kernel's last capability */
			snprintf(err, errlen, "cannot drop capability %d from the bounding set: %s", cap,
				 strerror(errno));
			return -errno;
		}
	}
	return 0;
}

static int sandbox_check_ids(uid_t uid, gid_t gid, char *err, size_t errlen)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg, groups[1];
	uint32_t eff = ~0u, prm = ~0u, inh = ~0u; /* fail closed */
	int r;

	if (getresuid(&ru, &eu, &su) == -1 || getresgid(&rg, &eg, &sg) == -1) {
		snprintf(err, errlen, "cannot read back the worker's ids: %s", strerror(errno));
		return -errno;
	}
	if (ru != uid || eu != uid || su != uid || rg != gid || eg != gid || sg != gid) {
		snprintf(err, errlen, "the worker's ids are %u/%u/%u:%u/%u/%u after dropping to %u:%u",
			 (unsigned)ru, (unsigned)eu, (unsigned)su, (unsigned)rg, (unsigned)eg,
			 (unsigned)sg, (unsigned)uid, (unsigned)gid);
		return -EPERM;
	}
	if (getgroups(1, groups) != 0) {
		snprintf(err, errlen, "the worker kept supplementary groups");
		return -EPERM;
	}
	r = sandbox_caps(&eff, &prm, &inh);
	if (r < 0) {
		snprintf(err, errlen, "capget: %s", strerror(-r));
		return r;
	}
	if (eff || prm || inh) {
		snprintf(err, errlen,
			 "the worker kept capabilities after setresuid (effective %#x, permitted %#x, "
			 "inheritable %#x)",
			 eff, prm, inh);
		return -EPERM;
	}
	/* the drop is for good: neither root nor the old ids come back */
	if (setresuid(0, 0, 0) == 0 || setresgid(0, 0, 0) == 0) {
		snprintf(err, errlen, "the worker could become root again after dropping to %u:%u",
			 (unsigned)uid, (unsigned)gid);
		return -EPERM;
	}
	return 0;
}
#endif

int sandbox_enter(uid_t uid, gid_t gid, char *err, size_t errlen)
{
#ifndef SANDBOX_AUDIT_ARCH
	(void)uid;
	(void)gid;
	snprintf(err, errlen,
		 "the worker sandbox has no seccomp filter for this architecture (x86_64 and "
		 "little-endian aarch64 only): refusing to run workers without one");
	return -ENOSYS;
#else
	static struct sandbox_prog prog;
	struct sock_fprog fprog;
	struct rlimit core;
	int r;

	if (uid == 0 || gid == 0) {
		snprintf(err, errlen, "refusing to run a worker as uid %u gid %u: it must be unprivileged",
			 (unsigned)uid, (unsigned)gid);
		return -EPERM;
	}
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) == -1) {
		snprintf(err, errlen, "PR_SET_KEEPCAPS: %s", strerror(errno));
		return -errno;
	}
	r = sandbox_drop_capsets(err, errlen);
	if (r < 0)
		return r;
	if (setgroups(0, NULL) == -1) {
		snprintf(err, errlen, "cannot drop supplementary groups: %s", strerror(errno));
		return -errno;
	}
	if (setresgid(gid, gid, gid) == -1) {
		snprintf(err, errlen, "cannot change to gid %u: %s", (unsigned)gid, strerror(errno));
		return -errno;
	}
	/* with every uid non-zero and KEEPCAPS off, this clears the permitted and
	 * effective sets (capabilities(7), "Effect of user ID changes") */
	if (setresuid(uid, uid, uid) == -1) {
		snprintf(err, errlen, "cannot change to uid %u: %s", (unsigned)uid, strerror(errno));
		return -errno;
	}
	r = sandbox_check_ids(uid, gid, err, errlen);
	if (r < 0)
		return r;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1) {
		snprintf(err, errlen, "PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
		return -errno;
	}
	/* the parent's death ends the worker; set here, after the uid change (which
	 * clears it) and before the filter (which forbids prctl) */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) == -1) {
		snprintf(err, errlen, "PR_SET_PDEATHSIG: %s", strerror(errno));
		return -errno;
	}
	/* not dumpable: /proc/PID/mem, ptrace and core dumps stay root's, not the
	 * worker user's (another process of that user could otherwise read a session) */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1) {
		snprintf(err, errlen, "PR_SET_DUMPABLE: %s", strerror(errno));
		return -errno;
	}
	/* A service manager may already have set it (LimitCORE=0) and deny setrlimit. */
	if (getrlimit(RLIMIT_CORE, &core) == -1) {
		snprintf(err, errlen, "getrlimit(RLIMIT_CORE): %s", strerror(errno));
		return -errno;
	}
	if (core.rlim_cur != 0 || core.rlim_max != 0) {
		core.rlim_cur = core.rlim_max = 0;
		if (setrlimit(RLIMIT_CORE, &core) == -1) {
			snprintf(err, errlen, "cannot set RLIMIT_CORE to 0: %s", strerror(errno));
			return -errno;
		}
	}

	memset(&prog, 0, sizeof(prog));
	sandbox_build(&prog, getpid());
	if (prog.overflow) {
		snprintf(err, errlen, "the seccomp filter does not fit in %d instructions", SANDBOX_MAX_INSNS);
		return -E2BIG;
	}
	fprog.len = (unsigned short)prog.n;
	fprog.filter = prog.insns;
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fprog, 0, 0) == -1) {
		snprintf(err, errlen, "cannot install the seccomp filter: %s", strerror(errno));
		return -errno;
	}
	return 0;
#endif
}
