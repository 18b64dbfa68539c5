/*
 * The privileged parent's side of every connection (DESIGN.md "Processes"): accept,
 * the kernel's record and sock_diag, login caps, attestation and the executable's
 * hash, the token file, token verification, the rule decision, the recording file,
 * the upstream sockets (SO_MARK), the login as an oracle (the held credential never
 * leaves this process), cancel routing, approvals and status. Everything that parses
 * bytes a workload or a server sent runs in the workers it starts, supervises and
 * replaces (worker.c), one per core: unprivileged, no capabilities, seccomp.
 *
 * A connection is a mon_conn from accept to the worker's "ended"; its state says
 * which message the parent takes next for it (the parent refuses any other and ends
 * the worker that sent it).
 */
#ifndef PGTETHER_MONITOR_H
#define PGTETHER_MONITOR_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "attest.h"
#include "config.h"
#include "intercept.h"
#include "privsep.h"
#include "quota.h"
#include "sbuf.h"
#include "scrampool.h"

struct sockdiag;
struct monitor;
struct mon_scram;
struct mon_proof;

enum mon_state {
	MC_STARTUP,         /* the worker reads the startup packet */
	MC_ATTESTING,       /* the parent reads facts and hashes the executable */
	MC_TOKEN,           /* the worker asked the client for its token */
	MC_AUTHORIZED,      /* the verdict is out: the worker logs in upstream */
	MC_RELAYING,
	MC_REFUSED,         /* the worker refuses it */
	MC_CANCELLING,      /* a CancelRequest, with the worker of the session it cancels */
};

struct mon_worker {
	struct ev_source ev;            /* EV_WORKER */
	struct monitor *m;
	unsigned idx;
	pid_t pid;                      /* 0: none running */
	int cmd, req;                   /* the parent's ends */
	bool ready;
	unsigned sessions;
	struct timespec started;
	unsigned quick_deaths;          /* died within a second of starting, in a row */
	time_t respawn_at;              /* CLOCK_MONOTONIC s; 0: now */
	uint32_t last_cmd;              /* the type of the last command sent (remask_unread) */
	unsigned lives;                 /* processes of this slot that ended: a proof job
					 * names the one it counts against */
	uint64_t waiting;               /* the session whose SCRAM call waits for the proof
					 * thread (0: none); no other call is taken meanwhile */
	unsigned proofs;                /* jobs of this process in the proof pool */
	size_t held_bytes;              /* what its sessions' listings for approvers are charged */
	time_t held_window;             /* the minute held_window_bytes counts */
	size_t held_window_bytes;       /* listings parsed in it */
	unsigned cancels_open;          /* its cancels' sockets the parent has not written yet */
};

struct mon_conn {
	uint64_t id;
	struct mon_worker *w;
	enum mon_state st;
	int cfd;                        /* the parent's copy of the client socket */
	struct pgt_origin origin;
	bool have_origin;
	struct addr peer, dst;
	char upstream[CONFIG_NAME_MAX + 1];
	bool login_counted, login_keyed;
	uint64_t login_key;
	char user[CONFIG_NAME_MAX + 1];
	char database[CONFIG_NAME_MAX + 1];
	bool client_tls;
	struct attest_facts facts;
	bool facts_read;
	json_t *claims;
	const char *token_source;
	char token_path[PATH_MAX];      /* the file the token was read from ("file") */
	char token_iss[256], token_sub[256];
	char rule[128];
	char role[CONFIG_NAME_MAX + 1];
	char rec_id[64];
	struct addr addrs[CONFIG_MAX_RESOLVED]; /* what PRIV_SOCKET may connect to (the verdict's) */
	size_t n_addrs;
	bool login_asked;               /* the one proof (SCRAM, md5, cleartext) was given */
	bool startup_sent;              /* the parent wrote the StartupMessage (plain upstreams) */
	bool cancel_open;               /* a cancel's socket the parent has not written yet ... */
	int cancel_fd;                  /* ... and its copy of it */
	unsigned sockets;               /* upstream sockets handed out */
	struct mon_upsock {             /* a login's, each as the kernel names it (sockdiag) */
		struct addr local, remote;
		uint64_t cookie;
	} up_socks[CONFIG_MAX_RESOLVED];
	size_t n_up_socks;
	bool read_only;                 /* its rule's, as decided (a reload compares it) */
	time_t withdrawn_at;            /* a reload took its rule away (monotonic s), 0: not */
	struct addr up_addr;            /* the one its relay is connected to (cancels go there) */
	uint32_t key_pid, key_secret;
	bool have_key;
	uint64_t held_id;
	time_t held_since;
	json_t *held;                   /* what `pgtether approvals` shows */
	size_t held_len;                /* what it is charged in its worker's held_bytes */
	bool held_info_seen;            /* PRIV_HELD_INFO came for held_id */
	uint64_t bytes_in, bytes_out;
	char client_encoding[32], scs[8];
	struct timespec started;
	struct timespec handed;         /* sent to its worker (login_abandon counts from it) */
	struct priv_new_conn *pending;  /* waits for a worker to be ready (not sent yet) */
	struct mon_scram *scram;        /* its SCRAM call, waiting for the proof thread */
	uint64_t fs_job;                /* its job on the file-system threads (attest_fs), 0: none */
	enum attest_fs_kind fs_kind;
	struct mon_conn *prev, *next;
	struct mon_conn *hnext;         /* in its bucket of monitor.by_id */
};

