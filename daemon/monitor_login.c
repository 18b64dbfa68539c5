/*
 * The parent's part of a login (monitor_int.h): the kernel facts and the
 * executable's hash, the token (a file read in the workload's mount namespace, or
 * what the client sent), the rule decision, the recording file, and the upstream
 * login as an oracle: the held credential never leaves this process (but for a
 * cleartext login over verified TLS).
 */
#include "monitor_int.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <linux/tcp.h> /* tcp_info with tcpi_bytes_sent (glibc's has not) */
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "policy.h"
#include "record.h"
#include "session.h"
#include "startopts.h"
#include "token.h"

/* ---- identity ---------------------------------------------------------------------- */

static void verdict_send(struct monitor *m, struct mon_conn *c, struct priv_verdict *v, int recfd)
{
	char *claims = NULL;
	size_t clen = 0;
	uint8_t *b;

	(void)m;
	if (v->ok && c->claims) {
		claims = json_dumps(c->claims, JSON_COMPACT);
		clen = claims ? strlen(claims) : 0;
	}
	v->claims_len = (uint32_t)clen;
	b = malloc(sizeof(*v) + clen);
	if (!b) {
		free(claims);
		worker_kill(c->w, "out of memory for a verdict");
		return;
	}
	memcpy(b, v, sizeof(*v));
	if (clen)
		memcpy(b + sizeof(*v), claims, clen);
	free(claims);
	c->st = v->ok ? MC_AUTHORIZED : MC_REFUSED;
	if (!v->ok)
		login_done(m, c);
	worker_send(c->w, PRIV_VERDICT, c->id, b, sizeof(*v) + clen, recfd);
	free(b);
}

static void verdict_facts(const struct mon_conn *c, struct priv_verdict *v)
{
	memset(v, 0, sizeof(*v));
	v->facts = c->facts;
	v->ready_facts = c->facts_read;
	snprintf(v->rule, sizeof(v->rule), "%s", c->rule);
	snprintf(v->token_source, sizeof(v->token_source), "%s", c->token_source ? c->token_source : "none");
	snprintf(v->token_path, sizeof(v->token_path), "%s", c->token_path);
	snprintf(v->token_iss, sizeof(v->token_iss), "%s", c->token_iss);
	snprintf(v->token_sub, sizeof(v->token_sub), "%s", c->token_sub);
}

/* Refuses c by fault f (fault.h) in the table's words for the facts ff (NULL: none):
 * the verdict carries the code, its SQLSTATE and the message. */
static void refuse_conn(struct monitor *m, struct mon_conn *c, enum fault_code f, const struct fault_facts *ff)
{
	struct priv_verdict v;
	struct fault_text t;

	if (fault_describe(f, ff ? ff : &(struct fault_facts){ 0 }, &t) < 0)
		fault_describe(f = FAULT_OUT_OF_MEMORY, &(struct fault_facts){ 0 }, &t); /* not a fault: unreachable */
	verdict_facts(c, &v);
	v.ok = false;
	v.fault = f;
	snprintf(v.sqlstate, sizeof(v.sqlstate), "%s", t.sqlstate);
	snprintf(v.msg, sizeof(v.msg), "%s", t.msg);
	verdict_send(m, c, &v, -1);
}

/* An attestation's failure r (enum attest_result) for why. */
static void refuse_attest(struct monitor *m, struct mon_conn *c, int r, const char *why)
{
	refuse_conn(m, c, r == ATTEST_CHANGED ? FAULT_PARENT_ATTEST_CHANGED : FAULT_PARENT_ATTEST,
		    &(struct fault_facts){ .detail = why });
}

static void conn_policy_facts(const struct mon_conn *c, struct policy_facts *f)
{
	*f = (struct policy_facts){
		.cgroup = c->facts.cgroup, .uid = c->origin.uid, .exe = c->facts.exe,
		.exe_sha256 = c->facts.exe_sha256, .database = c->database, .upstream = c->upstream,
		.exe_foreign = c->facts.exe_foreign, .token_known = true, .token = policy_token_named(c->token_source),
		.token_path = c->token_path,
	};
}

/* The decision, with the token (NULL: none) from source; problem (its path, err and
 * token_empty, else NULL) says why a token the rules wanted is missing. The token is
 * the caller's to wipe. */
static void authorize(struct monitor *m, struct mon_conn *c, const char *token, size_t len, const char *source,
		      const struct fault_facts *problem)
{
	const struct token_issuer *iss = NULL;
	const struct policy_rule *rule, *deny;
	struct config_upstream *u;
	struct priv_verdict v;
	struct policy_facts f;
	json_t *claims = NULL, *sub;
	const char *role;
	const struct addr *a;
	int recfd = -1;

	c->token_source = token ? source : "none";
	conn_policy_facts(c, &f);
	if (token) {
		enum token_result tr = token_verify(m->cfg->issuers.v, m->cfg->issuers.n, token, len, time(NULL), &claims, &iss);

		if (tr != TOKEN_OK) {
			refuse_conn(m, c, FAULT_PARENT_TOKEN_REFUSED,
				    &(struct fault_facts){ .token_source = source, .detail = token_strerror(tr) });
			return;
		}
		f.issuer = iss->issuer;
		f.claims = claims;
		snprintf(c->token_iss, sizeof(c->token_iss), "%s", iss->issuer);
		sub = json_object_get(claims, "sub");
		snprintf(c->token_sub, sizeof(c->token_sub), "%s", json_is_string(sub) ? json_string_value(sub) : "");
	}
	rule = policy_decide(&m->cfg->policy, &f, &deny);
	c->claims = claims;
	if (!rule && deny) {
		snprintf(c->rule, sizeof(c->rule), "%s", deny->name);
		refuse_conn(m, c, FAULT_PARENT_DENY_RULE,
			    &(struct fault_facts){ .rule = deny->name, .path = deny->file, .line = (unsigned)deny->line });
		return;
	}
	if (!rule) {
		struct fault_facts ff = problem ? *problem : (struct fault_facts){ 0 };

		ff.cgroup = c->facts.cgroup;
		ff.uid = c->origin.uid;
		ff.exe = c->facts.exe;
		ff.exe_foreign = c->facts.exe_foreign;
		ff.upstream = c->upstream;
		ff.database = c->database;
		ff.token_iss = c->token_iss;
		ff.token_sub = c->token_sub;
		refuse_conn(m, c, FAULT_PARENT_NO_RULE, &ff);
		return;
	}
	snprintf(c->rule, sizeof(c->rule), "%s", rule->name);
	u = config_upstream_named(m->cfg, c->upstream);
	role = u ? (rule->role ? rule->role : u->role) : "?";
	if (!u || !config_role_for(u, role)) { /* config_check_policy makes this impossible */
		refuse_conn(m, c, FAULT_PARENT_NO_CREDENTIAL, &(struct fault_facts){ .role = role, .upstream = c->upstream });
		return;
	}
	snprintf(c->role, sizeof(c->role), "%s", role);
	c->read_only = policy_read_only(rule);
	verdict_facts(c, &v);
	v.ok = true;
	v.rule_idx = (uint32_t)(rule - m->cfg->policy.rules);
	v.gen = m->gen;
	snprintf(v.role, sizeof(v.role), "%s", role);
	v.n_addrs = (uint32_t)config_upstream_addrs(u, &a);
	memcpy(v.addrs, a, v.n_addrs * sizeof(*a));
	memcpy(c->addrs, a, v.n_addrs * sizeof(*a));
	c->n_addrs = v.n_addrs;
	if (m->cfg->sessions_dir) {
		struct record_writer rw;
		char err[RECORD_ERR_LEN];

		if (record_create(&rw, m->cfg->sessions_dir, time(NULL), c->id, m->cfg->recording_fsync, err) == 0) {
			recfd = rw.fd;
			v.recorded = true;
			snprintf(v.rec_id, sizeof(v.rec_id), "%s", rw.id);
			snprintf(v.rec_path, sizeof(v.rec_path), "%s", rw.path);
			snprintf(c->rec_id, sizeof(c->rec_id), "%s", rw.id);
		} else {
			log_error("record", "id=%llu: %s%s", (unsigned long long)c->id, err,
				  m->cfg->recording_fail_open ? "; the session goes on unrecorded (recording_fail_mode open)" : "");
			if (!m->cfg->recording_fail_open) {
				refuse_conn(m, c, FAULT_LOGIN_RECORDING, &(struct fault_facts){ .detail = err });
				return;
			}
		}
	}
	verdict_send(m, c, &v, recfd);
	if (recfd >= 0)
		close(recfd);
}

/* The token file at path was read (r: attest_read_token's result, tok: len bytes);
 * tok is the caller's to wipe. */
static void token_read(struct monitor *m, struct mon_conn *c, const char *path, int r, const char *tok, size_t len)
{
	snprintf(c->token_path, sizeof(c->token_path), "%s", path);
	if (r == -ESTALE) {
		refuse_conn(m, c, FAULT_PARENT_PID_REUSED, NULL);
	} else if (r < 0) {
		authorize(m, c, NULL, 0, "file", &(struct fault_facts){ .path = path, .err = -r });
	} else {
		authorize(m, c, tok, len, "file", NULL);
	}
}

/* Which token to take: the source of the first allow rule whose kernel facts fit. */
static void identify(struct monitor *m, struct mon_conn *c)
{
	const struct policy *p = &m->cfg->policy;
	const struct policy_rule *first = NULL;
	struct policy_facts f;

	conn_policy_facts(c, &f);
	for (size_t i = 0; i < p->n && !first; i++)
		if (!p->rules[i].deny && policy_rule_fits_facts(&p->rules[i], &f))
			first = &p->rules[i];
	if (!first || first->token == POLICY_TOKEN_NONE) {
		authorize(m, c, NULL, 0, "none", NULL);
		return;
	}
	if (first->token == POLICY_TOKEN_PASSWORD) {
		c->st = MC_TOKEN;
		worker_send(c->w, PRIV_NEED_TOKEN, c->id, NULL, 0, -1);
		return;
	}
	/* a file: read in the workload's own mount namespace, while its pid is pinned; on
	 * a file-system thread, as the path may lead into a FUSE mount the workload serves */
	if (m->fs) {
		struct attest_fs_job *j = calloc(1, sizeof(*j));

		if (!j || strlen(first->token_path) >= sizeof(j->path)) {
			int e = j ? -ENAMETOOLONG : -ENOMEM;

			free(j);
			token_read(m, c, first->token_path, e, NULL, 0);
			return;
		}
		*j = (struct attest_fs_job){ .kind = ATTEST_FS_TOKEN, .tag = c->id, .key = c->login_key,
					     .pid = (pid_t)c->origin.tgid, .connect_boot_ns = c->origin.connect_ns,
					     .token_cap = SESSION_TOKEN_MAX + 1, .fd = -1 };
		j->facts.creds = c->facts.creds;
		snprintf(j->path, sizeof(j->path), "%s", first->token_path);
		if (attest_fs_submit(m->fs, j, &c->fs_job) != ATTEST_OK)
			refuse_conn(m, c, FAULT_PARENT_FS_BUSY, NULL);
		else
			c->fs_kind = ATTEST_FS_TOKEN;
		free(j);
		return;
	}
	/* no file-system threads (a harness driving the parent): here */
	size_t cap = SESSION_TOKEN_MAX + 1, len = 0;
	char *tok = malloc(cap);
	int r = tok ? attest_read_token((pid_t)c->origin.tgid, c->origin.connect_ns, &c->facts.creds, first->token_path,
				       tok, cap, &len)
		    : -ENOMEM;

	token_read(m, c, first->token_path, r, tok, len);
	if (tok) {
		OPENSSL_cleanse(tok, cap);
		free(tok);
	}
}