struct monitor {
	struct config *cfg;
	struct intercept *ic;
	struct sockdiag *sd;
	bool no_destroy;                /* the kernel has no SOCK_DESTROY (said once) */
	struct attest_fs *fs;           /* token files, the executable's path and hash (NULL: on the loop) */
	struct attest_cache exe_cache;
	struct scrampool *proofs;       /* PBKDF2 off the loop (MON_PROOFS_MAX jobs) */
	struct mon_proof *proof_jobs;   /* what each job in it is for */
	uint64_t next_job;
	int epfd;
	int exe_fd;                     /* pgtetherd's own binary, for fexecve */
	uid_t wuid;
	gid_t wgid;
	struct mon_worker w[PRIV_MAX_WORKERS];
	unsigned n_workers;
	unsigned next_worker;
	bool stopping;
	bool debug;                     /* -v: workers log at debug level too */
	struct mon_conn *head;
	size_t n_conns;
	struct mon_conn **by_id;        /* buckets by id (n_by_id, a power of two): conn_find */
	size_t n_by_id;
	uint64_t next_id;
	uint64_t next_request;
	unsigned gen;                   /* of cfg, as the workers know it */
	int bundle_fd;                  /* cfg's files for the workers (cfgsrc memfd) */
	struct quota_logins logins;
	struct quota_episode turned_away; /* connections refused by a login cap */
	char turned_away_why[200];       /* the first of them, for the closing log line */
	time_t origins_checked;
	uint64_t origins_full_seen;
	uint8_t *buf;                   /* PRIV_MAX_MSG: one packet received */
};

/* SCRAM proofs: at most one job per worker process in the pool (a worker waits for
 * each call's answer, so a second one while its first computes, or while a job it
 * abandoned by ending the session still runs, is a worker taken over: it is killed),
 * and at most this many in all (more is answered -EBUSY: only jobs left by workers
 * that died can make up the difference, and they drain in 0.6 s each at most). */
#define MON_PROOFS_MAX PRIV_MAX_WORKERS

/* Sets m up (cfg, ic, sd, fs, proofs, epfd filled in by the caller) and starts the
 * workers. 0 or -errno, logged. */
int monitor_start(struct monitor *m, int bundle_fd);

/* Accepts every pending connection (as session_accept did). 0 or -errno of a
 * resource shortage (the caller pauses the listener). */
int monitor_accept(struct monitor *m, int lfd);

/* A worker's request channel is readable, or hung up. */
void monitor_worker_event(struct monitor *m, struct mon_worker *w, uint32_t events);

/* SIGCHLD: reaps workers, ends their sessions, starts new ones. */
void monitor_children(struct monitor *m);

/* The file-system threads' eventfd is readable: the logins waiting for them (a path,
 * a token file, an executable's hash) go on. */
void monitor_fs_done(struct monitor *m);
/* The proof thread's eventfd is readable: the SCRAM calls waiting for it are answered. */
void monitor_proofs_done(struct monitor *m);
void monitor_tick(struct monitor *m);

/* A reload swapped cfg: the workers get the new bundle (taken) and generation. */
void monitor_reloaded(struct monitor *m, int bundle_fd);

json_t *monitor_status(struct monitor *m);
json_t *monitor_workers(struct monitor *m);
json_t *monitor_approvals(struct monitor *m);

struct session_approver;
int monitor_decide(struct monitor *m, uint64_t id, bool approve, const char *reason, const char *by,
		   const struct session_approver *who, char *err, size_t errlen);

/* Stops the workers (their sessions end) and frees everything. */
void monitor_stop(struct monitor *m);

#endif