static void login_hash(struct monitor *m, struct mon_conn *c, int fd);

/* The kernel facts, read now that the client sent its startup packet (so what the
 * process did since connect() is seen), checked against the connect hook's record. */
void login_attest(struct monitor *m, struct mon_conn *c)
{
	const struct attest_origin o = {
		.pid = (pid_t)c->origin.tgid, .connect_boot_ns = c->origin.connect_ns,
		.uid = c->origin.uid, .gid = c->origin.gid, .cgroup_id = c->origin.cgroup_id,
		.exe_ino = c->origin.exe_ino, .exe_dev = c->origin.exe_dev,
		.exe_ctime_ns = (uint64_t)c->origin.exe_ctime_sec * 1000000000ull + c->origin.exe_ctime_nsec,
		.cgroup_mount = m->ic->cgroup_mount,
	};
	char why[ATTEST_WHY_LEN];
	enum attest_result r;
	int fd = -1;

	r = attest_read(&o, &c->facts, &fd, why, sizeof(why));
	if (r != ATTEST_OK) {
		refuse_attest(m, c, r, why);
		return;
	}
	c->facts_read = true;
	/* whether rules may trust the executable's path: it is looked up (on the host,
	 * and below the workload's root), so on a file-system thread */
	if (m->fs) {
		struct attest_fs_job *j = calloc(1, sizeof(*j));

		if (!j) {
			close(fd);
			refuse_conn(m, c, FAULT_PARENT_EXE_NO_MEMORY, NULL);
			return;
		}
		*j = (struct attest_fs_job){ .kind = ATTEST_FS_VOUCH, .tag = c->id, .key = c->login_key,
					     .pid = (pid_t)c->origin.tgid, .facts = c->facts, .fd = fd };
		r = attest_fs_submit(m->fs, j, &c->fs_job);
		free(j);
		if (r != ATTEST_OK) {
			refuse_conn(m, c, FAULT_PARENT_FS_BUSY, NULL);
			return;
		}
		c->fs_kind = ATTEST_FS_VOUCH;
		return;
	}
	{
		bool vouched = false;

		r = attest_vouch_exe(&c->facts, &vouched, why, sizeof(why));
		if (r != ATTEST_OK) {
			close(fd);
			refuse_conn(m, c, FAULT_PARENT_ATTEST, &(struct fault_facts){ .detail = why });
			return;
		}
		c->facts.exe_foreign = !vouched;
	}
	login_hash(m, c, fd);
}

/* Whether c waits for its executable's hash: by a job of its own on the file-system
 * threads, or for another login's of the same file (fs_job 0). */
static bool login_hashing(const struct mon_conn *c)
{
	return c->st == MC_ATTESTING && c->facts_read && !c->facts.exe_sha256[0] &&
	       (!c->fs_job || c->fs_kind == ATTEST_FS_HASH);
}

/* A hash of key is done (holder's job; NULL: a job whose login ended, only ever
 * passed a hash that was made): into the cache, and on to holder and every login
 * waiting for the same file. */
static void login_hashed(struct monitor *m, struct mon_conn *holder, const struct attest_exe_key *key,
			 enum attest_result r, const char sha256[65], const char *why)
{
	struct mon_conn *c, *next;

	if (r == ATTEST_OK)
		attest_cache_put(&m->exe_cache, key, sha256);
	for (c = m->head; c; c = next) {
		next = c->next;
		if (!login_hashing(c) || c->fs_job || (c != holder && memcmp(&c->facts.exe_key, key, sizeof(*key))))
			continue;
		if (r != ATTEST_OK) {
			refuse_attest(m, c, r, why);
			continue;
		}
		memcpy(c->facts.exe_sha256, sha256, sizeof(c->facts.exe_sha256));
		identify(m, c);
	}
}

/* The facts are read and the path vouched for or not: the hash (fd, taken, is the
 * executable's O_PATH fd), from the cache or a file-system thread (its open and reads
 * may wait on a FUSE server the workload runs, as a lookup may), then the token. */
static void login_hash(struct monitor *m, struct mon_conn *c, int fd)
{
	if (attest_cache_get(&m->exe_cache, &c->facts.exe_key, c->facts.exe_sha256)) {
		close(fd);
		identify(m, c);
		return;
	}
	/* the same executable already being hashed for another connection: wait for it */
	for (struct mon_conn *t = m->head; t; t = t->next)
		if (t != c && login_hashing(t) && !memcmp(&t->facts.exe_key, &c->facts.exe_key, sizeof(c->facts.exe_key))) {
			close(fd);
			return;
		}
	if (m->fs) {
		struct attest_fs_job *j = calloc(1, sizeof(*j));
		enum attest_result r;

		if (!j) {
			close(fd);
			refuse_conn(m, c, FAULT_PARENT_EXE_NO_MEMORY, &(struct fault_facts){ .detail = "hash the executable" });
			return;
		}
		*j = (struct attest_fs_job){ .kind = ATTEST_FS_HASH, .tag = c->id, .key = c->login_key,
					     .pid = (pid_t)c->origin.tgid, .fd = fd };
		j->facts.exe_key = c->facts.exe_key;
		j->facts.creds = c->facts.creds;
		r = attest_fs_submit(m->fs, j, &c->fs_job);
		free(j);
		if (r != ATTEST_OK)
			refuse_conn(m, c, FAULT_PARENT_HASH_BUSY, NULL);
		else
			c->fs_kind = ATTEST_FS_HASH;
		return;
	}
	/* no file-system threads (a harness driving the parent): here */
	{
		char sha256[65] = "", why[ATTEST_WHY_LEN] = "";
		enum attest_result r = attest_hash_fd(fd, &c->facts.exe_key, &c->facts.creds, NULL, sha256, why, sizeof(why));

		close(fd);
		login_hashed(m, c, &c->facts.exe_key, r, sha256, why);
	}
}

void monitor_fs_done(struct monitor *m)
{
	struct attest_fs_done *d = malloc(sizeof(*d));

	if (!d)
		return; /* the eventfd stays readable: the loop comes back */
	while (attest_fs_collect(m->fs, d)) {
		struct mon_conn *c = NULL;
		bool held = false;

		/* by number: a hash job may have passed to another login (login_fs_end) */
		for (struct mon_conn *t = m->head; t && !held; t = t->next)
			if (t->fs_job == d->job) {
				t->fs_job = 0;
				held = true;
				/* one refused meanwhile: not its any more */
				c = t->st == MC_ATTESTING ? t : NULL;
			}
		if (d->kind == ATTEST_FS_HASH) {
			/* a job nobody holds (its login ended: cancelled) tells its failure to
			 * nobody, but a hash made is right for the file, for the cache and
			 * whoever waits for it */
			if (held || d->result == ATTEST_OK)
				login_hashed(m, c, &d->exe_key, d->result, d->sha256, d->why);
			attest_fs_done_release(d);
			continue;
		}
		/* a connection that ended, or was refused, meanwhile: nobody's now */
		if (!c) {
			attest_fs_done_release(d);
			continue;
		}
		if (d->kind == ATTEST_FS_VOUCH) {
			int fd = d->fd;

			d->fd = -1;
			if (d->result != ATTEST_OK) {
				close(fd);
				refuse_conn(m, c, FAULT_PARENT_ATTEST, &(struct fault_facts){ .detail = d->why });
				continue;
			}
			c->facts.exe_foreign = !d->vouched;
			login_hash(m, c, fd);
		} else {
			token_read(m, c, d->path, d->token_r, d->token, d->token_len);
			attest_fs_done_release(d);
		}
	}
	OPENSSL_cleanse(d, sizeof(*d));
	free(d);
}

void login_fs_end(struct monitor *m, struct mon_conn *c)
{
	/* a login waiting for the same executable's hash takes the job over */
	if (c->fs_job && c->fs_kind == ATTEST_FS_HASH)
		for (struct mon_conn *t = m->head; t; t = t->next)
			if (t != c && login_hashing(t) && !t->fs_job &&
			    !memcmp(&t->facts.exe_key, &c->facts.exe_key, sizeof(c->facts.exe_key))) {
				t->fs_job = c->fs_job;
				t->fs_kind = ATTEST_FS_HASH;
				c->fs_job = 0;
				return;
			}
	if (c->fs_job && m->fs)
		attest_fs_cancel(m->fs, c->fs_job);
	c->fs_job = 0;
}

bool login_abandon(struct monitor *m, struct mon_conn *c, time_t age)
{
	unsigned t = m->cfg->login_timeout + MON_LOGIN_GRACE_S;

	if (c->st == MC_RELAYING || c->st == MC_CANCELLING || c->pending || age < (time_t)t)
		return false;
	/* A worker ends a login at login_timeout by its own timer, counted from when it
	 * got the connection (ENDED follows): one taken over that neither finishes nor
	 * ends its logins would otherwise keep their places under max_logins, and every
	 * login of the host would be refused. The parent forgets it (what the worker
	 * says of it later is ignored, or answered ENOENT). */
	log_warn("login", "id=%llu: worker %u neither finished nor ended the login in %u s; the parent lets go of it",
		 (unsigned long long)c->id, c->w ? c->w->idx : 0, t);
	conn_sever(m, c); /* a login it finished unsaid would relay unseen */
	return true;
}

void login_reloaded(struct monitor *m)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	for (struct mon_conn *c = m->head; c; c = c->next) {
		const struct policy_rule *rule;
		struct config_upstream *u;
		struct policy_facts f;
		char why[512];

		if ((c->st != MC_AUTHORIZED && c->st != MC_RELAYING) || c->withdrawn_at)
			continue;
		conn_policy_facts(c, &f);
		if (c->token_iss[0]) {
			f.issuer = c->token_iss;
			f.claims = c->claims;
		}
		u = config_upstream_named(m->cfg, c->upstream);
		rule = policy_decide_again(&m->cfg->policy, &f, u ? u->role : NULL, c->role, c->read_only, c->rule, why,
					   sizeof(why));
		if (rule) {
			snprintf(c->rule, sizeof(c->rule), "%s", rule->name);
			continue;
		}
		/* its worker decides the same from the same snapshot, and ends it with why */
		c->withdrawn_at = now.tv_sec > 0 ? now.tv_sec : 1;
	}
}

bool login_withdrawn_overdue(struct monitor *m, struct mon_conn *c, time_t since)
{
	if (!c->withdrawn_at || since < MON_WITHDRAW_GRACE_S)
		return false;
	if (since < SESSION_REFUSE_TIMEOUT_S + MON_LOGIN_GRACE_S) {
		/* The worker has had the reload for MON_WITHDRAW_GRACE_S: an honest one has
		 * closed the upstream and told the client why, and waits for the client to
		 * read it (SESSION_REFUSE_TIMEOUT_S at most). One taken over would go on
		 * under the rule the admin took away: its server connection ends now. */
		conn_abort_upstream(m, c, 0);
		return false;
	}
	log_warn("policy", "id=%llu: worker %u has not ended the session a reload withdrew (it was allowed by '%s') in %lld s; the parent ends it",
		 (unsigned long long)c->id, c->w ? c->w->idx : 0, c->rule, (long long)since);
	conn_sever(m, c);
	return true;
}

void login_overdue(struct monitor *m, struct mon_conn *c, time_t age)
{
	unsigned t = m->cfg->login_timeout;

	if (c->st != MC_ATTESTING || age < (time_t)t)
		return;
	if (c->fs_job && c->fs_kind == ATTEST_FS_TOKEN) {
		login_fs_end(m, c);
		refuse_conn(m, c, FAULT_PARENT_TOKEN_FILE_TIMEOUT, &(struct fault_facts){ .timeout = t });
	} else if (c->fs_job && c->fs_kind == ATTEST_FS_VOUCH) {
		login_fs_end(m, c);
		refuse_conn(m, c, FAULT_PARENT_EXE_PATH_TIMEOUT, &(struct fault_facts){ .timeout = t });
	} else if (c->facts_read && !c->facts.exe_sha256[0]) {
		/* its hash job (a waiting login takes it over), or another login's it waits for;
		 * the worker's own timer says the same a little later, should this not come */
		login_fs_end(m, c);
		refuse_conn(m, c, FAULT_PARENT_HASH_TIMEOUT, &(struct fault_facts){ .timeout = t });
	}
}

/* ---- the login, as an oracle --------------------------------------------------------- */

static struct config_role *conn_role(struct monitor *m, struct mon_conn *c)
{
	struct config_upstream *u = config_upstream_named(m->cfg, c->upstream);

	return u ? config_role_for(u, c->role) : NULL;
}

/* ---- SCRAM ----------------------------------------------------------------------------
 * The worker made client-first (its nonce) and got server-first; the parent answers
 * client-final and the server signature the worker must see. Parsing server-first, the
 * credential's cache and the HMACs are cheap and done at once; the salted password of
 * a salt not cached (PBKDF2, up to 0.6 s) is a job for the proof thread (scrampool.h),
 * and the call is answered when it is done (monitor_proofs_done). Meanwhile the loop
 * serves everything else, and the worker (which waits for its answer) sends nothing.
 */

/* A SCRAM call waiting for the proof thread: what client-final is built from. */
struct mon_scram {
	uint64_t job;
	struct scram_client sc;
	char server_first[SCRAM_MAX_MESSAGE];
};

/* A job in the pool. Jobs are numbered once (m->next_job): a result is matched by
 * number to the sessions still waiting for it, never to a slot, so a session that
 * ended, or a worker that died and was replaced, gets no late answer. */
struct mon_proof {
	uint64_t job;
	unsigned gen;                   /* m->gen at submission: the cache takes only its own */
	char upstream[CONFIG_NAME_MAX + 1];
	char role[CONFIG_NAME_MAX + 1];
	struct scram_challenge ch;
	struct mon_worker *owner;       /* whose job it counts as (mon_worker.proofs) ... */
	unsigned owner_lives;           /* ... while that process lives */
	uint64_t askers;                /* bits of the workers that asked (scram_keycache_put) */
	struct mon_proof *next;
};

static struct config_role *mon_role_named(struct monitor *m, const char *upstream, const char *role)
{
	struct config_upstream *u = config_upstream_named(m->cfg, upstream);

	return u ? config_role_for(u, role) : NULL;
}

static uint64_t mon_worker_bit(const struct mon_worker *w)
{
	return w->idx < 64 ? 1ull << w->idx : 0;
}

static void mon_scram_free(struct mon_scram *s)
{
	OPENSSL_cleanse(s, sizeof(*s));
	free(s);
}

/* The answer from the salted password; sc is wiped. */
static int mon_scram_answer(struct mon_conn *c, struct scram_client *sc, const uint8_t salted[SCRAM_KEY_LEN],
			const char *server_first)
{
	struct priv_scram_reply rp;
	int n, ret;

	memset(&rp, 0, sizeof(rp));
	n = scram_client_final_salted(sc, salted, server_first, strlen(server_first), rp.client_final,
				      sizeof(rp.client_final));
	if (n < 0) {
		ret = reply(c->w, c->id, n, NULL, 0, -1);
	} else {
		memcpy(rp.server_signature, sc->server_signature, sizeof(rp.server_signature));
		ret = reply(c->w, c->id, 0, &rp, sizeof(rp), -1);
	}
	OPENSSL_cleanse(&rp, sizeof(rp));
	scram_client_release(sc);
	return ret;
}

/* Unlinks job's record: NULL when there is none (cancelled, or never recorded). */
static struct mon_proof *mon_proof_take(struct monitor *m, uint64_t job)
{
	for (struct mon_proof **pp = &m->proof_jobs; *pp; pp = &(*pp)->next)
		if ((*pp)->job == job) {
			struct mon_proof *p = *pp;

			*pp = p->next;
			if (p->owner->lives == p->owner_lives && p->owner->proofs)
				p->owner->proofs--;
			return p;
		}
	return NULL;
}

/* Whether c's upstream lists method in auth_methods: the worker checks too
 * (upstream.c), so one that asks otherwise was taken over, and is told no. */
static bool method_listed(struct monitor *m, struct mon_conn *c, unsigned method)
{
	if (config_upstream_allows(m->cfg, c->upstream, method))
		return true;
	log_warn("login", "id=%llu: worker %u asked for a %s login to upstream '%s', which its auth_methods does not list; refused",
		 (unsigned long long)c->id, c->w->idx, config_auth_name(method), c->upstream);
	return false;
}

/* Whether fd is connected with nothing sent or queued on it yet. */
static bool unwritten(int fd)
{
	struct tcp_info ti;
	socklen_t tl = sizeof(ti);
	int queued = 0;

	return getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) == 0 && ti.tcpi_state == 1 /* TCP_ESTABLISHED */ &&
	       ti.tcpi_bytes_sent == 0 && ioctl(fd, SIOCOUTQ, &queued) == 0 && queued == 0;
}

void login_cancel_close(struct mon_conn *c)
{
	if (!c->cancel_open)
		return;
	close(c->cancel_fd);
	c->cancel_open = false;
	if (c->w && c->w->cancels_open)
		c->w->cancels_open--;
}

int login_cancel_send(struct monitor *m, struct mon_conn *c, const uint8_t *pkt, size_t len)
{
	(void)m;
	/* a CancelRequest: length 16, code 80877102; the key is the worker's to know */
	if (len != 16 || memcmp(pkt, "\0\0\0\x10\x04\xd2\x16\x2e", 8) != 0 || !c->cancel_open)
		return -EPROTO;
	if (!unwritten(c->cancel_fd)) {
		log_warn("cancel", "id=%llu: worker %u asked for the CancelRequest on a socket not connected, or written to already; refused",
			 (unsigned long long)c->id, c->w->idx);
		return -EPROTO;
	}
	if (send(c->cancel_fd, pkt, len, MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)len)
		return reply(c->w, c->id, -EIO, NULL, 0, -1);
	login_cancel_close(c); /* the server reads a cancel first: it carries nothing else */
	return reply(c->w, c->id, 0, NULL, 0, -1);
}

/* Whether none of w's cancel sockets that wait for their CancelRequest was written to
 * by w itself: a login over one (its own startup) would take any proof it is given. */
static bool cancels_unused(struct monitor *m, struct mon_worker *w)
{
	if (!w->cancels_open)
		return true;
	for (const struct mon_conn *t = m->head; t; t = t->next) {
		struct tcp_info ti;
		socklen_t tl = sizeof(ti);
		int queued = 0;

		if (t->w != w || !t->cancel_open)
			continue;
		if (getsockopt(t->cancel_fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) == -1 || ti.tcpi_bytes_sent != 0 ||
		    ioctl(t->cancel_fd, SIOCOUTQ, &queued) == -1 || queued != 0) {
			log_warn("login", "worker %u wrote on the socket of cancel %llu itself; no proof is given to it",
				 w->idx, (unsigned long long)t->id);
			return false;
		}
	}
	return true;
}

/* Whether a proof may be given for c: on a plain upstream, only for the socket the
 * parent wrote the StartupMessage on (login_startup; the others are aborted then),
 * so the login it completes is to the database, as the role and identity, the parent
 * decided. Inside TLS the worker writes it (see the note in login_startup). */
static bool startup_written(struct monitor *m, struct mon_conn *c)
{
	const struct config_upstream *u = config_upstream_named(m->cfg, c->upstream);

	if (!cancels_unused(m, c->w))
		return false;
	if (c->startup_sent || (u && u->tls != CONFIG_TLS_DISABLE))
		return true;
	log_warn("login", "id=%llu: worker %u asked for a login proof before the parent wrote the startup packet; refused",
		 (unsigned long long)c->id, c->w->idx);
	return false;
}

int login_startup(struct monitor *m, struct mon_conn *c, const uint8_t *body, size_t len, int fd)
{
	const struct config_upstream *u = config_upstream_named(m->cfg, c->upstream);
	char why[STARTOPTS_ERR], app[CONFIG_NAME_MAX + 1];
	uint8_t pkt[PGWIRE_STARTUP_MAX];
	struct priv_startup q;
	socklen_t cl;
	uint64_t cookie;
	size_t i, n;

	/* TLS upstreams: the worker writes it inside the TLS it holds. The parent cannot
	 * see there; binding the database there too needs the parent's TLS (kTLS). */
	if (len != sizeof(q) || fd < 0 || c->startup_sent || c->login_asked || !u || u->tls != CONFIG_TLS_DISABLE)
		return -EPROTO;
	memcpy(&q, body, sizeof(q));
	if (!PRIV_STR_OK(q.client_app) || q.fwd_len > sizeof(q.fwd_params))
		return -EPROTO;
	if (!startopts_fwd_allowed(q.fwd_params, q.fwd_len, why)) {
		log_warn("login", "id=%llu: worker %u passed settings the client could not have: %s", (unsigned long long)c->id,
			 c->w->idx, why);
		return -EPROTO;
	}
	/* one of the sockets it made for this login, connected, with nothing sent on it:
	 * the server reads this packet first */
	cl = sizeof(cookie);
	if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &cl) == -1)
		return -EPROTO;
	for (i = 0; i < c->n_up_socks && c->up_socks[i].cookie != cookie; i++)
		;
	if (i == c->n_up_socks || !unwritten(fd)) {
		log_warn("login", "id=%llu: worker %u asked for the startup packet on a socket not of its login, not connected, or written to already; refused",
			 (unsigned long long)c->id, c->w->idx);
		return -EPROTO;
	}
	snprintf(app, sizeof(app), "%s", q.client_app);
	n = startopts_upstream_startup(pkt, sizeof(pkt), &(struct startopts_login){
		.role = c->role, .database = c->database, .client_app = app, .cgroup = c->facts.cgroup,
		.exe = c->facts.exe, .rule = c->rule, .comm = c->origin.comm, .token_iss = c->token_iss,
		.token_sub = c->token_sub, .uid = c->origin.uid, .gid = c->origin.gid, .pid = c->origin.tgid,
		.read_only = c->read_only, .fwd = q.fwd_params, .fwd_len = q.fwd_len });
	if (n == 0)
		return reply(c->w, c->id, -E2BIG, NULL, 0, -1);
	if (send(fd, pkt, n, MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)n)
		return reply(c->w, c->id, -EIO, NULL, 0, -1);
	c->startup_sent = true;
	conn_abort_upstream(m, c, cookie); /* the addresses tried before can carry nothing now */
	return reply(c->w, c->id, 0, NULL, 0, -1);
}

int login_scram(struct monitor *m, struct mon_conn *c, const struct priv_scram *q)
{
	struct config_role *cr = conn_role(m, c);
	uint8_t salted[SCRAM_KEY_LEN];
	struct scram_challenge ch;
	struct mon_scram *s;
	struct mon_proof *p;
	const char *r;
	int n;

	if (!PRIV_STR_OK(q->client_first_bare) || !PRIV_STR_OK(q->server_first) || !startup_written(m, c))
		return -EPROTO;
	if (!cr)
		return reply(c->w, c->id, -ENOENT, NULL, 0, -1);
	if (!method_listed(m, c, CONFIG_AUTH_SCRAM))
		return reply(c->w, c->id, -EPERM, NULL, 0, -1);
	s = calloc(1, sizeof(*s));
	if (!s)
		return reply(c->w, c->id, -ENOMEM, NULL, 0, -1);
	snprintf(s->sc.client_first_bare, sizeof(s->sc.client_first_bare), "%s", q->client_first_bare);
	r = strstr(q->client_first_bare, ",r=");
	if (!r || strlen(r + 3) != SCRAM_NONCE_LEN || strchr(r + 3, ',')) {
		mon_scram_free(s);
		return reply(c->w, c->id, -EPROTO, NULL, 0, -1);
	}
	memcpy(s->sc.nonce, r + 3, SCRAM_NONCE_LEN + 1);
	s->sc.state = 1;
	memcpy(s->server_first, q->server_first, sizeof(s->server_first));
	n = scram_parse_server_first(&s->sc, s->server_first, strlen(s->server_first), &ch);
	if (n < 0) {
		mon_scram_free(s);
		return reply(c->w, c->id, n, NULL, 0, -1);
	}
	if (scram_keycache_get(&cr->keycache, &ch, c->w->idx, salted)) {
		n = mon_scram_answer(c, &s->sc, salted, s->server_first);
		OPENSSL_cleanse(salted, sizeof(salted));
		mon_scram_free(s);
		return n;
	}
	/* the same salted password already on its way for another session: wait for it */
	for (p = m->proof_jobs; p; p = p->next)
		if (p->gen == m->gen && !strcmp(p->upstream, c->upstream) && !strcmp(p->role, c->role) &&
		    p->ch.iterations == ch.iterations && p->ch.salt_len == ch.salt_len &&
		    !memcmp(p->ch.salt, ch.salt, ch.salt_len))
			break;
	if (!p && !m->proofs) { /* no proof thread (a harness driving the parent) */
		mon_scram_free(s);
		return reply(c->w, c->id, -ENOSYS, NULL, 0, -1);
	}
	if (!p) {
		/* The worker waits for each answer, so its only job in the pool is one for a
		 * session it ended while that job ran: ending sessions to queue more is how a
		 * worker taken over would hold the thread for everyone. */
		if (c->w->proofs >= 1) {
			log_warn("login", "id=%llu: worker %u asked for another SCRAM proof while one it abandoned is computed",
				 (unsigned long long)c->id, c->w->idx);
			mon_scram_free(s);
			return -EPROTO;
		}
		p = calloc(1, sizeof(*p));
		if (!p) {
			mon_scram_free(s);
			return reply(c->w, c->id, -ENOMEM, NULL, 0, -1);
		}
		p->job = ++m->next_job;
		p->gen = m->gen;
		snprintf(p->upstream, sizeof(p->upstream), "%s", c->upstream);
		snprintf(p->role, sizeof(p->role), "%s", c->role);
		p->ch = ch;
		p->owner = c->w;
		p->owner_lives = c->w->lives;
		if ((n = scrampool_submit(m->proofs, p->job, cr->password, &ch)) < 0) {
			if (n == -EBUSY)
				log_warn("login", "id=%llu: %d SCRAM proofs are being computed already; this login is refused",
					 (unsigned long long)c->id, MON_PROOFS_MAX);
			free(p);
			mon_scram_free(s);
			return reply(c->w, c->id, n, NULL, 0, -1);
		}
		c->w->proofs++;
		p->next = m->proof_jobs;
		m->proof_jobs = p;
	}
	p->askers |= mon_worker_bit(c->w);
	s->job = p->job;
	c->scram = s;
	c->w->waiting = c->id;
	return 0;
}

void login_scram_end(struct monitor *m, struct mon_conn *c)
{
	struct mon_scram *s = c->scram;
	bool others = false;

	if (!s)
		return;
	c->scram = NULL;
	if (c->w && c->w->waiting == c->id)
		c->w->waiting = 0;
	for (struct mon_conn *t = m->head; t && !others; t = t->next)
		others = t != c && t->scram && t->scram->job == s->job;
	/* nobody waits for it: not computed at all if it has not started */
	if (!others && m->proofs && scrampool_cancel(m->proofs, s->job))
		free(mon_proof_take(m, s->job));
	mon_scram_free(s);
}

void monitor_proofs_done(struct monitor *m)
{
	struct scrampool_done d;

	while (m->proofs && scrampool_collect(m->proofs, &d)) {
		struct mon_proof *p = mon_proof_take(m, d.job);
		struct mon_conn *c, *next;

		if (p) {
			struct config_role *cr = mon_role_named(m, p->upstream, p->role);

			/* a reload may have changed the password: then the key is not cached */
			if (d.result == 0 && p->gen == m->gen && cr)
				scram_keycache_put(&cr->keycache, &p->ch, p->askers, d.salted);
			free(p);
		}
		for (c = m->head; c; c = next) {
			struct mon_scram *s = c->scram;

			next = c->next;
			if (!s || s->job != d.job)
				continue;
			c->scram = NULL;
			if (c->w->waiting == c->id)
				c->w->waiting = 0;
			if (d.result < 0)
				reply(c->w, c->id, d.result, NULL, 0, -1);
			else
				mon_scram_answer(c, &s->sc, d.salted, s->server_first);
			mon_scram_free(s);
		}
		OPENSSL_cleanse(&d, sizeof(d));
	}
}

void login_proofs_release(struct monitor *m)
{
	while (m->proof_jobs) {
		struct mon_proof *p = m->proof_jobs;

		m->proof_jobs = p->next;
		free(p);
	}
}

int login_md5(struct monitor *m, struct mon_conn *c, const uint8_t *salt, size_t len)
{
	struct config_role *cr = conn_role(m, c);
	char out[36];
	int r;

	if (len != 4 || !startup_written(m, c))
		return -EPROTO;
	/* a hash salted as the worker asks: passwords are cheap to try on it */
	if (!method_listed(m, c, CONFIG_AUTH_MD5))
		return reply(c->w, c->id, -EPERM, NULL, 0, -1);
	if (!cr || scram_md5_response(c->role, cr->password, salt, out) < 0)
		return reply(c->w, c->id, -ENOENT, NULL, 0, -1);
	r = reply(c->w, c->id, 0, out, strlen(out) + 1, -1);
	OPENSSL_cleanse(out, sizeof(out));
	return r;
}

/* Cleartext (only to an upstream whose certificate was verified, the worker's
 * check): the one case where the password itself goes to the worker. */
int login_cleartext(struct monitor *m, struct mon_conn *c)
{
	struct config_upstream *u = config_upstream_named(m->cfg, c->upstream);
	struct config_role *cr = conn_role(m, c);

	if (!cancels_unused(m, c->w))
		return -EPROTO;
	if (!cr)
		return reply(c->w, c->id, -ENOENT, NULL, 0, -1);
	if (!method_listed(m, c, CONFIG_AUTH_PASSWORD))
		return reply(c->w, c->id, -EPERM, NULL, 0, -1);
	/* The worker's rule, kept here too: a worker taken over would otherwise get the
	 * password of any upstream just by asking. (Under verify-full the parent cannot
	 * see the handshake: there it trusts the worker's check.) */
	if (!u || u->tls != CONFIG_TLS_VERIFY_FULL) {
		log_warn("login", "id=%llu: worker %u asked for the password of upstream '%s', which is not tls verify-full; refused",
			 (unsigned long long)c->id, c->w->idx, c->upstream);
		return reply(c->w, c->id, -EPERM, NULL, 0, -1);
	}
	return reply(c->w, c->id, 0, cr->password, strlen(cr->password) + 1, -1);
}

/* The socket is connected here, to an address of the session's upstream only: a
 * marked socket passes the connect hook and any rule keyed on the mark, so one a
 * worker could aim itself would reach anything this host reaches (connect is not in
 * the workers' seccomp list, sandbox.c). */
/* The kernel's names of the login's socket fd, connecting to `to` (its port is bound
 * by connect): what conn_sever aborts it by once the worker has the only fd. */
static int upsock_note(struct mon_conn *c, int fd, const struct addr *to)
{
	struct mon_upsock *u = &c->up_socks[c->n_up_socks];
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	socklen_t clen = sizeof(u->cookie);

	if (c->n_up_socks >= CONFIG_MAX_RESOLVED) /* sockets <= n_addrs makes this impossible */
		return -EINVAL;
	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1 ||
	    getsockopt(fd, SOL_SOCKET, SO_COOKIE, &u->cookie, &clen) == -1)
		return -errno;
	if (addr_from_sockaddr((struct sockaddr *)&ss, &u->local) < 0)
		return -EAFNOSUPPORT;
	u->remote = *to;
	c->n_up_socks++;
	return 0;
}

int login_socket(struct monitor *m, struct mon_conn *c, const uint8_t *body, size_t len)
{
	uint32_t mark = m->cfg->socket_mark;
	struct sockaddr_storage ss;
	socklen_t sslen;
	struct addr to;
	size_t i;
	int fd, r;

	if (len != sizeof(to))
		return -EPROTO;
	memcpy(&to, body, sizeof(to));
	for (i = 0; i < c->n_addrs; i++)
		if (!memcmp(c->addrs[i].ip, to.ip, sizeof(to.ip)) && c->addrs[i].port == to.port)
			break;
	if (i == c->n_addrs) {
		char buf[ADDR_STRLEN];

		log_warn("upstream", "id=%llu: worker %u asked for a socket to %s, not an address of upstream '%s'; refused",
			 (unsigned long long)c->id, c->w->idx, addr_format(&to, buf), c->upstream);
		return reply(c->w, c->id, -EPERM, NULL, 0, -1);
	}
	/* A login tries each address once (upstream.c), and before its proof: a worker
	 * asking for more holds connections the parent could not end (conn_sever). */
	if (c->st == MC_AUTHORIZED && (c->login_asked || c->startup_sent))
		return -EPROTO;
	if (++c->sockets > (c->st == MC_AUTHORIZED ? c->n_addrs : MON_MAX_SOCKETS))
		return reply(c->w, c->id, -EINVAL, NULL, 0, -1);
	sslen = addr_to_sockaddr(&to, &ss);
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
	if (fd == -1)
		return reply(c->w, c->id, -errno, NULL, 0, -1);
	/* the loop guard: the connect hook lets marked sockets through untouched */
	if (setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) == -1) {
		r = -errno;
		close(fd);
		return reply(c->w, c->id, r, NULL, 0, -1);
	}
	/* without blocking: the worker waits for EPOLLOUT and reads SO_ERROR */
	if (connect(fd, (struct sockaddr *)&ss, sslen) == -1 && errno != EINPROGRESS) {
		r = -errno;
		close(fd);
		return reply(c->w, c->id, r, NULL, 0, -1);
	}
	if (c->st == MC_AUTHORIZED && (r = upsock_note(c, fd, &to)) < 0) {
		close(fd);
		return reply(c->w, c->id, r, NULL, 0, -1);
	}
	if (c->st == MC_CANCELLING) {
		/* the try before is over: whatever the worker keeps of it can send nothing */
		if (c->cancel_open)
			shutdown(c->cancel_fd, SHUT_RDWR);
		login_cancel_close(c);
		if ((c->cancel_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0) {
			r = -errno;
			close(fd);
			return reply(c->w, c->id, r, NULL, 0, -1);
		}
		c->cancel_open = true;
		c->w->cancels_open++;
	}
	r = reply(c->w, c->id, 0, NULL, 0, fd);
	close(fd);
	return r;
}

void login_token(struct monitor *m, struct mon_conn *c, const char *token, size_t len)
{
	if (!token)
		authorize(m, c, NULL, 0, "password", &(struct fault_facts){ .token_empty = true });
	else
		authorize(m, c, token, len, "password", NULL);
}
